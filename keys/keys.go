// Package keys holds Clover's key hierarchy for data at rest: each site has a
// key-encryption key (KEK) that wraps per-subject data keys, and each data key
// seals one subject's record with AES-256-GCM.
//
// The KEK is behind the one-interface KEK so a KMS or HSM can replace the
// local key file. Ciphertexts and wrapped keys are bound by associated data to
// the site and the subject they belong to, so a row or a key copied onto
// another subject or site does not open. Destroying a subject's wrapped data
// key (crypto-shredding) makes every copy of its record unreadable.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cloverenclave/clover/internal/atomicfile"
)

// DataKeySize is the size of a data key: AES-256.
const DataKeySize = 32

// ErrDecrypt is returned when a ciphertext or wrapped key does not open: it
// was tampered with, belongs to another subject or site, or its key is gone.
var ErrDecrypt = errors.New("keys: cannot decrypt")

// KEK wraps and unwraps data keys. Implementations are safe for concurrent use.
type KEK interface {
	// ID names the key, so that a wrapped key records which KEK wrapped it.
	ID() string
	Wrap(dataKey, aad []byte) ([]byte, error)
	Unwrap(wrapped, aad []byte) ([]byte, error)
}

// FileKEK is a KEK kept in a local file readable only by its owner.
type FileKEK struct {
	id   string
	aead cipher.AEAD
	rand io.Reader
}

var _ KEK = (*FileKEK)(nil)

const (
	kekHeader    = "clover-kek-v1 "
	secretHeader = "clover-secret-v1 "
)

// LoadOrCreateFileKEK loads the KEK at path or, if there is none, creates it
// with mode 0600 from rand. A key file that others can read is refused.
func LoadOrCreateFileKEK(path string, rand io.Reader) (*FileKEK, error) {
	key, err := loadOrCreate(path, kekHeader, rand)
	if err != nil {
		return nil, err
	}
	return NewFileKEK(key, rand)
}

// LoadFileKEK loads an existing KEK file.
func LoadFileKEK(path string, rand io.Reader) (*FileKEK, error) {
	key, err := load(path, kekHeader)
	if err != nil {
		return nil, err
	}
	return NewFileKEK(key, rand)
}

// LoadOrCreateSecret loads, or creates with mode 0600, a 32-byte root secret
// from which other keys are derived with DeriveKey (e.g. the pseudonymisation
// keys). A secret file that others can read is refused.
func LoadOrCreateSecret(path string, rand io.Reader) ([]byte, error) {
	return loadOrCreate(path, secretHeader, rand)
}

// DeriveKey derives a size-byte key for one purpose (label) from a root
// secret with HKDF-SHA256, so that one root yields independent keys.
func DeriveKey(root []byte, label string, size int) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, root, nil, "clover/v1 "+label, size)
	if err != nil {
		return nil, fmt.Errorf("keys: derive %q: %w", label, err)
	}
	return k, nil
}

func loadOrCreate(path, header string, rand io.Reader) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("keys: create directory for %s: %w", path, err)
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(rand, key); err != nil {
		return nil, fmt.Errorf("keys: generate key: %w", err)
	}
	content := header + base64.StdEncoding.EncodeToString(key) + "\n"
	if err := atomicfile.Create(path, []byte(content), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("keys: create %s: %w", path, err)
	}
	return load(path, header)
}

func load(path, header string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keys: %s has mode %04o; a key file must be readable by its owner only (chmod 600)", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	if !strings.HasPrefix(s, header) {
		return nil, fmt.Errorf("keys: %s is not a Clover key file of this kind (expected %q)", path, strings.TrimSpace(header))
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, header))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("keys: %s is corrupt: expected a base64 32-byte key", path)
	}
	return key, nil
}

// NewFileKEK builds a KEK from 32 key bytes.
func NewFileKEK(key []byte, rand io.Reader) (*FileKEK, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("clover kek id\x00"), key...))
	return &FileKEK{id: "file:" + hex.EncodeToString(sum[:8]), aead: aead, rand: rand}, nil
}

