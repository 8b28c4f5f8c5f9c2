package authn

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

const (
	devIssuerURL = "http://localhost:8080"
	devAudience  = "clover-dev"
)

func newDev(t *testing.T, dir string) *DevIssuer {
	t.Helper()
	d, err := LoadOrCreateDevIssuer(dir, devIssuerURL, devAudience)
	if err != nil {
		t.Fatalf("LoadOrCreateDevIssuer: %v", err)
	}
	return d
}

func skipIfNoUnixPerms(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("file permission bits are not meaningful on Windows")
	}
}

func TestDevIssuerRoundTrip(t *testing.T) {
	d := newDev(t, filepath.Join(t.TempDir(), "dev"))
	tests := []struct {
		name   string
		claims TokenClaims
		want   Principal
	}{
		{
			name:   "with team",
			claims: TokenClaims{Subject: "alice", Roles: []string{"analyst"}, Country: "FR", Team: "risk"},
			want:   Principal{Subject: "alice", Roles: []string{"analyst"}, Country: "FR", Team: "risk", Expiry: testNow.Add(15 * time.Minute)},
		},
		{
			name:   "without team",
			claims: TokenClaims{Subject: "bob", Roles: []string{"admin", "reader"}, Country: "US"},
			want:   Principal{Subject: "bob", Roles: []string{"admin", "reader"}, Country: "US", Expiry: testNow.Add(15 * time.Minute)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := d.Mint(tc.claims, 15*time.Minute, testNow)
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			// Verify with the in-memory keys and with the published JWKS.
			published, err := ParseJWKS(d.JWKS())
			if err != nil {
				t.Fatalf("ParseJWKS(JWKS()): %v", err)
			}
			for _, ks := range []*StaticKeys{d.Keys(), published} {
				v := mustVerifier(t, d.Config(), ks, func() time.Time { return testNow })
				got, err := v.Verify(context.Background(), tok)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("principal (-want +got):\n%s", diff)
				}
			}

			// Header: EdDSA, typ JWT, kid = thumbprint.
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
			if err != nil {
				t.Fatalf("parse minted token: %v", err)
			}
			h := jws.Signatures[0].Header
			if diff := cmp.Diff(map[string]any{"alg": "EdDSA", "kid": d.KeyID(), "typ": "JWT"},
				map[string]any{"alg": h.Algorithm, "kid": h.KeyID, "typ": h.ExtraHeaders["typ"]}); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}

			// Payload: registered claims present, team omitted when empty.
			var payload map[string]any
			if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &payload); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"iss", "aud", "sub", "roles", "country", "iat", "nbf", "exp", "jti"} {
				if _, ok := payload[k]; !ok {
					t.Errorf("claim %q missing from minted token", k)
				}
			}
			if _, ok := payload["team"]; ok != (tc.claims.Team != "") {
				t.Errorf("team claim present = %v, want %v", ok, tc.claims.Team != "")
			}
			if payload["iss"] != devIssuerURL || payload["aud"] != devAudience {
				t.Errorf("iss/aud = %v/%v, want %v/%v", payload["iss"], payload["aud"], devIssuerURL, devAudience)
			}
		})
	}
}

func TestDevIssuerUniqueJTI(t *testing.T) {
	d := newDev(t, t.TempDir())
	seen := map[string]bool{}
	for range 20 {
		tok, err := d.Mint(TokenClaims{Subject: "a", Roles: []string{"r"}, Country: "DE"}, time.Minute, testNow)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ JTI string }
		if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil || c.JTI == "" {
			t.Fatalf("jti missing: %v", err)
		}
		if seen[c.JTI] {
			t.Fatalf("duplicate jti %q", c.JTI)
		}
		seen[c.JTI] = true
	}
}

