package incident

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	testSecret = []byte("0123456789abcdef")
	signedAt   = time.Unix(1767323045, 0)
)

// TestSignKnownAnswer checks Sign against a vector computed with Python's
// hmac module: hmac.new(secret, b"1767323045." + body, hashlib.sha256).
func TestSignKnownAnswer(t *testing.T) {
	got := Sign(testSecret, signedAt, []byte(`{"id":1}`))
	const want = "t=1767323045,v1=74c49cce1fb3da712728be36bda4001049f3527f2196f1b07b7bc970f76edc17"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	if err := VerifySignature(testSecret, want, []byte(`{"id":1}`), signedAt, 0); err != nil {
		t.Errorf("VerifySignature(known answer) = %v", err)
	}
}

func TestVerifySignatureTampering(t *testing.T) {
	body := []byte(`{"id":1,"delivery":2,"incident":{}}`)
	header := Sign(testSecret, signedAt, body)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	otherBody := append([]byte(nil), body...)
	otherBody[5] ^= 1
	tests := []struct {
		name    string
		secret  []byte
		header  string
		body    []byte
		now     time.Time
		tol     time.Duration
		wantErr error
	}{
		{"valid", testSecret, header, body, signedAt.Add(4 * time.Minute), 0, nil},
		{"body byte flipped", testSecret, header, otherBody, signedAt, 0, ErrSignatureMismatch},
		{"body truncated", testSecret, header, body[:len(body)-1], signedAt, 0, ErrSignatureMismatch},
		{"mac flipped", testSecret, flip(header, len(header)-1), body, signedAt, 0, ErrSignatureMismatch},
		{"time changed", testSecret, strings.Replace(header, "t=1767323045", "t=1767323046", 1), body, signedAt, 0, ErrSignatureMismatch},
		{"other secret", []byte("fedcba9876543210"), header, body, signedAt, 0, ErrSignatureMismatch},
		{"too old", testSecret, header, body, signedAt.Add(5*time.Minute + time.Second), 0, ErrSignatureExpired},
		{"from the future", testSecret, header, body, signedAt.Add(-6 * time.Minute), 0, ErrSignatureExpired},
		{"tolerance option", testSecret, header, body, signedAt.Add(30 * time.Second), 10 * time.Second, ErrSignatureExpired},
		{"upper-case hex", testSecret, strings.ToUpper(header[:2]) + header[2:], body, signedAt, 0, ErrSignatureMalformed},
		{"upper-case mac", testSecret, header[:17] + strings.ToUpper(header[17:]), body, signedAt, 0, ErrSignatureMalformed},
		{"space", testSecret, strings.Replace(header, ",", ", ", 1), body, signedAt, 0, ErrSignatureMalformed},
		{"leading zero", testSecret, "t=0" + header[2:], body, signedAt, 0, ErrSignatureMalformed},
		{"fields swapped", testSecret, header[strings.Index(header, ",")+1:] + "," + header[:strings.Index(header, ",")], body, signedAt, 0, ErrSignatureMalformed},
		{"short mac", testSecret, header[:len(header)-2], body, signedAt, 0, ErrSignatureMalformed},
		{"empty", testSecret, "", body, signedAt, 0, ErrSignatureMalformed},
		{"signed time", testSecret, "t=-1" + header[12:], body, signedAt, 0, ErrSignatureMalformed},
		{"huge time", testSecret, "t=99999999999999999999" + header[12:], body, signedAt, 0, ErrSignatureMalformed},
		{"second v1", testSecret, header + ",v1=" + strings.Repeat("0", 64), body, signedAt, 0, ErrSignatureMalformed},
	}
	for _, tc := range tests {
		err := VerifySignature(tc.secret, tc.header, tc.body, tc.now, tc.tol)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%s: VerifySignature = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
}

func TestValidateTarget(t *testing.T) {
	tests := []struct {
		t  Target
		ok bool
	}{
		{Target{Name: "ops", URL: "https://hooks.example/clover", Secret: testSecret}, true},
		{Target{Name: "ops", URL: "http://10.0.0.1:8080/x", Secret: testSecret}, true},
		{Target{Name: "", URL: "https://hooks.example/clover", Secret: testSecret}, false},
		{Target{Name: "ops", URL: "ftp://hooks.example/clover", Secret: testSecret}, false},
		{Target{Name: "ops", URL: "https:///clover", Secret: testSecret}, false},
		{Target{Name: "ops", URL: "hooks.example/clover", Secret: testSecret}, false},
		{Target{Name: "ops", URL: "https://hooks.example/%zz", Secret: testSecret}, false},
		{Target{Name: "ops", URL: "https://hooks.example/clover", Secret: testSecret[:15]}, false},
	}
	for _, tc := range tests {
		err := ValidateTarget(tc.t)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("ValidateTarget(%q, %q, %d-byte secret) = %v, want ok=%v", tc.t.Name, tc.t.URL, len(tc.t.Secret), err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), string(tc.t.Secret)) {
			t.Errorf("error %q quotes the secret", err)
		}
	}
}

// FuzzVerifySignature checks that header parsing never panics, that a
// header Sign made always verifies, and that any header that verifies is
// exactly the one Sign makes for its time (one encoding only).
func FuzzVerifySignature(f *testing.F) {
	body := []byte(`{"id":1}`)
	f.Add(Sign(testSecret, signedAt, body), int64(1767323045), body)
	f.Add("t=1767323045,v1=", int64(0), []byte{})
	f.Add("t=,v1=00", int64(-1), []byte("x"))
	f.Add("v1=00,t=1", int64(1), []byte("x"))
	f.Fuzz(func(t *testing.T, header string, sec int64, body []byte) {
		if sec < 0 {
			sec = -(sec + 1) // signatures are made after 1970
		}
		now := time.Unix(sec, 0)
		if err := VerifySignature(testSecret, header, body, now, time.Hour); err == nil {
			ts, _, _ := strings.Cut(strings.TrimPrefix(header, "t="), ",")
			n, err := strconv.ParseInt(ts, 10, 64)
			if err != nil {
				t.Fatalf("header %q verified with time %q", header, ts)
			}
			if want := Sign(testSecret, time.Unix(n, 0), body); header != want {
				t.Fatalf("header %q verified but Sign makes %q", header, want)
			}
		}
		signed := Sign(testSecret, now, body)
		if err := VerifySignature(testSecret, signed, body, now, time.Hour); err != nil {
			t.Fatalf("VerifySignature(Sign(...)) = %v", err)
		}
	})
}
