// Package incident is the storage and notification layer of clover monitor:
// its own SQLite database of incidents, webhook outbox, probes, checkpoints,
// daily counters and follower state, the notifier that delivers the outbox
// to webhooks, and the HTTP API through which operators read and handle
// incidents.
//
// Nothing stored here is personal data: audit-log entries carry none, and
// the package stores what it is given (rule names, titles written by the
// rules, log indexes, counters, checkpoints).
//
// # Database
//
// Open creates the file with mode 0600 and runs it as Clover's embedded store
// does (store/sqlite, through the pure-Go modernc.org/sqlite): WAL,
// synchronous=FULL, a busy timeout, one writer connection that serialises
// writes with BEGIN IMMEDIATE transactions, and a pool of read-only
// connections. The schema is versioned in a schema_version table; Open
// applies missing migrations in one transaction and refuses a file newer
// than the code. Times are unix microseconds, UTC.
//
// # Commit: one transaction per chunk of log
//
// The monitor verifies a chunk of log entries, derives from it the
// follower's new state, incidents, counters, checkpoints and probe results,
// and hands them to Commit as one Batch. Commit validates the whole batch
// first (any invalid item fails it with ErrInvalid) and stores it in one
// transaction, so after a crash the follower state and what was derived from
// the entries it covers are both stored or both absent: the monitor resumes
// from the last committed state and no incident is lost or raised twice.
//
// Incidents are deduplicated by Key: while an incident with the same Key is
// open or acknowledged (a unique partial index enforces at most one), raising
// it again updates it — LastSeen, Count, Evidence appended and bounded to
// the latest MaxEvidence log indexes, Title and Detail replaced, Severity
// raised if higher. Once resolved, the same Key opens a new incident. States
// move open → acknowledged → resolved, or open → resolved (Transition);
// anything else is ErrInvalidTransition.
//
// # Webhooks: the outbox
//
// For every incident Commit creates (not for deduplicating updates), it puts
// one row per webhook target (WithTargets) in the outbox table in the same
// transaction. A Notifier delivers the rows: one worker per target, so a
// slow target delays no other; within a target, oldest due first. A 2xx answer
// marks the row delivered with the time; any other answer or a network
// error is retried after an exponential backoff with jitter (1 s, 2 s, 4 s …
// capped at 5 min, each plus up to a quarter more), forever. Rows are in the
// database, so deliveries pending when the monitor stops are sent by the
// next Notifier. After Commit created incidents, the caller calls Wake so
// that they go out at once rather than at the next poll. Delivery is at
// least once: a receiver drops repeats by the delivery ID.
//
// A delivery is an HTTP POST with Content-Type application/json and this
// body (times RFC 3339, UTC; the incident as it was when raised):
//
//	{
//	  "id": 42,                      // the incident's ID
//	  "delivery": 1337,              // the outbox row's ID, the same on every retry
//	  "incident": {
//	    "id": 42, "key": "bulk_access/alice", "rule": "bulk_access", "severity": "high",
//	    "title": "...", "detail": "...", "evidence": [1001, 1002],
//	    "first_seen": "2026-01-02T03:04:05.123456Z", "last_seen": "...", "count": 1,
//	    "state": "open",
//	    "state_by": "...", "state_note": "...", "state_at": "...",   // omitted until a transition
//	    "created": "..."
//	  }
//	}
//
// and two headers:
//
//	Clover-Delivery: 1337
//	Clover-Signature: t=1767323045,v1=5f0c…(64 hex digits)
//
// where t is the sending time in unix seconds and v1 the lowercase hex
// HMAC-SHA256, keyed with the target's secret, of the bytes of t, a full stop
// and the raw body: HMAC(secret, "1767323045." + body). A receiver recomputes
// it over the body as received, compares in constant time, and rejects a t
// more than 5 minutes from its clock, which bounds replays; VerifySignature
// does all of this. Secrets have at least 16 bytes (ValidateTarget).
//
// # HTTP API
//
// Store.Handler serves, after the caller's authentication function named the
// operator (401 otherwise):
//
//	GET  /v1/incidents?state=&severity=&rule=&limit=&after_id=   {"incidents":[...]}
//	GET  /v1/incidents/{id}                                      {"incident":{...}}
//	POST /v1/incidents/{id}/ack      body {"note":"..."}         {"incident":{...}}
//	POST /v1/incidents/{id}/resolve  body {"note":"..."}         {"incident":{...}}
//	GET  /v1/probes?limit=                                       {"probes":[...]}
//
// Incidents are listed newest first; limit is 1 to 1000 (default 100) and
// after_id continues a listing with the incidents whose ID is below it. The
// body of ack and resolve is optional; the note has at most 2000
// characters. A probe is {"id","started","status","log_index" (null until
// found),"request_id","outcome","detail","finished" (omitted while pending)}.
// Errors are {"error":{"code":"...","message":"..."}} with status 400
// (bad_request: a malformed or unknown query parameter, a malformed body or
// an unknown JSON field), 401 (unauthorized), 404 (not_found), 405
// (method_not_allowed, with Allow), 409 (invalid_transition) or 500.
package incident
