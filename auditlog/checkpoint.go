package auditlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a C2SP tlog-checkpoint: the origin of a log, its size and
// root hash at that size.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Hash       tlog.Hash
	Extensions []string // opaque extension lines, rarely used
	// Signed is the signed note the checkpoint was opened from; nil when it
	// was parsed from bare text.
	Signed []byte
}

// ParseCheckpoint parses the text of a checkpoint (the body of its signed
// note, without signatures), accepting only the canonical form, so that
// Marshal returns exactly text.
func ParseCheckpoint(text []byte) (*Checkpoint, error) {
	if len(text) > maxCheckpointBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxCheckpointBytes)
	}
	s, ok := strings.CutSuffix(string(text), "\n")
	if !ok {
		return nil, errors.New("does not end with a newline")
	}
	lines := strings.Split(s, "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("%d lines, want at least 3 (origin, size, root hash)", len(lines))
	}
	for i, l := range lines {
		if l == "" {
			return nil, fmt.Errorf("line %d is empty", i+1)
		}
	}
	c := &Checkpoint{Origin: lines[0]}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || size > math.MaxInt64 || strconv.FormatUint(size, 10) != lines[1] {
		return nil, fmt.Errorf("size %q is not a decimal number without leading zeros", lines[1])
	}
	c.Size = size
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != hashSize || base64.StdEncoding.EncodeToString(h) != lines[2] {
		return nil, fmt.Errorf("root hash %q is not a base64 SHA-256 hash", lines[2])
	}
	copy(c.Hash[:], h)
	if len(lines) > 3 {
		c.Extensions = lines[3:]
	}
	return c, nil
}

// Marshal returns the checkpoint's note text.
func (c *Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// OpenCheckpoint verifies a signed checkpoint with a note verifier key and
// parses it. The log's signature must verify (other signatures, such as
// witness cosignatures, are ignored) and the origin must be the key's name.
// Errors are *VerificationError naming what is wrong, prefixed
// "checkpoint: ".
func OpenCheckpoint(signed []byte, verifierKey string) (*Checkpoint, error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return nil, fmt.Errorf("auditlog: verifier key %q: %w", verifierKey, err)
	}
	return openCheckpoint(signed, v)
}

func openCheckpoint(signed []byte, v note.Verifier) (*Checkpoint, error) {
	fail := func(format string, args ...any) error {
		return &VerificationError{Msg: "checkpoint: " + fmt.Sprintf(format, args...)}
	}
	if len(signed) > maxCheckpointBytes {
		return nil, fail("larger than %d bytes", maxCheckpointBytes)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var invalid *note.InvalidSignatureError
		var unverified *note.UnverifiedNoteError
		switch {
		case errors.As(err, &invalid):
			return nil, fail("signature does not verify")
		case errors.As(err, &unverified):
			return nil, fail("not signed by key %s+%08x", v.Name(), v.KeyHash())
		}
		return nil, fail("not a signed note: %v", err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return nil, fail("%v", err)
	}
	if c.Origin != v.Name() {
		return nil, fail("origin %q, want %q", c.Origin, v.Name())
	}
	c.Signed = bytes.Clone(signed)
	return c, nil
}
