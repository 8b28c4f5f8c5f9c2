package auditlog

import (
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// hashStore is an in-memory tlog hash storage, the reference the tree
// builder is checked against.
type hashStore struct {
	hashes  []tlog.Hash
	records int64
}

func (s *hashStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = s.hashes[x]
	}
	return out, nil
}

func (s *hashStore) add(t *testing.T, data []byte) {
	t.Helper()
	hs, err := tlog.StoredHashes(s.records, data, s)
	if err != nil {
		t.Fatal(err)
	}
	s.hashes = append(s.hashes, hs...)
	s.records++
}

func TestTreeBuilderMatchesTlog(t *testing.T) {
	var store hashStore
	var tb treeBuilder
	type key struct {
		level int
		index uint64
	}
	emitted := map[key]tlog.Hash{}
	tb.tileHash = func(level int, index uint64, h tlog.Hash) {
		k := key{level, index}
		if _, dup := emitted[k]; dup {
			t.Fatalf("stored hash %v emitted twice", k)
		}
		emitted[k] = h
	}
	if tb.root() != emptyRoot {
		t.Fatal("empty tree root")
	}
	for n := 1; n <= 70000; n++ {
		data := []byte(fmt.Sprintf("entry %d", n-1))
		store.add(t, data)
		tb.add(tlog.RecordHash(data))
		if n <= 600 || n%4999 == 0 || n == 65536 || n == 70000 {
			want, err := tlog.TreeHash(int64(n), &store)
			if err != nil {
				t.Fatal(err)
			}
			if got := tb.root(); got != want {
				t.Fatalf("size %d: root %v, want %v", n, got, want)
			}
		}
	}
	// Every stored hash at a tile level is tlog's hash at that level.
	for k, h := range emitted {
		want, err := store.ReadHashes([]int64{tlog.StoredHashIndex(k.level*tileHeight, int64(k.index))})
		if err != nil {
			t.Fatal(err)
		}
		if want[0] != h {
			t.Fatalf("tile level %d hash %d differs from tlog", k.level, k.index)
		}
	}
	// 70000 leaves: level 0 has 70000, level 1 has 273, level 2 has 1.
	if got, want := len(emitted), 70000+273+1; got != want {
		t.Fatalf("%d tile hashes emitted, want %d", got, want)
	}
}
