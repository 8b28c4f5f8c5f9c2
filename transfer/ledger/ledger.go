// Package ledger keeps the enclave's transfer ledger: one row per transfer
// out of the enclave, from the moment its daily quota is reserved until its
// stream ends, and the per-destination daily row quota counted from those
// rows, so that the quota survives a restart.
//
// The audit log is the record of every transfer: the entry that decides it
// and the entry that ends it (rows, bytes, SHA-256 of the exact bytes). Each
// ledger row names both entries by their log index, so every listed item can
// be proven against the signed log (an inclusion proof, or "clover transfer
// verify" on the file a destination received). Unlike the subject access
// index, the ledger is not best effort: the quota is checked against it
// before anything is sent, so it is written synchronously, in WAL mode with
// synchronous=FULL, one transaction when a transfer is reserved, one when it
// is decided and one when it ends. Transfers are rare; that is cheap.
//
// # Quota
//
// Reserve counts, in one write transaction (BEGIN IMMEDIATE, so two
// reservations are serialised), the rows of the destination's transfers
// started on the same UTC day, and refuses with a *QuotaError if the new
// transfer's planned rows would take the total above the quota; otherwise it
// inserts the reservation. A transfer counts its planned rows until Settle
// replaces them with the rows actually sent. A reservation that never
// settles, because the process stopped mid-transfer, keeps counting its
// planned rows for its day: the ledger fails closed, and cannot tell how much
// of an interrupted stream left. A transfer counts on the day it started.
//
// # Personal data
//
// The ledger holds none: destinations, legal bases, field names and forms,
// counts and digests, and the requester's roles and country, never the
// requester's identity (the log entry, named by its index, has it, for an
// auditor allowed to read the log).
package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/cloverenclave/clover/internal/sqlitedb"
	"github.com/cloverenclave/clover/transfer"
	_ "modernc.org/sqlite" // registers the "sqlite" driver OpenMemory uses
)

// maxConns caps the connections: readers, and the one writer at a time.
const maxConns = 4

// dayLayout names a UTC day.
const dayLayout = time.DateOnly

// Errors that callers branch on.
var (
	// ErrInvalid is returned for a transfer or an end that cannot be stored.
	ErrInvalid = errors.New("ledger: invalid transfer")
	// ErrNotFound is returned for an ID the ledger does not hold.
	ErrNotFound = errors.New("ledger: no such transfer")
	// ErrState is returned for a step out of order: Begin on a transfer
	// already decided, Settle or Cancel on one already ended.
	ErrState = errors.New("ledger: transfer is not in a state that allows this")
)

// QuotaError says a transfer would take a destination over its daily quota.
// Nothing was reserved.
type QuotaError struct {
	Destination string
	// Day is the UTC day, YYYY-MM-DD.
	Day   string
	Quota int
	// Counted is what the day already holds: rows sent, and rows planned by
	// transfers not (or never) ended.
	Counted int
	// Rows is what the refused transfer planned to send.
	Rows int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("destination %s: %d rows would exceed the daily quota of %d (%d already sent or in progress on %s UTC)",
		e.Destination, e.Rows, e.Quota, e.Counted, e.Day)
}

// State is where a transfer stands.
type State string

// The states of a transfer. A reservation whose decision is not yet
// recorded is not listed.
const (
	// InProgress: decided, streaming, or stopped without an end (a crash).
	InProgress State = "in_progress"
	// Complete: the stream ended with every row sent.
	Complete State = "complete"
	// Incomplete: the stream ended early (the client went away); Rows,
	// Bytes and SHA256 are of what was sent.
	Incomplete State = "incomplete"
	// reserved: the quota is reserved, the decision not yet recorded.
	reserved State = "reserved"
)

// ID names a transfer in the ledger from its reservation on.
type ID int64

// Start describes a transfer when it is reserved.
type Start struct {
	// Time is when the transfer was decided; its UTC day is the quota's.
	Time        time.Time
	Destination string
	// Country and LegalBasis are the destination's.
	Country    string
	LegalBasis string
	// Format is ndjson or csv.
	Format string
	// RequesterRoles and RequesterCountry describe who asked, without
	// naming them.
	RequesterRoles   []string
	RequesterCountry string
	// Fields are the fields sent and the form of each.
	Fields []transfer.FieldForm
	// Rows is the number of rows planned (counted against the quota until
	// the transfer ends); Suppressed the records left out for k-anonymity.
	Rows       int
	Suppressed int
}

