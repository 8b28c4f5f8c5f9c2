package pseudonym

import (
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// NIST FF1 sample vectors: "FF1samples.pdf", NIST Cryptographic Standards
// and Guidelines, Examples with Intermediate Values (Samples 1-9), for
// SP 800-38G. Keys are those of the samples; tweaks are hex.
var ff1Samples = []struct {
	name   string
	key    string
	radix  int
	tweak  string
	pt, ct string
}{
	{"sample1/AES-128/radix10", ff1Key128, 10, "", "0123456789", "2433477484"},
	{"sample2/AES-128/radix10/tweak", ff1Key128, 10, "39383736353433323130", "0123456789", "6124200773"},
	{"sample3/AES-128/radix36/tweak", ff1Key128, 36, "3737373770717273373737", "0123456789abcdefghi", "a9tv40mll9kdu509eum"},
	{"sample4/AES-192/radix10", ff1Key192, 10, "", "0123456789", "2830668132"},
	{"sample5/AES-192/radix10/tweak", ff1Key192, 10, "39383736353433323130", "0123456789", "2496655549"},
	{"sample6/AES-192/radix36/tweak", ff1Key192, 36, "3737373770717273373737", "0123456789abcdefghi", "xbj3kv35jrawxv32ysr"},
	{"sample7/AES-256/radix10", ff1Key256, 10, "", "0123456789", "6657667009"},
	{"sample8/AES-256/radix10/tweak", ff1Key256, 10, "39383736353433323130", "0123456789", "1001623463"},
	{"sample9/AES-256/radix36/tweak", ff1Key256, 36, "3737373770717273373737", "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"},
}

const (
	ff1Key128 = "2b7e151628aed2a6abf7158809cf4f3c"
	ff1Key192 = "2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f"
	ff1Key256 = "2b7e151628aed2a6abf7158809cf4f3cef4359d8d580aa4f7f036d6f04fc6a94"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFF1NISTSamples(t *testing.T) {
	for _, tc := range ff1Samples {
		t.Run(tc.name, func(t *testing.T) {
			tweak := mustHex(t, tc.tweak)
			f, err := NewFF1(mustHex(t, tc.key), tc.radix, tweak)
			if err != nil {
				t.Fatal(err)
			}
			ct, err := f.Encrypt(tc.pt)
			if err != nil || ct != tc.ct {
				t.Fatalf("Encrypt = %q, %v; want %q", ct, err, tc.ct)
			}
			pt, err := f.Decrypt(tc.ct)
			if err != nil || pt != tc.pt {
				t.Fatalf("Decrypt = %q, %v; want %q", pt, err, tc.pt)
			}
			// The same through the explicit-tweak form and a neutral default.
			g, err := NewFF1(mustHex(t, tc.key), tc.radix, []byte("other"))
			if err != nil {
				t.Fatal(err)
			}
			if ct, err := g.EncryptWithTweak(tweak, tc.pt); err != nil || ct != tc.ct {
				t.Fatalf("EncryptWithTweak = %q, %v; want %q", ct, err, tc.ct)
			}
			if pt, err := g.DecryptWithTweak(tweak, tc.ct); err != nil || pt != tc.pt {
				t.Fatalf("DecryptWithTweak = %q, %v; want %q", pt, err, tc.pt)
			}
			// Both arithmetic paths agree with the sample.
			for _, decrypt := range []bool{false, true} {
				in, want := tc.pt, tc.ct
				if decrypt {
					in, want = tc.ct, tc.pt
				}
				u := len(in) / 2
				got, err := f.newCall(tweak, u, len(in)-u).cryptBig(in, decrypt)
				if err != nil || got != want {
					t.Fatalf("cryptBig(decrypt=%v) = %q, %v; want %q", decrypt, got, err, want)
				}
			}
		})
	}
}

func TestFF1PathsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, radix := range []int{2, 3, 7, 10, 16, 26, 36} {
		f, err := NewFF1(mustHex(t, ff1Key128), radix, []byte("tweak"))
		if err != nil {
			t.Fatal(err)
		}
		for n := f.MinLen(); n <= 2*f.fastLen; n++ {
			x := randomNumerals(rng, radix, n)
			u := len(x) / 2
			fast := f.newCall(f.tweak, u, n-u).cryptUint64(x, false)
			slow, err := f.newCall(f.tweak, u, n-u).cryptBig(x, false)
			if err != nil || fast != slow {
				t.Fatalf("radix %d n %d: uint64 path %q, big path %q (%v)", radix, n, fast, slow, err)
			}
		}
	}
}

func TestFF1RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	keys := []string{ff1Key128, ff1Key192, ff1Key256}
	for _, radix := range []int{2, 10, 17, 36} {
		for _, key := range keys {
			f, err := NewFF1(mustHex(t, key), radix, nil)
			if err != nil {
				t.Fatal(err)
			}
			lengths := []int{f.MinLen(), f.MinLen() + 1, 2*f.fastLen - 1, 2 * f.fastLen, 2*f.fastLen + 1, 200, FF1MaxLen}
			for _, n := range lengths {
				x := randomNumerals(rng, radix, n)
				tweak := []byte(randomNumerals(rng, 36, rng.IntN(40)))
				ct, err := f.EncryptWithTweak(tweak, x)
				if err != nil {
					t.Fatalf("radix %d n %d: %v", radix, n, err)
				}
				if len(ct) != n || strings.Trim(ct, ff1Alphabet[:radix]) != "" {
					t.Fatalf("radix %d n %d: ciphertext not in the domain", radix, n)
				}
				pt, err := f.DecryptWithTweak(tweak, ct)
				if err != nil || pt != x {
					t.Fatalf("radix %d n %d: round trip failed (%v)", radix, n, err)
				}
			}
		}
	}
}

