package follow

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
)

// checkEntries fails unless got are exactly want.
func checkEntries(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: got %.40q, want %.40q", i, got[i], want[i])
		}
	}
}

func mustNew(t *testing.T, src auditlog.Fetcher, key string, st State, opts Options) *Follower {
	t.Helper()
	f, err := New(src, key, st, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f
}

// restart round-trips the follower's state through MarshalBinary and
// returns a new follower continuing from it.
func restart(t *testing.T, f *Follower, src auditlog.Fetcher, key string, opts Options) *Follower {
	t.Helper()
	b, err := f.State().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := st.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return mustNew(t, src, key, st, opts)
}

// TestFollowRealLog follows a log written by package auditlog (tessera):
// from empty to N, then the entries appended since, exactly once, also
// after a restart from the persisted state in the middle of a bundle.
func TestFollowRealLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := auditlog.Open(ctx, auditlog.Options{
		Dir:                filepath.Join(dir, "log"),
		Origin:             testOrigin,
		SignerKeyFile:      filepath.Join(dir, "signer.key"),
		BatchAge:           5 * time.Millisecond,
		CheckpointInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	src := auditlog.DirFetcher(filepath.Join(dir, "log", "tree"))
	var all [][]byte
	appendN := func(n int) {
		t.Helper()
		for range n {
			e := syntheticEntry(len(all), dir)
			if _, err := l.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
			all = append(all, e)
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := l.WaitIntegrated(wctx, uint64(len(all)-1)); err != nil {
			t.Fatal(err)
		}
	}

	f := mustNew(t, src, l.VerifierKey(), State{}, Options{})
	c := &collector{t: t}
	appendN(300)
	if n := poll(t, f, c.fn); n != 300 {
		t.Fatalf("first poll delivered %d, want 300", n)
	}
	checkEntries(t, c.entries, all)
	if n := poll(t, f, c.fn); n != 0 {
		t.Fatalf("poll without new checkpoint delivered %d", n)
	}

	appendN(400)
	if n := poll(t, f, c.fn); n != 400 {
		t.Fatalf("second poll delivered %d, want 400", n)
	}
	checkEntries(t, c.entries, all)

	f = restart(t, f, src, l.VerifierKey(), Options{ChunkSize: 33})
	appendN(50)
	if n := poll(t, f, c.fn); n != 50 {
		t.Fatalf("poll after restart delivered %d, want 50", n)
	}
	checkEntries(t, c.entries, all)
	if st := f.State(); st.Size != 750 {
		t.Fatalf("state size %d, want 750", st.Size)
	}

	// The same log served over HTTP by its own handler.
	srv := httptest.NewServer(http.StripPrefix("/log/", l.Handler()))
	defer srv.Close()
	hf, err := auditlog.NewHTTPFetcher(srv.URL+"/log/", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ch := &collector{t: t}
	if n := poll(t, mustNew(t, hf, l.VerifierKey(), State{}, Options{ChunkSize: 100}), ch.fn); n != len(all) {
		t.Fatalf("poll over HTTP delivered %d, want %d", n, len(all))
	}
	checkEntries(t, ch.entries, all)
}

// TestFollowGrowth follows a log growing through bundle and tile edges,
// restarting from the persisted state after each poll, with several chunk
// sizes.
func TestFollowGrowth(t *testing.T) {
	key := newTestKey(t)
	sizes := []int{0, 1, 3, 255, 256, 257, 300, 511, 513, 1000, 1024}
	for _, chunk := range []int{0, 1, 7, 256} {
		l := newTestLog(t, key)
		opts := Options{ChunkSize: chunk}
		f := mustNew(t, l.fetcher(), key.verifier, State{}, opts)
		c := &collector{t: t}
		for _, size := range sizes {
			l.addN(size - len(l.entries))
			l.publish()
			before := len(c.entries)
			n := poll(t, f, c.fn)
			if n != len(c.entries)-before {
				t.Fatalf("chunk %d, size %d: Poll says %d, fn got %d", chunk, size, n, len(c.entries)-before)
			}
			checkEntries(t, c.entries, l.entries)
			want := chunk
			if want == 0 {
				want = DefaultChunkSize
			}
			for _, ch := range c.chunks {
				if len(ch.Entries) == 0 || len(ch.Entries) > want {
					t.Fatalf("chunk %d, size %d: a chunk of %d entries", chunk, size, len(ch.Entries))
				}
			}
			f = restart(t, f, l.fetcher(), key.verifier, opts)
			if st := f.State(); st.Size != uint64(size) {
				t.Fatalf("chunk %d: state size %d, want %d", chunk, st.Size, size)
			}
		}
	}
}

// TestFollowLarge crosses a level-1 tile boundary (65536 entries).
func TestFollowLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large log")
	}
	key := newTestKey(t)
	l := newTestLog(t, key)
	f := mustNew(t, l.fetcher(), key.verifier, State{}, Options{})
	c := &collector{t: t}
	for _, size := range []int{65535, 65537, 66000} {
		l.addN(size - len(l.entries))
		l.publish()
		poll(t, f, c.fn)
		checkEntries(t, c.entries, l.entries)
	}
}

// TestFollowFullBundleReplacesPartial: once the partial right-hand bundle
// and tile are gone, a follower in the middle of that bundle reads the full
// one and skips what it delivered already.
func TestFollowFullBundleReplacesPartial(t *testing.T) {
	key := newTestKey(t)
	l := newTestLog(t, key)
	l.addN(300)
	l.publish()
	f := mustNew(t, l.fetcher(), key.verifier, State{}, Options{})
	c := &collector{t: t}
	poll(t, f, c.fn)
	l.addN(300)
	l.publish()
	for _, p := range []string{"tile/entries/001.p/44", "tile/0/001.p/44"} {
		if err := os.Remove(filepath.Join(l.dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	if n := poll(t, f, c.fn); n != 300 {
		t.Fatalf("delivered %d, want 300", n)
	}
	checkEntries(t, c.entries, l.entries)

	// A new follower catching up to a checkpoint whose partial bundle is
	// gone reads the full bundle and delivers only the first 300 entries.
	old := l.sign(300, l.root(300))
	src := auditlog.FetcherFunc(func(ctx context.Context, p string) ([]byte, error) {
		if p == "checkpoint" {
			return old, nil
		}
		return l.fetcher().Fetch(ctx, p)
	})
	c2 := &collector{t: t}
	if n := poll(t, mustNew(t, src, key.verifier, State{}, Options{ChunkSize: 100}), c2.fn); n != 300 {
		t.Fatalf("delivered %d, want 300", n)
	}
	checkEntries(t, c2.entries, l.entries[:300])
}

// TestFollowFnError: an error of fn stops Poll, which returns it, and the
// state stays at the last chunk fn accepted; the next poll resumes there.
func TestFollowFnError(t *testing.T) {
	key := newTestKey(t)
	l := newTestLog(t, key)
	l.addN(1000)
	l.publish()
	f := mustNew(t, l.fetcher(), key.verifier, State{}, Options{ChunkSize: 100})
	errStop := errors.New("stop")
	c := &collector{t: t}
	calls := 0
	n, err := f.Poll(context.Background(), func(ch Chunk) error {
		if calls++; calls == 3 {
			return errStop
		}
		return c.fn(ch)
	})
	if !errors.Is(err, errStop) || n != 200 {
		t.Fatalf("Poll = %d, %v; want 200, %v", n, err, errStop)
	}
	st := f.State()
	if st.Size != 200 || !bytes.Equal(st.Checkpoint, l.read("checkpoint")) {
		t.Fatalf("state size %d after fn error, want 200", st.Size)
	}
	if !bytes.Equal(mustMarshal(t, st), mustMarshal(t, c.chunks[1].State)) {
		t.Fatal("state differs from the last accepted chunk's")
	}
	// Resume, also through a restart.
	f = restart(t, f, l.fetcher(), key.verifier, Options{ChunkSize: 100})
	if n := poll(t, f, c.fn); n != 800 {
		t.Fatalf("resumed poll delivered %d, want 800", n)
	}
	checkEntries(t, c.entries, l.entries)
}

func mustMarshal(t *testing.T, s State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// switchFetcher serves a log directory that tests can swap.
type switchFetcher struct {
	mu  sync.Mutex
	src auditlog.Fetcher
}

func (s *switchFetcher) set(src auditlog.Fetcher) {
	s.mu.Lock()
	s.src = src
	s.mu.Unlock()
}

func (s *switchFetcher) Fetch(ctx context.Context, p string) ([]byte, error) {
	s.mu.Lock()
	src := s.src
	s.mu.Unlock()
	return src.Fetch(ctx, p)
}

// TestFollowTampering: a follower that accepted the log at size 300 is
// served a log of 600 entries tampered with in one way. It must report a
// Violation of the right kind, deliver nothing and keep its state.
func TestFollowTampering(t *testing.T) {
	key := newTestKey(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, l *testLog, sw *switchFetcher)
		kinds  []string
	}{
		{"entry flipped", func(t *testing.T, l *testLog, _ *switchFetcher) {
			l.flip("tile/entries/001", len(l.read("tile/entries/001"))-5) // entry 511
		}, []string{KindEntryMismatch}},
		{"delivered entry rewritten", func(t *testing.T, l *testLog, _ *switchFetcher) {
			// Entry 256, delivered already: the follower skips it.
			l.flip("tile/entries/001", 10)
		}, nil},
		{"hash tile flipped", func(t *testing.T, l *testLog, _ *switchFetcher) {
			l.flip("tile/0/001", 100)
		}, []string{KindFork, KindEntryMismatch}},
		{"hash tile truncated", func(t *testing.T, l *testLog, _ *switchFetcher) {
			l.write("tile/0/001", l.read("tile/0/001")[:100])
		}, []string{KindFork, KindEntryMismatch}},
		{"checkpoint signature flipped", func(t *testing.T, l *testLog, _ *switchFetcher) {
			b := l.read("checkpoint")
			l.flip("checkpoint", len(b)-10)
		}, []string{KindBadCheckpoint}},
		{"checkpoint size changed", func(t *testing.T, l *testLog, _ *switchFetcher) {
			l.write("checkpoint", bytes.Replace(l.read("checkpoint"), []byte("\n600\n"), []byte("\n601\n"), 1))
		}, []string{KindBadCheckpoint}},
		{"checkpoint garbage", func(t *testing.T, l *testLog, _ *switchFetcher) {
			l.write("checkpoint", []byte("not a checkpoint\x00\xff"))
		}, []string{KindBadCheckpoint}},
		{"checkpoint too large", func(t *testing.T, l *testLog, _ *switchFetcher) {
			l.write("checkpoint", bytes.Repeat([]byte("x"), 70<<10))
		}, []string{KindBadCheckpoint}},
		{"checkpoint of another key", func(t *testing.T, l *testLog, _ *switchFetcher) {
			other := &testLog{t: t, key: newTestKey(t)}
			l.write("checkpoint", other.sign(600, l.root(600)))
		}, []string{KindBadCheckpoint}},
		{"empty tree with a root", func(t *testing.T, l *testLog, _ *switchFetcher) {
			l.write("checkpoint", l.sign(0, l.root(600)))
		}, []string{KindRollback}},
		{"older checkpoint", func(t *testing.T, l *testLog, _ *switchFetcher) {
			l.write("checkpoint", l.sign(200, l.root(200)))
		}, []string{KindRollback}},
		{"same size, other root", func(t *testing.T, l *testLog, sw *switchFetcher) {
			other := newTestLog(t, key)
			other.addN(300)
			other.publish()
			sw.set(other.fetcher())
		}, []string{KindFork}},
		{"larger other log", func(t *testing.T, l *testLog, sw *switchFetcher) {
			other := newTestLog(t, key)
			other.addN(600)
			other.publish()
			sw.set(other.fetcher())
		}, []string{KindFork}},
		{"other log sharing the first 250 entries", func(t *testing.T, l *testLog, sw *switchFetcher) {
			other := newTestLog(t, key)
			other.add(l.entries[:250]...)
			other.addN(350)
			other.publish()
			sw.set(other.fetcher())
		}, []string{KindFork}},
		{"bundle truncated", func(t *testing.T, l *testLog, _ *switchFetcher) {
			b := l.read("tile/entries/001")
			l.write("tile/entries/001", b[:len(b)-7])
		}, []string{KindBadBundle}},
		{"bundle with an entry missing", func(t *testing.T, l *testLog, _ *switchFetcher) {
			es, _ := auditlog.ParseEntryBundle(l.read("tile/entries/002.p/88"))
			b, _ := auditlog.MarshalEntryBundle(es[:87])
			l.write("tile/entries/002.p/88", b)
		}, []string{KindBadBundle}},
		{"bundle with an entry added", func(t *testing.T, l *testLog, _ *switchFetcher) {
			es, _ := auditlog.ParseEntryBundle(l.read("tile/entries/002.p/88"))
			b, _ := auditlog.MarshalEntryBundle(append(es, []byte("extra")))
			l.write("tile/entries/002.p/88", b)
		}, []string{KindBadBundle}},
		{"bundle garbage", func(t *testing.T, l *testLog, _ *switchFetcher) {
			l.write("tile/entries/002.p/88", []byte{0xff})
		}, []string{KindBadBundle}},
		{"entries swapped", func(t *testing.T, l *testLog, _ *switchFetcher) {
			es, _ := auditlog.ParseEntryBundle(l.read("tile/entries/002.p/88"))
			es[3], es[4] = es[4], es[3]
			b, _ := auditlog.MarshalEntryBundle(es)
			l.write("tile/entries/002.p/88", b)
		}, []string{KindEntryMismatch}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t, key)
			l.addN(300)
			l.publish()
			sw := &switchFetcher{src: l.fetcher()}
			f := mustNew(t, sw, key.verifier, State{}, Options{})
			c := &collector{t: t}
			poll(t, f, c.fn)
			before := mustMarshal(t, f.State())
			l.addN(300)
			l.publish()
			tt.tamper(t, l, sw)
			n, err := f.Poll(context.Background(), c.fn)
			if tt.kinds == nil {
				// Entries already delivered are not read again: nothing to
				// detect, and the new entries are the right ones.
				if err != nil {
					t.Fatalf("Poll: %v", err)
				}
				checkEntries(t, c.entries, l.entries)
				return
			}
			var v *Violation
			if !errors.As(err, &v) {
				t.Fatalf("Poll = %d, %v; want a Violation", n, err)
			}
			t.Logf("%v", v)
			if !containsKind(tt.kinds, v.Kind) {
				t.Errorf("violation kind %q, want one of %q", v.Kind, tt.kinds)
			}
			if n != 0 || len(c.entries) != 300 {
				t.Errorf("delivered %d (total %d) despite the violation", n, len(c.entries))
			}
			if after := mustMarshal(t, f.State()); !bytes.Equal(after, before) {
				t.Error("state changed despite the violation")
			}
			if !bytes.Equal(v.Old, f.State().Checkpoint) {
				t.Error("violation's Old is not the accepted checkpoint")
			}
		})
	}
}

func containsKind(kinds []string, k string) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}

// TestFollowTamperingFromScratch: a new follower (no accepted checkpoint)
// served a tampered log delivers only chunks proven before the tampered
// entries, and reports which ones are wrong.
func TestFollowTamperingFromScratch(t *testing.T) {
	key := newTestKey(t)
	tests := []struct {
		name      string
		tamper    func(l *testLog)
		kind      string
		delivered int
	}{
		{"entry 512 flipped", func(l *testLog) { l.flip("tile/entries/002", 7) }, KindEntryMismatch, 500},
		{"last entry flipped", func(l *testLog) {
			b := l.read("tile/entries/003.p/232")
			l.flip("tile/entries/003.p/232", len(b)-1)
		}, KindEntryMismatch, 900},
		{"level-0 tile flipped", func(l *testLog) { l.flip("tile/0/002", 5) }, KindEntryMismatch, 500},
		{"size-0 checkpoint with a root", func(l *testLog) { l.write("checkpoint", l.sign(0, l.root(1))) }, KindBadCheckpoint, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTestLog(t, key)
			l.addN(1000)
			l.publish()
			tt.tamper(l)
			f := mustNew(t, l.fetcher(), key.verifier, State{}, Options{ChunkSize: 100})
			c := &collector{t: t}
			n, err := f.Poll(context.Background(), c.fn)
			var v *Violation
			if !errors.As(err, &v) || v.Kind != tt.kind {
				t.Fatalf("Poll = %d, %v; want a %s violation", n, err, tt.kind)
			}
			t.Logf("%v", v)
			if n != tt.delivered || f.State().Size != uint64(tt.delivered) {
				t.Fatalf("delivered %d, state %d; want %d", n, f.State().Size, tt.delivered)
			}
			checkEntries(t, c.entries, l.entries[:tt.delivered])
		})
	}
}

// TestFollowFetchErrors: resources the checkpoint says exist but that are
// missing, and failing fetches, are transient errors, not violations.
func TestFollowFetchErrors(t *testing.T) {
	key := newTestKey(t)
	for _, p := range []string{"checkpoint", "tile/entries/001", "tile/0/001"} {
		t.Run(p, func(t *testing.T) {
			l := newTestLog(t, key)
			l.addN(300)
			l.publish()
			f := mustNew(t, l.fetcher(), key.verifier, State{}, Options{ChunkSize: 100})
			c := &collector{t: t}
			poll(t, f, c.fn)
			l.addN(300)
			l.publish()
			if err := os.Remove(filepath.Join(l.dir, p)); err != nil {
				t.Fatal(err)
			}
			n, err := f.Poll(context.Background(), c.fn)
			var v *Violation
			if err == nil || errors.As(err, &v) || !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Poll = %d, %v; want a transient not-exist error", n, err)
			}
			if f.State().Size > 300+uint64(n) {
				t.Fatalf("state size %d after delivering %d", f.State().Size, n)
			}
		})
	}
	t.Run("network", func(t *testing.T) {
		errNet := errors.New("connection reset")
		src := auditlog.FetcherFunc(func(context.Context, string) ([]byte, error) { return nil, errNet })
		f := mustNew(t, src, key.verifier, State{}, Options{})
		_, err := f.Poll(context.Background(), (&collector{t: t}).fn)
		var v *Violation
		if !errors.Is(err, errNet) || errors.As(err, &v) {
			t.Fatalf("Poll: %v; want the fetch error, wrapped", err)
		}
	})
}

