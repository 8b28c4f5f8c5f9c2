package policy

import (
	"errors"
	"testing"

	"github.com/cloverenclave/clover/authn"
)

// FuzzLoad feeds arbitrary text to Load and Check: they must not panic,
// every error must carry a position in the file, and a set that loads can
// decide.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"00-guardrails.cedar", "10-services.cedar", "20-support.cedar", "30-analytics.cedar", "40-lifecycle.cedar"} {
		text, err := readFile(DefaultFS(), name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(text)
	}
	for _, s := range []string{
		"", "permit", "permit (", `@id("") permit (principal, action, resource);`,
		"permit (principal, action, resource) when { context.hour * 9223372036854775807 > 0 };",
		`permit (principal, action, resource) when { "\u{ZZ}" };`,
		"forbid (principal, action in [], resource);",
		`permit (principal, action, resource) when { ip("1.2.3.4/99").isLoopback() };`,
		`permit (principal, action, resource) when { decimal("1.23456789") > decimal("x") };`,
		`permit (principal in Category::"contact", action, resource is Field in Employee::"x");`,
		`permit (principal, action, resource) when { resource.name like "e*m\*" && context has grant };`,
		"/* unterminated comment", "permit (principal, action, resource) when { [1, [2, {a: 3}]].containsAll([]) };",
	} {
		f.Add(s)
	}
	sch := defaultSchema(f)
	f.Fuzz(func(t *testing.T, text string) {
		set, err := Load(fsOf("f.cedar", text))
		if err != nil {
			checkPositions(t, err)
			return
		}
		if err := Check(set, sch); err != nil {
			checkPositions(t, err)
		}
		req := benchRequest(t)
		req.Principal = authn.Principal{Subject: "x", Roles: []string{"support"}, Country: "IE"}
		set.Decide(req, AllForms)
		set.Allowed(req.Principal, ActionWrite, nil, req.Context)
	})
}

func checkPositions(t *testing.T, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error without positions: %v", err)
	}
	for _, e := range es {
		if e.File != "f.cedar" || e.Line < 1 || e.Column < 1 {
			t.Fatalf("error without a position: %q", e)
		}
	}
}
