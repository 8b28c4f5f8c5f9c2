package auditlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// Options configure a Log. Zero values take the defaults below.
type Options struct {
	// Dir is the log's directory (DATA/log): the journal in Dir/journal and
	// the tlog-tiles tree, the directory to serve, in Dir/tree.
	Dir string
	// Origin is the log's name: the checkpoints' origin line and the name of
	// the signing key, e.g. "clover/eu". No spaces or '+'.
	Origin string
	// SignerKeyFile is the checkpoint signing key, created (0600) on first
	// start: see LoadOrCreateSigner.
	SignerKeyFile string
	// Rand is the randomness for a new signing key (default crypto/rand).
	Rand io.Reader
	// Logger receives the log's own events (default: discarded).
	Logger *slog.Logger

	// MaxPending caps the appends waiting for their group commit; beyond it
	// Append fails with ErrPushback (default 16384).
	MaxPending int
	// MaxBacklog caps the durable entries not yet integrated into the tree;
	// beyond it Append fails with ErrPushback (default 262144).
	MaxBacklog int
	// BatchSize and BatchAge are tessera's batching: at most BatchSize
	// entries are integrated at once, and a smaller batch waits BatchAge
	// (defaults 4096 and 100ms). They bound only the time to a checkpoint,
	// not Append's latency (Append waits for the journal alone). Tessera's
	// work per batch is mostly fixed (each partial bundle and tile, the
	// tree state: a file each, written with O_SYNC, renamed, its directory
	// synced), so larger batches cost less per entry. Measured against 1024
	// and 20ms (docs/performance.md): tessera's CPU per audited read fell
	// from ~21µs to 12–18µs, and at 20,000 appends/s the median time to a
	// checkpoint from 1.9s (the tree lagging behind) to 0.5s.
	BatchSize int
	BatchAge  time.Duration
	// CheckpointInterval is how often a new checkpoint is published
	// (default 200ms; tessera's POSIX driver needs at least 100ms).
	CheckpointInterval time.Duration
	// Witnesses, when not empty, must cosign every checkpoint before it is
	// published (C2SP tlog-witness): the log submits each new checkpoint to
	// their add-checkpoint endpoints and publishes it only once
	// WitnessQuorum of them (default: all) have cosigned. Until then readers
	// see the previous checkpoint; appends are still durable in the journal.
	Witnesses []Witness
	// WitnessQuorum is how many witnesses must cosign (1..len(Witnesses);
	// 0 means all).
	WitnessQuorum int
	// WitnessTimeout bounds each round of witnessing (default 5s).
	WitnessTimeout time.Duration
	// ShutdownTimeout bounds Close's wait for the last checkpoint (default
	// 10s).
	ShutdownTimeout time.Duration
	// JournalSegmentBytes is the size at which the journal starts a new
	// segment file (default 64 MiB, at least MinJournalSegmentBytes). A
	// group is never split, so a segment exceeds it by at most one group
	// (4 MiB). A segment is deleted once the tree has integrated, and a
	// published checkpoint covers, every entry in it and the one after it.
	JournalSegmentBytes int64
	// JournalKeepSegments is how many segments the journal keeps after they
	// could be deleted, newest first (default 0: none).
	JournalKeepSegments int
	// JournalSyncInterval is the least time from the start of one group
	// commit (a write and an fdatasync) to the start of the next while
	// appends keep coming (default DefaultJournalSyncInterval; negative:
	// none, commits back to back). A longer interval means fewer, larger
	// syncs and less CPU, and adds up to the interval to an append's
	// latency under load; an append after a quiet spell, or one of a lone
	// caller appending one entry after another, does not wait.
	JournalSyncInterval time.Duration

	// Test hooks.
	wrapJournal func(journalFile) journalFile // wraps the journal file
	noFeeder    bool                          // journal only: nothing reaches the tree
	// recoveryBytes caps the journal entries recovery holds in memory at
	// once (default recoveryBytes).
	recoveryBytes int64
}

