// Package spill keeps a stream of records in a temporary file sealed with
// AES-256-GCM under a key that exists only in memory, so that a process can
// hold more than its memory between two passes over data without writing a
// byte of it in the clear.
//
// A File is written once (Append, in order), then read once from the start
// (Next), then closed, which removes it. Records are framed (a uvarint
// length, then the bytes) into a plaintext stream that is cut into chunks of
// ChunkSize bytes; each chunk is sealed on its own with a nonce made of its
// index, and stored as a 4-byte big-endian length and the ciphertext. The
// key is random per File and never leaves the process, the nonces never
// repeat under it, and the reader knows from memory how many chunks and
// bytes were written, so a chunk altered, moved, dropped or appended, or a
// file cut short, fails with ErrCorrupt instead of yielding records.
//
// The file is created with mode 0600 in the directory given (the OS
// temporary directory by default) and, where the system allows it (Unix),
// unlinked at once: it then has no name, and disappears with the process
// even if Close is never called. Elsewhere Close removes it.
package spill

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ChunkSize is the size of a sealed chunk's plaintext (the last may be
// shorter).
const ChunkSize = 64 << 10

// ErrCorrupt is returned when the file does not read back as written: it
// was altered, truncated or extended while it existed.
var ErrCorrupt = errors.New("spill: the spill file was altered or truncated")

// headerSize is the size of a chunk's length prefix.
const headerSize = 4

// File is a sealed temporary file of records. It is not safe for
// concurrent use.
type File struct {
	f    *os.File
	name string // the path still to remove, "" once unlinked
	aead cipher.AEAD

	nonce  [12]byte
	buf    []byte // write: the chunk being filled; read: the chunk opened
	sealed []byte // a chunk as stored: length and ciphertext

	chunks  uint64 // chunks written
	size    int64  // bytes written to the file
	plain   int64  // plaintext bytes written (frames)
	records int64

	reading bool
	next    uint64 // read: the index of the next chunk to open
	off     int64  // read: where it starts in the file
	pos     int    // read: position in buf
	left    int64  // read: plaintext bytes not yet consumed
	rec     []byte // read: a record that spans chunks
	err     error  // sticky
}

// Create makes an empty spill file in dir, or in os.TempDir() if dir is
// empty, under a fresh random key.
func Create(dir string) (*File, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("spill: key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	clear(key)
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	f, err := os.CreateTemp(dir, "clover-spill-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("spill: create the spill file: %w", err)
	}
	s := &File{f: f, name: f.Name(), aead: aead, buf: make([]byte, 0, ChunkSize+binary.MaxVarintLen64)}
	if os.Remove(f.Name()) == nil {
		s.name = ""
	}
	return s, nil
}

// Records is the number of records appended.
func (s *File) Records() int64 { return s.records }

// Size is the number of bytes written to the file so far.
func (s *File) Size() int64 { return s.size }

// Append adds one record. It fails once reading has begun or after an
// earlier failure.
func (s *File) Append(rec []byte) error {
	if s.err != nil {
		return s.err
	}
	if s.reading {
		return errors.New("spill: append after reading began")
	}
	s.buf = binary.AppendUvarint(s.buf, uint64(len(rec)))
	for {
		// After a seal fewer than ChunkSize bytes remain, so each turn
		// takes at least one byte of rec.
		if len(s.buf) >= ChunkSize {
			if err := s.sealChunk(ChunkSize); err != nil {
				return err
			}
		}
		if len(rec) == 0 {
			break
		}
		n := min(len(rec), ChunkSize-len(s.buf))
		s.buf = append(s.buf, rec[:n]...)
		rec = rec[n:]
	}
	s.records++
	return nil
}

// sealChunk seals and writes the first n bytes of buf as the next chunk
// and keeps the rest for the following one.
func (s *File) sealChunk(n int) error {
	binary.BigEndian.PutUint64(s.nonce[4:], s.chunks)
	s.sealed = binary.BigEndian.AppendUint32(s.sealed[:0], uint32(n+s.aead.Overhead()))
	s.sealed = s.aead.Seal(s.sealed, s.nonce[:], s.buf[:n], nil)
	if _, err := s.f.Write(s.sealed); err != nil {
		s.err = fmt.Errorf("spill: write: %w", err)
		return s.err
	}
	s.chunks++
	s.size += int64(len(s.sealed))
	s.plain += int64(n)
	rest := copy(s.buf, s.buf[n:])
	clear(s.buf[rest:])
	s.buf = s.buf[:rest]
	return nil
}

// Next returns the next record, reading from the first; io.EOF after the
// last, ErrCorrupt if the file does not read back as written. The first
// call ends writing. The record is valid until the next call.
func (s *File) Next() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	if !s.reading {
		if len(s.buf) > 0 {
			if err := s.sealChunk(len(s.buf)); err != nil {
				return nil, err
			}
		}
		s.reading, s.left, s.buf, s.pos = true, s.plain, s.buf[:0], 0
	}
	if s.left == 0 {
		if s.off != s.size || s.next != s.chunks {
			return nil, s.fail(ErrCorrupt)
		}
		if fi, err := s.f.Stat(); err != nil || fi.Size() != s.size {
			return nil, s.fail(ErrCorrupt)
		}
		return nil, io.EOF
	}
	n, err := binary.ReadUvarint(byteReader{s})
	if err != nil {
		return nil, s.fail(err)
	}
	if n > uint64(s.left) {
		return nil, s.fail(ErrCorrupt)
	}
	if avail := len(s.buf) - s.pos; uint64(avail) >= n { // within this chunk
		rec := s.buf[s.pos : s.pos+int(n)]
		s.pos += int(n)
		s.left -= int64(n)
		return rec, nil
	}
	s.rec = s.rec[:0]
	for uint64(len(s.rec)) < n {
		if s.pos == len(s.buf) {
			if err := s.openChunk(); err != nil {
				return nil, s.fail(err)
			}
		}
		take := min(len(s.buf)-s.pos, int(n-uint64(len(s.rec))))
		s.rec = append(s.rec, s.buf[s.pos:s.pos+take]...)
		s.pos += take
		s.left -= int64(take)
	}
	return s.rec, nil
}

