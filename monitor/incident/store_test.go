package incident

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func openStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "monitor.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func commit(t *testing.T, s *Store, b Batch) []Incident {
	t.Helper()
	created, err := s.Commit(context.Background(), b)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return created
}

func alert(key string, severity string, evidence ...uint64) Incident {
	return Incident{Key: key, Rule: "bulk_access", Severity: severity, Title: "bulk access by " + key,
		Detail: "detail", Evidence: evidence, FirstSeen: t0, LastSeen: t0.Add(time.Minute)}
}

func TestOpenFileModeAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "monitor.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	var v int
	if err := s.reader.QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Errorf("schema version %d, %v; want %d", v, err, SchemaVersion)
	}
	// A newer schema than the code knows is refused.
	if _, err := s.writer.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (99, 0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil {
		t.Error("Open accepted a schema newer than the code")
	}
}

func TestOpenRejectsBadTargets(t *testing.T) {
	secret := []byte("0123456789abcdef")
	for name, targets := range map[string][]Target{
		"short secret": {{Name: "a", URL: "https://h.example/x", Secret: []byte("short")}},
		"duplicate":    {{Name: "a", URL: "https://h.example/x", Secret: secret}, {Name: "a", URL: "https://h.example/y", Secret: secret}},
	} {
		if _, err := Open(filepath.Join(t.TempDir(), "m.db"), WithTargets(targets...)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Open = %v, want ErrInvalid", name, err)
		}
	}
}

func TestCommitStoresEverything(t *testing.T) {
	s := openStore(t, WithClock(func() time.Time { return t0.Add(time.Hour) }))
	ctx := context.Background()
	idx := uint64(77)
	b := Batch{
		State:     map[string][]byte{"follower": []byte("size=10"), "witness": nil},
		Incidents: []Incident{alert("k1", High, 1, 2)},
		Counts: []Count{
			{Day: "2026-03-04", Dimension: "purpose", Key: "care", N: 3},
			{Day: "2026-03-04", Dimension: "purpose", Key: "care", N: 2},
			{Day: "2026-03-05", Dimension: "form", Key: "raw", N: 1},
		},
		Checkpoints: []CheckpointRecord{
			{Origin: "clover.example/log", Size: 10, Hash: []byte{1}, Signed: []byte("note"), VerifiedAt: t0},
			{Origin: "clover.example/log", Size: 20, Hash: []byte{2}, Signed: []byte("note2"), VerifiedAt: t0.Add(time.Minute), Cosigned: true},
		},
		Probes: []Probe{
			{ID: "p1", Started: t0, Outcome: ProbePending},
			{ID: "p2", Started: t0.Add(time.Second), Status: 403, LogIndex: &idx, RequestID: "r2", Outcome: ProbePassed, Finished: t0.Add(2 * time.Second)},
		},
	}
	created := commit(t, s, b)
	want := Incident{ID: 1, Key: "k1", Rule: "bulk_access", Severity: High, Title: "bulk access by k1", Detail: "detail",
		Evidence: []uint64{1, 2}, FirstSeen: t0, LastSeen: t0.Add(time.Minute), Count: 1, State: StateOpen, Created: t0.Add(time.Hour)}
	if diff := cmp.Diff([]Incident{want}, created); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	if got, err := s.Incident(ctx, 1); err != nil || !cmp.Equal(got, want) {
		t.Errorf("Incident(1) = %+v, %v; want %+v", got, err, want)
	}
	if v, ok, err := s.State(ctx, "follower"); err != nil || !ok || string(v) != "size=10" {
		t.Errorf(`State("follower") = %q, %v, %v`, v, ok, err)
	}
	if v, ok, err := s.State(ctx, "witness"); err != nil || !ok || len(v) != 0 {
		t.Errorf(`State("witness") = %q, %v, %v; want empty, true`, v, ok, err)
	}
	if _, ok, err := s.State(ctx, "replay"); err != nil || ok {
		t.Errorf(`State("replay") found = %v, %v; want false`, ok, err)
	}
	counts, err := s.Counts(ctx, "2026-03-04", "2026-03-04")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Count{{Day: "2026-03-04", Dimension: "purpose", Key: "care", N: 5}}, counts); diff != "" {
		t.Errorf("Counts (-want +got):\n%s", diff)
	}
	n, first, last, err := s.Checkpoints(ctx, t0, t0.Add(time.Hour))
	if err != nil || n != 2 || first.Size != 10 || last.Size != 20 || !last.Cosigned || !last.VerifiedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("Checkpoints = %d, %+v, %+v, %v", n, first, last, err)
	}
	if n, first, _, err := s.Checkpoints(ctx, t0.Add(time.Hour), t0.Add(2*time.Hour)); n != 0 || first != nil || err != nil {
		t.Errorf("Checkpoints of an empty range = %d, %v, %v", n, first, err)
	}
	probes, err := s.Probes(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(b.Probes[1:2], probes[:1], cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" || len(probes) != 2 {
		t.Errorf("Probes (-want +got):\n%s", diff)
	}
	// A probe is updated by ID.
	commit(t, s, Batch{Probes: []Probe{{ID: "p1", Started: t0, Outcome: ProbeLogOmission, Detail: "no entry", Finished: t0.Add(time.Minute)}}})
	pending, err := s.PendingProbes(ctx)
	if err != nil || len(pending) != 0 {
		t.Errorf("PendingProbes after update = %v, %v; want none", pending, err)
	}
}

