package schema

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustDefault(t *testing.T) *Schema {
	t.Helper()
	s, err := New(Default())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDefaultCoversEveryCategory(t *testing.T) {
	s := mustDefault(t)
	seen := map[string]bool{}
	for _, f := range s.Fields() {
		seen[f.Category] = true
	}
	for _, c := range Categories {
		if !seen[c] {
			t.Errorf("default schema has no %s field", c)
		}
	}
}

func TestCheckAcceptsGoodValues(t *testing.T) {
	s := mustDefault(t)
	in := map[string]json.RawMessage{
		"full_name":  json.RawMessage(`"Siobhán Ní Bhriain"`),
		"birth_date": json.RawMessage(`"1990-02-28"`),
		"email":      json.RawMessage(`"siobhan@example.ie"`),
		"phone":      json.RawMessage(`"+353 87 123 4567"`),
		"location":   json.RawMessage(`{ "lat": 53.35, "lon": -6.26 }`),
		"ip_address": json.RawMessage(`"2001:db8::1"`),
		"bio":        json.RawMessage("\"line one\\nline two\""),
	}
	out, err := s.Check(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out["location"]); got != `{"lat":53.35,"lon":-6.26}` {
		t.Errorf("location not compacted: %s", got)
	}
}

func TestCheckReportsEveryBadField(t *testing.T) {
	s := mustDefault(t)
	in := map[string]json.RawMessage{
		"email":      json.RawMessage(`"not-an-email"`),
		"birth_date": json.RawMessage(`"1990-02-30"`),
		"phone":      json.RawMessage(`12345`),
		"location":   json.RawMessage(`{"lat": 91, "lon": 0}`),
		"ip_address": json.RawMessage(`"300.1.1.1"`),
		"shoe_size":  json.RawMessage(`44`),
		"full_name":  json.RawMessage("\"a\\u0000b\""),
		"iban":       json.RawMessage(`"` + strings.Repeat("x", MaxStringBytes+1) + `"`),
	}
	_, err := s.Check(in)
	var ve *ValueError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *ValueError", err)
	}
	want := []string{"birth_date", "email", "full_name", "iban", "ip_address", "location", "phone", "shoe_size"}
	if diff := cmp.Diff(want, ve.Fields()); diff != "" {
		t.Errorf("fields at fault (-want +got):\n%s", diff)
	}
	if strings.Contains(err.Error(), "not-an-email") {
		t.Errorf("error quotes a value: %v", err)
	}
}

func TestCheckScalarTypes(t *testing.T) {
	s, err := New([]Field{
		{"n", "number", "behavioural", "mask"},
		{"i", "integer", "behavioural", "mask"},
		{"b", "boolean", "behavioural", "mask"},
	})
	if err != nil {
		t.Fatal(err)
	}
	good := []map[string]json.RawMessage{
		{"n": json.RawMessage(`1.5`)}, {"i": json.RawMessage(`-7`)}, {"b": json.RawMessage(`true`)},
	}
	for _, in := range good {
		if _, err := s.Check(in); err != nil {
			t.Errorf("Check(%s) = %v", in, err)
		}
	}
	bad := []map[string]json.RawMessage{
		{"n": json.RawMessage(`"1"`)}, {"i": json.RawMessage(`1.5`)}, {"i": json.RawMessage(`1e400`)},
		{"b": json.RawMessage(`"yes"`)}, {"n": json.RawMessage(`null`)},
	}
	for _, in := range bad {
		if _, err := s.Check(in); err == nil {
			t.Errorf("Check(%s) accepted", in)
		}
	}
}

func TestNewRejects(t *testing.T) {
	cases := map[string]struct {
		fields []Field
		key    string
	}{
		"empty":        {nil, "name"},
		"bad name":     {[]Field{{"Email", "email", "contact", "hmac"}}, "name"},
		"duplicate":    {[]Field{{"a", "string", "contact", "hmac"}, {"a", "string", "contact", "hmac"}}, "name"},
		"bad type":     {[]Field{{"a", "text", "contact", "hmac"}}, "type"},
		"bad category": {[]Field{{"a", "string", "secret", "hmac"}}, "category"},
		"bad method":   {[]Field{{"a", "string", "contact", "rot13"}}, "method"},
		"misfit":       {[]Field{{"a", "string", "contact", "age-band"}}, "method"},
	}
	for name, c := range cases {
		_, err := New(c.fields)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Key != c.key {
			t.Errorf("%s: err = %v, want a FieldError on %q", name, err, c.key)
		}
	}
}
