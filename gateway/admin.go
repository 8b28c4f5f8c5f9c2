package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/cloverenclave/clover/policy"
)

// ErrNoReload is returned by ReloadPolicies when the gateway was built
// without a way to reload policies.
var ErrNoReload = errors.New("policies cannot be reloaded: no policy source configured")

// errPolicyNotLogged: a new policy set is never put in force unlogged.
var errPolicyNotLogged = errors.New("the new policy set could not be recorded in the audit log; the running set stays")

// ReloadPolicies loads the policy set afresh and, if it loads, checks and
// is recorded in the audit log (with its full text), puts it in force; on
// any error the running set stays. It is what SIGHUP and POST
// /v1/admin/policies/reload do; by names who asked.
func (g *Gateway) ReloadPolicies(ctx context.Context, by string) (*policy.Set, error) {
	if g.reload == nil {
		return nil, ErrNoReload
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	set, err := g.reload()
	if err != nil {
		return nil, err
	}
	if _, err := g.RecordPolicy(ctx, set, by); err != nil {
		return nil, fmt.Errorf("%w: %w", errPolicyNotLogged, err)
	}
	old := g.policies.Swap(set)
	if old == nil || old.Digest() != set.Digest() {
		g.log.Info("policy set in force", "digest", set.Digest(), "policies", set.Len())
	}
	return set, nil
}

// Policies returns the policy set in force.
func (g *Gateway) Policies() *policy.Set { return g.policies.Load() }

type policySummary struct {
	Digest   string       `json:"digest"`
	Policies []string     `json:"policies"`
	Files    []policyFile `json:"files,omitempty"`
}

type policyFile struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

func summarise(set *policy.Set, withText bool) policySummary {
	s := policySummary{Digest: set.Digest(), Policies: set.IDs()}
	if withText {
		for _, f := range set.Files() {
			s.Files = append(s.Files, policyFile{Name: f.Name, Text: f.Text})
		}
	}
	return s
}

// hasAnyRole answers 403 unless the caller holds one of roles. Used for the
// operator endpoints, which are not decided by the data policies.
func hasAnyRole(w http.ResponseWriter, r *http.Request, what string, roles ...string) bool {
	p, _ := PrincipalFrom(r.Context())
	if slices.ContainsFunc(roles, p.HasRole) {
		return true
	}
	writeError(w, http.StatusForbidden, "forbidden", what+" requires one of the roles "+quoteList(roles))
	return false
}

func quoteList(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += `"` + s + `"`
	}
	return out
}

func (g *Gateway) reloadPolicies(w http.ResponseWriter, r *http.Request) {
	if !hasAnyRole(w, r, "reloading policies", "admin") {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	set, err := g.ReloadPolicies(r.Context(), "admin "+p.Subject)
	switch {
	case errors.Is(err, ErrNoReload):
		writeError(w, http.StatusConflict, "no_policy_source", err.Error())
		return
	case errors.Is(err, errPolicyNotLogged):
		g.log.Error("policy reload refused", "error", err)
		writeError(w, http.StatusServiceUnavailable, "log_unavailable", errPolicyNotLogged.Error())
		return
	case err != nil:
		g.log.Warn("policy reload refused; the running set stays", "error", err)
		writeError(w, http.StatusUnprocessableEntity, "invalid_policy", "the new policy set was refused and the running set stays: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, summarise(set, false))
}

func (g *Gateway) listPolicies(w http.ResponseWriter, r *http.Request) {
	if !hasAnyRole(w, r, "reading the policy set", "admin", "dpo", "auditor") {
		return
	}
	writeJSON(w, http.StatusOK, summarise(g.policies.Load(), true))
}
