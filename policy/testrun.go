package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/schema"
)

// TestResult is the outcome of one policy test case.
type TestResult struct {
	File     string
	Line     int
	Name     string
	Passed   bool
	Expected string
	Got      string
	// Policies are the ids of the policies that determined what was got.
	Policies []string
}

// String is "file:line: name: expected X, got Y (policies: a, b)".
func (r TestResult) String() string {
	pol := "none"
	if len(r.Policies) > 0 {
		pol = strings.Join(r.Policies, ", ")
	}
	if r.Passed {
		return fmt.Sprintf("%s:%d: %s: %s (policies: %s)", r.File, r.Line, r.Name, r.Got, pol)
	}
	return fmt.Sprintf("%s:%d: %s: expected %s, got %s (policies: %s)", r.File, r.Line, r.Name, r.Expected, r.Got, pol)
}

// testCase is one entry of a *.test.yaml file.
type testCase struct {
	Name      string        `yaml:"name"`
	Principal testPrincipal `yaml:"principal"`
	// Action is empty for a field read (expect is a form) or names an action
	// (expect is allow or deny).
	Action string `yaml:"action"`
	// Field names the field read or acted on; for an action it may be empty,
	// meaning Subject::"*".
	Field   string      `yaml:"field"`
	Context testContext `yaml:"context"`
	Expect  string      `yaml:"expect"`
	// Policies, when present, are the ids that must have determined the
	// outcome, in any order.
	Policies *[]string `yaml:"policies"`
}

type testPrincipal struct {
	Type    string   `yaml:"type"`
	ID      string   `yaml:"id"`
	Roles   []string `yaml:"roles"`
	Country string   `yaml:"country"`
	Team    string   `yaml:"team"`
}

type testContext struct {
	Purpose              string `yaml:"purpose"`
	Justification        string `yaml:"justification"`
	SubjectCountry       string `yaml:"subject_country"`
	SubjectJurisdiction  string `yaml:"subject_jurisdiction"`
	SubjectSite          string `yaml:"subject_site"`
	CallerInJurisdiction bool   `yaml:"caller_in_jurisdiction"`
	Hour                 int    `yaml:"hour"`
	Weekday              string `yaml:"weekday"`
	Grant                string `yaml:"grant"`
}

// parsedCase is a validated test case with the line it starts on.
type parsedCase struct {
	testCase
	file  string
	line  int
	field *schema.Field
}

// RunTests runs the test cases of every *.test.yaml file at the root of
// fsys, in name order, against set. Each file holds a YAML list of cases:
//
//   - name: support in the EEA with a justification reads email raw
//     principal: {type: Employee, id: alice, roles: [support], country: IE}
//     field: email
//     context: {purpose: support, justification: "ticket 4711", caller_in_jurisdiction: true}
//     expect: raw
//
// A case either reads a field (expect: raw, pseudonym, generalised, masked
// or withheld) or names an action (expect: allow or deny), with or without a
// field. Context attributes left out are empty, false or 0;
// has_justification follows justification. supports stands for the
// pseudonymisation package's capability function (the CLI passes AllForms).
// A malformed file is an error (Errors, at file:line); a case that fails is
// a result with Passed false.
func RunTests(fsys fs.FS, set *Set, sch *schema.Schema, supports func(schema.Field, Form) bool) ([]TestResult, error) {
	names, err := fs.Glob(fsys, "*.test.yaml")
	if err != nil {
		return nil, fmt.Errorf("list test files: %w", err)
	}
	slices.Sort(names)
	var cases []parsedCase
	var errs Errors
	for _, name := range names {
		text, err := readFile(fsys, name)
		if err != nil {
			return nil, err
		}
		cs, ferrs := parseTests(name, []byte(text), sch)
		cases = append(cases, cs...)
		errs = append(errs, ferrs...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	results := make([]TestResult, 0, len(cases))
	for _, c := range cases {
		results = append(results, runCase(set, c, supports))
	}
	return results, nil
}

func runCase(set *Set, c parsedCase, supports func(schema.Field, Form) bool) TestResult {
	p := authn.Principal{Subject: c.Principal.ID, Roles: c.Principal.Roles, Country: c.Principal.Country, Team: c.Principal.Team}
	ctx := Context{
		Purpose:              c.Context.Purpose,
		Justification:        c.Context.Justification,
		SubjectCountry:       c.Context.SubjectCountry,
		SubjectJurisdiction:  c.Context.SubjectJurisdiction,
		SubjectSite:          c.Context.SubjectSite,
		CallerInJurisdiction: c.Context.CallerInJurisdiction,
		Hour:                 c.Context.Hour,
		Weekday:              c.Context.Weekday,
		Grant:                c.Context.Grant,
	}
	r := TestResult{File: c.file, Line: c.line, Name: c.Name, Expected: c.Expect}
	if c.Action == "" {
		d := set.Decide(Request{Principal: p, Fields: []schema.Field{*c.field}, Context: ctx}, supports)
		r.Got, r.Policies = string(d.Fields[0].Form), d.Fields[0].Policies
	} else {
		ok, ids := set.Allowed(p, c.Action, c.field, ctx)
		r.Got, r.Policies = "deny", ids
		if ok {
			r.Got = "allow"
		}
	}
	r.Passed = r.Got == r.Expected
	if c.Policies != nil {
		want, got := slices.Clone(*c.Policies), slices.Clone(r.Policies)
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(want, got) {
			r.Passed = false
			r.Expected += fmt.Sprintf(" by [%s]", strings.Join(*c.Policies, ", "))
			r.Got += fmt.Sprintf(" by [%s]", strings.Join(r.Policies, ", "))
		}
	}
	return r
}

// parseTests decodes one test file strictly (unknown keys are errors) and
// validates its cases.
func parseTests(name string, data []byte, sch *schema.Schema) ([]parsedCase, Errors) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(name, err)
	}
	if len(root.Content) == 0 {
		return nil, nil // empty file
	}
	list := root.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, Errors{{File: name, Line: list.Line, Msg: "a test file holds a list of cases"}}
	}
	var tcs []testCase
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tcs); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlErrors(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, Errors{{File: name, Line: extra.Line, Msg: "more than one YAML document"}}
	}
	var out []parsedCase
	var errs Errors
	seen := map[string]int{}
	for i, tc := range tcs {
		line := list.Content[i].Line
		c := parsedCase{testCase: tc, file: name, line: line}
		if msg := c.validate(sch); msg != "" {
			errs = append(errs, &Error{File: name, Line: line, Msg: msg})
			continue
		}
		if prev, dup := seen[tc.Name]; dup {
			errs = append(errs, &Error{File: name, Line: line, Msg: fmt.Sprintf("case %q is already defined at line %d", tc.Name, prev)})
			continue
		}
		seen[tc.Name] = line
		out = append(out, c)
	}
	return out, errs
}

