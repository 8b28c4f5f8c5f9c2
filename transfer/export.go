package transfer

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"unicode/utf8"
)

// Export formats.
const (
	FormatNDJSON = "ndjson" // one JSON object per line, columns in order
	FormatCSV    = "csv"    // RFC 4180 with a header row
)

// Summary describes what an Exporter sent.
type Summary struct {
	// Rows counts the rows whose every byte the writer took: a stream cut
	// off mid-row does not count that row.
	Rows   int
	Bytes  int64
	SHA256 string // hex SHA-256 of exactly the bytes written to the writer
}

// flushAt is the size at which the NDJSON buffer is written out.
const flushAt = 64 << 10

// sink writes to the destination writer and hashes and counts exactly the
// bytes it accepted.
type sink struct {
	w     io.Writer
	h     hash.Hash
	bytes int64
}

func (s *sink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.h.Write(p[:n])
	s.bytes += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// Exporter writes rows as NDJSON or CSV, hashing the bytes it writes. It
// buffers: nothing is guaranteed written until Close. It is not safe for
// concurrent use.
type Exporter struct {
	sink    sink
	format  string
	columns []string
	keys    [][]byte // NDJSON: `{"col":` then `,"col":` ...
	buf     []byte   // NDJSON buffer; CSV: the current row's cell text
	csv     *csv.Writer
	record  []string
	out     bytes.Buffer // CSV: rows encoded but not yet written
	ends    []int
	// pending holds, oldest first, where each row not yet known to be
	// written ends in the stream; rows counts the rows whose last byte the
	// writer took. So a stream cut off mid-row counts only whole rows.
	pending []int64
	rows    int
	err     error
	closed  bool
}

// NewExporter returns an Exporter of rows with the given columns to w in
// format FormatNDJSON or FormatCSV. A CSV export starts with a header row.
func NewExporter(w io.Writer, format string, columns []string) (*Exporter, error) {
	if len(columns) == 0 {
		return nil, fmt.Errorf("transfer: an export needs at least one column")
	}
	e := &Exporter{sink: sink{w: w, h: sha256.New()}, format: format, columns: append([]string(nil), columns...)}
	switch format {
	case FormatNDJSON:
		for i, c := range columns {
			k, err := json.Marshal(c)
			if err != nil {
				return nil, err
			}
			sep := byte(',')
			if i == 0 {
				sep = '{'
			}
			e.keys = append(e.keys, append(append([]byte{sep}, k...), ':'))
		}
		e.buf = make([]byte, 0, flushAt+4096)
	case FormatCSV:
		e.csv = csv.NewWriter(&e.out)
		e.record = make([]string, len(columns))
		e.ends = make([]int, len(columns))
		if err := e.csv.Write(e.columns); err != nil {
			return nil, err
		}
		e.csv.Flush()
	default:
		return nil, fmt.Errorf("transfer: unknown export format %q (ndjson or csv)", format)
	}
	return e, nil
}

// Write writes one row; its cells must be the exporter's columns in order,
// each value compact JSON (an empty value is written as null).
func (e *Exporter) Write(row Row) error {
	if e.err != nil {
		return e.err
	}
	if e.closed {
		return fmt.Errorf("transfer: write to a closed exporter")
	}
	if len(row) != len(e.columns) {
		return fmt.Errorf("transfer: row has %d cells, the export %d columns", len(row), len(e.columns))
	}
	for i, c := range row {
		if c.Column != e.columns[i] {
			return fmt.Errorf("transfer: cell %d is column %q, expected %q", i, c.Column, e.columns[i])
		}
	}
	if e.csv != nil {
		e.err = e.writeCSV(row)
	} else {
		e.err = e.writeNDJSON(row)
	}
	return e.err
}

// settle counts every pending row whose last byte the writer has taken.
func (e *Exporter) settle() {
	n := 0
	for n < len(e.pending) && e.pending[n] <= e.sink.bytes {
		n++
	}
	if n > 0 {
		e.rows += n
		e.pending = append(e.pending[:0], e.pending[n:]...)
	}
}

func (e *Exporter) writeNDJSON(row Row) error {
	start := len(e.buf)
	for i, c := range row {
		v := c.Value
		if len(v) == 0 {
			v = null
		}
		// Compact JSON never holds a raw line break; one would split the
		// record in two.
		if bytes.IndexByte(v, '\n') >= 0 || bytes.IndexByte(v, '\r') >= 0 {
			e.buf = e.buf[:start]
			return fmt.Errorf("transfer: value of column %q is not compact JSON", c.Column)
		}
		e.buf = append(e.buf, e.keys[i]...)
		e.buf = append(e.buf, v...)
	}
	e.buf = append(e.buf, '}', '\n')
	e.pending = append(e.pending, e.sink.bytes+int64(len(e.buf)))
	if len(e.buf) >= flushAt {
		return e.flush()
	}
	return nil
}

func (e *Exporter) flush() error {
	if len(e.buf) == 0 {
		return nil
	}
	_, err := e.sink.Write(e.buf)
	e.buf = e.buf[:0]
	e.settle()
	return err
}

// writeCSV writes a row through encoding/csv: JSON strings as their text,
// other values as their JSON. The cells' text is gathered in one buffer and
// converted to a string once per row.
func (e *Exporter) writeCSV(row Row) error {
	e.buf = e.buf[:0]
	for i, c := range row {
		var err error
		e.buf, err = appendCSVText(e.buf, c.Value)
		if err != nil {
			return fmt.Errorf("transfer: value of column %q: %w", c.Column, err)
		}
		e.ends[i] = len(e.buf)
	}
	s := string(e.buf)
	from := 0
	for i, end := range e.ends {
		e.record[i] = s[from:end]
		from = end
	}
	// csv.Writer buffers; flushing it per row into our own buffer tells
	// where the row ends in the stream.
	if err := e.csv.Write(e.record); err != nil {
		return err
	}
	e.csv.Flush()
	if err := e.csv.Error(); err != nil {
		return err
	}
	e.pending = append(e.pending, e.sink.bytes+int64(e.out.Len()))
	if e.out.Len() >= flushAt {
		return e.flushCSV()
	}
	return nil
}

// flushCSV writes the buffered CSV rows.
func (e *Exporter) flushCSV() error {
	if e.out.Len() == 0 {
		return nil
	}
	_, err := e.sink.Write(e.out.Bytes())
	e.out.Reset()
	e.settle()
	return err
}

// appendCSVText appends the CSV text of a JSON value: a string's contents,
// any other value's JSON text (null for an empty value).
func appendCSVText(dst []byte, v json.RawMessage) ([]byte, error) {
	if len(v) == 0 {
		return append(dst, "null"...), nil
	}
	if v[0] != '"' {
		return append(dst, v...), nil
	}
	if inner, ok := plainJSONString(v); ok {
		return append(dst, inner...), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return dst, fmt.Errorf("not a valid JSON string")
	}
	return append(dst, s...), nil
}

// plainJSONString returns the contents of a JSON string literal without
// escapes.
func plainJSONString(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return nil, false
	}
	inner := b[1 : len(b)-1]
	for _, c := range inner {
		if c < 0x20 || c == '"' || c == '\\' {
			return nil, false
		}
	}
	return inner, utf8.Valid(inner)
}

// Close writes out what is buffered and returns the summary of the export.
// The digest covers exactly the bytes the writer accepted.
func (e *Exporter) Close() (Summary, error) {
	if !e.closed {
		e.closed = true
		if e.csv != nil {
			if err := e.flushCSV(); err != nil && e.err == nil {
				e.err = err
			}
		} else if err := e.flush(); err != nil && e.err == nil {
			e.err = err
		}
	}
	s := Summary{Rows: e.rows, Bytes: e.sink.bytes, SHA256: hex.EncodeToString(e.sink.h.Sum(nil))}
	return s, e.err
}
