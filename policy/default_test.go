package policy

import (
	"errors"
	"testing"

	"github.com/cloverenclave/clover/config"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
)

// realSupports adapts the pseudonymisation package's capability function,
// as the gateway does.
func realSupports(f schema.Field, form Form) bool { return pseudonym.Supports(f, pseudonym.Form(form)) }

func TestDefaultSetChecksAndPassesItsTests(t *testing.T) {
	set := defaultSet(t)
	sch := defaultSchema(t)
	if err := Check(set, sch); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := CheckPurposes(set, config.DefaultPurposes); err != nil {
		t.Fatalf("CheckPurposes: %v", err)
	}
	for name, supports := range map[string]func(schema.Field, Form) bool{"AllForms": AllForms, "pseudonym.Supports": realSupports} {
		results, err := RunTests(DefaultFS(), set, sch, supports)
		if err != nil {
			t.Fatalf("RunTests: %v", err)
		}
		if len(results) < 20 {
			t.Fatalf("only %d test cases", len(results))
		}
		for _, r := range results {
			if !r.Passed {
				t.Errorf("with %s: %s", name, r)
			}
		}
	}
}

func TestCheckPurposes(t *testing.T) {
	s, err := Load(fsOf("p.cedar", "permit (principal, action == Action::\"read_raw\", resource)\nwhen { context.purpose == \"support\" || \"suport\" == context.purpose };"))
	if err != nil {
		t.Fatal(err)
	}
	err = CheckPurposes(s, []string{"support", "analytics"})
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Line != 2 || es[0].Column != 40 {
		t.Fatalf("CheckPurposes = %v", err)
	}
	if want := `p.cedar:2:40: context.purpose is compared with "suport", which is not one of the purposes callers may state (support, analytics)`; es[0].Error() != want {
		t.Errorf("got  %s\nwant %s", es[0], want)
	}
}
