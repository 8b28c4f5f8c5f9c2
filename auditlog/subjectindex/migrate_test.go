package subjectindex

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	writeFile(t, path, oldSchema, nil, func(tx *sql.Tx, _ *dict, it Item) error {
		roles, fields := it.Roles, it.Fields
		if roles == nil {
			roles = []string{}
		}
		if fields == nil {
			fields = []Field{}
		}
		r, err := json.Marshal(roles)
		if err != nil {
			return err
		}
		f, err := json.Marshal(fields)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO accesses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, int64(it.Index), it.Subject,
			it.Time.UnixMicro(), it.Kind, it.Decision, it.ActorType, string(r), it.Country, it.Purpose, string(f), it.Status)
		return err
	}, items)
}

// v1Schema is the schema of format 1, as an earlier version created it.
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

// writeV1File writes items to a new file of format 1, as an earlier
// version did: roles and fields as blobs, with words the words table.
func writeV1File(t *testing.T, path string, words []string, items []Item) {
	t.Helper()
	writeFile(t, path, v1Schema, words, func(tx *sql.Tx, d *dict, it Item) error {
		roles, _ := appendRoles(nil, d, it.Roles)
		fields, _ := appendFields(nil, d, it.Fields)
		_, err := tx.Exec(`INSERT INTO accesses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, int64(it.Index), it.Subject,
			it.Time.UnixMicro(), it.Kind, it.Decision, it.ActorType, roles, it.Country, it.Purpose, fields, it.Status)
		return err
	}, items)
}

// v2Schema is the schema of format 2, as the previous version created it.
const v2Schema = `CREATE TABLE accesses (
	log_index INTEGER NOT NULL PRIMARY KEY,
	subject   TEXT    NOT NULL,
	row       BLOB    NOT NULL
) STRICT;
CREATE TABLE words (
	id   INTEGER NOT NULL PRIMARY KEY,
	word TEXT    NOT NULL UNIQUE
) STRICT;
CREATE INDEX accesses_by_epoch_subject ON accesses (log_index >> 16, substr(subject, 1, 16));
PRAGMA user_version = 2`

// writeV2File writes items to a new file of format 2, as the previous
// version did: a row blob of appendRow, with words the words table.
func writeV2File(t *testing.T, path string, words []string, items []Item) {
	t.Helper()
	writeFile(t, path, v2Schema, words, func(tx *sql.Tx, d *dict, it Item) error {
		row, _ := appendRow(nil, d, &it)
		_, err := tx.Exec(`INSERT INTO accesses VALUES (?, ?, ?)`, int64(it.Index), it.Subject, row)
		return err
	}, items)
}

// writeFile writes a new file of schema, its words table words, and
// items, each with insert, in WAL mode as every version of the index left
// its files.
func writeFile(t *testing.T, path, schema string, words []string, insert func(*sql.Tx, *dict, Item) error, items []Item) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA journal_mode = WAL; ` + schema); err != nil {
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
		if err := insert(tx, d, it); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// writeLegacyFile writes items to a new file of format, 0, 1 or 2, with
// words its words table (format 0 has none).
func writeLegacyFile(t *testing.T, path string, format int, words []string, items []Item) {
	t.Helper()
	switch format {
	case 0:
		writeOldFile(t, path, items)
	case 1:
		writeV1File(t, path, words, items)
	case 2:
		writeV2File(t, path, words, items)
	default:
		t.Fatalf("no legacy format %d", format)
	}
}

// execFile runs query with args on the file at path, outside any Index.
func execFile(t *testing.T, path, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
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

// schemaOf returns the file's tables and indexes, as "type name", but
// SQLite's own.
func schemaOf(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT type || ' ' || name FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name, type`)
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

// dump returns the rows of table in log order, as SQLite holds them,
// each its values in Go syntax.
func dump(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM ` + table + ` ORDER BY log_index`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%#v", vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpFile is dump of the file at path, outside any Index.
func dumpFile(t *testing.T, path, table string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dump(t, db, table)
}

// legacyFormats returns the table legacy's rows.
func legacyFormats(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT format FROM legacy`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var formats []int
	for rows.Next() {
		var f int
		if err := rows.Scan(&f); err != nil {
			t.Fatal(err)
		}
		formats = append(formats, f)
	}
	return formats
}

func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// legacyRows is how many rows the files of earlier formats in these tests
// hold: enough for two epochs at 13 log indexes apart.
const legacyRows = 8500

// legacyItems returns legacyRows items of subjA and subjB, every fifth
// subjA's, at 13 log indexes apart (two epochs), with words that are
// interned and that are not, roles and fields that are none, awkward
// values and strings that are not valid UTF-8. words are interned in the
// files of formats 1 and 2.
func legacyItems() (items []Item, words []string) {
	for i := range legacyRows {
		s := subjB
		if i%5 == 0 {
			s = subjA
		}
		it := item(uint64(i)*13, s)
		switch i % 4 {
		case 1:
			it.Roles, it.Fields = nil, nil
		case 2:
			it.Roles = []string{"ops", "日本語", strings.Repeat("long", 40), "support", "<&>", "bad\xffrole"}
			it.Fields = []Field{{"città", "redacted"}, {"", ""}, {"email", "withheld"}, {strings.Repeat("n", 100), "generalised"},
				{"na\xc3me", "fo\xffrm"}}
		case 3:
			it.Kind, it.Decision, it.ActorType, it.Purpose = "rehome", "", "robot\xff", "a\x00b"
			it.Time, it.Status = time.UnixMicro(-1234567), -1
			it.Fields = []Field{{"email", "masked"}, {"full_name", "raw"}, {"phone", "pseudonym"}, {"birth_date", "generalised"},
				{"country", "raw"}, {"iban", "masked"}, {"address", "withheld"}, {"device_id", "pseudonym"}, {fmt.Sprintf("f%d", i), "raw"}}
		}
		items = append(items, it)
	}
	return items, []string{"support", "email", "full_name", "phone"}
}

// listedOf returns the items of subject, as List lists them.
func listedOf(items []Item, subject string) []Item {
	var out []Item
	for _, it := range items {
		if it.Subject == subject {
			out = append(out, normalised(it))
		}
	}
	return out
}

// TestOpenKeepsV0File opens a file of format 0: see checkUpgrade.
func TestOpenKeepsV0File(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subjects.db")
	items, _ := legacyItems()
	writeOldFile(t, path, items)
	// Rows written by hand, to pin format 0: JSON as earlier versions
	// wrote it, with an escape, and empty.
	known := item(uint64(len(items))*13, subjA)
	known.Roles, known.Fields = []string{"support", "ops"}, []Field{{"email", "masked"}, {"c<ty", "odd"}}
	empty := item(known.Index+13, subjA)
	empty.Roles, empty.Fields = []string{}, []Field{}
	for _, c := range []struct {
		it            Item
		roles, fields string
	}{
		{known, `["support","ops"]`, `[{"name":"email","form":"masked"},{"name":"c\u003cty","form":"odd"}]`},
		{empty, `[]`, `[]`},
	} {
		execFile(t, path, `INSERT INTO accesses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, int64(c.it.Index), c.it.Subject,
			c.it.Time.UnixMicro(), c.it.Kind, c.it.Decision, c.it.ActorType, c.roles, c.it.Country, c.it.Purpose, c.fields, c.it.Status)
	}
	checkUpgrade(t, path, 0, nil, append(listedOf(items, subjA), known, empty), listedOf(items, subjB))
}

// TestOpenKeepsV1File opens a file of format 1: see checkUpgrade.
func TestOpenKeepsV1File(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subjects.db")
	items, words := legacyItems()
	writeV1File(t, path, words, items)
	// A row written by hand, to pin format 1: roles support (id 0) and ops
	// (inline); fields email (id 1) masked, and city (inline) odd (inline).
	known := item(uint64(len(items))*13, subjA)
	known.Roles, known.Fields = []string{"support", "ops"}, []Field{{"email", "masked"}, {"city", "odd"}}
	execFile(t, path, `INSERT INTO accesses VALUES (?, ?, ?, ?, ?, ?, X'020100036f7073', ?, ?, X'0213070463697479036f6464', ?)`,
		int64(known.Index), known.Subject, known.Time.UnixMicro(), known.Kind, known.Decision, known.ActorType,
		known.Country, known.Purpose, known.Status)
	checkUpgrade(t, path, 1, words, append(listedOf(items, subjA), known), listedOf(items, subjB))
}

// TestOpenKeepsV2File opens a file of format 2: see checkUpgrade.
func TestOpenKeepsV2File(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subjects.db")
	items, words := legacyItems()
	writeV2File(t, path, words, items)
	// Rows written by hand, to pin format 2 (as TestRowKnownAnswer does
	// appendRow): every value coded, with words support (id 0) and email
	// (id 1); and every value inline.
	coded := Item{Index: uint64(len(items)) * 13, Subject: subjA, Time: time.UnixMicro(1).UTC(), Kind: "decision", Decision: "allow",
		ActorType: "Employee", Roles: []string{"support"}, Country: "IE", Purpose: "care", Fields: []Field{{"email", "masked"}}, Status: 200}
	inline := Item{Index: coded.Index + 13, Subject: subjA, Time: time.UnixMicro(-1).UTC(), Kind: "rehome", Decision: "", ActorType: "robot",
		Roles: []string{"ops"}, Fields: []Field{{"city", "odd"}}, Status: -1}
	for _, c := range []struct {
		it  Item
		hex string
	}{
		{coded, "00" + "02" + "9003" + "024945" + "0463617265" + "0101" + "0113"},
		{inline, "3f" + "067265686f6d65" + "00" + "05726f626f74" + "01" + "01" + "00" + "00" + "0100036f7073" + "0107046369747903" + "6f6464"},
	} {
		row, err := hex.DecodeString(c.hex)
		if err != nil {
			t.Fatal(err)
		}
		execFile(t, path, `INSERT INTO accesses VALUES (?, ?, ?)`, int64(c.it.Index), c.it.Subject, row)
	}
	checkUpgrade(t, path, 2, words, append(listedOf(items, subjA), coded, inline), listedOf(items, subjB))
}

// checkUpgrade opens path, a file of an earlier format with words, whose
// items of subjA and subjB List returned as wantA and wantB. Open upgrades
// it at once: it copies no row, leaves the legacy table as it was, records
// its format and says so on the log; List returns what it returned
// before, and the new items the file takes; and the file reopens the same.
func checkUpgrade(t *testing.T, path string, format int, words []string, wantA, wantB []Item) {
	t.Helper()
	ctx := context.Background()
	before := dumpFile(t, path, legacyTable)
	if len(before) != len(wantA)+len(wantB) {
		t.Fatalf("the file holds %d rows, want %d", len(before), len(wantA)+len(wantB))
	}
	reopen := func() *Index {
		t.Helper()
		var logged bytes.Buffer
		x, err := OpenLogged(path, slog.New(slog.NewTextHandler(&logged, nil)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Close() })
		if got := logged.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, " level=INFO ") ||
			!strings.Contains(got, "subject access index: rows of an earlier format are read in place; `clover log reindex` rewrites them") ||
			!strings.Contains(got, fmt.Sprintf(" path=%s format=%d\n", path, format)) {
			t.Errorf("log %q: want one line that says the rows of format %d in %s are read in place", got, format, path)
		}
		if v := userVersion(t, x.db); v != formatVersion {
			t.Errorf("user_version = %d, want %d", v, formatVersion)
		}
		if diff := cmp.Diff([]int{format}, legacyFormats(t, x.db)); diff != "" {
			t.Errorf("table legacy (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(before, dump(t, x.db, legacyTable)); diff != "" {
			t.Errorf("the legacy table changed (-before +after):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"table access_rows", "index access_rows_by_epoch_subject", "table accesses",
			"index accesses_by_epoch_subject", "table legacy", "table words"}, schemaOf(t, x.db)); diff != "" {
			t.Errorf("schema (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"log_index", "subject", "row"}, columnsOf(t, x.db, rowsTable)); diff != "" {
			t.Errorf("columns of %s (-want +got):\n%s", rowsTable, diff)
		}
		return x
	}

	x := reopen()
	if n := countRows(t, x.db, rowsTable); n != 0 {
		t.Errorf("%d rows in %s after the upgrade, want none copied", n, rowsTable)
	}
	if got := wordsOf(t, x); !slices.Equal(words, got) {
		t.Errorf("words after the upgrade %q, want %q", got, words)
	}
	if diff := cmp.Diff(wantA, listAll(t, x, subjA)); diff != "" {
		t.Errorf("List after the upgrade (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantB, listAll(t, x, subjB)); diff != "" {
		t.Errorf("List of the other subject after the upgrade (-want +got):\n%s", diff)
	}

	// New items go to access_rows, with the words of the file.
	next := item(1<<20, subjA)
	next.Roles, next.Fields = []string{"support", "auditor"}, []Field{{"email", "raw"}, {"full_name", "masked"}, {"iban", "withheld"}}
	if err := x.Add(ctx, next); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append(slices.Clone(wantA), next), listAll(t, x, subjA)); diff != "" {
		t.Errorf("List after Add (-want +got):\n%s", diff)
	}
	if got := wordsOf(t, x); len(got) < len(words) || !slices.Equal(words, got[:len(words)]) {
		t.Errorf("words after Add %q, want %q first", got, words)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened, the file is as it was: nothing is upgraded again.
	y := reopen()
	if n := countRows(t, y.db, rowsTable); n != 1 {
		t.Errorf("%d rows in %s after reopening, want 1", n, rowsTable)
	}
	if diff := cmp.Diff(append(slices.Clone(wantA), next), listAll(t, y, subjA)); diff != "" {
		t.Errorf("List after reopening (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantB, listAll(t, y, subjB)); diff != "" {
		t.Errorf("List of the other subject after reopening (-want +got):\n%s", diff)
	}
}

// TestOpenNewFile makes a file of the current format, with no legacy
// table, and says nothing.
func TestOpenNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subjects.db")
	for range 2 {
		var logged bytes.Buffer
		x, err := OpenLogged(path, slog.New(slog.NewTextHandler(&logged, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if logged.Len() != 0 {
			t.Errorf("Open of a new file logged %q", logged.String())
		}
		if x.legacy != noLegacy {
			t.Errorf("legacy format %d in a new file", x.legacy)
		}
		if v := userVersion(t, x.db); v != formatVersion {
			t.Errorf("user_version = %d, want %d", v, formatVersion)
		}
		if diff := cmp.Diff([]string{"table access_rows", "index access_rows_by_epoch_subject", "table words"}, schemaOf(t, x.db)); diff != "" {
			t.Errorf("schema (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"log_index", "subject", "row"}, columnsOf(t, x.db, rowsTable)); diff != "" {
			t.Errorf("columns (-want +got):\n%s", diff)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestListAcrossTables lists, after an upgrade, items of the legacy table
// and new ones, interleaved, across epochs, one of them in both (added
// again: the new one is listed), from every place and with every limit
// around the boundaries between them.
func TestListAcrossTables(t *testing.T) {
	ctx := context.Background()
	at := func(idx uint64, subject string, status int) Item {
		it := item(idx, subject)
		it.Status = status
		return normalised(it)
	}
	const (
		old   = 200 // the status of legacy rows
		added = 201 // of rows added after the upgrade
		again = 202 // of the row added again
	)
	legacy := []Item{at(5, subjA, old), at(65534, subjA, old), at(65535, subjB, old), at(65536, subjA, old),
		at(65538, subjA, old), at(131075, subjA, old)}
	newer := []Item{at(65537, subjA, added), at(65538, subjA, again), at(65539, subjA, added), at(65541, subjB, added),
		at(65600, subjA, added), at(131072, subjA, added), at(131074, subjB, added), at(131080, subjA, added)}
	wantA := []Item{at(5, subjA, old), at(65534, subjA, old), at(65536, subjA, old), at(65537, subjA, added),
		at(65538, subjA, again), at(65539, subjA, added), at(65600, subjA, added), at(131072, subjA, added),
		at(131075, subjA, old), at(131080, subjA, added)}
	wantB := []Item{at(65535, subjB, old), at(65541, subjB, added), at(131074, subjB, added)}

	for format := range formatVersion {
		t.Run(fmt.Sprintf("format %d", format), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "subjects.db")
			writeLegacyFile(t, path, format, []string{"support"}, legacy)
			x := open(t, path)
			if err := x.Add(ctx, newer...); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantA, listAll(t, x, subjA)); diff != "" {
				t.Errorf("List (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantB, listAll(t, x, subjB)); diff != "" {
				t.Errorf("List of the other subject (-want +got):\n%s", diff)
			}
			for _, c := range []struct {
				limit int
				from  uint64
				want  []uint64
			}{
				{1, 0, []uint64{5}},
				{2, 6, []uint64{65534, 65536}},
				{3, 65535, []uint64{65536, 65537, 65538}},
				{1, 65538, []uint64{65538}},
				{2, 65540, []uint64{65600, 131072}},
				{5, 131073, []uint64{131075, 131080}},
				{10, 131081, []uint64{}},
			} {
				got, err := x.List(ctx, subjA, c.limit, c.from)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(c.want, indexes(got)); diff != "" {
					t.Errorf("List(%d, %d) (-want +got):\n%s", c.limit, c.from, diff)
				}
			}
			// Every place and limit: at, before and after each item, and at
			// the epochs' boundaries.
			froms := []uint64{0, 1 << epochBits, 2 << epochBits, 3 << epochBits, math.MaxInt64}
			for _, it := range append(slices.Clone(legacy), newer...) {
				froms = append(froms, it.Index-1, it.Index, it.Index+1)
			}
			for _, from := range froms {
				for limit := range len(wantA) + 2 {
					var want []Item
					for _, it := range wantA {
						if it.Index >= from && len(want) < limit {
							want = append(want, it)
						}
					}
					got, err := x.List(ctx, subjA, limit, from)
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("List(%d, %d) (-want +got):\n%s", limit, from, diff)
					}
				}
			}
			// Paged as the gateway pages, every page size.
			for size := 1; size <= 4; size++ {
				var got []Item
				for from := uint64(0); ; {
					page, err := x.List(ctx, subjA, size, from)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, page...)
					if len(page) < size {
						break
					}
					from = page[len(page)-1].Index + 1
				}
				if diff := cmp.Diff(wantA, got); diff != "" {
					t.Errorf("pages of %d (-want +got):\n%s", size, diff)
				}
			}
		})
	}
}

// TestLegacyBadRow opens a file of each earlier format with a row that
// cannot be decoded: Open succeeds (it reads no row); List fails naming
// the item when the row is to be listed, and only then; and once the item
// is added again, the new row hides the bad one.
func TestLegacyBadRow(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		format    int
		corrupt   string
		malformed bool // errMalformed, rather than JSON's error
		want      string
	}{
		{0, `UPDATE accesses SET fields = '[{"name":' WHERE log_index = 2`, false, "item 2: fields"},
		{1, `UPDATE accesses SET fields = X'0500' WHERE log_index = 2`, true, "item 2: fields"},
		{1, `UPDATE accesses SET roles = X'0109' WHERE log_index = 2`, false, "item 2: roles"},
		{2, `UPDATE accesses SET row = X'3f' WHERE log_index = 2`, true, "item 2"},
	} {
		path := filepath.Join(t.TempDir(), "subjects.db")
		writeLegacyFile(t, path, c.format, []string{"support", "email"}, []Item{item(1, subjA), item(2, subjA), item(3, subjA), item(4, subjB)})
		execFile(t, path, c.corrupt)
		x := open(t, path)
		if v := userVersion(t, x.db); v != formatVersion {
			t.Errorf("format %d: user_version = %d, want %d", c.format, v, formatVersion)
		}
		_, err := x.List(ctx, subjA, 10, 0)
		if err == nil || !strings.Contains(err.Error(), "subjectindex: "+c.want) || c.malformed && !errors.Is(err, errMalformed) {
			t.Errorf("format %d: List = %v, want an error naming %q (errMalformed: %v)", c.format, err, c.want, c.malformed)
		}
		for _, p := range []struct {
			subject string
			limit   int
			from    uint64
			want    []uint64
		}{
			{subjA, 1, 0, []uint64{1}},
			{subjA, 10, 3, []uint64{3}},
			{subjB, 10, 0, []uint64{4}},
		} {
			if got, err := x.List(ctx, p.subject, p.limit, p.from); err != nil || !slices.Equal(p.want, indexes(got)) {
				t.Errorf("format %d: List(%.4s, %d, %d) = %v, %v; want %v", c.format, p.subject, p.limit, p.from, indexes(got), err, p.want)
			}
		}
		again := item(2, subjA)
		again.Status = 403
		if err := x.Add(ctx, again); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]Item{item(1, subjA), again, item(3, subjA)}, listAll(t, x, subjA)); diff != "" {
			t.Errorf("format %d: List after adding item 2 again (-want +got):\n%s", c.format, diff)
		}
	}
}

// TestLegacyWordsOfAnotherConnection lists, with one Index, a legacy row
// of format 1 or 2 with a word that another Index on the file added after
// the first loaded the words (as a process of the previous version would
// have written it): List reloads the words, as for rows of access_rows.
func TestLegacyWordsOfAnotherConnection(t *testing.T) {
	ctx := context.Background()
	for _, format := range []int{1, 2} {
		path := filepath.Join(t.TempDir(), "subjects.db")
		writeLegacyFile(t, path, format, []string{"support"}, []Item{item(1, subjA)})
		a, b := open(t, path), open(t, path)
		// Of another subject: no row of subjA's in access_rows has it.
		two := item(2, subjB)
		two.Fields = []Field{{Name: "only_b", Form: "raw"}}
		if err := b.Add(ctx, two); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"support", "only_b"}, wordsOf(t, b)); diff != "" {
			t.Fatalf("format %d: words (-want +got):\n%s", format, diff)
		}
		// A legacy row with the word, by its id (1).
		three := item(3, subjA)
		three.Fields = []Field{{Name: "only_b", Form: "masked"}, {Name: "email", Form: "raw"}}
		d := emptyDict.with("support", "only_b")
		if format == 1 {
			roles, _ := appendRoles(nil, d, three.Roles)
			fields, _ := appendFields(nil, d, three.Fields)
			if !bytes.Contains(fields, []byte{2<<formBits | byte(formMasked)}) {
				t.Fatalf("fields blob %x does not refer to only_b by its id", fields)
			}
			execFile(t, path, `INSERT INTO accesses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, int64(three.Index), three.Subject,
				three.Time.UnixMicro(), three.Kind, three.Decision, three.ActorType, roles, three.Country, three.Purpose, fields, three.Status)
		} else {
			row, _ := appendRow(nil, d, &three)
			execFile(t, path, `INSERT INTO accesses VALUES (?, ?, ?)`, int64(three.Index), three.Subject, row)
		}
		if n := len(a.words.Load().words); n != 1 {
			t.Fatalf("format %d: a holds %d words before listing, want 1", format, n)
		}
		if diff := cmp.Diff([]Item{item(1, subjA), three}, listAll(t, a, subjA)); diff != "" {
			t.Errorf("format %d: a's List (-want +got):\n%s", format, diff)
		}
		if n := len(a.words.Load().words); n != 2 {
			t.Errorf("format %d: a holds %d words after listing, want 2", format, n)
		}
	}
}

// TestOpenReplacesFirstIndex opens a file of format 0 written by the
// first version, with an index of the whole pseudonym: the rows stay, the
// index is replaced by the by-epoch one.
func TestOpenReplacesFirstIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subjects.db")
	writeOldFile(t, path, []Item{item(1, subjA), item(70000, subjA), item(2, subjB)})
	execFile(t, path, `DROP INDEX accesses_by_epoch_subject; CREATE INDEX accesses_by_subject ON accesses (subject, log_index)`)
	before := dumpFile(t, path, legacyTable)
	y := open(t, path)
	var names []string
	rows, err := y.db.Query(`SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'accesses' AND sql IS NOT NULL ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	if diff := cmp.Diff([]string{"accesses_by_epoch_subject"}, names); diff != "" {
		t.Errorf("indexes after Open (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, dump(t, y.db, legacyTable)); diff != "" {
		t.Errorf("the legacy table changed (-before +after):\n%s", diff)
	}
	got, err := y.List(context.Background(), subjA, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint64{1, 70000}, indexes(got)); diff != "" {
		t.Errorf("List after Open (-want +got):\n%s", diff)
	}
}

// TestConcurrentUpgrade opens a file of format 1 from several goroutines
// at once, as several processes could: it is upgraded once.
func TestConcurrentUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "subjects.db")
	writeV1File(t, path, []string{"support"}, []Item{item(1, subjA)})
	var wg sync.WaitGroup
	xs := make([]*Index, 4)
	errs := make([]error, len(xs))
	for i := range xs {
		wg.Go(func() { xs[i], errs[i] = Open(path) })
	}
	wg.Wait()
	for i, x := range xs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() { x.Close() })
		if x.legacy != 1 {
			t.Errorf("Index %d: legacy format %d, want 1", i, x.legacy)
		}
		if diff := cmp.Diff([]Item{item(1, subjA)}, listAll(t, x, subjA)); diff != "" {
			t.Errorf("Index %d: List (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff([]int{1}, legacyFormats(t, xs[0].db)); diff != "" {
		t.Errorf("table legacy (-want +got):\n%s", diff)
	}
}

// TestOpenNewerFormat refuses a file of a format this version cannot read,
// and one of no format at all, and leaves it as it was.
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
		if err := x.Add(context.Background(), item(1, subjA)); err != nil {
			t.Fatal(err)
		}
		if _, err := x.db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, c.version)); err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		before, err := os.ReadFile(path)
		if err != nil {
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
		if !strings.Contains(err.Error(), fmt.Sprint(c.version)) {
			t.Errorf("Open of a file of format %d = %v, want the format named", c.version, err)
		}
		after, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("Open of a file of format %d changed it", c.version)
		}
	}
}

// TestOpenBadLegacyTable refuses a file whose table legacy does not name
// one earlier format of a table the file has.
func TestOpenBadLegacyTable(t *testing.T) {
	for _, c := range []struct {
		name, change, want string
	}{
		{"empty", `DELETE FROM legacy`, "table legacy holds [], want one format below 3"},
		{"two rows", `INSERT INTO legacy VALUES (1)`, "table legacy holds [1 1], want one format below 3"},
		{"current format", `UPDATE legacy SET format = 3`, "table legacy holds [3]"},
		{"negative", `UPDATE legacy SET format = -1`, "table legacy holds [-1]"},
		{"no table", `DROP TABLE accesses`, "table legacy names format 1, but there is no table accesses"},
	} {
		path := filepath.Join(t.TempDir(), "subjects.db")
		writeV1File(t, path, nil, []Item{item(1, subjA)})
		x := open(t, path)
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		execFile(t, path, c.change)
		y, err := Open(path)
		if err == nil {
			y.Close()
			t.Errorf("%s: Open succeeded", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: Open = %v, want %q and the path", c.name, err, c.want)
		}
	}
}
