// Package schema describes the fields a subject's record may hold: each
// field's type, its data category (what policies decide on) and its
// pseudonymisation method. It validates record bodies against the schema. It
// is pure: no I/O.
package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Types a field may have.
var Types = []string{"string", "email", "phone", "date", "integer", "number", "boolean", "ip", "geo"}

// Categories of personal data a field may belong to.
var Categories = []string{"contact", "identity", "location", "device", "behavioural", "content", "financial", "special-category"}

// Methods of pseudonymisation a field may name: the form it takes when policy
// allows only a pseudonymised or generalised view.
var Methods = []string{
	"hmac",      // keyed HMAC-SHA256 token, scoped per destination or purpose
	"siv",       // reversible deterministic token (AES-SIV), only the enclave can reverse it
	"ff1",       // format-preserving encryption (NIST SP 800-38G FF1)
	"age-band",  // a date generalised to a 5-year age band
	"year",      // a date generalised to its year
	"geo-cell",  // coordinates generalised to a coarse cell
	"ip-prefix", // an IP address generalised to its /24 or /48 prefix
	"mask",      // most characters masked
	"withhold",  // never released except raw
}

// MaxStringBytes caps the size of one string value.
const MaxStringBytes = 4096

// Field is one entry of the schema.
type Field struct {
	Name     string `yaml:"name" json:"name"`
	Type     string `yaml:"type" json:"type"`
	Category string `yaml:"category" json:"category"`
	Method   string `yaml:"method" json:"method"`
}

