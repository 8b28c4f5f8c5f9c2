package replay_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/monitor/replay"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/schema"
	"github.com/google/go-cmp/cmp"
)

// stream is a policy entry of the default set followed by what a gateway
// with that set logs for each caller of cs: a read of all fields, a read of
// each field alone, a write, an erase and a transfer decision.
func stream(t testing.TB, cs []caller) []*auditlog.Entry {
	t.Helper()
	set, fields := defaultSet(t), schema.Default()
	out := []*auditlog.Entry{policyEntry(set, fields, t0)}
	at := t0
	for _, c := range cs {
		at = at.Add(time.Second)
		out = append(out, readEntry(set, c, fields, at))
		for _, f := range fields {
			out = append(out, readEntry(set, c, []schema.Field{f}, at))
		}
		out = append(out,
			actionEntry(set, auditlog.KindWrite, "write", c, at),
			actionEntry(set, auditlog.KindErase, "erase", c, at),
			actionEntry(set, auditlog.KindTransfer, "transfer", c, at))
	}
	return out
}

func TestReplayAgreesWithDecide(t *testing.T) {
	entries := stream(t, callers())
	if ds := replayAll(t, replay.New(), entries); len(ds) != 0 {
		t.Fatalf("%d disagreements on decisions the policies made, first: %v", len(ds), ds[0])
	}
	// The stream is not trivial: it holds every form and both decisions
	// of every action, so a replay that found nothing checked something.
	forms := map[string]bool{}
	decisions := map[string]bool{}
	for _, e := range entries {
		for _, f := range e.Fields {
			forms[f.Form] = true
		}
		decisions[string(e.Kind)+" "+string(e.Decision)] = true
	}
	// Decide picks the most revealing form a field supports, and every
	// field that supports anything but raw supports pseudonym: the default
	// set never gives generalised or masked (TestLessRevealingIsFine and
	// TestForgedWithheldAndUnknownForm cover those).
	for _, f := range []policy.Form{policy.Raw, policy.Pseudonym, policy.Withheld} {
		if !forms[string(f)] {
			t.Errorf("the stream releases nothing %s", f)
		}
	}
	for _, k := range []string{"decision allow", "decision deny", "write allow", "write deny", "erase allow", "erase deny", "transfer allow", "transfer deny"} {
		if !decisions[k] {
			t.Errorf("the stream has no %q entry", k)
		}
	}
}

// forgeable returns the index of the first read whose field was released
// in a form other than raw and withheld, and that field's position.
func forgeable(t *testing.T, entries []*auditlog.Entry) (int, int) {
	t.Helper()
	for i, e := range entries {
		for j, f := range e.Fields {
			if e.Kind == auditlog.KindDecision && f.Form != string(policy.Raw) && f.Form != string(policy.Withheld) {
				return i, j
			}
		}
	}
	t.Fatal("no read releases a protected form")
	return 0, 0
}

func TestForgedForm(t *testing.T) {
	entries := stream(t, callers()[:40])
	i, j := forgeable(t, entries)
	field, allowed := entries[i].Fields[j].Name, entries[i].Fields[j].Form
	entries[i].Fields[j].Form = string(policy.Raw)
	ds := replayAll(t, replay.New(), entries)
	want := []replay.Disagreement{{Index: uint64(i), Kind: replay.KindForm, Field: field, Released: "raw", Allowed: allowed}}
	if diff := cmp.Diff(want, ds, cmpMessageSet()); diff != "" {
		t.Fatalf("disagreements (-want +got):\n%s", diff)
	}
	if !strings.Contains(ds[0].Message, field) || !strings.Contains(ds[0].String(), "entry ") {
		t.Errorf("message %q does not name the field", ds[0])
	}
}

// cmpMessageSet ignores the messages but checks that each is set.
func cmpMessageSet() cmp.Option {
	return cmp.Comparer(func(a, b replay.Disagreement) bool {
		if a.Message == "" && b.Message == "" {
			return false
		}
		a.Message, b.Message = "", ""
		return a == b
	})
}