func TestDevIssuerPersistence(t *testing.T) {
	skipIfNoUnixPerms(t)
	dir := filepath.Join(t.TempDir(), "state", "authn")
	first := newDev(t, dir)
	second := newDev(t, dir)
	if first.KeyID() != second.KeyID() {
		t.Fatalf("kid changed across loads: %q != %q", first.KeyID(), second.KeyID())
	}
	if diff := cmp.Diff(first.JWKS(), second.JWKS()); diff != "" {
		t.Errorf("JWKS changed across loads:\n%s", diff)
	}

	// A token minted before "restart" verifies after it.
	tok, err := first.Mint(TokenClaims{Subject: "a", Roles: []string{"r"}, Country: "DE"}, time.Minute, testNow)
	if err != nil {
		t.Fatal(err)
	}
	v := mustVerifier(t, second.Config(), second.Keys(), func() time.Time { return testNow })
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify after reload: %v", err)
	}

	// File and directory modes.
	fi, err := os.Stat(filepath.Join(dir, DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode = %#o, want 0600", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("key dir mode = %#o, want 0700", got)
	}
	// No temporary files left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != DevKeyFile {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dir entries = %v, want only %s", names, DevKeyFile)
	}
}

func TestDevIssuerKIDIsThumbprint(t *testing.T) {
	dir := t.TempDir()
	d := newDev(t, dir)
	data, err := os.ReadFile(filepath.Join(dir, DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct{ Kty, Crv, X, D, Kid string }
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Kty != "OKP" || raw.Crv != "Ed25519" || raw.D == "" {
		t.Fatalf("key file is not an Ed25519 private JWK: kty=%q crv=%q", raw.Kty, raw.Crv)
	}
	// RFC 7638 §3.2: required members in lexicographic order, no whitespace.
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + raw.X + `"}`))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if d.KeyID() != want || raw.Kid != want {
		t.Errorf("kid = %q (file %q), want thumbprint %q", d.KeyID(), raw.Kid, want)
	}
	// The public JWKS carries no private material.
	if strings.Contains(string(d.JWKS()), `"d"`) {
		t.Errorf("JWKS contains private key: %s", d.JWKS())
	}
}

func TestDevIssuerBadKeyFile(t *testing.T) {
	skipIfNoUnixPerms(t)
	valid := func(t *testing.T, dir string) string {
		newDev(t, dir)
		return filepath.Join(dir, DevKeyFile)
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the key file path
		wantErr string
	}{
		{name: "world readable", setup: func(t *testing.T, dir string) string {
			p := valid(t, dir)
			chmod(t, p, 0o644)
			return p
		}, wantErr: "permissions"},
		{name: "group readable", setup: func(t *testing.T, dir string) string {
			p := valid(t, dir)
			chmod(t, p, 0o640)
			return p
		}, wantErr: "permissions"},
		{name: "executable", setup: func(t *testing.T, dir string) string {
			p := valid(t, dir)
			chmod(t, p, 0o700)
			return p
		}, wantErr: "permissions"},
		{name: "corrupt", setup: func(t *testing.T, dir string) string {
			return writeKeyFile(t, dir, []byte("{not json"))
		}, wantErr: "invalid JWK"},
		{name: "public key only", setup: func(t *testing.T, dir string) string {
			pub, _, _ := ed25519.GenerateKey(nil)
			b, _ := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: "x"})
			return writeKeyFile(t, dir, b)
		}, wantErr: "not an Ed25519 private key"},
		{name: "wrong kid", setup: func(t *testing.T, dir string) string {
			_, priv, _ := ed25519.GenerateKey(nil)
			b, _ := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: "not-the-thumbprint"})
			return writeKeyFile(t, dir, b)
		}, wantErr: "thumbprint"},
		{name: "directory instead of file", setup: func(t *testing.T, dir string) string {
			p := filepath.Join(dir, DevKeyFile)
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p
		}, wantErr: "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tc.setup(t, dir)
			_, err := LoadOrCreateDevIssuer(dir, devIssuerURL, devAudience)
			if err == nil {
				t.Fatal("LoadOrCreateDevIssuer succeeded, want error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want naming %s and containing %q", err, path, tc.wantErr)
			}
		})
	}

	// Stricter than 0600 is fine.
	dir := t.TempDir()
	p := valid(t, dir)
	chmod(t, p, 0o400)
	newDev(t, dir)
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func writeKeyFile(t *testing.T, dir string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, DevKeyFile)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDevIssuerConcurrentCreate(t *testing.T) {
	for round := range 10 {
		dir := filepath.Join(t.TempDir(), "fresh")
		const n = 16
		kids := make([]string, n)
		errs := make([]error, n)
		var start, wg sync.WaitGroup
		start.Add(1)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				d, err := LoadOrCreateDevIssuer(dir, devIssuerURL, devAudience)
				errs[i] = err
				if err == nil {
					kids[i] = d.KeyID()
				}
			}()
		}
		start.Done()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d goroutine %d: %v", round, i, err)
			}
		}
		for i := range kids {
			if kids[i] != kids[0] {
				t.Fatalf("round %d: goroutines got different keys: %q vs %q", round, kids[0], kids[i])
			}
		}
		if final := newDev(t, dir); final.KeyID() != kids[0] {
			t.Fatalf("round %d: on-disk key %q differs from the one in use %q", round, final.KeyID(), kids[0])
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Fatalf("round %d: %d dir entries, want 1 (temporary files leaked)", round, len(entries))
		}
	}
}