func TestCommitIsAtomic(t *testing.T) {
	ctx := context.Background()
	good := Batch{
		State:       map[string][]byte{"follower": []byte("new")},
		Incidents:   []Incident{alert("k", High, 1)},
		Counts:      []Count{{Day: "2026-03-04", Dimension: "kind", Key: "decision", N: 1}},
		Checkpoints: []CheckpointRecord{{Origin: "o", Size: 1, Hash: []byte{1}, Signed: []byte{1}, VerifiedAt: t0}},
		Probes:      []Probe{{ID: "p", Started: t0, Outcome: ProbePending}},
	}
	tests := map[string]func(b *Batch){
		"probe without id":     func(b *Batch) { b.Probes = append(b.Probes, Probe{Started: t0, Outcome: ProbePending}) },
		"probe bad outcome":    func(b *Batch) { b.Probes[0].Outcome = "fine" },
		"incident no rule":     func(b *Batch) { b.Incidents = append(b.Incidents, Incident{Severity: Low, Title: "x"}) },
		"incident severity":    func(b *Batch) { b.Incidents[0].Severity = "urgent" },
		"incident title lines": func(b *Batch) { b.Incidents[0].Title = "a\nb" },
		"count day":            func(b *Batch) { b.Counts[0].Day = "2026-3-4" },
		"count negative":       func(b *Batch) { b.Counts[0].N = -1 },
		"checkpoint no origin": func(b *Batch) { b.Checkpoints[0].Origin = "" },
		"checkpoint size":      func(b *Batch) { b.Checkpoints[0].Size = 1 << 63 },
		"empty state key":      func(b *Batch) { b.State[""] = []byte("x") },
	}
	for name, spoil := range tests {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, WithTargets(Target{Name: "ops", URL: "https://ops.example/hook", Secret: []byte("0123456789abcdef")}))
			b := good
			b.State = map[string][]byte{"follower": []byte("new")}
			b.Incidents = append([]Incident(nil), good.Incidents...)
			b.Counts = append([]Count(nil), good.Counts...)
			b.Checkpoints = append([]CheckpointRecord(nil), good.Checkpoints...)
			b.Probes = append([]Probe(nil), good.Probes...)
			spoil(&b)
			created, err := s.Commit(ctx, b)
			if !errors.Is(err, ErrInvalid) || created != nil {
				t.Fatalf("Commit = %v, %v; want ErrInvalid", created, err)
			}
			assertEmpty(t, s)
		})
	}
	t.Run("database error", func(t *testing.T) {
		// An item that passes validation but that the database refuses
		// (here: the outbox table is gone) rolls back what came before.
		s := openStore(t, WithTargets(Target{Name: "ops", URL: "https://ops.example/hook", Secret: []byte("0123456789abcdef")}))
		if _, err := s.writer.Exec(`DROP TABLE outbox`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(ctx, good); err == nil {
			t.Fatal("Commit succeeded without an outbox")
		}
		assertEmpty(t, s)
	})
}

func assertEmpty(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	if _, ok, err := s.State(ctx, "follower"); ok || err != nil {
		t.Errorf("state stored: %v, %v", ok, err)
	}
	if list, err := s.Incidents(ctx, Filter{}); len(list) != 0 || err != nil {
		t.Errorf("incidents stored: %v, %v", list, err)
	}
	if c, err := s.Counts(ctx, "2000-01-01", "2100-01-01"); len(c) != 0 || err != nil {
		t.Errorf("counts stored: %v, %v", c, err)
	}
	if n, _, _, err := s.Checkpoints(ctx, time.Time{}, t0.Add(time.Hour)); n != 0 || err != nil {
		t.Errorf("checkpoints stored: %d, %v", n, err)
	}
	if p, err := s.Probes(ctx, 10); len(p) != 0 || err != nil {
		t.Errorf("probes stored: %v, %v", p, err)
	}
}

