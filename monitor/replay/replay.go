package replay

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
)

// Kinds of disagreement.
const (
	// KindForm: a field was released in a form more revealing than the
	// policies allow (or in no known form).
	KindForm = "form"
	// KindDecision: an action was allowed that the policies deny, or an
	// entry records an action its kind never has.
	KindDecision = "decision"
	// KindDigest: an entry names a policy set other than the one in force,
	// or a policy entry's files do not hash to the digest it records.
	KindDigest = "digest"
	// KindNoPolicy: a decision with no usable policy set in force: before
	// any policy entry, or after one that could not be loaded.
	KindNoPolicy = "no_policy"
	// KindUnknownField: a field that is not in the schema in force.
	KindUnknownField = "unknown_field"
	// KindPolicyLoad: a policy entry whose files or schema do not load.
	KindPolicyLoad = "policy_load"
	// KindActor: an actor whose recorded type (Employee or Service) is not
	// the one its roles give.
	KindActor = "actor"
)

// PreviousSetGrace is how long after a policy entry (by entry time) an
// entry may still name the previous set: the gateway logs a new set before
// it puts it in force, so requests decided just before a reload can be
// logged just after it.
const PreviousSetGrace = time.Minute

// Disagreement is one way a logged decision differs from what the policies
// in force decide.
type Disagreement struct {
	// Index is the log index of the entry.
	Index uint64
	// Kind is one of the Kind constants.
	Kind string
	// Field, Released and Allowed are set for KindForm: the field, the
	// form it was released in and the most revealing form allowed. Field
	// is also set for KindUnknownField.
	Field    string
	Released string
	Allowed  string
	// Message says what is wrong, for people. It holds no personal data.
	Message string
}

func (d Disagreement) String() string {
	return fmt.Sprintf("entry %d: %s: %s", d.Index, d.Kind, d.Message)
}

// Replayer replays a log's decisions. It is not safe for concurrent use;
// it takes the entries in log order.
type Replayer struct {
	cur *inForce // nil before the first policy entry
	// prev is the set in force before cur, for entries decided just before
	// cur was put in force; nil if there was none or it did not load.
	prev *inForce
	// fields is a buffer for the fields of a read.
	fields []schema.Field
}

// inForce is a policy entry and what was loaded from it.
type inForce struct {
	index uint64
	entry []byte // its canonical encoding, for Snapshot
	time  time.Time
	// digest is the digest the entry records.
	digest string
	// set is nil when the entry did not load; problem then says why.
	set     *policy.Set
	problem string
	// fields is the schema by field name; empty when the entry has none.
	fields map[string]schema.Field
}

// New returns a Replayer with no policy set in force.
func New() *Replayer { return &Replayer{} }

// Observe takes the entry at index, the next one in log order. A policy
// entry becomes the set in force; any other access entry is replayed
// against it. It returns the disagreements found, nil if none.
func (r *Replayer) Observe(index uint64, e *auditlog.Entry) []Disagreement {
	if e == nil {
		return nil
	}
	switch e.Kind {
	case auditlog.KindPolicy:
		next, ds := load(index, e)
		if r.cur != nil && r.cur.set != nil {
			r.prev = r.cur
		} else {
			r.prev = nil
		}
		r.cur = next
		return ds
	case auditlog.KindDecision, auditlog.KindWrite, auditlog.KindErase, auditlog.KindReidentify:
		return r.check(index, e)
	case auditlog.KindTransfer:
		if e.Transfer != nil && e.Transfer.Decided != nil {
			return nil // the ledger entry of a stream: it decides nothing
		}
		return r.check(index, e)
	}
	return nil // rehome: no decision
}

// load loads a policy entry. The result is in force even if it did not
// load: the gateway says it is.
func load(index uint64, e *auditlog.Entry) (*inForce, []Disagreement) {
	f := &inForce{index: index, time: e.Time}
	if e.Policy != nil {
		f.digest = e.Policy.Digest
	}
	fail := func(kind, problem string) (*inForce, []Disagreement) {
		f.set, f.problem = nil, problem
		return f, []Disagreement{{Index: index, Kind: kind, Message: problem}}
	}
	b, err := auditlog.Encode(e)
	if err != nil {
		return fail(KindPolicyLoad, "the policy entry is not a valid entry: "+err.Error())
	}
	f.entry = b
	files, err := newPolicyFiles(e.PolicyFiles)
	if err != nil {
		return fail(KindPolicyLoad, "the policy entry's files do not load: "+err.Error())
	}
	set, err := policy.Load(files)
	if err != nil {
		return fail(KindPolicyLoad, "the policy entry's files do not load: "+oneLine(err))
	}
	if set.Digest() != f.digest {
		return fail(KindDigest, fmt.Sprintf("the policy entry records digest %q but its files hash to %q", short(f.digest), short(set.Digest())))
	}
	if len(e.Schema) > 0 {
		fields := make([]schema.Field, len(e.Schema))
		for i, sf := range e.Schema {
			fields[i] = schema.Field{Name: sf.Name, Type: sf.Type, Category: sf.Category, Method: sf.Method}
		}
		if _, err := schema.New(fields); err != nil {
			return fail(KindPolicyLoad, "the policy entry's schema is not valid: "+oneLine(err))
		}
		f.fields = make(map[string]schema.Field, len(fields))
		for _, sf := range fields {
			f.fields[sf.Name] = sf
		}
	}
	f.set = set
	return f, nil
}

