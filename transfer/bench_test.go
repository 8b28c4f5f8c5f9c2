package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/store/sqlite"
	"github.com/cloverenclave/clover/synth"
	"github.com/cloverenclave/clover/vault"
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
		recs[i] = benchFields(i)
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

// BenchmarkSpool measures the spool alone, the export's serial stages: one
// op adds 20,000 transformed us-analytics rows (what the scan's emitter
// does: count the group, frame, seal and write), then replays them into an
// NDJSON exporter (open, decode, check the group, format, hash). add-ns/row
// and replay-ns/row are the wall time of each phase per row.
func BenchmarkSpool(b *testing.B) {
	const n = 20000
	p, err := NewPlan(Defaults()[0], defaultSchema(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	tr := testTransformer(b)
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]Row, 4096)
	for i := range rows {
		fields := benchFields(i)
		if rows[i], err = p.Transform(tr, fmt.Sprintf("subj-%06d", i), "IE", fields, now, nil); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	var add, replay time.Duration
	var sent int
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		sp, err := NewSpool(p, dir)
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if err := sp.Add(rows[i%len(rows)]); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		e, err := NewExporter(io.Discard, FormatNDJSON, p.Columns())
		if err != nil {
			b.Fatal(err)
		}
		if err := sp.Replay(context.Background(), e); err != nil {
			b.Fatal(err)
		}
		sum, err := e.Close()
		if err != nil {
			b.Fatal(err)
		}
		if err := sp.Close(); err != nil {
			b.Fatal(err)
		}
		add, replay, sent = add+t1.Sub(t0), replay+time.Since(t1), sum.Rows
	}
	if sent == 0 {
		b.Fatal("nothing replayed")
	}
	b.ReportMetric(float64(add.Nanoseconds())/float64(n*b.N), "add-ns/row")
	b.ReportMetric(float64(replay.Nanoseconds())/float64(n*b.N), "replay-ns/row")
}

// The end-to-end benchmark: a realistic embedded store (the synthetic
// population of package synth, written through the vault into SQLite as
// `clover seed` does through the gateway), read back by a plain scan and by
// a transfer, in the same run.

