package auditlog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
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
// tells the group's appenders their indexes.
type journal struct {
	file       journalFile
	maxPending int
	// onDurable is called by the writer, in order, with each group made
	// durable, before its appenders are told.
	onDurable func(first uint64, entries [][]byte)
	log       *slog.Logger

	// Only the writer goroutine touches these after start.
	size int64  // offset of the end of the last durable group
	next uint64 // index of the next record
	buf  []byte

	durable atomic.Uint64 // number of durable records (= next, published)

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

func newJournal(f journalFile, size int64, next uint64, maxPending int, onDurable func(uint64, [][]byte), log *slog.Logger) *journal {
	j := &journal{
		file:       f,
		maxPending: maxPending,
		onDurable:  onDurable,
		log:        log,
		size:       size,
		next:       next,
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	j.durable.Store(next)
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
		g := j.queue[0]
		j.queue[0] = nil
		j.queue = j.queue[1:]
		j.mu.Unlock()
		if !j.commit(g) {
			return
		}
	}
}

// commit writes and syncs one group and completes its appenders.
func (j *journal) commit(g *group) bool {
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
	j.durable.Store(j.next)
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