// End is what a transfer sent.
type End struct {
	// Index is the log index of the entry that ends the transfer; nil if
	// that entry could not be recorded.
	Index    *uint64
	Time     time.Time
	Rows     int
	Bytes    int64
	SHA256   string
	Complete bool
}

// Transfer is one row of the ledger.
type Transfer struct {
	ID ID
	Start
	// Decided is the log index of the entry that decided the transfer.
	Decided uint64
	State   State
	// End is nil while the transfer is in progress.
	End *End
}

// Filter selects the transfers List returns.
type Filter struct {
	// Destination, if set, selects one destination.
	Destination string
	// Since (inclusive) and Until (exclusive), if set, bound the start time.
	Since, Until time.Time
	// Limit caps the transfers returned; 0 or less returns none.
	Limit int
	// AfterIndex, if not 0, continues a listing after the transfer decided
	// at that log index: only transfers decided earlier are returned.
	AfterIndex uint64
}

// Ledger is an open ledger. Its methods are safe for concurrent use, also
// by several processes on the same file.
type Ledger struct {
	path string
	db   *sql.DB
}

// schema is the ledger's table. Times are unix microseconds, UTC; roles
// and fields are JSON arrays; counted is the rows the transfer counts
// against its day's quota (planned, then sent).
const schema = `CREATE TABLE IF NOT EXISTS transfers (
	id                INTEGER PRIMARY KEY,
	day               TEXT    NOT NULL,
	destination       TEXT    NOT NULL,
	country           TEXT    NOT NULL,
	legal_basis       TEXT    NOT NULL,
	format            TEXT    NOT NULL,
	requester_roles   TEXT    NOT NULL,
	requester_country TEXT    NOT NULL,
	fields            TEXT    NOT NULL,
	started           INTEGER NOT NULL,
	planned           INTEGER NOT NULL CHECK (planned >= 0),
	suppressed        INTEGER NOT NULL CHECK (suppressed >= 0),
	counted           INTEGER NOT NULL CHECK (counted >= 0),
	state             TEXT    NOT NULL CHECK (state IN ('reserved', 'in_progress', 'complete', 'incomplete')),
	decided_index     INTEGER,
	ended_index       INTEGER,
	ended             INTEGER,
	rows              INTEGER,
	bytes             INTEGER,
	sha256            TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS transfers_by_day ON transfers (destination, day);
CREATE UNIQUE INDEX IF NOT EXISTS transfers_by_decided ON transfers (decided_index) WHERE decided_index IS NOT NULL;
CREATE INDEX IF NOT EXISTS transfers_by_destination ON transfers (destination, decided_index) WHERE decided_index IS NOT NULL`

// Open opens the ledger at path, creating it (mode 0600, and its directory
// mode 0700) if needed.
func Open(path string) (*Ledger, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	// synchronous=FULL: a committed reservation survives a power failure.
	db, err := sqlitedb.OpenPool(path, maxConns, sqlitedb.Options{Synchronous: sqlitedb.Full})
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return initialise(path, db)
}

// OpenMemory opens a ledger that lives in memory and is lost when it is
// closed: for tests, and for a gateway built without a ledger file (whose
// quotas then restart from zero with the process).
func OpenMemory() (*Ledger, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqlitedb.BusyTimeout.Milliseconds()))
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file::memory:?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("ledger: open in memory: %w", err)
	}
	// Every connection to ":memory:" is a database of its own: keep one,
	// for ever.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return initialise(":memory:", db)
}

func initialise(path string, db *sql.DB) (*Ledger, error) {
	if _, err := db.Exec(schema); err != nil {
		return nil, errors.Join(fmt.Errorf("ledger: create schema in %s: %w", path, err), db.Close())
	}
	return &Ledger{path: path, db: db}, nil
}

// Close closes the ledger.
func (l *Ledger) Close() error {
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("ledger: close %s: %w", l.path, err)
	}
	return nil
}

// Day is the quota day of t: its UTC date, YYYY-MM-DD.
func Day(t time.Time) string { return t.UTC().Format(dayLayout) }

