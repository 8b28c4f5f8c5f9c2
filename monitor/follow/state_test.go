package follow

import (
	"bytes"
	"errors"
	"testing"
)

func TestStateRoundTrip(t *testing.T) {
	key := newTestKey(t)
	l := newTestLog(t, key)
	for _, size := range []int{0, 1, 2, 3, 255, 256, 257, 1000} {
		l.addN(size - len(l.entries))
		l.publish()
		f := mustNew(t, l.fetcher(), key.verifier, State{}, Options{ChunkSize: 77})
		poll(t, f, func(Chunk) error { return nil })
		st := f.State()
		b := mustMarshal(t, st)
		var got State
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if got.Size != st.Size || !bytes.Equal(got.Checkpoint, st.Checkpoint) || len(got.Hashes) != len(st.Hashes) {
			t.Fatalf("size %d: round trip gave %+v", size, got)
		}
		for i := range st.Hashes {
			if !bytes.Equal(got.Hashes[i], st.Hashes[i]) {
				t.Fatalf("size %d: hash %d differs", size, i)
			}
		}
		if !bytes.Equal(mustMarshal(t, got), b) {
			t.Fatalf("size %d: marshal of unmarshal differs", size)
		}
	}
}

func TestStateUnmarshalRejects(t *testing.T) {
	key := newTestKey(t)
	l := newTestLog(t, key)
	l.addN(5) // two compact range hashes
	l.publish()
	f := mustNew(t, l.fetcher(), key.verifier, State{}, Options{})
	poll(t, f, func(Chunk) error { return nil })
	good := mustMarshal(t, f.State())
	cpLen := len(f.State().Checkpoint)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 0", append([]byte{0}, good[1:]...)},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"no hashes", good[:len(good)-64]},
		{"overlong size varint", append([]byte{1, 0x85, 0x00}, good[2:]...)},
		{"checkpoint length beyond end", []byte{1, 0, 0x7f}},
		{"size without checkpoint", append([]byte{1, 1, 0}, make([]byte, 32)...)},
		{"size too large", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}},
		{"bad varint", []byte{1, 0x80}},
	}
	for _, tt := range tests {
		var st State
		err := st.UnmarshalBinary(tt.b)
		if !errors.Is(err, ErrInvalidState) {
			t.Errorf("%s: UnmarshalBinary = %v, want ErrInvalidState", tt.name, err)
		}
	}
	if cpLen < 100 || good[2] == 0 {
		t.Fatalf("test assumes a checkpoint in the state, got %d bytes", cpLen)
	}
	if _, err := (State{Size: 5, Checkpoint: []byte("x"), Hashes: [][]byte{make([]byte, 32)}}).MarshalBinary(); !errors.Is(err, ErrInvalidState) {
		t.Errorf("MarshalBinary of a state with too few hashes = %v", err)
	}
	if _, err := (State{Size: 1, Checkpoint: []byte("x"), Hashes: [][]byte{make([]byte, 31)}}).MarshalBinary(); !errors.Is(err, ErrInvalidState) {
		t.Errorf("MarshalBinary of a state with a short hash = %v", err)
	}
}

// FuzzStateUnmarshal: UnmarshalBinary never panics, and what it accepts
// MarshalBinary reproduces exactly.
func FuzzStateUnmarshal(f *testing.F) {
	f.Add([]byte{1, 0, 0})
	f.Add(append([]byte{1, 1, 1, 'x'}, make([]byte, 32)...))
	f.Add(append([]byte{1, 3, 2, 'x', 'y'}, make([]byte, 64)...))
	f.Add([]byte{1, 0x80, 0x00, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var st State
		if err := st.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrInvalidState) {
				t.Fatalf("error %v does not match ErrInvalidState", err)
			}
			return
		}
		out, err := st.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of an accepted state: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip %x -> %x", b, out)
		}
	})
}
