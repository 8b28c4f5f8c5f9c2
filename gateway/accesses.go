package gateway

// Data-subject transparency: GET /v1/subjects/{id}/accesses lists the
// accesses to a subject's data, for the subject themself or a DPO.
//
// The audit log is the record; the listing reads a derived index of its
// access entries by subject pseudonym (auditlog/subjectindex). The request
// path only hands each recorded entry's summary to a buffered channel; one
// goroutine batch-inserts them. Indexing is best effort: when the channel
// is full the item is dropped and counted in a warning, never waited for,
// and the log itself stays complete, so the index can be rebuilt from it.
// A listing can therefore lag the log by a moment, or lack an item the log
// holds; every listed item names its log index so that it can be checked
// against the log with an inclusion proof.
//
// The listing itself is not logged: it reveals nothing about the subject
// that the caller (the subject, or a DPO) may not see, and logging it would
// make every listing change the next one.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/auditlog/subjectindex"
	"github.com/cloverenclave/clover/vault"
)

// AccessIndex stores and lists the access entries of the log by subject
// pseudonym; *subjectindex.Index is one. List returns at most limit items
// of the subject whose log index is at least from, in log order.
type AccessIndex interface {
	Add(ctx context.Context, items ...subjectindex.Item) error
	List(ctx context.Context, subject string, limit int, from uint64) ([]subjectindex.Item, error)
}

const (
	// accessQueue is how many items may wait for the index.
	accessQueue = 65536
	// accessBatch caps the items inserted in one transaction, and
	// accessDelay is how long the first item of a batch waits for more:
	// nearly every item dirties an index page of its own, so the cost per
	// item falls as a transaction's items share pages (subjectindex.Add).
	accessBatch = 8192
	accessDelay = time.Second
	// accessWriteTimeout bounds one batch insert.
	accessWriteTimeout = 10 * time.Second
	// Listing page sizes.
	defaultAccessLimit = 100
	maxAccessLimit     = 1000
)

// accessIndexer feeds an AccessIndex from one goroutine.
type accessIndexer struct {
	index   AccessIndex
	log     *slog.Logger
	items   chan subjectindex.Item
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
}

// newAccessIndexer starts the goroutine that feeds index; nil for a nil
// index. Gateway.Close stops it.
func newAccessIndexer(index AccessIndex, log *slog.Logger) *accessIndexer {
	if index == nil {
		return nil
	}
	a := &accessIndexer{index: index, log: log, items: make(chan subjectindex.Item, accessQueue),
		flushes: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go a.run()
	return a
}

// enqueue hands it to the goroutine without waiting; a full queue or a
// stopped indexer drops it.
func (a *accessIndexer) enqueue(it subjectindex.Item) {
	select {
	case <-a.stop:
		a.dropped.Add(1)
		return
	default:
	}
	select {
	case a.items <- it:
	default:
		a.dropped.Add(1)
	}
}

func (a *accessIndexer) run() {
	defer close(a.done)
	batch := make([]subjectindex.Item, 0, accessBatch)
	// wait fires accessDelay after the first item of a batch arrived.
	wait := time.NewTimer(accessDelay)
	wait.Stop()
	var waitC <-chan time.Time
	write := func() {
		a.write(batch)
		clear(batch) // let the items' strings go
		batch = batch[:0]
		wait.Stop()
		waitC = nil
	}
	add := func(it subjectindex.Item) {
		batch = append(batch, it)
		switch len(batch) {
		case 1:
			wait.Reset(accessDelay)
			waitC = wait.C
		case accessBatch:
			write()
		}
	}
	// drain takes what is queued now and writes everything.
	drain := func() {
		for {
			select {
			case it := <-a.items:
				add(it)
			default:
				write()
				return
			}
		}
	}
	for {
		select {
		case it := <-a.items:
			add(it)
		case <-waitC:
			write()
		case done := <-a.flushes:
			drain()
			close(done)
		case <-a.stop:
			drain()
			a.reportDropped()
			return
		}
	}
}

func (a *accessIndexer) write(batch []subjectindex.Item) {
	if len(batch) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), accessWriteTimeout)
		err := a.index.Add(ctx, batch...)
		cancel()
		if err != nil {
			a.log.Error("subject access index: items not indexed; the audit log has them, rebuild the index from it",
				"items", len(batch), "first_index", batch[0].Index, "error", err)
		}
	}
	a.reportDropped()
}

func (a *accessIndexer) reportDropped() {
	if n := a.dropped.Swap(0); n > 0 {
		a.log.Warn("subject access index: queue full, items dropped; the audit log has them, rebuild the index from it",
			"dropped", n)
	}
}

