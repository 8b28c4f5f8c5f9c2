package witness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/cloverenclave/clover/auditlog"
)

// Sentinels matched (errors.Is) by the *Error values of AddCheckpoint and
// Cosign; each has its HTTP status in c2sp.org/tlog-witness.
var (
	// ErrBadRequest: a malformed request or checkpoint, or an old size
	// beyond the checkpoint's size (400).
	ErrBadRequest = errors.New("witness: bad request")
	// ErrBadSignature: no signature by the log's key verifies (403).
	ErrBadSignature = errors.New("witness: checkpoint not signed by the log")
	// ErrUnknownLog: the checkpoint's origin is not a configured log (404).
	ErrUnknownLog = errors.New("witness: unknown log")
	// ErrOldSize: the old size is not the size of the latest checkpoint
	// cosigned for the origin; Error.LatestSize holds that size (409 with
	// a text/x.tlog.size body).
	ErrOldSize = errors.New("witness: old size is not the latest cosigned size")
	// ErrFork: a checkpoint of the size of the latest cosigned one but with
	// another root hash (409). The log is showing two histories.
	ErrFork = errors.New("witness: same size, different root hash")
	// ErrBackwards: Cosign was given a checkpoint smaller than the latest
	// cosigned one (409).
	ErrBackwards = errors.New("witness: checkpoint older than the latest cosigned one")
	// ErrBadProof: the consistency proof does not verify (422).
	ErrBadProof = errors.New("witness: consistency proof does not verify")
	// ErrState: the new state could not be made durable; nothing was
	// cosigned (500).
	ErrState = errors.New("witness: state not saved")
)

// Error is the error of AddCheckpoint and Cosign: a sentinel above (Err),
// the HTTP status to answer with, and what was wrong.
type Error struct {
	Err    error
	Status int
	// LatestSize is the size of the latest cosigned checkpoint, for ErrOldSize.
	LatestSize uint64
	Msg        string
}

func (e *Error) Error() string { return e.Err.Error() + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Err }

func fail(err error, status int, format string, args ...any) *Error {
	return &Error{Err: err, Status: status, Msg: fmt.Sprintf(format, args...)}
}

// Event kinds.
const (
	EventFork         = "fork"          // same size, different root hash
	EventBadProof     = "bad_proof"     // a signed checkpoint whose consistency proof fails
	EventBadSignature = "bad_signature" // a checkpoint of a known log without its valid signature
	EventUnknownLog   = "unknown_log"   // a checkpoint of an origin not configured
)

// Event tells the caller of a submission that may be evidence against a log
// (or of someone probing the witness), so that it can raise an incident.
// Old is the latest cosigned checkpoint for the origin (nil if none or not
// relevant) and New the submitted signed checkpoint. Only fork and
// bad_proof events concern a checkpoint that carries the log's valid
// signature: they are evidence. bad_signature and unknown_log can be caused
// by anyone who can reach the witness; rate-limit what they trigger.
type Event struct {
	Origin string
	Kind   string
	Msg    string
	Old    []byte
	New    []byte
}

// Option configures a Witness.
type Option func(*Witness)

// OnEvent has f called, synchronously and outside the witness's locks, for
// every Event. f must not block for long: the request that caused the event
// waits for it.
func OnEvent(f func(Event)) Option { return func(w *Witness) { w.onEvent = f } }

// Witness is a C2SP tlog-witness for a fixed set of logs. It is safe for
// concurrent use.
type Witness struct {
	key       *Key
	cosigner  *clockedCosigner
	verifiers map[string]note.Verifier // origin -> the log's key
	now       func() time.Time
	onEvent   func(Event)

	// locks serialise the check-and-persist of each origin: a buffered
	// channel of one is a mutex a context can give up waiting for.
	locks map[string]chan struct{}

	stateMu   sync.Mutex // guards latest and the state file
	statePath string
	latest    map[string]*cosigned
}

// cosigned is the latest checkpoint cosigned for an origin.
type cosigned struct {
	size uint64
	hash tlog.Hash
	note []byte // the signed checkpoint with this witness's cosignature
}

