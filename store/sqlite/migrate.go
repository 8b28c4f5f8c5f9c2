package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// recordsMigrations is the ordered schema history of records.db: element i
// brings the file from version i to version i+1. Append only; never edit a
// migration that has shipped.
func recordsMigrations() []string {
	return []string{
		// 1: sealed records; updated is unix microseconds, UTC.
		`CREATE TABLE records (
			subject    TEXT    NOT NULL PRIMARY KEY,
			ciphertext BLOB    NOT NULL,
			updated    INTEGER NOT NULL
		) STRICT`,
	}
}

// keysMigrations is the ordered schema history of keys.db, as
// recordsMigrations.
func keysMigrations() []string {
	return []string{
		// 1: wrapped data keys and audit-log handles.
		`CREATE TABLE keys (
			subject TEXT NOT NULL PRIMARY KEY,
			wrapped BLOB NOT NULL,
			kek_id  TEXT NOT NULL,
			handle  BLOB NOT NULL
		) STRICT`,
	}
}

// migrate brings the database up to len(migrations) in one transaction,
// recording each applied migration in schema_version. The writer's
// transactions are BEGIN IMMEDIATE, so two processes opening the same file
// apply the migrations once.
func migrate(ctx context.Context, w *sql.DB, migrations []string) (err error) {
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(tx))
		}
	}()
	if err := applyMigrations(ctx, tx, migrations); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func applyMigrations(ctx context.Context, tx *sql.Tx, migrations []string) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if current > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d)", current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		const record = `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`
		if _, err := tx.ExecContext(ctx, record, v, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("record migration %d: %w", v, err)
		}
	}
	return nil
}

// schemaVersion returns the highest applied migration, 0 for a new file.
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
