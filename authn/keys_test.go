package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

var (
	weakKeysOnce sync.Once
	rsa1024      *rsa.PrivateKey
	p384         *ecdsa.PrivateKey
)

func weakKeys(t *testing.T) (*rsa.PrivateKey, *ecdsa.PrivateKey) {
	t.Helper()
	weakKeysOnce.Do(func() {
		var err error
		if rsa1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
		if p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
	})
	return rsa1024, p384
}

// rawJWK marshals a single JWK including private parts (if any).
func rawJWK(t *testing.T, k jose.JSONWebKey) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatalf("marshal JWK: %v", err)
	}
	return b
}

func jwksOf(t *testing.T, keys ...json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseJWKS(t *testing.T) {
	m := testKeys(t)
	weakRSA, ecP384 := weakKeys(t)
	pub := func(k jose.JSONWebKey) json.RawMessage { p := k.Public(); return rawJWK(t, p) }

	tests := []struct {
		name     string
		data     []byte
		wantKIDs []string
		wantErr  string // substring; "" means success
	}{
		{name: "standard", data: standardJWKS(t), wantKIDs: []string{kidEC, kidEd, kidRSA}},
		{name: "no alg or use", data: jwksOf(t, pub(jose.JSONWebKey{Key: m.ed, KeyID: "k"})), wantKIDs: []string{"k"}},
		{
			name:     "private keys accepted, public part kept",
			data:     jwksOf(t, rawJWK(t, jose.JSONWebKey{Key: m.rsa, KeyID: "r"}), rawJWK(t, jose.JSONWebKey{Key: m.ec, KeyID: "e"}), rawJWK(t, jose.JSONWebKey{Key: m.ed, KeyID: "d"})),
			wantKIDs: []string{"d", "e", "r"},
		},
		{name: "not JSON", data: []byte("{"), wantErr: "parse JWKS"},
		{name: "no keys member", data: []byte(`{}`), wantErr: "no keys"},
		{name: "empty keys", data: []byte(`{"keys":[]}`), wantErr: "no keys"},
		{name: "keys not array", data: []byte(`{"keys":{}}`), wantErr: "parse JWKS"},
		{name: "too large", data: append([]byte(`{"keys":[`), make([]byte, MaxJWKSSize)...), wantErr: "larger than"},
		{name: "symmetric key", data: jwksOf(t, rawJWK(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "s", Algorithm: "HS256"})), wantErr: "symmetric keys are not allowed"},
		{name: "missing kid", data: jwksOf(t, pub(jose.JSONWebKey{Key: m.ed})), wantErr: "missing kid"},
		{name: "duplicate kid", data: jwksOf(t, pub(jose.JSONWebKey{Key: m.ed, KeyID: "k"}), pub(jose.JSONWebKey{Key: m.ec, KeyID: "k"})), wantErr: `duplicate kid "k"`},
		{name: "RSA 1024", data: jwksOf(t, pub(jose.JSONWebKey{Key: weakRSA, KeyID: "w"})), wantErr: "too small"},
		{name: "P-384", data: jwksOf(t, pub(jose.JSONWebKey{Key: ecP384, KeyID: "p"})), wantErr: "not supported"},
		{name: "use enc", data: jwksOf(t, pub(jose.JSONWebKey{Key: m.rsa, KeyID: "r", Use: "enc"})), wantErr: `use "enc"`},
		{name: "alg HS256 on RSA key", data: jwksOf(t, pub(jose.JSONWebKey{Key: m.rsa, KeyID: "r", Algorithm: "HS256"})), wantErr: "not usable"},
		{name: "alg ES256 on RSA key", data: jwksOf(t, pub(jose.JSONWebKey{Key: m.rsa, KeyID: "r", Algorithm: "ES256"})), wantErr: "not usable"},
		{name: "alg RS256 on Ed25519 key", data: jwksOf(t, pub(jose.JSONWebKey{Key: m.ed, KeyID: "d", Algorithm: "RS256"})), wantErr: "not usable"},
		{name: "unknown kty", data: []byte(`{"keys":[{"kty":"XYZ","kid":"x"}]}`), wantErr: "invalid JWK"},
		{name: "X25519", data: []byte(`{"keys":[{"kty":"OKP","crv":"X25519","kid":"x","x":"AAAA"}]}`), wantErr: "invalid JWK"},
		{name: "EC point not on curve", data: []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"x","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`), wantErr: "invalid JWK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := ParseJWKS(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseJWKS error = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJWKS: %v", err)
			}
			if diff := cmp.Diff(tc.wantKIDs, ks.KeyIDs()); diff != "" {
				t.Errorf("KeyIDs (-want +got):\n%s", diff)
			}
			// The re-encoded set is public-only and parses to the same kids.
			out, err := json.Marshal(ks)
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			if strings.Contains(string(out), `"d":`) {
				t.Errorf("re-encoded JWKS contains private key material: %s", out)
			}
			again, err := ParseJWKS(out)
			if err != nil {
				t.Fatalf("ParseJWKS(re-encoded): %v", err)
			}
			if diff := cmp.Diff(ks.KeyIDs(), again.KeyIDs()); diff != "" {
				t.Errorf("round trip KeyIDs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrivateJWKSVerifies(t *testing.T) {
	m := testKeys(t)
	ks, err := ParseJWKS(jwksOf(t, rawJWK(t, jose.JSONWebKey{Key: m.ed, KeyID: kidEd})))
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, testConfig(), ks, func() time.Time { return testNow })
	if _, err := v.Verify(context.Background(), signEd(t, baseClaims())); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// TestStaticKeysDirect exercises the key set on its own, without the
// Verifier's algorithm pre-check, as defence in depth.
func TestStaticKeysDirect(t *testing.T) {
	m := testKeys(t)
	ks := standardKeys(t)
	hs := func(secret []byte) string {
		h := b64JSON(t, map[string]string{"alg": "HS256", "kid": kidRSA})
		p := b64JSON(t, baseClaims())
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(h + "." + p))
		return h + "." + p + "." + b64(mac.Sum(nil))
	}
	rsaJWKS := jwksJSON(t, jose.JSONWebKey{Key: m.rsa, KeyID: kidRSA})
	tests := []struct {
		name  string
		token string
		want  string // reason; "" means success
	}{
		{name: "RS256", token: sign(t, jose.RS256, m.rsa, kidRSA, baseClaims())},
		{name: "ES256", token: sign(t, jose.ES256, m.ec, kidEC, baseClaims())},
		{name: "EdDSA", token: signEd(t, baseClaims())},
		{name: "HS256 with JWKS as secret", token: hs(rsaJWKS), want: "algorithm not allowed"},
		{name: "alg none", token: b64JSON(t, map[string]string{"alg": "none", "kid": kidEd}) + "." + b64JSON(t, baseClaims()) + ".", want: "algorithm not allowed"},
		{name: "unknown kid", token: sign(t, jose.EdDSA, m.ed, "x", baseClaims()), want: "unknown key id"},
		{name: "no kid", token: sign(t, jose.EdDSA, m.ed, "", baseClaims()), want: "unknown key id"},
		{name: "RS384 on RS256 key", token: sign(t, jose.RS384, m.rsa, kidRSA, baseClaims()), want: "key algorithm mismatch"},
		{name: "EdDSA on EC key", token: sign(t, jose.EdDSA, m.ed, kidEC, baseClaims()), want: "key algorithm mismatch"},
		{name: "bad signature", token: sign(t, jose.EdDSA, m.edOther, kidEd, baseClaims()), want: "signature invalid"},
		{name: "garbage", token: "x.y.z", want: "malformed token"},
		{name: "JSON serialization", token: `{"payload":"e30","protected":"e30","signature":""}`, want: "malformed token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload, err := ks.VerifySignature(context.Background(), tc.token)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("VerifySignature: %v", err)
				}
				var c map[string]any
				if err := json.Unmarshal(payload, &c); err != nil || c["sub"] != "alice" {
					t.Errorf("payload = %s (%v), want the signed claims", payload, err)
				}
				return
			}
			wantAuthErr(t, err, tc.want)
		})
	}
}

func TestLoadJWKSFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(good, standardJWKS(t), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.json")

	ks, err := LoadJWKSFile(good)
	if err != nil {
		t.Fatalf("LoadJWKSFile: %v", err)
	}
	if diff := cmp.Diff([]string{kidEC, kidEd, kidRSA}, ks.KeyIDs()); diff != "" {
		t.Errorf("KeyIDs (-want +got):\n%s", diff)
	}
	for _, p := range []string{bad, missing} {
		_, err := LoadJWKSFile(p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("LoadJWKSFile(%s) error = %v, want error naming the file", p, err)
		}
	}
}

func TestRemoteKeys(t *testing.T) {
	m := testKeys(t)
	var fetches int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		fetches++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(standardJWKS(t))
	}))
	defer srv.Close()

	v := mustVerifier(t, testConfig(), RemoteKeys(context.Background(), srv.URL), func() time.Time { return testNow })
	for _, tok := range []string{
		sign(t, jose.RS256, m.rsa, kidRSA, baseClaims()),
		sign(t, jose.ES256, m.ec, kidEC, baseClaims()),
		signEd(t, baseClaims()),
	} {
		p, err := v.Verify(context.Background(), tok)
		if err != nil {
			t.Fatalf("Verify via RemoteKeys: %v", err)
		}
		if p.Subject != "alice" {
			t.Errorf("Subject = %q, want alice", p.Subject)
		}
	}
	// go-oidc cannot tell an unknown kid from a bad signature.
	_, err := v.Verify(context.Background(), sign(t, jose.EdDSA, m.ed, "unknown", baseClaims()))
	wantAuthErr(t, err, "signature invalid")
	_, err = v.Verify(context.Background(), sign(t, jose.EdDSA, m.edOther, kidEd, baseClaims()))
	wantAuthErr(t, err, "signature invalid")
	mu.Lock()
	defer mu.Unlock()
	if fetches == 0 {
		t.Error("JWKS was never fetched")
	}
}

func TestNilStaticKeys(t *testing.T) {
	var ks *StaticKeys
	if got := ks.KeyIDs(); got != nil {
		t.Errorf("KeyIDs() = %v, want nil", got)
	}
	_, err := ks.VerifySignature(context.Background(), signEd(t, baseClaims()))
	wantAuthErr(t, err, "unknown key id")
	v := mustVerifier(t, testConfig(), ks, func() time.Time { return testNow })
	//lint:ignore SA1012 deliberately exercising a nil context
	_, err = v.Verify(nil, signEd(t, baseClaims()))
	wantAuthErr(t, err, "unknown key id")
}
