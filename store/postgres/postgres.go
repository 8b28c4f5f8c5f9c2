// Package postgres is Clover's store.Store on PostgreSQL, or any database
// that speaks its protocol, through pgx v5 and its connection pool.
//
// # Layout
//
// Each site has two schemas of its own, named from the site name (which must
// match ^[a-z][a-z0-9_-]{0,40}$; '-' becomes '_'):
//
//	clover_<site>        table records(subject, ciphertext, updated)
//	clover_<site>_keys   table keys(subject, wrapped, kek_id, handle)
//
// Data keys live apart from the records they protect, so that a dump of the
// records schema holds no key and privileges can be granted per schema.
// Bytes are bytea; Updated is timestamptz, which keeps microseconds exactly.
// Each schema records the site it belongs to (table clover_owner), and Open
// refuses a schema that belongs to another site, so that names which map to
// the same schema ("ie-dublin" and "ie_dublin", or site "x"'s keys schema
// and site "x-keys"'s records schema) cannot share data.
//
// A deleted key's row stays in the table's dead tuples and in the server's
// WAL until VACUUM and WAL recycling reclaim them; erasure is complete on disk
// only then, and in backups only when they expire.
//
// # Schema
//
// Each schema has a schema_version table with one row per applied migration.
// Open applies the missing migrations in order, in one transaction that holds
// a transaction-level advisory lock per schema (pg_advisory_xact_lock), so
// processes that start together apply them once. The current schema version
// is 2 for both schemas.
//
// Queries are prepared and cached per connection by pgx.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cloverenclave/clover/store"
)

// Store is one site's store.Store in PostgreSQL. It is safe for concurrent
// use.
type Store struct {
	pool    *pgxpool.Pool
	records string // records schema name, unquoted
	keys    string // keys schema name, unquoted
	q       queries
}

var _ store.Store = (*Store)(nil)

// queries holds the SQL of each operation, with the site's schemas quoted in.
type queries struct {
	putRecord, getRecord, deleteRecord string
	putKey, getKey, deleteKey          string
	scanRecords, scanKeys              string
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string, as pgx accepts) and opens site's store, creating its schemas and
// applying migrations as needed.
func Open(ctx context.Context, dsn, site string) (*Store, error) {
	records, keys, err := schemaNames(site)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DSN: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool, site, records, keys); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: site %s: %w", site, err)
	}
	return &Store{pool: pool, records: records, keys: keys, q: newQueries(records, keys)}, nil
}

// schemaNames validates site and returns its records and keys schema names.
func schemaNames(site string) (records, keys string, err error) {
	if !validSite(site) {
		return "", "", fmt.Errorf("postgres: invalid site name %q: want 1-41 characters of [a-z0-9_-], starting with a letter", site)
	}
	records = "clover_" + strings.ReplaceAll(site, "-", "_")
	return records, records + "_keys", nil
}

