package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
)

// MaxRequestSize caps an add-checkpoint request body: 63 proof lines of 45
// bytes and a checkpoint with a few signatures fit many times over.
const MaxRequestSize = 64 << 10

// MaxProofLen is the most consistency proof lines a request may carry
// (c2sp.org/tlog-witness): a proof between trees of up to 2^63 leaves.
const MaxProofLen = 63

// parseRequest splits an add-checkpoint request body into the old size, the
// consistency proof and the signed checkpoint, accepting only the canonical
// encoding: "old <decimal without leading zeros>\n", each proof hash in
// padded standard base64 on its own line, an empty line, then the rest of
// the body, which must be non-empty, is the checkpoint. Errors describe the
// fault; they are answered with 400.
func parseRequest(body []byte) (oldSize uint64, proof [][]byte, checkpoint []byte, err error) {
	if len(body) > MaxRequestSize {
		return 0, nil, nil, fmt.Errorf("request larger than %d bytes", MaxRequestSize)
	}
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return 0, nil, nil, fmt.Errorf("no old size line")
	}
	num, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return 0, nil, nil, fmt.Errorf("first line %q is not \"old <size>\"", truncate(line))
	}
	oldSize, err = strconv.ParseUint(string(num), 10, 64)
	if err != nil || strconv.FormatUint(oldSize, 10) != string(num) {
		return 0, nil, nil, fmt.Errorf("old size %q is not a decimal number without leading zeros", truncate(num))
	}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return 0, nil, nil, fmt.Errorf("no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(proof) == MaxProofLen {
			return 0, nil, nil, fmt.Errorf("more than %d consistency proof lines", MaxProofLen)
		}
		h, err := decodeHash(line)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("consistency proof line %d: %w", len(proof)+1, err)
		}
		proof = append(proof, h)
	}
	if len(rest) == 0 {
		return 0, nil, nil, fmt.Errorf("no checkpoint")
	}
	return oldSize, proof, rest, nil
}

// decodeHash decodes one base64 SHA-256 hash in its one canonical form.
func decodeHash(line []byte) ([]byte, error) {
	h, err := base64.StdEncoding.Strict().DecodeString(string(line))
	if err != nil || len(h) != sha256.Size {
		return nil, fmt.Errorf("%q is not a base64 SHA-256 hash", truncate(line))
	}
	return h, nil
}

// truncate shortens untrusted input quoted in an error.
func truncate(b []byte) []byte {
	const max = 64
	if len(b) > max {
		return b[:max]
	}
	return b
}
