package subjectindex

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAdd adds batches of items of random subjects to an index that
// already holds prefill items of 100,000 subjects: the gateway's load
// (reads of random subjects), per item.
func BenchmarkAdd(b *testing.B) {
	const subjects, prefill, batch = 100_000, 200_000, 8192
	ctx := context.Background()
	x, err := Open(filepath.Join(b.TempDir(), "subjects.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	names := randomPseudonyms(rng, subjects)
	var next uint64
	items := make([]Item, batch)
	fill := func() {
		for i := range items {
			it := item(next, names[rng.IntN(subjects)])
			it.Fields = []Field{{"email", "masked"}, {"full_name", "raw"}, {"phone", "pseudonym"}, {"birth_date", "generalised"},
				{"country", "raw"}, {"iban", "masked"}, {"address", "withheld"}, {"device_id", "pseudonym"}}
			items[i] = it
			next++
		}
	}
	for next < prefill {
		fill()
		if err := x.Add(ctx, items...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill()
		b.StartTimer()
		if err := x.Add(ctx, items...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/item")
	b.StopTimer()
	// The file's size per row, once the write-ahead log is copied back.
	if _, err := x.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(x.path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size())/float64(next), "B/row")
}

// randomPseudonyms returns n random pseudonyms (64 hex digits) from rng.
func randomPseudonyms(rng *rand.Rand, n int) []string {
	names := make([]string, n)
	for i := range names {
		var h [32]byte
		for j := range h {
			h[j] = byte(rng.Uint32())
		}
		names[i] = hex.EncodeToString(h[:])
	}
	return names
}
