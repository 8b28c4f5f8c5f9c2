package enclave

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultPlacement(t *testing.T) {
	e, err := New(Default())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		country string
		home    string
		err     error
	}{
		{"IE", "ie-dublin", nil},
		{"DE", "ie-dublin", nil},
		{"GR", "ie-dublin", nil},
		{"NO", "no-hamar", nil},
		{"IS", "no-hamar", nil},
		{"LI", "no-hamar", nil},
		{"US", "", ErrOutsideJurisdiction},
		{"CH", "", ErrOutsideJurisdiction}, // Switzerland is in neither the EU nor the EEA
		{"GB", "", ErrOutsideJurisdiction},
		{"ie", "", ErrOutsideJurisdiction},
		{"", "", ErrOutsideJurisdiction},
	}
	for _, c := range cases {
		p, err := e.Place(c.country)
		if !errors.Is(err, c.err) {
			t.Errorf("Place(%q) err = %v, want %v", c.country, err, c.err)
			continue
		}
		if p.Home != c.home {
			t.Errorf("Place(%q) = %q, want %q", c.country, p.Home, c.home)
		}
	}
}

func TestNamedSets(t *testing.T) {
	eu, err := ExpandCountries([]string{"EU"})
	if err != nil {
		t.Fatal(err)
	}
	if len(eu) != 27 {
		t.Errorf("EU has %d members, want 27", len(eu))
	}
	eea, _ := ExpandCountries([]string{"EEA"})
	if len(eea) != 30 {
		t.Errorf("EEA has %d members, want 30", len(eea))
	}
	both, _ := ExpandCountries([]string{"EU", "EEA", "IE"})
	if diff := cmp.Diff(eea, both); diff != "" {
		t.Errorf("EU+EEA+IE differs from EEA (-want +got):\n%s", diff)
	}
	if _, err := ExpandCountries([]string{"Europe"}); err == nil {
		t.Error("an unknown set name was accepted")
	}
}

func TestReplica(t *testing.T) {
	c := Default()
	c.Sites = append(c.Sites, Site{Name: "ie-cork", Country: "IE"})
	c.Sites[0].Replica = "ie-cork"
	e, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := e.Place("FR")
	if diff := cmp.Diff([]string{"ie-dublin", "ie-cork"}, p.Sites()); diff != "" {
		t.Errorf("FR sites (-want +got):\n%s", diff)
	}
	p, _ = e.Place("NO")
	if diff := cmp.Diff([]string{"no-hamar"}, p.Sites()); diff != "" {
		t.Errorf("NO sites (-want +got):\n%s", diff)
	}
}

func TestValidateRejects(t *testing.T) {
	cases := map[string]struct {
		mutate func(*Config)
		path   string
		msg    string
	}{
		"bad name":          {func(c *Config) { c.Name = "EU!" }, "enclave.name", "must be"},
		"no jurisdictions":  {func(c *Config) { c.Jurisdictions = nil }, "enclave.jurisdictions", "at least one"},
		"bad jurisdiction":  {func(c *Config) { c.Jurisdictions = []string{"Europe"} }, "enclave.jurisdictions", `"Europe"`},
		"site outside":      {func(c *Config) { c.Sites[1].Country = "US" }, "enclave.sites[1].country", "outside"},
		"duplicate site":    {func(c *Config) { c.Sites[1].Name = "ie-dublin" }, "enclave.sites[1].name", "twice"},
		"unknown replica":   {func(c *Config) { c.Sites[0].Replica = "x" }, "enclave.sites[0].replica", `unknown site "x"`},
		"self replica":      {func(c *Config) { c.Sites[0].Replica = "ie-dublin" }, "enclave.sites[0].replica", "own replica"},
		"replica chain":     {func(c *Config) { c.Sites[0].Replica = "no-hamar"; c.Sites[1].Replica = "ie-dublin" }, "enclave.sites[0].replica", "chains"},
		"rule unknown site": {func(c *Config) { c.Placement[0].Site = "nowhere" }, "enclave.placement[0].site", "unknown site"},
		"rule outside":      {func(c *Config) { c.Placement[0].Countries = []string{"US"} }, "enclave.placement[0].countries", "US is outside"},
		"no default":        {func(c *Config) { c.DefaultSite = "" }, "enclave.default_site", "unknown site"},
	}
	for name, c := range cases {
		cfg := Default()
		cfg.Sites = append([]Site(nil), cfg.Sites...)
		cfg.Placement = []Rule{{Countries: []string{"NO", "IS", "LI"}, Site: "no-hamar"}}
		c.mutate(&cfg)
		_, err := New(cfg)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want a *FieldError", name, err)
			continue
		}
		if fe.Path != c.path || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("%s: got %q, want path %q and message containing %q", name, fe.Error(), c.path, c.msg)
		}
	}
}
