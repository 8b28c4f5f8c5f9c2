package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Severity grades an incident: the same strings as rules.Severity.
type Severity = string

// Severities, least to most severe.
const (
	Info     Severity = "info"
	Low      Severity = "low"
	Medium   Severity = "medium"
	High     Severity = "high"
	Critical Severity = "critical"
)

// severityRank orders the severities; 0 is not a severity.
func severityRank(s string) int {
	return slices.Index([]string{Info, Low, Medium, High, Critical}, s) + 1
}

// Incident states.
const (
	StateOpen         = "open"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
)

func validState(s string) bool {
	return s == StateOpen || s == StateAcknowledged || s == StateResolved
}

// Probe outcomes.
const (
	ProbePending        = "pending"
	ProbePassed         = "passed"
	ProbeControlFailure = "control_failure"
	ProbeLogOmission    = "log_omission"
	ProbeError          = "error"
)

func validOutcome(s string) bool {
	switch s {
	case ProbePending, ProbePassed, ProbeControlFailure, ProbeLogOmission, ProbeError:
		return true
	}
	return false
}

// Limits on what is stored.
const (
	// MaxEvidence is the most log indexes an incident keeps: the latest ones.
	MaxEvidence = 1000
	// MaxNote is the most characters (runes) of a transition's note.
	MaxNote = 2000
	// DefaultLimit and MaxLimit bound the length of a listing.
	DefaultLimit = 100
	MaxLimit     = 1000

	maxKey    = 1000
	maxName   = 200 // rule, dimension, probe id, state key, operator
	maxTitle  = 500
	maxDetail = 20000
)

// Incident is something the monitor found that people must look at.
type Incident struct {
	ID int64
	// Key deduplicates: while an incident with the same non-empty Key is
	// open or acknowledged, raising another updates it instead of creating
	// one. An empty Key never deduplicates.
	Key      string
	Rule     string // e.g. "bulk_access", "replay", "fork", "probe"
	Severity string
	Title    string // one line for people
	Detail   string
	// Evidence holds log indexes, oldest first, at most MaxEvidence.
	Evidence            []uint64
	FirstSeen, LastSeen time.Time
	// Count is how many times the incident was raised (a raised Incident
	// with Count 0 counts as 1).
	Count     int
	State     string // StateOpen, StateAcknowledged or StateResolved
	StateBy   string
	StateNote string
	StateAt   time.Time
	Created   time.Time
}

// Batch is everything the monitor derived from a chunk of verified log
// entries, applied by Commit in one transaction.
type Batch struct {
	// State holds key/value state (e.g. "follower", "replay", "witness") to
	// upsert.
	State map[string][]byte
	// Incidents are raised in order (ID and the State fields are ignored).
	Incidents []Incident
	// Counts are added to the stored counters.
	Counts []Count
	// Checkpoints are recorded as verified.
	Checkpoints []CheckpointRecord
	// Probes are inserted, or replaced by ID.
	Probes []Probe
}

// Count is a daily counter increment.
type Count struct {
	Day       string // YYYY-MM-DD, UTC
	Dimension string // e.g. "purpose", "form", "country", "site", "kind", "decision"
	Key       string
	N         int64
}

// CheckpointRecord is a log checkpoint the monitor verified.
type CheckpointRecord struct {
	Origin     string
	Size       uint64
	Hash       []byte
	Signed     []byte // the signed note as received
	VerifiedAt time.Time
	Cosigned   bool
}

// Probe is a synthetic request sent through Clover to check that it is
// enforced and logged.
type Probe struct {
	ID        string
	Started   time.Time
	Status    int     // HTTP status Clover answered
	LogIndex  *uint64 // index of the probe's entry, nil until found
	RequestID string
	Outcome   string // ProbePending, ProbePassed, ProbeControlFailure, ProbeLogOmission or ProbeError
	Detail    string
	Finished  time.Time // zero while pending
}

