package auditlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rotatingOptions are test options with the smallest segments.
func rotatingOptions(t *testing.T, dir string) Options {
	o := testOptions(t, dir)
	o.JournalSegmentBytes = MinJournalSegmentBytes
	return o
}

// segmentFile is a journal segment as found on disk.
type segmentFile struct {
	base uint64
	path string
	size int64
}

// segmentFiles lists the journal's segments on disk, oldest first.
func segmentFiles(t *testing.T, opts Options) []segmentFile {
	t.Helper()
	dir := filepath.Join(opts.Dir, "journal")
	bases, err := segmentDir{path: dir}.list()
	if err != nil {
		t.Fatal(err)
	}
	var out []segmentFile
	for _, b := range bases {
		p := filepath.Join(dir, journalSegment(b))
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, segmentFile{b, p, info.Size()})
	}
	return out
}

// readSegments scans every segment on disk and returns the base of the
// first and all their entries, checking that each ends where the next
// begins.
func readSegments(t *testing.T, opts Options) (uint64, [][]byte) {
	t.Helper()
	segs := segmentFiles(t, opts)
	var all [][]byte
	for i, s := range segs {
		b, err := os.ReadFile(s.path)
		if err != nil {
			t.Fatal(err)
		}
		scan, err := scanJournal(bytes.NewReader(b), int64(len(b)), keepAll(0))
		if err != nil || scan.torn != 0 || scan.base != s.base {
			t.Fatalf("segment %s: scan %+v, %v", s.path, scan, err)
		}
		if i+1 < len(segs) && scan.next != segs[i+1].base {
			t.Fatalf("segment %s ends at %d, the next starts at %d", s.path, scan.next, segs[i+1].base)
		}
		all = append(all, scan.entries...)
	}
	return segs[0].base, all
}

// appendUntilSegments appends entries from index from on, one at a time,
// until the journal has n segments; it returns the entries.
func appendUntilSegments(t *testing.T, l *Log, from, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := from; l.Stats().JournalSegments < n; i++ {
		out = append(out, appendN(t, l, i, 1)...)
	}
	return out
}

func TestObsoleteSegments(t *testing.T) {
	bases := []uint64{0, 100, 200, 300}
	for _, c := range []struct {
		bases []uint64
		safe  uint64
		keep  int
		want  int
	}{
		{bases, 0, 0, 0},
		{bases, 100, 0, 0}, // recovery reads entry 99, in the first segment
		{bases, 101, 0, 1}, // from 100 on: the first segment goes
		{bases, 200, 0, 1},
		{bases, 201, 0, 2},
		{bases, 301, 0, 3},
		{bases, 1 << 40, 0, 3}, // never the segment being written
		{bases, 301, 1, 2},
		{bases, 301, 3, 0},
		{bases, 301, 9, 0},
		{[]uint64{500}, 1 << 40, 0, 0},
		{[]uint64{500, 600}, 600, 0, 0},
		{[]uint64{500, 600}, 601, 0, 1},
	} {
		if got := obsoleteSegments(c.bases, c.safe, c.keep); got != c.want {
			t.Errorf("obsoleteSegments(%v, safe %d, keep %d) = %d, want %d", c.bases, c.safe, c.keep, got, c.want)
		}
	}
}

