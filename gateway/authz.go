package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/policy"
)

// Request headers that feed policy decisions.
const (
	HeaderPurpose       = "Clover-Purpose"
	HeaderJustification = "Clover-Justification"
	// MaxJustification caps the Clover-Justification header, in bytes.
	MaxJustification = 256
)

// policyContext builds the decision context of a request from its headers,
// the caller and the clock; hostile or unknown values are answered with 400.
func (g *Gateway) policyContext(w http.ResponseWriter, r *http.Request, p authn.Principal) (policy.Context, bool) {
	purposes := r.Header.Values(HeaderPurpose)
	justs := r.Header.Values(HeaderJustification)
	if len(purposes) > 1 || len(justs) > 1 {
		writeError(w, http.StatusBadRequest, "invalid_header", "give Clover-Purpose and Clover-Justification at most once each")
		return policy.Context{}, false
	}
	var purpose, just string
	if len(purposes) == 1 {
		purpose = strings.TrimSpace(purposes[0])
		if !g.purposes[purpose] {
			writeError(w, http.StatusBadRequest, "unknown_purpose",
				fmt.Sprintf("Clover-Purpose %q is not one of the configured purposes (%s)", truncate(printable(purpose), 40), strings.Join(g.cfg.Purposes, ", ")))
			return policy.Context{}, false
		}
	}
	if len(justs) == 1 {
		just = strings.TrimSpace(justs[0])
		switch {
		case len(just) > MaxJustification:
			writeError(w, http.StatusBadRequest, "invalid_header", fmt.Sprintf("Clover-Justification is longer than %d bytes", MaxJustification))
			return policy.Context{}, false
		case !utf8.ValidString(just) || strings.ContainsFunc(just, unicode.IsControl):
			writeError(w, http.StatusBadRequest, "invalid_header", "Clover-Justification must be printable UTF-8 text")
			return policy.Context{}, false
		}
	}
	ctx := policy.Context{
		Purpose:              purpose,
		Justification:        just,
		SubjectJurisdiction:  g.vault.Enclave().Name(),
		CallerInJurisdiction: g.vault.Enclave().Accepts(p.Country),
	}
	return ctx.WithTime(g.now()), true
}

// allowAndRecord decides action on a subject's record, records the
// decision in e, and answers 403 (denied) or 503 (not recorded) itself;
// true means allowed and durably recorded.
func (g *Gateway) allowAndRecord(w http.ResponseWriter, r *http.Request, p authn.Principal, action string, ctx policy.Context, e *auditlog.Entry, what string) bool {
	set := g.policies.Load()
	ok, ids := set.Allowed(p, action, nil, ctx)
	e.Policy = &auditlog.PolicyRef{Digest: set.Digest(), IDs: ids}
	e.Decision, e.Status = auditlog.Allow, 0
	if !ok {
		e.Decision, e.Status = auditlog.Deny, http.StatusForbidden
	}
	if !g.record(w, r, e) {
		return false
	}
	if !ok {
		writeError(w, http.StatusForbidden, "forbidden", what+" is not permitted by policy for this caller")
	}
	return ok
}

// printable replaces control characters so a hostile value can be quoted.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}
