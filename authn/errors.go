package authn

import "errors"

// ErrUnauthenticated is matched (via errors.Is) by every error Verify returns.
var ErrUnauthenticated = errors.New("unauthenticated")

// Error codes carried by [Error]. Codes are stable, machine-readable
// identifiers; the accompanying Reason is a short human-readable phrase.
const (
	CodeTokenTooLarge       = "token_too_large"
	CodeMalformed           = "malformed_token"
	CodeAlgorithmNotAllowed = "algorithm_not_allowed"
	CodeUnknownKeyID        = "unknown_key_id"
	CodeKeyAlgMismatch      = "key_algorithm_mismatch"
	CodeSignatureInvalid    = "signature_invalid"
	CodeKeySetUnavailable   = "key_set_unavailable"
	CodeIssuerMismatch      = "issuer_mismatch"
	CodeAudienceMismatch    = "audience_mismatch"
	CodeExpired             = "token_expired"
	CodeNotYetValid         = "token_not_yet_valid"
	CodeMissingClaim        = "missing_claim"
	CodeInvalidClaim        = "invalid_claim"
	CodeInvalidToken        = "invalid_token"
)

// Error is an authentication failure.
//
// Reason is short, fixed text (for example "token expired" or
// "missing claim sub") that never contains token content, so it is safe to
// return to the client in a 401 response. Error matches [ErrUnauthenticated]
// with errors.Is.
type Error struct {
	Code   string
	Reason string

	// cause is an underlying error for server-side diagnostics (for example
	// a JWKS fetch failure or context cancellation). It is reachable through
	// Unwrap but never included in Error().
	cause error
}

func (e *Error) Error() string { return "authn: " + e.Reason }

// Is makes errors.Is(err, ErrUnauthenticated) true for every *Error.
func (e *Error) Is(target error) bool { return target == ErrUnauthenticated }

// Unwrap returns the underlying cause, if any. The cause is intended for
// server logs, not for clients.
func (e *Error) Unwrap() error { return e.cause }

func newError(code, reason string) *Error { return &Error{Code: code, Reason: reason} }

func errMalformed() *Error { return newError(CodeMalformed, "malformed token") }

func missingClaim(name string) *Error {
	return newError(CodeMissingClaim, "missing claim "+name)
}

func invalidClaim(name string) *Error {
	return newError(CodeInvalidClaim, "invalid claim "+name)
}

// Reason returns the client-safe reason of an authentication error, or
// "unauthenticated" if err is not an [*Error].
func Reason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ErrUnauthenticated.Error()
}