// validSite reports whether site matches ^[a-z][a-z0-9_-]{0,40}$.
func validSite(site string) bool {
	if len(site) < 1 || len(site) > 41 {
		return false
	}
	for i, c := range []byte(site) {
		switch {
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func newQueries(records, keys string) queries {
	r := pgx.Identifier{records, "records"}.Sanitize()
	k := pgx.Identifier{keys, "keys"}.Sanitize()
	return queries{
		putRecord: `INSERT INTO ` + r + ` (subject, ciphertext, updated) VALUES ($1, $2, $3)
			ON CONFLICT (subject) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, updated = EXCLUDED.updated`,
		getRecord:    `SELECT ciphertext, updated FROM ` + r + ` WHERE subject = $1`,
		deleteRecord: `DELETE FROM ` + r + ` WHERE subject = $1`,
		// On conflict the no-op update locks the existing row and RETURNING
		// yields it, so concurrent first writes all get the one stored key.
		putKey: `INSERT INTO ` + k + ` (subject, wrapped, kek_id, handle) VALUES ($1, $2, $3, $4)
			ON CONFLICT (subject) DO UPDATE SET subject = EXCLUDED.subject
			RETURNING wrapped, kek_id, handle`,
		getKey:    `SELECT wrapped, kek_id, handle FROM ` + k + ` WHERE subject = $1`,
		deleteKey: `DELETE FROM ` + k + ` WHERE subject = $1`,
		// The subject column's collation is "C" (migration 2): comparison
		// and order are byte order, follow the primary key's index, and agree
		// between records and keys.
		scanRecords: `SELECT subject, ciphertext, updated FROM ` + r + ` WHERE subject > $1 ORDER BY subject LIMIT $2`,
		scanKeys:    `SELECT subject, wrapped, kek_id, handle FROM ` + k + ` WHERE subject > $1 ORDER BY subject LIMIT $2`,
	}
}

// Schemas returns the names of the site's records and keys schemas.
func (s *Store) Schemas() (records, keys string) {
	return s.records, s.keys
}

// Drop drops the site's two schemas and everything in them. It is meant for
// tests; the store is unusable afterwards except for Close.
func (s *Store) Drop(ctx context.Context) error {
	q := `DROP SCHEMA IF EXISTS ` + pgx.Identifier{s.records}.Sanitize() + `, ` +
		pgx.Identifier{s.keys}.Sanitize() + ` CASCADE`
	if _, err := s.pool.Exec(ctx, q); err != nil {
		return fmt.Errorf("postgres: drop schemas: %w", err)
	}
	return nil
}

// Close closes the connection pool, waiting for connections in use.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// PutRecord inserts or replaces r.Subject's record. It returns once the
// transaction is committed, so the write is as durable as the server's
// configuration makes commits.
func (s *Store) PutRecord(ctx context.Context, r store.Sealed) error {
	_, err := s.pool.Exec(ctx, s.q.putRecord, r.Subject, nonNil(r.Ciphertext), r.Updated.Truncate(time.Microsecond))
	if err != nil {
		return fmt.Errorf("postgres: put record: %w", err)
	}
	return nil
}

// GetRecord returns subject's record or store.ErrNotFound.
func (s *Store) GetRecord(ctx context.Context, subject string) (store.Sealed, error) {
	r := store.Sealed{Subject: subject}
	if err := s.pool.QueryRow(ctx, s.q.getRecord, subject).Scan(&r.Ciphertext, &r.Updated); err != nil {
		return store.Sealed{}, notFound("postgres: get record", err)
	}
	r.Updated = r.Updated.UTC()
	return r, nil
}

// DeleteRecord removes subject's record, or returns store.ErrNotFound.
func (s *Store) DeleteRecord(ctx context.Context, subject string) error {
	tag, err := s.pool.Exec(ctx, s.q.deleteRecord, subject)
	if err != nil {
		return fmt.Errorf("postgres: delete record: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete record: %w", store.ErrNotFound)
	}
	return nil
}

// PutKey stores k unless its subject already has a key, and returns the
// subject's key: k, or the one stored before. It is one atomic statement.
func (s *Store) PutKey(ctx context.Context, k store.Key) (store.Key, error) {
	got := store.Key{Subject: k.Subject}
	err := s.pool.QueryRow(ctx, s.q.putKey, k.Subject, nonNil(k.Wrapped), k.KEKID, nonNil(k.Handle)).
		Scan(&got.Wrapped, &got.KEKID, &got.Handle)
	if err != nil {
		return store.Key{}, fmt.Errorf("postgres: put key: %w", err)
	}
	return got, nil
}

// GetKey returns subject's key or store.ErrNotFound.
func (s *Store) GetKey(ctx context.Context, subject string) (store.Key, error) {
	k := store.Key{Subject: subject}
	if err := s.pool.QueryRow(ctx, s.q.getKey, subject).Scan(&k.Wrapped, &k.KEKID, &k.Handle); err != nil {
		return store.Key{}, notFound("postgres: get key", err)
	}
	return k, nil
}

// DeleteKey destroys subject's key, or returns store.ErrNotFound.
func (s *Store) DeleteKey(ctx context.Context, subject string) error {
	tag, err := s.pool.Exec(ctx, s.q.deleteKey, subject)
	if err != nil {
		return fmt.Errorf("postgres: delete key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete key: %w", store.ErrNotFound)
	}
	return nil
}

// notFound maps pgx.ErrNoRows to store.ErrNotFound and wraps other errors.
func notFound(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// nonNil returns b, or an empty slice if b is nil: pgx sends a nil slice as
// NULL, and the columns are NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// ScanRecords returns up to limit records after the subject after, in byte
// order of subject.
func (s *Store) ScanRecords(ctx context.Context, after string, limit int) ([]store.Sealed, error) {
	if limit <= 0 || limit > store.MaxScan {
		return nil, fmt.Errorf("postgres: scan records: limit %d outside 1..%d", limit, store.MaxScan)
	}
	rows, err := s.pool.Query(ctx, s.q.scanRecords, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: scan records: %w", err)
	}
	defer rows.Close()
	out := make([]store.Sealed, 0, limit)
	for rows.Next() {
		var r store.Sealed
		if err := rows.Scan(&r.Subject, &r.Ciphertext, &r.Updated); err != nil {
			return nil, fmt.Errorf("postgres: scan records: %w", err)
		}
		r.Updated = r.Updated.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: scan records: %w", err)
	}
	return out, nil
}

// ScanKeys returns up to limit keys after the subject after, in the same
// order as ScanRecords.
func (s *Store) ScanKeys(ctx context.Context, after string, limit int) ([]store.Key, error) {
	if limit <= 0 || limit > store.MaxScan {
		return nil, fmt.Errorf("postgres: scan keys: limit %d outside 1..%d", limit, store.MaxScan)
	}
	rows, err := s.pool.Query(ctx, s.q.scanKeys, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: scan keys: %w", err)
	}
	defer rows.Close()
	out := make([]store.Key, 0, limit)
	for rows.Next() {
		var k store.Key
		if err := rows.Scan(&k.Subject, &k.Wrapped, &k.KEKID, &k.Handle); err != nil {
			return nil, fmt.Errorf("postgres: scan keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: scan keys: %w", err)
	}
	return out, nil
}
