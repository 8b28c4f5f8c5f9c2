package authn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

const (
	// MaxJWKSSize caps the size of a JWKS document accepted by ParseJWKS and
	// LoadJWKSFile.
	MaxJWKSSize = 1 << 20
	// MinRSABits is the smallest RSA modulus accepted in a JWKS.
	MinRSABits = 2048
)

// joseAlgs is asymmetricAlgs as go-jose values, used when parsing tokens.
var joseAlgs = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(asymmetricAlgs))
	for i, a := range asymmetricAlgs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()

// StaticKeys is an immutable set of public signing keys, selected by "kid".
// It implements [oidc.KeySet] and is safe for concurrent use.
type StaticKeys struct {
	byKID map[string]staticKey
	kids  []string // sorted
}

type staticKey struct {
	jwk jose.JSONWebKey // public key only
}

var _ oidc.KeySet = (*StaticKeys)(nil)

// ParseJWKS parses a JSON Web Key Set ({"keys":[...]}) into StaticKeys.
//
// Every key must have a unique, non-empty "kid", must not be marked for
// encryption ("use":"enc"), and must be RSA (>= 2048 bits), EC P-256 or
// Ed25519. Symmetric ("oct") keys are rejected. Keys that include private
// parameters are accepted, but only their public part is kept. If a key has
// an "alg", it must be an asymmetric algorithm matching the key type; tokens
// must then use exactly that algorithm.
func ParseJWKS(data []byte) (*StaticKeys, error) {
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("authn: JWKS larger than %d bytes", MaxJWKSSize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("authn: parse JWKS: %w", err)
	}
	if len(doc.Keys) == 0 {
		return nil, errors.New("authn: JWKS contains no keys")
	}
	s := &StaticKeys{byKID: make(map[string]staticKey, len(doc.Keys))}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("authn: JWKS key %d: %w", i, err)
		}
		if _, dup := s.byKID[k.jwk.KeyID]; dup {
			return nil, fmt.Errorf("authn: JWKS key %d: duplicate kid %q", i, k.jwk.KeyID)
		}
		s.byKID[k.jwk.KeyID] = k
		s.kids = append(s.kids, k.jwk.KeyID)
	}
	sort.Strings(s.kids)
	return s, nil
}

func parseJWK(raw json.RawMessage) (staticKey, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return staticKey{}, fmt.Errorf("invalid JWK: %w", err)
	}
	if jwk.KeyID == "" {
		return staticKey{}, errors.New("missing kid")
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return staticKey{}, fmt.Errorf("kid %q: use %q is not \"sig\"", jwk.KeyID, jwk.Use)
	}
	if _, symmetric := jwk.Key.([]byte); symmetric {
		return staticKey{}, fmt.Errorf("kid %q: symmetric keys are not allowed", jwk.KeyID)
	}
	pub := jwk.Public()
	if !pub.Valid() || !pub.IsPublic() {
		return staticKey{}, fmt.Errorf("kid %q: unsupported key", jwk.KeyID)
	}
	// Keep only what we need: no private parts, no certificates.
	pub = jose.JSONWebKey{Key: pub.Key, KeyID: jwk.KeyID, Algorithm: jwk.Algorithm, Use: jwk.Use}

	switch key := pub.Key.(type) {
	case *rsa.PublicKey:
		if bits := key.N.BitLen(); bits < MinRSABits {
			return staticKey{}, fmt.Errorf("kid %q: RSA key of %d bits is too small (min %d)", jwk.KeyID, bits, MinRSABits)
		}
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() {
			return staticKey{}, fmt.Errorf("kid %q: EC curve %s is not supported (want P-256)", jwk.KeyID, key.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return staticKey{}, fmt.Errorf("kid %q: unsupported key type %T", jwk.KeyID, key)
	}
	if pub.Algorithm != "" {
		if !slices.Contains(asymmetricAlgs, pub.Algorithm) || !algFitsKey(pub.Algorithm, pub.Key) {
			return staticKey{}, fmt.Errorf("kid %q: alg %q is not usable with this key", jwk.KeyID, pub.Algorithm)
		}
	}
	return staticKey{jwk: pub}, nil
}

// algFitsKey reports whether a JWS algorithm can be used with a public key.
func algFitsKey(alg string, key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// LoadJWKSFile reads and parses a JWKS document from path.
func LoadJWKSFile(path string) (*StaticKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("authn: load JWKS file %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("authn: load JWKS file %s: %w", path, err)
	}
	keys, err := ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("authn: load JWKS file %s: %w", path, err)
	}
	return keys, nil
}

// KeyIDs returns the key IDs in the set, sorted.
func (s *StaticKeys) KeyIDs() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.kids)
}

// MarshalJSON encodes the set as a public JWKS document.
func (s *StaticKeys) MarshalJSON() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, kid := range s.KeyIDs() {
		set.Keys = append(set.Keys, s.byKID[kid].jwk)
	}
	return json.Marshal(set)
}

// VerifySignature implements [oidc.KeySet]. It parses the compact JWS,
// selects the key named by the header "kid" (a missing or unknown kid is
// rejected), requires the header "alg" to match the key (its JWK "alg" if
// set, and its type), verifies the signature and returns the payload.
// Errors are [*Error] values.
func (s *StaticKeys) VerifySignature(_ context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, joseAlgs)
	if err != nil {
		var unexpected *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &unexpected) {
			return nil, newError(CodeAlgorithmNotAllowed, "algorithm not allowed")
		}
		return nil, errMalformed()
	}
	if len(jws.Signatures) != 1 {
		return nil, errMalformed()
	}
	hdr := jws.Signatures[0].Header
	var k staticKey
	ok := false
	if s != nil {
		k, ok = s.byKID[hdr.KeyID]
	}
	if hdr.KeyID == "" || !ok {
		return nil, newError(CodeUnknownKeyID, "unknown key id")
	}
	if (k.jwk.Algorithm != "" && k.jwk.Algorithm != hdr.Algorithm) || !algFitsKey(hdr.Algorithm, k.jwk.Key) {
		return nil, newError(CodeKeyAlgMismatch, "key algorithm mismatch")
	}
	payload, err := jws.Verify(k.jwk.Key)
	if err != nil {
		return nil, newError(CodeSignatureInvalid, "signature invalid")
	}
	return payload, nil
}

// RemoteKeys returns a key set backed by the JWKS at url, using go-oidc's
// RemoteKeySet: keys are fetched lazily and re-fetched when a token names an
// unknown kid. HTTP requests use the client attached to ctx with
// oidc.ClientContext, if any; ctx cancellation is ignored. Reuse the returned
// value rather than creating one per request.
//
// Unlike StaticKeys, go-oidc's remote set tries every key when a token has
// no kid, and does not compare a JWK's "alg" with the token's.
func RemoteKeys(ctx context.Context, url string) oidc.KeySet {
	return oidc.NewRemoteKeySet(ctx, url)
}
