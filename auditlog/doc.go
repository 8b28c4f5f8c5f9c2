// Package auditlog is Clover's tamper-evident audit log: every decision,
// write, erasure, re-homing, re-identification, policy change and transfer
// is an entry in an append-only Merkle tree log in the C2SP tlog-tiles
// format, with checkpoints signed as C2SP signed notes. No response leaves
// the gateway before its entry is durable (fail closed).
//
// # Design
//
// One Merkle leaf per request cannot be made durable within the gateway's
// latency budget: integrating a batch into the tree costs milliseconds and
// must not be done per request. So the log has two stages:
//
//  1. A group-commit journal assigns the order. [Log.Append] queues the
//     entry; one writer goroutine writes everything queued as one group to
//     an append-only file, calls fdatasync once for the group, and only then
//     hands each waiter its index. The entry is durable when Append returns.
//     A write or sync error fails the log closed: nothing of that group is
//     acknowledged and every later Append fails with [ErrUnavailable].
//     The journal is written in segments (Options.JournalSegmentBytes); a
//     segment is deleted once the tree and a published checkpoint cover it.
//  2. A feeder goroutine adds journalled entries, strictly in journal order,
//     to a tessera POSIX log, which integrates them into the tree and
//     publishes a signed checkpoint every few hundred milliseconds. The
//     index tessera assigns to each entry must equal its journal index;
//     a mismatch is a broken invariant and fails the log closed.
//
// At [Open], entries the journal holds beyond the tree's integrated size are
// fed again before new appends are accepted, so every acknowledged entry
// reaches the tree under the index it was acknowledged with. See docs/audit-log.md
// for the entry and journal formats and the trade-offs.
//
// The verifier ([Verify], [VerifyEntry]) needs nothing of the enclave: a
// directory or URL serving the log, and the log's note verifier key.
// The entry encoding, the Merkle code and the parsers are pure functions.
package auditlog
