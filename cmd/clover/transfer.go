package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/auditlog"
)

func newTransferCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "transfer",
		Short: "Work with transfers out of the enclave",
	}
	c.AddCommand(newTransferVerifyCmd())
	return c
}

// newTransferVerifyCmd checks that a file a destination received is exactly
// what a transfer's ledger entry recorded.
func newTransferVerifyCmd() *cobra.Command {
	var (
		logSrc, key, file string
		index             uint64
	)
	c := &cobra.Command{
		Use:   "verify --file FILE --index N --log URL|DIR --key VERIFIERKEY",
		Short: "Check that a received file is exactly what transfer entry N recorded",
		Long: `Verifies entry N of the audit log (its inclusion in the signed log, as
"clover verify --entry" does), checks that it is the ledger entry that ends a
transfer, and compares its SHA-256 and size with the file's. A destination runs
this on what it received; N is the Clover-Transfer-Log-Index trailer of the
transfer's response.

Exit status: 0 the file is what was sent, 1 it is not (or the entry does not
verify), 2 bad usage.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if file == "" || logSrc == "" || key == "" || !c.Flags().Changed("index") {
				return usagef("--file, --index, --log and --key are required")
			}
			if _, err := note.NewVerifier(key); err != nil {
				return usagef("--key %q is not a note verifier key: %v", key, err)
			}
			src, err := logFetcher(logSrc)
			if err != nil {
				return usageError{err}
			}
			sum, size, err := hashFile(file)
			if err != nil {
				return err
			}
			_, data, err := auditlog.VerifyEntry(c.Context(), src, key, index)
			if err != nil {
				return err
			}
			e, err := auditlog.Decode(data)
			if err != nil {
				return fmt.Errorf("entry %d: %w", index, err)
			}
			t := e.Transfer
			if e.Kind != auditlog.KindTransfer || t == nil || t.Decided == nil {
				return fmt.Errorf("entry %d is not the ledger entry that ends a transfer (kind %s)", index, e.Kind)
			}
			if t.SHA256 != sum || t.Bytes != size {
				return fmt.Errorf("%s is not what entry %d recorded: the file has %d bytes, SHA-256 %s; the transfer sent %d bytes, SHA-256 %s",
					file, index, size, sum, t.Bytes, t.SHA256)
			}
			state := "complete"
			if !t.Complete {
				state = "INCOMPLETE (the stream ended early)"
			}
			fmt.Fprintf(c.OutOrStdout(), "%s matches transfer entry %d: %d rows to %s (%s, %s), %d suppressed, %s, sha256 %s\n",
				file, index, t.Rows, t.Destination, t.Country, t.LegalBasis, t.Suppressed, state, t.SHA256)
			return nil
		},
	}
	c.Flags().StringVar(&file, "file", "", "the file the destination received")
	c.Flags().Uint64Var(&index, "index", 0, "the ledger entry's log index (the Clover-Transfer-Log-Index trailer)")
	c.Flags().StringVar(&logSrc, "log", "", "the log: a URL prefix (https://host/log/) or a directory")
	c.Flags().StringVar(&key, "key", "", "the log's note verifier key (from \"clover log key\")")
	return c
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
