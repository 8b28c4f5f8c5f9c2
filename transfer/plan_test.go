package transfer

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cloverenclave/clover/pseudonym"
	"github.com/google/go-cmp/cmp"
)

func TestNewPlanColumns(t *testing.T) {
	sch := defaultSchema(t)
	us := Defaults()[0]
	tests := []struct {
		name      string
		requested []string
		columns   []string
		quasi     []int
	}{
		{"everything", nil,
			[]string{"subject", "country", "birth_date", "device_id", "ip_address", "interests"}, []int{1, 2}},
		{"request order, duplicates and reserved ignored", []string{"interests", "country", "birth_date", "interests", "subject"},
			[]string{"subject", "country", "interests", "birth_date"}, []int{1, 3}},
		{"quasi-identifier not requested", []string{"device_id"},
			[]string{"subject", "country", "device_id"}, []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(us, sch, tc.requested)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.columns, p.Columns()); diff != "" {
				t.Errorf("Columns (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.quasi, p.QuasiIdentifiers()); diff != "" {
				t.Errorf("QuasiIdentifiers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewPlanRefusesFields(t *testing.T) {
	_, err := NewPlan(Defaults()[0], defaultSchema(t), []string{"phone", "interests", "email", "shoe_size", "email", "birth_date"})
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("NewPlan = %v, want a *FieldError", err)
	}
	want := &FieldError{Destination: "us-analytics", Fields: []string{"email", "phone", "shoe_size"}}
	if diff := cmp.Diff(want, fe); diff != "" {
		t.Errorf("FieldError (-want +got):\n%s", diff)
	}
	if got, want := err.Error(), "destination us-analytics may not receive: email, phone, shoe_size"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestPlanTransform(t *testing.T) {
	sch := defaultSchema(t)
	tr := testTransformer(t)
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	ds := Defaults()
	us, err := NewPlan(ds[0], sch, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := NewPlan(ds[1], sch, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := map[string]json.RawMessage{
		"full_name":  json.RawMessage(`"Ada Lovelace"`),
		"email":      json.RawMessage(`"ada@example.org"`),
		"birth_date": json.RawMessage(`"1990-03-04"`),
		"ip_address": json.RawMessage(`"192.0.2.77"`),
		"interests":  json.RawMessage(`"chess"`),
		"location":   json.RawMessage(`{"lat":53.3498,"lon":-6.2603}`),
	}
	want := func(p *Plan, field, form string, v string) json.RawMessage {
		f, _ := sch.Field(field)
		out, err := tr.Transform(f, pseudonym.Form(form), json.RawMessage(v), p.Scope(), now)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	subject := func(p *Plan) json.RawMessage {
		out, err := tr.Transform(subjectField, pseudonym.Pseudonym, json.RawMessage(`"subj-1"`), p.Scope(), now)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	row, err := us.Transform(tr, "subj-1", "IE", rec, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantUS := Row{
		{"subject", subject(us)},
		{"country", json.RawMessage(`"IE"`)},
		{"birth_date", json.RawMessage(`"35-39"`)},
		{"device_id", json.RawMessage(`null`)},
		{"ip_address", want(us, "ip_address", "generalised", `"192.0.2.77"`)},
		{"interests", want(us, "interests", "pseudonym", `"chess"`)},
	}
	if diff := cmp.Diff(wantUS, row); diff != "" {
		t.Errorf("us-analytics row (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]json.RawMessage{json.RawMessage(`"IE"`), json.RawMessage(`"35-39"`)}, us.Quasi(row, nil)); diff != "" {
		t.Errorf("Quasi (-want +got):\n%s", diff)
	}
	tq, err := us.TransformQuasi(tr, "IE", rec, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(us.Quasi(row, nil), tq); diff != "" {
		t.Errorf("TransformQuasi differs from Quasi(Transform) (-want +got):\n%s", diff)
	}
	chRow, err := ch.Transform(tr, "subj-1", "IE", rec, now, row)
	if err != nil {
		t.Fatal(err)
	}
	if string(chRow[0].Value) == string(subject(us)) {
		t.Error("the subject token is the same for two destinations")
	}
	if got := len(chRow); got != 4 {
		t.Errorf("ch-research row has %d cells, want 4", got)
	}
	if _, err := us.Transform(tr, "subj-1", "Ireland", rec, now, nil); err == nil {
		t.Error("Transform accepted a country that is not a code")
	}
	bad := map[string]json.RawMessage{"birth_date": json.RawMessage(`"yesterday"`)}
	if _, err := us.Transform(tr, "subj-1", "IE", bad, now, nil); err == nil {
		t.Error("Transform accepted an invalid birth date")
	}
}

func TestLedgerAndQuota(t *testing.T) {
	p, err := NewPlan(Defaults()[1], defaultSchema(t), []string{"location"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 7200))
	got := p.Ledger(now, Summary{Rows: 90, Bytes: 1234, SHA256: "ab"}, 10)
	want := Ledger{
		Time: now.UTC(), Destination: "ch-research", Country: "CH", LegalBasis: "adequacy",
		Fields: []FieldForm{{"subject", "pseudonym"}, {"country", "raw"}, {"location", "generalised"}},
		Rows:   90, Suppressed: 10, Bytes: 1234, SHA256: "ab",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Ledger (-want +got):\n%s", diff)
	}
	d := Defaults()[0]
	if err := CheckQuota(d, 999_000, 1_000); err != nil {
		t.Errorf("CheckQuota at the quota = %v", err)
	}
	var qe *QuotaError
	if err := CheckQuota(d, 999_000, 1_001); !errors.As(err, &qe) {
		t.Errorf("CheckQuota over the quota = %v, want a *QuotaError", err)
	}
}
