package incident

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// migrations is the ordered schema history: element i holds the statements
// that bring the database from version i to version i+1. Append only; never
// edit a migration that has shipped. Times are unix microseconds, UTC, 0 for
// none.
func migrations() [][]string {
	return [][]string{
		// 1: the first schema.
		{
			// Key/value state of the monitor's components (follower, replay, witness).
			`CREATE TABLE state (
				key     TEXT    NOT NULL PRIMARY KEY,
				value   BLOB    NOT NULL,
				updated INTEGER NOT NULL
			) STRICT`,
			// Incidents; evidence is a JSON array of log indexes.
			`CREATE TABLE incidents (
				id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
				key        TEXT    NOT NULL,
				rule       TEXT    NOT NULL,
				severity   TEXT    NOT NULL CHECK (severity IN ('info','low','medium','high','critical')),
				title      TEXT    NOT NULL,
				detail     TEXT    NOT NULL,
				evidence   TEXT    NOT NULL,
				first_seen INTEGER NOT NULL,
				last_seen  INTEGER NOT NULL,
				count      INTEGER NOT NULL,
				state      TEXT    NOT NULL CHECK (state IN ('open','acknowledged','resolved')),
				state_by   TEXT    NOT NULL,
				state_note TEXT    NOT NULL,
				state_at   INTEGER NOT NULL,
				created    INTEGER NOT NULL
			) STRICT`,
			// At most one live (open or acknowledged) incident per dedup key.
			`CREATE UNIQUE INDEX incidents_live_key ON incidents (key)
				WHERE key <> '' AND state IN ('open','acknowledged')`,
			`CREATE INDEX incidents_state ON incidents (state, id)`,
			// Webhook outbox: one row per incident and target; incident is
			// the JSON of the incident when it was raised.
			`CREATE TABLE outbox (
				id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
				incident_id  INTEGER NOT NULL REFERENCES incidents (id),
				target       TEXT    NOT NULL,
				incident     TEXT    NOT NULL,
				created      INTEGER NOT NULL,
				attempts     INTEGER NOT NULL DEFAULT 0,
				next_attempt INTEGER NOT NULL,
				last_error   TEXT    NOT NULL DEFAULT '',
				delivered    INTEGER NOT NULL DEFAULT 0
			) STRICT`,
			`CREATE INDEX outbox_pending ON outbox (target, id) WHERE delivered = 0`,
			`CREATE INDEX outbox_incident ON outbox (incident_id)`,
			// Daily counters.
			`CREATE TABLE counts (
				day       TEXT    NOT NULL,
				dimension TEXT    NOT NULL,
				key       TEXT    NOT NULL,
				n         INTEGER NOT NULL,
				PRIMARY KEY (day, dimension, key)
			) STRICT`,
			// Checkpoints verified, one row per verification.
			`CREATE TABLE checkpoints (
				id          INTEGER NOT NULL PRIMARY KEY,
				origin      TEXT    NOT NULL,
				size        INTEGER NOT NULL,
				hash        BLOB    NOT NULL,
				signed      BLOB    NOT NULL,
				verified_at INTEGER NOT NULL,
				cosigned    INTEGER NOT NULL
			) STRICT`,
			`CREATE INDEX checkpoints_verified ON checkpoints (verified_at)`,
			// Probes; log_index is NULL until the probe's entry is found.
			`CREATE TABLE probes (
				id         TEXT    NOT NULL PRIMARY KEY,
				started    INTEGER NOT NULL,
				status     INTEGER NOT NULL,
				log_index  INTEGER,
				request_id TEXT    NOT NULL,
				outcome    TEXT    NOT NULL CHECK (outcome IN ('pending','passed','control_failure','log_omission','error')),
				detail     TEXT    NOT NULL,
				finished   INTEGER NOT NULL
			) STRICT`,
			`CREATE INDEX probes_started ON probes (started)`,
			`CREATE INDEX probes_pending ON probes (started) WHERE outcome = 'pending'`,
		},
	}
}

// migrate brings the database up to len(ms) in one transaction, recording
// each applied migration in schema_version. The writer's transactions are
// BEGIN IMMEDIATE, so two processes opening the same file apply them once.
func migrate(ctx context.Context, w *sql.DB, ms [][]string, now time.Time) (err error) {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	const create = `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d)", current, len(ms))
	}
	for v := current + 1; v <= len(ms); v++ {
		for i, stmt := range ms[v-1] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d, statement %d: %w", v, i+1, err)
			}
		}
		const record = `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`
		if _, err := tx.ExecContext(ctx, record, v, now.UnixMicro()); err != nil {
			return fmt.Errorf("record migration %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// SchemaVersion is the schema version this code creates and reads.
const SchemaVersion = 1