func TestForgedWithheldAndUnknownForm(t *testing.T) {
	set, fields := defaultSet(t), schema.Default()
	support := caller{p: authn.Principal{Subject: "s", Roles: []string{"support"}, Country: "IE"},
		ctx: policy.Context{Purpose: "support", Justification: "T-1", CallerInJurisdiction: true}}
	e := readEntry(set, support, fields, t0)
	var special string
	for _, f := range fields {
		if f.Category == "special-category" {
			special = f.Name
		}
	}
	if special == "" {
		t.Fatal("the default schema has no special-category field")
	}
	for k := range e.Fields {
		switch e.Fields[k].Name {
		case special:
			if e.Fields[k].Form != string(policy.Withheld) {
				t.Fatalf("support got %s in form %s", special, e.Fields[k].Form)
			}
			e.Fields[k].Form = string(policy.Masked)
		case "email":
			e.Fields[k].Form = "encrypted"
		}
	}
	ds := replayAll(t, replay.New(), []*auditlog.Entry{policyEntry(set, fields, t0), e})
	want := []replay.Disagreement{
		{Index: 1, Kind: replay.KindForm, Field: "email", Released: "encrypted", Allowed: "raw"},
		{Index: 1, Kind: replay.KindForm, Field: special, Released: "masked", Allowed: "withheld"},
	}
	slices.SortFunc(ds, func(a, b replay.Disagreement) int { return strings.Compare(a.Field, b.Field) })
	slices.SortFunc(want, func(a, b replay.Disagreement) int { return strings.Compare(a.Field, b.Field) })
	if diff := cmp.Diff(want, ds, cmpMessageSet()); diff != "" {
		t.Fatalf("disagreements (-want +got):\n%s", diff)
	}
}

func TestLessRevealingIsFine(t *testing.T) {
	set, fields := defaultSet(t), schema.Default()
	svc := caller{p: authn.Principal{Subject: "svc", Roles: []string{"service"}, Country: "IE"}, ctx: policy.Context{CallerInJurisdiction: true}}
	e := readEntry(set, svc, fields, t0)
	forms := []policy.Form{policy.Withheld, policy.Masked, policy.Generalised, policy.Pseudonym}
	for k := range e.Fields {
		if e.Fields[k].Form != string(policy.Raw) {
			t.Fatalf("a service read %s in form %s, want raw", e.Fields[k].Name, e.Fields[k].Form)
		}
		e.Fields[k].Form = string(forms[k%len(forms)])
	}
	if ds := replayAll(t, replay.New(), []*auditlog.Entry{policyEntry(set, fields, t0), e}); len(ds) != 0 {
		t.Fatalf("less revealing forms reported: %v", ds)
	}
}

func TestDigestAndNoPolicy(t *testing.T) {
	set, fields := defaultSet(t), schema.Default()
	c := callers()[0]
	read := readEntry(set, c, fields, t0)
	forged := readEntry(set, c, fields, t0)
	forged.Policy.Digest = strings.Repeat("0", 64)
	unnamed := actionEntry(set, auditlog.KindErase, "erase", c, t0)
	unnamed.Policy = nil
	rehome := &auditlog.Entry{Time: t0, Kind: auditlog.KindRehome, Subject: subject, Site: "eu-north"}
	entries := []*auditlog.Entry{rehome, read, actionEntry(set, auditlog.KindWrite, "write", c, t0),
		policyEntry(set, fields, t0), read, forged, unnamed}
	ds := replayAll(t, replay.New(), entries)
	want := []replay.Disagreement{
		{Index: 1, Kind: replay.KindNoPolicy},
		{Index: 2, Kind: replay.KindNoPolicy},
		{Index: 5, Kind: replay.KindDigest},
		{Index: 6, Kind: replay.KindDigest},
	}
	if diff := cmp.Diff(want, ds, cmpMessageSet()); diff != "" {
		t.Fatalf("disagreements (-want +got):\n%s", diff)
	}
}

