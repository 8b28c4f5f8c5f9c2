// Package sqlite is Clover's embedded storage backend: a store.Store kept in
// two SQLite databases in one directory, through the pure-Go driver
// modernc.org/sqlite (no cgo).
//
// # File layout
//
// Open(dir) creates dir (mode 0700) if needed and keeps two files in it:
//
//	dir/records.db   table records(subject, ciphertext, updated): sealed records
//	dir/keys.db      table keys(subject, wrapped, kek_id, handle): wrapped data keys
//
// Data keys live apart from the records they protect, so a copy of
// records.db alone holds no key, and erasing a subject's key (DeleteKey)
// leaves every copy of its record unreadable. SQLite adds records.db-wal,
// records.db-shm, keys.db-wal and keys.db-shm beside them while the store is
// open. The database files are created with mode 0600 whatever the umask, and
// SQLite gives its -wal and -shm files the mode of their database.
//
// Both files run in WAL mode with synchronous=FULL, so a write that returned
// is on disk and survives a crash or power loss. keys.db also runs with
// secure_delete, and DeleteKey checkpoints and truncates its WAL, so the bytes
// of an erased key are overwritten in the file rather than left in free
// pages (the storage device beneath may still keep old blocks).
//
// Each file has one writer connection, which serialises writes, and a pool of
// read-only connections (mode=ro) for concurrent reads; point reads and
// writes use prepared statements, and the paged scans read rows through the
// driver connection directly (sql.Conn.Raw) to skip database/sql's per-row
// work. Updated is stored as integer unix microseconds (UTC).
//
// # Schema
//
// Each file has a schema_version table with one row per applied migration.
// Open applies the missing migrations in order, in one transaction per file,
// and refuses a file whose version is newer than this code knows. The current
// schema version is 1 for both records.db and keys.db.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cloverenclave/clover/store"
)

// File names inside the directory passed to Open.
const (
	RecordsFile = "records.db"
	KeysFile    = "keys.db"
)

// readers is the size of each file's read-only connection pool.
const readers = 4

// Store is a store.Store kept in SQLite files. It is safe for concurrent use.
type Store struct {
	records *db
	keys    *db

	putRecord    *sql.Stmt // writer
	getRecord    *sql.Stmt // reader
	deleteRecord *sql.Stmt // writer
	insertKey    *sql.Stmt // writer, used inside a transaction
	selectKey    *sql.Stmt // writer, used inside a transaction
	getKey       *sql.Stmt // reader
	deleteKey    *sql.Stmt // writer
}

var _ store.Store = (*Store)(nil)

// Open opens, creating if needed, the store kept in dir, and brings both
// databases up to the current schema version.
func Open(dir string) (*Store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", dir, err)
	}
	if err := makeDir(dir); err != nil {
		return nil, err
	}
	s := &Store{}
	if err := s.open(dir); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *Store) open(dir string) error {
	var err error
	s.records, err = openDB(filepath.Join(dir, RecordsFile), recordsMigrations(), false)
	if err != nil {
		return err
	}
	s.keys, err = openDB(filepath.Join(dir, KeysFile), keysMigrations(), true)
	if err != nil {
		return err
	}
	return s.prepare()
}

// prepare prepares the statements of the hot paths.
func (s *Store) prepare() error {
	stmts := []struct {
		dst   **sql.Stmt
		db    *sql.DB
		query string
	}{
		{&s.putRecord, s.records.writer, `INSERT INTO records (subject, ciphertext, updated) VALUES (?, ?, ?)
			ON CONFLICT (subject) DO UPDATE SET ciphertext = excluded.ciphertext, updated = excluded.updated`},
		{&s.getRecord, s.records.reader, `SELECT ciphertext, updated FROM records WHERE subject = ?`},
		{&s.deleteRecord, s.records.writer, `DELETE FROM records WHERE subject = ?`},
		{&s.insertKey, s.keys.writer, `INSERT INTO keys (subject, wrapped, kek_id, handle) VALUES (?, ?, ?, ?)
			ON CONFLICT (subject) DO NOTHING`},
		{&s.selectKey, s.keys.writer, `SELECT wrapped, kek_id, handle FROM keys WHERE subject = ?`},
		{&s.getKey, s.keys.reader, `SELECT wrapped, kek_id, handle FROM keys WHERE subject = ?`},
		{&s.deleteKey, s.keys.writer, `DELETE FROM keys WHERE subject = ?`},
	}
	for _, st := range stmts {
		stmt, err := st.db.Prepare(st.query)
		if err != nil {
			return fmt.Errorf("sqlite: prepare %q: %w", st.query, err)
		}
		*st.dst = stmt
	}
	return nil
}

