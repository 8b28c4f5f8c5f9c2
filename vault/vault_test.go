package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/store"
	"github.com/google/go-cmp/cmp"
)

// memStore is a hand-written in-memory store.Store for these tests.
type memStore struct {
	mu      sync.Mutex
	records map[string]store.Sealed
	keys    map[string]store.Key
	failPut error
}

func newMem() *memStore {
	return &memStore{records: map[string]store.Sealed{}, keys: map[string]store.Key{}}
}

var _ store.Store = (*memStore)(nil)

func (m *memStore) PutKey(_ context.Context, k store.Key) (store.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.keys[k.Subject]; ok {
		return old, nil
	}
	m.keys[k.Subject] = k
	return k, nil
}

func (m *memStore) GetKey(_ context.Context, s string) (store.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[s]
	if !ok {
		return store.Key{}, store.ErrNotFound
	}
	return k, nil
}

func (m *memStore) DeleteKey(_ context.Context, s string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[s]; !ok {
		return store.ErrNotFound
	}
	delete(m.keys, s)
	return nil
}

func (m *memStore) PutRecord(_ context.Context, r store.Sealed) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failPut != nil {
		return m.failPut
	}
	m.records[r.Subject] = r
	return nil
}

func (m *memStore) GetRecord(_ context.Context, s string) (store.Sealed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[s]
	if !ok {
		return store.Sealed{}, store.ErrNotFound
	}
	return r, nil
}

func (m *memStore) DeleteRecord(_ context.Context, s string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[s]; !ok {
		return store.ErrNotFound
	}
	delete(m.records, s)
	return nil
}

func (m *memStore) ScanRecords(_ context.Context, after string, limit int) ([]store.Sealed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Sealed
	for _, id := range slices.Sorted(maps.Keys(m.records)) {
		if id > after && len(out) < limit {
			out = append(out, m.records[id])
		}
	}
	return out, nil
}

func (m *memStore) ScanKeys(_ context.Context, after string, limit int) ([]store.Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Key
	for _, id := range slices.Sorted(maps.Keys(m.keys)) {
		if id > after && len(out) < limit {
			out = append(out, m.keys[id])
		}
	}
	return out, nil
}

func (m *memStore) Close() error { return nil }

type fixture struct {
	v      *Vault
	stores map[string]*memStore
	keks   map[string]keys.KEK
}