// TestFollowGarbageNeverPanics serves each resource of a log damaged in
// many ways. Poll must not panic and must never deliver a wrong entry:
// either it delivers the log's entries or it fails without advancing.
func TestFollowGarbageNeverPanics(t *testing.T) {
	key := newTestKey(t)
	l := newTestLog(t, key)
	l.addN(600)
	l.publish()
	var paths []string
	err := filepath.WalkDir(l.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(l.dir, p)
			paths = append(paths, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	mutations := []func([]byte) []byte{
		func(b []byte) []byte { return nil },
		func(b []byte) []byte { return b[:len(b)/2] },
		func(b []byte) []byte { return b[:len(b)-1] },
		func(b []byte) []byte { return append(bytes.Clone(b), 0) },
		func(b []byte) []byte { return bytes.Repeat([]byte{0xff}, len(b)) },
		func(b []byte) []byte { c := bytes.Clone(b); c[0] ^= 0x80; return c },
		func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/3] ^= 1; return c },
	}
	for _, p := range paths {
		for i, mutate := range mutations {
			src := auditlog.FetcherFunc(func(ctx context.Context, q string) ([]byte, error) {
				b, err := l.fetcher().Fetch(ctx, q)
				if q == p && err == nil && len(b) > 0 {
					b = mutate(b)
				}
				return b, err
			})
			f := mustNew(t, src, key.verifier, State{}, Options{ChunkSize: 128})
			c := &collector{t: t}
			n, err := f.Poll(context.Background(), c.fn)
			checkEntries(t, c.entries, l.entries[:n])
			if err == nil && n != 600 {
				t.Errorf("%s mutation %d: no error but %d entries", p, i, n)
			}
			if f.State().Size != uint64(n) {
				t.Errorf("%s mutation %d: state size %d after delivering %d", p, i, f.State().Size, n)
			}
		}
	}
}

