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
//	0: table accesses, a column per value, roles and fields as JSON text
//	1: table accesses, a column per value, roles and fields as blobs of
//	   appendRoles and appendFields
//	2: table accesses, of log index, subject and a blob of appendRow
//	3: table access_rows, as accesses of format 2; and, in a file upgraded
//	   from format 0, 1 or 2, that file's table accesses, kept as it was:
//	   the legacy table, whose format the one row of table legacy holds
//
// Rows of formats 1 to 3 name their words by id in table words. Each table
// of rows has its by-epoch index (schema), on the same expressions.
const formatVersion = 3

// The tables of rows: rowsTable, which Add writes, and legacyTable, the
// rows of the file's earlier format, which stay where they were.
const (
	rowsTable   = "access_rows"
	legacyTable = "accesses"
)

// noLegacy is the legacy format of a file with no legacy table.
const noLegacy = -1

// ErrNewerFormat is returned by Open for a file written by a later version
// of Clover, which this one cannot read.
var ErrNewerFormat = errors.New("subjectindex: the file is in a newer format")

// legacySchema makes the table accesses of a file of format 0, 1 or 2 the
// legacy table: table legacy will hold its format, in its one row. The
// by-epoch index is there already, unless the file was written by the
// first version, whose index was of the whole pseudonym: then it is
// replaced, which reads the table once (but converts no row).
const legacySchema = `CREATE TABLE legacy (format INTEGER NOT NULL) STRICT;
DROP INDEX IF EXISTS accesses_by_subject;
CREATE INDEX IF NOT EXISTS accesses_by_epoch_subject ON accesses (log_index >> 16, substr(subject, 1, 16))`

