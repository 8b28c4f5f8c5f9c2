package spill

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// records are of sizes around the chunk boundaries, empty ones included.
func testRecords() [][]byte {
	var recs [][]byte
	for i, n := range []int{0, 1, 127, 128, 300, ChunkSize - 3, ChunkSize, ChunkSize + 1, 0, 5, 3*ChunkSize + 17, 2, 0} {
		r := make([]byte, n)
		for j := range r {
			r[j] = byte(i*31 + j)
		}
		recs = append(recs, r)
	}
	for i := range 5000 { // many small records, frames crossing chunks
		recs = append(recs, fmt.Appendf(nil, `{"subject":"tok-%06d","age":"30-34"}`, i))
	}
	return recs
}

func write(t *testing.T, recs [][]byte) *File {
	t.Helper()
	f, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	for _, r := range recs {
		if err := f.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func readAll(f *File) ([][]byte, error) {
	var out [][]byte
	for {
		r, err := f.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, bytes.Clone(r))
	}
}

func TestRoundTrip(t *testing.T) {
	for _, recs := range [][][]byte{nil, {{}}, {[]byte("one")}, testRecords()} {
		f := write(t, recs)
		if f.Records() != int64(len(recs)) {
			t.Errorf("Records() = %d, want %d", f.Records(), len(recs))
		}
		got, err := readAll(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(recs) {
			t.Fatalf("read %d records, wrote %d", len(got), len(recs))
		}
		for i := range recs {
			if !bytes.Equal(got[i], recs[i]) {
				t.Fatalf("record %d: read %d bytes %.20q, wrote %d bytes %.20q", i, len(got[i]), got[i], len(recs[i]), recs[i])
			}
		}
		if _, err := f.Next(); err != io.EOF {
			t.Errorf("Next after the end = %v, want io.EOF", err)
		}
		if err := f.Append([]byte("late")); err == nil {
			t.Error("Append after reading began succeeded")
		}
	}
}

// fileBytes is the file's content as stored, read through the open
// descriptor (the file has no name).
func fileBytes(t *testing.T, f *File) []byte {
	t.Helper()
	b := make([]byte, f.Size())
	if _, err := f.f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNoPlaintextOnDisk(t *testing.T) {
	recs := testRecords()
	f := write(t, recs)
	if _, err := f.Next(); err != nil { // seals the last chunk
		t.Fatal(err)
	}
	stored := fileBytes(t, f)
	if len(stored) < ChunkSize {
		t.Fatalf("only %d bytes stored", len(stored))
	}
	for _, known := range []string{"tok-000042", "30-34", "subject"} {
		if bytes.Contains(stored, []byte(known)) {
			t.Errorf("the spill file holds %q in the clear", known)
		}
	}
}

func TestFileIsPrivateAndRemoved(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %04o, want 0600", perm)
	}
	if err := f.Append([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("left in the directory after Close: %v", entries)
	}
	if _, err := f.Next(); err == nil {
		t.Error("Next after Close succeeded")
	}
}

func TestMissingDirectory(t *testing.T) {
	if _, err := Create(t.TempDir() + "/absent"); err == nil {
		t.Error("Create in a missing directory succeeded")
	}
}

// TestTampering alters the stored file in each way a reader could be fooled
// and expects ErrCorrupt before any wrong record is returned.
func TestTampering(t *testing.T) {
	recs := testRecords()
	chunk0 := headerSize + ChunkSize + 16 // a full chunk as stored
	tests := []struct {
		name   string
		tamper func(t *testing.T, f *File, stored []byte)
	}{
		{"flip a ciphertext byte", func(t *testing.T, f *File, stored []byte) { writeAt(t, f, []byte{stored[100] ^ 1}, 100) }},
		{"flip a byte of the last chunk", func(t *testing.T, f *File, stored []byte) {
			writeAt(t, f, []byte{stored[len(stored)-1] ^ 0x80}, int64(len(stored)-1))
		}},
		{"change a length", func(t *testing.T, f *File, stored []byte) { writeAt(t, f, []byte{0, 0, 0, 40}, 0) }},
		{"swap two chunks", func(t *testing.T, f *File, stored []byte) {
			writeAt(t, f, stored[chunk0:2*chunk0], 0)
			writeAt(t, f, stored[:chunk0], int64(chunk0))
		}},
		{"replay the first chunk", func(t *testing.T, f *File, stored []byte) { writeAt(t, f, stored[:chunk0], int64(chunk0)) }},
		{"truncate", func(t *testing.T, f *File, stored []byte) {
			if err := f.f.Truncate(int64(len(stored) - 10)); err != nil {
				t.Fatal(err)
			}
		}},
		{"drop the last chunk", func(t *testing.T, f *File, stored []byte) {
			if err := f.f.Truncate(int64(len(stored) / chunk0 * chunk0)); err != nil {
				t.Fatal(err)
			}
		}},
		{"extend", func(t *testing.T, f *File, stored []byte) { writeAt(t, f, stored[:chunk0], int64(len(stored))) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := write(t, recs)
			if err := f.sealChunk(len(f.buf)); err != nil { // what the first Next does
				t.Fatal(err)
			}
			tt.tamper(t, f, fileBytes(t, f))
			got, err := readAll(f)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read after tampering: %v, want ErrCorrupt", err)
			}
			for i, r := range got { // what was returned before the failure is what was written
				if !bytes.Equal(r, recs[i]) {
					t.Fatalf("record %d returned altered before the failure", i)
				}
			}
			if _, err := f.Next(); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Next after the failure = %v, want ErrCorrupt again", err)
			}
		})
	}
}

func writeAt(t *testing.T, f *File, b []byte, off int64) {
	t.Helper()
	if _, err := f.f.WriteAt(bytes.Clone(b), off); err != nil {
		t.Fatal(err)
	}
}

// FuzzRoundTrip: whatever the records, they read back as written.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("a\x00bc\x00\x00def"), uint16(3))
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, grow uint16) {
		recs := bytes.Split(data, []byte{0})
		recs = append(recs, bytes.Repeat([]byte{'x'}, int(grow)*8)) // up to ~8 chunks
		s := write(t, recs)
		got, err := readAll(s)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(recs, got, cmp.Comparer(bytes.Equal)); diff != "" {
			t.Fatalf("read back (-wrote +read):\n%s", diff)
		}
	})
}