func TestFF1TweakMatters(t *testing.T) {
	f, err := NewFF1(mustHex(t, ff1Key128), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.EncryptWithTweak([]byte("purpose:support"), "0123456789")
	b, _ := f.EncryptWithTweak([]byte("purpose:billing"), "0123456789")
	if a == b {
		t.Fatal("different tweaks gave the same ciphertext")
	}
	g, err := f.WithTweak([]byte("purpose:support"))
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := g.Encrypt("0123456789"); c != a {
		t.Fatalf("WithTweak: %q, want %q", c, a)
	}
}

func TestFF1Errors(t *testing.T) {
	key := mustHex(t, ff1Key128)
	bad := []struct {
		name  string
		key   []byte
		radix int
		tweak []byte
	}{
		{"short key", key[:15], 10, nil},
		{"zero key", make([]byte, 16), 10, nil},
		{"radix 1", key, 1, nil},
		{"radix 37", key, 37, nil},
		{"long tweak", key, 10, make([]byte, FF1MaxTweakLen+1)},
	}
	for _, tc := range bad {
		if _, err := NewFF1(tc.key, tc.radix, tc.tweak); err == nil {
			t.Errorf("%s: NewFF1 succeeded", tc.name)
		}
	}
	f, err := NewFF1(key, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.MinLen() != 6 {
		t.Errorf("MinLen for radix 10 = %d, want 6 (10^6 >= 1,000,000)", f.MinLen())
	}
	for _, in := range []string{"", "12345", "12345a", "１２３４５６", strings.Repeat("1", FF1MaxLen+1), "123 456"} {
		if _, err := f.Encrypt(in); !errors.Is(err, ErrDomain) {
			t.Errorf("Encrypt(len %d): err = %v, want ErrDomain", len(in), err)
		}
		if _, err := f.Decrypt(in); !errors.Is(err, ErrDomain) {
			t.Errorf("Decrypt(len %d): err = %v, want ErrDomain", len(in), err)
		}
	}
	if _, err := f.EncryptWithTweak(make([]byte, FF1MaxTweakLen+1), "123456"); err == nil {
		t.Error("EncryptWithTweak accepted an over-long tweak")
	}
	if _, err := f.WithTweak(make([]byte, FF1MaxTweakLen+1)); err == nil {
		t.Error("WithTweak accepted an over-long tweak")
	}
	for radix, want := range map[int]int{2: 20, 10: 6, 36: 4, 16: 5} {
		g, err := NewFF1(key, radix, nil)
		if err != nil {
			t.Fatal(err)
		}
		if g.MinLen() != want {
			t.Errorf("MinLen(radix %d) = %d, want %d", radix, g.MinLen(), want)
		}
	}
}

func TestFF1DoesNotPrintKey(t *testing.T) {
	f, err := NewFF1(mustHex(t, ff1Key128), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{f.String(), f.GoString()} {
		if strings.Contains(s, "2b7e") || !strings.Contains(s, "redacted") {
			t.Errorf("printed form %q", s)
		}
	}
}

func randomNumerals(rng *rand.Rand, radix, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = ff1Alphabet[rng.IntN(radix)]
	}
	return string(b)
}
