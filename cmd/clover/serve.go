package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/auditlog/subjectindex"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/config"
	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/gateway"
	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/store"
	"github.com/cloverenclave/clover/store/postgres"
	"github.com/cloverenclave/clover/store/sqlite"
	"github.com/cloverenclave/clover/transfer/ledger"
	"github.com/cloverenclave/clover/vault"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
)

func newServeCmd() *cobra.Command {
	var (
		flags     configFlags
		listen    string
		logFormat string
		logLevel  string
		debug     string
	)
	c := &cobra.Command{
		Use:   "serve [--config FILE] [--data DIR] [--listen ADDR]",
		Short: "Run the enclave's gateway (HTTP API)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := flags.load()
			if err != nil {
				return err
			}
			if listen != "" {
				cfg.Server.Listen = listen
			}
			if logFormat != "" {
				cfg.Server.LogFormat = logFormat
			}
			if err := cfg.Validate(); err != nil {
				return usageError{fmt.Errorf("bad flags: %w", err)}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level %q: use debug, info, warn or error", logLevel)
			}
			log := newLogger(c.ErrOrStderr(), cfg.Server.LogFormat, level)
			if debug != "" {
				if err := serveDebug(c.Context(), debug, log); err != nil {
					return err
				}
			}
			return serve(c.Context(), cfg, log)
		},
	}
	flags.register(c)
	c.Flags().StringVar(&listen, "listen", "", "address to listen on (default 127.0.0.1:7400)")
	c.Flags().StringVar(&logFormat, "log-format", "", "log format: text or json (default text)")
	c.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	c.Flags().StringVar(&debug, "debug-listen", "", "serve Go's pprof profiles on this address (e.g. 127.0.0.1:7409); off by default")
	return c
}

