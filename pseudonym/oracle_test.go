package pseudonym

// The implementation of Transform, AgeBand, Year and IPPrefix as it was
// before the allocation-free rewrite (commit e5eadb0), kept as the oracle
// that the differential tests and fuzz targets compare against: tokens are
// joined on by every destination, so no output byte may change.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/cloverenclave/clover/schema"
)

func oracleTransform(t *Transformer, f schema.Field, form Form, value json.RawMessage, scope string, now time.Time) (json.RawMessage, error) {
	if !Supports(f, form) {
		return nil, fmt.Errorf("%w: field %q (type %s, method %s) in form %q", ErrUnsupported, f.Name, f.Type, f.Method, form)
	}
	v, err := oracleParseValue(f.Type, value)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: field %q: %w", f.Name, err)
	}
	out, err := oracleForm(t, f, form, v, scope, now)
	if err != nil {
		return nil, fmt.Errorf("pseudonym: field %q in form %q: %w", f.Name, form, err)
	}
	return out, nil
}

func oracleForm(t *Transformer, f schema.Field, form Form, v oracleParsed, scope string, now time.Time) (json.RawMessage, error) {
	switch form {
	case Raw:
		return bytes.Clone(v.compact), nil
	case Withheld:
		return nil, nil
	case Pseudonym:
		if scope == "" {
			return nil, errors.New("pseudonym: a scope is required")
		}
		switch f.Method {
		case "siv":
			return json.Marshal(t.siv.Seal(scope, v.canon))
		case "ff1":
			return oracleFormatPreserving(t, f.Type, v, scope)
		}
		return json.Marshal(t.tok.Token(scope, v.canon))
	case Generalised:
		switch f.Type {
		case "date":
			if f.Method == "age-band" {
				return oracleJSONStringErr(oracleAgeBand(v.str, now))
			}
			return oracleJSONStringErr(oracleYear(v.str))
		case "geo":
			lat, lon := GeoCell(v.lat, v.lon)
			return json.Marshal(geoJSON{Lat: lat, Lon: lon})
		case "ip":
			return oracleJSONStringErr(oracleIPPrefix(v.str))
		}
	case Masked:
		switch f.Type {
		case "email":
			return json.Marshal(MaskEmail(v.str))
		case "phone":
			return json.Marshal(MaskPhone(v.str))
		case "string":
			return json.Marshal(MaskString(v.str))
		}
	}
	return nil, ErrUnsupported
}

func oracleFormatPreserving(t *Transformer, typ string, v oracleParsed, scope string) (json.RawMessage, error) {
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
		return oracleJSONStringErr(Phone(f, v.str))
	case "string":
		return oracleJSONStringErr(f.EncryptEmbedded(asciiLower(v.str)))
	case "integer":
		n, err := f.EncryptInt(v.integer)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, n, 10), nil
	}
	return nil, ErrUnsupported
}

func oracleJSONStringErr(s string, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

type geoJSON struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

type oracleParsed struct {
	compact  json.RawMessage
	canon    []byte
	str      string
	integer  int64
	lat, lon float64
}

func oracleParseValue(typ string, raw json.RawMessage) (oracleParsed, error) {
	var v oracleParsed
	switch typ {
	case "string", "email", "phone", "date", "ip":
		v.compact = trimJSONSpace(raw)
		if err := json.Unmarshal(v.compact, &v.str); err != nil {
			return v, fmt.Errorf("%w: expected a JSON string (type %s)", ErrInvalidValue, typ)
		}
		v.canon = []byte(v.str)
		return v, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return v, fmt.Errorf("%w: not valid JSON", ErrInvalidValue)
	}
	v.compact = buf.Bytes()
	switch typ {
	case "integer":
		n, err := strconv.ParseInt(string(v.compact), 10, 64)
		if err != nil {
			return v, fmt.Errorf("%w: expected an integer", ErrInvalidValue)
		}
		v.integer = n
		v.canon = strconv.AppendInt(nil, n, 10)
	case "number":
		var f float64
		if err := json.Unmarshal(v.compact, &f); err != nil {
			return v, fmt.Errorf("%w: expected a finite number", ErrInvalidValue)
		}
		canon, err := json.Marshal(f)
		if err != nil {
			return v, fmt.Errorf("%w: expected a finite number", ErrInvalidValue)
		}
		v.canon = canon
	case "boolean":
		var b bool
		if err := json.Unmarshal(v.compact, &b); err != nil {
			return v, fmt.Errorf("%w: expected true or false", ErrInvalidValue)
		}
		v.canon = strconv.AppendBool(nil, b)
	case "geo":
		var g struct {
			Lat *float64 `json:"lat"`
			Lon *float64 `json:"lon"`
		}
		dec := json.NewDecoder(bytes.NewReader(v.compact))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&g); err != nil || g.Lat == nil || g.Lon == nil || dec.More() {
			return v, fmt.Errorf(`%w: expected {"lat": number, "lon": number}`, ErrInvalidValue)
		}
		if *g.Lat < -90 || *g.Lat > 90 || *g.Lon < -180 || *g.Lon > 180 {
			return v, fmt.Errorf("%w: latitude must be within ±90 and longitude within ±180", ErrInvalidValue)
		}
		v.lat, v.lon = *g.Lat, *g.Lon
		canon, err := json.Marshal(geoJSON{Lat: v.lat, Lon: v.lon})
		v.canon = canon
		return v, err
	default:
		return v, fmt.Errorf("unknown type %q", typ)
	}
	return v, nil
}

func oracleAgeBand(birth string, now time.Time) (string, error) {
	b, err := time.Parse(time.DateOnly, birth)
	if err != nil {
		return "", fmt.Errorf("%w: birth date is not YYYY-MM-DD", ErrInvalidValue)
	}
	ny, nm, nd := now.Date()
	by, bm, bd := b.Date()
	age := ny - by
	if nm < bm || (nm == bm && nd < bd) {
		age--
	}
	if age < 0 {
		return "", fmt.Errorf("%w: birth date is in the future", ErrInvalidValue)
	}
	if age >= ageBandTop {
		return strconv.Itoa(ageBandTop) + "+", nil
	}
	lo := age / ageBandWidth * ageBandWidth
	return strconv.Itoa(lo) + "-" + strconv.Itoa(lo+ageBandWidth-1), nil
}

func oracleYear(date string) (string, error) {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return "", fmt.Errorf("%w: date is not YYYY-MM-DD", ErrInvalidValue)
	}
	return d.Format("2006"), nil
}

func oracleIPPrefix(ip string) (string, error) {
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
