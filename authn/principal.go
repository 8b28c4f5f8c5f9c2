package authn

import (
	"slices"
	"time"
)

// Principal is an authenticated caller, derived from a verified token.
type Principal struct {
	// Subject is the token's "sub" claim; never empty.
	Subject string
	// Roles is the token's "roles" claim; never empty.
	Roles []string
	// Country is the caller's ISO 3166-1 alpha-2 country code ("country"
	// claim), two upper-case ASCII letters.
	Country string
	// Team is the optional "team" claim; empty when absent.
	Team string
	// Expiry is when the token stops being valid ("exp" claim).
	Expiry time.Time
}

// HasRole reports whether the principal holds role r (exact match).
func (p Principal) HasRole(r string) bool {
	return slices.Contains(p.Roles, r)
}
