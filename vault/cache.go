package vault

import (
	"encoding/binary"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
)

// recordCache keeps recently read subjects' decoded records in memory, so
// that a read costs no storage round trip, decryption or JSON decoding. It
// holds nothing a read would not have in memory anyway (the record and its
// log handle), never outlives the process, and is emptied for a subject
// before any write or erasure of it (see Vault.lock), so that erasure takes
// effect at once.
//
// The cache holds no pointers the garbage collector must follow: each
// shard packs its entries one after another into a single []byte (the
// arena) and finds them through a map from the id's hash to the entry's
// offset. Neither holds a pointer, so a collection marks a shard as two
// objects whatever it holds, instead of a map, a dozen strings and a dozen
// slices per record. Field names, sites and countries are stored as small
// numbers into a table of interned strings (symbols). A hit copies the
// entry's bytes out under the shard's read lock and builds the Record from
// the copy: one allocation for the values and the handle, one for the map.
//
// It is bounded by bytes: an entry is charged its encoded size plus
// indexBytes for its place in the index, and a shard's arena never grows
// beyond its share of the bound. Dropped and replaced entries leave dead
// bytes in the arena until the shard is compacted (live entries slid down
// in place); when a shard is full, entries are evicted at random (Go starts
// each map iteration at a random place) down to seven eighths of its share
// before compacting, so that the copying is amortised over the next
// eighth's worth of entries.
type recordCache struct {
	shards   [64]cacheShard
	maxBytes int // per shard
	syms     symbols
}

// indexBytes is what an entry is charged for its index slot: the map's key
// and value, its control byte and slack.
const indexBytes = 32

type cacheShard struct {
	mu    sync.RWMutex
	index map[uint64]int // the id's hash → offset of its entry in arena
	arena []byte
	live  int // bytes of the entries the index points to
}

// An entry is a header, then the id, the handle, and each field as its
// name's symbol (2 bytes), its value's length (4 bytes) and its value.
const (
	offHash     = 0  // uint64, the id's hash
	offLen      = 8  // uint32, the entry's length, header included
	offSec      = 12 // int64, Updated as Unix seconds
	offNsec     = 20 // uint32, and nanoseconds
	offSite     = 24 // uint16, symbol of the home site
	offCountry  = 26 // uint16, symbol of the country
	offIDLen    = 28 // uint8
	offHandle   = 29 // uint8, the handle's length
	offFlags    = 30 // uint8
	offNFields  = 31 // uint16, the number of fields
	headerBytes = 33

	flagNilFields = 1 << 0
	flagNilHandle = 1 << 1
)

func newRecordCache(maxBytes int64) *recordCache {
	if maxBytes <= 0 {
		return nil
	}
	// A shard holds at most 1 GiB (64 GiB in all, the configuration's
	// limit), so that offsets and lengths fit in 32 bits.
	c := &recordCache{maxBytes: int(min(maxBytes/64, 1<<30))}
	for i := range c.shards {
		c.shards[i].index = map[uint64]int{}
	}
	c.syms.ids = map[string]uint16{}
	return c
}

func (c *recordCache) shard(h uint64) *cacheShard { return &c.shards[h%uint64(len(c.shards))] }

// get returns the cached record of the subject id (whose hash is h). The
// record is the caller's own: it shares no memory with the cache or with
// other readers.
func (c *recordCache) get(h uint64, id string) (Record, bool) {
	if c == nil {
		return Record{}, false
	}
	s := c.shard(h)
	s.mu.RLock()
	off, ok := s.index[h]
	if !ok {
		s.mu.RUnlock()
		return Record{}, false
	}
	n := int(binary.LittleEndian.Uint32(s.arena[off+offLen:]))
	e := s.arena[off : off+n : off+n]
	idLen := int(e[offIDLen])
	if string(e[headerBytes:headerBytes+idLen]) != id {
		s.mu.RUnlock()
		return Record{}, false // another id with the same hash
	}
	var hdr [headerBytes]byte
	copy(hdr[:], e)
	body := make([]byte, n-headerBytes-idLen)
	copy(body, e[headerBytes+idLen:])
	s.mu.RUnlock()
	// Every symbol of the entry was interned before the entry was put, which
	// happened before our read lock.
	names := c.syms.list()
	return decodeEntry(hdr[:], body, id, names), true
}

