package pseudonym

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	switch form {
	case Withheld:
		return nil, nil
	case Raw:
		return bytes.Clone(v.compact), nil
	}
	// The released value is built in scratch, on the stack when it fits,
	// and copied out once, so the caller owns it.
	var scratch [64]byte
	out, err := t.appendForm(scratch[:0], f, form, &v, scope, now)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: field %q in form %q: %w", f.Name, form, err)
	}
	return bytes.Clone(out), nil
}

// appendForm appends the JSON of v in form Pseudonym, Generalised or Masked
// to dst.
func (t *Transformer) appendForm(dst []byte, f schema.Field, form Form, v *parsed, scope string, now time.Time) ([]byte, error) {
	switch form {
	case Pseudonym:
		return t.appendPseudonym(dst, f, v, scope)
	case Generalised:
		return appendGeneralised(dst, f, v, now)
	case Masked:
		return appendMasked(dst, f.Type, v.text)
	}
	return dst, ErrUnsupported
}

func (t *Transformer) appendPseudonym(dst []byte, f schema.Field, v *parsed, scope string) ([]byte, error) {
	if scope == "" {
		return dst, errors.New("pseudonym: a scope is required")
	}
	switch f.Method {
	case "siv":
		// "sv_" and base64url: nothing to escape either.
		dst = append(dst, '"')
		dst = t.siv.appendSeal(dst, scope, v.tokenInput(f.Type))
		return append(dst, '"'), nil
	case "ff1":
		return t.appendFormatPreserving(dst, f.Type, v, scope)
	}
	// A token is "tk_" and base64url: nothing in it needs escaping in JSON.
	dst = append(dst, '"')
	dst = t.tok.AppendToken(dst, scope, v.tokenInput(f.Type))
	return append(dst, '"'), nil
}

// appendFormatPreserving encrypts a phone number, string or integer with
// FF1, the scope being the tweak.
func (t *Transformer) appendFormatPreserving(dst []byte, typ string, v *parsed, scope string) ([]byte, error) {
	base := t.ff1Dec
	if typ == "string" {
		base = t.ff1Alnum
	}
	f, err := base.WithTweak([]byte(scope))
	if err != nil {
		return dst, err
	}
	var s string
	switch typ {
	case "phone":
		s, err = Phone(f, string(v.text))
	case "string":
		s, err = f.EncryptEmbedded(asciiLower(string(v.text)))
	case "integer":
		n, err := f.EncryptInt(v.integer)
		if err != nil {
			return dst, err
		}
		return strconv.AppendInt(dst, n, 10), nil
	default:
		return dst, ErrUnsupported
	}
	if err != nil {
		return dst, err
	}
	return appendJSONString(dst, s), nil
}

func appendGeneralised(dst []byte, f schema.Field, v *parsed, now time.Time) ([]byte, error) {
	switch f.Type {
	case "date":
		// An age band or a year is digits, '-' and '+': no escaping.
		if f.Method == "age-band" {
			return appendQuoted(dst, v.text, func(dst, s []byte) ([]byte, error) { return appendAgeBand(dst, s, now) })
		}
		return appendQuoted(dst, v.text, appendYear)
	case "geo":
		lat, lon := GeoCell(v.lat, v.lon)
		return appendGeoJSON(dst, lat, lon), nil
	case "ip":
		// A network is hex digits, '.', ':' and '/': no escaping.
		return appendQuoted(dst, v.text, appendIPPrefix)
	}
	return dst, ErrUnsupported
}

// appendQuoted appends '"', what appendFn appends of s, and '"': for
// outputs that have nothing JSON would escape.
func appendQuoted(dst, s []byte, appendFn func(dst, s []byte) ([]byte, error)) ([]byte, error) {
	n := len(dst)
	out, err := appendFn(append(dst, '"'), s)
	if err != nil {
		return dst[:n], err
	}
	return append(out, '"'), nil
}

// appendYear appends Year(date) to dst.
func appendYear(dst, date []byte) ([]byte, error) {
	if _, _, _, ok := parseDate(date); !ok {
		return dst, fmt.Errorf("%w: date is not YYYY-MM-DD", ErrInvalidValue)
	}
	return append(dst, date[:4]...), nil
}

func appendMasked(dst []byte, typ string, text []byte) ([]byte, error) {
	s := string(text)
	switch typ {
	case "email":
		return appendJSONString(dst, MaskEmail(s)), nil
	case "phone":
		return appendJSONString(dst, MaskPhone(s)), nil
	case "string":
		return appendJSONString(dst, MaskString(s)), nil
	}
	return dst, ErrUnsupported
}

// parsed is a field value decoded by its type.
type parsed struct {
	compact json.RawMessage // the JSON as given, compacted
	canon   []byte          // token input: the string, or canonical JSON (geo: see tokenInput)
	// text is the decoded string of string-typed values. Like canon and
	// compact, it may share memory with the caller's value, which is only
	// ever read.
	text     []byte
	integer  int64
	lat, lon float64
}

