package auditlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloverenclave/clover/internal/atomicfile"
)

// journalFile is the file the journal appends to. Sync must make everything
// written so far durable (fdatasync). The file is opened for appending, so
// after Truncate the next Write lands at the new end.
type journalFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// osJournalFile is a journalFile on an *os.File opened with O_APPEND.
type osJournalFile struct{ f *os.File }

func (o osJournalFile) Write(p []byte) (int, error) { return o.f.Write(p) }
func (o osJournalFile) Sync() error                 { return fdatasync(o.f) }
func (o osJournalFile) Truncate(size int64) error   { return o.f.Truncate(size) }
func (o osJournalFile) Close() error                { return o.f.Close() }

var _ journalFile = osJournalFile{}

// journal is the group-commit journal: appenders queue entries, one writer
// goroutine writes each queued group with one write and one fdatasync, then
// tells the group's appenders their indexes. The journal is a sequence of
// segment files; the writer starts a new one when the current one has
// reached segmentBytes, and the oldest are dropped once the tree holds
// their entries (see obsoleteSegments).
type journal struct {
	dir          segmentDir
	segmentBytes int64
	maxPending   int
	// syncInterval is the least time from the start of one group commit
	// to the start of the next (0: none), see run.
	syncInterval time.Duration
	// onDurable is called by the writer, in order, with each group made
	// durable, before its appenders are told.
	onDurable func(first uint64, entries [][]byte)
	log       *slog.Logger

	// Only the writer goroutine touches these after start.
	file      journalFile // the current (last) segment
	lastStart time.Time   // when the last group commit started
	lastSize  int         // entries in the last group
	size      int64       // offset of the end of the last durable group in file
	next      uint64      // index of the next record
	buf       []byte

	durable  atomic.Uint64 // number of durable records (= next, published)
	syncs    atomic.Uint64 // groups written and synced since start
	pauses   atomic.Uint64 // times the writer waited for syncInterval
	curBytes atomic.Int64  // size, published for Stats

	segMu    sync.Mutex
	segments []segment     // on disk, oldest first; the last is file
	rotated  chan struct{} // signalled when a segment is started

	mu      sync.Mutex
	queue   []*group // groups waiting for the writer; appends go to the last
	pending int      // entries appended and not yet acknowledged
	err     error    // the failure that closed the journal, wrapping ErrUnavailable
	closed  bool
	wake    chan struct{}
	done    chan struct{} // closed when the writer has exited
}

// group is one group commit: entries appended while the previous group was
// being written.
type group struct {
	entries [][]byte
	bytes   int
	done    chan struct{} // closed when first or err is set
	first   uint64
	err     error
}

// segment is one journal file: the index of its first record and, except
// for the segment being written, its size.
type segment struct {
	base  uint64
	bytes int64
}

// newJournal returns a journal that appends to f, the last of segments (as
// recovered by openJournal), whose next record has index next.
func newJournal(dir segmentDir, f journalFile, segments []segment, next uint64, segmentBytes int64, maxPending int, syncInterval time.Duration, onDurable func(uint64, [][]byte), log *slog.Logger) *journal {
	size := segments[len(segments)-1].bytes
	j := &journal{
		dir:          dir,
		segmentBytes: segmentBytes,
		maxPending:   maxPending,
		syncInterval: max(syncInterval, 0),
		onDurable:    onDurable,
		log:          log,
		file:         f,
		size:         size,
		next:         next,
		segments:     segments,
		rotated:      make(chan struct{}, 1),
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	j.durable.Store(next)
	j.curBytes.Store(size)
	return j
}

func (j *journal) start() { go j.run() }

// append queues entry (which it keeps) and returns its index once the
// entry's group is durable.
func (j *journal) append(ctx context.Context, entry []byte) (uint64, error) {
	j.mu.Lock()
	switch {
	case j.err != nil:
		err := j.err
		j.mu.Unlock()
		return 0, err
	case j.closed:
		j.mu.Unlock()
		return 0, ErrClosed
	case j.pending >= j.maxPending:
		n := j.pending
		j.mu.Unlock()
		return 0, fmt.Errorf("%w: %d appends waiting for the journal", ErrPushback, n)
	}
	var g *group
	if n := len(j.queue); n > 0 && j.queue[n-1].bytes+recordSize(entry) <= maxGroupBody {
		g = j.queue[n-1]
	} else {
		g = &group{done: make(chan struct{})}
		j.queue = append(j.queue, g)
	}
	pos := uint64(len(g.entries))
	g.entries = append(g.entries, entry)
	g.bytes += recordSize(entry)
	j.pending++
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	select {
	case <-g.done:
		if g.err != nil {
			return 0, g.err
		}
		return g.first + pos, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("auditlog: append abandoned, the entry may still be logged: %w", ctx.Err())
	}
}

// run is the writer goroutine.
//
// Group commits are paced: the next starts no sooner than syncInterval
// after the last one started, unless more than one group is waiting (the
// journal is behind). An fdatasync costs about the same CPU whether it
// covers one entry or a hundred (~0.2 ms on a small VM), so under a steady
// stream of appends, commits back to back spend most of the log's CPU on
// syncs of a few entries each; the pause lets a group gather the appends
// of syncInterval instead. There is no pause after a quiet spell (the last
// commit started long ago), nor after a group of one entry: a lone caller
// appending one entry after another has nobody to share a sync with, and
// would only be slowed down.
func (j *journal) run() {
	defer close(j.done)
	for {
		j.mu.Lock()
		for len(j.queue) == 0 && !j.closed && j.err == nil {
			j.mu.Unlock()
			<-j.wake
			j.mu.Lock()
		}
		if j.err != nil || len(j.queue) == 0 {
			j.mu.Unlock()
			return
		}
		if wait := time.Until(j.lastStart.Add(j.syncInterval)); wait > 0 && j.lastSize > 1 && len(j.queue) == 1 && !j.closed {
			j.mu.Unlock()
			j.pauses.Add(1)
			time.Sleep(wait)
			continue // the journal may have failed or closed meanwhile: look again
		}
		g := j.queue[0]
		j.queue[0] = nil
		j.queue = j.queue[1:]
		j.mu.Unlock()
		if !j.commit(g) {
			return
		}
	}
}

// commit writes and syncs one group and completes its appenders. A group
// goes whole into one segment: a new segment is started before the group
// if the current one has reached segmentBytes.
func (j *journal) commit(g *group) bool {
	j.lastStart, j.lastSize = time.Now(), len(g.entries)
	if j.size >= j.segmentBytes {
		if err := j.rotate(); err != nil {
			j.fail(g, err)
			return false
		}
	}
	j.buf = appendGroup(j.buf[:0], j.next, g.entries)
	n, err := j.file.Write(j.buf)
	if err == nil && n != len(j.buf) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = j.file.Sync()
	}
	written := int64(len(j.buf))
	if cap(j.buf) > 1<<20 {
		j.buf = nil // do not hold on to a rare large group's buffer
	}
	if err != nil {
		j.fail(g, err)
		return false
	}
	g.first = j.next
	j.next += uint64(len(g.entries))
	j.size += written
	j.curBytes.Store(j.size)
	j.durable.Store(j.next)
	j.syncs.Add(1)
	j.onDurable(g.first, g.entries)
	close(g.done)
	j.mu.Lock()
	j.pending -= len(g.entries)
	j.mu.Unlock()
	// The appenders just woken sit in this goroutine's run queue. If it went
	// straight into the next write and fdatasync, its P would stay with it
	// in the syscall and they would wait until sysmon takes the P back (up
	// to 10ms; measured: wake-up p99 14ms at 20k appends/s). Yield first.
	runtime.Gosched()
	return true
}

// rotate starts the segment whose first record is j.next. The new file,
// header included, and its directory entry are durable before any group is
// written to it, so a crash leaves either no new segment or one with a whole
// header (openJournal copes with a torn one all the same).
func (j *journal) rotate() error {
	f, err := j.dir.create(j.next)
	if err != nil {
		return fmt.Errorf("start journal segment %s: %w", journalSegment(j.next), err)
	}
	old, oldSize := j.file, j.size
	j.file, j.size = f, journalHeaderSize
	j.curBytes.Store(j.size)
	j.segMu.Lock()
	j.segments[len(j.segments)-1].bytes = oldSize
	j.segments = append(j.segments, segment{base: j.next, bytes: journalHeaderSize})
	j.segMu.Unlock()
	// Everything in the old segment was fdatasynced; an error closing it
	// loses nothing.
	if err := old.Close(); err != nil {
		j.log.Warn("auditlog: closing a full journal segment failed", "err", err)
	}
	select {
	case j.rotated <- struct{}{}:
	default:
	}
	j.log.Debug("auditlog: journal segment started", "file", journalSegment(j.next))
	return nil
}

