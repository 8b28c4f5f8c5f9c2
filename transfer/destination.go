package transfer

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
)

// Legal bases a destination may name (GDPR Chapter V).
const (
	// BasisAdequacy: Art. 45, the country has an EU adequacy decision
	// (see Adequate).
	BasisAdequacy = "adequacy"
	// BasisSCC: Art. 46(2)(c), standard contractual clauses.
	BasisSCC = "scc"
	// BasisBCR: Art. 47, binding corporate rules.
	BasisBCR = "bcr"
	// BasisConsent: Art. 49(1)(a), the subject's explicit consent. It is a
	// derogation meant for occasional transfers, not a transfer mechanism for
	// a regular flow: it is accepted, but Warnings flags it, and the operator
	// must be able to show each subject's consent to this transfer after
	// being told of the risks.
	BasisConsent = "consent"
	// BasisNone: no transfer mechanism; only for destinations inside the EEA,
	// where no Chapter V transfer takes place.
	BasisNone = "none"
)

// LegalBases lists the legal bases in the order error messages give them.
var LegalBases = []string{BasisAdequacy, BasisSCC, BasisBCR, BasisConsent, BasisNone}

// adequate lists the countries (ISO 3166-1 alpha-2) with an EU adequacy
// decision under Art. 45 GDPR, as of 2024:
//
//	AD Andorra, AR Argentina, CA Canada (commercial organisations subject to
//	PIPEDA only), CH Switzerland, FO Faroe Islands, GB United Kingdom,
//	GG Guernsey, IL Israel, IM Isle of Man, JE Jersey, JP Japan,
//	KR Republic of Korea, NZ New Zealand, UY Uruguay.
//
// The United States is deliberately absent. Its decision (the EU-US Data
// Privacy Framework, 2023) covers only organisations certified under the
// framework, which a configuration cannot vouch for, so a US destination
// needs scc or bcr here. Partial decisions (Canada) are taken at their word:
// the operator must check that the recipient falls within them.
var adequate = map[string]string{
	"AD": "Andorra",
	"AR": "Argentina",
	"CA": "Canada",
	"CH": "Switzerland",
	"FO": "Faroe Islands",
	"GB": "United Kingdom",
	"GG": "Guernsey",
	"IL": "Israel",
	"IM": "Isle of Man",
	"JE": "Jersey",
	"JP": "Japan",
	"KR": "Republic of Korea",
	"NZ": "New Zealand",
	"UY": "Uruguay",
}

// Adequate reports whether country has an EU adequacy decision (see the list
// above; the United States is treated as not adequate).
func Adequate(country string) bool { _, ok := adequate[country]; return ok }

var eea = func() map[string]bool {
	cs, err := enclave.ExpandCountries([]string{"EEA"})
	if err != nil {
		panic(err)
	}
	m := make(map[string]bool, len(cs))
	for _, c := range cs {
		m[c] = true
	}
	return m
}()

// InEEA reports whether country is a member of the European Economic Area.
func InEEA(country string) bool { return eea[country] }

// Reserved column names: every exported row starts with them.
const (
	// ColumnSubject is the subject's identifier as a token scoped to the
	// destination.
	ColumnSubject = "subject"
	// ColumnCountry is the subject's country (ISO 3166-1 alpha-2), as is.
	ColumnCountry = "country"
)

// Destination is an approved destination of transfers.
type Destination struct {
	Name       string `yaml:"name" json:"name"`
	Country    string `yaml:"country" json:"country"`
	LegalBasis string `yaml:"legal_basis" json:"legal_basis"`
	// Allow says which fields the destination may receive and in which form.
	// A field named in some rule's Fields takes that rule's form, whatever
	// the rules naming its category say; otherwise the rule naming its
	// category decides. Every other field is never sent.
	Allow []Rule `yaml:"allow" json:"allow"`
	// QuasiIdentifiers are the columns (received fields, or "country") that
	// together could single a subject out; their transformed values are
	// checked for k-anonymity before release.
	QuasiIdentifiers []string `yaml:"quasi_identifiers" json:"quasi_identifiers"`
	// K is the minimum size of a group of records sharing the same
	// quasi-identifier values (at least 2).
	K int `yaml:"k" json:"k"`
	// MaxSuppressed is the largest fraction (0..1) of the selected records
	// that may be suppressed; above it the whole transfer is refused.
	MaxSuppressed float64 `yaml:"max_suppressed" json:"max_suppressed"`
	// DailyQuota caps the rows sent to the destination per day.
	DailyQuota int `yaml:"daily_quota" json:"daily_quota"`
}