// tokenInput returns what a token or SIV seals of the value: canon, or for
// a geo value its canonical JSON, {"lat":…,"lon":…} as json.Marshal writes
// it.
func (v *parsed) tokenInput(typ string) []byte {
	if typ == "geo" {
		return appendGeoJSON(make([]byte, 0, len(`{"lat":-00.000000000000000,"lon":-000.000000000000000}`)), v.lat, v.lon)
	}
	return v.canon
}

// parseValue decodes raw as a value of type typ. Errors say what was
// expected, never what was found.
func parseValue(typ string, raw json.RawMessage) (parsed, error) {
	switch typ {
	case "string", "email", "phone", "date", "ip":
		return parseString(typ, raw)
	case "geo":
		if v, ok := plainGeo(raw); ok {
			return v, v.setGeo(v.lat, v.lon)
		}
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
		v.text = s
	} else {
		var s string
		if err := json.Unmarshal(v.compact, &s); err != nil {
			return v, fmt.Errorf("%w: expected a JSON string (type %s)", ErrInvalidValue, typ)
		}
		v.text = []byte(s)
	}
	v.canon = v.text
	return v, nil
}

// plainString decodes the common case of a JSON string literal without
// escapes, sparing the reflection of json.Unmarshal: the string is the
// bytes between the quotes, which it returns without copying.
func plainString(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c < 0x20 || c == '"' || c == '\\' {
			return nil, false
		}
	}
	if !utf8.Valid(inner) {
		return nil, false
	}
	return inner, true
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
	return v.setGeo(*g.Lat, *g.Lon)
}

// setGeo checks a decoded coordinate's range and keeps it. Its canonical
// JSON, the token input, is made by tokenInput when a pseudonym needs it.
func (v *parsed) setGeo(lat, lon float64) error {
	if lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return fmt.Errorf("%w: latitude must be within ±90 and longitude within ±180", ErrInvalidValue)
	}
	v.lat, v.lon = lat, lon
	return nil
}

// plainGeo decodes the common form of a geo value, exactly
// {"lat":number,"lon":number} or {"lon":number,"lat":number} with no
// whitespace, sparing json.Compact, the reflection of json.Decoder and its
// allocations. Anything else (whitespace, other keys, escapes in keys,
// duplicates, numbers that do not fit a float64) it leaves to the general
// path, which decides; what it accepts, the general path decodes to the
// same coordinates, and compacting it changes nothing.
func plainGeo(raw []byte) (parsed, bool) {
	v := parsed{compact: raw}
	var haveLat, haveLon bool
	rest := raw
	for i, open := range []byte{'{', ','} {
		if len(rest) < len(`{"lat":0`) || rest[0] != open || rest[1] != '"' || rest[2] != 'l' || rest[5] != '"' || rest[6] != ':' {
			return v, false
		}
		var dst *float64
		switch {
		case rest[3] == 'a' && rest[4] == 't' && !haveLat:
			dst, haveLat = &v.lat, true
		case rest[3] == 'o' && rest[4] == 'n' && !haveLon:
			dst, haveLon = &v.lon, true
		default:
			return v, false
		}
		rest = rest[len(`{"lat":`):]
		n := jsonNumberLen(rest)
		if n == 0 {
			return v, false
		}
		f, err := strconv.ParseFloat(string(rest[:n]), 64)
		if err != nil {
			return v, false
		}
		*dst = f
		rest = rest[n:]
		if i == 1 && (len(rest) != 1 || rest[0] != '}') {
			return v, false
		}
	}
	return v, true
}

// jsonNumberLen returns the length of the JSON number b starts with
// (-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), or 0 if it starts with
// none.
func jsonNumberLen(b []byte) int {
	i := 0
	digits := func() int {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0
		}
	}
	return i
}

// appendGeoJSON appends {"lat":…,"lon":…} as json.Marshal writes a geoJSON.
func appendGeoJSON(dst []byte, lat, lon float64) []byte {
	dst = append(dst, `{"lat":`...)
	dst = appendJSONFloat(dst, lat)
	dst = append(dst, `,"lon":`...)
	dst = appendJSONFloat(dst, lon)
	return append(dst, '}')
}

// appendJSONFloat appends a finite float64 as encoding/json writes it: like
// ECMAScript, in plain decimals unless the magnitude is below 1e-6 or from
// 1e21 up, and then with an unpadded exponent (1e-7, not 1e-07).
func appendJSONFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// appendJSONString appends s as encoding/json's Marshal writes a string:
// quoted, with '"', '\\', control characters, '<', '>', '&', U+2028 and
// U+2029 escaped and invalid UTF-8 replaced. Strings with none of these are
// copied as they are; the others, rare, go through json.Marshal itself.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return appendMarshalledString(dst, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			return appendMarshalledString(dst, s)
		}
		i += size
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendMarshalledString(dst []byte, s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic("pseudonym: json.Marshal failed on a string: " + err.Error()) // it cannot
	}
	return append(dst, b...)
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
