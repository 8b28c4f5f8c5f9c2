package vault

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
)

// warmVault is a vault over memory stores with a 256 MiB cache (the
// server's default) holding synthetic subjects 1 to 100,000 (those the
// enclave accepts), every one of them read once so that the cache is warm.
var warmVault = sync.OnceValues(func() (*Vault, []string) { return syntheticVault(256 << 20) })

// coldVault is warmVault without a cache: its heap is the stores'.
var coldVault = sync.OnceValues(func() (*Vault, []string) { return syntheticVault(0) })

func syntheticVault(cacheBytes int64) (*Vault, []string) {
	enc, sch, sites := memSites()
	v, err := New(enc, sch, sites, WithCache(cacheBytes))
	if err != nil {
		panic(err)
	}
	ids, err := putSubjects(v, 1, 100_000)
	if err != nil {
		panic(err)
	}
	for _, id := range ids {
		if _, err := v.Get(context.Background(), id); err != nil {
			panic(err)
		}
	}
	return v, ids
}

// gcCPU returns the CPU time the garbage collector has spent so far, in
// seconds, and the number of heap objects.
func gcCPU() (float64, uint64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/heap/objects:objects"}}
	metrics.Read(s)
	return s[0].Value.Float64(), s[1].Value.Uint64()
}

// liveHeap returns the bytes marked live by the last collection.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkCachedGet reads random subjects of a warm cache of 100,000:
// "get" is the read alone; "get+gc-per-1000" forces a collection every
// 1000 reads and reports the collector's CPU per read.
func BenchmarkCachedGet(b *testing.B) {
	v, ids := warmVault()
	ctx := context.Background()
	var sink Record
	next := func(i int) string { return ids[(uint64(i)*2654435761)%uint64(len(ids))] }
	run := func(b *testing.B, every int) {
		runtime.GC()
		cpu0, _ := gcCPU()
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			rec, err := v.Get(ctx, next(i))
			if err != nil {
				b.Fatal(err)
			}
			sink = rec
			if every > 0 && i%every == every-1 {
				runtime.GC()
			}
		}
		b.StopTimer()
		cpu1, objects := gcCPU()
		b.ReportMetric((cpu1-cpu0)*1e9/float64(b.N), "gc-cpu-ns/op")
		b.ReportMetric(float64(objects), "heap-objects")
	}
	b.Run("get", func(b *testing.B) { run(b, 0) })
	b.Run("get+gc-per-1000", func(b *testing.B) { run(b, 1000) })
	_ = sink
}

// BenchmarkCacheGC is one forced collection of a heap holding the warm
// cache of BenchmarkCachedGet ("warm") or only its memory stores ("cold",
// run it alone: the difference is the cache's share). Marking grows with
// the pointers the heap holds.
func BenchmarkCacheGC(b *testing.B) {
	b.Run("warm", func(b *testing.B) { warmVault(); benchGC(b) })
	b.Run("cold", func(b *testing.B) { coldVault(); benchGC(b) })
}

func benchGC(b *testing.B) {
	runtime.GC()
	cpu0, _ := gcCPU()
	b.ResetTimer()
	for range b.N {
		runtime.GC()
	}
	b.StopTimer()
	cpu1, objects := gcCPU()
	b.ReportMetric((cpu1-cpu0)*1e9/float64(b.N), "gc-cpu-ns/op")
	b.ReportMetric(float64(objects), "heap-objects")
	b.ReportMetric(float64(liveHeap())/(1<<20), "live-heap-MiB")
}