// Defaults of Options.
const (
	DefaultMaxPending          = 16384
	DefaultMaxBacklog          = 1 << 18
	defaultRecoveryBytes       = 64 << 20
	DefaultBatchSize           = 4096
	DefaultBatchAge            = 100 * time.Millisecond
	DefaultCheckpointInterval  = 200 * time.Millisecond
	DefaultShutdownTimeout     = 10 * time.Second
	DefaultWitnessTimeout      = 5 * time.Second
	DefaultJournalSegmentBytes = 64 << 20
	DefaultJournalSyncInterval = 2 * time.Millisecond
	// MaxJournalSyncInterval is the largest JournalSyncInterval accepted:
	// every append under load may wait that long.
	MaxJournalSyncInterval = 50 * time.Millisecond
	// MinJournalSegmentBytes is the smallest JournalSegmentBytes accepted.
	MinJournalSegmentBytes = 64 << 10
)

func (o Options) withDefaults() Options {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&o.MaxPending, DefaultMaxPending)
	setDefault(&o.MaxBacklog, DefaultMaxBacklog)
	setDefault(&o.recoveryBytes, defaultRecoveryBytes)
	setDefault(&o.BatchSize, DefaultBatchSize)
	setDefault(&o.BatchAge, DefaultBatchAge)
	setDefault(&o.CheckpointInterval, DefaultCheckpointInterval)
	setDefault(&o.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&o.WitnessTimeout, DefaultWitnessTimeout)
	setDefault(&o.JournalSegmentBytes, DefaultJournalSegmentBytes)
	setDefault(&o.JournalSyncInterval, DefaultJournalSyncInterval)
	if o.WitnessQuorum == 0 {
		o.WitnessQuorum = len(o.Witnesses)
	}
	return o
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Validate reports what is wrong with the options (after defaults).
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("auditlog: no directory"))
	}
	if o.SignerKeyFile == "" {
		errs = append(errs, errors.New("auditlog: no signer key file"))
	}
	if err := validOrigin(o.Origin); err != nil {
		errs = append(errs, err)
	}
	if o.MaxPending < 1 || o.MaxBacklog < 1 || o.BatchSize < 1 {
		errs = append(errs, errors.New("auditlog: MaxPending, MaxBacklog and BatchSize must be positive"))
	}
	if o.BatchAge < 0 || o.ShutdownTimeout < 0 || o.WitnessTimeout < 0 {
		errs = append(errs, errors.New("auditlog: BatchAge, ShutdownTimeout and WitnessTimeout must not be negative"))
	}
	if o.JournalSegmentBytes < MinJournalSegmentBytes {
		errs = append(errs, fmt.Errorf("auditlog: JournalSegmentBytes %d is below %d", o.JournalSegmentBytes, MinJournalSegmentBytes))
	}
	if o.JournalKeepSegments < 0 {
		errs = append(errs, fmt.Errorf("auditlog: JournalKeepSegments %d is negative", o.JournalKeepSegments))
	}
	if o.JournalSyncInterval > MaxJournalSyncInterval {
		errs = append(errs, fmt.Errorf("auditlog: JournalSyncInterval %v is above %v", o.JournalSyncInterval, MaxJournalSyncInterval))
	}
	if o.CheckpointInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("auditlog: CheckpointInterval %v is below 100ms", o.CheckpointInterval))
	}
	if _, err := o.witnessGroup(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Witness is a C2SP tlog-witness that must cosign the log's checkpoints,
// such as an independent `clover monitor`.
type Witness struct {
	// Name is for messages only; the key carries the witness's own name.
	Name string
	// URL is the witness's base URL; checkpoints are POSTed to
	// URL/add-checkpoint.
	URL string
	// Key is the witness's cosignature/v1 verifier key (a C2SP vkey of
	// type 0x04), as printed by `clover monitor key`.
	Key string
}

// WitnessError says what is wrong with a Witness: Field is "url" or "key".
type WitnessError struct {
	Name  string
	Field string
	Msg   string
}

func (e *WitnessError) Error() string {
	return fmt.Sprintf("auditlog: witness %q: %s", e.Name, e.Msg)
}

// Validate checks that the witness can be used: an http(s) URL with a host
// and a cosignature/v1 (or Ed25519) verifier key. Errors are *WitnessError.
func (w Witness) Validate() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(w.URL, " \t\n#") {
		return &WitnessError{w.Name, "url", fmt.Sprintf("URL %q is not an http(s) URL with a host", w.URL)}
	}
	if _, err := tessera.NewWitness(w.Key, u); err != nil || strings.ContainsAny(w.Key, " \t\n#") {
		return &WitnessError{w.Name, "key", "key is not a cosignature/v1 verifier key (print it with `clover monitor key`)"}
	}
	return nil
}

