package policy

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"testing/fstest"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/google/go-cmp/cmp"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/schema"
)

// randomRequests draws n requests: principals with roles from a pool and
// countries in and out of the EU/EEA, contexts, and subsets of the schema's
// fields. caller_in_jurisdiction follows the country, as the gateway does.
func randomRequests(t testing.TB, n int, seed int64) []Request {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	accepted, err := enclave.ExpandCountries([]string{"EU", "EEA"})
	if err != nil {
		t.Fatal(err)
	}
	countries := append(slices.Clone(accepted[:8]), "NO", "IS", "US", "CN", "GB", "CH", "IN", "BR")
	roles := append([]string{"service", "support", "analyst", "ingest", "erasure", "dpo", "viewer"}, extraRoles()...)
	purposes := append([]string{"support", "analytics", "ingest", "", "audit"}, extraRoles()...)
	weekdays := []string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
	fields := defaultSchema(t).Fields()
	pick := func(s []string) string { return s[rng.Intn(len(s))] }
	out := make([]Request, n)
	for i := range out {
		var rs []string
		for range 1 + rng.Intn(3) {
			rs = append(rs, pick(roles))
		}
		country := pick(countries)
		_, in := slices.BinarySearch(accepted, country)
		team := ""
		if rng.Intn(2) == 0 {
			team = pick(extraRoles()) + "-team"
		}
		justification := ""
		if rng.Intn(2) == 0 {
			justification = fmt.Sprintf("ticket %d", rng.Intn(1000))
		}
		grant := ""
		if rng.Intn(3) == 0 {
			grant = pick([]string{"GR-1", "GR-77", "XX-1"})
		}
		var fs []schema.Field
		for _, f := range fields {
			if rng.Intn(3) > 0 {
				fs = append(fs, f)
			}
		}
		purpose := pick(purposes)
		if rng.Intn(2) == 0 { // a purpose that some policy names for one of the roles
			purpose = rs[0]
		}
		out[i] = Request{
			Principal: authn.Principal{Subject: fmt.Sprintf("u%d", rng.Intn(50)), Roles: rs, Country: country, Team: team},
			Fields:    fs,
			Context: Context{
				Purpose: purpose, Justification: justification, SubjectCountry: pick(countries),
				SubjectJurisdiction: pick([]string{"eu", "us"}), SubjectSite: pick([]string{"ie-dublin", "no-hamar"}),
				CallerInJurisdiction: in, Hour: rng.Intn(24), Weekday: pick(weekdays), Grant: grant,
			},
		}
	}
	return out
}

// reference evaluates with plain cedar-go: every policy of the files in one
// PolicySet, all entities in one EntityMap, built here independently of the
// package's own code.
type reference struct {
	ps  *cedar.PolicySet
	sch *schema.Schema
}

func newReference(t testing.TB, fsys fstest.MapFS) *reference {
	t.Helper()
	ps := cedar.NewPolicySet()
	names := make([]string, 0, len(fsys))
	for n := range fsys {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		list, err := cedar.NewPolicyListFromBytes(n, fsys[n].Data)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range list {
			id := cedar.PolicyID(fmt.Sprintf("%s:%d", n, i))
			if v, ok := p.Annotations()["id"]; ok {
				id = cedar.PolicyID(v)
			}
			ps.Add(id, p)
		}
	}
	return &reference{ps: ps, sch: defaultSchema(t)}
}

