package pseudonym

import (
	"strings"
	"unicode/utf8"
)

const (
	maskFill = "***"
	// phoneKeepDigits is how many trailing digits MaskPhone leaves, for
	// numbers of more than phoneKeepMin digits.
	phoneKeepDigits = 2
	phoneKeepMin    = 4
	// phoneSeparators stay in place in a masked phone number.
	phoneSeparators = "+ -().\u00a0/"
)

// MaskString keeps the first character of s and replaces the rest with
// "***", whatever its length: "Jane Doe" becomes "J***". The empty string
// stays empty. Suited to names, addresses and account numbers such as IBANs.
func MaskString(s string) string {
	if s == "" {
		return ""
	}
	_, n := utf8.DecodeRuneInString(s)
	return s[:n] + maskFill
}

// MaskEmail keeps the first character of the local part and the whole
// domain: "jane.doe@example.com" becomes "j***@example.com". A string with
// no '@' is masked as MaskString does.
func MaskEmail(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return MaskString(email)
	}
	if at == 0 {
		return maskFill + email
	}
	return MaskString(email[:at]) + email[at:]
}

// MaskPhone replaces every digit but the last two with '*' and keeps the
// separators ('+', spaces, dashes, dots, slashes, parentheses):
// "+353 87 123 4567" becomes "+*** ** *** **67". Numbers of four digits or
// fewer are masked whole, and any other character is masked too.
func MaskPhone(phone string) string {
	digitsLeft := countDigits(phone)
	keep := 0
	if digitsLeft > phoneKeepMin {
		keep = phoneKeepDigits
	}
	var b strings.Builder
	b.Grow(len(phone))
	for _, r := range phone {
		switch {
		case '0' <= r && r <= '9':
			if digitsLeft <= keep {
				b.WriteRune(r)
			} else {
				b.WriteByte('*')
			}
			digitsLeft--
		case strings.ContainsRune(phoneSeparators, r):
			b.WriteRune(r)
		default:
			b.WriteByte('*')
		}
	}
	return b.String()
}