// witnessGroup builds tessera's witness policy: WitnessQuorum of the
// witnesses. It returns the empty group when there are no witnesses.
func (o Options) witnessGroup() (tessera.WitnessGroup, error) {
	if len(o.Witnesses) == 0 {
		return tessera.WitnessGroup{}, nil
	}
	// tessera builds groups of any size only from its policy text (the
	// sigsum policy format), so the policy is written out: one witness line
	// each, then a group of the quorum.
	var p strings.Builder
	names := make([]string, len(o.Witnesses))
	for i, w := range o.Witnesses {
		if err := w.Validate(); err != nil {
			return tessera.WitnessGroup{}, err
		}
		names[i] = fmt.Sprintf("w%d", i)
		fmt.Fprintf(&p, "witness %s %s %s\n", names[i], w.Key, w.URL)
	}
	q := o.WitnessQuorum
	if q == 0 {
		q = len(o.Witnesses)
	}
	if q < 1 || q > len(o.Witnesses) {
		return tessera.WitnessGroup{}, fmt.Errorf("auditlog: witness quorum %d is outside 1..%d", q, len(o.Witnesses))
	}
	fmt.Fprintf(&p, "group witnesses %d %s\nquorum witnesses\n", q, strings.Join(names, " "))
	g, err := tessera.NewWitnessGroupFromPolicy([]byte(p.String()))
	if err != nil {
		return tessera.WitnessGroup{}, fmt.Errorf("auditlog: witness policy: %w", err)
	}
	return g, nil
}

// Log is Clover's audit log: a durable group-commit journal that assigns
// the order, feeding a tessera tlog-tiles log with signed checkpoints. It is
// safe for concurrent use.
type Log struct {
	opts     Options
	log      *slog.Logger
	verifier note.Verifier
	vkey     string
	journal  *journal
	lock     *os.File
	tree     *os.Root // the tree directory, read-only use
	fetch    Fetcher

	add      tessera.AddFn
	reader   tessera.LogReader
	shutdown func(context.Context) error
	cancel   context.CancelFunc // stops tessera's background work

	failure        atomic.Pointer[error]
	integrated     atomic.Uint64              // entries integrated into the tree
	lastCheckpoint atomic.Pointer[Checkpoint] // the last published checkpoint verified

	mu        sync.Mutex
	backlog   [][]byte // durable entries not yet integrated; backlog[0] has index backlogAt
	backlogAt uint64
	closing   chan struct{} // closed by Close
	feedWake  chan struct{}
	fed       chan struct{} // closed when the feeder exits; nil without one
	retired   chan struct{} // closed when the segment retirer exits

	closeOnce sync.Once
	closeErr  error
}

