package rules

import (
	"fmt"
	"time"

	"github.com/cloverenclave/clover/auditlog"
)

// windowSpec says what a window rule counts and when it fires.
type windowSpec struct {
	window time.Duration
	// threshold is the count at which the rule fires.
	threshold int
	// distinct counts distinct subjects rather than entries.
	distinct bool
	// counts returns the entry's subject and true if the entry counts
	// ("" subject when not distinct).
	counts  func(e *auditlog.Entry) (string, bool)
	message func(n int, window time.Duration) string
}

func bulkRule(b *BulkAccess) windowSpec {
	return windowSpec{
		window: b.Window, threshold: b.Subjects + 1, distinct: true,
		counts: func(e *auditlog.Entry) (string, bool) {
			return e.Subject, isAllowedRead(e) && e.Subject != ""
		},
		message: func(n int, w time.Duration) string {
			return fmt.Sprintf("read %d distinct subjects within %v (threshold %d)", n, w, b.Subjects)
		},
	}
}

func denialsRule(d *Denials) windowSpec {
	return windowSpec{
		window: d.Window, threshold: d.Count,
		counts: func(e *auditlog.Entry) (string, bool) {
			return "", e.Actor != nil && e.Decision == auditlog.Deny
		},
		message: func(n int, w time.Duration) string {
			return fmt.Sprintf("denied %d times within %v (threshold %d)", n, w, d.Count)
		},
	}
}

// windowRule holds a window rule's per-actor state.
type windowRule struct {
	windowSpec
	actors    map[string]*actorWindow
	lastSweep time.Time
}

func newWindowRule(s windowSpec) *windowRule {
	return &windowRule{windowSpec: s, actors: map[string]*actorWindow{}}
}

// item is one counted entry in a window.
type item struct {
	t       time.Time
	index   uint64
	subject string
	seq     uint64
}

// actorWindow is one actor's window: a deque items[head:] in time order.
// When counting distinct subjects, latest maps each subject in the window
// to the seq of its latest item; older items of the same subject are stale
// and are skipped.
type actorWindow struct {
	items      []item
	head       int
	latest     map[string]uint64
	seq        uint64
	last       time.Time // time of the actor's latest counted entry
	quietUntil time.Time // no alert before this time (suppression)
}

func (w *actorWindow) live(it *item) bool {
	return w.latest == nil || w.latest[it.subject] == it.seq
}

func (w *actorWindow) count() int {
	if w.latest != nil {
		return len(w.latest)
	}
	return len(w.items) - w.head
}

// popFront drops the oldest item.
func (w *actorWindow) popFront() {
	it := &w.items[w.head]
	if w.latest != nil && w.live(it) {
		delete(w.latest, it.subject)
	}
	*it = item{}
	w.head++
	if w.head == len(w.items) {
		w.items, w.head = w.items[:0], 0
	} else if w.head >= 64 && 2*w.head >= len(w.items) {
		w.compact(false)
	}
}

// compact moves the deque to the start of its slice, dropping stale items
// if dropStale.
func (w *actorWindow) compact(dropStale bool) {
	n := 0
	for i := w.head; i < len(w.items); i++ {
		if dropStale && !w.live(&w.items[i]) {
			continue
		}
		w.items[n] = w.items[i]
		n++
	}
	clear(w.items[n:])
	w.items, w.head = w.items[:n], 0
}

// observe counts entry for its actor at time now and returns an alert
// (without rule name and severity) if the rule fires.
func (r *windowRule) observe(now time.Time, index uint64, e *auditlog.Entry) (Alert, bool) {
	r.sweep(now)
	subject, ok := r.counts(e)
	if !ok {
		return Alert{}, false
	}
	actor := e.Actor.Sub
	w := r.actors[actor]
	if w == nil {
		w = &actorWindow{}
		if r.distinct {
			w.latest = map[string]uint64{}
		}
		r.actors[actor] = w
	}
	w.last = now
	cutoff := now.Add(-r.window)
	for w.head < len(w.items) && !w.items[w.head].t.After(cutoff) {
		w.popFront()
	}
	w.seq++
	w.items = append(w.items, item{t: now, index: index, subject: subject, seq: w.seq})
	if w.latest != nil {
		w.latest[subject] = w.seq
		if len(w.items)-w.head > 2*MaxEvidence {
			w.compact(true)
		}
		for len(w.latest) > MaxEvidence {
			w.popFront()
		}
	} else if len(w.items)-w.head > MaxEvidence {
		w.popFront()
	}
	n := w.count()
	if n < r.threshold || now.Before(w.quietUntil) {
		return Alert{}, false
	}
	w.quietUntil = now.Add(r.window)
	a := Alert{Actor: actor, Indexes: make([]uint64, 0, n), LastSeen: now, Message: r.message(n, r.window)}
	for i := w.head; i < len(w.items); i++ {
		it := &w.items[i]
		if !w.live(it) {
			continue
		}
		if len(a.Indexes) == 0 {
			a.FirstSeen = it.t
		}
		a.Indexes = append(a.Indexes, it.index)
	}
	return a, true
}

// sweep drops, at most once per window length, the state of actors with no
// counted entry for two window lengths.
func (r *windowRule) sweep(now time.Time) {
	if now.Sub(r.lastSweep) < r.window {
		return
	}
	r.lastSweep = now
	idle := now.Add(-2 * r.window)
	for a, w := range r.actors {
		if !w.last.After(idle) {
			delete(r.actors, a)
		}
	}
}