// Reserve records a transfer about to be decided and reserves its planned
// rows against the destination's quota for the UTC day of s.Time, in one
// transaction: if the rows already counted that day plus s.Rows exceed
// quota, it reserves nothing and returns a *QuotaError. Follow it with
// Begin once the decision is recorded, or Cancel if it is not.
func (l *Ledger) Reserve(ctx context.Context, s Start, quota int) (_ ID, err error) {
	roles, fields, err := checkStart(s)
	if err != nil {
		return 0, err
	}
	if quota < 1 {
		return 0, fmt.Errorf("%w: quota %d is less than 1 row", ErrInvalid, quota)
	}
	day := Day(s.Time)
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("ledger: begin: %w", err)
	}
	defer rollback(tx, &err)
	var counted int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(counted), 0) FROM transfers WHERE destination = ? AND day = ?`,
		s.Destination, day).Scan(&counted); err != nil {
		return 0, fmt.Errorf("ledger: count %s on %s: %w", s.Destination, day, err)
	}
	if counted+int64(s.Rows) > int64(quota) {
		return 0, &QuotaError{Destination: s.Destination, Day: day, Quota: quota, Counted: int(counted), Rows: s.Rows}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO transfers
		(day, destination, country, legal_basis, format, requester_roles, requester_country, fields, started, planned, suppressed, counted, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		day, s.Destination, s.Country, s.LegalBasis, s.Format, roles, s.RequesterCountry, fields,
		s.Time.UTC().UnixMicro(), s.Rows, s.Suppressed, s.Rows, string(reserved))
	if err != nil {
		return 0, fmt.Errorf("ledger: reserve: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("ledger: reserve: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("ledger: commit reservation: %w", err)
	}
	return ID(id), nil
}

// checkStart validates s and encodes its lists.
func checkStart(s Start) (roles, fields string, err error) {
	switch {
	case s.Destination == "":
		return "", "", fmt.Errorf("%w: no destination", ErrInvalid)
	case s.Time.IsZero():
		return "", "", fmt.Errorf("%w: no start time", ErrInvalid)
	case s.Rows < 0 || s.Suppressed < 0:
		return "", "", fmt.Errorf("%w: negative rows (%d planned, %d suppressed)", ErrInvalid, s.Rows, s.Suppressed)
	}
	r, err := json.Marshal(nonNil(s.RequesterRoles))
	if err != nil {
		return "", "", fmt.Errorf("%w: roles: %v", ErrInvalid, err)
	}
	f, err := json.Marshal(nonNil(s.Fields))
	if err != nil {
		return "", "", fmt.Errorf("%w: fields: %v", ErrInvalid, err)
	}
	return string(r), string(f), nil
}

// Begin records the log index of the entry that decided transfer id.
func (l *Ledger) Begin(ctx context.Context, id ID, decided uint64) error {
	if decided > math.MaxInt64 {
		return fmt.Errorf("%w: log index %d out of range", ErrInvalid, decided)
	}
	return l.update(ctx, id, "begin", []State{reserved},
		`UPDATE transfers SET state = ?, decided_index = ? WHERE id = ? AND state = ?`,
		string(InProgress), int64(decided), int64(id), string(reserved))
}

// Cancel deletes a reservation whose decision could not be recorded:
// nothing was sent, and its rows count no more.
func (l *Ledger) Cancel(ctx context.Context, id ID) error {
	return l.update(ctx, id, "cancel", []State{reserved},
		`DELETE FROM transfers WHERE id = ? AND state = ?`, int64(id), string(reserved))
}

// Settle records the end of transfer id: its rows sent replace its planned
// rows in the quota, and its state becomes complete or incomplete.
func (l *Ledger) Settle(ctx context.Context, id ID, e End) error {
	switch {
	case e.Rows < 0 || e.Bytes < 0:
		return fmt.Errorf("%w: negative end (%d rows, %d bytes)", ErrInvalid, e.Rows, e.Bytes)
	case e.Time.IsZero():
		return fmt.Errorf("%w: no end time", ErrInvalid)
	case e.Index != nil && *e.Index > math.MaxInt64:
		return fmt.Errorf("%w: log index %d out of range", ErrInvalid, *e.Index)
	}
	state := Incomplete
	if e.Complete {
		state = Complete
	}
	var ended any
	if e.Index != nil {
		ended = int64(*e.Index)
	}
	return l.update(ctx, id, "settle", []State{reserved, InProgress},
		`UPDATE transfers SET state = ?, ended_index = ?, ended = ?, rows = ?, counted = ?, bytes = ?, sha256 = ?
		WHERE id = ? AND state IN (?, ?)`,
		string(state), ended, e.Time.UTC().UnixMicro(), e.Rows, e.Rows, e.Bytes, e.SHA256,
		int64(id), string(reserved), string(InProgress))
}

// update runs a statement that must change transfer id, which must be in
// one of the states from; it tells a missing transfer from one in another
// state.
func (l *Ledger) update(ctx context.Context, id ID, what string, from []State, query string, args ...any) (err error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger: begin: %w", err)
	}
	defer rollback(tx, &err)
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("ledger: %s transfer %d: %w", what, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("ledger: %s transfer %d: %w", what, id, err)
	}
	if n == 0 {
		var state string
		switch err := tx.QueryRowContext(ctx, `SELECT state FROM transfers WHERE id = ?`, int64(id)).Scan(&state); {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: %s transfer %d", ErrNotFound, what, id)
		case err != nil:
			return fmt.Errorf("ledger: %s transfer %d: %w", what, id, err)
		}
		return fmt.Errorf("%w: %s transfer %d: it is %s, not %v", ErrState, what, id, state, from)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ledger: commit %s: %w", what, err)
	}
	return nil
}

func rollback(tx *sql.Tx, err *error) {
	if *err == nil {
		return
	}
	if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
		*err = errors.Join(*err, fmt.Errorf("ledger: rollback: %w", rerr))
	}
}

// Counted returns the rows counted against dest's quota on the UTC day of
// t: rows sent, and rows planned by transfers not (or never) ended.
func (l *Ledger) Counted(ctx context.Context, dest string, t time.Time) (int, error) {
	var n int64
	if err := l.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(counted), 0) FROM transfers WHERE destination = ? AND day = ?`,
		dest, Day(t)).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger: count %s on %s: %w", dest, Day(t), err)
	}
	return int(n), nil
}

