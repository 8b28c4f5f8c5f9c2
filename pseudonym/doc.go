// Package pseudonym turns personal values into the forms a policy may release
// instead of the raw value: keyed tokens, reversible deterministic tokens,
// format-preserving ciphertexts, generalisations and masks.
//
// Each form answers a different need:
//
//   - Tokenizer: HMAC-SHA256 tokens ("tk_…"). Equal values give equal tokens
//     within one scope (a purpose or a destination), so a recipient can count
//     and join; tokens of different scopes cannot be linked without the root
//     key. Not reversible.
//   - SIV: AES-SIV deterministic authenticated encryption ("sv_…"). Like a
//     token, but the enclave, holding the key, can reverse it; the scope is
//     bound in as associated data.
//   - FF1: NIST SP 800-38G format-preserving encryption, so a phone number
//     stays a phone number and an integer an integer.
//   - AgeBand, Year, GeoCell and IPPrefix generalise a value to a coarser one.
//   - MaskEmail, MaskPhone and MaskString hide most characters.
//
// Transformer ties these to the field schema (package schema): Supports says
// which Forms a field can take and Transform produces a value in that form.
//
// The package is pure: keys and the current time are passed in, it does no
// I/O and keeps no global state. Every type is safe for concurrent use. Error
// messages name fields and forms, never a value or a key.
package pseudonym
