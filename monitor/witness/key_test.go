package witness

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "witness.key")
	k, err := LoadOrCreateKey(path, "witness.example/w1", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", info.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "PRIVATE+KEY+witness.example/w1+") || !strings.HasSuffix(string(data), "\n") {
		t.Errorf("key file %q is not a note private key line", data)
	}

	again, err := LoadOrCreateKey(path, "witness.example/w1", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if again.CosignerVerifierKey() != k.CosignerVerifierKey() || again.NoteVerifierKey() != k.NoteVerifierKey() {
		t.Error("loading the key again gave another key")
	}
	if k.Name() != "witness.example/w1" {
		t.Errorf("Name = %q", k.Name())
	}

	// The two verifier keys are one Ed25519 key, types 0x01 and 0x04.
	want, err := fnote.VKeyToCosignatureV1(k.NoteVerifierKey())
	if err != nil || want != k.CosignerVerifierKey() {
		t.Errorf("CosignerVerifierKey %q, want %q (%v)", k.CosignerVerifierKey(), want, err)
	}
	for vk, typ := range map[string]byte{k.NoteVerifierKey(): 0x01, k.CosignerVerifierKey(): 0x04} {
		parts := strings.SplitN(vk, "+", 3)
		raw, err := base64.StdEncoding.DecodeString(parts[2])
		if err != nil || len(raw) != 33 || raw[0] != typ {
			t.Errorf("verifier key %q: want type 0x%02x and 32 bytes", vk, typ)
		}
	}

	if _, err := LoadOrCreateKey(path, "witness.example/other", rand.Reader); err == nil {
		t.Error("a key of another name was accepted")
	}
}

func TestKeyFileModeRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "witness.key")
	if _, err := LoadOrCreateKey(path, "w", rand.Reader); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey(path, "w", rand.Reader); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: err = %v, want a refusal", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path, "w", rand.Reader); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestKeyFileDamaged(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":      "",
		"garbage":    "hello\n",
		"vkey":       "w+12345678+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"too large":  strings.Repeat("A", maxKeyFileSize+1),
		"bad base64": "PRIVATE+KEY+w+12345678+!!!!\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateKey(path, "w", rand.Reader); err == nil {
			t.Errorf("%s key file accepted", name)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(filepath.Join(dir, "d"), "w", rand.Reader); err == nil {
		t.Error("a directory was accepted as a key file")
	}
}

func TestConcurrentKeyCreation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "witness.key")
	var wg sync.WaitGroup
	vkeys := make([]string, 8)
	for i := range vkeys {
		wg.Go(func() {
			k, err := LoadOrCreateKey(path, "w", rand.Reader)
			if err != nil {
				t.Error(err)
				return
			}
			vkeys[i] = k.NoteVerifierKey()
		})
	}
	wg.Wait()
	for _, v := range vkeys {
		if v != vkeys[0] {
			t.Fatalf("concurrent creators got different keys: %q", vkeys)
		}
	}
}

// TestClockedCosignerMatchesLibrary checks the witness's cosignature/v1
// signer byte for byte against transparency-dev/formats/note's: Ed25519 is
// deterministic, so at the same timestamp the signatures must be equal.
func TestClockedCosignerMatchesLibrary(t *testing.T) {
	k, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"), "witness.example/w1", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	text := "clover.example/log\n42\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\nextension line\n"
	libSigned, err := note.Sign(&note.Note{Text: text}, k.Cosigner())
	if err != nil {
		t.Fatal(err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(k.CosignerVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(libSigned, note.VerifierList(v))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil {
		t.Fatal(err)
	}
	ours, err := note.Sign(&note.Note{Text: text}, k.cosignerAt(func() time.Time { return ts }))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, libSigned) {
		t.Errorf("witness cosignature\n%q\nlibrary cosignature\n%q", ours, libSigned)
	}
	// Before 1970 there is no timestamp.
	if _, err := k.cosignerAt(func() time.Time { return time.Unix(-1, 0) }).Sign([]byte(text)); err == nil {
		t.Error("signed with a negative timestamp")
	}
}

func TestNoteSigner(t *testing.T) {
	k, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"), "witness.example/w1", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(k.NoteVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	report := "clover monitor report v1\nall good\n"
	signed, err := note.Sign(&note.Note{Text: report}, k.NoteSigner())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := note.Open(signed, note.VerifierList(v)); err != nil || n.Text != report {
		t.Fatalf("report signature does not verify: %v", err)
	}
	// Tampering.
	forged := bytes.Replace(signed, []byte("all good"), []byte("all bad!"), 1)
	if _, err := note.Open(forged, note.VerifierList(v)); err == nil {
		t.Error("tampered report verified")
	}
	// A report signature must never be a cosignature: the signer refuses.
	cosigMsg := "cosignature/v1\ntime 1790000000\nclover.example/log\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"
	if _, err := note.Sign(&note.Note{Text: cosigMsg}, k.NoteSigner()); err == nil {
		t.Error("the report signer signed a cosignature/v1 message")
	}
}