// Open opens the log in opts.Dir, creating it on first use, and recovers
// from a crash: a torn journal tail is cut off, and journalled entries that
// had not reached the tree are added to it under their journal indexes
// before Open returns. The tree's integrated size, not the last published
// checkpoint, says where the tree ends: tessera integrates before it
// publishes, so the tree may hold entries no checkpoint covers yet.
func Open(ctx context.Context, opts Options) (_ *Log, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	journalDir, treeDir := filepath.Join(o.Dir, "journal"), filepath.Join(o.Dir, "tree")
	for _, d := range []string{o.Dir, journalDir, treeDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("auditlog: %w", err)
		}
	}
	signer, vkey, err := LoadOrCreateSigner(o.SignerKeyFile, o.Origin, o.Rand)
	if err != nil {
		return nil, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("auditlog: %w", err)
	}
	l := &Log{
		opts:     o,
		log:      o.Logger,
		verifier: verifier,
		vkey:     vkey,
		closing:  make(chan struct{}),
		feedWake: make(chan struct{}, 1),
	}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	if l.lock, err = lockDir(journalDir); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { l.lock.Close() })
	if l.tree, err = os.OpenRoot(treeDir); err != nil {
		return nil, fmt.Errorf("auditlog: %w", err)
	}
	cleanup = append(cleanup, func() { l.tree.Close() })
	l.fetch = rootFetcher(l.tree)

	// Tessera's background work runs until Close, not until ctx is done.
	tctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	cleanup = append(cleanup, cancel)
	witnesses, err := o.witnessGroup()
	if err != nil {
		return nil, err
	}
	driver, err := posix.New(tctx, posix.Config{Path: treeDir})
	if err != nil {
		return nil, fmt.Errorf("auditlog: tree storage: %w", err)
	}
	appender, shutdown, reader, err := tessera.NewAppender(tctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithBatching(uint(o.BatchSize), o.BatchAge).
		WithCheckpointInterval(o.CheckpointInterval).
		WithShutdownTimeout(o.ShutdownTimeout).
		WithWitnesses(witnesses, &tessera.WitnessOptions{Timeout: o.WitnessTimeout}))
	if err != nil {
		return nil, fmt.Errorf("auditlog: tree appender: %w", err)
	}
	l.add, l.reader, l.shutdown = appender.Add, reader, shutdown

	// Recovery: where does the tree end, and what does the journal hold?
	size, err := reader.IntegratedSize(ctx)
	if err != nil {
		return nil, fmt.Errorf("auditlog: tree size: %w", err)
	}
	keepFrom := size
	if size > 0 {
		keepFrom = size - 1 // to check that tree and journal agree
	}
	segments := segmentDir{path: journalDir, wrap: o.wrapJournal}
	budget := o.recoveryBytes
	if o.noFeeder {
		budget = math.MaxInt64 // nothing is fed, so everything stays in the backlog
	}
	scan, err := openJournal(segments, keepFrom, budget, o.Logger)
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { scan.file.Close() })
	if scan.next < size {
		return nil, fmt.Errorf("%w: the tree has %d entries but the journal only %d: the journal was lost or belongs to another log", ErrCorrupt, size, scan.next)
	}
	backlog := scan.entries
	if size > 0 {
		if err := l.checkTreeEntry(ctx, size, scan.entries[0]); err != nil {
			return nil, err
		}
		backlog = backlog[1:]
	}
	l.backlog, l.backlogAt = backlog, size
	l.integrated.Store(size)

	l.journal = newJournal(segments, segments.journalFile(scan.file), scan.segments, scan.next,
		o.JournalSegmentBytes, o.MaxPending, o.JournalSyncInterval, l.onDurable, o.Logger)
	if scan.next > size {
		o.Logger.Info("auditlog: recovering entries missing from the tree", "from", size, "to", scan.next)
	}
	if !o.noFeeder {
		l.fed = make(chan struct{})
		go l.feed(tctx)
		cleanup = append(cleanup, func() { l.stopFeeder() })
		if err := l.recoverRest(ctx, segments, scan); err != nil {
			return nil, err
		}
	}
	l.journal.start()
	l.retired = make(chan struct{})
	go l.retire(tctx)
	return l, nil
}

// recoverRest waits until the tree holds every entry of the recovered
// journal. The entries openJournal kept in memory are in the backlog; the
// rest are read from the journal a budget's worth at a time, each part once
// the feeder has added the one before, so that recovering a long journal
// (a tree restored from an old backup) needs a bounded amount of memory.
func (l *Log) recoverRest(ctx context.Context, d segmentDir, scan *recoveredJournal) error {
	for at := scan.keptTo; at < scan.next; {
		if err := l.waitFed(ctx, at); err != nil {
			return err
		}
		part, err := readJournal(d, scan.segments, at, l.opts.recoveryBytes)
		if err != nil {
			return err
		}
		part = part[:min(uint64(len(part)), scan.next-at)]
		l.mu.Lock()
		ok := l.backlogAt+uint64(len(l.backlog)) == at
		if ok {
			l.backlog = append(l.backlog, part...)
		}
		l.mu.Unlock()
		if !ok {
			return fmt.Errorf("%w: recovery read index %d but the backlog ends elsewhere", errInvariant, at)
		}
		select {
		case l.feedWake <- struct{}{}:
		default:
		}
		at += uint64(len(part))
	}
	return l.waitFed(ctx, scan.next)
}

