package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/policy"
)

type reidentifyRequest struct {
	Field string `json:"field"`
	Token string `json:"token"`
}

type reidentifyResponse struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
}

// reidentify reverses a reversible (AES-SIV) token that the gateway
// released, for a caller whom policy permits the action "reidentify" on the
// field. The token only opens under the purpose it was released for.
func (g *Gateway) reidentify(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	pctx, ok := g.policyContext(w, r, p)
	if !ok {
		return
	}
	var req reidentifyRequest
	if !g.decodeBody(w, r, &req) {
		return
	}
	f, ok := g.vault.Schema().Field(req.Field)
	if !ok {
		writeFieldError(w, http.StatusBadRequest, "unknown_field", fmt.Sprintf("field %q is not in the schema", truncate(printable(req.Field), 64)), []string{truncate(printable(req.Field), 64)})
		return
	}
	if f.Method != "siv" {
		writeError(w, http.StatusUnprocessableEntity, "not_reversible", fmt.Sprintf("field %q is pseudonymised with %q, which cannot be reversed", f.Name, f.Method))
		return
	}
	set := g.policies.Load()
	ok, ids := set.Allowed(p, "reidentify", &f, pctx)
	e := g.newEntry(auditlog.KindReidentify, "reidentify", p, pctx)
	e.Subject = g.tokenPseudonym(req.Token)
	e.Policy = &auditlog.PolicyRef{Digest: set.Digest(), IDs: ids}
	if !ok {
		e.Decision, e.Status = auditlog.Deny, http.StatusForbidden
		e.Fields = []auditlog.Field{{Name: f.Name, Form: string(policy.Withheld), Policies: ids}}
		if g.record(w, r, e) {
			writeError(w, http.StatusForbidden, "forbidden", "re-identifying this field is not permitted by policy for this caller")
		}
		return
	}
	if g.siv == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "re-identification is not configured")
		return
	}
	plain, err := g.siv.Open(purposeScope(pctx.Purpose), req.Token)
	if err != nil {
		e.Decision, e.Status, e.Detail = auditlog.Allow, http.StatusUnprocessableEntity, "token did not open; nothing released"
		if g.record(w, r, e) {
			writeError(w, http.StatusUnprocessableEntity, "invalid_token", "the token is malformed, altered, or was not released for this purpose")
		}
		return
	}
	e.Decision, e.Status = auditlog.Allow, http.StatusOK
	e.Fields = []auditlog.Field{{Name: f.Name, Form: string(policy.Raw), Policies: ids}}
	if !g.record(w, r, e) {
		return
	}
	value := json.RawMessage(plain)
	if f.Type == "string" || f.Type == "email" || f.Type == "phone" || f.Type == "date" || f.Type == "ip" || !json.Valid(plain) {
		value, _ = json.Marshal(string(plain))
	}
	writeJSON(w, http.StatusOK, reidentifyResponse{Field: f.Name, Value: value})
}
