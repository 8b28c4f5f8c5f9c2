package auditlog

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/tessera/api/layout"
)

func TestPathsAgreeWithTessera(t *testing.T) {
	for _, n := range []uint64{0, 1, 999, 1000, 1234067, 1<<64 - 1} {
		for _, w := range []int{0, 1, 255} {
			if got, want := tilePath(3, n, w), layout.TilePath(3, n, uint8(w)); got != want {
				t.Errorf("tilePath(3, %d, %d) = %q, tessera %q", n, w, got, want)
			}
			if got, want := bundlePath(n, w), layout.EntriesPath(n, uint8(w)); got != want {
				t.Errorf("bundlePath(%d, %d) = %q, tessera %q", n, w, got, want)
			}
			for _, p := range []string{tilePath(3, n, w), bundlePath(n, w)} {
				r, ok := parseResourcePath(p)
				if !ok || r.n != n || r.w != w {
					t.Errorf("parseResourcePath(%q) = %+v, %t", p, r, ok)
				}
			}
		}
	}
	if got := tilePath(0, 1234067, 8); got != "tile/0/x001/x234/067.p/8" {
		t.Errorf("tilePath = %q", got)
	}
}

func TestParseResourcePathRejects(t *testing.T) {
	for _, p := range []string{
		"", "checkpoint/", "/checkpoint", "tile", "tile/", "tile/0", "tile/0/", "tile/00/000", "tile/64/000",
		"tile/-1/000", "tile/0/0", "tile/0/0000", "tile/0/x000/001", "tile/0/001/002", "tile/0/x1/000",
		"tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/08", "tile/0/000.p/", "tile/0/000.p", "tile/0/000.p/1/2",
		"tile/entries", "tile/entries/", "tile/entries/abc", "tile/0/../000", "tile/data/000",
		"tile/0/x018/x446/x744/x073/x709/x551/616", // 2^64
		".state/treeState",
	} {
		if r, ok := parseResourcePath(p); ok {
			t.Errorf("parseResourcePath(%q) = %+v, want rejected", p, r)
		}
	}
}

func TestWidthAt(t *testing.T) {
	// The example of the tlog-tiles spec: a tree of 70,000 entries.
	size := uint64(70000)
	cases := []struct {
		level int
		n     uint64
		want  int
	}{
		{0, 0, 256}, {0, 272, 256}, {0, 273, 112}, {0, 274, 0},
		{1, 0, 256}, {1, 1, 17}, {1, 2, 0},
		{2, 0, 1}, {2, 1, 0}, {3, 0, 0},
	}
	for _, c := range cases {
		if got := widthAt(c.level, c.n, size); got != c.want {
			t.Errorf("widthAt(%d, %d, %d) = %d, want %d", c.level, c.n, size, got, c.want)
		}
		if w := c.want; w > 0 && w < tileWidth && uint8(w) != layout.PartialTileSize(uint64(c.level), c.n, size) {
			t.Errorf("tessera disagrees on the width of tile %d/%d", c.level, c.n)
		}
	}
	if got := widthAt(0, 0, 256); got != 256 {
		t.Errorf("a tree of 256 has a full bundle 0, got %d", got)
	}
	if got := widthAt(0, 1, 256); got != 0 {
		t.Errorf("a tree of 256 has no bundle 1, got %d", got)
	}
}

func TestEntryBundle(t *testing.T) {
	entries := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte("z"), MaxEntrySize)}
	b, err := MarshalEntryBundle(entries)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseEntryBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(entries, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	var be *BundleError
	if _, err := ParseEntryBundle(b[:len(b)-1]); !errors.As(err, &be) || be.Entry != 2 {
		t.Errorf("truncated bundle: %v", err)
	}
	if _, err := ParseEntryBundle([]byte{0, 1, 'a', 0}); !errors.As(err, &be) || be.Entry != 1 || err.Error() != "entry 1: truncated length prefix" {
		t.Errorf("truncated length: %v", err)
	}
	if _, err := ParseEntryBundle(bytes.Repeat([]byte{0, 0}, tileWidth+1)); err == nil {
		t.Error("257 entries accepted")
	}
	if _, err := MarshalEntryBundle([][]byte{make([]byte, MaxEntrySize+1)}); err == nil {
		t.Error("oversized entry marshalled")
	}
}

func FuzzParseEntryBundle(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 'a', 0, 0})
	f.Add([]byte{0, 5, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParseEntryBundle(b)
		if err != nil {
			return
		}
		again, err := MarshalEntryBundle(entries)
		if err != nil {
			t.Fatalf("parsed %q but cannot marshal it: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("MarshalEntryBundle(ParseEntryBundle(b)) = %q, want %q", again, b)
		}
	})
}
