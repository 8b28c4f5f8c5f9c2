package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/cloverenclave/clover/auditlog"
)

func newTransferCmd() *cobra.Command {
	var (
		flags                          configFlags
		url, token, dest, out, purpose string
		fields, filter                 string
	)
	c := &cobra.Command{
		Use:   "transfer --destination D --out FILE [--fields a,b] [--filter JSON] [--url URL] [--data DIR | --token T]",
		Short: "Run a transfer to a configured destination into a file, or verify one",
		Long: `Runs POST /v1/transfers against a running Clover and writes the stream to
FILE, with a progress bar (rows/s, ETA) on a terminal. The token is minted
from the development issuer in DATA with the role transfer-officer unless
--token is given. When the stream ends, the file's SHA-256 is compared with the
digest the server logged, and the ledger entry's index is printed for
"clover transfer verify".`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dest == "" || out == "" {
				return usagef("--destination and --out are required (or use 'clover transfer verify')")
			}
			body := map[string]any{"destination": dest, "purpose": purpose}
			if fields != "" {
				body["fields"] = strings.Split(fields, ",")
			}
			if filter != "" {
				var f map[string]any
				if err := json.Unmarshal([]byte(filter), &f); err != nil {
					return usagef("--filter must be a JSON object, e.g. '{\"country\":\"DE\"}': %v", err)
				}
				body["filter"] = f
			}
			tok, err := callerToken(&flags, token, "clover-transfer-cli", []string{"transfer-officer"}, time.Hour)
			if err != nil {
				return err
			}
			return runTransfer(c, url, tok, body, out)
		},
	}
	flags.register(c)
	c.Flags().StringVar(&url, "url", "http://127.0.0.1:7400", "the gateway")
	c.Flags().StringVar(&token, "token", "", "bearer token (default: minted from the development issuer in --data)")
	c.Flags().StringVar(&dest, "destination", "", "a configured destination, e.g. us-analytics")
	c.Flags().StringVar(&out, "out", "", "file to write the export to (created; an existing file is refused)")
	c.Flags().StringVar(&purpose, "purpose", "analytics", "the purpose of the transfer")
	c.Flags().StringVar(&fields, "fields", "", "comma-separated fields (default: all the destination may receive)")
	c.Flags().StringVar(&filter, "filter", "", `JSON object of exact matches, e.g. '{"country":"DE"}'`)
	c.AddCommand(newTransferVerifyCmd())
	return c
}

// runTransfer streams a transfer into out and checks its digest.
func runTransfer(c *cobra.Command, base, token string, body map[string]any, out string) error {
	payload, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(c.Context(), http.MethodPost, strings.TrimSuffix(base, "/")+"/v1/transfers", bytes.NewReader(payload))
	if err != nil {
		return usagef("--url %q: %v", base, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if strings.HasSuffix(out, ".csv") {
		req.Header.Set("Accept", "text/csv")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the gateway at %s: %v", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string }
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("transfer refused (%d %s): %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("transfer refused: HTTP %d", resp.StatusCode)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	planned, _ := strconv.ParseInt(resp.Header.Get("Clover-Transfer-Planned-Rows"), 10, 64)
	bar := transferBar(c.ErrOrStderr(), planned)
	h := sha256.New()
	counter := &lineCounter{bar: bar}
	n, copyErr := io.Copy(io.MultiWriter(f, h, counter), resp.Body)
	closeErr := f.Close()
	if bar != nil {
		bar.Finish()
	}
	if copyErr != nil {
		return fmt.Errorf("the stream broke after %d bytes (%d rows); %s is incomplete: %v", n, counter.lines, out, copyErr)
	}
	if closeErr != nil {
		return closeErr
	}
	sum := hex.EncodeToString(h.Sum(nil))
	logged := resp.Trailer.Get("Clover-Transfer-Sha256")
	index := resp.Trailer.Get("Clover-Transfer-Log-Index")
	if logged != sum {
		return fmt.Errorf("%s has SHA-256 %s but the server logged %q: the file is not what was sent", out, sum, logged)
	}
	fmt.Fprintf(c.OutOrStdout(), "wrote %s: %d rows, %d bytes, sha256 %s; ledger entry %s (check with: clover transfer verify --file %s --index %s --log URL/log/ --key KEY)\n",
		out, counter.lines, n, sum, index, out, index)
	return nil
}

// lineCounter counts rows (lines) as the stream passes.
type lineCounter struct {
	lines int64
	bar   *progressbar.ProgressBar
}

func (l *lineCounter) Write(p []byte) (int, error) {
	k := int64(bytes.Count(p, []byte{'\n'}))
	l.lines += k
	if l.bar != nil && k > 0 {
		l.bar.Add64(k)
	}
	return len(p), nil
}

// transferBar is a progress bar in rows (with rate and ETA) on a terminal,
// nil otherwise.
func transferBar(w io.Writer, total int64) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return newBar(w, total, "transferring", "rows")
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