// Rule lets a destination receive some fields in one form.
type Rule struct {
	Fields     []string `yaml:"fields,omitempty" json:"fields,omitempty"`
	Categories []string `yaml:"categories,omitempty" json:"categories,omitempty"`
	// Form is pseudonym, generalised or masked; raw only for destinations
	// inside the EEA (and Warnings flags it even then).
	Form string `yaml:"form" json:"form"`
}

// Forms a rule may name.
var ruleForms = []pseudonym.Form{pseudonym.Pseudonym, pseudonym.Generalised, pseudonym.Masked, pseudonym.Raw}

// Defaults returns the example destinations of the default configuration:
//
//   - us-analytics (US, standard contractual clauses): behavioural and
//     device data as tokens scoped to the destination, except the IP address
//     which is generalised to its network; the birth date as an age band; no
//     contact fields. Quasi-identifiers: country and age band, k = 5.
//   - ch-research (Switzerland, adequacy decision): the location as a grid
//     cell and the birth date as an age band, nothing else.
//     Quasi-identifiers: country, age band and cell, k = 10.
func Defaults() []Destination {
	return []Destination{
		{
			Name:       "us-analytics",
			Country:    "US",
			LegalBasis: BasisSCC,
			Allow: []Rule{
				{Categories: []string{"behavioural", "device"}, Form: string(pseudonym.Pseudonym)},
				{Fields: []string{"ip_address", "birth_date"}, Form: string(pseudonym.Generalised)},
			},
			QuasiIdentifiers: []string{ColumnCountry, "birth_date"},
			K:                5,
			MaxSuppressed:    0.1,
			DailyQuota:       1_000_000,
		},
		{
			Name:       "ch-research",
			Country:    "CH",
			LegalBasis: BasisAdequacy,
			Allow: []Rule{
				{Fields: []string{"location", "birth_date"}, Form: string(pseudonym.Generalised)},
			},
			QuasiIdentifiers: []string{ColumnCountry, "birth_date", "location"},
			K:                10,
			MaxSuppressed:    0.1,
			DailyQuota:       1_000_000,
		},
	}
}

// PathError is a problem with a destination's configuration at a key path
// such as "transfers.destinations[1].country" (ValidateAll) or "country"
// (Destination.Validate, relative to the destination).
type PathError struct {
	Path string
	Msg  string
}

func (e *PathError) Error() string { return e.Path + ": " + e.Msg }

// ConfigPath is the configuration key destinations live under.
const ConfigPath = "transfers.destinations"

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)

// ValidateAll validates every destination and checks that names are unique.
// The error is a *PathError whose path starts with ConfigPath.
func ValidateAll(ds []Destination, sch *schema.Schema) error {
	seen := make(map[string]int, len(ds))
	for i, d := range ds {
		prefix := fmt.Sprintf("%s[%d]", ConfigPath, i)
		if err := d.validate(sch); err != nil {
			return &PathError{prefix + "." + err.Path, err.Msg}
		}
		if j, dup := seen[d.Name]; dup {
			return &PathError{prefix + ".name", fmt.Sprintf("destination %q is already defined at %s[%d]", d.Name, ConfigPath, j)}
		}
		seen[d.Name] = i
	}
	return nil
}

// Validate checks one destination against the schema. The error is a
// *PathError whose path is relative to the destination ("legal_basis").
func (d Destination) Validate(sch *schema.Schema) error {
	if err := d.validate(sch); err != nil {
		return err
	}
	return nil
}

