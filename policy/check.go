package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	cschema "github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/cloverenclave/clover/schema"
)

// Check validates the policies against the entity model and the field
// schema, and returns every problem found as Errors (nil when there are
// none), each at file:line:column.
//
// Two passes:
//   - cedar-go's validator (x/exp/schema/validate, strict mode) type-checks
//     each policy against ModelSchema: unknown entity types, unknown actions,
//     actions that do not apply to the scope's principal or resource types,
//     unknown attributes (context.purpse) and type errors. It reports no
//     position inside a policy, so these errors point at the policy's start.
//   - a walk of each policy's scope and literals checks what a Cedar schema
//     cannot: that Field::"..." names a field of the schema, Category::"..."
//     a category and Subject::"..." the only subject resource, "*"; and that
//     strings compared with resource.name, resource.category, resource.type
//     or context.weekday are values those attributes can take. These errors
//     point at the literal.
func Check(set *Set, sch *schema.Schema) error {
	v, err := modelValidator()
	if err != nil {
		return err
	}
	var errs Errors
	for i, e := range set.entries {
		for _, msg := range validatePolicy(v, e.ast) {
			errs = errs.add(errorAt(e.pos, msg))
		}
		for _, fe := range checkLiterals(e, sch, set.source(i)) {
			errs = errs.add(fe)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// CheckPurposes checks that every string a policy compares with
// context.purpose is one of the purposes callers may state (the gateway
// refuses any other), so that a misspelt purpose is caught rather than
// silently never matching. It returns Errors, or nil.
func CheckPurposes(set *Set, purposes []string) error {
	var errs Errors
	for i, e := range set.entries {
		comparisons(e.ast, func(attr, lit string) {
			if attr == "context.purpose" && !slices.Contains(purposes, lit) {
				msg := fmt.Sprintf("context.purpose is compared with %q, which is not one of the purposes callers may state (%s)", lit, strings.Join(purposes, ", "))
				errs = errs.add(errorAt(set.source(i).locate(stringRE(lit), e.pos), msg))
			}
		})
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// add appends e unless the same problem is already listed.
func (es Errors) add(e *Error) Errors {
	if slices.ContainsFunc(es, func(x *Error) bool { return *x == *e }) {
		return es
	}
	return append(es, e)
}

// source is the text of the i-th policy: from its start to the start of the
// next policy of the same file, or the end of the file.
func (s *Set) source(i int) source {
	e := s.entries[i]
	f := s.files[e.file]
	end := len(f.Text)
	if i+1 < len(s.entries) && s.entries[i+1].file == e.file {
		end = s.entries[i+1].pos.Offset
	}
	return source{file: f, start: min(e.pos.Offset, end), end: end}
}

// modelValidator builds cedar-go's validator for ModelSchema.
func modelValidator() (*validate.Validator, error) {
	var s cschema.Schema
	s.SetFilename("model.cedarschema")
	if err := s.UnmarshalCedar([]byte(ModelSchema)); err != nil {
		return nil, fmt.Errorf("entity model: %w", err)
	}
	r, err := s.Resolve()
	if err != nil {
		return nil, fmt.Errorf("entity model: %w", err)
	}
	return validate.New(r, validate.WithStrict()), nil
}

// validatePolicy runs the validator on one policy and returns its messages.
// The validator is experimental: should it panic, the policy is reported as
// invalid rather than the process failing.
func validatePolicy(v *validate.Validator, p *xast.Policy) (msgs []string) {
	defer func() {
		if r := recover(); r != nil {
			msgs = []string{fmt.Sprintf("the Cedar validator failed on this policy: %v", r)}
		}
	}()
	err := v.Policy("", p)
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		if e == nil {
			continue
		}
		for _, line := range strings.Split(e.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" && !slices.Contains(msgs, line) {
				msgs = append(msgs, line)
			}
		}
	}
	return msgs
}

// source is the text of one policy, for locating literals in it.
type source struct {
	file       File
	start, end int
}

// locate returns the position of the first match of re in the policy, or
// the policy's own position.
func (s source) locate(re *regexp.Regexp, fallback types.Position) types.Position {
	if loc := re.FindStringIndex(s.file.Text[s.start:s.end]); loc != nil {
		off := s.start + loc[0]
		line, col := lineCol(s.file.Text, off)
		return types.Position{Filename: s.file.Name, Offset: off, Line: line, Column: col}
	}
	return fallback
}

func entityRE(u types.EntityUID) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(string(u.Type)) + `\s*::\s*"` + regexp.QuoteMeta(string(u.ID)) + `"`)
}

func stringRE(s string) *regexp.Regexp {
	return regexp.MustCompile(`"` + regexp.QuoteMeta(s) + `"`)
}

// checkLiterals checks the entity ids and compared strings of one policy.
func checkLiterals(e *entry, sch *schema.Schema, src source) []*Error {
	var errs []*Error
	checkUID := func(u types.EntityUID) {
		if msg := badEntity(u, sch); msg != "" {
			errs = append(errs, errorAt(src.locate(entityRE(u), e.pos), msg))
		}
	}
	for _, m := range []scopeMatch{e.principal, e.resource} {
		if m.kind == kindEq || m.kind == kindIn || m.kind == kindIsIn {
			checkUID(m.entity)
		}
	}
	walkValues(e.ast, func(v types.Value) {
		if u, ok := v.(types.EntityUID); ok {
			checkUID(u)
		}
	})
	comparisons(e.ast, func(attr, lit string) {
		if msg := badAttrValue(attr, lit, sch); msg != "" {
			errs = append(errs, errorAt(src.locate(stringRE(lit), e.pos), msg))
		}
	})
	return errs
}

// comparisons calls fn for every `<variable>.<attr> == "literal"` (or !=,
// either way round) in the policy's conditions.
func comparisons(p *xast.Policy, fn func(attr, lit string)) {
	for _, c := range p.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			var b xast.BinaryNode
			switch n := n.(type) {
			case xast.NodeTypeEquals:
				b = n.BinaryNode
			case xast.NodeTypeNotEquals:
				b = n.BinaryNode
			default:
				return true
			}
			for _, pair := range [2][2]xast.IsNode{{b.Left, b.Right}, {b.Right, b.Left}} {
				if attr, lit, ok := comparison(pair[0], pair[1]); ok {
					fn(attr, lit)
				}
			}
			return true
		})
	}
}

