package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/enclave"
)

// Alert is an incident raised by a rule.
type Alert struct {
	Rule     string
	Severity Severity
	// Actor is the Actor.Sub of the entries, "" if they have no actor.
	Actor string
	// Indexes are the evidence: the log indexes of the entries that make up
	// the alert, oldest first (for a window rule, the window's entries; for
	// bulk_access, the latest read of each distinct subject).
	Indexes []uint64
	// FirstSeen and LastSeen are the times of the first and last evidence.
	FirstSeen, LastSeen time.Time
	// Message says what happened, for people. It holds no subject.
	Message string
}

// Engine evaluates a rule set over the log's entries, in log order. It is
// not safe for concurrent use.
type Engine struct {
	rules []*rule
	now   time.Time // the largest entry time seen
}

// rule is a compiled Rule: exactly one of match and win is set.
type rule struct {
	name     string
	severity Severity
	// match judges one entry: a message and true if it should raise an
	// alert.
	match func(e *auditlog.Entry) (string, bool)
	win   *windowRule
}

// New validates cfg and returns an engine for it.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{}
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		c := &rule{name: r.Name, severity: r.Severity}
		k, _ := r.kind() // checked by Validate
		switch k {
		case KindBulkAccess:
			c.win = newWindowRule(bulkRule(r.BulkAccess))
		case KindDenials:
			c.win = newWindowRule(denialsRule(r.Denials))
		case KindCountry:
			allowed, err := enclave.ExpandCountries(r.Country.Allowed)
			if err != nil { // checked by Validate
				return nil, fmt.Errorf("%w: rule %q: country.allowed: %v", ErrInvalidConfig, r.Name, err)
			}
			c.match = countryMatch(allowed, r.Country.AllowUnknown)
		case KindOffHours:
			c.match = offHoursMatch(r.OffHours)
		case KindReidentify:
			c.match = reidentifyMatch(r.Reidentify.BreakGlass)
		case KindTransfer:
			c.match = transferMatch(r.Transfer.Destinations)
		case KindCondition:
			prg, err := compileCondition(r.Condition.Expr)
			if err != nil { // checked by Validate
				return nil, fmt.Errorf("%w: rule %q: condition.%v", ErrInvalidConfig, r.Name, err)
			}
			c.match = conditionMatch(prg, r.Condition.Expr)
		}
		e.rules = append(e.rules, c)
	}
	return e, nil
}

// Observe evaluates every rule on entry, the entry at log index index, and
// returns the alerts it raised, in rule order (nil if none). Entries must be
// observed in log order.
func (e *Engine) Observe(index uint64, entry *auditlog.Entry) []Alert {
	if entry == nil {
		return nil
	}
	if entry.Time.After(e.now) {
		e.now = entry.Time
	}
	var out []Alert
	for _, r := range e.rules {
		if r.win != nil {
			if a, ok := r.win.observe(e.now, index, entry); ok {
				a.Rule, a.Severity = r.name, r.severity
				out = append(out, a)
			}
			continue
		}
		msg, ok := r.match(entry)
		if !ok {
			continue
		}
		a := Alert{Rule: r.name, Severity: r.severity, Indexes: []uint64{index},
			FirstSeen: entry.Time, LastSeen: entry.Time, Message: msg}
		if entry.Actor != nil {
			a.Actor = entry.Actor.Sub
		}
		out = append(out, a)
	}
	return out
}

// stateSize returns the number of actors and of window entries held.
func (e *Engine) stateSize() (actors, entries int) {
	for _, r := range e.rules {
		if r.win == nil {
			continue
		}
		actors += len(r.win.actors)
		for _, w := range r.win.actors {
			entries += len(w.items) - w.head
		}
	}
	return actors, entries
}

func isAllowedRead(e *auditlog.Entry) bool {
	return e.Kind == auditlog.KindDecision && e.Decision == auditlog.Allow && e.Actor != nil
}

func countryMatch(allowed []string, allowUnknown bool) func(*auditlog.Entry) (string, bool) {
	set := make(map[string]bool, len(allowed))
	for _, c := range allowed {
		set[c] = true
	}
	return func(e *auditlog.Entry) (string, bool) {
		if !isAllowedRead(e) {
			return "", false
		}
		switch c := e.Actor.Country; {
		case c == "" && allowUnknown, set[c]:
			return "", false
		case c == "":
			return "read by an actor with no country", true
		default:
			return fmt.Sprintf("read by an actor in %s, outside the allowed countries", c), true
		}
	}
}

func offHoursMatch(o *OffHours) func(*auditlog.Entry) (string, bool) {
	var days [7]bool
	for _, d := range o.Days {
		days[weekdays[d]] = true
	}
	start, end := o.Start%24, o.End%24
	working := func(h int) bool {
		switch {
		case start < end:
			return h >= start && h < end
		case start > end:
			return h >= start || h < end
		}
		return true
	}
	actorType := o.ActorType
	return func(e *auditlog.Entry) (string, bool) {
		if e.Actor == nil || e.Decision != auditlog.Allow || (actorType != "" && e.Actor.Type != actorType) {
			return "", false
		}
		t := e.Time.UTC()
		if days[t.Weekday()] {
			return fmt.Sprintf("%s on a %s", e.Kind, t.Weekday()), true
		}
		if !working(t.Hour()) {
			return fmt.Sprintf("%s at %02d:%02d UTC, outside working hours %02d:00-%02d:00", e.Kind, t.Hour(), t.Minute(), start, end), true
		}
		return "", false
	}
}

func reidentifyMatch(breakGlass bool) func(*auditlog.Entry) (string, bool) {
	if breakGlass {
		return func(e *auditlog.Entry) (string, bool) {
			if e.Actor == nil || e.Decision != auditlog.Allow || !strings.HasPrefix(e.Grant, BreakGlassPrefix) {
				return "", false
			}
			return fmt.Sprintf("break-glass %s under grant %q", e.Kind, e.Grant), true
		}
	}
	return func(e *auditlog.Entry) (string, bool) {
		if e.Kind != auditlog.KindReidentify || e.Decision != auditlog.Allow {
			return "", false
		}
		return "a token was re-identified", true
	}
}

func transferMatch(dests []string) func(*auditlog.Entry) (string, bool) {
	known := make(map[string]bool, len(dests))
	for _, d := range dests {
		known[d] = true
	}
	return func(e *auditlog.Entry) (string, bool) {
		if e.Kind != auditlog.KindTransfer || e.Decision != auditlog.Allow || known[e.Site] {
			return "", false
		}
		return fmt.Sprintf("transfer to unknown destination %q", e.Site), true
	}
}