func TestActionsReplayed(t *testing.T) {
	set, fields := defaultSet(t), schema.Default()
	intern := caller{p: authn.Principal{Subject: "i", Roles: []string{"intern"}, Country: "IE"}, ctx: policy.Context{CallerInJurisdiction: true}}
	officer := caller{p: authn.Principal{Subject: "o", Roles: []string{"transfer-officer"}, Country: "IE"},
		ctx: policy.Context{Purpose: "analytics", CallerInJurisdiction: true}}
	allow := func(e *auditlog.Entry) *auditlog.Entry {
		if e.Decision != auditlog.Deny {
			t.Fatalf("%s by an intern was allowed by the default set", e.Action)
		}
		e.Decision, e.Status = auditlog.Allow, 0
		return e
	}
	goodTransfer := actionEntry(set, auditlog.KindTransfer, "transfer", officer, t0)
	if goodTransfer.Decision != auditlog.Allow {
		t.Fatal("the transfer officer may not transfer")
	}
	decided := uint64(6)
	ledger := actionEntry(set, auditlog.KindTransfer, "transfer", intern, t0)
	ledger.Decision, ledger.Status = auditlog.Allow, 200
	ledger.Transfer.Decided, ledger.Transfer.Complete = &decided, true
	wrongAction := actionEntry(set, auditlog.KindWrite, "write", intern, t0)
	wrongAction.Action = "erase"
	entries := []*auditlog.Entry{
		policyEntry(set, fields, t0),
		allow(actionEntry(set, auditlog.KindWrite, "write", intern, t0)),
		allow(actionEntry(set, auditlog.KindErase, "erase", intern, t0)),
		allow(actionEntry(set, auditlog.KindTransfer, "transfer", intern, t0)),
		actionEntry(set, auditlog.KindWrite, "write", intern, t0), // denied: nothing to check
		goodTransfer,
		ledger, // the end of a stream decides nothing
		wrongAction,
	}
	ds := replayAll(t, replay.New(), entries)
	want := []replay.Disagreement{
		{Index: 1, Kind: replay.KindDecision},
		{Index: 2, Kind: replay.KindDecision},
		{Index: 3, Kind: replay.KindDecision},
		{Index: 7, Kind: replay.KindDecision},
	}
	if diff := cmp.Diff(want, ds, cmpMessageSet()); diff != "" {
		t.Fatalf("disagreements (-want +got):\n%s", diff)
	}
}

func TestReidentifyReplayed(t *testing.T) {
	set, fields := defaultSet(t), schema.Default()
	support := caller{p: authn.Principal{Subject: "s", Roles: []string{"support"}, Country: "IE"},
		ctx: policy.Context{Purpose: "support", Justification: "T-1", CallerInJurisdiction: true}}
	abroad := support
	abroad.p.Country, abroad.ctx.CallerInJurisdiction = "US", false
	reid := func(c caller, field string) *auditlog.Entry {
		e := accessEntry(auditlog.KindReidentify, "reidentify", c, t0)
		e.Policy = &auditlog.PolicyRef{Digest: set.Digest()}
		e.Decision, e.Status = auditlog.Allow, 200
		e.Fields = []auditlog.Field{{Name: field, Form: "raw"}}
		return e
	}
	noField := reid(abroad, "full_name")
	noField.Fields, noField.Status = nil, 422 // the token did not open: nothing released
	ds := replayAll(t, replay.New(), []*auditlog.Entry{policyEntry(set, fields, t0),
		reid(support, "full_name"), reid(abroad, "full_name"), noField, reid(support, "no_such_field")})
	want := []replay.Disagreement{
		{Index: 2, Kind: replay.KindDecision, Field: "full_name"},
		{Index: 4, Kind: replay.KindUnknownField, Field: "no_such_field"},
	}
	if diff := cmp.Diff(want, ds, cmpMessageSet()); diff != "" {
		t.Fatalf("disagreements (-want +got):\n%s", diff)
	}
}

func TestActorType(t *testing.T) {
	set, fields := defaultSet(t), schema.Default()
	svc := caller{p: authn.Principal{Subject: "svc", Roles: []string{"service"}, Country: "IE"}, ctx: policy.Context{CallerInJurisdiction: true}}
	e := readEntry(set, svc, fields, t0)
	e.Actor.Type = policy.TypeEmployee
	ds := replayAll(t, replay.New(), []*auditlog.Entry{policyEntry(set, fields, t0), e})
	if diff := cmp.Diff([]string{replay.KindActor}, kinds(ds)); diff != "" {
		t.Fatalf("kinds (-want +got):\n%s", diff)
	}
}