// Filter selects incidents. Zero fields select everything.
type Filter struct {
	State, Severity, Rule string
	// Since selects incidents last seen at or after it.
	Since time.Time
	// Limit is the most incidents returned: DefaultLimit if 0, at most MaxLimit.
	Limit int
	// AfterID continues a listing: only incidents with an ID below it, those
	// that come after it in newest-first order.
	AfterID int64
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrInvalid)...)
}

func checkText(what, s string, maxLen int, oneLine bool) error {
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", what)
	}
	if len(s) > maxLen {
		return invalid("%s is %d bytes long, more than %d", what, len(s), maxLen)
	}
	if oneLine && strings.ContainsAny(s, "\r\n") {
		return invalid("%s spans more than one line", what)
	}
	return nil
}

func (b *Batch) validate() error {
	for k := range b.State {
		if k == "" {
			return invalid("batch: empty state key")
		}
		if err := checkText("batch: state key", k, maxName, true); err != nil {
			return err
		}
	}
	for i, in := range b.Incidents {
		if err := in.validate(); err != nil {
			return fmt.Errorf("batch: incident %d: %w", i, err)
		}
	}
	for i, c := range b.Counts {
		if _, err := time.Parse(time.DateOnly, c.Day); err != nil || len(c.Day) != len(time.DateOnly) {
			return invalid("batch: count %d: day %q is not YYYY-MM-DD", i, c.Day)
		}
		if c.Dimension == "" || c.N < 0 {
			return invalid("batch: count %d: empty dimension or negative n", i)
		}
		if err := errors.Join(checkText("dimension", c.Dimension, maxName, true), checkText("key", c.Key, maxKey, false)); err != nil {
			return fmt.Errorf("batch: count %d: %w", i, err)
		}
	}
	for i, c := range b.Checkpoints {
		switch {
		case c.Origin == "":
			return invalid("batch: checkpoint %d: empty origin", i)
		case c.Size > math.MaxInt64:
			return invalid("batch: checkpoint %d: size %d out of range", i, c.Size)
		case len(c.Hash) == 0 || len(c.Signed) == 0:
			return invalid("batch: checkpoint %d: empty hash or signed note", i)
		case c.VerifiedAt.IsZero():
			return invalid("batch: checkpoint %d: no verification time", i)
		}
	}
	for i, p := range b.Probes {
		switch {
		case p.ID == "":
			return invalid("batch: probe %d: empty id", i)
		case !validOutcome(p.Outcome):
			return invalid("batch: probe %d: unknown outcome %q", i, p.Outcome)
		case p.Started.IsZero():
			return invalid("batch: probe %d: no start time", i)
		case p.LogIndex != nil && *p.LogIndex > math.MaxInt64:
			return invalid("batch: probe %d: log index %d out of range", i, *p.LogIndex)
		}
		if err := errors.Join(checkText("id", p.ID, maxName, true), checkText("request id", p.RequestID, maxName, true),
			checkText("detail", p.Detail, maxDetail, false)); err != nil {
			return fmt.Errorf("batch: probe %d: %w", i, err)
		}
	}
	return nil
}

func (in *Incident) validate() error {
	switch {
	case in.Rule == "":
		return invalid("empty rule")
	case severityRank(in.Severity) == 0:
		return invalid("unknown severity %q", in.Severity)
	case in.Title == "":
		return invalid("empty title")
	case in.Count < 0:
		return invalid("negative count %d", in.Count)
	}
	return errors.Join(
		checkText("key", in.Key, maxKey, false),
		checkText("rule", in.Rule, maxName, true),
		checkText("title", in.Title, maxTitle, true),
		checkText("detail", in.Detail, maxDetail, false),
	)
}

