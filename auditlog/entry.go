package auditlog

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// EntryVersion is the version of the entry format that Encode writes and
// Decode accepts ("v" in the JSON).
const EntryVersion = 1

// MaxEntrySize is the largest entry the log accepts, in bytes: the largest
// a C2SP tlog-tiles entry bundle can hold (a big-endian uint16 length).
const MaxEntrySize = 1<<16 - 1

// TimeLayout is the format of an entry's time: RFC 3339 in UTC with exactly
// six fractional digits (microseconds).
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Kind says what an entry records.
type Kind string

// Kinds of entries.
const (
	KindDecision   Kind = "decision"   // a read: the decision on each requested field
	KindWrite      Kind = "write"      // a record written
	KindErase      Kind = "erase"      // a subject erased (data key destroyed)
	KindRehome     Kind = "rehome"     // a record moved to another home site
	KindReidentify Kind = "reidentify" // a reversible token turned back into its value
	KindPolicy     Kind = "policy"     // a policy set loaded: its digest and full text
	KindTransfer   Kind = "transfer"   // records sent to a destination outside the enclave
)

func (k Kind) valid() bool {
	switch k {
	case KindDecision, KindWrite, KindErase, KindRehome, KindReidentify, KindPolicy, KindTransfer:
		return true
	}
	return false
}

// isAccess reports whether entries of kind k record an authorization
// decision by an actor, so need an actor and a decision.
func (k Kind) isAccess() bool {
	switch k {
	case KindDecision, KindWrite, KindErase, KindReidentify, KindTransfer:
		return true
	}
	return false
}

// needsSubject reports whether entries of kind k are about one subject.
func (k Kind) needsSubject() bool {
	switch k {
	case KindDecision, KindWrite, KindErase, KindRehome, KindReidentify:
		return true
	}
	return false
}

// Decision is the outcome of an authorization decision.
type Decision string

// Decisions.
const (
	Allow Decision = "allow"
	Deny  Decision = "deny"
)

// Entry is one audit log entry. Encode gives its one canonical JSON form:
// the fields in the order below, "v" first, empty optional fields left out.
type Entry struct {
	// Time is when the request was decided; encoded in UTC, microseconds.
	Time time.Time `json:"-"`
	// RequestID ties the entry to the gateway's request log.
	RequestID string `json:"request_id,omitempty"`
	Kind      Kind   `json:"kind"`
	// Site is the site the entry is about: the subject's home site.
	Site  string `json:"site,omitempty"`
	Actor *Actor `json:"actor,omitempty"`
	// Action is the action requested (e.g. "read", "write", "erase").
	Action string `json:"action,omitempty"`
	// Subject is the keyed pseudonym of the data subject (SubjectPseudonym),
	// never the subject's identifier.
	Subject       string          `json:"subject,omitempty"`
	Decision      Decision        `json:"decision,omitempty"`
	Fields        []Field         `json:"fields,omitempty"`
	Purpose       string          `json:"purpose,omitempty"`
	Justification string          `json:"justification,omitempty"`
	Grant         string          `json:"grant,omitempty"`
	Context       *RequestContext `json:"context,omitempty"`
	Policy        *PolicyRef      `json:"policy,omitempty"`
	// PolicyFiles holds the full text of a policy set; only in KindPolicy.
	PolicyFiles []PolicyFile `json:"policy_files,omitempty"`
	// Schema is the field schema the policy set decides over, so that a
	// monitor can replay decisions without the enclave's configuration;
	// only in KindPolicy.
	Schema []SchemaField `json:"schema,omitempty"`
	// Status is the HTTP status of the response (0: none).
	Status int `json:"status,omitempty"`
	// Transfer is the ledger record of a transfer; only in KindTransfer.
	Transfer *TransferRecord `json:"transfer,omitempty"`
	// Detail is free text for operators (e.g. the sites a re-homed record
	// moved from). It must hold no personal data.
	Detail string `json:"detail,omitempty"`
}

// Actor is the authenticated caller.
type Actor struct {
	Sub     string   `json:"sub"`
	Type    string   `json:"type"` // the policy entity type: "Employee" or "Service"
	Roles   []string `json:"roles,omitempty"`
	Country string   `json:"country,omitempty"`
	Team    string   `json:"team,omitempty"`
}

// Field is the decision on one requested field.
type Field struct {
	Name string `json:"name"`
	// Form is the form released: raw, pseudonym, generalised, masked or
	// withheld.
	Form string `json:"form"`
	// Policies are the ids of the policies that decided it.
	Policies []string `json:"policies,omitempty"`
}

