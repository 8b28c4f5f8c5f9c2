package report

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

type testKey struct {
	signer note.Signer
	vkey   string
}

func newKey(t testing.TB, name string) testKey {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{s, vkey}
}

// signed returns a report of d in format, and its signature by k.
func signed(t testing.TB, k testKey, format string) (Data, []byte, []byte) {
	t.Helper()
	d := sample()
	d.MonitorKey = k.vkey
	render := JSON
	if format == FormatHTML {
		render = HTML
	}
	report, err := render(d)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign(report, format, d, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return d, report, sig
}

func TestSignVerify(t *testing.T) {
	k := newKey(t, "monitor.example")
	for _, format := range []string{FormatJSON, FormatHTML} {
		t.Run(format, func(t *testing.T) {
			d, report, sig := signed(t, k, format)
			sum := sha256.Sum256(report)
			text := "clover-monitor-report/v1\n" + format + "\n" + hex.EncodeToString(sum[:]) +
				"\n2026-11-01T00:00:00Z\n2026-12-01T00:00:00Z\nclover.example/log\n\n— monitor.example "
			if !bytes.HasPrefix(sig, []byte(text)) {
				t.Errorf("signature note:\n%s\nwant it to start with:\n%s", sig, text)
			}
			got, err := Verify(report, sig, k.vkey)
			if err != nil {
				t.Fatal(err)
			}
			want := Signed{Format: format, SHA256: hex.EncodeToString(sum[:]), From: d.From, To: d.To, Log: d.Log, Signer: "monitor.example"}
			if *got != want {
				t.Errorf("Verify = %+v, want %+v", *got, want)
			}
		})
	}
}

// TestSignKnownAnswer pins the signed note for a fixed key: Ed25519
// signatures are deterministic, so any change to the note's text or
// encoding shows here. The signature was checked independently with
// Python's cryptography package (Ed25519 seed of 32 zero bytes, key hash
// SHA-256("monitor.example\n" || 0x01 || public key)[:4]).
func TestSignKnownAnswer(t *testing.T) {
	skey, vkey, err := note.GenerateKey(bytes.NewReader(make([]byte, 32)), "monitor.example")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	d := Data{Monitor: "monitor.example", MonitorKey: vkey, Log: "clover.example/log",
		From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	sig, err := Sign([]byte("report"), FormatJSON, d, signer)
	if err != nil {
		t.Fatal(err)
	}
	const want = knownAnswer
	if string(sig) != want {
		t.Errorf("signature of a fixed report by a fixed key:\n%s\nwant:\n%s", sig, want)
	}
	if _, err := Verify([]byte("report"), []byte(want), vkey); err != nil {
		t.Errorf("known answer does not verify: %v", err)
	}
}

const knownAnswer = "clover-monitor-report/v1\n" +
	"json\n" +
	"845e91831319e89c4d656bdb80c278ac09a7230d61e5dfd2e1b1fbb436ac8917\n" + // sha256sum of "report" +
	"2026-11-01T00:00:00Z\n" +
	"2026-12-01T00:00:00Z\n" +
	"clover.example/log\n" +
	"\n" +
	"— monitor.example 3KS0qaRsIJmPB6Q5jORIv2B1bHYnZV4Ptl5KJ5MOUwhKA2YObtReR73ugXIXV6/1Amv53o/2FR9UjCHfFmUDYT88SAw=\n"

func TestVerifyTampering(t *testing.T) {
	k := newKey(t, "monitor.example")
	_, report, sig := signed(t, k, FormatJSON)
	sum := sha256.Sum256(report)
	digest := hex.EncodeToString(sum[:])

	flipped := bytes.Clone(report)
	flipped[len(flipped)/2] ^= 1
	flippedSum := sha256.Sum256(flipped)

	// One byte of the signed text changed: the last digit of the digest.
	textChanged := bytes.Clone(sig)
	i := bytes.Index(textChanged, []byte(digest)) + len(digest) - 1
	textChanged[i] = "01"[boolToInt(textChanged[i] == '0')]

	// One byte of the period changed: the note is no longer the one signed.
	periodChanged := bytes.Replace(sig, []byte("2026-11-01"), []byte("2026-10-01"), 1)

	other := newKey(t, "monitor.example") // same name, another key
	_, _, otherSig := signed(t, other, FormatJSON)
	stranger := newKey(t, "stranger.example")
	d := sample()
	d.Monitor, d.MonitorKey = "stranger.example", stranger.vkey
	strangerSig, err := Sign(report, FormatJSON, d, stranger.signer)
	if err != nil {
		t.Fatal(err)
	}

	// A valid note by the right key that is not a report signature.
	notReport, err := note.Sign(&note.Note{Text: "clover.example/log\n42\nAAAA\n"}, k.signer)
	if err != nil {
		t.Fatal(err)
	}

	// The same signature with a padding bit of its base64 set.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	padded := bytes.Clone(sig)
	last := len(padded) - len("=\n") - 1
	padded[last] = alphabet[strings.IndexByte(alphabet, padded[last])^1]

	badSig := "signature does not verify with key monitor.example"
	tests := []struct {
		name        string
		report, sig []byte
		want        string
		is          func(error) bool
	}{
		{"report byte changed", flipped, sig,
			"report digest " + hex.EncodeToString(flippedSum[:]) + " differs from signed digest " + digest, isDigest},
		{"other report", []byte("{}"), sig, "report digest 44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a differs from signed digest " + digest, isDigest},
		{"note text changed", report, textChanged, badSig, isSignature},
		{"period changed", report, periodChanged, badSig, isSignature},
		{"signed by another key of the same name", report, otherSig, badSig, isSignature},
		{"signed by another monitor", report, strangerSig, badSig, isSignature},
		{"padding bit set", report, padded, "not a clover monitor report signature: signature line 1 is not canonical base64", isNot},
		{"garbage", report, []byte("garbage"), "not a clover monitor report signature: malformed note", isNot},
		{"empty", report, nil, "not a clover monitor report signature: malformed note", isNot},
		{"binary", report, []byte{0, 1, 2, 0xff, '\n', '\n'}, "not a clover monitor report signature: malformed note", isNot},
		{"report as signature", report, report, "not a clover monitor report signature: malformed note", isNot},
		{"signature of something else", report, notReport, "not a clover monitor report signature: signed text has 3 lines, want 6", isNot},
		{"too large", report, bytes.Repeat([]byte("a"), MaxSignatureSize+1), "not a clover monitor report signature: file is 16385 bytes, more than 16384", isNot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Verify(tt.report, tt.sig, k.vkey)
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", s)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if !tt.is(err) {
				t.Errorf("error %q is of the wrong kind (%T)", err, err)
			}
		})
	}

	// Every truncation of the signature file fails as not a signature.
	for n := range len(sig) {
		_, err := Verify(report, sig[:n], k.vkey)
		if !isNot(err) {
			t.Fatalf("signature truncated to %d of %d bytes: error %v", n, len(sig), err)
		}
	}
	// So does every single-bit change of the signature line.
	line := bytes.Index(sig, []byte("\n\n")) + 2
	for i := line; i < len(sig); i++ {
		for bit := range 8 {
			bad := bytes.Clone(sig)
			bad[i] ^= 1 << bit
			if s, err := Verify(report, bad, k.vkey); err == nil {
				t.Fatalf("byte %d bit %d of the signature line flipped: Verify accepted it: %+v", i, bit, s)
			}
		}
	}
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isDigest(err error) bool    { var e *DigestError; return errors.As(err, &e) }
func isSignature(err error) bool { var e *SignatureError; return errors.As(err, &e) }
func isNot(err error) bool       { return errors.Is(err, ErrNotSignature) }

func TestVerifyBadKey(t *testing.T) {
	k := newKey(t, "monitor.example")
	_, report, sig := signed(t, k, FormatHTML)
	if _, err := Verify(report, sig, "monitor.example+123"); err == nil || !strings.Contains(err.Error(), `verifier key "monitor.example+123"`) {
		t.Errorf("Verify with a malformed key: %v", err)
	}
}

// TestVerifyText checks that only the exact text Sign writes is accepted,
// even when the right key signed it.
func TestVerifyText(t *testing.T) {
	k := newKey(t, "monitor.example")
	report := []byte("report")
	sum := sha256.Sum256(report)
	digest := hex.EncodeToString(sum[:])
	tests := []struct{ name, text, want string }{
		{"other version", "clover-monitor-report/v2\njson\n" + digest + "\n2026-11-01T00:00:00Z\n2026-12-01T00:00:00Z\nlog\n", `signed text starts with "clover-monitor-report/v2"`},
		{"other format", "clover-monitor-report/v1\npdf\n" + digest + "\n2026-11-01T00:00:00Z\n2026-12-01T00:00:00Z\nlog\n", `report format "pdf" is not`},
		{"upper-case digest", "clover-monitor-report/v1\njson\n" + strings.ToUpper(digest) + "\n2026-11-01T00:00:00Z\n2026-12-01T00:00:00Z\nlog\n", "is not 64 lowercase hex digits"},
		{"short digest", "clover-monitor-report/v1\njson\nabcd\n2026-11-01T00:00:00Z\n2026-12-01T00:00:00Z\nlog\n", "is not 64 lowercase hex digits"},
		{"zoned time", "clover-monitor-report/v1\njson\n" + digest + "\n2026-11-01T01:00:00+01:00\n2026-12-01T00:00:00Z\nlog\n", `period start "2026-11-01T01:00:00+01:00" is not an RFC 3339 time in UTC`},
		{"reversed period", "clover-monitor-report/v1\njson\n" + digest + "\n2026-12-01T00:00:00Z\n2026-11-01T00:00:00Z\nlog\n", "is not before its end"},
		{"no log", "clover-monitor-report/v1\njson\n" + digest + "\n2026-11-01T00:00:00Z\n2026-12-01T00:00:00Z\n\n", "log origin is empty"},
		{"extra line", "clover-monitor-report/v1\njson\n" + digest + "\n2026-11-01T00:00:00Z\n2026-12-01T00:00:00Z\nlog\nmore\n", "signed text has 7 lines, want 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig, err := note.Sign(&note.Note{Text: tt.text}, k.signer)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Verify(report, sig, k.vkey)
			if !isNot(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrNotSignature containing %q", err, tt.want)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	k := newKey(t, "monitor.example")
	other := newKey(t, "monitor.example")
	tests := []struct {
		name   string
		format string
		change func(*Data)
		want   string
	}{
		{"unknown format", "pdf", func(*Data) {}, `format "pdf" is not "json" or "html"`},
		{"other monitor name", FormatJSON, func(d *Data) { d.Monitor = "other.example" }, `report names monitor "other.example" but the signer key is "monitor.example"`},
		{"other monitor key", FormatJSON, func(d *Data) { d.MonitorKey = other.vkey }, "but the signer key is monitor.example+"},
		{"malformed monitor key", FormatJSON, func(d *Data) { d.MonitorKey = "nonsense" }, `monitor key "nonsense"`},
		{"fractional period", FormatJSON, func(d *Data) { d.To = d.To.Add(time.Millisecond) }, "whole seconds"},
		{"invalid data", FormatJSON, func(d *Data) { d.Log = "" }, "log origin is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := sample()
			d.MonitorKey = k.vkey
			tt.change(&d)
			if _, err := Sign([]byte("r"), tt.format, d, k.signer); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Sign: error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := Sign([]byte("r"), FormatJSON, sample(), nil); err == nil {
		t.Error("Sign with no signer succeeded")
	}
}

// FuzzVerify checks that Verify never panics on a signature file, fails
// with one of its three kinds of error, and accepts only a note that names
// the report's exact digest.
func FuzzVerify(f *testing.F) {
	k := newKey(f, "monitor.example")
	_, report, sig := signed(f, k, FormatJSON)
	f.Add(sig)
	f.Add(sig[:len(sig)-3])
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Verify(report, b, k.vkey)
		if err != nil {
			if !isNot(err) && !isSignature(err) && !isDigest(err) {
				t.Fatalf("error of an unexpected kind %T: %v", err, err)
			}
			return
		}
		sum := sha256.Sum256(report)
		if s.SHA256 != hex.EncodeToString(sum[:]) || s.Signer != "monitor.example" || !s.From.Before(s.To) {
			t.Fatalf("Verify accepted %q as %+v", b, s)
		}
	})
}
