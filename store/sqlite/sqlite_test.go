package sqlite

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloverenclave/clover/store"
	"github.com/cloverenclave/clover/store/storetest"
)

// openTemp opens a store in a new temporary directory, closed at cleanup.
func openTemp(tb testing.TB) (*Store, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "site")
	s, err := Open(dir)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s, dir
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t)
		return s
	})
}

func TestPaths(t *testing.T) {
	s, dir := openTemp(t)
	want := []string{filepath.Join(dir, "records.db"), filepath.Join(dir, "keys.db")}
	if diff := cmp.Diff(want, s.Paths()); diff != "" {
		t.Errorf("Paths() mismatch (-want +got):\n%s", diff)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "site")
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r := store.Sealed{Subject: "alice", Ciphertext: []byte("sealed"), Updated: time.UnixMicro(1_700_000_000_123_456).UTC()}
	k := store.Key{Subject: "alice", Wrapped: []byte("wrapped"), KEKID: "kek-1", Handle: []byte("handle")}
	if err := s.PutRecord(ctx, r); err != nil {
		t.Fatalf("PutRecord: %v", err)
	}
	if _, err := s.PutKey(ctx, k); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(dir)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	gotR, err := s.GetRecord(ctx, "alice")
	if err != nil {
		t.Fatalf("GetRecord after reopen: %v", err)
	}
	if diff := cmp.Diff(r, gotR); diff != "" {
		t.Errorf("record after reopen (-want +got):\n%s", diff)
	}
	gotK, err := s.GetKey(ctx, "alice")
	if err != nil {
		t.Fatalf("GetKey after reopen: %v", err)
	}
	if diff := cmp.Diff(k, gotK); diff != "" {
		t.Errorf("key after reopen (-want +got):\n%s", diff)
	}
}

// versions returns the schema_version rows of d.
func versions(t *testing.T, d *db) []int {
	t.Helper()
	rows, err := d.reader.Query(`SELECT version FROM schema_version ORDER BY version`)
	if err != nil {
		t.Fatalf("query schema_version: %v", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("scan schema_version: %v", err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("schema_version rows: %v", err)
	}
	return vs
}

func wantVersions(n int) []int {
	vs := make([]int, n)
	for i := range vs {
		vs[i] = i + 1
	}
	return vs
}

func TestMigrationIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "site")
	for i := range 3 {
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		if diff := cmp.Diff(wantVersions(len(recordsMigrations())), versions(t, s.records)); diff != "" {
			t.Errorf("Open #%d: records.db schema_version (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(wantVersions(len(keysMigrations())), versions(t, s.keys)); diff != "" {
			t.Errorf("Open #%d: keys.db schema_version (-want +got):\n%s", i, diff)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i, err)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "site")
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.keys.writer.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (999, 0)`); err != nil {
		t.Fatalf("insert future version: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s, err := Open(dir); err == nil {
		s.Close()
		t.Fatal("Open of a keys.db at schema version 999 succeeded, want error")
	}
}

// raw returns the bytes SQLite has written for path: the database file and
// its WAL, if there is one.
func raw(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	wal, err := os.ReadFile(path + "-wal")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read %s-wal: %v", path, err)
	}
	return append(b, wal...)
}

// TestKeysApartFromRecords reads the raw files: records.db must hold no key
// material and keys.db no record ciphertext.
func TestKeysApartFromRecords(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "site")
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	wrapped := []byte("WRAPPED-DATA-KEY-7f3a9c1e-distinctive")
	handle := []byte("AUDIT-HANDLE-5b2d8e4f-distinctive")
	ciphertext := []byte("SEALED-RECORD-CIPHERTEXT-0c6e1a77")
	if _, err := s.PutKey(ctx, store.Key{Subject: "alice", Wrapped: wrapped, KEKID: "kek-1", Handle: handle}); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	if err := s.PutRecord(ctx, store.Sealed{Subject: "alice", Ciphertext: ciphertext, Updated: time.Now()}); err != nil {
		t.Fatalf("PutRecord: %v", err)
	}
	records, keys := s.Paths()[0], s.Paths()[1]

	check := func(when string) {
		t.Helper()
		r, k := raw(t, records), raw(t, keys)
		if !bytes.Contains(k, wrapped) || !bytes.Contains(r, ciphertext) {
			t.Fatalf("%s: the raw files do not hold what was written; this test reads the wrong files", when)
		}
		for name, b := range map[string][]byte{"wrapped key": wrapped, "handle": handle} {
			if bytes.Contains(r, b) {
				t.Errorf("%s: records.db holds the %s", when, name)
			}
		}
		if bytes.Contains(k, ciphertext) {
			t.Errorf("%s: keys.db holds the record's ciphertext", when)
		}
	}
	check("while open")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check("after close")
}

// TestErasedKeyOverwritten checks that DeleteKey leaves no copy of the key's
// bytes in keys.db or its WAL.
func TestErasedKeyOverwritten(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	wrapped := []byte("WRAPPED-DATA-KEY-to-be-erased-91d4")
	if _, err := s.PutKey(ctx, store.Key{Subject: "alice", Wrapped: wrapped, KEKID: "kek-1", Handle: []byte("h")}); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	if _, err := s.PutKey(ctx, store.Key{Subject: "bob", Wrapped: []byte("bob's key"), KEKID: "kek-1", Handle: []byte("h2")}); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	keys := s.Paths()[1]
	if !bytes.Contains(raw(t, keys), wrapped) {
		t.Fatal("keys.db does not hold the key before erasure; this test reads the wrong files")
	}
	if err := s.DeleteKey(ctx, "alice"); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if bytes.Contains(raw(t, keys), wrapped) {
		t.Error("keys.db still holds the erased key's bytes")
	}
}

func TestFileModes(t *testing.T) {
	s, dir := openTemp(t)
	ctx := context.Background()
	if err := s.PutRecord(ctx, store.Sealed{Subject: "alice", Ciphertext: []byte("x"), Updated: time.Now()}); err != nil {
		t.Fatalf("PutRecord: %v", err)
	}
	if _, err := s.PutKey(ctx, store.Key{Subject: "alice", Wrapped: []byte("w"), KEKID: "k", Handle: []byte("h")}); err != nil {
		t.Fatalf("PutKey: %v", err)
	}
	wantMode(t, dir, 0o700)
	for _, p := range s.Paths() {
		wantMode(t, p, 0o600)
		// SQLite gives the WAL and shared-memory files its database's mode.
		for _, suffix := range []string{"-wal", "-shm"} {
			wantMode(t, p+suffix, 0o600)
		}
	}
}

// TestPragmas checks the durability and safety settings of each connection.
func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	for _, d := range []*db{s.records, s.keys} {
		name := filepath.Base(d.path)
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "2", // FULL
			"foreign_keys": "1",
			"busy_timeout": "10000",
		} {
			var got string
			if err := d.writer.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", name, pragma, err)
			}
			if got != want {
				t.Errorf("%s writer: PRAGMA %s = %q, want %q", name, pragma, got, want)
			}
		}
		if _, err := d.reader.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (1000, 0)`); err == nil {
			t.Errorf("%s: a write through the read-only pool succeeded", name)
		}
	}
	var secure string
	if err := s.keys.writer.QueryRow("PRAGMA secure_delete").Scan(&secure); err != nil {
		t.Fatalf("PRAGMA secure_delete: %v", err)
	}
	if secure != "1" {
		t.Errorf("keys.db: PRAGMA secure_delete = %q, want 1", secure)
	}
}

