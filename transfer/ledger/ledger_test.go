package ledger

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloverenclave/clover/transfer"
	"github.com/google/go-cmp/cmp"
)

var noon = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, path string) *Ledger {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func start(dest string, at time.Time, rows int) Start {
	return Start{Time: at, Destination: dest, Country: "US", LegalBasis: "scc", Format: "ndjson",
		RequesterRoles: []string{"transfer-officer"}, RequesterCountry: "IE",
		Fields: []transfer.FieldForm{{Name: "birth_date", Form: "generalised"}}, Rows: rows, Suppressed: 2}
}

// run reserves, begins and settles a transfer that sends sent rows.
func run(t *testing.T, l *Ledger, s Start, quota int, decided uint64, sent int, complete bool) ID {
	t.Helper()
	ctx := context.Background()
	id, err := l.Reserve(ctx, s, quota)
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if err := l.Begin(ctx, id, decided); err != nil {
		t.Fatalf("Begin: %v", err)
	}
	end := decided + 1
	if err := l.Settle(ctx, id, End{Index: &end, Time: s.Time.Add(time.Second), Rows: sent, Bytes: int64(10 * sent), SHA256: "ab", Complete: complete}); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	return id
}

func TestQuotaSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l := open(t, path)
	run(t, l, start("us", noon, 60), 100, 5, 60, true)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open(t, path)
	ctx := context.Background()
	_, err := l.Reserve(ctx, start("us", noon.Add(time.Hour), 41), 100)
	var qe *QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("Reserve over the quota after a reopen = %v, want a *QuotaError", err)
	}
	if diff := cmp.Diff(&QuotaError{Destination: "us", Day: "2026-11-23", Quota: 100, Counted: 60, Rows: 41}, qe); diff != "" {
		t.Errorf("QuotaError (-want +got):\n%s", diff)
	}
	if _, err := l.Reserve(ctx, start("us", noon.Add(time.Hour), 40), 100); err != nil {
		t.Errorf("Reserve up to the quota = %v", err)
	}
	// Another destination, and the next UTC day, have quotas of their own.
	if _, err := l.Reserve(ctx, start("ch", noon, 100), 100); err != nil {
		t.Errorf("another destination: %v", err)
	}
	if _, err := l.Reserve(ctx, start("us", noon.Add(12*time.Hour), 100), 100); err != nil {
		t.Errorf("the next day: %v", err)
	}
}

func TestSettleReplacesTheReservation(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	ctx := context.Background()
	// Planned 80, but the client went away after 30.
	run(t, l, start("us", noon, 80), 100, 1, 30, false)
	if n, err := l.Counted(ctx, "us", noon); err != nil || n != 30 {
		t.Fatalf("Counted = %d, %v; want the 30 rows sent", n, err)
	}
	if _, err := l.Reserve(ctx, start("us", noon, 70), 100); err != nil {
		t.Fatalf("Reserve after an early end: %v", err)
	}
}

// TestCrashedReservationFailsClosed: a transfer never settled (the process
// stopped) counts its planned rows for its day.
func TestCrashedReservationFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l := open(t, path)
	ctx := context.Background()
	id, err := l.Reserve(ctx, start("us", noon, 90), 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Begin(ctx, id, 7); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = open(t, path)
	if n, _ := l.Counted(ctx, "us", noon); n != 90 {
		t.Fatalf("Counted = %d, want the 90 planned", n)
	}
	var qe *QuotaError
	if _, err := l.Reserve(ctx, start("us", noon, 11), 100); !errors.As(err, &qe) {
		t.Fatalf("Reserve = %v, want a *QuotaError", err)
	}
	got, err := l.List(ctx, Filter{Limit: 10})
	if err != nil || len(got) != 1 || got[0].State != InProgress || got[0].End != nil || got[0].Decided != 7 {
		t.Fatalf("List = %+v, %v; want the one transfer in progress", got, err)
	}
}

func TestCancelReleasesTheReservation(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	ctx := context.Background()
	id, err := l.Reserve(ctx, start("us", noon, 100), 100)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := l.List(ctx, Filter{Limit: 10}); len(got) != 0 {
		t.Errorf("an undecided reservation is listed: %+v", got)
	}
	if err := l.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	if n, _ := l.Counted(ctx, "us", noon); n != 0 {
		t.Errorf("Counted after Cancel = %d", n)
	}
	if err := l.Cancel(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Cancel = %v, want ErrNotFound", err)
	}
}