// List returns the decided transfers that f selects, newest (highest
// decided log index) first.
func (l *Ledger) List(ctx context.Context, f Filter) ([]Transfer, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	query := `SELECT id, destination, country, legal_basis, format, requester_roles, requester_country, fields,
		started, planned, suppressed, state, decided_index, ended_index, ended, rows, bytes, sha256
		FROM transfers WHERE decided_index IS NOT NULL`
	var args []any
	if f.Destination != "" {
		query += ` AND destination = ?`
		args = append(args, f.Destination)
	}
	if !f.Since.IsZero() {
		query += ` AND started >= ?`
		args = append(args, f.Since.UTC().UnixMicro())
	}
	if !f.Until.IsZero() {
		query += ` AND started < ?`
		args = append(args, f.Until.UTC().UnixMicro())
	}
	if f.AfterIndex != 0 {
		query += ` AND decided_index < ?`
		args = append(args, int64(min(f.AfterIndex, math.MaxInt64)))
	}
	query += ` ORDER BY decided_index DESC LIMIT ?`
	args = append(args, f.Limit)
	rows, err := l.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: list: %w", err)
	}
	defer rows.Close()
	var out []Transfer
	for rows.Next() {
		t, err := scanTransfer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: list: %w", err)
	}
	return out, nil
}

func scanTransfer(rows *sql.Rows) (Transfer, error) {
	var (
		t                       Transfer
		id, started, decided    int64
		roles, fields, state    string
		endedIndex, ended, sent sql.NullInt64
		bytes                   sql.NullInt64
		sha                     sql.NullString
	)
	if err := rows.Scan(&id, &t.Destination, &t.Country, &t.LegalBasis, &t.Format, &roles, &t.RequesterCountry, &fields,
		&started, &t.Rows, &t.Suppressed, &state, &decided, &endedIndex, &ended, &sent, &bytes, &sha); err != nil {
		return Transfer{}, fmt.Errorf("ledger: list: %w", err)
	}
	t.ID, t.Time, t.Decided, t.State = ID(id), time.UnixMicro(started).UTC(), uint64(decided), State(state)
	if err := json.Unmarshal([]byte(roles), &t.RequesterRoles); err != nil {
		return Transfer{}, fmt.Errorf("ledger: transfer %d: roles: %w", id, err)
	}
	if err := json.Unmarshal([]byte(fields), &t.Fields); err != nil {
		return Transfer{}, fmt.Errorf("ledger: transfer %d: fields: %w", id, err)
	}
	if ended.Valid {
		e := &End{Time: time.UnixMicro(ended.Int64).UTC(), Rows: int(sent.Int64), Bytes: bytes.Int64, SHA256: sha.String, Complete: t.State == Complete}
		if endedIndex.Valid {
			idx := uint64(endedIndex.Int64)
			e.Index = &idx
		}
		t.End = e
	}
	return t, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
