package auditlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// VerifyOptions are the optional inputs of Verify.
type VerifyOptions struct {
	// Previous is a signed checkpoint saved by an earlier verification, or
	// nil. The log must not have shrunk since, and its first Previous.Size
	// entries must still be the ones Previous commits to.
	Previous []byte
	// Entry, if set, is called with every entry in index order. An error
	// stops the verification and is returned.
	Entry func(index uint64, entry []byte) error
}

// Verify checks a whole log against its signed checkpoint: the signature
// (by verifierKey, whose name must be the checkpoint's origin), every entry
// bundle, the root hash recomputed level by level from the entries, every
// stored hash tile against the recomputed hashes, and consistency with
// opts.Previous. It returns the verified checkpoint.
//
// Errors that say the log is wrong are *VerificationError (matching
// ErrVerification) and name the resource at fault, for example
// "entry bundle tile/entries/000 index 37: ...", "tile/0/000: hash 12
// differs", "checkpoint: signature does not verify" or "checkpoint size 10
// smaller than saved size 12". Errors fetching the log are returned
// wrapped.
func Verify(ctx context.Context, src Fetcher, verifierKey string, opts VerifyOptions) (*Checkpoint, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return nil, fmt.Errorf("auditlog: verifier key %q: %w", verifierKey, err)
	}
	cp, prev, err := fetchCheckpoints(ctx, src, v, opts.Previous)
	if err != nil {
		return nil, err
	}
	r := verifyRun{ctx: ctx, src: src, cp: cp, prev: prev, visit: opts.Entry}
	if err := r.run(); err != nil {
		return nil, err
	}
	return cp, nil
}

// fetchCheckpoints fetches and opens the log's checkpoint and opens the
// saved one, checking that the log has not shrunk.
func fetchCheckpoints(ctx context.Context, src Fetcher, v note.Verifier, saved []byte) (cp, prev *Checkpoint, err error) {
	raw, err := src.Fetch(ctx, checkpointPath)
	if err != nil {
		return nil, nil, fetchErr("checkpoint", err)
	}
	if cp, err = openCheckpoint(raw, v); err != nil {
		return nil, nil, err
	}
	if saved == nil {
		return cp, nil, nil
	}
	if prev, err = openCheckpoint(saved, v); err != nil {
		return nil, nil, &VerificationError{Msg: "saved " + err.Error()}
	}
	if cp.Size < prev.Size {
		return nil, nil, &VerificationError{Msg: fmt.Sprintf("checkpoint size %d smaller than saved size %d", cp.Size, prev.Size)}
	}
	return cp, prev, nil
}

// verifyRun is one run of Verify.
type verifyRun struct {
	ctx   context.Context
	src   Fetcher
	cp    *Checkpoint
	prev  *Checkpoint
	visit func(uint64, []byte) error

	tree     treeBuilder
	rows     [maxTileLevel + 1][]tlog.Hash // hashes of the tile being filled, per level
	full     []pendingTile                 // full tiles recomputed, to compare
	prevRoot tlog.Hash

	leafProblem string // the first level-0 tile hash that differs from its entry
	tileProblem string // the first tile problem of any level
}

type pendingTile struct {
	level  int
	n      uint64
	hashes []tlog.Hash
}

func (r *verifyRun) run() error {
	size := r.cp.Size
	r.tree.tileHash = func(level int, index uint64, h tlog.Hash) {
		r.rows[level] = append(r.rows[level], h)
		if len(r.rows[level]) == tileWidth {
			r.full = append(r.full, pendingTile{level, index / tileWidth, r.rows[level]})
			r.rows[level] = nil
		}
	}
	if r.prev != nil && r.prev.Size == 0 {
		r.prevRoot = emptyRoot
	}
	for n := uint64(0); n*tileWidth < size; n++ {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		w := widthAt(0, n, size)
		entries, p, err := fetchBundle(r.ctx, r.src, n, w)
		if err != nil {
			return fetchErr("entry bundle "+p, err)
		}
		for i, e := range entries {
			index := n*tileWidth + uint64(i)
			if r.visit != nil {
				if err := r.visit(index, e); err != nil {
					return fmt.Errorf("auditlog: entry %d: %w", index, err)
				}
			}
			r.tree.add(tlog.RecordHash(e))
			if r.prev != nil && r.tree.size == r.prev.Size {
				r.prevRoot = r.tree.root()
			}
		}
		for _, t := range r.full {
			if err := r.checkTile(t.level, t.n, t.hashes); err != nil {
				return err
			}
		}
		r.full = r.full[:0]
	}
	// The right-hand edge: partial tiles.
	for level, row := range r.rows {
		if len(row) > 0 {
			if err := r.checkTile(level, size>>(uint(level+1)*tileHeight), row); err != nil {
				return err
			}
		}
	}
	if root := r.tree.root(); root != r.cp.Hash {
		if r.leafProblem != "" {
			return &VerificationError{Msg: r.leafProblem + ", and the entries do not produce the checkpoint's root hash"}
		}
		return &VerificationError{Msg: fmt.Sprintf("root hash %v computed from the %d entries differs from the checkpoint's %v", root, size, r.cp.Hash)}
	}
	if r.tileProblem != "" {
		return &VerificationError{Msg: r.tileProblem}
	}
	if r.prev != nil && r.prevRoot != r.prev.Hash {
		return &VerificationError{Msg: fmt.Sprintf("checkpoint (size %d) is not consistent with saved checkpoint (size %d): the first %d entries have root hash %v, saved %v",
			size, r.prev.Size, r.prev.Size, r.prevRoot, r.prev.Hash)}
	}
	return nil
}

