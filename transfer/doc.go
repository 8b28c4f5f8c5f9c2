// Package transfer implements cross-border transfers: records sent from the
// enclave to an approved destination outside it, transformed for that
// destination, checked for re-identification risk and accounted for in a
// ledger entry.
//
// It is pure: no clock (the time is passed in), no I/O besides the io.Writer
// an Exporter writes to, no configuration files. The pieces are:
//
//   - Destination: an approved destination as configured (country, legal
//     basis, the fields or categories it may receive and in which form, its
//     quasi-identifiers, the minimum group size k, the fraction of records
//     that may be suppressed, a daily row quota). ValidateAll rejects a
//     configuration that would send data somewhere without a legal basis,
//     raw values outside the EEA, unknown fields or forms a field cannot
//     take. Defaults gives the two example destinations.
//   - Plan: what one transfer request resolves to: the columns sent and the
//     form of each, or a *FieldError listing every requested field the
//     destination may not receive (the gateway answers 422 before sending a
//     byte). Plan.Transform turns a stored record into an exported Row: the
//     subject identifier becomes a token scoped to the destination, so two
//     destinations cannot join their data on it.
//   - KAnonymity, Grouper and Refuse: the re-identification risk check.
//   - Exporter: NDJSON or CSV to an io.Writer, hashing the exact bytes sent
//     (SHA-256) for the ledger.
//
// # Two-pass k-anonymity
//
// A record may be released only if its quasi-identifier tuple, as
// transformed for the destination (an age band rather than a birth date, a
// grid cell rather than coordinates), is shared by at least k released
// records. Whether a record is kept thus depends on records that come after
// it, yet the export is a stream whose memory must stay flat, and a refusal
// (more than MaxSuppressed of the records would be suppressed) must happen
// before the first byte is sent. The exporter therefore makes two passes
// over the selected records:
//
//  1. Transform each record's quasi-identifiers only (Plan.TransformQuasi)
//     and count the tuples in a Grouper. Its memory is O(distinct tuples), not O(rows): a tuple of
//     generalised values has few distinct values by design. At the end,
//     Grouper.Suppressed and Refuse decide whether the transfer may go ahead
//     at all, and the daily quota is checked against the rows to be sent.
//  2. Transform each record fully (Plan.Transform) and emit it only if
//     Grouper.KeepRaw(Plan.Quasi(row)) says its tuple occurs at least k
//     times.
//
// Transforms are deterministic for a given key set, destination and time
// (tokens are keyed hashes, generalisations are functions of the value and
// the time), so both passes see the same tuples. A record that appears or
// changes between the passes has a tuple the first pass may not have
// counted; Keep then answers from the first pass's counts, and a tuple never
// seen counts as zero, so the error is always towards suppression. Reading
// both passes from one snapshot avoids the question altogether.
//
// KAnonymity is the same check over an in-memory slice, written
// independently (by sorting) so that each can test the other.
package transfer
