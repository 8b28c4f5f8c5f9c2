package transfer

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var exportColumns = []string{"subject", "country", "note", "n", "cell"}

func exportRows() []Row {
	mk := func(vals ...string) Row {
		r := make(Row, len(vals))
		for i, v := range vals {
			r[i] = Cell{exportColumns[i], json.RawMessage(v)}
		}
		return r
	}
	return []Row{
		mk(`"tok_a"`, `"IE"`, `"plain"`, `42`, `{"lat":53.3,"lon":-6.3}`),
		mk(`"tok_b"`, `"FR"`, `"a, \"quoted\"\nline"`, `null`, `true`),
		mk(`"tok_c"`, `"DE"`, `"caf\u00e9 \\ ok"`, `-1.5`, `""`),
	}
}

func export(t *testing.T, format string) (string, Summary) {
	t.Helper()
	var buf bytes.Buffer
	e, err := NewExporter(&buf, format, exportColumns)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range exportRows() {
		if err := e.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	s, err := e.Close()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	want := Summary{Rows: 3, Bytes: int64(buf.Len()), SHA256: hex.EncodeToString(sum[:])}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("%s summary (-want +got):\n%s", format, diff)
	}
	return buf.String(), s
}

func TestExportNDJSON(t *testing.T) {
	got, _ := export(t, FormatNDJSON)
	want := `{"subject":"tok_a","country":"IE","note":"plain","n":42,"cell":{"lat":53.3,"lon":-6.3}}
{"subject":"tok_b","country":"FR","note":"a, \"quoted\"\nline","n":null,"cell":true}
{"subject":"tok_c","country":"DE","note":"caf\u00e9 \\ ok","n":-1.5,"cell":""}
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NDJSON (-want +got):\n%s", diff)
	}
	for line := range strings.Lines(got) {
		if !json.Valid([]byte(line)) {
			t.Errorf("line is not JSON: %q", line)
		}
	}
}

func TestExportCSV(t *testing.T) {
	got, _ := export(t, FormatCSV)
	want := "subject,country,note,n,cell\n" +
		`tok_a,IE,plain,42,"{""lat"":53.3,""lon"":-6.3}"` + "\n" +
		`tok_b,FR,"a, ""quoted""` + "\nline\",null,true\n" +
		"tok_c,DE,café \\ ok,-1.5,\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CSV (-want +got):\n%s", diff)
	}
	recs, err := csv.NewReader(strings.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("a, \"quoted\"\nline", recs[2][2]); diff != "" {
		t.Errorf("CSV round trip (-want +got):\n%s", diff)
	}
}

func TestExportLarge(t *testing.T) {
	// Enough rows to flush several times before Close.
	for _, format := range []string{FormatNDJSON, FormatCSV} {
		var buf bytes.Buffer
		e, err := NewExporter(&buf, format, exportColumns)
		if err != nil {
			t.Fatal(err)
		}
		rows := exportRows()
		for i := range 20000 {
			if err := e.Write(rows[i%len(rows)]); err != nil {
				t.Fatal(err)
			}
		}
		s, err := e.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(buf.Bytes())
		if s.Rows != 20000 || s.Bytes != int64(buf.Len()) || s.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: summary %+v does not match the %d bytes written", format, s, buf.Len())
		}
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("connection reset")
	}
	n := min(len(p), w.after)
	w.after -= n
	return n, errors.New("connection reset")
}

func TestExportErrors(t *testing.T) {
	if _, err := NewExporter(&bytes.Buffer{}, "xml", exportColumns); err == nil {
		t.Error("NewExporter accepted format xml")
	}
	e, err := NewExporter(&bytes.Buffer{}, FormatNDJSON, exportColumns)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Write(exportRows()[0][:2]); err == nil {
		t.Error("Write accepted a short row")
	}
	r := exportRows()[0]
	r[1].Column = "nation"
	if err := e.Write(r); err == nil {
		t.Error("Write accepted a wrong column")
	}
	r = exportRows()[0]
	r[2].Value = json.RawMessage("\"a\"\n")
	if err := e.Write(r); err == nil {
		t.Error("Write accepted a value with a line break")
	}

	// A failing writer: the digest covers exactly what it accepted.
	for _, format := range []string{FormatNDJSON, FormatCSV} {
		w := &failWriter{after: 10}
		e, err := NewExporter(w, format, exportColumns)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range exportRows() {
			if err := e.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		s, err := e.Close()
		if err == nil {
			t.Errorf("%s: Close after a write error = nil", format)
		}
		if s.Bytes != 10 {
			t.Errorf("%s: Bytes = %d, want the 10 accepted", format, s.Bytes)
		}
	}
}

// limitWriter takes n bytes, then fails.
type limitWriter struct {
	buf bytes.Buffer
	n   int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.buf.Write(p[:k])
		w.n = 0
		return k, errors.New("connection reset")
	}
	w.buf.Write(p)
	w.n -= len(p)
	return len(p), nil
}

// TestExportCutOffCountsWholeRows cuts the writer off at every few bytes of
// a large export, in both formats: Rows must count exactly the complete
// rows among the bytes the writer took, and Bytes and SHA256 must be of
// those bytes.
func TestExportCutOffCountsWholeRows(t *testing.T) {
	for _, format := range []string{FormatNDJSON, FormatCSV} {
		var full bytes.Buffer
		e, _ := NewExporter(&full, format, exportColumns)
		rows := exportRows()
		for i := range 9000 {
			if err := e.Write(rows[i%len(rows)]); err != nil {
				t.Fatal(err)
			}
		}
		whole, err := e.Close()
		if err != nil || whole.Rows != 9000 {
			t.Fatalf("%s: full export %+v, %v", format, whole, err)
		}
		// Where each row ends in the full stream.
		var ends []int
		if format == FormatNDJSON {
			for i, c := range full.Bytes() {
				if c == '\n' {
					ends = append(ends, i+1)
				}
			}
		} else {
			r := csv.NewReader(bytes.NewReader(full.Bytes()))
			r.Read() // the header
			for {
				if _, err := r.Read(); err != nil {
					break
				}
				ends = append(ends, int(r.InputOffset()))
			}
		}
		if len(ends) != 9000 {
			t.Fatalf("%s: found %d row ends", format, len(ends))
		}
		for _, cut := range []int{0, 1, 100, 65535, 65536, 65537, 100000, 200001, full.Len() - 1} {
			w := &limitWriter{n: cut}
			e, _ := NewExporter(w, format, exportColumns)
			for i := range 9000 {
				if e.Write(rows[i%len(rows)]) != nil {
					break
				}
			}
			s, err := e.Close()
			if err == nil {
				t.Fatalf("%s cut at %d: no error", format, cut)
			}
			want := 0
			for _, end := range ends {
				if end <= w.buf.Len() {
					want++
				}
			}
			sum := sha256.Sum256(w.buf.Bytes())
			if s.Rows != want || s.Bytes != int64(w.buf.Len()) || s.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("%s cut at %d: summary %+v, want %d rows of %d bytes", format, cut, s, want, w.buf.Len())
			}
		}
	}
}
