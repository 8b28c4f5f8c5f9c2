package report

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Format names the version of the report layout. It is the "format" field
// of a JSON report and the first line of a report signature.
const Format = "clover-monitor-report/v1"

// The dimensions of [Data.Counts] that the monitor fills, in the order the
// HTML report shows them. Counts may hold others; they are reported after
// these, under their own names.
const (
	DimKind                = "kind"                 // audit entries by kind
	DimDecision            = "decision"             // gateway decisions by outcome
	DimPurpose             = "purpose"              // decisions by stated purpose
	DimForm                = "form"                 // fields released by form (raw, pseudonymised, ...)
	DimCountry             = "country"              // decisions by the accessor's country
	DimSite                = "site"                 // decisions by the site that served them
	DimTransferDestination = "transfer_destination" // transfers by destination
	DimTransferBasis       = "transfer_basis"       // transfers by legal basis
	DimTransferRows        = "transfer_rows"        // rows transferred, by destination
)

// Data is everything a report shows for a period; the monitor fills it
// from its database. It holds no personal data: subjects never appear, and
// the log entries it points at name them only by pseudonym.
type Data struct {
	Monitor     string            `json:"monitor"`     // the monitor's name (its key name)
	MonitorKey  string            `json:"monitor_key"` // its note verifier key, printed in the report
	Log         string            `json:"log"`         // the log's origin
	From        time.Time         `json:"from"`        // start of the period, inclusive
	To          time.Time         `json:"to"`          // end of the period, exclusive
	Generated   time.Time         `json:"generated"`
	Checkpoints CheckpointSummary `json:"checkpoints"`
	Entries     uint64            `json:"entries"` // entries verified in the period
	// Counts maps a dimension (DimKind, DimPurpose, ...) to counts by key.
	Counts    map[string]map[string]int64 `json:"counts"`
	Incidents []Incident                  `json:"incidents"`
	Probes    ProbeSummary                `json:"probes"`
	Replay    ReplaySummary               `json:"replay"`
}

// CheckpointSummary tells how many checkpoints of the log the monitor
// verified in the period, and which were the first and the last.
type CheckpointSummary struct {
	Verified int         `json:"verified"`
	First    *Checkpoint `json:"first,omitempty"`
	Last     *Checkpoint `json:"last,omitempty"`
}

// Checkpoint is one verified checkpoint of the log.
type Checkpoint struct {
	Size       uint64    `json:"size"`
	RootHash   string    `json:"root_hash"` // base64, as in the checkpoint
	VerifiedAt time.Time `json:"verified_at"`
	Cosigned   bool      `json:"cosigned"` // the monitor added its witness cosignature
}

