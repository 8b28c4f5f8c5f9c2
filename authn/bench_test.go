package authn

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func BenchmarkVerifyCached(b *testing.B) {
	v := mustVerifier(b, testConfig(), standardKeys(b), func() time.Time { return testNow })
	tok := signEd(b, baseClaims())
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	v := mustVerifier(b, testConfig(), standardKeys(b), func() time.Time { return testNow })
	var toks []string
	for i := range 64 {
		toks = append(toks, signEd(b, baseClaims().with("sub", fmt.Sprintf("u%d", i))))
	}
	ctx := context.Background()
	for _, tok := range toks {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Verify(ctx, toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkVerifyUncached measures full verification (EdDSA signature,
// go-oidc checks, claim validation) with the cache disabled.
func BenchmarkVerifyUncached(b *testing.B) {
	v, err := newVerifier(testConfig(), standardKeys(b), func() time.Time { return testNow }, 0)
	if err != nil {
		b.Fatal(err)
	}
	tok := signEd(b, baseClaims())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
