package vault

import (
	"sync"
	"sync/atomic"
)

// recordCache keeps recently read subjects' decoded records in memory, so
// that a read costs no storage round trip, decryption or decoding. It holds
// nothing a read would not have in memory anyway (the data key and the
// record), never outlives the process, and is emptied for a subject before
// any write or erasure of it (see Vault.lock), so that erasure takes effect
// at once.
//
// It is bounded by bytes (an estimate of the decoded record's memory); a
// full shard evicts entries at random, which keeps a hit to one map lookup.
type recordCache struct {
	shards   [64]cacheShard
	maxBytes int64 // per shard
}

type cacheShard struct {
	mu    sync.RWMutex
	m     map[string]cachedRecord
	bytes int64
}

// cachedRecord is a decoded record; it is shared by every reader and must
// not be modified.
type cachedRecord struct {
	rec   Record
	bytes int64 // the size of the plaintext it was decoded from
}

func (c cachedRecord) size(id string) int64 {
	return int64(len(id)) + c.bytes + 64*int64(len(c.rec.Fields)) + 128
}

func newRecordCache(maxBytes int64) *recordCache {
	if maxBytes <= 0 {
		return nil
	}
	c := &recordCache{maxBytes: maxBytes / 64}
	for i := range c.shards {
		c.shards[i].m = map[string]cachedRecord{}
	}
	return c
}

func (c *recordCache) shard(h uint64) *cacheShard { return &c.shards[h%uint64(len(c.shards))] }

func (c *recordCache) get(h uint64, id string) (cachedRecord, bool) {
	if c == nil {
		return cachedRecord{}, false
	}
	s := c.shard(h)
	s.mu.RLock()
	r, ok := s.m[id]
	s.mu.RUnlock()
	return r, ok
}

// put caches r unless the subject's generation moved from before: checked
// under the shard lock, so a writer's drop (which follows its increment)
// either removes r or makes the check fail.
func (c *recordCache) put(h uint64, id string, r cachedRecord, gen *atomic.Uint64, before uint64) {
	if c == nil || before%2 == 1 {
		return
	}
	n := r.size(id)
	if n > c.maxBytes {
		return
	}
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen.Load() != before {
		return
	}
	if old, ok := s.m[id]; ok {
		s.bytes -= old.size(id)
	}
	// Evict entries at random (Go starts each map iteration at a random
	// place) until the new one fits.
	for s.bytes+n > c.maxBytes && len(s.m) > 0 {
		for k, v := range s.m {
			s.bytes -= v.size(k)
			delete(s.m, k)
			break
		}
	}
	s.m[id] = r
	s.bytes += n
}

func (c *recordCache) drop(h uint64, id string) {
	if c == nil {
		return
	}
	s := c.shard(h)
	s.mu.Lock()
	if old, ok := s.m[id]; ok {
		s.bytes -= old.size(id)
		delete(s.m, id)
	}
	s.mu.Unlock()
}

// generations lets a reader detect that a write or erasure of a subject
// happened while it was reading from storage, so that it does not put a
// stale record into the cache. A stripe's counter is odd while a write is
// in progress.
type generations [256]atomic.Uint64

func (g *generations) of(h uint64) *atomic.Uint64 { return &g[h%uint64(len(g))] }
