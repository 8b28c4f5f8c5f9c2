package transfer

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKAnonymityHandMade(t *testing.T) {
	// Groups: ("IE","30-34") x5, ("FR","30-34") x2, ("IE","35-39") x1; k = 3.
	rows := [][]string{
		{"IE", "30-34"}, {"FR", "30-34"}, {"IE", "30-34"}, {"IE", "35-39"},
		{"IE", "30-34"}, {"FR", "30-34"}, {"IE", "30-34"}, {"IE", "30-34"},
	}
	keep, suppressed := KAnonymity(rows, 3)
	want := []bool{true, false, true, false, true, false, true, true}
	if diff := cmp.Diff(want, keep); diff != "" {
		t.Errorf("keep (-want +got):\n%s", diff)
	}
	if suppressed != 3 {
		t.Errorf("suppressed = %d, want 3", suppressed)
	}
	g := NewGrouper(3)
	for _, r := range rows {
		g.Add(r)
	}
	if g.Total() != 8 || g.Groups() != 3 || g.Suppressed() != 3 {
		t.Errorf("Grouper: total %d groups %d suppressed %d, want 8 3 3", g.Total(), g.Groups(), g.Suppressed())
	}
	if g.Keep([]string{"DE", "30-34"}) {
		t.Error("Keep of a tuple never counted = true")
	}
	if keep, n := KAnonymity(nil, 3); len(keep) != 0 || n != 0 {
		t.Errorf("KAnonymity(nil) = %v, %d", keep, n)
	}
}

func TestGrouperAgreesWithKAnonymity(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"", "a", "b", "a|b", "|", "\x00", "ab", "IE", "30-34"}
	for trial := range 200 {
		n := r.IntN(300)
		width := 1 + r.IntN(3)
		k := 2 + r.IntN(5)
		rows := make([][]string, n)
		for i := range rows {
			rows[i] = make([]string, width)
			for j := range rows[i] {
				rows[i][j] = alphabet[r.IntN(len(alphabet))]
			}
		}
		wantKeep, wantSupp := KAnonymity(rows, k)
		g := NewGrouper(k)
		for _, row := range rows {
			if r.IntN(2) == 0 {
				g.Add(row)
			} else {
				g.AddRaw(raw(row))
			}
		}
		got := make([]bool, n)
		for i, row := range rows {
			got[i] = g.Keep(row)
			if g.KeepRaw(raw(row)) != got[i] {
				t.Fatalf("trial %d: Keep and KeepRaw disagree on %q", trial, row)
			}
		}
		if diff := cmp.Diff(wantKeep, got); diff != "" {
			t.Fatalf("trial %d (k=%d): Grouper.Keep differs from KAnonymity (-want +got):\n%s", trial, k, diff)
		}
		if g.Suppressed() != wantSupp || g.Total() != n {
			t.Fatalf("trial %d: Suppressed %d Total %d, want %d %d", trial, g.Suppressed(), g.Total(), wantSupp, n)
		}
	}
}

func raw(tuple []string) []json.RawMessage {
	out := make([]json.RawMessage, len(tuple))
	for i, s := range tuple {
		out[i] = json.RawMessage(s)
	}
	return out
}

func TestSeparatorAmbiguity(t *testing.T) {
	tests := [][2][]string{
		{{"a|b", "c"}, {"a", "b|c"}},
		{{"ab", ""}, {"a", "b"}},
		{{"a\x00b"}, {"a", "b"}},
		{{"\x01a"}, {"", "a"}}, // a length byte inside a value
	}
	for _, tc := range tests {
		rows := [][]string{tc[0], tc[1]}
		if keep, supp := KAnonymity(rows, 2); keep[0] || keep[1] || supp != 2 {
			t.Errorf("KAnonymity(%q) = %v, %d: the tuples were grouped together", rows, keep, supp)
		}
		g := NewGrouper(2)
		g.Add(tc[0])
		g.Add(tc[1])
		if g.Groups() != 2 || g.Keep(tc[0]) || g.Keep(tc[1]) {
			t.Errorf("Grouper: %q and %q fall in one group", tc[0], tc[1])
		}
	}
}

func TestRefuse(t *testing.T) {
	tests := []struct {
		suppressed, total int
		max               float64
		want              bool
	}{
		{0, 0, 0, false},
		{0, 100, 0, false},
		{1, 100, 0, true},
		{10, 100, 0.1, false},
		{11, 100, 0.1, true},
		{100, 100, 1, false},
	}
	for _, tc := range tests {
		if got := Refuse(tc.suppressed, tc.total, tc.max); got != tc.want {
			t.Errorf("Refuse(%d, %d, %v) = %v, want %v", tc.suppressed, tc.total, tc.max, got, tc.want)
		}
	}
}
