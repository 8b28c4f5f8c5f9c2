package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cloverenclave/clover/monitor"
	"github.com/cloverenclave/clover/monitor/incident"
	"github.com/cloverenclave/clover/monitor/report"
	"github.com/cloverenclave/clover/monitor/witness"
)

// monitorFlags are the flags every monitor command shares.
type monitorFlags struct {
	config string
	data   string
}

func (f *monitorFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.config, "config", "", "the monitor's configuration file (YAML); default: built-in defaults")
	c.Flags().StringVar(&f.data, "data", "", "the monitor's data directory (default ./clover-monitor, or data: in the file)")
}

// load reads the configuration and applies --data.
func (f *monitorFlags) load() (*monitor.Config, error) {
	cfg, err := monitor.LoadConfig(f.config)
	if err != nil {
		return nil, usageError{errors.New("bad configuration:\n" + err.Error())}
	}
	if f.data != "" {
		cfg.Data = f.data
	}
	return cfg, nil
}

func newMonitorCmd() *cobra.Command {
	var (
		flags                      monitorFlags
		listen, logURL, logKey, gw string
		canaryToken, logFormat     string
		requireCosig               bool
	)
	c := &cobra.Command{
		Use:   "monitor",
		Short: "Run the independent monitor: verify, witness, replay, detect, probe",
		Long: `The monitor is the independent third party's process. It follows the enclave's
audit log (only its URL and verifier key are needed), verifies every checkpoint
and entry, cosigns checkpoints as a C2SP witness, replays every decision against
the policy set in force, runs detection rules, probes the gateway with a canary
identity and raises incidents, delivered to signed webhooks.

It never needs the enclave's data directory or keys, and never sees personal
data. Its own key, database and state live in --data. See docs/monitor.md.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := flags.load()
			if err != nil {
				return err
			}
			set := func(name string, dst *string, v string) {
				if c.Flags().Changed(name) {
					*dst = v
				}
			}
			set("listen", &cfg.Listen, listen)
			set("log", &cfg.Log.URL, logURL)
			set("log-key", &cfg.Log.Key, logKey)
			set("gateway", &cfg.Gateway.URL, gw)
			if c.Flags().Changed("canary-token-file") {
				if cfg.Canary.TokenFile, err = filepath.Abs(canaryToken); err != nil {
					return err
				}
			}
			if c.Flags().Changed("require-cosignature") {
				cfg.Log.RequireCosignature = requireCosig
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if err := cfg.Ready(); err != nil {
				return usageError{err}
			}
			if logFormat != "text" && logFormat != "json" {
				return usageError{fmt.Errorf("--log-format %q must be text or json", logFormat)}
			}
			return runMonitor(c.Context(), cfg, newLogger(c.ErrOrStderr(), logFormat, slog.LevelInfo))
		},
	}
	flags.add(c)
	c.Flags().StringVar(&listen, "listen", monitor.DefaultListen, "address of the monitor's API and witness endpoint")
	c.Flags().StringVar(&logURL, "log", "", "URL of the log to follow, e.g. http://127.0.0.1:7400/log/")
	c.Flags().StringVar(&logKey, "log-key", "", "the log's verifier key (`clover log key` at the enclave)")
	c.Flags().StringVar(&gw, "gateway", "", "the gateway to probe, e.g. http://127.0.0.1:7400")
	c.Flags().StringVar(&canaryToken, "canary-token-file", "", "file holding the canary identity's bearer token (mode 0600)")
	c.Flags().BoolVar(&requireCosig, "require-cosignature", false, "raise an incident for a published checkpoint this monitor has not cosigned")
	c.Flags().StringVar(&logFormat, "log-format", "text", "text or json")
	c.AddCommand(newMonitorKeyCmd(), newMonitorReportCmd())
	return c
}

func runMonitor(ctx context.Context, cfg *monitor.Config, log *slog.Logger) error {
	m, err := monitor.New(ctx, cfg, monitor.Options{Logger: log})
	if err != nil {
		return err
	}
	defer m.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("clover monitor running", "url", "http://"+ln.Addr().String(), "log", cfg.Log.URL,
		"origin", m.Status().Origin, "witness_key", m.Key().CosignerVerifierKey(), "data", cfg.Data,
		"probes", cfg.Canary.TokenFile != "")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- m.Run(ctx) }()
	var runErr error
	select {
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	case <-ctx.Done():
	}
	cancel()
	log.Info("monitor shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	srv.Shutdown(sctx)
	return runErr
}

func newMonitorKeyCmd() *cobra.Command {
	var (
		flags   monitorFlags
		reports bool
	)
	c := &cobra.Command{
		Use:   "key",
		Short: "Print the monitor's witness verifier key (or, with --reports, its report key)",
		Long: `Prints the monitor's cosignature verifier key, which the enclave's
audit_log.witnesses needs. With --reports it prints the key that verifies the
monitor's signed reports ("clover monitor report verify --key"). The private key
is DATA/monitor.key (mode 0600); it is made on first use.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := flags.load()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
				return err
			}
			k, err := witness.LoadOrCreateKey(monitor.KeyPath(cfg), cfg.Name, rand.Reader)
			if err != nil {
				return err
			}
			if reports {
				c.Println(k.NoteVerifierKey())
			} else {
				c.Println(k.CosignerVerifierKey())
			}
			return nil
		},
	}
	flags.add(c)
	c.Flags().BoolVar(&reports, "reports", false, "print the report-signing verifier key instead")
	return c
}

