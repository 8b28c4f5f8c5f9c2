package witness

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/internal/atomicfile"
)

// maxKeyFileSize caps what LoadOrCreateKey reads: a note signer key line is
// well under 200 bytes.
const maxKeyFileSize = 4 << 10

// cosignaturePrefix starts every message a cosignature/v1 signs; the report
// signer refuses texts with this prefix (see the package comment).
const cosignaturePrefix = "cosignature/"

// Key is the monitor's own Ed25519 key, used both to cosign checkpoints
// (cosignature/v1) and to sign the monitor's reports (plain note
// signatures).
type Key struct {
	name       string
	private    ed25519.PrivateKey
	cosigner   *fnote.Signer // the library's cosigner, on the system clock
	noteSigner note.Signer
	noteVKey   string
	cosigVKey  string
}

// LoadOrCreateKey loads the witness key at path, or creates it (mode 0600,
// atomically: of concurrent creators one wins) for name from rand if there
// is none. The file holds one line, an Ed25519 note signer key. A key file
// that others can read, that is not a regular file, or that is the key of
// another name is refused.
func LoadOrCreateKey(path, name string, rand io.Reader) (*Key, error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		skey, _, err := note.GenerateKey(rand, name)
		if err != nil {
			return nil, fmt.Errorf("witness: generate key %q: %w", name, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("witness: create directory for %s: %w", path, err)
		}
		if err := atomicfile.Create(path, []byte(skey+"\n"), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("witness: create %s: %w", path, err)
		}
	}
	skey, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := parseKey(skey)
	if err != nil {
		return nil, fmt.Errorf("witness: %s: %w", path, err)
	}
	if k.name != name {
		return nil, fmt.Errorf("witness: %s is the key of %q, not %q", path, k.name, name)
	}
	return k, nil
}

// readKeyFile reads the key file after checking, on the open file, that it
// is a regular file its owner alone can read.
func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("witness: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("witness: %w", err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("witness: %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("witness: %s has mode %04o; a key file must be readable by its owner only (chmod 600)", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return "", fmt.Errorf("witness: read %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return "", fmt.Errorf("witness: %s is larger than %d bytes: not a key file", path, maxKeyFileSize)
	}
	return strings.TrimSuffix(string(data), "\n"), nil
}

// parseKey derives every form of the key from a note signer key.
func parseKey(skey string) (*Key, error) {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("not a note signer key: %w", err)
	}
	// "PRIVATE+KEY+<name>+<hash>+<base64 key>"; the base64 may hold '+'.
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 {
		return nil, errors.New("not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("not an Ed25519 note signer key")
	}
	private := ed25519.NewKeyFromSeed(raw[1:])
	noteVKey, err := note.NewEd25519VerifierKey(signer.Name(), private.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	cosigVKey, err := fnote.VKeyToCosignatureV1(noteVKey)
	if err != nil {
		return nil, fmt.Errorf("cosignature key: %w", err)
	}
	cosigner, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("cosignature signer: %w", err)
	}
	return &Key{
		name:       signer.Name(),
		private:    private,
		cosigner:   cosigner,
		noteSigner: reportSigner{signer},
		noteVKey:   noteVKey,
		cosigVKey:  cosigVKey,
	}, nil
}

// Name returns the key's name: the witness's name in cosignature lines.
func (k *Key) Name() string { return k.name }

// CosignerVerifierKey returns the cosignature/v1 verifier key (vkey type
// 0x04): what a log's witness policy names, and what
// formats/note.NewVerifierForCosignatureV1 takes.
func (k *Key) CosignerVerifierKey() string { return k.cosigVKey }

// Cosigner returns a cosignature/v1 signer whose timestamps come from the
// system clock. The Witness itself signs on its own clock (New's now).
func (k *Key) Cosigner() note.Signer { return k.cosigner }

// NoteSigner returns a plain Ed25519 note signer (type 0x01) for the
// monitor's reports. It refuses to sign a text beginning with
// "cosignature/", so that no report signature is also a cosignature.
func (k *Key) NoteSigner() note.Signer { return k.noteSigner }

// NoteVerifierKey returns the note verifier key of NoteSigner.
func (k *Key) NoteVerifierKey() string { return k.noteVKey }

// cosignerAt returns a cosignature/v1 signer whose timestamps are now().
func (k *Key) cosignerAt(now func() time.Time) *clockedCosigner {
	return &clockedCosigner{name: k.name, hash: k.cosigner.KeyHash(), key: k.private, now: now}
}

// reportSigner is a note signer that refuses texts that would make its
// signature a valid cosignature of the same key.
type reportSigner struct{ note.Signer }

func (s reportSigner) Sign(msg []byte) ([]byte, error) {
	if bytes.HasPrefix(msg, []byte(cosignaturePrefix)) {
		return nil, fmt.Errorf("witness: refusing to sign a report that begins with %q", cosignaturePrefix)
	}
	return s.Signer.Sign(msg)
}

// clockedCosigner makes cosignature/v1 signatures (c2sp.org/tlog-cosignature)
// timestamped by its clock. The name and key hash are the library signer's.
type clockedCosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	now  func() time.Time
}

func (s *clockedCosigner) Name() string    { return s.name }
func (s *clockedCosigner) KeyHash() uint32 { return s.hash }

// Sign returns timestamp || Ed25519("cosignature/v1\ntime <timestamp>\n" || msg),
// the timestamp in seconds, big-endian.
func (s *clockedCosigner) Sign(msg []byte) ([]byte, error) {
	t := s.now().Unix()
	if t < 0 {
		return nil, fmt.Errorf("witness: clock before 1970 (%d)", t)
	}
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n", t)
	m = append(m, msg...)
	sig := binary.BigEndian.AppendUint64(make([]byte, 0, 8+ed25519.SignatureSize), uint64(t))
	return append(sig, ed25519.Sign(s.key, m)...), nil
}
