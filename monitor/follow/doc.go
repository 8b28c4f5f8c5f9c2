// Package follow follows Clover's audit log (a C2SP tlog-tiles log with
// signed checkpoints, see package auditlog) from outside the enclave and
// verifies it incrementally.
//
// A Follower keeps a State: the last signed checkpoint it accepted, and the
// compact Merkle range (RFC 6962) of the entries it has verified and
// delivered so far. Each Poll
//
//  1. fetches the log's checkpoint and opens it with the log's note verifier
//     key;
//  2. checks it against the accepted one: a smaller size is a rollback, the
//     same size with another root, or a larger size that a consistency proof
//     computed from the log's hash tiles does not confirm, is a fork;
//  3. reads the new entries bundle by bundle (partial bundles at the right
//     edge, falling back to the full bundle once it exists), appends their
//     leaf hashes to the compact range, and hands them to the caller in
//     chunks, each only once it is proven: the root of the range at the end
//     of the chunk (size K) must be the checkpoint's root if K is the
//     checkpoint's size, and otherwise be proven consistent with it by a
//     proof K -> N computed from the tiles.
//
// The tiles are never trusted: tlog.TileHashReader authenticates every tile
// it reads against the signed root before using a hash from it. So a
// follower that is handed rewritten bundles, tiles or checkpoints detects
// it, reports a *Violation and keeps its last good state.
//
// Each chunk carries the State after it, for the caller to persist together
// with whatever it derived from the chunk's entries, atomically: after a
// restart, New with that State continues exactly after the last entry the
// caller accepted, even in the middle of a bundle, with no duplicate and no
// gap.
//
// The per-entry cost is one leaf hash plus amortised compact-range work; a
// proof per chunk costs a few tile reads, which the follower caches within a
// poll.
package follow
