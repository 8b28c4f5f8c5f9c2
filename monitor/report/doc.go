// Package report writes and signs the independent monitor's periodic
// compliance report, and checks such a report for a regulator.
//
// A report covers one period [From, To) of one audit log. The monitor
// fills a [Data] from its own database; [JSON] renders it for machines and
// [HTML] renders it for people, as one self-contained page (no external
// style sheets, scripts or fonts) whose charts are inline SVG drawn here.
// Both renderings are pure functions of the Data: the same Data gives the
// same bytes, because map keys are sorted, incidents are ordered by ID,
// probes by start time, and every time is written in UTC. That is what
// lets the monitor sign the bytes and a regulator check them later.
//
// The signature is a C2SP signed note (golang.org/x/mod/sumdb/note) made
// with the monitor's Ed25519 key. Its text names the report rather than
// containing it:
//
//	clover-monitor-report/v1
//	<format: json or html>
//	<hex SHA-256 of the report bytes>
//	<from, RFC 3339>
//	<to, RFC 3339>
//	<log origin>
//
// [Sign] makes that note; [Verify] checks it against the monitor's
// verifier key and the report bytes, and says which of the three things
// that can go wrong went wrong: the signature ([SignatureError]), the
// digest ([DigestError]) or the file itself ([ErrNotSignature]).
// [Parse] reads a JSON report back, strictly, for tools that check one.
package report