func (s *File) fail(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = ErrCorrupt
	}
	if s.err == nil {
		s.err = err
	}
	return s.err
}

// byteReader reads the plaintext stream a byte at a time, for the frame
// lengths.
type byteReader struct{ s *File }

func (r byteReader) ReadByte() (byte, error) {
	s := r.s
	if s.left == 0 {
		return 0, ErrCorrupt
	}
	if s.pos == len(s.buf) {
		if err := s.openChunk(); err != nil {
			return 0, err
		}
	}
	c := s.buf[s.pos]
	s.pos++
	s.left--
	return c, nil
}

// openChunk reads and opens the next chunk into buf.
func (s *File) openChunk() error {
	if s.next >= s.chunks {
		return ErrCorrupt
	}
	var hdr [headerSize]byte
	if _, err := s.f.ReadAt(hdr[:], s.off); err != nil {
		return readErr(err)
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if n < int64(s.aead.Overhead()) || n > int64(ChunkSize+s.aead.Overhead()) || s.off+headerSize+n > s.size {
		return ErrCorrupt
	}
	if int64(cap(s.sealed)) < n {
		s.sealed = make([]byte, n)
	}
	s.sealed = s.sealed[:n]
	if _, err := s.f.ReadAt(s.sealed, s.off+headerSize); err != nil {
		return readErr(err)
	}
	binary.BigEndian.PutUint64(s.nonce[4:], s.next)
	pt, err := s.aead.Open(s.buf[:0], s.nonce[:], s.sealed, nil)
	if err != nil || len(pt) == 0 {
		return ErrCorrupt
	}
	s.buf, s.pos = pt, 0
	s.next++
	s.off += headerSize + n
	return nil
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return ErrCorrupt
	}
	return fmt.Errorf("spill: read: %w", err)
}

// Close closes the file and removes it if it still has a name. It may be
// called more than once.
func (s *File) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	if s.name != "" {
		if rerr := os.Remove(s.name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		s.name = ""
	}
	s.f, s.aead = nil, nil
	clear(s.buf[:cap(s.buf)])
	clear(s.rec[:cap(s.rec)])
	if s.err == nil {
		s.err = errors.New("spill: the spill file is closed")
	}
	if err != nil {
		return fmt.Errorf("spill: close: %w", err)
	}
	return nil
}
