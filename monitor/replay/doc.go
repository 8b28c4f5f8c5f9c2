// Package replay lets the monitor vouch for the gateway: it re-evaluates
// every decision recorded in the audit log against the policy set that was
// in force at that point of the log, with cedar-go (through package policy),
// and reports each decision the policies would not have made.
//
// # What the log gives it
//
// The monitor never sees personal data nor the enclave's configuration. A
// `policy` entry carries everything a replay needs: the full text of every
// policy file, the digest of the set and the field schema (name, type,
// category and method of each field: what policies read and what decides
// which forms a field can take). Every access entry carries the caller, the
// purpose, justification and grant, the other policy inputs (subject country,
// jurisdiction and site, whether the caller is in the jurisdiction, hour and
// weekday) and the digest of the set that decided.
//
// # What is replayed
//
// A Replayer takes the entries in log order (Observe). A `policy` entry is
// loaded (policy.Load over its files, held in memory) and becomes the set in
// force once its files hash to the digest it records; if they do not, or do
// not parse, that is a disagreement, and every later decision is reported as
// unverifiable until a good policy entry comes. For the other entries:
//
//   - a read (`decision`) is decided again with Set.Decide and
//     pseudonym.Supports; each logged field must have been released in a
//     form no more revealing than the form the policies allow (raw >
//     pseudonym > generalised > masked > withheld). Less revealing is fine:
//     the gateway logs `withheld` for a field the record lacks, or a value
//     that could not take its form.
//   - a `write`, `erase`, `transfer` (the entry that decides it; the ledger
//     entry that ends a stream decides nothing) or `reidentify` that was
//     allowed must be allowed by Set.Allowed with the resource the gateway
//     asks about: the subject's record for write, erase and transfer, the
//     released field for reidentify. A denial releases nothing and is not
//     checked: a gateway stricter than its policies harms no one.
//   - every access entry must name the digest of the set in force, and its
//     actor type must be the one its roles give (policy.PrincipalType).
//
// The gateway logs a new set before it puts it in force, so a request
// decided just before a reload may be logged just after it, naming the
// previous set. Such an entry is replayed against the previous set, without
// a disagreement, when its time is within PreviousSetGrace of the policy
// entry; later, it is a "digest" disagreement.
//
// # Cost and state
//
// Set.Decide and Set.Allowed memoise their Cedar evaluations, so replaying
// a read costs about what a memoised Decide of its fields costs, a few
// microseconds, and loading a policy entry (parsing the set) under a
// millisecond (BenchmarkReplay).
// The Replayer's state is the policy entry in force and its index: Snapshot
// and Restore carry it across restarts.
package replay
