package subjectindex

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// formatVersion is the file's format, kept in SQLite's user_version:
//
//	0: a column per value, roles and fields as JSON text
//	1: a column per value, roles and fields as blobs of appendRoles and
//	   appendFields
//	2: log index, subject and a blob of appendRow
const formatVersion = 2

// ErrNewerFormat is returned by Open for a file written by a later version
// of Clover, which this one cannot read.
var ErrNewerFormat = errors.New("subjectindex: the file is in a newer format")

// convertBatch is how many rows of an old file migrate converts at a time.
const convertBatch = 8192

// migrate brings the file to formatVersion, in one transaction: it creates
// the tables of a new file, and converts the rows of a file of an earlier
// format in place (into a new table that replaces the old one), so that
// List returns the items it returned before. An interrupted conversion
// leaves the file as it was. The indexes are made afterwards, by Open.
func (x *Index) migrate(ctx context.Context) (err error) {
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("subjectindex: open %s: begin: %w", x.path, err)
	}
	defer func() {
		if err != nil {
			if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				err = errors.Join(err, fmt.Errorf("subjectindex: rollback: %w", rerr))
			}
		}
	}()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("subjectindex: open %s: read the format: %w", x.path, err)
	}
	switch {
	case version == formatVersion:
		return tx.Commit()
	case version > formatVersion:
		return fmt.Errorf("%w: %s is in format %d, this version reads %d", ErrNewerFormat, x.path, version, formatVersion)
	case version < 0:
		return fmt.Errorf("subjectindex: open %s: unknown format %d", x.path, version)
	}
	var old int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'accesses'`).Scan(&old); err != nil {
		return fmt.Errorf("subjectindex: open %s: %w", x.path, err)
	}
	if old > 0 {
		// The old table's indexes go with it; Open makes the new ones.
		if _, err := tx.ExecContext(ctx, `ALTER TABLE accesses RENAME TO accesses_old`); err != nil {
			return fmt.Errorf("subjectindex: convert %s: %w", x.path, err)
		}
	}
	if _, err := tx.ExecContext(ctx, tables); err != nil {
		return fmt.Errorf("subjectindex: create tables in %s: %w", x.path, err)
	}
	if old > 0 {
		start := time.Now()
		x.log.Info("converting the subject access index to the current format; this takes about 9 s per million rows",
			"path", x.path, "from_format", version, "to_format", formatVersion)
		rows, err := convert(ctx, tx, version)
		if err != nil {
			return fmt.Errorf("subjectindex: convert %s (remove it and run `clover log reindex` to rebuild it from the log): %w", x.path, err)
		}
		x.log.Info("converted the subject access index", "path", x.path, "rows", rows,
			"took", time.Since(start).Round(time.Millisecond).String())
		if _, err := tx.ExecContext(ctx, `DROP TABLE accesses_old`); err != nil {
			return fmt.Errorf("subjectindex: convert %s: %w", x.path, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, formatVersion)); err != nil {
		return fmt.Errorf("subjectindex: open %s: write the format: %w", x.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("subjectindex: open %s: commit: %w", x.path, err)
	}
	return nil
}

// convert copies the rows of accesses_old (of format version) into
// accesses, in log order, convertBatch at a time, interning their words as
// Add does. The words of a file of format 1 keep their ids.
func convert(ctx context.Context, tx *sql.Tx, version int) (rows int64, err error) {
	d, err := loadWords(ctx, tx, emptyDict)
	if err != nil {
		return 0, err
	}
	decode := decodeV0
	if version == 1 {
		decode = func(roles, fields []byte, it *Item) error { return decodeV1(d, roles, fields, it) }
	}
	after := int64(-1)
	for {
		items, err := readOldRows(ctx, tx, after, decode)
		if err != nil || len(items) == 0 {
			return rows, err
		}
		if d, err = insert(ctx, tx, d, items); err != nil {
			return rows, err
		}
		rows += int64(len(items))
		after = int64(items[len(items)-1].Index)
	}
}

// decodeV0 decodes the roles and fields of a row of format 0: JSON.
func decodeV0(roles, fields []byte, it *Item) error {
	if err := json.Unmarshal(roles, &it.Roles); err != nil {
		return fmt.Errorf("roles: %w", err)
	}
	if err := json.Unmarshal(fields, &it.Fields); err != nil {
		return fmt.Errorf("fields: %w", err)
	}
	return nil
}

// decodeV1 decodes the roles and fields of a row of format 1: blobs of
// appendRoles and appendFields, with the words d holds (all of the file's:
// the conversion holds the write lock).
func decodeV1(d *dict, roles, fields []byte, it *Item) (err error) {
	if it.Roles, err = decodeRoles(roles, d); err != nil {
		return fmt.Errorf("roles: %w", err)
	}
	if it.Fields, err = decodeFields(fields, d); err != nil {
		return fmt.Errorf("fields: %w", err)
	}
	return nil
}

// readOldRows reads up to convertBatch rows of accesses_old after log
// index after, their roles and fields decoded with decode. Formats 0 and 1
// have the same columns.
func readOldRows(ctx context.Context, tx *sql.Tx, after int64, decode func(roles, fields []byte, it *Item) error) ([]Item, error) {
	rows, err := tx.QueryContext(ctx, `SELECT log_index, subject, time, kind, decision, actor_type, roles, country, purpose, fields, status
		FROM accesses_old WHERE log_index > ? ORDER BY log_index LIMIT ?`, after, convertBatch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []Item
	for rows.Next() {
		var (
			idx, micros   int64
			roles, fields []byte
			it            Item
		)
		if err := rows.Scan(&idx, &it.Subject, &micros, &it.Kind, &it.Decision, &it.ActorType, &roles, &it.Country, &it.Purpose, &fields, &it.Status); err != nil {
			return nil, err
		}
		it.Index, it.Time = uint64(idx), time.UnixMicro(micros).UTC()
		if err := decode(roles, fields, &it); err != nil {
			return nil, fmt.Errorf("item %d: %w", idx, err)
		}
		items = append(items, it)
	}
	return items, rows.Err()
}
