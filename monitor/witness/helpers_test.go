package witness

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testClock is the witness's clock in tests.
var testClock = time.Unix(1_790_000_000, 0)

func fixedNow() time.Time { return testClock }

// testLog is an in-memory Merkle tree with a note signer: a log that makes
// checkpoints and consistency proofs for the witness to check.
type testLog struct {
	t      testing.TB
	origin string
	signer note.Signer
	vkey   string
	hashes []tlog.Hash // stored hashes (tlog.StoredHashIndex order)
	size   int64
	salt   string // makes a fork's leaves differ
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, origin: origin, signer: signer, vkey: vkey}
}

// fork returns a log with the same key and the first n leaves, whose next
// leaves differ from l's.
func (l *testLog) fork(n int64) *testLog {
	f := &testLog{t: l.t, origin: l.origin, signer: l.signer, vkey: l.vkey, salt: l.salt + "fork"}
	f.grow(0)
	for f.size < n {
		f.add(fmt.Appendf(nil, "entry %d%s", f.size, l.salt))
	}
	return f
}

func (l *testLog) add(data []byte) {
	l.t.Helper()
	hs, err := tlog.StoredHashes(l.size, data, l.reader())
	if err != nil {
		l.t.Fatal(err)
	}
	l.hashes = append(l.hashes, hs...)
	l.size++
}

// grow adds n leaves.
func (l *testLog) grow(n int) *testLog {
	for range n {
		l.add(fmt.Appendf(nil, "entry %d%s", l.size, l.salt))
	}
	return l
}

func (l *testLog) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= int64(len(l.hashes)) {
				return nil, fmt.Errorf("hash %d not stored", x)
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

func (l *testLog) root(n int64) tlog.Hash {
	l.t.Helper()
	if n == 0 {
		return sha256.Sum256(nil)
	}
	h, err := tlog.TreeHash(n, l.reader())
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

// text is the checkpoint text for size n with root hash root.
func (l *testLog) text(n int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", l.origin, n, base64.StdEncoding.EncodeToString(root[:]))
}

// checkpoint returns the signed checkpoint of size n.
func (l *testLog) checkpoint(n int64) []byte {
	l.t.Helper()
	return l.sign(l.text(n, l.root(n)))
}

func (l *testLog) sign(text string) []byte {
	l.t.Helper()
	b, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// proof returns the consistency proof from size old to size n.
func (l *testLog) proof(old, n int64) [][]byte {
	l.t.Helper()
	if old == 0 || old == n {
		return nil
	}
	p, err := tlog.ProveTree(n, old, l.reader())
	if err != nil {
		l.t.Fatal(err)
	}
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// events records a witness's events.
type events struct {
	mu   sync.Mutex
	list []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func (e *events) kinds() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var k []string
	for _, ev := range e.list {
		k = append(k, ev.Kind)
	}
	return k
}

type fixture struct {
	w      *Witness
	key    *Key
	state  string
	events *events
}

func newFixture(t testing.TB, logs ...*testLog) *fixture {
	t.Helper()
	dir := t.TempDir()
	key, err := LoadOrCreateKey(filepath.Join(dir, "witness.key"), "witness.example/test", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{key: key, state: filepath.Join(dir, "state", "witness.json"), events: &events{}}
	f.w = f.reopen(t, logs...)
	return f
}

// reopen returns a new Witness on the fixture's key and state file.
func (f *fixture) reopen(t testing.TB, logs ...*testLog) *Witness {
	t.Helper()
	m := map[string]string{}
	for _, l := range logs {
		m[l.origin] = l.vkey
	}
	w, err := New(f.key, m, f.state, fixedNow, OnEvent(f.events.add))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// checkCosig checks that cosig, appended to checkpoint, is a cosignature
// of the witness key timestamped with the test clock.
func checkCosig(t *testing.T, key *Key, checkpoint, cosig []byte) {
	t.Helper()
	v, err := fnote.NewVerifierForCosignatureV1(key.CosignerVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(append(append([]byte{}, checkpoint...), cosig...), note.VerifierList(v))
	if err != nil {
		t.Fatalf("cosignature %q does not verify: %v", cosig, err)
	}
	if len(n.Sigs) != 1 {
		t.Fatalf("%d verified cosignatures, want 1", len(n.Sigs))
	}
	ts, err := fnote.CoSigV1Timestamp(n.Sigs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !ts.Equal(testClock) {
		t.Errorf("cosignature time %v, want the witness clock %v", ts, testClock)
	}
}

// wantErr checks that err is a *Error matching sentinel with status.
func wantErr(t *testing.T, err, sentinel error, status int) *Error {
	t.Helper()
	werr, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %v (%T), want *Error %v", err, err, sentinel)
	}
	if werr.Err != sentinel || werr.Status != status {
		t.Fatalf("error %v with status %d, want %v with %d", werr, werr.Status, sentinel, status)
	}
	return werr
}
