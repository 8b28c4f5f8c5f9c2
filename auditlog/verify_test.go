package auditlog

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// fixture is a real log of 300 entries built through Log, closed, with the
// checkpoints it published at sizes 250 and 300.
type fixture struct {
	tree       string // the tree directory
	vkey       string
	signerFile string
	entries    [][]byte
	cp250      []byte
	cp300      []byte
}

var (
	fixtureOnce sync.Once
	fixtureVal  *fixture
	fixtureErr  error
	fixtureDir  string
)

// TestMain removes the shared fixture.
func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fixtureOnce.Do(func() { fixtureVal, fixtureErr = buildFixture() })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureVal
}

func buildFixture() (*fixture, error) {
	dir, err := os.MkdirTemp("", "auditlog-fixture-")
	if err != nil {
		return nil, err
	}
	fixtureDir = dir
	opts := baseOptions(dir, slog.New(slog.DiscardHandler))
	l, err := Open(context.Background(), opts)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	f := &fixture{tree: filepath.Join(opts.Dir, "tree"), vkey: l.VerifierKey(), signerFile: opts.SignerKeyFile}
	ctx := context.Background()
	add := func(from, to int) error {
		for i := from; i < to; i++ {
			e := readEntry()
			e.RequestID = fmt.Sprintf("req-%d", i)
			e.Status = 200 + i%100
			if i < 250 {
				e.Version = 1 // a log begun before version 2, continued after
			}
			b, err := Encode(e)
			if err != nil {
				return err
			}
			if _, err := l.Append(ctx, b); err != nil {
				return err
			}
			f.entries = append(f.entries, b)
		}
		return l.WaitIntegrated(ctx, uint64(to-1))
	}
	if err := add(0, 250); err != nil {
		return nil, err
	}
	if f.cp250, err = l.Checkpoint(ctx); err != nil {
		return nil, err
	}
	if err := add(250, 300); err != nil {
		return nil, err
	}
	if f.cp300, err = l.Checkpoint(ctx); err != nil {
		return nil, err
	}
	return f, l.Close()
}

// copyTree returns a fresh copy of the fixture's tree to tamper with.
func (f *fixture) copyTree(t *testing.T) string {
	dst := filepath.Join(t.TempDir(), "tree")
	copyDir(t, f.tree, dst)
	return dst
}

