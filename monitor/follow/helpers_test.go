package follow

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloverenclave/clover/auditlog"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const testOrigin = "clover/test"

// testKey is a checkpoint signing key and its verifier key.
type testKey struct {
	signer   note.Signer
	verifier string
}

func newTestKey(t testing.TB) testKey {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{s, vkey}
}

// testLog writes a tlog-tiles log into a directory the way tessera lays it
// out, so that tests can tamper with any resource.
type testLog struct {
	t         testing.TB
	dir       string
	key       testKey
	entries   [][]byte
	hashes    []tlog.Hash // stored hashes
	published int64
}

func newTestLog(t testing.TB, key testKey) *testLog {
	return &testLog{t: t, dir: t.TempDir(), key: key}
}

func (l *testLog) fetcher() auditlog.Fetcher { return auditlog.DirFetcher(l.dir) }

func (l *testLog) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(l.hashes)) {
				return nil, fmt.Errorf("no stored hash %d", x)
			}
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

// add appends entries without publishing them.
func (l *testLog) add(entries ...[]byte) {
	l.t.Helper()
	for _, e := range entries {
		n := int64(len(l.entries))
		hs, err := tlog.StoredHashes(n, e, l.hashReader())
		if err != nil {
			l.t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.entries = append(l.entries, e)
	}
}

// addN appends n synthetic entries of about 600 bytes.
func (l *testLog) addN(n int) {
	l.t.Helper()
	for range n {
		l.add(syntheticEntry(len(l.entries), l.dir))
	}
}

func syntheticEntry(i int, salt string) []byte {
	e := fmt.Appendf(nil, `{"v":1,"seq":%d,"log":%q,"pad":"`, i, filepath.Base(salt))
	for len(e) < 590 {
		e = append(e, 'a'+byte(len(e)%26))
	}
	return append(e, `"}`...)
}

// publish writes the tiles and bundles of the tree of all entries added and
// a checkpoint signed for it.
func (l *testLog) publish() {
	l.t.Helper()
	n := int64(len(l.entries))
	for _, tile := range tlog.NewTiles(tileHeight, l.published, n) {
		data, err := tlog.ReadTileData(tile, l.hashReader())
		if err != nil {
			l.t.Fatal(err)
		}
		l.write(tilePath(tile.L, uint64(tile.N), tile.W), data)
		if tile.L == 0 {
			first := tile.N * tileWidth
			b, err := auditlog.MarshalEntryBundle(l.entries[first : first+int64(tile.W)])
			if err != nil {
				l.t.Fatal(err)
			}
			l.write(bundlePath(uint64(tile.N), tile.W), b)
		}
	}
	l.published = n
	l.write("checkpoint", l.sign(n, l.root(n)))
}

func (l *testLog) root(n int64) tlog.Hash {
	l.t.Helper()
	if n == 0 {
		return emptyRoot
	}
	h, err := tlog.TreeHash(n, l.hashReader())
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

func (l *testLog) sign(n int64, root tlog.Hash) []byte {
	l.t.Helper()
	text := fmt.Sprintf("%s\n%d\n%s\n", testOrigin, n, base64.StdEncoding.EncodeToString(root[:]))
	signed, err := note.Sign(&note.Note{Text: text}, l.key.signer)
	if err != nil {
		l.t.Fatal(err)
	}
	return signed
}

func (l *testLog) write(path string, data []byte) {
	l.t.Helper()
	full := filepath.Join(l.dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(full, data, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

func (l *testLog) read(path string) []byte {
	l.t.Helper()
	b, err := os.ReadFile(filepath.Join(l.dir, filepath.FromSlash(path)))
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// flip flips one bit of byte i of a resource.
func (l *testLog) flip(path string, i int) {
	l.t.Helper()
	b := l.read(path)
	b[i] ^= 1
	l.write(path, b)
}

// collector gathers what a follower delivers and checks there are no gaps.
type collector struct {
	t       testing.TB
	entries [][]byte
	chunks  []Chunk
	next    uint64
}

func (c *collector) fn(ch Chunk) error {
	if ch.Start != c.next {
		c.t.Errorf("chunk starts at %d, want %d", ch.Start, c.next)
	}
	if ch.State.Size != ch.Start+uint64(len(ch.Entries)) {
		c.t.Errorf("chunk [%d, +%d) has state size %d", ch.Start, len(ch.Entries), ch.State.Size)
	}
	c.next = ch.State.Size
	c.entries = append(c.entries, ch.Entries...)
	c.chunks = append(c.chunks, ch)
	return nil
}

func poll(t testing.TB, f *Follower, fn func(Chunk) error) int {
	t.Helper()
	n, err := f.Poll(context.Background(), fn)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	return n
}
