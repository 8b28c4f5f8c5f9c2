package policy

import (
	"encoding/binary"
	"iter"
	"slices"
	"sync"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/schema"
)

// Request asks in which form a caller may see each of some fields.
type Request struct {
	Principal authn.Principal
	Fields    []schema.Field
	Context   Context
}

// FieldDecision is the form one field may be seen in, and why.
type FieldDecision struct {
	Field string
	Form  Form
	// Policies are the ids of the policies that determined the form: the
	// permit policies that allowed it; or, when the field is withheld, the
	// forbid policies that denied a form the field supports. Empty when the
	// field is withheld by default (no policy permits any supported form).
	Policies []string
}

// Decision is the outcome of Decide: one FieldDecision per requested field,
// in request order, and the digest of the policy set that decided.
type Decision struct {
	Digest string
	Fields []FieldDecision
}

// Form returns the form decided for the named field, Withheld if the field
// was not requested.
func (d Decision) Form(field string) Form {
	for _, f := range d.Fields {
		if f.Field == field {
			return f.Form
		}
	}
	return Withheld
}

// Decide returns, for each requested field, the most revealing form (raw,
// then pseudonym, generalised, masked) that the policies permit and the field
// supports, or Withheld. A form is permitted when some permit policy matches
// its action (read_raw, ...) and no forbid policy does; a forbid policy whose
// evaluation fails counts as matching (fail closed). supports says whether a
// field can be released in a form (the pseudonymisation package's capability
// function; nil means AllForms); it must depend on nothing but its arguments.
//
// Decisions are memoised per Set; the memo key holds everything the policies
// can read, so a memoised decision is the decision Cedar would make.
func (s *Set) Decide(req Request, supports func(schema.Field, Form) bool) Decision {
	return s.decide(req, supports, true)
}

