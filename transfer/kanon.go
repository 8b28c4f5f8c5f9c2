package transfer

import (
	"encoding/binary"
	"encoding/json"
	"slices"
)

// KAnonymity decides which records may be released: rows holds each
// record's quasi-identifier tuple (as transformed for the destination), and
// a record is kept only if at least k records, itself included, have the
// same tuple. It returns keep[i] for each record and the number suppressed.
// It is pure and holds every tuple in memory; the exporter uses a Grouper,
// which agrees with it.
func KAnonymity(rows [][]string, k int) (keep []bool, suppressed int) {
	keep = make([]bool, len(rows))
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return compareTuple(rows[a], rows[b]) })
	for start := 0; start < len(idx); {
		end := start + 1
		for end < len(idx) && compareTuple(rows[idx[start]], rows[idx[end]]) == 0 {
			end++
		}
		ok := end-start >= k
		for _, i := range idx[start:end] {
			keep[i] = ok
		}
		if !ok {
			suppressed += end - start
		}
		start = end
	}
	return keep, suppressed
}

// compareTuple orders tuples element by element, a shorter tuple first.
func compareTuple(a, b []string) int { return slices.Compare(a, b) }

// Refuse reports whether a transfer that would suppress suppressed of total
// records must be refused: more than maxFraction of them suppressed. A
// transfer of no records is not refused (it sends nothing).
func Refuse(suppressed, total int, maxFraction float64) bool {
	if total <= 0 {
		return false
	}
	return float64(suppressed) > maxFraction*float64(total)
}

// Grouper counts quasi-identifier tuples in a first pass over the records
// and then says which to keep in the second. Its memory is O(distinct
// tuples), not O(records). A tuple is keyed by the length-prefixed
// concatenation of its values, so ["a|b","c"] and ["a","b|c"] are distinct
// whatever the values hold. It is not safe for concurrent use.
type Grouper struct {
	k      int
	index  map[string]int // key -> position in counts
	counts []int
	total  int
	key    []byte // reused key buffer
}

// NewGrouper returns a Grouper for minimum group size k.
func NewGrouper(k int) *Grouper {
	return &Grouper{k: k, index: map[string]int{}}
}

func appendKeyPart(key []byte, v []byte) []byte {
	key = binary.AppendUvarint(key, uint64(len(v)))
	return append(key, v...)
}

func (g *Grouper) keyOf(tuple []string) []byte {
	g.key = g.key[:0]
	for _, v := range tuple {
		g.key = binary.AppendUvarint(g.key, uint64(len(v)))
		g.key = append(g.key, v...)
	}
	return g.key
}

func (g *Grouper) keyOfRaw(tuple []json.RawMessage) []byte {
	g.key = g.key[:0]
	for _, v := range tuple {
		g.key = appendKeyPart(g.key, v)
	}
	return g.key
}

func (g *Grouper) add(key []byte) {
	g.total++
	if i, ok := g.index[string(key)]; ok { // no allocation for the lookup
		g.counts[i]++
		return
	}
	g.index[string(key)] = len(g.counts)
	g.counts = append(g.counts, 1)
}

func (g *Grouper) count(key []byte) int {
	if i, ok := g.index[string(key)]; ok {
		return g.counts[i]
	}
	return 0
}

// Add counts one record's tuple (first pass).
func (g *Grouper) Add(tuple []string) { g.add(g.keyOf(tuple)) }

// AddRaw counts one record's tuple of JSON values (first pass); a tuple of
// JSON values is a different tuple from one of the same bytes as strings
// only if the bytes differ.
func (g *Grouper) AddRaw(tuple []json.RawMessage) { g.add(g.keyOfRaw(tuple)) }

// Keep reports whether a record with this tuple may be released (second
// pass): its tuple was counted at least k times. A tuple never counted is
// not kept.
func (g *Grouper) Keep(tuple []string) bool { return g.count(g.keyOf(tuple)) >= g.k }

// KeepRaw is Keep for a tuple of JSON values.
func (g *Grouper) KeepRaw(tuple []json.RawMessage) bool { return g.count(g.keyOfRaw(tuple)) >= g.k }

// Total is the number of records counted.
func (g *Grouper) Total() int { return g.total }

// Groups is the number of distinct tuples counted.
func (g *Grouper) Groups() int { return len(g.counts) }

// Suppressed is the number of records counted whose group is smaller than
// k: those the second pass will suppress.
func (g *Grouper) Suppressed() int {
	n := 0
	for _, c := range g.counts {
		if c < g.k {
			n += c
		}
	}
	return n
}