// ID returns "file:" and a fingerprint of the key that reveals nothing of it.
func (k *FileKEK) ID() string { return k.id }

// Wrap seals a data key under the KEK, bound to aad.
func (k *FileKEK) Wrap(dataKey, aad []byte) ([]byte, error) {
	return seal(k.aead, k.rand, dataKey, aad)
}

// Unwrap opens a wrapped data key; it fails with ErrDecrypt if it was wrapped
// by another KEK or for other associated data.
func (k *FileKEK) Unwrap(wrapped, aad []byte) ([]byte, error) { return k.UnwrapTo(nil, wrapped, aad) }

// UnwrapTo is Unwrap appending the data key to dst, so that a caller
// unwrapping many keys can reuse one buffer.
func (k *FileKEK) UnwrapTo(dst, wrapped, aad []byte) ([]byte, error) {
	out, err := openTo(dst, k.aead, wrapped, aad)
	if err != nil {
		return nil, err
	}
	if n := len(out) - len(dst); n != DataKeySize {
		clear(out[len(dst):])
		return nil, fmt.Errorf("%w: wrapped key has %d bytes", ErrDecrypt, n)
	}
	return out, nil
}

// NewDataKey returns a fresh random data key.
func NewDataKey(rand io.Reader) ([]byte, error) {
	dk := make([]byte, DataKeySize)
	if _, err := io.ReadFull(rand, dk); err != nil {
		return nil, fmt.Errorf("keys: generate data key: %w", err)
	}
	return dk, nil
}

// RecordAAD is the associated data that binds a record's ciphertext to its
// site and subject.
func RecordAAD(site, subject string) []byte { return AppendRecordAAD(nil, site, subject) }

// KeyAAD is the associated data that binds a wrapped data key to its site and
// subject.
func KeyAAD(site, subject string) []byte { return AppendKeyAAD(nil, site, subject) }

// AppendRecordAAD appends RecordAAD(site, subject) to dst, so that a caller
// opening many records can reuse one buffer.
func AppendRecordAAD(dst []byte, site, subject string) []byte {
	return appendAAD(dst, "record", site, subject)
}

// AppendKeyAAD appends KeyAAD(site, subject) to dst.
func AppendKeyAAD(dst []byte, site, subject string) []byte {
	return appendAAD(dst, "data-key", site, subject)
}

// appendAAD appends "clover/v1 <kind> <len>:<site> <len>:<subject>": length
// prefixed, so no two (site, subject) pairs encode alike.
func appendAAD(dst []byte, kind, site, subject string) []byte {
	dst = append(dst, "clover/v1 "...)
	dst = append(dst, kind...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(site)), 10)
	dst = append(dst, ':')
	dst = append(dst, site...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(subject)), 10)
	dst = append(dst, ':')
	return append(dst, subject...)
}

// Seal encrypts plaintext under a data key, bound to aad.
func Seal(dataKey, plaintext, aad []byte, rand io.Reader) ([]byte, error) {
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	return seal(aead, rand, plaintext, aad)
}

// Open decrypts a sealed record; it fails with ErrDecrypt on any mismatch.
func Open(dataKey, sealed, aad []byte) ([]byte, error) { return OpenTo(nil, dataKey, sealed, aad) }

// OpenTo is Open appending the plaintext to dst, so that a caller opening
// many records can reuse one buffer (dst must not overlap sealed). On
// failure it returns nil, and dst's spare capacity may have been written.
func OpenTo(dst, dataKey, sealed, aad []byte) ([]byte, error) {
	aead, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	return openTo(dst, aead, sealed, aad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("keys: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return cipher.NewGCM(block)
}

const version byte = 1

func seal(aead cipher.AEAD, rand io.Reader, plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = version
	if _, err := io.ReadFull(rand, out[1:]); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plaintext, aad), nil
}

func openTo(dst []byte, aead cipher.AEAD, sealed, aad []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != version {
		return nil, fmt.Errorf("%w: malformed ciphertext", ErrDecrypt)
	}
	pt, err := aead.Open(dst, sealed[1:1+n], sealed[1+n:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
