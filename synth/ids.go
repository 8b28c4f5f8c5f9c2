package synth

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// iban returns an IBAN in electronic form (no spaces) for country cc whose
// BBAN follows layout ('n' digit, 'a' letter, 'c' alphanumeric), starting
// with one of banks when given, with ISO 13616 mod-97 check digits.
func iban(r *rand.Rand, cc, layout string, banks []string) string {
	b := make([]byte, 0, len(layout))
	for i := 0; i < len(layout); i++ {
		switch layout[i] {
		case 'n':
			b = append(b, byte('0'+r.IntN(10)))
		case 'a':
			b = append(b, byte('A'+r.IntN(26)))
		default: // 'c': mostly digits, as in practice
			if r.IntN(8) == 0 {
				b = append(b, byte('A'+r.IntN(26)))
			} else {
				b = append(b, byte('0'+r.IntN(10)))
			}
		}
	}
	if len(banks) > 0 {
		copy(b, pickString(r, banks))
	}
	bban := string(b)
	return cc + fmt.Sprintf("%02d", 98-IBANMod97(bban+cc+"00")) + bban
}

// IBANMod97 returns the ISO 7064 mod-97 remainder of s, letters counting as
// 10 (A) to 35 (Z). An IBAN is valid when IBANMod97 of its BBAN followed by
// its first four characters is 1.
func IBANMod97(s string) int {
	m := 0
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch >= '0' && ch <= '9':
			m = (m*10 + int(ch-'0')) % 97
		case ch >= 'A' && ch <= 'Z':
			m = (m*100 + int(ch-'A') + 10) % 97
		}
	}
	return m
}

// ValidIBAN reports whether s (electronic form) has valid check digits.
func ValidIBAN(s string) bool {
	if len(s) < 5 {
		return false
	}
	return IBANMod97(s[4:]+s[:4]) == 1
}

func digits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.IntN(10))
	}
	return string(b)
}

func two(n int) string { return fmt.Sprintf("%02d", n%100) }

