// Package witness is the monitor's C2SP tlog-witness: it cosigns the
// checkpoints of the logs it is configured to watch (Clover's audit log)
// after checking that each one extends the last checkpoint it cosigned for
// that log, so that the log cannot show one history to the monitor and
// another to anyone else without a witness signing both.
//
// # Protocol
//
// Witness.Handler serves POST /add-checkpoint as specified by
// https://c2sp.org/tlog-witness: the body is "old <size>\n", up to 63
// base64 consistency-proof hashes one a line, an empty line and the signed
// checkpoint; the answer is one cosignature line (https://c2sp.org/tlog-cosignature,
// cosignature/v1 with Ed25519), or a status the log's client acts on:
// 404 unknown origin, 403 no valid log signature, 400 old size beyond the
// checkpoint or a malformed request, 409 with a text/x.tlog.size body when
// the old size is not the size of the latest cosigned checkpoint, 409 when
// a checkpoint of the same size has another root hash (a fork), 422 when
// the consistency proof does not verify. Tessera's appender, configured with
// a witness policy naming Key.CosignerVerifierKey, is such a client.
//
// Witness.Cosign is the same check for a checkpoint the monitor has fetched
// and verified itself, with the old size implied by the witness's state.
//
// # State
//
// For each origin the witness keeps only the latest checkpoint it cosigned,
// in one JSON file replaced atomically (internal/atomicfile: synced temporary
// file, rename, synced directory). Checking the old size against that state
// and persisting the new checkpoint happen under one lock per origin, and the
// new state is durable before the cosignature is returned: a witness that
// crashes and restarts can never cosign a checkpoint that contradicts one it
// has already cosigned. A state file that does not parse, or whose
// checkpoints do not carry both the log's signature and this witness's
// cosignature, stops New: it is never silently reset, since a reset would
// let the log roll the witness back.
//
// # Keys
//
// The witness's key is one Ed25519 key in a 0600 file, in the note private
// key form ("PRIVATE+KEY+<name>+<hash>+<key>"). It makes cosignature/v1
// signatures (vkey type 0x04, what a tessera witness policy names) and plain
// note signatures (type 0x01) for the monitor's reports. The two uses share
// the key, so the report signer refuses to sign any text that begins with
// "cosignature/": a report can never be made to pass for a cosignature.
// Readers of reports must likewise reject report texts with that prefix.
//
// Cosignatures carry the time of the witness's clock (New's now), which
// tests control; the cosignature/v1 message is built here for that reason,
// and tests check it byte for byte against transparency-dev/formats/note,
// whose signer reads the system clock itself.
package witness
