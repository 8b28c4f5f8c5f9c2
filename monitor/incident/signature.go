package incident

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook headers.
const (
	SignatureHeader = "Clover-Signature"
	DeliveryHeader  = "Clover-Delivery"
)

// DefaultTolerance is how far from the receiver's clock a signature's time
// may be before VerifySignature rejects it.
const DefaultTolerance = 5 * time.Minute

// MinSecretLen is the shortest webhook secret ValidateTarget accepts.
const MinSecretLen = 16

// Signature errors, matched with errors.Is.
var (
	ErrSignatureMalformed = errors.New("incident: malformed signature header")
	ErrSignatureExpired   = errors.New("incident: signature time outside tolerance")
	ErrSignatureMismatch  = errors.New("incident: signature does not match")
)

// Target is a webhook receiver.
type Target struct {
	Name   string // names the target in the outbox and in logs
	URL    string // http or https, with a host
	Secret []byte // HMAC-SHA256 key, at least MinSecretLen bytes
}

// ValidateTarget checks that t has a name, an http(s) URL with a host, and a
// secret of at least MinSecretLen bytes. Errors match ErrInvalid and never
// contain the secret or the URL's user information.
func ValidateTarget(t Target) error {
	if t.Name == "" {
		return invalid("incident: webhook target: empty name")
	}
	if err := checkText("webhook target name", t.Name, maxName, true); err != nil {
		return fmt.Errorf("incident: %w", err)
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return invalid("incident: webhook target %q: URL does not parse", t.Name)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalid("incident: webhook target %q: URL scheme %q is not http or https", t.Name, u.Scheme)
	}
	if u.Hostname() == "" {
		return invalid("incident: webhook target %q: URL has no host", t.Name)
	}
	if len(t.Secret) < MinSecretLen {
		return invalid("incident: webhook target %q: secret is %d bytes, fewer than %d", t.Name, len(t.Secret), MinSecretLen)
	}
	return nil
}

// Sign returns the Clover-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<lowercase hex HMAC-SHA256 of "<unix seconds>." + body>".
// t must be after 1970: VerifySignature rejects negative times.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks a Clover-Signature header against body: the header
// must be exactly what Sign makes, its time within tolerance of now (either
// way; DefaultTolerance if tolerance <= 0) and its MAC that of secret.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, sig, err := parseSignature(header)
	if err != nil {
		return err
	}
	sec, _ := strconv.ParseInt(ts, 10, 64) // parseSignature checked it
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %d, %v away", ErrSignatureExpired, sec, d.Round(time.Second))
	}
	if !hmac.Equal(sig, mac(secret, ts, body)) {
		return ErrSignatureMismatch
	}
	return nil
}

// parseSignature splits "t=<seconds>,v1=<64 lowercase hex digits>" into its
// canonical time string and MAC. One encoding only: no spaces, no sign, no
// leading zeros, fields in this order.
func parseSignature(h string) (ts string, sig []byte, err error) {
	if len(h) > 128 {
		return "", nil, fmt.Errorf("%w: %d bytes long", ErrSignatureMalformed, len(h))
	}
	tpart, vpart, ok := strings.Cut(h, ",")
	if !ok {
		return "", nil, fmt.Errorf("%w: %q has no comma", ErrSignatureMalformed, h)
	}
	ts, ok = strings.CutPrefix(tpart, "t=")
	if !ok || !canonicalUint(ts) {
		return "", nil, fmt.Errorf("%w: bad time in %q", ErrSignatureMalformed, h)
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		return "", nil, fmt.Errorf("%w: time out of range in %q", ErrSignatureMalformed, h)
	}
	hexSig, ok := strings.CutPrefix(vpart, "v1=")
	if !ok || len(hexSig) != 2*sha256.Size || strings.ToLower(hexSig) != hexSig {
		return "", nil, fmt.Errorf("%w: bad v1 in %q", ErrSignatureMalformed, h)
	}
	sig, err = hex.DecodeString(hexSig)
	if err != nil {
		return "", nil, fmt.Errorf("%w: bad v1 in %q", ErrSignatureMalformed, h)
	}
	return ts, sig, nil
}

// canonicalUint reports whether s is decimal digits without leading zeros.
func canonicalUint(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
