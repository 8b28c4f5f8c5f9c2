package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// busyTimeout is how long a connection waits for a lock held by another
// connection (or process) before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// db is one SQLite file with its single writer connection and its pool of
// read-only connections.
type db struct {
	path   string
	writer *sql.DB
	reader *sql.DB
}

// openDB creates path (mode 0600) if needed, opens its writer, applies
// migrations, then opens its readers. secureDelete makes SQLite overwrite
// deleted content with zeros.
func openDB(path string, migrations []string, secureDelete bool) (*db, error) {
	if err := createFile(path); err != nil {
		return nil, err
	}
	d := &db{path: path}
	if err := d.open(migrations, secureDelete); err != nil {
		return nil, errors.Join(err, d.close())
	}
	return d, nil
}

func (d *db) open(migrations []string, secureDelete bool) error {
	var err error
	d.writer, err = sql.Open("sqlite", writerDSN(d.path, secureDelete))
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", d.path, err)
	}
	// One connection serialises all writes: no SQLITE_BUSY between writers
	// of this process, and BEGIN IMMEDIATE transactions never deadlock.
	d.writer.SetMaxOpenConns(1)
	d.writer.SetMaxIdleConns(1)
	d.writer.SetConnMaxLifetime(0)
	d.writer.SetConnMaxIdleTime(0)

	if err := migrate(context.Background(), d.writer, migrations); err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", d.path, err)
	}

	// Readers open after the writer has put the file in WAL mode.
	d.reader, err = sql.Open("sqlite", readerDSN(d.path))
	if err != nil {
		return fmt.Errorf("sqlite: open %s read-only: %w", d.path, err)
	}
	d.reader.SetMaxOpenConns(readers)
	d.reader.SetMaxIdleConns(readers)
	d.reader.SetConnMaxLifetime(0)
	d.reader.SetConnMaxIdleTime(0)
	if err := d.reader.Ping(); err != nil {
		return fmt.Errorf("sqlite: open %s read-only: %w", d.path, err)
	}
	return nil
}

// close closes the readers, then the writer (which checkpoints the WAL).
func (d *db) close() error {
	var errs []error
	if d.reader != nil {
		errs = append(errs, d.reader.Close())
	}
	if d.writer != nil {
		errs = append(errs, d.writer.Close())
	}
	return errors.Join(errs...)
}

// checkpoint copies the WAL into the database file and truncates the WAL to
// zero bytes, waiting (up to the busy timeout) for readers to finish.
func (d *db) checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	err := d.writer.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", d.path, err)
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint %s: database busy", d.path)
	}
	return nil
}

// createFile creates path with mode 0600 if it does not exist, and sets the
// mode to 0600 whatever the umask was or the file had.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("sqlite: chmod %s: %w", path, err)
	}
	return nil
}

// writerDSN is the URI of a read-write connection: WAL, synchronous=FULL
// (every commit is fsynced), foreign keys on, and transactions that take the
// write lock when they begin.
func writerDSN(path string, secureDelete bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	if secureDelete {
		q.Add("_pragma", "secure_delete(1)")
	}
	q.Set("_txlock", "immediate")
	return fileURI(path, q)
}

// readerDSN is the URI of a read-only connection.
func readerDSN(path string) string {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "query_only(1)")
	return fileURI(path, q)
}

// fileURI is a SQLite "file:" URI for the absolute path with query q.
func fileURI(path string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}
