package pseudonym

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloverenclave/clover/schema"
)

const testScope = "destination:us-analytics"

var testNow = time.Date(2024, 6, 14, 9, 0, 0, 0, time.UTC)

// testRecord is a realistic record of schema.Default().
var testRecord = map[string]string{
	"full_name":        `"Jane Doe"`,
	"birth_date":       `"1990-06-15"`,
	"national_id":      `"1234567TA"`,
	"email":            `"jane.doe@example.com"`,
	"phone":            `"+353 87 123 4567"`,
	"address":          `"12 Main Street, Dublin 2"`,
	"location":         `{ "lat": 53.3498, "lon": -6.2603 }`,
	"device_id":        `"device-8f14e45f"`,
	"ip_address":       `"203.0.113.77"`,
	"interests":        `"cycling, jazz"`,
	"bio":              `"Loves hiking."`,
	"iban":             `"IE29 AIBK 9311 5212 3456 78"`,
	"health_condition": `"asthma"`,
}

func newTestTransformer(t testing.TB) *Transformer {
	t.Helper()
	tr, err := NewTransformer(Keys{HMAC: newTestTokenizer(t), SIV: newTestSIV(t), FF1Key: mustHex(t, ff1Key256)})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func quoted(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestTransformDefaultSchema(t *testing.T) {
	tr := newTestTransformer(t)
	tok := func(v string) string { return quoted(tr.tok.Token(testScope, []byte(v))) }
	sealed := func(v string) string { return quoted(tr.siv.Seal(testScope, []byte(v))) }
	ff1, err := tr.ff1Dec.WithTweak([]byte(testScope))
	if err != nil {
		t.Fatal(err)
	}
	phone, err := Phone(ff1, "+353 87 123 4567")
	if err != nil {
		t.Fatal(err)
	}
	const no = "unsupported"
	// want[field][form]; "unsupported" means Supports is false.
	want := map[string]map[Form]string{
		"full_name":        {Pseudonym: sealed("Jane Doe"), Generalised: no, Masked: `"J***"`},
		"birth_date":       {Pseudonym: tok("1990-06-15"), Generalised: `"30-34"`, Masked: no},
		"national_id":      {Pseudonym: sealed("1234567TA"), Generalised: no, Masked: `"1***"`},
		"email":            {Pseudonym: tok("jane.doe@example.com"), Generalised: no, Masked: `"j***@example.com"`},
		"phone":            {Pseudonym: quoted(phone), Generalised: no, Masked: `"+*** ** *** **67"`},
		"address":          {Pseudonym: tok("12 Main Street, Dublin 2"), Generalised: no, Masked: `"1***"`},
		"location":         {Pseudonym: tok(`{"lat":53.3498,"lon":-6.2603}`), Generalised: `{"lat":53.5,"lon":-6.5}`, Masked: no},
		"device_id":        {Pseudonym: tok("device-8f14e45f"), Generalised: no, Masked: `"d***"`},
		"ip_address":       {Pseudonym: tok("203.0.113.77"), Generalised: `"203.0.113.0/24"`, Masked: no},
		"interests":        {Pseudonym: tok("cycling, jazz"), Generalised: no, Masked: `"c***"`},
		"bio":              {Pseudonym: tok("Loves hiking."), Generalised: no, Masked: `"L***"`},
		"iban":             {Pseudonym: tok("IE29 AIBK 9311 5212 3456 78"), Generalised: no, Masked: `"I***"`},
		"health_condition": {Pseudonym: no, Generalised: no, Masked: no},
	}
	fields := schema.Default()
	if len(fields) != len(want) {
		t.Fatalf("schema.Default() has %d fields, the table %d", len(fields), len(want))
	}
	for _, f := range fields {
		row, ok := want[f.Name]
		if !ok {
			t.Fatalf("no expectations for field %q", f.Name)
		}
		raw := json.RawMessage(testRecord[f.Name])
		row[Raw] = compactJSON(t, raw)
		row[Withheld] = ""
		for _, form := range []Form{Raw, Pseudonym, Generalised, Masked, Withheld} {
			name := f.Name + "/" + f.Type + "/" + f.Method + "/" + string(form)
			t.Run(name, func(t *testing.T) {
				expected := row[form]
				if got := Supports(f, form); got != (expected != no) {
					t.Fatalf("Supports = %v", got)
				}
				out, err := tr.Transform(f, form, raw, testScope, testNow)
				if expected == no {
					if !errors.Is(err, ErrUnsupported) {
						t.Fatalf("err = %v, want ErrUnsupported", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if string(out) != expected {
					t.Fatalf("Transform = %s, want %s", out, expected)
				}
				if form != Withheld && !json.Valid(out) {
					t.Fatalf("output %s is not JSON", out)
				}
			})
		}
	}
}

func compactJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestTransformPseudonymsReverse(t *testing.T) {
	tr := newTestTransformer(t)
	f := schema.Field{Name: "full_name", Type: "string", Category: "identity", Method: "siv"}
	out, err := tr.Transform(f, Pseudonym, json.RawMessage(`"Jane Doe"`), testScope, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var tok string
	if err := json.Unmarshal(out, &tok); err != nil {
		t.Fatal(err)
	}
	if v, err := tr.siv.Open(testScope, tok); err != nil || string(v) != "Jane Doe" {
		t.Fatalf("Open = %q, %v", v, err)
	}
	if _, err := tr.siv.Open("purpose:support", tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Open under another scope: %v", err)
	}

	p := schema.Field{Name: "phone", Type: "phone", Category: "contact", Method: "ff1"}
	out, err = tr.Transform(p, Pseudonym, json.RawMessage(`"+353 87 123 4567"`), testScope, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &tok); err != nil {
		t.Fatal(err)
	}
	ff1, _ := tr.ff1Dec.WithTweak([]byte(testScope))
	if v, err := DecryptPhone(ff1, tok); err != nil || v != "+353 87 123 4567" {
		t.Fatalf("DecryptPhone = %q, %v", v, err)
	}
}

func TestTransformOtherFields(t *testing.T) {
	tr := newTestTransformer(t)
	tok := func(v string) string { return quoted(tr.tok.Token(testScope, []byte(v))) }
	ff1Int, _ := tr.ff1Dec.WithTweak([]byte(testScope))
	encInt, err := ff1Int.EncryptInt(123456789)
	if err != nil {
		t.Fatal(err)
	}
	ff1Str, _ := tr.ff1Alnum.WithTweak([]byte(testScope))
	encStr, err := ff1Str.EncryptEmbedded("ab12-cd34")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		typ, method string
		form        Form
		in, want    string
	}{
		{"integer", "ff1", Pseudonym, `123456789`, jsonInt(encInt)},
		{"string", "ff1", Pseudonym, `"AB12-cd34"`, quoted(encStr)}, // letters lower-cased
		{"integer", "hmac", Pseudonym, `42`, tok("42")},
		{"integer", "hmac", Pseudonym, `-0`, tok("0")},
		{"number", "hmac", Pseudonym, `1.50`, tok("1.5")},
		{"number", "mask", Pseudonym, `1e2`, tok("100")},
		{"boolean", "hmac", Pseudonym, `true`, tok("true")},
		{"geo", "hmac", Pseudonym, `{"lon":2.5,"lat":1}`, tok(`{"lat":1,"lon":2.5}`)},
		{"date", "year", Generalised, `"1987-04-12"`, `"1987"`},
		{"date", "hmac", Generalised, `"1987-04-12"`, `"1987"`},
		{"date", "year", Pseudonym, `"1987-04-12"`, tok("1987-04-12")},
		{"geo", "siv", Generalised, `{"lat":-33.8688,"lon":151.2093}`, `{"lat":-33.5,"lon":151.5}`},
		{"ip", "hmac", Generalised, `"2001:db8:1:2::9"`, `"2001:db8:1::/48"`},
		{"email", "siv", Masked, `"a@b.example"`, `"a***@b.example"`},
		{"phone", "hmac", Pseudonym, `"+1 202 555 0143"`, tok("+1 202 555 0143")},
		{"number", "hmac", Raw, ` 1.50 `, `1.50`},
		{"geo", "geo-cell", Raw, `{"lat": 1, "lon": 2}`, `{"lat":1,"lon":2}`},
	}
	for _, tc := range cases {
		f := schema.Field{Name: "f", Type: tc.typ, Category: "content", Method: tc.method}
		out, err := tr.Transform(f, tc.form, json.RawMessage(tc.in), testScope, testNow)
		if err != nil || string(out) != tc.want {
			t.Errorf("%s/%s/%s %s: %s, %v; want %s", tc.typ, tc.method, tc.form, tc.in, out, err, tc.want)
		}
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestTransformErrors(t *testing.T) {
	tr := newTestTransformer(t)
	field := func(typ, method string) schema.Field {
		return schema.Field{Name: "secret_field", Type: typ, Category: "identity", Method: method}
	}
	cases := []struct {
		name  string
		f     schema.Field
		form  Form
		in    string
		scope string
		is    error
	}{
		{"unknown form", field("string", "hmac"), Form("hashed"), `"Jane"`, testScope, ErrUnsupported},
		{"withhold pseudonym", field("string", "withhold"), Pseudonym, `"Jane"`, testScope, ErrUnsupported},
		{"mask a date", field("date", "mask"), Masked, `"1990-01-01"`, testScope, ErrUnsupported},
		{"generalise a string", field("string", "hmac"), Generalised, `"Jane"`, testScope, ErrUnsupported},
		{"unknown type", field("money", "hmac"), Raw, `"1"`, testScope, ErrUnsupported},
		{"unknown method", field("string", "rot13"), Raw, `"Jane"`, testScope, ErrUnsupported},
		{"method unfit", field("string", "age-band"), Pseudonym, `"Jane"`, testScope, ErrUnsupported},
		{"not JSON", field("string", "hmac"), Pseudonym, `"Jane`, testScope, ErrInvalidValue},
		{"two values", field("string", "hmac"), Raw, `"Jane" "Doe"`, testScope, ErrInvalidValue},
		{"number as string", field("string", "hmac"), Pseudonym, `12`, testScope, ErrInvalidValue},
		{"float integer", field("integer", "hmac"), Pseudonym, `1.5`, testScope, ErrInvalidValue},
		{"huge integer", field("integer", "ff1"), Pseudonym, `92233720368547758070`, testScope, ErrInvalidValue},
		{"geo extra key", field("geo", "geo-cell"), Generalised, `{"lat":1,"lon":2,"alt":3}`, testScope, ErrInvalidValue},
		{"geo missing lon", field("geo", "geo-cell"), Generalised, `{"lat":1}`, testScope, ErrInvalidValue},
		{"geo out of range", field("geo", "geo-cell"), Generalised, `{"lat":91,"lon":2}`, testScope, ErrInvalidValue},
		{"bad date", field("date", "age-band"), Generalised, `"15/06/1990"`, testScope, ErrInvalidValue},
		{"future birth", field("date", "age-band"), Generalised, `"2030-01-01"`, testScope, ErrInvalidValue},
		{"bad ip", field("ip", "ip-prefix"), Generalised, `"10.0.0.256"`, testScope, ErrInvalidValue},
		{"short phone", field("phone", "ff1"), Pseudonym, `"12345"`, testScope, ErrDomain},
		{"short string", field("string", "ff1"), Pseudonym, `"ab-c"`, testScope, ErrDomain},
		{"empty scope", field("string", "hmac"), Pseudonym, `"Jane"`, "", nil},
	}
	for _, tc := range cases {
		out, err := tr.Transform(tc.f, tc.form, json.RawMessage(tc.in), tc.scope, testNow)
		if err == nil {
			t.Errorf("%s: no error, output %s", tc.name, out)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.is)
		}
		if msg := err.Error(); strings.Contains(msg, "Jane") || strings.Contains(msg, "1990") || strings.Contains(msg, "12345") {
			t.Errorf("%s: error quotes the value: %s", tc.name, msg)
		}
		if !strings.Contains(err.Error(), "secret_field") {
			t.Errorf("%s: error does not name the field: %s", tc.name, err)
		}
	}
}

func TestNewTransformerErrors(t *testing.T) {
	tk, siv, key := newTestTokenizer(t), newTestSIV(t), mustHex(t, ff1Key128)
	for name, k := range map[string]Keys{
		"no HMAC":     {SIV: siv, FF1Key: key},
		"no SIV":      {HMAC: tk, FF1Key: key},
		"no FF1 key":  {HMAC: tk, SIV: siv},
		"bad FF1 key": {HMAC: tk, SIV: siv, FF1Key: key[:10]},
	} {
		if _, err := NewTransformer(k); err == nil {
			t.Errorf("%s: NewTransformer succeeded", name)
		}
	}
}

func TestPlainStringMatchesUnmarshal(t *testing.T) {
	for _, in := range []string{`""`, `"a"`, `"Jane Doe"`, `"é日本"`, `"a\\b"`, `"tab\there"`, `"\u00e9"`, "\"\xff\"", "\"a\tb\"", `"a"b"`, `"`, `x`, `"a" `} {
		var want string
		wantErr := json.Unmarshal([]byte(in), &want)
		got, ok := plainString([]byte(in))
		if ok && (wantErr != nil || string(got) != want) {
			t.Errorf("plainString(%q) = %q; json.Unmarshal gives %q, %v", in, got, want, wantErr)
		}
		v, err := parseString("string", json.RawMessage(in))
		if (err == nil) != (wantErr == nil) || (err == nil && (string(v.text) != want || string(v.canon) != want)) {
			t.Errorf("parseString(%q) = %q, %v; json.Unmarshal gives %q, %v", in, v.text, err, want, wantErr)
		}
	}
}

// TestTransformAllocations pins the allocations of the transforms that
// transfers run on every record: the result alone for tokens, age bands and
// networks (us-analytics), the result and nothing else for a compact
// location's grid cell (ch-research).
func TestTransformAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under coverage or -race")
	}
	tr := newTestTransformer(t)
	cases := slices.Clone(usAnalyticsRecord)
	cases = append(cases, usAnalyticsRecord[0])
	cases[len(cases)-1].field.Name, cases[len(cases)-1].field.Method = "full_name", "siv"
	cases = append(cases, usAnalyticsRecord[0])
	cases[len(cases)-1].field = schema.Field{Name: "location", Type: "geo", Category: "location", Method: "geo-cell"}
	cases[len(cases)-1].form, cases[len(cases)-1].value = Generalised, json.RawMessage(`{"lat":53.3498,"lon":-6.2603}`)
	for _, c := range cases {
		if _, err := tr.Transform(c.field, c.form, c.value, testScope, testNow); err != nil {
			t.Fatal(err) // and warms the scope cache
		}
		n := testing.AllocsPerRun(200, func() { _, _ = tr.Transform(c.field, c.form, c.value, testScope, testNow) })
		want := 1.0
		if c.field.Method == "siv" {
			want = 8 // tink's own: the ciphertext, CTR and CMAC states
		}
		if n > want {
			t.Errorf("Transform of %s in form %s allocates %v times, want at most %v", c.field.Name, c.form, n, want)
		}
	}
}