func TestVerifyGoodLog(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	var seen int
	cp, err := Verify(ctx, DirFetcher(f.tree), f.vkey, VerifyOptions{
		Previous: f.cp250,
		Entry: func(i uint64, e []byte) error {
			if !bytes.Equal(e, f.entries[i]) {
				t.Errorf("entry %d differs", i)
			}
			d, err := Decode(e)
			if want := map[bool]int{true: 1, false: 0}[i < 250]; err != nil || d.Version != want {
				t.Errorf("entry %d: Decode: version %v, %v; want version %d", i, d, err, want)
			}
			seen++
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 300 || seen != 300 || cp.Origin != testOrigin || !bytes.Equal(cp.Signed, f.cp300) {
		t.Fatalf("Verify = size %d origin %q, %d entries seen", cp.Size, cp.Origin, seen)
	}
	if _, err := Verify(ctx, DirFetcher(f.tree), f.vkey, VerifyOptions{Previous: f.cp300}); err != nil {
		t.Fatalf("Verify against the same checkpoint: %v", err)
	}
	for _, i := range []uint64{0, 37, 255, 256, 299} {
		cp, e, err := VerifyEntry(ctx, DirFetcher(f.tree), f.vkey, i)
		if err != nil {
			t.Fatalf("VerifyEntry(%d): %v", i, err)
		}
		if cp.Size != 300 || !bytes.Equal(e, f.entries[i]) {
			t.Fatalf("VerifyEntry(%d) returned the wrong entry", i)
		}
	}
	if _, _, err := VerifyEntry(ctx, DirFetcher(f.tree), f.vkey, 300); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("VerifyEntry(300) = %v, want ErrOutOfRange", err)
	}
	older, _ := OpenCheckpoint(f.cp250, f.vkey)
	newer, _ := OpenCheckpoint(f.cp300, f.vkey)
	if err := CheckConsistency(ctx, DirFetcher(f.tree), older, newer); err != nil {
		t.Fatalf("CheckConsistency(250, 300): %v", err)
	}
	stop := errors.New("stop")
	if _, err := Verify(ctx, DirFetcher(f.tree), f.vkey, VerifyOptions{Entry: func(uint64, []byte) error { return stop }}); !errors.Is(err, stop) {
		t.Fatalf("an Entry callback's error is not returned: %v", err)
	}
}

func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// entryOffset is the offset in a bundle of byte k of entry i's data.
func entryOffset(entries [][]byte, i, k int) int {
	off := 0
	for j := range i {
		off += 2 + len(entries[j])
	}
	return off + 2 + k
}

func TestVerifyTampering(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	otherKey, _, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := note.NewSigner(otherKey)
	logSigner, _, err := LoadOrCreateSigner(f.signerFile, testOrigin, nil)
	if err != nil {
		t.Fatal(err)
	}
	cp300, _ := OpenCheckpoint(f.cp300, f.vkey)
	v, _ := note.NewVerifier(f.vkey)

	cases := []struct {
		name   string
		tamper func(t *testing.T, tree string) // changes the copy of the tree
		prev   []byte
		want   string
	}{{
		name: "a: flipped byte in an entry bundle",
		tamper: func(t *testing.T, tree string) {
			flipByte(t, filepath.Join(tree, "tile/entries/000"), entryOffset(f.entries, 37, 10))
		},
		want: "entry bundle tile/entries/000 index 37: leaf hash differs from tile/0/000 hash 37, and the entries do not produce the checkpoint's root hash",
	}, {
		name:   "b: flipped byte in a hash tile",
		tamper: func(t *testing.T, tree string) { flipByte(t, filepath.Join(tree, "tile/0/000"), 12*hashSize+5) },
		want:   "tile/0/000: hash 12 differs",
	}, {
		name:   "b: flipped byte in a partial level-1 tile",
		tamper: func(t *testing.T, tree string) { flipByte(t, filepath.Join(tree, "tile/1/000.p/1"), 31) },
		want:   "tile/1/000.p/1: hash 0 differs",
	}, {
		name:   "c: flipped byte in the checkpoint body",
		tamper: func(t *testing.T, tree string) { flipByte(t, filepath.Join(tree, "checkpoint"), len(testOrigin)+1) },
		want:   "checkpoint: signature does not verify",
	}, {
		name: "d: truncated entry bundle",
		tamper: func(t *testing.T, tree string) {
			p := filepath.Join(tree, "tile/entries/001.p/44")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-10], 0o644)
		},
		want: "entry bundle tile/entries/001.p/44 index 299: truncated: ",
	}, {
		name: "d: entry bundle cut at an entry boundary",
		tamper: func(t *testing.T, tree string) {
			p := filepath.Join(tree, "tile/entries/001.p/44")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:entryOffset(f.entries[256:], 43, -2)], 0o644)
		},
		want: "entry bundle tile/entries/001.p/44: 43 entries, want 44",
	}, {
		name: "e: checkpoint signed by another key",
		tamper: func(t *testing.T, tree string) {
			signed, err := note.Sign(&note.Note{Text: string(cp300.Marshal())}, other)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(tree, "checkpoint"), signed, 0o644)
		},
		want: "checkpoint: not signed by key " + v.Name(),
	}, {
		name:   "f: rollback to an older checkpoint",
		tamper: func(t *testing.T, tree string) { os.WriteFile(filepath.Join(tree, "checkpoint"), f.cp250, 0o644) },
		prev:   f.cp300,
		want:   "checkpoint size 250 smaller than saved size 300",
	}, {
		name:   "f: a saved checkpoint of another history",
		tamper: func(*testing.T, string) {},
		prev: func() []byte {
			forked := &Checkpoint{Origin: testOrigin, Size: 250, Hash: cp300.Hash}
			b, err := note.Sign(&note.Note{Text: string(forked.Marshal())}, logSigner)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}(),
		want: "checkpoint (size 300) is not consistent with saved checkpoint (size 250): the first 250 entries have root hash ",
	}, {
		name:   "missing partial tile",
		tamper: func(t *testing.T, tree string) { os.Remove(filepath.Join(tree, "tile/0/001.p/44")) },
		want:   "tile/0/001.p/44: missing",
	}, {
		name:   "missing bundle",
		tamper: func(t *testing.T, tree string) { os.Remove(filepath.Join(tree, "tile/entries/000")) },
		want:   "entry bundle tile/entries/000: missing",
	}, {
		name:   "saved checkpoint signed by another key",
		tamper: func(*testing.T, string) {},
		prev: func() []byte {
			b, _ := note.Sign(&note.Note{Text: string(cp300.Marshal())}, other)
			return b
		}(),
		want: "saved checkpoint: not signed by key",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree := f.copyTree(t)
			c.tamper(t, tree)
			_, err := Verify(ctx, DirFetcher(tree), f.vkey, VerifyOptions{Previous: c.prev})
			if !errors.Is(err, ErrVerification) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("Verify = %v\nwant %q...", err, c.want)
			}
		})
	}
}

