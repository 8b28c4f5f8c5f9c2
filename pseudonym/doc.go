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
// Transform runs on every field of every record a transfer exports, so its
// common paths do not allocate beyond the returned value: the released JSON
// is built by appending into a stack buffer (tokens, SIV tokens, age bands,
// years and IPv4 networks need no JSON escaping; other strings are copied
// as they are unless json.Marshal would escape something, in which case it
// writes them), and the common forms of input (string literals without
// escapes, YYYY-MM-DD dates, dotted IPv4 addresses, compact
// {"lat":…,"lon":…}) are decoded by hand, everything else by encoding/json,
// time and net/netip as before. The tests keep the earlier implementation as
// an oracle and check, on tables and under fuzzing, that every output byte
// and error is unchanged: tokens are joined on by recipients.
//
// HMAC tokens use crypto/hmac, which already keeps the inner and outer
// SHA-256 states of a key after the first Reset and restores them with
// UnmarshalBinary instead of hashing the padded key again; each scope keeps
// a pool of such instances, so a token of a value of up to 55 bytes costs
// two SHA-256 blocks and no
// allocation.
//
// The package is pure: keys and the current time are passed in, it does no
// I/O and keeps no global state. Every type is safe for concurrent use. Error
// messages name fields and forms, never a value or a key.
package pseudonym
