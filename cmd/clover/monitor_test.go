package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/monitor/incident"
	"github.com/cloverenclave/clover/policy"
)

// proc is a clover process started by a test.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(t *testing.T, bin, logFile, health string, args ...string) *proc {
	t.Helper()
	p := &proc{log: logFile, done: make(chan struct{})}
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("clover %s exited: %v; log:\n%s", args[0], p.err, p.text())
		default:
		}
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("clover %s did not answer %s within 30s; log:\n%s", args[0], health, p.text())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (p *proc) text() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("process did not stop within 30s of SIGTERM; log:\n%s", p.text())
	}
}

// hooks is a webhook receiver that checks each delivery's signature.
type hooks struct {
	secret []byte
	mu     sync.Mutex
	got    []incident.Incident
	bad    []string
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := incident.VerifySignature(h.secret, r.Header.Get("Clover-Signature"), body, time.Now(), 5*time.Minute); err != nil {
		h.bad = append(h.bad, err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p struct {
		Incident incident.Incident `json:"incident"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		h.bad = append(h.bad, "undecodable payload: "+err.Error())
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	h.got = append(h.got, p.Incident)
}

func (h *hooks) find(rule string) (incident.Incident, bool) {
	return h.findTitle(rule, "")
}

// findTitle finds an incident of a rule whose title contains s.
func (h *hooks) findTitle(rule, s string) (incident.Incident, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, in := range h.got {
		if in.Rule == rule && strings.Contains(in.Title, s) {
			return in, true
		}
	}
	return incident.Incident{}, false
}

func (h *hooks) count(rule string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, in := range h.got {
		if in.Rule == rule {
			n++
		}
	}
	return n
}

// eventually polls cond every 100ms until it holds or the time is up.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMonitorEndToEnd runs an enclave and an independent monitor as two
// processes with separate data directories and keys, and checks what the
// monitor issue asks: checkpoints cosigned, a bulk reader reported to a
// webhook, probes recorded, a forged decision caught by replay and a
// rewritten log caught as a fork.
func TestMonitorEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the clover binary and runs an enclave and a monitor; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH: cannot build the clover binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "clover")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	edata, mdata := filepath.Join(dir, "enclave"), filepath.Join(dir, "monitor")
	eaddr, maddr := freeAddr(t), freeAddr(t)
	ebase, mbase := "http://"+eaddr, "http://"+maddr

	// The webhook receiver, with its shared secret.
	hk := &hooks{secret: []byte("a-webhook-secret-of-32-bytes-xx!")}
	hsrv := httptest.NewServer(hk)
	defer hsrv.Close()
	if err := os.MkdirAll(mdata, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mdata, "soc.secret"), hk.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	mcfg := filepath.Join(dir, "monitor.yaml")
	writeFile(t, mcfg, fmt.Sprintf(`name: monitor.auditor.example
log:
  poll_interval: 200ms
  require_cosignature: true
canary:
  every: 1s
  timeout: 15s
rules:
  - name: bulk-reader
    severity: high
    bulk_access: {subjects: 5, window: 1m}
webhooks:
  - name: soc
    url: %s
    secret_file: soc.secret
`, hsrv.URL))
	// Keys first: each side needs the other's public key, nothing else.
	code, wkey, errOut := clover(t, "monitor", "key", "--config", mcfg, "--data", mdata)
	if code != 0 {
		t.Fatalf("monitor key: %d %s", code, errOut)
	}
	wkey = strings.TrimSpace(wkey)
	lkey := crashLogKey(t, edata)
	canary := filepath.Join(dir, "canary.jwt")
	if err := os.WriteFile(canary, []byte(crashToken(t, edata, "canary-probe", "canary")), 0o600); err != nil {
		t.Fatal(err)
	}

	ecfg := filepath.Join(dir, "enclave.yaml")
	witnessed := fmt.Sprintf("audit_log:\n  witnesses:\n    - name: monitor\n      url: %s\n      key: %s\n", mbase, wkey)
	writeFile(t, ecfg, witnessed)

	mon := startProc(t, bin, filepath.Join(dir, "monitor.log"), mbase+"/healthz",
		"monitor", "--config", mcfg, "--data", mdata, "--listen", maddr, "--log", ebase+"/log/",
		"--log-key", lkey, "--gateway", ebase, "--canary-token-file", canary)
	encl := startProc(t, bin, filepath.Join(dir, "enclave.log"), ebase+"/healthz",
		"serve", "--config", ecfg, "--data", edata, "--listen", eaddr)

	ingest := crashToken(t, edata, "ingest-1", "ingest")
	service := crashToken(t, edata, "bulk-reader-1", "service")
	do := func(method, path, tok, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, ebase+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d, want %d", method, path, resp.StatusCode, want)
		}
	}
	for i := range 8 {
		do(http.MethodPut, fmt.Sprintf("/v1/subjects/mon-%d", i), ingest, fmt.Sprintf(`{"country":"IE","fields":{"email":"m%d@example.ie"}}`, i), http.StatusCreated)
	}
	for i := range 8 {
		do(http.MethodGet, fmt.Sprintf("/v1/subjects/mon-%d", i), service, "", http.StatusOK)
	}

	// The bulk reader is reported to the webhook, signed.
	eventually(t, 20*time.Second, "the bulk-reader incident reaches the webhook", func() bool {
		_, ok := hk.find("bulk-reader")
		return ok
	})
	in, _ := hk.find("bulk-reader")
	if in.Severity != "high" || len(in.Evidence) < 5 {
		t.Errorf("bulk-reader incident = %+v, want severity high and at least 5 log indexes", in)
	}

	// Published checkpoints carry the monitor's cosignature.
	cosig, err := fnote.NewVerifierForCosignatureV1(wkey)
	if err != nil {
		t.Fatal(err)
	}
	logVer, err := note.NewVerifier(lkey)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the published checkpoint is cosigned by the monitor", func() bool {
		resp, err := http.Get(ebase + "/log/checkpoint")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		n, err := note.Open(b, note.VerifierList(logVer, cosig))
		if err != nil {
			return false
		}
		for _, s := range n.Sigs {
			if s.Hash == cosig.KeyHash() {
				return true
			}
		}
		return false
	})

	// The cosigned log still verifies with the log's key alone.
	if code, out, errOut := clover(t, "verify", "--log", ebase+"/log/", "--key", lkey); code != 0 {
		t.Fatalf("clover verify of the witnessed log: exit %d: %s%s", code, out, errOut)
	}

	// Probes: the canary was refused and its denial found in the log.
	opTok := operatorToken(t, mdata)
	api := func(path string, v any) int {
		req, _ := http.NewRequest(http.MethodGet, mbase+path, nil)
		req.Header.Set("Authorization", "Bearer "+opTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(v)
		return resp.StatusCode
	}
	var ps struct {
		Probes []struct {
			Outcome  string  `json:"outcome"`
			Status   int     `json:"status"`
			LogIndex *uint64 `json:"log_index"`
			Detail   string  `json:"detail"`
		} `json:"probes"`
	}
	defer func() {
		if t.Failed() {
			t.Logf("probes: %+v\nmonitor log:\n%s", ps.Probes, mon.text())
		}
	}()
	eventually(t, 20*time.Second, "a canary probe passes (403 and its denial in the log)", func() bool {
		api("/v1/probes", &ps)
		for _, p := range ps.Probes {
			if p.Outcome == "passed" && p.Status == http.StatusForbidden && p.LogIndex != nil {
				return true
			}
		}
		return false
	})
	if code := api("/v1/incidents", &struct{}{}); code != http.StatusOK {
		t.Fatalf("GET /v1/incidents with the operator token = %d", code)
	}

	// A forged decision: an entry written straight into the log (as
	// someone with the enclave's signing key could) that releases a field
	// policy withholds. The enclave is stopped so that the log is free.
	encl.stop(t)
	forge(t, edata, mbase, wkey)
	encl = startProc(t, bin, filepath.Join(dir, "enclave.log"), ebase+"/healthz",
		"serve", "--config", ecfg, "--data", edata, "--listen", eaddr)
	eventually(t, 20*time.Second, "replay catches the forged decision", func() bool {
		_, ok := hk.find("replay")
		return ok
	})
	rin, _ := hk.find("replay")
	if rin.Severity != "critical" || !strings.Contains(rin.Title, "email") {
		t.Errorf("replay incident = %+v, want critical, naming the field email", rin)
	}

	// A rewritten log: the enclave starts over on a new tree under the
	// same key and origin, unwitnessed, and grows past what the monitor
	// has verified. The monitor must call it a fork.
	encl.stop(t)
	if err := os.Rename(filepath.Join(edata, "log"), filepath.Join(dir, "old-log")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, ecfg, "")
	encl = startProc(t, bin, filepath.Join(dir, "enclave.log"), ebase+"/healthz",
		"serve", "--config", ecfg, "--data", edata, "--listen", eaddr)
	var st struct {
		Size uint64 `json:"size"`
	}
	api("/v1/status", &st)
	for i := 0; uint64(i) <= st.Size+2; i++ {
		do(http.MethodPut, fmt.Sprintf("/v1/subjects/re-%d", i), ingest, `{"country":"IE","fields":{"email":"r@example.ie"}}`, http.StatusCreated)
	}
	eventually(t, 20*time.Second, "the rewritten log is reported as a fork", func() bool {
		_, ok := hk.findTitle("log", "forked")
		return ok
	})
	fin, _ := hk.findTitle("log", "forked")
	// The monitor keeps polling a forked log; that is one incident, not
	// one per poll. (The new history may first be seen smaller: a
	// rollback, its own incident.)
	time.Sleep(2 * time.Second)
	if n := hk.count("log"); n > 2 {
		t.Errorf("%d log incidents delivered for one rewrite, want at most 2 (rollback, fork)", n)
	}
	if fin.Severity != "critical" || strings.Count(fin.Detail, "checkpoint:") < 2 {
		t.Errorf("fork incident = %+v, want critical and naming both checkpoints", fin)
	}
	// The signed report of the day: made while the monitor runs, checked
	// with the monitor's report key, and refused once altered.
	today := time.Now().UTC()
	rep := filepath.Join(dir, "report.html")
	code, out, errOut := clover(t, "monitor", "report", "--config", mcfg, "--data", mdata, "--format", "html", "--out", rep,
		"--from", today.Format(time.DateOnly), "--to", today.AddDate(0, 0, 1).Format(time.DateOnly))
	if code != 0 {
		t.Fatalf("monitor report: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "wrote "+rep) {
		t.Errorf("monitor report said %q", out)
	}
	_, rkey, _ := clover(t, "monitor", "key", "--config", mcfg, "--data", mdata, "--reports")
	rkey = strings.TrimSpace(rkey)
	if code, out, errOut := clover(t, "monitor", "report", "verify", rep, "--key", rkey); code != 0 || !strings.HasPrefix(out, "ok: html report of clover/eu") {
		t.Fatalf("report verify: exit %d: %s%s", code, out, errOut)
	}
	html, _ := os.ReadFile(rep)
	for _, want := range []string{"bulk-reader", "replay", "<svg"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the report does not mention %q", want)
		}
	}
	html[len(html)/2] ^= 1
	os.WriteFile(rep, html, 0o644)
	if code, _, errOut := clover(t, "monitor", "report", "verify", rep, "--key", rkey); code != 1 || !strings.Contains(errOut, "digest") {
		t.Errorf("an altered report: exit %d: %s", code, errOut)
	}

	hk.mu.Lock()
	if len(hk.bad) > 0 {
		t.Errorf("webhook deliveries with bad signatures or payloads: %v", hk.bad)
	}
	hk.mu.Unlock()
	select {
	case <-mon.done:
		t.Fatalf("the monitor exited: %v; log:\n%s", mon.err, mon.text())
	default:
	}
	if t.Failed() {
		t.Logf("monitor log:\n%s", mon.text())
	}
}

// forge appends a decision that policy does not allow to the enclave's log,
// submitting its checkpoint to the monitor like the enclave would.
func forge(t *testing.T, edata, mbase, wkey string) {
	t.Helper()
	set, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	o := auditlog.Options{Dir: filepath.Join(edata, "log"), Origin: "clover/eu",
		SignerKeyFile: filepath.Join(edata, "secrets", "log-signer.key"),
		Witnesses:     []auditlog.Witness{{Name: "monitor", URL: mbase, Key: wkey}}}
	ctx := context.Background()
	l, err := auditlog.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	e := &auditlog.Entry{Time: now, RequestID: "forged-1", Kind: auditlog.KindDecision, Site: "ie-dublin",
		Actor:  &auditlog.Actor{Sub: "intruder-1", Type: "Employee", Roles: []string{"marketing"}, Country: "IE"},
		Action: "read", Subject: strings.Repeat("ab", 32), Decision: auditlog.Allow,
		Fields:  []auditlog.Field{{Name: "email", Form: "raw"}},
		Purpose: "support",
		Context: &auditlog.RequestContext{SubjectCountry: "IE", SubjectJurisdiction: "eu", SubjectSite: "ie-dublin",
			CallerInJurisdiction: true, Hour: now.Hour(), Weekday: now.Weekday().String()[:3]},
		Policy: &auditlog.PolicyRef{Digest: set.Digest()}, Status: http.StatusOK}
	idx, err := l.AppendEntry(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitIntegrated(ctx, idx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func operatorToken(t *testing.T, mdata string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mdata, "operators"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "admin" {
			return f[1]
		}
	}
	t.Fatal("no admin operator in the operators file")
	return ""
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
