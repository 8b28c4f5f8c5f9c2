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
//
// A row is the entry's log index, the subject's pseudonym and one compact
// blob of everything else (see rows.go): the time, kind, decision, status
// and the caller's type, roles and country, the purpose and the released
// fields, with field names and roles interned in a small table of words
// and kinds, decisions, actor types and forms one code each. One blob,
// rather than a column per value, because SQLite's work per row grows with
// the values bound and stored more than with their bytes; compact because
// every row costs the server its bytes written twice (write-ahead log,
// then file).
//
// A file of an earlier format is upgraded when opened, at once, whatever
// its size: its rows stay where they are, in a legacy table that List
// reads beside the table Add writes, rather than be converted (which took
// 9 s per million rows, before the server listened). `clover log reindex`
// writes every row in the current format (migrate.go).
package subjectindex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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
	// legacy is the format of the file's legacy table, which List reads
	// beside access_rows (migrate.go), or noLegacy.
	legacy int
	// words is the words table as this process last saw it committed.
	words atomic.Pointer[dict]
}

// schema is the index's tables (and a file's legacy table, migrate.go):
// access_rows, whose row is a blob of appendRow, whose words are those of
// the table words; and its by-subject index.
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
// epoch at a time. A legacy table has the same index, on the same
// expressions, which List reads the same way.
const schema = `CREATE TABLE IF NOT EXISTS access_rows (
	log_index INTEGER NOT NULL PRIMARY KEY,
	subject   TEXT    NOT NULL,
	row       BLOB    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS access_rows_by_epoch_subject ON access_rows (log_index >> 16, substr(subject, 1, 16));
CREATE TABLE IF NOT EXISTS words (
	id   INTEGER NOT NULL PRIMARY KEY,
	word TEXT    NOT NULL UNIQUE
) STRICT`

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
	return OpenLogged(path, nil)
}

// OpenLogged is Open, saying on log when the file has rows of an earlier
// format, which List reads in place and `clover log reindex` rewrites. A
// nil log says nothing.
func OpenLogged(path string, log *slog.Logger) (*Index, error) {
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
	x := &Index{path: path, db: db}
	x.words.Store(emptyDict)
	ctx := context.Background()
	if x.legacy, err = x.migrate(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if x.legacy != noLegacy && log != nil {
		log.Info("subject access index: rows of an earlier format are read in place; `clover log reindex` rewrites them",
			"path", path, "format", x.legacy)
	}
	d, err := loadWords(ctx, db, emptyDict)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	x.words.Store(d)
	return x, nil
}

// install makes d, committed, the words the index encodes and decodes
// with, unless another goroutine installed as many or more already (every
// snapshot is a prefix of the table, which only grows).
func (x *Index) install(d *dict) {
	for {
		cur := x.words.Load()
		if len(cur.words) >= len(d.words) || x.words.CompareAndSwap(cur, d) {
			return
		}
	}
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

// Add stores items in one transaction, in access_rows. An item whose log
// index is already stored replaces it (in a legacy table, it hides it), so
// adding the log's entries again (a rebuild) is harmless.
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
	// Everything is checked first: a bad item fails the batch before the
	// transaction starts.
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
	d, err := insert(ctx, tx, x.words.Load(), items)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("subjectindex: commit: %w", err)
	}
	x.install(d)
	return nil
}

// insert writes items in tx, rowsPerInsert rows per statement (which
// saves most of database/sql's work per row), encoded with base or, if
// they have words to intern, with base and those words, which it returns.
func insert(ctx context.Context, tx *sql.Tx, base *dict, items []Item) (*dict, error) {
	d := base
	buf, ends, missed := encode(d, items)
	if missed && len(d.words) < maxWords {
		var err error
		if d, err = intern(ctx, tx, base, items); err != nil {
			return nil, err
		}
		buf, ends, _ = encode(d, items)
	}
	args := make([]any, 0, len(items)*columns)
	start := 0
	for i, it := range items {
		args = append(args, int64(it.Index), it.Subject, buf[start:ends[i]:ends[i]])
		start = ends[i]
	}
	if full := len(items) / rowsPerInsert; full > 0 {
		stmt, err := tx.PrepareContext(ctx, insertFull)
		if err != nil {
			return nil, fmt.Errorf("subjectindex: prepare insert: %w", err)
		}
		defer stmt.Close()
		for i := range full {
			chunk := args[i*rowsPerInsert*columns : (i+1)*rowsPerInsert*columns]
			if _, err := stmt.ExecContext(ctx, chunk...); err != nil {
				return nil, fmt.Errorf("subjectindex: insert items %d to %d: %w", items[i*rowsPerInsert].Index, items[(i+1)*rowsPerInsert-1].Index, err)
			}
		}
	}
	if rest := len(items) % rowsPerInsert; rest > 0 {
		first := len(items) - rest
		if _, err := tx.ExecContext(ctx, insertStatement(rest), args[first*columns:]...); err != nil {
			return nil, fmt.Errorf("subjectindex: insert items %d to %d: %w", items[first].Index, items[len(items)-1].Index, err)
		}
	}
	return d, nil
}

