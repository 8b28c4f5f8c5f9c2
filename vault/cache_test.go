package vault

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/synth"
)

// memSites returns the default enclave and schema, and its sites over
// in-memory stores, each with a KEK of its own.
func memSites() (*enclave.Enclave, *schema.Schema, []Site) {
	enc, _ := enclave.New(enclave.Default())
	sch, _ := schema.New(schema.Default())
	var sites []Site
	for i, s := range enc.Sites() {
		kek, _ := keys.NewFileKEK(bytes.Repeat([]byte{byte(i + 1)}, 32), crand.Reader)
		sites = append(sites, Site{Name: s.Name, Store: newMem(), KEK: kek})
	}
	return enc, sch, sites
}

// twinVaults returns two vaults over the same stores and keys, the first
// with a cache of cacheBytes, the second without.
func twinVaults(t testing.TB, cacheBytes int64) (cached, plain *Vault) {
	t.Helper()
	enc, sch, sites := memSites()
	cached, err := New(enc, sch, sites, WithCache(cacheBytes))
	if err != nil {
		t.Fatal(err)
	}
	plain, err = New(enc, sch, sites)
	if err != nil {
		t.Fatal(err)
	}
	return cached, plain
}

// putSubjects writes synthetic subjects 1 to n of seed through Put and
// returns the ids the enclave accepted (it refuses the ~1% outside its
// jurisdictions).
func putSubjects(v *Vault, seed uint64, n int) ([]string, error) {
	gen := synth.New(seed)
	var ids []string
	for i := 1; i <= n; i++ {
		s := gen.Subject(i)
		body, _ := s.PutBody()
		var put struct {
			Country string                     `json:"country"`
			Fields  map[string]json.RawMessage `json:"fields"`
		}
		if err := json.Unmarshal(body, &put); err != nil {
			return nil, err
		}
		if _, err := v.Put(context.Background(), s.ID, put.Country, put.Fields); err == nil {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

// putSynthetic is putSubjects of seed 7 in a test.
func putSynthetic(t testing.TB, v *Vault, n int) []string {
	t.Helper()
	ids, err := putSubjects(v, 7, n)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestCachedGetEqualsUncachedGet(t *testing.T) {
	cached, plain := twinVaults(t, 64<<20)
	ids := putSynthetic(t, cached, 300)
	ctx := context.Background()
	for round, what := range []string{"miss", "hit"} {
		for _, id := range ids {
			want, err := plain.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cached.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			// DeepEqual, not cmp: it also compares time.Time's location and
			// the nil-ness of maps and slices.
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d (%s), %s: cached Get = %+v, uncached %+v", round, what, id, got, want)
			}
		}
	}
	if n := cachedEntries(cached.cache); n != len(ids) {
		t.Fatalf("cache holds %d entries after reading %d subjects twice", n, len(ids))
	}
}

func TestCachedRecordsAreTheCallersOwn(t *testing.T) {
	cached, _ := twinVaults(t, 1<<20)
	ctx := context.Background()
	cached.Put(ctx, "ines", "PT", fields("email", `"ines@example.pt"`, "bio", `"x"`))
	cached.Get(ctx, "ines") // fills the cache
	a, _ := cached.Get(ctx, "ines")
	a.Fields["email"][1] = 'X'
	a.Fields["bio"] = json.RawMessage(`"changed"`)
	a.Handle[0] ^= 0xff
	b, _ := cached.Get(ctx, "ines")
	h, _ := cached.Handle(ctx, "ines")
	if string(b.Fields["email"]) != `"ines@example.pt"` || string(b.Fields["bio"]) != `"x"` || !bytes.Equal(b.Handle, h) {
		t.Fatalf("a reader's changes reached the cache: %s %s %x", b.Fields["email"], b.Fields["bio"], b.Handle)
	}
	// Appending to a value or the handle must not write over what follows
	// it in the record's memory.
	c, _ := cached.Get(ctx, "ines")
	d, _ := cached.Get(ctx, "ines")
	_ = append(c.Handle, "garbage"...)
	for _, v := range c.Fields {
		_ = append(v, "garbage"...)
	}
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("an append spilled into the next value: %+v, want %+v", c, d)
	}
}

func TestEntryRoundTripsEdgeCases(t *testing.T) {
	c := newRecordCache(1 << 20)
	var gen atomic.Uint64
	when := time.Date(2026, 11, 23, 16, 0, 0, 123456000, time.UTC)
	for i, rec := range []Record{
		{ID: "a", Site: "ie-dublin", Country: "IE", Fields: map[string]json.RawMessage{"email": json.RawMessage(`"a@b.c"`)}, Updated: when, Handle: []byte{1, 2}},
		{ID: "b", Site: "ie-dublin", Country: "IE", Fields: nil, Updated: when, Handle: nil},
		{ID: "c", Site: "x", Country: "", Fields: map[string]json.RawMessage{}, Updated: time.Unix(0, 0).UTC(), Handle: []byte{}},
		{ID: "d", Site: "x", Country: "FR", Fields: map[string]json.RawMessage{"": json.RawMessage(`null`)}, Updated: time.Unix(-62135596800, 0).UTC()},
	} {
		c.put(uint64(i), rec.ID, rec, &gen, 0)
		got, ok := c.get(uint64(i), rec.ID)
		if !ok || !reflect.DeepEqual(got, rec) {
			t.Errorf("entry %d: get = %+v, %v; want %+v", i, got, ok, rec)
		}
	}
	// A time that would not decode to the same time.Time is not cached.
	local := Record{ID: "e", Updated: when.In(time.FixedZone("X", 3600))}
	c.put(99, "e", local, &gen, 0)
	if _, ok := c.get(99, "e"); ok {
		t.Error("a record with a non-UTC time was cached")
	}
	// Another id with the same hash is a miss, not a wrong record.
	if got, ok := c.get(0, "z"); ok {
		t.Errorf("get of another id under the same hash = %+v", got)
	}
	// A write in progress (odd generation) or since the read (moved) keeps
	// the record out.
	c.put(100, "f", Record{ID: "f"}, &gen, 1)
	gen.Store(2)
	c.put(101, "g", Record{ID: "g"}, &gen, 0)
	for h, id := range map[uint64]string{100: "f", 101: "g"} {
		if _, ok := c.get(h, id); ok {
			t.Errorf("%s was cached despite a concurrent write", id)
		}
	}
}

// checkShards fails t unless every shard is within its bound and its index
// and arena agree.
func checkShards(t *testing.T, c *recordCache) {
	t.Helper()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		live := 0
		for h, off := range s.index {
			if got := binary.LittleEndian.Uint64(s.arena[off+offHash:]); got != h {
				t.Errorf("shard %d: index says %x at %d, the arena holds %x", i, h, off, got)
			}
			live += s.entryLen(off)
		}
		if live != s.live || s.used() > c.maxBytes || cap(s.arena) > c.maxBytes {
			t.Errorf("shard %d: live %d (counted %d), used %d, arena cap %d, bound %d", i, s.live, live, s.used(), cap(s.arena), c.maxBytes)
		}
		s.mu.RUnlock()
	}
}

func cachedEntries(c *recordCache) int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].index)
		c.shards[i].mu.RUnlock()
	}
	return n
}