func newMonitorReportCmd() *cobra.Command {
	var (
		flags            monitorFlags
		from, to, format string
		out              string
	)
	c := &cobra.Command{
		Use:   "report",
		Short: "Write a signed report of what the monitor verified and found",
		Long: `Writes a report of the period [--from, --to) (UTC days): entries and
checkpoints verified, decisions by purpose, form, accessor country and site,
transfers by destination and legal basis, incidents and their handling, canary
probe results and replay disagreements. HTML has charts; JSON is for machines.

The report is signed by the monitor's key: FILE.sig is a signed note over the
report's SHA-256, which "clover monitor report verify FILE --key KEY" checks.
Run it on the monitor's data directory (the monitor may be running).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := flags.load()
			if err != nil {
				return err
			}
			f, err := time.Parse(time.DateOnly, from)
			if err != nil {
				return usageError{fmt.Errorf("--from %q is not a date (YYYY-MM-DD)", from)}
			}
			t, err := time.Parse(time.DateOnly, to)
			if err != nil {
				return usageError{fmt.Errorf("--to %q is not a date (YYYY-MM-DD)", to)}
			}
			if !f.Before(t) {
				return usageError{fmt.Errorf("--from %s must be before --to %s (--to is exclusive)", from, to)}
			}
			if format != "html" && format != "json" {
				return usageError{fmt.Errorf("--format %q must be html or json", format)}
			}
			if out == "" {
				return usageError{errors.New("--out FILE is required (the signature goes to FILE.sig)")}
			}
			if _, err := os.Stat(filepath.Join(cfg.Data, "monitor.db")); err != nil {
				return fmt.Errorf("no monitor database in %s: %w", cfg.Data, err)
			}
			k, err := witness.LoadOrCreateKey(monitor.KeyPath(cfg), cfg.Name, rand.Reader)
			if err != nil {
				return err
			}
			st, err := incident.Open(filepath.Join(cfg.Data, "monitor.db"))
			if err != nil {
				return err
			}
			defer st.Close()
			d, err := monitor.ReportData(c.Context(), st, k, f, t, time.Now())
			if err != nil {
				return err
			}
			var body []byte
			if format == "html" {
				body, err = report.HTML(d)
			} else {
				body, err = report.JSON(d)
			}
			if err != nil {
				return err
			}
			sig, err := report.Sign(body, format, d, k.NoteSigner())
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, body, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(out+".sig", sig, 0o644); err != nil {
				return err
			}
			c.Printf("wrote %s and %s (%d entries, %d checkpoints, %d incidents, %d probes)\n", out, out+".sig",
				d.Entries, d.Checkpoints.Verified, len(d.Incidents), d.Probes.Total)
			return nil
		},
	}
	flags.add(c)
	c.Flags().StringVar(&from, "from", "", "first day of the period, YYYY-MM-DD (UTC)")
	c.Flags().StringVar(&to, "to", "", "day after the period, YYYY-MM-DD (exclusive)")
	c.Flags().StringVar(&format, "format", "html", "html or json")
	c.Flags().StringVar(&out, "out", "", "file to write; the signature goes to FILE.sig")
	c.MarkFlagRequired("from")
	c.MarkFlagRequired("to")
	c.AddCommand(newMonitorReportVerifyCmd())
	return c
}

func newMonitorReportVerifyCmd() *cobra.Command {
	var key, sigFile string
	c := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check that a report is exactly what the monitor signed",
		Long: `Checks FILE against its signature (FILE.sig unless --sig) with the monitor's
report key ("clover monitor key --reports" at the monitor). Exit 0: the report is
the monitor's, unaltered; exit 1 with the reason otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if key == "" {
				return usageError{errors.New("--key is required: the monitor's report verifier key")}
			}
			if sigFile == "" {
				sigFile = args[0] + ".sig"
			}
			body, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			sig, err := os.ReadFile(sigFile)
			if err != nil {
				return err
			}
			s, err := report.Verify(body, sig, key)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			c.Printf("ok: %s report of %s for %s .. %s, signed by %s, sha256 %s\n", s.Format, s.Log,
				s.From.Format(time.DateOnly), s.To.Format(time.DateOnly), s.Signer, s.SHA256)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "the monitor's report verifier key")
	c.Flags().StringVar(&sigFile, "sig", "", "signature file (default FILE.sig)")
	return c
}