func TestRotationUnderConcurrentAppends(t *testing.T) {
	opts := rotatingOptions(t, t.TempDir())
	opts.JournalKeepSegments = 1 << 20 // keep them all to read them back
	l := openLog(t, opts)
	const appenders, each = 64, 40
	byIndex := appendConcurrently(t, l, appenders, each)
	const n = appenders * each
	waitIntegrated(t, l, n-1)
	st := l.Stats()
	segs := segmentFiles(t, opts)
	var onDisk int64
	for i, s := range segs {
		onDisk += s.size
		// A segment is closed at the first group that takes it to the limit.
		if i+1 < len(segs) && (s.size < opts.JournalSegmentBytes || s.size > opts.JournalSegmentBytes+groupHeaderSize+maxGroupBody) {
			t.Errorf("segment %s has %d bytes, limit %d", s.path, s.size, opts.JournalSegmentBytes)
		}
	}
	if len(segs) < 10 {
		t.Fatalf("%d segments for %d entries of %d-byte segments: no rotation", len(segs), n, opts.JournalSegmentBytes)
	}
	if st.JournalSegments != len(segs) || st.JournalBytes != onDisk {
		t.Fatalf("Stats: %d segments, %d bytes; on disk %d, %d", st.JournalSegments, st.JournalBytes, len(segs), onDisk)
	}
	// Every acknowledged entry is in the segments once, at its index.
	first, entries := readSegments(t, opts)
	if first != 0 || len(entries) != n {
		t.Fatalf("segments hold %d entries from %d, want %d from 0", len(entries), first, n)
	}
	for i, e := range entries {
		if !bytes.Equal(e, byIndex[uint64(i)]) {
			t.Fatalf("journal entry %d is not the entry acknowledged with index %d", i, i)
		}
	}
	// And in the tree.
	_, err := Verify(context.Background(), DirFetcher(filepath.Join(opts.Dir, "tree")), l.VerifierKey(), VerifyOptions{
		Entry: func(i uint64, e []byte) error {
			if !bytes.Equal(e, byIndex[i]) {
				t.Errorf("tree entry %d differs", i)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	// A restart recovers across the segments and appends to the last.
	l.Close()
	l = openLog(t, opts)
	if s := l.Stats(); s.Durable != n || s.JournalSegments != len(segs) {
		t.Fatalf("after restart Stats = %+v, want %d entries in %d segments", s, n, len(segs))
	}
	appendN(t, l, n, 3)
	if got := segmentFiles(t, opts); len(got) != len(segs) || got[len(got)-1].size <= segs[len(segs)-1].size {
		t.Fatalf("after restart the appends did not go to the last segment: %+v", got[len(got)-1])
	}
}

// downWitness is a witness that never cosigns: checkpoints stay
// unpublished while it is configured.
func downWitness(t *testing.T) Witness {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	return Witness{Name: "down", URL: srv.URL, Key: cosignerKey(t, "down.example")}
}

func TestSegmentsDeletedOnlyOnceIntegratedAndCheckpointed(t *testing.T) {
	dir := t.TempDir()
	opts := rotatingOptions(t, dir)
	ctx := context.Background()

	// The tree does not integrate: every segment stays.
	paused := opts
	paused.noFeeder = true
	l := openLog(t, paused)
	entries := appendUntilSegments(t, l, 0, 3)
	if err := l.retireSegments(ctx); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.JournalSegments != 3 || s.Integrated != 0 {
		t.Fatalf("with nothing integrated: Stats = %+v, want 3 segments", s)
	}
	l.Close()

	// The tree integrates everything but no checkpoint is published (the
	// witness is down): every segment stays.
	lagging := opts
	lagging.Witnesses = []Witness{downWitness(t)}
	lagging.ShutdownTimeout = 300 * time.Millisecond
	l = openLog(t, lagging)
	n := uint64(len(entries))
	if s := l.Stats(); s.Integrated != n {
		t.Fatalf("after recovery Stats = %+v, want %d integrated", s, n)
	}
	time.Sleep(3 * lagging.CheckpointInterval) // the retirer runs meanwhile
	if err := l.retireSegments(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := l.published(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size >= n {
		t.Fatalf("a checkpoint of %d entries was published without the witness", cp.Size)
	}
	if s := l.Stats(); s.JournalSegments != 3 {
		t.Fatalf("checkpoint at %d of %d entries: %d segments left, want all 3", cp.Size, n, s.JournalSegments)
	}
	l.Close()
	if got := len(segmentFiles(t, opts)); got != 3 {
		t.Fatalf("%d segments on disk, want 3", got)
	}

	// Integrated and checkpointed: the full segments go, the last stays.
	l = openLog(t, opts)
	waitIntegrated(t, l, n-1)
	waitSegments(t, l, 1)
	if files := segmentFiles(t, opts); len(files) != 1 || files[0].base >= n {
		t.Fatalf("on disk: %+v, want the last segment only", files)
	}
	// Everything is still readable from the tree, and a restart reads the
	// journal from the tree's size on.
	l.Close()
	l = openLog(t, opts)
	entries = append(entries, appendN(t, l, int(n), 2)...)
	waitIntegrated(t, l, n+1)
	checkEntries(t, l, entries)
}

// waitSegments waits until the journal has n segments.
func waitSegments(t *testing.T, l *Log, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().JournalSegments != n {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the journal has %d segments, want %d", l.Stats().JournalSegments, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKeepSegments(t *testing.T) {
	opts := rotatingOptions(t, t.TempDir())
	opts.JournalKeepSegments = 2
	l := openLog(t, opts)
	entries := appendUntilSegments(t, l, 0, 6)
	waitIntegrated(t, l, uint64(len(entries)-1))
	waitSegments(t, l, 3) // the last and the two kept
	time.Sleep(3 * opts.CheckpointInterval)
	if got := len(segmentFiles(t, opts)); got != 3 {
		t.Fatalf("%d segments on disk, want 3", got)
	}
}

func TestCrashLeftOldSegments(t *testing.T) {
	// A crash before deletion (or a larger JournalKeepSegments before)
	// leaves segments the tree no longer needs: the next run deletes them.
	opts := rotatingOptions(t, t.TempDir())
	opts.JournalKeepSegments = 100
	l := openLog(t, opts)
	entries := appendUntilSegments(t, l, 0, 4)
	waitIntegrated(t, l, uint64(len(entries)-1))
	l.Close()
	if got := len(segmentFiles(t, opts)); got != 4 {
		t.Fatalf("%d segments, want 4", got)
	}
	opts.JournalKeepSegments = 0
	l = openLog(t, opts)
	waitSegments(t, l, 1)
	if got := len(segmentFiles(t, opts)); got != 1 {
		t.Fatalf("%d segments on disk, want 1", got)
	}
	appendN(t, l, len(entries), 1)
}

// journalOnlyLog makes a log whose tree holds nothing and whose journal has
// n segments, closes it and returns its options and the segments. Recovery
// then reads every segment.
func journalOnlyLog(t *testing.T, n int) (Options, []segmentFile, [][]byte) {
	t.Helper()
	opts := rotatingOptions(t, t.TempDir())
	opts.noFeeder = true
	l := openLog(t, opts)
	entries := appendUntilSegments(t, l, 0, n)
	l.Close()
	return opts, segmentFiles(t, opts), entries
}

func TestRecoveryAfterCrashMidRotation(t *testing.T) {
	for _, c := range []struct {
		name   string
		header func(base uint64) []byte // what the crash left of the new segment
	}{
		{"header only", func(base uint64) []byte { return appendJournalHeader(nil, base) }},
		{"empty", func(uint64) []byte { return nil }},
		{"torn header", func(base uint64) []byte { return appendJournalHeader(nil, base)[:11] }},
		{"zeroed header", func(uint64) []byte { return make([]byte, journalHeaderSize) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts, segs, entries := journalOnlyLog(t, 2)
			next := uint64(len(entries))
			newSeg := filepath.Join(opts.Dir, "journal", journalSegment(next))
			if err := os.WriteFile(newSeg, c.header(next), 0o600); err != nil {
				t.Fatal(err)
			}
			opts.noFeeder = false
			l := openLog(t, opts)
			if s := l.Stats(); s.Durable != next || s.Integrated != next || s.JournalSegments != len(segs)+1 {
				t.Fatalf("Stats = %+v, want %d entries in %d segments", s, next, len(segs)+1)
			}
			entries = append(entries, appendN(t, l, int(next), 2)...)
			info, err := os.Stat(newSeg)
			if err != nil || info.Size() <= journalHeaderSize {
				t.Fatalf("new appends did not go to the new segment: %v, %v", info, err)
			}
			waitIntegrated(t, l, next+1)
			checkEntries(t, l, entries)
		})
	}
}

func TestTornTailOnlyInLastSegment(t *testing.T) {
	opts, segs, entries := journalOnlyLog(t, 3)
	last := segs[len(segs)-1]
	torn := appendGroup(nil, uint64(len(entries)), [][]byte{testEntry(t, 999)})
	f, err := os.OpenFile(last.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn[:len(torn)-3])
	f.Close()
	l := openLog(t, opts)
	if s := l.Stats(); s.Durable != uint64(len(entries)) {
		t.Fatalf("Stats = %+v after cutting the torn tail", s)
	}
	if info, _ := os.Stat(last.path); info.Size() != last.size {
		t.Fatalf("last segment is %d bytes, want %d", info.Size(), last.size)
	}
}

func TestCorruptSegmentsRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		// damage breaks the journal and returns the file the error must name.
		damage func(t *testing.T, segs []segmentFile) string
		want   string
	}{
		{"first segment missing", func(t *testing.T, segs []segmentFile) string {
			os.Remove(segs[0].path)
			return segs[1].path
		}, "a segment is missing"},
		{"gap", func(t *testing.T, segs []segmentFile) string {
			os.Remove(segs[1].path)
			return segs[0].path
		}, "entries are missing"},
		{"overlap", func(t *testing.T, segs []segmentFile) string {
			// A segment starting inside the previous one.
			base := segs[2].base - 1
			b := appendJournalHeader(nil, base)
			b = appendGroup(b, base, [][]byte{testEntry(t, 500)})
			writeFile(t, filepath.Join(filepath.Dir(segs[0].path), journalSegment(base)), b)
			return segs[1].path
		}, "the segments overlap"},
		{"header names another index", func(t *testing.T, segs []segmentFile) string {
			b := readFile(t, segs[1].path)
			copy(b, appendJournalHeader(nil, segs[1].base+1))
			writeFile(t, segs[1].path, b)
			return segs[1].path
		}, "the header says the segment starts at index"},
		{"damaged header", func(t *testing.T, segs []segmentFile) string {
			b := readFile(t, segs[1].path)
			b[9] ^= 0x40
			writeFile(t, segs[1].path, b)
			return segs[1].path
		}, "checksum mismatch"},
		{"damaged header of the last segment with groups", func(t *testing.T, segs []segmentFile) string {
			b := readFile(t, segs[2].path)
			b[0] = 'X'
			writeFile(t, segs[2].path, b)
			return segs[2].path
		}, "bad magic"},
		{"torn tail before the last segment", func(t *testing.T, segs []segmentFile) string {
			b := readFile(t, segs[0].path)
			writeFile(t, segs[0].path, b[:len(b)-5])
			return segs[0].path
		}, "not a whole group"},
		{"damaged group", func(t *testing.T, segs []segmentFile) string {
			b := readFile(t, segs[1].path)
			b[journalHeaderSize+groupHeaderSize+recordHeaderSize+2] ^= 1
			writeFile(t, segs[1].path, b)
			return segs[1].path
		}, "checksum mismatch"},
		{"not a segment name", func(t *testing.T, segs []segmentFile) string {
			p := filepath.Join(filepath.Dir(segs[0].path), "old.journal")
			writeFile(t, p, appendJournalHeader(nil, 0))
			return p
		}, "not a journal segment"},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts, segs, _ := journalOnlyLog(t, 3)
			file := c.damage(t, segs)
			opts.noFeeder = false
			_, err := Open(context.Background(), opts)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			if msg := err.Error(); !strings.Contains(msg, file) || !strings.Contains(msg, c.want) {
				t.Fatalf("Open = %q, want an error naming %s and saying %q", msg, file, c.want)
			}
		})
	}
}

func TestDamagedOldSegmentRefused(t *testing.T) {
	// A segment below the tree's size is not read, but its header is checked.
	opts := rotatingOptions(t, t.TempDir())
	opts.JournalKeepSegments = 100
	l := openLog(t, opts)
	entries := appendUntilSegments(t, l, 0, 3)
	waitIntegrated(t, l, uint64(len(entries)-1))
	l.Close()
	segs := segmentFiles(t, opts)
	b := readFile(t, segs[0].path)
	b[3] ^= 1
	writeFile(t, segs[0].path, b)
	_, err := Open(context.Background(), opts)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), segs[0].path) {
		t.Fatalf("Open = %v, want ErrCorrupt naming %s", err, segs[0].path)
	}
}

func TestRotationFailureFailsClosed(t *testing.T) {
	opts := rotatingOptions(t, t.TempDir())
	l := openLog(t, opts)
	// Fill the first segment; the next append starts a new one, whose name
	// is taken (by a directory), so starting it fails.
	var acked [][]byte
	for i := 0; l.Stats().JournalBytes < opts.JournalSegmentBytes; i++ {
		acked = append(acked, appendN(t, l, i, 1)...)
	}
	next := l.Stats().Durable
	blocker := filepath.Join(opts.Dir, "journal", journalSegment(next))
	if err := os.Mkdir(blocker, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), testEntry(t, int(next))); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append when a segment cannot be started = %v, want ErrUnavailable", err)
	}
	if _, err := l.Append(context.Background(), testEntry(t, int(next))); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append after the failure = %v, want ErrUnavailable", err)
	}
	l.Close()
	os.Remove(blocker)
	l = openLog(t, opts)
	if s := l.Stats(); s.Durable != next {
		t.Fatalf("after restart %d entries, want the %d acknowledged", s.Durable, next)
	}
	appendN(t, l, int(next), 1)
}

