package keys

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSealKnownAnswer checks Seal against test case 14 of the GCM
// specification (McGrew & Viega): AES-256, zero key, zero IV, one zero block.
func TestSealKnownAnswer(t *testing.T) {
	key := make([]byte, 32)
	got, err := Seal(key, make([]byte, 16), nil, zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte{1}, make([]byte, 12)...)
	want = append(want, mustHex(t, "cea7403d4d606b6e074ec5d3baf39d18"+"d0d1c8a799996bf0265b98b5d48ab919")...)
	if !bytes.Equal(got, want) {
		t.Fatalf("Seal = %x, want %x", got, want)
	}
	pt, err := Open(key, got, nil)
	if err != nil || !bytes.Equal(pt, make([]byte, 16)) {
		t.Fatalf("Open = %x, %v", pt, err)
	}
}

func TestOpenRejectsTamperingAndRebinding(t *testing.T) {
	dk, _ := NewDataKey(rand.Reader)
	aad := RecordAAD("ie-dublin", "alice")
	ct, err := Seal(dk, []byte(`{"email":"a@example.com"}`), aad, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewDataKey(rand.Reader)
	cases := map[string]struct {
		key, ct, aad []byte
	}{
		"other subject":    {dk, ct, RecordAAD("ie-dublin", "bob")},
		"other site":       {dk, ct, RecordAAD("no-hamar", "alice")},
		"other key":        {other, ct, aad},
		"truncated":        {dk, ct[:10], aad},
		"empty":            {dk, nil, aad},
		"bad version":      {dk, append([]byte{9}, ct[1:]...), aad},
		"flipped nonce":    {dk, flip(ct, 3), aad},
		"flipped body":     {dk, flip(ct, 20), aad},
		"flipped tag":      {dk, flip(ct, len(ct)-1), aad},
		"length confusion": {dk, ct, RecordAAD("ie-dublin a", "lice")},
	}
	for name, c := range cases {
		if _, err := Open(c.key, c.ct, c.aad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: Open err = %v, want ErrDecrypt", name, err)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func TestFileKEKCreateLoadWrap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek", "ie-dublin.key")
	k1, err := LoadOrCreateFileKEK(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %04o, want 0600", info.Mode().Perm())
	}
	k2, err := LoadOrCreateFileKEK(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID() != k2.ID() {
		t.Fatalf("reloaded KEK has id %s, want %s", k2.ID(), k1.ID())
	}
	dk, _ := NewDataKey(rand.Reader)
	w, err := k1.Wrap(dk, KeyAAD("ie-dublin", "alice"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := k2.Unwrap(w, KeyAAD("ie-dublin", "alice"))
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Unwrap = %x, %v; want %x", got, err, dk)
	}
	if _, err := k2.Unwrap(w, KeyAAD("ie-dublin", "bob")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Unwrap for another subject: err = %v, want ErrDecrypt", err)
	}
	k3, _ := LoadOrCreateFileKEK(filepath.Join(t.TempDir(), "other.key"), rand.Reader)
	if _, err := k3.Unwrap(w, KeyAAD("ie-dublin", "alice")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("Unwrap with another KEK: err = %v, want ErrDecrypt", err)
	}
}

func TestFileKEKRefusesOpenPermissionsAndGarbage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.key")
	if _, err := LoadOrCreateFileKEK(path, rand.Reader); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFileKEK(path, rand.Reader); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("clover-kek-v1 c2hvcnQ=\n"), 0o600)
	if _, err := LoadFileKEK(bad, rand.Reader); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestConcurrentCreateAgreesOnOneKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.key")
	ids := make([]string, 8)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreateFileKEK(path, rand.Reader)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = k.ID()
		}()
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("concurrent creators got different keys: %v", ids)
		}
	}
}

func BenchmarkOpen1KB(b *testing.B) {
	dk, _ := NewDataKey(rand.Reader)
	aad := RecordAAD("ie-dublin", "alice")
	ct, _ := Seal(dk, make([]byte, 1024), aad, rand.Reader)
	for b.Loop() {
		if _, err := Open(dk, ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrap(b *testing.B) {
	k, _ := NewFileKEK(make([]byte, 32), rand.Reader)
	dk, _ := NewDataKey(rand.Reader)
	w, _ := k.Wrap(dk, KeyAAD("s", "x"))
	for b.Loop() {
		if _, err := k.Unwrap(w, KeyAAD("s", "x")); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSecretAndDerivation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pseudonym.key")
	root, err := LoadOrCreateSecret(path, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := LoadOrCreateSecret(path, rand.Reader)
	if !bytes.Equal(root, again) {
		t.Fatal("the secret changed on reload")
	}
	if _, err := LoadFileKEK(path, rand.Reader); err == nil {
		t.Fatal("a secret file was accepted as a KEK")
	}
	a, _ := DeriveKey(root, "pseudonym/hmac", 32)
	b, _ := DeriveKey(root, "pseudonym/siv", 64)
	if len(a) != 32 || len(b) != 64 || bytes.Equal(a, b[:32]) {
		t.Fatalf("derived keys are not independent: %x %x", a, b)
	}
}

// TestDeriveKeyKnownAnswer pins HKDF-SHA256 with RFC 5869 test case 3's
// key material (no salt, empty info is replaced by our label) against an
// independent computation: extract with HMAC(zeros, ikm), expand one block.
func TestDeriveKeyKnownAnswer(t *testing.T) {
	ikm := mustHex(t, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")
	got, err := DeriveKey(ikm, "x", 32)
	if err != nil {
		t.Fatal(err)
	}
	prk := hmacSHA256(make([]byte, 32), ikm)
	want := hmacSHA256(prk, append([]byte("clover/v1 x"), 1))
	if !bytes.Equal(got, want) {
		t.Fatalf("DeriveKey = %x, want %x", got, want)
	}
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