// encode encodes the rows of items with d into one buffer (item i's ends
// at ends[i]), and reports whether it wrote inline a word that could be
// interned.
func encode(d *dict, items []Item) (buf []byte, ends []int, missed bool) {
	buf = make([]byte, 0, len(items)*48)
	ends = make([]int, 0, len(items))
	for i := range items {
		var m bool
		buf, m = appendRow(buf, d, &items[i])
		ends = append(ends, len(buf))
		missed = missed || m
	}
	return buf, ends, missed
}

// columns is the number of columns of a row of access_rows, each a value
// bound per row.
const columns = 3

// rowsPerInsert is how many rows one INSERT statement writes (at most
// 32766/columns: SQLite's limit on a statement's parameters). More barely
// help (in BenchmarkAdd, 256 no faster and 1024 a few percent, within the
// noise) and cost more where it does not show: Add prepares its
// statements every time, at ~0.4 µs a row, and the gateway's batches (a
// second of reads) are of any size, so the remainder's is prepared too.
const rowsPerInsert = 64

// insertFull inserts rowsPerInsert rows.
var insertFull = insertStatement(rowsPerInsert)

// insertStatement returns an INSERT OR REPLACE of n rows.
func insertStatement(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR REPLACE INTO access_rows
		(log_index, subject, row) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?)")
	}
	return b.String()
}