// migrate brings the file to formatVersion, in one short transaction, and
// returns the format of its legacy table, or noLegacy. It creates the
// tables of a new file. It upgrades a file of an earlier format without
// reading or copying a row: the file's table accesses stays as it was, as
// the legacy table, which List reads in place beside access_rows and
// nothing writes any more, and table legacy records its format. Either
// way, an interrupted transaction leaves the file as it was. `clover log
// reindex` writes a new file, with no legacy table. (The previous version
// converted every row instead, before the server listened: 9 s per
// million rows.)
func (x *Index) migrate(ctx context.Context) (legacy int, err error) {
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("subjectindex: open %s: begin: %w", x.path, err)
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
		return 0, fmt.Errorf("subjectindex: open %s: read the format: %w", x.path, err)
	}
	switch {
	case version == formatVersion:
		if legacy, err = x.readLegacy(ctx, tx); err != nil {
			return 0, err
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("subjectindex: open %s: commit: %w", x.path, err)
		}
		return legacy, nil
	case version > formatVersion:
		return 0, fmt.Errorf("%w: %s is in format %d, this version reads %d", ErrNewerFormat, x.path, version, formatVersion)
	case version < 0:
		return 0, fmt.Errorf("subjectindex: open %s: unknown format %d", x.path, version)
	}
	old, err := hasTable(ctx, tx, legacyTable)
	if err != nil {
		return 0, fmt.Errorf("subjectindex: open %s: %w", x.path, err)
	}
	legacy = noLegacy
	if old {
		legacy = version
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return 0, fmt.Errorf("subjectindex: create tables in %s: %w", x.path, err)
	}
	if legacy != noLegacy {
		if _, err := tx.ExecContext(ctx, legacySchema); err != nil {
			return 0, fmt.Errorf("subjectindex: open %s: keep the rows of format %d: %w", x.path, legacy, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO legacy (format) VALUES (?)`, legacy); err != nil {
			return 0, fmt.Errorf("subjectindex: open %s: keep the rows of format %d: %w", x.path, legacy, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, formatVersion)); err != nil {
		return 0, fmt.Errorf("subjectindex: open %s: write the format: %w", x.path, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("subjectindex: open %s: commit: %w", x.path, err)
	}
	return legacy, nil
}

// readLegacy returns the format of the legacy table of a file of
// formatVersion, or noLegacy if it has none.
func (x *Index) readLegacy(ctx context.Context, tx *sql.Tx) (int, error) {
	ok, err := hasTable(ctx, tx, "legacy")
	if err != nil {
		return 0, fmt.Errorf("subjectindex: open %s: %w", x.path, err)
	}
	if !ok {
		return noLegacy, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT format FROM legacy LIMIT 2`)
	if err != nil {
		return 0, fmt.Errorf("subjectindex: open %s: read the legacy format: %w", x.path, err)
	}
	defer rows.Close()
	var formats []int64
	for rows.Next() {
		var f int64
		if err := rows.Scan(&f); err != nil {
			return 0, fmt.Errorf("subjectindex: open %s: read the legacy format: %w", x.path, err)
		}
		formats = append(formats, f)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("subjectindex: open %s: read the legacy format: %w", x.path, err)
	}
	if len(formats) != 1 || formats[0] < 0 || formats[0] >= formatVersion {
		return 0, fmt.Errorf("subjectindex: open %s: table legacy holds %v, want one format below %d", x.path, formats, formatVersion)
	}
	if ok, err = hasTable(ctx, tx, legacyTable); err != nil {
		return 0, fmt.Errorf("subjectindex: open %s: %w", x.path, err)
	}
	if !ok {
		return 0, fmt.Errorf("subjectindex: open %s: table legacy names format %d, but there is no table %s", x.path, formats[0], legacyTable)
	}
	return int(formats[0]), nil
}

// hasTable reports whether the file has the table name.
func hasTable(ctx context.Context, tx *sql.Tx, name string) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// tableOf returns the table of the rows of format: rowsTable for
// formatVersion, legacyTable for an earlier one.
func tableOf(format int) string {
	if format == formatVersion {
		return rowsTable
	}
	return legacyTable
}

// itemColumns returns the columns that hold the item in a row of format,
// after its log index and subject: a column per value (formats 0 and 1),
// or one blob of appendRow.
func itemColumns(format int) string {
	if format < 2 {
		return "time, kind, decision, actor_type, roles, country, purpose, fields, status"
	}
	return "row"
}

// scanned is a row as List reads it: its log index, and its columns as
// itemColumns names them, valid until the next row is read.
type scanned struct {
	idx int64
	// row is the blob of formats 2 and 3.
	row sql.RawBytes
	// micros, roles, fields, and the Kind, Decision, ActorType, Country,
	// Purpose and Status of it are the columns of formats 0 and 1.
	micros        int64
	roles, fields sql.RawBytes
	it            Item
}

// scan reads the current row of rows, of format, into s.
func (s *scanned) scan(rows *sql.Rows, format int) error {
	if format >= 2 {
		return rows.Scan(&s.idx, &s.row)
	}
	return rows.Scan(&s.idx, &s.micros, &s.it.Kind, &s.it.Decision, &s.it.ActorType, &s.roles, &s.it.Country, &s.it.Purpose, &s.fields, &s.it.Status)
}

// decode returns the item of s, a row of format, but its index and
// subject, with the words of d.
func (s *scanned) decode(format int, d *dict) (Item, error) {
	if format >= 2 {
		return decodeRow(s.row, d)
	}
	it := s.it
	it.Time = time.UnixMicro(s.micros).UTC()
	var err error
	if format == 0 {
		err = decodeV0(s.roles, s.fields, &it)
	} else {
		err = decodeV1(d, s.roles, s.fields, &it)
	}
	return it, err
}

// decodeV0 decodes the roles and fields of a row of format 0: JSON arrays
// (never null).
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
// appendRoles and appendFields, with the words of d.
func decodeV1(d *dict, roles, fields []byte, it *Item) (err error) {
	if it.Roles, err = decodeRoles(roles, d); err != nil {
		return fmt.Errorf("roles: %w", err)
	}
	if it.Fields, err = decodeFields(fields, d); err != nil {
		return fmt.Errorf("fields: %w", err)
	}
	return nil
}
