package monitor

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/monitor/incident"
	"github.com/cloverenclave/clover/monitor/rules"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
)

// entryGen makes the entries a gateway writes: a policy entry with the
// default set and schema, then read decisions decided by that set for a
// mix of callers and purposes, so that replay agrees with every one.
type entryGen struct {
	set    *policy.Set
	fields []schema.Field
	n      int
	t      time.Time
	// now, if set, is the entries' clock; otherwise they are 1ms apart
	// from t.
	now func() time.Time
}

func newEntryGen(tb testing.TB) *entryGen {
	set, err := policy.Default()
	if err != nil {
		tb.Fatal(err)
	}
	return &entryGen{set: set, fields: schema.Default(), t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
}

func (g *entryGen) policyEntry() *auditlog.Entry {
	e := &auditlog.Entry{Time: g.t, RequestID: "p-1", Kind: auditlog.KindPolicy,
		Policy: &auditlog.PolicyRef{Digest: g.set.Digest(), IDs: g.set.IDs()}, Detail: "policy set in force"}
	for _, f := range g.set.Files() {
		e.PolicyFiles = append(e.PolicyFiles, auditlog.PolicyFile{Name: f.Name, Text: f.Text})
	}
	for _, f := range g.fields {
		e.Schema = append(e.Schema, auditlog.SchemaField{Name: f.Name, Type: f.Type, Category: f.Category, Method: f.Method})
	}
	return e
}

var (
	benchRoles    = [][]string{{"support"}, {"service"}, {"support", "service"}, {"analyst"}, {"fraud"}, {"engineer"}}
	benchPurposes = []string{"support", "service", "fraud-prevention", "analytics", "engineering"}
	benchCountry  = []string{"IE", "DE", "FR", "NO", "US", "IN"}
)

// read makes the read decision of actor on subject, with a role and
// purpose that vary from entry to entry.
func (g *entryGen) read(actor, subject string) *auditlog.Entry {
	return g.readAs(actor, benchRoles[(g.n+1)%len(benchRoles)], subject)
}

// readAs makes the read decision of actor, holding roles, on subject.
func (g *entryGen) readAs(actor string, roles []string, subject string) *auditlog.Entry {
	g.n++
	i := g.n
	p := authn.Principal{Subject: actor, Roles: roles, Country: benchCountry[i%len(benchCountry)]}
	t := g.t.Add(time.Duration(i) * time.Millisecond)
	if g.now != nil {
		t = g.now().UTC()
	}
	ctx := policy.Context{Purpose: benchPurposes[i%len(benchPurposes)], SubjectCountry: "IE", SubjectJurisdiction: "eu",
		SubjectSite: "ie-dublin", CallerInJurisdiction: p.Country != "US" && p.Country != "IN"}.WithTime(t)
	d := g.set.Decide(policy.Request{Principal: p, Fields: g.fields, Context: ctx}, func(f schema.Field, form policy.Form) bool {
		return pseudonym.Supports(f, pseudonym.Form(form))
	})
	e := &auditlog.Entry{Time: t, RequestID: fmt.Sprintf("r-%d", i), Kind: auditlog.KindDecision, Site: "ie-dublin",
		Actor:  &auditlog.Actor{Sub: actor, Type: policy.PrincipalType(p), Roles: roles, Country: p.Country},
		Action: "read", Subject: fmt.Sprintf("%064x", subject), Purpose: ctx.Purpose,
		Context: &auditlog.RequestContext{SubjectCountry: ctx.SubjectCountry, SubjectJurisdiction: ctx.SubjectJurisdiction,
			SubjectSite: ctx.SubjectSite, CallerInJurisdiction: ctx.CallerInJurisdiction, Hour: ctx.Hour, Weekday: ctx.Weekday},
		Policy: &auditlog.PolicyRef{Digest: d.Digest}}
	released := false
	for _, f := range d.Fields {
		e.Fields = append(e.Fields, auditlog.Field{Name: f.Field, Form: string(f.Form), Policies: f.Policies})
		released = released || f.Form != policy.Withheld
		for _, id := range f.Policies {
			if !slices.Contains(e.Policy.IDs, id) {
				e.Policy.IDs = append(e.Policy.IDs, id)
			}
		}
	}
	if released {
		e.Decision, e.Status = auditlog.Allow, http.StatusOK
	} else {
		e.Decision, e.Status = auditlog.Deny, http.StatusForbidden
	}
	return e
}

// benchLog writes a log of one policy entry and n reads to a directory.
func benchLog(tb testing.TB, dir string, n int) (verifierKey string) {
	ctx := context.Background()
	l, err := auditlog.Open(ctx, auditlog.Options{Dir: dir, Origin: "clover/eu", SignerKeyFile: filepath.Join(dir, "signer.key")})
	if err != nil {
		tb.Fatal(err)
	}
	g := newEntryGen(tb)
	if _, err := l.AppendEntry(ctx, g.policyEntry()); err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	entries := make([]*auditlog.Entry, n)
	for i := range entries {
		entries[i] = g.read(fmt.Sprintf("staff-%d", i%500), fmt.Sprintf("%d", i%20000))
	}
	errs := make(chan error, 8)
	var last uint64
	var mu sync.Mutex
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				idx, err := l.AppendEntry(ctx, entries[i])
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				last = max(last, idx)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	if err := l.WaitIntegrated(ctx, last); err != nil {
		tb.Fatal(err)
	}
	vkey := l.VerifierKey()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	return vkey
}

func benchConfig(tb testing.TB, vkey string) *Config {
	c := DefaultConfig()
	c.Data = tb.TempDir()
	c.Log.URL, c.Log.Key = "http://127.0.0.1:1/log/", vkey
	c.Rules = rules.DefaultConfig().Rules
	return c
}

// BenchmarkMonitor measures what the monitor does per entry: fetch and
// verify (signature, proofs, leaf hashes), decode, replay, rules, counters,
// and the SQLite commit of each chunk. Run it on one core:
//
//	go test -run '^$' -bench BenchmarkMonitor -cpu 1 ./monitor/
func BenchmarkMonitor(b *testing.B) {
	const n = 50_000
	dir := b.TempDir()
	vkey := benchLog(b, dir, n)
	src := auditlog.DirFetcher(filepath.Join(dir, "tree"))
	b.ResetTimer()
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		m, err := New(context.Background(), benchConfig(b, vkey), Options{Fetcher: src})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		got, err := m.Poll(context.Background())
		total += time.Since(start)
		b.StopTimer()
		if err != nil || got != n+1 {
			b.Fatalf("Poll = %d, %v; want %d entries", got, err, n+1)
		}
		if dis := m.metrics.disagreements; counterValue(dis) != 0 {
			b.Fatalf("%v replay disagreements on honest entries", counterValue(dis))
		}
		m.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*(n+1))/total.Seconds(), "entries/s")
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N*(n+1)), "ns/entry")
}

