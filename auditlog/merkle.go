package auditlog

import (
	"crypto/sha256"

	"golang.org/x/mod/sumdb/tlog"
)

// emptyRoot is the RFC 6962 hash of the empty tree: SHA-256 of nothing.
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

// treeBuilder computes the RFC 6962 Merkle tree of leaves added in order,
// keeping only the roots of the complete subtrees that make up the tree so
// far (one per set bit of the size). Every complete subtree whose height is a
// multiple of the tile height is reported to tileHash: these are the hashes
// that tlog-tiles stores, tile level = height/8. It is pure: no I/O.
type treeBuilder struct {
	size  uint64
	stack []subtree
	// tileHash, if set, receives each stored hash: the level of its tile,
	// its index within that level, and the hash.
	tileHash func(level int, index uint64, h tlog.Hash)
}

type subtree struct {
	height int
	hash   tlog.Hash
}

// add appends a leaf, given its leaf hash (tlog.RecordHash of the entry).
func (t *treeBuilder) add(leaf tlog.Hash) {
	i := t.size // index of this leaf
	t.stack = append(t.stack, subtree{0, leaf})
	t.emit(0, i, leaf)
	for n := len(t.stack); n >= 2 && t.stack[n-1].height == t.stack[n-2].height; n = len(t.stack) {
		h := t.stack[n-1].height + 1
		parent := tlog.NodeHash(t.stack[n-2].hash, t.stack[n-1].hash)
		t.stack = append(t.stack[:n-2], subtree{h, parent})
		t.emit(h, i>>uint(h), parent)
	}
	t.size++
}

func (t *treeBuilder) emit(height int, index uint64, h tlog.Hash) {
	if t.tileHash != nil && height%tileHeight == 0 {
		t.tileHash(height/tileHeight, index, h)
	}
}

// root returns the root hash of the tree of the leaves added so far.
func (t *treeBuilder) root() tlog.Hash {
	if len(t.stack) == 0 {
		return emptyRoot
	}
	r := t.stack[len(t.stack)-1].hash
	for i := len(t.stack) - 2; i >= 0; i-- {
		r = tlog.NodeHash(t.stack[i].hash, r)
	}
	return r
}
