package auditlog

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/internal/atomicfile"
)

// LoadOrCreateSigner loads the checkpoint signing key at path, or creates
// it (mode 0600, atomically: one concurrent creator wins) for origin from
// rand if there is none. The file holds one line, a note signer key
// ("PRIVATE+KEY+<origin>+<hash>+<key>") for Ed25519. It returns the signer
// and its note verifier key ("<origin>+<hash>+<key>"), which verifiers of
// the log need. A key file that others can read, or that is for another
// origin, is refused.
func LoadOrCreateSigner(path, origin string, rand io.Reader) (note.Signer, string, error) {
	if err := validOrigin(origin); err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		skey, _, err := note.GenerateKey(rand, origin)
		if err != nil {
			return nil, "", fmt.Errorf("auditlog: generate signer key: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", fmt.Errorf("auditlog: create directory for %s: %w", path, err)
		}
		if err := atomicfile.Create(path, []byte(skey+"\n"), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, "", fmt.Errorf("auditlog: create %s: %w", path, err)
		}
	}
	return loadSigner(path, origin)
}

func validOrigin(origin string) error {
	if origin == "" || strings.ContainsRune(origin, '+') || strings.IndexFunc(origin, unicode.IsSpace) >= 0 {
		return fmt.Errorf("auditlog: origin %q must be non-empty, without spaces or '+'", origin)
	}
	return nil
}

func loadSigner(path, origin string) (note.Signer, string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("auditlog: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, "", fmt.Errorf("auditlog: %s has mode %04o; a key file must be readable by its owner only (chmod 600)", path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("auditlog: %w", err)
	}
	skey := strings.TrimSuffix(string(data), "\n")
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("auditlog: %s is not a note signer key: %w", path, err)
	}
	if signer.Name() != origin {
		return nil, "", fmt.Errorf("auditlog: %s is the key of log %q, not %q", path, signer.Name(), origin)
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return nil, "", fmt.Errorf("auditlog: %s: %w", path, err)
	}
	return signer, vkey, nil
}

// verifierKey derives the note verifier key of an Ed25519 note signer key.
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5) // the base64 key may hold "+"
	if len(parts) != 5 {
		return "", errors.New("malformed signer key")
	}
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", errors.New("not an Ed25519 signer key")
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}
