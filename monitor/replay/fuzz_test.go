package replay_test

import (
	"bytes"
	"slices"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/monitor/replay"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/schema"
)

var knownKinds = []string{replay.KindForm, replay.KindDecision, replay.KindDigest, replay.KindNoPolicy,
	replay.KindUnknownField, replay.KindPolicyLoad, replay.KindActor}

// FuzzObserve feeds any entry the log would accept to a Replayer with the
// default set in force: it must not panic, must not change the entry, and
// must report only well-formed disagreements about that entry.
func FuzzObserve(f *testing.F) {
	set, fields := defaultSet(f), schema.Default()
	for _, c := range callers()[:8] {
		for _, e := range []*auditlog.Entry{readEntry(set, c, fields, t0),
			actionEntry(set, auditlog.KindWrite, "write", c, t0), actionEntry(set, auditlog.KindTransfer, "transfer", c, t0)} {
			b, err := auditlog.Encode(e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	pe, err := auditlog.Encode(policyEntry(set, fields, t0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pe)
	// Entries other than policy entries leave the Replayer as it was, so
	// they share one; a policy entry gets its own.
	shared := replay.New()
	if ds := shared.Observe(0, canonical(f, policyEntry(set, fields, t0))); ds != nil {
		f.Fatal(ds)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := auditlog.Decode(b)
		if err != nil {
			return
		}
		r := shared
		if e.Kind == auditlog.KindPolicy {
			r = replay.New()
			r.Observe(0, canonical(t, policyEntry(set, fields, t0)))
		}
		ds := r.Observe(1, e)
		if again, err := auditlog.Encode(e); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("Observe changed the entry: %s", again)
		}
		for _, d := range ds {
			if d.Index != 1 || !slices.Contains(knownKinds, d.Kind) || d.Message == "" {
				t.Fatalf("malformed disagreement %+v", d)
			}
		}
	})
}

// FuzzPolicyText checks that a policy entry is in force exactly when its
// text loads with policy.Load: any text that loads gives no disagreement
// and a usable set; any other gives one policy_load disagreement, and the
// next read is reported as unverifiable.
func FuzzPolicyText(f *testing.F) {
	for _, file := range defaultSet(f).Files() {
		f.Add(file.Text)
	}
	f.Add(noRaw)
	f.Add(`permit (principal, action, resource`)
	f.Add(`@id("") permit (principal, action, resource);`)
	afterwards := canonical(f, readEntry(defaultSet(f), callers()[0], schema.Default(), t0))
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) || len(text) > auditlog.MaxEntrySize/2 {
			return
		}
		digest := "not-loaded"
		set, loadErr := policy.Load(fstest.MapFS{"a.cedar": {Data: []byte(text)}})
		if loadErr == nil {
			digest = set.Digest()
		}
		e := &auditlog.Entry{Time: t0, Kind: auditlog.KindPolicy, Policy: &auditlog.PolicyRef{Digest: digest},
			PolicyFiles: []auditlog.PolicyFile{{Name: "a.cedar", Text: text}}}
		for _, sf := range schema.Default() {
			e.Schema = append(e.Schema, auditlog.SchemaField{Name: sf.Name, Type: sf.Type, Category: sf.Category, Method: sf.Method})
		}
		r := replay.New()
		ds := r.Observe(0, canonical(t, e))
		if loadErr == nil {
			if len(ds) != 0 {
				t.Fatalf("a set that loads is reported: %v", ds)
			}
			c := callers()[0]
			if ds := r.Observe(1, canonical(t, readEntry(set, c, schema.Default(), t0))); len(ds) != 0 {
				t.Fatalf("a read decided by the set is reported: %v", ds)
			}
			return
		}
		if len(ds) != 1 || ds[0].Kind != replay.KindPolicyLoad {
			t.Fatalf("a set that does not load (%v) gives %v", loadErr, ds)
		}
		ds = r.Observe(1, afterwards)
		if len(ds) != 1 || ds[0].Kind != replay.KindNoPolicy {
			t.Fatalf("a read after an unusable set gives %v", ds)
		}
	})
}
