package auditlog

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const testOrigin = "clover.example/eu"

// testOptions are Options for a log under dir, tuned for quick tests.
func testOptions(t testing.TB, dir string) Options {
	return baseOptions(dir, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func baseOptions(dir string, log *slog.Logger) Options {
	return Options{
		Dir:                filepath.Join(dir, "log"),
		Origin:             testOrigin,
		SignerKeyFile:      filepath.Join(dir, "secrets", "log-signer.key"),
		Logger:             log,
		BatchAge:           5 * time.Millisecond,
		CheckpointInterval: 100 * time.Millisecond,
	}
}

func openLog(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// testEntry returns a distinct, valid, encoded entry.
func testEntry(t testing.TB, i int) []byte {
	t.Helper()
	e := readEntry()
	e.RequestID = fmt.Sprintf("req-%d", i)
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func appendN(t testing.TB, l *Log, from, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := from; i < from+n; i++ {
		e := testEntry(t, i)
		idx, err := l.Append(context.Background(), e)
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		if idx != uint64(i) {
			t.Fatalf("Append %d got index %d", i, idx)
		}
		out = append(out, e)
	}
	return out
}

// checkEntries checks that the log holds entries, from index 0, in its tree.
func checkEntries(t testing.TB, l *Log, entries [][]byte) {
	t.Helper()
	for i, want := range entries {
		got, err := l.Entry(context.Background(), uint64(i))
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("entry %d differs", i)
		}
	}
}

func waitIntegrated(t testing.TB, l *Log, index uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.WaitIntegrated(ctx, index); err != nil {
		t.Fatalf("WaitIntegrated(%d): %v", index, err)
	}
}

// copyDir copies a directory tree (regular files and directories).
func copyDir(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func journalPath(opts Options) string {
	return filepath.Join(opts.Dir, "journal", journalSegment(0))
}
