package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/auditlog/subjectindex"
)

func TestLogReindex(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	o := auditlog.Options{Dir: filepath.Join(data, "log"), Origin: "clover/eu", SignerKeyFile: filepath.Join(data, "secrets", "log-signer.key")}
	l, err := auditlog.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	subject := strings.Repeat("ab", 32)
	now := time.Now().UTC()
	actor := &auditlog.Actor{Sub: "support-1", Type: "Employee", Roles: []string{"support"}, Country: "IE"}
	entries := []*auditlog.Entry{
		{Time: now, RequestID: "w", Kind: auditlog.KindWrite, Action: "write", Actor: actor, Subject: subject, Decision: auditlog.Allow, Status: http.StatusCreated},
		{Time: now, RequestID: "r", Kind: auditlog.KindDecision, Action: "read", Actor: actor, Subject: subject, Decision: auditlog.Allow,
			Purpose: "support", Fields: []auditlog.Field{{Name: "email", Form: "masked"}}, Status: http.StatusOK},
		{Time: now, RequestID: "x", Kind: auditlog.KindDecision, Action: "read", Actor: actor, Subject: strings.Repeat("cd", 32), Decision: auditlog.Deny, Status: http.StatusForbidden},
	}
	var last uint64
	for _, e := range entries {
		if last, err = l.AppendEntry(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.WaitIntegrated(ctx, last); err != nil {
		t.Fatal(err)
	}

	// While the log is open (a server running), reindex refuses.
	if code, _, errOut := clover(t, "log", "reindex", "--data", data); code != 1 || !strings.Contains(errOut, "stop the server") {
		t.Fatalf("reindex beside an open log: exit %d: %s", code, errOut)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := clover(t, "log", "reindex", "--data", data)
	if code != 0 || !strings.Contains(out, "verified 3 entries; 3 accesses indexed") {
		t.Fatalf("reindex: exit %d: %s%s", code, out, errOut)
	}
	idx, err := subjectindex.Open(filepath.Join(data, "log", "subjects.db"))
	if err != nil {
		t.Fatal(err)
	}
	items, err := idx.List(ctx, subject, 10, 0)
	idx.Close()
	if err != nil || len(items) != 2 || items[0].Kind != "write" || items[1].Purpose != "support" || items[1].Fields[0].Form != "masked" {
		t.Fatalf("items after reindex: %+v, %v", items, err)
	}

	// A tampered log changes nothing: the index stays as it was.
	before, _ := os.ReadFile(filepath.Join(data, "log", "subjects.db"))
	bundle := filepath.Join(data, "log", "tree", "tile", "entries", "000.p", "3")
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 1
	os.WriteFile(bundle, b, 0o644)
	code, _, errOut = clover(t, "log", "reindex", "--data", data)
	if code != 1 || !strings.Contains(errOut, "does not verify") {
		t.Fatalf("reindex of a tampered log: exit %d: %s", code, errOut)
	}
	after, _ := os.ReadFile(filepath.Join(data, "log", "subjects.db"))
	if !bytes.Equal(before, after) {
		t.Fatal("a failed reindex changed the index")
	}
	if _, err := os.Stat(filepath.Join(data, "log", "subjects.db.rebuild")); err == nil {
		t.Fatal("a failed reindex left its temporary file")
	}

	// No log at all.
	if code, _, errOut := clover(t, "log", "reindex", "--data", t.TempDir()); code != 1 || !strings.Contains(errOut, "no audit log here") {
		t.Fatalf("reindex without a log: exit %d: %s", code, errOut)
	}
}
