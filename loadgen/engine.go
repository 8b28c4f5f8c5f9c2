// Package loadgen is the engine of `clover bench`: it drives an HTTP server
// with C concurrent keep-alive connections for a duration or a number of
// operations, picking each operation from a weighted mix, and reports
// throughput, latency quantiles and errors by status.
//
// It is built not to be the bottleneck. Each worker owns one connection
// (a lean HTTP/1.1 client, see Conn), one random source, one reused request
// and one histogram per operation, so the hot path takes no lock and
// allocates nothing; the histograms are merged when the run ends. Requests
// made during the warm-up are sent but not recorded. Cancelling the
// context stops the run and still returns the figures so far.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one kind of operation in the mix: reads, writes, and later
// transfers are each an Op.
type Op struct {
	Name   string
	Weight int // relative frequency; 0 leaves the op out
	Method string
	Header http.Header // static headers (e.g. Authorization), rendered once
	// Next fills in the path and body of the next request: req.Path and
	// req.Body arrive empty (length 0, capacity kept) and are to be grown
	// with append; req.Header arrives as Header rendered, and Next may
	// replace it with other pre-rendered lines (one of many callers, say).
	// rng is the worker's own. An error stops the run.
	Next func(rng *rand.Rand, req *Request) error
	// OK reports whether a status counts as a success; nil means 2xx.
	OK func(status int) bool
}

// Config describes a run.
type Config struct {
	URL         string
	Concurrency int           // connections, one worker each
	Duration    time.Duration // measured time after the warm-up; used when Requests is 0
	Requests    int64         // measured operations; 0 means run for Duration
	Warmup      time.Duration // requests sent but not recorded
	Ops         []Op
	Seed        uint64        // seeds the workers' random sources
	Timeout     time.Duration // per request; 0 means 30s

	// OnMeasure, if set, is called once when the warm-up ends and
	// measurement starts (e.g. to scrape the server's metrics).
	OnMeasure func()
	// Progress, if set, is called every ProgressEvery (default 1s) from a
	// goroutine of its own.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress is a snapshot taken during a run.
type Progress struct {
	Warming bool          // still in the warm-up
	Elapsed time.Duration // measured time so far
	Done    int64         // measured operations so far (any status)
	Failed  int64         // of which not OK, or transport errors
}

// Result is what a run measured.
type Result struct {
	URL         string        `json:"url"`
	Concurrency int           `json:"concurrency"`
	Warmup      time.Duration `json:"warmup_ns"`
	// Elapsed is the measured period: from the end of the warm-up to the
	// last recorded response.
	Elapsed     time.Duration `json:"elapsed_ns"`
	Interrupted bool          `json:"interrupted"`
	// ProcessCPU is the CPU time (user + system) this process used during
	// the measured period; 0 where it cannot be read.
	ProcessCPU time.Duration `json:"process_cpu_ns"`
	Ops        []*OpResult   `json:"ops"`
	Total      *OpResult     `json:"total"`
}

// OpResult holds the figures of one operation (or of all of them).
type OpResult struct {
	Name      string           `json:"name"`
	Requests  int64            `json:"requests"` // responses received, any status
	OK        int64            `json:"ok"`
	Status    map[int]int64    `json:"status"`    // responses by status
	Transport map[string]int64 `json:"transport"` // transport errors by kind
	Latency   *Histogram       `json:"-"`         // of every response received
}

// Errors returns the number of failed operations: responses that are not
// OK and transport errors.
func (o *OpResult) Errors() int64 {
	n := o.Requests - o.OK
	for _, c := range o.Transport {
		n += c
	}
	return n
}

// Rate returns responses per second over elapsed.
func (o *OpResult) Rate(elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return float64(o.Requests) / elapsed.Seconds()
}

func newOpResult(name string) *OpResult {
	return &OpResult{Name: name, Status: map[int]int64{}, Transport: map[string]int64{}, Latency: &Histogram{}}
}

func (o *OpResult) merge(p *OpResult) {
	o.Requests += p.Requests
	o.OK += p.OK
	for k, v := range p.Status {
		o.Status[k] += v
	}
	for k, v := range p.Transport {
		o.Transport[k] += v
	}
	o.Latency.Merge(p.Latency)
}

// StatusCodes returns the statuses seen, in order.
func (o *OpResult) StatusCodes() []int {
	out := make([]int, 0, len(o.Status))
	for k := range o.Status {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func (c *Config) check() error {
	if c.Concurrency < 1 {
		return errors.New("concurrency must be at least 1")
	}
	if c.Requests < 0 || c.Duration < 0 || c.Warmup < 0 {
		return errors.New("duration, requests and warm-up cannot be negative")
	}
	if c.Requests == 0 && c.Duration == 0 {
		return errors.New("give a duration or a number of requests")
	}
	total := 0
	for _, op := range c.Ops {
		if op.Weight < 0 {
			return fmt.Errorf("op %s: negative weight", op.Name)
		}
		if op.Weight > 0 && op.Next == nil {
			return fmt.Errorf("op %s: no Next function", op.Name)
		}
		total += op.Weight
	}
	if total == 0 {
		return errors.New("the mix is empty: give at least one op a positive weight")
	}
	return nil
}

type preparedOp struct {
	Op
	header []byte
	cum    int // cumulative weight
}

// Run executes a run against cfg.URL. It returns an error only when the run
// cannot start or an Op's Next fails; transport errors are counted. When
// ctx is cancelled the figures so far are returned, with Interrupted set.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	target, err := ParseTarget(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	var ops []preparedOp
	total := 0
	for _, op := range cfg.Ops {
		h, err := RenderHeader(op.Header)
		if err != nil {
			return nil, fmt.Errorf("loadgen: op %s: %w", op.Name, err)
		}
		total += op.Weight
		ops = append(ops, preparedOp{Op: op, header: h, cum: total})
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	r := &run{cfg: cfg, target: target, ops: ops, total: total, ctx: runCtx, cancel: cancel}
	r.remaining.Store(cfg.Requests)
	r.start = time.Now()
	r.warmEnd = r.start.Add(cfg.Warmup)
	if cfg.Requests == 0 {
		r.deadline = r.warmEnd.Add(cfg.Duration)
	}

	// The start of measurement: CPU baseline and the caller's hook.
	var cpuStart time.Duration
	measureDone := make(chan struct{})
	startMeasure := func() {
		defer close(measureDone)
		cpuStart = processCPU()
		if cfg.OnMeasure != nil {
			cfg.OnMeasure()
		}
	}
	var measureTimer *time.Timer
	if cfg.Warmup == 0 {
		startMeasure()
	} else {
		measureTimer = time.AfterFunc(cfg.Warmup, startMeasure)
	}

	stopProgress := r.startProgress()

	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{
			r:     r,
			conn:  target.NewConn(),
			rng:   rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1)),
			stats: make([]*OpResult, len(ops)),
		}
		w.conn.Timeout = cfg.Timeout
		for k, op := range ops {
			w.stats[k] = newOpResult(op.Name)
		}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop()
		}()
	}
	wg.Wait()
	stopProgress()
	measured := true
	if measureTimer != nil && measureTimer.Stop() {
		measured = false // the run ended during the warm-up
	} else {
		<-measureDone
	}
	cpu := processCPU() - cpuStart

	res := &Result{URL: target.String(), Concurrency: cfg.Concurrency, Warmup: cfg.Warmup,
		Interrupted: ctx.Err() != nil, Total: newOpResult("all")}
	if measured {
		res.ProcessCPU = cpu
	}
	var lastEnd time.Time
	for k, op := range ops {
		or := newOpResult(op.Name)
		for _, w := range workers {
			or.merge(w.stats[k])
		}
		res.Ops = append(res.Ops, or)
		res.Total.merge(or)
	}
	for _, w := range workers {
		if w.lastEnd.After(lastEnd) {
			lastEnd = w.lastEnd
		}
		w.conn.Close()
	}
	if !lastEnd.IsZero() {
		res.Elapsed = max(0, lastEnd.Sub(r.warmEnd))
	}
	if !r.deadline.IsZero() && !res.Interrupted && measured {
		// Requests started in the window; the last ones may end after it.
		res.Elapsed = max(res.Elapsed, cfg.Duration)
	}
	if err := r.firstErr(); err != nil {
		return res, err
	}
	return res, nil
}

