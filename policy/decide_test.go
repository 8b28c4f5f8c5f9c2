package policy

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/schema"
)

func employee(country string, roles ...string) authn.Principal {
	return authn.Principal{Subject: "e-" + country, Roles: roles, Country: country}
}

func inEEA(purpose, justification string) Context {
	return Context{Purpose: purpose, Justification: justification, CallerInJurisdiction: true, SubjectCountry: "DE", SubjectJurisdiction: "eu", SubjectSite: "ie-dublin", Hour: 10, Weekday: "Tue"}
}

func abroad(purpose, justification string) Context {
	c := inEEA(purpose, justification)
	c.CallerInJurisdiction = false
	return c
}

// TestDefaultRules exercises every default policy both ways, in Go (the
// same ground as default.test.yaml, which operators run with the CLI).
func TestDefaultRules(t *testing.T) {
	s := defaultSet(t)
	svc := authn.Principal{Subject: "pipeline", Roles: []string{"service"}, Country: "IE"}
	cases := []struct {
		name     string
		p        authn.Principal
		field    string
		ctx      Context
		want     Form
		policies []string
	}{
		{"services read raw", svc, "email", inEEA("service", ""), Raw, []string{"services-read"}},
		{"services read special-category raw", svc, "health_condition", inEEA("service", ""), Raw, []string{"services-read"}},
		{"no role, nothing", employee("IE", "marketing"), "email", inEEA("support", "x"), Withheld, nil},
		{"support raw with justification in the EEA", employee("IE", "support"), "email", inEEA("support", "ticket 1"), Raw, []string{"support-contact-identity-raw"}},
		{"support raw identity", employee("NO", "support"), "national_id", inEEA("support", "ticket 1"), Raw, []string{"support-contact-identity-raw"}},
		{"support from CN: pseudonym, never raw", employee("CN", "support"), "email", abroad("support", "ticket 1"), Pseudonym, []string{"support-protected-forms"}},
		{"support without justification: no raw", employee("IE", "support"), "email", inEEA("support", ""), Pseudonym, []string{"support-protected-forms"}},
		{"support other purpose", employee("IE", "support"), "phone", inEEA("engineering", "x"), Withheld, nil},
		{"support location protected", employee("IE", "support"), "location", inEEA("support", "x"), Pseudonym, []string{"support-protected-forms"}},
		{"special-category withheld for support", employee("IE", "support"), "health_condition", inEEA("support", "x"), Withheld, []string{"special-category-withheld"}},
		{"special-category withheld abroad", employee("US", "support"), "health_condition", abroad("support", "x"), Withheld, []string{"outside-jurisdiction-no-raw", "special-category-withheld"}},
		{"analyst behavioural pseudonym", employee("DE", "analyst"), "interests", inEEA("analytics", ""), Pseudonym, []string{"analyst-behavioural-device"}},
		{"analyst device pseudonym", employee("DE", "analyst"), "ip_address", inEEA("analytics", ""), Pseudonym, []string{"analyst-behavioural-device"}},
		{"analyst contact withheld", employee("DE", "analyst"), "email", inEEA("analytics", ""), Withheld, nil},
		{"analyst wrong purpose", employee("DE", "analyst"), "interests", inEEA("support", "x"), Withheld, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := s.Decide(Request{Principal: c.p, Fields: []schema.Field{field(t, c.field)}, Context: c.ctx}, AllForms)
			got := d.Fields[0]
			if got.Field != c.field || got.Form != c.want || !slices.Equal(got.Policies, c.policies) {
				t.Errorf("got %+v, want %s by %v", got, c.want, c.policies)
			}
			if d.Digest != s.Digest() {
				t.Error("decision without the set's digest")
			}
		})
	}
}

