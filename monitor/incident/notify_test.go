package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// guard bounds every wait for something that must happen; reaching it is a
// failure, never a success.
const guard = 30 * time.Second

// receiver is a webhook endpoint that verifies signatures and records what
// it accepted.
type receiver struct {
	t      *testing.T
	secret []byte
	// status, if set, answers instead of 200 (called for every request).
	status func(n int) int

	mu       sync.Mutex
	requests int
	times    []time.Time
	got      []Payload
	raw      [][]byte
	headers  []http.Header
	arrived  chan Payload
}

func newReceiver(t *testing.T, secret []byte) (*receiver, *httptest.Server) {
	rc := &receiver{t: t, secret: secret, arrived: make(chan Payload, 1000)}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Errorf("receiver: %v", err)
		return
	}
	if err := VerifySignature(rc.secret, r.Header.Get(SignatureHeader), body, time.Now(), 0); err != nil {
		rc.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("receiver: %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		rc.t.Errorf("receiver: payload %s: %v", body, err)
	}
	if h := r.Header.Get(DeliveryHeader); h != strconv.FormatInt(p.Delivery, 10) {
		rc.t.Errorf("receiver: %s %q, payload delivery %d", DeliveryHeader, h, p.Delivery)
	}
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	rc.times = append(rc.times, time.Now())
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.mu.Unlock()
	if rc.status != nil {
		if code := rc.status(n); code != http.StatusOK {
			w.WriteHeader(code)
			return
		}
	}
	rc.mu.Lock()
	rc.got = append(rc.got, p)
	rc.raw = append(rc.raw, body)
	rc.mu.Unlock()
	rc.arrived <- p
}

func (rc *receiver) wait(t *testing.T) Payload {
	t.Helper()
	select {
	case p := <-rc.arrived:
		return p
	case <-time.After(guard):
		t.Fatal("no delivery arrived")
		return Payload{}
	}
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// runNotifier runs n until the test ends.
func runNotifier(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// idleSignal makes n report on the returned channel each time target i's
// worker starts waiting.
func idleSignal(n *Notifier) <-chan int {
	ch := make(chan int, 100)
	n.cfg.idle = func(i int) {
		select {
		case ch <- i:
		default:
		}
	}
	return ch
}

func waitIdle(t *testing.T, ch <-chan int) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(guard):
		t.Fatal("worker never went idle")
	}
}

func waitDelivered(t *testing.T, s *Store, incidentID int64) []Delivery {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		ds, err := s.Deliveries(context.Background(), incidentID)
		if err != nil {
			t.Fatal(err)
		}
		all := len(ds) > 0
		for _, d := range ds {
			all = all && !d.Delivered.IsZero()
		}
		if all {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of incident %d not all marked delivered: %+v", incidentID, ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhookDeliveryAndWake(t *testing.T) {
	rc, srv := newReceiver(t, testSecret)
	target := Target{Name: "ops", URL: srv.URL + "/hook", Secret: testSecret}
	s := openStore(t, WithTargets(target))
	n := NewNotifier(s, []Target{target}, srv.Client(), testLogger(t), WithPollInterval(time.Hour))
	idle := idleSignal(n)
	runNotifier(t, n)
	waitIdle(t, idle) // the first look at the (empty) outbox is over

	created := commit(t, s, Batch{Incidents: []Incident{alert("k", Critical, 5, 6)}})
	// Without Wake, nothing is sent before the hour-long poll.
	select {
	case p := <-rc.arrived:
		t.Fatalf("delivered %+v without Wake", p)
	case <-time.After(200 * time.Millisecond):
	}
	n.Wake()
	p := rc.wait(t)
	if p.ID != created[0].ID || p.Delivery < 1 {
		t.Errorf("payload id %d delivery %d, want incident %d", p.ID, p.Delivery, created[0].ID)
	}
	if diff := cmp.Diff(created[0], p.Incident); diff != "" {
		t.Errorf("payload incident (-want +got):\n%s", diff)
	}
	ds := waitDelivered(t, s, created[0].ID)
	if len(ds) != 1 || ds[0].ID != p.Delivery || ds[0].Attempts != 1 || ds[0].Target != "ops" {
		t.Errorf("deliveries: %+v", ds)
	}

	// The documented JSON shape, RFC 3339 times included.
	rc.mu.Lock()
	raw := rc.raw[0]
	rc.mu.Unlock()
	var shape struct {
		ID       int64 `json:"id"`
		Delivery int64 `json:"delivery"`
		Incident map[string]any
	}
	if err := json.Unmarshal(raw, &shape); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "key", "rule", "severity", "title", "detail", "evidence", "first_seen", "last_seen", "count", "state", "created"} {
		if _, ok := shape.Incident[k]; !ok {
			t.Errorf("payload incident lacks %q: %s", k, raw)
		}
	}
	if _, ok := shape.Incident["state_at"]; ok {
		t.Errorf("payload of an open incident has state_at: %s", raw)
	}
	if fs, _ := shape.Incident["first_seen"].(string); fs != "2026-03-04T10:00:00Z" {
		t.Errorf("first_seen %q, want RFC 3339 2026-03-04T10:00:00Z", fs)
	}
}

