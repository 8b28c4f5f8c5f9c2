package pseudonym

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cloverenclave/clover/schema"
)

// FuzzFF1RoundTrip checks that Decrypt inverts Encrypt for every valid input,
// that the ciphertext stays in the domain, and that no input panics.
func FuzzFF1RoundTrip(f *testing.F) {
	for _, s := range ff1Samples {
		f.Add(uint8(len(s.key)/2), uint8(s.radix), []byte(s.tweak), s.pt)
	}
	f.Add(uint8(16), uint8(10), []byte{}, "12345")
	f.Add(uint8(32), uint8(2), []byte("t"), strings.Repeat("01", 30))
	f.Add(uint8(24), uint8(36), []byte("scope"), "ZZ top")
	keys := map[int][]byte{16: mustHex(f, ff1Key128), 24: mustHex(f, ff1Key192), 32: mustHex(f, ff1Key256)}
	f.Fuzz(func(t *testing.T, keyLen, radix uint8, tweak []byte, x string) {
		key, ok := keys[int(keyLen)]
		if !ok {
			key = keys[16][:keyLen%17]
		}
		c, err := NewFF1(key, int(radix), tweak)
		if err != nil {
			return
		}
		ct, err := c.Encrypt(x)
		if _, derr := c.Decrypt(x); (err == nil) != (derr == nil) {
			t.Fatalf("Encrypt and Decrypt disagree on validity: %v / %v", err, derr)
		}
		if err != nil {
			if !errors.Is(err, ErrDomain) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(ct) != len(x) || strings.Trim(ct, ff1Alphabet[:radix]) != "" {
			t.Fatalf("ciphertext %q left the domain", ct)
		}
		pt, err := c.Decrypt(ct)
		if err != nil || pt != x {
			t.Fatalf("Decrypt(Encrypt(%q)) = %q, %v", x, pt, err)
		}
		if c.Radix() == 10 {
			if p, err := Phone(c, x); err == nil {
				if back, err := DecryptPhone(c, p); err != nil || back != x {
					t.Fatalf("phone round trip: %q, %v", back, err)
				}
			}
		}
	})
}

// FuzzSIVOpen checks that Open never panics and accepts only what Seal made.
func FuzzSIVOpen(f *testing.F) {
	s := newTestSIV(f)
	f.Add("s", s.Seal("s", []byte("value")))
	f.Add("s", SIVPrefix)
	f.Add("", "sv_AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, scope, token string) {
		v, err := s.Open(scope, token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if s.Seal(scope, v) != token {
			t.Fatalf("Open accepted a token Seal would not make")
		}
	})
}

// FuzzTransform checks that no value, in any field of the default schema
// and any form, panics or yields invalid JSON.
func FuzzTransform(f *testing.F) {
	tr := newTestTransformer(f)
	fields := schema.Default()
	fields = append(fields,
		schema.Field{Name: "n", Type: "integer", Category: "content", Method: "ff1"},
		schema.Field{Name: "s", Type: "string", Category: "content", Method: "ff1"},
		schema.Field{Name: "x", Type: "number", Category: "content", Method: "hmac"},
		schema.Field{Name: "b", Type: "boolean", Category: "content", Method: "siv"},
		schema.Field{Name: "d", Type: "date", Category: "content", Method: "year"},
	)
	forms := []Form{Raw, Pseudonym, Generalised, Masked, Withheld}
	for _, v := range testRecord {
		f.Add(uint8(0), uint8(1), v)
	}
	f.Add(uint8(13), uint8(1), "123456789012")
	f.Add(uint8(14), uint8(1), `"AB-12-cd-34"`)
	f.Fuzz(func(t *testing.T, fi, fo uint8, value string) {
		field := fields[int(fi)%len(fields)]
		form := forms[int(fo)%len(forms)]
		out, err := tr.Transform(field, form, json.RawMessage(value), testScope, testNow)
		if err != nil || form == Withheld {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output %q is not JSON", out)
		}
	})
}
