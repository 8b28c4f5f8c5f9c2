package gateway

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/schema"
	"github.com/google/go-cmp/cmp"
)

// The pooled HMACs name subjects exactly as auditlog.SubjectPseudonym
// does, also when used from many goroutines at once.
func TestPseudonymMACsMatchAuditlog(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	p := newPseudonymMACs(key)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				handle := []byte(fmt.Sprintf("handle-%d-%d", w, i%17))
				if got, want := p.of(handle), auditlog.SubjectPseudonym(key, handle); got != want {
					errs <- fmt.Sprintf("of(%q) = %s, want %s", handle, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if a, b := p.of([]byte("x")), newPseudonymMACs([]byte("another key")).of([]byte("x")); a == b {
		t.Error("two log keys give the same pseudonym")
	}
}

func TestFieldsFor(t *testing.T) {
	all := []schema.Field{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}}
	g := &Gateway{allFields: all}
	raw := json.RawMessage(`"x"`)
	names := func(fs []schema.Field) []string {
		out := []string{}
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return out
	}
	cases := []struct {
		have map[string]json.RawMessage
		want []string
	}{
		{nil, []string{"a", "b", "c", "d"}},
		{map[string]json.RawMessage{"a": raw, "b": raw, "c": raw, "d": raw}, []string{"a", "b", "c", "d"}},
		{map[string]json.RawMessage{"a": raw, "c": raw, "d": raw}, []string{"a", "c", "d"}},
		{map[string]json.RawMessage{"b": raw, "d": raw}, []string{"b", "d"}},
		{map[string]json.RawMessage{"a": raw, "b": raw, "c": raw}, []string{"a", "b", "c"}},
		{map[string]json.RawMessage{}, []string{}},
	}
	for _, c := range cases {
		got := g.fieldsFor(nil, c.have)
		if diff := cmp.Diff(c.want, names(got)); diff != "" {
			t.Errorf("fieldsFor(nil, %v) (-want +got):\n%s", c.have, diff)
		}
		// The gateway's own list is shared, never appended to in place.
		_ = append(got, schema.Field{Name: "z"})
		if diff := cmp.Diff([]string{"a", "b", "c", "d"}, names(g.allFields)); diff != "" {
			t.Fatalf("allFields changed (-want +got):\n%s", diff)
		}
	}
}

func TestDecidingKeepsFirstAppearance(t *testing.T) {
	d := policy.Decision{Fields: []policy.FieldDecision{
		{Field: "a", Policies: []string{"p2", "p1"}},
		{Field: "b"},
		{Field: "c", Policies: []string{"p1", "p3", "p2"}},
	}}
	if diff := cmp.Diff([]string{"p2", "p1", "p3"}, deciding(d)); diff != "" {
		t.Errorf("deciding (-want +got):\n%s", diff)
	}
}