// RequestContext holds the policy inputs of a request other than the
// purpose, justification and grant, which are fields of Entry.
type RequestContext struct {
	SubjectCountry       string `json:"subject_country,omitempty"`
	SubjectJurisdiction  string `json:"subject_jurisdiction,omitempty"`
	SubjectSite          string `json:"subject_site,omitempty"`
	CallerInJurisdiction bool   `json:"caller_in_jurisdiction"`
	Hour                 int    `json:"hour"`
	Weekday              string `json:"weekday,omitempty"`
}

// PolicyRef names the policy set that decided: its digest and the ids of
// its policies (all of them in KindPolicy, the deciding ones otherwise).
type PolicyRef struct {
	Digest string   `json:"digest"`
	IDs    []string `json:"ids,omitempty"`
}

// TransferRecord is what a transfer sent: to whom, on which legal basis, how
// many rows, and the SHA-256 of the exact bytes, so that a recipient can
// prove a file is what the enclave released. A transfer is logged twice:
// when it is decided (Rows, Bytes and SHA256 empty, Complete false) and when
// its stream ends (Complete true, or false if the client went away, with
// the rows actually sent).
type TransferRecord struct {
	Destination string `json:"destination"`
	Country     string `json:"country"`
	LegalBasis  string `json:"legal_basis"`
	Format      string `json:"format,omitempty"`
	Rows        int    `json:"rows"`
	Suppressed  int    `json:"suppressed"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256,omitempty"`
	Complete    bool   `json:"complete"`
	// Decided is the log index of the entry that decided the transfer, in
	// the entry that ends it.
	Decided *uint64 `json:"decided,omitempty"`
}

// PolicyFile is one file of a policy set with its full text.
type PolicyFile struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// SchemaField is one field of the schema (schema.Field), as a policy entry
// records it: what policies read (category, type) and what decides which
// forms the field can take (type, method).
type SchemaField struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Category string `json:"category"`
	Method   string `json:"method"`
}

// entryFields is Entry without its methods, embedded in the wire struct.
type entryFields Entry

// wireEntry is the JSON form: "v" and "time" first, then Entry's fields.
type wireEntry struct {
	V    *int    `json:"v"`
	Time *string `json:"time"`
	*entryFields
}

// Encode returns the canonical JSON encoding of e, after checking that e is
// a valid entry. It fails with ErrInvalidEntry or ErrEntryTooLarge.
func Encode(e *Entry) ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	v, t := EntryVersion, e.Time.UTC().Format(TimeLayout)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(wireEntry{V: &v, Time: &t, entryFields: (*entryFields)(e)}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes encoded, the limit is %d", ErrEntryTooLarge, len(b), MaxEntrySize)
	}
	return b, nil
}

// MarshalJSON returns Encode(e), so that an Entry prints in its canonical
// form wherever it is marshalled.
func (e Entry) MarshalJSON() ([]byte, error) { return Encode(&e) }

// Decode parses an entry strictly: at most MaxEntrySize bytes, no unknown
// fields, version 1, a valid entry, and in canonical form, so that
// Encode(Decode(b)) == b for every b it accepts. Errors match
// ErrInvalidEntry.
func Decode(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidEntry, len(b), MaxEntrySize)
	}
	e := new(Entry)
	w := wireEntry{entryFields: (*entryFields)(e)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the entry", ErrInvalidEntry)
	}
	switch {
	case w.V == nil:
		return nil, fmt.Errorf("%w: no version (\"v\")", ErrInvalidEntry)
	case *w.V != EntryVersion:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrInvalidEntry, *w.V, EntryVersion)
	case w.Time == nil:
		return nil, fmt.Errorf("%w: no time", ErrInvalidEntry)
	}
	t, err := time.Parse(TimeLayout, *w.Time)
	if err != nil {
		return nil, fmt.Errorf("%w: time %q is not RFC 3339 UTC with microseconds", ErrInvalidEntry, *w.Time)
	}
	e.Time = t
	again, err := Encode(e)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form (field order, spacing, escapes or empty fields)", ErrInvalidEntry)
	}
	return e, nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEntry}, args...)...)
}