func TestExistingFileModeTightened(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "records.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	wantMode(t, path, 0o600)
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

// TestConcurrentReadersAndWriter runs writers and readers of the same
// subjects together (run it with -race); every read must see a whole record
// as some write left it.
func TestConcurrentReadersAndWriter(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	const (
		subjects = 4
		writes   = 50
		readers  = 8
	)
	base := time.UnixMicro(1_700_000_000_000_000).UTC()
	record := func(subject, i int) store.Sealed {
		c := make([]byte, 512)
		for j := range len(c) / 8 {
			binary.BigEndian.PutUint64(c[j*8:], uint64(i))
		}
		return store.Sealed{Subject: fmt.Sprint("s", subject), Ciphertext: c, Updated: base.Add(time.Duration(i) * time.Microsecond)}
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, subjects+readers)
	for sub := range subjects {
		wg.Go(func() {
			for i := range writes {
				if err := s.PutRecord(ctx, record(sub, i)); err != nil {
					errs <- fmt.Errorf("PutRecord: %w", err)
					return
				}
			}
		})
	}
	var rg sync.WaitGroup
	for r := range readers {
		rg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				sub := r % subjects
				got, err := s.GetRecord(ctx, fmt.Sprint("s", sub))
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("GetRecord: %w", err)
					return
				}
				i := int(got.Updated.Sub(base) / time.Microsecond)
				if diff := cmp.Diff(record(sub, i), got); diff != "" {
					errs <- fmt.Errorf("GetRecord returned a torn record (-want +got):\n%s", diff)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for sub := range subjects {
		got, err := s.GetRecord(ctx, fmt.Sprint("s", sub))
		if err != nil {
			t.Fatalf("final GetRecord: %v", err)
		}
		if diff := cmp.Diff(record(sub, writes-1), got); diff != "" {
			t.Errorf("final record of s%d (-want +got):\n%s", sub, diff)
		}
	}
}

// prefill writes n records of 1 KB in one transaction, for benchmarks.
func prefill(b *testing.B, s *Store, n int) {
	b.Helper()
	tx, err := s.records.writer.Begin()
	if err != nil {
		b.Fatal(err)
	}
	stmt := tx.Stmt(s.putRecord)
	c := make([]byte, 1024)
	now := time.Now().UnixMicro()
	for i := range n {
		if _, err := stmt.Exec(fmt.Sprintf("subject-%06d", i), c, now); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

const benchRows = 10_000

func BenchmarkPutRecord(b *testing.B) {
	s, _ := openTemp(b)
	ctx := context.Background()
	r := store.Sealed{Ciphertext: make([]byte, 1024), Updated: time.Now()}
	i := 0
	for b.Loop() {
		r.Subject = fmt.Sprintf("subject-%06d", i%benchRows)
		if err := s.PutRecord(ctx, r); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetRecord(b *testing.B) {
	s, _ := openTemp(b)
	prefill(b, s, benchRows)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.GetRecord(ctx, fmt.Sprintf("subject-%06d", i%benchRows)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.GetRecord(ctx, fmt.Sprintf("subject-%06d", i%benchRows)); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
	})
}

func BenchmarkGetKey(b *testing.B) {
	s, _ := openTemp(b)
	ctx := context.Background()
	k := store.Key{Subject: "alice", Wrapped: make([]byte, 60), KEKID: "kek-1", Handle: make([]byte, 16)}
	if _, err := s.PutKey(ctx, k); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.GetKey(ctx, "alice"); err != nil {
			b.Fatal(err)
		}
	}
}
