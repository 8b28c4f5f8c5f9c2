package witness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func TestFirstCheckpointAndGrowth(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(100)
	f := newFixture(t, log)
	ctx := context.Background()

	// Every size from an empty tree up, with a proof from the previous one.
	var old int64
	for _, n := range []int64{0, 1, 2, 3, 7, 8, 9, 16, 17, 63, 64, 65, 99, 100, 100} {
		cp := log.checkpoint(n)
		cosig, err := f.w.AddCheckpoint(ctx, uint64(old), log.proof(old, n), cp)
		if err != nil {
			t.Fatalf("old %d, size %d: %v", old, n, err)
		}
		if !bytes.HasPrefix(cosig, []byte("— witness.example/test ")) || bytes.Count(cosig, []byte("\n")) != 1 || !bytes.HasSuffix(cosig, []byte("\n")) {
			t.Fatalf("cosignature %q is not one signature line of the witness", cosig)
		}
		checkCosig(t, f.key, cp, cosig)
		latest, size, ok := f.w.Latest(log.origin)
		if !ok || size != uint64(n) {
			t.Fatalf("Latest: size %d ok %v, want %d", size, ok, n)
		}
		if want := append(append([]byte{}, cp...), cosig...); !bytes.Equal(latest, want) {
			t.Fatalf("Latest = %q, want the checkpoint with its cosignature %q", latest, want)
		}
		old = n
	}
	if got := f.events.kinds(); len(got) != 0 {
		t.Errorf("events %v for a well-behaved log", got)
	}
}

func TestOldSizeMismatch(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(20)
	f := newFixture(t, log)
	ctx := context.Background()
	if _, err := f.w.AddCheckpoint(ctx, 0, nil, log.checkpoint(10)); err != nil {
		t.Fatal(err)
	}
	for _, old := range []int64{0, 5, 11} {
		_, err := f.w.AddCheckpoint(ctx, uint64(old), log.proof(old, 20), log.checkpoint(20))
		werr := wantErr(t, err, ErrOldSize, http.StatusConflict)
		if werr.LatestSize != 10 {
			t.Errorf("old %d: LatestSize %d, want 10", old, werr.LatestSize)
		}
	}
	if _, size, _ := f.w.Latest(log.origin); size != 10 {
		t.Errorf("latest size %d after refused submissions, want 10", size)
	}
}

func TestForgedProof(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(40)
	f := newFixture(t, log)
	ctx := context.Background()
	if _, err := f.w.AddCheckpoint(ctx, 0, nil, log.checkpoint(13)); err != nil {
		t.Fatal(err)
	}
	good := log.proof(13, 40)
	cp := log.checkpoint(40)
	forgeries := map[string][][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"extended":  append(append([][]byte{}, good...), good[0]),
		"from 12":   log.proof(12, 40),
	}
	for i := range good {
		for _, bit := range []int{0, 255} {
			p := make([][]byte, len(good))
			for j := range good {
				p[j] = bytes.Clone(good[j])
			}
			p[i][bit/8] ^= 1 << (bit % 8)
			forgeries[fmt.Sprintf("hash %d bit %d flipped", i, bit)] = p
		}
	}
	for name, p := range forgeries {
		_, err := f.w.AddCheckpoint(ctx, 13, p, cp)
		wantErr(t, err, ErrBadProof, http.StatusUnprocessableEntity)
		if _, size, _ := f.w.Latest(log.origin); size != 13 {
			t.Fatalf("%s: latest size %d, want 13", name, size)
		}
	}
	if got := f.events.kinds(); len(got) != len(forgeries) || got[0] != EventBadProof {
		t.Errorf("events %v, want %d bad_proof", got, len(forgeries))
	}
	ev := f.events.list[0]
	latest, _, _ := f.w.Latest(log.origin)
	if ev.Origin != log.origin || !bytes.Equal(ev.New, cp) || !bytes.Equal(ev.Old, latest) {
		t.Errorf("bad_proof event %+v does not carry the origin and both checkpoints", ev)
	}
	// The genuine proof still works.
	if _, err := f.w.AddCheckpoint(ctx, 13, good, cp); err != nil {
		t.Fatal(err)
	}
}

