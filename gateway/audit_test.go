package gateway

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cloverenclave/clover/auditlog"
)

func TestEveryDecisionIsLoggedAndReceipted(t *testing.T) {
	h := newHarness(t)
	steps := []struct {
		name, method, path, token, body string
		hdr                             []string
		status                          int
		kind                            auditlog.Kind
		decision                        auditlog.Decision
	}{
		{"write", "PUT", "/v1/subjects/niamh", h.token("ingest"), fullBody, nil, 201, auditlog.KindWrite, auditlog.Allow},
		{"refused write", "PUT", "/v1/subjects/niamh", h.token("support"), fullBody, nil, 403, auditlog.KindWrite, auditlog.Deny},
		{"read", "GET", "/v1/subjects/niamh", h.token("support"), "", []string{"Clover-Purpose", "support", "Clover-Justification", "T-9"}, 200, auditlog.KindDecision, auditlog.Allow},
		{"refused read", "GET", "/v1/subjects/niamh?fields=email", h.token("analyst"), "", []string{"Clover-Purpose", "analytics"}, 403, auditlog.KindDecision, auditlog.Deny},
		{"missing", "GET", "/v1/subjects/nobody", h.token("service"), "", nil, 404, auditlog.KindDecision, auditlog.Allow},
		{"refused erase", "DELETE", "/v1/subjects/niamh", h.token("support"), "", nil, 403, auditlog.KindErase, auditlog.Deny},
		{"erase", "DELETE", "/v1/subjects/niamh", h.token("erasure"), "", nil, 200, auditlog.KindErase, auditlog.Allow},
	}
	for _, s := range steps {
		before := h.audit.len()
		r := h.do(s.method, s.path, s.token, s.body, s.hdr...)
		if r.status != s.status {
			t.Fatalf("%s: %d %s, want %d", s.name, r.status, r.body, s.status)
		}
		if h.audit.len() != before+1 {
			t.Fatalf("%s: %d entries logged, want 1", s.name, h.audit.len()-before)
		}
		e := h.audit.last(t)
		if e.Kind != s.kind || e.Decision != s.decision || e.Actor == nil || e.Policy == nil || e.Policy.Digest == "" {
			t.Errorf("%s: entry %+v, want kind %s decision %s with actor and policy", s.name, e, s.kind, s.decision)
		}
		if got := r.header.Get(HeaderLogIndex); got != strconv.Itoa(before) {
			t.Errorf("%s: Clover-Log-Index = %q, want %d", s.name, got, before)
		}
	}
	// The read entry lists each field with the form released.
	h.do("PUT", "/v1/subjects/niamh", h.token("ingest"), fullBody)
	h.do("GET", "/v1/subjects/niamh", h.tokenFrom("CN", "support"), "", "Clover-Purpose", "support")
	e := h.audit.last(t)
	forms := map[string]string{}
	for _, f := range e.Fields {
		forms[f.Name] = f.Form
	}
	if forms["email"] != "pseudonym" || forms["health_condition"] != "withheld" || e.Actor.Country != "CN" || e.Context.CallerInJurisdiction {
		t.Errorf("read entry does not record the decision: %+v %+v", forms, e.Context)
	}
}

func TestLogHoldsNoPersonalData(t *testing.T) {
	h := newHarness(t)
	h.do("PUT", "/v1/subjects/niamh", h.token("ingest"), fullBody)
	h.do("GET", "/v1/subjects/niamh", h.token("service"), "")
	h.do("GET", "/v1/subjects/niamh", h.tokenFrom("CN", "support"), "", "Clover-Purpose", "support")
	h.do("DELETE", "/v1/subjects/niamh", h.token("erasure"), "")
	var all []byte
	for _, b := range h.audit.entries {
		all = append(all, b...)
	}
	for _, secret := range []string{"niamh", "Niamh Kelly", "example.ie", "1988-03-02", "123 4567", "203.0.113", "hurling", "asthma"} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

func TestFailClosed(t *testing.T) {
	h := newHarness(t)
	h.do("PUT", "/v1/subjects/niamh", h.token("ingest"), fullBody)
	h.audit.fail = auditlog.ErrUnavailable
	r := h.do("GET", "/v1/subjects/niamh", h.token("service"), "")
	if r.status != 503 || r.errorCode(t) != "log_unavailable" || bytes.Contains(r.body, []byte("niamh.kelly")) {
		t.Fatalf("read with a failed log = %d %s", r.status, r.body)
	}
	if r.header.Get(HeaderLogIndex) != "" {
		t.Error("a refused response carries a log index")
	}
	changed := strings.Replace(fullBody, "niamh.kelly@example.ie", "changed@example.ie", 1)
	if r := h.do("PUT", "/v1/subjects/niamh", h.token("ingest"), changed); r.status != 503 {
		t.Fatalf("write with a failed log = %d", r.status)
	}
	if r := h.do("DELETE", "/v1/subjects/niamh", h.token("erasure"), ""); r.status != 503 {
		t.Fatalf("erase with a failed log = %d", r.status)
	}
	h.audit.fail = auditlog.ErrPushback
	if r := h.do("GET", "/v1/subjects/niamh", h.token("service"), ""); r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("read under pushback = %d", r.status)
	}
	h.audit.fail = nil
	r = h.do("GET", "/v1/subjects/niamh", h.token("service"), "")
	if r.status != 200 || !bytes.Contains(r.body, []byte("niamh.kelly@example.ie")) {
		t.Fatalf("after the log recovered: %d %s (the refused write or erasure took effect)", r.status, r.body)
	}
}

func TestPolicyChangesAreLoggedWithTheirText(t *testing.T) {
	h := newHarness(t)
	h.policyDir = t.TempDir()
	os.WriteFile(filepath.Join(h.policyDir, "a.cedar"), []byte(`@id("only-services") permit (principal is Service, action in Action::"read", resource);`), 0o600)
	h.audit.fail = auditlog.ErrUnavailable
	before := h.gw.Policies().Digest()
	if r := h.do("POST", "/v1/admin/policies/reload", h.token("admin"), ""); r.status != 503 || h.gw.Policies().Digest() != before {
		t.Fatalf("reload with a failed log = %d; the set changed unlogged: %v", r.status, h.gw.Policies().Digest() != before)
	}
	h.audit.fail = nil
	if r := h.do("POST", "/v1/admin/policies/reload", h.token("admin"), ""); r.status != 200 {
		t.Fatalf("reload = %d %s", r.status, r.body)
	}
	e := h.audit.last(t)
	if e.Kind != auditlog.KindPolicy || e.Policy.Digest != h.gw.Policies().Digest() || len(e.PolicyFiles) != 1 || !strings.Contains(e.PolicyFiles[0].Text, "only-services") {
		t.Fatalf("policy entry = %+v", e)
	}
}
