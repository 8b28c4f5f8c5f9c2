package monitor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/monitor/follow"
	"github.com/cloverenclave/clover/monitor/incident"
	"github.com/cloverenclave/clover/monitor/replay"
	"github.com/cloverenclave/clover/monitor/rules"
	"github.com/cloverenclave/clover/monitor/witness"
)

// State keys in the monitor's database.
const (
	stateFollower = "follower"
	stateReplay   = "replay"
)

// Rules of the incidents the monitor raises itself (the detection rules
// raise theirs under their own names).
const (
	RuleLog       = "log"     // the log is forked, rolled back, rewritten or unreadable
	RuleReplay    = "replay"  // a decision that policy did not allow
	RuleProbe     = "probe"   // a canary probe failed
	RuleWitness   = "witness" // a checkpoint submitted to the witness was refused
	RuleUnwitness = "unwitnessed"
)

// unreachableAfter is how many polls in a row may fail to fetch the log
// before it is an incident.
const unreachableAfter = 20

// Monitor is one running monitor: it follows and verifies a log, replays
// its decisions, runs the detection rules, witnesses checkpoints, probes
// the gateway and raises incidents.
type Monitor struct {
	cfg       *Config
	log       *slog.Logger
	now       func() time.Time
	key       *witness.Key
	witness   *witness.Witness
	store     *incident.Store
	notifier  *incident.Notifier
	operators *operators
	metrics   *metrics
	origin    string
	cosigVer  note.Verifier
	logVer    note.Verifier
	canarySub string
	prober    *prober

	// mu guards what the poll loop and the prober share.
	mu       sync.Mutex
	follower *follow.Follower
	replay   *replay.Replayer
	rules    *rules.Engine
	pending  map[string]*incident.Probe // by request id
	// canarySeen holds canary entries no pending probe matched yet.
	canarySeen map[string]canaryEntry
	status     Status
	failures   int
}

// Status is what GET /v1/status shows.
type Status struct {
	Origin         string    `json:"origin"`
	Size           uint64    `json:"size"`
	Checkpoint     string    `json:"checkpoint,omitempty"`
	LastPoll       time.Time `json:"last_poll"`
	LastGrowth     time.Time `json:"last_growth"`
	LastError      string    `json:"last_error,omitempty"`
	EntriesSeen    uint64    `json:"entries_verified"`
	WitnessKey     string    `json:"witness_key"`
	ReportKey      string    `json:"report_key"`
	PendingProbes  int       `json:"pending_probes"`
	ProbesDisabled bool      `json:"probes_disabled"`
}

// Options are what New needs besides the configuration.
type Options struct {
	Logger *slog.Logger
	// Fetcher reads the log; nil means an HTTP fetcher of Config.Log.URL.
	Fetcher auditlog.Fetcher
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HTTPClient is used for probes (default: 10s timeout).
	HTTPClient *http.Client
}

// New opens (or creates) the monitor's data directory and state.
func New(ctx context.Context, cfg *Config, opts Options) (_ *Monitor, err error) {
	if err := cfg.Ready(); err != nil {
		return nil, err
	}
	m := &Monitor{cfg: cfg, log: opts.Logger, now: opts.Now, pending: map[string]*incident.Probe{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, err
	}
	if m.logVer, err = note.NewVerifier(cfg.Log.Key); err != nil {
		return nil, fmt.Errorf("log key: %q is not a note verifier key: %v", cfg.Log.Key, err)
	}
	m.origin = m.logVer.Name()
	if m.key, err = witness.LoadOrCreateKey(KeyPath(cfg), cfg.Name, rand.Reader); err != nil {
		return nil, fmt.Errorf("monitor key: %w", err)
	}
	if m.cosigVer, err = fnote.NewVerifierForCosignatureV1(m.key.CosignerVerifierKey()); err != nil {
		return nil, err
	}
	opsPath := cfg.Path(cfg.OperatorsFile)
	if opsPath == "" {
		opsPath = filepath.Join(cfg.Data, "operators")
	}
	var created bool
	if m.operators, created, err = loadOrCreateOperators(opsPath); err != nil {
		return nil, err
	}
	if created {
		m.log.Info("created the operators file with one operator, admin; its token is in the file", "file", opsPath)
	}
	if cfg.Canary.TokenFile != "" {
		if m.canarySub, err = canarySubject(cfg.Path(cfg.Canary.TokenFile)); err != nil {
			return nil, err
		}
	}
	targets, err := webhookTargets(cfg)
	if err != nil {
		return nil, err
	}
	if m.store, err = incident.Open(filepath.Join(cfg.Data, "monitor.db"), incident.WithTargets(targets...)); err != nil {
		return nil, fmt.Errorf("monitor database: %w", err)
	}
	defer func() {
		if err != nil {
			m.store.Close()
		}
	}()
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	m.notifier = incident.NewNotifier(m.store, targets, &http.Client{Timeout: 10 * time.Second}, m.log.With("part", "notify"))
	m.metrics = newMetrics()
	m.prober = newProber(m, client)

	if m.witness, err = witness.New(m.key, map[string]string{m.origin: cfg.Log.Key},
		filepath.Join(cfg.Data, "witness-state.json"), m.now, witness.OnEvent(m.witnessEvent)); err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}

	src := opts.Fetcher
	if src == nil {
		if src, err = auditlog.NewHTTPFetcher(cfg.Log.URL, nil); err != nil {
			return nil, err
		}
	}
	if err := m.restore(ctx, src); err != nil {
		return nil, err
	}
	return m, nil
}

