package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

const (
	testIssuer   = "https://issuer.test"
	testAudience = "clover"

	kidRSA = "rsa-1"
	kidEC  = "ec-1"
	kidEd  = "ed-1"
)

var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// testKeyMaterial holds keys generated once per test binary (RSA key
// generation is slow, especially under -race).
type testKeyMaterial struct {
	rsa, rsaOther *rsa.PrivateKey
	ec, ecOther   *ecdsa.PrivateKey
	ed, edOther   ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  *testKeyMaterial
)

func testKeys(tb testing.TB) *testKeyMaterial {
	tb.Helper()
	keysOnce.Do(func() {
		gen := func(bits int) *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, bits)
			if err != nil {
				panic(err)
			}
			return k
		}
		genEC := func() *ecdsa.PrivateKey {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			return k
		}
		genEd := func() ed25519.PrivateKey {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				panic(err)
			}
			return k
		}
		keysVal = &testKeyMaterial{
			rsa: gen(2048), rsaOther: gen(2048),
			ec: genEC(), ecOther: genEC(),
			ed: genEd(), edOther: genEd(),
		}
	})
	return keysVal
}

// jwksJSON builds a public JWKS document from keys.
func jwksJSON(tb testing.TB, keys ...jose.JSONWebKey) []byte {
	tb.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		tb.Fatalf("marshal JWKS: %v", err)
	}
	return b
}

// standardJWKS is the key set used by most tests: one RSA, one EC P-256 and
// one Ed25519 key, with "alg" set.
func standardJWKS(tb testing.TB) []byte {
	m := testKeys(tb)
	return jwksJSON(tb, jwkRSA(m), jwkEC(m), jwkEd(m))
}

func jwkRSA(m *testKeyMaterial) jose.JSONWebKey {
	return jose.JSONWebKey{Key: m.rsa, KeyID: kidRSA, Algorithm: "RS256", Use: "sig"}
}

func jwkEC(m *testKeyMaterial) jose.JSONWebKey {
	return jose.JSONWebKey{Key: m.ec, KeyID: kidEC, Algorithm: "ES256", Use: "sig"}
}

func jwkEd(m *testKeyMaterial) jose.JSONWebKey {
	return jose.JSONWebKey{Key: m.ed, KeyID: kidEd, Algorithm: "EdDSA", Use: "sig"}
}

func standardKeys(tb testing.TB) *StaticKeys {
	tb.Helper()
	ks, err := ParseJWKS(standardJWKS(tb))
	if err != nil {
		tb.Fatalf("ParseJWKS: %v", err)
	}
	return ks
}

// claims is a JWT payload under construction.
type claims map[string]any

func baseClaims() claims {
	return claims{
		"iss":     testIssuer,
		"aud":     testAudience,
		"sub":     "alice",
		"roles":   []string{"analyst", "reader"},
		"country": "DE",
		"team":    "fraud",
		"iat":     testNow.Unix(),
		"nbf":     testNow.Unix(),
		"exp":     testNow.Add(time.Hour).Unix(),
		"jti":     "j1",
	}
}

func (c claims) with(k string, v any) claims {
	out := claims{}
	for kk, vv := range c {
		out[kk] = vv
	}
	out[k] = v
	return out
}

func (c claims) without(k string) claims {
	out := claims{}
	for kk, vv := range c {
		if kk != k {
			out[kk] = vv
		}
	}
	return out
}

// signRaw signs payload bytes with go-jose, setting kid if non-empty.
func signRaw(tb testing.TB, alg jose.SignatureAlgorithm, key any, kid string, payload []byte) string {
	tb.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		tb.Fatalf("NewSigner: %v", err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatalf("CompactSerialize: %v", err)
	}
	return tok
}

func sign(tb testing.TB, alg jose.SignatureAlgorithm, key any, kid string, c claims) string {
	tb.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		tb.Fatalf("marshal claims: %v", err)
	}
	return signRaw(tb, alg, key, kid, b)
}

func signEd(tb testing.TB, c claims) string {
	return sign(tb, jose.EdDSA, testKeys(tb).ed, kidEd, c)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return b64(b)
}

// clock is a settable, concurrency-safe clock.
type clock struct{ t atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) now() time.Time      { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) set(t time.Time)     { c.t.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.t.Add(int64(d)) }

// countingKeys counts signature verifications and lets tests swap the
// underlying key set.
type countingKeys struct {
	calls atomic.Int64
	inner atomic.Pointer[oidc.KeySet]
}

func newCountingKeys(ks oidc.KeySet) *countingKeys {
	c := &countingKeys{}
	c.swap(ks)
	return c
}

func (c *countingKeys) swap(ks oidc.KeySet) { c.inner.Store(&ks) }

func (c *countingKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	c.calls.Add(1)
	return (*c.inner.Load()).VerifySignature(ctx, jwt)
}

func mustVerifier(tb testing.TB, cfg Config, keys oidc.KeySet, now func() time.Time) *Verifier {
	tb.Helper()
	v, err := NewVerifier(cfg, keys, now)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func testConfig() Config { return Config{Issuer: testIssuer, Audience: testAudience} }

// wantAuthErr checks err is an authentication error with the given reason.
func wantAuthErr(tb testing.TB, err error, wantReason string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got nil error, want %q", wantReason)
	}
	if !errors.Is(err, ErrUnauthenticated) {
		tb.Errorf("errors.Is(%v, ErrUnauthenticated) = false", err)
	}
	if got := Reason(err); got != wantReason {
		tb.Errorf("reason = %q, want %q (err: %v)", got, wantReason, err)
	}
	if got, want := err.Error(), "authn: "+wantReason; got != want {
		tb.Errorf("Error() = %q, want %q", got, want)
	}
}