func TestDedupByKey(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, WithTargets(Target{Name: "ops", URL: "https://ops.example/hook", Secret: []byte("0123456789abcdef")}))

	created := commit(t, s, Batch{Incidents: []Incident{alert("k", Medium, 1, 2), alert("other", Low, 9)}})
	if len(created) != 2 {
		t.Fatalf("created %d incidents, want 2", len(created))
	}
	// Same key in a later batch and twice in one batch: updates, no creation.
	later := alert("k", High, 2, 3)
	later.LastSeen = t0.Add(time.Hour)
	later.Title = "newer title"
	again := alert("k", Low, 4)
	again.FirstSeen = t0.Add(-time.Hour)
	again.Title = "newest title"
	created = commit(t, s, Batch{Incidents: []Incident{later, again}})
	if len(created) != 0 {
		t.Fatalf("dedup created %v", created)
	}
	got, err := s.Incident(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 3 || got.Severity != High || got.Title != "newest title" ||
		!cmp.Equal(got.Evidence, []uint64{1, 2, 3, 4}) || !got.FirstSeen.Equal(t0.Add(-time.Hour)) || !got.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Errorf("after dedup: %+v", got)
	}
	// Only the two creations were enqueued.
	for id, want := range map[int64]int{1: 1, 2: 1} {
		if d, err := s.Deliveries(ctx, id); err != nil || len(d) != want {
			t.Errorf("Deliveries(%d) = %v, %v; want %d", id, d, err, want)
		}
	}

	// Acknowledged still deduplicates; resolved does not.
	if _, err := s.Transition(ctx, 1, StateAcknowledged, "op", ""); err != nil {
		t.Fatal(err)
	}
	if created := commit(t, s, Batch{Incidents: []Incident{alert("k", Low, 5)}}); len(created) != 0 {
		t.Errorf("an acknowledged incident did not deduplicate: %v", created)
	}
	if _, err := s.Transition(ctx, 1, StateResolved, "op", ""); err != nil {
		t.Fatal(err)
	}
	created = commit(t, s, Batch{Incidents: []Incident{alert("k", Low, 6)}})
	if len(created) != 1 || created[0].ID != 3 || created[0].State != StateOpen {
		t.Errorf("after resolve, raise created %v; want a new open incident 3", created)
	}
	// An empty key never deduplicates.
	created = commit(t, s, Batch{Incidents: []Incident{alert("", Low), alert("", Low)}})
	if len(created) != 2 {
		t.Errorf("empty keys created %d incidents, want 2", len(created))
	}
}