func TestDefaultActions(t *testing.T) {
	s := defaultSet(t)
	email := field(t, "email")
	cases := []struct {
		name   string
		p      authn.Principal
		action string
		field  *schema.Field
		want   bool
		ids    []string
	}{
		{"ingest service writes", authn.Principal{Subject: "s", Roles: []string{"service", "ingest"}}, ActionWrite, nil, true, []string{"ingest-write"}},
		{"ingest employee writes a field", employee("IE", "ingest"), ActionWrite, &email, true, []string{"ingest-write"}},
		{"support does not write", employee("IE", "support"), ActionWrite, nil, false, nil},
		{"erasure erases", employee("IE", "erasure"), ActionErase, nil, true, []string{"erasure"}},
		{"dpo erases", employee("FR", "dpo"), ActionErase, nil, true, []string{"erasure"}},
		{"ingest does not erase", employee("IE", "ingest"), ActionErase, nil, false, nil},
		{"read_raw abroad is forbidden", employee("CN", "support"), ActionReadRaw, &email, false, []string{"outside-jurisdiction-no-raw"}},
		{"unknown action", employee("IE", "dpo"), "delete", nil, false, nil},
		{"the read group is not an action", authn.Principal{Subject: "s", Roles: []string{"service"}}, ActionRead, &email, false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := inEEA("legal", "because")
			ctx.CallerInJurisdiction = c.p.Country != "CN"
			ok, ids := s.Allowed(c.p, c.action, c.field, ctx)
			if ok != c.want || !slices.Equal(ids, c.ids) {
				t.Errorf("Allowed = %v %v, want %v %v", ok, ids, c.want, c.ids)
			}
		})
	}
}

func TestDecideWholeSchema(t *testing.T) {
	s := defaultSet(t)
	sch := defaultSchema(t)
	d := s.Decide(Request{Principal: employee("IE", "support"), Fields: sch.Fields(), Context: inEEA("support", "ticket 9")}, AllForms)
	want := map[string]Form{
		"full_name": Raw, "birth_date": Raw, "national_id": Raw, "email": Raw, "phone": Raw,
		"address": Pseudonym, "location": Pseudonym, "device_id": Pseudonym, "ip_address": Pseudonym,
		"interests": Pseudonym, "bio": Pseudonym, "iban": Pseudonym, "health_condition": Withheld,
	}
	if len(d.Fields) != len(want) {
		t.Fatalf("%d fields", len(d.Fields))
	}
	for i, f := range d.Fields {
		if f.Field != sch.Names()[i] || f.Form != want[f.Field] || d.Form(f.Field) != f.Form {
			t.Errorf("%s: %s, want %s", f.Field, f.Form, want[f.Field])
		}
	}
	if d.Form("not-requested") != Withheld {
		t.Error("unrequested field not withheld")
	}
}

// capabilities is a plausible stand-in for the pseudonymisation package:
// each method gives one protected form.
func capabilities(f schema.Field, form Form) bool {
	switch form {
	case Raw:
		return true
	case Pseudonym:
		return f.Method == "hmac" || f.Method == "siv" || f.Method == "ff1"
	case Generalised:
		return f.Method == "age-band" || f.Method == "year" || f.Method == "geo-cell" || f.Method == "ip-prefix"
	case Masked:
		return f.Method == "mask"
	}
	return false
}

func TestDecideFollowsSupports(t *testing.T) {
	s := defaultSet(t)
	req := Request{Principal: employee("CN", "support"), Context: abroad("support", "x")}
	for _, n := range []string{"birth_date", "address", "email", "location"} {
		req.Fields = append(req.Fields, field(t, n))
	}
	d := s.Decide(req, capabilities)
	want := []Form{Generalised, Masked, Pseudonym, Generalised}
	for i, f := range d.Fields {
		if f.Form != want[i] {
			t.Errorf("%s: %s, want %s", f.Field, f.Form, want[i])
		}
	}
	// Nothing supported: withheld; the forbid on raw is the only policy met.
	none := func(schema.Field, Form) bool { return false }
	if d := s.Decide(req, none); d.Fields[0].Form != Withheld || d.Fields[0].Policies != nil {
		t.Errorf("no supported form: %+v", d.Fields[0])
	}
	rawOnly := func(_ schema.Field, f Form) bool { return f == Raw }
	if d := s.Decide(req, rawOnly); d.Fields[2].Form != Withheld || !slices.Equal(d.Fields[2].Policies, []string{"outside-jurisdiction-no-raw"}) {
		t.Errorf("raw only, abroad: %+v", d.Fields[2])
	}
	// nil means AllForms.
	if d := s.Decide(req, nil); d.Fields[1].Form != Pseudonym {
		t.Errorf("nil supports: %+v", d.Fields[1])
	}
}