// TestMonitorFollowsHonestLog checks, on a smaller log, that the whole
// pipeline agrees with honest entries and stores its state: no replay
// disagreement, every entry counted, a restart finds nothing new.
func TestMonitorFollowsHonestLog(t *testing.T) {
	dir := t.TempDir()
	vkey := benchLog(t, dir, 3000)
	src := auditlog.DirFetcher(filepath.Join(dir, "tree"))
	cfg := benchConfig(t, vkey)
	cfg.Rules = []rules.Rule{{Name: "bulk", Severity: rules.High, BulkAccess: &rules.BulkAccess{Subjects: 500, Window: time.Minute}}}
	m, err := New(context.Background(), cfg, Options{Fetcher: src})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m.Poll(context.Background()); err != nil || n != 3001 {
		t.Fatalf("Poll = %d, %v", n, err)
	}
	if d := counterValue(m.metrics.disagreements); d != 0 {
		t.Fatalf("%v replay disagreements on honest entries", d)
	}
	ins, err := m.Store().Incidents(context.Background(), incident.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.Rule == RuleReplay || in.Rule == RuleLog {
			t.Errorf("incident on an honest log: %+v", in)
		}
	}
	counts, err := m.Store().Counts(context.Background(), "2026-11-23", "2026-11-23")
	if err != nil {
		t.Fatal(err)
	}
	var kinds int64
	for _, c := range counts {
		if c.Dimension == "kind" {
			kinds += c.N
		}
	}
	if kinds != 3001 {
		t.Errorf("counted %d entries by kind, want 3001", kinds)
	}
	st := m.Status()
	m.Close()
	// A restart resumes from the stored state: nothing to read again.
	m2, err := New(context.Background(), cfg, Options{Fetcher: src})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if n, err := m2.Poll(context.Background()); err != nil || n != 0 {
		t.Fatalf("Poll after a restart = %d, %v; want nothing new", n, err)
	}
	if m2.Status().Size != st.Size || st.Size != 3001 {
		t.Fatalf("size after restart %d, before %d", m2.Status().Size, st.Size)
	}
}

