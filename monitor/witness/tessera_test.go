package witness

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/auditlog"
)

// TestTesseraLogIsWitnessed runs a real tessera POSIX log whose appender has
// a witness policy naming this witness, served over HTTP: tessera's own
// client (internal/witness) submits every checkpoint, with consistency
// proofs it computes from its tiles, and publishes it only once cosigned.
func TestTesseraLogIsWitnessed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a tessera log")
	}
	dir := t.TempDir()
	const origin = "clover.example/audit"
	logSigner, logVKey, err := auditlog.LoadOrCreateSigner(filepath.Join(dir, "log.key"), origin, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadOrCreateKey(filepath.Join(dir, "witness.key"), "monitor.example/witness", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	evs := &events{}
	w, err := New(key, map[string]string{origin: logVKey}, filepath.Join(dir, "witness.json"), time.Now, OnEvent(evs.add))
	if err != nil {
		t.Fatal(err)
	}
	// Record what tessera sends, to show it exercises consistency proofs.
	var mu sync.Mutex
	var withProof int
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		if old, proof, _, err := parseRequest(body); err == nil && old > 0 && len(proof) > 0 {
			mu.Lock()
			withProof++
			mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		w.Handler().ServeHTTP(rw, r)
	}))
	defer srv.Close()

	policy := fmt.Sprintf("witness monitor %s %s\nquorum monitor\n", key.CosignerVerifierKey(), srv.URL)
	group, err := tessera.NewWitnessGroupFromPolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	treeDir := filepath.Join(dir, "tree")
	driver, err := posix.New(ctx, posix.Config{Path: treeDir, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(logSigner).
		WithBatching(64, 10*time.Millisecond).
		WithCheckpointInterval(100*time.Millisecond).
		WithWitnesses(group, &tessera.WitnessOptions{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	awaiter := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 20*time.Millisecond)

	cosigV, err := fnote.NewVerifierForCosignatureV1(key.CosignerVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(logVKey)
	if err != nil {
		t.Fatal(err)
	}
	var prevSize uint64
	total := 0
	for round, n := range []int{1, 5, 30, 7} {
		futures := make([]tessera.IndexFuture, n)
		for i := range futures {
			futures[i] = appender.Add(ctx, tessera.NewEntry(fmt.Appendf(nil, "round %d entry %d", round, i)))
		}
		total += n
		var published []byte
		for _, fut := range futures {
			if _, published, err = awaiter.Await(ctx, fut); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		// The published checkpoint carries the log's signature and a
		// cosignature that verifies with the witness's verifier key.
		nt, err := note.Open(published, note.VerifierList(logV, cosigV))
		if err != nil {
			t.Fatalf("round %d: published checkpoint %q: %v", round, published, err)
		}
		if len(nt.Sigs) != 2 {
			t.Fatalf("round %d: %d verified signatures on %q, want the log's and the witness's", round, len(nt.Sigs), published)
		}
		cp, err := auditlog.ParseCheckpoint([]byte(nt.Text))
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size < uint64(total) || cp.Size < prevSize {
			t.Fatalf("round %d: checkpoint size %d, want at least %d", round, cp.Size, total)
		}
		// The witness recorded it (or a later one, if tessera has moved on).
		if _, size, ok := w.Latest(origin); !ok || size < cp.Size {
			t.Fatalf("round %d: witness latest size %d ok %v, want at least %d", round, size, ok, cp.Size)
		}
		prevSize = cp.Size
	}
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// The checkpoint file on disk is the cosigned one.
	onDisk, err := os.ReadFile(filepath.Join(treeDir, "checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(onDisk, note.VerifierList(cosigV)); err != nil {
		t.Errorf("checkpoint on disk has no valid cosignature: %v\n%s", err, onDisk)
	}
	mu.Lock()
	defer mu.Unlock()
	if withProof == 0 {
		t.Error("tessera never sent a consistency proof")
	}
	if kinds := evs.kinds(); len(kinds) != 0 {
		t.Errorf("events %v from an honest tessera log", kinds)
	}
}