// validate checks what Encode and Decode require of an entry.
func (e *Entry) validate() error {
	if e.Time.IsZero() {
		return invalidf("no time")
	}
	if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
		return invalidf("time %v out of range", e.Time)
	}
	if !e.Kind.valid() {
		return invalidf("unknown kind %q", e.Kind)
	}
	if e.Kind.isAccess() {
		if e.Actor == nil {
			return invalidf("kind %q needs an actor", e.Kind)
		}
		if e.Decision == "" {
			return invalidf("kind %q needs a decision", e.Kind)
		}
		if e.Action == "" {
			return invalidf("kind %q needs an action", e.Kind)
		}
	}
	if e.Decision != "" && e.Decision != Allow && e.Decision != Deny {
		return invalidf("decision %q is neither %q nor %q", e.Decision, Allow, Deny)
	}
	if e.Actor != nil && (e.Actor.Sub == "" || e.Actor.Type == "") {
		return invalidf("actor needs sub and type")
	}
	if e.Kind.needsSubject() && e.Subject == "" {
		return invalidf("kind %q needs a subject", e.Kind)
	}
	if e.Subject != "" && !isPseudonym(e.Subject) {
		return invalidf("subject must be a pseudonym: 64 lower-case hex digits")
	}
	for i, f := range e.Fields {
		if f.Name == "" || f.Form == "" {
			return invalidf("field %d needs a name and a form", i)
		}
	}
	if e.Kind == KindPolicy && (e.Policy == nil || e.Policy.Digest == "") {
		return invalidf("kind %q needs a policy digest", e.Kind)
	}
	if e.Policy != nil && e.Policy.Digest == "" {
		return invalidf("policy needs a digest")
	}
	if e.Transfer != nil && e.Kind != KindTransfer {
		return invalidf("transfer only in kind %q", KindTransfer)
	}
	if t := e.Transfer; t != nil && (t.Destination == "" || t.Rows < 0 || t.Suppressed < 0 || t.Bytes < 0) {
		return invalidf("transfer needs a destination and non-negative counts")
	}
	if len(e.PolicyFiles) > 0 && e.Kind != KindPolicy {
		return invalidf("policy_files only in kind %q", KindPolicy)
	}
	for i, f := range e.PolicyFiles {
		if f.Name == "" {
			return invalidf("policy file %d needs a name", i)
		}
	}
	if len(e.Schema) > 0 && e.Kind != KindPolicy {
		return invalidf("schema only in kind %q", KindPolicy)
	}
	for i, f := range e.Schema {
		if f.Name == "" || f.Type == "" || f.Category == "" || f.Method == "" {
			return invalidf("schema field %d needs a name, type, category and method", i)
		}
	}
	if e.Status != 0 && (e.Status < 100 || e.Status > 599) {
		return invalidf("status %d is not an HTTP status", e.Status)
	}
	if c := e.Context; c != nil {
		if c.Hour < 0 || c.Hour > 23 {
			return invalidf("context hour %d out of range", c.Hour)
		}
		switch c.Weekday {
		case "", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		default:
			return invalidf("context weekday %q is not Mon..Sun", c.Weekday)
		}
	}
	if !e.validUTF8() {
		return invalidf("a string is not valid UTF-8")
	}
	return nil
}

func (e *Entry) validUTF8() bool {
	ok := true
	check := func(ss ...string) {
		for _, s := range ss {
			ok = ok && utf8.ValidString(s)
		}
	}
	check(e.RequestID, string(e.Kind), e.Site, e.Action, e.Subject, string(e.Decision),
		e.Purpose, e.Justification, e.Grant, e.Detail)
	if a := e.Actor; a != nil {
		check(a.Sub, a.Type, a.Country, a.Team)
		check(a.Roles...)
	}
	for _, f := range e.Fields {
		check(f.Name, f.Form)
		check(f.Policies...)
	}
	if c := e.Context; c != nil {
		check(c.SubjectCountry, c.SubjectJurisdiction, c.SubjectSite, c.Weekday)
	}
	if p := e.Policy; p != nil {
		check(p.Digest)
		check(p.IDs...)
	}
	for _, f := range e.PolicyFiles {
		check(f.Name, f.Text)
	}
	for _, f := range e.Schema {
		check(f.Name, f.Type, f.Category, f.Method)
	}
	if t := e.Transfer; t != nil {
		check(t.Destination, t.Country, t.LegalBasis, t.Format, t.SHA256)
	}
	return ok
}

func isPseudonym(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SubjectPseudonym returns the name under which the log knows a subject:
// the hex HMAC-SHA256 of the subject's handle under the log key. The handle
// is the random per-subject value kept beside the subject's data key, so
// once the subject is erased nothing ties past entries to the person.
func SubjectPseudonym(logKey, handle []byte) string {
	m := hmac.New(sha256.New, logKey)
	m.Write(handle)
	return hex.EncodeToString(m.Sum(nil))
}