func TestDevIssuerMintValidation(t *testing.T) {
	d := newDev(t, t.TempDir())
	ok := TokenClaims{Subject: "a", Roles: []string{"r"}, Country: "DE"}
	tests := []struct {
		name    string
		claims  TokenClaims
		ttl     time.Duration
		now     time.Time
		wantErr string // "" means success
	}{
		{name: "ok", claims: ok, ttl: time.Hour, now: testNow},
		{name: "min ttl", claims: ok, ttl: time.Second, now: testNow},
		{name: "max ttl", claims: ok, ttl: 24 * time.Hour, now: testNow},
		{name: "empty subject", claims: TokenClaims{Roles: []string{"r"}, Country: "DE"}, ttl: time.Hour, now: testNow, wantErr: "subject"},
		{name: "no roles", claims: TokenClaims{Subject: "a", Country: "DE"}, ttl: time.Hour, now: testNow, wantErr: "role"},
		{name: "empty role", claims: TokenClaims{Subject: "a", Roles: []string{""}, Country: "DE"}, ttl: time.Hour, now: testNow, wantErr: "empty role"},
		{name: "long role", claims: TokenClaims{Subject: "a", Roles: []string{strings.Repeat("x", 65)}, Country: "DE"}, ttl: time.Hour, now: testNow, wantErr: "longer than"},
		{name: "too many roles", claims: TokenClaims{Subject: "a", Roles: repeatRoles(33, "role"), Country: "DE"}, ttl: time.Hour, now: testNow, wantErr: "too many"},
		{name: "lower-case country", claims: TokenClaims{Subject: "a", Roles: []string{"r"}, Country: "de"}, ttl: time.Hour, now: testNow, wantErr: "country"},
		{name: "no country", claims: TokenClaims{Subject: "a", Roles: []string{"r"}}, ttl: time.Hour, now: testNow, wantErr: "country"},
		{name: "ttl zero", claims: ok, ttl: 0, now: testNow, wantErr: "ttl"},
		{name: "ttl too short", claims: ok, ttl: 999 * time.Millisecond, now: testNow, wantErr: "ttl"},
		{name: "ttl too long", claims: ok, ttl: 24*time.Hour + time.Second, now: testNow, wantErr: "ttl"},
		{name: "negative ttl", claims: ok, ttl: -time.Hour, now: testNow, wantErr: "ttl"},
		{name: "zero now", claims: ok, ttl: time.Hour, wantErr: "now"},
		{name: "token too large", claims: TokenClaims{Subject: strings.Repeat("s", MaxTokenSize), Roles: []string{"r"}, Country: "DE"}, ttl: time.Hour, now: testNow, wantErr: "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := d.Mint(tc.claims, tc.ttl, tc.now)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Mint: %v", err)
				}
				if tok == "" {
					t.Fatal("empty token")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Mint error = %v, want containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDevIssuerArgs(t *testing.T) {
	for _, args := range [][3]string{{"", "i", "a"}, {t.TempDir(), "", "a"}, {t.TempDir(), "i", ""}} {
		if _, err := LoadOrCreateDevIssuer(args[0], args[1], args[2]); err == nil {
			t.Errorf("LoadOrCreateDevIssuer%q succeeded, want error", args)
		}
	}
}

func TestDevIssuerConcurrentMint(t *testing.T) {
	d := newDev(t, t.TempDir())
	v := mustVerifier(t, d.Config(), d.Keys(), func() time.Time { return testNow })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				tok, err := d.Mint(TokenClaims{Subject: "u", Roles: []string{"r"}, Country: "DE", Team: string(rune('a' + i))}, time.Minute, testNow)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Verify(context.Background(), tok); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
