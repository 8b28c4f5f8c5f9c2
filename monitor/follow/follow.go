package follow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Kinds of Violation.
const (
	KindBadCheckpoint = "bad_checkpoint" // unparseable, bad signature, wrong origin
	KindRollback      = "rollback"       // the log is smaller than an accepted checkpoint
	KindFork          = "fork"           // the log is not an extension of an accepted checkpoint
	KindEntryMismatch = "entry_mismatch" // entries (or tiles) do not produce the signed root
	KindBadBundle     = "bad_bundle"     // an entry bundle is unparseable or truncated
)

// Violation says that the log is not trustworthy: what it serves contradicts
// its own signed checkpoints or one the follower accepted earlier. The
// follower's state does not advance past it.
type Violation struct {
	Kind string // one of the Kind constants
	Msg  string // what exactly: checkpoint sizes and roots, the bundle or tile, the indexes
	// Old and New are the two signed checkpoints involved: the last one
	// accepted (nil if none) and the one served.
	Old, New []byte
}

func (v *Violation) Error() string { return "follow: log violation (" + v.Kind + "): " + v.Msg }

// DefaultChunkSize is the default of Options.ChunkSize.
const DefaultChunkSize = 4096

// maxChunkSize bounds Options.ChunkSize, and so what a chunk holds in memory.
const maxChunkSize = 1 << 20

// Options configure a Follower. Zero values take the defaults.
type Options struct {
	// ChunkSize is the most entries delivered per chunk (default 4096).
	// Each chunk costs one consistency proof.
	ChunkSize int
}

// Validate reports what is wrong with the options.
func (o Options) Validate() error {
	if o.ChunkSize < 0 || o.ChunkSize > maxChunkSize {
		return fmt.Errorf("follow: chunk size %d out of range [0, %d]", o.ChunkSize, maxChunkSize)
	}
	return nil
}

// Chunk is a run of consecutive verified entries.
type Chunk struct {
	Start   uint64   // index of Entries[0]
	Entries [][]byte // raw entry bytes, in index order; fn may keep them
	// State is the follower's state after this chunk: persist it together
	// with whatever the chunk's entries produced, atomically.
	State State
	// Checkpoint is the verified checkpoint being caught up to.
	Checkpoint *auditlog.Checkpoint
}

// emptyRoot is the RFC 6962 root of the empty tree.
var emptyRoot = tlog.Hash(sha256.Sum256(nil))

var hasher = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Follower follows one log. Poll calls are serialised; State may be called
// at any time.
type Follower struct {
	src       auditlog.Fetcher
	key       string
	chunkSize int

	poll sync.Mutex // held by Poll

	mu    sync.Mutex // guards the fields below
	state State
	cp    *auditlog.Checkpoint // state.Checkpoint opened, or nil
	rng   *compact.Range       // the compact range of state
}

// New returns a follower of the log src serves, whose checkpoints
// verifierKey (a note verifier key, "<origin>+<hash>+<key>") signs,
// continuing from st (the zero State to start from the beginning). The
// state's checkpoint must verify, and if the state is complete (Size equals
// the checkpoint's size) its compact range must produce the checkpoint's
// root.
func New(src auditlog.Fetcher, verifierKey string, st State, opts Options) (*Follower, error) {
	if src == nil {
		return nil, errors.New("follow: nil fetcher")
	}
	if _, err := note.NewVerifier(verifierKey); err != nil {
		return nil, fmt.Errorf("follow: verifier key %q: %w", verifierKey, err)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := st.check(); err != nil {
		return nil, err
	}
	st = st.clone()
	f := &Follower{src: src, key: verifierKey, chunkSize: opts.ChunkSize, state: st}
	if f.chunkSize == 0 {
		f.chunkSize = DefaultChunkSize
	}
	rng, err := hasher.NewRange(0, st.Size, cloneHashes(st.Hashes))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidState, err)
	}
	f.rng = rng
	if st.Checkpoint == nil {
		return f, nil
	}
	cp, err := auditlog.OpenCheckpoint(st.Checkpoint, verifierKey)
	if err != nil {
		return nil, fmt.Errorf("%w: saved %v", ErrInvalidState, err)
	}
	switch {
	case st.Size > cp.Size:
		return nil, fmt.Errorf("%w: size %d beyond its checkpoint's size %d", ErrInvalidState, st.Size, cp.Size)
	case st.Size == cp.Size:
		if root := rangeRoot(rng); root != cp.Hash {
			return nil, fmt.Errorf("%w: compact range root %v differs from its checkpoint's %v (size %d)", ErrInvalidState, root, cp.Hash, cp.Size)
		}
	}
	f.cp = cp
	return f, nil
}

// State returns a copy of the follower's state: the last checkpoint
// accepted and the entries delivered.
func (f *Follower) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.clone()
}

