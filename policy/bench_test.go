package policy

import (
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/schema"
)

// benchRequest is a support caller in the EEA reading the 12 fields of the
// default schema that are not special-category.
func benchRequest(t testing.TB) Request {
	var fields []schema.Field
	for _, f := range defaultSchema(t).Fields() {
		if f.Category != "special-category" {
			fields = append(fields, f)
		}
	}
	return Request{
		Principal: authn.Principal{Subject: "alice", Roles: []string{"support", "billing"}, Country: "IE", Team: "tier2"},
		Fields:    fields,
		Context: Context{Purpose: "support", Justification: "ticket 4711", SubjectCountry: "DE", SubjectJurisdiction: "eu",
			SubjectSite: "ie-dublin", CallerInJurisdiction: true, Hour: 10, Weekday: "Tue"},
	}
}

// BenchmarkDecideCold decides 12 fields without the memo: every form is a
// Cedar call on the policies whose scope can match.
func BenchmarkDecideCold(b *testing.B) {
	s, req := fiftySet(b), benchRequest(b)
	if len(req.Fields) != 12 {
		b.Fatalf("%d fields", len(req.Fields))
	}
	b.ReportAllocs()
	for b.Loop() {
		s.decide(req, AllForms, false)
	}
}

// BenchmarkDecideMemo decides the same 12 fields from the memo.
func BenchmarkDecideMemo(b *testing.B) {
	s, req := fiftySet(b), benchRequest(b)
	s.Decide(req, AllForms)
	b.ReportAllocs()
	for b.Loop() {
		s.Decide(req, AllForms)
	}
}

// BenchmarkDecideMemoOneField is one memoised field decision.
func BenchmarkDecideMemoOneField(b *testing.B) {
	s, req := fiftySet(b), benchRequest(b)
	req.Fields = req.Fields[:1]
	s.Decide(req, AllForms)
	b.ReportAllocs()
	for b.Loop() {
		s.Decide(req, AllForms)
	}
}

// BenchmarkAllowedMemo is one memoised write decision.
func BenchmarkAllowedMemo(b *testing.B) {
	s, req := fiftySet(b), benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		s.Allowed(req.Principal, ActionWrite, nil, req.Context)
	}
}

// BenchmarkIsAuthorizedOne is one plain cedar-go call on all 50 policies,
// with the entities and context built beforehand: the cost the memo and the
// scope index avoid.
func BenchmarkIsAuthorizedOne(b *testing.B) {
	s, req := fiftySet(b), benchRequest(b)
	ps := cedar.NewPolicySet()
	for _, e := range s.entries {
		ps.Add(e.id, e.policy)
	}
	f := req.Fields[0]
	ents := types.EntityMap{}
	pe := principalEntity(req.Principal, sortedRoles(req.Principal.Roles))
	fe := fieldEntity(f)
	ents[pe.UID], ents[fe.UID] = pe, fe
	for u, e := range staticEntities() {
		ents[u] = e
	}
	r := cedar.Request{Principal: pe.UID, Action: uid(TypeAction, ActionReadRaw), Resource: fe.UID, Context: req.Context.record()}
	if d, _ := ps.IsAuthorized(ents, r); d != cedar.Allow {
		b.Fatal("expected allow")
	}
	b.ReportAllocs()
	for b.Loop() {
		ps.IsAuthorized(ents, r)
	}
}

// BenchmarkAuthorizeIndexed is one Cedar call as Decide makes it on a memo
// miss: only the policies whose scope can match.
func BenchmarkAuthorizeIndexed(b *testing.B) {
	s, req := fiftySet(b), benchRequest(b)
	var ev evaluation
	ev.init(s, req.Principal, &req.Context, false)
	f := req.Fields[0]
	b.ReportAllocs()
	for b.Loop() {
		ev.authorize(ActionReadRaw, &f)
	}
}
