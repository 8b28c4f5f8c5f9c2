package main

import (
	"crypto/rand"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/config"
)

// logOptions are the audit log's options for a configuration: the log in
// DATA/log, its checkpoint signing key in DATA/secrets/log-signer.key, and
// the origin "clover/<enclave name>".
func logOptions(cfg *config.Config) auditlog.Options {
	o := auditlog.Options{
		Dir:           filepath.Join(cfg.Data, "log"),
		Origin:        "clover/" + cfg.Enclave.Name,
		SignerKeyFile: filepath.Join(cfg.Data, "secrets", "log-signer.key"),
		WitnessQuorum: cfg.AuditLog.WitnessQuorum,

		JournalSegmentBytes: cfg.AuditLog.JournalSegmentBytes,
		JournalKeepSegments: cfg.AuditLog.JournalKeepSegments,
	}
	for _, w := range cfg.AuditLog.Witnesses {
		o.Witnesses = append(o.Witnesses, auditlog.Witness{Name: w.Name, URL: w.URL, Key: w.Key})
	}
	return o
}

func newLogCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "log",
		Short: "Operate the audit log",
		Long: `The audit log records every decision, write, erasure, re-homing, policy change
and transfer in a Merkle tree log (C2SP tlog-tiles) with signed checkpoints.
Anyone with the log's verifier key can check it with "clover verify".`,
	}
	c.AddCommand(newLogKeyCmd())
	return c
}

func newLogKeyCmd() *cobra.Command {
	var flags configFlags
	c := &cobra.Command{
		Use:   "key",
		Short: "Print the verifier key of the audit log's checkpoints",
		Long: `Prints the note verifier key of the audit log's checkpoints, which verifiers
need ("clover verify --key"). The signing key is DATA/secrets/log-signer.key; it
is created if missing. The log's origin is "clover/" and the enclave's name.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := flags.load()
			if err != nil {
				return err
			}
			o := logOptions(cfg)
			_, vkey, err := auditlog.LoadOrCreateSigner(o.SignerKeyFile, o.Origin, rand.Reader)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.OutOrStdout(), vkey)
			return err
		},
	}
	flags.register(c)
	return c
}
