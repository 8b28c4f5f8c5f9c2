package monitor

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/monitor/follow"
	"github.com/cloverenclave/clover/monitor/incident"
	"github.com/cloverenclave/clover/monitor/replay"
	"github.com/cloverenclave/clover/monitor/rules"
)

// countKey is one counter of the report: a day, a dimension and a key.
type countKey struct{ day, dim, key string }

// process handles one verified chunk of entries: replay, rules, probes and
// counters, then stores all of it with the follower's new state in one
// transaction, so that a crash neither loses nor repeats an incident.
// polled is when the poll that found the chunk began: the detection
// latency is measured from it.
func (m *Monitor) process(ctx context.Context, ch follow.Chunk, polled time.Time) error {
	var b incident.Batch
	counts := map[countKey]int64{}
	add := func(day, dim, key string, n int64) {
		if key != "" {
			counts[countKey{day, dim, key}] += n
		}
	}
	for i, raw := range ch.Entries {
		idx := ch.Start + uint64(i)
		e, err := auditlog.Decode(raw)
		if err != nil {
			// The log verifies, so the enclave signed this: an entry the
			// format does not allow is the gateway's fault.
			b.Incidents = append(b.Incidents, incident.Incident{Key: "entry:" + strconv.FormatUint(idx, 10), Rule: RuleLog,
				Severity: string(rules.High), Title: fmt.Sprintf("log entry %d is not a valid audit entry", idx),
				Detail: err.Error(), Evidence: []uint64{idx}})
			continue
		}
		day := e.Time.UTC().Format(time.DateOnly)
		add(day, "kind", string(e.Kind), 1)
		if e.Kind == auditlog.KindDecision {
			add(day, "decision", string(e.Decision), 1)
			add(day, "purpose", e.Purpose, 1)
			add(day, "site", e.Site, 1)
			if e.Actor != nil {
				add(day, "country", e.Actor.Country, 1)
			}
			for _, f := range e.Fields {
				add(day, "form", f.Form, 1)
			}
		}
		if t := e.Transfer; e.Kind == auditlog.KindTransfer && t != nil && t.Decided != nil {
			add(day, "transfer_destination", t.Destination, 1)
			add(day, "transfer_basis", t.LegalBasis, 1)
			add(day, "transfer_rows", t.Destination, int64(t.Rows))
		}
		for _, d := range m.replay.Observe(idx, e) {
			m.metrics.disagreements.Inc()
			b.Incidents = append(b.Incidents, replayIncident(d))
		}
		if m.canarySub != "" && e.Actor != nil && e.Actor.Sub == m.canarySub {
			// The canary's own reads are the probes' business, not the
			// rules': they are denials by design.
			if p := m.matchProbe(idx, e); p != nil {
				m.metrics.probes.WithLabelValues(p.Outcome).Inc()
				b.Probes = append(b.Probes, *p)
				if in := probeIncident(*p); in != nil {
					b.Incidents = append(b.Incidents, *in)
				}
			}
			continue
		}
		for _, a := range m.rules.Observe(idx, e) {
			b.Incidents = append(b.Incidents, alertIncident(a))
		}
	}
	for k, n := range counts {
		b.Counts = append(b.Counts, incident.Count{Day: k.day, Dimension: k.dim, Key: k.key, N: n})
	}
	st, err := ch.State.MarshalBinary()
	if err != nil {
		return err
	}
	b.State = map[string][]byte{stateFollower: st}
	if idx, pe, ok := m.replay.Snapshot(); ok {
		b.State[stateReplay] = append(binary.BigEndian.AppendUint64(nil, idx), pe...)
	}
	end := ch.Start + uint64(len(ch.Entries))
	if end == ch.Checkpoint.Size {
		cosigned := m.cosigned(ch.Checkpoint.Signed)
		b.Checkpoints = append(b.Checkpoints, incident.CheckpointRecord{Origin: ch.Checkpoint.Origin, Size: ch.Checkpoint.Size,
			Hash: ch.Checkpoint.Hash[:], Signed: ch.Checkpoint.Signed, VerifiedAt: m.now(), Cosigned: cosigned})
		if m.cfg.Log.RequireCosignature && !cosigned {
			b.Incidents = append(b.Incidents, incident.Incident{Key: "unwitnessed:" + strconv.FormatUint(ch.Checkpoint.Size, 10),
				Rule: RuleUnwitness, Severity: string(rules.High),
				Title:  fmt.Sprintf("checkpoint of size %d was published without this monitor's cosignature", ch.Checkpoint.Size),
				Detail: checkpointText(ch.Checkpoint.Signed)})
		}
	}
	created, err := m.store.Commit(ctx, b)
	if err != nil {
		return fmt.Errorf("monitor database: %w", err)
	}
	m.created(created)
	m.metrics.entries.Add(float64(len(ch.Entries)))
	m.metrics.size.Set(float64(end))
	if len(created) > 0 {
		m.metrics.detect.Observe(m.now().Sub(polled).Seconds())
	}
	if end == ch.Checkpoint.Size {
		m.metrics.checkpoints.Inc()
		m.status.Checkpoint = string(ch.Checkpoint.Signed)
	}
	m.status.Size, m.status.EntriesSeen = end, end
	return nil
}

func replayIncident(d replay.Disagreement) incident.Incident {
	title := fmt.Sprintf("log entry %d: %s", d.Index, d.Message)
	if d.Kind == "form" {
		title = fmt.Sprintf("log entry %d released field %s as %s where policy allowed at most %s", d.Index, d.Field, d.Released, d.Allowed)
	}
	return incident.Incident{Key: "replay:" + strconv.FormatUint(d.Index, 10) + ":" + d.Kind + ":" + d.Field, Rule: RuleReplay,
		Severity: string(rules.Critical), Title: title, Detail: "replay disagreement (" + d.Kind + "): " + d.Message,
		Evidence: []uint64{d.Index}}
}

func alertIncident(a rules.Alert) incident.Incident {
	// Window rules suppress repeats themselves: every alert is new.
	key := a.Rule + ":" + a.Actor + ":" + a.LastSeen.UTC().Format(time.RFC3339Nano)
	if n := len(a.Indexes); n > 0 {
		key = a.Rule + ":" + a.Actor + ":" + strconv.FormatUint(a.Indexes[n-1], 10)
	}
	title := a.Message
	if i := strings.IndexByte(title, '\n'); i >= 0 {
		title = title[:i]
	}
	return incident.Incident{Key: key, Rule: a.Rule, Severity: string(a.Severity), Title: title, Detail: a.Message,
		Evidence: a.Indexes, FirstSeen: a.FirstSeen, LastSeen: a.LastSeen}
}
