package replay_test

import (
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/monitor/replay"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
)

// t0 is when the test logs start.
var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// subject is a log pseudonym for test entries.
var subject = auditlog.SubjectPseudonym([]byte("log key"), []byte("handle"))

// noRaw is a policy file that makes the default set stricter: nothing raw.
const noRaw = `@id("no-raw") forbid (principal, action == Action::"read_raw", resource);` + "\n"

// defaultSet is the built-in policy set.
func defaultSet(t testing.TB) *policy.Set {
	t.Helper()
	set, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// stricterFS is the built-in policy files plus noRaw.
func stricterFS(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{"05-no-raw.cedar": {Data: []byte(noRaw)}}
	names, err := fs.Glob(policy.DefaultFS(), "*.cedar")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		b, err := fs.ReadFile(policy.DefaultFS(), name)
		if err != nil {
			t.Fatal(err)
		}
		m[name] = &fstest.MapFile{Data: b}
	}
	return m
}

func stricterSet(t testing.TB) *policy.Set {
	t.Helper()
	set, err := policy.Load(stricterFS(t))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// policyEntry is the entry the gateway's RecordPolicy writes for set.
func policyEntry(set *policy.Set, fields []schema.Field, at time.Time) *auditlog.Entry {
	e := &auditlog.Entry{Time: at, RequestID: "p", Kind: auditlog.KindPolicy,
		Policy: &auditlog.PolicyRef{Digest: set.Digest(), IDs: set.IDs()}, Detail: "policy set in force; loaded by test"}
	for _, f := range set.Files() {
		e.PolicyFiles = append(e.PolicyFiles, auditlog.PolicyFile{Name: f.Name, Text: f.Text})
	}
	for _, f := range fields {
		e.Schema = append(e.Schema, auditlog.SchemaField{Name: f.Name, Type: f.Type, Category: f.Category, Method: f.Method})
	}
	return e
}

// caller is a principal and the context of its request.
type caller struct {
	p   authn.Principal
	ctx policy.Context
}

// readEntry decides a read of fields by c with set and logs it as the
// gateway does: every decided field in its decided form.
func readEntry(set *policy.Set, c caller, fields []schema.Field, at time.Time) *auditlog.Entry {
	d := set.Decide(policy.Request{Principal: c.p, Fields: fields, Context: c.ctx}, func(f schema.Field, form policy.Form) bool {
		return pseudonym.Supports(f, pseudonym.Form(form))
	})
	e := accessEntry(auditlog.KindDecision, "read", c, at)
	e.Policy = &auditlog.PolicyRef{Digest: d.Digest}
	e.Decision, e.Status = auditlog.Deny, 403
	for _, f := range d.Fields {
		e.Fields = append(e.Fields, auditlog.Field{Name: f.Field, Form: string(f.Form), Policies: f.Policies})
		if f.Form != policy.Withheld {
			e.Decision, e.Status = auditlog.Allow, 200
		}
	}
	return e
}

// actionEntry decides a non-read action on a subject's record as the
// gateway does.
func actionEntry(set *policy.Set, kind auditlog.Kind, action string, c caller, at time.Time) *auditlog.Entry {
	ok, ids := set.Allowed(c.p, action, nil, c.ctx)
	e := accessEntry(kind, action, c, at)
	e.Policy = &auditlog.PolicyRef{Digest: set.Digest(), IDs: ids}
	e.Decision = auditlog.Allow
	if !ok {
		e.Decision, e.Status = auditlog.Deny, 403
	}
	if kind == auditlog.KindTransfer {
		e.Subject = ""
		e.Transfer = &auditlog.TransferRecord{Destination: "us-analytics", Country: "US", LegalBasis: "scc"}
	}
	return e
}

func accessEntry(kind auditlog.Kind, action string, c caller, at time.Time) *auditlog.Entry {
	return &auditlog.Entry{Time: at, RequestID: "r", Kind: kind, Action: action, Subject: subject,
		Actor: &auditlog.Actor{Sub: c.p.Subject, Type: policy.PrincipalType(c.p), Roles: c.p.Roles,
			Country: c.p.Country, Team: c.p.Team},
		Purpose: c.ctx.Purpose, Justification: c.ctx.Justification, Grant: c.ctx.Grant,
		Context: &auditlog.RequestContext{SubjectCountry: c.ctx.SubjectCountry, SubjectJurisdiction: c.ctx.SubjectJurisdiction,
			SubjectSite: c.ctx.SubjectSite, CallerInJurisdiction: c.ctx.CallerInJurisdiction, Hour: c.ctx.Hour, Weekday: c.ctx.Weekday}}
}

// callers is a spread of callers and contexts, from inside and outside the
// jurisdiction, with and without purposes and justifications.
func callers() []caller {
	var out []caller
	roles := [][]string{{"support"}, {"analyst"}, {"service"}, {"ingest"}, {"dpo"}, {"intern"}, {"support", "analyst"}, {"transfer-officer"}, {"erasure", "service"}}
	purposes := []string{"", "support", "analytics", "service"}
	countries := []string{"IE", "DE", "CN", "US"}
	for i, r := range roles {
		for j, pu := range purposes {
			for k, co := range countries {
				ctx := policy.Context{Purpose: pu, SubjectCountry: "FR", SubjectJurisdiction: "eu", SubjectSite: "eu-west",
					CallerInJurisdiction: co == "IE" || co == "DE"}
				if (i+j+k)%2 == 0 {
					ctx.Justification = "TICKET-4711"
				}
				ctx = ctx.WithTime(t0.Add(time.Duration(i*7+j*3+k) * time.Hour))
				out = append(out, caller{p: authn.Principal{Subject: "caller-" + co, Roles: r, Country: co}, ctx: ctx})
			}
		}
	}
	return out
}

// canonical passes e through the log's encoding, as a monitor reads it.
func canonical(t testing.TB, e *auditlog.Entry) *auditlog.Entry {
	t.Helper()
	b, err := auditlog.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	d, err := auditlog.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// replayAll observes entries from index 0 and returns every disagreement.
func replayAll(t testing.TB, r *replay.Replayer, entries []*auditlog.Entry) []replay.Disagreement {
	t.Helper()
	var all []replay.Disagreement
	for i, e := range entries {
		all = append(all, r.Observe(uint64(i), canonical(t, e))...)
	}
	return all
}

// kinds lists the kinds of ds, in order.
func kinds(ds []replay.Disagreement) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Kind)
	}
	return out
}