func TestUnknownField(t *testing.T) {
	set, fields := defaultSet(t), schema.Default()
	c := callers()[0]
	e := readEntry(set, c, fields, t0)
	e.Fields = append(e.Fields, auditlog.Field{Name: "shoe_size", Form: "raw"})
	ds := replayAll(t, replay.New(), []*auditlog.Entry{policyEntry(set, fields, t0), e})
	want := []replay.Disagreement{{Index: 1, Kind: replay.KindUnknownField, Field: "shoe_size"}}
	if diff := cmp.Diff(want, ds, cmpMessageSet()); diff != "" {
		t.Fatalf("disagreements (-want +got):\n%s", diff)
	}
	// A policy entry without a schema (written before entries had one):
	// reads cannot be replayed, and each field says why.
	ds = replayAll(t, replay.New(), []*auditlog.Entry{policyEntry(set, nil, t0), readEntry(set, c, fields[:2], t0)})
	if diff := cmp.Diff([]string{replay.KindUnknownField, replay.KindUnknownField}, kinds(ds)); diff != "" {
		t.Fatalf("kinds (-want +got):\n%s", diff)
	}
	if !strings.Contains(ds[0].Message, "no schema") {
		t.Errorf("message %q does not say the schema is missing", ds[0].Message)
	}
}

// TestPolicyEntryTampering changes a policy entry in every way that must
// make it unusable, and checks that the decisions after it are reported
// until a good policy entry comes.
func TestPolicyEntryTampering(t *testing.T) {
	set, fields := defaultSet(t), schema.Default()
	c := callers()[0]
	cases := map[string]struct {
		mutate func(e *auditlog.Entry)
		kind   string
	}{
		"a byte of a file flipped": {func(e *auditlog.Entry) {
			b := []byte(e.PolicyFiles[1].Text)
			b[len(b)/2] ^= 1
			e.PolicyFiles[1].Text = string(b)
		}, replay.KindDigest},
		"a file left out":   {func(e *auditlog.Entry) { e.PolicyFiles = e.PolicyFiles[1:] }, replay.KindDigest},
		"another digest":    {func(e *auditlog.Entry) { e.Policy.Digest = strings.Repeat("a", 64) }, replay.KindDigest},
		"a file renamed":    {func(e *auditlog.Entry) { e.PolicyFiles[0].Name = "00-guardrails.cedar.bak" }, replay.KindPolicyLoad},
		"a file in a dir":   {func(e *auditlog.Entry) { e.PolicyFiles[0].Name = "x/00-guardrails.cedar" }, replay.KindPolicyLoad},
		"a file twice":      {func(e *auditlog.Entry) { e.PolicyFiles = append(e.PolicyFiles, e.PolicyFiles[0]) }, replay.KindPolicyLoad},
		"no files":          {func(e *auditlog.Entry) { e.PolicyFiles = nil }, replay.KindPolicyLoad},
		"a syntax error":    {func(e *auditlog.Entry) { e.PolicyFiles[0].Text += "permit (" }, replay.KindPolicyLoad},
		"an unknown method": {func(e *auditlog.Entry) { e.Schema[0].Method = "rot13" }, replay.KindPolicyLoad},
		"a field twice":     {func(e *auditlog.Entry) { e.Schema = append(e.Schema, e.Schema[0]) }, replay.KindPolicyLoad},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			bad := policyEntry(set, fields, t0)
			tc.mutate(bad)
			entries := []*auditlog.Entry{policyEntry(set, fields, t0), bad, readEntry(set, c, fields, t0.Add(time.Hour)),
				policyEntry(set, fields, t0.Add(2*time.Hour)), readEntry(set, c, fields, t0.Add(2*time.Hour))}
			ds := replayAll(t, replay.New(), entries)
			want := []replay.Disagreement{{Index: 1, Kind: tc.kind}, {Index: 2, Kind: replay.KindNoPolicy}}
			if diff := cmp.Diff(want, ds, cmpMessageSet()); diff != "" {
				t.Fatalf("disagreements (-want +got):\n%s", diff)
			}
			if !strings.Contains(ds[1].Message, "index 1") {
				t.Errorf("message %q does not name the unusable policy entry", ds[1].Message)
			}
		})
	}
}

