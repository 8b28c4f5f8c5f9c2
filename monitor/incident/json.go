package incident

import (
	"encoding/json"
	"time"
)

// incidentJSON is the JSON shape of an Incident, in the HTTP API and in
// webhook payloads. Times are RFC 3339 in UTC.
type incidentJSON struct {
	ID        int64      `json:"id"`
	Key       string     `json:"key"`
	Rule      string     `json:"rule"`
	Severity  string     `json:"severity"`
	Title     string     `json:"title"`
	Detail    string     `json:"detail"`
	Evidence  []uint64   `json:"evidence"`
	FirstSeen time.Time  `json:"first_seen"`
	LastSeen  time.Time  `json:"last_seen"`
	Count     int        `json:"count"`
	State     string     `json:"state"`
	StateBy   string     `json:"state_by,omitempty"`
	StateNote string     `json:"state_note,omitempty"`
	StateAt   *time.Time `json:"state_at,omitempty"`
	Created   time.Time  `json:"created"`
}

// MarshalJSON encodes the incident in the shape documented in the package
// comment.
func (in Incident) MarshalJSON() ([]byte, error) {
	j := incidentJSON{
		ID: in.ID, Key: in.Key, Rule: in.Rule, Severity: in.Severity, Title: in.Title, Detail: in.Detail,
		Evidence: in.Evidence, FirstSeen: in.FirstSeen.UTC(), LastSeen: in.LastSeen.UTC(), Count: in.Count,
		State: in.State, StateBy: in.StateBy, StateNote: in.StateNote, Created: in.Created.UTC(),
	}
	if j.Evidence == nil {
		j.Evidence = []uint64{}
	}
	if !in.StateAt.IsZero() {
		at := in.StateAt.UTC()
		j.StateAt = &at
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON encodes; a receiver of webhooks can
// decode a Payload with it.
func (in *Incident) UnmarshalJSON(b []byte) error {
	var j incidentJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*in = Incident{
		ID: j.ID, Key: j.Key, Rule: j.Rule, Severity: j.Severity, Title: j.Title, Detail: j.Detail,
		Evidence: j.Evidence, FirstSeen: j.FirstSeen, LastSeen: j.LastSeen, Count: j.Count,
		State: j.State, StateBy: j.StateBy, StateNote: j.StateNote, Created: j.Created,
	}
	if j.StateAt != nil {
		in.StateAt = *j.StateAt
	}
	return nil
}

// Payload is the body of a webhook delivery.
type Payload struct {
	// ID is the incident's ID.
	ID int64 `json:"id"`
	// Delivery is the outbox row's ID, also sent as Clover-Delivery: the
	// same for every retry of one delivery, so receivers can drop repeats.
	Delivery int64 `json:"delivery"`
	// Incident is the incident as it was when raised.
	Incident Incident `json:"incident"`
}

// probeJSON is the JSON shape of a Probe in the HTTP API.
type probeJSON struct {
	ID        string     `json:"id"`
	Started   time.Time  `json:"started"`
	Status    int        `json:"status"`
	LogIndex  *uint64    `json:"log_index"`
	RequestID string     `json:"request_id"`
	Outcome   string     `json:"outcome"`
	Detail    string     `json:"detail"`
	Finished  *time.Time `json:"finished,omitempty"`
}

// MarshalJSON encodes the probe in the shape documented in the package
// comment.
func (p Probe) MarshalJSON() ([]byte, error) {
	j := probeJSON{ID: p.ID, Started: p.Started.UTC(), Status: p.Status, LogIndex: p.LogIndex,
		RequestID: p.RequestID, Outcome: p.Outcome, Detail: p.Detail}
	if !p.Finished.IsZero() {
		f := p.Finished.UTC()
		j.Finished = &f
	}
	return json.Marshal(j)
}
