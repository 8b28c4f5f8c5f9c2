package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloverenclave/clover/transfer/spill"
	"github.com/cloverenclave/clover/vault"
)

// spillFiles returns the paths, through /proc/self/fd, of the spill files
// the process has open: unlinked, they are reachable only that way.
func spillFiles(t *testing.T) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	var open []string
	for _, fd := range fds {
		p := filepath.Join("/proc/self/fd", fd.Name())
		if target, err := os.Readlink(p); err == nil && strings.Contains(target, "clover-spill-") {
			open = append(open, p)
		}
	}
	return open
}

// noSpillLeft fails if a spill file is still open or named in dir.
func noSpillLeft(t *testing.T, dir string) {
	t.Helper()
	if open := spillFiles(t); len(open) != 0 {
		t.Errorf("spill files still open: %v", open)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left in the spill directory: %v", entries)
	}
}

// TestSpool runs the spool's tests over one store seeded as `clover seed`
// does, with enough records to fill a few spill chunks.
func TestSpool(t *testing.T) {
	v, stored := benchStore(t, 1500)
	if stored < 1400 {
		t.Fatalf("only %d subjects stored", stored)
	}
	for _, tt := range []struct {
		name string
		test func(*testing.T, *vault.Vault)
	}{
		{"MatchesTwoPass", testSpoolMatchesTwoPass},
		{"RefusedLeavesNothing", testSpoolRefusedLeavesNothing},
		{"CutOffLeavesNothing", testSpoolCutOffLeavesNothing},
		{"IsSealed", testSpoolIsSealed},
		{"TamperingFailsTheTransfer", testSpoolTamperingFailsTheTransfer},
		{"ReplayStopsWhenCancelled", testSpoolReplayStopsWhenCancelled},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, v) })
	}
}

