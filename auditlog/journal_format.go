package auditlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// The journal file format (all integers big-endian; CRC-32C, Castagnoli):
//
//	file   = header group*
//	header = magic "CLOVERJ1" (8) | base index (8) | crc32c of the 16 bytes before (4)
//	group  = "CJG1" (4) | count (4) | body length (4) | first index (8) |
//	         crc32c of the 20 bytes before (4) | body
//	body   = record{count}
//	record = length (4) | crc32c of the payload (4) | payload
//
// The index of a record is implied by its position: base index plus the
// number of records before it in the file (the group header repeats its
// first index, which must agree). One group is written by one write and made
// durable by one fdatasync before the next group is written, so after a
// crash only the last group can be incomplete: a "torn tail". A group that
// fails its checks and reaches the end of the file is torn and is cut off; a
// group that fails its checks with more data after it is corruption.
const (
	journalMagic       = "CLOVERJ1"
	journalHeaderSize  = 8 + 8 + 4
	groupMagic         = "CJG1"
	groupHeaderSize    = 4 + 4 + 4 + 8 + 4
	recordHeaderSize   = 4 + 4
	maxGroupBody       = 4 << 20 // bytes of records in one group
	maxRecordsPerGroup = maxGroupBody / recordHeaderSize
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func appendJournalHeader(b []byte, base uint64) []byte {
	start := len(b)
	b = append(b, journalMagic...)
	b = binary.BigEndian.AppendUint64(b, base)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

func parseJournalHeader(h []byte) (base uint64, err error) {
	if len(h) < journalHeaderSize || string(h[:8]) != journalMagic {
		return 0, errors.New("not a Clover journal (bad magic)")
	}
	if crc32.Checksum(h[:16], castagnoli) != binary.BigEndian.Uint32(h[16:20]) {
		return 0, errors.New("journal header checksum mismatch")
	}
	return binary.BigEndian.Uint64(h[8:16]), nil
}

// appendGroup appends the encoding of a group of entries, the first of
// which has index first.
func appendGroup(b []byte, first uint64, entries [][]byte) []byte {
	start := len(b)
	body := 0
	for _, e := range entries {
		body += recordHeaderSize + len(e)
	}
	b = append(b, groupMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	b = binary.BigEndian.AppendUint32(b, uint32(body))
	b = binary.BigEndian.AppendUint64(b, first)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, uint32(len(e)))
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(e, castagnoli))
		b = append(b, e...)
	}
	return b
}

// recordSize is the encoded size of the record of an entry.
func recordSize(entry []byte) int { return recordHeaderSize + len(entry) }

// keep says which records a journal scan keeps in memory: those from
// index from on, while their bytes are within budget. The record that
// crosses the budget is kept, so a scan with a positive budget that reaches
// index from keeps at least one record, and what it keeps is always a run
// of consecutive records. With stop, the scan ends once the budget is spent
// instead of reading (and checking) the rest of the file.
type keep struct {
	from   uint64
	budget int64
	stop   bool
}

// keepAll keeps every record from index from on.
func keepAll(from uint64) keep { return keep{from: from, budget: math.MaxInt64} }

// journalScan is what scanJournal found.
type journalScan struct {
	base    uint64   // index of the first record of the file
	next    uint64   // index the next record will have
	end     int64    // offset of the end of the last intact group
	torn    int64    // bytes after end: a torn tail to cut off
	entries [][]byte // the records kept (see keep), in order
	budget  int64    // what is left of the budget
	stopped bool     // the scan stopped early (keep.stop): next, end and torn are not the file's
}

// scanJournal reads a journal file of the given size from r, checking every
// group and record, and keeps the records k says. A torn tail is reported
// in torn, not as an error; damage before the tail is an error matching
// ErrCorrupt.
func scanJournal(r io.Reader, size int64, k keep) (journalScan, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	s := journalScan{budget: k.budget}
	if size < journalHeaderSize {
		return s, fmt.Errorf("%w: journal shorter than its header (%d bytes)", ErrCorrupt, size)
	}
	h := make([]byte, journalHeaderSize)
	if _, err := io.ReadFull(br, h); err != nil {
		return s, fmt.Errorf("auditlog: read journal header: %w", err)
	}
	base, err := parseJournalHeader(h)
	if err != nil {
		return s, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	s.base, s.next, s.end = base, base, journalHeaderSize
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: journal offset %d (index %d): %s", ErrCorrupt, s.end, s.next, fmt.Sprintf(format, args...))
	}
	gh := make([]byte, groupHeaderSize)
	var body []byte
	for s.end < size {
		remaining := size - s.end
		if remaining < groupHeaderSize {
			break // torn: a partial group header
		}
		if _, err := io.ReadFull(br, gh); err != nil {
			return s, fmt.Errorf("auditlog: read journal: %w", err)
		}
		if string(gh[:4]) != groupMagic || crc32.Checksum(gh[:20], castagnoli) != binary.BigEndian.Uint32(gh[20:24]) {
			if remaining <= groupHeaderSize+maxGroupBody {
				break // torn: the last write did not reach the disk whole
			}
			return s, corrupt("bad group header with %d bytes after it", remaining)
		}
		count := binary.BigEndian.Uint32(gh[4:8])
		bodyLen := int64(binary.BigEndian.Uint32(gh[8:12]))
		first := binary.BigEndian.Uint64(gh[12:20])
		if bodyLen > maxGroupBody || count > maxRecordsPerGroup {
			return s, corrupt("group of %d records in %d bytes exceeds the limits", count, bodyLen)
		}
		if first != s.next {
			return s, corrupt("group starts at index %d", first)
		}
		if groupHeaderSize+bodyLen > remaining {
			break // torn: short body
		}
		last := groupHeaderSize+bodyLen == remaining
		if cap(body) < int(bodyLen) {
			body = make([]byte, bodyLen)
		}
		body = body[:bodyLen]
		if _, err := io.ReadFull(br, body); err != nil {
			return s, fmt.Errorf("auditlog: read journal: %w", err)
		}
		records, perr := parseGroupBody(body, count)
		if perr != nil {
			if last {
				break // torn
			}
			return s, corrupt("%v", perr)
		}
		for i, rec := range records {
			if s.next+uint64(i) >= k.from && s.budget > 0 {
				s.entries = append(s.entries, append([]byte(nil), rec...))
				s.budget -= int64(len(rec))
			}
		}
		s.next += uint64(count)
		s.end += groupHeaderSize + bodyLen
		if k.stop && s.budget <= 0 && s.next > k.from {
			s.stopped = true
			return s, nil
		}
	}
	s.torn = size - s.end
	return s, nil
}

// parseGroupBody splits a group body into its count records, checking
// each record's CRC. The records alias body.
func parseGroupBody(body []byte, count uint32) ([][]byte, error) {
	records := make([][]byte, 0, count)
	for i := uint32(0); i < count; i++ {
		if len(body) < recordHeaderSize {
			return nil, fmt.Errorf("record %d of %d: truncated header", i, count)
		}
		n := binary.BigEndian.Uint32(body)
		sum := binary.BigEndian.Uint32(body[4:])
		body = body[recordHeaderSize:]
		if uint64(n) > uint64(len(body)) || n > MaxEntrySize {
			return nil, fmt.Errorf("record %d of %d: length %d exceeds the group", i, count, n)
		}
		rec := body[:n]
		if crc32.Checksum(rec, castagnoli) != sum {
			return nil, fmt.Errorf("record %d of %d: checksum mismatch", i, count)
		}
		records = append(records, rec)
		body = body[n:]
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%d bytes after the last record of the group", len(body))
	}
	return records, nil
}
