package authn

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// tokenCache remembers successful verifications, keyed by the raw token.
// Only successes are stored. An entry is served while
// notBefore <= now < until, where until = min(exp, insertion+maxAge); after
// that the token goes through full verification again (which applies the
// clock skew and re-checks the signature against the current key set).
type tokenCache struct {
	max    int // 0 disables caching
	maxAge time.Duration
	skew   time.Duration // the verifier's clock skew, applied to nbf

	mu      sync.RWMutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	p         Principal
	notBefore time.Time // nbf - skew; zero when the token has no nbf
	until     time.Time
}

func newTokenCache(max int, maxAge, skew time.Duration) *tokenCache {
	return &tokenCache{max: max, maxAge: maxAge, skew: skew, entries: make(map[string]cacheEntry)}
}

func (c *tokenCache) get(raw string, now time.Time) (Principal, bool) {
	if c.max <= 0 {
		return Principal{}, false
	}
	c.mu.RLock()
	e, ok := c.entries[raw]
	c.mu.RUnlock()
	if !ok {
		return Principal{}, false
	}
	if !now.Before(e.until) {
		c.mu.Lock()
		if cur, ok := c.entries[raw]; ok && cur.until.Equal(e.until) {
			delete(c.entries, raw)
		}
		c.mu.Unlock()
		return Principal{}, false
	}
	if !e.notBefore.IsZero() && now.Before(e.notBefore) {
		// Clock went backwards past nbf; let full verification decide.
		return Principal{}, false
	}
	p := e.p
	p.Roles = slices.Clone(p.Roles) // callers must not be able to mutate the cache
	return p, true
}

// put stores a verified result. now is the time the token was verified at.
func (c *tokenCache) put(raw string, vc verifiedClaims, now time.Time) {
	if c.max <= 0 {
		return
	}
	until := vc.principal.Expiry
	if limit := now.Add(c.maxAge); limit.Before(until) {
		until = limit
	}
	if !now.Before(until) {
		return // only valid thanks to clock skew; do not cache
	}
	e := cacheEntry{p: vc.principal, until: until}
	e.p.Roles = slices.Clone(e.p.Roles)
	if !vc.notBefore.IsZero() {
		e.notBefore = vc.notBefore.Add(-c.skew)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[raw]; !exists && len(c.entries) >= c.max {
		c.evictLocked(now)
	}
	// Clone so the cache does not pin a larger buffer the token was sliced from.
	c.entries[strings.Clone(raw)] = e
}

// evictLocked makes room: first drop expired entries, then, if the cache is
// still full, drop arbitrary entries (map order) until it is half full.
func (c *tokenCache) evictLocked(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.until) {
			delete(c.entries, k)
		}
	}
	if len(c.entries) < c.max {
		return
	}
	target := c.max / 2
	for k := range c.entries {
		if len(c.entries) <= target {
			break
		}
		delete(c.entries, k)
	}
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
