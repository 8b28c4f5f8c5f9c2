package pseudonym

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cloverenclave/clover/schema"
)

// Form is the shape in which a field's value is released.
type Form string

// Forms a field can be released in.
const (
	Raw         Form = "raw"         // the value itself
	Pseudonym   Form = "pseudonym"   // a token or ciphertext, by the field's method
	Generalised Form = "generalised" // a coarser value: age band, year, grid cell, network
	Masked      Form = "masked"      // most characters hidden
	Withheld    Form = "withheld"    // not released at all
)

// ErrUnsupported is wrapped by Transform's error when a field cannot take
// the form asked for.
var ErrUnsupported = errors.New("pseudonym: form not supported for this field")

// Keys are the keys a Transformer uses. All three are required.
type Keys struct {
	HMAC   *Tokenizer // tokens: method hmac, and the pseudonym of fields whose method has none of its own
	SIV    *SIV       // method siv
	FF1Key []byte     // AES-128/192/256 key for method ff1 (radix 10 and 36; FF1 binds the radix into every round)
}

// Transformer produces the released form of field values. It is safe for
// concurrent use.
type Transformer struct {
	tok      *Tokenizer
	siv      *SIV
	ff1Dec   *FF1 // radix 10: phone numbers and integers
	ff1Alnum *FF1 // radix 36: strings
}

// NewTransformer returns a Transformer using k.
func NewTransformer(k Keys) (*Transformer, error) {
	if k.HMAC == nil || k.SIV == nil {
		return nil, errors.New("pseudonym: the HMAC and SIV keys are required")
	}
	dec, err := NewFF1(k.FF1Key, 10, nil)
	if err != nil {
		return nil, err
	}
	alnum, err := NewFF1(k.FF1Key, 36, nil)
	if err != nil {
		return nil, err
	}
	return &Transformer{tok: k.HMAC, siv: k.SIV, ff1Dec: dec, ff1Alnum: alnum}, nil
}

// Supports reports whether field f can be released in form:
//
//   - Raw and Withheld: always.
//   - A field whose method is "withhold": nothing else.
//   - Pseudonym: every other field. Methods hmac, siv and ff1 give their own
//     form; any other method gives an HMAC token of the value (see
//     Transform).
//   - Generalised: types date (an age band for method age-band, else the
//     year), geo (a grid cell) and ip (a network prefix), whatever the method.
//   - Masked: types email, phone and string.
//
// A field whose type or method is unknown, or whose method does not apply to
// its type, supports nothing.
func Supports(f schema.Field, form Form) bool {
	if !wellFormed(f) {
		return false
	}
	switch form {
	case Raw, Withheld:
		return true
	}
	if f.Method == "withhold" {
		return false
	}
	switch form {
	case Pseudonym:
		return true
	case Generalised:
		return f.Type == "date" || f.Type == "geo" || f.Type == "ip"
	case Masked:
		return f.Type == "email" || f.Type == "phone" || f.Type == "string"
	}
	return false
}

// wellFormed mirrors the schema's own checks of a field's type and method.
func wellFormed(f schema.Field) bool {
	if !slices.Contains(schema.Types, f.Type) || !slices.Contains(schema.Methods, f.Method) {
		return false
	}
	switch f.Method {
	case "age-band", "year":
		return f.Type == "date"
	case "geo-cell":
		return f.Type == "geo"
	case "ip-prefix":
		return f.Type == "ip"
	case "ff1":
		return f.Type == "phone" || f.Type == "string" || f.Type == "integer"
	}
	return true
}

