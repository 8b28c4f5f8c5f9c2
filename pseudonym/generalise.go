package pseudonym

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"
)

// ErrInvalidValue is wrapped by errors for a value that does not parse as
// its type (a date, an IP address, a coordinate).
var ErrInvalidValue = errors.New("pseudonym: invalid value")

const (
	ageBandWidth = 5
	ageBandTop   = 90 // ages from here on share the band "90+"

	// GeoCellDegrees is the side of a GeoCell cell. One degree is about
	// 111 km north-south everywhere and 55-78 km east-west across Europe
	// (cos 60° to cos 45°): coarse enough to hide a home or workplace,
	// fine enough to tell regions apart.
	GeoCellDegrees = 1.0

	ipv4PrefixBits = 24
	ipv6PrefixBits = 48
)

// AgeBand returns the 5-year age band ("0-4", "5-9", …, "85-89", "90+") of
// someone born on birth (YYYY-MM-DD) as of now, in now's location. The age
// goes up on the birthday itself; someone born on 29 February has theirs on
// 1 March in other years. A birth date after now is an error.
func AgeBand(birth string, now time.Time) (string, error) {
	var buf [len("85-89")]byte
	band, err := appendAgeBand(buf[:0], birth, now)
	if err != nil {
		return "", err
	}
	return string(band), nil
}

// appendAgeBand appends AgeBand(birth, now) to dst.
func appendAgeBand[T string | []byte](dst []byte, birth T, now time.Time) ([]byte, error) {
	year, month, day, ok := parseDate(birth)
	if !ok {
		return dst, fmt.Errorf("%w: birth date is not YYYY-MM-DD", ErrInvalidValue)
	}
	age := ageOn(year, month, day, now)
	if age < 0 {
		return dst, fmt.Errorf("%w: birth date is in the future", ErrInvalidValue)
	}
	if age >= ageBandTop {
		return append(strconv.AppendInt(dst, ageBandTop, 10), '+'), nil
	}
	lo := age / ageBandWidth * ageBandWidth
	dst = strconv.AppendInt(dst, int64(lo), 10)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, int64(lo+ageBandWidth-1), 10), nil
}

// ageOn returns the age in whole years on now's calendar date of someone
// born on the given calendar date.
func ageOn(year int, month time.Month, day int, now time.Time) int {
	ny, nm, nd := now.Date()
	age := ny - year
	if nm < month || (nm == month && nd < day) {
		age--
	}
	return age
}

// Year returns the year ("1987") of a date (YYYY-MM-DD).
func Year(date string) (string, error) {
	if _, _, _, ok := parseDate(date); !ok {
		return "", fmt.Errorf("%w: date is not YYYY-MM-DD", ErrInvalidValue)
	}
	// The year as time.Format writes it: four digits, zero-padded, which
	// are the date's own first four.
	return date[:4], nil
}

// parseDate parses a date exactly as time.Parse(time.DateOnly, s) accepts
// it: four digits of year, two of month (01-12) and two of day (from 01 to
// the month's last day, 29 February in leap years only), separated by
// dashes, nothing around. It does not allocate, which time.Parse's error
// path does.
func parseDate[T string | []byte](s T) (year int, month time.Month, day int, ok bool) {
	if len(s) != len(time.DateOnly) || s[4] != '-' || s[7] != '-' {
		return 0, 0, 0, false
	}
	digits := func(i, n int) (int, bool) {
		v := 0
		for j := i; j < i+n; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := digits(0, 4)
	m, ok2 := digits(5, 2)
	d, ok3 := digits(8, 2)
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(time.Month(m), y) {
		return 0, 0, 0, false
	}
	return y, time.Month(m), d, true
}

// daysIn returns the number of days of a month in the proleptic Gregorian
// calendar, as package time counts them.
func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// GeoCell returns the centre of the GeoCellDegrees (1°) grid cell holding
// the point: each coordinate is floored to a whole degree and 0.5 added.
// Latitudes are clamped to ±90 and longitudes to ±180 first, and the cells
// at +90 and +180 are those just below, so the centre is always a valid
// coordinate. NaN stays NaN.
func GeoCell(lat, lon float64) (cellLat, cellLon float64) {
	return cellCentre(lat, 90), cellCentre(lon, 180)
}

func cellCentre(x, limit float64) float64 {
	x = math.Max(-limit, math.Min(limit, x))
	lo := math.Floor(x/GeoCellDegrees) * GeoCellDegrees
	if lo >= limit {
		lo = limit - GeoCellDegrees
	}
	return lo + GeoCellDegrees/2
}

// IPPrefix returns the network an IP address belongs to: its /24 for IPv4
// ("203.0.113.0/24") and its /48 for IPv6 ("2001:db8:1::/48"). An
// IPv4-mapped IPv6 address is treated as IPv4; a zone is dropped.
func IPPrefix(ip string) (string, error) {
	if net, ok := plainIPv4Net(ip); ok {
		return ip[:net] + ".0/24", nil
	}
	var buf [len("ffff:ffff:ffff::/48")]byte
	p, err := appendIPPrefixSlow(buf[:0], ip)
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// appendIPPrefix appends IPPrefix(ip) to dst.
func appendIPPrefix(dst, ip []byte) ([]byte, error) {
	if net, ok := plainIPv4Net(ip); ok {
		return append(append(dst, ip[:net]...), ".0/24"...), nil
	}
	return appendIPPrefixSlow(dst, string(ip))
}

// appendIPPrefixSlow is appendIPPrefix through package netip, for every
// address plainIPv4Net does not take.
func appendIPPrefixSlow(dst []byte, ip string) ([]byte, error) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return dst, fmt.Errorf("%w: not an IP address", ErrInvalidValue)
	}
	addr = addr.Unmap().WithZone("")
	bits := ipv6PrefixBits
	if addr.Is4() {
		bits = ipv4PrefixBits
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return dst, fmt.Errorf("%w: IP address has no /%d prefix", ErrInvalidValue, bits)
	}
	// For a valid prefix without zone, AppendTo writes what String returns.
	return p.AppendTo(dst), nil
}

// plainIPv4Net recognises the common case of an IPv4 address in the dotted
// decimal form netip.ParseAddr accepts (four decimal octets of at most 255,
// no leading zeros) and returns the length of its first three octets and
// their dots, which are the /24 network as netip prints it. It answers false
// for anything else, which then goes through netip.
func plainIPv4Net[T string | []byte](ip T) (net int, ok bool) {
	fields, val, digits := 0, 0, 0
	for i := range len(ip) {
		c := ip[i]
		switch {
		case '0' <= c && c <= '9':
			if digits > 0 && val == 0 { // a leading zero
				return 0, false
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return 0, false
			}
		case c == '.' && digits > 0 && fields < 3:
			fields++
			if fields == 3 {
				net = i
			}
			val, digits = 0, 0
		default:
			return 0, false
		}
	}
	return net, fields == 3 && digits > 0
}
