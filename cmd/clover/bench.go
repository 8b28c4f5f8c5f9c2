package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/config"
	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/loadgen"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/synth"
	"github.com/spf13/cobra"
)

// benchOps are the operations a mix may name. "transfer" is reserved for
// the cross-border transfer API when it lands.
var benchOps = []string{"read", "write"}

type benchFlags struct {
	config      configFlags
	url         string
	token       string
	concurrency int
	duration    time.Duration
	requests    int64
	warmup      time.Duration
	mix         string
	subjects    int
	seed        uint64
	fields      string
	jsonOut     string
	ceiling     bool
	employees   string
}

func newBenchCmd() *cobra.Command {
	var f benchFlags
	c := &cobra.Command{
		Use:   "bench [--url URL] [--data DIR | --token T] [-c 64] [-d 30s | -n N] [--warmup 5s] [--mix read=90,write=10] --subjects N [--seed S] [--fields a,b] [--json FILE|-]",
		Short: "Measure a running enclave's throughput and latency under load",
		Long: `Drives a running enclave with C concurrent keep-alive connections for a duration
(or N operations) after an unmeasured warm-up, with a weighted mix of
operations, and reports throughput, latency quantiles per operation, errors by
status, the server's own figures from /metrics over the measured period, and
the machine.

Operations:
  read   GET /v1/subjects/{id}[?fields=...] of a random seeded subject, with a
         token holding the role service
  write  PUT /v1/subjects/{id} of a random seeded subject (the same synthetic
         record again), with a token holding the role ingest

Subjects are those 'clover seed --subjects N --seed S' wrote; only those whose
country is in the enclave's jurisdictions are picked. Tokens are minted from
the development issuer in the data directory unless --token is given (it then
needs every role the mix uses). Reads use one service caller unless
--employees spreads them over a population of callers, each kind given as
role:COUNTRY=weight, e.g.

  --employees service:IE=60,support:IE=25,support:CN=10,analyst:DE=5

Each kind gets its own token and the purpose of its role (service: service,
support: support with a justification, analyst: analytics, others: none), so
the gateway's field-level decisions are exercised as in production. A read
that policy refuses entirely (403) counts as an error.

'clover bench --ceiling' runs the same load generator against a trivial
in-process handler (570 bytes of JSON) instead: the generator's own ceiling on
this machine.

Ctrl-C stops the run and prints the figures so far.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if c.Flags().Changed("duration") && c.Flags().Changed("requests") {
				return usagef("give -d/--duration or -n/--requests, not both")
			}
			if f.requests > 0 {
				f.duration = 0
			}
			return runBench(c.Context(), &f, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	f.config.register(c)
	fl := c.Flags()
	fl.StringVar(&f.url, "url", defaultURL, "base URL of the enclave's gateway")
	fl.StringVar(&f.employees, "employees", "", "population of readers as role:COUNTRY=weight,... (default: one service caller)")
	fl.StringVar(&f.token, "token", "", "bearer token for every operation (default: minted from the development issuer in --data)")
	fl.IntVarP(&f.concurrency, "concurrency", "c", 64, "concurrent connections")
	fl.DurationVarP(&f.duration, "duration", "d", 30*time.Second, "measured duration, after the warm-up")
	fl.Int64VarP(&f.requests, "requests", "n", 0, "measured operations, instead of a duration")
	fl.DurationVar(&f.warmup, "warmup", 5*time.Second, "warm-up before measuring (requests sent, not counted)")
	fl.StringVar(&f.mix, "mix", "read=90,write=10", "operations and their weights: read, write")
	fl.IntVar(&f.subjects, "subjects", 0, "number of seeded subjects (as given to clover seed)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the synthetic population (as given to clover seed)")
	fl.StringVar(&f.fields, "fields", "", "fields reads ask for (?fields=a,b); default all")
	fl.StringVar(&f.jsonOut, "json", "", `also write the report as JSON to FILE, or "-" for stdout (the table then goes to stderr)`)
	fl.BoolVar(&f.ceiling, "ceiling", false, "measure the load generator against its in-process trivial handler")
	return c
}

// parseMix parses "read=90,write=10".
func parseMix(s string) (map[string]int, error) {
	mix := map[string]int{}
	total := 0
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Errorf("%q: write op=weight, e.g. read=90", part)
		}
		if name == "transfer" {
			return nil, errors.New("transfer is not available yet")
		}
		if !slices.Contains(benchOps, name) {
			return nil, fmt.Errorf("unknown operation %q (one of %s)", name, strings.Join(benchOps, ", "))
		}
		if _, dup := mix[name]; dup {
			return nil, fmt.Errorf("%s is given twice", name)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 || n > 1_000_000 {
			return nil, fmt.Errorf("%s: the weight must be a whole number from 0 to 1000000", name)
		}
		mix[name] = n
		total += n
	}
	if total == 0 {
		return nil, errors.New("no operation has a positive weight")
	}
	return mix, nil
}

func (f *benchFlags) check() error {
	if f.concurrency < 1 || f.concurrency > 10000 {
		return usagef("-c/--concurrency must be between 1 and 10000")
	}
	if f.requests < 0 {
		return usagef("-n/--requests cannot be negative")
	}
	if f.requests == 0 && f.duration <= 0 {
		return usagef("-d/--duration must be positive (or give -n)")
	}
	if f.warmup < 0 {
		return usagef("--warmup cannot be negative")
	}
	if f.jsonOut != "" && f.jsonOut != "-" {
		if st, err := os.Stat(f.jsonOut); err == nil && st.IsDir() {
			return usagef("--json %s is a directory", f.jsonOut)
		}
	}
	if f.ceiling {
		return nil
	}
	if f.subjects < 1 {
		return usagef("--subjects is required: the number of subjects clover seed wrote")
	}
	return nil
}

func runBench(ctx context.Context, f *benchFlags, stdout, stderr io.Writer) error {
	if err := f.check(); err != nil {
		return err
	}
	table := stdout
	if f.jsonOut == "-" {
		table = stderr
	}
	rep := &benchReport{Machine: machineInfo()}
	progress := func(p loadgen.Progress) {
		if p.Warming || p.Elapsed < time.Second {
			return
		}
		fmt.Fprintf(stderr, "bench: %s, %s requests, %s/s, %s failed\n", p.Elapsed.Round(time.Second),
			group(p.Done), group(int64(float64(p.Done)/p.Elapsed.Seconds())), group(p.Failed))
	}
	lcfg := loadgen.Config{Concurrency: f.concurrency, Duration: f.duration, Requests: f.requests, Warmup: f.warmup,
		Seed: f.seed, Progress: progress, ProgressEvery: 5 * time.Second}

	if f.ceiling {
		rep.Mode = "ceiling"
		res, err := loadgen.Ceiling(ctx, lcfg)
		if err != nil {
			return fmt.Errorf("ceiling: %w", err)
		}
		rep.fill(res)
		return rep.write(f, table, stdout)
	}

	mix, err := parseMix(f.mix)
	if err != nil {
		return usageError{fmt.Errorf("--mix: %w", err)}
	}
	target, err := loadgen.ParseTarget(f.url)
	if err != nil {
		return usageError{fmt.Errorf("--url: %w", err)}
	}
	cfg, err := f.config.load()
	if err != nil {
		return err
	}
	var fieldsQuery string
	if f.fields != "" {
		var names []string
		for _, n := range strings.Split(f.fields, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return usagef("--fields: name at least one field")
		}
		for _, n := range names {
			if !slices.ContainsFunc(cfg.Schema, func(fd schema.Field) bool { return fd.Name == n }) {
				return usagef("--fields: %q is not in the schema", n)
			}
		}
		rep.Fields = names
		fieldsQuery = "?fields=" + strings.Join(names, ",")
	}
	readToken, writeToken := f.token, f.token
	if f.token == "" {
		if mix["read"] > 0 {
			if readToken, err = mintToken(cfg, "clover-bench-reader", []string{"service"}, 24*time.Hour); err != nil {
				return err
			}
		}
		if mix["write"] > 0 {
			if writeToken, err = mintToken(cfg, "clover-bench-writer", []string{"ingest"}, 24*time.Hour); err != nil {
				return err
			}
		}
	} else if err := checkToken(f.token); err != nil {
		return err
	}

	// The subjects the server holds: those of the seeded population whose
	// country the enclave accepts.
	accepted, err := enclave.ExpandCountries(cfg.Enclave.Jurisdictions)
	if err != nil {
		return usageError{fmt.Errorf("bad configuration: %w", err)}
	}
	gen := synth.New(f.seed)
	pool := make([]int, 0, f.subjects)
	for i := 1; i <= f.subjects; i++ {
		if slices.Contains(accepted, gen.Country(i)) {
			pool = append(pool, i)
		}
	}
	if len(pool) == 0 {
		return fmt.Errorf("none of the %d subjects of seed %d is from the enclave's jurisdictions", f.subjects, f.seed)
	}

	var emps []employee
	if f.employees != "" {
		if f.token != "" {
			return usagef("--employees mints a token per kind of caller; it cannot be used with --token")
		}
		if emps, err = parseEmployees(f.employees); err != nil {
			return usageError{fmt.Errorf("--employees: %w", err)}
		}
		for i := range emps {
			if err := emps[i].mint(cfg); err != nil {
				return err
			}
		}
	}
	bo := benchOpsFor(gen, pool, mix, readToken, writeToken, fieldsQuery)
	if len(emps) > 0 && mix["read"] > 0 {
		if err := useEmployees(bo, emps); err != nil {
			return err
		}
	}
	if err := probe(target, bo, pool, fieldsQuery, f); err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		return err
	}

	rep.Mode = "bench"
	rep.Mix, rep.Subjects, rep.Seed, rep.InJurisdiction = mix, f.subjects, f.seed, len(pool)
	var before, after loadgen.Samples
	var beforeErr error
	lcfg.URL = f.url
	lcfg.Ops = bo
	lcfg.OnMeasure = func() { before, beforeErr = scrapeMetrics(target) }
	res, err := loadgen.Run(ctx, lcfg)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	rep.fill(res)
	switch {
	case beforeErr != nil:
		rep.Server = &serverReport{Error: beforeErr.Error()}
	case before != nil:
		var afterErr error
		if after, afterErr = scrapeMetrics(target); afterErr != nil {
			rep.Server = &serverReport{Error: afterErr.Error()}
		} else {
			rep.Server = serverFigures(before, after, res.Elapsed)
		}
	}
	return rep.write(f, table, stdout)
}

// benchOpsFor builds the loadgen ops of the mix.
func benchOpsFor(gen *synth.Generator, pool []int, mix map[string]int, readToken, writeToken, fieldsQuery string) []loadgen.Op {
	const ua = "clover-bench"
	var ops []loadgen.Op
	if w := mix["read"]; w > 0 {
		ops = append(ops, loadgen.Op{Name: "read", Weight: w, Method: http.MethodGet,
			Header: http.Header{"Authorization": {"Bearer " + readToken}, "User-Agent": {ua}},
			Next: func(rng *rand.Rand, req *loadgen.Request) error {
				req.Path = append(req.Path, "/v1/subjects/"...)
				req.Path = synth.AppendID(req.Path, pool[rng.IntN(len(pool))])
				req.Path = append(req.Path, fieldsQuery...)
				return nil
			}})
	}
	if w := mix["write"]; w > 0 {
		ops = append(ops, loadgen.Op{Name: "write", Weight: w, Method: http.MethodPut,
			Header: http.Header{"Authorization": {"Bearer " + writeToken}, "User-Agent": {ua}, "Content-Type": {"application/json"}},
			Next: func(rng *rand.Rand, req *loadgen.Request) error {
				i := pool[rng.IntN(len(pool))]
				body, err := gen.Subject(i).PutBody()
				if err != nil {
					return err
				}
				req.Path = synth.AppendID(append(req.Path, "/v1/subjects/"...), i)
				req.Body = append(req.Body, body...)
				return nil
			}})
	}
	return ops
}

// probe makes one request of each op before the run, so that a wrong URL, a
// refused connection, a rejected token or an unseeded server is one clear
// message rather than a table of errors.
func probe(target *loadgen.Target, ops []loadgen.Op, pool []int, fieldsQuery string, f *benchFlags) error {
	conn := target.NewConn()
	conn.Timeout = 10 * time.Second
	defer conn.Close()
	for _, op := range ops {
		hdr, err := loadgen.RenderHeader(op.Header)
		if err != nil {
			return fmt.Errorf("%s: %w", op.Name, err)
		}
		// Read the first and the last subject: both must have been seeded.
		for _, i := range []int{pool[0], pool[len(pool)-1]} {
			req := &loadgen.Request{Method: op.Method, Header: hdr}
			if op.Name == "read" {
				req.Path = append(synth.AppendID([]byte("/v1/subjects/"), i), fieldsQuery...)
			} else if err := op.Next(rand.New(rand.NewPCG(1, 1)), req); err != nil {
				return err
			}
			status, body, err := conn.Do(req, true)
			if err != nil {
				return reachError(target, err)
			}
			if status == 404 && op.Name == "read" {
				// The gateway answers "no such subject" for a missing record,
				// "no such endpoint" for a wrong path.
				if code, msg := errorCode(body); code == "not_found" && strings.Contains(msg, "subject") {
					return fmt.Errorf("subject %s is not on the server at %s: seed it first (clover seed --subjects %d --seed %d), or give the --subjects and --seed it was seeded with",
						synth.ID(i), target, f.subjects, f.seed)
				}
			}
			if status < 200 || status > 299 {
				return statusError(target, op.Name+" of "+synth.ID(i), status, body)
			}
			if op.Name != "read" {
				break // one write is enough
			}
		}
	}
	return nil
}

func scrapeMetrics(target *loadgen.Target) (loadgen.Samples, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(target.String() + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: %s", resp.Status)
	}
	ss, err := loadgen.ParseMetrics(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	return ss, nil
}

// The report, for the table and for --json.

type benchReport struct {
	Mode           string         `json:"mode"` // "bench" or "ceiling"
	URL            string         `json:"url"`
	Concurrency    int            `json:"concurrency"`
	WarmupSeconds  float64        `json:"warmup_seconds"`
	ElapsedSeconds float64        `json:"elapsed_seconds"`
	Interrupted    bool           `json:"interrupted"`
	Mix            map[string]int `json:"mix,omitempty"`
	Subjects       int            `json:"subjects,omitempty"`
	InJurisdiction int            `json:"subjects_in_jurisdiction,omitempty"`
	Seed           uint64         `json:"seed,omitempty"`
	Fields         []string       `json:"fields,omitempty"`
	Ops            []opReport     `json:"ops"`
	Total          opReport       `json:"total"`
	Generator      cpuReport      `json:"generator"`
	Server         *serverReport  `json:"server,omitempty"`
	Machine        machine        `json:"machine"`
}

type opReport struct {
	Name       string           `json:"name"`
	Requests   int64            `json:"requests"`
	OK         int64            `json:"ok"`
	Errors     int64            `json:"errors"`
	PerSecond  float64          `json:"per_second"`
	LatencyMS  latencyMS        `json:"latency_ms"`
	Status     map[string]int64 `json:"status"`
	Transport  map[string]int64 `json:"transport_errors,omitempty"`
	statusKeys []int
}

type latencyMS struct {
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
	p     [5]time.Duration
	mean  time.Duration
	valid bool
}

type cpuReport struct {
	CPUSeconds       float64 `json:"cpu_seconds"`
	Cores            float64 `json:"cores"`
	MicrosPerRequest float64 `json:"cpu_us_per_request"`
	Note             string  `json:"note,omitempty"`
}

type serverReport struct {
	Error    string        `json:"error,omitempty"`
	Routes   []routeReport `json:"routes,omitempty"`
	Store    []storeReport `json:"store,omitempty"`
	CPU      *cpuReport    `json:"cpu,omitempty"`
	Log      *logReport    `json:"log,omitempty"`
	Requests float64       `json:"requests"`
}

// logReport is the audit log over the measured period: the entries made
// durable, the journal's group commits (syncs) that did it, and how far the
// tree was behind the journal at the end.
type logReport struct {
	Entries        float64 `json:"entries"`
	Syncs          float64 `json:"syncs"`
	EntriesPerSync float64 `json:"entries_per_sync"`
	TreeBehind     float64 `json:"tree_behind"`
}

type routeReport struct {
	Route    string             `json:"route"`
	Requests float64            `json:"requests"`
	ByCode   map[string]float64 `json:"by_code"`
	MeanMS   float64            `json:"mean_ms"`
}

type storeReport struct {
	Site   string  `json:"site"`
	Op     string  `json:"op"`
	Count  float64 `json:"count"`
	MeanUS float64 `json:"mean_us"`
}

type machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model,omitempty"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	Go          string `json:"go"`
	OS          string `json:"os"`
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(fs[1], 10, 64); err == nil {
					m.MemoryBytes = kb << 10
				}
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return m
}

func newOpReport(o *loadgen.OpResult, elapsed time.Duration) opReport {
	r := opReport{Name: o.Name, Requests: o.Requests, OK: o.OK, Errors: o.Errors(), PerSecond: o.Rate(elapsed),
		Status: map[string]int64{}, Transport: o.Transport, statusKeys: o.StatusCodes()}
	for k, v := range o.Status {
		r.Status[strconv.Itoa(k)] = v
	}
	if len(r.Transport) == 0 {
		r.Transport = nil
	}
	h := o.Latency
	if h.Count() > 0 {
		r.LatencyMS.valid = true
		r.LatencyMS.mean = h.Mean()
		for k, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
			r.LatencyMS.p[k] = h.Quantile(q)
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		r.LatencyMS.Mean = ms(h.Mean())
		r.LatencyMS.P50, r.LatencyMS.P90, r.LatencyMS.P99, r.LatencyMS.P999, r.LatencyMS.Max =
			ms(r.LatencyMS.p[0]), ms(r.LatencyMS.p[1]), ms(r.LatencyMS.p[2]), ms(r.LatencyMS.p[3]), ms(r.LatencyMS.p[4])
	}
	return r
}

func (rep *benchReport) fill(res *loadgen.Result) {
	rep.URL, rep.Concurrency, rep.Interrupted = res.URL, res.Concurrency, res.Interrupted
	rep.WarmupSeconds, rep.ElapsedSeconds = res.Warmup.Seconds(), res.Elapsed.Seconds()
	for _, o := range res.Ops {
		rep.Ops = append(rep.Ops, newOpReport(o, res.Elapsed))
	}
	rep.Total = newOpReport(res.Total, res.Elapsed)
	rep.Generator = cpuFigures(res.ProcessCPU.Seconds(), res.Elapsed, float64(res.Total.Requests))
	if rep.Mode == "ceiling" {
		rep.Generator.Note = "generator and trivial server together, in this process"
	} else {
		rep.Generator.Note = "the load generator (this process)"
	}
}

func cpuFigures(cpuSeconds float64, elapsed time.Duration, requests float64) cpuReport {
	r := cpuReport{CPUSeconds: cpuSeconds}
	if elapsed > 0 {
		r.Cores = cpuSeconds / elapsed.Seconds()
	}
	if requests > 0 {
		r.MicrosPerRequest = cpuSeconds * 1e6 / requests
	}
	return r
}

// serverFigures computes the server's own figures over the measured
// period from two scrapes of its /metrics.
func serverFigures(before, after loadgen.Samples, elapsed time.Duration) *serverReport {
	delta := func(name string, match map[string]string) float64 {
		return after.Sum(name, match) - before.Sum(name, match)
	}
	sr := &serverReport{}
	for _, route := range after.LabelValues("clover_http_requests_total", "route") {
		if route == "GET /metrics" {
			continue // the bench's own scrapes
		}
		m := map[string]string{"route": route}
		n := delta("clover_http_requests_total", m)
		if n <= 0 {
			continue
		}
		rr := routeReport{Route: route, Requests: n, ByCode: map[string]float64{}}
		for _, code := range after.LabelValues("clover_http_requests_total", "code") {
			if d := delta("clover_http_requests_total", map[string]string{"route": route, "code": code}); d > 0 {
				rr.ByCode[code] = d
			}
		}
		if cnt := delta("clover_http_request_duration_seconds_count", m); cnt > 0 {
			rr.MeanMS = 1000 * delta("clover_http_request_duration_seconds_sum", m) / cnt
		}
		sr.Routes = append(sr.Routes, rr)
		sr.Requests += n
	}
	sort.Slice(sr.Routes, func(i, j int) bool { return sr.Routes[i].Requests > sr.Routes[j].Requests })
	for _, site := range after.LabelValues("clover_store_operation_duration_seconds_count", "site") {
		for _, op := range after.LabelValues("clover_store_operation_duration_seconds_count", "op") {
			m := map[string]string{"site": site, "op": op}
			if cnt := delta("clover_store_operation_duration_seconds_count", m); cnt > 0 {
				sr.Store = append(sr.Store, storeReport{Site: site, Op: op, Count: cnt,
					MeanUS: 1e6 * delta("clover_store_operation_duration_seconds_sum", m) / cnt})
			}
		}
	}
	if entries := delta("clover_audit_log_durable_entries", nil); entries > 0 {
		lr := &logReport{Entries: entries, Syncs: delta("clover_audit_log_journal_syncs_total", nil),
			TreeBehind: after.Sum("clover_audit_log_durable_entries", nil) - after.Sum("clover_audit_log_integrated_entries", nil)}
		if lr.Syncs > 0 {
			lr.EntriesPerSync = entries / lr.Syncs
		}
		sr.Log = lr
	}
	if after.Sum("process_cpu_seconds_total", nil) > 0 {
		c := cpuFigures(delta("process_cpu_seconds_total", nil), elapsed, sr.Requests)
		c.Note = "the server process, from process_cpu_seconds_total"
		sr.CPU = &c
	}
	return sr
}

func (rep *benchReport) write(f *benchFlags, table, stdout io.Writer) error {
	rep.printTable(table)
	if f.jsonOut == "" {
		return nil
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the report: %w", err)
	}
	b = append(b, '\n')
	if f.jsonOut == "-" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(f.jsonOut, b, 0o644); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	return nil
}

// dur formats a latency compactly: 850µs, 1.25ms, 2.1s.
func dur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func (rep *benchReport) printTable(w io.Writer) {
	title := "clover bench"
	if rep.Mode == "ceiling" {
		title = "clover bench --ceiling (the load generator against a trivial in-process net/http handler, 570-byte JSON)"
	}
	fmt.Fprintf(w, "%s\n", title)
	fmt.Fprintf(w, "  target       %s\n", rep.URL)
	fmt.Fprintf(w, "  load         %d connections, %s measured after %s warm-up", rep.Concurrency,
		(time.Duration(rep.ElapsedSeconds * float64(time.Second))).Round(time.Millisecond), time.Duration(rep.WarmupSeconds*float64(time.Second)))
	if rep.Interrupted {
		fmt.Fprintf(w, " (interrupted)")
	}
	fmt.Fprintln(w)
	if rep.Mode == "bench" {
		var parts []string
		for _, op := range benchOps {
			if wt, ok := rep.Mix[op]; ok {
				parts = append(parts, fmt.Sprintf("%s=%d", op, wt))
			}
		}
		fmt.Fprintf(w, "  mix          %s\n", strings.Join(parts, ","))
		fmt.Fprintf(w, "  subjects     %s (seed %d), %s of them in the enclave's jurisdictions", group(int64(rep.Subjects)), rep.Seed, group(int64(rep.InJurisdiction)))
		if len(rep.Fields) > 0 {
			fmt.Fprintf(w, "; reads ask for %s", strings.Join(rep.Fields, ","))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\trequests\tok\terrors\treq/s\tmean\tp50\tp90\tp99\tp99.9\tmax\t")
	rows := rep.Ops
	if len(rows) > 1 {
		rows = append(rows, rep.Total)
	}
	for _, o := range rows {
		l := o.LatencyMS
		lat := "-\t-\t-\t-\t-\t-"
		if l.valid {
			lat = strings.Join([]string{dur(l.mean), dur(l.p[0]), dur(l.p[1]), dur(l.p[2]), dur(l.p[3]), dur(l.p[4])}, "\t")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", o.Name, group(o.Requests), group(o.OK), group(o.Errors), group(int64(o.PerSecond+0.5)), lat)
	}
	tw.Flush()

	fmt.Fprintln(w)
	if rep.Total.Errors == 0 {
		fmt.Fprintln(w, "errors: none")
	} else {
		fmt.Fprintln(w, "errors:")
		for _, o := range rep.Ops {
			var parts []string
			for _, code := range o.statusKeys {
				if n := o.Status[strconv.Itoa(code)]; code >= 300 || code < 200 {
					parts = append(parts, fmt.Sprintf("HTTP %d ×%s", code, group(n)))
				}
			}
			for _, k := range sortedKeys(o.Transport) {
				parts = append(parts, fmt.Sprintf("%s ×%s", k, group(o.Transport[k])))
			}
			if len(parts) > 0 {
				fmt.Fprintf(w, "  %-6s %s\n", o.Name, strings.Join(parts, ", "))
			}
		}
	}

	if s := rep.Server; s != nil {
		fmt.Fprintln(w)
		if s.Error != "" {
			fmt.Fprintf(w, "server figures unavailable: %s\n", s.Error)
		} else {
			fmt.Fprintln(w, "server (its /metrics, over the measured period)")
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  route\trequests\tby status\tmean latency")
			for _, r := range s.Routes {
				var codes []string
				for _, c := range sortedKeys(r.ByCode) {
					codes = append(codes, fmt.Sprintf("%s:%s", c, group(int64(r.ByCode[c]))))
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.Route, group(int64(r.Requests)), strings.Join(codes, " "), dur(time.Duration(r.MeanMS*float64(time.Millisecond))))
			}
			if len(s.Store) > 0 {
				fmt.Fprintln(tw, "  store (site, operation)\tcalls\t\tmean latency")
				for _, st := range s.Store {
					fmt.Fprintf(tw, "  %s %s\t%s\t\t%s\n", st.Site, st.Op, group(int64(st.Count)), dur(time.Duration(st.MeanUS*float64(time.Microsecond))))
				}
			}
			tw.Flush()
			if l := s.Log; l != nil {
				fmt.Fprintf(w, "  audit log    %s entries durable in %s syncs (%.1f per sync); the tree %s entries behind at the end\n",
					group(int64(l.Entries)), group(int64(l.Syncs)), l.EntriesPerSync, group(int64(l.TreeBehind)))
			}
			if c := s.CPU; c != nil {
				fmt.Fprintf(w, "  server CPU   %.1fs = %.2f cores, %.0f µs per request\n", c.CPUSeconds, c.Cores, c.MicrosPerRequest)
			}
		}
	}
	fmt.Fprintln(w)
	g := rep.Generator
	if g.CPUSeconds > 0 {
		fmt.Fprintf(w, "CPU: %.1fs = %.2f cores, %.1f µs per request (%s)\n", g.CPUSeconds, g.Cores, g.MicrosPerRequest, g.Note)
	}
	m := rep.Machine
	mem := ""
	if m.MemoryBytes > 0 {
		mem = fmt.Sprintf(", %.1f GiB memory", float64(m.MemoryBytes)/(1<<30))
	}
	model := ""
	if m.CPUModel != "" {
		model = " (" + m.CPUModel + ")"
	}
	fmt.Fprintf(w, "machine: %d CPUs%s, GOMAXPROCS %d%s, %s %s\n", m.CPUs, model, m.GOMAXPROCS, mem, m.Go, m.OS)
}

// employee is one kind of caller in the read population of --employees.
type employee struct {
	role, country string
	weight        int
	token         string
	header        []byte // rendered header lines for its reads
}

// parseEmployees reads "role:COUNTRY=weight,...".
func parseEmployees(spec string) ([]employee, error) {
	var out []employee
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		kind, w, ok := strings.Cut(item, "=")
		role, country, ok2 := strings.Cut(kind, ":")
		weight, err := strconv.Atoi(w)
		if !ok || !ok2 || err != nil || weight <= 0 || role == "" || !enclave.ValidCountry(country) {
			return nil, fmt.Errorf("%q is not role:COUNTRY=weight (e.g. support:IE=30, a positive weight, an ISO alpha-2 country)", item)
		}
		out = append(out, employee{role: role, country: country, weight: weight})
	}
	return out, nil
}

// purposeOf is the purpose a caller of this role states.
func purposeOf(role string) (purpose, justification string) {
	switch role {
	case "service":
		return "service", ""
	case "support":
		return "support", "BENCH-1"
	case "analyst":
		return "analytics", ""
	}
	return "", ""
}

func (e *employee) mint(cfg *config.Config) error {
	if !cfg.Identity.DevIssuer {
		return usagef("--employees needs the development issuer (identity.dev_issuer is false)")
	}
	dev, err := authn.LoadOrCreateDevIssuer(filepath.Join(cfg.Data, "dev-issuer"), cfg.Identity.Issuer, cfg.Identity.Audience)
	if err != nil {
		return err
	}
	sub := fmt.Sprintf("clover-bench-%s-%s", e.role, strings.ToLower(e.country))
	if e.token, err = dev.Mint(authn.TokenClaims{Subject: sub, Roles: []string{e.role}, Country: e.country}, 24*time.Hour, time.Now()); err != nil {
		return usageError{err}
	}
	h := http.Header{"Authorization": {"Bearer " + e.token}, "User-Agent": {"clover-bench"}}
	if p, j := purposeOf(e.role); p != "" {
		h.Set("Clover-Purpose", p)
		if j != "" {
			h.Set("Clover-Justification", j)
		}
	}
	e.header, err = loadgen.RenderHeader(h)
	return err
}

// useEmployees makes the read op pick a caller per request, by weight.
func useEmployees(ops []loadgen.Op, emps []employee) error {
	var cum []int
	total := 0
	for _, e := range emps {
		total += e.weight
		cum = append(cum, total)
	}
	for i := range ops {
		if ops[i].Name != "read" {
			continue
		}
		next := ops[i].Next
		ops[i].Header = http.Header{"Authorization": {"Bearer " + emps[0].token}, "User-Agent": {"clover-bench"}}
		if p, j := purposeOf(emps[0].role); p != "" {
			ops[i].Header.Set("Clover-Purpose", p)
			if j != "" {
				ops[i].Header.Set("Clover-Justification", j)
			}
		}
		ops[i].Next = func(rng *rand.Rand, req *loadgen.Request) error {
			n := rng.IntN(total)
			k, _ := slices.BinarySearch(cum, n+1)
			req.Header = emps[k].header
			return next(rng, req)
		}
	}
	return nil
}
