package policy

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
)

// memoEntries bounds the number of decisions a Set remembers.
const memoEntries = 1 << 16

const memoShards = 32

// memo remembers single Cedar decisions, keyed by everything the policies
// can read (see keyPrefix and keyDecision). It is split into shards, each
// with its own lock; a shard that fills up is cleared, so that the memory a
// Set uses stays bounded whatever callers send.
type memo struct {
	seed     maphash.Seed
	perShard int
	shards   [memoShards]memoShard
}

type memoShard struct {
	mu sync.RWMutex
	m  map[string]result
}

// result is one Cedar decision: allowed or not, and the ids of the policies
// that determined it (permits when allowed; forbids, or none for the default
// deny, when not). reasons is shared: never modify it.
type result struct {
	allowed bool
	reasons []string
}

func newMemo(entries int) *memo {
	m := &memo{seed: maphash.MakeSeed(), perShard: max(1, entries/memoShards)}
	for i := range m.shards {
		m.shards[i].m = map[string]result{}
	}
	return m
}

func (m *memo) shard(key []byte) *memoShard {
	return &m.shards[maphash.Bytes(m.seed, key)%memoShards]
}

func (m *memo) get(key []byte) (result, bool) {
	sh := m.shard(key)
	sh.mu.RLock()
	r, ok := sh.m[string(key)] // no allocation: the compiler recognises the lookup
	sh.mu.RUnlock()
	return r, ok
}

func (m *memo) put(key []byte, r result) {
	sh := m.shard(key)
	sh.mu.Lock()
	if len(sh.m) >= m.perShard {
		clear(sh.m)
	}
	sh.m[string(key)] = r
	sh.mu.Unlock()
}

// appendStr appends a length-prefixed string, so that no two different
// sequences of strings give the same key.
func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}
