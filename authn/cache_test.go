package authn

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestCacheHitReturnsSamePrincipal(t *testing.T) {
	ck := newCountingKeys(standardKeys(t))
	clk := newClock(testNow)
	v := mustVerifier(t, testConfig(), ck, clk.now)
	tok := signEd(t, baseClaims())

	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	clk.add(time.Minute)
	second, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify (cached): %v", err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("cached principal differs (-first +second):\n%s", diff)
	}
	if got := ck.calls.Load(); got != 1 {
		t.Errorf("signature verifications = %d, want 1 (second call should hit the cache)", got)
	}

	// Callers cannot corrupt the cache through the returned slice.
	second.Roles[0] = "admin"
	third, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify (cached): %v", err)
	}
	if diff := cmp.Diff(first, third); diff != "" {
		t.Errorf("cache was mutated through returned Roles (-want +got):\n%s", diff)
	}
}

func TestCacheExpiry(t *testing.T) {
	exp := testNow.Add(time.Minute)
	tok := signEd(t, baseClaims().with("exp", exp.Unix()))

	tests := []struct {
		name      string
		at        time.Time
		wantErr   string // reason; "" means accepted
		wantCalls int64  // signature verifications including the priming call
	}{
		{name: "before exp: cached", at: exp.Add(-time.Second), wantCalls: 1},
		{name: "at exp: re-verified, within skew", at: exp, wantCalls: 2},
		{name: "after exp within skew: re-verified", at: exp.Add(29 * time.Second), wantCalls: 2},
		{name: "after exp beyond skew: rejected", at: exp.Add(31 * time.Second), wantErr: "token expired", wantCalls: 2},
		{name: "far after exp: rejected", at: exp.Add(24 * time.Hour), wantErr: "token expired", wantCalls: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ck := newCountingKeys(standardKeys(t))
			clk := newClock(testNow)
			v := mustVerifier(t, testConfig(), ck, clk.now)
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("priming Verify: %v", err)
			}
			clk.set(tc.at)
			_, err := v.Verify(context.Background(), tok)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
			} else {
				wantAuthErr(t, err, tc.wantErr)
			}
			if got := ck.calls.Load(); got != tc.wantCalls {
				t.Errorf("signature verifications = %d, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestCacheWithinSkewNotCached(t *testing.T) {
	ck := newCountingKeys(standardKeys(t))
	clk := newClock(testNow)
	v := mustVerifier(t, testConfig(), ck, clk.now)
	tok := signEd(t, baseClaims().with("exp", testNow.Add(-10*time.Second).Unix()))
	for range 3 {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if got := ck.calls.Load(); got != 3 {
		t.Errorf("signature verifications = %d, want 3 (token past exp must not be cached)", got)
	}
}

func TestCacheMaxAgeAndKeyRemoval(t *testing.T) {
	keys := standardKeys(t)
	ck := newCountingKeys(keys)
	clk := newClock(testNow)
	v := mustVerifier(t, testConfig(), ck, clk.now)
	tok := signEd(t, baseClaims().with("exp", testNow.Add(2*time.Hour).Unix()))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// Remove the Ed25519 key from the key set.
	m := testKeys(t)
	noEd, err := ParseJWKS(jwksJSON(t, jwkRSA(m), jwkEC(m)))
	if err != nil {
		t.Fatal(err)
	}
	ck.swap(noEd)

	clk.add(cacheMaxAge - time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify within cache max age: %v", err)
	}
	if got := ck.calls.Load(); got != 1 {
		t.Errorf("signature verifications = %d, want 1", got)
	}

	clk.add(time.Second)
	_, err = v.Verify(context.Background(), tok)
	wantAuthErr(t, err, "unknown key id")
	if got := ck.calls.Load(); got != 2 {
		t.Errorf("signature verifications = %d, want 2", got)
	}
}

func TestCacheFailuresNotCached(t *testing.T) {
	ck := newCountingKeys(standardKeys(t))
	v := mustVerifier(t, testConfig(), ck, func() time.Time { return testNow })
	for _, tok := range []string{
		signEd(t, baseClaims().without("roles")),                   // fails claim checks after signature
		sign(t, "EdDSA", testKeys(t).edOther, kidEd, baseClaims()), // fails signature
	} {
		before := ck.calls.Load()
		for range 3 {
			if _, err := v.Verify(context.Background(), tok); err == nil {
				t.Fatal("Verify succeeded, want error")
			}
		}
		if got := ck.calls.Load() - before; got != 3 {
			t.Errorf("signature verifications = %d, want 3 (failures must not be cached)", got)
		}
	}
	if n := v.cache.len(); n != 0 {
		t.Errorf("cache holds %d entries after failures, want 0", n)
	}
}

func TestCacheBounded(t *testing.T) {
	const max = 8
	clk := newClock(testNow)
	v, err := newVerifier(testConfig(), standardKeys(t), clk.now, max)
	if err != nil {
		t.Fatal(err)
	}
	var toks []string
	for i := range 3 * max {
		toks = append(toks, signEd(t, baseClaims().with("sub", fmt.Sprintf("user-%d", i))))
	}
	for i, tok := range toks {
		p, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("Verify %d: %v", i, err)
		}
		if want := fmt.Sprintf("user-%d", i); p.Subject != want {
			t.Errorf("Subject = %q, want %q", p.Subject, want)
		}
		if n := v.cache.len(); n > max {
			t.Fatalf("cache size %d exceeds bound %d", n, max)
		}
	}
	// Every token still verifies (from cache or afresh) after eviction.
	for i, tok := range toks {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("re-Verify %d: %v", i, err)
		}
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	const max = 4
	clk := newClock(testNow)
	v, err := newVerifier(testConfig(), standardKeys(t), clk.now, max)
	if err != nil {
		t.Fatal(err)
	}
	// Three short-lived tokens and one long-lived one fill the cache.
	for i := range 3 {
		tok := signEd(t, baseClaims().with("sub", fmt.Sprintf("short-%d", i)).with("exp", testNow.Add(time.Minute).Unix()))
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	long := signEd(t, baseClaims().with("sub", "long"))
	if _, err := v.Verify(context.Background(), long); err != nil {
		t.Fatal(err)
	}
	if n := v.cache.len(); n != max {
		t.Fatalf("cache size = %d, want %d", n, max)
	}
	clk.add(2 * time.Minute)
	if _, err := v.Verify(context.Background(), signEd(t, baseClaims().with("sub", "new"))); err != nil {
		t.Fatal(err)
	}
	v.cache.mu.RLock()
	var got []string
	for _, e := range v.cache.entries {
		got = append(got, e.p.Subject)
	}
	v.cache.mu.RUnlock()
	if diff := cmp.Diff([]string{"long", "new"}, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("cached subjects after eviction (-want +got):\n%s", diff)
	}
}

func TestCacheClockBackwardsBeforeNbf(t *testing.T) {
	ck := newCountingKeys(standardKeys(t))
	clk := newClock(testNow)
	v := mustVerifier(t, testConfig(), ck, clk.now)
	tok := signEd(t, baseClaims()) // nbf = testNow
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	clk.set(testNow.Add(-time.Hour))
	_, err := v.Verify(context.Background(), tok)
	wantAuthErr(t, err, "token not yet valid")
}

// TestVerifyConcurrent hammers one Verifier (with a tiny cache, to exercise
// eviction) from many goroutines; run with -race.
func TestVerifyConcurrent(t *testing.T) {
	m := testKeys(t)
	clk := newClock(testNow)
	v, err := newVerifier(testConfig(), standardKeys(t), clk.now, 4)
	if err != nil {
		t.Fatal(err)
	}
	type tc struct {
		tok     string
		subject string // "" means the token must be rejected
	}
	var cases []tc
	for i := range 6 {
		sub := fmt.Sprintf("user-%d", i)
		cases = append(cases,
			tc{signEd(t, baseClaims().with("sub", sub)), sub},
			tc{sign(t, "ES256", m.ec, kidEC, baseClaims().with("sub", sub)), sub},
		)
	}
	cases = append(cases,
		tc{sign(t, "RS256", m.rsa, kidRSA, baseClaims().with("sub", "rsa")), "rsa"},
		tc{signEd(t, baseClaims().without("country")), ""},
		tc{sign(t, "EdDSA", m.edOther, kidEd, baseClaims()), ""},
		tc{"garbage", ""},
	)

	const workers, iters = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iters {
				c := cases[(w*7+i)%len(cases)]
				if i%50 == 0 {
					clk.add(time.Millisecond) // a moving clock, read concurrently
				}
				p, err := v.Verify(context.Background(), c.tok)
				switch {
				case c.subject == "" && err == nil:
					errs <- fmt.Errorf("invalid token accepted")
					return
				case c.subject != "" && err != nil:
					errs <- fmt.Errorf("valid token rejected: %v", err)
					return
				case c.subject != "" && p.Subject != c.subject:
					errs <- fmt.Errorf("subject = %q, want %q", p.Subject, c.subject)
					return
				}
				if err == nil {
					p.Roles[0] = "mutated" // must not race with, or affect, the cache
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
