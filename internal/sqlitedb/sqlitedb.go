// Package sqlitedb opens Clover's SQLite files, through the pure-Go driver
// modernc.org/sqlite, the one way they are all meant to be opened.
//
// # File mode
//
// The database file is created with mode 0600, and an existing file has its
// mode set to 0600, whatever the umask or the file's mode was: the files
// hold personal data or the keys to it, and SQLite gives the -wal and -shm
// files it adds beside a database the mode of that database.
//
// # WAL and synchronous
//
// Every file runs in WAL mode: readers see the last committed transaction
// without blocking the writer or one another, and a commit appends to the
// write-ahead log instead of rewriting pages in place. The caller chooses
// how a commit reaches the disk:
//
//   - Full (synchronous=FULL): every commit is fsynced before it returns, so
//     a write that returned survives a crash or a power failure. For the
//     record of something: the store, the incidents, the transfer ledger.
//   - Normal (synchronous=NORMAL): the log is fsynced only at checkpoints. In
//     WAL mode the database is never corrupted, but the last commits may be
//     lost to a power failure. Only for data that can be rebuilt from a
//     record kept elsewhere.
//
// # One writer
//
// Open gives a pool of one read-write connection, the writer, and a pool of
// read-only connections. SQLite allows one writer at a time per file; with a
// single writer connection, the writes of the process queue in database/sql
// instead of contending for SQLite's lock, and never fail with SQLITE_BUSY
// between themselves. Write transactions begin with BEGIN IMMEDIATE, taking
// the lock at once, so a transaction that reads then writes cannot deadlock
// with another process's. Other processes are waited for up to BusyTimeout.
// The readers open with mode=ro and query_only, so a write sent to them by
// mistake fails instead of racing the writer.
//
// OpenPool gives instead one pool of read-write connections, shared by reads
// and writes, for files written rarely: its writers are serialised by
// SQLite's lock, each waiting up to BusyTimeout for the one before.
//
// Close the readers before the writer (Close does): the last connection to
// close checkpoints the write-ahead log into the database and removes the
// -wal and -shm files.
package sqlitedb

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// BusyTimeout is how long a connection waits for a lock held by another
// connection or process before failing with SQLITE_BUSY.
const BusyTimeout = 10 * time.Second

// Synchronous is how a commit reaches the disk (see the package comment).
type Synchronous string

// The synchronous levels a file may run with.
const (
	// Full fsyncs every commit before it returns.
	Full Synchronous = "FULL"
	// Normal fsyncs the write-ahead log at checkpoints only.
	Normal Synchronous = "NORMAL"
)

// Options are the settings of a file's read-write connections. The zero
// value is synchronous=FULL, without foreign keys or secure delete.
type Options struct {
	// Synchronous is Full or Normal; empty means Full.
	Synchronous Synchronous
	// ForeignKeys enforces FOREIGN KEY constraints.
	ForeignKeys bool
	// SecureDelete makes SQLite overwrite deleted content with zeros
	// rather than leave it in free pages.
	SecureDelete bool
}

// check validates o and returns its synchronous level.
func (o Options) check() (Synchronous, error) {
	switch o.Synchronous {
	case "":
		return Full, nil
	case Full, Normal:
		return o.Synchronous, nil
	}
	return "", fmt.Errorf("synchronous %q: want %q or %q", o.Synchronous, Full, Normal)
}

// Open opens the file at path, creating it if needed (mode 0600), as a
// writer, a pool of one read-write connection, and a reader, a pool of
// readers read-only connections. The writer has put the file in WAL mode
// when Open returns. On error nothing is left open. Close them with Close.
func Open(path string, readers int, o Options) (writer, reader *sql.DB, err error) {
	if readers < 1 {
		return nil, nil, fmt.Errorf("open %s: %d readers, want at least 1", path, readers)
	}
	writer, err = OpenPool(path, 1, o)
	if err != nil {
		return nil, nil, err
	}
	// The readers open once the writer has put the file in WAL mode.
	reader, err = openReaders(path, readers)
	if err != nil {
		return nil, nil, errors.Join(err, writer.Close())
	}
	return writer, reader, nil
}

// OpenPool opens the file at path, creating it if needed (mode 0600), as a
// pool of up to conns read-write connections in WAL mode. Its write
// transactions are serialised by SQLite's lock: each waits up to
// BusyTimeout for the one before to end.
func OpenPool(path string, conns int, o Options) (*sql.DB, error) {
	sync, err := o.check()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if conns < 1 {
		return nil, fmt.Errorf("open %s: %d connections, want at least 1", path, conns)
	}
	if err := createFile(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", busyTimeoutPragma())
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+string(sync)+")")
	if o.ForeignKeys {
		q.Add("_pragma", "foreign_keys(1)")
	}
	if o.SecureDelete {
		q.Add("_pragma", "secure_delete(1)")
	}
	q.Set("_txlock", "immediate")
	return openPool(path, q, conns, "")
}

// openReaders opens a pool of n read-only connections to path.
func openReaders(path string, n int) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", busyTimeoutPragma())
	q.Add("_pragma", "query_only(1)")
	return openPool(path, q, n, " read-only")
}

// openPool opens a pool of n connections to path with the URI query q, and
// opens one of them to report a file that cannot be opened now rather than
// at the first query. how qualifies the errors.
func openPool(path string, q url.Values, n int, how string) (*sql.DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %s%s: %w", path, how, err)
	}
	uri := url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", uri.String())
	if err != nil {
		return nil, fmt.Errorf("open %s%s: %w", path, how, err)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.Ping(); err != nil {
		return nil, errors.Join(fmt.Errorf("open %s%s: %w", path, how, err), db.Close())
	}
	return db, nil
}

func busyTimeoutPragma() string {
	return "busy_timeout(" + strconv.FormatInt(BusyTimeout.Milliseconds(), 10) + ")"
}

// Close closes reader, then writer, skipping either if nil.
func Close(writer, reader *sql.DB) error {
	var errs []error
	if reader != nil {
		errs = append(errs, reader.Close())
	}
	if writer != nil {
		errs = append(errs, writer.Close())
	}
	return errors.Join(errs...)
}

// createFile creates path with mode 0600 if it does not exist, and sets its
// mode to 0600 whatever the umask was or the file had.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}
