package follow

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/cloverenclave/clover/auditlog"
	"golang.org/x/mod/sumdb/tlog"
)

// maxCachedTiles bounds the tiles kept between the proofs of one poll.
const maxCachedTiles = 256

// The tlog-tiles layout is package auditlog's; follow.go and the tests use
// these shorter names for it.
const (
	tileHeight = auditlog.TileHeight
	tileWidth  = auditlog.TileWidth
)

func tilePath(level int, n uint64, w int) string { return auditlog.TilePath(level, n, w) }
func bundlePath(n uint64, w int) string          { return auditlog.EntryBundlePath(n, w) }

// bundleWidth is the number of entries of bundle n in a tree of the given
// size: tileWidth, fewer for the right-hand bundle, 0 beyond it.
func bundleWidth(n, size uint64) int { return auditlog.TileWidthAt(0, n, size) }

// fetchPartial fetches the partial resource (partial path p), falling back
// to the full one (path full) once the partial one is gone. It returns the
// data and the path it read.
func fetchPartial(ctx context.Context, src auditlog.Fetcher, p, full string) ([]byte, string, error) {
	data, err := src.Fetch(ctx, p)
	if p != full && errors.Is(err, fs.ErrNotExist) {
		data, err = src.Fetch(ctx, full)
		if !errors.Is(err, fs.ErrNotExist) {
			p = full
		}
	}
	return data, p, err
}

// fetchError is an error of fetching a resource: transient, unless the
// resource was there but malformed (the fetchers report an oversized one as
// *auditlog.VerificationError), which is a Violation of the given kind.
func fetchError(kind, what string, err error, old, new []byte) error {
	var ve *auditlog.VerificationError
	if errors.As(err, &ve) {
		return &Violation{Kind: kind, Msg: ve.Msg, Old: old, New: new} // ve.Msg names the resource
	}
	return fmt.Errorf("follow: fetch %s: %w", what, err)
}

// tileReader adapts a Fetcher to tlog.TileReader. tlog authenticates every
// tile it reads against the tree's root hash and then calls SaveTiles, so
// the cache only holds tiles already proven to be of the tree.
type tileReader struct {
	ctx   context.Context
	src   auditlog.Fetcher
	cache map[tlog.Tile][]byte
}

func (r *tileReader) Height() int { return tileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if data, ok := r.cache[t]; ok {
			out[i] = data
			continue
		}
		if t.H != tileHeight || t.L < 0 || t.L > auditlog.MaxTileLevel || t.N < 0 || t.W < 1 || t.W > tileWidth {
			return nil, fmt.Errorf("follow: cannot read tile %+v", t)
		}
		data, p, err := fetchPartial(r.ctx, r.src, tilePath(t.L, uint64(t.N), t.W), tilePath(t.L, uint64(t.N), tileWidth))
		if err != nil {
			return nil, &tileFetchError{path: p, err: err}
		}
		want := t.W * hashSize
		if t.W < tileWidth && len(data) == tileWidth*hashSize {
			data = data[:want] // the full tile, read in place of the partial one
		}
		if len(data) != want {
			return nil, &badTileError{msg: fmt.Sprintf("%s: %d bytes, want %d", p, len(data), want)}
		}
		out[i] = data
	}
	return out, nil
}

func (r *tileReader) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	if r.cache == nil {
		return
	}
	for i, t := range tiles {
		if _, ok := r.cache[t]; ok {
			continue
		}
		if len(r.cache) >= maxCachedTiles {
			clear(r.cache)
		}
		r.cache[t] = data[i]
	}
}

// tileFetchError is a failure to fetch a tile, as opposed to a tile that
// does not match the tree.
type tileFetchError struct {
	path string
	err  error
}

func (e *tileFetchError) Error() string { return e.path + ": " + e.err.Error() }
func (e *tileFetchError) Unwrap() error { return e.err }

// badTileError is a tile served with the wrong length.
type badTileError struct{ msg string }

func (e *badTileError) Error() string { return e.msg }

// proofError turns an error of computing a proof from the tiles into a
// Violation of the given kind, or a transient error if a tile could not be
// fetched.
func proofError(kind, what string, err error, old, new []byte) error {
	var fe *tileFetchError
	if errors.As(err, &fe) {
		return fetchError(kind, fe.path, fe.err, old, new)
	}
	return &Violation{Kind: kind, Msg: fmt.Sprintf("%s: the tiles do not match the checkpoint: %v", what, err), Old: old, New: new}
}
