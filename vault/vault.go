// Package vault keeps subjects' records encrypted at their home site: it
// places each subject by country (package enclave), checks the record
// against the field schema, seals it under a per-subject data key wrapped by
// the site's key-encryption key (package keys) and stores it through the
// site's backend (package store). Erasure destroys the data keys first, so
// every copy of the record becomes unreadable (crypto-shredding).
//
// The vault decides nothing about who may read what; that is the gateway's
// and the policy engine's job.
package vault

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/store"
)

// Errors callers branch on.
var (
	// ErrNotFound: no site holds a record for the subject.
	ErrNotFound = errors.New("subject not found")
	// ErrBadID: the subject id is not 1-128 characters of [A-Za-z0-9._-].
	ErrBadID = errors.New("subject id must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', and not '.' or '..'")
)

// ValidID reports whether id is an acceptable subject id: 1-128 characters
// of [A-Za-z0-9._-]. "." and ".." are refused: they cannot be a segment of a
// URL path.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Site is one site's storage and key-encryption key.
type Site struct {
	Name  string
	Store store.Store
	KEK   keys.KEK
}

// Record is a subject's decrypted record. Records returned by Get may be
// shared with other readers: treat them, and their Fields, as read-only.
type Record struct {
	ID      string
	Site    string // the home site
	Country string
	Fields  map[string]json.RawMessage
	Updated time.Time
	// Handle is the subject's random log handle, kept beside its data key:
	// the audit log names the subject only by a keyed hash of it.
	Handle []byte
}

// PutResult says where a record was written.
type PutResult struct {
	Placement enclave.Placement
	Created   bool
	// MovedFrom lists sites that held the subject before and no longer do
	// (re-homing after a change of country).
	MovedFrom []string
	// Handle is the subject's log handle (see Record.Handle).
	Handle []byte
}

// Vault is safe for concurrent use. Writes and erasures of one subject are
// serialised within the process.
type Vault struct {
	enc    *enclave.Enclave
	schema *schema.Schema
	sites  map[string]Site
	order  []string
	rand   io.Reader
	now    func() time.Time
	seed   maphash.Seed
	locks  [256]sync.Mutex
	cache  *recordCache
	gens   generations
}

// Option adjusts a Vault.
type Option func(*Vault)

// WithClock sets the clock used for record timestamps.
func WithClock(now func() time.Time) Option { return func(v *Vault) { v.now = now } }

// WithRand sets the source of randomness for keys, nonces and handles.
func WithRand(r io.Reader) Option { return func(v *Vault) { v.rand = r } }

// WithCache keeps up to maxBytes of recently read records in memory, so
// that repeated reads skip storage, decryption and decoding. 0 disables it.
func WithCache(maxBytes int64) Option { return func(v *Vault) { v.cache = newRecordCache(maxBytes) } }

