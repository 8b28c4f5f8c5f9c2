package policy

import (
	"errors"
	"regexp"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		want   []string // regexps, one per error; none means valid
	}{
		{"valid", `permit (principal is Employee, action in Action::"read", resource in Category::"contact")
when { principal.roles.contains("support") && context.has_justification && resource.name == "email" && context.weekday != "Sun" };`, nil},
		{"valid write on the subject", `permit (principal, action == Action::"erase", resource == Subject::"*");`, nil},
		{"unknown principal type", `permit (principal is User, action, resource);`,
			[]string{"^p.cedar:1:1: unrecognized entity type `User`$", `^p.cedar:1:1: unable to find an applicable action`}},
		{"unknown type in a condition", "permit (principal, action, resource)\nwhen { principal == Admin::\"root\" };",
			[]string{"^p.cedar:1:1: unrecognized entity type `Admin`$"}},
		{"unknown action in the scope", `forbid (principal, action == Action::"delete", resource);`,
			[]string{"^p.cedar:1:1: unrecognized action `Action::\"delete\"`$", `^p.cedar:1:1: unable to find an applicable action`}},
		{"unknown action in a condition", "permit (principal, action, resource)\nwhen { action == Action::\"delete\" };",
			[]string{"^p.cedar:1:1: unrecognized action `Action::\"delete\"`$"}},
		{"unknown field", "permit (\n  principal,\n  action == Action::\"read_raw\",\n  resource == Field::\"emial\"\n);",
			[]string{`^p.cedar:4:15: unknown field Field::"emial": "emial" is not in the schema$`}},
		{"unknown field in a condition", "permit (principal, action == Action::\"read_raw\", resource)\nwhen { resource == Field::\"passport\" };",
			[]string{`^p.cedar:2:20: unknown field Field::"passport"`}},
		{"unknown category", "forbid (principal, action, resource in Category::\"health\");",
			[]string{`^p.cedar:1:40: unknown category Category::"health" \(categories: contact, `}},
		{"unknown category in a set", "permit (principal, action == Action::\"read_raw\", resource)\nwhen { resource in [Category::\"contact\", Category::\"medical\"] };",
			[]string{`^p.cedar:2:\d+: unknown category Category::"medical"`}},
		{"individual subject", `permit (principal, action == Action::"erase", resource == Subject::"alice");`,
			[]string{`^p.cedar:1:\d+: Subject::"alice" can never match`}},
		{"unknown field name compared", "permit (principal, action == Action::\"read_raw\", resource)\nwhen {\n  resource.name == \"emial\" };",
			[]string{`^p.cedar:3:20: resource.name is compared with "emial", which is not a field of the schema$`}},
		{"unknown category compared", "permit (principal, action == Action::\"read_raw\", resource is Field)\nwhen { \"health\" != resource.category };",
			[]string{`^p.cedar:2:8: resource.category is compared with "health"`}},
		{"bad weekday", "permit (principal, action == Action::\"write\", resource)\nwhen { context.weekday == \"Monday\" };",
			[]string{`^p.cedar:2:27: context.weekday is compared with "Monday"`}},
		{"misspelt context attribute", "permit (principal, action == Action::\"read_raw\", resource)\nwhen { context.purpse == \"support\" };",
			[]string{"^p.cedar:1:1: attribute `purpse` in context for Action::\"read_raw\" not found$"}},
		{"wrong type", `permit (principal, action == Action::"write", resource) when { context.hour > "9" };`,
			[]string{`^p.cedar:1:1: unexpected type: expected .*Long but saw String$`}},
		{"field attribute on the subject", `permit (principal, action == Action::"write", resource) when { resource.name == "email" };`,
			[]string{"^p.cedar:1:1: attribute `name` on entity type `Subject` not found$"}},
		{"read of the subject", `permit (principal, action == Action::"read_raw", resource is Subject);`,
			[]string{`^p.cedar:1:1: unable to find an applicable action`}},
	}
	sch := defaultSchema(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Load(fsOf("p.cedar", c.policy))
			if err != nil {
				t.Fatal(err)
			}
			err = Check(s, sch)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Check = %v, want Errors", err)
			}
			if len(es) != len(c.want) {
				t.Fatalf("errors:\n%v\nwant %d", err, len(c.want))
			}
			for i, re := range c.want {
				if !regexp.MustCompile(re).MatchString(es[i].Error()) {
					t.Errorf("error %q does not match %q", es[i], re)
				}
			}
		})
	}
}

func TestCheckPointsAtTheRightPolicy(t *testing.T) {
	s, err := Load(fsOf(
		"a.cedar", "permit (principal, action, resource);\n\n// second\npermit (principal, action == Action::\"read_raw\", resource)\nwhen { context.nope };",
		"b.cedar", "@id(\"later\")\nforbid (principal, action, resource in Category::\"x\");",
	))
	if err != nil {
		t.Fatal(err)
	}
	err = Check(s, defaultSchema(t))
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("Check = %v", err)
	}
	if es[0].File != "a.cedar" || es[0].Line != 4 || es[0].Column != 1 {
		t.Errorf("first error at %s:%d:%d", es[0].File, es[0].Line, es[0].Column)
	}
	if es[1].File != "b.cedar" || es[1].Line != 2 || es[1].Column != 40 {
		t.Errorf("second error at %s:%d:%d: %v", es[1].File, es[1].Line, es[1].Column, es[1])
	}
}