// A policy that names a principal makes the subject part of the memo key.
func TestMemoKeysSubjectWhenPoliciesNameOne(t *testing.T) {
	s, err := Load(fsOf("p.cedar", `permit (principal == Employee::"alice", action == Action::"read_raw", resource);`))
	if err != nil {
		t.Fatal(err)
	}
	f := []schema.Field{field(t, "email")}
	alice := authn.Principal{Subject: "alice", Roles: []string{"support"}, Country: "IE"}
	bob := alice
	bob.Subject = "bob"
	for range 2 {
		if got := s.Decide(Request{Principal: alice, Fields: f}, nil).Fields[0].Form; got != Raw {
			t.Errorf("alice: %s", got)
		}
		if got := s.Decide(Request{Principal: bob, Fields: f}, nil).Fields[0].Form; got != Withheld {
			t.Errorf("bob: %s", got)
		}
	}
	// Same for a principal named in a condition.
	s, err = Load(fsOf("p.cedar", `permit (principal, action == Action::"read_raw", resource) when { [Employee::"alice"].contains(principal) };`))
	if err != nil {
		t.Fatal(err)
	}
	s.Decide(Request{Principal: alice, Fields: f}, nil)
	if got := s.Decide(Request{Principal: bob, Fields: f}, nil).Fields[0].Form; got != Withheld {
		t.Errorf("bob after alice: %s", got)
	}
	if d, _ := Default(); d.keySubject {
		t.Error("the default set names no principal; subjects need not be in the key")
	}
}

// The memo key covers every attribute: changing any one of them after a
// memoised decision must give the decision Cedar gives.
func TestMemoKeyCoversEveryAttribute(t *testing.T) {
	src := `permit (principal, action == Action::"read_raw", resource == Field::"email") when {
  principal is Employee && principal.roles.contains("r") && principal.country == "IE" && principal.team == "t" &&
  context.purpose == "p" && context.justification == "j" && context.subject_country == "DE" &&
  context.subject_jurisdiction == "eu" && context.subject_site == "s" && context.caller_in_jurisdiction &&
  context.hour == 9 && context.weekday == "Mon" && context.grant == "g" && resource.category == "contact" && resource.type == "email"
};`
	s, err := Load(fsOf("p.cedar", src))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(s, defaultSchema(t)); err != nil {
		t.Fatal(err)
	}
	base := Request{
		Principal: authn.Principal{Subject: "x", Roles: []string{"r"}, Country: "IE", Team: "t"},
		Fields:    []schema.Field{field(t, "email")},
		Context:   Context{Purpose: "p", Justification: "j", SubjectCountry: "DE", SubjectJurisdiction: "eu", SubjectSite: "s", CallerInJurisdiction: true, Hour: 9, Weekday: "Mon", Grant: "g"},
	}
	if got := s.Decide(base, nil).Fields[0].Form; got != Raw {
		t.Fatalf("base: %s", got)
	}
	muts := map[string]func(*Request){
		"type":         func(r *Request) { r.Principal.Roles = []string{"r", "service"} },
		"roles":        func(r *Request) { r.Principal.Roles = []string{"q"} },
		"country":      func(r *Request) { r.Principal.Country = "FR" },
		"team":         func(r *Request) { r.Principal.Team = "" },
		"purpose":      func(r *Request) { r.Context.Purpose = "q" },
		"justif":       func(r *Request) { r.Context.Justification = "" },
		"subj country": func(r *Request) { r.Context.SubjectCountry = "FR" },
		"subj jur":     func(r *Request) { r.Context.SubjectJurisdiction = "us" },
		"subj site":    func(r *Request) { r.Context.SubjectSite = "t" },
		"caller in":    func(r *Request) { r.Context.CallerInJurisdiction = false },
		"hour":         func(r *Request) { r.Context.Hour = 10 },
		"weekday":      func(r *Request) { r.Context.Weekday = "Tue" },
		"grant":        func(r *Request) { r.Context.Grant = "" },
		"field":        func(r *Request) { r.Fields = []schema.Field{field(t, "phone")} },
		"category":     func(r *Request) { r.Fields[0].Category = "identity" },
		"field type":   func(r *Request) { r.Fields[0].Type = "string" },
	}
	for name, mut := range muts {
		r := base
		r.Fields = slices.Clone(base.Fields)
		mut(&r)
		if got := s.Decide(r, nil).Fields[0].Form; got != Withheld {
			t.Errorf("%s changed, memo still says %s", name, got)
		}
	}
	// Role order and duplicates do not matter.
	r := base
	r.Principal.Roles = []string{"z", "r", "r"}
	if got := s.Decide(r, nil).Fields[0].Form; got != Raw {
		t.Errorf("reordered roles: %s", got)
	}
}

