package transfer

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultsValid(t *testing.T) {
	sch := defaultSchema(t)
	ds := Defaults()
	if err := ValidateAll(ds, sch); err != nil {
		t.Fatalf("ValidateAll(Defaults()) = %v", err)
	}
	for _, d := range ds {
		if w := d.Warnings(); len(w) != 0 {
			t.Errorf("%s: Warnings() = %q, want none", d.Name, w)
		}
	}
	got := map[string][]Column{}
	for _, d := range ds {
		cols, err := d.Receives(sch)
		if err != nil {
			t.Fatal(err)
		}
		got[d.Name] = cols
	}
	names := func(cs []Column) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name+":"+string(c.Form))
		}
		return out
	}
	want := map[string][]string{
		"us-analytics": {"birth_date:generalised", "device_id:pseudonym", "ip_address:generalised", "interests:pseudonym"},
		"ch-research":  {"birth_date:generalised", "location:generalised"},
	}
	for name, w := range want {
		if diff := cmp.Diff(w, names(got[name])); diff != "" {
			t.Errorf("%s receives (-want +got):\n%s", name, diff)
		}
	}
}

func TestValidateAllRejects(t *testing.T) {
	const p0, p1 = "transfers.destinations[0].", "transfers.destinations[1]."
	tests := []struct {
		name   string
		mutate func(ds []Destination)
		want   string
	}{
		{"US adequacy", func(ds []Destination) { ds[0].LegalBasis = "adequacy" },
			p0 + "legal_basis: US has no EU adequacy decision: a transfer there needs legal_basis scc or bcr"},
		{"US none", func(ds []Destination) { ds[0].LegalBasis = "none" },
			p0 + "legal_basis: US has no EU adequacy decision: a transfer there needs legal_basis scc or bcr"},
		{"adequate country none", func(ds []Destination) { ds[1].LegalBasis = "none" },
			p1 + "legal_basis: CH is outside the EEA: a transfer there needs legal_basis adequacy, scc or bcr"},
		{"EEA adequacy", func(ds []Destination) { ds[1].Country = "DE" },
			p1 + "legal_basis: DE is in the EEA: no transfer mechanism is needed; use legal_basis none"},
		{"unknown basis", func(ds []Destination) { ds[0].LegalBasis = "trust-me" },
			p0 + `legal_basis: unknown legal basis "trust-me" (one of adequacy, scc, bcr, consent, none)`},
		{"bad country", func(ds []Destination) { ds[0].Country = "usa" },
			p0 + `country: "usa" is not an ISO 3166-1 alpha-2 country code`},
		{"bad name", func(ds []Destination) { ds[0].Name = "US Analytics" },
			p0 + `name: "US Analytics" must be 1-40 characters of a-z, 0-9 and '-', starting with a letter`},
		{"unknown field", func(ds []Destination) { ds[0].Allow[1].Fields = []string{"ip_address", "shoe_size"} },
			p0 + `allow[1].fields[1]: unknown field "shoe_size": not in the schema`},
		{"unknown category", func(ds []Destination) { ds[0].Allow[0].Categories = []string{"hobbies"} },
			p0 + `allow[0].categories[0]: unknown category "hobbies" (one of contact, identity, location, device, behavioural, content, financial, special-category)`},
		{"raw outside the EEA", func(ds []Destination) { ds[0].Allow[0].Form = "raw" },
			p0 + "allow[0].form: raw values may not be sent outside the EEA (US): use pseudonym, generalised or masked"},
		{"unknown form", func(ds []Destination) { ds[1].Allow[0].Form = "encrypted" },
			p1 + `allow[0].form: unknown form "encrypted" (one of pseudonym, generalised, masked; raw inside the EEA only)`},
		{"empty rule", func(ds []Destination) { ds[1].Allow = append(ds[1].Allow, Rule{Form: "masked"}) },
			p1 + "allow[1]: a rule needs fields or categories"},
		{"no rules", func(ds []Destination) { ds[1].Allow = nil },
			p1 + "allow: the destination receives no fields: allow needs at least one rule"},
		{"field form unsupported", func(ds []Destination) { ds[1].Allow = []Rule{{Fields: []string{"birth_date"}, Form: "masked"}} },
			p1 + `allow[0].fields[0]: field "birth_date" (type date, method age-band) cannot be released in form masked`},
		{"category form unsupported", func(ds []Destination) {
			ds[0].Allow[0].Categories = append(ds[0].Allow[0].Categories, "special-category")
		}, p0 + `allow[0].categories[2]: field "health_condition" of category special-category (type string, method withhold) cannot be released in form pseudonym: name the fields that can instead`},
		{"field allowed twice", func(ds []Destination) {
			ds[1].Allow = append(ds[1].Allow, Rule{Fields: []string{"location"}, Form: "pseudonym"})
		}, p1 + `allow[1].fields[0]: field "location" is already allowed by allow[0].fields[0]`},
		{"reserved column listed", func(ds []Destination) { ds[1].Allow[0].Fields = []string{"country"} },
			p1 + `allow[0].fields[0]: "country" is always sent (as a plain country code or a destination-scoped token); do not list it`},
		{"quasi-identifier not received", func(ds []Destination) { ds[1].QuasiIdentifiers = []string{"country", "email"} },
			p1 + `quasi_identifiers[1]: "email" is not a field the destination receives`},
		{"subject as quasi-identifier", func(ds []Destination) { ds[1].QuasiIdentifiers = []string{"subject"} },
			p1 + "quasi_identifiers[0]: subject is a token unique to each subject, not a quasi-identifier"},
		{"k = 1", func(ds []Destination) { ds[0].K = 1 },
			p0 + "k: 1 is too small: k must be at least 2 (k = 1 releases records that single a subject out)"},
		{"max_suppressed above 1", func(ds []Destination) { ds[0].MaxSuppressed = 1.5 },
			p0 + "max_suppressed: 1.5 is not a fraction between 0 and 1"},
		{"no quota", func(ds []Destination) { ds[1].DailyQuota = 0 },
			p1 + "daily_quota: 0: the daily quota must be at least 1 row"},
		{"duplicate names", func(ds []Destination) { ds[1].Name = "us-analytics" },
			p1 + `name: destination "us-analytics" is already defined at transfers.destinations[0]`},
	}
	sch := defaultSchema(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := Defaults()
			tc.mutate(ds)
			err := ValidateAll(ds, sch)
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("ValidateAll = %v, want a *PathError", err)
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateRelativePath(t *testing.T) {
	d := Defaults()[0]
	d.LegalBasis = "adequacy"
	err := d.Validate(defaultSchema(t))
	want := "legal_basis: US has no EU adequacy decision: a transfer there needs legal_basis scc or bcr"
	if err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %q", err, want)
	}
}

func TestEEAAndConsent(t *testing.T) {
	sch := defaultSchema(t)
	eu := Destination{
		Name: "ie-support", Country: "IE", LegalBasis: "none",
		Allow:            []Rule{{Fields: []string{"email"}, Form: "raw"}},
		QuasiIdentifiers: []string{"country"}, K: 2, MaxSuppressed: 0, DailyQuota: 10,
	}
	jp := Destination{
		Name: "jp-survey", Country: "BR", LegalBasis: "consent",
		Allow:            []Rule{{Categories: []string{"behavioural"}, Form: "pseudonym"}},
		QuasiIdentifiers: []string{"country"}, K: 2, MaxSuppressed: 1, DailyQuota: 10,
	}
	if err := ValidateAll([]Destination{eu, jp}, sch); err != nil {
		t.Fatalf("ValidateAll = %v", err)
	}
	want := [][]string{
		{"destination ie-support (IE) receives raw values (allow[0]): the data leaves the enclave unpseudonymised"},
		{"destination jp-survey (BR) relies on consent (Art. 49(1)(a) GDPR): a derogation for occasional transfers; every subject sent must have given explicit consent to this transfer after being informed of its risks"},
	}
	for i, d := range []Destination{eu, jp} {
		if diff := cmp.Diff(want[i], d.Warnings()); diff != "" {
			t.Errorf("%s warnings (-want +got):\n%s", d.Name, diff)
		}
	}
}

func TestCountryLists(t *testing.T) {
	tests := []struct {
		c             string
		eea, adequate bool
	}{
		{"US", false, false}, {"CH", false, true}, {"GB", false, true}, {"JP", false, true},
		{"NO", true, false}, {"DE", true, false}, {"GR", true, false}, {"CN", false, false},
	}
	for _, tc := range tests {
		if InEEA(tc.c) != tc.eea || Adequate(tc.c) != tc.adequate {
			t.Errorf("%s: InEEA %v Adequate %v, want %v %v", tc.c, InEEA(tc.c), Adequate(tc.c), tc.eea, tc.adequate)
		}
	}
}