// checkTreeEntry checks that the last entry of a tree of the given size is
// the journal's entry at that index: tree and journal are of one log.
func (l *Log) checkTreeEntry(ctx context.Context, size uint64, want []byte) error {
	got, err := l.treeEntry(ctx, size-1, size)
	if err != nil {
		return fmt.Errorf("auditlog: read tree entry %d: %w", size-1, err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: entry %d differs between the tree and the journal", ErrCorrupt, size-1)
	}
	return nil
}

// treeEntry reads entry index of a tree of the given size from disk.
func (l *Log) treeEntry(ctx context.Context, index, size uint64) ([]byte, error) {
	n := index / tileWidth
	entries, _, err := fetchBundle(ctx, l.fetch, n, widthAt(0, n, size))
	if err != nil {
		return nil, err
	}
	return entries[index%tileWidth], nil
}

// Append makes entry durable in the journal and returns its index in the
// log. It returns only once the entry's group has been written and
// fdatasynced. Errors: ErrEntryTooLarge; ErrPushback (shed load, nothing
// written); ErrUnavailable (the log has failed: fail closed); ErrClosed; or
// the context's error, in which case the entry may still be logged.
func (l *Log) Append(ctx context.Context, entry []byte) (uint64, error) {
	return l.append(ctx, entry, true)
}

// append appends entry, which the log keeps: a copy when clone is set (the
// caller's slice), the slice itself otherwise (one Encode just made).
func (l *Log) append(ctx context.Context, entry []byte, clone bool) (uint64, error) {
	if len(entry) == 0 || len(entry) > MaxEntrySize {
		return 0, fmt.Errorf("%w: %d bytes", ErrEntryTooLarge, len(entry))
	}
	if p := l.failure.Load(); p != nil {
		return 0, *p
	}
	if backlog := l.journal.durable.Load() - l.integrated.Load(); backlog >= uint64(l.opts.MaxBacklog) {
		return 0, fmt.Errorf("%w: %d entries waiting for the tree", ErrPushback, backlog)
	}
	if clone {
		entry = bytes.Clone(entry)
	}
	return l.journal.append(ctx, entry)
}

// AppendEntry encodes e and appends it.
func (l *Log) AppendEntry(ctx context.Context, e *Entry) (uint64, error) {
	b, err := Encode(e)
	if err != nil {
		return 0, err
	}
	return l.append(ctx, b, false)
}

// Origin returns the log's origin.
func (l *Log) Origin() string { return l.opts.Origin }

// VerifierKey returns the note verifier key of the log's checkpoints.
func (l *Log) VerifierKey() string { return l.vkey }

// Stats is the state of a Log.
type Stats struct {
	Durable         uint64 // entries in the journal: the next index
	Integrated      uint64 // entries in the tree (not all in a checkpoint yet)
	JournalSegments int    // segment files of the journal on disk
	JournalBytes    int64  // their total size
	JournalSyncs    uint64 // group commits (one write and one fdatasync each) since Open
	Err             error  // why the log failed, or nil
}

// Stats returns the log's state, e.g. for metrics and health checks.
func (l *Log) Stats() Stats {
	s := Stats{Durable: l.journal.durable.Load(), Integrated: l.integrated.Load(), JournalSyncs: l.journal.syncs.Load(), Err: l.journal.failed()}
	s.JournalSegments, s.JournalBytes = l.journal.segmentStats()
	if p := l.failure.Load(); p != nil {
		s.Err = *p
	}
	return s
}

// fail closes the log: every later Append fails with ErrUnavailable.
func (l *Log) fail(cause error) {
	err := fmt.Errorf("%w: %v", ErrUnavailable, cause)
	if l.failure.CompareAndSwap(nil, &err) {
		l.log.Error("auditlog: log failed; appends refused until restart", "err", cause)
	}
	l.journal.setErr(err)
}

// onDurable receives each group the journal made durable.
func (l *Log) onDurable(first uint64, entries [][]byte) {
	l.mu.Lock()
	want := l.backlogAt + uint64(len(l.backlog))
	if first == want {
		l.backlog = append(l.backlog, entries...)
	}
	l.mu.Unlock()
	if first != want {
		l.fail(fmt.Errorf("%w: journal group at index %d, expected %d", errInvariant, first, want))
		return
	}
	select {
	case l.feedWake <- struct{}{}:
	default:
	}
}

// errInvariant marks a broken invariant between journal and tree.
var errInvariant = errors.New("invariant broken")

// feed adds journalled entries to the tree in journal order, one chunk at a
// time, and checks that each gets its journal index.
func (l *Log) feed(ctx context.Context) {
	defer close(l.fed)
	const minRetry, maxRetry = 50 * time.Millisecond, 5 * time.Second
	retry := minRetry
	for {
		first, chunk, ok := l.nextChunk(ctx)
		if !ok {
			return
		}
		done, err := l.feedChunk(ctx, first, chunk)
		if done > 0 {
			l.advance(first, done)
		}
		if err == nil {
			retry = minRetry
			continue
		}
		if errors.Is(err, errInvariant) {
			l.fail(err)
			return
		}
		l.log.Warn("auditlog: adding entries to the tree failed; retrying", "err", err, "index", first+done, "retry", retry)
		select {
		case <-time.After(retry):
		case <-l.closing:
			return // the journal keeps them: the next Open adds them
		case <-ctx.Done():
			return
		}
		retry = min(2*retry, maxRetry)
		if err := l.resync(ctx); err != nil {
			if errors.Is(err, errInvariant) {
				l.fail(err)
				return
			}
			l.log.Warn("auditlog: reading the tree size failed", "err", err)
		}
	}
}

// nextChunk waits for entries to feed and returns up to BatchSize of them,
// or false when the log is closing and everything has been fed.
func (l *Log) nextChunk(ctx context.Context) (uint64, [][]byte, bool) {
	for {
		l.mu.Lock()
		if n := len(l.backlog); n > 0 {
			k := min(n, l.opts.BatchSize)
			chunk, first := l.backlog[:k:k], l.backlogAt
			l.mu.Unlock()
			return first, chunk, true
		}
		l.mu.Unlock()
		select {
		case <-l.feedWake:
		case <-l.closing:
			l.mu.Lock()
			n := len(l.backlog)
			l.mu.Unlock()
			if n == 0 {
				return 0, nil, false
			}
		case <-ctx.Done():
			return 0, nil, false
		}
	}
}

// feedChunk adds a chunk of entries, the first with index first, and waits
// for all of them: so tessera never holds entries of two chunks, and two of
// its batches are never in flight at once (their order is not guaranteed).
// It returns how many entries, from the first, are in the tree at their
// journal index.
func (l *Log) feedChunk(ctx context.Context, first uint64, chunk [][]byte) (uint64, error) {
	futures := make([]tessera.IndexFuture, len(chunk))
	for i, e := range chunk {
		futures[i] = l.add(ctx, tessera.NewEntry(e))
	}
	var done uint64
	var firstErr error
	for i, f := range futures {
		idx, err := f()
		want := first + uint64(i)
		switch {
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		case idx.Index != want || idx.IsDup:
			return done, fmt.Errorf("%w: journal entry %d got index %d in the tree (duplicate: %t)", errInvariant, want, idx.Index, idx.IsDup)
		case firstErr == nil:
			done = uint64(i) + 1
		}
	}
	return done, firstErr
}

// advance records that n entries from first are in the tree.
func (l *Log) advance(first, n uint64) {
	l.mu.Lock()
	if first == l.backlogAt && n <= uint64(len(l.backlog)) {
		clear(l.backlog[:n])
		l.backlog = l.backlog[n:]
		l.backlogAt += n
		if len(l.backlog) == 0 {
			l.backlog = nil
		}
	}
	l.mu.Unlock()
	l.integrated.Store(first + n)
}

// resync reads the tree's size after a failed integration: a batch whose
// future failed may still have reached the tree (for example if only the
// final directory sync failed). Entries the tree holds are checked against
// the journal and skipped.
func (l *Log) resync(ctx context.Context) error {
	size, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return err
	}
	l.mu.Lock()
	at, pending := l.backlogAt, l.backlog
	l.mu.Unlock()
	switch {
	case size < at:
		return fmt.Errorf("%w: the tree shrank from %d to %d entries", errInvariant, at, size)
	case size > at+uint64(len(pending)):
		return fmt.Errorf("%w: the tree has %d entries, the journal %d", errInvariant, size, at+uint64(len(pending)))
	case size == at:
		return nil
	}
	for i := at; i < size; i++ {
		got, err := l.treeEntry(ctx, i, size)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, pending[i-at]) {
			return fmt.Errorf("%w: tree entry %d differs from the journal", errInvariant, i)
		}
	}
	l.advance(at, size-at)
	return nil
}