func (r *reference) authorize(p authn.Principal, action string, f schema.Field, c Context) (bool, []string) {
	ent := func(typ, id string) types.EntityUID {
		return types.NewEntityUID(types.EntityType(typ), types.String(id))
	}
	em := types.EntityMap{}
	ptype := "Employee"
	if slices.Contains(p.Roles, "service") {
		ptype = "Service"
	}
	var roles []types.Value
	for _, x := range p.Roles {
		roles = append(roles, types.String(x))
	}
	pu := ent(ptype, p.Subject)
	em[pu] = types.Entity{UID: pu, Attributes: types.NewRecord(types.RecordMap{
		"roles": types.NewSet(roles...), "country": types.String(p.Country), "team": types.String(p.Team),
	})}
	for _, fl := range r.sch.Fields() {
		u := ent("Field", fl.Name)
		em[u] = types.Entity{UID: u, Parents: types.NewEntityUIDSet(ent("Category", fl.Category)), Attributes: types.NewRecord(types.RecordMap{
			"name": types.String(fl.Name), "category": types.String(fl.Category), "type": types.String(fl.Type),
		})}
	}
	for _, a := range []string{"read_raw", "read_pseudonym", "read_generalised", "read_masked"} {
		u := ent("Action", a)
		em[u] = types.Entity{UID: u, Parents: types.NewEntityUIDSet(ent("Action", "read"))}
	}
	dec, diag := r.ps.IsAuthorized(em, cedar.Request{
		Principal: pu,
		Action:    ent("Action", action),
		Resource:  ent("Field", f.Name),
		Context: types.NewRecord(types.RecordMap{
			"purpose": types.String(c.Purpose), "justification": types.String(c.Justification),
			"has_justification": types.Boolean(c.Justification != ""), "subject_country": types.String(c.SubjectCountry),
			"subject_jurisdiction": types.String(c.SubjectJurisdiction), "subject_site": types.String(c.SubjectSite),
			"caller_in_jurisdiction": types.Boolean(c.CallerInJurisdiction), "hour": types.Long(c.Hour),
			"weekday": types.String(c.Weekday), "grant": types.String(c.Grant),
		}),
	})
	var ids []string
	for _, rs := range diag.Reasons {
		ids = append(ids, string(rs.PolicyID))
	}
	slices.Sort(ids)
	return dec == cedar.Allow, ids
}

// TestDecideProperty checks every form Decide returns against a direct
// cedar-go evaluation: the returned form is permitted, every more revealing
// supported form is denied, the policies given are the ones Cedar names, and
// the memoised decision equals the cold one.
func TestDecideProperty(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{"default": fsOf(), "fifty": fiftyFS(t)} {
		t.Run(name, func(t *testing.T) {
			if name == "default" {
				fsys = fstest.MapFS{}
				for _, n := range []string{"00-guardrails.cedar", "10-services.cedar", "20-support.cedar", "30-analytics.cedar", "40-lifecycle.cedar"} {
					text, err := readFile(DefaultFS(), n)
					if err != nil {
						t.Fatal(err)
					}
					fsys[n] = &fstest.MapFile{Data: []byte(text)}
				}
			}
			s, err := Load(fsys)
			if err != nil {
				t.Fatal(err)
			}
			ref := newReference(t, fsys)
			formsSeen := map[Form]int{}
			for i, req := range randomRequests(t, 2000, 42) {
				supports := []func(schema.Field, Form) bool{AllForms, capabilities, realSupports}[i%3]
				d := s.Decide(req, supports)
				if cold := s.decide(req, supports, false); !cmp.Equal(d, cold) {
					t.Fatalf("draw %d: memo and cold differ: %s", i, cmp.Diff(cold, d))
				}
				if len(d.Fields) != len(req.Fields) {
					t.Fatalf("draw %d: %d decisions for %d fields", i, len(d.Fields), len(req.Fields))
				}
				for j, fd := range d.Fields {
					f := req.Fields[j]
					formsSeen[fd.Form]++
					if fd.Field != f.Name {
						t.Fatalf("draw %d: field %s in place of %s", i, fd.Field, f.Name)
					}
					var forbids []string
					for _, form := range readForms() {
						if fd.Form == form {
							ok, ids := ref.authorize(req.Principal, form.Action(), f, req.Context)
							got := slices.Sorted(slices.Values(fd.Policies))
							if !supports(f, form) || !ok || !slices.Equal(ids, got) {
								t.Fatalf("draw %d, %s: Decide gives %s by %v; Cedar says %v by %v (supported %v)", i, f.Name, form, fd.Policies, ok, ids, supports(f, form))
							}
							break
						}
						if !supports(f, form) {
							continue
						}
						ok, ids := ref.authorize(req.Principal, form.Action(), f, req.Context)
						if ok {
							t.Fatalf("draw %d, %s: Decide gives %s but Cedar permits the more revealing %s (%v)", i, f.Name, fd.Form, form, ids)
						}
						for _, id := range ids {
							if !slices.Contains(forbids, id) {
								forbids = append(forbids, id)
							}
						}
					}
					if fd.Form == Withheld {
						slices.Sort(forbids)
						if got := slices.Sorted(slices.Values(fd.Policies)); !slices.Equal(got, forbids) {
							t.Fatalf("draw %d, %s: withheld by %v, Cedar's forbids are %v", i, f.Name, got, forbids)
						}
					}
				}
			}
			t.Logf("forms: %v", formsSeen)
			for _, form := range []Form{Raw, Pseudonym, Withheld} {
				if formsSeen[form] == 0 {
					t.Errorf("no draw gave %s: the draws miss part of the policies", form)
				}
			}
		})
	}
}
