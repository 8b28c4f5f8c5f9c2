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
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloverenclave/clover/auditlog"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeout is how long a connection waits for another's lock.
const busyTimeout = 10 * time.Second

// maxConns caps the connections: readers, and the one writer at a time.
const maxConns = 4

// cacheKiB is each connection's page cache; checkpointPages how many pages
// of write-ahead log trigger a checkpoint (SQLite's default is 1000).
const (
	cacheKiB        = 64 << 10
	checkpointPages = 8192
)

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
//
// The by-subject index is shaped for writing. Items arrive in log order
// but name random subjects, so in an index of the whole pseudonym nearly
// every item lands in a page of its own, and every page a transaction
// touches is written twice (to the write-ahead log, then back to the
// file): the cost per item grew with the index. So the index is
// partitioned by epoch (the log index divided by epochSize): a batch of
// items touches only the pages of the current epoch's part, which stays
// small and is shared by the batch's items; and within an epoch it holds
// the first 16 characters of the pseudonym (64 bits of an HMAC: List
// compares the whole pseudonym anyway), a third of the size of the whole.
// The table's log_index is its rowid, which ends every index entry, so
// the index also serves List's range and order. List reads the index one
// epoch at a time. Files written before had an index of the whole
// pseudonym, which Open replaces.
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
DROP INDEX IF EXISTS accesses_by_subject;
CREATE INDEX IF NOT EXISTS accesses_by_epoch_subject ON accesses (log_index >> 16, substr(subject, 1, 16))`

// epochBits is the 16 of the schema's log_index >> 16: an epoch is 65,536
// consecutive log indexes.
const epochBits = 16

// prefixLen is the length of the indexed pseudonym prefix (the 16 of the
// schema's substr).
const prefixLen = 16

// subjectPrefix is the indexed prefix of a pseudonym, as SQLite's substr
// takes it (characters, not bytes).
func subjectPrefix(subject string) string {
	n := 0
	for i := range subject {
		if n == prefixLen {
			return subject[:i]
		}
		n++
	}
	return subject
}

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
// comment), write transactions that take the lock when they begin, a page
// cache of cacheKiB (the by-subject index is written at random places: a
// cache that holds it spares a read per item) and a checkpoint every
// checkpointPages pages of write-ahead log (a page written by several
// transactions between two checkpoints is copied back once), and temporary
// files in memory: an INSERT of several rows keeps a statement journal of
// the pages it changes, which would otherwise be a file written page by
// page.
func dsn(path string) string {
	abs, err := filepath.Abs(path)
	if err == nil {
		path = abs
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", cacheKiB))
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", checkpointPages))
	q.Add("_pragma", "temp_store(MEMORY)")
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
//
// Callers should add many items at once: every transaction writes each
// page it touched to the write-ahead log, and the by-subject index makes
// nearly every item touch a page of its own, so the cost per item falls as
// a transaction's items share pages. Rows go in by rowsPerInsert per
// statement, which saves most of database/sql's work per row.
func (x *Index) Add(ctx context.Context, items ...Item) (err error) {
	if len(items) == 0 {
		return nil
	}
	// Everything is encoded and checked first: a bad item fails the batch
	// before the transaction starts.
	args := make([]any, 0, len(items)*columns)
	var buf []byte
	for _, it := range items {
		if it.Index > math.MaxInt64 {
			return fmt.Errorf("%w: log index %d out of range", ErrInvalidItem, it.Index)
		}
		if it.Subject == "" {
			return fmt.Errorf("%w: item %d has no subject", ErrInvalidItem, it.Index)
		}
		if !utf8.ValidString(it.Subject) {
			// SQLite's substr and subjectPrefix would disagree on its prefix.
			return fmt.Errorf("%w: item %d: the subject is not valid UTF-8", ErrInvalidItem, it.Index)
		}
		buf = appendRoles(buf[:0], it.Roles)
		roles := string(buf)
		buf = appendFields(buf[:0], it.Fields)
		fields := string(buf)
		args = append(args, int64(it.Index), it.Subject, it.Time.UTC().UnixMicro(), it.Kind, it.Decision,
			it.ActorType, roles, it.Country, it.Purpose, fields, it.Status)
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
	if full := len(items) / rowsPerInsert; full > 0 {
		stmt, err := tx.PrepareContext(ctx, insertFull)
		if err != nil {
			return fmt.Errorf("subjectindex: prepare insert: %w", err)
		}
		defer stmt.Close()
		for i := range full {
			chunk := args[i*rowsPerInsert*columns : (i+1)*rowsPerInsert*columns]
			if _, err := stmt.ExecContext(ctx, chunk...); err != nil {
				return fmt.Errorf("subjectindex: insert items %d to %d: %w", items[i*rowsPerInsert].Index, items[(i+1)*rowsPerInsert-1].Index, err)
			}
		}
	}
	if rest := len(items) % rowsPerInsert; rest > 0 {
		first := len(items) - rest
		if _, err := tx.ExecContext(ctx, insertStatement(rest), args[first*columns:]...); err != nil {
			return fmt.Errorf("subjectindex: insert items %d to %d: %w", items[first].Index, items[len(items)-1].Index, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("subjectindex: commit: %w", err)
	}
	return nil
}

// columns is the number of columns of a row of accesses.
const columns = 11

// rowsPerInsert is how many rows one INSERT statement writes (at most
// 32766/columns: SQLite's limit on a statement's parameters).
const rowsPerInsert = 64

// insertFull inserts rowsPerInsert rows.
var insertFull = insertStatement(rowsPerInsert)

// insertStatement returns an INSERT OR REPLACE of n rows.
func insertStatement(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR REPLACE INTO accesses
		(log_index, subject, time, kind, decision, actor_type, roles, country, purpose, fields, status) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

// appendRoles appends roles as a JSON array of strings.
func appendRoles(b []byte, roles []string) []byte {
	b = append(b, '[')
	for i, r := range roles {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, r)
	}
	return append(b, ']')
}

// appendFields appends fields as a JSON array of {"name":…,"form":…}, as
// encoding/json writes them.
func appendFields(b []byte, fields []Field) []byte {
	b = append(b, '[')
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = appendJSONString(b, f.Name)
		b = append(b, `,"form":`...)
		b = appendJSONString(b, f.Form)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString appends s as a JSON string. Quotes, backslashes and
// control characters are escaped and invalid UTF-8 becomes U+FFFD, so that
// List decodes every string it stored (HTML characters are left as they
// are, which JSON allows).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// List returns at most limit items of the subject with the pseudonym
// subject whose log index is at least from, in log order. It reads the
// index one epoch at a time, from the epoch of from to that of the last
// item stored, until it has limit items.
func (x *Index) List(ctx context.Context, subject string, limit int, from uint64) ([]Item, error) {
	if limit <= 0 || from > math.MaxInt64 {
		return nil, nil
	}
	var last sql.NullInt64
	if err := x.db.QueryRowContext(ctx, `SELECT max(log_index) FROM accesses`).Scan(&last); err != nil {
		return nil, fmt.Errorf("subjectindex: list: %w", err)
	}
	if !last.Valid || uint64(last.Int64) < from {
		return nil, nil
	}
	conn, err := x.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("subjectindex: list: %w", err)
	}
	defer conn.Close()
	stmt, err := conn.PrepareContext(ctx, `SELECT log_index, time, kind, decision, actor_type, roles, country, purpose, fields, status
		FROM accesses WHERE log_index >> 16 = ? AND substr(subject, 1, 16) = ? AND subject = ? AND log_index >= ?
		ORDER BY log_index LIMIT ?`)
	if err != nil {
		return nil, fmt.Errorf("subjectindex: list: %w", err)
	}
	defer stmt.Close()
	prefix := subjectPrefix(subject)
	var out []Item
	for epoch := from >> epochBits; epoch <= uint64(last.Int64)>>epochBits && len(out) < limit; epoch++ {
		if out, err = listEpoch(ctx, stmt, out, epoch, prefix, subject, from, limit-len(out)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// listEpoch appends to out the subject's items of one epoch.
func listEpoch(ctx context.Context, stmt *sql.Stmt, out []Item, epoch uint64, prefix, subject string, from uint64, limit int) ([]Item, error) {
	rows, err := stmt.QueryContext(ctx, int64(epoch), prefix, subject, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("subjectindex: list: %w", err)
	}
	defer rows.Close()
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

// ItemFromEntry summarises entry e, at index idx of the log, for the index:
// reads, writes and erasures of a subject by an authenticated caller. Other
// entries (re-identifications name a token, not a subject; policy changes
// and transfers name none) give false. The gateway indexes entries with it
// as it logs them, and `clover log reindex` rebuilds the index with it.
func ItemFromEntry(idx uint64, e *auditlog.Entry) (Item, bool) {
	if e.Subject == "" || e.Actor == nil {
		return Item{}, false
	}
	switch e.Kind {
	case auditlog.KindDecision, auditlog.KindWrite, auditlog.KindErase:
	default:
		return Item{}, false
	}
	it := Item{Index: idx, Subject: e.Subject, Time: e.Time, Kind: string(e.Kind), Decision: string(e.Decision),
		ActorType: e.Actor.Type, Roles: e.Actor.Roles, Country: e.Actor.Country, Purpose: e.Purpose, Status: e.Status}
	if len(e.Fields) > 0 {
		it.Fields = make([]Field, len(e.Fields))
		for i, f := range e.Fields {
			it.Fields[i] = Field{Name: f.Name, Form: f.Form}
		}
	}
	return it, true
}
