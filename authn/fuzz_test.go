package authn

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func FuzzVerify(f *testing.F) {
	m := testKeys(f)
	keys := standardKeys(f)
	valid := signEd(f, baseClaims())
	parts := strings.Split(valid, ".")
	seeds := []string{
		valid,
		sign(f, jose.RS256, m.rsa, kidRSA, baseClaims()),
		sign(f, jose.ES256, m.ec, kidEC, baseClaims()),
		valid[:len(valid)/2],                                                // truncated
		valid[:len(valid)-1],                                                // truncated signature
		parts[0] + "." + parts[1],                                           // missing signature
		b64JSON(f, map[string]string{"alg": "none"}) + "." + parts[1] + ".", // alg none
		b64JSON(f, map[string]string{"alg": "HS256", "kid": kidEd}) + "." + parts[1] + "." + parts[2],
		signEd(f, baseClaims().without("roles")),
		signEd(f, baseClaims().with("exp", "soon")),
		"",
		"garbage",
		"...",
		"a.b.c",
		"e30.e30.e30",
		`{"payload":"e30","signatures":[]}`,
		strings.Repeat("A", MaxTokenSize+1),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	v := mustVerifier(f, testConfig(), keys, func() time.Time { return testNow })
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.Verify(context.Background(), raw)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error does not match ErrUnauthenticated: %v", err)
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Code == "" || ae.Reason == "" {
				t.Fatalf("error is not a populated *Error: %#v", err)
			}
			if p.Subject != "" || p.Roles != nil || p.Country != "" {
				t.Fatalf("non-zero principal returned with error: %+v", p)
			}
			return
		}
		if p.Subject == "" || len(p.Roles) == 0 || !validCountry(p.Country) || p.Expiry.IsZero() {
			t.Fatalf("accepted token yields incomplete principal: %+v", p)
		}
		if len(raw) > MaxTokenSize {
			t.Fatalf("accepted a %d-byte token", len(raw))
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	m := testKeys(f)
	f.Add(standardJWKS(f))
	f.Add(jwksJSON(f, jose.JSONWebKey{Key: m.ed, KeyID: "k"}))
	priv, _ := json.Marshal(map[string]any{"keys": []jose.JSONWebKey{{Key: m.ed, KeyID: "p"}}})
	f.Add(priv)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"d","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`garbage`))
	tok := signEd(f, baseClaims())
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseJWKS(data)
		if err != nil {
			if ks != nil {
				t.Fatal("non-nil key set returned with error")
			}
			return
		}
		kids := ks.KeyIDs()
		if len(kids) == 0 {
			t.Fatal("accepted an empty key set")
		}
		seen := map[string]bool{}
		for _, kid := range kids {
			if kid == "" || seen[kid] {
				t.Fatalf("bad or duplicate kid %q", kid)
			}
			seen[kid] = true
		}
		// Re-encoding yields a public-only set with the same kids.
		out, err := json.Marshal(ks)
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := ParseJWKS(out)
		if err != nil {
			t.Fatalf("re-encoded set does not parse: %v\n%s", err, out)
		}
		if strings.Join(again.KeyIDs(), ",") != strings.Join(kids, ",") {
			t.Fatalf("round trip changed kids: %v -> %v", kids, again.KeyIDs())
		}
		// Verification against a fuzzed key set must not panic either.
		_, _ = ks.VerifySignature(context.Background(), tok)
	})
}
