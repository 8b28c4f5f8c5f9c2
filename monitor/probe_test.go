package monitor

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/monitor/incident"
)

// probeRig is a live log, a fake gateway in front of it whose answer to
// the canary's read a test chooses, and a monitor following the log.
type probeRig struct {
	t       *testing.T
	log     *auditlog.Log
	gen     *entryGen
	m       *Monitor
	now     time.Time
	answer  func(w http.ResponseWriter, r *http.Request)
	appends []uint64
}

const canarySub = "canary-1"

func newProbeRig(t *testing.T) *probeRig {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	l, err := auditlog.Open(ctx, auditlog.Options{Dir: dir, Origin: "clover/eu", SignerKeyFile: filepath.Join(dir, "signer.key")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rig := &probeRig{t: t, log: l, gen: newEntryGen(t), now: time.Now()}
	if _, err := l.AppendEntry(ctx, rig.gen.policyEntry()); err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rig.answer(w, r) }))
	t.Cleanup(gw.Close)

	cfg := benchConfig(t, l.VerifierKey())
	cfg.Gateway.URL = gw.URL
	cfg.Canary.TokenFile = "canary.jwt"
	cfg.Canary.Timeout = 5 * time.Second
	// A token whose payload names the canary; the fake gateway does not
	// check signatures.
	tok := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"`+canarySub+`"}`)) + ".c2ln"
	if err := os.WriteFile(filepath.Join(cfg.Data, "canary.jwt"), []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	rig.m, err = New(ctx, cfg, Options{Fetcher: auditlog.DirFetcher(filepath.Join(dir, "tree")), Now: func() time.Time { return rig.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rig.m.Close() })
	return rig
}

// logCanary appends a canary read with the given request id and decision,
// as the gateway would.
func (r *probeRig) logCanary(reqID string, deny bool) uint64 {
	e := r.gen.readAs(canarySub, []string{"canary"}, "clover-canary-probe")
	e.RequestID = reqID
	if !deny {
		// What a broken gateway would write: an allow it should not give.
		e.Decision, e.Status = auditlog.Allow, http.StatusOK
	}
	idx, err := r.log.AppendEntry(context.Background(), e)
	if err != nil {
		r.t.Fatal(err)
	}
	r.appends = append(r.appends, idx)
	return idx
}

// sync waits for the log's appends to be published, then polls.
func (r *probeRig) sync() {
	r.t.Helper()
	for _, idx := range r.appends {
		if err := r.log.WaitIntegrated(context.Background(), idx); err != nil {
			r.t.Fatal(err)
		}
	}
	if _, err := r.m.Poll(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *probeRig) probes() []incident.Probe {
	ps, err := r.m.Store().Probes(context.Background(), 100)
	if err != nil {
		r.t.Fatal(err)
	}
	return ps
}

func (r *probeRig) incidents(rule string) []incident.Incident {
	ins, err := r.m.Store().Incidents(context.Background(), incident.Filter{Rule: rule})
	if err != nil {
		r.t.Fatal(err)
	}
	return ins
}

func receipt(w http.ResponseWriter, idx uint64, reqID string, status int) {
	w.Header().Set("Clover-Log-Index", strconv.FormatUint(idx, 10))
	w.Header().Set("Clover-Request-Id", reqID)
	w.WriteHeader(status)
}

func TestProbePasses(t *testing.T) {
	r := newProbeRig(t)
	r.answer = func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") == "" || req.URL.Query().Get("fields") == "" {
			t.Errorf("probe request %s without a token or fields", req.URL)
		}
		receipt(w, r.logCanary("req-1", true), "req-1", http.StatusForbidden)
	}
	p, err := r.m.Probe(context.Background())
	if err != nil || p.Outcome != ProbePending {
		t.Fatalf("probe = %+v, %v; want pending until the log shows the denial", p, err)
	}
	r.sync()
	ps := r.probes()
	if len(ps) != 1 || ps[0].Outcome != ProbePassed || ps[0].LogIndex == nil {
		t.Fatalf("probes = %+v, want one passed", ps)
	}
	if ins := r.incidents(RuleProbe); len(ins) != 0 {
		t.Fatalf("incidents for a passed probe: %+v", ins)
	}
	// The canary's denials are the probes' business, not the rules'.
	if ins := r.incidents("repeated-denials"); len(ins) != 0 {
		t.Fatalf("the canary's denial reached the rules: %+v", ins)
	}
}

func TestProbeControlFailure(t *testing.T) {
	r := newProbeRig(t)
	r.answer = func(w http.ResponseWriter, req *http.Request) {
		receipt(w, r.logCanary("req-1", false), "req-1", http.StatusOK)
	}
	if p, _ := r.m.Probe(context.Background()); p.Outcome != ProbeControlFailure {
		t.Fatalf("a 200 to the canary: outcome %q", p.Outcome)
	}
	ins := r.incidents(RuleProbe)
	if len(ins) != 1 || ins[0].Severity != "critical" {
		t.Fatalf("incidents = %+v, want one critical control failure", ins)
	}
}

func TestProbeLoggedAsAllow(t *testing.T) {
	// The gateway answers 403 but logs an allow: the log says access was
	// granted, which is a control failure too.
	r := newProbeRig(t)
	r.answer = func(w http.ResponseWriter, req *http.Request) {
		receipt(w, r.logCanary("req-1", false), "req-1", http.StatusForbidden)
	}
	r.m.Probe(context.Background())
	r.sync()
	if ps := r.probes(); len(ps) != 1 || ps[0].Outcome != ProbeControlFailure {
		t.Fatalf("probes = %+v, want a control failure", ps)
	}
}

func TestProbeLogOmissions(t *testing.T) {
	t.Run("no receipt", func(t *testing.T) {
		r := newProbeRig(t)
		r.answer = func(w http.ResponseWriter, req *http.Request) { w.WriteHeader(http.StatusForbidden) }
		if p, _ := r.m.Probe(context.Background()); p.Outcome != ProbeLogOmission {
			t.Fatalf("403 without a log index: outcome %q", p.Outcome)
		}
	})
	t.Run("receipt points at another entry", func(t *testing.T) {
		r := newProbeRig(t)
		r.answer = func(w http.ResponseWriter, req *http.Request) {
			other := r.logCanary("someone-else", true)
			r.logCanary("req-1", true)
			receipt(w, other, "req-1", http.StatusForbidden)
		}
		r.m.Probe(context.Background())
		r.sync()
		if ps := r.probes(); len(ps) != 1 || ps[0].Outcome != ProbeLogOmission {
			t.Fatalf("probes = %+v, want a log omission", ps)
		}
	})
	t.Run("denial never logged", func(t *testing.T) {
		r := newProbeRig(t)
		r.answer = func(w http.ResponseWriter, req *http.Request) { receipt(w, 99, "req-1", http.StatusForbidden) }
		r.m.Probe(context.Background())
		r.sync()
		r.m.expireProbes(context.Background())
		if ps := r.probes(); len(ps) != 1 || ps[0].Outcome != ProbePending {
			t.Fatalf("before the timeout: probes = %+v, want pending", ps)
		}
		r.now = r.now.Add(6 * time.Second)
		r.m.expireProbes(context.Background())
		if ps := r.probes(); len(ps) != 1 || ps[0].Outcome != ProbeLogOmission {
			t.Fatalf("after the timeout: probes = %+v, want a log omission", ps)
		}
		if ins := r.incidents(RuleProbe); len(ins) != 1 || ins[0].Severity != "critical" {
			t.Fatalf("incidents = %+v", ins)
		}
	})
}

func TestProbeGatewayUnreachable(t *testing.T) {
	r := newProbeRig(t)
	r.answer = func(w http.ResponseWriter, req *http.Request) { w.WriteHeader(http.StatusUnauthorized) }
	if p, _ := r.m.Probe(context.Background()); p.Outcome != ProbeError {
		t.Fatalf("401: outcome %q", p.Outcome)
	}
	ins := r.incidents(RuleProbe)
	if len(ins) != 1 || ins[0].Severity != "medium" {
		t.Fatalf("incidents = %+v, want one medium (control not tested)", ins)
	}
}

func TestProbeDenialSeenBeforeReceipt(t *testing.T) {
	// The poll may verify the denial before the probe has handled the
	// gateway's answer; the probe must still pass.
	r := newProbeRig(t)
	r.answer = func(w http.ResponseWriter, req *http.Request) {
		idx := r.logCanary("req-1", true)
		r.sync()
		receipt(w, idx, "req-1", http.StatusForbidden)
	}
	if p, _ := r.m.Probe(context.Background()); p.Outcome != ProbePassed {
		t.Fatalf("outcome %q, want passed", p.Outcome)
	}
}
