package report

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// The formats a report is rendered in, as named in its signature.
const (
	FormatJSON = "json"
	FormatHTML = "html"
)

// MaxSignatureSize caps the signature file [Verify] reads. A report
// signature is a few hundred bytes.
const MaxSignatureSize = 16 << 10

// ErrNotSignature is returned, wrapped with the reason, by [Verify] for a
// file that is not a report signature of this format at all.
var ErrNotSignature = errors.New("not a clover monitor report signature")

// SignatureError reports that the signature file carries no valid
// signature by the expected monitor key: it was signed by another key, or
// its text was changed after signing.
type SignatureError struct {
	Key string // name of the verifier key
}

func (e *SignatureError) Error() string {
	return "signature does not verify with key " + e.Key
}

// DigestError reports that the report bytes are not the ones signed.
type DigestError struct {
	Report string // hex SHA-256 of the report given
	Signed string // hex SHA-256 in the signature
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("report digest %s differs from signed digest %s", e.Report, e.Signed)
}

// Signed is what a verified report signature says.
type Signed struct {
	Format   string    // FormatJSON or FormatHTML
	SHA256   string    // hex digest of the report
	From, To time.Time // the period, UTC
	Log      string    // the log's origin
	Signer   string    // name of the key that signed
}

// Sign returns a C2SP signed note, signed by signer, that names report: its
// format, its SHA-256 digest, the period of d and the origin of d's log.
// Write it next to the report as FILE.sig. The signer must be the key the
// report names: d.Monitor is its name and d.MonitorKey, if given, its
// verifier key. The period must start and end on whole seconds.
func Sign(report []byte, format string, d Data, signer note.Signer) ([]byte, error) {
	if format != FormatJSON && format != FormatHTML {
		return nil, fmt.Errorf("report: format %q is not %q or %q", format, FormatJSON, FormatHTML)
	}
	if signer == nil {
		return nil, errors.New("report: no signer")
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	if d.Monitor != signer.Name() {
		return nil, fmt.Errorf("report: report names monitor %q but the signer key is %q", d.Monitor, signer.Name())
	}
	if d.MonitorKey != "" {
		v, err := note.NewVerifier(d.MonitorKey)
		if err != nil {
			return nil, fmt.Errorf("report: monitor key %q: %w", d.MonitorKey, err)
		}
		if v.Name() != signer.Name() || v.KeyHash() != signer.KeyHash() {
			return nil, fmt.Errorf("report: report prints monitor key %q but the signer key is %s+%08x", d.MonitorKey, signer.Name(), signer.KeyHash())
		}
	}
	from, to := utc(d.From), utc(d.To)
	if from.Truncate(time.Second) != from || to.Truncate(time.Second) != to {
		return nil, errors.New("report: period must start and end on whole seconds")
	}
	sum := sha256.Sum256(report)
	text := strings.Join([]string{
		Format,
		format,
		hex.EncodeToString(sum[:]),
		from.Format(time.RFC3339),
		to.Format(time.RFC3339),
		d.Log,
	}, "\n") + "\n"
	sig, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return nil, fmt.Errorf("report: sign: %w", err)
	}
	return sig, nil
}

// Verify checks that sig is a report signature by the key verifierKey
// ("<name>+<hash>+<key>") and that it names exactly the bytes of report,
// and returns what it says. It checks the signature first, then the text,
// then the digest; the error is a [*SignatureError], a [*DigestError] or
// wraps [ErrNotSignature]. Verify does not panic on any sig.
func Verify(report, sig []byte, verifierKey string) (*Signed, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return nil, fmt.Errorf("report: verifier key %q: %w (reports are checked with the monitor's report key, "+
			"`clover monitor key --reports`, not its witness key)", verifierKey, err)
	}
	if len(sig) > MaxSignatureSize {
		return nil, fmt.Errorf("%w: file is %d bytes, more than %d", ErrNotSignature, len(sig), MaxSignatureSize)
	}
	n, err := note.Open(sig, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, &SignatureError{Key: v.Name()}
		}
		return nil, fmt.Errorf("%w: %v", ErrNotSignature, err)
	}
	if err := canonicalSignatures(sig[len(n.Text)+1:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSignature, err)
	}
	s, err := parseText(n.Text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSignature, err)
	}
	s.Signer = v.Name()
	sum := sha256.Sum256(report)
	if got := hex.EncodeToString(sum[:]); got != s.SHA256 {
		return nil, &DigestError{Report: got, Signed: s.SHA256}
	}
	return s, nil
}

// canonicalSignatures refuses signature lines whose base64 has padding
// bits set: note.Open ignores them, so without this check one signature
// could be written several ways. block is what follows the blank line of a
// note that note.Open accepted, so every line has the form "— name b64".
func canonicalSignatures(block []byte) error {
	for i, line := range strings.Split(strings.TrimSuffix(string(block), "\n"), "\n") {
		_, b64, _ := strings.Cut(line, " ")
		_, b64, _ = strings.Cut(b64, " ")
		if _, err := base64.StdEncoding.Strict().DecodeString(b64); err != nil {
			return fmt.Errorf("signature line %d is not canonical base64", i+1)
		}
	}
	return nil
}

// parseText reads the signed text, accepting only the one form Sign
// writes.
func parseText(text string) (*Signed, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 7 || lines[6] != "" {
		return nil, fmt.Errorf("signed text has %d lines, want 6", len(lines)-1)
	}
	if lines[0] != Format {
		return nil, fmt.Errorf("signed text starts with %q, want %q", lines[0], Format)
	}
	s := &Signed{Format: lines[1], SHA256: lines[2], Log: lines[5]}
	if s.Format != FormatJSON && s.Format != FormatHTML {
		return nil, fmt.Errorf("report format %q is not %q or %q", s.Format, FormatJSON, FormatHTML)
	}
	if b, err := hex.DecodeString(s.SHA256); err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != s.SHA256 {
		return nil, fmt.Errorf("digest %q is not %d lowercase hex digits", s.SHA256, 2*sha256.Size)
	}
	var err error
	if s.From, err = parseTime("start", lines[3]); err != nil {
		return nil, err
	}
	if s.To, err = parseTime("end", lines[4]); err != nil {
		return nil, err
	}
	if !s.From.Before(s.To) {
		return nil, fmt.Errorf("period start %s is not before its end %s", lines[3], lines[4])
	}
	if s.Log == "" {
		return nil, errors.New("log origin is empty")
	}
	return s, nil
}

func parseTime(what, line string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, line)
	if err != nil || t.UTC().Format(time.RFC3339) != line {
		return time.Time{}, fmt.Errorf("period %s %q is not an RFC 3339 time in UTC", what, line)
	}
	return t.UTC(), nil
}