// Transform returns value, a JSON value of field f, in the given form:
//
//   - Raw: the value, compacted.
//   - Withheld: nil; the caller leaves the field out.
//   - Pseudonym: for method hmac a token (Tokenizer.Token), for siv a
//     reversible token (SIV.Seal), both in scope; for ff1 a phone number
//     (Phone), an integer (EncryptInt, a JSON number) or a string
//     (EncryptEmbedded, radix 36, over its ASCII letters and digits, the
//     letters lower-cased first, so the case is lost; every other character
//     stays as it is) encrypted with scope as the tweak. For any other
//     method, an HMAC token in scope. Tokens and SIV take the string
//     itself for string-typed values and the canonical JSON of other values
//     ({"lat":…,"lon":…} for geo, shortest form for numbers). The scope must
//     not be empty.
//   - Generalised: AgeBand (as of now) or Year for a date, GeoCell as
//     {"lat":…,"lon":…} for geo, IPPrefix for ip.
//   - Masked: MaskEmail, MaskPhone or MaskString by type.
//
// Scope is the purpose or destination the value is released for, such as
// "purpose:support" or "destination:us-analytics": equal values give equal
// pseudonyms within a scope and unlinkable ones across scopes. A form the
// field does not support yields an error wrapping ErrUnsupported. Errors
// name the field, never the value.
func (t *Transformer) Transform(f schema.Field, form Form, value json.RawMessage, scope string, now time.Time) (json.RawMessage, error) {
	if !Supports(f, form) {
		return nil, fmt.Errorf("%w: field %q (type %s, method %s) in form %q", ErrUnsupported, f.Name, f.Type, f.Method, form)
	}
	v, err := parseValue(f.Type, value)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: field %q: %w", f.Name, err)
	}
	out, err := t.transform(f, form, v, scope, now)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: field %q in form %q: %w", f.Name, form, err)
	}
	return out, nil
}

func (t *Transformer) transform(f schema.Field, form Form, v parsed, scope string, now time.Time) (json.RawMessage, error) {
	switch form {
	case Raw:
		return bytes.Clone(v.compact), nil
	case Withheld:
		return nil, nil
	case Pseudonym:
		return t.pseudonym(f, v, scope)
	case Generalised:
		return generalised(f, v, now)
	case Masked:
		return masked(f.Type, v.str)
	}
	return nil, ErrUnsupported
}

func (t *Transformer) pseudonym(f schema.Field, v parsed, scope string) (json.RawMessage, error) {
	if scope == "" {
		return nil, errors.New("pseudonym: a scope is required")
	}
	switch f.Method {
	case "siv":
		return jsonString(t.siv.Seal(scope, v.canon))
	case "ff1":
		return t.formatPreserving(f.Type, v, scope)
	}
	return jsonString(t.tok.Token(scope, v.canon))
}

// formatPreserving encrypts a phone number, string or integer with FF1,
// the scope being the tweak.
func (t *Transformer) formatPreserving(typ string, v parsed, scope string) (json.RawMessage, error) {
	base := t.ff1Dec
	if typ == "string" {
		base = t.ff1Alnum
	}
	f, err := base.WithTweak([]byte(scope))
	if err != nil {
		return nil, err
	}
	switch typ {
	case "phone":
		return jsonStringErr(Phone(f, v.str))
	case "string":
		return jsonStringErr(f.EncryptEmbedded(asciiLower(v.str)))
	case "integer":
		n, err := f.EncryptInt(v.integer)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, n, 10), nil
	}
	return nil, ErrUnsupported
}

func generalised(f schema.Field, v parsed, now time.Time) (json.RawMessage, error) {
	switch f.Type {
	case "date":
		if f.Method == "age-band" {
			return jsonStringErr(AgeBand(v.str, now))
		}
		return jsonStringErr(Year(v.str))
	case "geo":
		lat, lon := GeoCell(v.lat, v.lon)
		return json.Marshal(geoJSON{Lat: lat, Lon: lon})
	case "ip":
		return jsonStringErr(IPPrefix(v.str))
	}
	return nil, ErrUnsupported
}

func masked(typ, s string) (json.RawMessage, error) {
	switch typ {
	case "email":
		return jsonString(MaskEmail(s))
	case "phone":
		return jsonString(MaskPhone(s))
	case "string":
		return jsonString(MaskString(s))
	}
	return nil, ErrUnsupported
}