// benchStore is a vault over SQLite holding the first n synthetic subjects
// the enclave accepts (about 1% are refused as outside the jurisdictions).
func benchStore(b testing.TB, n int) (*vault.Vault, int) {
	b.Helper()
	enc, err := enclave.New(enclave.Default())
	if err != nil {
		b.Fatal(err)
	}
	var sites []vault.Site
	for _, s := range enc.Sites() {
		st, err := sqlite.Open(filepath.Join(b.TempDir(), s.Name))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		kek, err := keys.NewFileKEK(bytes.Repeat([]byte{byte(len(sites) + 7)}, 32), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		sites = append(sites, vault.Site{Name: s.Name, Store: st, KEK: kek})
	}
	v, err := vault.New(enc, defaultSchema(b), sites)
	if err != nil {
		b.Fatal(err)
	}
	gen := synth.New(1)
	var (
		next, stored atomic.Int64
		wg           sync.WaitGroup
		failed       atomic.Value
	)
	for range 16 { // SQLite's one writer per file is the limit; overlap the fsyncs
		wg.Go(func() {
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				s := gen.Subject(i)
				body, err := s.PutBody()
				if err != nil {
					failed.Store(err)
					return
				}
				var put struct {
					Country string                     `json:"country"`
					Fields  map[string]json.RawMessage `json:"fields"`
				}
				if err := json.Unmarshal(body, &put); err != nil {
					failed.Store(err)
					return
				}
				_, err = v.Put(context.Background(), s.ID, put.Country, put.Fields)
				switch {
				case errors.Is(err, enclave.ErrOutsideJurisdiction):
				case err != nil:
					failed.Store(err)
					return
				default:
					stored.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	return v, int(stored.Load())
}

// plainColumns are the columns of a plain scan: the record as stored.
func plainColumns(sch *schema.Schema) []string {
	cols := []string{ColumnSubject, ColumnCountry}
	for _, f := range sch.Fields() {
		cols = append(cols, f.Name)
	}
	return cols
}

// plainScan writes every record, decrypted but not transformed, as NDJSON
// through an Exporter (so hashed like a transfer): the baseline.
func plainScan(ctx context.Context, v *vault.Vault, w io.Writer) (Summary, error) {
	cols := plainColumns(v.Schema())
	e, err := NewExporter(w, FormatNDJSON, cols)
	if err != nil {
		return Summary{}, err
	}
	type slot struct {
		row     Row
		id, cty []byte
	}
	err = vault.ScanMap(ctx, v, vault.ScanOptions{}, func(r *vault.Record, s *slot) error {
		// Subject ids and countries need no JSON escaping; Go quoting is JSON's.
		s.id = strconv.AppendQuote(s.id[:0], r.ID)
		s.cty = strconv.AppendQuote(s.cty[:0], r.Country)
		s.row = append(s.row[:0], Cell{cols[0], s.id}, Cell{cols[1], s.cty})
		for _, c := range cols[2:] {
			s.row = append(s.row, Cell{c, r.Fields[c]})
		}
		return nil
	}, func(_ *vault.Record, s *slot) error { return e.Write(s.row) })
	sum, cerr := e.Close()
	return sum, errors.Join(err, cerr)
}

// exportSlot is a record's transfer work: its transformed row and the
// quasi-identifiers of it.
type exportSlot struct {
	row Row
	q   []json.RawMessage
}

// transferExport is a transfer as the gateway makes it: one pass over the
// store that transforms every record (in the scan's workers) and adds its
// row to a Spool (in the scan's emitter), the refusal check, then the
// spool's replay of the rows in groups of at least k into the exporter.
// The spill file goes in dir (the OS temporary directory if empty).
func transferExport(ctx context.Context, v *vault.Vault, p *Plan, tr *pseudonym.Transformer, now time.Time, w io.Writer, format, dir string) (Summary, int, error) {
	sp, err := NewSpool(p, dir)
	if err != nil {
		return Summary{}, 0, err
	}
	defer sp.Close()
	err = vault.ScanMap(ctx, v, vault.ScanOptions{}, func(r *vault.Record, s *exportSlot) (err error) {
		s.row, err = p.Transform(tr, r.ID, r.Country, r.Fields, now, s.row)
		return err
	}, func(_ *vault.Record, s *exportSlot) error { return sp.Add(s.row) })
	if err != nil {
		return Summary{}, 0, err
	}
	if Refuse(sp.Suppressed(), sp.Total(), p.Destination().MaxSuppressed) {
		return Summary{}, 0, fmt.Errorf("%w: %d of %d suppressed", errRefused, sp.Suppressed(), sp.Total())
	}
	e, err := NewExporter(w, format, p.Columns())
	if err != nil {
		return Summary{}, 0, err
	}
	err = sp.Replay(ctx, e)
	sum, cerr := e.Close()
	return sum, sp.Suppressed(), errors.Join(err, cerr, sp.Close())
}

var errRefused = errors.New("refused")

// twoPassExport is the export as it was before the spool, the reference
// the spool is tested against: a first pass that counts the
// quasi-identifier groups, then a second that re-reads, transforms every
// record and writes those in groups of at least k.
func twoPassExport(ctx context.Context, v *vault.Vault, p *Plan, tr *pseudonym.Transformer, now time.Time, w io.Writer, format string) (Summary, int, error) {
	g := NewGrouper(p.Destination().K)
	err := vault.ScanMap(ctx, v, vault.ScanOptions{}, func(r *vault.Record, s *exportSlot) (err error) {
		s.q, err = p.TransformQuasi(tr, r.Country, r.Fields, now, s.q)
		return err
	}, func(_ *vault.Record, s *exportSlot) error {
		g.AddRaw(s.q)
		return nil
	})
	if err != nil {
		return Summary{}, 0, err
	}
	if Refuse(g.Suppressed(), g.Total(), p.Destination().MaxSuppressed) {
		return Summary{}, 0, fmt.Errorf("%w: %d of %d suppressed", errRefused, g.Suppressed(), g.Total())
	}
	sum, err := streamRows(ctx, v, p, tr, now, w, format, g.KeepRaw)
	return sum, g.Suppressed(), err
}

// streamRows is the second pass alone: every record transformed and
// written if keep accepts its quasi-identifiers.
func streamRows(ctx context.Context, v *vault.Vault, p *Plan, tr *pseudonym.Transformer, now time.Time, w io.Writer, format string, keep func([]json.RawMessage) bool) (Summary, error) {
	e, err := NewExporter(w, format, p.Columns())
	if err != nil {
		return Summary{}, err
	}
	err = vault.ScanMap(ctx, v, vault.ScanOptions{}, func(r *vault.Record, s *exportSlot) (err error) {
		if s.row, err = p.Transform(tr, r.ID, r.Country, r.Fields, now, s.row); err != nil {
			return err
		}
		s.q = p.Quasi(s.row, s.q)
		return nil
	}, func(_ *vault.Record, s *exportSlot) error {
		if !keep(s.q) {
			return nil
		}
		return e.Write(s.row)
	})
	sum, cerr := e.Close()
	return sum, errors.Join(err, cerr)
}

// cpuTime is the CPU time the process has used, all threads, user and
// system: on a shared machine it says what a run costs when wall-clock
// throughput says mostly how busy the neighbours are.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakHeap samples the live heap until stop is called, and returns the
// highest sample.
func peakHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if h := sample[0].Value.Uint64(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak.Load()
	}
}

// BenchmarkTransfer measures, over the same SQLite store and in one run:
//
//   - plain: every record decrypted and written as NDJSON, untransformed;
//   - stream: every record transformed for us-analytics (5 fields
//     tokenised, 2 generalised of 12) and written, one pass;
//   - export: the whole transfer as the gateway runs it: one pass over the
//     store into a sealed spool, then the k-anonymous rows replayed from it.
//
// for a store of n and of 4n subjects, so that per-record allocations and
// the peak heap can be compared as the export grows. records/s counts the
// store's records per run.
//
// The collector runs at GOGC=400 unless GOGC is set, as in `clover serve`.
func BenchmarkTransfer(b *testing.B) {
	const n = 5000
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	ctx := context.Background()
	p, err := NewPlan(Defaults()[0], defaultSchema(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	tr := testTransformer(b)
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, size := range []int{n, 4 * n} {
		v, stored := benchStore(b, size)
		runs := []struct {
			name string
			run  func() (Summary, error)
		}{
			{"plain", func() (Summary, error) { return plainScan(ctx, v, io.Discard) }},
			{"stream", func() (Summary, error) {
				return streamRows(ctx, v, p, tr, now, io.Discard, FormatNDJSON, func([]json.RawMessage) bool { return true })
			}},
			{"export", func() (Summary, error) {
				sum, _, err := transferExport(ctx, v, p, tr, now, io.Discard, FormatNDJSON, "")
				return sum, err
			}},
		}
		for _, r := range runs {
			b.Run(fmt.Sprintf("%s/records=%d", r.name, stored), func(b *testing.B) {
				runtime.GC()
				stop := peakHeap()
				cpu0 := cpuTime(b)
				b.ReportAllocs()
				var rows int
				for b.Loop() {
					sum, err := r.run()
					if err != nil {
						b.Fatal(err)
					}
					rows = sum.Rows
				}
				cpu := cpuTime(b) - cpu0
				peak := stop()
				if rows == 0 {
					b.Fatal("nothing written")
				}
				records := float64(stored) * float64(b.N)
				b.ReportMetric(records/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(cpu.Microseconds())/records, "cpu-µs/record")
				b.ReportMetric(float64(rows), "rows")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			})
		}
	}
}

// benchFields is the record of benchmark subject i: six fields, most of
// them different from subject to subject.
func benchFields(i int) map[string]json.RawMessage {
	return map[string]json.RawMessage{
		"full_name":  json.RawMessage(`"Ada Lovelace"`),
		"email":      json.RawMessage(fmt.Sprintf(`"user%d@example.org"`, i)),
		"birth_date": json.RawMessage(fmt.Sprintf(`"19%02d-03-04"`, 60+i%40)),
		"device_id":  json.RawMessage(fmt.Sprintf(`"dev-%08d"`, i)),
		"ip_address": json.RawMessage(fmt.Sprintf(`"192.0.%d.77"`, i%200)),
		"interests":  json.RawMessage(`"chess"`),
	}
}