// segmentBases returns the first index of every segment on disk, oldest
// first; the last is the segment being written.
func (j *journal) segmentBases() []uint64 {
	j.segMu.Lock()
	defer j.segMu.Unlock()
	bases := make([]uint64, len(j.segments))
	for i, s := range j.segments {
		bases[i] = s.base
	}
	return bases
}

// segmentStats returns the number of segments on disk and their total size.
func (j *journal) segmentStats() (n int, bytes int64) {
	j.segMu.Lock()
	defer j.segMu.Unlock()
	for _, s := range j.segments[:len(j.segments)-1] {
		bytes += s.bytes
	}
	return len(j.segments), bytes + j.curBytes.Load()
}

// dropOldest deletes the n oldest segments, which must not include the one
// being written, and makes the deletion durable. It runs beside the writer,
// which only ever adds segments at the other end.
func (j *journal) dropOldest(n int) error {
	j.segMu.Lock()
	if n >= len(j.segments) {
		j.segMu.Unlock()
		panic(fmt.Sprintf("auditlog: dropping %d of %d journal segments", n, len(j.segments)))
	}
	victims := append([]segment(nil), j.segments[:n]...)
	j.segMu.Unlock()
	removed := 0
	var err error
	for _, s := range victims {
		if err = j.dir.remove(s.base); err != nil {
			break
		}
		removed++
	}
	if removed > 0 {
		j.segMu.Lock()
		j.segments = j.segments[removed:]
		j.segMu.Unlock()
		if serr := syncDir(j.dir.path); serr != nil && err == nil {
			err = fmt.Errorf("sync journal directory: %w", serr)
		}
	}
	return err
}

// obsoleteSegments returns how many of the oldest segments (first indexes
// bases, oldest first, the last being written) can be deleted when the
// tree holds the first safe entries durably: integrated, and covered by a
// published checkpoint. Segment i holds indexes bases[i] to bases[i+1]-1.
// Recovery reads the journal from index safe-1 on (it checks that entry
// against the tree), so segment i is obsolete once bases[i+1] <= safe-1.
// The keep newest obsolete segments are kept; the last segment never goes.
func obsoleteSegments(bases []uint64, safe uint64, keep int) int {
	n := 0
	for n+1 < len(bases) && safe > 0 && bases[n+1] <= safe-1 {
		n++
	}
	return max(0, n-keep)
}

// fail closes the journal after a write or sync error: the group being
// written and every queued group fail, and so does every later append. What
// may have reached the file of the failed group is cut off if possible; if
// not, recovery treats it as a torn tail or, if it is whole, keeps it (it
// was not acknowledged, but the request may have been attempted).
func (j *journal) fail(g *group, cause error) {
	err := fmt.Errorf("%w: journal write failed: %v", ErrUnavailable, cause)
	j.setErr(err)
	g.err = err
	close(g.done)
	if terr := j.file.Truncate(j.size); terr != nil {
		j.log.Error("auditlog: cannot cut the failed group off the journal", "err", terr)
	}
	j.log.Error("auditlog: journal failed; appends refused until restart", "err", cause, "entries", len(g.entries))
}

// setErr closes the journal with err (the first error wins): every queued
// group and every later append fails with it.
func (j *journal) setErr(err error) {
	j.mu.Lock()
	if j.err == nil {
		j.err = err
	}
	err = j.err
	queued := j.queue
	j.queue = nil
	j.pending = 0
	j.mu.Unlock()
	for _, q := range queued {
		q.err = err
		close(q.done)
	}
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// failed returns the error that closed the journal, or nil.
func (j *journal) failed() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// close stops accepting appends, waits for the queued groups to be written
// and closes the file.
func (j *journal) close() error {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
	<-j.done
	return j.file.Close()
}

// journalSegment is the name of the journal segment whose first record has
// index base.
func journalSegment(base uint64) string { return fmt.Sprintf("%020d.journal", base) }

// parseSegmentName returns the first index a segment's name announces.
func parseSegmentName(name string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, ".journal")
	if !ok || len(stem) != 20 || strings.Trim(stem, "0123456789") != "" {
		return 0, false
	}
	base, err := strconv.ParseUint(stem, 10, 64)
	return base, err == nil
}

// segmentDir is the directory of the journal's segments.
type segmentDir struct {
	path string
	wrap func(journalFile) journalFile // test hook: wraps each opened segment
}

