package auditlog

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

func TestGroupCommitConcurrent(t *testing.T) {
	l := openLog(t, testOptions(t, t.TempDir()))
	const appenders, each = 64, 40
	byIndex := appendConcurrently(t, l, appenders, each)
	const n = appenders * each
	if len(byIndex) != n {
		t.Fatalf("%d indexes for %d appends", len(byIndex), n)
	}
	for i := range uint64(n) {
		if _, ok := byIndex[i]; !ok {
			t.Fatalf("index %d missing: indexes are not contiguous", i)
		}
	}
	waitIntegrated(t, l, n-1)
	// Every acknowledged entry is in the tree under its index.
	cp, err := Verify(context.Background(), DirFetcher(filepath.Join(l.opts.Dir, "tree")), l.VerifierKey(), VerifyOptions{
		Entry: func(i uint64, e []byte) error {
			if !bytes.Equal(e, byIndex[i]) {
				t.Errorf("tree entry %d is not the entry acknowledged with index %d", i, i)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != n {
		t.Fatalf("checkpoint size %d, want %d", cp.Size, n)
	}
	if s := l.Stats(); s.Durable != n || s.Integrated != n || s.Err != nil {
		t.Fatalf("Stats = %+v", s)
	}
	// Every group commit made at least one entry durable, and there was one.
	if s := l.Stats(); s.JournalSyncs == 0 || s.JournalSyncs > n {
		t.Fatalf("JournalSyncs = %d for %d entries", s.JournalSyncs, n)
	}
}

func TestProofsForEveryIndex(t *testing.T) {
	l := openLog(t, testOptions(t, t.TempDir()))
	const n = 100
	entries := appendN(t, l, 0, n)
	waitIntegrated(t, l, n-1)
	ctx := context.Background()
	raw, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := OpenCheckpoint(raw, l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != n {
		t.Fatalf("checkpoint size %d, want %d", cp.Size, n)
	}
	// The root of every prefix, computed independently of the log.
	roots := make([]tlog.Hash, n+1)
	var tb treeBuilder
	roots[0] = tb.root()
	for i, e := range entries {
		tb.add(tlog.RecordHash(e))
		roots[i+1] = tb.root()
	}
	if roots[n] != cp.Hash {
		t.Fatal("checkpoint root differs from the entries' root")
	}
	toHashes := func(p [][]byte) []tlog.Hash {
		hs := make([]tlog.Hash, len(p))
		for i := range p {
			copy(hs[i][:], p[i])
		}
		return hs
	}
	for size := uint64(1); size <= n; size++ {
		for i := range size {
			p, err := l.InclusionProof(ctx, i, size)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, size, err)
			}
			proof := tlog.RecordProof(toHashes(p))
			if err := tlog.CheckRecord(proof, int64(size), roots[size], int64(i), tlog.RecordHash(entries[i])); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", i, size, err)
			}
			if len(proof) > 0 {
				proof[0][0] ^= 1
				if tlog.CheckRecord(proof, int64(size), roots[size], int64(i), tlog.RecordHash(entries[i])) == nil {
					t.Fatalf("a flipped inclusion proof of %d in %d verifies", i, size)
				}
			}
		}
		p, err := l.ConsistencyProof(ctx, size, n)
		if err != nil {
			t.Fatalf("ConsistencyProof(%d, %d): %v", size, n, err)
		}
		proof := tlog.TreeProof(toHashes(p))
		if err := tlog.CheckTree(proof, n, cp.Hash, int64(size), roots[size]); err != nil {
			t.Fatalf("consistency %d -> %d: %v", size, n, err)
		}
		if len(proof) > 0 {
			proof[len(proof)-1][31] ^= 1
			if tlog.CheckTree(proof, n, cp.Hash, int64(size), roots[size]) == nil {
				t.Fatalf("a flipped consistency proof %d -> %d verifies", size, n)
			}
		}
	}
	for _, c := range []struct{ index, size uint64 }{{0, 0}, {5, 5}, {0, n + 1}, {n, n + 1}} {
		if _, err := l.InclusionProof(ctx, c.index, c.size); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("InclusionProof(%d, %d) = %v, want ErrOutOfRange", c.index, c.size, err)
		}
	}
	for _, c := range []struct{ from, to uint64 }{{0, 5}, {6, 5}, {1, n + 1}} {
		if _, err := l.ConsistencyProof(ctx, c.from, c.to); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("ConsistencyProof(%d, %d) = %v, want ErrOutOfRange", c.from, c.to, err)
		}
	}
	if _, err := l.Entry(ctx, n); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("Entry(%d) = %v, want ErrOutOfRange", n, err)
	}
	if err := l.WaitIntegrated(ctx, n); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("WaitIntegrated(%d) = %v, want ErrOutOfRange", n, err)
	}
}

