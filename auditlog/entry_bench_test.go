package auditlog

import (
	"testing"
	"time"

	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/schema"
)

// benchDecision is a typical read: twelve requested fields, each with its
// form and deciding policy, an actor with two roles, the request context
// and the policy reference.
func benchDecision() *Entry {
	names := []string{"full_name", "birth_date", "national_id", "email", "phone", "address",
		"location", "device_id", "ip_address", "interests", "bio", "iban"}
	forms := []string{"raw", "generalised", "withheld", "pseudonym", "masked", "masked",
		"generalised", "pseudonym", "generalised", "raw", "masked", "withheld"}
	fields := make([]Field, len(names))
	ids := make([]string, 0, 3)
	for i, n := range names {
		id := []string{"support-read", "support-mask", "guardrail-id"}[i%3]
		fields[i] = Field{Name: n, Form: forms[i], Policies: []string{id}}
		if i < 3 {
			ids = append(ids, id)
		}
	}
	return &Entry{
		Time:          time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC),
		RequestID:     "r-01HV3K9Q7XG",
		Kind:          KindDecision,
		Site:          "eu-west",
		Actor:         &Actor{Sub: "alice", Type: "Employee", Roles: []string{"support", "tier2"}, Country: "IE", Team: "care"},
		Action:        "read",
		Subject:       testSubject,
		Decision:      Allow,
		Fields:        fields,
		Purpose:       "support",
		Justification: "ticket 4711",
		Context: &RequestContext{SubjectCountry: "FR", SubjectJurisdiction: "eu", SubjectSite: "eu-west",
			CallerInJurisdiction: true, Hour: 5, Weekday: "Wed"},
		Policy: &PolicyRef{Digest: "sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", IDs: ids},
		Status: 200,
	}
}

// benchServiceRead is the read of `clover bench`: a service reads all
// twelve fields raw under one policy, so version 2 writes one group.
func benchServiceRead() *Entry {
	e := benchDecision()
	e.Actor = &Actor{Sub: "clover-bench-reader", Type: "Service", Roles: []string{"service"}, Country: "IE"}
	e.Purpose, e.Justification = "", ""
	for i := range e.Fields {
		e.Fields[i].Form, e.Fields[i].Policies = "raw", []string{"services-read"}
	}
	e.Policy.IDs = []string{"services-read"}
	return e
}

// benchDenial is a refused read: one field asked, nothing released.
func benchDenial() *Entry {
	return &Entry{
		Time:      time.Date(2026, 3, 4, 23, 59, 59, 999999000, time.UTC),
		RequestID: "r-01HV3K9Q7XH",
		Kind:      KindDecision,
		Site:      "eu-west",
		Actor:     &Actor{Sub: "bob", Type: "Employee", Roles: []string{"analyst"}, Country: "US"},
		Action:    "read",
		Subject:   testSubject,
		Decision:  Deny,
		Fields:    []Field{{Name: "health_condition", Form: "withheld", Policies: []string{"guardrail-special"}}},
		Purpose:   "analytics",
		Context:   &RequestContext{SubjectCountry: "DE", SubjectJurisdiction: "eu", SubjectSite: "eu-west", Hour: 23, Weekday: "Sat"},
		Policy:    &PolicyRef{Digest: "sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", IDs: []string{"guardrail-special"}},
		Status:    403,
	}
}

// benchTransfer is the ledger entry that ends a transfer.
func benchTransfer() *Entry {
	decided := uint64(1 << 33)
	return &Entry{
		Time:      time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC),
		RequestID: "r-01HV3K9Q7XJ",
		Kind:      KindTransfer,
		Actor:     &Actor{Sub: "etl", Type: "Service", Roles: []string{"export"}},
		Action:    "transfer",
		Decision:  Allow,
		Purpose:   "analytics",
		Grant:     "g-2026-17",
		Policy:    &PolicyRef{Digest: "sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", IDs: []string{"transfer-scc"}},
		Status:    200,
		Transfer: &TransferRecord{Destination: "us-analytics", Country: "US", LegalBasis: "scc", Format: "ndjson",
			Rows: 120000, Suppressed: 37, Bytes: 48123456,
			SHA256:   "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Complete: true, Decided: &decided},
	}
}

// benchPolicy is the entry the gateway writes when it starts: the default
// policy files and the default 13-field schema.
func benchPolicy(tb testing.TB) *Entry {
	tb.Helper()
	set, err := policy.Default()
	if err != nil {
		tb.Fatal(err)
	}
	e := &Entry{Time: time.Date(2026, 3, 4, 0, 0, 0, 1000, time.UTC), RequestID: "r-01HV3K9Q7XK", Kind: KindPolicy,
		Policy: &PolicyRef{Digest: set.Digest(), IDs: set.IDs()}, Detail: "policy set in force; loaded by start"}
	for _, f := range set.Files() {
		e.PolicyFiles = append(e.PolicyFiles, PolicyFile{Name: f.Name, Text: f.Text})
	}
	for _, f := range schema.Default() {
		e.Schema = append(e.Schema, SchemaField{Name: f.Name, Type: f.Type, Category: f.Category, Method: f.Method})
	}
	return e
}

func benchEntries(tb testing.TB) []struct {
	name  string
	entry *Entry
} {
	return []struct {
		name  string
		entry *Entry
	}{
		{"read", readEntry()}, // ~600 bytes: two fields
		{"decision", benchDecision()},
		{"decision-v1", v1(benchDecision())},
		{"service-read", benchServiceRead()},
		{"service-read-v1", v1(benchServiceRead())},
		{"denial", benchDenial()},
		{"transfer", benchTransfer()},
		{"policy", benchPolicy(tb)},
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range benchEntries(b) {
		b.Run(c.name, func(b *testing.B) {
			enc, err := Encode(c.entry)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(c.entry); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range benchEntries(b) {
		b.Run(c.name, func(b *testing.B) {
			enc, err := Encode(c.entry)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(enc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeOracle and BenchmarkDecodeOracle measure the encoding/json
// implementation that Encode and Decode replaced (the oracle of the tests),
// for a before/after comparison under the same load.
func BenchmarkEncodeOracle(b *testing.B) {
	for _, c := range benchEntries(b) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := oracleEncode(c.entry); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeOracle(b *testing.B) {
	for _, c := range benchEntries(b) {
		b.Run(c.name, func(b *testing.B) {
			enc, err := Encode(c.entry)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := oracleDecode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
