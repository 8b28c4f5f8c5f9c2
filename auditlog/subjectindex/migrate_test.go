package subjectindex

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

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
	if err := x.db.QueryRow(`SELECT count(*) FROM accesses WHERE typeof(roles) != 'blob' OR typeof(fields) != 'blob'`).Scan(&texts); err != nil || texts != 0 {
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

// TestOpenNewerFormat refuses a file of a format this version cannot read.
func TestOpenNewerFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subjects.db")
	x := open(t, path)
	if _, err := x.db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, formatVersion+1)); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y, err := Open(path)
	if !errors.Is(err, ErrNewerFormat) {
		if y != nil {
			y.Close()
		}
		t.Fatalf("Open = %v, want ErrNewerFormat", err)
	}
}