// checkTile compares a stored tile with the hashes recomputed from the
// entries. A difference is recorded, not returned: whether the entry or the
// tile is at fault depends on the root hash, known at the end.
func (r *verifyRun) checkTile(level int, n uint64, hashes []tlog.Hash) error {
	data, p, err := fetchTile(r.ctx, r.src, level, n, len(hashes))
	if err != nil {
		var ve *VerificationError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			r.noteTile(p + ": missing")
			return nil
		case errors.As(err, &ve):
			r.noteTile(ve.Msg)
			return nil
		}
		return fmt.Errorf("auditlog: fetch %s: %w", p, err)
	}
	for i, h := range hashes {
		if !bytes.Equal(data[i*hashSize:(i+1)*hashSize], h[:]) {
			msg := fmt.Sprintf("%s: hash %d differs", p, i)
			if level == 0 && r.leafProblem == "" {
				index := n*tileWidth + uint64(i)
				r.leafProblem = fmt.Sprintf("entry bundle %s index %d: leaf hash differs from %s hash %d",
					bundlePath(n, widthAt(0, n, r.cp.Size)), index, p, i)
			}
			r.noteTile(msg)
			return nil
		}
	}
	return nil
}

func (r *verifyRun) noteTile(msg string) {
	if r.tileProblem == "" {
		r.tileProblem = msg
	}
}

// fetchErr passes verification errors through, says that a missing
// resource (what) is missing, and wraps other errors of fetching it.
func fetchErr(what string, err error) error {
	var ve *VerificationError
	switch {
	case errors.As(err, &ve):
		return err
	case errors.Is(err, fs.ErrNotExist):
		return &VerificationError{Msg: what + ": missing"}
	}
	return fmt.Errorf("auditlog: fetch %s: %w", what, err)
}

// VerifyEntry checks that entry index is in the log: it verifies the
// checkpoint's signature, fetches the entry and checks its inclusion proof,
// computed from the log's tiles, against the checkpoint's root hash. It
// returns the checkpoint and the entry. An index beyond the checkpoint is an
// error matching ErrOutOfRange.
func VerifyEntry(ctx context.Context, src Fetcher, verifierKey string, index uint64) (*Checkpoint, []byte, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return nil, nil, fmt.Errorf("auditlog: verifier key %q: %w", verifierKey, err)
	}
	cp, _, err := fetchCheckpoints(ctx, src, v, nil)
	if err != nil {
		return nil, nil, err
	}
	if index >= cp.Size {
		return nil, nil, fmt.Errorf("%w: entry %d, the checkpoint has %d entries", ErrOutOfRange, index, cp.Size)
	}
	n := index / tileWidth
	entries, p, err := fetchBundle(ctx, src, n, widthAt(0, n, cp.Size))
	if err != nil {
		return nil, nil, fetchErr("entry bundle "+p, err)
	}
	entry := bytes.Clone(entries[index%tileWidth])
	thr := tlog.TileHashReader(tlog.Tree{N: int64(cp.Size), Hash: cp.Hash}, tileReader{ctx, src})
	proof, err := tlog.ProveRecord(int64(cp.Size), int64(index), thr)
	if err != nil {
		return nil, nil, tileErr(err)
	}
	if err := tlog.CheckRecord(proof, int64(cp.Size), cp.Hash, int64(index), tlog.RecordHash(entry)); err != nil {
		return nil, nil, &VerificationError{Msg: fmt.Sprintf("entry bundle %s index %d: not included in the checkpoint (the inclusion proof fails)", p, index)}
	}
	return cp, entry, nil
}

// CheckConsistency checks with a consistency proof computed from the log's
// tiles that newer (a verified checkpoint of the log) extends older.
func CheckConsistency(ctx context.Context, src Fetcher, older, newer *Checkpoint) error {
	switch {
	case older.Origin != newer.Origin:
		return &VerificationError{Msg: fmt.Sprintf("checkpoint origin %q differs from saved %q", newer.Origin, older.Origin)}
	case newer.Size < older.Size:
		return &VerificationError{Msg: fmt.Sprintf("checkpoint size %d smaller than saved size %d", newer.Size, older.Size)}
	case newer.Size > math.MaxInt64:
		return &VerificationError{Msg: fmt.Sprintf("checkpoint size %d too large", newer.Size)}
	}
	inconsistent := &VerificationError{Msg: fmt.Sprintf("checkpoint (size %d) is not consistent with saved checkpoint (size %d)", newer.Size, older.Size)}
	switch {
	case older.Size == 0:
		if older.Hash != emptyRoot {
			return inconsistent
		}
		return nil
	case older.Size == newer.Size:
		if older.Hash != newer.Hash {
			return inconsistent
		}
		return nil
	}
	thr := tlog.TileHashReader(tlog.Tree{N: int64(newer.Size), Hash: newer.Hash}, tileReader{ctx, src})
	proof, err := tlog.ProveTree(int64(newer.Size), int64(older.Size), thr)
	if err != nil {
		return tileErr(err)
	}
	if err := tlog.CheckTree(proof, int64(newer.Size), newer.Hash, int64(older.Size), older.Hash); err != nil {
		return inconsistent
	}
	return nil
}

// tileErr maps an error of tlog's tile hash reader: a failed fetch is
// passed on (a missing tile is the log's fault), and tlog's own checks of the
// tiles against the root hash are verification failures.
func tileErr(err error) error {
	var fe tileFetchError
	if errors.As(err, &fe) {
		var ve *VerificationError
		switch {
		case errors.As(fe.err, &ve):
			return ve
		case errors.Is(fe.err, fs.ErrNotExist):
			return &VerificationError{Msg: fmt.Sprintf("tiles: %v", fe.err)}
		}
		return fmt.Errorf("auditlog: %w", fe.err)
	}
	return &VerificationError{Msg: fmt.Sprintf("tiles do not match the checkpoint: %v", err)}
}
