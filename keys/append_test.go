package keys

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
)

// oldAAD is the associated data as this package built it before the Append
// functions (fmt.Appendf), kept as the reference they must match byte for
// byte: changing it would make every stored record unreadable.
func oldAAD(kind, site, subject string) []byte {
	return fmt.Appendf(nil, "clover/v1 %s %d:%s %d:%s", kind, len(site), site, len(subject), subject)
}

var aadCases = []struct{ site, subject string }{
	{"ie-dublin", "alice"},
	{"", ""},
	{"no-hamar", "subj-000042"},
	{"ie-dublin a", "lice"},
	{"s", string(bytes.Repeat([]byte("é"), 300))},
	{"a:b 1:c", "\x00\xff"},
}

func TestAppendAADKnownAnswer(t *testing.T) {
	if got, want := string(RecordAAD("ie-dublin", "alice")), "clover/v1 record 9:ie-dublin 5:alice"; got != want {
		t.Errorf("RecordAAD = %q, want %q", got, want)
	}
	if got, want := string(KeyAAD("ie-dublin", "alice")), "clover/v1 data-key 9:ie-dublin 5:alice"; got != want {
		t.Errorf("KeyAAD = %q, want %q", got, want)
	}
	prefix := []byte("prefix|")
	for _, c := range aadCases {
		for _, k := range []struct {
			kind   string
			append func([]byte, string, string) []byte
			whole  func(string, string) []byte
		}{{"record", AppendRecordAAD, RecordAAD}, {"data-key", AppendKeyAAD, KeyAAD}} {
			want := oldAAD(k.kind, c.site, c.subject)
			if got := k.whole(c.site, c.subject); !bytes.Equal(got, want) {
				t.Errorf("%s AAD(%q, %q) = %q, want %q", k.kind, c.site, c.subject, got, want)
			}
			got := k.append(bytes.Clone(prefix), c.site, c.subject)
			if !bytes.Equal(got, append(bytes.Clone(prefix), want...)) {
				t.Errorf("Append %s AAD(%q, %q) = %q, want the prefix then %q", k.kind, c.site, c.subject, got, want)
			}
		}
	}
}

// TestOpenToAgreesWithOpen: OpenTo accepts exactly what Open accepts and
// appends the same plaintext, reusing the buffer it is given.
func TestOpenToAgreesWithOpen(t *testing.T) {
	dk, _ := NewDataKey(rand.Reader)
	other, _ := NewDataKey(rand.Reader)
	aad := RecordAAD("ie-dublin", "alice")
	pt := []byte(`{"v":1,"country":"IE","fields":{"email":"a@example.org"}}`)
	ct, err := Seal(dk, pt, aad, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	buf := make([]byte, 0, 4096)
	for name, c := range map[string]struct {
		key, ct, aad []byte
	}{
		"valid":         {dk, ct, aad},
		"other key":     {other, ct, aad},
		"other subject": {dk, ct, RecordAAD("ie-dublin", "bob")},
		"flipped":       {dk, flipped, aad},
		"truncated":     {dk, ct[:10], aad},
		"short key":     {dk[:16], ct, aad},
	} {
		want, wantErr := Open(c.key, c.ct, c.aad)
		got, err := OpenTo(append(buf[:0], "head"...), c.key, c.ct, c.aad)
		if (err == nil) != (wantErr == nil) || errors.Is(err, ErrDecrypt) != errors.Is(wantErr, ErrDecrypt) {
			t.Errorf("%s: OpenTo error %v, Open error %v", name, err, wantErr)
			continue
		}
		if err != nil {
			if got != nil {
				t.Errorf("%s: OpenTo returned %q with its error", name, got)
			}
			continue
		}
		if !bytes.Equal(got, append([]byte("head"), want...)) || !bytes.Equal(want, pt) {
			t.Errorf("%s: OpenTo = %q, Open = %q", name, got, want)
		}
		if &got[0] != &buf[:1][0] {
			t.Errorf("%s: OpenTo did not reuse the buffer it was given", name)
		}
	}
}

// TestUnwrapToAgreesWithUnwrap: UnwrapTo accepts exactly what Unwrap
// accepts, checks the key's size the same way and reuses the buffer.
func TestUnwrapToAgreesWithUnwrap(t *testing.T) {
	k, err := NewFileKEK(bytes.Repeat([]byte{9}, 32), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dk, _ := NewDataKey(rand.Reader)
	aad := KeyAAD("ie-dublin", "alice")
	w, err := k.Wrap(dk, aad)
	if err != nil {
		t.Fatal(err)
	}
	short, err := k.Wrap(dk[:16], aad) // not a data key
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(w)
	flipped[5] ^= 1
	buf := make([]byte, 0, 64)
	for name, c := range map[string]struct {
		wrapped, aad []byte
	}{
		"valid":         {w, aad},
		"other subject": {w, KeyAAD("ie-dublin", "bob")},
		"flipped":       {flipped, aad},
		"16-byte key":   {short, aad},
	} {
		want, wantErr := k.Unwrap(c.wrapped, c.aad)
		got, err := k.UnwrapTo(buf[:0], c.wrapped, c.aad)
		if (err == nil) != (wantErr == nil) || errors.Is(err, ErrDecrypt) != errors.Is(wantErr, ErrDecrypt) {
			t.Errorf("%s: UnwrapTo error %v, Unwrap error %v", name, err, wantErr)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Errorf("%s: error %v, want ErrDecrypt", name, err)
			}
			continue
		}
		if !bytes.Equal(got, want) || !bytes.Equal(got, dk) {
			t.Errorf("%s: UnwrapTo = %x, Unwrap = %x, want %x", name, got, want, dk)
		}
		if &got[0] != &buf[:1][0] {
			t.Errorf("%s: UnwrapTo did not reuse the buffer it was given", name)
		}
	}
}

func BenchmarkAAD(b *testing.B) {
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = AppendRecordAAD(buf[:0], "ie-dublin", "subj-000042")
		buf = AppendKeyAAD(buf[:0], "ie-dublin", "subj-000042")
	}
}