// TestFollowStateDuringPoll reads the state while a poll runs (go test
// -race).
func TestFollowStateDuringPoll(t *testing.T) {
	key := newTestKey(t)
	l := newTestLog(t, key)
	l.addN(2000)
	l.publish()
	f := mustNew(t, l.fetcher(), key.verifier, State{}, Options{ChunkSize: 50})
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var last uint64
		for {
			select {
			case <-done:
				return
			default:
			}
			st := f.State()
			if st.Size < last {
				t.Errorf("state went back from %d to %d", last, st.Size)
			}
			last = st.Size
		}
	})
	c := &collector{t: t}
	poll(t, f, c.fn)
	close(done)
	wg.Wait()
	checkEntries(t, c.entries, l.entries)
}

func TestNewRejectsBadState(t *testing.T) {
	key := newTestKey(t)
	l := newTestLog(t, key)
	l.addN(300)
	l.publish()
	f := mustNew(t, l.fetcher(), key.verifier, State{}, Options{})
	poll(t, f, (&collector{t: t}).fn)
	good := f.State()

	wrongHash := good.clone()
	wrongHash.Hashes[0][0] ^= 1
	otherKey := newTestKey(t)
	tooBig := good.clone()
	tooBig.Size = 301
	tests := []struct {
		name string
		st   State
		key  string
		opts Options
	}{
		{"hash flipped", wrongHash, key.verifier, Options{}},
		{"other key", good, otherKey.verifier, Options{}},
		{"size beyond checkpoint", tooBig, key.verifier, Options{}},
		{"bad key", good, "garbage", Options{}},
		{"negative chunk", good, key.verifier, Options{ChunkSize: -1}},
		{"size without checkpoint", State{Size: 1, Hashes: [][]byte{make([]byte, 32)}}, key.verifier, Options{}},
	}
	for _, tt := range tests {
		if _, err := New(l.fetcher(), tt.key, tt.st, tt.opts); err == nil {
			t.Errorf("%s: New accepted it", tt.name)
		}
	}
	if _, err := New(l.fetcher(), key.verifier, good, Options{}); err != nil {
		t.Fatalf("New rejects the good state: %v", err)
	}
}

