package authn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

const (
	// MaxTokenSize is the largest raw token Verify will look at, in bytes.
	MaxTokenSize = 8 << 10

	// DefaultClockSkew is the tolerance applied to "exp" and "nbf" when
	// Config.ClockSkew is zero.
	DefaultClockSkew = 30 * time.Second
	// maxClockSkew bounds Config.ClockSkew.
	maxClockSkew = 5 * time.Minute

	// defaultCacheEntries bounds the verified-token cache.
	defaultCacheEntries = 100_000
	// cacheMaxAge bounds how long a verification result is reused, so that
	// removing a key from a (remote) key set takes effect within this time.
	cacheMaxAge = 10 * time.Minute
)

// DefaultAlgorithms are the signing algorithms accepted when
// Config.Algorithms is empty.
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// asymmetricAlgs are the only algorithms a Config may allow. HMAC and "none"
// are deliberately absent.
var asymmetricAlgs = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// Config configures a [Verifier].
type Config struct {
	// Issuer is the exact expected "iss" claim. Required.
	Issuer string
	// Audience must appear in the token's "aud" claim. Required.
	Audience string
	// Algorithms is the allow-list of JWS "alg" values. Defaults to
	// DefaultAlgorithms (RS256, ES256, EdDSA). Only asymmetric algorithms
	// are accepted; "none" and HS* are configuration errors.
	Algorithms []string
	// ClockSkew is the tolerance for "exp" and "nbf". Zero means
	// DefaultClockSkew (30s); negative values and values above 5m are
	// configuration errors.
	ClockSkew time.Duration
}

// Verifier verifies bearer tokens. It is safe for concurrent use.
type Verifier struct {
	oidc    *oidc.IDTokenVerifier
	algs    []string
	checker claimChecker
	now     func() time.Time
	cache   *tokenCache
}

// NewVerifier returns a Verifier for cfg that checks signatures against keys.
// now is the clock; nil means time.Now.
func NewVerifier(cfg Config, keys oidc.KeySet, now func() time.Time) (*Verifier, error) {
	return newVerifier(cfg, keys, now, defaultCacheEntries)
}

func newVerifier(cfg Config, keys oidc.KeySet, now func() time.Time, cacheEntries int) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("authn: config: issuer is required")
	}
	if cfg.Audience == "" {
		return nil, errors.New("authn: config: audience is required")
	}
	if keys == nil {
		return nil, errors.New("authn: config: key set is required")
	}
	algs := cfg.Algorithms
	if len(algs) == 0 {
		algs = DefaultAlgorithms
	}
	var allowed []string
	for _, a := range algs {
		if !slices.Contains(asymmetricAlgs, a) {
			return nil, fmt.Errorf("authn: config: algorithm %q is not allowed (want one of %s)", a, strings.Join(asymmetricAlgs, ", "))
		}
		if !slices.Contains(allowed, a) {
			allowed = append(allowed, a)
		}
	}
	skew := cfg.ClockSkew
	switch {
	case skew == 0:
		skew = DefaultClockSkew
	case skew < 0 || skew > maxClockSkew:
		return nil, fmt.Errorf("authn: config: clock skew %v out of range (0, %v]", skew, maxClockSkew)
	}
	if now == nil {
		now = time.Now
	}

	v := &Verifier{
		algs:    allowed,
		checker: claimChecker{issuer: cfg.Issuer, audience: cfg.Audience, skew: skew},
		now:     now,
		cache:   newTokenCache(cacheEntries, cacheMaxAge, skew),
	}
	v.oidc = oidc.NewVerifier(cfg.Issuer, capturingKeySet{keys}, &oidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: slices.Clone(allowed),
		// go-oidc compares exp against Now() with no tolerance (and nbf with
		// a fixed 5 minute leeway). Shift its clock back by the skew so its
		// expiry check matches ours; nbf is enforced in claimChecker.
		Now: func() time.Time { return now().Add(-skew) },
	})
	return v, nil
}