// New returns a witness that cosigns, with key, the checkpoints of logs
// (origin -> the log's note verifier key), keeping its state in statePath
// and timestamping cosignatures with now. The state file is created on the
// first cosignature; an existing one must be valid (see the package
// comment).
func New(key *Key, logs map[string]string, statePath string, now func() time.Time, opts ...Option) (*Witness, error) {
	if key == nil || now == nil || statePath == "" {
		return nil, errors.New("witness: New needs a key, a state path and a clock")
	}
	if len(logs) == 0 {
		return nil, errors.New("witness: no logs configured")
	}
	w := &Witness{
		key:       key,
		cosigner:  key.cosignerAt(now),
		verifiers: make(map[string]note.Verifier, len(logs)),
		now:       now,
		locks:     make(map[string]chan struct{}, len(logs)),
		statePath: statePath,
	}
	for origin, vkey := range logs {
		if origin == "" || strings.ContainsRune(origin, '\n') {
			return nil, fmt.Errorf("witness: invalid origin %q", origin)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, fmt.Errorf("witness: verifier key of log %q: %w", origin, err)
		}
		w.verifiers[origin] = v
		w.locks[origin] = make(chan struct{}, 1)
	}
	for _, o := range opts {
		o(w)
	}
	if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
		return nil, fmt.Errorf("witness: state directory: %w", err)
	}
	latest, err := loadState(statePath, w.verifiers, key.cosigner.Verifier())
	if err != nil {
		return nil, err
	}
	w.latest = latest
	return w, nil
}

// Handler returns the witness's HTTP interface: POST /add-checkpoint, to be
// mounted at the submission prefix.
func (w *Witness) Handler() http.Handler { return handler{w} }

// Latest returns the latest checkpoint cosigned for origin, with this
// witness's cosignature, and its size; ok is false if there is none.
func (w *Witness) Latest(origin string) (signedCheckpoint []byte, size uint64, ok bool) {
	w.stateMu.Lock()
	defer w.stateMu.Unlock()
	c, ok := w.latest[origin]
	if !ok {
		return nil, 0, false
	}
	return bytes.Clone(c.note), c.size, true
}

// AddCheckpoint implements add-checkpoint (c2sp.org/tlog-witness): it
// cosigns signedCheckpoint if the log signed it and proof shows that it
// extends the latest checkpoint cosigned for its origin, of size oldSize.
// It returns the cosignature line, after the checkpoint is durably recorded
// as the latest. Errors are *Error.
func (w *Witness) AddCheckpoint(ctx context.Context, oldSize uint64, proof [][]byte, signedCheckpoint []byte) (cosig []byte, err error) {
	full, err := w.add(ctx, &oldSize, proof, signedCheckpoint)
	if err != nil {
		return nil, err
	}
	// The cosignature is the last line of the note.
	return full[bytes.LastIndexByte(full[:len(full)-1], '\n')+1:], nil
}

// Cosign cosigns a checkpoint that the caller has verified some other way,
// under the same rules as AddCheckpoint, the old size being the size of the
// latest cosigned checkpoint: proof must lead from it to signedCheckpoint
// (empty for the first checkpoint of a log, or for the same checkpoint
// again). A checkpoint smaller than the latest fails with ErrBackwards. It
// returns the signed checkpoint with this witness's cosignature appended
// (replacing an earlier one of the same key). Errors are *Error.
func (w *Witness) Cosign(signedCheckpoint []byte, proof [][]byte) ([]byte, error) {
	return w.add(context.Background(), nil, proof, signedCheckpoint)
}

// add is AddCheckpoint and Cosign (oldSize nil: the latest size). It
// returns the cosigned note.
func (w *Witness) add(ctx context.Context, oldSize *uint64, proof [][]byte, signed []byte) ([]byte, error) {
	var ev *Event
	full, err := w.check(ctx, oldSize, proof, signed, &ev)
	if ev != nil && w.onEvent != nil {
		w.onEvent(*ev)
	}
	return full, err
}