func (d Destination) validate(sch *schema.Schema) *PathError {
	if sch == nil {
		return &PathError{"name", "no schema to validate against"}
	}
	if !nameRE.MatchString(d.Name) {
		return &PathError{"name", fmt.Sprintf("%q must be 1-40 characters of a-z, 0-9 and '-', starting with a letter", d.Name)}
	}
	if !enclave.ValidCountry(d.Country) {
		return &PathError{"country", fmt.Sprintf("%q is not an ISO 3166-1 alpha-2 country code", d.Country)}
	}
	if err := d.validateBasis(); err != nil {
		return err
	}
	if _, err := d.resolve(sch); err != nil {
		return err
	}
	if err := d.validateQuasi(sch); err != nil {
		return err
	}
	if d.K < 2 {
		return &PathError{"k", fmt.Sprintf("%d is too small: k must be at least 2 (k = 1 releases records that single a subject out)", d.K)}
	}
	if math.IsNaN(d.MaxSuppressed) || d.MaxSuppressed < 0 || d.MaxSuppressed > 1 {
		return &PathError{"max_suppressed", fmt.Sprintf("%v is not a fraction between 0 and 1", d.MaxSuppressed)}
	}
	if d.DailyQuota < 1 {
		return &PathError{"daily_quota", fmt.Sprintf("%d: the daily quota must be at least 1 row", d.DailyQuota)}
	}
	return nil
}

func (d Destination) validateBasis() *PathError {
	c := d.Country
	switch d.LegalBasis {
	case BasisNone:
		if InEEA(c) {
			return nil
		}
		if Adequate(c) {
			return &PathError{"legal_basis", fmt.Sprintf("%s is outside the EEA: a transfer there needs legal_basis adequacy, scc or bcr", c)}
		}
		return &PathError{"legal_basis", fmt.Sprintf("%s has no EU adequacy decision: a transfer there needs legal_basis scc or bcr", c)}
	case BasisAdequacy:
		if Adequate(c) {
			return nil
		}
		if InEEA(c) {
			return &PathError{"legal_basis", fmt.Sprintf("%s is in the EEA: no transfer mechanism is needed; use legal_basis none", c)}
		}
		return &PathError{"legal_basis", fmt.Sprintf("%s has no EU adequacy decision: a transfer there needs legal_basis scc or bcr", c)}
	case BasisSCC, BasisBCR, BasisConsent:
		return nil
	}
	return &PathError{"legal_basis", fmt.Sprintf("unknown legal basis %q (one of %s)", d.LegalBasis, strings.Join(LegalBases, ", "))}
}

func (d Destination) validateQuasi(sch *schema.Schema) *PathError {
	cols, _ := d.resolve(sch)
	seen := map[string]bool{}
	for i, q := range d.QuasiIdentifiers {
		p := fmt.Sprintf("quasi_identifiers[%d]", i)
		if seen[q] {
			return &PathError{p, fmt.Sprintf("%q is listed twice", q)}
		}
		seen[q] = true
		if q == ColumnCountry {
			continue
		}
		if q == ColumnSubject {
			return &PathError{p, "subject is a token unique to each subject, not a quasi-identifier"}
		}
		if !slices.ContainsFunc(cols, func(c Column) bool { return c.Name == q }) {
			return &PathError{p, fmt.Sprintf("%q is not a field the destination receives", q)}
		}
	}
	return nil
}

// Column is a field a destination receives, and its form.
type Column struct {
	Name  string
	Field schema.Field
	Form  pseudonym.Form
}