// waitFed waits until the tree holds n entries (recovery at Open).
func (l *Log) waitFed(ctx context.Context, n uint64) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for l.integrated.Load() < n {
		if p := l.failure.Load(); p != nil {
			return *p
		}
		select {
		case <-t.C:
		case <-l.fed:
			if l.integrated.Load() < n {
				return fmt.Errorf("%w: recovery stopped at index %d of %d", ErrUnavailable, l.integrated.Load(), n)
			}
		case <-ctx.Done():
			return fmt.Errorf("auditlog: recovery: %w", ctx.Err())
		}
	}
	return nil
}

// retire deletes the journal segments the tree no longer needs, at start,
// after each new segment and every CheckpointInterval (a checkpoint
// covering them may come later), until the log closes. It runs beside the
// writer and never holds up an Append.
func (l *Log) retire(ctx context.Context) {
	defer close(l.retired)
	t := time.NewTicker(l.opts.CheckpointInterval)
	defer t.Stop()
	failing := false // log a failure once, not at every retry
	for {
		err := l.retireSegments(ctx)
		if err != nil && !failing {
			l.log.Error("auditlog: deleting old journal segments failed; retrying", "err", err)
		}
		failing = err != nil
		select {
		case <-t.C:
		case <-l.journal.rotated:
		case <-l.closing:
			return
		case <-ctx.Done():
			return
		}
	}
}