// decodeEntry builds a record from an entry's header and body (the bytes
// after the id), whose memory it takes over.
func decodeEntry(hdr, body []byte, id string, names []string) Record {
	rec := Record{
		ID:      id,
		Site:    names[binary.LittleEndian.Uint16(hdr[offSite:])],
		Country: names[binary.LittleEndian.Uint16(hdr[offCountry:])],
		Updated: time.Unix(int64(binary.LittleEndian.Uint64(hdr[offSec:])), int64(binary.LittleEndian.Uint32(hdr[offNsec:]))).UTC(),
	}
	flags := hdr[offFlags]
	hl := int(hdr[offHandle])
	if flags&flagNilHandle == 0 {
		rec.Handle = body[:hl:hl]
	}
	p := hl
	nf := int(binary.LittleEndian.Uint16(hdr[offNFields:]))
	if flags&flagNilFields != 0 {
		return rec
	}
	rec.Fields = make(map[string]json.RawMessage, nf)
	for range nf {
		name := names[binary.LittleEndian.Uint16(body[p:])]
		vl := int(binary.LittleEndian.Uint32(body[p+2:]))
		p += 6
		rec.Fields[name] = json.RawMessage(body[p : p+vl : p+vl])
		p += vl
	}
	return rec
}

// encodeEntry encodes rec (the record of id, whose hash is h) as an entry,
// or reports false if it cannot be cached: a field, handle or record too
// large, a nil value, too many distinct names, or an Updated that would not
// decode to the same time.Time. (Records decoded from storage have none of
// these.)
func (c *recordCache) encodeEntry(h uint64, id string, rec Record) ([]byte, bool) {
	if len(id) > 255 || len(rec.Handle) > 255 || len(rec.Fields) > 0xffff {
		return nil, false
	}
	if time.Unix(rec.Updated.Unix(), int64(rec.Updated.Nanosecond())).UTC() != rec.Updated {
		return nil, false // not UTC, or carrying a monotonic reading
	}
	n := headerBytes + len(id) + len(rec.Handle)
	for _, v := range rec.Fields {
		if v == nil || len(v) > 1<<30 {
			return nil, false // a nil value would come back empty, not nil
		}
		n += 6 + len(v)
	}
	if n > c.maxBytes-indexBytes {
		return nil, false
	}
	site, ok1 := c.syms.id(rec.Site)
	country, ok2 := c.syms.id(rec.Country)
	if !ok1 || !ok2 {
		return nil, false
	}
	e := make([]byte, headerBytes, n)
	binary.LittleEndian.PutUint64(e[offHash:], h)
	binary.LittleEndian.PutUint32(e[offLen:], uint32(n))
	binary.LittleEndian.PutUint64(e[offSec:], uint64(rec.Updated.Unix()))
	binary.LittleEndian.PutUint32(e[offNsec:], uint32(rec.Updated.Nanosecond()))
	binary.LittleEndian.PutUint16(e[offSite:], site)
	binary.LittleEndian.PutUint16(e[offCountry:], country)
	e[offIDLen] = byte(len(id))
	e[offHandle] = byte(len(rec.Handle))
	if rec.Fields == nil {
		e[offFlags] |= flagNilFields
	}
	if rec.Handle == nil {
		e[offFlags] |= flagNilHandle
	}
	binary.LittleEndian.PutUint16(e[offNFields:], uint16(len(rec.Fields)))
	e = append(e, id...)
	e = append(e, rec.Handle...)
	for name, v := range rec.Fields {
		sym, ok := c.syms.id(name)
		if !ok {
			return nil, false
		}
		e = binary.LittleEndian.AppendUint16(e, sym)
		e = binary.LittleEndian.AppendUint32(e, uint32(len(v)))
		e = append(e, v...)
	}
	return e, true
}