// Incident is one incident the detection rules raised, in its state at the
// end of the period.
type Incident struct {
	ID        int64     `json:"id"`
	Rule      string    `json:"rule"`
	Severity  string    `json:"severity"` // critical, high, medium, low or info
	Title     string    `json:"title"`
	State     string    `json:"state"` // open, acknowledged, resolved, ...
	StateBy   string    `json:"state_by,omitempty"`
	StateNote string    `json:"state_note,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	StateAt   time.Time `json:"state_at,omitzero"`
	Evidence  []uint64  `json:"evidence"` // indexes of the log entries that raised it
	Count     int       `json:"count"`    // alerts folded into it
}

// ProbeSummary counts the canary probes of the gateway in the period.
type ProbeSummary struct {
	Total           int     `json:"total"`
	Passed          int     `json:"passed"`           // refused and logged
	ControlFailures int     `json:"control_failures"` // forbidden access was allowed
	LogOmissions    int     `json:"log_omissions"`    // refused but not logged
	Errors          int     `json:"errors"`           // the probe could not run
	Recent          []Probe `json:"recent"`
}

// Probe is one canary probe.
type Probe struct {
	Started  time.Time `json:"started"`
	Outcome  string    `json:"outcome"`
	Status   int       `json:"status"`              // the gateway's HTTP status
	LogIndex *uint64   `json:"log_index,omitempty"` // the entry that logged it, if found
}

// ReplaySummary tells how many logged decisions the monitor re-evaluated
// against the logged policy and how many came out differently.
type ReplaySummary struct {
	Checked       uint64   `json:"checked"`
	Disagreements int      `json:"disagreements"`
	Examples      []string `json:"examples"`
}

// severityRank orders severities from the most to the least grave; an
// unknown severity sorts after all of these.
var severityRank = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}

func rankOf(severity string) int {
	if r, ok := severityRank[severity]; ok {
		return r
	}
	return len(severityRank)
}

// validate checks what both renderings need: a named monitor and log, a
// period, and counts that are counts.
func (d *Data) validate() error {
	if d.Monitor == "" {
		return errors.New("report: monitor name is empty")
	}
	if err := validLine("log origin", d.Log); err != nil {
		return err
	}
	if d.From.IsZero() || d.To.IsZero() {
		return errors.New("report: period has no start or no end")
	}
	if !d.From.Before(d.To) {
		return fmt.Errorf("report: period start %s is not before its end %s", d.From.UTC().Format(time.RFC3339), d.To.UTC().Format(time.RFC3339))
	}
	for dim, counts := range d.Counts {
		for key, n := range counts {
			if n < 0 {
				return fmt.Errorf("report: count %q/%q is negative (%d)", dim, key, n)
			}
		}
	}
	return nil
}

// validLine refuses a value that would not fit on one line of a note.
func validLine(what, s string) error {
	if s == "" {
		return fmt.Errorf("report: %s is empty", what)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0 {
		return fmt.Errorf("report: %s %q contains a control character", what, s)
	}
	return nil
}

// normalized returns a copy of d in the one form both renderings write:
// times in UTC without monotonic readings, incidents by ID, their evidence
// ascending, recent probes newest first, and no nil maps or slices. It does
// not modify d.
func (d Data) normalized() Data {
	n := d
	n.From, n.To, n.Generated = utc(d.From), utc(d.To), utc(d.Generated)
	n.Checkpoints.First = normalCheckpoint(d.Checkpoints.First)
	n.Checkpoints.Last = normalCheckpoint(d.Checkpoints.Last)

	n.Counts = make(map[string]map[string]int64, len(d.Counts))
	for dim, counts := range d.Counts {
		c := make(map[string]int64, len(counts))
		for k, v := range counts {
			c[k] = v
		}
		n.Counts[dim] = c
	}

	n.Incidents = make([]Incident, len(d.Incidents))
	for i, inc := range d.Incidents {
		inc.FirstSeen, inc.LastSeen, inc.StateAt = utc(inc.FirstSeen), utc(inc.LastSeen), utc(inc.StateAt)
		inc.Evidence = slices.Clone(inc.Evidence)
		if inc.Evidence == nil {
			inc.Evidence = []uint64{}
		}
		slices.Sort(inc.Evidence)
		n.Incidents[i] = inc
	}
	slices.SortStableFunc(n.Incidents, func(a, b Incident) int { return cmp.Compare(a.ID, b.ID) })

	n.Probes.Recent = make([]Probe, len(d.Probes.Recent))
	for i, p := range d.Probes.Recent {
		p.Started = utc(p.Started)
		if p.LogIndex != nil {
			idx := *p.LogIndex
			p.LogIndex = &idx
		}
		n.Probes.Recent[i] = p
	}
	slices.SortStableFunc(n.Probes.Recent, func(a, b Probe) int { return b.Started.Compare(a.Started) })

	n.Replay.Examples = slices.Clone(d.Replay.Examples)
	if n.Replay.Examples == nil {
		n.Replay.Examples = []string{}
	}
	return n
}

func normalCheckpoint(c *Checkpoint) *Checkpoint {
	if c == nil {
		return nil
	}
	n := *c
	n.VerifiedAt = utc(c.VerifiedAt)
	return &n
}

// utc drops the monotonic reading and the location; the zero time stays
// zero.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Round(0).UTC()
}
