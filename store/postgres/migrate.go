package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema roles, recorded in each schema's clover_owner table.
const (
	roleRecords = "records"
	roleKeys    = "keys"
)

// recordsMigrations is the ordered schema history of a records schema:
// element i brings it from version i to version i+1. schema is the quoted
// schema name. Append only; never edit a migration that has shipped.
func recordsMigrations(schema string) []string {
	return []string{
		// 1: sealed records.
		`CREATE TABLE ` + schema + `.records (
			subject    text        PRIMARY KEY,
			ciphertext bytea       NOT NULL,
			updated    timestamptz NOT NULL
		)`,
		// 2: subjects compare and sort by bytes whatever the database's
		// locale, as in every backend, so that scans page in a known order.
		`ALTER TABLE ` + schema + `.records ALTER COLUMN subject TYPE text COLLATE "C"`,
	}
}

// keysMigrations is the ordered schema history of a keys schema, as
// recordsMigrations.
func keysMigrations(schema string) []string {
	return []string{
		// 1: wrapped data keys and audit-log handles.
		`CREATE TABLE ` + schema + `.keys (
			subject text  PRIMARY KEY,
			wrapped bytea NOT NULL,
			kek_id  text  NOT NULL,
			handle  bytea NOT NULL
		)`,
		// 2: byte order of subjects, as in the records schema.
		`ALTER TABLE ` + schema + `.keys ALTER COLUMN subject TYPE text COLLATE "C"`,
	}
}

// schemaPlan is one schema to bring up to date.
type schemaPlan struct {
	name       string // unquoted
	role       string
	migrations func(quoted string) []string
}

// migrate creates site's schemas if needed and applies their missing
// migrations, all in one transaction holding an advisory lock per schema.
func migrate(ctx context.Context, pool *pgxpool.Pool, site, records, keys string) (err error) {
	plans := []schemaPlan{
		{records, roleRecords, recordsMigrations},
		{keys, roleKeys, keysMigrations},
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, rollback(ctx, tx))
		}
	}()
	if err := lockSchemas(ctx, tx, records, keys); err != nil {
		return err
	}
	for _, p := range plans {
		if err := migrateSchema(ctx, tx, site, p); err != nil {
			return fmt.Errorf("migrate schema %s: %w", p.name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// lockSchemas takes the transaction-level advisory lock of each schema, in
// a fixed order so that two transactions never wait on each other in a
// cycle. The locks are released when the transaction ends.
func lockSchemas(ctx context.Context, tx pgx.Tx, schemas ...string) error {
	ids := make([]int64, len(schemas))
	for i, s := range schemas {
		ids[i] = lockID(s)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, id); err != nil {
			return fmt.Errorf("migrate: advisory lock: %w", err)
		}
	}
	return nil
}

// lockID is the advisory lock key that guards schema's migrations.
func lockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("clover/store/postgres/migrate:" + schema))
	return int64(h.Sum64())
}

func migrateSchema(ctx context.Context, tx pgx.Tx, site string, p schemaPlan) error {
	schema := pgx.Identifier{p.name}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if err := claim(ctx, tx, schema, site, p.role); err != nil {
		return err
	}
	const versionTable = `CREATE TABLE IF NOT EXISTS %s.schema_version (
		version    integer     PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`
	if _, err := tx.Exec(ctx, fmt.Sprintf(versionTable, schema)); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM `+schema+`.schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	migrations := p.migrations(schema)
	if current > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d)", current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+schema+`.schema_version (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("record migration %d: %w", v, err)
		}
	}
	return nil
}

// claim records that schema holds site's data of the given role, or checks
// that it already does: two site names that map to one schema must not
// share it.
func claim(ctx context.Context, tx pgx.Tx, schema, site, role string) error {
	const ownerTable = `CREATE TABLE IF NOT EXISTS %s.clover_owner (
		only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
		site     text    NOT NULL,
		role     text    NOT NULL
	)`
	if _, err := tx.Exec(ctx, fmt.Sprintf(ownerTable, schema)); err != nil {
		return fmt.Errorf("create clover_owner: %w", err)
	}
	insert := `INSERT INTO ` + schema + `.clover_owner (site, role) VALUES ($1, $2) ON CONFLICT (only_row) DO NOTHING`
	if _, err := tx.Exec(ctx, insert, site, role); err != nil {
		return fmt.Errorf("claim schema: %w", err)
	}
	var ownerSite, ownerRole string
	if err := tx.QueryRow(ctx, `SELECT site, role FROM `+schema+`.clover_owner`).Scan(&ownerSite, &ownerRole); err != nil {
		return fmt.Errorf("read schema owner: %w", err)
	}
	if ownerSite != site || ownerRole != role {
		return fmt.Errorf("schema holds the %s of site %q, not the %s of site %q", ownerRole, ownerSite, role, site)
	}
	return nil
}

func rollback(ctx context.Context, tx pgx.Tx) error {
	if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}
