package rules

import (
	"errors"
	"fmt"

	"cel.dev/cel-go/cel"

	"github.com/cloverenclave/clover/auditlog"
)

// KindCondition is a rule written as a CEL expression (cel.dev/cel-go, the
// continuation of github.com/google/cel-go) over an entry's fields.
const KindCondition = "condition"

// Condition fires on every entry for which Expr is true. Expr sees these
// variables: kind, decision, action, site, subject, purpose, justification,
// grant, weekday (strings); status, hour (ints); caller_in_jurisdiction
// (bool); actor (a map with sub, type, country, team as strings and roles as
// a list of strings); fields (a list of maps with name and form). Example:
//
//	kind == "decision" && actor.country == "US" && fields.exists(f, f.form == "raw")
type Condition struct {
	Expr string `yaml:"expr"`
}

// maxConditionCost bounds the work one evaluation may do.
const maxConditionCost = 10000

// Validate compiles the expression.
func (c *Condition) Validate() error {
	_, err := compileCondition(c.Expr)
	return err
}

func compileCondition(expr string) (cel.Program, error) {
	if expr == "" {
		return nil, errors.New("expr: empty")
	}
	env, err := cel.NewEnv(
		cel.Variable("kind", cel.StringType),
		cel.Variable("decision", cel.StringType),
		cel.Variable("action", cel.StringType),
		cel.Variable("site", cel.StringType),
		cel.Variable("subject", cel.StringType),
		cel.Variable("purpose", cel.StringType),
		cel.Variable("justification", cel.StringType),
		cel.Variable("grant", cel.StringType),
		cel.Variable("weekday", cel.StringType),
		cel.Variable("status", cel.IntType),
		cel.Variable("hour", cel.IntType),
		cel.Variable("caller_in_jurisdiction", cel.BoolType),
		cel.Variable("actor", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("fields", cel.ListType(cel.MapType(cel.StringType, cel.StringType))),
	)
	if err != nil {
		return nil, fmt.Errorf("expr: %v", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("expr: %v", iss.Err())
	}
	if ast.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("expr: must be a boolean condition, not %v", ast.OutputType())
	}
	prg, err := env.Program(ast, cel.CostLimit(maxConditionCost))
	if err != nil {
		return nil, fmt.Errorf("expr: %v", err)
	}
	return prg, nil
}

// conditionMatch evaluates prg on each entry; an evaluation error (a
// missing map key, the cost limit) counts as no match.
func conditionMatch(prg cel.Program, expr string) func(*auditlog.Entry) (string, bool) {
	return func(e *auditlog.Entry) (string, bool) {
		out, _, err := prg.Eval(activation(e))
		if err != nil {
			return "", false
		}
		if b, ok := out.Value().(bool); !ok || !b {
			return "", false
		}
		return fmt.Sprintf("condition %q holds", expr), true
	}
}

func activation(e *auditlog.Entry) map[string]any {
	actor := map[string]any{"sub": "", "type": "", "country": "", "team": "", "roles": []string{}}
	if a := e.Actor; a != nil {
		roles := a.Roles
		if roles == nil {
			roles = []string{}
		}
		actor = map[string]any{"sub": a.Sub, "type": a.Type, "country": a.Country, "team": a.Team, "roles": roles}
	}
	fields := make([]map[string]string, len(e.Fields))
	for i, f := range e.Fields {
		fields[i] = map[string]string{"name": f.Name, "form": f.Form}
	}
	var hour int64
	var weekday string
	var inJurisdiction bool
	if c := e.Context; c != nil {
		hour, weekday, inJurisdiction = int64(c.Hour), c.Weekday, c.CallerInJurisdiction
	}
	return map[string]any{
		"kind": string(e.Kind), "decision": string(e.Decision), "action": e.Action, "site": e.Site,
		"subject": e.Subject, "purpose": e.Purpose, "justification": e.Justification, "grant": e.Grant,
		"weekday": weekday, "status": int64(e.Status), "hour": hour, "caller_in_jurisdiction": inJurisdiction,
		"actor": actor, "fields": fields,
	}
}