func TestVerifyEntryTampering(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	tree := f.copyTree(t)
	flipByte(t, filepath.Join(tree, "tile/entries/000"), entryOffset(f.entries, 37, 10))
	_, _, err := VerifyEntry(ctx, DirFetcher(tree), f.vkey, 37)
	if want := "entry bundle tile/entries/000 index 37: not included in the checkpoint (the inclusion proof fails)"; err == nil || err.Error() != want {
		t.Fatalf("VerifyEntry(37) = %v, want %q", err, want)
	}
	if _, _, err := VerifyEntry(ctx, DirFetcher(tree), f.vkey, 38); err != nil {
		t.Fatalf("an untouched entry fails: %v", err)
	}

	tree = f.copyTree(t)
	flipByte(t, filepath.Join(tree, "tile/0/000"), 12*hashSize)
	if _, _, err := VerifyEntry(ctx, DirFetcher(tree), f.vkey, 13); !errors.Is(err, ErrVerification) || !strings.HasPrefix(err.Error(), "tiles do not match the checkpoint") {
		t.Fatalf("VerifyEntry over a flipped tile = %v", err)
	}

	older, _ := OpenCheckpoint(f.cp250, f.vkey)
	newer, _ := OpenCheckpoint(f.cp300, f.vkey)
	forked := *older
	forked.Hash[0] ^= 1
	if err := CheckConsistency(ctx, DirFetcher(f.tree), &forked, newer); !errors.Is(err, ErrVerification) {
		t.Fatalf("CheckConsistency with a forked checkpoint = %v", err)
	}
	if err := CheckConsistency(ctx, DirFetcher(f.tree), newer, older); err == nil || err.Error() != "checkpoint size 250 smaller than saved size 300" {
		t.Fatalf("CheckConsistency backwards = %v", err)
	}
}

func TestVerifyOverHTTP(t *testing.T) {
	f := getFixture(t)
	root, err := os.OpenRoot(f.tree)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	mux := http.NewServeMux()
	mux.Handle("/log/", http.StripPrefix("/log/", treeHandler{root}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	hf, err := NewHTTPFetcher(srv.URL+"/log", nil)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := Verify(context.Background(), hf, f.vkey, VerifyOptions{Previous: f.cp250})
	if err != nil || cp.Size != 300 {
		t.Fatalf("Verify over HTTP = %v, %v", cp, err)
	}
	if _, e, err := VerifyEntry(context.Background(), hf, f.vkey, 299); err != nil || !bytes.Equal(e, f.entries[299]) {
		t.Fatalf("VerifyEntry over HTTP: %v", err)
	}
	// A server that sends more than a resource can hold is cut off.
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), maxCheckpointBytes+10))
	}))
	defer big.Close()
	hb, _ := NewHTTPFetcher(big.URL, nil)
	if _, err := Verify(context.Background(), hb, f.vkey, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "checkpoint: larger than 65536 bytes") {
		t.Fatalf("oversized checkpoint: %v", err)
	}
	for _, bad := range []string{"ftp://x/", "not a url", "/just/a/path"} {
		if _, err := NewHTTPFetcher(bad, nil); err == nil {
			t.Errorf("NewHTTPFetcher(%q) accepted", bad)
		}
	}
	if _, err := hf.Fetch(context.Background(), "../secrets"); err == nil {
		t.Error("HTTPFetcher fetched a path outside the layout")
	}
	if _, err := DirFetcher(f.tree).Fetch(context.Background(), ".state/treeState"); err == nil {
		t.Error("DirFetcher read a file outside the layout")
	}
}
