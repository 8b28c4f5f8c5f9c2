// Package authn authenticates callers of the Clover enclave.
//
// It verifies bearer JSON Web Tokens (compact JWS) against a JSON Web Key Set
// and turns the verified claims into a [Principal] that the rest of the
// enclave uses for authorisation decisions (roles, data-residency country,
// team).
//
// Verification is layered:
//
//   - cheap structural checks first (size cap, compact form, "alg" allow-list,
//     which rejects "none" and every HMAC algorithm before any key is touched);
//   - signature, issuer, audience and expiry are verified by
//     github.com/coreos/go-oidc/v3/oidc using a pluggable [oidc.KeySet]
//     ([StaticKeys] for a fixed JWKS, [RemoteKeys] for a JWKS URL);
//   - the verified payload is then re-checked strictly by this package:
//     exact-case claim names, expiry and not-before with a small, configurable
//     clock skew, and the Clover-specific claims "sub", "roles", "country" and
//     "team".
//
// Every rejection is an [*Error] that matches [ErrUnauthenticated] with
// errors.Is and carries a short, fixed reason suitable for a 401 response; no
// token content is ever echoed back.
//
// Successful verifications are cached per raw token until the token expires
// (bounded in size and age), so repeated requests with the same bearer token
// do not pay for signature verification again.
//
// [DevIssuer] is a built-in development issuer: it keeps an Ed25519 signing
// key on disk, publishes the matching JWKS and mints tokens that a [Verifier]
// accepts. It is intended for local development and tests, not production.
package authn
