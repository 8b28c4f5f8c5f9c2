package pseudonym

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cloverenclave/clover/schema"
)

// oracleFields are the fields the differential tests run: the default
// schema and one field of every other type and method pairing that takes
// a distinct path.
func oracleFields() []schema.Field {
	return append(schema.Default(),
		schema.Field{Name: "n", Type: "integer", Category: "content", Method: "ff1"},
		schema.Field{Name: "s", Type: "string", Category: "content", Method: "ff1"},
		schema.Field{Name: "x", Type: "number", Category: "content", Method: "hmac"},
		schema.Field{Name: "b", Type: "boolean", Category: "content", Method: "siv"},
		schema.Field{Name: "d", Type: "date", Category: "content", Method: "year"},
		schema.Field{Name: "i", Type: "integer", Category: "content", Method: "hmac"},
		schema.Field{Name: "e", Type: "email", Category: "content", Method: "siv"},
		schema.Field{Name: "p", Type: "phone", Category: "content", Method: "hmac"},
		schema.Field{Name: "ip", Type: "ip", Category: "content", Method: "hmac"},
	)
}

var oracleForms = []Form{Raw, Pseudonym, Generalised, Masked, Withheld}

// oracleValues exercise escapes, HTML characters, invalid UTF-8, U+2028,
// dates at month ends and leap days, and IP addresses near every rule of
// netip's parser.
var oracleValues = []string{
	`"Jane Doe"`, ` "Jane Doe" `, `"Jos\u00e9"`, `"José Ñúñez"`, `"a\"b"`, `"a\\b"`, `"<script>&"`,
	"\"\xff\xfe\"", "\"a\u2028b\u2029\"", `"\u2028"`, `"tab\there"`, `""`, `"x"`, `"日本語"`,
	`"jane.doe@example.com"`, `"@example.com"`, `"<a>@b&c"`, `"+353 87 123 4567"`, `"(01) 234-5678"`,
	`"1990-06-15"`, `"2024-06-14"`, `"2024-06-15"`, `"1934-06-14"`, `"1934-06-15"`, `"2000-02-29"`,
	`"1900-02-29"`, `"2023-02-29"`, `"2024-02-29"`, `"2024-04-31"`, `"2024-13-01"`, `"2024-00-10"`,
	`"2024-01-00"`, `"0000-01-01"`, `"9999-12-31"`, `"+024-01-01"`, `"2024-1-01"`, `"2024/01/01"`,
	`"2024-01-01 "`, `"20240101"`, `"１９９０-06-15"`, `"1990-06-1５"`,
	`"203.0.113.77"`, `"0.0.0.0"`, `"255.255.255.255"`, `"256.1.1.1"`, `"01.2.3.4"`, `"1.2.3"`,
	`"1.2.3.4.5"`, `"1..2.3"`, `".1.2.3"`, `"1.2.3."`, `"1.2.3.04"`, `"10.0.0.256"`, `"::ffff:1.2.3.4"`,
	`"2001:db8:1:2::9"`, `"fe80::1%eth0"`, `"::"`, `"1.2.3.4%eth0"`, `"00.1.2.3"`, `"1.2.3.0"`,
	`12`, `-0`, `1.50`, `1e2`, `1E400`, `9223372036854775807`, `-9223372036854775808`, `92233720368547758070`,
	`123456789`, `true`, `false`, `null`, `{"lat":53.3498,"lon":-6.2603}`, `{ "lon": 2.5, "lat": 1 }`,
	`{"lat":91,"lon":0}`, `{"lat":1}`, `{"lat":1,"lon":2,"alt":3}`, `[1,2]`, `"Jane`, `"a" "b"`,
	`"AB12-cd34"`, `"IE29 AIBK 9311 5212 3456 78"`, `"ab-c"`,
	`{"lat":1e-7,"lon":-0}`, `{"lat":-0.0000001,"lon":1E2}`, `{"lon":180,"lat":-90}`, `{"lat":1,"lat":2}`,
	`{"lat":1,"lon":2}x`, `{"lat":01,"lon":2}`, `{"lat":1.,"lon":2}`, `{"lat":.5,"lon":2}`, `{"lat":1e,"lon":2}`,
	`{"lat":+1,"lon":2}`, `{"lat":1,"lon":2,}`, `{"LAT":1,"lon":2}`, `{"lat":1e400,"lon":0}`, `{"lat":1,"lon":null}`,
	`{"lat":90.0000000000000001,"lon":-180.00000000000001}`, `{"lat":12.5e+1,"lon":-1.25E-3}`, `{"lat":-0.0,"lon":0e5}`,
	`{"l\u0061t":1,"lon":2}`, `{"lat":"1","lon":2}`, `{"lat":1,"lon":2} `, `{"lat":1,"lon":2}{}`, `{"lon":1,"lon":2}`,
	`{"lat":1,"lan":2}`, `{"lat":1,"lon":2,"lat":3}`, `{"lat":0.000001,"lon":179.99999999999997}`,
}

// checkAgainstOracle fails unless Transform and the oracle agree byte for
// byte, on the error text too, and Transform left value as it was.
func checkAgainstOracle(t *testing.T, tr *Transformer, f schema.Field, form Form, value, scope string, now time.Time) {
	t.Helper()
	in := []byte(value)
	got, err := tr.Transform(f, form, in, scope, now)
	want, werr := oracleTransform(tr, f, form, json.RawMessage(value), scope, now)
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Fatalf("%s/%s/%s %q: error %v, oracle %v", f.Name, f.Type, f.Method+"/"+string(form), value, err, werr)
	}
	if !bytes.Equal(got, want) || (got == nil) != (want == nil) {
		t.Fatalf("%s/%s/%s %q: %q, oracle %q", f.Name, f.Type, f.Method+"/"+string(form), value, got, want)
	}
	if string(in) != value {
		t.Fatalf("%s/%s/%s %q: Transform modified its input to %q", f.Name, f.Type, f.Method+"/"+string(form), value, in)
	}
}

func TestTransformMatchesOracle(t *testing.T) {
	tr := newTestTransformer(t)
	var values []string
	values = append(values, oracleValues...)
	for _, v := range testRecord {
		values = append(values, v)
	}
	nows := []time.Time{testNow, time.Date(2024, 2, 28, 23, 0, 0, 0, time.UTC), time.Date(2023, 3, 1, 0, 30, 0, 0, time.FixedZone("", 3600))}
	n := 0
	for _, f := range oracleFields() {
		for _, form := range oracleForms {
			for _, v := range values {
				for _, now := range nows {
					for _, scope := range []string{testScope, "purpose:support", ""} {
						checkAgainstOracle(t, tr, f, form, v, scope, now)
						n++
					}
				}
			}
		}
	}
	t.Logf("%d cases agree", n)
}

// FuzzTransformOracle checks that Transform gives exactly what the
// implementation before the rewrite gave, for any value, field and form.
func FuzzTransformOracle(f *testing.F) {
	tr := newTestTransformer(f)
	fields := oracleFields()
	for i, v := range oracleValues {
		f.Add(uint8(i), uint8(i/len(fields)), v, int64(0))
	}
	f.Fuzz(func(t *testing.T, fi, fo uint8, value string, nowDays int64) {
		now := testNow.AddDate(0, 0, int(nowDays%100_000))
		checkAgainstOracle(t, tr, fields[int(fi)%len(fields)], oracleForms[int(fo)%len(oracleForms)], value, testScope, now)
	})
}

// FuzzGeneraliseOracle checks AgeBand, Year and IPPrefix, which no longer
// go through time.Parse and, for plain IPv4, netip, against the originals.
func FuzzGeneraliseOracle(f *testing.F) {
	for _, v := range oracleValues {
		if s, ok := strings.CutPrefix(v, `"`); ok {
			f.Add(strings.TrimSuffix(s, `"`), int64(0))
		}
	}
	f.Fuzz(func(t *testing.T, s string, nowDays int64) {
		now := testNow.AddDate(0, 0, int(nowDays%100_000))
		check := func(name, got string, err error, want string, werr error) {
			t.Helper()
			if got != want || (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
				t.Fatalf("%s(%q) = %q, %v; oracle %q, %v", name, s, got, err, want, werr)
			}
		}
		got, err := AgeBand(s, now)
		want, werr := oracleAgeBand(s, now)
		check("AgeBand", got, err, want, werr)
		got, err = Year(s)
		want, werr = oracleYear(s)
		check("Year", got, err, want, werr)
		got, err = IPPrefix(s)
		want, werr = oracleIPPrefix(s)
		check("IPPrefix", got, err, want, werr)
		b, err := appendIPPrefix([]byte("x"), []byte(s))
		if werr == nil && (err != nil || string(b) != "x"+want) || werr != nil && (err == nil || string(b) != "x") {
			t.Fatalf("appendIPPrefix(%q) = %q, %v; oracle %q, %v", s, b, err, want, werr)
		}
	})
}

// FuzzAppendJSONString checks appendJSONString against json.Marshal.
func FuzzAppendJSONString(f *testing.F) {
	for _, v := range oracleValues {
		f.Add(v)
	}
	f.Add("\u2028\u2029<>&\x00\x1f\x7f\"\\")
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("appendJSONString(%q) = %q, json.Marshal %q", s, got[1:], want)
		}
	})
}

// FuzzAppendJSONFloat checks appendJSONFloat against json.Marshal.
func FuzzAppendJSONFloat(f *testing.F) {
	for _, x := range []float64{0, math.Copysign(0, -1), 1e-7, 1e-6, 9.999999e-7, 1e20, 1e21, -1e21, 53.3498, -6.2603, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		want, err := json.Marshal(x)
		if err != nil {
			return // Inf and NaN, which no decoded coordinate is
		}
		if got := appendJSONFloat([]byte("x"), x); string(got) != "x"+string(want) {
			t.Fatalf("appendJSONFloat(%v) = %q, json.Marshal %q", x, got[1:], want)
		}
	})
}

// FuzzGeoOracle checks geo values built from any two floats, in the
// forms plainGeo takes and some it leaves to json.Decoder.
func FuzzGeoOracle(f *testing.F) {
	tr := newTestTransformer(f)
	f.Add(53.3498, -6.2603, uint8(0))
	f.Add(-90.0, 180.0, uint8(1))
	f.Add(1e-7, math.Copysign(0, -1), uint8(2))
	fields := []schema.Field{
		{Name: "location", Type: "geo", Category: "location", Method: "geo-cell"},
		{Name: "location", Type: "geo", Category: "location", Method: "hmac"},
	}
	f.Fuzz(func(t *testing.T, lat, lon float64, shape uint8) {
		layouts := []string{`{"lat":%v,"lon":%v}`, `{"lon":%[2]v,"lat":%[1]v}`, `{"lat":%g,"lon":%e}`, `{"lat":%E,"lon":%f}`, `{ "lat": %v, "lon": %v }`}
		value := fmt.Sprintf(layouts[int(shape)%len(layouts)], lat, lon)
		for _, field := range fields {
			for _, form := range oracleForms {
				checkAgainstOracle(t, tr, field, form, value, testScope, testNow)
			}
		}
	})
}

func TestParseDateMatchesTime(t *testing.T) {
	// Every day of four years, leap and not, centuries included, and the
	// days just past each month's end.
	for _, year := range []int{0, 1900, 2000, 2023, 2024, 9999} {
		for m := time.January; m <= time.December; m++ {
			for d := 0; d <= 32; d++ {
				s := time.Date(year, m, 1, 0, 0, 0, 0, time.UTC).Format("2006-01-") + twoDigits(d)
				want, werr := time.Parse(time.DateOnly, s)
				y, mm, dd, ok := parseDate(s)
				if ok != (werr == nil) {
					t.Fatalf("parseDate(%q) ok = %v, time.Parse: %v", s, ok, werr)
				}
				if ok && (y != want.Year() || mm != want.Month() || dd != want.Day()) {
					t.Fatalf("parseDate(%q) = %d-%d-%d, time.Parse %v", s, y, mm, dd, want)
				}
			}
		}
	}
}

func twoDigits(d int) string { return string([]byte{byte('0' + d/10), byte('0' + d%10)}) }