// Commit applies b in one transaction: either all of it is stored or none.
// A batch with an invalid item fails with ErrInvalid and stores nothing.
//
// Each incident is raised in order: if a live (open or acknowledged)
// incident has its Key, that incident is updated — LastSeen and FirstSeen
// widened, Count added, the new evidence appended (the latest MaxEvidence
// kept), Title and Detail replaced, Severity raised if higher; otherwise a
// new open incident is created, and one delivery per webhook target (see
// WithTargets) is put in the outbox in the same transaction. Commit returns
// the incidents it created, as stored when the batch ends.
func (s *Store) Commit(ctx context.Context, b Batch) (created []Incident, err error) {
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("incident: commit: %w", err)
	}
	now := s.now().UTC()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("incident: commit: begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	created, err = s.apply(ctx, tx, &b, now)
	if err != nil {
		return nil, fmt.Errorf("incident: commit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("incident: commit: %w", err)
	}
	return created, nil
}

func (s *Store) apply(ctx context.Context, tx *sql.Tx, b *Batch, now time.Time) ([]Incident, error) {
	keys := make([]string, 0, len(b.State))
	for k := range b.State {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		const q = `INSERT INTO state (key, value, updated) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated`
		if _, err := tx.ExecContext(ctx, q, k, nonNil(b.State[k]), now.UnixMicro()); err != nil {
			return nil, fmt.Errorf("state %q: %w", k, err)
		}
	}
	var ids []int64
	for i := range b.Incidents {
		id, isNew, err := raise(ctx, tx, &b.Incidents[i], now)
		if err != nil {
			return nil, fmt.Errorf("incident %d: %w", i, err)
		}
		if isNew {
			ids = append(ids, id)
		}
	}
	for i, c := range b.Counts {
		const q = `INSERT INTO counts (day, dimension, key, n) VALUES (?, ?, ?, ?)
			ON CONFLICT (day, dimension, key) DO UPDATE SET n = n + excluded.n`
		if _, err := tx.ExecContext(ctx, q, c.Day, c.Dimension, c.Key, c.N); err != nil {
			return nil, fmt.Errorf("count %d: %w", i, err)
		}
	}
	for i, c := range b.Checkpoints {
		const q = `INSERT INTO checkpoints (origin, size, hash, signed, verified_at, cosigned) VALUES (?, ?, ?, ?, ?, ?)`
		if _, err := tx.ExecContext(ctx, q, c.Origin, int64(c.Size), c.Hash, c.Signed, micros(c.VerifiedAt), c.Cosigned); err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", i, err)
		}
	}
	for i, p := range b.Probes {
		const q = `INSERT INTO probes (id, started, status, log_index, request_id, outcome, detail, finished)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET started = excluded.started, status = excluded.status,
				log_index = excluded.log_index, request_id = excluded.request_id, outcome = excluded.outcome,
				detail = excluded.detail, finished = excluded.finished`
		var index sql.NullInt64
		if p.LogIndex != nil {
			index = sql.NullInt64{Int64: int64(*p.LogIndex), Valid: true}
		}
		if _, err := tx.ExecContext(ctx, q, p.ID, micros(p.Started), p.Status, index, p.RequestID, p.Outcome, p.Detail, micros(p.Finished)); err != nil {
			return nil, fmt.Errorf("probe %d: %w", i, err)
		}
	}
	created := make([]Incident, 0, len(ids))
	for _, id := range ids {
		in, err := getIncident(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if err := s.enqueue(ctx, tx, &in, now); err != nil {
			return nil, err
		}
		created = append(created, in)
	}
	return created, nil
}

// raise creates in, or updates the live incident with its key.
func raise(ctx context.Context, tx *sql.Tx, in *Incident, now time.Time) (id int64, isNew bool, err error) {
	count := max(in.Count, 1)
	first, last := in.FirstSeen, in.LastSeen
	if first.IsZero() {
		first = last
	}
	if first.IsZero() {
		first = now
	}
	if last.IsZero() || last.Before(first) {
		last = first
	}
	evidence := appendEvidence(nil, in.Evidence)
	if in.Key != "" {
		old, err := scanIncident(tx.QueryRowContext(ctx,
			`SELECT `+incidentColumns+` FROM incidents WHERE key = ? AND state IN ('open','acknowledged')`, in.Key))
		switch {
		case err == nil:
			return old.ID, false, update(ctx, tx, &old, in, in.Evidence, first, last, count)
		case !errors.Is(err, sql.ErrNoRows):
			return 0, false, fmt.Errorf("find live incident: %w", err)
		}
	}
	ev, err := marshalEvidence(evidence)
	if err != nil {
		return 0, false, err
	}
	const q = `INSERT INTO incidents (key, rule, severity, title, detail, evidence, first_seen, last_seen, count,
		state, state_by, state_note, state_at, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', '', '', 0, ?)`
	res, err := tx.ExecContext(ctx, q, in.Key, in.Rule, in.Severity, in.Title, in.Detail, ev,
		micros(first), micros(last), count, now.UnixMicro())
	if err != nil {
		return 0, false, fmt.Errorf("insert: %w", err)
	}
	id, err = res.LastInsertId()
	if err != nil {
		return 0, false, fmt.Errorf("insert: %w", err)
	}
	return id, true, nil
}

func update(ctx context.Context, tx *sql.Tx, old, in *Incident, evidence []uint64, first, last time.Time, count int) error {
	merged := appendEvidence(old.Evidence, evidence)
	ev, err := marshalEvidence(merged)
	if err != nil {
		return err
	}
	severity := old.Severity
	if severityRank(in.Severity) > severityRank(severity) {
		severity = in.Severity
	}
	const q = `UPDATE incidents SET severity = ?, title = ?, detail = ?, evidence = ?, first_seen = ?,
		last_seen = ?, count = ? WHERE id = ?`
	_, err = tx.ExecContext(ctx, q, severity, in.Title, in.Detail, ev,
		micros(minTime(old.FirstSeen, first)), micros(maxTime(old.LastSeen, last)), old.Count+count, old.ID)
	if err != nil {
		return fmt.Errorf("update incident %d: %w", old.ID, err)
	}
	return nil
}

// appendEvidence appends to old the indexes of add it lacks, and keeps the
// latest MaxEvidence.
func appendEvidence(old, add []uint64) []uint64 {
	have := make(map[uint64]bool, len(old))
	for _, x := range old {
		have[x] = true
	}
	out := slices.Clone(old)
	for _, x := range add {
		if !have[x] {
			have[x] = true
			out = append(out, x)
		}
	}
	if len(out) > MaxEvidence {
		out = out[len(out)-MaxEvidence:]
	}
	return out
}

func marshalEvidence(ev []uint64) (string, error) {
	if ev == nil {
		ev = []uint64{}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("encode evidence: %w", err)
	}
	return string(b), nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

const incidentColumns = `id, key, rule, severity, title, detail, evidence, first_seen, last_seen, count,
	state, state_by, state_note, state_at, created`

type scanner interface{ Scan(dest ...any) error }

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func scanIncident(row scanner) (Incident, error) {
	var in Incident
	var ev string
	var first, last, stateAt, created int64
	err := row.Scan(&in.ID, &in.Key, &in.Rule, &in.Severity, &in.Title, &in.Detail, &ev, &first, &last, &in.Count,
		&in.State, &in.StateBy, &in.StateNote, &stateAt, &created)
	if err != nil {
		return Incident{}, err
	}
	if err := json.Unmarshal([]byte(ev), &in.Evidence); err != nil {
		return Incident{}, fmt.Errorf("incident %d: decode evidence: %w", in.ID, err)
	}
	in.FirstSeen, in.LastSeen = fromMicros(first), fromMicros(last)
	in.StateAt, in.Created = fromMicros(stateAt), fromMicros(created)
	return in, nil
}

func getIncident(ctx context.Context, q queryer, id int64) (Incident, error) {
	in, err := scanIncident(q.QueryRowContext(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Incident{}, fmt.Errorf("incident: id %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("incident: read %d: %w", id, err)
	}
	return in, nil
}

// State returns the value stored under key, and whether there is one.
func (s *Store) State(ctx context.Context, key string) ([]byte, bool, error) {
	var v []byte
	err := s.reader.QueryRowContext(ctx, `SELECT value FROM state WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("incident: read state %q: %w", key, err)
	}
	return nonNil(v), true, nil
}

// Incident returns the incident with the given ID, or ErrNotFound.
func (s *Store) Incident(ctx context.Context, id int64) (Incident, error) {
	return getIncident(ctx, s.reader, id)
}

// Incidents returns the incidents f selects, newest (highest ID) first.
func (s *Store) Incidents(ctx context.Context, f Filter) ([]Incident, error) {
	if f.State != "" && !validState(f.State) {
		return nil, invalid("incident: list: unknown state %q", f.State)
	}
	if f.Severity != "" && severityRank(f.Severity) == 0 {
		return nil, invalid("incident: list: unknown severity %q", f.Severity)
	}
	limit, err := clampLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.State != "" {
		add("state = ?", f.State)
	}
	if f.Severity != "" {
		add("severity = ?", f.Severity)
	}
	if f.Rule != "" {
		add("rule = ?", f.Rule)
	}
	if !f.Since.IsZero() {
		add("last_seen >= ?", f.Since.UnixMicro())
	}
	if f.AfterID > 0 {
		add("id < ?", f.AfterID)
	}
	q := `SELECT ` + incidentColumns + ` FROM incidents`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ?`
	rows, err := s.reader.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("incident: list: %w", err)
	}
	defer rows.Close()
	out := []Incident{}
	for rows.Next() {
		in, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("incident: list: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incident: list: %w", err)
	}
	return out, nil
}

func clampLimit(n int) (int, error) {
	switch {
	case n < 0:
		return 0, invalid("incident: negative limit %d", n)
	case n == 0:
		return DefaultLimit, nil
	}
	return min(n, MaxLimit), nil
}

// Transition moves an incident to state to, recording who (by, required)
// and why (note, at most MaxNote characters). The allowed moves are open to
// acknowledged, and open or acknowledged to resolved; any other fails with
// ErrInvalidTransition. An unknown id fails with ErrNotFound.
func (s *Store) Transition(ctx context.Context, id int64, to, by, note string) (in Incident, err error) {
	if to != StateAcknowledged && to != StateResolved {
		return Incident{}, fmt.Errorf("incident: transition to %q: %w", to, ErrInvalidTransition)
	}
	if by == "" {
		return Incident{}, invalid("incident: transition: no operator")
	}
	if err := checkText("incident: transition: operator", by, maxName, true); err != nil {
		return Incident{}, err
	}
	if err := checkNote(note); err != nil {
		return Incident{}, fmt.Errorf("incident: transition: %w", err)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return Incident{}, fmt.Errorf("incident: transition: begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	in, err = getIncident(ctx, tx, id)
	if err != nil {
		return Incident{}, err
	}
	if in.State != StateOpen && !(in.State == StateAcknowledged && to == StateResolved) {
		return Incident{}, fmt.Errorf("incident: id %d: from %q to %q: %w", id, in.State, to, ErrInvalidTransition)
	}
	const q = `UPDATE incidents SET state = ?, state_by = ?, state_note = ?, state_at = ? WHERE id = ?`
	if _, err := tx.ExecContext(ctx, q, to, by, note, s.now().UTC().UnixMicro(), id); err != nil {
		return Incident{}, fmt.Errorf("incident: transition %d: %w", id, err)
	}
	if in, err = getIncident(ctx, tx, id); err != nil {
		return Incident{}, err
	}
	if err := tx.Commit(); err != nil {
		return Incident{}, fmt.Errorf("incident: transition %d: commit: %w", id, err)
	}
	return in, nil
}

func checkNote(note string) error {
	if !utf8.ValidString(note) {
		return invalid("note is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(note); n > MaxNote {
		return invalid("note is %d characters long, more than %d", n, MaxNote)
	}
	return nil
}

const probeColumns = `id, started, status, log_index, request_id, outcome, detail, finished`

func scanProbes(rows *sql.Rows) ([]Probe, error) {
	defer rows.Close()
	out := []Probe{}
	for rows.Next() {
		var p Probe
		var started, finished int64
		var index sql.NullInt64
		if err := rows.Scan(&p.ID, &started, &p.Status, &index, &p.RequestID, &p.Outcome, &p.Detail, &finished); err != nil {
			return nil, err
		}
		p.Started, p.Finished = fromMicros(started), fromMicros(finished)
		if index.Valid {
			v := uint64(index.Int64)
			p.LogIndex = &v
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Probes returns the latest probes, most recently started first; limit is
// DefaultLimit if 0, at most MaxLimit.
func (s *Store) Probes(ctx context.Context, limit int) ([]Probe, error) {
	limit, err := clampLimit(limit)
	if err != nil {
		return nil, err
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT `+probeColumns+` FROM probes ORDER BY started DESC, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("incident: probes: %w", err)
	}
	ps, err := scanProbes(rows)
	if err != nil {
		return nil, fmt.Errorf("incident: probes: %w", err)
	}
	return ps, nil
}

// PendingProbes returns every probe whose outcome is still pending, oldest
// first.
func (s *Store) PendingProbes(ctx context.Context) ([]Probe, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+probeColumns+` FROM probes WHERE outcome = 'pending' ORDER BY started, id`)
	if err != nil {
		return nil, fmt.Errorf("incident: pending probes: %w", err)
	}
	ps, err := scanProbes(rows)
	if err != nil {
		return nil, fmt.Errorf("incident: pending probes: %w", err)
	}
	return ps, nil
}

// Counts returns the counters of the days from fromDay to toDay inclusive
// (YYYY-MM-DD), ordered by day, dimension and key.
func (s *Store) Counts(ctx context.Context, fromDay, toDay string) ([]Count, error) {
	for _, d := range []string{fromDay, toDay} {
		if _, err := time.Parse(time.DateOnly, d); err != nil || len(d) != len(time.DateOnly) {
			return nil, invalid("incident: counts: day %q is not YYYY-MM-DD", d)
		}
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT day, dimension, key, n FROM counts WHERE day >= ? AND day <= ?
		ORDER BY day, dimension, key`, fromDay, toDay)
	if err != nil {
		return nil, fmt.Errorf("incident: counts: %w", err)
	}
	defer rows.Close()
	out := []Count{}
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Day, &c.Dimension, &c.Key, &c.N); err != nil {
			return nil, fmt.Errorf("incident: counts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incident: counts: %w", err)
	}
	return out, nil
}

// Checkpoints returns how many checkpoint verifications were recorded with
// VerifiedAt in [from, to), and the first and last of them (nil if none).
func (s *Store) Checkpoints(ctx context.Context, from, to time.Time) (n int, first, last *CheckpointRecord, err error) {
	lo, hi := from.UnixMicro(), to.UnixMicro()
	err = s.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM checkpoints WHERE verified_at >= ? AND verified_at < ?`, lo, hi).Scan(&n)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("incident: checkpoints: %w", err)
	}
	if n == 0 {
		return 0, nil, nil, nil
	}
	one := func(order string) (*CheckpointRecord, error) {
		var c CheckpointRecord
		var size, at int64
		q := `SELECT origin, size, hash, signed, verified_at, cosigned FROM checkpoints
			WHERE verified_at >= ? AND verified_at < ? ORDER BY verified_at ` + order + `, id ` + order + ` LIMIT 1`
		if err := s.reader.QueryRowContext(ctx, q, lo, hi).Scan(&c.Origin, &size, &c.Hash, &c.Signed, &at, &c.Cosigned); err != nil {
			return nil, err
		}
		c.Size, c.VerifiedAt = uint64(size), fromMicros(at)
		return &c, nil
	}
	if first, err = one("ASC"); err != nil {
		return 0, nil, nil, fmt.Errorf("incident: checkpoints: %w", err)
	}
	if last, err = one("DESC"); err != nil {
		return 0, nil, nil, fmt.Errorf("incident: checkpoints: %w", err)
	}
	return n, first, last, nil
}