func TestStepsOutOfOrder(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	ctx := context.Background()
	id := run(t, l, start("us", noon, 5), 100, 3, 5, true)
	end := End{Time: noon, Rows: 1}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"begin twice", l.Begin(ctx, id, 9), ErrState},
		{"settle twice", l.Settle(ctx, id, end), ErrState},
		{"cancel a decided transfer", l.Cancel(ctx, id), ErrState},
		{"begin unknown", l.Begin(ctx, id+100, 9), ErrNotFound},
		{"settle unknown", l.Settle(ctx, id+100, end), ErrNotFound},
		{"settle negative", l.Settle(ctx, id, End{Time: noon, Rows: -1}), ErrInvalid},
		{"settle without time", l.Settle(ctx, id, End{Rows: 1}), ErrInvalid},
		{"begin huge index", l.Begin(ctx, id, 1<<63), ErrInvalid},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.err, c.want)
		}
	}
	// The same decided index cannot name two transfers.
	id2, err := l.Reserve(ctx, start("us", noon, 1), 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Begin(ctx, id2, 3); err == nil {
		t.Error("two transfers began with the same decided index")
	}
	for name, s := range map[string]Start{
		"no destination": {Time: noon, Rows: 1},
		"no time":        {Destination: "us", Rows: 1},
		"negative rows":  {Destination: "us", Time: noon, Rows: -1},
	} {
		if _, err := l.Reserve(ctx, s, 100); !errors.Is(err, ErrInvalid) {
			t.Errorf("Reserve %s = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := l.Reserve(ctx, start("us", noon, 1), 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Reserve with quota 0 = %v, want ErrInvalid", err)
	}
}

// TestConcurrentReservationsNeverExceed: many reservations at once, from
// two handles on the same file (as two processes would), never reserve
// more than the quota together, and fill it exactly.
func TestConcurrentReservationsNeverExceed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	handles := []*Ledger{open(t, path), open(t, path)}
	const quota, rows, workers = 100, 7, 40
	var granted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			_, err := handles[i%2].Reserve(context.Background(), start("us", noon, rows), quota)
			var qe *QuotaError
			switch {
			case err == nil:
				granted.Add(rows)
			case !errors.As(err, &qe):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Reserve: %v", err)
	}
	if want := int64(quota / rows * rows); granted.Load() != want {
		t.Errorf("granted %d rows, want %d (quota %d in reservations of %d)", granted.Load(), want, quota, rows)
	}
	if n, _ := handles[0].Counted(context.Background(), "us", noon); n != quota/rows*rows {
		t.Errorf("Counted = %d", n)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	l := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	ctx := context.Background()
	for i := range 6 {
		dest := "us"
		if i%2 == 1 {
			dest = "ch"
		}
		run(t, l, start(dest, noon.Add(time.Duration(i)*time.Hour), 10), 1000, uint64(10*i), 10-i, i != 4)
	}
	decided := func(ts []Transfer) []uint64 {
		var out []uint64
		for _, t := range ts {
			out = append(out, t.Decided)
		}
		return out
	}
	cases := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all, newest first", Filter{Limit: 10}, []uint64{50, 40, 30, 20, 10, 0}},
		{"limit", Filter{Limit: 2}, []uint64{50, 40}},
		{"next page", Filter{Limit: 2, AfterIndex: 40}, []uint64{30, 20}},
		{"destination", Filter{Destination: "ch", Limit: 10}, []uint64{50, 30, 10}},
		{"since", Filter{Since: noon.Add(4 * time.Hour), Limit: 10}, []uint64{50, 40}},
		{"until", Filter{Until: noon.Add(time.Hour), Limit: 10}, []uint64{0}},
		{"window", Filter{Destination: "us", Since: noon.Add(time.Hour), Until: noon.Add(5 * time.Hour), Limit: 10}, []uint64{40, 20}},
		{"no limit", Filter{}, nil},
	}
	for _, c := range cases {
		got, err := l.List(ctx, c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if diff := cmp.Diff(c.want, decided(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	got, _ := l.List(ctx, Filter{Limit: 2})
	endIdx := uint64(41)
	want := Transfer{ID: got[1].ID, Start: start("us", noon.Add(4*time.Hour), 10), Decided: 40, State: Incomplete,
		End: &End{Index: &endIdx, Time: noon.Add(4*time.Hour + time.Second), Rows: 6, Bytes: 60, SHA256: "ab"}}
	if diff := cmp.Diff(want, got[1]); diff != "" {
		t.Errorf("the incomplete transfer (-want +got):\n%s", diff)
	}
	if got[0].State != Complete || !got[0].End.Complete {
		t.Errorf("the newest transfer: %+v", got[0])
	}
}

func TestOpenMemory(t *testing.T) {
	l, err := OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	run(t, l, start("us", noon, 60), 100, 0, 60, true)
	var qe *QuotaError
	if _, err := l.Reserve(context.Background(), start("us", noon, 41), 100); !errors.As(err, &qe) {
		t.Fatalf("Reserve = %v, want a *QuotaError", err)
	}
	if got, err := l.List(context.Background(), Filter{Limit: 1}); err != nil || len(got) != 1 {
		t.Fatalf("List = %v, %v", got, err)
	}
}

// BenchmarkTransferCycle is the ledger's cost per transfer: Reserve, Begin
// and Settle, three synchronous (synchronous=FULL) transactions.
func BenchmarkTransferCycle(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "ledger.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	var decided uint64
	for b.Loop() {
		id, err := l.Reserve(ctx, start("us", noon, 10), 1<<30)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Begin(ctx, id, decided); err != nil {
			b.Fatal(err)
		}
		end := decided + 1
		if err := l.Settle(ctx, id, End{Index: &end, Time: noon, Rows: 10, Bytes: 100, SHA256: "ab", Complete: true}); err != nil {
			b.Fatal(err)
		}
		decided += 2
	}
}