func (d segmentDir) file(base uint64) string { return filepath.Join(d.path, journalSegment(base)) }

// journalFile returns f as the journal's file, wrapped by the test hook.
func (d segmentDir) journalFile(f *os.File) journalFile {
	var jf journalFile = osJournalFile{f}
	if d.wrap != nil {
		jf = d.wrap(jf)
	}
	return jf
}

// create makes the segment whose first record is base, with its header, and
// opens it for appending. The file and the directory are synced before it
// returns.
func (d segmentDir) create(base uint64) (journalFile, error) {
	path := d.file(base)
	if err := atomicfile.Create(path, appendJournalHeader(nil, base), 0o600); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return d.journalFile(f), nil
}

// remove deletes a segment; the caller syncs the directory.
func (d segmentDir) remove(base uint64) error {
	if err := os.Remove(d.file(base)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// list returns the first indexes of the segments in the directory, in
// order, and removes what an interrupted segment creation left (a
// temporary file). A *.journal file not named as a segment is corruption.
func (d segmentDir) list() ([]uint64, error) {
	des, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("auditlog: %w", err)
	}
	var bases []uint64
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasPrefix(name, ".tmp-") && strings.Contains(name, ".journal-"):
			if err := os.Remove(filepath.Join(d.path, name)); err != nil {
				return nil, fmt.Errorf("auditlog: remove leftover %s: %w", name, err)
			}
		case strings.HasSuffix(name, ".journal"):
			base, ok := parseSegmentName(name)
			if !ok || !de.Type().IsRegular() {
				return nil, fmt.Errorf("%w: %s: not a journal segment (want a regular file named by 20 digits)", ErrCorrupt, filepath.Join(d.path, name))
			}
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(a, b int) bool { return bases[a] < bases[b] })
	return bases, nil
}

func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// recoveredJournal is what openJournal found.
type recoveredJournal struct {
	file     *os.File  // the last segment, open for appending
	segments []segment // every segment on disk, oldest first
	next     uint64    // index of the next record
	// entries are the records from index keepFrom on, in order, as many as
	// the budget holds: up to index keptTo.
	entries [][]byte
	keptTo  uint64
}

// openJournal opens the journal in d for appending, creating its first
// segment if there is none, and recovers it after a crash. It reads the
// records from index keepFrom on: the segment holding keepFrom and every
// later one are read whole and checked; each must end where the next one
// begins. Earlier segments, left for deletion, are checked by their header
// only. It keeps in memory the records from keepFrom on while their bytes
// are within budget (at least one, if there is any); readJournal reads the
// rest later. A torn tail of the last segment is cut off, and a last
// segment whose header a crash interrupted (nothing after it) gets its
// header again. Everything else that is wrong is ErrCorrupt, naming the
// file.
func openJournal(d segmentDir, keepFrom uint64, budget int64, log *slog.Logger) (_ *recoveredJournal, err error) {
	bases, err := d.list()
	if err != nil {
		return nil, err
	}
	if len(bases) == 0 {
		if err := atomicfile.Create(d.file(0), appendJournalHeader(nil, 0), 0o600); err != nil {
			return nil, fmt.Errorf("auditlog: create journal: %w", err)
		}
		bases = []uint64{0}
	}
	// k is the segment holding keepFrom: the last one starting at or
	// before it.
	k := sort.Search(len(bases), func(i int) bool { return bases[i] > keepFrom }) - 1
	if k < 0 {
		return nil, fmt.Errorf("%w: the first journal segment %s starts at index %d, but recovery needs index %d: a segment is missing",
			ErrCorrupt, d.file(bases[0]), bases[0], keepFrom)
	}
	r := &recoveredJournal{}
	defer func() {
		if err != nil && r.file != nil {
			r.file.Close()
		}
	}()
	for _, base := range bases[:k] {
		size, err := checkSegmentHeader(d.file(base), base)
		if err != nil {
			return nil, err
		}
		r.segments = append(r.segments, segment{base, size})
	}
	for i := k; i < len(bases); i++ {
		base, path, last := bases[i], d.file(bases[i]), i == len(bases)-1
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("auditlog: %w", err)
		}
		if last {
			r.file = f
		} else {
			defer f.Close()
		}
		info, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("auditlog: %w", err)
		}
		size := info.Size()
		if last && size <= journalHeaderSize {
			if size, err = repairSegmentHeader(f, size, base, log); err != nil {
				return nil, fmt.Errorf("auditlog: %s: %w", path, err)
			}
		}
		if _, err := checkSegmentHeader(path, base); err != nil {
			return nil, err
		}
		scan, err := scanJournal(f, size, keep{from: keepFrom, budget: budget})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		budget = scan.budget
		if !last {
			next := bases[i+1]
			switch {
			case scan.torn > 0:
				return nil, fmt.Errorf("%w: %s: %d bytes at offset %d are not a whole group, and segment %s follows",
					ErrCorrupt, path, scan.torn, scan.end, journalSegment(next))
			case scan.next < next:
				return nil, fmt.Errorf("%w: %s ends at index %d but the next segment %s starts at %d: entries are missing",
					ErrCorrupt, path, scan.next, journalSegment(next), next)
			case scan.next > next:
				return nil, fmt.Errorf("%w: %s ends at index %d but the next segment %s starts at %d: the segments overlap",
					ErrCorrupt, path, scan.next, journalSegment(next), next)
			}
		} else if scan.torn > 0 {
			log.Warn("auditlog: cutting a torn tail off the journal (a write the crash interrupted; never acknowledged)",
				"file", path, "offset", scan.end, "bytes", scan.torn)
			if err := f.Truncate(scan.end); err != nil {
				return nil, fmt.Errorf("auditlog: truncate journal: %w", err)
			}
			if err := fdatasync(f); err != nil {
				return nil, fmt.Errorf("auditlog: sync journal: %w", err)
			}
		}
		r.entries = append(r.entries, scan.entries...)
		r.segments = append(r.segments, segment{base, scan.end})
		r.next = scan.next
	}
	r.keptTo = min(keepFrom, r.next) + uint64(len(r.entries))
	return r, nil
}