func TestEvidenceBounded(t *testing.T) {
	s := openStore(t)
	var ev []uint64
	for i := range uint64(1500) {
		ev = append(ev, i)
	}
	created := commit(t, s, Batch{Incidents: []Incident{alert("k", Low, ev...)}})
	if n := len(created[0].Evidence); n != MaxEvidence || created[0].Evidence[0] != 500 {
		t.Fatalf("evidence kept %d from %d, want the latest %d", n, created[0].Evidence[0], MaxEvidence)
	}
	commit(t, s, Batch{Incidents: []Incident{alert("k", Low, 1500, 1501)}})
	got, err := s.Incident(context.Background(), created[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Evidence); n != MaxEvidence || got.Evidence[0] != 502 || got.Evidence[n-1] != 1501 {
		t.Errorf("evidence after append: %d indexes, %d..%d", n, got.Evidence[0], got.Evidence[n-1])
	}
}

func TestTransitions(t *testing.T) {
	ctx := context.Background()
	clock := t0
	s := openStore(t, WithClock(func() time.Time { return clock }))
	commit(t, s, Batch{Incidents: []Incident{alert("a", Low), alert("b", Low)}})

	clock = t0.Add(time.Hour)
	got, err := s.Transition(ctx, 1, StateAcknowledged, "alice-operator", "looking")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateAcknowledged || got.StateBy != "alice-operator" || got.StateNote != "looking" || !got.StateAt.Equal(clock) {
		t.Errorf("after ack: %+v", got)
	}
	tests := []struct {
		id       int64
		to, by   string
		note     string
		want     error
		newState string
	}{
		{1, StateAcknowledged, "op", "", ErrInvalidTransition, ""}, // acknowledged -> acknowledged
		{1, StateOpen, "op", "", ErrInvalidTransition, ""},
		{1, "closed", "op", "", ErrInvalidTransition, ""},
		{1, StateResolved, "", "", ErrInvalid, ""},
		{1, StateResolved, "op", string(make([]rune, MaxNote+1)), ErrInvalid, ""},
		{99, StateResolved, "op", "", ErrNotFound, ""},
		{1, StateResolved, "op", "fixed", nil, StateResolved},
		{1, StateResolved, "op", "", ErrInvalidTransition, ""},     // resolved -> resolved
		{1, StateAcknowledged, "op", "", ErrInvalidTransition, ""}, // resolved -> acknowledged
		{2, StateResolved, "op", "", nil, StateResolved},           // open -> resolved
	}
	for _, tc := range tests {
		got, err := s.Transition(ctx, tc.id, tc.to, tc.by, tc.note)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("Transition(%d, %q, %q) = %v, want %v", tc.id, tc.to, tc.by, err, tc.want)
		}
		if err == nil && got.State != tc.newState {
			t.Errorf("Transition(%d, %q) state %q, want %q", tc.id, tc.to, got.State, tc.newState)
		}
	}
	// The failed transitions left incident 1 as the successful one made it.
	got, err = s.Incident(ctx, 1)
	if err != nil || got.State != StateResolved || got.StateNote != "fixed" {
		t.Errorf("incident 1: %+v, %v", got, err)
	}
	if _, err := s.Incident(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Incident(99) = %v, want ErrNotFound", err)
	}
}

func TestIncidentsFilter(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	var batch []Incident
	for i, sev := range []string{Low, High, Low, Critical, High} {
		in := alert(string(rune('a'+i)), sev)
		in.LastSeen = t0.Add(time.Duration(i) * time.Hour)
		if i == 4 {
			in.Rule = "fork"
		}
		batch = append(batch, in)
	}
	commit(t, s, Batch{Incidents: batch})
	if _, err := s.Transition(ctx, 2, StateAcknowledged, "op", ""); err != nil {
		t.Fatal(err)
	}
	ids := func(f Filter) []int64 {
		t.Helper()
		list, err := s.Incidents(ctx, f)
		if err != nil {
			t.Fatalf("Incidents(%+v): %v", f, err)
		}
		out := []int64{}
		for _, in := range list {
			out = append(out, in.ID)
		}
		return out
	}
	tests := []struct {
		f    Filter
		want []int64
	}{
		{Filter{}, []int64{5, 4, 3, 2, 1}},
		{Filter{Severity: High}, []int64{5, 2}},
		{Filter{State: StateOpen}, []int64{5, 4, 3, 1}},
		{Filter{Rule: "fork"}, []int64{5}},
		{Filter{Since: t0.Add(3 * time.Hour)}, []int64{5, 4}},
		{Filter{Limit: 2}, []int64{5, 4}},
		{Filter{Limit: 2, AfterID: 4}, []int64{3, 2}},
		{Filter{AfterID: 1}, []int64{}},
	}
	for _, tc := range tests {
		if got := ids(tc.f); !cmp.Equal(got, tc.want) {
			t.Errorf("Incidents(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	for _, f := range []Filter{{State: "closed"}, {Severity: "urgent"}, {Limit: -1}} {
		if _, err := s.Incidents(ctx, f); !errors.Is(err, ErrInvalid) {
			t.Errorf("Incidents(%+v) = %v, want ErrInvalid", f, err)
		}
	}
	if _, err := s.Counts(ctx, "2026-13-01", "2026-12-01"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Counts with a bad day = %v, want ErrInvalid", err)
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{1, 0, time.Second},
		{2, 0, 2 * time.Second},
		{3, 0, 4 * time.Second},
		{3, 0.5, 4*time.Second + 500*time.Millisecond},
		{9, 0, 256 * time.Second},
		{9, 0.99, 5 * time.Minute},
		{10, 0, 5 * time.Minute},
		{1000, 0.5, 5 * time.Minute},
	}
	for _, tc := range tests {
		if got := backoff(time.Second, 5*time.Minute, tc.attempt, tc.jitter); got != tc.want {
			t.Errorf("backoff(attempt %d, jitter %v) = %v, want %v", tc.attempt, tc.jitter, got, tc.want)
		}
	}
}
