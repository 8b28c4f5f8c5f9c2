package auditlog

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

const testHash = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="

func TestParseCheckpoint(t *testing.T) {
	text := "example.com/behind-the-sofa\n20852163\n" + testHash + "\n"
	c, err := ParseCheckpoint([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin != "example.com/behind-the-sofa" || c.Size != 20852163 || c.Hash.String() != testHash {
		t.Fatalf("parsed %+v", c)
	}
	if got := string(c.Marshal()); got != text {
		t.Fatalf("Marshal = %q", got)
	}
	ext := text + "ext one\n"
	if c, err := ParseCheckpoint([]byte(ext)); err != nil || len(c.Extensions) != 1 || string(c.Marshal()) != ext {
		t.Fatalf("extension line: %+v, %v", c, err)
	}
	for _, bad := range []string{
		"", "o\n1\n" + testHash, "o\n1\n", "\n1\n" + testHash + "\n", "o\n01\n" + testHash + "\n",
		"o\n-1\n" + testHash + "\n", "o\n1 \n" + testHash + "\n", "o\n18446744073709551615\n" + testHash + "\n",
		"o\n1\n" + testHash[:40] + "\n", "o\n1\nAAAA\n", "o\n1\n" + testHash + "\n\n", "o\n1\n" + strings.TrimSuffix(testHash, "=") + "\n",
	} {
		if c, err := ParseCheckpoint([]byte(bad)); err == nil {
			t.Errorf("ParseCheckpoint(%q) = %+v, want an error", bad, c)
		}
	}
}

func TestOpenCheckpoint(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "clover.example/eu")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	sign := func(text string, signers ...note.Signer) []byte {
		t.Helper()
		b, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := sign("clover.example/eu\n5\n"+testHash+"\n", signer)
	c, err := OpenCheckpoint(good, vkey)
	if err != nil || c.Size != 5 || !bytes.Equal(c.Signed, good) {
		t.Fatalf("OpenCheckpoint = %+v, %v", c, err)
	}

	otherKey, _, _ := note.GenerateKey(rand.Reader, "clover.example/eu")
	other, _ := note.NewSigner(otherKey)
	witnessKey, _, _ := note.GenerateKey(rand.Reader, "witness.example")
	witness, _ := note.NewSigner(witnessKey)
	if _, err := OpenCheckpoint(sign("clover.example/eu\n5\n"+testHash+"\n", signer, witness), vkey); err != nil {
		t.Errorf("a cosignature by an unknown witness must be ignored: %v", err)
	}

	flipped := bytes.Clone(good)
	flipped[len("clover.example/eu\n")] ^= 1 // the size: 5 -> 4
	cases := map[string]struct {
		in   []byte
		want string
	}{
		"flipped body": {flipped, "checkpoint: signature does not verify"},
		"other key":    {sign("clover.example/eu\n5\n"+testHash+"\n", other), "checkpoint: not signed by key clover.example/eu+"},
		"bad origin":   {sign("clover.example/us\n5\n"+testHash+"\n", signer), "checkpoint: origin \"clover.example/us\", want \"clover.example/eu\""},
		"bad size":     {sign("clover.example/eu\n05\n"+testHash+"\n", signer), "checkpoint: size \"05\""},
		"not a note":   {[]byte("hello"), "checkpoint: not a signed note"},
		"too large":    {bytes.Repeat([]byte("a"), maxCheckpointBytes+1), "checkpoint: larger than"},
	}
	for name, c := range cases {
		_, err := OpenCheckpoint(c.in, vkey)
		if !errors.Is(err, ErrVerification) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: OpenCheckpoint = %v, want %q...", name, err, c.want)
		}
	}
	if _, err := OpenCheckpoint(good, "not a key"); err == nil || errors.Is(err, ErrVerification) {
		t.Errorf("bad verifier key: %v", err)
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Add([]byte("o\n20852163\n" + testHash + "\next\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			return
		}
		if again := c.Marshal(); !bytes.Equal(again, b) {
			t.Fatalf("Marshal(ParseCheckpoint(b)) = %q, want %q", again, b)
		}
	})
}

func FuzzOpenCheckpoint(f *testing.F) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "clover.example/eu")
	if err != nil {
		f.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	good, _ := note.Sign(&note.Note{Text: "clover.example/eu\n5\n" + testHash + "\n"}, signer)
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := OpenCheckpoint(b, vkey)
		if err == nil && (c.Origin != "clover.example/eu" || !bytes.Equal(c.Signed, b)) {
			t.Fatalf("accepted %q as %+v", b, c)
		}
	})
}
