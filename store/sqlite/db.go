package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cloverenclave/clover/internal/sqlitedb"
)

// db is one SQLite file with its single writer connection and its pool of
// read-only connections.
type db struct {
	path   string
	writer *sql.DB
	reader *sql.DB
}

// openDB creates path (mode 0600) if needed, opens its writer and readers,
// and applies migrations. secureDelete makes SQLite overwrite deleted content
// with zeros.
func openDB(path string, migrations []string, secureDelete bool) (*db, error) {
	o := sqlitedb.Options{Synchronous: sqlitedb.Full, ForeignKeys: true, SecureDelete: secureDelete}
	writer, reader, err := sqlitedb.Open(path, readers, o)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	d := &db{path: path, writer: writer, reader: reader}
	if err := migrate(context.Background(), d.writer, migrations); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: migrate %s: %w", d.path, err), d.close())
	}
	return d, nil
}

// close closes the readers, then the writer (which checkpoints the WAL).
func (d *db) close() error {
	return sqlitedb.Close(d.writer, d.reader)
}

// checkpoint copies the WAL into the database file and truncates the WAL to
// zero bytes, waiting (up to the busy timeout) for readers to finish.
func (d *db) checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	err := d.writer.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", d.path, err)
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint %s: database busy", d.path)
	}
	return nil
}
