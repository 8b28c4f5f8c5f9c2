package transfer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cloverenclave/clover/transfer/spill"
)

// Spool carries a transfer's rows from its first pass to its second, so the
// export reads and decrypts the store once. The first pass adds every
// selected record's transformed row (Add), which counts its
// quasi-identifier group and appends it to a sealed spill file (package
// spill: AES-256-GCM under a key held only in memory, never plaintext on
// disk); once Total and Suppressed have decided the transfer may go, Replay
// writes, in the order added, the rows whose group has at least k members.
// Memory stays flat: the rows are on disk, the spool holds one chunk and
// the group counts. Close removes the spill file; call it on every path.
//
// A Spool is not safe for concurrent use: Add runs in the scan's emitter.
type Spool struct {
	plan    *Plan
	columns []string
	g       *Grouper
	f       *spill.File
	frame   []byte
	q       []json.RawMessage
	row     Row
	done    bool
}

// ErrSpoolReplayed is returned by a second Replay: the spool is read once.
var ErrSpoolReplayed = errors.New("transfer: the spool has already been replayed")

// NewSpool returns an empty spool for rows of plan p, with its spill file in
// dir (the OS temporary directory if empty).
func NewSpool(p *Plan, dir string) (*Spool, error) {
	f, err := spill.Create(dir)
	if err != nil {
		return nil, fmt.Errorf("transfer: %w", err)
	}
	return &Spool{plan: p, columns: p.Columns(), g: NewGrouper(p.Destination().K), f: f}, nil
}

// Add counts and keeps one row made by the plan's Transform.
func (s *Spool) Add(row Row) error {
	if len(row) != len(s.columns) {
		return fmt.Errorf("transfer: row has %d cells, the plan %d columns", len(row), len(s.columns))
	}
	s.frame = s.frame[:0]
	for _, c := range row {
		s.frame = binary.AppendUvarint(s.frame, uint64(len(c.Value)))
		s.frame = append(s.frame, c.Value...)
	}
	if err := s.f.Append(s.frame); err != nil {
		return fmt.Errorf("transfer: spool: %w", err)
	}
	s.q = s.plan.Quasi(row, s.q)
	s.g.AddRaw(s.q)
	return nil
}

// Total is the number of rows added.
func (s *Spool) Total() int { return s.g.Total() }

// Suppressed is the number of rows added whose group is smaller than k:
// those Replay will not write.
func (s *Spool) Suppressed() int { return s.g.Suppressed() }

// Replay writes to e, in the order they were added, the rows whose
// quasi-identifier group has at least k members. It stops at the first
// error: e's, ctx's, or the spill file's (a spill file altered on disk fails
// with an error wrapping spill.ErrCorrupt before any altered row is written).
// e must have the plan's columns. It may be called once.
func (s *Spool) Replay(ctx context.Context, e *Exporter) error {
	if s.done {
		return ErrSpoolReplayed
	}
	s.done = true
	for i := 0; ; i++ {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		frame, err := s.f.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("transfer: spool: %w", err)
		}
		if s.row, err = s.decode(frame, s.row); err != nil {
			return err
		}
		s.q = s.plan.Quasi(s.row, s.q)
		if !s.g.KeepRaw(s.q) {
			continue
		}
		if err := e.Write(s.row); err != nil {
			return err
		}
	}
}

// decode splits a frame into dst[:0]; the values alias the frame.
func (s *Spool) decode(frame []byte, dst Row) (Row, error) {
	dst = dst[:0]
	for _, col := range s.columns {
		n, w := binary.Uvarint(frame)
		if w <= 0 || n > uint64(len(frame)-w) {
			return nil, errors.New("transfer: spool: a spilled row is malformed")
		}
		dst = append(dst, Cell{col, frame[w : w+int(n) : w+int(n)]})
		frame = frame[w+int(n):]
	}
	if len(frame) != 0 {
		return nil, errors.New("transfer: spool: a spilled row is malformed")
	}
	return dst, nil
}

// Close removes the spill file and clears the spool's buffers. It may be
// called more than once.
func (s *Spool) Close() error {
	clear(s.frame[:cap(s.frame)])
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("transfer: %w", err)
	}
	return nil
}