// FuzzPollResource serves a small log with one resource replaced by the
// fuzzer's bytes. Poll must not panic, and must never deliver an entry that
// is not the log's.
func FuzzPollResource(f *testing.F) {
	key := newTestKey(f)
	l := newTestLog(f, key)
	l.addN(300)
	l.publish()
	paths := []string{"checkpoint", "tile/entries/000", "tile/entries/001.p/44", "tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"}
	for i, p := range paths {
		f.Add(uint8(i), l.read(p))
	}
	f.Add(uint8(1), []byte{0, 1})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		target := paths[int(which)%len(paths)]
		src := auditlog.FetcherFunc(func(ctx context.Context, p string) ([]byte, error) {
			if p == target {
				return data, nil
			}
			return l.fetcher().Fetch(ctx, p)
		})
		fl, err := New(src, key.verifier, State{}, Options{ChunkSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		n, err := fl.Poll(context.Background(), func(ch Chunk) error {
			got = append(got, ch.Entries...)
			return nil
		})
		if n != len(got) || fl.State().Size != uint64(n) {
			t.Fatalf("Poll = %d, delivered %d, state %d", n, len(got), fl.State().Size)
		}
		for i, e := range got {
			if !bytes.Equal(e, l.entries[i]) {
				// A checkpoint of a prefix of the log is fine; anything
				// else is not.
				t.Fatalf("entry %d is not the log's (err %v)", i, err)
			}
		}
	})
}
