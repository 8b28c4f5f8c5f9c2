package pseudonym

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"maps"
	"sync"
	"sync/atomic"
)

const (
	// RootKeySize is the size in bytes of a Tokenizer's root key.
	RootKeySize = 32
	// TokenPrefix starts every HMAC token.
	TokenPrefix = "tk_"
	// TokenLen is the length in bytes of an HMAC token: the prefix and the
	// unpadded base64url encoding of 16 bytes (128 bits) of HMAC output.
	TokenLen = len(TokenPrefix) + 22

	tokenBytes = 16
	// hmacLabel separates scope keys from any other use of the root key.
	hmacLabel = "clover/pseudonym/hmac/v1\x00"
	// maxCachedScopes bounds the scope cache; past it, scope keys are derived
	// on every call rather than kept.
	maxCachedScopes = 1024
)

// Tokenizer makes HMAC-SHA256 tokens. The key of each scope is derived from
// the root key, so tokens of different scopes are unlinkable. It is safe for
// concurrent use.
type Tokenizer struct {
	root   [RootKeySize]byte
	mu     sync.Mutex // serialises additions to scopes
	scopes atomic.Pointer[map[string]*scopeMAC]
}

// scopeMAC holds one scope's derived key and a pool of HMAC states keyed
// with it, so that tokens reuse hash instances.
type scopeMAC struct {
	key  [sha256.Size]byte
	pool sync.Pool
}

// macState is one pooled HMAC instance with room for its output.
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// NewTokenizer returns a Tokenizer for a 32-byte root key. The key is copied.
func NewTokenizer(root []byte) (*Tokenizer, error) {
	if len(root) != RootKeySize {
		return nil, fmt.Errorf("pseudonym: HMAC root key must be %d bytes, got %d", RootKeySize, len(root))
	}
	if allZero(root) {
		return nil, errors.New("pseudonym: HMAC root key is all zeros")
	}
	t := &Tokenizer{}
	copy(t.root[:], root)
	return t, nil
}

// Token returns the token of value in scope: TokenPrefix followed by the
// base64url (unpadded) encoding of the first 16 bytes of
// HMAC-SHA256(scopeKey, value), where scopeKey is
// HMAC-SHA256(root, "clover/pseudonym/hmac/v1\x00" + scope).
func (t *Tokenizer) Token(scope string, value []byte) string {
	var buf [TokenLen]byte
	return string(t.AppendToken(buf[:0], scope, value))
}

// AppendToken appends the token of value in scope to dst and returns the
// extended slice. It does not allocate when dst has room for TokenLen more
// bytes and the scope is cached.
func (t *Tokenizer) AppendToken(dst []byte, scope string, value []byte) []byte {
	s := t.scope(scope)
	m := s.get()
	m.h.Write(value)
	sum := m.h.Sum(m.sum[:0])
	dst = append(dst, TokenPrefix...)
	dst = base64.RawURLEncoding.AppendEncode(dst, sum[:tokenBytes])
	s.pool.Put(m)
	return dst
}

// String hides the key when a Tokenizer is printed.
func (t *Tokenizer) String() string { return "pseudonym.Tokenizer{key: redacted}" }

// GoString hides the key when a Tokenizer is printed with %#v.
func (t *Tokenizer) GoString() string { return t.String() }

// scope returns the cached state of a scope, deriving and caching it first
// if need be.
func (t *Tokenizer) scope(name string) *scopeMAC {
	if m := t.scopes.Load(); m != nil {
		if s, ok := (*m)[name]; ok {
			return s
		}
	}
	return t.addScope(name)
}

// addScope derives a scope's key and publishes a copy of the cache that
// holds it. Readers never lock; scopes are few and added rarely.
func (t *Tokenizer) addScope(name string) *scopeMAC {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old map[string]*scopeMAC
	if p := t.scopes.Load(); p != nil {
		old = *p
	}
	if s, ok := old[name]; ok {
		return s
	}
	s := &scopeMAC{key: deriveScopeKey(&t.root, name)}
	if len(old) >= maxCachedScopes {
		return s
	}
	next := make(map[string]*scopeMAC, len(old)+1)
	maps.Copy(next, old)
	next[name] = s
	t.scopes.Store(&next)
	return s
}

// deriveScopeKey computes HMAC-SHA256(root, hmacLabel || scope).
func deriveScopeKey(root *[RootKeySize]byte, scope string) [sha256.Size]byte {
	mac := hmac.New(sha256.New, root[:])
	mac.Write([]byte(hmacLabel))
	mac.Write([]byte(scope))
	var key [sha256.Size]byte
	mac.Sum(key[:0])
	return key
}

// get returns a reset HMAC state keyed with the scope key.
func (s *scopeMAC) get() *macState {
	if m, ok := s.pool.Get().(*macState); ok {
		m.h.Reset()
		return m
	}
	return &macState{h: hmac.New(sha256.New, s.key[:])}
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}