// put caches rec unless the subject's generation moved from before: checked
// under the shard lock, so a writer's drop (which follows its increment)
// either removes rec or makes the check fail.
func (c *recordCache) put(h uint64, id string, rec Record, gen *atomic.Uint64, before uint64) {
	if c == nil || before%2 == 1 {
		return
	}
	e, ok := c.encodeEntry(h, id, rec)
	if !ok {
		return
	}
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen.Load() != before {
		return
	}
	if off, ok := s.index[h]; ok {
		s.remove(h, off)
	}
	s.makeRoom(len(e), c.maxBytes)
	s.index[h] = len(s.arena)
	s.arena = append(s.arena, e...)
	s.live += len(e)
}

func (c *recordCache) drop(h uint64) {
	if c == nil {
		return
	}
	s := c.shard(h)
	s.mu.Lock()
	if off, ok := s.index[h]; ok {
		s.remove(h, off)
	}
	s.mu.Unlock()
}

// used is what the shard is charged against its bound: its arena up to the
// last entry, dead bytes included, and its index.
func (s *cacheShard) used() int { return len(s.arena) + len(s.index)*indexBytes }

func (s *cacheShard) entryLen(off int) int {
	return int(binary.LittleEndian.Uint32(s.arena[off+offLen:]))
}

func (s *cacheShard) remove(h uint64, off int) {
	s.live -= s.entryLen(off)
	delete(s.index, h)
}

// makeRoom makes space for an entry of n bytes (n+indexBytes <= limit) at
// the end of the arena, within the bound limit, evicting and compacting if
// the shard is full and growing the arena if it is too small.
func (s *cacheShard) makeRoom(n, limit int) {
	if s.used()+n+indexBytes > limit {
		low := limit - limit/8
		for s.live+(len(s.index)+1)*indexBytes+n > low && len(s.index) > 0 {
			for h, off := range s.index {
				s.remove(h, off)
				break
			}
		}
		s.compact()
	}
	if len(s.arena)+n > cap(s.arena) {
		c := min(max(2*cap(s.arena), len(s.arena)+n, 64<<10), limit)
		grown := make([]byte, len(s.arena), c)
		copy(grown, s.arena)
		s.arena = grown
	}
}

// compact slides the live entries down over the dead ones, in place.
func (s *cacheShard) compact() {
	w := 0
	for r := 0; r < len(s.arena); {
		h := binary.LittleEndian.Uint64(s.arena[r+offHash:])
		n := s.entryLen(r)
		if off, ok := s.index[h]; ok && off == r {
			if w != r {
				copy(s.arena[w:], s.arena[r:r+n])
				s.index[h] = w
			}
			w += n
		}
		r += n
	}
	s.arena = s.arena[:w]
}

// symbols interns the strings of cached records that repeat from record to
// record (field names, sites, countries), so that an entry stores each as
// two bytes and a hit shares the string instead of allocating it. The
// table only grows, up to maxSymbols; readers load it without a lock.
type symbols struct {
	mu    sync.Mutex
	ids   map[string]uint16
	names atomic.Pointer[[]string]
}

const maxSymbols = 4096

// id returns name's symbol, interning it if needed; false if the table is
// full.
func (t *symbols) id(name string) (uint16, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.ids[name]; ok {
		return n, true
	}
	old := t.list()
	if len(old) >= maxSymbols {
		return 0, false
	}
	// A new slice each time: readers may hold the old one.
	names := append(old[:len(old):len(old)], name)
	t.ids[name] = uint16(len(old))
	t.names.Store(&names)
	return uint16(len(old)), true
}

func (t *symbols) list() []string {
	if p := t.names.Load(); p != nil {
		return *p
	}
	return nil
}

// generations lets a reader detect that a write or erasure of a subject
// happened while it was reading from storage, so that it does not put a
// stale record into the cache. A stripe's counter is odd while a write is
// in progress.
type generations [256]atomic.Uint64

func (g *generations) of(h uint64) *atomic.Uint64 { return &g[h%uint64(len(g))] }