// Schema is an ordered, validated set of fields.
type Schema struct {
	fields []Field
	byName map[string]Field
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// FieldError names the schema entry a problem was found in.
type FieldError struct {
	Index int
	Key   string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("schema[%d].%s: %s", e.Index, e.Key, e.Msg) }

// New validates fields and builds a schema.
func New(fields []Field) (*Schema, error) {
	if len(fields) == 0 {
		return nil, &FieldError{0, "name", "the schema needs at least one field"}
	}
	s := &Schema{byName: map[string]Field{}}
	for i, f := range fields {
		if !nameRE.MatchString(f.Name) {
			return nil, &FieldError{i, "name", fmt.Sprintf("%q must be 1-64 characters of a-z, 0-9 and '_', starting with a letter", f.Name)}
		}
		if _, dup := s.byName[f.Name]; dup {
			return nil, &FieldError{i, "name", fmt.Sprintf("field %q is defined twice", f.Name)}
		}
		if !slices.Contains(Types, f.Type) {
			return nil, &FieldError{i, "type", fmt.Sprintf("unknown type %q (one of %s)", f.Type, strings.Join(Types, ", "))}
		}
		if !slices.Contains(Categories, f.Category) {
			return nil, &FieldError{i, "category", fmt.Sprintf("unknown category %q (one of %s)", f.Category, strings.Join(Categories, ", "))}
		}
		if !slices.Contains(Methods, f.Method) {
			return nil, &FieldError{i, "method", fmt.Sprintf("unknown method %q (one of %s)", f.Method, strings.Join(Methods, ", "))}
		}
		if err := methodFits(f); err != nil {
			return nil, &FieldError{i, "method", err.Error()}
		}
		s.fields = append(s.fields, f)
		s.byName[f.Name] = f
	}
	return s, nil
}

func methodFits(f Field) error {
	ok := true
	switch f.Method {
	case "age-band", "year":
		ok = f.Type == "date"
	case "geo-cell":
		ok = f.Type == "geo"
	case "ip-prefix":
		ok = f.Type == "ip"
	case "ff1":
		ok = f.Type == "phone" || f.Type == "string" || f.Type == "integer"
	}
	if !ok {
		return fmt.Errorf("method %q does not apply to type %q", f.Method, f.Type)
	}
	return nil
}

// Default is the schema of the default enclave: a dozen fields covering every
// category.
func Default() []Field {
	return []Field{
		{"full_name", "string", "identity", "siv"},
		{"birth_date", "date", "identity", "age-band"},
		{"national_id", "string", "identity", "siv"},
		{"email", "email", "contact", "hmac"},
		{"phone", "phone", "contact", "ff1"},
		{"address", "string", "location", "mask"},
		{"location", "geo", "location", "geo-cell"},
		{"device_id", "string", "device", "hmac"},
		{"ip_address", "ip", "device", "ip-prefix"},
		{"interests", "string", "behavioural", "hmac"},
		{"bio", "string", "content", "mask"},
		{"iban", "string", "financial", "mask"},
		{"health_condition", "string", "special-category", "withhold"},
	}
}

// Fields returns the schema's fields in order.
func (s *Schema) Fields() []Field { return slices.Clone(s.fields) }

// Names returns the field names in schema order.
func (s *Schema) Names() []string {
	out := make([]string, len(s.fields))
	for i, f := range s.fields {
		out[i] = f.Name
	}
	return out
}

// Field returns the named field.
func (s *Schema) Field(name string) (Field, bool) {
	f, ok := s.byName[name]
	return f, ok
}

// ValueError lists the fields of a record that do not fit the schema.
// Messages name fields and expected types, never the values.
type ValueError struct {
	Problems map[string]string // field -> what is wrong
}

func (e *ValueError) Error() string {
	names := make([]string, 0, len(e.Problems))
	for n := range e.Problems {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s: %s", n, e.Problems[n])
	}
	return strings.Join(parts, "; ")
}

// Fields returns the names of the fields at fault, sorted.
func (e *ValueError) Fields() []string {
	names := make([]string, 0, len(e.Problems))
	for n := range e.Problems {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Check validates a record's fields against the schema and returns them in
// canonical (compact) JSON. Unknown fields and wrong types are reported
// together in a *ValueError.
func (s *Schema) Check(fields map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	problems := map[string]string{}
	out := make(map[string]json.RawMessage, len(fields))
	for name, raw := range fields {
		f, ok := s.byName[name]
		if !ok {
			problems[name] = "not in the schema"
			continue
		}
		if err := checkValue(f.Type, raw); err != nil {
			problems[name] = err.Error()
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			problems[name] = "not valid JSON"
			continue
		}
		out[name] = buf.Bytes()
	}
	if len(problems) > 0 {
		return nil, &ValueError{Problems: problems}
	}
	return out, nil
}

var (
	emailRE = regexp.MustCompile(`^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$`)
	phoneRE = regexp.MustCompile(`^\+?[0-9 ()-]{4,30}$`)
)

func checkValue(typ string, raw json.RawMessage) error {
	switch typ {
	case "string", "email", "phone", "date", "ip":
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("expected a JSON string (type %s)", typ)
		}
		return checkString(typ, v)
	case "integer":
		var v json.Number
		if err := unmarshalNumber(raw, &v); err != nil {
			return fmt.Errorf("expected an integer")
		}
		if _, err := v.Int64(); err != nil {
			return fmt.Errorf("expected an integer")
		}
	case "number":
		var v json.Number
		if err := unmarshalNumber(raw, &v); err != nil {
			return fmt.Errorf("expected a number")
		}
		if f, err := v.Float64(); err != nil || math.IsInf(f, 0) {
			return fmt.Errorf("expected a finite number")
		}
	case "boolean":
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("expected true or false")
		}
	case "geo":
		var v struct {
			Lat *float64 `json:"lat"`
			Lon *float64 `json:"lon"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil || v.Lat == nil || v.Lon == nil {
			return fmt.Errorf(`expected {"lat": number, "lon": number}`)
		}
		if *v.Lat < -90 || *v.Lat > 90 || *v.Lon < -180 || *v.Lon > 180 {
			return fmt.Errorf("latitude must be within ±90 and longitude within ±180")
		}
	default:
		return fmt.Errorf("unknown type %q", typ)
	}
	return nil
}

func unmarshalNumber(raw json.RawMessage, v *json.Number) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return err
	}
	n, ok := x.(json.Number)
	if !ok {
		return fmt.Errorf("not a number")
	}
	*v = n
	return nil
}

func checkString(typ, v string) error {
	if len(v) > MaxStringBytes {
		return fmt.Errorf("longer than %d bytes", MaxStringBytes)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("not valid UTF-8")
	}
	switch typ {
	case "string":
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }) {
			return fmt.Errorf("contains control characters")
		}
	case "email":
		if len(v) > 254 || !emailRE.MatchString(v) {
			return fmt.Errorf("not an email address")
		}
	case "phone":
		digits := 0
		for _, r := range v {
			if r >= '0' && r <= '9' {
				digits++
			}
		}
		if !phoneRE.MatchString(v) || digits < 4 || digits > 15 {
			return fmt.Errorf("not a phone number (4-15 digits, optional +, spaces, dashes, parentheses)")
		}
	case "date":
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return fmt.Errorf("not a date (YYYY-MM-DD)")
		}
	case "ip":
		if _, err := netip.ParseAddr(v); err != nil {
			return fmt.Errorf("not an IP address")
		}
	}
	return nil
}