// actionOf is the action the gateway records for each kind of access entry.
var actionOf = map[auditlog.Kind]string{
	auditlog.KindDecision:   policy.ActionRead,
	auditlog.KindWrite:      policy.ActionWrite,
	auditlog.KindErase:      policy.ActionErase,
	auditlog.KindTransfer:   policy.ActionTransfer,
	auditlog.KindReidentify: policy.ActionReidentify,
}

// check replays one access entry.
func (r *Replayer) check(index uint64, e *auditlog.Entry) []Disagreement {
	var ds []Disagreement
	report := func(d Disagreement) {
		d.Index = index
		ds = append(ds, d)
	}
	f := r.setFor(e, report)
	if f == nil {
		return ds
	}
	if e.Actor == nil {
		report(Disagreement{Kind: KindDecision, Message: fmt.Sprintf("a %q entry without an actor", e.Kind)})
		return ds
	}
	p := authn.Principal{Subject: e.Actor.Sub, Roles: e.Actor.Roles, Country: e.Actor.Country, Team: e.Actor.Team}
	if want := policy.PrincipalType(p); e.Actor.Type != want {
		report(Disagreement{Kind: KindActor, Message: fmt.Sprintf("the actor is recorded as %q but its roles make it %q", e.Actor.Type, want)})
	}
	action := actionOf[e.Kind]
	if e.Action != action {
		report(Disagreement{Kind: KindDecision, Message: fmt.Sprintf("a %q entry records action %q; the gateway records %q", e.Kind, e.Action, action)})
	}
	ctx := policy.Context{Purpose: e.Purpose, Justification: e.Justification, Grant: e.Grant}
	if c := e.Context; c != nil {
		ctx.SubjectCountry, ctx.SubjectJurisdiction, ctx.SubjectSite = c.SubjectCountry, c.SubjectJurisdiction, c.SubjectSite
		ctx.CallerInJurisdiction, ctx.Hour, ctx.Weekday = c.CallerInJurisdiction, c.Hour, c.Weekday
	}
	switch {
	case e.Kind == auditlog.KindDecision:
		r.checkRead(f, p, ctx, e, report)
	case e.Decision != auditlog.Allow:
		// A denial releases nothing.
	case e.Kind == auditlog.KindReidentify:
		for _, lf := range e.Fields {
			if lf.Form == string(policy.Withheld) {
				continue
			}
			sf, ok := f.field(lf.Name, report)
			if !ok {
				continue
			}
			if allowed, _ := f.set.Allowed(p, action, &sf, ctx); !allowed {
				report(Disagreement{Kind: KindDecision, Field: lf.Name,
					Message: fmt.Sprintf("re-identification of field %q was allowed; the policy set in force denies it", lf.Name)})
			}
		}
	default:
		if allowed, _ := f.set.Allowed(p, action, nil, ctx); !allowed {
			report(Disagreement{Kind: KindDecision, Message: fmt.Sprintf("%q was allowed; the policy set in force denies it", action)})
		}
	}
	return ds
}

// setFor returns the loaded set to replay e against, reporting why there is
// none or why it is not the one e names.
func (r *Replayer) setFor(e *auditlog.Entry, report func(Disagreement)) *inForce {
	cur := r.cur
	switch {
	case cur == nil:
		report(Disagreement{Kind: KindNoPolicy, Message: fmt.Sprintf("a %q entry before any policy entry", e.Kind)})
		return nil
	case cur.set == nil:
		report(Disagreement{Kind: KindNoPolicy,
			Message: fmt.Sprintf("a %q entry while the policy entry in force (index %d) is unusable: %s", e.Kind, cur.index, cur.problem)})
		return nil
	case e.Policy == nil:
		report(Disagreement{Kind: KindDigest, Message: fmt.Sprintf("a %q entry names no policy set; replayed against the set in force", e.Kind)})
		return cur
	case e.Policy.Digest == cur.digest:
		return cur
	case r.prev != nil && e.Policy.Digest == r.prev.digest && !e.Time.After(cur.time.Add(PreviousSetGrace)):
		return r.prev
	}
	report(Disagreement{Kind: KindDigest,
		Message: fmt.Sprintf("the entry names policy set %q but %q (index %d) is in force; replayed against the set in force", short(e.Policy.Digest), short(cur.digest), cur.index)})
	return cur
}

