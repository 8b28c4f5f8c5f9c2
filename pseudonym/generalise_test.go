package pseudonym

import (
	"errors"
	"math"
	"testing"
	"time"
)

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d.Add(12 * time.Hour)
}

func TestAgeBand(t *testing.T) {
	cases := []struct{ birth, now, want string }{
		{"1990-06-15", "2024-06-14", "30-34"}, // 33, day before the birthday
		{"1990-06-15", "2024-06-15", "30-34"}, // 34 on the birthday
		{"1989-06-15", "2024-06-14", "30-34"}, // 34
		{"1989-06-15", "2024-06-15", "35-39"}, // 35 on the birthday
		{"1989-06-15", "2024-05-31", "30-34"}, // earlier month
		{"1989-06-15", "2024-07-01", "35-39"}, // later month
		{"2024-03-01", "2024-03-01", "0-4"},   // born today
		{"2019-03-02", "2024-03-01", "0-4"},   // 4
		{"2019-03-01", "2024-03-01", "5-9"},   // 5
		{"2000-02-29", "2023-02-28", "20-24"}, // 22: a leapling's birthday is 1 March
		{"2000-02-29", "2025-02-28", "20-24"}, // 24
		{"2000-02-29", "2025-03-01", "25-29"}, // 25
		{"2000-02-29", "2024-02-29", "20-24"}, // 24 on the day in a leap year
		{"1935-01-01", "2024-12-31", "85-89"}, // 89
		{"1934-12-31", "2024-12-31", "90+"},   // 90
		{"1900-01-01", "2024-01-01", "90+"},
	}
	for _, tc := range cases {
		got, err := AgeBand(tc.birth, day(tc.now))
		if err != nil || got != tc.want {
			t.Errorf("AgeBand(%s, %s) = %q, %v; want %q", tc.birth, tc.now, got, err, tc.want)
		}
	}
}

func TestAgeBandUsesNowsLocation(t *testing.T) {
	// 23:30 on 14 June in UTC-10 is already 15 June in UTC; the calendar date
	// of now in its own location counts.
	hst := time.FixedZone("HST", -10*3600)
	now := time.Date(2024, 6, 14, 23, 30, 0, 0, hst)
	if got, _ := AgeBand("1989-06-15", now); got != "30-34" {
		t.Errorf("in HST: %q, want 30-34", got)
	}
	if got, _ := AgeBand("1989-06-15", now.UTC()); got != "35-39" {
		t.Errorf("in UTC: %q, want 35-39", got)
	}
}

func TestAgeBandErrors(t *testing.T) {
	now := day("2024-01-01")
	for _, birth := range []string{"", "1990-13-01", "1990-02-30", "90-01-01", "1990/01/01", "2024-01-02"} {
		if _, err := AgeBand(birth, now); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("AgeBand(%q): err = %v", birth, err)
		}
	}
}

func TestYear(t *testing.T) {
	for in, want := range map[string]string{"1987-04-12": "1987", "0001-01-01": "0001", "2024-02-29": "2024"} {
		if got, err := Year(in); err != nil || got != want {
			t.Errorf("Year(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "1987", "1987-04-31", "2023-02-29"} {
		if _, err := Year(in); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("Year(%q): err = %v", in, err)
		}
	}
}

func TestGeoCell(t *testing.T) {
	cases := []struct{ lat, lon, wantLat, wantLon float64 }{
		{53.3498, -6.2603, 53.5, -6.5}, // Dublin
		{48.8566, 2.3522, 48.5, 2.5},   // Paris
		{-33.8688, 151.2093, -33.5, 151.5},
		{0, 0, 0.5, 0.5},
		{-0.1, -0.1, -0.5, -0.5},
		{90, 180, 89.5, 179.5},
		{-90, -180, -89.5, -179.5},
		{95, 200, 89.5, 179.5}, // clamped
		{53, 6, 53.5, 6.5},     // on a grid line: the cell to the north-east
	}
	for _, tc := range cases {
		lat, lon := GeoCell(tc.lat, tc.lon)
		if lat != tc.wantLat || lon != tc.wantLon {
			t.Errorf("GeoCell(%v, %v) = (%v, %v), want (%v, %v)", tc.lat, tc.lon, lat, lon, tc.wantLat, tc.wantLon)
		}
	}
	if lat, lon := GeoCell(math.NaN(), 1); !math.IsNaN(lat) || lon != 1.5 {
		t.Errorf("GeoCell(NaN, 1) = (%v, %v)", lat, lon)
	}
}

func TestIPPrefix(t *testing.T) {
	cases := map[string]string{
		"203.0.113.77":                   "203.0.113.0/24",
		"10.1.2.3":                       "10.1.2.0/24",
		"2001:db8:1:2:3:4:5:6":           "2001:db8:1::/48",
		"2001:db8:abcd:ffff::1":          "2001:db8:abcd::/48",
		"::ffff:198.51.100.9":            "198.51.100.0/24",
		"fe80::1%eth0":                   "fe80::/48",
		"::1":                            "::/48",
		"2001:0db8:0001:0000:0000::0001": "2001:db8:1::/48",
	}
	for in, want := range cases {
		if got, err := IPPrefix(in); err != nil || got != want {
			t.Errorf("IPPrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "203.0.113", "203.0.113.256", "example.com", "203.0.113.0/24"} {
		if _, err := IPPrefix(in); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("IPPrefix(%q): err = %v", in, err)
		}
	}
}
