package subjectindex

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// oldSchema is the schema of format 0, as earlier versions created it.
const oldSchema = `CREATE TABLE accesses (
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
CREATE INDEX accesses_by_epoch_subject ON accesses (log_index >> 16, substr(subject, 1, 16))`

// writeOldFile writes items to a new file of format 0, as earlier versions
// did: roles and fields as JSON arrays, never null.
func writeOldFile(t *testing.T, path string, items []Item) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(oldSchema); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		roles, fields := it.Roles, it.Fields
		if roles == nil {
			roles = []string{}
		}
		if fields == nil {
			fields = []Field{}
		}
		r, err := json.Marshal(roles)
		if err != nil {
			t.Fatal(err)
		}
		f, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO accesses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, int64(it.Index), it.Subject,
			it.Time.UnixMicro(), it.Kind, it.Decision, it.ActorType, string(r), it.Country, it.Purpose, string(f), it.Status); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// v1Schema is the schema of format 1, as the previous version created it.
const v1Schema = `CREATE TABLE accesses (
	log_index  INTEGER NOT NULL PRIMARY KEY,
	subject    TEXT    NOT NULL,
	time       INTEGER NOT NULL,
	kind       TEXT    NOT NULL,
	decision   TEXT    NOT NULL,
	actor_type TEXT    NOT NULL,
	roles      BLOB    NOT NULL,
	country    TEXT    NOT NULL,
	purpose    TEXT    NOT NULL,
	fields     BLOB    NOT NULL,
	status     INTEGER NOT NULL
) STRICT;
CREATE TABLE words (
	id   INTEGER NOT NULL PRIMARY KEY,
	word TEXT    NOT NULL UNIQUE
) STRICT;
CREATE INDEX accesses_by_epoch_subject ON accesses (log_index >> 16, substr(subject, 1, 16));
PRAGMA user_version = 1`