// New builds a vault over the enclave's sites; every site of the enclave
// must be given, and no other.
func New(enc *enclave.Enclave, sch *schema.Schema, sites []Site, opts ...Option) (*Vault, error) {
	v := &Vault{enc: enc, schema: sch, sites: map[string]Site{}, rand: rand.Reader, now: time.Now, seed: maphash.MakeSeed()}
	for _, s := range sites {
		if _, ok := enc.Site(s.Name); !ok {
			return nil, fmt.Errorf("vault: site %q is not in the enclave", s.Name)
		}
		if s.Store == nil || s.KEK == nil {
			return nil, fmt.Errorf("vault: site %q needs a store and a key-encryption key", s.Name)
		}
		v.sites[s.Name] = s
	}
	for _, s := range enc.Sites() {
		if _, ok := v.sites[s.Name]; !ok {
			return nil, fmt.Errorf("vault: no storage for site %q", s.Name)
		}
		v.order = append(v.order, s.Name)
	}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// lock serialises writes and erasures of one subject and keeps the read
// cache honest: the subject leaves the cache, and its stripe's generation
// is odd, for as long as the lock is held.
func (v *Vault) lock(id string) func() {
	h := maphash.String(v.seed, id)
	m := &v.locks[h%uint64(len(v.locks))]
	m.Lock()
	gen := v.gens.of(h)
	gen.Add(1)
	v.cache.drop(h)
	return func() {
		v.cache.drop(h)
		gen.Add(1)
		m.Unlock()
	}
}

type plaintext struct {
	V       int                        `json:"v"`
	Country string                     `json:"country"`
	Fields  map[string]json.RawMessage `json:"fields"`
}

// Put stores a subject's record at its home site (and replica), replacing
// any previous record. A subject whose country the enclave does not accept
// is refused with an error wrapping enclave.ErrOutsideJurisdiction; fields
// that do not fit the schema with a *schema.ValueError. Nothing is stored
// in either case.
func (v *Vault) Put(ctx context.Context, id, country string, fields map[string]json.RawMessage) (PutResult, error) {
	return v.PutWithHandle(ctx, id, country, fields, nil)
}

// PutWithHandle is Put that gives a new subject the log handle newHandle
// (16 bytes) instead of a random one, so that the caller can record the
// write in the audit log before it happens. A subject that exists keeps its
// handle.
func (v *Vault) PutWithHandle(ctx context.Context, id, country string, fields map[string]json.RawMessage, newHandle []byte) (PutResult, error) {
	if !ValidID(id) {
		return PutResult{}, ErrBadID
	}
	pl, err := v.enc.Place(country)
	if err != nil {
		return PutResult{}, err
	}
	clean, err := v.schema.Check(fields)
	if err != nil {
		return PutResult{}, err
	}
	pt, err := json.Marshal(plaintext{V: 1, Country: country, Fields: clean})
	if err != nil {
		return PutResult{}, fmt.Errorf("vault: encode record: %w", err)
	}
	defer v.lock(id)()

	held, err := v.keysOf(ctx, id)
	if err != nil {
		return PutResult{}, err
	}
	handle := newHandle
	for _, k := range held {
		handle = k.Handle
		break
	}
	if handle == nil {
		handle = make([]byte, 16)
		if _, err := io.ReadFull(v.rand, handle); err != nil {
			return PutResult{}, fmt.Errorf("vault: handle: %w", err)
		}
	}
	res := PutResult{Placement: pl, Created: len(held) == 0, Handle: handle}
	now := v.now().UTC().Truncate(time.Microsecond)
	for _, name := range pl.Sites() {
		site := v.sites[name]
		k, ok := held[name]
		var have *store.Key
		if ok {
			have = &k
		}
		dk, err := v.dataKey(ctx, site, id, handle, have)
		if err != nil {
			return PutResult{}, err
		}
		ct, err := keys.Seal(dk, pt, keys.RecordAAD(name, id), v.rand)
		if err != nil {
			return PutResult{}, fmt.Errorf("vault: seal at %s: %w", name, err)
		}
		if err := site.Store.PutRecord(ctx, store.Sealed{Subject: id, Ciphertext: ct, Updated: now}); err != nil {
			return PutResult{}, fmt.Errorf("vault: write at %s: %w", name, err)
		}
	}
	for _, name := range v.order {
		if _, had := held[name]; had && !slices.Contains(pl.Sites(), name) {
			if err := v.eraseAt(ctx, v.sites[name], id); err != nil {
				return PutResult{}, fmt.Errorf("vault: re-homing, removing the copy at %s: %w", name, err)
			}
			res.MovedFrom = append(res.MovedFrom, name)
		}
	}
	return res, nil
}

// keysOf returns the subject's keys at every site that holds one.
func (v *Vault) keysOf(ctx context.Context, id string) (map[string]store.Key, error) {
	out := map[string]store.Key{}
	for _, name := range v.order {
		k, err := v.sites[name].Store.GetKey(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("vault: read key at %s: %w", name, err)
		default:
			out[name] = k
		}
	}
	return out, nil
}

// dataKey returns the subject's data key at a site, creating it if needed.
// have is the key already read from the site (under the subject's lock),
// nil if it had none.
func (v *Vault) dataKey(ctx context.Context, site Site, id string, handle []byte, have *store.Key) ([]byte, error) {
	aad := keys.KeyAAD(site.Name, id)
	if have == nil {
		dk, err := keys.NewDataKey(v.rand)
		if err != nil {
			return nil, err
		}
		wrapped, err := site.KEK.Wrap(dk, aad)
		if err != nil {
			return nil, fmt.Errorf("vault: wrap data key at %s: %w", site.Name, err)
		}
		// PutKey keeps a key stored first, and returns it.
		k, err := site.Store.PutKey(ctx, store.Key{Subject: id, Wrapped: wrapped, KEKID: site.KEK.ID(), Handle: handle})
		if err != nil {
			return nil, fmt.Errorf("vault: store data key at %s: %w", site.Name, err)
		}
		have = &k
	}
	dk, err := site.KEK.Unwrap(have.Wrapped, aad)
	if err != nil {
		return nil, fmt.Errorf("vault: unwrap data key at %s: %w", site.Name, err)
	}
	return dk, nil
}

// Get returns a subject's record, or ErrNotFound.
func (v *Vault) Get(ctx context.Context, id string) (Record, error) {
	if !ValidID(id) {
		return Record{}, ErrBadID
	}
	h := maphash.String(v.seed, id)
	if rec, ok := v.cache.get(h, id); ok {
		return rec, nil
	}
	gen := v.gens.of(h)
	before := gen.Load()
	for _, name := range v.order {
		site := v.sites[name]
		sealed, err := site.Store.GetRecord(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return Record{}, fmt.Errorf("vault: read record at %s: %w", name, err)
		}
		k, err := site.Store.GetKey(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			// The key was shredded: the record is erased, whatever remains.
			continue
		}
		if err != nil {
			return Record{}, fmt.Errorf("vault: read key at %s: %w", name, err)
		}
		dk, err := site.KEK.Unwrap(k.Wrapped, keys.KeyAAD(name, id))
		if err != nil {
			return Record{}, fmt.Errorf("vault: unwrap data key at %s: %w", name, err)
		}
		rec, err := v.open(id, name, dk, sealed)
		rec.Handle = k.Handle
		if err == nil {
			v.cache.put(h, id, rec, gen, before)
		}
		return rec, err
	}
	return Record{}, ErrNotFound
}

// open decrypts and decodes a sealed record read from a site.
func (v *Vault) open(id, site string, dk []byte, sealed store.Sealed) (Record, error) {
	raw, err := keys.Open(dk, sealed.Ciphertext, keys.RecordAAD(site, id))
	if err != nil {
		return Record{}, fmt.Errorf("vault: open record at %s: %w", site, err)
	}
	var pt plaintext
	if err := json.Unmarshal(raw, &pt); err != nil || pt.V != 1 {
		return Record{}, fmt.Errorf("vault: record at %s has an unknown encoding", site)
	}
	home := site
	if pl, err := v.enc.Place(pt.Country); err == nil {
		home = pl.Home
	}
	return Record{ID: id, Site: home, Country: pt.Country, Fields: pt.Fields, Updated: sealed.Updated}, nil
}

// Erase destroys the subject's data keys at every site, then its records,
// and returns the sites that held it. ErrNotFound if none did.
func (v *Vault) Erase(ctx context.Context, id string) ([]string, error) {
	if !ValidID(id) {
		return nil, ErrBadID
	}
	defer v.lock(id)()
	var erased []string
	// Keys first, everywhere: once they are gone no copy can be read, even
	// if deleting a record below fails.
	for _, name := range v.order {
		err := v.sites[name].Store.DeleteKey(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return erased, fmt.Errorf("vault: destroy key at %s: %w", name, err)
		default:
			erased = append(erased, name)
		}
	}
	for _, name := range v.order {
		err := v.sites[name].Store.DeleteRecord(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return erased, fmt.Errorf("vault: delete record at %s: %w", name, err)
		default:
			if !slices.Contains(erased, name) {
				erased = append(erased, name)
			}
		}
	}
	if len(erased) == 0 {
		return nil, ErrNotFound
	}
	return erased, nil
}

func (v *Vault) eraseAt(ctx context.Context, site Site, id string) error {
	if err := site.Store.DeleteKey(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := site.Store.DeleteRecord(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// Handle returns the subject's log handle, or ErrNotFound. Erasure destroys
// it with the data key.
func (v *Vault) Handle(ctx context.Context, id string) ([]byte, error) {
	if !ValidID(id) {
		return nil, ErrBadID
	}
	held, err := v.keysOf(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, name := range v.order {
		if k, ok := held[name]; ok {
			return k.Handle, nil
		}
	}
	return nil, ErrNotFound
}

// Schema returns the field schema records are checked against.
func (v *Vault) Schema() *schema.Schema { return v.schema }

// Enclave returns the enclave the vault places subjects in.
func (v *Vault) Enclave() *enclave.Enclave { return v.enc }
