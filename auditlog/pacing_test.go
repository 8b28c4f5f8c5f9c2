package auditlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestJournalPacing: under a stream of appends, group commits start at
// least JournalSyncInterval apart, so there are about elapsed/interval of
// them; an append after a quiet spell, or a lone caller's appends one
// after another, are not held back.
func TestJournalPacing(t *testing.T) {
	const interval = 20 * time.Millisecond
	opts := testOptions(t, t.TempDir())
	opts.JournalSyncInterval = interval
	l := openLog(t, opts)
	ctx := context.Background()

	// A stream: five appends started every millisecond or so (the sleep
	// may take longer), so that no group is of one entry.
	before := l.Stats().JournalSyncs
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Go(func() {
			if _, err := l.Append(ctx, testEntry(t, i)); err != nil {
				t.Error(err)
			}
		})
		if i%5 == 4 {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	syncs := l.Stats().JournalSyncs - before
	// +2: the first commit does not wait, and the stream's first group may
	// be a lone entry, after which the next does not wait either.
	if limit := uint64(elapsed/interval) + 2; syncs > limit {
		t.Fatalf("%d group commits in %v: more than one per %v (at most %d)", syncs, elapsed, interval, limit)
	}
	if l.journal.pauses.Load() == 0 {
		t.Fatal("the writer never waited: the stream was committed without pacing")
	}

	// Quiet: the next commit starts at once.
	time.Sleep(2 * interval)
	paused := l.journal.pauses.Load()
	if _, err := l.Append(ctx, testEntry(t, 1000)); err != nil {
		t.Fatal(err)
	}
	if p := l.journal.pauses.Load(); p != paused {
		t.Fatalf("an append after a quiet spell waited for the interval (%d pauses, was %d)", p, paused)
	}
	appendN(t, l, 1001, 20)
	if p := l.journal.pauses.Load(); p != paused {
		t.Fatalf("a lone caller's appends waited for the interval (%d pauses, was %d)", p, paused)
	}
}

// TestJournalNoPacing: a negative interval commits back to back.
func TestJournalNoPacing(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.JournalSyncInterval = -1
	l := openLog(t, opts)
	appendConcurrently(t, l, 16, 20)
	if p := l.journal.pauses.Load(); p != 0 {
		t.Fatalf("the writer paused %d times with pacing off", p)
	}
}

// TestJournalFailsWhilePaused: a failure while the writer waits for the
// interval (with a 50 ms interval and a stream of appends it nearly always
// is) fails the waiting appends, and the writer exits cleanly.
func TestJournalFailsWhilePaused(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.JournalSyncInterval = MaxJournalSyncInterval
	l := openLog(t, opts)
	ctx := context.Background()
	var wg sync.WaitGroup
	var unexpected atomic.Value
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := l.Append(ctx, testEntry(t, 1000*w+i))
				if err != nil {
					if !errors.Is(err, ErrUnavailable) {
						unexpected.Store(err)
					}
					return
				}
			}
		})
	}
	for l.journal.pauses.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	l.journal.setErr(fmt.Errorf("%w: injected failure", ErrUnavailable))
	wg.Wait()
	if err := unexpected.Load(); err != nil {
		t.Fatalf("an append failed otherwise: %v", err)
	}
	select {
	case <-l.journal.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer did not exit after the failure")
	}
	if _, err := l.Append(ctx, testEntry(t, 99999)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append after the failure: %v", err)
	}
}

func TestJournalSyncIntervalValidated(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.JournalSyncInterval = MaxJournalSyncInterval + time.Millisecond
	if err := opts.Validate(); err == nil {
		t.Fatalf("JournalSyncInterval %v accepted", opts.JournalSyncInterval)
	}
}
