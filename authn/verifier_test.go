package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

func TestVerifyHappyPath(t *testing.T) {
	m := testKeys(t)
	keys := standardKeys(t)
	wantFull := Principal{
		Subject: "alice",
		Roles:   []string{"analyst", "reader"},
		Country: "DE",
		Team:    "fraud",
		Expiry:  testNow.Add(time.Hour),
	}
	tests := []struct {
		name  string
		alg   jose.SignatureAlgorithm
		key   any
		kid   string
		c     claims
		skew  time.Duration
		clock time.Time
		want  Principal
	}{
		{name: "RS256", alg: jose.RS256, key: m.rsa, kid: kidRSA, c: baseClaims(), want: wantFull},
		{name: "ES256", alg: jose.ES256, key: m.ec, kid: kidEC, c: baseClaims(), want: wantFull},
		{name: "EdDSA", alg: jose.EdDSA, key: m.ed, kid: kidEd, c: baseClaims(), want: wantFull},
		{
			name: "audience array containing ours", alg: jose.EdDSA, key: m.ed, kid: kidEd,
			c: baseClaims().with("aud", []string{"other", testAudience}), want: wantFull,
		},
		{
			name: "no team, no nbf, no iat", alg: jose.EdDSA, key: m.ed, kid: kidEd,
			c:    baseClaims().without("team").without("nbf").without("iat"),
			want: Principal{Subject: "alice", Roles: []string{"analyst", "reader"}, Country: "DE", Expiry: testNow.Add(time.Hour)},
		},
		{
			name: "null team is absent", alg: jose.EdDSA, key: m.ed, kid: kidEd,
			c:    baseClaims().with("team", nil),
			want: Principal{Subject: "alice", Roles: []string{"analyst", "reader"}, Country: "DE", Expiry: testNow.Add(time.Hour)},
		},
		{
			name: "expired but within skew", alg: jose.EdDSA, key: m.ed, kid: kidEd,
			c: baseClaims().with("exp", testNow.Add(-29*time.Second).Unix()),
			want: Principal{Subject: "alice", Roles: []string{"analyst", "reader"}, Country: "DE", Team: "fraud",
				Expiry: testNow.Add(-29 * time.Second)},
		},
		{
			name: "nbf in future within skew", alg: jose.EdDSA, key: m.ed, kid: kidEd,
			c: baseClaims().with("nbf", testNow.Add(29*time.Second).Unix()), want: wantFull,
		},
		{
			name: "custom skew", alg: jose.EdDSA, key: m.ed, kid: kidEd, skew: 2 * time.Minute,
			c: baseClaims().with("nbf", testNow.Add(119*time.Second).Unix()), want: wantFull,
		},
		{
			name: "fractional exp truncated", alg: jose.EdDSA, key: m.ed, kid: kidEd,
			c: baseClaims().with("exp", float64(testNow.Add(time.Hour).Unix())+0.75), want: wantFull,
		},
		{
			name: "max roles of max length", alg: jose.EdDSA, key: m.ed, kid: kidEd,
			c: baseClaims().with("roles", repeatRoles(MaxRoles, strings.Repeat("r", MaxRoleLen))),
			want: Principal{Subject: "alice", Roles: repeatRoles(MaxRoles, strings.Repeat("r", MaxRoleLen)),
				Country: "DE", Team: "fraud", Expiry: testNow.Add(time.Hour)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.ClockSkew = tc.skew
			v := mustVerifier(t, cfg, keys, func() time.Time { return testNow })
			tok := sign(t, tc.alg, tc.key, tc.kid, tc.c)
			got, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("principal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func repeatRoles(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix[:len(prefix)-2] + string(rune('a'+i/26)) + string(rune('a'+i%26))
	}
	return out
}

func TestPrincipalHasRole(t *testing.T) {
	p := Principal{Roles: []string{"analyst", "reader"}}
	tests := []struct {
		role string
		want bool
	}{{"analyst", true}, {"reader", true}, {"admin", false}, {"", false}, {"Analyst", false}}
	for _, tc := range tests {
		if got := p.HasRole(tc.role); got != tc.want {
			t.Errorf("HasRole(%q) = %v, want %v", tc.role, got, tc.want)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	m := testKeys(t)
	keys := standardKeys(t)

	pubDER, err := x509.MarshalPKIXPublicKey(&m.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	// hs256 forges the classic "RS256 -> HS256 with the public key as the
	// HMAC secret" token.
	hs256 := func(secret []byte, kid string) string {
		h := b64JSON(t, map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid})
		p := b64JSON(t, baseClaims())
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(h + "." + p))
		return h + "." + p + "." + b64(mac.Sum(nil))
	}
	unsigned := func(alg string) string {
		return b64JSON(t, map[string]string{"alg": alg, "typ": "JWT", "kid": kidEd}) + "." + b64JSON(t, baseClaims()) + "."
	}
	valid := signEd(t, baseClaims())
	parts := strings.Split(valid, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	// An RSA key whose JWK says RS256, so a PS256 token must be refused.
	psKeys, err := ParseJWKS(jwksJSON(t, jose.JSONWebKey{Key: m.rsa, KeyID: kidRSA, Algorithm: "RS256"}))
	if err != nil {
		t.Fatal(err)
	}
	psCfg := testConfig()
	psCfg.Algorithms = []string{"RS256", "PS256"}
	edOnly := testConfig()
	edOnly.Algorithms = []string{"EdDSA"}

	tests := []struct {
		name     string
		token    func() string
		cfg      *Config
		keys     *StaticKeys
		wantCode string
		want     string
	}{
		// Algorithm attacks.
		{name: "alg none", token: func() string { return unsigned("none") }, wantCode: CodeAlgorithmNotAllowed, want: "algorithm not allowed"},
		{name: "alg None", token: func() string { return unsigned("None") }, wantCode: CodeAlgorithmNotAllowed, want: "algorithm not allowed"},
		{name: "alg none with signature", token: func() string { return unsigned("none") + "c2ln" }, wantCode: CodeAlgorithmNotAllowed, want: "algorithm not allowed"},
		{name: "HS256 with public key PEM", token: func() string { return hs256(pubPEM, kidRSA) }, wantCode: CodeAlgorithmNotAllowed, want: "algorithm not allowed"},
		{name: "HS256 with public key DER", token: func() string { return hs256(pubDER, kidRSA) }, wantCode: CodeAlgorithmNotAllowed, want: "algorithm not allowed"},
		{name: "HS256 with JWKS bytes", token: func() string { return hs256(standardJWKS(t), kidEd) }, wantCode: CodeAlgorithmNotAllowed, want: "algorithm not allowed"},
		{name: "HS512", token: func() string { return sign(t, jose.HS512, make([]byte, 64), kidEd, baseClaims()) }, wantCode: CodeAlgorithmNotAllowed, want: "algorithm not allowed"},
		{name: "alg not in configured list", cfg: &edOnly, token: func() string { return sign(t, jose.RS256, m.rsa, kidRSA, baseClaims()) }, wantCode: CodeAlgorithmNotAllowed, want: "algorithm not allowed"},
		{name: "alg header missing", token: func() string { return b64JSON(t, map[string]string{"kid": kidEd}) + "." + parts[1] + "." + parts[2] }, wantCode: CodeMalformed, want: "malformed token"},

		// Keys and signatures.
		{name: "unknown kid", token: func() string { return sign(t, jose.EdDSA, m.ed, "nope", baseClaims()) }, wantCode: CodeUnknownKeyID, want: "unknown key id"},
		{name: "missing kid", token: func() string { return sign(t, jose.EdDSA, m.ed, "", baseClaims()) }, wantCode: CodeUnknownKeyID, want: "unknown key id"},
		{name: "key type mismatch (ES256 on RSA kid)", token: func() string { return sign(t, jose.ES256, m.ec, kidRSA, baseClaims()) }, wantCode: CodeKeyAlgMismatch, want: "key algorithm mismatch"},
		{name: "JWK alg mismatch (PS256 on RS256 key)", cfg: &psCfg, keys: psKeys, token: func() string { return sign(t, jose.PS256, m.rsa, kidRSA, baseClaims()) }, wantCode: CodeKeyAlgMismatch, want: "key algorithm mismatch"},
		{name: "signed by other Ed25519 key", token: func() string { return sign(t, jose.EdDSA, m.edOther, kidEd, baseClaims()) }, wantCode: CodeSignatureInvalid, want: "signature invalid"},
		{name: "signed by other RSA key", token: func() string { return sign(t, jose.RS256, m.rsaOther, kidRSA, baseClaims()) }, wantCode: CodeSignatureInvalid, want: "signature invalid"},
		{name: "signed by other EC key", token: func() string { return sign(t, jose.ES256, m.ecOther, kidEC, baseClaims()) }, wantCode: CodeSignatureInvalid, want: "signature invalid"},
		{name: "signature byte flipped", token: func() string { return parts[0] + "." + parts[1] + "." + flip(parts[2], 10) }, wantCode: CodeSignatureInvalid, want: "signature invalid"},
		{name: "payload swapped", token: func() string {
			other := strings.Split(signEd(t, baseClaims().with("roles", []string{"admin"})), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}, wantCode: CodeSignatureInvalid, want: "signature invalid"},
		{name: "signature truncated", token: func() string { return parts[0] + "." + parts[1] + "." + parts[2][:20] }, wantCode: CodeSignatureInvalid, want: "signature invalid"},

		// Registered claims.
		{name: "wrong issuer", token: func() string { return signEd(t, baseClaims().with("iss", "https://evil.test")) }, wantCode: CodeIssuerMismatch, want: "issuer mismatch"},
		{name: "issuer differs in case", token: func() string { return signEd(t, baseClaims().with("iss", strings.ToUpper(testIssuer))) }, wantCode: CodeIssuerMismatch, want: "issuer mismatch"},
		{name: "missing issuer", token: func() string { return signEd(t, baseClaims().without("iss")) }, wantCode: CodeMissingClaim, want: "missing claim iss"},
		{name: "issuer under other-case key", token: func() string { return signEd(t, baseClaims().without("iss").with("ISS", testIssuer)) }, wantCode: CodeMissingClaim, want: "missing claim iss"},
		{name: "wrong audience", token: func() string { return signEd(t, baseClaims().with("aud", "other")) }, wantCode: CodeAudienceMismatch, want: "audience mismatch"},
		{name: "audience array without ours", token: func() string { return signEd(t, baseClaims().with("aud", []string{"a", "b"})) }, wantCode: CodeAudienceMismatch, want: "audience mismatch"},
		{name: "missing audience", token: func() string { return signEd(t, baseClaims().without("aud")) }, wantCode: CodeMissingClaim, want: "missing claim aud"},
		{name: "audience wrong type", token: func() string { return signEd(t, baseClaims().with("aud", 7)) }, wantCode: CodeInvalidClaim, want: "invalid claim aud"},
		{name: "expired", token: func() string { return signEd(t, baseClaims().with("exp", testNow.Add(-time.Hour).Unix())) }, wantCode: CodeExpired, want: "token expired"},
		{name: "expired beyond skew", token: func() string { return signEd(t, baseClaims().with("exp", testNow.Add(-31*time.Second).Unix())) }, wantCode: CodeExpired, want: "token expired"},
		{name: "expired exactly at skew", token: func() string { return signEd(t, baseClaims().with("exp", testNow.Add(-30*time.Second).Unix())) }, wantCode: CodeExpired, want: "token expired"},
		{name: "missing exp", token: func() string { return signEd(t, baseClaims().without("exp")) }, wantCode: CodeMissingClaim, want: "missing claim exp"},
		{name: "exp as string", token: func() string { return signEd(t, baseClaims().with("exp", "2000000000")) }, wantCode: CodeInvalidClaim, want: "invalid claim exp"},
		{name: "exp absurdly large", token: func() string { return signEd(t, baseClaims().with("exp", 1e300)) }, wantCode: CodeInvalidClaim, want: "invalid claim exp"},
		{name: "exp negative", token: func() string { return signEd(t, baseClaims().with("exp", -5)) }, wantCode: CodeInvalidClaim, want: "invalid claim exp"},
		{name: "not yet valid", token: func() string { return signEd(t, baseClaims().with("nbf", testNow.Add(time.Hour).Unix())) }, wantCode: CodeNotYetValid, want: "token not yet valid"},
		{name: "not yet valid beyond skew", token: func() string { return signEd(t, baseClaims().with("nbf", testNow.Add(31*time.Second).Unix())) }, wantCode: CodeNotYetValid, want: "token not yet valid"},
		{name: "nbf wrong type", token: func() string { return signEd(t, baseClaims().with("nbf", "soon")) }, wantCode: CodeInvalidClaim, want: "invalid claim nbf"},
		{name: "iat wrong type", token: func() string { return signEd(t, baseClaims().with("iat", true)) }, wantCode: CodeInvalidClaim, want: "invalid claim iat"},

		// Clover claims.
		{name: "missing sub", token: func() string { return signEd(t, baseClaims().without("sub")) }, wantCode: CodeMissingClaim, want: "missing claim sub"},
		{name: "empty sub", token: func() string { return signEd(t, baseClaims().with("sub", "")) }, wantCode: CodeMissingClaim, want: "missing claim sub"},
		{name: "null sub", token: func() string { return signEd(t, baseClaims().with("sub", nil)) }, wantCode: CodeMissingClaim, want: "missing claim sub"},
		{name: "sub wrong type", token: func() string { return signEd(t, baseClaims().with("sub", 42)) }, wantCode: CodeInvalidClaim, want: "invalid claim sub"},
		{name: "missing roles", token: func() string { return signEd(t, baseClaims().without("roles")) }, wantCode: CodeMissingClaim, want: "missing claim roles"},
		{name: "empty roles", token: func() string { return signEd(t, baseClaims().with("roles", []string{})) }, wantCode: CodeMissingClaim, want: "missing claim roles"},
		{name: "null roles", token: func() string { return signEd(t, baseClaims().with("roles", nil)) }, wantCode: CodeMissingClaim, want: "missing claim roles"},
		{name: "roles as string", token: func() string { return signEd(t, baseClaims().with("roles", "admin")) }, wantCode: CodeInvalidClaim, want: "invalid claim roles"},
		{name: "roles with number", token: func() string { return signEd(t, baseClaims().with("roles", []any{"a", 1})) }, wantCode: CodeInvalidClaim, want: "invalid claim roles"},
		{name: "roles with null", token: func() string { return signEd(t, baseClaims().with("roles", []any{"a", nil})) }, wantCode: CodeInvalidClaim, want: "invalid claim roles"},
		{name: "roles as object", token: func() string { return signEd(t, baseClaims().with("roles", map[string]string{"a": "b"})) }, wantCode: CodeInvalidClaim, want: "invalid claim roles"},
		{name: "empty role string", token: func() string { return signEd(t, baseClaims().with("roles", []string{"a", ""})) }, wantCode: CodeInvalidClaim, want: "invalid claim roles"},
		{name: "role too long", token: func() string {
			return signEd(t, baseClaims().with("roles", []string{strings.Repeat("r", MaxRoleLen+1)}))
		}, wantCode: CodeInvalidClaim, want: "invalid claim roles"},
		{name: "too many roles", token: func() string { return signEd(t, baseClaims().with("roles", repeatRoles(MaxRoles+1, "role"))) }, wantCode: CodeInvalidClaim, want: "invalid claim roles"},
		{name: "missing country", token: func() string { return signEd(t, baseClaims().without("country")) }, wantCode: CodeMissingClaim, want: "missing claim country"},
		{name: "empty country", token: func() string { return signEd(t, baseClaims().with("country", "")) }, wantCode: CodeMissingClaim, want: "missing claim country"},
		{name: "lower-case country", token: func() string { return signEd(t, baseClaims().with("country", "de")) }, wantCode: CodeInvalidClaim, want: "invalid claim country"},
		{name: "alpha-3 country", token: func() string { return signEd(t, baseClaims().with("country", "DEU")) }, wantCode: CodeInvalidClaim, want: "invalid claim country"},
		{name: "non-ASCII country", token: func() string { return signEd(t, baseClaims().with("country", "DÉ")) }, wantCode: CodeInvalidClaim, want: "invalid claim country"},
		{name: "numeric country", token: func() string { return signEd(t, baseClaims().with("country", 49)) }, wantCode: CodeInvalidClaim, want: "invalid claim country"},
		{name: "team wrong type", token: func() string { return signEd(t, baseClaims().with("team", 5)) }, wantCode: CodeInvalidClaim, want: "invalid claim team"},

		// Rejected by go-oidc only (distributed claim without a source): fail closed.
		{name: "go-oidc-only rejection", token: func() string {
			return signEd(t, baseClaims().with("_claim_names", map[string]string{"groups": "src1"}))
		}, wantCode: CodeInvalidToken, want: "token invalid"},

		// Malformed input.
		{name: "empty", token: func() string { return "" }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "garbage", token: func() string { return "not a token" }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "one dot", token: func() string { return parts[0] + "." + parts[1] }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "four parts", token: func() string { return valid + ".x" }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "truncated mid-payload", token: func() string { return valid[:len(parts[0])+10] }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "bad base64 header", token: func() string { return "a." + parts[1] + "." + parts[2] }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "padded base64", token: func() string { return parts[0] + "=." + parts[1] + "." + parts[2] }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "bad base64 payload", token: func() string { return parts[0] + ".A." + parts[2] }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "header not JSON", token: func() string { return b64([]byte("{alg")) + "." + parts[1] + "." + parts[2] }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "header JSON array", token: func() string { return b64([]byte(`["EdDSA"]`)) + "." + parts[1] + "." + parts[2] }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "empty payload", token: func() string { return parts[0] + ".." + parts[2] }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "signed payload not JSON", token: func() string { return signRaw(t, jose.EdDSA, m.ed, kidEd, []byte("hello")) }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "signed payload JSON array", token: func() string { return signRaw(t, jose.EdDSA, m.ed, kidEd, []byte(`[1,2]`)) }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "signed payload null", token: func() string { return signRaw(t, jose.EdDSA, m.ed, kidEd, []byte(`null`)) }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "JWS JSON serialization", token: func() string {
			return `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`
		}, wantCode: CodeMalformed, want: "malformed token"},
		{name: "embedded whitespace", token: func() string { return parts[0] + ".\n" + parts[1] + "." + parts[2] }, wantCode: CodeMalformed, want: "malformed token"},
		{name: "bearer prefix not stripped", token: func() string { return "Bearer " + valid }, wantCode: CodeMalformed, want: "malformed token"},

		// Size.
		{name: "oversized garbage", token: func() string { return strings.Repeat("a", MaxTokenSize+1) }, wantCode: CodeTokenTooLarge, want: "token too large"},
		{name: "oversized valid signature", token: func() string {
			return signEd(t, baseClaims().with("pad", strings.Repeat("x", MaxTokenSize)))
		}, wantCode: CodeTokenTooLarge, want: "token too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			ks := keys
			if tc.keys != nil {
				ks = tc.keys
			}
			v := mustVerifier(t, cfg, ks, func() time.Time { return testNow })
			tok := tc.token()
			for i := range 2 { // the second attempt must not be served from a cache
				p, err := v.Verify(context.Background(), tok)
				wantAuthErr(t, err, tc.want)
				var ae *Error
				if !errors.As(err, &ae) {
					t.Fatalf("attempt %d: error %T is not *Error", i, err)
				}
				if ae.Code != tc.wantCode {
					t.Errorf("attempt %d: code = %q, want %q", i, ae.Code, tc.wantCode)
				}
				if diff := cmp.Diff(Principal{}, p); diff != "" {
					t.Errorf("attempt %d: non-zero principal on error:\n%s", i, diff)
				}
			}
		})
	}
}

// TestVerifyValidTokenStillAccepted guards the rejection table: the token it
// mutates is itself valid.
func TestVerifyValidTokenStillAccepted(t *testing.T) {
	v := mustVerifier(t, testConfig(), standardKeys(t), func() time.Time { return testNow })
	if _, err := v.Verify(context.Background(), signEd(t, baseClaims())); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestVerifyKeySetUnavailable(t *testing.T) {
	ks := keySetFunc(func(ctx context.Context, _ string) ([]byte, error) { return nil, ctx.Err() })
	v := mustVerifier(t, testConfig(), ks, func() time.Time { return testNow })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(ctx, signEd(t, baseClaims()))
	wantAuthErr(t, err, "key set unavailable")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("errors.Is(err, context.Canceled) = false; cause should be kept for logs")
	}
}

func TestVerifyForeignKeySetError(t *testing.T) {
	ks := keySetFunc(func(context.Context, string) ([]byte, error) { return nil, errors.New("boom: secret detail") })
	v := mustVerifier(t, testConfig(), ks, func() time.Time { return testNow })
	_, err := v.Verify(context.Background(), signEd(t, baseClaims()))
	wantAuthErr(t, err, "signature invalid")
}

type keySetFunc func(ctx context.Context, jwt string) ([]byte, error)

func (f keySetFunc) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	return f(ctx, jwt)
}

func TestNewVerifierConfig(t *testing.T) {
	keys := standardKeys(t)
	tests := []struct {
		name    string
		cfg     Config
		nilKeys bool
		wantErr string // substring; "" means success
	}{
		{name: "defaults", cfg: testConfig()},
		{name: "all asymmetric", cfg: Config{Issuer: "i", Audience: "a", Algorithms: asymmetricAlgs}},
		{name: "no issuer", cfg: Config{Audience: "a"}, wantErr: "issuer is required"},
		{name: "no audience", cfg: Config{Issuer: "i"}, wantErr: "audience is required"},
		{name: "nil keys", cfg: testConfig(), nilKeys: true, wantErr: "key set is required"},
		{name: "HS256", cfg: Config{Issuer: "i", Audience: "a", Algorithms: []string{"EdDSA", "HS256"}}, wantErr: `"HS256" is not allowed`},
		{name: "none", cfg: Config{Issuer: "i", Audience: "a", Algorithms: []string{"none"}}, wantErr: `"none" is not allowed`},
		{name: "negative skew", cfg: Config{Issuer: "i", Audience: "a", ClockSkew: -time.Second}, wantErr: "clock skew"},
		{name: "huge skew", cfg: Config{Issuer: "i", Audience: "a", ClockSkew: time.Hour}, wantErr: "clock skew"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.nilKeys {
				_, err = NewVerifier(tc.cfg, nil, nil)
			} else {
				_, err = NewVerifier(tc.cfg, keys, nil)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("NewVerifier: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("NewVerifier error = %v, want containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestVerifyDefaultClock(t *testing.T) {
	v := mustVerifier(t, testConfig(), standardKeys(t), nil)
	now := time.Now()
	tok := signEd(t, baseClaims().with("nbf", now.Unix()).with("iat", now.Unix()).with("exp", now.Add(time.Minute).Unix()))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify with time.Now clock: %v", err)
	}
}
