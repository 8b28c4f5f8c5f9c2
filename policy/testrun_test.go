package policy

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestRunTestsReportsFailures(t *testing.T) {
	set := defaultSet(t)
	fsys := fsOf("b.test.yaml", `
- name: passes
  principal: {type: Employee, id: a, roles: [support], country: IE}
  field: email
  context: {purpose: support, justification: "t", caller_in_jurisdiction: true}
  expect: raw

- name: wrong form
  principal: {id: a, roles: [support], country: CN}
  field: email
  context: {purpose: support, justification: "t"}
  expect: raw

- name: wrong policies
  principal: {id: a, roles: [support], country: IE}
  field: email
  context: {purpose: support, justification: "t", caller_in_jurisdiction: true}
  expect: raw
  policies: [services-read]
`, "a.test.yaml", `
- name: action
  principal: {type: Service, id: s, roles: [service]}
  action: write
  expect: allow
`)
	results, err := RunTests(fsys, set, defaultSchema(t), AllForms)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a.test.yaml:2: action: expected allow, got deny (policies: none)",
		"b.test.yaml:2: passes: raw (policies: support-contact-identity-raw)",
		"b.test.yaml:8: wrong form: expected raw, got pseudonym (policies: support-protected-forms)",
		"b.test.yaml:14: wrong policies: expected raw by [services-read], got raw by [support-contact-identity-raw] (policies: support-contact-identity-raw)",
	}
	if len(results) != len(want) {
		t.Fatalf("%d results", len(results))
	}
	for i, r := range results {
		if r.String() != want[i] {
			t.Errorf("result %d:\n got %s\nwant %s", i, r, want[i])
		}
		if r.Passed != (i == 1) {
			t.Errorf("result %d passed = %v", i, r.Passed)
		}
	}
}

func TestRunTestsErrors(t *testing.T) {
	ok := "  principal: {id: a, roles: [support]}\n  field: email\n  expect: raw\n"
	cases := []struct{ name, text, want string }{
		{"syntax", "- name: x\n  principal: {id: a\n", `^t\.test\.yaml:\d+: `},
		{"not a list", "name: x\n", `^t\.test\.yaml:1: a test file holds a list of cases$`},
		{"unknown key", "- name: x\n" + ok + "  expected: raw\n", `^t\.test\.yaml:5: unknown key "expected"$`},
		{"unknown context key", "- name: x\n" + ok + "  context: {purpose: support, country: IE}\n", `^t\.test\.yaml:5: unknown key "country"$`},
		{"wrong type", "- name: x\n" + ok + "  context: {hour: late}\n", `^t\.test\.yaml:5: cannot unmarshal !!str .late. into int$`},
		{"no name", "- principal: {id: a, roles: [x]}\n  field: email\n  expect: raw\n", `^t\.test\.yaml:1: name: every case needs a name$`},
		{"duplicate name", "- name: x\n" + ok + "- name: x\n" + ok, `^t\.test\.yaml:5: case "x" is already defined at line 1$`},
		{"unknown field", "- name: x\n  principal: {id: a, roles: [x]}\n  field: emial\n  expect: raw\n", `^t\.test\.yaml:1: case "x": field "emial" is not in the schema$`},
		{"bad form", "- name: x\n  principal: {id: a, roles: [x]}\n  field: email\n  expect: allow\n", `must be raw, pseudonym, generalised, masked or withheld`},
		{"bad decision", "- name: x\n  principal: {id: a, roles: [x]}\n  action: write\n  expect: raw\n", `must be allow or deny`},
		{"unknown action", "- name: x\n  principal: {id: a, roles: [x]}\n  action: delete\n  expect: deny\n", `unknown action "delete"`},
		{"type against roles", "- name: x\n  principal: {type: Service, id: a, roles: [x]}\n  field: email\n  expect: raw\n", `principal.type is Service but the roles make it a Employee`},
		{"no roles", "- name: x\n  principal: {id: a}\n  field: email\n  expect: raw\n", `principal.roles must list at least one role`},
		{"bad hour", "- name: x\n" + ok + "  context: {hour: 24}\n", `context.hour must be within 0..23`},
		{"bad weekday", "- name: x\n" + ok + "  context: {weekday: Monday}\n", `context.weekday "Monday"`},
		{"no field nor action", "- name: x\n  principal: {id: a, roles: [x]}\n  expect: raw\n", `set field \(a field read\) or action`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := RunTests(fsOf("t.test.yaml", c.text), defaultSet(t), defaultSchema(t), AllForms)
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("RunTests = %v, want Errors", err)
			}
			if !regexp.MustCompile(c.want).MatchString(es[0].Error()) {
				t.Errorf("error %q does not match %q", es[0], c.want)
			}
		})
	}
}

func TestRunTestsEmpty(t *testing.T) {
	results, err := RunTests(fsOf("a.test.yaml", "# nothing yet\n", "x.cedar", "permit"), defaultSet(t), defaultSchema(t), AllForms)
	if err != nil || len(results) != 0 {
		t.Errorf("RunTests = %v, %v", results, err)
	}
}

// The shipped test file covers every default policy, both ways.
func TestDefaultTestsCoverEveryPolicy(t *testing.T) {
	set := defaultSet(t)
	results, err := RunTests(DefaultFS(), set, defaultSchema(t), AllForms)
	if err != nil {
		t.Fatal(err)
	}
	decidedBy := map[string]int{}
	for _, r := range results {
		for _, id := range r.Policies {
			decidedBy[id]++
		}
	}
	for _, id := range set.IDs() {
		if decidedBy[id] < 2 {
			t.Errorf("policy %s decides only %d test cases", id, decidedBy[id])
		}
	}
	var refused int
	for _, r := range results {
		if r.Got == "withheld" || r.Got == "deny" || strings.Contains(r.Got, "pseudonym") {
			refused++
		}
	}
	if refused < len(results)/3 {
		t.Errorf("only %d of %d cases test a refusal", refused, len(results))
	}
}
