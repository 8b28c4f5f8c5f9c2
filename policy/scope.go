package policy

import (
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// A scopeMatch is a policy's principal or resource scope, reduced to what is
// needed to tell, without evaluating the policy, that it cannot apply to a
// request. Skipping such policies changes nothing: Cedar evaluates the scope
// first and a scope that does not match makes the policy false, without error.
type scopeMatch struct {
	kind   scopeKind
	typ    types.EntityType // kindIs, kindIsIn
	entity types.EntityUID  // kindEq, kindIn, kindIsIn
}

type scopeKind uint8

const (
	kindAll scopeKind = iota
	kindEq
	kindIn
	kindIs
	kindIsIn
)

func principalScope(n xast.IsPrincipalScopeNode) scopeMatch { return scopeOf(n) }
func resourceScope(n xast.IsResourceScopeNode) scopeMatch   { return scopeOf(n) }

func scopeOf(n any) scopeMatch {
	switch sc := n.(type) {
	case xast.ScopeTypeEq:
		return scopeMatch{kind: kindEq, entity: sc.Entity}
	case xast.ScopeTypeIn:
		return scopeMatch{kind: kindIn, entity: sc.Entity}
	case xast.ScopeTypeIs:
		return scopeMatch{kind: kindIs, typ: sc.Type}
	case xast.ScopeTypeIsIn:
		return scopeMatch{kind: kindIsIn, typ: sc.Type, entity: sc.Entity}
	}
	return scopeMatch{kind: kindAll}
}

// matches reports whether the scope can hold for the entity u whose only
// ancestor is parent (the zero UID when it has none): in the model, a field's
// one ancestor is its category; principals and Subject::"*" have none.
func (m scopeMatch) matches(u, parent types.EntityUID) bool {
	in := func(target types.EntityUID) bool {
		return target == u || (!parent.IsZero() && target == parent)
	}
	switch m.kind {
	case kindEq:
		return m.entity == u
	case kindIn:
		return in(m.entity)
	case kindIs:
		return m.typ == u.Type
	case kindIsIn:
		return m.typ == u.Type && in(m.entity)
	}
	return true
}

// actionMatches reports whether an action scope can hold for the action.
func actionMatches(n xast.IsActionScopeNode, action string) bool {
	a := uid(TypeAction, action)
	in := func(target types.EntityUID) bool {
		return target == a || (actionParent(action) != "" && target == uid(TypeAction, actionParent(action)))
	}
	switch sc := n.(type) {
	case xast.ScopeTypeEq:
		return sc.Entity == a
	case xast.ScopeTypeIn:
		return in(sc.Entity)
	case xast.ScopeTypeInSet:
		for _, e := range sc.Entities {
			if in(e) {
				return true
			}
		}
		return false
	}
	return true
}

// namesPrincipal reports whether the policy mentions a principal entity
// (Employee::"..." or Service::"..."), in its scope or its conditions: then
// the caller's subject matters to the decision and must be in the memo key.
func namesPrincipal(p *xast.Policy) bool {
	isPrincipal := func(u types.EntityUID) bool {
		return u.Type == TypeEmployee || u.Type == TypeService
	}
	if m := principalScope(p.Principal); (m.kind == kindEq || m.kind == kindIn || m.kind == kindIsIn) && isPrincipal(m.entity) {
		return true
	}
	if m := resourceScope(p.Resource); (m.kind == kindEq || m.kind == kindIn || m.kind == kindIsIn) && isPrincipal(m.entity) {
		return true
	}
	found := false
	walkValues(p, func(v types.Value) {
		if u, ok := v.(types.EntityUID); ok && isPrincipal(u) {
			found = true
		}
	})
	return found
}

// walkValues calls fn with every literal value of the policy's conditions,
// including the elements of literal sets and records.
func walkValues(p *xast.Policy, fn func(types.Value)) {
	var visit func(types.Value)
	visit = func(v types.Value) {
		fn(v)
		switch c := v.(type) {
		case types.Set:
			for e := range c.All() {
				visit(e)
			}
		case types.Record:
			for _, e := range c.All() {
				visit(e)
			}
		}
	}
	for _, c := range p.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			if v, ok := n.(xast.NodeValue); ok {
				visit(v.Value)
			}
			return true
		})
	}
}