// readJournal reads the records of a recovered journal from index from on,
// while their bytes are within budget (at least one); segments are the
// journal's, as openJournal found and checked them, and from is below the
// journal's next index. It checks every group it reads again.
func readJournal(d segmentDir, segments []segment, from uint64, budget int64) ([][]byte, error) {
	k := sort.Search(len(segments), func(i int) bool { return segments[i].base > from }) - 1
	if k < 0 {
		return nil, fmt.Errorf("%w: no journal segment holds index %d", ErrCorrupt, from)
	}
	var out [][]byte
	for _, seg := range segments[k:] {
		if budget <= 0 {
			break
		}
		path := d.file(seg.base)
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("auditlog: %w", err)
		}
		scan, err := scanJournal(f, seg.bytes, keep{from: from, budget: budget, stop: true})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out, budget = append(out, scan.entries...), scan.budget
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the journal has no entry at index %d any more", ErrCorrupt, from)
	}
	return out, nil
}

// checkSegmentHeader checks that the segment at path has a whole header
// announcing base, and returns the segment's size.
func checkSegmentHeader(path string, base uint64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("auditlog: %w", err)
	}
	defer f.Close()
	h := make([]byte, journalHeaderSize)
	if _, err := io.ReadFull(f, h); err != nil {
		return 0, fmt.Errorf("%w: %s: header: %v", ErrCorrupt, path, err)
	}
	got, err := parseJournalHeader(h)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	if got != base {
		return 0, fmt.Errorf("%w: %s: the header says the segment starts at index %d", ErrCorrupt, path, got)
	}
	info, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("auditlog: %w", err)
	}
	return info.Size(), nil
}

// repairSegmentHeader handles the last segment when it is no longer than a
// header: if the header is not whole and valid, a crash interrupted the
// segment's creation (no group was ever written to it), and the header is
// written again from the name. It returns the segment's size.
func repairSegmentHeader(f *os.File, size int64, base uint64, log *slog.Logger) (int64, error) {
	h := make([]byte, size)
	if _, err := f.ReadAt(h, 0); err != nil {
		return 0, err
	}
	if _, err := parseJournalHeader(h); err == nil {
		return size, nil // whole; scanJournal checks the base
	}
	log.Warn("auditlog: writing the header of a journal segment whose creation a crash interrupted", "file", f.Name(), "bytes", size)
	if err := f.Truncate(0); err != nil {
		return 0, err
	}
	if _, err := f.Write(appendJournalHeader(nil, base)); err != nil {
		return 0, err
	}
	if err := fdatasync(f); err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return journalHeaderSize, nil
}