func (s *Set) decide(req Request, supports func(schema.Field, Form) bool, useMemo bool) Decision {
	if supports == nil {
		supports = AllForms
	}
	var ev evaluation
	ev.init(s, req.Principal, &req.Context, useMemo)
	d := Decision{Digest: s.digest, Fields: make([]FieldDecision, len(req.Fields))}
	var backing, ids []string
	for i := range req.Fields {
		f := &req.Fields[i]
		fd := FieldDecision{Field: f.Name, Form: Withheld}
		ids = ids[:0] // the forbids met so far, or the permits of the form
		for _, form := range readForms() {
			if !supports(*f, form) {
				continue
			}
			r := ev.decideOne(form.Action(), f)
			if r.allowed {
				fd.Form = form
				ids = append(ids[:0], r.reasons...)
				break
			}
			for _, id := range r.reasons {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
		if len(ids) > 0 {
			start := len(backing)
			backing = append(backing, ids...)
			fd.Policies = backing[start:len(backing):len(backing)]
		}
		d.Fields[i] = fd
	}
	return d
}

// Allowed decides one action that is not a field read: write, erase,
// transfer, approve, reidentify (the read actions work too). The resource is
// the field when one is given, else Subject::"*", a subject's record as a
// whole. It returns the decision and the ids of the policies that determined
// it (permits when allowed, forbids when denied; none for the default deny).
// An action outside the model is denied.
func (s *Set) Allowed(p authn.Principal, action string, field *schema.Field, ctx Context) (bool, []string) {
	if !requestable(action) {
		return false, nil
	}
	var ev evaluation
	ev.init(s, p, &ctx, true)
	r := ev.decideOne(action, field)
	return r.allowed, slices.Clone(r.reasons)
}

// evaluation holds what one request's Cedar calls share. The entities and
// the context record are built on the first memo miss only.
type evaluation struct {
	s       *Set
	p       authn.Principal
	roles   []string
	ctx     *Context
	useMemo bool
	key     []byte
	prefix  int
	keyBuf  [256]byte
	record  types.Record
	ents    *requestEntities // nil until the first memo miss
	// field is the field whose entity is ents.resource, when hasField.
	field    schema.Field
	hasField bool
}

// init prepares ev in place (key points into ev.keyBuf, so ev must not be
// copied afterwards).
func (ev *evaluation) init(s *Set, p authn.Principal, ctx *Context, useMemo bool) {
	*ev = evaluation{s: s, p: p, roles: sortedRoles(p.Roles), ctx: ctx, useMemo: useMemo}
	if useMemo {
		ev.key = ev.keyPrefix(ev.keyBuf[:0])
		ev.prefix = len(ev.key)
	}
}

// keyPrefix appends the request part of the memo key: the principal's type,
// roles, country and team (and its subject, when a policy names a principal
// entity), and every context attribute.
func (ev *evaluation) keyPrefix(b []byte) []byte {
	b = appendStr(b, PrincipalType(ev.p))
	if ev.s.keySubject {
		b = appendStr(b, ev.p.Subject)
	} else {
		b = appendStr(b, "")
	}
	b = appendStr(b, ev.p.Country)
	b = appendStr(b, ev.p.Team)
	b = appendStr(b, ev.ctx.Purpose)
	b = appendStr(b, ev.ctx.Justification)
	b = appendStr(b, ev.ctx.SubjectCountry)
	b = appendStr(b, ev.ctx.SubjectJurisdiction)
	b = appendStr(b, ev.ctx.SubjectSite)
	b = appendBool(b, ev.ctx.CallerInJurisdiction)
	b = appendStr(b, ev.ctx.Weekday)
	b = appendStr(b, ev.ctx.Grant)
	b = binary.AppendVarint(b, int64(ev.ctx.Hour))
	b = binary.AppendUvarint(b, uint64(len(ev.roles)))
	for _, r := range ev.roles {
		b = appendStr(b, r)
	}
	return b
}

// decideOne decides one action on one field (or on Subject::"*" when f is
// nil), from the memo when it can.
func (ev *evaluation) decideOne(action string, f *schema.Field) result {
	if ev.useMemo {
		b := appendStr(ev.key[:ev.prefix], action)
		if f != nil {
			b = appendStr(b, f.Name)
			b = appendStr(b, f.Category)
			b = appendStr(b, f.Type)
		}
		ev.key = b
		if r, ok := ev.s.memo.get(b); ok {
			return r
		}
	}
	r := ev.authorize(action, f)
	if ev.useMemo {
		ev.s.memo.put(ev.key, r)
	}
	return r
}

// authorize asks cedar-go, giving it only the policies whose scope can match.
func (ev *evaluation) authorize(action string, f *schema.Field) result {
	if ev.ents == nil {
		ev.ents = &requestEntities{principal: principalEntity(ev.p, ev.roles), static: ev.s.static}
		ev.record = ev.ctx.record()
	}
	var parent types.EntityUID
	if f != nil {
		if !ev.hasField || ev.field != *f { // the forms of one field share its entity
			ev.ents.resource, ev.field, ev.hasField = ev.s.fields.get(*f), *f, true
		}
		parent = uid(TypeCategory, f.Category)
	} else {
		ev.hasField = false
		ev.ents.resource = types.Entity{UID: uid(TypeSubject, AnySubject)}
	}
	c := &candidates{
		list:      ev.s.byAction[action],
		principal: ev.ents.principal.UID,
		resource:  ev.ents.resource.UID,
		parent:    parent,
	}
	dec, diag := cedar.Authorize(c, ev.ents, cedar.Request{
		Principal: ev.ents.principal.UID,
		Action:    uid(TypeAction, action),
		Resource:  ev.ents.resource.UID,
		Context:   ev.record,
	})
	var failed []string
	for _, e := range diag.Errors {
		if en := ev.s.byID[e.PolicyID]; en != nil && en.forbid {
			failed = append(failed, string(e.PolicyID))
		}
	}
	var reasons []string
	for _, r := range diag.Reasons {
		if dec == cedar.Allow && len(failed) > 0 {
			break // permits that no longer decide
		}
		reasons = append(reasons, string(r.PolicyID))
	}
	if len(failed) > 0 {
		return result{allowed: false, reasons: append(reasons, failed...)}
	}
	return result{allowed: dec == cedar.Allow, reasons: reasons}
}

// requestEntities are the entities one Cedar call can see: the caller, the
// resource, the actions and the categories. Policies see the attributes of
// the requested field only, so that a decision depends on nothing outside
// the memo key.
type requestEntities struct {
	principal types.Entity
	resource  types.Entity
	static    types.EntityMap
}

func (r *requestEntities) Get(u types.EntityUID) (types.Entity, bool) {
	switch u {
	case r.principal.UID:
		return r.principal, true
	case r.resource.UID:
		return r.resource, true
	}
	e, ok := r.static[u]
	return e, ok
}

// candidates iterates the policies of one action whose principal and
// resource scopes can match the request, in load order.
type candidates struct {
	list      []*entry
	principal types.EntityUID
	resource  types.EntityUID
	parent    types.EntityUID
}

func (c *candidates) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, e := range c.list {
			if !e.principal.matches(c.principal, types.EntityUID{}) || !e.resource.matches(c.resource, c.parent) {
				continue
			}
			if !yield(e.id, e.policy) {
				return
			}
		}
	}
}

// fieldEntities remembers the Cedar entities of the fields seen, which only
// change with the schema. Bounded like the memo: cleared when full.
type fieldEntities struct {
	mu sync.RWMutex
	m  map[schema.Field]types.Entity
}

const maxFieldEntities = 4096

func (c *fieldEntities) get(f schema.Field) types.Entity {
	c.mu.RLock()
	e, ok := c.m[f]
	c.mu.RUnlock()
	if ok {
		return e
	}
	e = fieldEntity(f)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxFieldEntities {
		c.m = map[schema.Field]types.Entity{}
	}
	c.m[f] = e
	c.mu.Unlock()
	return e
}
