// Package transfer implements cross-border transfers: records sent from the
// enclave to an approved destination outside it, transformed for that
// destination, checked for re-identification risk and accounted for in a
// ledger entry.
//
// It has no clock (the time is passed in), reads no configuration files,
// and does no I/O besides the io.Writer an Exporter writes to and a Spool's
// spill file (package spill), a temporary file sealed under a key that
// exists only in memory. The pieces are:
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
//   - Spool: a transfer's rows between its two passes, sealed on disk, with
//     their group counts.
//   - Exporter: NDJSON or CSV to an io.Writer, hashing the exact bytes sent
//     (SHA-256) for the ledger.
//
// # Two-pass k-anonymity, one read of the store
//
// A record may be released only if its quasi-identifier tuple, as
// transformed for the destination (an age band rather than a birth date, a
// grid cell rather than coordinates), is shared by at least k released
// records. Whether a record is kept thus depends on records that come after
// it, yet the export is a stream whose memory must stay flat, and a refusal
// (more than MaxSuppressed of the records would be suppressed) must happen
// before the first byte is sent. The export therefore makes two passes, the
// first over the store and the second over a Spool:
//
//  1. Transform each selected record (Plan.Transform) and add its row to
//     the Spool, which counts its tuple (Plan.Quasi) in a Grouper and
//     appends the row to its spill file: sealed with AES-256-GCM in chunks
//     of 64 KiB under a random key held only in memory, created 0600 and
//     unlinked at once where the system allows, removed by Close. The
//     Grouper's memory is O(distinct tuples), not O(rows): a tuple of
//     generalised values has few distinct values by design. At the end,
//     Spool.Suppressed and Refuse decide whether the transfer may go ahead
//     at all, and the daily quota is checked against the rows to be sent.
//  2. Spool.Replay streams the rows back, in the order added, and writes to
//     the Exporter those whose tuple occurs at least k times. A spill file
//     altered on disk fails the replay (spill.ErrCorrupt) before any
//     altered row is written.
//
// The store is thus read and decrypted once, and the counts and the rows
// sent come from one snapshot of it: a record that appears or changes
// during the export is either in both or in neither.
//
// Plan.TransformQuasi transforms the quasi-identifiers alone, as Transform
// would; Grouper.Keep and KeepRaw answer from the counts for a second pass
// made some other way, and a tuple never counted counts as zero, so an
// error is always towards suppression.
//
// KAnonymity is the same check over an in-memory slice, written
// independently (by sorting) so that each can test the other.
package transfer
