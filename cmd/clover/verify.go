package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/auditlog"

	"github.com/cloverenclave/clover/internal/atomicfile"
)

// maxStateBytes caps the saved checkpoint read back from --state.
const maxStateBytes = 64 << 10

func newVerifyCmd() *cobra.Command {
	var (
		logSrc, key, state string
		entry              uint64
	)
	c := &cobra.Command{
		Use:   "verify --log URL|DIR --key VERIFIERKEY [--state FILE] [--entry N]",
		Short: "Verify an audit log: its checkpoint, every entry and tile, and consistency",
		Long: `Verifies an audit log served in the C2SP tlog-tiles layout, from a URL prefix
(https://host/log/) or a directory (DATA/log/tree): the checkpoint's signature by
the log's verifier key (see "clover log key"), every entry bundle, the root hash
recomputed from the entries, and every hash tile.

With --state FILE, the checkpoint saved in FILE by the previous run must be
consistent with the log's (no entry changed or removed, the log did not shrink);
after success the new checkpoint is saved in FILE.

With --entry N, only entry N is checked, with its inclusion proof, and printed
as JSON.

Exit status: 0 verified, 1 verification failed or error, 2 bad usage.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if logSrc == "" || key == "" {
				return usagef("--log and --key are required")
			}
			if _, err := note.NewVerifier(key); err != nil {
				return usagef("--key %q is not a note verifier key: %v", key, err)
			}
			src, err := logFetcher(logSrc)
			if err != nil {
				return usageError{err}
			}
			prev, err := readState(state)
			if err != nil {
				return err
			}
			ctx := c.Context()
			var cp *auditlog.Checkpoint
			out := c.OutOrStdout()
			if c.Flags().Changed("entry") {
				var data []byte
				cp, data, err = auditlog.VerifyEntry(ctx, src, key, entry)
				if err != nil {
					return err
				}
				if prev != nil {
					saved, err := auditlog.OpenCheckpoint(prev, key)
					if err != nil {
						return fmt.Errorf("saved %w", err)
					}
					if err := auditlog.CheckConsistency(ctx, src, saved, cp); err != nil {
						return err
					}
				}
				if err := printEntry(out, data); err != nil {
					return fmt.Errorf("entry %d is in the log but %w", entry, err)
				}
				fmt.Fprintf(out, "log %s: entry %d included in %d entries, root %v%s\n", cp.Origin, entry, cp.Size, cp.Hash, savedNote(prev, key))
			} else {
				cp, err = auditlog.Verify(ctx, src, key, auditlog.VerifyOptions{Previous: prev})
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "log %s: %d entries, root %v%s\n", cp.Origin, cp.Size, cp.Hash, savedNote(prev, key))
			}
			if state != "" {
				if err := atomicfile.Replace(state, cp.Signed, 0o644); err != nil {
					return fmt.Errorf("save the checkpoint: %w", err)
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&logSrc, "log", "", "the log: a URL prefix (https://host/log/) or a directory")
	c.Flags().StringVar(&key, "key", "", "the log's note verifier key (from \"clover log key\")")
	c.Flags().StringVar(&state, "state", "", "file holding the checkpoint verified last time; updated on success")
	c.Flags().Uint64Var(&entry, "entry", 0, "verify only this entry's inclusion and print it")
	return c
}

// logFetcher reads the log from a URL or a directory.
func logFetcher(src string) (auditlog.Fetcher, error) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return auditlog.NewHTTPFetcher(src, nil)
	}
	info, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("--log: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("--log %s is neither a URL nor a directory", src)
	}
	return auditlog.DirFetcher(src), nil
}

// readState reads the saved checkpoint, or nil if there is no file yet.
func readState(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--state: %w", err)
	}
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("--state %s: larger than %d bytes: not a checkpoint", path, maxStateBytes)
	}
	return b, nil
}

// savedNote is the end of the summary line: how the log relates to the
// saved checkpoint.
func savedNote(prev []byte, key string) string {
	if prev == nil {
		return ""
	}
	saved, err := auditlog.OpenCheckpoint(prev, key)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(", consistent with saved size %d", saved.Size)
}

// printEntry prints an entry as indented JSON; an entry that does not
// decode is printed as it is and reported.
func printEntry(w io.Writer, data []byte) error {
	e, derr := auditlog.Decode(data)
	if derr != nil {
		fmt.Fprintf(w, "%q\n", data)
		return fmt.Errorf("does not decode: %w", derr)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}
