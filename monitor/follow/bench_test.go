package follow

import (
	"context"
	"testing"
)

// BenchmarkFollow follows a log of 50,000 entries of about 600 bytes from
// scratch, through a DirFetcher, and reports the cost per entry.
func BenchmarkFollow(b *testing.B) {
	const size = 50000
	key := newTestKey(b)
	l := newTestLog(b, key)
	l.addN(size)
	l.publish()
	b.SetBytes(int64(len(l.entries[0])) * size)
	b.ResetTimer()
	for b.Loop() {
		f, err := New(l.fetcher(), key.verifier, State{}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		n, err := f.Poll(context.Background(), func(Chunk) error { return nil })
		if err != nil || n != size {
			b.Fatalf("Poll = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/entry")
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "entries/s")
}
