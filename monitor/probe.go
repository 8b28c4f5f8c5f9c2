package monitor

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/monitor/incident"
	"github.com/cloverenclave/clover/monitor/rules"
)

// Outcomes of a canary probe.
const (
	ProbePending        = "pending"
	ProbePassed         = "passed"
	ProbeControlFailure = "control_failure"
	ProbeLogOmission    = "log_omission"
	ProbeError          = "error"
)

// prober runs the canary probes: with an identity that holds no
// permission it tries a forbidden read, and expects a 403 at once and the
// matching denial in the log (found by the poll loop) within the timeout.
type prober struct {
	m      *Monitor
	client *http.Client
}

func newProber(m *Monitor, client *http.Client) *prober { return &prober{m: m, client: client} }

func (p *prober) run(ctx context.Context) {
	t := time.NewTicker(p.m.cfg.Canary.Every)
	defer t.Stop()
	for {
		p.probe(ctx)
		p.m.expireProbes(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Probe runs one canary probe now (it is what the probe loop does every
// interval) and returns its result as first recorded.
func (m *Monitor) Probe(ctx context.Context) (incident.Probe, error) { return m.prober.probe(ctx) }

func (p *prober) probe(ctx context.Context) (incident.Probe, error) {
	m := p.m
	id := make([]byte, 8)
	rand.Read(id)
	pr := incident.Probe{ID: hex.EncodeToString(id), Started: m.now().UTC(), Outcome: ProbePending}
	status, index, reqID, err := p.request(ctx)
	pr.Status = status
	switch {
	case err != nil:
		pr.Outcome, pr.Detail, pr.Finished = ProbeError, err.Error(), m.now().UTC()
	case status >= 200 && status < 300:
		pr.Outcome, pr.Finished = ProbeControlFailure, m.now().UTC()
		pr.Detail = fmt.Sprintf("the gateway answered %d to a read by an identity without permissions", status)
	case status != http.StatusForbidden:
		// 401 (a rejected canary token), 404, 5xx: the control was not
		// exercised, so this says nothing either way.
		pr.Outcome, pr.Finished = ProbeError, m.now().UTC()
		pr.Detail = fmt.Sprintf("the gateway answered %d, not 403: the control could not be tested", status)
	case index == nil || reqID == "":
		pr.Outcome, pr.Finished = ProbeLogOmission, m.now().UTC()
		pr.Detail = "the gateway denied the read but gave no log index: the denial was not logged"
	default:
		pr.LogIndex, pr.RequestID = index, reqID
		pr.Detail = "denied; waiting for the denial at index " + strconv.FormatUint(*index, 10)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if pr.Outcome == ProbePending {
		// The denial may already have been verified by a poll that ran
		// while the response was on its way.
		if seen, ok := m.canarySeen[pr.RequestID]; ok {
			m.pending[pr.RequestID] = &pr
			if done := m.matchProbe(seen.index, &seen.entry); done != nil {
				pr = *done
			}
		}
	}
	m.metrics.probes.WithLabelValues(pr.Outcome).Inc()
	b := incident.Batch{Probes: []incident.Probe{pr}}
	if in := probeIncident(pr); in != nil {
		b.Incidents = []incident.Incident{*in}
	}
	created, err := m.store.Commit(ctx, b)
	if err != nil {
		m.log.Error("cannot store a probe result", "error", err)
		return pr, err
	}
	if pr.Outcome == ProbePending {
		m.pending[pr.RequestID] = &pr
	}
	m.status.PendingProbes = len(m.pending)
	m.created(created)
	return pr, nil
}

// canaryEntry is an entry of the canary that matched no pending probe yet.
type canaryEntry struct {
	index uint64
	entry auditlog.Entry
}

// maxCanarySeen bounds the canary entries kept for probes still in flight.
const maxCanarySeen = 256

// rememberCanary keeps an unmatched canary entry for a probe whose
// response has not been handled yet. The caller holds m.mu.
func (m *Monitor) rememberCanary(idx uint64, e *auditlog.Entry) {
	if m.canarySeen == nil {
		m.canarySeen = map[string]canaryEntry{}
	}
	if len(m.canarySeen) >= maxCanarySeen {
		m.canarySeen = map[string]canaryEntry{}
	}
	m.canarySeen[e.RequestID] = canaryEntry{idx, *e}
}

// request sends the forbidden read.
func (p *prober) request(ctx context.Context) (status int, index *uint64, reqID string, err error) {
	c := p.m.cfg
	tok, err := os.ReadFile(c.Path(c.Canary.TokenFile))
	if err != nil {
		return 0, nil, "", fmt.Errorf("canary token: %w", err)
	}
	u := strings.TrimSuffix(c.Gateway.URL, "/") + "/v1/subjects/" + url.PathEscape(c.Canary.Subject) +
		"?fields=" + url.QueryEscape(c.Canary.Fields)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Clover-Purpose", c.Canary.Purpose)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, "", fmt.Errorf("probe request: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if v := resp.Header.Get("Clover-Log-Index"); v != "" {
		if n, err := strconv.ParseUint(v, 10, 63); err == nil {
			index = &n
		}
	}
	return resp.StatusCode, index, resp.Header.Get("Clover-Request-Id"), nil
}

// matchProbe checks an entry of the canary against the pending probes.
// The caller holds m.mu.
func (m *Monitor) matchProbe(idx uint64, e *auditlog.Entry) *incident.Probe {
	p, ok := m.pending[e.RequestID]
	if !ok {
		m.rememberCanary(idx, e)
		return nil
	}
	delete(m.canarySeen, e.RequestID)
	delete(m.pending, e.RequestID)
	m.status.PendingProbes = len(m.pending)
	done := *p
	done.Finished = m.now().UTC()
	switch {
	case *p.LogIndex != idx:
		done.Outcome = ProbeLogOmission
		done.Detail = fmt.Sprintf("the denial was logged at index %d, not at %d as the gateway's receipt said", idx, *p.LogIndex)
	case e.Decision != auditlog.Deny:
		done.Outcome = ProbeControlFailure
		done.Detail = fmt.Sprintf("the log records the canary's read as %q", e.Decision)
	default:
		done.Outcome = ProbePassed
		done.Detail = "denied, and the denial is in the log at index " + strconv.FormatUint(idx, 10)
	}
	return &done
}

// expireProbes turns probes whose denial has not appeared within the
// timeout into log omissions.
func (m *Monitor) expireProbes(ctx context.Context) {
	m.mu.Lock()
	var b incident.Batch
	now := m.now().UTC()
	for id, p := range m.pending {
		if now.Sub(p.Started) < m.cfg.Canary.Timeout {
			continue
		}
		delete(m.pending, id)
		done := *p
		done.Outcome, done.Finished = ProbeLogOmission, now
		done.Detail = fmt.Sprintf("no denial with request id %s appeared in a verified checkpoint within %v (the receipt said index %d)",
			p.RequestID, m.cfg.Canary.Timeout, *p.LogIndex)
		m.metrics.probes.WithLabelValues(done.Outcome).Inc()
		b.Probes = append(b.Probes, done)
		b.Incidents = append(b.Incidents, *probeIncident(done))
	}
	m.status.PendingProbes = len(m.pending)
	m.mu.Unlock()
	if len(b.Probes) == 0 {
		return
	}
	created, err := m.store.Commit(ctx, b)
	if err != nil {
		m.log.Error("cannot store expired probes", "error", err)
		return
	}
	m.created(created)
}

// probeIncident is the incident a finished probe raises, or nil.
func probeIncident(p incident.Probe) *incident.Incident {
	var title string
	sev := rules.Critical
	switch p.Outcome {
	case ProbeControlFailure:
		title = "control failure: the canary identity was granted access"
	case ProbeLogOmission:
		title = "log omission: the canary's denial is not in the log"
	case ProbeError:
		title, sev = "canary probe could not test the gateway", rules.Medium
	default:
		return nil
	}
	in := &incident.Incident{Key: "probe:" + p.Outcome, Rule: RuleProbe, Severity: string(sev), Title: title,
		Detail: "probe " + p.ID + ": " + p.Detail}
	if p.LogIndex != nil {
		in.Evidence = []uint64{*p.LogIndex}
	}
	return in
}

// canarySubject reads the "sub" claim of the canary's token, so that the
// monitor knows the canary's entries. The token is the monitor's own; its
// signature is the gateway's business.
func canarySubject(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("canary token: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("canary token %s: mode %v lets others read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("canary token: %w", err)
	}
	parts := strings.Split(strings.TrimSpace(string(b)), ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("canary token %s: not a JWT (want three dot-separated parts)", path)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("canary token %s: payload is not base64url: %v", path, err)
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub == "" {
		return "", fmt.Errorf("canary token %s: no sub claim", path)
	}
	return claims.Sub, nil
}