// rangeRoot returns the root hash of a compact range starting at 0.
func rangeRoot(r *compact.Range) tlog.Hash {
	if r.End() == 0 {
		return emptyRoot
	}
	root, err := r.GetRootHash(nil)
	if err != nil || len(root) != hashSize {
		panic(fmt.Sprintf("follow: root of compact range [0, %d): %v", r.End(), err)) // a range from 0 always has a root
	}
	return tlog.Hash(root)
}

// Poll fetches the latest checkpoint. If it is the one last accepted and
// every entry it covers was delivered, it returns (0, nil). Otherwise it
// verifies the checkpoint, checks that it extends the last one accepted,
// and calls fn for each chunk of new entries, in order, each only after it
// is proven to be part of the checkpoint's tree. Once fn returns nil the
// follower's state is the chunk's. If fn returns an error, Poll stops and
// returns it: the state stays at the last chunk fn accepted.
//
// Poll returns the number of entries delivered. Errors are a *Violation
// when the log is not trustworthy (the state does not advance past it),
// fn's error, the context's, or an error fetching the log (transient:
// poll again later).
func (f *Follower) Poll(ctx context.Context, fn func(Chunk) error) (int, error) {
	if fn == nil {
		return 0, errors.New("follow: Poll with a nil fn")
	}
	f.poll.Lock()
	defer f.poll.Unlock()
	f.mu.Lock()
	oldRaw, old, size := f.state.Checkpoint, f.cp, f.state.Size
	rng, err := hasher.NewRange(0, size, cloneHashes(f.rng.Hashes()))
	f.mu.Unlock()
	if err != nil {
		panic(fmt.Sprintf("follow: copy of compact range: %v", err)) // New checked the state
	}

	raw, err := f.src.Fetch(ctx, "checkpoint")
	if err != nil {
		return 0, fetchError(KindBadCheckpoint, "checkpoint", err, oldRaw, nil)
	}
	if old != nil && bytes.Equal(raw, oldRaw) && size == old.Size {
		return 0, nil
	}
	raw = bytes.Clone(raw)
	cp, err := auditlog.OpenCheckpoint(raw, f.key)
	if err != nil {
		return 0, &Violation{Kind: KindBadCheckpoint, Msg: err.Error(), Old: oldRaw, New: raw}
	}
	tr := &tileReader{ctx: ctx, src: f.src, cache: make(map[tlog.Tile][]byte)}
	target, targetRaw, err := accept(tr, old, oldRaw, cp, raw)
	if err != nil {
		return 0, err
	}
	if size == target.Size {
		// Nothing to deliver: only an empty log's first checkpoint.
		f.mu.Lock()
		f.state.Checkpoint, f.cp = targetRaw, target
		f.mu.Unlock()
		return 0, nil
	}

	run := &catchUp{
		f: f, fn: fn, tr: tr, rng: rng, next: size,
		target: target, targetRaw: targetRaw, oldRaw: oldRaw,
		thr: tlog.TileHashReader(tlog.Tree{N: int64(target.Size), Hash: target.Hash}, tr),
	}
	err = run.run(ctx)
	return run.delivered, err
}

// accept checks the served checkpoint cp against the one accepted last
// (old, nil at start) and returns the checkpoint to catch up to: cp, or old
// if cp is the same tree.
func accept(tr *tileReader, old *auditlog.Checkpoint, oldRaw []byte, cp *auditlog.Checkpoint, raw []byte) (*auditlog.Checkpoint, []byte, error) {
	violation := func(kind, format string, args ...any) error {
		return &Violation{Kind: kind, Msg: fmt.Sprintf(format, args...), Old: oldRaw, New: raw}
	}
	if old == nil {
		if cp.Size == 0 && cp.Hash != emptyRoot {
			return nil, nil, violation(KindBadCheckpoint, "checkpoint of size 0 with root %v, not the empty tree's", cp.Hash)
		}
		return cp, raw, nil
	}
	switch {
	case cp.Size < old.Size:
		return nil, nil, violation(KindRollback, "checkpoint size %d (root %v) smaller than accepted size %d (root %v)", cp.Size, cp.Hash, old.Size, old.Hash)
	case cp.Size == old.Size:
		if cp.Hash != old.Hash {
			return nil, nil, violation(KindFork, "checkpoint size %d has root %v, accepted checkpoint of the same size has root %v", cp.Size, cp.Hash, old.Hash)
		}
		return old, oldRaw, nil
	case old.Size == 0:
		return cp, raw, nil // New checked that old has the empty tree's root
	}
	thr := tlog.TileHashReader(tlog.Tree{N: int64(cp.Size), Hash: cp.Hash}, tr)
	what := fmt.Sprintf("consistency proof from accepted size %d (root %v) to checkpoint size %d (root %v)", old.Size, old.Hash, cp.Size, cp.Hash)
	proof, err := tlog.ProveTree(int64(cp.Size), int64(old.Size), thr)
	if err != nil {
		return nil, nil, proofError(KindFork, what, err, oldRaw, raw)
	}
	if err := tlog.CheckTree(proof, int64(cp.Size), cp.Hash, int64(old.Size), old.Hash); err != nil {
		return nil, nil, violation(KindFork, "%s fails: %v", what, err)
	}
	return cp, raw, nil
}

