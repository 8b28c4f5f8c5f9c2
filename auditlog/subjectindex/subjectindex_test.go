package subjectindex

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	subjA = strings.Repeat("a", 64)
	subjB = strings.Repeat("b", 64)
	t0    = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)
)

func item(idx uint64, subject string) Item {
	return Item{Index: idx, Subject: subject, Time: t0.Add(time.Duration(idx) * time.Second), Kind: "decision",
		Decision: "allow", ActorType: "Employee", Roles: []string{"support"}, Country: "IE", Purpose: "support",
		Fields: []Field{{Name: "email", Form: "masked"}}, Status: 200}
}

func open(t *testing.T, path string) *Index {
	t.Helper()
	x, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func indexes(items []Item) []uint64 {
	out := []uint64{}
	for _, it := range items {
		out = append(out, it.Index)
	}
	return out
}

func TestAddList(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log", "subjects.db")
	x := open(t, path)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("index file: %v %v", fi, err)
	}
	// Out of order, two subjects, in two batches.
	if err := x.Add(ctx, item(5, subjA), item(0, subjA), item(3, subjB)); err != nil {
		t.Fatal(err)
	}
	w := item(7, subjA)
	w.Kind, w.Fields, w.Purpose, w.Status, w.Roles = "write", nil, "", 0, []string{"ingest", "service"}
	if err := x.Add(ctx, item(2, subjA), w); err != nil {
		t.Fatal(err)
	}
	if err := x.Add(ctx); err != nil {
		t.Fatalf("empty Add: %v", err)
	}
	got, err := x.List(ctx, subjA, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{item(0, subjA), item(2, subjA), item(5, subjA), w}
	want[3].Fields = []Field{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	cases := []struct {
		subject string
		limit   int
		from    uint64
		want    []uint64
	}{
		{subjA, 2, 0, []uint64{0, 2}},
		{subjA, 2, 3, []uint64{5, 7}},
		{subjA, 10, 5, []uint64{5, 7}},
		{subjA, 10, 8, []uint64{}},
		{subjA, 0, 0, []uint64{}},
		{subjA, 10, math.MaxUint64, []uint64{}},
		{subjB, 10, 0, []uint64{3}},
		{strings.Repeat("c", 64), 10, 0, []uint64{}},
	}
	for _, c := range cases {
		got, err := x.List(ctx, c.subject, c.limit, c.from)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.want, indexes(got)); diff != "" {
			t.Errorf("List(%.4s, %d, %d) (-want +got):\n%s", c.subject, c.limit, c.from, diff)
		}
	}
}

func TestAddReplacesAndRollsBack(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	if err := x.Add(ctx, item(1, subjA)); err != nil {
		t.Fatal(err)
	}
	again := item(1, subjA)
	again.Status = 403
	if err := x.Add(ctx, again); err != nil {
		t.Fatalf("re-adding an index: %v", err)
	}
	// A bad item fails the whole batch: item 2 is not stored either.
	err := x.Add(ctx, item(2, subjA), item(math.MaxUint64, subjA))
	if !errors.Is(err, ErrInvalidItem) {
		t.Fatalf("Add out-of-range index = %v", err)
	}
	if err := x.Add(ctx, item(3, "")); !errors.Is(err, ErrInvalidItem) {
		t.Fatalf("Add without subject = %v", err)
	}
	if err := x.Add(ctx, item(4, "ab\xffcd")); !errors.Is(err, ErrInvalidItem) {
		t.Fatalf("Add with a subject that is not UTF-8 = %v", err)
	}
	got, err := x.List(ctx, subjA, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Status != 403 {
		t.Errorf("List = %+v, want item 1 with status 403 only", got)
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "subjects.db")
	x, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Add(ctx, item(4, subjA), item(9, subjA)); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y := open(t, path)
	got, err := y.List(ctx, subjA, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Item{item(4, subjA), item(9, subjA)}, got); diff != "" {
		t.Errorf("after reopening (-want +got):\n%s", diff)
	}
}

func TestOpenFails(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err == nil {
		t.Error("Open of a directory succeeded")
	}
}

// TestAddManyAcrossEpochs adds more items than one INSERT statement takes,
// across several epochs of the by-subject index, and pages through them.
func TestAddManyAcrossEpochs(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	var items []Item
	var wantA []uint64
	for i := range 3*rowsPerInsert + 5 {
		idx := uint64(i) * 1500 // 0 .. ~290,000: five epochs of 65,536
		s := subjB
		if i%3 == 0 {
			s = subjA
			wantA = append(wantA, idx)
		}
		items = append(items, item(idx, s))
	}
	items = append(items, item(0, subjA)) // again, in the same batch: replaces
	if err := x.Add(ctx, items...); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	from := uint64(0)
	for {
		page, err := x.List(ctx, subjA, 7, from)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, indexes(page)...)
		if len(page) < 7 {
			break
		}
		from = page[len(page)-1].Index + 1
	}
	if diff := cmp.Diff(wantA, got); diff != "" {
		t.Errorf("paged listing (-want +got):\n%s", diff)
	}
	// A listing that starts in a later epoch.
	page, err := x.List(ctx, subjA, 2, 3<<epochBits)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for _, idx := range wantA {
		if idx >= 3<<epochBits && len(want) < 2 {
			want = append(want, idx)
		}
	}
	if diff := cmp.Diff(want, indexes(page)); diff != "" {
		t.Errorf("listing from epoch 3 (-want +got):\n%s", diff)
	}
}

// queryPlan returns the details of the plan of query with args.
func queryPlan(t *testing.T, x *Index, query string, args ...any) []string {
	t.Helper()
	rows, err := x.db.Query(`EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestListUsesIndex checks that List's query of each table, access_rows
// and a legacy table of every earlier format, is answered from the table's
// by-epoch index, in order, rather than by a scan or a sort; and that its
// first and last log indexes are read without a scan.
func TestListUsesIndex(t *testing.T) {
	for format := range formatVersion + 1 {
		path := filepath.Join(t.TempDir(), "subjects.db")
		if format < formatVersion {
			writeLegacyFile(t, path, format, []string{"support"}, []Item{item(1, subjA)})
		}
		x := open(t, path)
		for _, f := range []int{formatVersion, format} {
			plan := queryPlan(t, x, listQuery(f), 0, "a", "a", 0, 10)
			index := tableOf(f) + "_by_epoch_subject"
			if len(plan) != 1 || !strings.Contains(plan[0], "SEARCH "+tableOf(f)+" USING INDEX "+index) || !strings.Contains(plan[0], "rowid>?") {
				t.Errorf("file of format %d: query plan of rows of format %d = %q, want one search of %s with a rowid range", format, f, plan, index)
			}
			want := []string{"SCAN CONSTANT ROW", "SCALAR SUBQUERY 1", "SEARCH " + tableOf(f), "SCALAR SUBQUERY 2", "SEARCH " + tableOf(f)}
			if diff := cmp.Diff(want, queryPlan(t, x, rangeQuery(tableOf(f)))); diff != "" {
				t.Errorf("file of format %d: query plan of the range of rows of format %d (-want +got):\n%s", format, f, diff)
			}
		}
	}
}

// TestSubjectPrefix checks that the prefix List looks up is the one the
// index holds: SQLite's substr(subject, 1, 16), which counts characters.
func TestSubjectPrefix(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	for i, s := range []string{subjA, "short", "é" + strings.Repeat("ü", 20), "0123456789abcdef", "0123456789abcdef0"} {
		var got string
		if err := x.db.QueryRowContext(ctx, `SELECT substr(?, 1, 16)`, s).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := subjectPrefix(s); got != want {
			t.Errorf("subjectPrefix(%q) = %q, SQLite's substr %q", s, want, got)
		}
		if err := x.Add(ctx, item(uint64(i), s)); err != nil {
			t.Fatal(err)
		}
		if items, err := x.List(ctx, s, 10, 0); err != nil || len(items) != 1 || items[0].Index != uint64(i) {
			t.Errorf("List(%q) = %v, %v; want item %d", s, indexes(items), err, i)
		}
	}
}

// TestRolesAndFieldsRoundTrip stores strings that need escaping or are not
// valid UTF-8, and reads back what encoding/json makes of them.
func TestRolesAndFieldsRoundTrip(t *testing.T) {
	ctx := context.Background()
	x := open(t, filepath.Join(t.TempDir(), "subjects.db"))
	it := item(1, subjA)
	it.Roles = []string{`a"b`, `c\d`, "e\x00\x1ff", "<&>", "é\u2028", "bad\xffutf8", ""}
	it.Fields = []Field{{Name: "na\"me", Form: "for\nm"}}
	if err := x.Add(ctx, it); err != nil {
		t.Fatal(err)
	}
	got, err := x.List(ctx, subjA, 1, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("List = %v, %v", got, err)
	}
	want := it
	want.Roles = slices.Clone(it.Roles)
	want.Roles[5] = "bad\uFFFDutf8" // as encoding/json would store it
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
