package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/config"
)

// cloverLog runs the CLI in-process with the log commands registered (root.go
// registers them in the binary) and returns its exit code and output.
func cloverLog(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	have := map[string]bool{}
	for _, c := range root.Commands() {
		have[c.Name()] = true
	}
	for _, c := range []*cobra.Command{newVerifyCmd(), newLogCmd()} {
		if !have[c.Name()] {
			root.AddCommand(c)
		}
	}
	root.SetArgs(args)
	code = 0
	if err := root.ExecuteContext(context.Background()); err != nil {
		errb.WriteString("clover: " + err.Error() + "\n")
		code = 1
		var ue usageError
		if errors.As(err, &ue) || isCobraUsage(err) {
			code = 2
		}
	}
	return code, out.String(), errb.String()
}

// testLog writes a log of n entries in DATA as the server would, and
// returns its verifier key and tree directory.
func testLog(t *testing.T, data string, n int) (*auditlog.Log, string) {
	t.Helper()
	cfg := config.Default()
	cfg.Data = data
	o := logOptions(cfg)
	o.CheckpointInterval = 100 * time.Millisecond
	o.BatchAge = 5 * time.Millisecond
	l, err := auditlog.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	appendEntries(t, l, n)
	return l, filepath.Join(o.Dir, "tree")
}

func appendEntries(t *testing.T, l *auditlog.Log, n int) {
	t.Helper()
	var last uint64
	for i := range n {
		idx, err := l.AppendEntry(context.Background(), &auditlog.Entry{
			Time:    time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC),
			Kind:    auditlog.KindRehome,
			Subject: auditlog.SubjectPseudonym([]byte("k"), []byte{byte(i)}),
			Site:    "no-hamar",
			Detail:  "moved_from=ie-dublin",
		})
		if err != nil {
			t.Fatal(err)
		}
		last = idx
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.WaitIntegrated(ctx, last); err != nil {
		t.Fatal(err)
	}
}

func TestLogKey(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := cloverLog(t, "log", "key", "--data", data)
	if code != 0 || !strings.HasPrefix(out, "clover/eu+") {
		t.Fatalf("log key = %d %q %q", code, out, errOut)
	}
	info, err := os.Stat(filepath.Join(data, "secrets", "log-signer.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("signer key: %v %v", info, err)
	}
	l, _ := testLog(t, data, 1)
	if strings.TrimSpace(out) != l.VerifierKey() {
		t.Fatalf("log key printed %q, the log signs with %q", out, l.VerifierKey())
	}
	if code, again, _ := cloverLog(t, "log", "key", "--data", data); code != 0 || again != out {
		t.Fatalf("log key is not stable: %q then %q", out, again)
	}
}

func TestVerifyCommand(t *testing.T) {
	data := t.TempDir()
	l, tree := testLog(t, data, 12)
	key := l.VerifierKey()
	state := filepath.Join(t.TempDir(), "state")

	code, out, errOut := cloverLog(t, "verify", "--log", tree, "--key", key, "--state", state)
	if code != 0 || !strings.HasPrefix(out, "log clover/eu: 12 entries, root ") || strings.Contains(out, "consistent") {
		t.Fatalf("first verify = %d %q %q", code, out, errOut)
	}
	saved12, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}

	appendEntries(t, l, 3)
	code, out, errOut = cloverLog(t, "verify", "--log", tree, "--key", key, "--state", state)
	if code != 0 || !strings.HasPrefix(out, "log clover/eu: 15 entries, root ") || !strings.HasSuffix(out, ", consistent with saved size 12\n") {
		t.Fatalf("second verify = %d %q %q", code, out, errOut)
	}

	// Over HTTP, one entry, printed.
	mux := http.NewServeMux()
	mux.Handle("/log/", http.StripPrefix("/log/", l.Handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code, out, errOut = cloverLog(t, "verify", "--log", srv.URL+"/log/", "--key", key, "--entry", "13", "--state", state)
	if code != 0 || !strings.Contains(out, `"kind": "rehome"`) || !strings.Contains(out, "log clover/eu: entry 13 included in 15 entries, root ") {
		t.Fatalf("verify --entry = %d %q %q", code, out, errOut)
	}
	if code, _, errOut = cloverLog(t, "verify", "--log", srv.URL+"/log/", "--key", key, "--entry", "15"); code != 1 || !strings.Contains(errOut, "out of range") {
		t.Fatalf("verify --entry 15 = %d %q", code, errOut)
	}

	// A rollback: the saved state is newer than what the log shows.
	older := filepath.Join(t.TempDir(), "tree")
	copyTree(t, tree, older)
	os.WriteFile(filepath.Join(older, "checkpoint"), saved12, 0o644)
	code, _, errOut = cloverLog(t, "verify", "--log", older, "--key", key, "--state", state)
	if code != 1 || errOut != "clover: checkpoint size 12 smaller than saved size 15\n" {
		t.Fatalf("rollback = %d %q", code, errOut)
	}
	if b, _ := os.ReadFile(state); bytes.Equal(b, saved12) {
		t.Fatal("a failed verification overwrote the state")
	}

	// A tampered tile.
	tampered := filepath.Join(t.TempDir(), "tree")
	copyTree(t, tree, tampered)
	p := filepath.Join(tampered, "tile", "0", "000.p", "15")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[3*32] ^= 1
	os.WriteFile(p, b, 0o644)
	code, _, errOut = cloverLog(t, "verify", "--log", tampered, "--key", key)
	if code != 1 || errOut != "clover: tile/0/000.p/15: hash 3 differs\n" {
		t.Fatalf("tampered = %d %q", code, errOut)
	}

	// Bad usage.
	for _, args := range [][]string{
		{"verify", "--log", tree},
		{"verify", "--key", key},
		{"verify", "--log", tree, "--key", "nonsense"},
		{"verify", "--log", filepath.Join(tree, "nowhere"), "--key", key},
		{"verify", "--log", "ftp://x/", "--key", key},
		{"verify", "--log", tree, "--key", key, "--entry", "-1"},
		{"verify", "--log", tree, "--key", key, "extra"},
	} {
		if code, _, errOut := cloverLog(t, args...); code != 2 {
			t.Errorf("clover %s = exit %d (%s), want 2", strings.Join(args, " "), code, errOut)
		}
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