// writeV1File writes items to a new file of format 1, as the previous
// version did: roles and fields as blobs, with words the words table.
func writeV1File(t *testing.T, path string, words []string, items []Item) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(v1Schema); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for id, w := range words {
		if _, err := tx.Exec(`INSERT INTO words VALUES (?, ?)`, id, w); err != nil {
			t.Fatal(err)
		}
	}
	d := emptyDict.with(words...)
	for _, it := range items {
		roles, _ := appendRoles(nil, d, it.Roles)
		fields, _ := appendFields(nil, d, it.Fields)
		if _, err := tx.Exec(`INSERT INTO accesses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, int64(it.Index), it.Subject,
			it.Time.UnixMicro(), it.Kind, it.Decision, it.ActorType, roles, it.Country, it.Purpose, fields, it.Status); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// columnsOf returns the names of table's columns.
func columnsOf(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenConvertsOldFile opens a file of format 0, with more rows than
// are converted at a time, across epochs, awkward strings among them: it
// lists what it listed before, in the new format, and takes new items.
func TestOpenConvertsOldFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "subjects.db")
	var items, wantA []Item
	for i := range convertBatch + 300 {
		s := subjB
		if i%5 == 0 {
			s = subjA
		}
		it := item(uint64(i)*13, s) // 0 .. ~110,000: two epochs
		switch i % 4 {
		case 1:
			it.Roles, it.Fields = nil, nil
		case 2:
			it.Roles = []string{"ops", "日本語", strings.Repeat("long", 40), "<&>"}
			it.Fields = []Field{{"città", "redacted"}, {"", ""}, {"email", "withheld"}, {strings.Repeat("n", 100), "generalised"}}
		case 3:
			it.Fields = []Field{{"email", "masked"}, {"full_name", "raw"}, {"phone", "pseudonym"}, {"birth_date", "generalised"},
				{"country", "raw"}, {"iban", "masked"}, {"address", "withheld"}, {"device_id", "pseudonym"}, {fmt.Sprintf("f%d", i), "raw"}}
		}
		items = append(items, it)
		if s == subjA {
			want := it
			if want.Roles == nil {
				want.Roles, want.Fields = []string{}, []Field{}
			}
			wantA = append(wantA, want)
		}
	}
	bad := item(uint64(len(items))*13, subjA)
	bad.Roles, bad.Fields = []string{"bad\xffrole"}, []Field{{"na\xc3me", "fo\xffrm"}}
	items = append(items, bad)
	good := bad
	good.Roles, good.Fields = []string{"bad\uFFFDrole"}, []Field{{"na\uFFFDme", "fo\uFFFDrm"}}
	wantA = append(wantA, good)
	writeOldFile(t, path, items)

	x := open(t, path)
	if diff := cmp.Diff(wantA, listAll(t, x, subjA)); diff != "" {
		t.Errorf("List after conversion (-want +got):\n%s", diff)
	}
	if got := listAll(t, x, subjB); len(got) != len(items)-len(wantA) {
		t.Errorf("List of the other subject: %d items, want %d", len(got), len(items)-len(wantA))
	}
	if v := userVersion(t, x.db); v != formatVersion {
		t.Errorf("user_version = %d, want %d", v, formatVersion)
	}
	var tables []string
	rows, err := x.db.Query(`SELECT type || ' ' || name FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if diff := cmp.Diff([]string{"table accesses", "index accesses_by_epoch_subject", "table words"}, tables); diff != "" {
		t.Errorf("schema after conversion (-want +got):\n%s", diff)
	}
	var texts int
	if err := x.db.QueryRow(`SELECT count(*) FROM accesses WHERE typeof(row) != 'blob'`).Scan(&texts); err != nil || texts != 0 {
		t.Errorf("%d rows not converted (%v)", texts, err)
	}

	// New items go in as usual, and the file is not converted again.
	next := item(1<<20, subjA)
	if err := x.Add(ctx, next); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y := open(t, path)
	if diff := cmp.Diff(append(wantA, next), listAll(t, y, subjA)); diff != "" {
		t.Errorf("List after reopening (-want +got):\n%s", diff)
	}
}

// TestOpenOldFileWithBadRow opens a file of format 0 with a row that is
// not JSON: Open fails, says how to rebuild the index, and leaves the file
// as it was.
func TestOpenOldFileWithBadRow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subjects.db")
	writeOldFile(t, path, []Item{item(1, subjA), item(2, subjA)})
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE accesses SET fields = '[{"name":' WHERE log_index = 2`); err != nil {
		t.Fatal(err)
	}
	x, err := Open(path)
	if err == nil {
		x.Close()
		t.Fatal("Open of a file with a malformed row succeeded")
	}
	if !strings.Contains(err.Error(), "item 2: fields") || !strings.Contains(err.Error(), "clover log reindex") {
		t.Errorf("Open = %v, want the item and the way to rebuild", err)
	}
	if v := userVersion(t, db); v != 0 {
		t.Errorf("user_version = %d after a failed conversion", v)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM accesses WHERE typeof(fields) = 'text'`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d rows of format 0 after a failed conversion (%v), want 2", n, err)
	}
}

