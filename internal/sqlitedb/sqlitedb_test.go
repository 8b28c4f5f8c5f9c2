package sqlitedb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// openTemp opens a new file in a temporary directory with 2 readers.
func openTemp(t *testing.T, o Options) (path string, writer, reader *sql.DB) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "test.db")
	writer, reader, err := Open(path, 2, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := Close(writer, reader); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return path, writer, reader
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %#o, want %#o", filepath.Base(path), got, want)
	}
}

// TestFileMode checks the database and its -wal and -shm files are 0600
// under a umask that would let anyone read them, for a new file and for an
// existing one of mode 0644. It changes the process's umask, so it does not
// run in parallel.
func TestFileMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wantMode(t, existing, 0o644) // the umask let the file be created readable
	for _, path := range []string{filepath.Join(dir, "new.db"), existing} {
		w, r, err := Open(path, 1, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, err := w.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
			t.Fatalf("create table: %v", err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			wantMode(t, p, 0o600)
		}
		if err := Close(w, r); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestPragmas(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want map[string]string
	}{
		{"zero options", Options{}, map[string]string{
			"synchronous": "2", "foreign_keys": "0", "secure_delete": "0",
		}},
		{"full, foreign keys, secure delete", Options{Synchronous: Full, ForeignKeys: true, SecureDelete: true}, map[string]string{
			"synchronous": "2", "foreign_keys": "1", "secure_delete": "1",
		}},
		{"normal", Options{Synchronous: Normal}, map[string]string{
			"synchronous": "1", "foreign_keys": "0", "secure_delete": "0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, w, r := openTemp(t, tt.o)
			want := map[string]string{"journal_mode": "wal", "busy_timeout": "10000"}
			for k, v := range tt.want {
				want[k] = v
			}
			for name, v := range want {
				if got := pragma(t, w, name); got != v {
					t.Errorf("writer: PRAGMA %s = %q, want %q", name, got, v)
				}
			}
			for name, v := range map[string]string{"journal_mode": "wal", "busy_timeout": "10000", "query_only": "1"} {
				if got := pragma(t, r, name); got != v {
					t.Errorf("reader: PRAGMA %s = %q, want %q", name, got, v)
				}
			}
		})
	}
}

// TestPoolSizes checks the writer is one connection, and that its writes,
// from many goroutines, queue for it rather than fail.
func TestPoolSizes(t *testing.T) {
	_, w, r := openTemp(t, Options{})
	if got := w.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer: %d connections at most, want 1", got)
	}
	if got := r.Stats().MaxOpenConnections; got != 2 {
		t.Errorf("reader: %d connections at most, want 2", got)
	}
	const goroutines, increments = 8, 25
	incrementConcurrently(t, w, goroutines, increments)
	var v int
	if err := r.QueryRow(`SELECT v FROM n`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != goroutines*increments {
		t.Errorf("reader sees %d, want %d", v, goroutines*increments)
	}
}

// incrementConcurrently creates table n in db, holding 0, and has goroutines
// goroutines add 1 to it increments times each.
func incrementConcurrently(t *testing.T, db *sql.DB, goroutines, increments int) {
	t.Helper()
	if _, err := db.Exec(`CREATE TABLE n (v INTEGER NOT NULL); INSERT INTO n VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for range increments {
				if err := increment(db); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("increment: %v", err)
	}
}

// increment reads then writes in one transaction.
func increment(db *sql.DB) (err error) {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	var v int
	if err := tx.QueryRow(`SELECT v FROM n`).Scan(&v); err != nil {
		return err
	}
	if _, err := tx.Exec(`UPDATE n SET v = ?`, v+1); err != nil {
		return err
	}
	return tx.Commit()
}

func TestReadersCannotWrite(t *testing.T) {
	_, w, r := openTemp(t, Options{})
	if _, err := w.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO t VALUES (1)`,
		`CREATE TABLE u (x INTEGER)`,
		`PRAGMA query_only = 0; INSERT INTO t VALUES (1)`, // mode=ro holds even without query_only
	} {
		conn, err := r.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(context.Background(), q); err == nil {
			t.Errorf("reader: %q succeeded", q)
		}
		// A connection whose query_only was turned off must not go back to
		// the pool for the next statement.
		conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
	}
	var n int
	if err := w.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("table holds %d rows written through the readers, want 0", n)
	}
}

// TestCloseCheckpoints checks Close leaves no -wal file: the readers close
// first, so the writer's close is the last and checkpoints.
func TestCloseCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	w, r, err := Open(path, 2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(`CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	var x int
	if err := r.QueryRow(`SELECT x FROM t`).Scan(&x); err != nil || x != 42 {
		t.Fatalf("reader: %d, %v; want 42", x, err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no -wal file while open: %v", err)
	}
	if err := Close(w, r); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("-wal file after Close: %v, want it gone", err)
	}
	if err := Close(nil, nil); err != nil {
		t.Errorf("Close(nil, nil) = %v", err)
	}
}

// TestOpenPool checks a shared pool: its size, its settings, and that two
// write transactions held on two of its connections are serialised by
// SQLite's lock, the second waiting for the first.
func TestOpenPool(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pool.db")
	db, err := OpenPool(path, 3, Options{Synchronous: Normal})
	if err != nil {
		t.Fatalf("OpenPool: %v", err)
	}
	defer db.Close()
	if got := db.Stats().MaxOpenConnections; got != 3 {
		t.Errorf("%d connections at most, want 3", got)
	}
	if got := pragma(t, db, "synchronous"); got != "1" {
		t.Errorf("PRAGMA synchronous = %q, want 1 (NORMAL)", got)
	}
	if got := pragma(t, db, "journal_mode"); got != "wal" {
		t.Errorf("PRAGMA journal_mode = %q, want wal", got)
	}
	wantMode(t, path, 0o600)
	incrementConcurrently(t, db, 4, 10)
	var v int
	if err := db.QueryRow(`SELECT v FROM n`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != 40 {
		t.Errorf("v = %d, want 40: a read-then-write transaction lost an update", v)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	tests := []struct {
		name string
		open func() error
		want string
	}{
		{"unknown synchronous", func() error {
			_, _, err := Open(path, 1, Options{Synchronous: "OFF"})
			return err
		}, `synchronous "OFF"`},
		{"no readers", func() error {
			_, _, err := Open(path, 0, Options{})
			return err
		}, "0 readers"},
		{"no connections", func() error {
			_, err := OpenPool(path, 0, Options{})
			return err
		}, "0 connections"},
		{"missing directory", func() error {
			_, _, err := Open(filepath.Join(dir, "missing", "x.db"), 1, Options{})
			return err
		}, "create " + filepath.Join(dir, "missing", "x.db")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.open()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one with %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("rejected options created the file: %v", err)
	}
}