type run struct {
	cfg       Config
	target    *Target
	ops       []preparedOp
	total     int
	ctx       context.Context
	cancel    context.CancelFunc
	start     time.Time
	warmEnd   time.Time
	deadline  time.Time // zero when counting requests
	remaining atomic.Int64
	done      atomic.Int64
	failed    atomic.Int64

	errMu sync.Mutex
	err   error
}

// fail records the first error that stops the run, and stops it.
func (r *run) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
	r.cancel()
}

func (r *run) firstErr() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

func (r *run) startProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	every := r.cfg.ProgressEvery
	if every <= 0 {
		every = time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				p := Progress{Warming: now.Before(r.warmEnd), Done: r.done.Load(), Failed: r.failed.Load()}
				if !p.Warming {
					p.Elapsed = now.Sub(r.warmEnd)
				}
				r.cfg.Progress(p)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

type worker struct {
	r       *run
	conn    *Conn
	rng     *rand.Rand
	req     Request
	stats   []*OpResult
	lastEnd time.Time
}

func (w *worker) pick() int {
	if len(w.r.ops) == 1 {
		return 0
	}
	x := w.rng.IntN(w.r.total)
	for k := range w.r.ops {
		if x < w.r.ops[k].cum {
			return k
		}
	}
	return len(w.r.ops) - 1
}

func (w *worker) loop() {
	r := w.r
	stop := context.AfterFunc(r.ctx, w.conn.Abort)
	defer stop()
	consecutive := 0
	for r.ctx.Err() == nil {
		k := w.pick()
		op := &r.ops[k]
		w.req.Method, w.req.Header = op.Method, op.header
		w.req.Path, w.req.Body = w.req.Path[:0], w.req.Body[:0]
		if err := op.Next(w.rng, &w.req); err != nil {
			r.fail(fmt.Errorf("loadgen: op %s: %w", op.Name, err))
			return
		}
		t0 := time.Now()
		measuring := !t0.Before(r.warmEnd)
		if measuring {
			if !r.deadline.IsZero() && !t0.Before(r.deadline) {
				return
			}
			if r.deadline.IsZero() && r.remaining.Add(-1) < 0 {
				return
			}
		}
		status, _, err := w.conn.Do(&w.req, false)
		t1 := time.Now()
		st := w.stats[k]
		if err != nil {
			if errors.Is(err, ErrAborted) || r.ctx.Err() != nil {
				return
			}
			if measuring {
				st.Transport[ErrorKind(err)]++
				r.failed.Add(1)
				w.lastEnd = t1
			}
			// Back off while the server is unreachable, without spinning.
			consecutive++
			if consecutive >= 3 {
				sleep(r.ctx, time.Duration(min(consecutive*10, 500))*time.Millisecond)
			}
			continue
		}
		consecutive = 0
		if !measuring {
			continue
		}
		st.Requests++
		st.Status[status]++
		if op.OK != nil && op.OK(status) || op.OK == nil && status >= 200 && status < 300 {
			st.OK++
		} else {
			r.failed.Add(1)
		}
		st.Latency.Record(t1.Sub(t0))
		w.lastEnd = t1
		r.done.Add(1)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