// A forbid whose evaluation fails counts as matching: fail closed.
func TestErroringForbidDenies(t *testing.T) {
	s, err := Load(fsOf("p.cedar", `@id("all") permit (principal, action, resource);
@id("overflow") forbid (principal, action == Action::"read_raw", resource) when { context.hour * 9223372036854775807 > 0 };`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(s, defaultSchema(t)); err != nil {
		t.Fatal(err)
	}
	req := Request{Principal: employee("IE", "x"), Fields: []schema.Field{field(t, "email")}}
	if d := s.Decide(req, nil); d.Fields[0].Form != Raw {
		t.Errorf("hour 0: %+v", d.Fields[0])
	}
	req.Context.Hour = 5 // 5 * MaxInt64 overflows: the forbid errors
	d := s.Decide(req, nil)
	if got := d.Fields[0]; got.Form != Pseudonym || !slices.Equal(got.Policies, []string{"all"}) {
		t.Errorf("hour 5: %+v", got)
	}
	if ok, ids := s.Allowed(req.Principal, ActionReadRaw, &req.Fields[0], req.Context); ok || !slices.Equal(ids, []string{"overflow"}) {
		t.Errorf("Allowed read_raw at hour 5 = %v %v", ok, ids)
	}
}

func TestContextWithTime(t *testing.T) {
	c := Context{Purpose: "x"}.WithTime(time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("CET", 3600)))
	if c.Hour != 22 || c.Weekday != "Sun" || c.Purpose != "x" {
		t.Errorf("%+v", c)
	}
}

func TestAllForms(t *testing.T) {
	f := field(t, "email")
	h := field(t, "health_condition")
	for _, form := range readForms() {
		if !AllForms(f, form) {
			t.Errorf("email %s", form)
		}
		if AllForms(h, form) != (form == Raw) {
			t.Errorf("health_condition %s", form)
		}
	}
	if AllForms(f, Withheld) || AllForms(f, "bogus") {
		t.Error("AllForms accepts non-forms")
	}
}

// Decide is safe for concurrent use and agrees with a cold evaluation.
func TestDecideConcurrent(t *testing.T) {
	s := fiftySet(t)
	reqs := randomRequests(t, 200, 7)
	want := make([]Decision, len(reqs))
	for i, r := range reqs {
		want[i] = s.decide(r, capabilities, false)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for k := range 3 * len(reqs) {
				i := (k*7 + g*13) % len(reqs)
				if got := s.Decide(reqs[i], capabilities); !cmp.Equal(got, want[i]) {
					t.Errorf("request %d: %s", i, cmp.Diff(want[i], got))
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMemoIsBounded(t *testing.T) {
	m := newMemo(64)
	for i := range 10000 {
		m.put([]byte{byte(i), byte(i >> 8)}, result{allowed: true})
	}
	n := 0
	for i := range m.shards {
		if l := len(m.shards[i].m); l > m.perShard {
			t.Fatalf("shard %d holds %d > %d", i, l, m.perShard)
		}
		n += len(m.shards[i].m)
	}
	if n > 64 {
		t.Errorf("memo holds %d entries", n)
	}
}