func newFixture(t *testing.T, cfg enclave.Config) *fixture {
	t.Helper()
	enc, err := enclave.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sch, err := schema.New(schema.Default())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{stores: map[string]*memStore{}, keks: map[string]keys.KEK{}}
	var sites []Site
	for _, s := range enc.Sites() {
		kb := make([]byte, 32)
		rand.Read(kb)
		kek, _ := keys.NewFileKEK(kb, rand.Reader)
		f.stores[s.Name], f.keks[s.Name] = newMem(), kek
		sites = append(sites, Site{Name: s.Name, Store: f.stores[s.Name], KEK: kek})
	}
	f.v, err = New(enc, sch, sites)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func fields(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

func TestPutGetErase(t *testing.T) {
	f := newFixture(t, enclave.Default())
	ctx := context.Background()
	in := fields("email", `"ola@example.no"`, "full_name", `"Ola Nordmann"`)
	res, err := f.v.Put(ctx, "u-1", "NO", in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Placement.Home != "no-hamar" || !res.Created {
		t.Fatalf("Put = %+v, want created at no-hamar", res)
	}
	rec, err := f.v.Get(ctx, "u-1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Site != "no-hamar" || rec.Country != "NO" {
		t.Errorf("Get site/country = %s/%s", rec.Site, rec.Country)
	}
	if diff := cmp.Diff(in, rec.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if len(f.stores["ie-dublin"].records)+len(f.stores["ie-dublin"].keys) != 0 {
		t.Error("a Norwegian subject left data at ie-dublin")
	}
	sites, err := f.v.Erase(ctx, "u-1")
	if err != nil || !cmp.Equal(sites, []string{"no-hamar"}) {
		t.Fatalf("Erase = %v, %v", sites, err)
	}
	if _, err := f.v.Get(ctx, "u-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after erase: %v, want ErrNotFound", err)
	}
	if _, err := f.v.Erase(ctx, "u-1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Erase: %v, want ErrNotFound", err)
	}
}

func TestRefusalsStoreNothing(t *testing.T) {
	f := newFixture(t, enclave.Default())
	ctx := context.Background()
	var ve *schema.ValueError
	cases := map[string]struct {
		id, country string
		fields      map[string]json.RawMessage
		check       func(error) bool
	}{
		"outside":   {"u-2", "US", fields("email", `"a@example.com"`), func(err error) bool { return errors.Is(err, enclave.ErrOutsideJurisdiction) }},
		"bad field": {"u-3", "IE", fields("email", `"nope"`), func(err error) bool { return errors.As(err, &ve) }},
		"unknown":   {"u-4", "IE", fields("ssn", `"1"`), func(err error) bool { return errors.As(err, &ve) }},
		"bad id":    {"a/b", "IE", fields(), func(err error) bool { return errors.Is(err, ErrBadID) }},
		"long id":   {string(bytes.Repeat([]byte("a"), 129)), "IE", fields(), func(err error) bool { return errors.Is(err, ErrBadID) }},
	}
	for name, c := range cases {
		_, err := f.v.Put(ctx, c.id, c.country, c.fields)
		if !c.check(err) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	for name, s := range f.stores {
		if len(s.records)+len(s.keys) != 0 {
			t.Errorf("site %s holds data after refused writes", name)
		}
	}
}

func TestRehomingMovesTheRecord(t *testing.T) {
	f := newFixture(t, enclave.Default())
	ctx := context.Background()
	if _, err := f.v.Put(ctx, "u-5", "IE", fields("email", `"a@example.ie"`)); err != nil {
		t.Fatal(err)
	}
	handle := f.stores["ie-dublin"].keys["u-5"].Handle
	res, err := f.v.Put(ctx, "u-5", "NO", fields("email", `"a@example.no"`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.Placement.Home != "no-hamar" || !cmp.Equal(res.MovedFrom, []string{"ie-dublin"}) {
		t.Fatalf("Put = %+v", res)
	}
	if len(f.stores["ie-dublin"].records)+len(f.stores["ie-dublin"].keys) != 0 {
		t.Error("the old home still holds the subject")
	}
	if got := f.stores["no-hamar"].keys["u-5"].Handle; !bytes.Equal(got, handle) {
		t.Error("re-homing changed the subject's log handle")
	}
	rec, err := f.v.Get(ctx, "u-5")
	if err != nil || rec.Site != "no-hamar" || string(rec.Fields["email"]) != `"a@example.no"` {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
}

func TestReplicaHoldsACopyAndErasureReachesIt(t *testing.T) {
	cfg := enclave.Default()
	cfg.Sites = append(cfg.Sites, enclave.Site{Name: "ie-cork", Country: "IE"})
	cfg.Sites[0].Replica = "ie-cork"
	f := newFixture(t, cfg)
	ctx := context.Background()
	if _, err := f.v.Put(ctx, "u-6", "FR", fields("email", `"a@example.fr"`)); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.stores["ie-cork"].records["u-6"]; !ok {
		t.Fatal("the replica holds no copy")
	}
	if len(f.stores["no-hamar"].records) != 0 {
		t.Fatal("a site that is neither home nor replica holds the subject")
	}
	// The home's copy is lost: the replica still serves it, as the home site.
	delete(f.stores["ie-dublin"].records, "u-6")
	rec, err := f.v.Get(ctx, "u-6")
	if err != nil || rec.Site != "ie-dublin" {
		t.Fatalf("Get from replica = %+v, %v", rec, err)
	}
	sites, err := f.v.Erase(ctx, "u-6")
	if err != nil || !cmp.Equal(sites, []string{"ie-dublin", "ie-cork"}) {
		t.Fatalf("Erase = %v, %v", sites, err)
	}
}

func TestCopiedCiphertextDoesNotOpenForAnotherSubject(t *testing.T) {
	f := newFixture(t, enclave.Default())
	ctx := context.Background()
	f.v.Put(ctx, "alice", "IE", fields("email", `"alice@example.ie"`))
	f.v.Put(ctx, "bob", "IE", fields("email", `"bob@example.ie"`))
	s := f.stores["ie-dublin"]
	r := s.records["alice"]
	r.Subject = "bob"
	s.records["bob"] = r
	if _, err := f.v.Get(ctx, "bob"); !errors.Is(err, keys.ErrDecrypt) {
		t.Fatalf("Get of a row copied onto bob: %v, want ErrDecrypt", err)
	}
	k := s.keys["alice"]
	k.Subject = "bob"
	s.keys["bob"] = k
	if _, err := f.v.Get(ctx, "bob"); !errors.Is(err, keys.ErrDecrypt) {
		t.Fatalf("Get with alice's key copied onto bob: %v, want ErrDecrypt", err)
	}
}

func TestBackupUnreadableAfterErasure(t *testing.T) {
	f := newFixture(t, enclave.Default())
	ctx := context.Background()
	f.v.Put(ctx, "carol", "DE", fields("email", `"carol@example.de"`))
	backup := maps.Clone(f.stores["ie-dublin"].records)
	if _, err := f.v.Erase(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	f.stores["ie-dublin"].records = backup // restore the records from the backup
	if _, err := f.v.Get(ctx, "carol"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get from restored backup: %v, want ErrNotFound (the key is shredded)", err)
	}
}

func TestWriteFailureIsReported(t *testing.T) {
	f := newFixture(t, enclave.Default())
	f.stores["ie-dublin"].failPut = errors.New("disk full")
	_, err := f.v.Put(context.Background(), "dave", "IE", fields("email", `"d@example.ie"`))
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk full")) {
		t.Fatalf("Put err = %v, want the store's error", err)
	}
}

func TestConcurrentPutsOfOneSubject(t *testing.T) {
	f := newFixture(t, enclave.Default())
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			country := "IE"
			if i%2 == 1 {
				country = "NO"
			}
			if _, err := f.v.Put(ctx, "eve", country, fields("email", `"e@example.eu"`)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	n := 0
	for _, s := range f.stores {
		if _, ok := s.records["eve"]; ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("after concurrent re-homing writes the subject is at %d sites, want 1", n)
	}
	if _, err := f.v.Get(ctx, "eve"); err != nil {
		t.Fatal(err)
	}
}

// countingStore counts record reads.
type countingStore struct {
	*memStore
	reads atomic.Int64
}

func (c *countingStore) GetRecord(ctx context.Context, s string) (store.Sealed, error) {
	c.reads.Add(1)
	return c.memStore.GetRecord(ctx, s)
}

func newCachedFixture(t *testing.T) (*Vault, map[string]*countingStore) {
	t.Helper()
	enc, _ := enclave.New(enclave.Default())
	sch, _ := schema.New(schema.Default())
	stores := map[string]*countingStore{}
	var sites []Site
	for _, s := range enc.Sites() {
		kek, _ := keys.NewFileKEK(bytes.Repeat([]byte{7}, 32), rand.Reader)
		stores[s.Name] = &countingStore{memStore: newMem()}
		sites = append(sites, Site{Name: s.Name, Store: stores[s.Name], KEK: kek})
	}
	v, err := New(enc, sch, sites, WithCache(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return v, stores
}

func TestCacheServesRepeatReadsAndForgetsOnWriteAndErase(t *testing.T) {
	v, stores := newCachedFixture(t)
	ctx := context.Background()
	v.Put(ctx, "frida", "NO", fields("email", `"frida@example.no"`))
	for range 5 {
		if _, err := v.Get(ctx, "frida"); err != nil {
			t.Fatal(err)
		}
	}
	if n := stores["no-hamar"].reads.Load(); n != 1 {
		t.Errorf("5 reads hit the store %d times, want 1", n)
	}
	v.Put(ctx, "frida", "NO", fields("email", `"frida@example.com"`))
	rec, _ := v.Get(ctx, "frida")
	if got := string(rec.Fields["email"]); got != `"frida@example.com"` {
		t.Fatalf("read after write = %s: the cache served a stale record", got)
	}
	if _, err := v.Erase(ctx, "frida"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Get(ctx, "frida"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after erasure: %v, want ErrNotFound (the cache kept an erased subject)", err)
	}
}

func TestCacheNeverServesStaleUnderConcurrentWrites(t *testing.T) {
	v, _ := newCachedFixture(t)
	ctx := context.Background()
	v.Put(ctx, "gus", "IE", fields("interests", `"0"`))
	stop := readConcurrently(4, func() { v.Get(ctx, "gus") })
	defer stop()
	for i := 1; i <= 200; i++ {
		v.Put(ctx, "gus", "IE", fields("interests", fmt.Sprintf(`"%d"`, i)))
		rec, err := v.Get(ctx, "gus")
		if err != nil || string(rec.Fields["interests"]) != fmt.Sprintf(`"%d"`, i) {
			t.Fatalf("after write %d read %s, %v", i, rec.Fields["interests"], err)
		}
	}
}

func TestValidID(t *testing.T) {
	good := []string{"a", "s-00000001", "A.b_c-9", string(bytes.Repeat([]byte("x"), 128)), "..a", "a.."}
	bad := []string{"", ".", "..", "a/b", "a b", "é", "a\x00", string(bytes.Repeat([]byte("x"), 129)), "a%2F"}
	for _, id := range good {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	for _, id := range bad {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}

func TestHandleIsStableAndErased(t *testing.T) {
	f := newFixture(t, enclave.Default())
	ctx := context.Background()
	res, err := f.v.Put(ctx, "hana", "IE", fields("email", `"h@example.ie"`))
	if err != nil || len(res.Handle) != 16 {
		t.Fatalf("Put = %+v, %v; want a 16-byte handle", res, err)
	}
	rec, _ := f.v.Get(ctx, "hana")
	h, err := f.v.Handle(ctx, "hana")
	if err != nil || !bytes.Equal(h, res.Handle) || !bytes.Equal(rec.Handle, res.Handle) {
		t.Fatalf("handles differ: put %x get %x handle %x (%v)", res.Handle, rec.Handle, h, err)
	}
	res2, _ := f.v.Put(ctx, "hana", "IE", fields("email", `"h2@example.ie"`))
	if !bytes.Equal(res2.Handle, res.Handle) {
		t.Fatal("a rewrite changed the handle")
	}
	f.v.Erase(ctx, "hana")
	if _, err := f.v.Handle(ctx, "hana"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Handle after erasure: %v", err)
	}
}
