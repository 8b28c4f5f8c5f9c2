package pseudonym

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func newDecimalFF1(t testing.TB) *FF1 {
	t.Helper()
	f, err := NewFF1(mustHex(t, ff1Key128), 10, []byte("purpose:support"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// digitsOnly keeps the digits of s.
func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if '0' <= r && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// shape replaces every digit with 'd'.
func shape(s string) string {
	return strings.Map(func(r rune) rune {
		if '0' <= r && r <= '9' {
			return 'd'
		}
		return r
	}, s)
}

func TestPhone(t *testing.T) {
	f := newDecimalFF1(t)
	for _, phone := range []string{"+353 87 123 4567", "(01) 234-5678", "+1-202-555-0143", "123456", "+44 (0)20 7946 0958"} {
		enc, err := Phone(f, phone)
		if err != nil {
			t.Fatalf("Phone: %v", err)
		}
		if shape(enc) != shape(phone) {
			t.Errorf("shape changed: %q -> %q", shape(phone), shape(enc))
		}
		// The digits are exactly FF1 of the digits.
		want, err := f.Encrypt(digitsOnly(phone))
		if err != nil || digitsOnly(enc) != want {
			t.Errorf("digits %q, want %q (%v)", digitsOnly(enc), want, err)
		}
		dec, err := DecryptPhone(f, enc)
		if err != nil || dec != phone {
			t.Errorf("DecryptPhone = %q, %v; want %q", dec, err, phone)
		}
	}
}

func TestPhoneKnownAnswer(t *testing.T) {
	// NIST FF1 sample 2 (AES-128, radix 10, tweak "9876543210") carried
	// through the phone format: the digits 0123456789 become 6124200773.
	f, err := NewFF1(mustHex(t, ff1Key128), 10, mustHex(t, "39383736353433323130"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Phone(f, "+0 (12) 345-6789")
	if err != nil || got != "+6 (12) 420-0773" {
		t.Fatalf("Phone = %q, %v; want %q", got, err, "+6 (12) 420-0773")
	}
}

func TestPhoneErrors(t *testing.T) {
	f := newDecimalFF1(t)
	for _, phone := range []string{"", "12345", "+1 (234) 5", "12345x678", "+353 87 123 4567 ext", "１２３４５６７"} {
		if _, err := Phone(f, phone); !errors.Is(err, ErrDomain) {
			t.Errorf("Phone(%d bytes): err = %v, want ErrDomain", len(phone), err)
		}
	}
	hexFF1, err := NewFF1(mustHex(t, ff1Key128), 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Phone(hexFF1, "+353 87 123 4567"); err == nil {
		t.Error("Phone accepted a radix-16 cipher")
	}
}

func TestEncryptEmbedded(t *testing.T) {
	f, err := NewFF1(mustHex(t, ff1Key256), 36, []byte("scope"))
	if err != nil {
		t.Fatal(err)
	}
	in := "ab-12 cd/34 ÉX" // 'É' and 'X' are not numerals of radix 36
	enc, err := f.EncryptEmbedded(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != len(in) || enc[2] != '-' || enc[5] != ' ' || !strings.HasSuffix(enc, "ÉX") {
		t.Fatalf("layout changed: %q", enc)
	}
	if dec, err := f.DecryptEmbedded(enc); err != nil || dec != in {
		t.Fatalf("DecryptEmbedded = %q, %v", dec, err)
	}
	if _, err := f.EncryptEmbedded("a-b-c"); !errors.Is(err, ErrDomain) {
		t.Fatalf("three numerals: err = %v", err)
	}
}

func TestEncryptInt(t *testing.T) {
	f := newDecimalFF1(t)
	rng := rand.New(rand.NewPCG(7, 8))
	cases := []int64{0, 1, -1, 42, 999_999, -999_999, 1_000_000, 123_456_789, -123_456_789,
		999_999_999_999_999_999, 1_000_000_000_000_000_000, math.MaxInt64, -math.MaxInt64}
	for range 200 {
		cases = append(cases, rng.Int64()>>rng.IntN(63)*int64(1-2*rng.IntN(2)))
	}
	for _, n := range cases {
		enc, err := f.EncryptInt(n)
		if err != nil {
			t.Fatalf("EncryptInt: %v", err)
		}
		if (n < 0) != (enc < 0) {
			t.Errorf("sign changed for %d", n)
		}
		if magnitudeDigits(n) != magnitudeDigits(enc) {
			t.Errorf("%d has %d digits, encrypted %d has %d", n, magnitudeDigits(n), enc, magnitudeDigits(enc))
		}
		if dec, err := f.DecryptInt(enc); err != nil || dec != n {
			t.Errorf("DecryptInt(EncryptInt(%d)) = %d, %v", n, dec, err)
		}
	}
	if _, err := f.EncryptInt(math.MinInt64); !errors.Is(err, ErrDomain) {
		t.Errorf("MinInt64: err = %v", err)
	}
}

// magnitudeDigits counts the digits of |n|, at least 6 (the small domain).
func magnitudeDigits(n int64) int {
	if n < 0 {
		n = -n
	}
	d := 0
	for ; n > 0; n /= 10 {
		d++
	}
	return max(d, 6)
}
