package auditlog

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// The C2SP tlog-tiles layout: tiles of 256 hashes (height 8) and entry
// bundles of up to 256 entries.
const (
	// TileHeight is the height of the log's hash tiles: a full tile holds
	// the 2^TileHeight hashes of one level of a subtree.
	TileHeight = 8
	// TileWidth is the number of hashes of a full tile, and of entries of a
	// full entry bundle.
	TileWidth = 1 << TileHeight
	// MaxTileLevel is the highest tile level tlog-tiles allows.
	MaxTileLevel = 63

	// The package's own names for the exported constants above.
	tileHeight   = TileHeight
	tileWidth    = TileWidth
	maxTileLevel = MaxTileLevel

	hashSize = 32

	// maxTileBytes is the size of a full tile.
	maxTileBytes = tileWidth * hashSize
	// maxBundleBytes is the largest possible entry bundle.
	maxBundleBytes = tileWidth * (2 + MaxEntrySize)
	// maxCheckpointBytes caps a checkpoint read from anywhere.
	maxCheckpointBytes = 64 << 10
)

const checkpointPath = "checkpoint"

// formatN formats a tile or bundle index as tlog-tiles path elements:
// groups of three digits, all but the last prefixed with "x".
func formatN(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

func partialSuffix(w int) string {
	if w <= 0 || w >= tileWidth {
		return ""
	}
	return ".p/" + strconv.Itoa(w)
}

// TilePath is the tlog-tiles path, relative to the log's prefix, of hash
// tile n at level, of width w: TileWidth, or 0, for a full tile, 1 to
// TileWidth-1 for a partial one. For example TilePath(1, 1234567, 5) is
// "tile/1/x001/x234/567.p/5".
func TilePath(level int, n uint64, w int) string {
	return "tile/" + strconv.Itoa(level) + "/" + formatN(n) + partialSuffix(w)
}

// EntryBundlePath is the tlog-tiles path, relative to the log's prefix, of
// entry bundle n, of width w: TileWidth, or 0, for a full bundle, 1 to
// TileWidth-1 for a partial one. For example EntryBundlePath(1000, 0) is
// "tile/entries/x001/000".
func EntryBundlePath(n uint64, w int) string {
	return "tile/entries/" + formatN(n) + partialSuffix(w)
}

// tilePath, bundlePath and widthAt are the package's own names for
// TilePath, EntryBundlePath and TileWidthAt.
func tilePath(level int, n uint64, w int) string { return TilePath(level, n, w) }
func bundlePath(n uint64, w int) string          { return EntryBundlePath(n, w) }
func widthAt(level int, n, size uint64) int      { return TileWidthAt(level, n, size) }

// resource is a parsed tlog-tiles path.
type resource struct {
	kind  resourceKind
	level int    // for tiles
	n     uint64 // tile or bundle index
	w     int    // width of a partial tile or bundle, 0 for a full one
}

type resourceKind int

const (
	resCheckpoint resourceKind = iota + 1
	resTile
	resBundle
)

// parseResourcePath parses a path relative to the log's prefix into a
// resource, accepting only the canonical tlog-tiles forms.
func parseResourcePath(p string) (resource, bool) {
	if p == checkpointPath {
		return resource{kind: resCheckpoint}, true
	}
	rest, ok := strings.CutPrefix(p, "tile/")
	if !ok {
		return resource{}, false
	}
	first, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return resource{}, false
	}
	var r resource
	if first == "entries" {
		r.kind = resBundle
	} else {
		l, err := strconv.Atoi(first)
		if err != nil || l < 0 || l > maxTileLevel || strconv.Itoa(l) != first {
			return resource{}, false
		}
		r.kind, r.level = resTile, l
	}
	nPart, wPart, partial := strings.Cut(rest, ".p/")
	if partial {
		w, err := strconv.Atoi(wPart)
		if err != nil || w < 1 || w >= tileWidth || strconv.Itoa(w) != wPart {
			return resource{}, false
		}
		r.w = w
	}
	n, ok := parseN(nPart)
	if !ok {
		return resource{}, false
	}
	r.n = n
	return r, true
}

// parseN parses the canonical formatN form of an index.
func parseN(s string) (uint64, bool) {
	groups := strings.Split(s, "/")
	if len(groups) > 7 { // 2^64 has 20 digits: at most 7 groups
		return 0, false
	}
	var n uint64
	for i, g := range groups {
		if i < len(groups)-1 {
			var ok bool
			if g, ok = strings.CutPrefix(g, "x"); !ok {
				return 0, false
			}
		}
		if len(g) != 3 {
			return 0, false
		}
		d, err := strconv.ParseUint(g, 10, 64)
		if err != nil {
			return 0, false
		}
		if n > (1<<64-1-d)/1000 {
			return 0, false
		}
		n = n*1000 + d
	}
	if formatN(n) != s {
		return 0, false // e.g. a leading "x000/" group
	}
	return n, true
}

// TileWidthAt returns the width of tile n at level (or of entry bundle n,
// for level 0) in a tree of the given size: TileWidth for a full tile, 1 to
// TileWidth-1 for the partial right-hand tile, 0 if the tile does not exist.
func TileWidthAt(level int, n, size uint64) int {
	count := size >> (uint(level) * tileHeight) // hashes at this level
	switch full := count / tileWidth; {
	case n < full:
		return tileWidth
	case n == full:
		return int(count % tileWidth)
	}
	return 0
}

// BundleError is an error of ParseEntryBundle. Entry is the position in the
// bundle of the entry at fault, or -1 when the bundle as a whole is.
type BundleError struct {
	Entry int
	Msg   string
}

func (e *BundleError) Error() string {
	if e.Entry < 0 {
		return e.Msg
	}
	return fmt.Sprintf("entry %d: %s", e.Entry, e.Msg)
}

// ParseEntryBundle splits a C2SP tlog-tiles entry bundle into its entries:
// a sequence of big-endian uint16 lengths, each followed by that many
// bytes. It accepts at most 256 entries. The entries alias b. Errors are
// *BundleError.
func ParseEntryBundle(b []byte) ([][]byte, error) {
	if len(b) > maxBundleBytes {
		return nil, &BundleError{-1, fmt.Sprintf("%d bytes, more than a bundle can hold", len(b))}
	}
	var entries [][]byte
	for len(b) > 0 {
		i := len(entries)
		if i == tileWidth {
			return nil, &BundleError{-1, fmt.Sprintf("more than %d entries", tileWidth)}
		}
		if len(b) < 2 {
			return nil, &BundleError{i, "truncated length prefix"}
		}
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if n > len(b) {
			return nil, &BundleError{i, fmt.Sprintf("truncated: %d bytes announced, %d left", n, len(b))}
		}
		entries = append(entries, b[:n:n])
		b = b[n:]
	}
	return entries, nil
}

// MarshalEntryBundle is the inverse of ParseEntryBundle.
func MarshalEntryBundle(entries [][]byte) ([]byte, error) {
	if len(entries) > tileWidth {
		return nil, fmt.Errorf("%d entries, more than %d", len(entries), tileWidth)
	}
	var out []byte
	for i, e := range entries {
		if len(e) > MaxEntrySize {
			return nil, fmt.Errorf("entry %d: %d bytes, more than %d", i, len(e), MaxEntrySize)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
		out = append(out, e...)
	}
	return out, nil
}