// KeyPath is where the monitor keeps its private key.
func KeyPath(cfg *Config) string { return filepath.Join(cfg.Data, "monitor.key") }

// restore loads the follower's and the replayer's state, and the pending
// probes.
func (m *Monitor) restore(ctx context.Context, src auditlog.Fetcher) error {
	var st follow.State
	b, ok, err := m.store.State(ctx, stateFollower)
	if err != nil {
		return err
	}
	if ok {
		if err := st.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("follower state in the monitor database: %w", err)
		}
	}
	if m.follower, err = follow.New(src, m.cfg.Log.Key, st, follow.Options{}); err != nil {
		return err
	}
	m.replay = replay.New()
	if b, ok, err = m.store.State(ctx, stateReplay); err != nil {
		return err
	} else if ok && len(b) > 8 {
		if err := m.replay.Restore(binary.BigEndian.Uint64(b), b[8:]); err != nil {
			return fmt.Errorf("replay state in the monitor database: %w", err)
		}
	}
	rc := rules.Config{Rules: m.cfg.Rules}
	if len(rc.Rules) == 0 {
		rc = rules.DefaultConfig()
	}
	if m.rules, err = rules.New(rc); err != nil {
		return err
	}
	pending, err := m.store.PendingProbes(ctx)
	if err != nil {
		return err
	}
	for i := range pending {
		p := pending[i]
		m.pending[p.RequestID] = &p
	}
	m.status = Status{Origin: m.origin, Size: st.Size, WitnessKey: m.key.CosignerVerifierKey(),
		ReportKey: m.key.NoteVerifierKey(), EntriesSeen: st.Size, ProbesDisabled: m.cfg.Canary.TokenFile == ""}
	return nil
}

// Close releases the database.
func (m *Monitor) Close() error { return m.store.Close() }

// Key returns the monitor's key.
func (m *Monitor) Key() *witness.Key { return m.key }

// Store returns the monitor's database.
func (m *Monitor) Store() *incident.Store { return m.store }