func TestCacheBoundHoldsUnderChurn(t *testing.T) {
	const bound = 64 * 8192
	c := newRecordCache(bound)
	var gen atomic.Uint64
	record := func(id string, size int) Record {
		return Record{ID: id, Site: "s", Country: "IE", Updated: time.Unix(int64(size), 0).UTC(), Handle: []byte(id),
			Fields: map[string]json.RawMessage{"v": bytes.Repeat([]byte{'7'}, size)}}
	}
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 20000 {
				k := r.IntN(4000)
				id := fmt.Sprintf("s-%d", k)
				size := 1 + k%1500 // a subject's size is a function of its id
				switch r.IntN(10) {
				case 0:
					c.drop(uint64(k))
				case 1, 2, 3:
					c.put(uint64(k), id, record(id, size), &gen, 0)
				default:
					if got, ok := c.get(uint64(k), id); ok && !reflect.DeepEqual(got, record(id, size)) {
						wrong.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Errorf("%d reads returned a record that was not the one put", n)
	}
	checkShards(t, c)
	if n := cachedEntries(c); n == 0 || n >= 4000 {
		t.Errorf("cache holds %d of 4000 subjects: want some, evicted to fit %d bytes", n, bound)
	}
}

func TestCacheEvictsToFitAndKeepsTheNewest(t *testing.T) {
	const bound = 64 * 4096
	c := newRecordCache(bound)
	var gen atomic.Uint64
	for i := range 10000 {
		id := fmt.Sprintf("s-%d", i)
		c.put(uint64(i), id, Record{ID: id, Updated: time.Unix(0, 0).UTC(), Fields: map[string]json.RawMessage{"a": json.RawMessage(`"` + id + `"`)}}, &gen, 0)
		// The entry just put is always there.
		if got, ok := c.get(uint64(i), id); !ok || string(got.Fields["a"]) != `"`+id+`"` {
			t.Fatalf("%s missing or wrong right after its put: %+v, %v", id, got, ok)
		}
	}
	checkShards(t, c)
	n, hits := cachedEntries(c), 0
	for i := range 10000 {
		id := fmt.Sprintf("s-%d", i)
		if got, ok := c.get(uint64(i), id); ok {
			hits++
			if string(got.Fields["a"]) != `"`+id+`"` {
				t.Fatalf("%s: got %s", id, got.Fields["a"])
			}
		}
	}
	if hits != n || n == 0 || n == 10000 {
		t.Fatalf("cache holds %d entries, %d of them readable, of 10000 put into %d bytes", n, hits, bound)
	}
	// An entry larger than a shard's share is not cached, and evicts nothing.
	big := Record{ID: "big", Fields: map[string]json.RawMessage{"a": bytes.Repeat([]byte{'1'}, 4096)}}
	c.put(1<<20, "big", big, &gen, 0)
	if _, ok := c.get(1<<20, "big"); ok || cachedEntries(c) != n {
		t.Fatal("an entry larger than its shard was cached")
	}
}

func TestEraseIsNeverUndoneByAConcurrentRead(t *testing.T) {
	cached, _ := twinVaults(t, 1<<20)
	ctx := context.Background()
	for round := range 100 {
		id := fmt.Sprintf("jon-%d", round%3)
		if _, err := cached.Put(ctx, id, "DE", fields("email", `"j@example.de"`)); err != nil {
			t.Fatal(err)
		}
		stop := readConcurrently(3, func() { cached.Get(ctx, id) })
		if _, err := cached.Erase(ctx, id); err != nil {
			stop()
			t.Fatal(err)
		}
		// Readers are still running: none may bring the record back.
		for range 20 {
			if rec, err := cached.Get(ctx, id); !errors.Is(err, ErrNotFound) {
				stop()
				t.Fatalf("round %d: read after erasure = %+v, %v; want ErrNotFound", round, rec, err)
			}
		}
		stop()
	}
}

// readConcurrently runs read over and over in n goroutines until the
// returned stop is called; stop returns once they have all ended.
func readConcurrently(n int, read func()) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
					read()
				}
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

func FuzzCacheEntryRoundTrip(f *testing.F) {
	f.Add("a", "site", "IE", int64(0), uint32(0), []byte{1}, "email", []byte(`"x"`), "bio", []byte(`1`))
	f.Add("", "", "", int64(-1), uint32(999999999), []byte(nil), "", []byte(nil), "", []byte{})
	f.Fuzz(func(t *testing.T, id, site, country string, sec int64, nsec uint32, handle []byte, n1 string, v1 []byte, n2 string, v2 []byte) {
		c := newRecordCache(64 << 20)
		var gen atomic.Uint64
		rec := Record{ID: id, Site: site, Country: country, Updated: time.Unix(sec, int64(nsec%1e9)).UTC(), Handle: handle,
			Fields: map[string]json.RawMessage{n1: v1, n2: v2}}
		c.put(5, id, rec, &gen, 0)
		got, ok := c.get(5, id)
		if !ok {
			if len(id) <= 255 && len(handle) <= 255 && v1 != nil && v2 != nil {
				t.Fatalf("record not cached: %+v", rec)
			}
			return
		}
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("round trip: got %+v, want %+v", got, rec)
		}
	})
}
