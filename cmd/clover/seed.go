package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/config"
	"github.com/cloverenclave/clover/loadgen"
	"github.com/cloverenclave/clover/synth"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

const defaultURL = "http://127.0.0.1:7400"

func newSeedCmd() *cobra.Command {
	var (
		flags       configFlags
		subjects    int
		seed        uint64
		rawURL      string
		token       string
		concurrency int
	)
	c := &cobra.Command{
		Use:   "seed --subjects N [--seed S] [--url URL] [--data DIR | --token T] [--concurrency 16]",
		Short: "Write a synthetic population to a running enclave",
		Long: `Writes N synthetic subjects (ids s-00000001 to s-N, see package synth) to a
running enclave with PUT /v1/subjects/{id}, over keep-alive connections in
parallel. The same --seed always gives the same population, so
'clover bench --subjects N --seed S' knows what the server holds.

About 1% of the subjects come from outside the EU/EEA: the enclave refuses
them (422 outside_jurisdiction); they are counted as refused, not as errors.

The token, with the role ingest, is minted from the development issuer in the
data directory unless --token is given.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if subjects < 1 {
				return usagef("--subjects must be at least 1")
			}
			if concurrency < 1 || concurrency > 1024 {
				return usagef("--concurrency must be between 1 and 1024")
			}
			target, err := loadgen.ParseTarget(rawURL)
			if err != nil {
				return usageError{fmt.Errorf("--url: %w", err)}
			}
			tok, err := callerToken(&flags, token, "clover-seed", []string{"ingest"}, 12*time.Hour)
			if err != nil {
				return err
			}
			s := &seeder{target: target, token: tok, gen: synth.New(seed), n: subjects, concurrency: concurrency,
				stdout: c.OutOrStdout(), stderr: c.ErrOrStderr()}
			return s.run(c.Context())
		},
	}
	flags.register(c)
	c.Flags().IntVar(&subjects, "subjects", 0, "number of subjects to write (required)")
	c.Flags().Uint64Var(&seed, "seed", 1, "seed of the synthetic population")
	c.Flags().StringVar(&rawURL, "url", defaultURL, "base URL of the enclave's gateway")
	c.Flags().StringVar(&token, "token", "", "bearer token with the role ingest (default: minted from the development issuer in --data)")
	c.Flags().IntVar(&concurrency, "concurrency", 16, "parallel connections")
	return c
}

// callerToken returns token if set, else mints one for roles from the
// development issuer of the configuration's data directory.
func callerToken(flags *configFlags, token, subject string, roles []string, ttl time.Duration) (string, error) {
	if token != "" {
		return token, checkToken(token)
	}
	cfg, err := flags.load()
	if err != nil {
		return "", err
	}
	return mintToken(cfg, subject, roles, ttl)
}

func checkToken(token string) error {
	if strings.ContainsAny(token, " \t\r\n") {
		return usagef("--token: a bearer token has no spaces or line breaks")
	}
	return nil
}

// mintToken mints a token from the development issuer of cfg's data
// directory, as 'clover token' does.
func mintToken(cfg *config.Config, subject string, roles []string, ttl time.Duration) (string, error) {
	if !cfg.Identity.DevIssuer {
		return "", usagef("the configuration does not use the development issuer (identity.dev_issuer is false): give --token")
	}
	dev, err := authn.LoadOrCreateDevIssuer(filepath.Join(cfg.Data, "dev-issuer"), cfg.Identity.Issuer, cfg.Identity.Audience)
	if err != nil {
		return "", fmt.Errorf("development issuer: %w", err)
	}
	tok, err := dev.Mint(authn.TokenClaims{Subject: subject, Roles: roles, Country: "IE"}, ttl, time.Now())
	if err != nil {
		return "", fmt.Errorf("mint a token: %w", err)
	}
	return tok, nil
}

// reachError explains a transport error on the first request to the server.
func reachError(target *loadgen.Target, err error) error {
	hint := ""
	switch loadgen.ErrorKind(err) {
	case "connection refused":
		hint = " (is `clover serve` running there?)"
	case "malformed response", "chunked response":
		hint = " (is it a Clover gateway, and the right scheme, http or https?)"
	}
	msg := err.Error()
	var de *loadgen.DialError
	if errors.As(err, &de) {
		msg = de.Err.Error()
	}
	return fmt.Errorf("cannot reach the server at %s: %s%s", target, msg, hint)
}

// apiError is the gateway's error body.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorCode returns the code of a gateway error body, or "".
func errorCode(body []byte) (code, message string) {
	var e apiError
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	return e.Error.Code, e.Error.Message
}

// statusError explains an unexpected answer to the probe request.
func statusError(target *loadgen.Target, what string, status int, body []byte) error {
	code, msg := errorCode(body)
	switch {
	case status == 401:
		return fmt.Errorf("the server at %s rejected the token (401 %s: %s); a token minted from --data is accepted only with the server's own data directory", target, code, msg)
	case status == 403:
		return fmt.Errorf("the server at %s refused %s: %s", target, what, msg)
	case code == "":
		return fmt.Errorf("%s at %s answered %d, not a Clover gateway answer: is the URL right?", what, target, status)
	default:
		return fmt.Errorf("%s at %s answered %d %s: %s", what, target, status, code, msg)
	}
}

type seeder struct {
	target         *loadgen.Target
	token          string
	gen            *synth.Generator
	n, concurrency int
	stdout, stderr io.Writer

	next atomic.Int64 // last subject number handed out
	done atomic.Int64 // subjects answered

	mu    sync.Mutex
	tally seedTally
}

type seedTally struct {
	created, replaced, refused int64
	errors                     map[string]int64 // "422 invalid_fields", "connection reset", ...
	sites                      map[string]int64
	lastError                  string // the last error's message
}

func newTally() seedTally {
	return seedTally{errors: map[string]int64{}, sites: map[string]int64{}}
}

func (t *seedTally) add(o seedTally) {
	t.created += o.created
	t.replaced += o.replaced
	t.refused += o.refused
	for k, v := range o.errors {
		t.errors[k] += v
	}
	for k, v := range o.sites {
		t.sites[k] += v
	}
	if o.lastError != "" {
		t.lastError = o.lastError
	}
}

func (t *seedTally) errorCount() int64 {
	var n int64
	for _, v := range t.errors {
		n += v
	}
	return n
}

// fatalError stops the seeding: the token was refused, or the server went
// away.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }

// put writes subject i and records the outcome in t.
func (s *seeder) put(conn *loadgen.Conn, req *loadgen.Request, i int, t *seedTally) error {
	body, err := s.gen.Subject(i).PutBody()
	if err != nil {
		return err
	}
	req.Path = synth.AppendID(append(req.Path[:0], "/v1/subjects/"...), i)
	req.Body = append(req.Body[:0], body...)
	status, resp, err := conn.Do(req, true)
	if err != nil {
		if errors.Is(err, loadgen.ErrAborted) {
			return err
		}
		t.errors[loadgen.ErrorKind(err)]++
		t.lastError = err.Error()
		return err
	}
	switch status {
	case 200, 201:
		var r struct {
			Site    string `json:"site"`
			Created bool   `json:"created"`
		}
		if err := json.Unmarshal(resp, &r); err != nil || r.Site == "" {
			t.errors[strconv.Itoa(status)+" unexpected body"]++
			return nil
		}
		t.sites[r.Site]++
		if r.Created {
			t.created++
		} else {
			t.replaced++
		}
		return nil
	case 401, 403:
		return fatalError{statusError(s.target, "writing a subject", status, resp)}
	}
	code, msg := errorCode(resp)
	if status == 422 && code == "outside_jurisdiction" {
		t.refused++
		return nil
	}
	key := strconv.Itoa(status)
	if code != "" {
		key += " " + code
		t.lastError = msg
	} else {
		t.lastError = "not a Clover gateway error: is the URL right?"
	}
	t.errors[key]++
	return nil
}

func (s *seeder) newRequest() *loadgen.Request {
	return &loadgen.Request{Method: "PUT",
		Header: []byte("Authorization: Bearer " + s.token + "\r\nContent-Type: application/json\r\nUser-Agent: clover-seed\r\n")}
}

func (s *seeder) run(ctx context.Context) error {
	start := time.Now()
	s.tally = newTally()

	// The first subject, alone: a wrong URL, a refused connection or a
	// refused token is reported before anything runs in parallel.
	probe := s.target.NewConn()
	first := newTally()
	err := s.put(probe, s.newRequest(), 1, &first)
	probe.Close()
	var fe fatalError
	switch {
	case errors.As(err, &fe):
		return fe.err
	case errors.Is(err, loadgen.ErrAborted), err != nil && ctx.Err() != nil:
		return errors.New("interrupted")
	case err != nil:
		return reachError(s.target, err)
	}
	for k := range first.errors {
		return fmt.Errorf("writing the first subject (%s) at %s failed: %s: %s", synth.ID(1), s.target, k, first.lastError)
	}
	s.tally.add(first)
	s.next.Store(1)
	s.done.Store(1)

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopProgress := s.progress(start)
	var wg sync.WaitGroup
	for range min(s.concurrency, s.n-1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(runCtx, cancel)
		}()
	}
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)

	s.report(elapsed)
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after %s of %s subjects", group(s.done.Load()), group(int64(s.n)))
	}
	if n := s.tally.errorCount(); n > 0 {
		return fmt.Errorf("%d subjects were not written; the last error: %s", n, s.tally.lastError)
	}
	return nil
}

func (s *seeder) worker(ctx context.Context, cancel context.CancelCauseFunc) {
	conn := s.target.NewConn()
	defer conn.Close()
	stop := context.AfterFunc(ctx, conn.Abort)
	defer stop()
	req := s.newRequest()
	t := newTally()
	defer func() {
		s.mu.Lock()
		s.tally.add(t)
		s.mu.Unlock()
	}()
	consecutive := 0
	for ctx.Err() == nil {
		i := int(s.next.Add(1))
		if i > s.n {
			return
		}
		err := s.put(conn, req, i, &t)
		var fe fatalError
		switch {
		case errors.Is(err, loadgen.ErrAborted):
			return
		case errors.As(err, &fe):
			cancel(fe.err)
			return
		case err != nil:
			if consecutive++; consecutive >= 5 {
				cancel(fmt.Errorf("lost the server at %s: %w", s.target, err))
				return
			}
		default:
			consecutive = 0
		}
		s.done.Add(1)
	}
}

// progress shows a bar on a terminal, or a line every few seconds
// otherwise.
func (s *seeder) progress(start time.Time) (stop func()) {
	f, isFile := s.stderr.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd()))
	var bar *progressbar.ProgressBar
	every := 5 * time.Second
	if tty {
		every = 200 * time.Millisecond
		bar = newBar(s.stderr, int64(s.n), "seeding", "subjects")
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				if bar != nil {
					bar.Set64(s.done.Load())
					bar.Finish()
				}
				return
			case <-tick.C:
				n := s.done.Load()
				if bar != nil {
					bar.Set64(n)
					continue
				}
				el := time.Since(start)
				fmt.Fprintf(s.stderr, "seed: %d/%d subjects (%.0f%%) in %s, %.0f/s\n",
					n, s.n, 100*float64(n)/float64(s.n), el.Round(time.Second), float64(n)/el.Seconds())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (s *seeder) report(elapsed time.Duration) {
	t := s.tally
	w := s.stdout
	answered := t.created + t.replaced + t.refused + t.errorCount()
	fmt.Fprintf(w, "seeded %s subjects (seed %d) at %s in %s: %s/s\n",
		group(answered), s.gen.Seed(), s.target, elapsed.Round(time.Millisecond), group(int64(float64(answered)/elapsed.Seconds())))
	fmt.Fprintf(w, "  written  %10s  (created %s, replaced %s)\n", group(t.created+t.replaced), group(t.created), group(t.replaced))
	fmt.Fprintf(w, "  refused  %10s  (422 outside_jurisdiction: subjects from outside the enclave's jurisdictions, as expected)\n", group(t.refused))
	fmt.Fprintf(w, "  errors   %10s\n", group(t.errorCount()))
	for _, k := range sortedKeys(t.errors) {
		fmt.Fprintf(w, "    %-28s %s\n", k, group(t.errors[k]))
	}
	if len(t.sites) > 0 {
		fmt.Fprintf(w, "  by site\n")
		for _, k := range sortedKeys(t.sites) {
			fmt.Fprintf(w, "    %-28s %s\n", k, group(t.sites[k]))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// group formats n with thousands separators: 1234567 → "1,234,567".
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var parts []string
	for len(s) > 3 {
		parts = append(parts, s[len(s)-3:])
		s = s[:len(s)-3]
	}
	parts = append(parts, s)
	slices.Reverse(parts)
	out := strings.Join(parts, ",")
	if neg {
		return "-" + out
	}
	return out
}

// newBar is the progress bar of the CLI's long runs: count, rate and ETA.
func newBar(w io.Writer, total int64, desc, unit string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(40))
}