func TestWebhookRetriedWithBackoff(t *testing.T) {
	rc, srv := newReceiver(t, testSecret)
	rc.status = func(n int) int {
		if n <= 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	target := Target{Name: "ops", URL: srv.URL, Secret: testSecret}
	s := openStore(t, WithTargets(target))
	n := NewNotifier(s, []Target{target}, srv.Client(), testLogger(t), WithPollInterval(time.Hour), WithBackoff(20*time.Millisecond, 60*time.Millisecond))
	created := commit(t, s, Batch{Incidents: []Incident{alert("k", High)}})
	runNotifier(t, n)
	n.Wake()
	p := rc.wait(t)
	ds := waitDelivered(t, s, created[0].ID)
	if len(ds) != 1 || ds[0].Attempts != 4 || ds[0].LastError != "" || ds[0].ID != p.Delivery {
		t.Errorf("deliveries after 3 failures: %+v", ds)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.requests != 4 {
		t.Fatalf("%d requests, want 4", rc.requests)
	}
	// Every retry carries the same delivery ID, and waited at least its
	// backoff: 20 ms, 40 ms, then the 60 ms cap.
	for i, min := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond} {
		if gap := rc.times[i+1].Sub(rc.times[i]); gap < min {
			t.Errorf("retry %d came %v after the failure, before its %v backoff", i+1, gap, min)
		}
		if d := rc.headers[i+1].Get(DeliveryHeader); d != rc.headers[0].Get(DeliveryHeader) {
			t.Errorf("retry %d has delivery %s, first had %s", i+1, d, rc.headers[0].Get(DeliveryHeader))
		}
	}
}

func TestWebhookFailureRecorded(t *testing.T) {
	rc, srv := newReceiver(t, testSecret)
	rc.status = func(int) int { return http.StatusInternalServerError }
	target := Target{Name: "ops", URL: srv.URL, Secret: testSecret}
	s := openStore(t, WithTargets(target))
	n := NewNotifier(s, []Target{target}, srv.Client(), testLogger(t), WithPollInterval(time.Hour), WithBackoff(time.Hour, time.Hour))
	created := commit(t, s, Batch{Incidents: []Incident{alert("k", High)}})
	idle := idleSignal(n)
	runNotifier(t, n)
	waitIdle(t, idle)
	ds, err := s.Deliveries(context.Background(), created[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Attempts != 1 || ds[0].LastError != "target answered 500" || !ds[0].Delivered.IsZero() ||
		ds[0].NextAttempt.Before(time.Now().Add(59*time.Minute)) {
		t.Errorf("after one failure: %+v", ds)
	}
	// A Wake during the backoff sends nothing.
	n.Wake()
	waitIdle(t, idle)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.requests != 1 {
		t.Errorf("%d requests during the backoff, want 1", rc.requests)
	}
}

func TestWebhookSurvivesRestart(t *testing.T) {
	rc, srv := newReceiver(t, testSecret)
	var mu sync.Mutex
	down := true
	rc.status = func(int) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusBadGateway
		}
		return http.StatusOK
	}
	target := Target{Name: "ops", URL: srv.URL, Secret: testSecret}
	path := filepath.Join(t.TempDir(), "monitor.db")
	s, err := Open(path, WithTargets(target))
	if err != nil {
		t.Fatal(err)
	}
	created, err := s.Commit(context.Background(), Batch{Incidents: []Incident{alert("a", High), alert("b", Low)}})
	if err != nil {
		t.Fatal(err)
	}
	// A first notifier fails once, then the monitor stops.
	n := NewNotifier(s, []Target{target}, srv.Client(), testLogger(t), WithPollInterval(time.Hour), WithBackoff(time.Millisecond, time.Millisecond))
	idle := idleSignal(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	waitIdle(t, idle)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	down = false
	mu.Unlock()
	s2, err := Open(path, WithTargets(target))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	pending, err := s2.Pending(context.Background())
	if err != nil || pending["ops"] != 2 {
		t.Fatalf("pending after reopen: %v, %v; want 2 for ops", pending, err)
	}
	n2 := NewNotifier(s2, []Target{target}, srv.Client(), testLogger(t), WithPollInterval(time.Hour), WithBackoff(time.Millisecond, time.Millisecond))
	runNotifier(t, n2)
	got := map[int64]bool{rc.wait(t).ID: true, rc.wait(t).ID: true}
	if !got[created[0].ID] || !got[created[1].ID] {
		t.Errorf("after restart delivered incidents %v, want %d and %d", got, created[0].ID, created[1].ID)
	}
	ds := waitDelivered(t, s2, created[0].ID)
	if ds[0].Attempts < 2 {
		t.Errorf("attempts %d: the failure before the restart was forgotten", ds[0].Attempts)
	}
}

func TestSlowTargetDoesNotBlockOthers(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs before slow.Close
	rc, fast := newReceiver(t, testSecret)
	targets := []Target{
		{Name: "slow", URL: slow.URL, Secret: testSecret},
		{Name: "fast", URL: fast.URL, Secret: testSecret},
	}
	s := openStore(t, WithTargets(targets...))
	n := NewNotifier(s, targets, nil, testLogger(t), WithPollInterval(time.Hour))
	runNotifier(t, n)
	for i := range 3 {
		commit(t, s, Batch{Incidents: []Incident{alert(strconv.Itoa(i), Low)}})
		n.Wake()
		if p := rc.wait(t); p.Incident.Key != strconv.Itoa(i) {
			t.Errorf("fast target got %q, want %q", p.Incident.Key, strconv.Itoa(i))
		}
	}
	// The fast target's last delivery is recorded after its answer.
	deadline := time.Now().Add(guard)
	for {
		pending, err := s.Pending(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if pending["slow"] == 3 && pending["fast"] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending %v; want 3 for slow, none for fast", pending)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNotifierConcurrent commits and wakes from several goroutines while
// two targets deliver; every incident reaches every target exactly once.
func TestNotifierConcurrent(t *testing.T) {
	rcA, srvA := newReceiver(t, testSecret)
	secretB := []byte("another-secret-of-16+")
	rcB, srvB := newReceiver(t, secretB)
	targets := []Target{{Name: "a", URL: srvA.URL, Secret: testSecret}, {Name: "b", URL: srvB.URL, Secret: secretB}}
	s := openStore(t, WithTargets(targets...))
	n := NewNotifier(s, targets, nil, testLogger(t), WithPollInterval(time.Hour))
	runNotifier(t, n)
	const writers, each = 4, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Commit(context.Background(), Batch{Incidents: []Incident{alert(strconv.Itoa(w*each+i), Low)}}); err != nil {
					t.Error(err)
				}
				n.Wake()
			}
		})
	}
	wg.Wait()
	for _, rc := range []*receiver{rcA, rcB} {
		seen := make(map[int64]bool)
		for range writers * each {
			p := rc.wait(t)
			if seen[p.ID] {
				t.Errorf("incident %d delivered twice", p.ID)
			}
			seen[p.ID] = true
		}
	}
}

func TestNotifierRunErrors(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	bad := NewNotifier(s, []Target{{Name: "x", URL: "https://h.example", Secret: []byte("short")}}, nil, nil)
	if err := bad.Run(ctx); !errors.Is(err, ErrInvalid) {
		t.Errorf("Run with a short secret = %v, want ErrInvalid", err)
	}
	dup := []Target{{Name: "x", URL: "https://h.example", Secret: testSecret}, {Name: "x", URL: "https://i.example", Secret: testSecret}}
	if err := NewNotifier(s, dup, nil, nil).Run(ctx); !errors.Is(err, ErrInvalid) {
		t.Errorf("Run with duplicate names = %v, want ErrInvalid", err)
	}
	if err := NewNotifier(s, nil, nil, nil, WithBackoff(time.Second, time.Millisecond)).Run(ctx); !errors.Is(err, ErrInvalid) {
		t.Errorf("Run with max < base = %v, want ErrInvalid", err)
	}
	n := NewNotifier(s, nil, nil, nil)
	idle := make(chan struct{})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { close(idle); _ = n.Run(runCtx) }()
	<-idle
	deadline := time.Now().Add(guard)
	for !n.running.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := n.Run(ctx); err == nil {
		t.Error("a second Run succeeded")
	}
}
