package monitor

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/cloverenclave/clover/monitor/incident"
	"github.com/cloverenclave/clover/monitor/report"
	"github.com/cloverenclave/clover/monitor/witness"
)

// maxReportItems bounds the incidents and probes a report lists.
const maxReportItems = 1000

// ReportData gathers what the monitor's database holds about the period
// [from, to) into a report. Counters are kept per UTC day, so from and to
// are whole days.
func ReportData(ctx context.Context, st *incident.Store, key *witness.Key, from, to, now time.Time) (report.Data, error) {
	if !from.Before(to) {
		return report.Data{}, fmt.Errorf("the period is empty: from %s is not before to %s", from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	d := report.Data{Monitor: key.Name(), MonitorKey: key.NoteVerifierKey(), From: from.UTC(), To: to.UTC(), Generated: now.UTC(),
		Counts: map[string]map[string]int64{}}
	n, first, last, err := st.Checkpoints(ctx, from, to)
	if err != nil {
		return d, err
	}
	d.Checkpoints.Verified = n
	conv := func(c *incident.CheckpointRecord) *report.Checkpoint {
		if c == nil {
			return nil
		}
		if d.Log == "" {
			d.Log = c.Origin
		}
		return &report.Checkpoint{Size: c.Size, RootHash: base64.StdEncoding.EncodeToString(c.Hash), VerifiedAt: c.VerifiedAt.UTC(), Cosigned: c.Cosigned}
	}
	d.Checkpoints.Last, d.Checkpoints.First = conv(last), conv(first)
	counts, err := st.Counts(ctx, from.UTC().Format(time.DateOnly), to.UTC().Add(-time.Nanosecond).Format(time.DateOnly))
	if err != nil {
		return d, err
	}
	for _, c := range counts {
		if d.Counts[c.Dimension] == nil {
			d.Counts[c.Dimension] = map[string]int64{}
		}
		d.Counts[c.Dimension][c.Key] += c.N
		if c.Dimension == "kind" {
			d.Entries += uint64(c.N)
		}
	}
	d.Replay.Checked = d.Entries
	// Incidents that were alive in the period, in their present state.
	var after int64
	for len(d.Incidents) < maxReportItems {
		page, err := st.Incidents(ctx, incident.Filter{Limit: 1000, AfterID: after})
		if err != nil {
			return d, err
		}
		for _, in := range page {
			if in.FirstSeen.Before(to) && !in.LastSeen.Before(from) && len(d.Incidents) < maxReportItems {
				d.Incidents = append(d.Incidents, report.Incident{ID: in.ID, Rule: in.Rule, Severity: in.Severity, Title: in.Title,
					State: in.State, StateBy: in.StateBy, StateNote: in.StateNote, FirstSeen: in.FirstSeen.UTC(), LastSeen: in.LastSeen.UTC(),
					StateAt: in.StateAt.UTC(), Evidence: in.Evidence, Count: in.Count})
				if in.Rule == RuleReplay {
					d.Replay.Disagreements++
					if len(d.Replay.Examples) < 10 {
						d.Replay.Examples = append(d.Replay.Examples, in.Title)
					}
				}
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	probes, err := st.Probes(ctx, incident.MaxLimit)
	if err != nil {
		return d, err
	}
	for _, p := range probes {
		if p.Started.Before(from) || !p.Started.Before(to) {
			continue
		}
		d.Probes.Total++
		switch p.Outcome {
		case ProbePassed:
			d.Probes.Passed++
		case ProbeControlFailure:
			d.Probes.ControlFailures++
		case ProbeLogOmission:
			d.Probes.LogOmissions++
		case ProbeError:
			d.Probes.Errors++
		}
		if len(d.Probes.Recent) < 20 {
			d.Probes.Recent = append(d.Probes.Recent, report.Probe{Started: p.Started.UTC(), Outcome: p.Outcome, Status: p.Status, LogIndex: p.LogIndex})
		}
	}
	return d, nil
}