var spoolNow = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// testSpoolMatchesTwoPass: the spooled export sends exactly the bytes of
// the two-pass export, for both destinations and formats, including the
// suppression of small groups.
func testSpoolMatchesTwoPass(t *testing.T, v *vault.Vault) {
	ctx := context.Background()
	tr := testTransformer(t)
	exercised := false
	for _, d := range Defaults() {
		d.MaxSuppressed = 1 // never refuse: compare what is sent
		p, err := NewPlan(d, v.Schema(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{FormatNDJSON, FormatCSV} {
			var want, got bytes.Buffer
			wantSum, wantSupp, err := twoPassExport(ctx, v, p, tr, spoolNow, &want, format)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			gotSum, gotSupp, err := transferExport(ctx, v, p, tr, spoolNow, &got, format, dir)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) || gotSum != wantSum || gotSupp != wantSupp {
				t.Errorf("%s %s: spooled export differs: %+v suppressed %d, two-pass %+v suppressed %d", d.Name, format, gotSum, gotSupp, wantSum, wantSupp)
			}
			exercised = exercised || wantSupp > 0 && wantSum.Rows > 100
			noSpillLeft(t, dir)
		}
	}
	if !exercised {
		t.Error("no destination both sent rows and suppressed some: the test does not exercise suppression")
	}
}

// testSpoolRefusedLeavesNothing: a refused transfer sends nothing and
// leaves no spill file.
func testSpoolRefusedLeavesNothing(t *testing.T, v *vault.Vault) {
	d := Defaults()[1]
	d.K, d.MaxSuppressed = 1000, 0.1 // every group too small
	p, err := NewPlan(d, v.Schema(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	_, _, err = transferExport(context.Background(), v, p, testTransformer(t), spoolNow, &out, FormatNDJSON, dir)
	if !errors.Is(err, errRefused) {
		t.Fatalf("export = %v, want refused", err)
	}
	if out.Len() != 0 {
		t.Errorf("a refused transfer wrote %d bytes", out.Len())
	}
	noSpillLeft(t, dir)
}

// cutOff accepts limit bytes, then fails, like a client that went away.
type cutOff struct {
	limit int
	n     int
}

func (c *cutOff) Write(p []byte) (int, error) {
	if c.n+len(p) > c.limit {
		k := c.limit - c.n
		c.n = c.limit
		return k, errors.New("connection reset")
	}
	c.n += len(p)
	return len(p), nil
}

func testSpoolCutOffLeavesNothing(t *testing.T, v *vault.Vault) {
	d := Defaults()[0]
	d.MaxSuppressed = 1
	p, err := NewPlan(d, v.Schema(), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sum, _, err := transferExport(context.Background(), v, p, testTransformer(t), spoolNow, &cutOff{limit: 5000}, FormatNDJSON, dir)
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("export = %v, want the writer's error", err)
	}
	if sum.Bytes != 5000 || sum.Rows == 0 {
		t.Errorf("summary %+v, want 5000 bytes and the whole rows in them", sum)
	}
	noSpillLeft(t, dir)
}

// spooled fills a spool with every record of v transformed for d.
func spooled(t *testing.T, v *vault.Vault, d Destination, dir string) (*Spool, *Plan, []Row) {
	t.Helper()
	p, err := NewPlan(d, v.Schema(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := NewSpool(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	tr := testTransformer(t)
	var rows []Row
	err = v.Scan(context.Background(), func(r vault.Record) error {
		row, err := p.Transform(tr, r.ID, r.Country, r.Fields, spoolNow, nil)
		if err != nil {
			return err
		}
		rows = append(rows, row)
		return sp.Add(row)
	})
	if err != nil {
		t.Fatal(err)
	}
	return sp, p, rows
}

// testSpoolIsSealed reads the spill file while it exists and looks for the
// subject tokens and field values it holds.
func testSpoolIsSealed(t *testing.T, v *vault.Vault) {
	sp, _, rows := spooled(t, v, Defaults()[0], "")
	open := spillFiles(t)
	if len(open) != 1 {
		t.Fatalf("%d spill files open, want 1", len(open))
	}
	stored, err := os.ReadFile(open[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) < 10_000 {
		t.Fatalf("spill file of %d bytes for %d rows", len(stored), len(rows))
	}
	for _, row := range rows[:50] {
		for _, c := range row {
			if len(c.Value) >= 8 && bytes.Contains(stored, c.Value) {
				t.Fatalf("the spill file holds the value of column %q in the clear", c.Column)
			}
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if open := spillFiles(t); len(open) != 0 {
		t.Errorf("spill file still open after Close: %v", open)
	}
}

// testSpoolTamperingFailsTheTransfer alters the spill file on disk before
// the replay: the replay fails with spill.ErrCorrupt, and what was written
// before the failure is a prefix of the true export, never an altered row.
func testSpoolTamperingFailsTheTransfer(t *testing.T, v *vault.Vault) {
	d := Defaults()[0]
	d.MaxSuppressed = 1
	replay := func(sp *Spool, w io.Writer) error {
		e, err := NewExporter(w, FormatNDJSON, sp.plan.Columns())
		if err != nil {
			t.Fatal(err)
		}
		err = sp.Replay(context.Background(), e)
		_, cerr := e.Close()
		return errors.Join(err, cerr)
	}
	ref, _, _ := spooled(t, v, d, "")
	var want bytes.Buffer
	if err := replay(ref, &want); err != nil {
		t.Fatal(err)
	}
	ref.Close()
	const chunk = 4 + spill.ChunkSize + 16 // a full chunk as stored
	for _, tt := range []struct {
		name string
		off  int64
	}{{"first chunk", 100}, {"second chunk", chunk + 5000}, {"a length", chunk + 2}} {
		t.Run(tt.name, func(t *testing.T) {
			sp, _, _ := spooled(t, v, d, "")
			open := spillFiles(t)
			if len(open) != 1 {
				t.Fatalf("%d spill files open, want 1", len(open))
			}
			f, err := os.OpenFile(open[0], os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, tt.off); err != nil {
				t.Fatalf("the spill file is too short to tamper with at %d: %v", tt.off, err)
			}
			b[0] ^= 0x40
			if _, err := f.WriteAt(b, tt.off); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			err = replay(sp, &got)
			if !errors.Is(err, spill.ErrCorrupt) {
				t.Fatalf("replay of a tampered spool = %v, want spill.ErrCorrupt", err)
			}
			if got.Len() >= want.Len() || !bytes.HasPrefix(want.Bytes(), got.Bytes()) {
				t.Errorf("wrote %d bytes before failing, not a proper prefix of the %d-byte export", got.Len(), want.Len())
			}
		})
	}
}

func TestSpoolReplaysOnceAndChecksRows(t *testing.T) {
	p, err := NewPlan(Defaults()[0], defaultSchema(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sp, err := NewSpool(p, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if err := sp.Add(Row{{ColumnSubject, json.RawMessage(`"x"`)}}); err == nil {
		t.Error("Add of a row with the wrong number of cells succeeded")
	}
	e, err := NewExporter(io.Discard, FormatNDJSON, p.Columns())
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Replay(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if err := sp.Replay(context.Background(), e); !errors.Is(err, ErrSpoolReplayed) {
		t.Errorf("second Replay = %v, want ErrSpoolReplayed", err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	noSpillLeft(t, dir)
}

func testSpoolReplayStopsWhenCancelled(t *testing.T, v *vault.Vault) {
	d := Defaults()[0]
	d.MaxSuppressed = 1
	sp, p, _ := spooled(t, v, d, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	e, err := NewExporter(&out, FormatNDJSON, p.Columns())
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.Replay(ctx, e); !errors.Is(err, context.Canceled) {
		t.Errorf("Replay with a cancelled context = %v, want context.Canceled", err)
	}
	if sum, _ := e.Close(); sum.Rows != 0 {
		t.Errorf("%d rows written after cancellation", sum.Rows)
	}
}
