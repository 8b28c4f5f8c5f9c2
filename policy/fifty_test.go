package policy

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// extraRoles are the roles of the generated policies, beyond the defaults.
func extraRoles() []string {
	return []string{"billing", "fraud", "marketing", "hr", "research", "legal", "security", "qa", "sales", "ops", "contractor"}
}

// fiftyFS is a realistic set of 50 policies: the 8 default ones plus 42
// generated per role, mixing scopes, categories, single fields, purposes,
// working hours, weekdays, grants and teams, permits and forbids.
func fiftyFS(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	def := DefaultFS()
	for _, name := range []string{"00-guardrails.cedar", "10-services.cedar", "20-support.cedar", "30-analytics.cedar", "40-lifecycle.cedar"} {
		f, err := readFile(def, name)
		if err != nil {
			t.Fatal(err)
		}
		m[name] = &fstest.MapFile{Data: []byte(f)}
	}
	cats := []string{"contact", "identity", "location", "device", "behavioural", "content", "financial"}
	fields := []string{"email", "phone", "full_name", "birth_date", "address", "location", "device_id", "ip_address", "interests", "bio", "iban"}
	defSet, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	limit := 50 - defSet.Len() // generated policies beyond the defaults
	var b strings.Builder
	n := 0
	for i, r := range extraRoles() {
		c1, c2 := cats[i%len(cats)], cats[(i+3)%len(cats)]
		fld := fields[i%len(fields)]
		ps := []string{
			fmt.Sprintf(`@id("%[1]s-protected")
permit (principal is Employee, action in [Action::"read_pseudonym", Action::"read_generalised", Action::"read_masked"], resource in Category::"%[2]s")
when { principal.roles.contains("%[1]s") && context.purpose == "%[1]s" && context.caller_in_jurisdiction };`, r, c1),
			fmt.Sprintf(`@id("%[1]s-raw-field")
permit (principal is Employee, action == Action::"read_raw", resource == Field::"%[2]s")
when {
  principal.roles.contains("%[1]s") && context.purpose == "%[1]s" && context.has_justification &&
  context.hour >= 8 && context.hour < 18 && !["Sat", "Sun"].contains(context.weekday)
};`, r, fld),
			fmt.Sprintf(`@id("%[1]s-no-raw-without-grant")
forbid (principal, action == Action::"read_raw", resource in Category::"%[2]s")
when { principal.roles.contains("%[1]s") }
unless { context.grant like "GR-*" };`, r, c2),
			fmt.Sprintf(`@id("%[1]s-team-write")
permit (principal, action == Action::"write", resource)
when { principal.roles.contains("%[1]s") && principal.team == "%[1]s-team" && context.subject_jurisdiction == "eu" };`, r),
		}
		for _, p := range ps {
			if n == limit {
				break
			}
			b.WriteString(p + "\n\n")
			n++
		}
	}
	m["50-generated.cedar"] = &fstest.MapFile{Data: []byte(b.String())}
	return m
}

func fiftySet(t testing.TB) *Set {
	t.Helper()
	s, err := Load(fiftyFS(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 50 {
		t.Fatalf("%d policies, want 50", s.Len())
	}
	if err := Check(s, defaultSchema(t)); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFiftySet(t *testing.T) { fiftySet(t) }