func TestStricterSetTakesOver(t *testing.T) {
	lax, strict, fields := defaultSet(t), stricterSet(t), schema.Default()
	svc := caller{p: authn.Principal{Subject: "svc", Roles: []string{"service"}, Country: "IE"}, ctx: policy.Context{CallerInJurisdiction: true}}
	rawRead := readEntry(lax, svc, fields[:1], t0)
	if rawRead.Fields[0].Form != "raw" {
		t.Fatalf("a service reads %s %s under the default set", rawRead.Fields[0].Name, rawRead.Fields[0].Form)
	}
	late := *rawRead
	late.Time = t0.Add(time.Hour)
	relabelled := late
	relabelled.Policy = &auditlog.PolicyRef{Digest: strict.Digest()}
	entries := []*auditlog.Entry{
		policyEntry(lax, fields, t0),
		rawRead,                                // 1: fine under the default set
		policyEntry(strict, fields, t0),        // 2: nothing raw any more
		rawRead,                                // 3: decided with the previous set in the reload race: fine
		&late,                                  // 4: the previous set, an hour later: digest
		&relabelled,                            // 5: claims the new set, but raw: form
		readEntry(strict, svc, fields[:1], t0), // 6: decided by the new set: fine
	}
	ds := replayAll(t, replay.New(), entries)
	want := []replay.Disagreement{
		{Index: 4, Kind: replay.KindDigest},
		{Index: 4, Kind: replay.KindForm, Field: fields[0].Name, Released: "raw", Allowed: "pseudonym"},
		{Index: 5, Kind: replay.KindForm, Field: fields[0].Name, Released: "raw", Allowed: "pseudonym"},
	}
	if diff := cmp.Diff(want, ds, cmpMessageSet()); diff != "" {
		t.Fatalf("disagreements (-want +got):\n%s", diff)
	}
}

func TestSnapshotRestore(t *testing.T) {
	entries := stream(t, callers()[:40])
	strict := stricterSet(t)
	at := entries[len(entries)-1].Time.Add(time.Hour)
	entries = append(entries, policyEntry(strict, schema.Default(), at))
	for _, c := range callers()[:20] {
		// Reads by the previous set two hours later: digest and form
		// disagreements.
		entries = append(entries, readEntry(strict, c, schema.Default(), at), readEntry(defaultSet(t), c, schema.Default(), at.Add(2*time.Hour)))
	}
	i, j := forgeable(t, entries)
	entries[i].Fields[j].Form = "raw"
	for k, e := range entries {
		entries[k] = canonical(t, e)
	}
	want := replayAll(t, replay.New(), entries)
	if len(want) < 3 {
		t.Fatalf("only %d disagreements in the stream; the test needs some on both sides of every cut", len(want))
	}
	if _, _, ok := replay.New().Snapshot(); ok {
		t.Error("a new Replayer has a snapshot")
	}
	for _, cut := range []int{1, i, i + 1, len(entries) - 41, len(entries) - 40, len(entries) - 1} {
		r := replay.New()
		var got []replay.Disagreement
		for k, e := range entries[:cut] {
			got = append(got, r.Observe(uint64(k), e)...)
		}
		index, b, ok := r.Snapshot()
		if !ok {
			t.Fatalf("cut %d: no snapshot", cut)
		}
		r2 := replay.New()
		if err := r2.Restore(index, b); err != nil {
			t.Fatalf("cut %d: Restore: %v", cut, err)
		}
		for k := cut; k < len(entries); k++ {
			got = append(got, r2.Observe(uint64(k), entries[k])...)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cut %d: a restored replay differs (-uninterrupted +restored):\n%s", cut, diff)
		}
	}
}

func TestRestoreRejects(t *testing.T) {
	set := defaultSet(t)
	good, err := auditlog.Encode(policyEntry(set, schema.Default(), t0))
	if err != nil {
		t.Fatal(err)
	}
	read, err := auditlog.Encode(readEntry(set, callers()[0], schema.Default(), t0))
	if err != nil {
		t.Fatal(err)
	}
	r := replay.New()
	if err := r.Restore(7, good); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"a read entry":  read,
		"not canonical": append(append([]byte{}, good...), '\n'),
		"a flipped bit": flip(good, 0),
		"nothing":       nil,
	} {
		if err := r.Restore(9, b); !errors.Is(err, replay.ErrNotPolicyEntry) {
			t.Errorf("%s: Restore = %v, want ErrNotPolicyEntry", name, err)
		}
	}
	if index, b, ok := r.Snapshot(); !ok || index != 7 || string(b) != string(good) {
		t.Errorf("after failed restores, Snapshot = %d, %d bytes, %v; want the first restore", index, len(b), ok)
	}
}

// flip returns b with bit 0 of byte i flipped.
func flip(b []byte, i int) []byte {
	out := append([]byte{}, b...)
	out[i] ^= 1
	return out
}