// nationalID returns an identifier in the shape of the country's national
// number, with its check digits where the scheme has simple public ones.
// They are synthetic: the serial parts are random.
func nationalID(r *rand.Rand, kind string, birth time.Time, female bool) string {
	yy, mm, dd := two(birth.Year()), two(int(birth.Month())), two(birth.Day())
	sex := func(maleDigit, femaleDigit int) int {
		if female {
			return femaleDigit
		}
		return maleDigit
	}
	switch kind {
	case "DE": // identity card number: nine characters from a restricted alphabet
		const alpha = "CFGHJKLMNPRTVWXYZ0123456789"
		b := make([]byte, 9)
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		b[0] = "CFGHJKLMNPRTVWXYZ"[r.IntN(17)]
		return string(b)
	case "FR": // NIR: sex, year, month, department, commune, order, key
		body := strconv.Itoa(sex(1, 2)) + yy + mm + two(1+r.IntN(95)) + fmt.Sprintf("%03d", 1+r.IntN(990)) + fmt.Sprintf("%03d", 1+r.IntN(999))
		n, _ := strconv.ParseInt(body, 10, 64)
		key := 97 - n%97
		return fmt.Sprintf("%s %s %s %s %s %s %02d", body[:1], body[1:3], body[3:5], body[5:7], body[7:10], body[10:13], key)
	case "IT": // codice fiscale shape
		day := birth.Day()
		if female {
			day += 40
		}
		return pattern(r, "AAAAAA") + yy + string("ABCDEHLMPRST"[birth.Month()-1]) + two(day) + pattern(r, "A###A")
	case "ES": // DNI with its check letter
		n := 10000000 + r.IntN(89999999)
		return fmt.Sprintf("%08d%c", n, "TRWAGMYFPDXBNJZSQVHLCKE"[n%23])
	case "PL": // PESEL
		m := int(birth.Month())
		if birth.Year() >= 2000 {
			m += 20
		}
		serial := digits(r, 3) + strconv.Itoa(sex(1+2*r.IntN(5), 2*r.IntN(5)))
		d := yy + two(m) + dd + serial
		w := []int{1, 3, 7, 9, 1, 3, 7, 9, 1, 3}
		sum := 0
		for i := range 10 {
			sum += int(d[i]-'0') * w[i]
		}
		return d + strconv.Itoa((10-sum%10)%10)
	case "RO": // CNP
		s := sex(1, 2)
		if birth.Year() >= 2000 {
			s += 4
		}
		d := strconv.Itoa(s) + yy + mm + dd + two(1+r.IntN(46)) + fmt.Sprintf("%03d", 1+r.IntN(999))
		const w = "279146358279"
		sum := 0
		for i := range 12 {
			sum += int(d[i]-'0') * int(w[i]-'0')
		}
		c := sum % 11
		if c == 10 {
			c = 1
		}
		return d + strconv.Itoa(c)
	case "NL": // BSN, eleven-test
		for {
			d := digits(r, 8)
			sum := 0
			for i := range 8 {
				sum += int(d[i]-'0') * (9 - i)
			}
			if c := sum % 11; c < 10 && d[0] != '0' {
				return d + strconv.Itoa(c)
			}
		}
	case "BE": // national register number
		serial := fmt.Sprintf("%03d", sex(1+2*r.IntN(499), 2+2*r.IntN(498)))
		base := yy + mm + dd + serial
		n, _ := strconv.ParseInt(base, 10, 64)
		if birth.Year() >= 2000 {
			n += 2000000000
		}
		return fmt.Sprintf("%s.%s.%s-%s.%02d", yy, mm, dd, serial, 97-n%97)
	case "CZ": // rodné číslo (also Slovakia): divisible by 11
		m := int(birth.Month())
		if female {
			m += 50
		}
		for {
			d := yy + two(m) + dd + digits(r, 3)
			n, _ := strconv.ParseInt(d, 10, 64)
			if c := (11 - n*10%11) % 11; c < 10 {
				return d[:6] + "/" + d[6:] + strconv.Itoa(int(c))
			}
		}
	case "SE": // personnummer with the Luhn digit
		d := yy + mm + dd + digits(r, 2) + strconv.Itoa(sex(1+2*r.IntN(5), 2*r.IntN(5)))
		return d[:6] + "-" + d[6:] + strconv.Itoa(luhn(d))
	case "DK": // CPR number
		return dd + mm + yy + "-" + digits(r, 3) + strconv.Itoa(sex(1+2*r.IntN(5), 2*r.IntN(5)))
	case "FI": // henkilötunnus
		sign := "-"
		if birth.Year() >= 2000 {
			sign = "A"
		}
		z := fmt.Sprintf("%03d", sex(3+2*r.IntN(448), 2+2*r.IntN(448)))
		n, _ := strconv.Atoi(dd + mm + yy + z)
		return dd + mm + yy + sign + z + string("0123456789ABCDEFHJKLMNPRSTUVWXY"[n%31])
	case "NO": // fødselsnummer with both mod-11 digits
		for {
			d := dd + mm + yy + digits(r, 2) + strconv.Itoa(sex(1+2*r.IntN(5), 2*r.IntN(5)))
			k1 := mod11(d, []int{3, 7, 6, 1, 8, 9, 4, 5, 2})
			if k1 == 10 {
				continue
			}
			d += strconv.Itoa(k1)
			k2 := mod11(d, []int{5, 4, 3, 2, 7, 6, 5, 4, 3, 2})
			if k2 == 10 {
				continue
			}
			return d + strconv.Itoa(k2)
		}
	case "IE": // PPS number with its check letter
		d := digits(r, 7)
		sum := 0
		for i := range 7 {
			sum += int(d[i]-'0') * (8 - i)
		}
		return d + string("WABCDEFGHIJKLMNOPQRSTUV"[sum%23])
	case "HR": // OIB, ISO 7064 mod 11,10
		d := strconv.Itoa(1+r.IntN(9)) + digits(r, 9)
		a := 10
		for i := range 10 {
			a = (a + int(d[i]-'0')) % 10
			if a == 0 {
				a = 10
			}
			a = a * 2 % 11
		}
		c := 11 - a
		if c == 10 {
			c = 0
		}
		return d + strconv.Itoa(c)
	case "LT": // asmens kodas (also Estonia's isikukood)
		g := sex(3, 4)
		if birth.Year() >= 2000 {
			g += 2
		}
		d := strconv.Itoa(g) + yy + mm + dd + digits(r, 3)
		c := wsum(d, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 1}) % 11
		if c == 10 {
			c = wsum(d, []int{3, 4, 5, 6, 7, 8, 9, 1, 2, 3}) % 11
			if c == 10 {
				c = 0
			}
		}
		return d + strconv.Itoa(c)
	case "BG": // ЕГН
		m := int(birth.Month())
		if birth.Year() >= 2000 {
			m += 40
		}
		d := yy + two(m) + dd + digits(r, 2) + strconv.Itoa(sex(2*r.IntN(5), 1+2*r.IntN(5)))
		c := wsum(d, []int{2, 4, 8, 5, 10, 9, 7, 3, 6}) % 11
		if c == 10 {
			c = 0
		}
		return d + strconv.Itoa(c)
	case "AT": // social insurance number: serial, check digit, birth date
		return digits(r, 3) + strconv.Itoa(r.IntN(10)) + " " + dd + mm + yy
	case "SI": // EMŠO shape
		return dd + mm + fmt.Sprintf("%03d", birth.Year()%1000) + "50" + digits(r, 4)
	case "LV":
		return dd + mm + yy + "-" + strconv.Itoa(birth.Year()/100-18) + digits(r, 4)
	case "GR":
		return pattern(r, "AA ######")
	case "HU":
		return pattern(r, "######AA")
	case "PT": // citizen card number
		return digits(r, 8) + " " + strconv.Itoa(r.IntN(10)) + " " + pattern(r, "AA#")
	case "CY":
		return strconv.Itoa(100000+r.IntN(900000)) + digits(r, 1)
	case "LU":
		return strconv.Itoa(birth.Year()) + mm + dd + digits(r, 5)
	case "MT":
		return digits(r, 7) + string("MGAPLHBZ"[r.IntN(8)])
	case "IS": // kennitala shape
		century := "9"
		if birth.Year() >= 2000 {
			century = "0"
		}
		return dd + mm + yy + "-" + digits(r, 3) + century
	case "LI":
		return digits(r, 3) + "." + digits(r, 3) + "." + digits(r, 3)
	case "US": // SSN: no 000, 666 or 9xx area
		area := 1 + r.IntN(899)
		if area == 666 {
			area = 667
		}
		return fmt.Sprintf("%03d-%02d-%04d", area, 1+r.IntN(99), 1+r.IntN(9999))
	case "GB": // National Insurance number
		return string("ABCEGHJKLMNOPRSTWXYZ"[r.IntN(20)]) + string("ABCEGHJKLMNPRSTWXYZ"[r.IntN(19)]) +
			" " + digits(r, 2) + " " + digits(r, 2) + " " + digits(r, 2) + " " + string("ABCD"[r.IntN(4)])
	case "CH": // AHV number with its EAN-13 check digit
		d := "756" + digits(r, 9)
		sum := 0
		for i := range 12 {
			w := 1
			if i%2 == 1 {
				w = 3
			}
			sum += int(d[i]-'0') * w
		}
		d += strconv.Itoa((10 - sum%10) % 10)
		return d[:3] + "." + d[3:7] + "." + d[7:11] + "." + d[11:]
	case "CN": // resident identity number, ISO 7064 MOD 11-2
		d := strconv.Itoa(110000+r.IntN(540000)) + strconv.Itoa(birth.Year()) + mm + dd + digits(r, 3)
		sum := 0
		w := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
		for i := range 17 {
			sum += int(d[i]-'0') * w[i]
		}
		return d + string("10X98765432"[sum%11])
	case "IN": // Aadhaar shape
		return strconv.Itoa(2+r.IntN(8)) + digits(r, 3) + " " + digits(r, 4) + " " + digits(r, 4)
	case "BR": // CPF with both check digits
		d := digits(r, 9)
		for k := 0; k < 2; k++ {
			sum := 0
			for i := 0; i < len(d); i++ {
				sum += int(d[i]-'0') * (len(d) + 1 - i)
			}
			c := sum * 10 % 11 % 10
			d += strconv.Itoa(c)
		}
		return d[:3] + "." + d[3:6] + "." + d[6:9] + "-" + d[9:]
	}
	return strings.ToUpper(digits(r, 10))
}

// wsum returns the sum of the first len(w) digits of d weighted by w.
func wsum(d string, w []int) int {
	sum := 0
	for i := range w {
		sum += int(d[i]-'0') * w[i]
	}
	return sum
}

// mod11 returns 11 - wsum mod 11, with 11 as 0; 10 means no valid digit.
func mod11(d string, w []int) int {
	if c := 11 - wsum(d, w)%11; c != 11 {
		return c
	}
	return 0
}

// luhn returns the Luhn check digit of d.
func luhn(d string) int {
	sum := 0
	for i := 0; i < len(d); i++ {
		x := int(d[i] - '0')
		if i%2 == 0 { // from the left, for the 9-digit body of a personnummer
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
	}
	return (10 - sum%10) % 10
}
