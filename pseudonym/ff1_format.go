package pseudonym

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// maxCycleWalk bounds the re-encryptions EncryptInt makes to land back in
// its domain. Each lands with probability above 0.8, so the bound is never
// reached in practice.
const maxCycleWalk = 200

// phoneChars are the characters a phone number may hold; all but the digits
// stay where they are.
const phoneChars = "0123456789+ -()"

// EncryptEmbedded encrypts, with the default tweak, the characters of s that
// are numerals of f's radix, taken together as one FF1 input, and leaves
// every other character in place. The numerals of s must meet the FF1
// domain (at least MinLen of them).
func (f *FF1) EncryptEmbedded(s string) (string, error) { return f.embedded(s, false) }

// DecryptEmbedded reverses EncryptEmbedded.
func (f *FF1) DecryptEmbedded(s string) (string, error) { return f.embedded(s, true) }

func (f *FF1) embedded(s string, decrypt bool) (string, error) {
	buf := []byte(s)
	nums := make([]byte, 0, len(buf))
	for _, ch := range buf {
		if f.isNumeral(ch) {
			nums = append(nums, ch)
		}
	}
	out, err := f.crypt(f.tweak, string(nums), decrypt)
	if err != nil {
		return "", err
	}
	j := 0
	for i, ch := range buf {
		if f.isNumeral(ch) {
			buf[i] = out[j]
			j++
		}
	}
	return string(buf), nil
}

// Phone encrypts the digits of a phone number with f (radix 10) and its
// default tweak, keeping '+', spaces, dashes and parentheses where they are,
// so the result is a phone number of the same shape. The number needs at
// least 6 digits to meet the FF1 domain; fewer yield an error wrapping
// ErrDomain.
func Phone(f *FF1, phone string) (string, error) {
	if err := checkPhone(f, phone); err != nil {
		return "", err
	}
	return f.EncryptEmbedded(phone)
}

// DecryptPhone reverses Phone.
func DecryptPhone(f *FF1, phone string) (string, error) {
	if err := checkPhone(f, phone); err != nil {
		return "", err
	}
	return f.DecryptEmbedded(phone)
}

func checkPhone(f *FF1, phone string) error {
	if f.radix != 10 {
		return fmt.Errorf("pseudonym: phone numbers need an FF1 of radix 10, not %d", f.radix)
	}
	if i := strings.IndexFunc(phone, func(r rune) bool { return !strings.ContainsRune(phoneChars, r) }); i >= 0 {
		return fmt.Errorf("%w: a phone number may hold only digits, '+', spaces, dashes and parentheses", ErrDomain)
	}
	if n := countDigits(phone); n < f.minLen {
		return fmt.Errorf("%w: a phone number needs at least %d digits", ErrDomain, f.minLen)
	}
	return nil
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			n++
		}
	}
	return n
}

// EncryptInt encrypts an integer with f (radix 10) and its default tweak,
// keeping its sign and, for magnitudes of 1,000,000 and above, its number of
// digits. Magnitudes below 1,000,000 map among themselves (six digits with
// leading zeros, as FF1's domain requires); longer ones are cycle-walked
// until the result has no leading zero and fits in an int64.
// math.MinInt64 is outside the domain.
func (f *FF1) EncryptInt(n int64) (int64, error) { return f.cryptInt(n, false) }

// DecryptInt reverses EncryptInt.
func (f *FF1) DecryptInt(n int64) (int64, error) { return f.cryptInt(n, true) }

func (f *FF1) cryptInt(n int64, decrypt bool) (int64, error) {
	if f.radix != 10 {
		return 0, fmt.Errorf("pseudonym: integers need an FF1 of radix 10, not %d", f.radix)
	}
	if n == math.MinInt64 {
		return 0, fmt.Errorf("%w: the least int64 has no int64 magnitude", ErrDomain)
	}
	neg := n < 0
	if neg {
		n = -n
	}
	digits := strconv.FormatInt(n, 10)
	width := max(len(digits), f.minLen)
	s := strings.Repeat("0", width-len(digits)) + digits
	for range maxCycleWalk {
		var err error
		if s, err = f.crypt(f.tweak, s, decrypt); err != nil {
			return 0, err
		}
		if width == f.minLen || s[0] != '0' {
			if v, err := strconv.ParseInt(s, 10, 64); err == nil {
				if neg {
					v = -v
				}
				return v, nil
			}
		}
	}
	return 0, errors.New("pseudonym: FF1 integer encryption did not return to its domain")
}