// parsed is a field value decoded by its type.
type parsed struct {
	compact  json.RawMessage // the JSON as given, compacted
	canon    []byte          // token input: the string, or canonical JSON
	str      string          // string-typed values
	integer  int64
	lat, lon float64
}

type geoJSON struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// parseValue decodes raw as a value of type typ. Errors say what was
// expected, never what was found.
func parseValue(typ string, raw json.RawMessage) (parsed, error) {
	switch typ {
	case "string", "email", "phone", "date", "ip":
		return parseString(typ, raw)
	}
	var v parsed
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return v, fmt.Errorf("%w: not valid JSON", ErrInvalidValue)
	}
	v.compact = buf.Bytes()
	var err error
	switch typ {
	case "integer":
		err = v.parseInteger()
	case "number":
		err = v.parseNumber()
	case "boolean":
		err = v.parseBoolean()
	case "geo":
		err = v.parseGeo()
	default:
		err = fmt.Errorf("unknown type %q", typ)
	}
	return v, err
}

// parseString decodes a JSON string. A string literal has no insignificant
// whitespace inside, so without the whitespace around it, it is compact.
func parseString(typ string, raw json.RawMessage) (parsed, error) {
	v := parsed{compact: trimJSONSpace(raw)}
	if s, ok := plainString(v.compact); ok {
		v.str = s
	} else if err := json.Unmarshal(v.compact, &v.str); err != nil {
		return v, fmt.Errorf("%w: expected a JSON string (type %s)", ErrInvalidValue, typ)
	}
	v.canon = []byte(v.str)
	return v, nil
}

// plainString decodes the common case of a JSON string literal without
// escapes, sparing the reflection of json.Unmarshal.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(inner) {
		return "", false
	}
	return string(inner), true
}

// trimJSONSpace removes the whitespace JSON allows around a value.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func (v *parsed) parseInteger() error {
	// As the schema does: an integer is a JSON number that parses as an
	// int64, so neither 1e3 nor 12.0.
	n, err := strconv.ParseInt(string(v.compact), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: expected an integer", ErrInvalidValue)
	}
	v.integer = n
	v.canon = strconv.AppendInt(nil, n, 10)
	return nil
}

func (v *parsed) parseNumber() error {
	var f float64
	if err := json.Unmarshal(v.compact, &f); err != nil {
		return fmt.Errorf("%w: expected a finite number", ErrInvalidValue)
	}
	canon, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("%w: expected a finite number", ErrInvalidValue)
	}
	v.canon = canon
	return nil
}

func (v *parsed) parseBoolean() error {
	var b bool
	if err := json.Unmarshal(v.compact, &b); err != nil {
		return fmt.Errorf("%w: expected true or false", ErrInvalidValue)
	}
	v.canon = strconv.AppendBool(nil, b)
	return nil
}

func (v *parsed) parseGeo() error {
	var g struct {
		Lat *float64 `json:"lat"`
		Lon *float64 `json:"lon"`
	}
	dec := json.NewDecoder(bytes.NewReader(v.compact))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil || g.Lat == nil || g.Lon == nil || dec.More() {
		return fmt.Errorf(`%w: expected {"lat": number, "lon": number}`, ErrInvalidValue)
	}
	if *g.Lat < -90 || *g.Lat > 90 || *g.Lon < -180 || *g.Lon > 180 {
		return fmt.Errorf("%w: latitude must be within ±90 and longitude within ±180", ErrInvalidValue)
	}
	v.lat, v.lon = *g.Lat, *g.Lon
	canon, err := json.Marshal(geoJSON{Lat: v.lat, Lon: v.lon})
	v.canon = canon
	return err
}

func jsonString(s string) (json.RawMessage, error) { return json.Marshal(s) }

func jsonStringErr(s string, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return jsonString(s)
}

// asciiLower lower-cases ASCII letters only, so byte positions are kept.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
