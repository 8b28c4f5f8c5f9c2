package auditlog

import (
	"crypto/rand"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func cosignerKey(t *testing.T, name string) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	cv, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return cv
}

func TestWitnessOptions(t *testing.T) {
	k1, k2 := cosignerKey(t, "monitor-a.example"), cosignerKey(t, "monitor-b.example")
	base := Options{Dir: t.TempDir(), Origin: "clover/test", SignerKeyFile: "k"}
	ok := []Options{
		base,
		{Dir: "d", Origin: "clover/test", SignerKeyFile: "k", Witnesses: []Witness{{Name: "a", URL: "http://127.0.0.1:7401", Key: k1}}},
		{Dir: "d", Origin: "clover/test", SignerKeyFile: "k", WitnessQuorum: 1,
			Witnesses: []Witness{{Name: "a", URL: "http://127.0.0.1:7401", Key: k1}, {Name: "b", URL: "https://w.example/x", Key: k2}}},
	}
	for i, o := range ok {
		if err := o.Validate(); err != nil {
			t.Errorf("options %d: %v", i, err)
		}
	}
	bad := []struct {
		w      []Witness
		quorum int
		want   string
	}{
		{[]Witness{{Name: "a", URL: "ftp://x", Key: k1}}, 0, "not an http(s) URL"},
		{[]Witness{{Name: "a", URL: "http://", Key: k1}}, 0, "not an http(s) URL"},
		{[]Witness{{Name: "a", URL: "http://x y", Key: k1}}, 0, "not an http(s) URL"},
		{[]Witness{{Name: "a", URL: "http://x", Key: "monitor+00000000+AQ=="}}, 0, "not a cosignature/v1 verifier key"},
		{[]Witness{{Name: "a", URL: "http://x", Key: "garbage"}}, 0, "not a cosignature/v1 verifier key"},
		{[]Witness{{Name: "a", URL: "http://x", Key: k1}}, 2, "quorum 2 is outside 1..1"},
		{[]Witness{{Name: "a", URL: "http://x", Key: k1}}, -1, "quorum -1 is outside 1..1"},
	}
	for i, c := range bad {
		o := base
		o.Witnesses, o.WitnessQuorum = c.w, c.quorum
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: got %v, want an error containing %q", i, err, c.want)
		}
	}
}

func TestWitnessGroupQuorum(t *testing.T) {
	k1, k2 := cosignerKey(t, "monitor-a.example"), cosignerKey(t, "monitor-b.example")
	o := Options{Witnesses: []Witness{{Name: "a", URL: "http://a.example", Key: k1}, {Name: "b", URL: "http://b.example", Key: k2}}}
	g, err := o.witnessGroup()
	if err != nil {
		t.Fatal(err)
	}
	if g.N != 2 || len(g.Endpoints()) != 2 {
		t.Fatalf("default quorum: N=%d endpoints=%d, want all (2) of 2", g.N, len(g.Endpoints()))
	}
	if _, ok := g.Endpoints()["http://a.example/add-checkpoint"]; !ok {
		t.Fatalf("endpoints %v lack a's add-checkpoint URL", g.Endpoints())
	}
	o.WitnessQuorum = 1
	if g, _ = o.witnessGroup(); g.N != 1 {
		t.Fatalf("quorum 1: N=%d", g.N)
	}
	if g, _ = (Options{}).witnessGroup(); g.N != 0 || len(g.Endpoints()) != 0 {
		t.Fatalf("no witnesses: N=%d endpoints=%d", g.N, len(g.Endpoints()))
	}
}
