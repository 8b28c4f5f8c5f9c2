package pseudonym

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/tink-crypto/tink-go/v2/daead/subtle"
)

const (
	// SIVKeySize is the size in bytes of an SIV key: two AES-256 keys, one
	// for S2V (CMAC) and one for CTR, as tink requires.
	SIVKeySize = subtle.AESSIVKeySize
	// SIVPrefix starts every SIV token.
	SIVPrefix = "sv_"

	// sivIVSize is the size of the synthetic IV that starts a ciphertext.
	sivIVSize = 16
)

// ErrInvalidToken is wrapped by every error of SIV.Open: a token that is
// malformed, was tampered with, or was sealed under another scope or key.
var ErrInvalidToken = errors.New("pseudonym: invalid token")

// sivEncoding is strict so that a token has exactly one spelling: flipping
// the unused low bits of the last character is tampering too.
var sivEncoding = base64.RawURLEncoding.Strict()

// SIV makes reversible deterministic tokens with AES-SIV (RFC 5297). Equal
// values sealed under the same scope give equal tokens; only a holder of the
// key can open them. It is safe for concurrent use.
type SIV struct {
	aead *subtle.AESSIV
}

// NewSIV returns an SIV for a 64-byte key. The key is copied.
func NewSIV(key []byte) (*SIV, error) {
	if len(key) != SIVKeySize {
		return nil, fmt.Errorf("pseudonym: SIV key must be %d bytes, got %d", SIVKeySize, len(key))
	}
	if allZero(key) {
		return nil, errors.New("pseudonym: SIV key is all zeros")
	}
	aead, err := subtle.NewAESSIV(bytes.Clone(key))
	if err != nil {
		return nil, fmt.Errorf("pseudonym: SIV key: %w", err)
	}
	return &SIV{aead: aead}, nil
}

// Seal returns the token of value in scope: SIVPrefix followed by the
// base64url (unpadded) encoding of the AES-SIV ciphertext (16-byte synthetic
// IV, then the encrypted value), with scope as the associated data.
func (s *SIV) Seal(scope string, value []byte) string {
	buf := make([]byte, 0, len(SIVPrefix)+sivEncoding.EncodedLen(sivIVSize+len(value)))
	return string(s.appendSeal(buf, scope, value))
}

// appendSeal appends Seal(scope, value) to dst.
func (s *SIV) appendSeal(dst []byte, scope string, value []byte) []byte {
	ct, err := s.aead.EncryptDeterministically(value, []byte(scope))
	if err != nil {
		// Unreachable: tink fails only for values of nearly math.MaxInt
		// bytes, which cannot be held in memory.
		return dst
	}
	dst = append(dst, SIVPrefix...)
	return sivEncoding.AppendEncode(dst, ct)
}

// Open returns the value sealed in token under scope. A malformed or
// tampered token, or one sealed under another scope or key, yields an error
// wrapping ErrInvalidToken.
func (s *SIV) Open(scope, token string) ([]byte, error) {
	body, ok := strings.CutPrefix(token, SIVPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: missing %q prefix", ErrInvalidToken, SIVPrefix)
	}
	// encoding/base64 skips '\r' and '\n' while decoding; a token is
	// accepted only in the one form Seal writes.
	if strings.ContainsFunc(body, func(r rune) bool { return !isBase64URL(r) }) {
		return nil, fmt.Errorf("%w: not base64url", ErrInvalidToken)
	}
	ct, err := sivEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url", ErrInvalidToken)
	}
	pt, err := s.aead.DecryptDeterministically(ct, []byte(scope))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (wrong key or scope, or altered)", ErrInvalidToken)
	}
	return pt, nil
}

// String hides the key when an SIV is printed.
func (s *SIV) String() string { return "pseudonym.SIV{key: redacted}" }

// GoString hides the key when an SIV is printed with %#v.
func (s *SIV) GoString() string { return s.String() }

func isBase64URL(r rune) bool {
	return 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_'
}