func TestProofRulesAtEdges(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(8)
	f := newFixture(t, log)
	ctx := context.Background()
	junk := log.proof(3, 8)
	// From size 0 the proof must be empty.
	_, err := f.w.AddCheckpoint(ctx, 0, junk, log.checkpoint(8))
	wantErr(t, err, ErrBadProof, http.StatusUnprocessableEntity)
	// A size-0 checkpoint must have the empty tree's root.
	_, err = f.w.AddCheckpoint(ctx, 0, nil, log.sign(log.text(0, log.root(8))))
	wantErr(t, err, ErrBadProof, http.StatusUnprocessableEntity)
	if _, err := f.w.AddCheckpoint(ctx, 0, nil, log.checkpoint(8)); err != nil {
		t.Fatal(err)
	}
	// The same checkpoint again: no proof, cosigned again.
	_, err = f.w.AddCheckpoint(ctx, 8, junk, log.checkpoint(8))
	wantErr(t, err, ErrBadProof, http.StatusUnprocessableEntity)
	if _, err := f.w.AddCheckpoint(ctx, 8, nil, log.checkpoint(8)); err != nil {
		t.Errorf("same checkpoint again: %v", err)
	}
	// Proof hashes of the wrong length are a bad request.
	_, err = f.w.AddCheckpoint(ctx, 8, [][]byte{make([]byte, 31)}, log.checkpoint(8))
	wantErr(t, err, ErrBadRequest, http.StatusBadRequest)
	_, err = f.w.AddCheckpoint(ctx, 8, make([][]byte, MaxProofLen+1), log.checkpoint(8))
	wantErr(t, err, ErrBadRequest, http.StatusBadRequest)
}

func TestUnknownOrigin(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(3)
	other := newTestLog(t, "other.example/log").grow(3)
	f := newFixture(t, log)
	_, err := f.w.AddCheckpoint(context.Background(), 0, nil, other.checkpoint(3))
	wantErr(t, err, ErrUnknownLog, http.StatusNotFound)
	if got := f.events.kinds(); !cmp.Equal(got, []string{EventUnknownLog}) {
		t.Errorf("events %v, want [unknown_log]", got)
	}
	if _, _, ok := f.w.Latest(other.origin); ok {
		t.Error("Latest has a checkpoint of an unknown origin")
	}
}

func TestBadLogSignature(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(3)
	impostor := newTestLog(t, "clover.example/log") // same name, other key
	impostor.hashes, impostor.size = log.hashes, log.size
	f := newFixture(t, log)
	ctx := context.Background()

	genuine := log.checkpoint(3)
	_, err := f.w.AddCheckpoint(ctx, 0, nil, impostor.checkpoint(3))
	wantErr(t, err, ErrBadSignature, http.StatusForbidden)

	// Tampering: change each byte of the checkpoint text; never cosigned.
	textLen := len(log.text(3, log.root(3)))
	for i := range textLen {
		forged := bytes.Clone(genuine)
		forged[i] ^= 0x01
		if _, err := f.w.AddCheckpoint(ctx, 0, nil, forged); err == nil {
			t.Fatalf("checkpoint with byte %d changed was cosigned", i)
		} else if werr, ok := err.(*Error); !ok || werr.Status < 400 || werr.Status > 404 {
			t.Fatalf("byte %d changed: %v, want a 400, 403 or 404", i, err)
		}
	}
	// And each byte of the signature line, unless the change only touches
	// the unused bits of the last base64 character (the same signature).
	sigOf := func(signed []byte) []byte {
		line := signed[textLen+1 : len(signed)-1]
		b, _ := base64.StdEncoding.DecodeString(string(line[bytes.LastIndexByte(line, ' ')+1:]))
		return b
	}
	for i := textLen + 1; i < len(genuine)-1; i++ {
		forged := bytes.Clone(genuine)
		forged[i] ^= 0x01
		if sig := sigOf(forged); sig != nil && bytes.Equal(sig, sigOf(genuine)) {
			continue
		}
		if _, err := f.w.AddCheckpoint(ctx, 0, nil, forged); err == nil {
			t.Fatalf("checkpoint with signature byte %d changed was cosigned: %q", i, forged)
		}
	}
	if _, _, ok := f.w.Latest(log.origin); ok {
		t.Fatal("a forged checkpoint became the latest")
	}
	kinds := f.events.kinds()
	if len(kinds) == 0 || kinds[0] != EventBadSignature {
		t.Errorf("events %v, want bad_signature first", kinds)
	}
	// Other signatures beside the log's are ignored, and kept by Cosign.
	withOther, err := note.Sign(&note.Note{Text: log.text(3, log.root(3))}, log.signer, newTestLog(t, "someone.else").signer)
	if err != nil {
		t.Fatal(err)
	}
	full, err := f.w.Cosign(withOther, nil)
	if err != nil {
		t.Fatalf("checkpoint with an extra unknown signature: %v", err)
	}
	if !bytes.HasPrefix(full, withOther) {
		t.Errorf("Cosign dropped signatures: %q", full)
	}
}