func TestJournalOptionsValidate(t *testing.T) {
	good := testOptions(t, t.TempDir())
	for name, mutate := range map[string]func(*Options){
		"tiny segments": func(o *Options) { o.JournalSegmentBytes = MinJournalSegmentBytes - 1 },
		"negative size": func(o *Options) { o.JournalSegmentBytes = -1 },
		"negative keep": func(o *Options) { o.JournalKeepSegments = -1 },
	} {
		o := good
		mutate(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, o)
		}
	}
	if d := good.withDefaults(); d.JournalSegmentBytes != DefaultJournalSegmentBytes || d.JournalKeepSegments != 0 {
		t.Errorf("defaults: %d bytes, keep %d", d.JournalSegmentBytes, d.JournalKeepSegments)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRecoveryInParts recovers a journal of several segments with a memory
// budget of a few entries: every entry reaches the tree under its index,
// whether the tree was empty or held the first entries, and appends go on
// after them.
func TestRecoveryInParts(t *testing.T) {
	for _, integrated := range []int{0, 30} {
		t.Run(fmt.Sprint(integrated, " in the tree"), func(t *testing.T) {
			opts := rotatingOptions(t, t.TempDir())
			var entries [][]byte
			if integrated > 0 {
				l := openLog(t, opts)
				entries = appendN(t, l, 0, integrated)
				waitIntegrated(t, l, uint64(integrated-1))
				l.Close()
			}
			paused := opts
			paused.noFeeder = true
			l := openLog(t, paused)
			entries = append(entries, appendUntilSegments(t, l, len(entries), 4)...)
			l.Close()
			next := uint64(len(entries))

			opts.recoveryBytes = int64(3*len(entries[0]) + 1) // four entries a part
			l = openLog(t, opts)
			if s := l.Stats(); s.Durable != next || s.Integrated != next {
				t.Fatalf("after recovery, Stats = %+v, want %d durable and integrated", s, next)
			}
			entries = append(entries, appendN(t, l, int(next), 3)...)
			waitIntegrated(t, l, next+2)
			checkEntries(t, l, entries)
		})
	}
}

// TestReadJournal reads parts of a journal of several segments: each part
// starts where asked, runs on across segment boundaries, and stops once
// its bytes pass the budget (with at least one entry).
func TestReadJournal(t *testing.T) {
	opts, _, entries := journalOnlyLog(t, 3)
	d := segmentDir{path: filepath.Join(opts.Dir, "journal")}
	scan, err := openJournal(d, 0, math.MaxInt64, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	scan.file.Close()
	if len(scan.segments) < 3 || scan.keptTo != uint64(len(entries)) {
		t.Fatalf("openJournal: %d segments, kept to %d; want 3 or more, %d", len(scan.segments), scan.keptTo, len(entries))
	}
	// budget is a budget that holds n entries from from: the bytes of the
	// first n-1 and one more.
	budget := func(from uint64, n int) int64 {
		b := int64(1)
		for _, e := range entries[from : from+uint64(n)-1] {
			b += int64(len(e))
		}
		return b
	}
	boundary := scan.segments[1].base
	for _, c := range []struct {
		from   uint64
		budget int64
		want   int
	}{
		{0, 1, 1},
		{0, int64(len(entries[0])), 1},
		{0, budget(0, 2), 2},
		{boundary - 2, budget(boundary-2, 4), 4}, // across the boundary
		{boundary, budget(boundary, 3), 3},
		{uint64(len(entries)) - 2, math.MaxInt64, 2}, // to the end
		{0, math.MaxInt64, len(entries)},
	} {
		got, err := readJournal(d, scan.segments, c.from, c.budget)
		if err != nil {
			t.Fatalf("readJournal(%d, %d): %v", c.from, c.budget, err)
		}
		if len(got) != c.want {
			t.Fatalf("readJournal(%d, %d): %d entries, want %d", c.from, c.budget, len(got), c.want)
		}
		for i, e := range got {
			if !bytes.Equal(e, entries[c.from+uint64(i)]) {
				t.Fatalf("readJournal(%d, %d): entry %d differs", c.from, c.budget, c.from+uint64(i))
			}
		}
	}
	if _, err := readJournal(d, scan.segments, uint64(len(entries)), math.MaxInt64); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("readJournal past the end = %v, want ErrCorrupt", err)
	}

	// A budget holds what openJournal keeps too.
	scan, err = openJournal(d, 5, budget(5, 3), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	scan.file.Close()
	if len(scan.entries) != 3 || scan.keptTo != 8 || !bytes.Equal(scan.entries[0], entries[5]) {
		t.Fatalf("openJournal with a budget kept %d entries, to %d; want entries 5 to 7", len(scan.entries), scan.keptTo)
	}
}