// TestAlertLatency drives a live log at a steady rate, with a bulk reader
// every 200ms, and measures from the moment the bulk reader's last read was
// durable to the webhook's arrival. It is a measurement, not a check of
// speed: it fails only if alerts go missing. Run it by hand:
//
//	CLOVER_ALERT_LATENCY=20000 go test -run TestAlertLatency -v ./monitor/
func TestAlertLatency(t *testing.T) {
	rate := 2000
	if v := os.Getenv("CLOVER_ALERT_LATENCY"); v != "" {
		fmt.Sscan(v, &rate)
	} else if testing.Short() {
		t.Skip("a load measurement; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := auditlog.Open(ctx, auditlog.Options{Dir: dir, Origin: "clover/eu", SignerKeyFile: filepath.Join(dir, "signer.key")})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := newEntryGen(t)
	g.now = time.Now
	if _, err := l.AppendEntry(ctx, g.policyEntry()); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		acked   = map[uint64]time.Time{} // bulk readers' last reads
		arrived []time.Duration
	)
	secret := make([]byte, 32)
	rand.Read(secret)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		body, _ := io.ReadAll(r.Body)
		var p incident.Payload
		if err := incident.VerifySignature(secret, r.Header.Get("Clover-Signature"), body, now, time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if err := json.Unmarshal(body, &p); err != nil || len(p.Incident.Evidence) == 0 {
			return
		}
		mu.Lock()
		if t0, ok := acked[p.Incident.Evidence[len(p.Incident.Evidence)-1]]; ok {
			arrived = append(arrived, now.Sub(t0))
		}
		mu.Unlock()
	}))
	defer hook.Close()

	cfg := DefaultConfig()
	cfg.Data = t.TempDir()
	cfg.Log.URL, cfg.Log.Key, cfg.Log.PollInterval = "http://127.0.0.1:1/log/", l.VerifierKey(), 200*time.Millisecond
	cfg.Rules = []rules.Rule{{Name: "bulk", Severity: rules.High, BulkAccess: &rules.BulkAccess{Subjects: 5, Window: time.Second}}}
	os.WriteFile(filepath.Join(cfg.Data, "hook.secret"), secret, 0o600)
	cfg.Webhooks = []Webhook{{Name: "hook", URL: hook.URL, SecretFile: "hook.secret"}}
	m, err := New(ctx, cfg, Options{Fetcher: auditlog.DirFetcher(filepath.Join(dir, "tree"))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	go m.Run(ctx)

	// Background load: readers that each touch one subject, at the rate.
	const seconds = 10
	stop := time.Now().Add(seconds * time.Second)
	var wg sync.WaitGroup
	var genMu sync.Mutex
	next := func(actor, subject string) *auditlog.Entry {
		genMu.Lock()
		defer genMu.Unlock()
		if strings.HasPrefix(actor, "bulk-") {
			// Bulk readers read in earnest, as a service allowed to.
			return g.readAs(actor, []string{"service"}, subject)
		}
		return g.read(actor, subject)
	}
	// Tokens at the rate, taken by enough appenders to keep the journal's
	// groups full: each append waits for its group's fdatasync.
	tokens := make(chan struct{}, rate)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		defer close(tokens)
		for time.Now().Before(stop) {
			for range max(rate/100, 1) {
				select {
				case tokens <- struct{}{}:
				default: // the appenders are behind: say so in the result
				}
			}
			<-tick.C
		}
	}()
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := 0
			for range tokens {
				i++
				l.AppendEntry(ctx, next(fmt.Sprintf("w%d-%d", w, i%2000), "s"))
			}
		}()
	}
	bursts := 0
	for b := 0; time.Now().Before(stop.Add(-2 * time.Second)); b++ {
		var last uint64
		for s := range 6 {
			idx, err := l.AppendEntry(ctx, next(fmt.Sprintf("bulk-%d", b), fmt.Sprintf("b%d-%d", b, s)))
			if err != nil {
				t.Fatal(err)
			}
			last = idx
		}
		mu.Lock()
		acked[last] = time.Now()
		mu.Unlock()
		bursts++
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	time.Sleep(3 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(arrived) < bursts*9/10 {
		t.Fatalf("%d alerts of %d bulk readers arrived", len(arrived), bursts)
	}
	slices.Sort(arrived)
	p := func(q float64) time.Duration { return arrived[int(q*float64(len(arrived)-1))] }
	st := m.Status()
	t.Logf("offered %d entries/s for %ds, appended %d/s (log size %d, all verified); %d alerts of %d bulk readers; durable -> webhook p50 %v p99 %v max %v",
		rate, seconds, int(st.Size)/seconds, st.Size, len(arrived), bursts, p(0.5), p(0.99), arrived[len(arrived)-1])
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