// resolve returns the fields the destination may receive, in schema order,
// with their forms.
func (d Destination) resolve(sch *schema.Schema) ([]Column, *PathError) {
	forms := map[string]pseudonym.Form{}    // field -> form, from Fields
	fieldAt := map[string]string{}          // field -> path naming it
	catForms := map[string]pseudonym.Form{} // category -> form
	catAt := map[string]string{}
	if len(d.Allow) == 0 {
		return nil, &PathError{"allow", "the destination receives no fields: allow needs at least one rule"}
	}
	for i, r := range d.Allow {
		rp := fmt.Sprintf("allow[%d]", i)
		form := pseudonym.Form(r.Form)
		if !slices.Contains(ruleForms, form) {
			return nil, &PathError{rp + ".form", fmt.Sprintf("unknown form %q (one of pseudonym, generalised, masked; raw inside the EEA only)", r.Form)}
		}
		if form == pseudonym.Raw && !InEEA(d.Country) {
			return nil, &PathError{rp + ".form", fmt.Sprintf("raw values may not be sent outside the EEA (%s): use pseudonym, generalised or masked", d.Country)}
		}
		if len(r.Fields) == 0 && len(r.Categories) == 0 {
			return nil, &PathError{rp, "a rule needs fields or categories"}
		}
		for j, name := range r.Fields {
			p := fmt.Sprintf("%s.fields[%d]", rp, j)
			f, ok := sch.Field(name)
			if !ok {
				if name == ColumnCountry || name == ColumnSubject {
					return nil, &PathError{p, fmt.Sprintf("%q is always sent (as a plain country code or a destination-scoped token); do not list it", name)}
				}
				return nil, &PathError{p, fmt.Sprintf("unknown field %q: not in the schema", name)}
			}
			if prev, dup := fieldAt[name]; dup {
				return nil, &PathError{p, fmt.Sprintf("field %q is already allowed by %s", name, prev)}
			}
			if !pseudonym.Supports(f, form) {
				return nil, &PathError{p, fmt.Sprintf("field %q (type %s, method %s) cannot be released in form %s", name, f.Type, f.Method, form)}
			}
			fieldAt[name] = p
			forms[name] = form
		}
		for j, c := range r.Categories {
			p := fmt.Sprintf("%s.categories[%d]", rp, j)
			if !slices.Contains(schema.Categories, c) {
				return nil, &PathError{p, fmt.Sprintf("unknown category %q (one of %s)", c, strings.Join(schema.Categories, ", "))}
			}
			if prev, dup := catAt[c]; dup {
				return nil, &PathError{p, fmt.Sprintf("category %q is already allowed by %s", c, prev)}
			}
			catAt[c] = p
			catForms[c] = form
		}
	}
	var cols []Column
	for _, f := range sch.Fields() {
		if f.Name == ColumnCountry || f.Name == ColumnSubject {
			if _, named := fieldAt[f.Name]; named || catAt[f.Category] != "" {
				return nil, &PathError{"allow", fmt.Sprintf("schema field %q clashes with the column of that name every transfer carries", f.Name)}
			}
			continue
		}
		if form, ok := forms[f.Name]; ok {
			cols = append(cols, Column{f.Name, f, form})
			continue
		}
		form, ok := catForms[f.Category]
		if !ok {
			continue
		}
		if !pseudonym.Supports(f, form) {
			return nil, &PathError{catAt[f.Category], fmt.Sprintf("field %q of category %s (type %s, method %s) cannot be released in form %s: name the fields that can instead", f.Name, f.Category, f.Type, f.Method, form)}
		}
		cols = append(cols, Column{f.Name, f, form})
	}
	return cols, nil
}

// Receives returns the fields the destination may receive, in schema order,
// with their forms. The destination must be valid.
func (d Destination) Receives(sch *schema.Schema) ([]Column, error) {
	cols, err := d.resolve(sch)
	if err != nil {
		return nil, err
	}
	return cols, nil
}

// Warnings returns the things about a valid destination an operator must be
// told at start, though they are allowed: consent as the legal basis, raw
// values leaving the enclave.
func (d Destination) Warnings() []string {
	var out []string
	if d.LegalBasis == BasisConsent {
		out = append(out, fmt.Sprintf("destination %s (%s) relies on consent (Art. 49(1)(a) GDPR): a derogation for occasional transfers; every subject sent must have given explicit consent to this transfer after being informed of its risks", d.Name, d.Country))
	}
	for i, r := range d.Allow {
		if r.Form == string(pseudonym.Raw) {
			out = append(out, fmt.Sprintf("destination %s (%s) receives raw values (allow[%d]): the data leaves the enclave unpseudonymised", d.Name, d.Country, i))
		}
	}
	return out
}