func newLogger(w interface{ Write([]byte) (int, error) }, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// enclaveParts are the opened stores and the vault over them.
type enclaveParts struct {
	vault  *vault.Vault
	stores []store.Store
}

func (p *enclaveParts) close() error {
	var errs []error
	for _, s := range p.stores {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// openEnclave opens every site's key-encryption key and store and builds the
// vault. Stores are instrumented with metrics when m is not nil.
func openEnclave(ctx context.Context, cfg *config.Config, m *gateway.Metrics) (*enclaveParts, error) {
	enc, err := enclave.New(cfg.EnclaveConfig())
	if err != nil {
		return nil, usageError{err}
	}
	sch, err := schema.New(cfg.Schema)
	if err != nil {
		return nil, usageError{err}
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	parts := &enclaveParts{}
	var sites []vault.Site
	for _, s := range cfg.Enclave.Sites {
		kek, err := keys.LoadOrCreateFileKEK(filepath.Join(cfg.Data, "kek", s.Name+".key"), rand.Reader)
		if err != nil {
			parts.close()
			return nil, fmt.Errorf("site %s: %w", s.Name, err)
		}
		st, err := openStore(ctx, cfg, s)
		if err != nil {
			parts.close()
			return nil, fmt.Errorf("site %s: %w", s.Name, err)
		}
		parts.stores = append(parts.stores, st)
		if m != nil {
			st = m.InstrumentStore(s.Name, st)
		}
		sites = append(sites, vault.Site{Name: s.Name, Store: st, KEK: kek})
	}
	v, err := vault.New(enc, sch, sites, vault.WithCache(cfg.Server.RecordCacheBytes))
	if err != nil {
		parts.close()
		return nil, err
	}
	parts.vault = v
	return parts, nil
}

func openStore(ctx context.Context, cfg *config.Config, s config.Site) (store.Store, error) {
	if dsn := s.Storage.Postgres; dsn != "" {
		return postgres.Open(ctx, dsn, s.Name)
	}
	dir := s.Storage.Embedded
	if dir == "" {
		dir = filepath.Join("sites", s.Name)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(cfg.Data, dir)
	}
	return sqlite.Open(dir)
}

// newVerifier builds the token verifier the configuration asks for, and the
// development issuer's JWKS when it is in use.
func newVerifier(ctx context.Context, cfg *config.Config) (*authn.Verifier, []byte, error) {
	id := cfg.Identity
	ac := authn.Config{Issuer: id.Issuer, Audience: id.Audience}
	switch {
	case id.DevIssuer:
		dev, err := authn.LoadOrCreateDevIssuer(filepath.Join(cfg.Data, "dev-issuer"), id.Issuer, id.Audience)
		if err != nil {
			return nil, nil, err
		}
		v, err := authn.NewVerifier(ac, dev.Keys(), time.Now)
		return v, dev.JWKS(), err
	case id.JWKSFile != "":
		ks, err := authn.LoadJWKSFile(id.JWKSFile)
		if err != nil {
			return nil, nil, usageError{err}
		}
		v, err := authn.NewVerifier(ac, ks, time.Now)
		return v, nil, err
	default:
		v, err := authn.NewVerifier(ac, authn.RemoteKeys(ctx, id.JWKSURL), time.Now)
		return v, nil, err
	}
}

// loadPolicySet loads the configured policy directory (or the built-in
// set) and checks it against the field schema.
func loadPolicySet(cfg *config.Config) (*policy.Set, error) {
	var set *policy.Set
	var err error
	if cfg.Policy.Dir == "" {
		set, err = policy.Default()
	} else {
		set, err = policy.Load(os.DirFS(cfg.Policy.Dir))
	}
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	sch, err := schema.New(cfg.Schema)
	if err != nil {
		return nil, err
	}
	if err := policy.Check(set, sch); err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	return set, nil
}

func policySource(cfg *config.Config) string {
	if cfg.Policy.Dir == "" {
		return "built-in"
	}
	return cfg.Policy.Dir
}

// pseudonymKeys derives the pseudonymisation keys, and the key of the
// pseudonyms that name subjects in the audit log, from the enclave's root
// secret (DATA/secrets/pseudonym.key, made on first start).
func pseudonymKeys(cfg *config.Config) (*pseudonym.Transformer, *pseudonym.SIV, []byte, error) {
	root, err := keys.LoadOrCreateSecret(filepath.Join(cfg.Data, "secrets", "pseudonym.key"), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	derive := func(label string, n int) []byte {
		k, derr := keys.DeriveKey(root, label, n)
		if derr != nil && err == nil {
			err = derr
		}
		return k
	}
	hk, sk, fk := derive("pseudonym/hmac", pseudonym.RootKeySize), derive("pseudonym/siv", pseudonym.SIVKeySize), derive("pseudonym/ff1", 32)
	lk := derive("auditlog/subject", 32)
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := pseudonym.NewTokenizer(hk)
	if err != nil {
		return nil, nil, nil, err
	}
	siv, err := pseudonym.NewSIV(sk)
	if err != nil {
		return nil, nil, nil, err
	}
	tr, err := pseudonym.NewTransformer(pseudonym.Keys{HMAC: tok, SIV: siv, FF1Key: fk})
	return tr, siv, lk, err
}

// serveDebug serves net/http/pprof on its own listener, apart from the API,
// for profiling a running server. It stops with ctx.
func serveDebug(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Warn("serving pprof profiles; do not expose this address", "debug_url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return nil
}

// klogOnce guards klog's process-wide logger.
var klogOnce sync.Once

// defaultGCPercent is the garbage collector's target when GOGC is not set.
// The read cache keeps a large live heap that every collection must mark;
// letting the heap grow to 5x the live data before collecting trades memory
// (plentiful on an enclave host) for about a fifth of the marking CPU.
const defaultGCPercent = 400

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	metrics := gateway.NewMetrics()
	parts, err := openEnclave(ctx, cfg, metrics)
	if err != nil {
		return err
	}
	defer func() {
		if err := parts.close(); err != nil {
			log.Error("closing stores", "error", err)
		}
	}()
	verifier, jwks, err := newVerifier(ctx, cfg)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	loadPolicies := func() (*policy.Set, error) { return loadPolicySet(cfg) }
	policies, err := loadPolicies()
	if err != nil {
		return usageError{err}
	}
	tr, siv, logKey, err := pseudonymKeys(cfg)
	if err != nil {
		return err
	}
	lo := logOptions(cfg)
	lo.Logger = log.With("part", "auditlog")
	// tessera logs through klog (a process-wide logger); send it to ours, so
	// that every line has the configured format. Once per process: klog's
	// logger is global, and tessera reads it from its own goroutines.
	klogOnce.Do(func() { klog.SetSlogLogger(log.With("part", "tessera")) })
	audit, err := auditlog.Open(ctx, lo)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer func() {
		if err := audit.Close(); err != nil {
			log.Error("closing the audit log", "error", err)
		}
	}()
	registerLogMetrics(metrics, audit)
	// The subject access index (GET /v1/subjects/{id}/accesses): derived
	// from the log, fed by the gateway in the background. Deferred closes run
	// in reverse: the gateway's feeder stops (writing what is queued) before
	// the index closes, and the index before the audit log.
	accessIndex, err := subjectindex.OpenLogged(filepath.Join(cfg.Data, "log", "subjects.db"), log)
	if err != nil {
		return fmt.Errorf("subject access index: %w", err)
	}
	defer func() {
		if err := accessIndex.Close(); err != nil {
			log.Error("closing the subject access index", "error", err)
		}
	}()
	// The transfer ledger (the daily quotas, GET /v1/transfers): written
	// synchronously by the gateway; closed after it.
	transfers, err := ledger.Open(filepath.Join(cfg.Data, "log", "transfers.db"))
	if err != nil {
		return fmt.Errorf("transfer ledger: %w", err)
	}
	defer func() {
		if err := transfers.Close(); err != nil {
			log.Error("closing the transfer ledger", "error", err)
		}
	}()
	gw := gateway.New(gateway.Config{MaxBodyBytes: cfg.Server.MaxBodyBytes, JWKS: jwks, Version: version, Purposes: cfg.Policy.Purposes},
		gateway.Parts{Vault: parts.vault, Verifier: verifier, Policies: policies, ReloadPolicies: loadPolicies,
			Transformer: tr, SIV: siv, Audit: audit, LogReader: audit, LogKey: logKey, Metrics: metrics, Log: log,
			AccessIndex: accessIndex, Ledger: transfers, Destinations: cfg.Transfers.Destinations})
	defer gw.Close()
	if _, err := gw.RecordPolicy(ctx, policies, "start"); err != nil {
		return fmt.Errorf("audit log: recording the policy set in force: %w", err)
	}
	log.Info("policy set in force", "digest", policies.Digest(), "policies", policies.Len(), "source", policySource(cfg))
	log.Info("audit log open", "origin", audit.Origin(), "verifier_key", audit.VerifierKey())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if _, err := gw.ReloadPolicies(context.Background(), "SIGHUP"); err != nil {
				log.Error("SIGHUP: policy reload refused; the running set stays", "error", err)
			}
		}
	}()

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	sites := make([]string, 0, len(cfg.Enclave.Sites))
	for _, s := range cfg.Enclave.Sites {
		sites = append(sites, s.Name)
	}
	log.Info("clover serving", "enclave", cfg.Enclave.Name, "sites", sites, "data", cfg.Data,
		"url", "http://"+ln.Addr().String(), "dev_issuer", cfg.Identity.DevIssuer)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// registerLogMetrics exposes the audit log's state: how far the journal and
// the tree are, and the journal's disk use.
func registerLogMetrics(m *gateway.Metrics, l *auditlog.Log) {
	gauge := func(name, help string, f func(auditlog.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(l.Stats()) })
	}
	m.Registry().MustRegister(
		gauge("clover_audit_log_durable_entries", "Entries durable in the journal (the next index).",
			func(s auditlog.Stats) float64 { return float64(s.Durable) }),
		gauge("clover_audit_log_integrated_entries", "Entries integrated into the Merkle tree.",
			func(s auditlog.Stats) float64 { return float64(s.Integrated) }),
		gauge("clover_audit_log_journal_segments", "Journal segment files on disk.",
			func(s auditlog.Stats) float64 { return float64(s.JournalSegments) }),
		gauge("clover_audit_log_journal_bytes", "Bytes of the journal's segments on disk.",
			func(s auditlog.Stats) float64 { return float64(s.JournalBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "clover_audit_log_journal_syncs_total",
			Help: "Group commits of the journal (one write and one fdatasync each); durable entries over this is the mean group size."},
			func() float64 { return float64(l.Stats().JournalSyncs) }),
	)
}
