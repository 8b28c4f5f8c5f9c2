package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/auditlog/subjectindex"
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
		JournalSyncInterval: cfg.AuditLog.JournalSyncInterval,
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
	c.AddCommand(newLogKeyCmd(), newLogReindexCmd())
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

func newLogReindexCmd() *cobra.Command {
	var flags configFlags
	c := &cobra.Command{
		Use:   "reindex",
		Short: "Rebuild the subject access index from the verified audit log",
		Long: `Rebuilds DATA/log/subjects.db, the index behind GET /v1/subjects/{id}/accesses,
from the audit log. The whole log is verified first (signature, every entry
bundle, the root hash), as "clover verify" does, and the index is built into a
new file that replaces the old one only if everything verified: a log that does
not verify changes nothing.

Stop the server first: the command takes the log's lock and refuses to run while
a server has the log open.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := flags.load()
			if err != nil {
				return err
			}
			return reindex(c.Context(), logOptions(cfg), c.OutOrStdout())
		},
	}
	flags.register(c)
	return c
}

// reindexBatch is how many items go into the index per transaction.
const reindexBatch = 4096

func reindex(ctx context.Context, o auditlog.Options, out io.Writer) error {
	if _, err := os.Stat(o.SignerKeyFile); err != nil {
		return fmt.Errorf("no audit log here (no signing key %s): %w", o.SignerKeyFile, err)
	}
	lock, err := auditlog.Lock(o.Dir)
	if err != nil {
		return fmt.Errorf("%w (stop the server first)", err)
	}
	defer lock.Close()
	_, vkey, err := auditlog.LoadOrCreateSigner(o.SignerKeyFile, o.Origin, rand.Reader)
	if err != nil {
		return err
	}
	final := filepath.Join(o.Dir, "subjects.db")
	tmp := final + ".rebuild"
	removeDB := func(path string) {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(path + suffix)
		}
	}
	removeDB(tmp)
	idx, err := subjectindex.Open(tmp)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			idx.Close()
			removeDB(tmp)
		}
	}()
	var batch []subjectindex.Item
	indexed := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := idx.Add(ctx, batch...); err != nil {
			return err
		}
		indexed += len(batch)
		batch = batch[:0]
		return nil
	}
	cp, err := auditlog.Verify(ctx, auditlog.DirFetcher(filepath.Join(o.Dir, "tree")), vkey, auditlog.VerifyOptions{
		Entry: func(i uint64, raw []byte) error {
			e, err := auditlog.Decode(raw)
			if err != nil {
				return fmt.Errorf("entry %d: %w", i, err)
			}
			if it, ok := subjectindex.ItemFromEntry(i, e); ok {
				batch = append(batch, it)
				if len(batch) == reindexBatch {
					return flush()
				}
			}
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("the log does not verify, so the index was left as it was: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	if err := idx.Close(); err != nil {
		return err
	}
	done = true
	// The old file's write-ahead log must go with it, or SQLite would
	// apply it to the new file.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(final + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			removeDB(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		removeDB(tmp)
		return err
	}
	_, err = fmt.Fprintf(out, "verified %d entries; %d accesses indexed in %s\n", cp.Size, indexed, final)
	return err
}
