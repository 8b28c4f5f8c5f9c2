package policy

import (
	"slices"
	"time"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/schema"
)

// Entity types of the model.
const (
	TypeEmployee = "Employee"
	TypeService  = "Service"
	TypeField    = "Field"
	TypeCategory = "Category"
	TypeSubject  = "Subject"
	TypeAction   = "Action"
)

// ServiceRole is the role that makes a caller a Service principal rather
// than an Employee.
const ServiceRole = "service"

// Actions of the model. The four read actions are members of the action
// group ActionRead, so a policy may say `action in Action::"read"`.
const (
	ActionRead            = "read" // group of the four read actions; never requested itself
	ActionReadRaw         = "read_raw"
	ActionReadPseudonym   = "read_pseudonym"
	ActionReadGeneralised = "read_generalised"
	ActionReadMasked      = "read_masked"
	ActionWrite           = "write"
	ActionErase           = "erase"
	ActionTransfer        = "transfer"
	ActionApprove         = "approve"
	ActionReidentify      = "reidentify"
)

// AnySubject is the id of the resource Subject::"*" that non-field actions
// (write, erase, ...) are asked about when the caller names no field: "a
// subject's record". Policies should not name individual subjects.
const AnySubject = "*"

// Form is the form in which a caller may see one field.
type Form string

// Forms, from the most revealing to the least.
const (
	Raw         Form = "raw"
	Pseudonym   Form = "pseudonym"
	Generalised Form = "generalised"
	Masked      Form = "masked"
	Withheld    Form = "withheld" // the field is left out
)

// readForms lists the forms a policy can grant, most revealing first.
func readForms() [4]Form { return [4]Form{Raw, Pseudonym, Generalised, Masked} }

// Action is the read action that grants the form, or "" for Withheld and
// unknown forms.
func (f Form) Action() string {
	switch f {
	case Raw:
		return ActionReadRaw
	case Pseudonym:
		return ActionReadPseudonym
	case Generalised:
		return ActionReadGeneralised
	case Masked:
		return ActionReadMasked
	}
	return ""
}

// Valid reports whether f is one of the five forms.
func (f Form) Valid() bool { return f == Withheld || f.Action() != "" }

// AllForms is a stand-in for the pseudonymisation package's capability
// function, used by the policy tests and the CLI: every field supports every
// form, except fields whose method is "withhold", which are released raw or
// not at all. The gateway passes the real capability function to Decide.
func AllForms(f schema.Field, form Form) bool {
	if f.Method == "withhold" {
		return form == Raw
	}
	return form.Action() != ""
}

// Context is the context record of every request, as plain Go values. The
// caller fills it in; see docs/policy.md for what each attribute means.
type Context struct {
	// Purpose is the declared purpose of the access, e.g. "support".
	Purpose string
	// Justification is the caller's free-text justification ("" if none);
	// policies see it as context.justification and context.has_justification.
	Justification string
	// SubjectCountry, SubjectJurisdiction and SubjectSite describe the data
	// subject: its country, the enclave's name (e.g. "eu") and its home site.
	SubjectCountry      string
	SubjectJurisdiction string
	SubjectSite         string
	// CallerInJurisdiction says whether the caller's country is one of the
	// enclave's accepted countries. The caller of this package computes it.
	CallerInJurisdiction bool
	// Hour (0-23) and Weekday ("Mon".."Sun") are the time of the request, in
	// UTC. WithTime fills them in.
	Hour    int
	Weekday string
	// Grant names an out-of-band grant (e.g. an approved ticket), "" if none.
	Grant string
}

// WithTime returns c with Hour and Weekday set from t, in UTC.
func (c Context) WithTime(t time.Time) Context {
	t = t.UTC()
	c.Hour = t.Hour()
	c.Weekday = t.Weekday().String()[:3]
	return c
}

// record is the Cedar form of the context.
func (c *Context) record() types.Record {
	return types.NewRecord(types.RecordMap{
		"purpose":                types.String(c.Purpose),
		"justification":          types.String(c.Justification),
		"has_justification":      types.Boolean(c.Justification != ""),
		"subject_country":        types.String(c.SubjectCountry),
		"subject_jurisdiction":   types.String(c.SubjectJurisdiction),
		"subject_site":           types.String(c.SubjectSite),
		"caller_in_jurisdiction": types.Boolean(c.CallerInJurisdiction),
		"hour":                   types.Long(c.Hour),
		"weekday":                types.String(c.Weekday),
		"grant":                  types.String(c.Grant),
	})
}

// PrincipalType is the entity type of a caller: Service when it holds the
// role "service", else Employee.
func PrincipalType(p authn.Principal) string {
	if p.HasRole(ServiceRole) {
		return TypeService
	}
	return TypeEmployee
}

func uid(typ, id string) types.EntityUID {
	return types.NewEntityUID(types.EntityType(typ), types.String(id))
}

// principalEntity is the Cedar entity of a caller. roles must be sorted and
// free of duplicates.
func principalEntity(p authn.Principal, roles []string) types.Entity {
	vals := make([]types.Value, len(roles))
	for i, r := range roles {
		vals[i] = types.String(r)
	}
	return types.Entity{
		UID: uid(PrincipalType(p), p.Subject),
		Attributes: types.NewRecord(types.RecordMap{
			"roles":   types.NewSet(vals...),
			"country": types.String(p.Country),
			"team":    types.String(p.Team),
		}),
	}
}

// fieldEntity is the Cedar entity of a schema field: Field::"<name>", child
// of Category::"<category>".
func fieldEntity(f schema.Field) types.Entity {
	return types.Entity{
		UID:     uid(TypeField, f.Name),
		Parents: types.NewEntityUIDSet(uid(TypeCategory, f.Category)),
		Attributes: types.NewRecord(types.RecordMap{
			"name":     types.String(f.Name),
			"category": types.String(f.Category),
			"type":     types.String(f.Type),
		}),
	}
}

// sortedRoles returns the roles sorted and without duplicates: the order of
// a token's roles means nothing to a Cedar set, nor to the memo key.
func sortedRoles(roles []string) []string {
	if slices.IsSorted(roles) && !hasAdjacentDup(roles) {
		return roles
	}
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out)
}

func hasAdjacentDup(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			return true
		}
	}
	return false
}

// actionParents is the action hierarchy: the read actions are in the group
// "read"; every other action stands alone.
func actionParent(action string) string {
	switch action {
	case ActionReadRaw, ActionReadPseudonym, ActionReadGeneralised, ActionReadMasked:
		return ActionRead
	}
	return ""
}

// modelActions lists every action of the model, the group first.
func modelActions() []string {
	return []string{ActionRead, ActionReadRaw, ActionReadPseudonym, ActionReadGeneralised, ActionReadMasked,
		ActionWrite, ActionErase, ActionTransfer, ActionApprove, ActionReidentify}
}

// requestable reports whether a request may name the action (the group
// "read" may not).
func requestable(action string) bool {
	return action != ActionRead && slices.Contains(modelActions(), action)
}

// staticEntities are the entities every request shares: actions (with the
// read group) and the categories of the schema package.
func staticEntities() types.EntityMap {
	m := types.EntityMap{}
	for _, a := range modelActions() {
		e := types.Entity{UID: uid(TypeAction, a)}
		if p := actionParent(a); p != "" {
			e.Parents = types.NewEntityUIDSet(uid(TypeAction, p))
		}
		m[e.UID] = e
	}
	for _, c := range schema.Categories {
		u := uid(TypeCategory, c)
		m[u] = types.Entity{UID: u}
	}
	return m
}

// ModelSchema is the entity model in Cedar's schema language. Check
// type-checks every policy against it; operators may feed it to other Cedar
// tools.
const ModelSchema = `// Clover's policy entity model.

// Categories of personal data (schema.Categories); the ids are checked
// against the field schema.
entity Category;

// One field of the schema: Field::"<name>", in Category::"<category>".
entity Field in [Category] {
  "name": String,
  "category": String,
  "type": String,
};

// Callers. A caller holding the role "service" is a Service, every other
// caller an Employee. team is "" when the token has none.
entity Employee, Service {
  "roles": Set<String>,
  "country": String,
  "team": String,
};

// A subject's record as a whole: the resource of write, erase and the
// other non-field actions, always Subject::"*".
entity Subject;

type RequestContext = {
  "purpose": String,
  "justification": String,
  "has_justification": Bool,
  "subject_country": String,
  "subject_jurisdiction": String,
  "subject_site": String,
  "caller_in_jurisdiction": Bool,
  "hour": Long,
  "weekday": String,
  "grant": String,
};

// The four ways to read a field, grouped under "read".
action "read";
action "read_raw", "read_pseudonym", "read_generalised", "read_masked" in ["read"]
  appliesTo { principal: [Employee, Service], resource: [Field], context: RequestContext };

// Actions on a subject's record (Subject::"*") or on one field of it.
action "write", "erase", "transfer", "approve", "reidentify"
  appliesTo { principal: [Employee, Service], resource: [Subject, Field], context: RequestContext };
`