func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)

	// A first run: 30 entries reach the tree.
	l := openLog(t, opts)
	entries := appendN(t, l, 0, 30)
	waitIntegrated(t, l, 29)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// A second run whose feeder never runs: 40 entries are acknowledged,
	// durable in the journal only, as if the process died before the tree
	// took them.
	paused := opts
	paused.noFeeder = true
	l = openLog(t, paused)
	entries = append(entries, appendN(t, l, 30, 40)...)
	if s := l.Stats(); s.Durable != 70 || s.Integrated != 30 {
		t.Fatalf("Stats = %+v", s)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// Recovery adds them under the indexes they were acknowledged with,
	// before Open returns, and new appends continue after them.
	l = openLog(t, opts)
	if s := l.Stats(); s.Durable != 70 || s.Integrated != 70 {
		t.Fatalf("after recovery, Stats = %+v", s)
	}
	entries = append(entries, appendN(t, l, 70, 5)...)
	waitIntegrated(t, l, 74)
	checkEntries(t, l, entries)
}

func TestTornTailIsCut(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.noFeeder = true
	l := openLog(t, opts)
	entries := appendN(t, l, 0, 10)
	l.Close()

	// A crash in the middle of writing a group: a header and part of a body.
	torn := appendGroup(nil, 10, [][]byte{testEntry(t, 10), testEntry(t, 11)})
	f, err := os.OpenFile(journalPath(opts), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := f.Stat()
	f.Write(torn[:len(torn)-7])
	f.Close()

	opts.noFeeder = false
	l = openLog(t, opts)
	after, _ := os.Stat(journalPath(opts))
	if after.Size() != before.Size() {
		t.Fatalf("journal is %d bytes after recovery, want %d (torn tail cut)", after.Size(), before.Size())
	}
	idx, err := l.Append(context.Background(), testEntry(t, 99))
	if err != nil || idx != 10 {
		t.Fatalf("Append after recovery = %d, %v; want index 10", idx, err)
	}
	waitIntegrated(t, l, 10)
	checkEntries(t, l, entries)
}

func TestCorruptJournalRefused(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.noFeeder = true
	l := openLog(t, opts)
	appendN(t, l, 0, 5)
	l.Close()

	b, err := os.ReadFile(journalPath(opts))
	if err != nil {
		t.Fatal(err)
	}
	// A flipped byte in the first group's record, with groups after it.
	b[journalHeaderSize+groupHeaderSize+recordHeaderSize+3] ^= 1
	os.WriteFile(journalPath(opts), b, 0o600)
	if _, err := Open(context.Background(), opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
}

func TestJournalLostIsRefused(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	l := openLog(t, opts)
	appendN(t, l, 0, 3)
	waitIntegrated(t, l, 2)
	l.Close()
	os.Remove(journalPath(opts))
	if _, err := Open(context.Background(), opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open without the journal = %v, want ErrCorrupt", err)
	}
}

func TestOpenTwiceIsRefused(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	openLog(t, opts)
	if l, err := Open(context.Background(), opts); err == nil {
		l.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
}

// faultyFile is a journalFile that fails writes or syncs on demand.
type faultyFile struct {
	journalFile
	failWrite, failSync atomic.Bool
	block               chan struct{} // if set, Sync waits on it
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.failWrite.Load() {
		n, _ := f.journalFile.Write(p[:len(p)/2]) // a partial write
		return n, errors.New("injected write error")
	}
	return f.journalFile.Write(p)
}

func (f *faultyFile) Sync() error {
	if f.block != nil {
		<-f.block
	}
	if f.failSync.Load() {
		return errors.New("injected sync error")
	}
	return f.journalFile.Sync()
}

func TestJournalFaultsFailClosed(t *testing.T) {
	for _, fault := range []string{"write", "sync"} {
		t.Run(fault, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(t, dir)
			var ff *faultyFile
			opts.wrapJournal = func(f journalFile) journalFile { ff = &faultyFile{journalFile: f}; return ff }
			l := openLog(t, opts)
			acked := appendN(t, l, 0, 5)

			if fault == "write" {
				ff.failWrite.Store(true)
			} else {
				ff.failSync.Store(true)
			}
			var wg sync.WaitGroup
			var okCount atomic.Int32
			for i := range 8 {
				wg.Go(func() {
					if _, err := l.Append(context.Background(), testEntry(t, 100+i)); err == nil {
						okCount.Add(1)
					} else if !errors.Is(err, ErrUnavailable) {
						t.Errorf("Append = %v, want ErrUnavailable", err)
					}
				})
			}
			wg.Wait()
			if okCount.Load() != 0 {
				t.Fatalf("%d appends acknowledged after the fault", okCount.Load())
			}
			// The fault is gone, but the log stays closed until restart.
			ff.failWrite.Store(false)
			ff.failSync.Store(false)
			if _, err := l.Append(context.Background(), testEntry(t, 200)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Append after the fault = %v, want ErrUnavailable", err)
			}
			if l.Stats().Err == nil {
				t.Fatal("Stats does not report the failure")
			}
			l.Close()

			// After a restart: exactly the acknowledged entries, in order.
			opts.wrapJournal = nil
			l = openLog(t, opts)
			if s := l.Stats(); s.Durable != uint64(len(acked)) {
				t.Fatalf("after restart the log has %d entries, want the %d acknowledged", s.Durable, len(acked))
			}
			waitIntegrated(t, l, uint64(len(acked)-1))
			for i, want := range acked {
				if got, _ := l.Entry(context.Background(), uint64(i)); !bytes.Equal(got, want) {
					t.Fatalf("entry %d differs", i)
				}
			}
		})
	}
}

func TestPushback(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.MaxPending = 2
	block := make(chan struct{})
	var ff *faultyFile
	opts.wrapJournal = func(f journalFile) journalFile { ff = &faultyFile{journalFile: f}; return ff }
	l := openLog(t, opts)
	ff.block = block

	// The first group is being synced, a second waits: MaxPending counts
	// every append not yet acknowledged.
	results := make(chan error, 2)
	for i := range 2 {
		go func() { _, err := l.Append(context.Background(), testEntry(t, i)); results <- err }()
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := l.Append(context.Background(), testEntry(t, 9)); !errors.Is(err, ErrPushback) {
		t.Fatalf("Append with a full queue = %v, want ErrPushback", err)
	}
	close(block)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("queued Append: %v", err)
		}
	}
	if _, err := l.Append(context.Background(), testEntry(t, 10)); err != nil {
		t.Fatalf("Append after the queue drained: %v", err)
	}
}

func TestAppendRejectsBadSizes(t *testing.T) {
	l := openLog(t, testOptions(t, t.TempDir()))
	for _, e := range [][]byte{nil, make([]byte, MaxEntrySize+1)} {
		if _, err := l.Append(context.Background(), e); !errors.Is(err, ErrEntryTooLarge) {
			t.Errorf("Append(%d bytes) = %v", len(e), err)
		}
	}
	l.Close()
	if _, err := l.Append(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	good := testOptions(t, t.TempDir())
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Options){
		"no dir":      func(o *Options) { o.Dir = "" },
		"no key":      func(o *Options) { o.SignerKeyFile = "" },
		"bad origin":  func(o *Options) { o.Origin = "a b" },
		"plus origin": func(o *Options) { o.Origin = "a+b" },
		"fast cp":     func(o *Options) { o.CheckpointInterval = 10 * time.Millisecond },
		"neg batch":   func(o *Options) { o.BatchSize = -1 },
	} {
		o := good
		mutate(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, o)
		}
	}
}

