package auditlog

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppendParallel measures durable appends of ~500-byte entries by
// 32 goroutines per core: appends/s and the latency of each Append (enqueue,
// group write, fdatasync), p50 and p99.
func BenchmarkAppendParallel(b *testing.B) {
	opts := testOptions(b, b.TempDir())
	opts.BatchAge, opts.CheckpointInterval = DefaultBatchAge, DefaultCheckpointInterval
	l := openLog(b, opts)
	entry := bytes.Repeat([]byte("0123456789abcdef"), 32)[:500]
	ctx := context.Background()
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if _, err := l.Append(ctx, entry); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "appends/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
