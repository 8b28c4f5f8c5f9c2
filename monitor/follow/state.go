package follow

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
)

// State is what a follower persists between polls and restarts: the last
// accepted signed checkpoint and the compact Merkle range (RFC 6962) over
// the entries [0, Size) verified and delivered so far.
type State struct {
	// Checkpoint is the signed note of the last accepted checkpoint (nil at
	// start).
	Checkpoint []byte
	// Size is the number of entries verified and delivered: the
	// checkpoint's size once a poll completes, less while one is under way.
	Size uint64
	// Hashes are the compact range hashes over [0, Size), left to right.
	Hashes [][]byte
}

const (
	stateVersion = 1
	// maxCheckpointBytes caps a checkpoint, as package auditlog does.
	maxCheckpointBytes = 64 << 10
	hashSize           = 32
)

// ErrInvalidState is matched by the errors of UnmarshalBinary,
// MarshalBinary and New about a State that is not well formed.
var ErrInvalidState = errors.New("follow: invalid state")

// check reports whether s is well formed: hashes of the right number and
// length, and a checkpoint whenever entries were delivered.
func (s State) check() error {
	switch {
	case len(s.Checkpoint) > maxCheckpointBytes:
		return fmt.Errorf("%w: checkpoint of %d bytes, more than %d", ErrInvalidState, len(s.Checkpoint), maxCheckpointBytes)
	case s.Size > 0 && len(s.Checkpoint) == 0:
		return fmt.Errorf("%w: size %d without a checkpoint", ErrInvalidState, s.Size)
	case s.Size > 1<<63-1:
		return fmt.Errorf("%w: size %d too large", ErrInvalidState, s.Size)
	}
	if want := compact.RangeSize(0, s.Size); len(s.Hashes) != want {
		return fmt.Errorf("%w: %d hashes for size %d, want %d", ErrInvalidState, len(s.Hashes), s.Size, want)
	}
	for i, h := range s.Hashes {
		if len(h) != hashSize {
			return fmt.Errorf("%w: hash %d has %d bytes, want %d", ErrInvalidState, i, len(h), hashSize)
		}
	}
	return nil
}

// clone returns a deep copy of s, with an empty checkpoint as nil.
func (s State) clone() State {
	c := State{Size: s.Size}
	if len(s.Checkpoint) > 0 {
		c.Checkpoint = append([]byte(nil), s.Checkpoint...)
	}
	c.Hashes = cloneHashes(s.Hashes)
	return c
}

func cloneHashes(hs [][]byte) [][]byte {
	if len(hs) == 0 {
		return nil
	}
	buf := make([]byte, 0, len(hs)*hashSize)
	out := make([][]byte, len(hs))
	for i, h := range hs {
		buf = append(buf, h...)
		out[i] = buf[len(buf)-len(h) : len(buf) : len(buf)]
	}
	return out
}

// MarshalBinary encodes s: a version byte (1), the size and the checkpoint's
// length as unsigned varints, the checkpoint, and the compact range hashes,
// whose number the size determines.
func (s State) MarshalBinary() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(s.Checkpoint)+len(s.Hashes)*hashSize)
	out = append(out, stateVersion)
	out = binary.AppendUvarint(out, s.Size)
	out = binary.AppendUvarint(out, uint64(len(s.Checkpoint)))
	out = append(out, s.Checkpoint...)
	for _, h := range s.Hashes {
		out = append(out, h...)
	}
	return out, nil
}

// UnmarshalBinary decodes what MarshalBinary encodes, strictly: one
// encoding per state (minimal varints, nothing trailing), so that
// MarshalBinary returns exactly b for every b it accepts. It does not
// verify the checkpoint's signature: New does.
func (s *State) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", ErrInvalidState)
	}
	if b[0] != stateVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalidState, b[0], stateVersion)
	}
	rest := b[1:]
	size, rest, err := readUvarint(rest, "size")
	if err != nil {
		return err
	}
	if size > 1<<63-1 {
		return fmt.Errorf("%w: size %d too large", ErrInvalidState, size)
	}
	n, rest, err := readUvarint(rest, "checkpoint length")
	if err != nil {
		return err
	}
	if n > maxCheckpointBytes || n > uint64(len(rest)) {
		return fmt.Errorf("%w: checkpoint length %d, %d bytes left", ErrInvalidState, n, len(rest))
	}
	st := State{Size: size}
	if n > 0 {
		st.Checkpoint = append([]byte(nil), rest[:n]...)
	}
	rest = rest[n:]
	count := compact.RangeSize(0, size)
	if len(rest) != count*hashSize {
		return fmt.Errorf("%w: %d bytes of hashes, want %d for size %d", ErrInvalidState, len(rest), count*hashSize, size)
	}
	if count > 0 {
		hashes := make([][]byte, count)
		buf := append([]byte(nil), rest...)
		for i := range hashes {
			hashes[i] = buf[i*hashSize : (i+1)*hashSize : (i+1)*hashSize]
		}
		st.Hashes = hashes
	}
	if err := st.check(); err != nil {
		return err
	}
	*s = st
	return nil
}

// readUvarint reads a minimally encoded unsigned varint.
func readUvarint(b []byte, what string) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: %s: bad varint", ErrInvalidState, what)
	}
	if n != len(binary.AppendUvarint(nil, v)) {
		return 0, nil, fmt.Errorf("%w: %s: varint not minimally encoded", ErrInvalidState, what)
	}
	return v, b[n:], nil
}