// field looks a field up in the schema of f, reporting it if it is not
// there.
func (f *inForce) field(name string, report func(Disagreement)) (schema.Field, bool) {
	sf, ok := f.fields[name]
	if !ok {
		msg := fmt.Sprintf("field %q is not in the schema of the policy entry in force (index %d)", name, f.index)
		if len(f.fields) == 0 {
			msg = fmt.Sprintf("field %q cannot be replayed: the policy entry in force (index %d) records no schema", name, f.index)
		}
		report(Disagreement{Kind: KindUnknownField, Field: name, Message: msg})
	}
	return sf, ok
}

// checkRead decides a read again and compares each logged field's form
// with the form allowed.
func (r *Replayer) checkRead(f *inForce, p authn.Principal, ctx policy.Context, e *auditlog.Entry, report func(Disagreement)) {
	r.fields = r.fields[:0]
	for _, lf := range e.Fields {
		if sf, ok := f.field(lf.Name, report); ok {
			r.fields = append(r.fields, sf)
		}
	}
	if len(r.fields) == 0 {
		return
	}
	d := f.set.Decide(policy.Request{Principal: p, Fields: r.fields, Context: ctx}, supports)
	for _, lf := range e.Fields {
		if _, ok := f.fields[lf.Name]; !ok {
			continue // reported above
		}
		released, allowed := policy.Form(lf.Form), d.Form(lf.Name)
		if !released.Valid() {
			report(Disagreement{Kind: KindForm, Field: lf.Name, Released: lf.Form, Allowed: string(allowed),
				Message: fmt.Sprintf("field %q released in %q, which is no form", lf.Name, lf.Form)})
			continue
		}
		if rank(released) > rank(allowed) {
			report(Disagreement{Kind: KindForm, Field: lf.Name, Released: lf.Form, Allowed: string(allowed),
				Message: fmt.Sprintf("field %q released %s; the policy set in force allows at most %s", lf.Name, released, allowed)})
		}
	}
}

// supports is pseudonym.Supports for package policy, as the gateway passes it.
func supports(f schema.Field, form policy.Form) bool {
	return pseudonym.Supports(f, pseudonym.Form(form))
}

// rank orders the forms from the least revealing (withheld, 0) to the most
// (raw, 4).
func rank(f policy.Form) int {
	switch f {
	case policy.Raw:
		return 4
	case policy.Pseudonym:
		return 3
	case policy.Generalised:
		return 2
	case policy.Masked:
		return 1
	}
	return 0
}

// Snapshot returns the state to carry across a restart: the index and the
// canonical encoding of the policy entry in force; ok is false before the
// first policy entry. The set in force before it (PreviousSetGrace) is not
// part of the state.
func (r *Replayer) Snapshot() (index uint64, policyEntry []byte, ok bool) {
	if r.cur == nil || r.cur.entry == nil {
		return 0, nil, false
	}
	return r.cur.index, slices.Clone(r.cur.entry), true
}

// ErrNotPolicyEntry is returned by Restore for an entry that is not a
// decodable policy entry.
var ErrNotPolicyEntry = errors.New("replay: not a policy entry")

// Restore puts the Replayer in the state Snapshot returned: the policy
// entry in force, at index. It fails, changing nothing, if policyEntry is
// not a policy entry in canonical form. A policy entry that does not load
// is restored as Observe left it, unusable (its disagreement was reported
// when it was observed).
func (r *Replayer) Restore(index uint64, policyEntry []byte) error {
	e, err := auditlog.Decode(policyEntry)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotPolicyEntry, err)
	}
	if e.Kind != auditlog.KindPolicy {
		return fmt.Errorf("%w: the entry is of kind %q", ErrNotPolicyEntry, e.Kind)
	}
	r.cur, _ = load(index, e)
	r.prev = nil
	return nil
}

// short abbreviates a digest for messages.
func short(digest string) string {
	if len(digest) > 16 {
		return digest[:16] + "…"
	}
	return digest
}

// oneLine joins a multi-line error (policy.Errors) into one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