// TestOpenConvertsV1File opens a file of format 1, with more rows than are
// converted at a time, across epochs, with words interned and inline and
// values that are not valid UTF-8: it lists what format 1 listed, keeps
// the words' ids, and takes new items.
func TestOpenConvertsV1File(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "subjects.db")
	words := []string{"support", "email", "full_name", "phone"}
	var items, wantA []Item
	for i := range convertBatch + 300 {
		s := subjB
		if i%5 == 0 {
			s = subjA
		}
		it := item(uint64(i)*13, s) // 0 .. ~110,000: two epochs
		switch i % 4 {
		case 1:
			it.Roles, it.Fields = nil, nil
		case 2:
			it.Roles = []string{"ops", "日本語", strings.Repeat("long", 40), "support"}
			it.Fields = []Field{{"città", "redacted"}, {"", ""}, {"email", "withheld"}, {strings.Repeat("n", 100), "generalised"}}
		case 3:
			it.Kind, it.Decision, it.ActorType, it.Purpose = "rehome", "", "robot\xff", "a\x00b"
			it.Time, it.Status = time.UnixMicro(-1234567), -1
			it.Fields = []Field{{"email", "masked"}, {"full_name", "raw"}, {"phone", "pseudonym"}, {fmt.Sprintf("f%d", i), "raw"}}
		}
		items = append(items, it)
		if s == subjA {
			wantA = append(wantA, normalised(it))
		}
	}
	writeV1File(t, path, words, items)
	// A row written by hand, to pin format 1: roles support (id 0) and ops
	// (inline); fields email (id 1) masked, and city (inline) odd (inline).
	known := item(uint64(len(items))*13, subjA)
	known.Roles, known.Fields = []string{"support", "ops"}, []Field{{"email", "masked"}, {"city", "odd"}}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO accesses VALUES (?, ?, ?, ?, ?, ?, X'020100036f7073', ?, ?, X'0213070463697479036f6464', ?)`,
		int64(known.Index), known.Subject, known.Time.UnixMicro(), known.Kind, known.Decision, known.ActorType,
		known.Country, known.Purpose, known.Status); err != nil {
		t.Fatal(err)
	}
	wantA = append(wantA, known)

	var logged bytes.Buffer
	x, err := OpenLogged(path, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	for _, want := range []string{"msg=\"converting the subject access index", "from_format=1 to_format=2",
		fmt.Sprintf("msg=\"converted the subject access index\" path=%s rows=%d", path, len(items)+1)} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("log %q lacks %q", logged.String(), want)
		}
	}
	if diff := cmp.Diff(wantA, listAll(t, x, subjA)); diff != "" {
		t.Errorf("List after conversion (-want +got):\n%s", diff)
	}
	if got := listAll(t, x, subjB); len(got) != len(items)+1-len(wantA) {
		t.Errorf("List of the other subject: %d items, want %d", len(got), len(items)+1-len(wantA))
	}
	if v := userVersion(t, x.db); v != formatVersion {
		t.Errorf("user_version = %d, want %d", v, formatVersion)
	}
	if diff := cmp.Diff([]string{"log_index", "subject", "row"}, columnsOf(t, x.db, "accesses")); diff != "" {
		t.Errorf("columns after conversion (-want +got):\n%s", diff)
	}
	if got := wordsOf(t, x); len(got) < len(words) || !slices.Equal(words, got[:len(words)]) {
		t.Errorf("words after conversion %q, want %q first", got, words)
	}

	next := item(1<<20, subjA)
	if err := x.Add(ctx, next); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y := open(t, path)
	if diff := cmp.Diff(append(wantA, next), listAll(t, y, subjA)); diff != "" {
		t.Errorf("List after reopening (-want +got):\n%s", diff)
	}
}

// TestOpenV1FileWithBadRow opens a file of format 1 with a row whose
// fields blob is malformed: Open fails, names the item and says how to
// rebuild the index, and leaves the file as it was.
func TestOpenV1FileWithBadRow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subjects.db")
	writeV1File(t, path, []string{"support"}, []Item{item(1, subjA), item(2, subjA)})
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE accesses SET fields = X'0500' WHERE log_index = 2`); err != nil {
		t.Fatal(err)
	}
	x, err := Open(path)
	if err == nil {
		x.Close()
		t.Fatal("Open of a file with a malformed row succeeded")
	}
	if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), "item 2: fields") || !strings.Contains(err.Error(), "clover log reindex") {
		t.Errorf("Open = %v, want errMalformed, the item and the way to rebuild", err)
	}
	if v := userVersion(t, db); v != 1 {
		t.Errorf("user_version = %d after a failed conversion, want 1", v)
	}
	if diff := cmp.Diff([]string{"log_index", "subject", "time", "kind", "decision", "actor_type", "roles", "country", "purpose", "fields", "status"},
		columnsOf(t, db, "accesses")); diff != "" {
		t.Errorf("columns after a failed conversion (-want +got):\n%s", diff)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM accesses`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d rows after a failed conversion (%v), want 2", n, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'accesses_old'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("accesses_old left after a failed conversion (%d, %v)", n, err)
	}
}

// TestOpenNewerFormat refuses a file of a format this version cannot read,
// and one of no format at all.
func TestOpenNewerFormat(t *testing.T) {
	for _, c := range []struct {
		version int
		newer   bool
	}{
		{formatVersion + 1, true},
		{math.MaxInt32, true},
		{-1, false},
	} {
		path := filepath.Join(t.TempDir(), "subjects.db")
		x := open(t, path)
		if _, err := x.db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, c.version)); err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		y, err := Open(path)
		if err == nil {
			y.Close()
			t.Errorf("Open of a file of format %d succeeded", c.version)
			continue
		}
		if errors.Is(err, ErrNewerFormat) != c.newer {
			t.Errorf("Open of a file of format %d = %v; ErrNewerFormat: %v, want %v", c.version, err, !c.newer, c.newer)
		}
	}
}
