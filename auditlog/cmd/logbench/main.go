// Command logbench offers a fixed rate of appends to an audit log for a
// while and reports what it measured: the latency of Append (from the time
// each append was due, so a stalled log is not hidden by a waiting load
// generator), the rate achieved, the time until a published checkpoint
// covers an entry, and the CPU used. It is a measurement tool, not a test.
//
//	go run ./auditlog/cmd/logbench -rate 20000 -duration 5s
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloverenclave/clover/auditlog"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "logbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		dir      = flag.String("dir", "", "log directory (default: a new temporary directory, removed afterwards)")
		rate     = flag.Int("rate", 20000, "appends offered per second")
		duration = flag.Duration("duration", 5*time.Second, "how long to offer them")
		size     = flag.Int("size", 500, "entry size in bytes")
		workers  = flag.Int("workers", 2048, "appends in flight at most")
		every    = flag.Int("sample", 50, "measure the time to a checkpoint of every n-th append")
		batchAge = flag.Duration("batch-age", 0, "tessera batch age (default: the log's)")
		cpEvery  = flag.Duration("checkpoint-interval", 0, "checkpoint interval (default: the log's)")
		syncIvl  = flag.Duration("sync-interval", 0, "journal sync interval (default: the log's; negative: none)")
		cpuProf  = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	)
	flag.Parse()
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "logbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	ctx := context.Background()
	l, err := auditlog.Open(ctx, auditlog.Options{
		Dir:                 filepath.Join(*dir, "log"),
		Origin:              "clover.example/bench",
		SignerKeyFile:       filepath.Join(*dir, "log-signer.key"),
		Logger:              slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		BatchAge:            *batchAge,
		CheckpointInterval:  *cpEvery,
		JournalSyncInterval: *syncIvl,
	})
	if err != nil {
		return err
	}
	defer l.Close()
	entry := bytes.Repeat([]byte("0123456789abcdef"), *size/16+1)[:*size]

	type job struct {
		due    time.Time
		sample bool
	}
	type sample struct {
		index uint64
		due   time.Time
	}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		samples  []sample
		pushback atomic.Int64
		failed   atomic.Int64
	)
	jobs := make(chan job, *workers)
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			var mine []time.Duration
			for j := range jobs {
				idx, err := l.Append(ctx, entry)
				d := time.Since(j.due)
				switch {
				case errors.Is(err, auditlog.ErrPushback):
					pushback.Add(1)
					continue
				case err != nil:
					failed.Add(1)
					continue
				}
				mine = append(mine, d)
				if j.sample {
					mu.Lock()
					samples = append(samples, sample{idx, j.due})
					mu.Unlock()
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}

	// Checkpoint poller: when does a published checkpoint cover each sample?
	var ttc []time.Duration
	stopPoll := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		resolved := 0
		for {
			select {
			case <-t.C:
			case <-stopPoll:
				return
			}
			raw, err := l.Checkpoint(ctx)
			if err != nil {
				continue
			}
			cp, err := auditlog.OpenCheckpoint(raw, l.VerifierKey())
			if err != nil {
				continue
			}
			now := time.Now()
			mu.Lock()
			for ; resolved < len(samples); resolved++ {
				if samples[resolved].index >= cp.Size {
					break
				}
				ttc = append(ttc, now.Sub(samples[resolved].due))
			}
			mu.Unlock()
		}
	}()

	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	total := int(float64(*rate) * duration.Seconds())
	start := time.Now()
	interval := time.Second / time.Duration(*rate)
	for i := 0; i < total; {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		// Issue everything due by now.
		for now := time.Now(); i < total && !start.Add(time.Duration(i)*interval).After(now); i++ {
			jobs <- job{due: start.Add(time.Duration(i) * interval), sample: i%*every == 0}
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)

	// Wait for the last samples to reach a checkpoint.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		done := len(ttc) == len(samples)
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stopPoll)
	<-pollDone

	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	slices.Sort(lat)
	slices.Sort(ttc)
	fmt.Printf("offered %d appends/s for %v (%d appends of %d bytes, %d workers)\n", *rate, *duration, total, *size, *workers)
	fmt.Printf("acknowledged %d in %v: %.0f appends/s; pushback %d, failed %d\n",
		len(lat), elapsed.Round(time.Millisecond), float64(len(lat))/elapsed.Seconds(), pushback.Load(), failed.Load())
	fmt.Printf("Append latency from due time: p50 %v  p99 %v  p99.9 %v  max %v\n",
		pct(lat, 0.50), pct(lat, 0.99), pct(lat, 0.999), pct(lat, 1))
	fmt.Printf("time to a published checkpoint (%d samples): p50 %v  p99 %v  max %v\n",
		len(ttc), pct(ttc, 0.50), pct(ttc, 0.99), pct(ttc, 1))
	fmt.Printf("CPU %v in %v: %.2f cores (log and load generator together)\n",
		cpu.Round(time.Millisecond), elapsed.Round(time.Millisecond), cpu.Seconds()/elapsed.Seconds())
	s := l.Stats()
	fmt.Printf("log: %d durable, %d integrated, err %v\n", s.Durable, s.Integrated, s.Err)
	return nil
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[int(p*float64(len(d)-1))].Round(10 * time.Microsecond)
}
