// Package enclave decides where a subject's personal data may live: which
// jurisdictions the enclave accepts, which sites it has, and which site is a
// subject's home (placement). It is pure: no storage, no I/O, no clock.
package enclave

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// ErrOutsideJurisdiction is returned when a subject's country is not accepted
// by the enclave: such a subject's data must not be stored at all.
var ErrOutsideJurisdiction = errors.New("country outside the enclave's jurisdictions")

// Named country sets that configurations may use in place of country codes.
var namedSets = map[string][]string{
	// The 27 member states of the European Union (ISO 3166-1 alpha-2; Greece is GR).
	"EU": {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
		"IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"},
	// The European Economic Area: the EU plus Iceland, Liechtenstein and Norway.
	"EEA": {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
		"IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO"},
}

var (
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
	siteRE    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,39}$`)
)

// ValidCountry reports whether c has the shape of an ISO 3166-1 alpha-2 code.
func ValidCountry(c string) bool { return countryRE.MatchString(c) }

// ExpandCountries resolves named sets (EU, EEA) and country codes into a
// sorted list of distinct country codes.
func ExpandCountries(items []string) ([]string, error) {
	seen := map[string]bool{}
	for _, it := range items {
		if set, ok := namedSets[it]; ok {
			for _, c := range set {
				seen[c] = true
			}
			continue
		}
		if !ValidCountry(it) {
			return nil, fmt.Errorf("%q is neither an ISO 3166-1 alpha-2 country code nor a named set (EU, EEA)", it)
		}
		seen[it] = true
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

// Site is one physical location of the enclave with its own storage and keys.
type Site struct {
	Name    string `yaml:"name" json:"name"`
	Country string `yaml:"country" json:"country"`
	// Replica optionally names another site, in the enclave's jurisdictions,
	// that keeps a copy of every record homed here.
	Replica string `yaml:"replica,omitempty" json:"replica,omitempty"`
}

// Rule places subjects from the listed countries (or named sets) at a site.
type Rule struct {
	Countries []string `yaml:"countries" json:"countries"`
	Site      string   `yaml:"site" json:"site"`
}

// Config describes an enclave. The field order of Rules matters: the first
// rule that names a country wins.
type Config struct {
	Name          string   `yaml:"name"`
	Jurisdictions []string `yaml:"jurisdictions"`
	Sites         []Site   `yaml:"sites"`
	Placement     []Rule   `yaml:"placement"`
	DefaultSite   string   `yaml:"default_site"`
}

// Default is the enclave of the articles: the EU/EEA, with a site in Dublin
// and one in Hamar; subjects from Norway, Iceland and Liechtenstein live in
// Hamar, everyone else in Dublin.
func Default() Config {
	return Config{
		Name:          "eu",
		Jurisdictions: []string{"EU", "EEA"},
		Sites: []Site{
			{Name: "ie-dublin", Country: "IE"},
			{Name: "no-hamar", Country: "NO"},
		},
		Placement:   []Rule{{Countries: []string{"NO", "IS", "LI"}, Site: "no-hamar"}},
		DefaultSite: "ie-dublin",
	}
}

// FieldError is a validation error tied to one configuration key, given as a
// path such as "sites[1].country".
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Placement is where one subject's record lives.
type Placement struct {
	Home    string
	Replica string // empty when the home site has no replica
}

// Sites returns the sites that hold the record: the home, then the replica.
func (p Placement) Sites() []string {
	if p.Replica == "" {
		return []string{p.Home}
	}
	return []string{p.Home, p.Replica}
}

// Enclave is a validated configuration, ready to place subjects.
type Enclave struct {
	name     string
	accepted map[string]bool
	sites    []Site
	byName   map[string]Site
	rules    map[string]string
	dflt     string
}

// New validates c and returns the enclave it describes.
func New(c Config) (*Enclave, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	accepted, _ := ExpandCountries(c.Jurisdictions)
	e := &Enclave{
		name:     c.Name,
		accepted: map[string]bool{},
		sites:    slices.Clone(c.Sites),
		byName:   map[string]Site{},
		rules:    map[string]string{},
		dflt:     c.DefaultSite,
	}
	for _, a := range accepted {
		e.accepted[a] = true
	}
	for _, s := range c.Sites {
		e.byName[s.Name] = s
	}
	for _, r := range c.Placement {
		cs, _ := ExpandCountries(r.Countries)
		for _, country := range cs {
			if _, dup := e.rules[country]; !dup {
				e.rules[country] = r.Site
			}
		}
	}
	return e, nil
}

// Validate checks the configuration and returns the first problem found.
func (c Config) Validate() error {
	if !siteRE.MatchString(c.Name) {
		return &FieldError{"enclave.name", fmt.Sprintf("%q must be 1-40 characters of a-z, 0-9 and '-', starting with a letter", c.Name)}
	}
	if len(c.Jurisdictions) == 0 {
		return &FieldError{"enclave.jurisdictions", "at least one country or named set (EU, EEA) is required"}
	}
	accepted, err := ExpandCountries(c.Jurisdictions)
	if err != nil {
		return &FieldError{"enclave.jurisdictions", err.Error()}
	}
	in := func(country string) bool { _, ok := slices.BinarySearch(accepted, country); return ok }
	if len(c.Sites) == 0 {
		return &FieldError{"enclave.sites", "at least one site is required"}
	}
	names := map[string]int{}
	for i, s := range c.Sites {
		p := fmt.Sprintf("enclave.sites[%d]", i)
		if !siteRE.MatchString(s.Name) {
			return &FieldError{p + ".name", fmt.Sprintf("%q must be 1-40 characters of a-z, 0-9 and '-', starting with a letter", s.Name)}
		}
		if _, dup := names[s.Name]; dup {
			return &FieldError{p + ".name", fmt.Sprintf("site %q is defined twice", s.Name)}
		}
		names[s.Name] = i
		if !ValidCountry(s.Country) {
			return &FieldError{p + ".country", fmt.Sprintf("%q is not an ISO 3166-1 alpha-2 country code", s.Country)}
		}
		if !in(s.Country) {
			return &FieldError{p + ".country", fmt.Sprintf("site %q is in %s, outside the enclave's jurisdictions", s.Name, s.Country)}
		}
	}
	for i, s := range c.Sites {
		if s.Replica == "" {
			continue
		}
		p := fmt.Sprintf("enclave.sites[%d].replica", i)
		j, ok := names[s.Replica]
		switch {
		case !ok:
			return &FieldError{p, fmt.Sprintf("unknown site %q", s.Replica)}
		case s.Replica == s.Name:
			return &FieldError{p, fmt.Sprintf("site %q cannot be its own replica", s.Name)}
		case c.Sites[j].Replica != "":
			return &FieldError{p, fmt.Sprintf("replica %q has a replica of its own; chains of replicas are not supported", s.Replica)}
		}
	}
	for i, r := range c.Placement {
		p := fmt.Sprintf("enclave.placement[%d]", i)
		if _, ok := names[r.Site]; !ok {
			return &FieldError{p + ".site", fmt.Sprintf("unknown site %q", r.Site)}
		}
		if len(r.Countries) == 0 {
			return &FieldError{p + ".countries", "at least one country is required"}
		}
		cs, err := ExpandCountries(r.Countries)
		if err != nil {
			return &FieldError{p + ".countries", err.Error()}
		}
		for _, country := range cs {
			if !in(country) {
				return &FieldError{p + ".countries", fmt.Sprintf("%s is outside the enclave's jurisdictions; its subjects cannot be placed", country)}
			}
		}
	}
	if _, ok := names[c.DefaultSite]; !ok {
		return &FieldError{"enclave.default_site", fmt.Sprintf("unknown site %q (sites: %s)", c.DefaultSite, strings.Join(siteNames(c.Sites), ", "))}
	}
	return nil
}

func siteNames(ss []Site) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name
	}
	return out
}

// Name is the enclave's name.
func (e *Enclave) Name() string { return e.name }

// Sites lists the enclave's sites in configuration order.
func (e *Enclave) Sites() []Site { return slices.Clone(e.sites) }

// Site returns the named site.
func (e *Enclave) Site(name string) (Site, bool) {
	s, ok := e.byName[name]
	return s, ok
}

// Accepts reports whether subjects from country may be stored.
func (e *Enclave) Accepts(country string) bool { return e.accepted[country] }

// Place returns the home (and replica) of a subject from country, or an
// error wrapping ErrOutsideJurisdiction.
func (e *Enclave) Place(country string) (Placement, error) {
	if !e.accepted[country] {
		return Placement{}, fmt.Errorf("%w: %q", ErrOutsideJurisdiction, country)
	}
	home, ok := e.rules[country]
	if !ok {
		home = e.dflt
	}
	return Placement{Home: home, Replica: e.byName[home].Replica}, nil
}