func (w *Witness) check(ctx context.Context, oldSize *uint64, proof [][]byte, signed []byte, ev **Event) ([]byte, error) {
	if len(signed) > MaxRequestSize {
		return nil, fail(ErrBadRequest, http.StatusBadRequest, "checkpoint larger than %d bytes", MaxRequestSize)
	}
	// The note's text ends where its signature block begins, at the last
	// empty line, as note.Open sees it.
	split := bytes.LastIndex(signed, []byte("\n\n"))
	if split < 0 {
		return nil, fail(ErrBadRequest, http.StatusBadRequest, "checkpoint is not a signed note")
	}
	cp, err := auditlog.ParseCheckpoint(signed[:split+1])
	if err != nil {
		return nil, fail(ErrBadRequest, http.StatusBadRequest, "checkpoint: %v", err)
	}
	v, ok := w.verifiers[cp.Origin]
	if !ok {
		*ev = &Event{Origin: cp.Origin, Kind: EventUnknownLog, Msg: "checkpoint of an unknown origin", New: bytes.Clone(signed)}
		return nil, fail(ErrUnknownLog, http.StatusNotFound, "origin %.64q", cp.Origin)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	var unverified *note.UnverifiedNoteError
	var invalid *note.InvalidSignatureError
	switch {
	case errors.As(err, &unverified):
		*ev = &Event{Origin: cp.Origin, Kind: EventBadSignature, Msg: "no signature by the log's key", New: bytes.Clone(signed)}
		return nil, fail(ErrBadSignature, http.StatusForbidden, "no signature by the key of log %q", cp.Origin)
	case errors.As(err, &invalid):
		*ev = &Event{Origin: cp.Origin, Kind: EventBadSignature, Msg: "the log's signature does not verify", New: bytes.Clone(signed)}
		return nil, fail(ErrBadSignature, http.StatusForbidden, "the signature by the key of log %q does not verify", cp.Origin)
	case err != nil:
		return nil, fail(ErrBadRequest, http.StatusBadRequest, "checkpoint is not a valid signed note: %v", err)
	}
	if oldSize != nil && *oldSize > cp.Size {
		return nil, fail(ErrBadRequest, http.StatusBadRequest, "old size %d is larger than the checkpoint size %d", *oldSize, cp.Size)
	}
	var tp tlog.TreeProof
	if len(proof) > MaxProofLen {
		return nil, fail(ErrBadRequest, http.StatusBadRequest, "%d consistency proof hashes, at most %d allowed", len(proof), MaxProofLen)
	}
	for i, h := range proof {
		if len(h) != sha256.Size {
			return nil, fail(ErrBadRequest, http.StatusBadRequest, "consistency proof hash %d has %d bytes, want %d", i+1, len(h), sha256.Size)
		}
		tp = append(tp, tlog.Hash(h))
	}

	lock := w.locks[cp.Origin]
	select {
	case lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("witness: %w", ctx.Err())
	}
	defer func() { <-lock }()

	w.stateMu.Lock()
	prev := w.latest[cp.Origin]
	w.stateMu.Unlock()
	var prevSize uint64
	var prevNote []byte
	if prev != nil {
		prevSize, prevNote = prev.size, prev.note
	}
	if oldSize == nil {
		if cp.Size < prevSize {
			return nil, &Error{Err: ErrBackwards, Status: http.StatusConflict, LatestSize: prevSize,
				Msg: fmt.Sprintf("checkpoint size %d, latest cosigned size %d", cp.Size, prevSize)}
		}
		oldSize = &prevSize
	}
	if *oldSize != prevSize {
		return nil, &Error{Err: ErrOldSize, Status: http.StatusConflict, LatestSize: prevSize,
			Msg: fmt.Sprintf("old size %d, latest cosigned size %d", *oldSize, prevSize)}
	}
	badProof := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		*ev = &Event{Origin: cp.Origin, Kind: EventBadProof, Msg: msg, Old: bytes.Clone(prevNote), New: bytes.Clone(signed)}
		return fail(ErrBadProof, http.StatusUnprocessableEntity, "%s", msg)
	}
	switch {
	case cp.Size == 0:
		// The empty tree has one root hash, and no proof.
		if cp.Hash != tlog.Hash(sha256.Sum256(nil)) {
			return nil, badProof("size 0 with a root hash other than the empty tree's")
		}
		if len(tp) != 0 {
			return nil, badProof("consistency proof to size 0 is not empty")
		}
	case *oldSize == cp.Size:
		if prev != nil && cp.Hash != prev.hash {
			msg := fmt.Sprintf("size %d cosigned with another root hash", cp.Size)
			*ev = &Event{Origin: cp.Origin, Kind: EventFork, Msg: msg, Old: bytes.Clone(prevNote), New: bytes.Clone(signed)}
			return nil, fail(ErrFork, http.StatusConflict, "%s", msg)
		}
		if len(tp) != 0 {
			return nil, badProof("consistency proof between equal sizes is not empty")
		}
	case *oldSize == 0:
		if len(tp) != 0 {
			return nil, badProof("consistency proof from size 0 is not empty")
		}
	default:
		if err := tlog.CheckTree(tp, int64(cp.Size), cp.Hash, int64(*oldSize), prev.hash); err != nil {
			return nil, badProof("consistency proof from size %d to %d: %v", *oldSize, cp.Size, err)
		}
	}

	// Keep the other signatures (the log's, other witnesses'), replace
	// any earlier cosignature of this key, and cosign last.
	full, err := note.Sign(n, w.cosigner)
	if err != nil {
		return nil, fmt.Errorf("witness: cosign: %w", err)
	}
	next := &cosigned{size: cp.Size, hash: cp.Hash, note: full}
	if err := w.commit(ctx, cp.Origin, next); err != nil {
		return nil, err
	}
	return bytes.Clone(full), nil
}

// commit makes next the latest checkpoint of origin, durably first.
func (w *Witness) commit(ctx context.Context, origin string, next *cosigned) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("witness: %w", err)
	}
	w.stateMu.Lock()
	defer w.stateMu.Unlock()
	latest := maps.Clone(w.latest)
	latest[origin] = next
	if err := saveState(w.statePath, latest); err != nil {
		return fail(ErrState, http.StatusInternalServerError, "%v", err)
	}
	w.latest = latest
	return nil
}
