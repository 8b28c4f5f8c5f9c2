// Package subjectindex indexes the audit log's access entries by subject
// pseudonym, so that a data subject (or a data-protection officer) can list
// every access to the subject's data without a scan of the whole log.
//
// The index is derived data. The audit log is the record: every item here
// is a summary of a log entry, named by the entry's index, and can be
// checked against the log with an inclusion proof. The index may lag the
// log (it is filled asynchronously, best effort) and may lack items (the
// gateway drops items rather than slow requests when it falls behind); it
// can be rebuilt from the log at any time by adding every entry again (Add
// is idempotent per log index). That is why the file is written with
// synchronous=NORMAL rather than FULL: in WAL mode NORMAL never corrupts the
// database, and the last transactions it may lose after a power failure are
// recoverable from the log.
//
// The index never stores the accessor's identity (the actor's sub or team):
// only the roles, country and type of the caller, what was decided and
// released, and why.
package subjectindex

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

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeout is how long a connection waits for another's lock.
const busyTimeout = 10 * time.Second

// maxConns caps the connections: readers, and the one writer at a time.
const maxConns = 4

// ErrInvalidItem is returned by Add for an item that cannot be stored.
var ErrInvalidItem = errors.New("subjectindex: invalid item")

// Field is the form in which one requested field was released.
type Field struct {
	Name string `json:"name"`
	// Form is raw, pseudonym, generalised, masked or withheld.
	Form string `json:"form"`
}

// Item summarises one access entry of the audit log.
type Item struct {
	// Index is the entry's index in the log.
	Index uint64
	// Subject is the subject's pseudonym, as in the entry.
	Subject string
	Time    time.Time
	// Kind is the entry's kind: decision (a read), write or erase.
	Kind string
	// Decision is allow or deny.
	Decision string
	// ActorType is the caller's policy entity type (Employee or Service).
	ActorType string
	// Roles and Country describe the caller; the caller's name is not kept.
	Roles   []string
	Country string
	Purpose string
	Fields  []Field
	// Status is the HTTP status of the response; 0 when the entry has none.
	Status int
}

// Index is an open index file. Its methods are safe for concurrent use.
type Index struct {
	path string
	db   *sql.DB
}

// schema is the index's table. time is unix microseconds, UTC; roles and
// fields are JSON arrays.
const schema = `CREATE TABLE IF NOT EXISTS accesses (
	log_index  INTEGER NOT NULL PRIMARY KEY,
	subject    TEXT    NOT NULL,
	time       INTEGER NOT NULL,
	kind       TEXT    NOT NULL,
	decision   TEXT    NOT NULL,
	actor_type TEXT    NOT NULL,
	roles      TEXT    NOT NULL,
	country    TEXT    NOT NULL,
	purpose    TEXT    NOT NULL,
	fields     TEXT    NOT NULL,
	status     INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS accesses_by_subject ON accesses (subject, log_index)`

// Open opens the index at path, creating it (mode 0600, and its directory
// mode 0700) if needed.
func Open(path string) (*Index, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("subjectindex: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("subjectindex: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("subjectindex: create %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("subjectindex: chmod %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("subjectindex: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if _, err := db.Exec(schema); err != nil {
		return nil, errors.Join(fmt.Errorf("subjectindex: create schema in %s: %w", path, err), db.Close())
	}
	return &Index{path: path, db: db}, nil
}

// dsn is the URI of a connection: WAL, synchronous=NORMAL (see the package
// comment), and write transactions that take the lock when they begin.
func dsn(path string) string {
	abs, err := filepath.Abs(path)
	if err == nil {
		path = abs
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Close closes the index.
func (x *Index) Close() error {
	if err := x.db.Close(); err != nil {
		return fmt.Errorf("subjectindex: close %s: %w", x.path, err)
	}
	return nil
}

// Add stores items in one transaction. An item whose log index is already
// stored replaces it, so adding the log's entries again (a rebuild) is
// harmless.
func (x *Index) Add(ctx context.Context, items ...Item) (err error) {
	if len(items) == 0 {
		return nil
	}
	type row struct {
		it            Item
		roles, fields []byte
	}
	rows := make([]row, len(items))
	for i, it := range items {
		if it.Index > math.MaxInt64 {
			return fmt.Errorf("%w: log index %d out of range", ErrInvalidItem, it.Index)
		}
		if it.Subject == "" {
			return fmt.Errorf("%w: item %d has no subject", ErrInvalidItem, it.Index)
		}
		roles, err := json.Marshal(nonNil(it.Roles))
		if err != nil {
			return fmt.Errorf("%w: roles: %v", ErrInvalidItem, err)
		}
		fields, err := json.Marshal(nonNil(it.Fields))
		if err != nil {
			return fmt.Errorf("%w: fields: %v", ErrInvalidItem, err)
		}
		rows[i] = row{it, roles, fields}
	}
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("subjectindex: begin: %w", err)
	}
	defer func() {
		if err != nil {
			if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				err = errors.Join(err, fmt.Errorf("subjectindex: rollback: %w", rerr))
			}
		}
	}()
	stmt, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO accesses
		(log_index, subject, time, kind, decision, actor_type, roles, country, purpose, fields, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("subjectindex: prepare insert: %w", err)
	}
	defer stmt.Close()
	for _, r := range rows {
		it := r.it
		if _, err := stmt.ExecContext(ctx, int64(it.Index), it.Subject, it.Time.UTC().UnixMicro(), it.Kind, it.Decision,
			it.ActorType, string(r.roles), it.Country, it.Purpose, string(r.fields), it.Status); err != nil {
			return fmt.Errorf("subjectindex: insert item %d: %w", it.Index, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("subjectindex: commit: %w", err)
	}
	return nil
}

// List returns at most limit items of the subject with the pseudonym
// subject whose log index is at least from, in log order.
func (x *Index) List(ctx context.Context, subject string, limit int, from uint64) ([]Item, error) {
	if limit <= 0 || from > math.MaxInt64 {
		return nil, nil
	}
	rows, err := x.db.QueryContext(ctx, `SELECT log_index, time, kind, decision, actor_type, roles, country, purpose, fields, status
		FROM accesses WHERE subject = ? AND log_index >= ? ORDER BY log_index LIMIT ?`, subject, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("subjectindex: list: %w", err)
	}
	defer rows.Close()
	var out []Item
	for rows.Next() {
		var (
			idx, micros   int64
			roles, fields string
		)
		it := Item{Subject: subject}
		if err := rows.Scan(&idx, &micros, &it.Kind, &it.Decision, &it.ActorType, &roles, &it.Country, &it.Purpose, &fields, &it.Status); err != nil {
			return nil, fmt.Errorf("subjectindex: list: %w", err)
		}
		it.Index, it.Time = uint64(idx), time.UnixMicro(micros).UTC()
		if err := json.Unmarshal([]byte(roles), &it.Roles); err != nil {
			return nil, fmt.Errorf("subjectindex: item %d: roles: %w", idx, err)
		}
		if err := json.Unmarshal([]byte(fields), &it.Fields); err != nil {
			return nil, fmt.Errorf("subjectindex: item %d: fields: %w", idx, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subjectindex: list: %w", err)
	}
	return out, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
