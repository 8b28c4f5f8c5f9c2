package authn

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
)

const (
	// MaxRoles is the maximum number of entries in the "roles" claim.
	MaxRoles = 32
	// MaxRoleLen is the maximum length of a single role, in bytes.
	MaxRoleLen = 64

	// maxNumericDate bounds NumericDate claims (9999-12-31T23:59:59Z) so that
	// absurd values cannot overflow time arithmetic.
	maxNumericDate = 253402300799
)

// verifiedClaims is the result of validating a verified token payload.
type verifiedClaims struct {
	principal Principal
	notBefore time.Time // zero when the token has no "nbf"
}

// claimChecker validates a (signature-verified) payload. It is deliberately
// stricter than go-oidc: claim names are matched exactly (encoding/json
// struct decoding is case-insensitive), and types are checked precisely so
// that each failure maps to a specific reason.
type claimChecker struct {
	issuer   string
	audience string
	skew     time.Duration
}

func (c claimChecker) check(payload []byte, now time.Time) (verifiedClaims, *Error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return verifiedClaims{}, errMalformed()
	}

	// Issuer.
	iss, present, ok := stringClaim(m, "iss")
	switch {
	case !present:
		return verifiedClaims{}, missingClaim("iss")
	case !ok:
		return verifiedClaims{}, invalidClaim("iss")
	case iss != c.issuer:
		return verifiedClaims{}, newError(CodeIssuerMismatch, "issuer mismatch")
	}

	// Audience: a string or an array of strings containing ours.
	if e := c.checkAudience(m); e != nil {
		return verifiedClaims{}, e
	}

	// Expiry (required) and not-before (optional), with clock skew.
	exp, present, ok := dateClaim(m, "exp")
	switch {
	case !present:
		return verifiedClaims{}, missingClaim("exp")
	case !ok:
		return verifiedClaims{}, invalidClaim("exp")
	case !now.Before(exp.Add(c.skew)):
		return verifiedClaims{}, newError(CodeExpired, "token expired")
	}
	nbf, present, ok := dateClaim(m, "nbf")
	switch {
	case present && !ok:
		return verifiedClaims{}, invalidClaim("nbf")
	case present && now.Add(c.skew).Before(nbf):
		return verifiedClaims{}, newError(CodeNotYetValid, "token not yet valid")
	}
	if _, present, ok := dateClaim(m, "iat"); present && !ok {
		return verifiedClaims{}, invalidClaim("iat")
	}

	// Subject.
	sub, present, ok := stringClaim(m, "sub")
	switch {
	case !present || (ok && sub == ""):
		return verifiedClaims{}, missingClaim("sub")
	case !ok:
		return verifiedClaims{}, invalidClaim("sub")
	}

	// Roles: non-empty JSON array of valid role strings.
	roles, e := rolesClaim(m)
	if e != nil {
		return verifiedClaims{}, e
	}

	// Country: ISO 3166-1 alpha-2.
	country, present, ok := stringClaim(m, "country")
	switch {
	case !present || (ok && country == ""):
		return verifiedClaims{}, missingClaim("country")
	case !ok || !validCountry(country):
		return verifiedClaims{}, invalidClaim("country")
	}

	// Team: optional string.
	team, present, ok := stringClaim(m, "team")
	if present && !ok {
		return verifiedClaims{}, invalidClaim("team")
	}

	return verifiedClaims{
		principal: Principal{
			Subject: sub,
			Roles:   roles,
			Country: country,
			Team:    team,
			Expiry:  exp,
		},
		notBefore: nbf, // zero when absent
	}, nil
}

func (c claimChecker) checkAudience(m map[string]json.RawMessage) *Error {
	raw, present := lookup(m, "aud")
	if !present {
		return missingClaim("aud")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		if one != c.audience {
			return newError(CodeAudienceMismatch, "audience mismatch")
		}
		return nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return invalidClaim("aud")
	}
	if !slices.Contains(many, c.audience) {
		return newError(CodeAudienceMismatch, "audience mismatch")
	}
	return nil
}

// lookup returns the raw value of claim name; a JSON null counts as absent.
func lookup(m map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := m[name]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, false
	}
	return raw, true
}

// stringClaim returns the claim as a string. present reports whether the
// claim exists (and is not null); ok whether it is a JSON string.
func stringClaim(m map[string]json.RawMessage, name string) (s string, present, ok bool) {
	raw, present := lookup(m, name)
	if !present {
		return "", false, false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, false
	}
	return s, true, true
}

// dateClaim parses a NumericDate claim (RFC 7519 §2): a non-negative JSON
// number of seconds since the epoch, possibly fractional (truncated).
func dateClaim(m map[string]json.RawMessage, name string) (t time.Time, present, ok bool) {
	raw, present := lookup(m, name)
	if !present {
		return time.Time{}, false, false
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, true, false
	}
	// json.Number also accepts a quoted string; require a bare number.
	if b := bytes.TrimSpace(raw); len(b) == 0 || b[0] == '"' {
		return time.Time{}, true, false
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, false
	}
	return time.Unix(int64(f), 0).UTC(), true, true
}

func rolesClaim(m map[string]json.RawMessage) ([]string, *Error) {
	raw, present := lookup(m, "roles")
	if !present {
		return nil, missingClaim("roles")
	}
	var roles []string
	if err := json.Unmarshal(raw, &roles); err != nil {
		return nil, invalidClaim("roles")
	}
	if len(roles) == 0 {
		return nil, missingClaim("roles")
	}
	if err := validateRoles(roles); err != "" {
		return nil, invalidClaim("roles")
	}
	return roles, nil
}

// validateRoles returns a description of the first problem, or "".
func validateRoles(roles []string) string {
	if len(roles) > MaxRoles {
		return "too many roles (max " + strconv.Itoa(MaxRoles) + ")"
	}
	for _, r := range roles {
		if r == "" {
			return "empty role"
		}
		if len(r) > MaxRoleLen {
			return "role longer than " + strconv.Itoa(MaxRoleLen) + " bytes"
		}
	}
	return ""
}

// validCountry reports whether s is two upper-case ASCII letters, the shape
// of an ISO 3166-1 alpha-2 code.
func validCountry(s string) bool {
	return len(s) == 2 && isUpper(s[0]) && isUpper(s[1])
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }
