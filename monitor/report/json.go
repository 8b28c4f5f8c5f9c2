package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxReportSize caps the size of a report that [Parse] reads.
const MaxReportSize = 64 << 20

// document is the JSON report: the format first, then the data.
type document struct {
	Format string `json:"format"`
	Data
}

// JSON renders d as an indented JSON document with a "format" field of
// [Format]. Object keys come in a fixed order (map keys sorted), slices in
// the order described in the package comment, so the same Data always
// gives the same bytes.
func JSON(d Data) ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(document{Format: Format, Data: d.normalized()}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report: encode JSON: %w", err)
	}
	return append(b, '\n'), nil
}

// Parse reads a JSON report made by [JSON]. It is strict: the format must
// be [Format], unknown fields and trailing data are refused, and the data
// must be valid. The result is the normalized Data the report was made of.
// Parse does not check a signature; use [Verify] on the same bytes first.
func Parse(report []byte) (Data, error) {
	if len(report) > MaxReportSize {
		return Data{}, fmt.Errorf("report: JSON report is %d bytes, more than %d", len(report), MaxReportSize)
	}
	dec := json.NewDecoder(bytes.NewReader(report))
	dec.DisallowUnknownFields()
	var doc document
	if err := dec.Decode(&doc); err != nil {
		return Data{}, fmt.Errorf("report: decode JSON report: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Data{}, errors.New("report: decode JSON report: data after the report")
	}
	if doc.Format != Format {
		return Data{}, fmt.Errorf("report: format %q is not %q", doc.Format, Format)
	}
	if err := doc.Data.validate(); err != nil {
		return Data{}, err
	}
	return doc.Data.normalized(), nil
}
