package authn

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/cloverenclave/clover/internal/atomicfile"
)

const (
	// DevKeyFile is the name of the development issuer's signing key file.
	DevKeyFile = "signing-key.json"

	minDevTTL     = time.Second
	maxDevTTL     = 24 * time.Hour
	maxDevKeyFile = 64 << 10
)

// TokenClaims are the caller attributes minted into a development token.
type TokenClaims struct {
	Subject string
	Roles   []string
	Country string
	Team    string
}

// DevIssuer is the built-in development token issuer. It signs tokens with an
// Ed25519 key kept in a directory, and publishes the matching public JWKS.
// It is safe for concurrent use.
type DevIssuer struct {
	issuer   string
	audience string
	key      jose.JSONWebKey // private key, KeyID set
	keys     *StaticKeys
	jwks     []byte
}

// LoadOrCreateDevIssuer returns a development issuer whose signing key lives
// in dir/signing-key.json. The key is loaded if the file exists, otherwise a
// new Ed25519 key is generated and written. dir is created with mode 0700 if
// missing; the key file has mode 0600, and an existing key file readable or
// writable by group or others is rejected. The key ID is the RFC 7638 JWK
// thumbprint (SHA-256, base64url).
//
// Creation is atomic and exclusive: the key is written to a temporary file
// which is then hard-linked to the final name, which fails if the name
// already exists. Concurrent callers (goroutines or processes) therefore all
// end up using the same key: whoever loses the race loads the winner's file.
func LoadOrCreateDevIssuer(dir, issuer, audience string) (*DevIssuer, error) {
	if issuer == "" || audience == "" {
		return nil, errors.New("authn: dev issuer: issuer and audience are required")
	}
	if dir == "" {
		return nil, errors.New("authn: dev issuer: key directory is required")
	}
	path := filepath.Join(dir, DevKeyFile)

	key, err := loadDevKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createDevKey(dir, path)
	}
	if err != nil {
		return nil, err
	}
	return newDevIssuer(key, issuer, audience)
}

func newDevIssuer(key jose.JSONWebKey, issuer, audience string) (*DevIssuer, error) {
	pub := key.Public()
	pub.Certificates = nil
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("authn: dev issuer: encode JWKS: %w", err)
	}
	keys, err := ParseJWKS(jwks)
	if err != nil {
		return nil, fmt.Errorf("authn: dev issuer: %w", err)
	}
	return &DevIssuer{issuer: issuer, audience: audience, key: key, keys: keys, jwks: jwks}, nil
}

// loadDevKey reads and validates an existing key file. A missing file yields
// an error matching fs.ErrNotExist.
func loadDevKey(path string) (jose.JSONWebKey, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return jose.JSONWebKey{}, err
		}
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: stat key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: key file %s has permissions %#o; want 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxDevKeyFile+1))
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: read key file %s: %w", path, err)
	}
	if len(data) > maxDevKeyFile {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: key file %s is too large", path)
	}
	var key jose.JSONWebKey
	if err := key.UnmarshalJSON(data); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: key file %s: invalid JWK: %w", path, err)
	}
	if _, ok := key.Key.(ed25519.PrivateKey); !ok {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: key file %s: not an Ed25519 private key", path)
	}
	kid, err := thumbprint(key)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: key file %s: %w", path, err)
	}
	if key.KeyID != kid {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: key file %s: kid does not match the key's RFC 7638 thumbprint", path)
	}
	return jose.JSONWebKey{Key: key.Key, KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"}, nil
}

// createDevKey generates a key and publishes it at path exclusively. If
// another creator wins the race, its key is loaded instead.
func createDevKey(dir, path string) (jose.JSONWebKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: create key directory: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: generate key: %w", err)
	}
	key := jose.JSONWebKey{Key: priv, Algorithm: string(jose.EdDSA), Use: "sig"}
	if key.KeyID, err = thumbprint(key); err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: %w", err)
	}
	data, err := json.MarshalIndent(key, "", "  ")
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: encode key: %w", err)
	}
	data = append(data, '\n')

	// Create (a link, unlike a rename) refuses to replace an existing file,
	// so exactly one creator wins and nobody sees a partially written key.
	if err := atomicfile.Create(path, data, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadDevKey(path)
		}
		return jose.JSONWebKey{}, fmt.Errorf("authn: dev issuer: create key file %s: %w", path, err)
	}
	return key, nil
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of key, base64url.
func thumbprint(key jose.JSONWebKey) (string, error) {
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("compute key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Issuer returns the "iss" value of minted tokens.
func (d *DevIssuer) Issuer() string { return d.issuer }

// Audience returns the "aud" value of minted tokens.
func (d *DevIssuer) Audience() string { return d.audience }

// KeyID returns the signing key's ID (its RFC 7638 thumbprint).
func (d *DevIssuer) KeyID() string { return d.key.KeyID }

// Config returns a verifier Config accepting this issuer's tokens.
func (d *DevIssuer) Config() Config {
	return Config{Issuer: d.issuer, Audience: d.audience, Algorithms: []string{string(jose.EdDSA)}}
}

// JWKS returns the public JWKS document, suitable for serving at
// /.well-known/jwks.json. The caller may modify the returned slice.
func (d *DevIssuer) JWKS() []byte { return slices.Clone(d.jwks) }

// Keys returns the public key set, for use with NewVerifier.
func (d *DevIssuer) Keys() *StaticKeys { return d.keys }

// devTokenClaims is the JWT payload minted by DevIssuer.
type devTokenClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	Expiry    int64    `json:"exp"`
	NotBefore int64    `json:"nbf"`
	IssuedAt  int64    `json:"iat"`
	ID        string   `json:"jti"`
	Roles     []string `json:"roles"`
	Country   string   `json:"country"`
	Team      string   `json:"team,omitempty"`
}

// Mint signs a token for claims, valid from now for ttl (1s to 24h).
func (d *DevIssuer) Mint(claims TokenClaims, ttl time.Duration, now time.Time) (string, error) {
	if claims.Subject == "" {
		return "", errors.New("authn: mint: subject is required")
	}
	if len(claims.Roles) == 0 {
		return "", errors.New("authn: mint: at least one role is required")
	}
	if problem := validateRoles(claims.Roles); problem != "" {
		return "", fmt.Errorf("authn: mint: invalid roles: %s", problem)
	}
	if !validCountry(claims.Country) {
		return "", fmt.Errorf("authn: mint: country %q is not an ISO 3166-1 alpha-2 code (two upper-case letters)", claims.Country)
	}
	if ttl < minDevTTL || ttl > maxDevTTL {
		return "", fmt.Errorf("authn: mint: ttl %v out of range [%v, %v]", ttl, minDevTTL, maxDevTTL)
	}
	if now.IsZero() {
		return "", errors.New("authn: mint: now is required")
	}
	payload, err := json.Marshal(devTokenClaims{
		Issuer:    d.issuer,
		Subject:   claims.Subject,
		Audience:  d.audience,
		Expiry:    now.Add(ttl).Unix(),
		NotBefore: now.Unix(),
		IssuedAt:  now.Unix(),
		ID:        rand.Text(),
		Roles:     claims.Roles,
		Country:   claims.Country,
		Team:      claims.Team,
	})
	if err != nil {
		return "", fmt.Errorf("authn: mint: encode claims: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: d.key},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", fmt.Errorf("authn: mint: create signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("authn: mint: sign: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("authn: mint: serialize: %w", err)
	}
	if len(tok) > MaxTokenSize {
		return "", fmt.Errorf("authn: mint: token of %d bytes exceeds the %d byte limit", len(tok), MaxTokenSize)
	}
	return tok, nil
}