// Paths returns the paths of the database files, records.db then keys.db.
// SQLite may keep recent writes in a "-wal" file beside each of them.
func (s *Store) Paths() []string {
	return []string{s.records.path, s.keys.path}
}

// Close closes the prepared statements and both databases. Further calls
// on s fail.
func (s *Store) Close() error {
	var errs []error
	for _, stmt := range []*sql.Stmt{s.putRecord, s.getRecord, s.deleteRecord, s.insertKey, s.selectKey, s.getKey, s.deleteKey} {
		if stmt != nil {
			errs = append(errs, stmt.Close())
		}
	}
	for _, d := range []*db{s.records, s.keys} {
		if d != nil {
			errs = append(errs, d.close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// PutRecord inserts or replaces r.Subject's record and returns once it is on
// disk.
func (s *Store) PutRecord(ctx context.Context, r store.Sealed) error {
	_, err := s.putRecord.ExecContext(ctx, r.Subject, nonNil(r.Ciphertext), r.Updated.UnixMicro())
	if err != nil {
		return fmt.Errorf("sqlite: put record: %w", err)
	}
	return nil
}

// GetRecord returns subject's record or store.ErrNotFound.
func (s *Store) GetRecord(ctx context.Context, subject string) (store.Sealed, error) {
	r := store.Sealed{Subject: subject}
	var micros int64
	err := s.getRecord.QueryRowContext(ctx, subject).Scan(&r.Ciphertext, &micros)
	if err != nil {
		return store.Sealed{}, notFound("sqlite: get record", err)
	}
	r.Updated = time.UnixMicro(micros).UTC()
	return r, nil
}

// DeleteRecord removes subject's record, or returns store.ErrNotFound.
func (s *Store) DeleteRecord(ctx context.Context, subject string) error {
	res, err := s.deleteRecord.ExecContext(ctx, subject)
	if err != nil {
		return fmt.Errorf("sqlite: delete record: %w", err)
	}
	return affected("sqlite: delete record", res)
}

// PutKey stores k unless its subject already has a key, and returns the
// subject's key: k, or the one stored before.
func (s *Store) PutKey(ctx context.Context, k store.Key) (store.Key, error) {
	tx, err := s.keys.writer.BeginTx(ctx, nil)
	if err != nil {
		return store.Key{}, fmt.Errorf("sqlite: put key: %w", err)
	}
	got, err := putKeyTx(ctx, tx, s.insertKey, s.selectKey, k)
	if err != nil {
		return store.Key{}, errors.Join(fmt.Errorf("sqlite: put key: %w", err), rollback(tx))
	}
	if err := tx.Commit(); err != nil {
		return store.Key{}, fmt.Errorf("sqlite: put key: commit: %w", err)
	}
	return got, nil
}

// putKeyTx inserts k if its subject has no key and returns the subject's
// key. The writer connection and BEGIN IMMEDIATE make it atomic.
func putKeyTx(ctx context.Context, tx *sql.Tx, insert, sel *sql.Stmt, k store.Key) (store.Key, error) {
	res, err := tx.StmtContext(ctx, insert).ExecContext(ctx, k.Subject, nonNil(k.Wrapped), k.KEKID, nonNil(k.Handle))
	if err != nil {
		return store.Key{}, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return store.Key{}, err
	}
	if n == 1 {
		return k, nil
	}
	got := store.Key{Subject: k.Subject}
	err = tx.StmtContext(ctx, sel).QueryRowContext(ctx, k.Subject).Scan(&got.Wrapped, &got.KEKID, &got.Handle)
	if err != nil {
		return store.Key{}, fmt.Errorf("read existing key: %w", err)
	}
	return got, nil
}

// GetKey returns subject's key or store.ErrNotFound.
func (s *Store) GetKey(ctx context.Context, subject string) (store.Key, error) {
	k := store.Key{Subject: subject}
	err := s.getKey.QueryRowContext(ctx, subject).Scan(&k.Wrapped, &k.KEKID, &k.Handle)
	if err != nil {
		return store.Key{}, notFound("sqlite: get key", err)
	}
	return k, nil
}

// DeleteKey destroys subject's key, or returns store.ErrNotFound. Once the
// delete is committed it checkpoints keys.db and truncates its WAL, so that
// (with secure_delete) the erased key's bytes are overwritten on disk. If
// only that last step fails, the key is gone but an error is returned.
func (s *Store) DeleteKey(ctx context.Context, subject string) error {
	res, err := s.deleteKey.ExecContext(ctx, subject)
	if err != nil {
		return fmt.Errorf("sqlite: delete key: %w", err)
	}
	if err := affected("sqlite: delete key", res); err != nil {
		return err
	}
	if err := s.keys.checkpoint(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("sqlite: delete key: key deleted, but %w", err)
	}
	return nil
}

// notFound maps sql.ErrNoRows to store.ErrNotFound and wraps other errors.
func notFound(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// affected returns store.ErrNotFound if res changed no row.
func affected(op string, res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return nil
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

// nonNil returns b, or an empty slice if b is nil: the driver binds a nil
// slice as NULL, and the columns are NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// makeDir creates dir with mode 0700 if it does not exist. An existing
// directory is left as it is.
func makeDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("sqlite: chmod %s: %w", dir, err)
	}
	return nil
}

// Scans read through the driver's connection (sql.Conn.Raw), not through
// database/sql's rows: the driver already hands each text value over as a
// fresh string and each blob as a fresh slice of its own length, which a
// page can keep as they are, while database/sql would add its per-row
// locking and conversions and a copy of every value.
const (
	scanRecordsQuery = `SELECT subject, ciphertext, updated FROM records WHERE subject > ? ORDER BY subject LIMIT ?`
	scanKeysQuery    = `SELECT subject, wrapped, kek_id, handle FROM keys WHERE subject > ? ORDER BY subject LIMIT ?`
)

// ScanRecords returns up to limit records after the subject after, in
// byte order of subject. Each record's Subject and Ciphertext are the
// driver's own copies, with no further copy.
func (s *Store) ScanRecords(ctx context.Context, after string, limit int) ([]store.Sealed, error) {
	if limit <= 0 || limit > store.MaxScan {
		return nil, fmt.Errorf("sqlite: scan records: limit %d outside 1..%d", limit, store.MaxScan)
	}
	out := make([]store.Sealed, 0, limit)
	err := queryRaw(ctx, s.records.reader, scanRecordsQuery, after, limit, 3, func(row []driver.Value) error {
		subject, ok1 := row[0].(string)
		ct, ok2 := blob(row[1])
		micros, ok3 := row[2].(int64)
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("a row of records has columns of types %T, %T, %T, not text, blob, integer", row[0], row[1], row[2])
		}
		out = append(out, store.Sealed{Subject: subject, Ciphertext: ct, Updated: time.UnixMicro(micros).UTC()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: scan records: %w", err)
	}
	return out, nil
}

// ScanKeys returns up to limit wrapped keys after the subject after, in
// byte order of subject; the keys of a page wrapped by one KEK share its
// KEKID string.
func (s *Store) ScanKeys(ctx context.Context, after string, limit int) ([]store.Key, error) {
	if limit <= 0 || limit > store.MaxScan {
		return nil, fmt.Errorf("sqlite: scan keys: limit %d outside 1..%d", limit, store.MaxScan)
	}
	out := make([]store.Key, 0, limit)
	kekID := ""
	err := queryRaw(ctx, s.keys.reader, scanKeysQuery, after, limit, 4, func(row []driver.Value) error {
		subject, ok1 := row[0].(string)
		wrapped, ok2 := blob(row[1])
		kek, ok3 := row[2].(string)
		handle, ok4 := blob(row[3])
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return fmt.Errorf("a row of keys has columns of types %T, %T, %T, %T, not text, blob, text, blob", row[0], row[1], row[2], row[3])
		}
		if kek != kekID {
			kekID = kek
		}
		out = append(out, store.Key{Subject: subject, Wrapped: wrapped, KEKID: kekID, Handle: handle})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: scan keys: %w", err)
	}
	return out, nil
}

// queryRaw runs a scan query with arguments after and limit on one of
// pool's connections, through the driver, and calls fn with each row of
// its columns values. The values are fn's to keep.
func queryRaw(ctx context.Context, pool *sql.DB, query, after string, limit, columns int, fn func([]driver.Value) error) error {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return fmt.Errorf("the driver connection %T cannot run queries", dc)
		}
		rows, err := q.QueryContext(ctx, query, []driver.NamedValue{{Ordinal: 1, Value: after}, {Ordinal: 2, Value: int64(limit)}})
		if err != nil {
			return err
		}
		// The driver's Close finalizes the statement: it must run exactly
		// once (a second finalize crashes the process).
		err = scanRows(rows, columns, fn)
		return errors.Join(err, rows.Close())
	})
}

func scanRows(rows driver.Rows, columns int, fn func([]driver.Value) error) error {
	if n := len(rows.Columns()); n != columns {
		return fmt.Errorf("the query returned %d columns, want %d", n, columns)
	}
	row := make([]driver.Value, columns)
	for {
		err := rows.Next(row)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

// blob returns a blob column's value: the driver's slice, capped at its
// length, or an empty, non-nil slice for an empty or NULL blob (the driver
// gives nil), as scans have always returned.
func blob(v driver.Value) ([]byte, bool) {
	switch b := v.(type) {
	case []byte:
		if b == nil {
			return []byte{}, true
		}
		return b[:len(b):len(b)], true
	case nil:
		return []byte{}, true
	}
	return nil, false
}