// Verify authenticates a raw bearer token (without the "Bearer " prefix) and
// returns the caller's Principal. Every failure is an [*Error] matching
// [ErrUnauthenticated].
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	if len(raw) > MaxTokenSize {
		return Principal{}, newError(CodeTokenTooLarge, "token too large")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	now := v.now()
	if p, ok := v.cache.get(raw, now); ok {
		return p, nil
	}

	if err := v.precheck(raw); err != nil {
		return Principal{}, err
	}

	// go-oidc verifies signature (through the key set), iss, aud and exp.
	// The capture records what the key set saw, so failures can be
	// classified from typed errors / verified data instead of parsing
	// go-oidc's error strings.
	capt := new(sigCapture)
	_, oidcErr := v.oidc.Verify(context.WithValue(ctx, sigCaptureKey{}, capt), raw)
	if capt.err != nil {
		return Principal{}, keySetError(capt.err)
	}
	if capt.payload == nil {
		// go-oidc rejected the token before consulting the key set
		// (parse failure). precheck should have caught it already.
		return Principal{}, errMalformed()
	}

	// The signature is valid; re-check every claim ourselves. This both
	// classifies go-oidc's failures precisely and adds the checks go-oidc
	// does not do (nbf with our skew, exact claim names, Clover claims).
	vc, cerr := v.checker.check(capt.payload, now)
	if cerr != nil {
		return Principal{}, cerr
	}
	if oidcErr != nil {
		// Something go-oidc rejects that we do not model (for example a
		// malformed "_claim_names"). Fail closed.
		return Principal{}, &Error{Code: CodeInvalidToken, Reason: "token invalid", cause: oidcErr}
	}

	v.cache.put(raw, vc, now)
	return vc.principal, nil
}

// precheck performs cheap structural validation before any cryptography:
// compact serialisation with three base64url segments, and a JSON header
// whose "alg" is in the allow-list.
func (v *Verifier) precheck(raw string) *Error {
	if raw == "" {
		return errMalformed()
	}
	for i := 0; i < len(raw); i++ {
		if !isCompactByte(raw[i]) {
			return errMalformed()
		}
	}
	if strings.Count(raw, ".") != 2 {
		return errMalformed()
	}
	h, rest, _ := strings.Cut(raw, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return errMalformed()
	}
	var hdr struct {
		Alg *string `json:"alg"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr.Alg == nil {
		return errMalformed()
	}
	// Checked before the segments' lengths so that unsigned ("alg":"none")
	// tokens, whose signature segment is empty, report the algorithm.
	if !slices.Contains(v.algs, *hdr.Alg) {
		return newError(CodeAlgorithmNotAllowed, "algorithm not allowed")
	}
	if payload == "" || sig == "" {
		return errMalformed()
	}
	return nil
}

// isCompactByte reports whether b may appear in a compact JWS: the base64url
// alphabet (no padding) and the '.' separator.
func isCompactByte(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' ||
		b == '-' || b == '_' || b == '.'
}

// keySetError maps a key set failure to an *Error, keeping the original as
// the (server-side) cause.
func keySetError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeKeySetUnavailable, Reason: "key set unavailable", cause: err}
	}
	return &Error{Code: CodeSignatureInvalid, Reason: "signature invalid", cause: err}
}

// sigCapture records the outcome of the key set's VerifySignature call made
// by go-oidc on behalf of one Verify call.
type sigCapture struct {
	payload []byte
	err     error
}

type sigCaptureKey struct{}

// capturingKeySet wraps the configured key set and stores its result in the
// sigCapture found in the context (go-oidc passes our context through).
type capturingKeySet struct{ inner oidc.KeySet }

func (k capturingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.inner.VerifySignature(ctx, jwt)
	if c, ok := ctx.Value(sigCaptureKey{}).(*sigCapture); ok {
		c.payload, c.err = payload, err
		if err != nil {
			c.payload = nil
		}
	}
	return payload, err
}
