package transfer

import (
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"
)

func benchRows(n int) ([]string, []Row) {
	cols := make([]string, 12)
	for i := range cols {
		cols[i] = fmt.Sprintf("column_%02d", i)
	}
	rows := make([]Row, n)
	for r := range rows {
		row := make(Row, len(cols))
		for i, c := range cols {
			var v string
			switch i % 4 {
			case 0:
				v = fmt.Sprintf(`"tok_%022d"`, r*31+i)
			case 1:
				v = `"30-34"`
			case 2:
				v = fmt.Sprintf("%d", r*7+i)
			default:
				v = `{"lat":53.3,"lon":-6.3}`
			}
			row[i] = Cell{c, json.RawMessage(v)}
		}
		rows[r] = row
	}
	return cols, rows
}

func benchExport(b *testing.B, format string) {
	cols, rows := benchRows(1024)
	e, err := NewExporter(io.Discard, format, cols)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := e.Write(rows[i%len(rows)]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/row")
}

// BenchmarkExportNDJSON: one op is one row of 12 columns, hashed.
func BenchmarkExportNDJSON(b *testing.B) { benchExport(b, FormatNDJSON) }

// BenchmarkExportCSV: one op is one row of 12 columns, hashed.
func BenchmarkExportCSV(b *testing.B) { benchExport(b, FormatCSV) }

// BenchmarkGrouper: one op is one record counted (first pass) and one
// checked (second pass), over ~2,000 distinct tuples (country x age band x
// cell).
func BenchmarkGrouper(b *testing.B) {
	countries := []string{`"IE"`, `"FR"`, `"DE"`, `"NL"`, `"ES"`, `"IT"`, `"PL"`, `"SE"`}
	bands := []string{`"20-24"`, `"25-29"`, `"30-34"`, `"35-39"`, `"40-44"`, `"45-49"`, `"50-54"`, `"55-59"`, `"60-64"`, `"65-69"`}
	tuples := make([][]json.RawMessage, 4096)
	for i := range tuples {
		tuples[i] = []json.RawMessage{
			json.RawMessage(countries[i%len(countries)]),
			json.RawMessage(bands[(i/8)%len(bands)]),
			json.RawMessage(fmt.Sprintf(`{"lat":%d.5,"lon":%d.5}`, i%5, (i/80)%5)),
		}
	}
	g := NewGrouper(5)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		g.AddRaw(tuples[i%len(tuples)])
	}
	kept := 0
	for i := range b.N {
		if g.KeepRaw(tuples[i%len(tuples)]) {
			kept++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/row")
	b.ReportMetric(float64(g.Groups()), "groups")
}

// BenchmarkTransferPipeline: one op is one record of the default schema
// going through both passes for us-analytics: quasi-identifiers transformed
// and counted, then the whole record transformed, checked and written as
// NDJSON.
func BenchmarkTransferPipeline(b *testing.B) {
	sch := defaultSchema(b)
	tr := testTransformer(b)
	p, err := NewPlan(Defaults()[0], sch, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]map[string]json.RawMessage, 256)
	for i := range recs {
		recs[i] = map[string]json.RawMessage{
			"full_name":  json.RawMessage(`"Ada Lovelace"`),
			"email":      json.RawMessage(fmt.Sprintf(`"user%d@example.org"`, i)),
			"birth_date": json.RawMessage(fmt.Sprintf(`"19%02d-03-04"`, 60+i%40)),
			"device_id":  json.RawMessage(fmt.Sprintf(`"dev-%08d"`, i)),
			"ip_address": json.RawMessage(fmt.Sprintf(`"192.0.%d.77"`, i%200)),
			"interests":  json.RawMessage(`"chess"`),
		}
	}
	ids := make([]string, len(recs))
	for i := range ids {
		ids[i] = fmt.Sprintf("subj-%06d", i)
	}
	g := NewGrouper(2)
	e, err := NewExporter(io.Discard, FormatNDJSON, p.Columns())
	if err != nil {
		b.Fatal(err)
	}
	var row Row
	var q []json.RawMessage
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		j := i % len(recs)
		if q, err = p.TransformQuasi(tr, "IE", recs[j], now, q); err != nil {
			b.Fatal(err)
		}
		g.AddRaw(q)
	}
	for i := range b.N {
		j := i % len(recs)
		if row, err = p.Transform(tr, ids[j], "IE", recs[j], now, row); err != nil {
			b.Fatal(err)
		}
		q = p.Quasi(row, q)
		if g.KeepRaw(q) {
			if err := e.Write(row); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := e.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/row")
}
