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
	b, err := time.Parse(time.DateOnly, birth)
	if err != nil {
		return "", fmt.Errorf("%w: birth date is not YYYY-MM-DD", ErrInvalidValue)
	}
	age := ageOn(b, now)
	if age < 0 {
		return "", fmt.Errorf("%w: birth date is in the future", ErrInvalidValue)
	}
	if age >= ageBandTop {
		return strconv.Itoa(ageBandTop) + "+", nil
	}
	lo := age / ageBandWidth * ageBandWidth
	return strconv.Itoa(lo) + "-" + strconv.Itoa(lo+ageBandWidth-1), nil
}

// ageOn returns the age in whole years on now's calendar date of someone
// born on birth's calendar date.
func ageOn(birth, now time.Time) int {
	ny, nm, nd := now.Date()
	by, bm, bd := birth.Date()
	age := ny - by
	if nm < bm || (nm == bm && nd < bd) {
		age--
	}
	return age
}

// Year returns the year ("1987") of a date (YYYY-MM-DD).
func Year(date string) (string, error) {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return "", fmt.Errorf("%w: date is not YYYY-MM-DD", ErrInvalidValue)
	}
	return d.Format("2006"), nil
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
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "", fmt.Errorf("%w: not an IP address", ErrInvalidValue)
	}
	addr = addr.Unmap().WithZone("")
	bits := ipv6PrefixBits
	if addr.Is4() {
		bits = ipv4PrefixBits
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return "", fmt.Errorf("%w: IP address has no /%d prefix", ErrInvalidValue, bits)
	}
	return p.String(), nil
}