func TestSignerKeyFile(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	l := openLog(t, opts)
	info, err := os.Stat(opts.SignerKeyFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", info.Mode(), err)
	}
	_, vkey, err := LoadOrCreateSigner(opts.SignerKeyFile, testOrigin, nil)
	if err != nil || vkey != l.VerifierKey() {
		t.Fatalf("reloaded key %q, %v; want %q", vkey, err, l.VerifierKey())
	}
	if _, _, err := LoadOrCreateSigner(opts.SignerKeyFile, "clover.example/us", nil); err == nil {
		t.Fatal("the key of another origin was accepted")
	}
	os.Chmod(opts.SignerKeyFile, 0o644)
	if _, _, err := LoadOrCreateSigner(opts.SignerKeyFile, testOrigin, nil); err == nil {
		t.Fatal("a key file readable by others was accepted")
	}
}

func TestJournalScanTornAtEveryLength(t *testing.T) {
	var b []byte
	b = appendJournalHeader(b, 0)
	b = appendGroup(b, 0, [][]byte{[]byte("a"), []byte("bb")})
	b = appendGroup(b, 2, [][]byte{[]byte("ccc")})
	whole := len(b)
	b = appendGroup(b, 3, [][]byte{[]byte("dddd"), []byte("eeeee")})
	for cut := whole; cut < len(b); cut++ {
		s, err := scanJournal(bytes.NewReader(b[:cut]), int64(cut), keepAll(0))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if s.next != 3 || s.end != int64(whole) || s.torn != int64(cut-whole) || len(s.entries) != 3 {
			t.Fatalf("cut at %d: scan %+v", cut, s)
		}
	}
	// A torn group filled with zeros, as a crash may leave it.
	zeros := append(b[:whole:whole], make([]byte, 100)...)
	if s, err := scanJournal(bytes.NewReader(zeros), int64(len(zeros)), keepAll(0)); err != nil || s.torn != 100 {
		t.Fatalf("zeros: %+v, %v", s, err)
	}
	// Whole: everything, keeping from index 2.
	s, err := scanJournal(bytes.NewReader(b), int64(len(b)), keepAll(2))
	if err != nil || s.next != 5 || s.torn != 0 || len(s.entries) != 3 || string(s.entries[0]) != "ccc" {
		t.Fatalf("whole: %+v, %v", s, err)
	}
	// A bad record followed by another group is corruption, not a tail.
	bad := bytes.Clone(b)
	bad[journalHeaderSize+groupHeaderSize+recordHeaderSize] ^= 1
	if _, err := scanJournal(bytes.NewReader(bad), int64(len(bad)), keepAll(0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad record in the middle: %v", err)
	}
	// A group announcing the wrong first index.
	wrong := appendJournalHeader(nil, 0)
	wrong = appendGroup(wrong, 7, [][]byte{[]byte("x")})
	if _, err := scanJournal(bytes.NewReader(wrong), int64(len(wrong)), keepAll(0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong first index: %v", err)
	}
	// Not a journal.
	if _, err := scanJournal(bytes.NewReader([]byte("hello world, this is not it")), 27, keepAll(0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("not a journal: %v", err)
	}
}

func TestIndexesSortedUnderLoad(t *testing.T) {
	// Indexes acknowledged to one goroutine increase: group commit keeps
	// each appender's order.
	l := openLog(t, testOptions(t, t.TempDir()))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			var got []uint64
			for i := range 50 {
				idx, err := l.Append(context.Background(), testEntry(t, g*1000+i))
				if err != nil {
					t.Error(err)
					return
				}
				got = append(got, idx)
			}
			if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i] < got[j] }) {
				t.Errorf("appender %d: indexes out of order: %v", g, got)
			}
		})
	}
	wg.Wait()
}

// appendConcurrently appends appenders*each distinct test entries from
// appenders goroutines and returns them by the index each was given,
// failing the test if an index is given twice.
func appendConcurrently(t *testing.T, l *Log, appenders, each int) map[uint64][]byte {
	t.Helper()
	var mu sync.Mutex
	byIndex := map[uint64][]byte{}
	var wg sync.WaitGroup
	for g := range appenders {
		wg.Go(func() {
			for i := range each {
				e := testEntry(t, g*each+i)
				idx, err := l.Append(context.Background(), e)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				if _, dup := byIndex[idx]; dup {
					t.Errorf("index %d given twice", idx)
				}
				byIndex[idx] = e
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return byIndex
}