// catchUp is the delivery of the entries [next, target.Size) by one Poll.
type catchUp struct {
	f         *Follower
	fn        func(Chunk) error
	tr        *tileReader
	thr       tlog.HashReader // over the target tree
	rng       *compact.Range  // over [0, next)
	next      uint64
	target    *auditlog.Checkpoint
	targetRaw []byte
	oldRaw    []byte

	chunk     [][]byte
	firstPath string // the first bundle read for the chunk
	lastPath  string
	delivered int
}

func (c *catchUp) violation(kind, format string, args ...any) error {
	return &Violation{Kind: kind, Msg: fmt.Sprintf(format, args...), Old: c.oldRaw, New: c.targetRaw}
}

func (c *catchUp) run(ctx context.Context) error {
	size := c.target.Size
	c.chunk = make([][]byte, 0, min(uint64(c.f.chunkSize), size-c.next))
	for c.next < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := c.next / tileWidth
		w := bundleWidth(n, size)
		data, p, err := fetchPartial(ctx, c.f.src, bundlePath(n, w), bundlePath(n, tileWidth))
		if err != nil {
			return fetchError(KindBadBundle, "entry bundle "+p, err, c.oldRaw, c.targetRaw)
		}
		entries, err := auditlog.ParseEntryBundle(data)
		if err != nil {
			var be *auditlog.BundleError
			if errors.As(err, &be) && be.Entry >= 0 {
				return c.violation(KindBadBundle, "entry bundle %s index %d: %s", p, n*tileWidth+uint64(be.Entry), be.Msg)
			}
			return c.violation(KindBadBundle, "entry bundle %s: %v", p, err)
		}
		want := w
		if p == bundlePath(n, tileWidth) {
			want = tileWidth
		}
		if len(entries) != want {
			return c.violation(KindBadBundle, "entry bundle %s: %d entries, want %d", p, len(entries), want)
		}
		if len(c.chunk) == 0 {
			c.firstPath = p
		}
		c.lastPath = p
		// Skip what an earlier poll delivered of this bundle.
		for _, e := range entries[c.next%tileWidth : w] {
			leaf := tlog.RecordHash(e)
			if err := c.rng.Append(leaf[:], nil); err != nil {
				panic(fmt.Sprintf("follow: append to compact range: %v", err)) // only fails for a range with another hasher
			}
			c.chunk = append(c.chunk, e)
			c.next++
			if len(c.chunk) == c.f.chunkSize || c.next == size {
				if err := c.deliver(); err != nil {
					return err
				}
				if c.next < size {
					c.firstPath = p
				}
			}
		}
	}
	return nil
}

// deliver proves the chunk and hands it to fn.
func (c *catchUp) deliver() error {
	k, n := c.next, c.target.Size
	start := k - uint64(len(c.chunk))
	root := rangeRoot(c.rng)
	bundles := "entry bundle " + c.firstPath
	if c.lastPath != c.firstPath {
		bundles = "entry bundles " + c.firstPath + " to " + c.lastPath
	}
	mismatch := func(detail string) error {
		return c.violation(KindEntryMismatch, "entries [%d, %d) of %s: %s", start, k, bundles, detail)
	}
	if k == n {
		if root != c.target.Hash {
			return mismatch(fmt.Sprintf("root %v of size %d differs from the checkpoint's %v", root, k, c.target.Hash))
		}
	} else {
		proof, err := tlog.ProveTree(int64(n), int64(k), c.thr)
		if err != nil {
			return proofError(KindEntryMismatch, fmt.Sprintf("consistency proof from size %d to checkpoint size %d (root %v), after entries [%d, %d)", k, n, c.target.Hash, start, k), err, c.oldRaw, c.targetRaw)
		}
		if err := tlog.CheckTree(proof, int64(n), c.target.Hash, int64(k), root); err != nil {
			return mismatch(fmt.Sprintf("root %v of size %d is not consistent with the checkpoint (size %d, root %v)", root, k, n, c.target.Hash))
		}
	}
	st := State{Checkpoint: c.targetRaw, Size: k, Hashes: cloneHashes(c.rng.Hashes())}
	if err := c.fn(Chunk{Start: start, Entries: c.chunk, State: st.clone(), Checkpoint: c.target}); err != nil {
		return err
	}
	rng, err := hasher.NewRange(0, k, cloneHashes(st.Hashes))
	if err != nil {
		panic(fmt.Sprintf("follow: copy of compact range: %v", err))
	}
	c.f.mu.Lock()
	c.f.state, c.f.cp, c.f.rng = st, c.target, rng
	c.f.mu.Unlock()
	c.delivered += len(c.chunk)
	c.chunk = make([][]byte, 0, min(uint64(c.f.chunkSize), n-k))
	return nil
}
