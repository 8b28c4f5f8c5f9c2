package subjectindex

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
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