// flush waits until everything enqueued before it is written.
func (a *accessIndexer) flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case a.flushes <- done:
	case <-a.done:
		return errors.New("subject access index: stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close writes what is queued and stops the goroutine.
func (a *accessIndexer) close() {
	a.once.Do(func() { close(a.stop) })
	<-a.done
}

// Close stops the gateway's background work: it writes the access items
// still queued to the access index and stops its goroutine. Call it after
// the HTTP server has stopped and before the index is closed; items
// recorded after Close are not indexed. It is safe to call more than once.
func (g *Gateway) Close() error {
	if g.accesses != nil {
		g.accesses.close()
	}
	return nil
}

// indexAccess hands the summary of e, just appended at index idx, to the
// access index: reads, writes and erasures of a subject. Re-identification
// entries name a token, not a subject, and are left out.
func (g *Gateway) indexAccess(e *auditlog.Entry, idx uint64) {
	if g.accesses == nil {
		return
	}
	if it, ok := subjectindex.ItemFromEntry(idx, e); ok {
		g.accesses.enqueue(it)
	}
}

type accessAccessor struct {
	Type    string   `json:"type"`
	Roles   []string `json:"roles"`
	Country string   `json:"country,omitempty"`
}

type accessItem struct {
	Index    uint64               `json:"index"`
	Time     string               `json:"time"`
	Kind     string               `json:"kind"`
	Decision string               `json:"decision"`
	Accessor accessAccessor       `json:"accessor"`
	Purpose  string               `json:"purpose,omitempty"`
	Fields   []subjectindex.Field `json:"fields"`
	Status   int                  `json:"status,omitempty"`
}

type accessesResponse struct {
	Subject  string       `json:"subject"`
	Accesses []accessItem `json:"accesses"`
	// NextAfter is the after of the next page; null on the last page.
	NextAfter *uint64 `json:"next_after"`
}

// listAccesses answers GET /v1/subjects/{id}/accesses[?limit=N&after=I]:
// the accesses to the subject's data with a log index above I, in log
// order, for the subject themself (role "subject" and sub equal to the id)
// or a data-protection officer (role "dpo").
func (g *Gateway) listAccesses(w http.ResponseWriter, r *http.Request) {
	id, ok := subjectID(w, r)
	if !ok {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	if !p.HasRole("dpo") && !(p.HasRole("subject") && p.Subject == id) {
		writeError(w, http.StatusForbidden, "forbidden", "only the subject themself (role subject) or a data-protection officer (role dpo) may list a subject's accesses")
		return
	}
	limit, from, ok := accessQuery(w, r)
	if !ok {
		return
	}
	handle, err := g.vault.Handle(r.Context(), id)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such subject")
		return
	case err != nil:
		g.internal(w, r, "list accesses", err)
		return
	}
	items, err := g.accesses.index.List(r.Context(), g.subjectPseudonym(handle, id), limit+1, from)
	if err != nil {
		g.internal(w, r, "list accesses", err)
		return
	}
	resp := accessesResponse{Subject: id, Accesses: make([]accessItem, 0, min(len(items), limit))}
	if len(items) > limit {
		items = items[:limit]
		next := items[limit-1].Index
		resp.NextAfter = &next
	}
	for _, it := range items {
		roles := it.Roles
		if roles == nil {
			roles = []string{}
		}
		fields := it.Fields
		if fields == nil {
			fields = []subjectindex.Field{}
		}
		resp.Accesses = append(resp.Accesses, accessItem{Index: it.Index, Time: it.Time.UTC().Format(auditlog.TimeLayout),
			Kind: it.Kind, Decision: it.Decision, Accessor: accessAccessor{Type: it.ActorType, Roles: roles, Country: it.Country},
			Purpose: it.Purpose, Fields: fields, Status: it.Status})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

// accessQuery parses ?limit=N (1..1000, default 100) and ?after=I (the
// listing starts above log index I; from the start when absent) into a
// limit and the first log index to list.
func accessQuery(w http.ResponseWriter, r *http.Request) (limit int, from uint64, ok bool) {
	q := r.URL.Query()
	for k, vs := range q {
		if k != "limit" && k != "after" {
			writeError(w, http.StatusBadRequest, "invalid_query", fmt.Sprintf("unknown query parameter %q", truncate(printable(k), 64)))
			return 0, 0, false
		}
		if len(vs) > 1 {
			writeError(w, http.StatusBadRequest, "invalid_query", "give query parameter "+k+" at most once")
			return 0, 0, false
		}
	}
	limit = defaultAccessLimit
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxAccessLimit {
			writeError(w, http.StatusBadRequest, "invalid_query", fmt.Sprintf("query parameter limit must be an integer from 1 to %d", maxAccessLimit))
			return 0, 0, false
		}
		limit = n
	}
	if q.Has("after") {
		n, err := strconv.ParseUint(q.Get("after"), 10, 63)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_query", "query parameter after must be a log index: a non-negative integer")
			return 0, 0, false
		}
		from = n + 1
	}
	return limit, from, true
}
