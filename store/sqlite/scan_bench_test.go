package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cloverenclave/clover/store"
)

// fillScan writes n records of size bytes and their keys.
func fillScan(tb testing.TB, s *Store, n, size int) {
	tb.Helper()
	ctx := context.Background()
	tx, err := s.records.writer.BeginTx(ctx, nil) // one transaction: a fsync per row would take minutes
	if err != nil {
		tb.Fatal(err)
	}
	ktx, err := s.keys.writer.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	for i := range n {
		id := fmt.Sprintf("s-%08d", i)
		ct := bytes.Repeat([]byte{byte(i)}, size)
		if _, err := tx.StmtContext(ctx, s.putRecord).ExecContext(ctx, id, ct, now.UnixMicro()); err != nil {
			tb.Fatal(err)
		}
		if _, err := putKeyTx(ctx, ktx, s.insertKey, s.selectKey, store.Key{Subject: id, Wrapped: bytes.Repeat([]byte{byte(i)}, 61), KEKID: "file:0123456789abcdef", Handle: bytes.Repeat([]byte{byte(i + 1)}, 16)}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	if err := ktx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// TestScanPageValuesAreSeparate: the values of a page share arrays, yet
// each is capped at its own length, so appending to one cannot overwrite
// the next, and each is right.
func TestScanPageValuesAreSeparate(t *testing.T) {
	s, _ := openTemp(t)
	fillScan(t, s, 300, 700)
	ctx := context.Background()
	recs, err := s.ScanRecords(ctx, "", 300)
	if err != nil || len(recs) != 300 {
		t.Fatalf("ScanRecords: %d records, %v", len(recs), err)
	}
	ks, err := s.ScanKeys(ctx, "", 300)
	if err != nil || len(ks) != 300 {
		t.Fatalf("ScanKeys: %d keys, %v", len(ks), err)
	}
	for i := range recs {
		_ = append(recs[i].Ciphertext, 0xff)
		_ = append(ks[i].Wrapped, 0xff)
	}
	for i, r := range recs {
		if want := fmt.Sprintf("s-%08d", i); r.Subject != want || ks[i].Subject != want {
			t.Fatalf("row %d: subjects %q and %q, want %q", i, r.Subject, ks[i].Subject, want)
		}
		if !bytes.Equal(r.Ciphertext, bytes.Repeat([]byte{byte(i)}, 700)) {
			t.Fatalf("record %d's ciphertext was overwritten", i)
		}
		if !bytes.Equal(ks[i].Wrapped, bytes.Repeat([]byte{byte(i)}, 61)) || !bytes.Equal(ks[i].Handle, bytes.Repeat([]byte{byte(i + 1)}, 16)) {
			t.Fatalf("key %d's bytes were overwritten", i)
		}
		if ks[i].KEKID != "file:0123456789abcdef" || !r.Updated.Equal(time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)) {
			t.Fatalf("row %d: KEK id %q, updated %v", i, ks[i].KEKID, r.Updated)
		}
	}
}

// BenchmarkScanRecords and BenchmarkScanKeys: one op is one page of 2,000
// rows (1 KB ciphertexts) out of 20,000.
func BenchmarkScanRecords(b *testing.B) { benchScan(b, true) }
func BenchmarkScanKeys(b *testing.B)    { benchScan(b, false) }

func benchScan(b *testing.B, records bool) {
	s, _ := openTemp(b)
	fillScan(b, s, 20000, 1024)
	benchScanOn(b, s, records)
}

func benchScanOn(b *testing.B, s *Store, records bool) {
	const n, page = 20000, 2000
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		after := ""
		if i = (i + 1) % (n / page); i > 0 {
			after = fmt.Sprintf("s-%08d", i*page-1)
		}
		var got int
		if records {
			r, err := s.ScanRecords(ctx, after, page)
			if err != nil {
				b.Fatal(err)
			}
			got = len(r)
		} else {
			k, err := s.ScanKeys(ctx, after, page)
			if err != nil {
				b.Fatal(err)
			}
			got = len(k)
		}
		if got != page {
			b.Fatalf("page of %d rows", got)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*page), "ns/row")
}