func TestFork(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(10)
	forked := log.fork(6).grow(4)
	f := newFixture(t, log)
	ctx := context.Background()
	if _, err := f.w.AddCheckpoint(ctx, 0, nil, log.checkpoint(10)); err != nil {
		t.Fatal(err)
	}
	if log.root(10) == forked.root(10) {
		t.Fatal("test fork has the same root")
	}
	_, err := f.w.AddCheckpoint(ctx, 10, nil, forked.checkpoint(10))
	wantErr(t, err, ErrFork, http.StatusConflict)
	if got := f.events.kinds(); !cmp.Equal(got, []string{EventFork}) {
		t.Fatalf("events %v, want [fork]", got)
	}
	ev := f.events.list[0]
	latest, _, _ := f.w.Latest(log.origin)
	if !bytes.Equal(ev.Old, latest) || !bytes.Equal(ev.New, forked.checkpoint(10)) || ev.Origin != log.origin {
		t.Errorf("fork event %+v does not carry both checkpoints", ev)
	}
	// A fork that grows beyond the latest fails its proof.
	forked.grow(5)
	_, err = f.w.AddCheckpoint(ctx, 10, forked.proof(10, 15), forked.checkpoint(15))
	wantErr(t, err, ErrBadProof, http.StatusUnprocessableEntity)
	// And Cosign refuses the fork too.
	_, err = f.w.Cosign(forked.checkpoint(10), nil)
	wantErr(t, err, ErrFork, http.StatusConflict)
	if _, size, _ := f.w.Latest(log.origin); size != 10 {
		t.Errorf("latest size %d, want 10", size)
	}
}

func TestGoingBackwards(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(10)
	f := newFixture(t, log)
	ctx := context.Background()
	if _, err := f.w.AddCheckpoint(ctx, 0, nil, log.checkpoint(10)); err != nil {
		t.Fatal(err)
	}
	// add-checkpoint: old size beyond the checkpoint is a bad request...
	_, err := f.w.AddCheckpoint(ctx, 10, nil, log.checkpoint(5))
	wantErr(t, err, ErrBadRequest, http.StatusBadRequest)
	// ...and an old size below the latest a conflict.
	_, err = f.w.AddCheckpoint(ctx, 0, nil, log.checkpoint(5))
	wantErr(t, err, ErrOldSize, http.StatusConflict)
	// Cosign: smaller than the latest.
	_, err = f.w.Cosign(log.checkpoint(5), nil)
	wantErr(t, err, ErrBackwards, http.StatusConflict)
	if _, size, _ := f.w.Latest(log.origin); size != 10 {
		t.Errorf("latest size %d, want 10", size)
	}
}