// comparison recognises `<variable>.<attr>` compared with a string literal.
func comparison(access, value xast.IsNode) (attr, lit string, ok bool) {
	a, ok1 := access.(xast.NodeTypeAccess)
	v, ok2 := value.(xast.NodeValue)
	if !ok1 || !ok2 {
		return "", "", false
	}
	s, ok3 := v.Value.(types.String)
	vr, ok4 := a.Arg.(xast.NodeTypeVariable)
	if !ok3 || !ok4 {
		return "", "", false
	}
	return string(vr.Name) + "." + string(a.Value), string(s), true
}

// badAttrValue says why lit can never equal the attribute, or "".
func badAttrValue(attr, lit string, sch *schema.Schema) string {
	switch attr {
	case "resource.name":
		if _, ok := sch.Field(lit); !ok {
			return fmt.Sprintf("resource.name is compared with %q, which is not a field of the schema", lit)
		}
	case "resource.category":
		if !slices.Contains(schema.Categories, lit) {
			return fmt.Sprintf("resource.category is compared with %q, which is not a category (%s)", lit, strings.Join(schema.Categories, ", "))
		}
	case "resource.type":
		if !slices.Contains(schema.Types, lit) {
			return fmt.Sprintf("resource.type is compared with %q, which is not a field type (%s)", lit, strings.Join(schema.Types, ", "))
		}
	case "context.weekday":
		if !slices.Contains([]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}, lit) {
			return fmt.Sprintf("context.weekday is compared with %q; weekdays are Mon, Tue, Wed, Thu, Fri, Sat, Sun", lit)
		}
	}
	return ""
}

// badEntity says what is wrong with an entity literal, or "". Unknown types
// are left to the validator.
func badEntity(u types.EntityUID, sch *schema.Schema) string {
	id := string(u.ID)
	switch string(u.Type) {
	case TypeField:
		if _, ok := sch.Field(id); !ok {
			return fmt.Sprintf("unknown field %s: %q is not in the schema", u, id)
		}
	case TypeCategory:
		if !slices.Contains(schema.Categories, id) {
			return fmt.Sprintf("unknown category %s (categories: %s)", u, strings.Join(schema.Categories, ", "))
		}
	case TypeSubject:
		if id != AnySubject {
			return fmt.Sprintf("%s can never match: the only subject resource is Subject::%q", u, AnySubject)
		}
	}
	return ""
}