// validate checks a case and resolves its field; it returns what is wrong,
// or "".
func (c *parsedCase) validate(sch *schema.Schema) string {
	if c.Name == "" {
		return "name: every case needs a name"
	}
	prefix := fmt.Sprintf("case %q: ", c.Name)
	p := c.Principal
	if p.ID == "" {
		return prefix + "principal.id must be set"
	}
	if len(p.Roles) == 0 {
		return prefix + "principal.roles must list at least one role"
	}
	derived := PrincipalType(authn.Principal{Roles: p.Roles})
	switch {
	case p.Type == "":
	case p.Type != TypeEmployee && p.Type != TypeService:
		return prefix + fmt.Sprintf("principal.type %q must be Employee or Service", p.Type)
	case p.Type != derived:
		return prefix + fmt.Sprintf("principal.type is %s but the roles make it a %s (a caller is a Service exactly when it has the role %q)", p.Type, derived, ServiceRole)
	}
	if c.Context.Hour < 0 || c.Context.Hour > 23 {
		return prefix + "context.hour must be within 0..23"
	}
	if w := c.Context.Weekday; w != "" && badAttrValue("context.weekday", w, sch) != "" {
		return prefix + fmt.Sprintf("context.weekday %q must be one of Mon, Tue, Wed, Thu, Fri, Sat, Sun", w)
	}
	if c.Field != "" {
		f, ok := sch.Field(c.Field)
		if !ok {
			return prefix + fmt.Sprintf("field %q is not in the schema", c.Field)
		}
		c.field = &f
	}
	if c.Action == "" {
		if c.field == nil {
			return prefix + "set field (a field read) or action"
		}
		if !Form(c.Expect).Valid() {
			return prefix + fmt.Sprintf("expect %q must be raw, pseudonym, generalised, masked or withheld for a field read", c.Expect)
		}
		return ""
	}
	if !requestable(c.Action) {
		return prefix + fmt.Sprintf("unknown action %q", c.Action)
	}
	if c.Expect != "allow" && c.Expect != "deny" {
		return prefix + fmt.Sprintf("expect %q must be allow or deny for an action", c.Expect)
	}
	return ""
}

// yamlErrors turns the YAML library's errors into file:line errors without
// Go type names.
func yamlErrors(name string, err error) Errors {
	lineRE := regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE := regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	goTypeRE := regexp.MustCompile(` into (\[\])?\*?(\[\])?[a-z]+\.[A-Za-z]+`)
	parse := func(msg string) *Error {
		msg = strings.TrimPrefix(msg, "yaml: ")
		m := lineRE.FindStringSubmatch(msg)
		if m == nil {
			return &Error{File: name, Msg: msg}
		}
		n, _ := strconv.Atoi(m[1])
		msg = m[2]
		if u := unknownRE.FindStringSubmatch(msg); u != nil {
			msg = fmt.Sprintf("unknown key %q", u[1])
		} else {
			msg = goTypeRE.ReplaceAllString(msg, " into a value of another type")
		}
		return &Error{File: name, Line: n, Msg: msg}
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Errors{parse(err.Error())}
	}
	var out Errors
	for _, e := range te.Errors {
		out = append(out, parse(e))
	}
	return out
}
