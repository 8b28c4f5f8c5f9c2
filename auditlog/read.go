package auditlog

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint returns the latest published checkpoint: a signed note.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	b, err := l.fetch.Fetch(ctx, checkpointPath)
	if err != nil {
		return nil, fmt.Errorf("auditlog: read checkpoint: %w", err)
	}
	return b, nil
}

// published returns the latest published checkpoint, verified (once: the
// last one verified is kept).
func (l *Log) published(ctx context.Context) (*Checkpoint, error) {
	raw, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	if c := l.lastCheckpoint.Load(); c != nil && bytes.Equal(c.Signed, raw) {
		return c, nil
	}
	c, err := openCheckpoint(raw, l.verifier)
	if err != nil {
		return nil, err
	}
	l.lastCheckpoint.Store(c)
	return c, nil
}

// Entry returns entry index, if the latest checkpoint covers it (else
// ErrOutOfRange).
func (l *Log) Entry(ctx context.Context, index uint64) ([]byte, error) {
	cp, err := l.published(ctx)
	if err != nil {
		return nil, err
	}
	if index >= cp.Size {
		return nil, fmt.Errorf("%w: entry %d, the checkpoint has %d entries", ErrOutOfRange, index, cp.Size)
	}
	e, err := l.treeEntry(ctx, index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("auditlog: read entry %d: %w", index, err)
	}
	return bytes.Clone(e), nil
}

// InclusionProof returns the RFC 6962 inclusion proof of entry index in the
// tree of the given size, computed from the tiles on disk. size must not
// exceed the latest checkpoint's and index must be below size (else
// ErrOutOfRange). Check it with tlog.CheckRecord.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	cp, err := l.published(ctx)
	if err != nil {
		return nil, err
	}
	if size == 0 || size > cp.Size || index >= size {
		return nil, fmt.Errorf("%w: inclusion of entry %d in size %d, the checkpoint has %d entries", ErrOutOfRange, index, size, cp.Size)
	}
	p, err := tlog.ProveRecord(int64(size), int64(index), l.hashReader(ctx, cp))
	if err != nil {
		return nil, fmt.Errorf("auditlog: inclusion proof: %w", err)
	}
	return hashesToBytes(p), nil
}

// ConsistencyProof returns the RFC 6962 consistency proof from the tree of
// size from to the tree of size to, computed from the tiles on disk; 1 <=
// from <= to <= the latest checkpoint's size (else ErrOutOfRange). Check
// it with tlog.CheckTree.
func (l *Log) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	cp, err := l.published(ctx)
	if err != nil {
		return nil, err
	}
	if from == 0 || from > to || to > cp.Size {
		return nil, fmt.Errorf("%w: consistency from size %d to %d, the checkpoint has %d entries", ErrOutOfRange, from, to, cp.Size)
	}
	p, err := tlog.ProveTree(int64(to), int64(from), l.hashReader(ctx, cp))
	if err != nil {
		return nil, fmt.Errorf("auditlog: consistency proof: %w", err)
	}
	return hashesToBytes(p), nil
}

// hashReader reads hashes from the tiles of the tree cp commits to; tlog
// checks every tile it reads against cp's root hash.
func (l *Log) hashReader(ctx context.Context, cp *Checkpoint) tlog.HashReader {
	return tlog.TileHashReader(tlog.Tree{N: int64(cp.Size), Hash: cp.Hash}, tileReader{ctx, l.fetch})
}

func hashesToBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = h[:]
	}
	return out
}

// WaitIntegrated returns when a published checkpoint covers entry index,
// that is, when the entry has a proof. An index not yet appended is
// ErrOutOfRange.
func (l *Log) WaitIntegrated(ctx context.Context, index uint64) error {
	if index >= l.journal.durable.Load() {
		return fmt.Errorf("%w: entry %d has not been appended", ErrOutOfRange, index)
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		cp, err := l.published(ctx)
		if err == nil && cp.Size > index {
			return nil
		}
		if p := l.failure.Load(); p != nil {
			return *p
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("auditlog: wait for entry %d: %w", index, ctx.Err())
		}
	}
}