// Run follows the log, probes the gateway and delivers notifications until
// ctx is done. It returns an error only when the monitor cannot go on (its
// own database failed); problems of the log are incidents, not errors.
func (m *Monitor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := m.notifier.Run(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("notifier stopped", "error", err)
		}
	}()
	if m.cfg.Canary.TokenFile != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.prober.run(ctx)
		}()
	}
	defer wg.Wait()
	t := time.NewTicker(m.cfg.Log.PollInterval)
	defer t.Stop()
	for {
		if _, err := m.Poll(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Poll fetches the log's checkpoint once and processes every new entry. It
// returns the number of entries processed. A violation of the log or an
// unreachable log is an incident, not an error; an error means the
// monitor's own database failed.
func (m *Monitor) Poll(ctx context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := m.now()
	var dbErr error
	n, err := m.follower.Poll(ctx, func(ch follow.Chunk) error {
		if err := m.process(ctx, ch, start); err != nil {
			dbErr = err
			return err
		}
		return nil
	})
	m.status.LastPoll = m.now()
	if dbErr != nil {
		return n, dbErr
	}
	if n > 0 {
		m.status.LastGrowth = m.status.LastPoll
	}
	var v *follow.Violation
	switch {
	case err == nil:
		m.failures = 0
		m.status.LastError = ""
	case errors.As(err, &v):
		m.status.LastError = v.Error()
		m.metrics.violations.WithLabelValues(v.Kind).Inc()
		if err := m.raise(ctx, violationIncident(v)); err != nil {
			return n, err
		}
	case ctx.Err() != nil:
		return n, nil
	default:
		m.failures++
		m.status.LastError = err.Error()
		m.metrics.pollErrors.Inc()
		m.log.Warn("cannot read the log", "error", err, "failures_in_a_row", m.failures)
		if m.failures == unreachableAfter {
			in := incident.Incident{Key: "log:unreachable", Rule: RuleLog, Severity: string(rules.High),
				Title:  fmt.Sprintf("the log cannot be read (%d polls in a row failed)", m.failures),
				Detail: err.Error()}
			if err := m.raise(ctx, in); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// violationIncident turns a follower's violation into a critical incident.
// The key holds the kind and the last accepted checkpoint, so that a log
// that stays forked (each poll finding a new checkpoint of the other
// history) is one incident, counted, not one per poll.
func violationIncident(v *follow.Violation) incident.Incident {
	h := sha256.New()
	h.Write(v.Old)
	title := map[string]string{
		"fork":           "the log forked: a checkpoint is inconsistent with one accepted before",
		"rollback":       "the log rolled back: a checkpoint is smaller than one accepted before",
		"entry_mismatch": "the log's entries do not match its signed checkpoint (rewritten entries)",
		"bad_bundle":     "the log serves a malformed entry bundle",
		"bad_checkpoint": "the log serves a checkpoint that does not verify",
	}[v.Kind]
	if title == "" {
		title = "the log violates its guarantees (" + v.Kind + ")"
	}
	detail := v.Msg
	if len(v.Old) > 0 {
		detail += "\n\naccepted checkpoint:\n" + checkpointText(v.Old)
	}
	if len(v.New) > 0 {
		detail += "\n\nnew checkpoint:\n" + checkpointText(v.New)
	}
	return incident.Incident{Key: "log:" + v.Kind + ":" + hex.EncodeToString(h.Sum(nil))[:16], Rule: RuleLog,
		Severity: string(rules.Critical), Title: title, Detail: detail}
}

// checkpointText is a signed checkpoint for people: the note, capped.
func checkpointText(b []byte) string {
	const max = 2048
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// raise stores one incident outside a chunk and wakes the notifier.
func (m *Monitor) raise(ctx context.Context, in incident.Incident) error {
	created, err := m.store.Commit(ctx, incident.Batch{Incidents: []incident.Incident{in}})
	if err != nil {
		return err
	}
	m.created(created)
	return nil
}

func (m *Monitor) created(ins []incident.Incident) {
	for _, in := range ins {
		m.metrics.incidents.WithLabelValues(in.Severity, in.Rule).Inc()
		m.log.Warn("incident", "id", in.ID, "rule", in.Rule, "severity", in.Severity, "title", in.Title)
	}
	if len(ins) > 0 {
		m.notifier.Wake()
	}
}

// witnessEvent turns a refusal of the witness into an incident.
func (m *Monitor) witnessEvent(ev witness.Event) {
	sev := rules.High
	if ev.Kind == "fork" {
		sev = rules.Critical
	}
	h := sha256.Sum256(append(append([]byte(ev.Kind), ev.Old...), ev.New...))
	in := incident.Incident{Key: "witness:" + ev.Kind + ":" + hex.EncodeToString(h[:8]), Rule: RuleWitness,
		Severity: string(sev), Title: "the witness refused a checkpoint of " + ev.Origin + " (" + ev.Kind + ")",
		Detail: ev.Msg}
	if len(ev.Old) > 0 {
		in.Detail += "\n\ncosigned checkpoint:\n" + checkpointText(ev.Old)
	}
	if len(ev.New) > 0 {
		in.Detail += "\n\nsubmitted checkpoint:\n" + checkpointText(ev.New)
	}
	if err := m.raise(context.Background(), in); err != nil {
		m.log.Error("cannot store a witness incident", "error", err)
	}
}

// cosigned says whether a signed checkpoint carries this monitor's
// cosignature.
func (m *Monitor) cosigned(signed []byte) bool {
	n, err := note.Open(signed, note.VerifierList(m.logVer, m.cosigVer))
	if err != nil {
		return false
	}
	for _, s := range n.Sigs {
		if s.Name == m.cosigVer.Name() && s.Hash == m.cosigVer.KeyHash() {
			return true
		}
	}
	return false
}
