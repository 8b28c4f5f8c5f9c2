package replay_test

import (
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/monitor/replay"
	"github.com/cloverenclave/clover/schema"
)

// benchStream is what a gateway with the default set writes: its policy
// entry, then reads of all fields, of a few and of one, by every caller of
// callers(), encoded.
func benchStream(b *testing.B) [][]byte {
	b.Helper()
	set, fields := defaultSet(b), schema.Default()
	entries := []*auditlog.Entry{policyEntry(set, fields, t0)}
	at := t0
	for _, c := range callers() {
		at = at.Add(time.Millisecond)
		entries = append(entries,
			readEntry(set, c, fields, at),
			readEntry(set, c, fields[:3], at),
			readEntry(set, c, fields[3:4], at))
	}
	out := make([][]byte, len(entries))
	for i, e := range entries {
		enc, err := auditlog.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = enc
	}
	return out
}

// BenchmarkReplay measures one read entry replayed (an op is an entry), in
// the steady state: the set's memo warm, as it is after the first entries
// of each kind of caller. "decode+replay" adds the monitor's strict decoding
// of the entry.
func BenchmarkReplay(b *testing.B) {
	raw := benchStream(b)
	decoded := make([]*auditlog.Entry, len(raw))
	for i, enc := range raw {
		e, err := auditlog.Decode(enc)
		if err != nil {
			b.Fatal(err)
		}
		decoded[i] = e
	}
	reads := len(raw) - 1
	b.Run("replay", func(b *testing.B) {
		r := replay.New()
		if ds := r.Observe(0, decoded[0]); ds != nil {
			b.Fatal(ds)
		}
		i := 0
		for b.Loop() {
			if ds := r.Observe(uint64(1+i), decoded[1+i%reads]); ds != nil {
				b.Fatal(ds)
			}
			i++
		}
	})
	b.Run("decode+replay", func(b *testing.B) {
		r := replay.New()
		if ds := r.Observe(0, decoded[0]); ds != nil {
			b.Fatal(ds)
		}
		i := 0
		for b.Loop() {
			e, err := auditlog.Decode(raw[1+i%reads])
			if err != nil {
				b.Fatal(err)
			}
			if ds := r.Observe(uint64(1+i), e); ds != nil {
				b.Fatal(ds)
			}
			i++
		}
	})
	b.Run("policy-entry", func(b *testing.B) {
		r := replay.New()
		for b.Loop() {
			if ds := r.Observe(0, decoded[0]); ds != nil {
				b.Fatal(ds)
			}
		}
	})
}