// retireSegments deletes the segments whose entries the tree holds durably:
// integrated, and covered by the latest published checkpoint.
func (l *Log) retireSegments(ctx context.Context) error {
	bases := l.journal.segmentBases()
	if len(bases) <= 1+l.opts.JournalKeepSegments {
		return nil
	}
	cp, err := l.published(ctx)
	if err != nil {
		return err
	}
	safe := min(l.integrated.Load(), cp.Size)
	n := obsoleteSegments(bases, safe, l.opts.JournalKeepSegments)
	if n == 0 {
		return nil
	}
	if err := l.journal.dropOldest(n); err != nil {
		return err
	}
	l.log.Debug("auditlog: old journal segments deleted", "segments", n, "below", bases[n])
	return nil
}

func (l *Log) stopFeeder() {
	l.mu.Lock()
	select {
	case <-l.closing:
	default:
		close(l.closing)
	}
	l.mu.Unlock()
	if l.fed == nil {
		return
	}
	select {
	case <-l.fed:
	case <-time.After(l.opts.ShutdownTimeout):
		l.log.Error("auditlog: the tree did not take the last entries in time; the next start adds them")
	}
}

// Close stops accepting appends, writes what is queued, adds every journalled
// entry to the tree and waits (up to ShutdownTimeout) for a checkpoint that
// covers them. Entries that do not make it are added at the next Open.
func (l *Log) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Log) close() error {
	var errs []error
	if err := l.journal.close(); err != nil {
		errs = append(errs, fmt.Errorf("auditlog: close journal: %w", err))
	}
	l.stopFeeder()
	<-l.retired
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.ShutdownTimeout)
	if err := l.shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("auditlog: tree shutdown: %w", err))
	}
	cancel()
	l.cancel()
	l.tree.Close()
	l.lock.Close()
	return errors.Join(errs...)
}