func TestCosign(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(30)
	f := newFixture(t, log)
	v, err := fnote.NewVerifierForCosignatureV1(f.key.CosignerVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(log.vkey)
	if err != nil {
		t.Fatal(err)
	}
	var old int64
	var prev []byte
	for _, n := range []int64{4, 4, 30} {
		src := log.checkpoint(n)
		if n == old && prev != nil {
			src = prev // a checkpoint that already carries this witness's cosignature
		}
		full, err := f.w.Cosign(src, log.proof(old, n))
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		nt, err := note.Open(full, note.VerifierList(v, logV))
		if err != nil || len(nt.Sigs) != 2 {
			t.Fatalf("cosigned note %q: %v, %d signatures", full, err, len(nt.Sigs))
		}
		if c := strings.Count(string(full), "— witness.example/test "); c != 1 {
			t.Fatalf("%d cosignatures of the witness in %q, want 1", c, full)
		}
		old, prev = n, full
	}
	_, err = f.w.Cosign(log.checkpoint(30), log.proof(4, 30))
	wantErr(t, err, ErrBadProof, http.StatusUnprocessableEntity)
}

func TestConcurrentSubmissions(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(250)
	f := newFixture(t, log)
	ctx := context.Background()
	if _, err := f.w.AddCheckpoint(ctx, 0, nil, log.checkpoint(50)); err != nil {
		t.Fatal(err)
	}
	// Many clients race from size 50 to different sizes: exactly one wins,
	// the others are told the new size.
	const racers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := map[int64]bool{}
	var conflicts int
	start := make(chan struct{})
	for i := range racers {
		n := int64(51 + i*9)
		proof, cp := log.proof(50, n), log.checkpoint(n)
		wg.Go(func() {
			<-start
			_, err := f.w.AddCheckpoint(ctx, 50, proof, cp)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins[n] = true
			case errors.Is(err, ErrOldSize):
				conflicts++
			default:
				t.Errorf("size %d: %v", n, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(wins) != 1 || conflicts != racers-1 {
		t.Fatalf("%d wins, %d conflicts; want 1 and %d", len(wins), conflicts, racers-1)
	}
	_, size, _ := f.w.Latest(log.origin)
	if !wins[int64(size)] {
		t.Fatalf("latest size %d is not the winner %v", size, wins)
	}

	// Clients that retry with the size they are told, like tessera's, all
	// end up cosigned, and the state only ever grows.
	var sizes []uint64
	for i := range racers {
		n := int64(size) + int64(i) + 1
		wg.Go(func() {
			old := size
			for range 100 {
				_, err := f.w.AddCheckpoint(ctx, old, log.proof(int64(old), n), log.checkpoint(n))
				werr, _ := err.(*Error)
				if err == nil || (werr != nil && errors.Is(err, ErrOldSize) && werr.LatestSize > uint64(n)) {
					break // cosigned, or overtaken by a bigger one: nothing to do
				}
				if werr == nil || !errors.Is(err, ErrOldSize) {
					t.Errorf("size %d: %v", n, err)
					return
				}
				old = werr.LatestSize
			}
			_, s, _ := f.w.Latest(log.origin)
			mu.Lock()
			sizes = append(sizes, s)
			mu.Unlock()
		})
	}
	// Readers concurrently with them.
	wg.Go(func() {
		for range 20 {
			f.w.Latest(log.origin)
		}
	})
	wg.Wait()
	if _, s, _ := f.w.Latest(log.origin); s != size+racers {
		t.Errorf("final size %d, want %d", s, size+racers)
	}
	w2 := f.reopen(t, log)
	if _, s, _ := w2.Latest(log.origin); s != size+racers {
		t.Errorf("persisted size %d, want %d", s, size+racers)
	}
}

func TestStatePersists(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(20)
	other := newTestLog(t, "other.example/log").grow(5)
	f := newFixture(t, log, other)
	ctx := context.Background()
	if _, err := f.w.AddCheckpoint(ctx, 0, nil, log.checkpoint(12)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.AddCheckpoint(ctx, 0, nil, other.checkpoint(5)); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(f.state)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %04o, want 0600", info.Mode().Perm())
	}
	before, _, _ := f.w.Latest(log.origin)

	w2 := f.reopen(t, log, other)
	after, size, ok := w2.Latest(log.origin)
	if !ok || size != 12 || !bytes.Equal(before, after) {
		t.Fatalf("after New: size %d ok %v, checkpoint %q; want 12 and %q", size, ok, after, before)
	}
	_, err = w2.AddCheckpoint(ctx, 0, nil, log.checkpoint(20))
	if werr := wantErr(t, err, ErrOldSize, http.StatusConflict); werr.LatestSize != 12 {
		t.Errorf("LatestSize %d after restart, want 12", werr.LatestSize)
	}
	if _, err := w2.AddCheckpoint(ctx, 12, log.proof(12, 20), log.checkpoint(20)); err != nil {
		t.Fatal(err)
	}

	// A log dropped from the configuration keeps its state.
	w3 := f.reopen(t, log)
	if _, err := w3.AddCheckpoint(ctx, 20, nil, log.checkpoint(20)); err != nil {
		t.Fatal(err)
	}
	w4 := f.reopen(t, log, other)
	if _, size, ok := w4.Latest(other.origin); !ok || size != 5 {
		t.Errorf("state of an unconfigured log lost: size %d ok %v", size, ok)
	}
}

func TestDamagedState(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(5)
	f := newFixture(t, log)
	if _, err := f.w.AddCheckpoint(context.Background(), 0, nil, log.checkpoint(5)); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(f.state)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"), "witness.example/test", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rekeyed := newTestLog(t, log.origin)
	cases := map[string]struct {
		data []byte
		key  *Key
		log  *testLog
	}{
		"truncated":     {data: good[:len(good)/2]},
		"empty":         {data: []byte{}},
		"unknown field": {data: []byte(`{"checkpoints":{},"extra":1}`)},
		"trailing data": {data: append(bytes.Clone(good), "{}"...)},
		"no object":     {data: []byte(`{}`)},
		"byte changed":  {data: bytes.Replace(good, []byte("\\n5\\n"), []byte("\\n6\\n"), 1)},
		"wrong origin":  {data: bytes.Replace(good, []byte(`"clover.example/log":`), []byte(`"clover.example/other":`), 1)},
		"other witness": {data: good, key: otherKey},
		"other log key": {data: good, log: rekeyed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(f.state, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			key, l := f.key, log
			if c.key != nil {
				key = c.key
			}
			if c.log != nil {
				l = c.log
			}
			_, err := New(key, map[string]string{l.origin: l.vkey}, f.state, fixedNow)
			if !errors.Is(err, ErrCorruptState) {
				t.Errorf("New = %v, want ErrCorruptState", err)
			}
			if got, _ := os.ReadFile(f.state); !bytes.Equal(got, c.data) {
				t.Error("New changed a damaged state file")
			}
		})
	}
}

func TestStateWriteFailureCosignsNothing(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(5)
	f := newFixture(t, log)
	if err := os.RemoveAll(filepath.Dir(f.state)); err != nil {
		t.Fatal(err)
	}
	cosig, err := f.w.AddCheckpoint(context.Background(), 0, nil, log.checkpoint(5))
	wantErr(t, err, ErrState, http.StatusInternalServerError)
	if cosig != nil {
		t.Errorf("cosignature %q returned though the state was not saved", cosig)
	}
	if _, _, ok := f.w.Latest(log.origin); ok {
		t.Error("unsaved checkpoint became the latest")
	}
}

func TestNewValidates(t *testing.T) {
	log := newTestLog(t, "clover.example/log")
	f := newFixture(t, log)
	for name, logs := range map[string]map[string]string{
		"none":             {},
		"bad key":          {log.origin: "not a key"},
		"empty name":       {"": log.vkey},
		"newline":          {"a\nb": log.vkey},
		"cosignature vkey": {log.origin: f.key.CosignerVerifierKey()},
	} {
		if _, err := New(f.key, logs, f.state, fixedNow); err == nil {
			t.Errorf("%s: New accepted %v", name, logs)
		}
	}
}

func TestContextCancelledWhileWaiting(t *testing.T) {
	log := newTestLog(t, "clover.example/log").grow(5)
	f := newFixture(t, log)
	lock := f.w.locks[log.origin]
	lock <- struct{}{} // another request holds the origin
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.w.AddCheckpoint(ctx, 0, nil, log.checkpoint(5))
	<-lock
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("AddCheckpoint = %v, want context.Canceled", err)
	}
	if _, _, ok := f.w.Latest(log.origin); ok {
		t.Error("cancelled submission was recorded")
	}
}

// BenchmarkAddCheckpoint measures one accepted submission: the log's
// signature, a consistency proof, the cosignature and the synced state file.
func BenchmarkAddCheckpoint(b *testing.B) {
	log := newTestLog(b, "clover.example/log").grow(1 << 12)
	f := newFixture(b, log)
	ctx := context.Background()
	cps := make([][]byte, 2)
	for i, n := range []int64{1<<12 - 1, 1 << 12} {
		cps[i] = log.checkpoint(n)
	}
	proof := log.proof(1<<12-1, 1<<12)
	if _, err := f.w.AddCheckpoint(ctx, 0, nil, cps[0]); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		// Alternate between cosigning the larger checkpoint (with a proof)
		// and submitting it again (no proof).
		old := uint64(1<<12 - 1)
		p := proof
		if i%2 == 1 {
			old, p = 1<<12, nil
		}
		if _, err := f.w.AddCheckpoint(ctx, old, p, cps[1]); err != nil {
			b.Fatal(err)
		}
		if i%2 == 1 {
			// Back to the smaller size for the next round: a fresh witness
			// state would cost a New per iteration, so rewind in memory.
			f.w.stateMu.Lock()
			f.w.latest[log.origin] = &cosigned{size: 1<<12 - 1, hash: log.root(1<<12 - 1)}
			f.w.stateMu.Unlock()
		}
	}
}