// List returns at most limit items of the subject with the pseudonym
// subject whose log index is at least from, in log order. It reads the
// index one epoch at a time, from the epoch of from to that of the last
// item stored, until it has limit items. In a file with a legacy table,
// it reads both tables, each through its by-epoch index, and where both
// hold a log index (an item added again since the upgrade) lists the one
// of access_rows.
func (x *Index) List(ctx context.Context, subject string, limit int, from uint64) ([]Item, error) {
	if limit <= 0 || from > math.MaxInt64 {
		return nil, nil
	}
	conn, err := x.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("subjectindex: list: %w", err)
	}
	defer conn.Close()
	tables := []*listTable{{format: formatVersion}}
	if x.legacy != noLegacy {
		tables = append(tables, &listTable{format: x.legacy})
	}
	last := int64(-1)
	for _, t := range tables {
		if err := t.open(ctx, conn); err != nil {
			return nil, err
		}
		defer t.stmt.Close()
		last = max(last, t.last)
	}
	if last < 0 || uint64(last) < from {
		return nil, nil
	}
	prefix := subjectPrefix(subject)
	var (
		out          []Item
		newer, older []listed
	)
	for epoch := from >> epochBits; epoch <= uint64(last)>>epochBits && len(out) < limit; epoch++ {
		if newer, err = x.listEpoch(ctx, conn, tables[0], newer[:0], epoch, prefix, subject, from, limit-len(out)); err != nil {
			return nil, err
		}
		older = older[:0]
		if len(tables) > 1 {
			if older, err = x.listEpoch(ctx, conn, tables[1], older, epoch, prefix, subject, from, limit-len(out)); err != nil {
				return nil, err
			}
		}
		if out, err = appendMerged(out, newer, older, limit-len(out)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// listTable is a table of rows List reads: access_rows, or a legacy table.
type listTable struct {
	format int // of its rows
	// first and last are its least and greatest log indexes, -1 when it
	// is empty: List reads no epoch of a table outside them.
	first, last int64
	stmt        *sql.Stmt // listQuery(format)
}

// open reads t's first and last log indexes, and prepares its query.
func (t *listTable) open(ctx context.Context, conn *sql.Conn) error {
	table := tableOf(t.format)
	var first, last sql.NullInt64
	if err := conn.QueryRowContext(ctx, rangeQuery(table)).Scan(&first, &last); err != nil {
		return fmt.Errorf("subjectindex: list %s: %w", table, err)
	}
	t.first, t.last = -1, -1
	if first.Valid && last.Valid {
		t.first, t.last = first.Int64, last.Int64
	}
	var err error
	if t.stmt, err = conn.PrepareContext(ctx, listQuery(t.format)); err != nil {
		return fmt.Errorf("subjectindex: list %s: %w", table, err)
	}
	return nil
}

// rangeQuery returns the query of table's least and greatest log indexes:
// one min or max per SELECT, which SQLite answers from an end of the
// table's B-tree rather than by a scan.
func rangeQuery(table string) string {
	return `SELECT (SELECT min(log_index) FROM ` + table + `), (SELECT max(log_index) FROM ` + table + `)`
}

// holds reports whether t may have rows in epoch.
func (t *listTable) holds(epoch uint64) bool {
	return t.last >= 0 && uint64(t.first)>>epochBits <= epoch && epoch <= uint64(t.last)>>epochBits
}

// listQuery returns the query of a subject's rows of one epoch from a log
// index on, in log order, in the table of the rows of format, through its
// by-epoch index: epoch, pseudonym prefix, the whole pseudonym, from,
// limit. It reads the log index, then the columns of itemColumns.
func listQuery(format int) string {
	return `SELECT log_index, ` + itemColumns(format) + ` FROM ` + tableOf(format) + `
	WHERE log_index >> 16 = ? AND substr(subject, 1, 16) = ? AND subject = ? AND log_index >= ?
	ORDER BY log_index LIMIT ?`
}

// listed is an item List read, or, with err, a row it could not decode:
// an error only if the item is to be listed (not if another hides it, or
// it is beyond the limit).
type listed struct {
	it  Item // with its index, always
	err error
}

// listEpoch appends to out the subject's items of one epoch in t, read on
// conn.
func (x *Index) listEpoch(ctx context.Context, conn *sql.Conn, t *listTable, out []listed, epoch uint64, prefix, subject string, from uint64, limit int) ([]listed, error) {
	if !t.holds(epoch) {
		return out, nil
	}
	rows, err := t.stmt.QueryContext(ctx, int64(epoch), prefix, subject, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("subjectindex: list: %w", err)
	}
	defer rows.Close()
	d := x.words.Load()
	var s scanned
	for rows.Next() {
		if err := s.scan(rows, t.format); err != nil {
			return nil, fmt.Errorf("subjectindex: list: %w", err)
		}
		it, err := s.decode(t.format, d)
		if errors.Is(err, errUnknownWord) {
			// Words added by another connection since d was loaded.
			if d, err = x.reloadWords(ctx, conn, d); err != nil {
				return nil, err
			}
			it, err = s.decode(t.format, d)
		}
		it.Index, it.Subject = uint64(s.idx), subject
		out = append(out, listed{it: it, err: err})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("subjectindex: list: %w", err)
	}
	return out, nil
}

// appendMerged appends to out the first n items of newer and older, both
// in log order, where an item of newer hides one of older at its log
// index. It fails at the first of them that could not be decoded.
//
// The first n of each hold the first n of the two: an item's place in
// either is at most its place in both.
func appendMerged(out []Item, newer, older []listed, n int) ([]Item, error) {
	for ; n > 0 && len(newer)+len(older) > 0; n-- {
		var l listed
		switch {
		case len(older) == 0 || len(newer) > 0 && newer[0].it.Index <= older[0].it.Index:
			if len(older) > 0 && older[0].it.Index == newer[0].it.Index {
				older = older[1:]
			}
			l, newer = newer[0], newer[1:]
		default:
			l, older = older[0], older[1:]
		}
		if l.err != nil {
			return nil, fmt.Errorf("subjectindex: item %d: %w", l.it.Index, l.err)
		}
		out = append(out, l.it)
	}
	return out, nil
}

// reloadWords returns d with the words added to the table since, read
// with conn, and installs it. A row's words are committed with it, so the
// snapshot of the read that found the row has them. (conn is List's own:
// another of the pool's could be long in coming when every one is held by
// a List.)
func (x *Index) reloadWords(ctx context.Context, conn *sql.Conn, d *dict) (*dict, error) {
	d, err := loadWords(ctx, conn, d)
	if err != nil {
		return nil, err
	}
	x.install(d)
	return d, nil
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
