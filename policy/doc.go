// Package policy decides, field by field, in which form a caller may see each
// field of a subject's record, with Cedar policies (cedar-go): deny by
// default, and a forbid always wins over a permit.
//
// # Entity model
//
// Principals are Employee::"<sub>" or, when the caller holds the role
// "service", Service::"<sub>", with attributes roles (Set<String>), country
// (String) and team (String, "" when none). Resources are Field::"<name>",
// child of Category::"<category>" (the field's category in the schema), with
// attributes name, category and type; non-field actions are asked about
// Subject::"*", a subject's record as a whole, or about a field. Actions are
// read_raw, read_pseudonym, read_generalised and read_masked (members of the
// group Action::"read"), write, erase, transfer, approve and reidentify.
// The context record holds purpose, justification, has_justification,
// subject_country, subject_jurisdiction (the enclave's name),
// subject_site, caller_in_jurisdiction (computed by the caller of this
// package), hour (UTC, 0-23), weekday ("Mon".."Sun") and grant. ModelSchema
// is the model in Cedar's schema language; docs/policy.md explains it at length.
//
// # Decisions
//
// Set.Decide returns, for each field, the most revealing form (raw >
// pseudonym > generalised > masked) that the policies permit and the field
// supports, or withheld, with the ids of the policies that decided it.
// Set.Allowed decides the other actions. A forbid policy whose evaluation
// fails counts as matching: the package fails closed.
//
// Decisions are fast: a Set indexes its policies by action and skips those
// whose principal or resource scope cannot match, and it memoises single
// decisions in a bounded, sharded cache keyed by everything a policy can
// read (principal type, sorted roles, country, team, the subject when a
// policy names a principal, the field's name, category and type, every
// context attribute, the action). A reload builds a new Set with an empty
// memo.
//
// # Loading and checking
//
// Load reads the *.cedar files of a directory in name order; a policy's id is
// its @id annotation or "<file>:<index>". Set.Digest identifies the files
// for the audit log, which can record their full text (Set.Files). Check
// type-checks the policies against the model with cedar-go's validator and
// checks entity ids and compared values against the field schema;
// CheckPurposes checks the purposes they name. Default is the built-in
// policy set (policy/default), and RunTests runs the *.test.yaml cases kept
// beside the policies.
package policy
