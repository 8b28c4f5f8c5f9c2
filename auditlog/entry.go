package auditlog

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// EntryVersion is the version of the entry format that Encode writes ("v"
// in the JSON). Decode reads it and every earlier one:
//
//   - 1: each released field an object of its own, {"name","form","policies"};
//   - 2: consecutive fields with the same form and policies grouped into one
//     object, {"names","form","policies"}. A read of twelve fields released
//     under one policy took ~720 bytes of the entry's ~1,340 in version 1 and
//     takes ~190 in version 2; the log's cost follows its bytes.
//
// Nothing else differs between them.
const EntryVersion = 2

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
	// Version is the format the entry is encoded in: 0 for EntryVersion,
	// or the earlier version Decode read it in, so that Encode gives the
	// entry's bytes again.
	Version int `json:"-"`
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

// Encode and Decode are hand-written for the monitor, which decodes every
// entry of the log and must keep up with it on one core.
//
// Encode appends each field in canonical order, with strconv and no
// reflection; appendString escapes strings exactly as encoding/json does
// with HTML escaping off (the encoder that wrote the first logs), so the
// canonical bytes of an entry never change.
//
// Decode reads the input in one pass, strictly: no whitespace, keys in
// canonical order and none repeated or unknown, no nulls, no empty arrays,
// only the escapes Encode writes, integers without leading zeros. Strings
// without escapes are slices of one copy of the input, so a decoded entry
// costs a handful of allocations. Then it validates the entry, encodes it
// again and compares: whatever the reader might let through that is not
// canonical is still refused, and Encode(Decode(b)) == b holds by
// construction rather than by the reader's care alone.

// Encode returns the canonical JSON encoding of e in version e.Version
// (EntryVersion when 0), after checking that e is a valid entry. It fails
// with ErrInvalidEntry or ErrEntryTooLarge.
func Encode(e *Entry) ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	b := appendEntry(make([]byte, 0, e.sizeHint()), e)
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes encoded, the limit is %d", ErrEntryTooLarge, len(b), MaxEntrySize)
	}
	return b, nil
}

// MarshalJSON returns Encode(e), so that an Entry prints in its canonical
// form wherever it is marshalled.
func (e Entry) MarshalJSON() ([]byte, error) { return Encode(&e) }

// Decode parses an entry strictly: at most MaxEntrySize bytes, no unknown
// fields, a version from 1 to EntryVersion (kept in Entry.Version when
// older), a valid entry, and in canonical form, so that Encode(Decode(b))
// == b for every b it accepts. Errors match ErrInvalidEntry. The strings
// of the entry share one copy of b.
func Decode(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidEntry, len(b), MaxEntrySize)
	}
	d := decoder{s: string(b)}
	e, err := d.entry()
	if err != nil {
		return nil, err
	}
	if err := e.validateValues(); err != nil {
		return nil, err
	}
	var stack [2048]byte // typical entries are encoded again without an allocation
	buf := stack[:0]
	if len(b) > len(stack) {
		buf = make([]byte, 0, len(b))
	}
	if !bytes.Equal(appendEntry(buf, e), b) {
		return nil, invalidf("not in canonical form (field order, spacing, escapes or empty fields)")
	}
	return e, nil
}

// appendEntry appends the canonical encoding of e, which must be valid.
func appendEntry(b []byte, e *Entry) []byte {
	version := e.Version
	if version == 0 {
		version = EntryVersion
	}
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(version), 10)
	b = append(b, `,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, TimeLayout)
	b = append(b, '"')
	b = appendOptional(b, `,"request_id":`, e.RequestID)
	b = appendString(append(b, `,"kind":`...), string(e.Kind))
	b = appendOptional(b, `,"site":`, e.Site)
	if a := e.Actor; a != nil {
		b = appendString(append(b, `,"actor":{"sub":`...), a.Sub)
		b = appendString(append(b, `,"type":`...), a.Type)
		b = appendStrings(b, `,"roles":`, a.Roles)
		b = appendOptional(b, `,"country":`, a.Country)
		b = appendOptional(b, `,"team":`, a.Team)
		b = append(b, '}')
	}
	b = appendOptional(b, `,"action":`, e.Action)
	b = appendOptional(b, `,"subject":`, e.Subject)
	b = appendOptional(b, `,"decision":`, string(e.Decision))
	if version == 1 {
		b = appendFieldsV1(b, e.Fields)
	} else {
		b = appendFieldGroups(b, e.Fields)
	}
	b = appendOptional(b, `,"purpose":`, e.Purpose)
	b = appendOptional(b, `,"justification":`, e.Justification)
	b = appendOptional(b, `,"grant":`, e.Grant)
	if c := e.Context; c != nil {
		b = append(b, `,"context":`...)
		open := len(b)
		b = appendOptional(b, `,"subject_country":`, c.SubjectCountry)
		b = appendOptional(b, `,"subject_jurisdiction":`, c.SubjectJurisdiction)
		b = appendOptional(b, `,"subject_site":`, c.SubjectSite)
		b = strconv.AppendBool(append(b, `,"caller_in_jurisdiction":`...), c.CallerInJurisdiction)
		b = strconv.AppendInt(append(b, `,"hour":`...), int64(c.Hour), 10)
		b = appendOptional(b, `,"weekday":`, c.Weekday)
		// Every member was written after a comma; caller_in_jurisdiction
		// always is, so there is a first one, whose comma opens the object.
		b[open] = '{'
		b = append(b, '}')
	}
	if p := e.Policy; p != nil {
		b = appendString(append(b, `,"policy":{"digest":`...), p.Digest)
		b = appendStrings(b, `,"ids":`, p.IDs)
		b = append(b, '}')
	}
	for i, f := range e.PolicyFiles {
		if i == 0 {
			b = append(b, `,"policy_files":[{"name":`...)
		} else {
			b = append(b, `},{"name":`...)
		}
		b = appendString(b, f.Name)
		b = appendString(append(b, `,"text":`...), f.Text)
	}
	if len(e.PolicyFiles) > 0 {
		b = append(b, "}]"...)
	}
	for i, f := range e.Schema {
		if i == 0 {
			b = append(b, `,"schema":[{"name":`...)
		} else {
			b = append(b, `},{"name":`...)
		}
		b = appendString(b, f.Name)
		b = appendString(append(b, `,"type":`...), f.Type)
		b = appendString(append(b, `,"category":`...), f.Category)
		b = appendString(append(b, `,"method":`...), f.Method)
	}
	if len(e.Schema) > 0 {
		b = append(b, "}]"...)
	}
	if e.Status != 0 {
		b = strconv.AppendInt(append(b, `,"status":`...), int64(e.Status), 10)
	}
	if t := e.Transfer; t != nil {
		b = appendString(append(b, `,"transfer":{"destination":`...), t.Destination)
		b = appendString(append(b, `,"country":`...), t.Country)
		b = appendString(append(b, `,"legal_basis":`...), t.LegalBasis)
		b = appendOptional(b, `,"format":`, t.Format)
		b = strconv.AppendInt(append(b, `,"rows":`...), int64(t.Rows), 10)
		b = strconv.AppendInt(append(b, `,"suppressed":`...), int64(t.Suppressed), 10)
		b = strconv.AppendInt(append(b, `,"bytes":`...), t.Bytes, 10)
		b = appendOptional(b, `,"sha256":`, t.SHA256)
		b = strconv.AppendBool(append(b, `,"complete":`...), t.Complete)
		if t.Decided != nil {
			b = strconv.AppendUint(append(b, `,"decided":`...), *t.Decided, 10)
		}
		b = append(b, '}')
	}
	b = appendOptional(b, `,"detail":`, e.Detail)
	return append(b, '}')
}

// appendFieldsV1 appends fields as version 1 has them: an object each.
func appendFieldsV1(b []byte, fields []Field) []byte {
	for i, f := range fields {
		if i == 0 {
			b = append(b, `,"fields":[{"name":`...)
		} else {
			b = append(b, `},{"name":`...)
		}
		b = appendString(b, f.Name)
		b = appendString(append(b, `,"form":`...), f.Form)
		b = appendStrings(b, `,"policies":`, f.Policies)
	}
	if len(fields) > 0 {
		b = append(b, "}]"...)
	}
	return b
}

// appendFieldGroups appends fields as version 2 has them: every run of
// consecutive fields with the same form and policies as one object that
// names them all. Runs are as long as they can be, so that an entry has
// one encoding.
func appendFieldGroups(b []byte, fields []Field) []byte {
	for i := 0; i < len(fields); {
		f := fields[i]
		if i == 0 {
			b = append(b, `,"fields":[{"names":[`...)
		} else {
			b = append(b, `},{"names":[`...)
		}
		b = appendString(b, f.Name)
		for i++; i < len(fields) && sameRelease(fields[i], f); i++ {
			b = appendString(append(b, ','), fields[i].Name)
		}
		b = appendString(append(b, `],"form":`...), f.Form)
		b = appendStrings(b, `,"policies":`, f.Policies)
	}
	if len(fields) > 0 {
		b = append(b, "}]"...)
	}
	return b
}

// sameRelease reports whether fields a and b were released alike: the
// same form, by the same policies (none and an empty list alike, as the
// encoding leaves both out).
func sameRelease(a, b Field) bool {
	return a.Form == b.Form && slices.Equal(a.Policies, b.Policies)
}

// appendOptional appends key and s unless s is empty (omitempty).
func appendOptional(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendStrings appends key and the array ss unless ss is empty.
func appendStrings(b []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	b = append(b, key...)
	for i, s := range ss {
		if i == 0 {
			b = append(b, '[')
		} else {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped exactly as encoding/json
// escapes it with HTML escaping off: '"' and '\\' with a backslash; \b, \f,
// \n, \r and \t by name; the other control characters as \u00xx (lower-case
// hex); U+2028 and U+2029 as \u2028 and \u2029; each byte of invalid UTF-8
// as \ufffd (Encode refuses invalid UTF-8 before it gets here). Everything
// else, DEL and <, > and & included, is written as it is.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i += plainLen(s[i:]); i == len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plainLen returns the length of the longest prefix of s that a JSON
// string holds as it is and that needs no look at runes: ASCII but control
// characters, '"' and '\\'. It tests eight bytes at a time.
func plainLen(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		// With every byte below 0x80, (y - ones) & ^y & highs is not zero
		// exactly when a byte of y is zero, and (x - ones*n) & ^x & highs
		// exactly when a byte of x is below n.
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		special := x&highs |
			(x-ones*' ')&^x&highs |
			(quote-ones)&^quote&highs |
			(backslash-ones)&^backslash&highs
		if special != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return i
		}
	}
	return i
}

// sizeHint is about the length of e's encoding: its strings and, for each,
// a generous allowance for its key and punctuation.
func (e *Entry) sizeHint() int {
	n := 320 + len(e.RequestID) + len(e.Site) + len(e.Action) + len(e.Subject) +
		len(e.Purpose) + len(e.Justification) + len(e.Grant) + len(e.Detail)
	if a := e.Actor; a != nil {
		n += 64 + len(a.Sub) + len(a.Type) + len(a.Country) + len(a.Team) + stringsLen(a.Roles)
	}
	for _, f := range e.Fields {
		n += 40 + len(f.Name) + len(f.Form) + stringsLen(f.Policies)
	}
	if c := e.Context; c != nil {
		n += 140 + len(c.SubjectCountry) + len(c.SubjectJurisdiction) + len(c.SubjectSite)
	}
	if p := e.Policy; p != nil {
		n += 32 + len(p.Digest) + stringsLen(p.IDs)
	}
	for _, f := range e.PolicyFiles {
		n += 24 + len(f.Name) + len(f.Text) + len(f.Text)/8 // policy text has quotes and newlines
	}
	for _, f := range e.Schema {
		n += 48 + len(f.Name) + len(f.Type) + len(f.Category) + len(f.Method)
	}
	if t := e.Transfer; t != nil {
		n += 200 + len(t.Destination) + len(t.Country) + len(t.LegalBasis) + len(t.Format) + len(t.SHA256)
	}
	return n
}

func stringsLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n += 3 + len(s)
	}
	return n
}

// The keys of each object, in canonical order.
var (
	entryKeys = []string{"v", "time", "request_id", "kind", "site", "actor", "action", "subject",
		"decision", "fields", "purpose", "justification", "grant", "context", "policy", "policy_files",
		"schema", "status", "transfer", "detail"}
	actorKeys    = []string{"sub", "type", "roles", "country", "team"}
	fieldKeys    = []string{"name", "form", "policies"}
	groupKeys    = []string{"names", "form", "policies"}
	contextKeys  = []string{"subject_country", "subject_jurisdiction", "subject_site", "caller_in_jurisdiction", "hour", "weekday"}
	policyKeys   = []string{"digest", "ids"}
	fileKeys     = []string{"name", "text"}
	schemaKeys   = []string{"name", "type", "category", "method"}
	transferKeys = []string{"destination", "country", "legal_basis", "format", "rows", "suppressed", "bytes",
		"sha256", "complete", "decided"}
)

// decoder reads the encoding of an entry (see Decode). The first error
// sticks: it ends the reading and every later read returns a zero value.
type decoder struct {
	s   string // the input
	pos int    // the offset of the next byte to read
	err error
	// block holds the entry being read.
	block *entryBlock
	// strs backs every array of strings of the entry (see stringArray).
	strs []string
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = invalidf("at byte %d: %s", d.pos, fmt.Sprintf(format, args...))
	}
	d.pos = len(d.s)
}

// next reports whether the next byte is c, and if so consumes it.
func (d *decoder) next(c byte) bool {
	if d.pos < len(d.s) && d.s[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// expect consumes c or fails.
func (d *decoder) expect(c byte) bool {
	if d.next(c) {
		return true
	}
	if d.pos < len(d.s) {
		d.fail("want %q, have %q", c, d.s[d.pos])
	} else {
		d.fail("want %q, have the end", c)
	}
	return false
}

// entryBlock holds an entry and its parts, so that decoding allocates them
// at once; the parts an entry has point into it.
type entryBlock struct {
	entry    Entry
	actor    Actor
	context  RequestContext
	policy   PolicyRef
	transfer TransferRecord
	decided  uint64
}

// entry reads the whole input as an entry, not yet validated.
func (d *decoder) entry() (*Entry, error) {
	d.block = new(entryBlock)
	e := &d.block.entry
	var v int64
	var t string
	var hasV, hasTime bool
	d.object(entryKeys, func(key string) {
		if key != "v" && !hasV {
			// The version says how to read the rest.
			d.fail("no version (\"v\") before %q", key)
			return
		}
		switch key {
		case "v":
			v, hasV = d.int(strconv.IntSize), true
			if d.err == nil && (v < 1 || v > EntryVersion) {
				d.fail("version %d, want 1 to %d", v, EntryVersion)
			}
		case "time":
			t, hasTime = d.str(), true
		case "request_id":
			e.RequestID = d.str()
		case "kind":
			e.Kind = Kind(d.str())
		case "site":
			e.Site = d.str()
		case "actor":
			e.Actor = d.actor()
		case "action":
			e.Action = d.str()
		case "subject":
			e.Subject = d.str()
		case "decision":
			e.Decision = Decision(d.str())
		case "fields":
			if v == 1 {
				e.Fields = array(d, d.field)
			} else {
				e.Fields = d.fieldGroups()
			}
		case "purpose":
			e.Purpose = d.str()
		case "justification":
			e.Justification = d.str()
		case "grant":
			e.Grant = d.str()
		case "context":
			e.Context = d.context()
		case "policy":
			e.Policy = d.policyRef()
		case "policy_files":
			e.PolicyFiles = array(d, d.policyFile)
		case "schema":
			e.Schema = array(d, d.schemaField)
		case "status":
			e.Status = int(d.int(strconv.IntSize))
		case "transfer":
			e.Transfer = d.transfer()
		case "detail":
			e.Detail = d.str()
		}
	})
	if d.err == nil && d.pos != len(d.s) {
		d.fail("data after the entry")
	}
	switch {
	case d.err != nil:
		return nil, d.err
	case !hasV:
		return nil, invalidf("no version (\"v\")")
	case !hasTime:
		return nil, invalidf("no time")
	}
	var err error
	if e.Time, err = time.Parse(TimeLayout, t); err != nil {
		return nil, invalidf("time %q is not RFC 3339 UTC with microseconds", truncate(t))
	}
	if v != EntryVersion {
		e.Version = int(v)
	}
	return e, nil
}

func (d *decoder) actor() *Actor {
	a := &d.block.actor
	d.object(actorKeys, func(key string) {
		switch key {
		case "sub":
			a.Sub = d.str()
		case "type":
			a.Type = d.str()
		case "roles":
			a.Roles = d.stringArray()
		case "country":
			a.Country = d.str()
		case "team":
			a.Team = d.str()
		}
	})
	return a
}

func (d *decoder) field() Field {
	var f Field
	d.object(fieldKeys, func(key string) {
		switch key {
		case "name":
			f.Name = d.str()
		case "form":
			f.Form = d.str()
		case "policies":
			f.Policies = d.stringArray()
		}
	})
	return f
}

// fieldGroups reads the fields of a version 2 entry: a non-empty array of
// groups, each a non-empty list of names with their form and policies, and
// returns the fields one by one. The fields of a group share its policies.
// Whether the groups are as long as they can be, Decode checks by encoding
// the entry again.
func (d *decoder) fieldGroups() []Field {
	if !d.openArray() {
		return nil
	}
	var buf [16]Field
	out := buf[:0]
	for {
		var names []string
		var form string
		var policies []string
		d.object(groupKeys, func(key string) {
			switch key {
			case "names":
				names = d.stringArray()
			case "form":
				form = d.str()
			case "policies":
				policies = d.stringArray()
			}
		})
		if d.err == nil && names == nil {
			d.fail("a group of fields without names")
		}
		if d.err != nil {
			return nil
		}
		for _, name := range names {
			out = append(out, Field{Name: name, Form: form, Policies: policies})
		}
		if !d.next(',') {
			break
		}
	}
	if !d.expect(']') {
		return nil
	}
	return slices.Clone(out)
}

func (d *decoder) context() *RequestContext {
	c := &d.block.context
	d.object(contextKeys, func(key string) {
		switch key {
		case "subject_country":
			c.SubjectCountry = d.str()
		case "subject_jurisdiction":
			c.SubjectJurisdiction = d.str()
		case "subject_site":
			c.SubjectSite = d.str()
		case "caller_in_jurisdiction":
			c.CallerInJurisdiction = d.bool()
		case "hour":
			c.Hour = int(d.int(strconv.IntSize))
		case "weekday":
			c.Weekday = d.str()
		}
	})
	return c
}

func (d *decoder) policyRef() *PolicyRef {
	p := &d.block.policy
	d.object(policyKeys, func(key string) {
		switch key {
		case "digest":
			p.Digest = d.str()
		case "ids":
			p.IDs = d.stringArray()
		}
	})
	return p
}

func (d *decoder) policyFile() PolicyFile {
	var f PolicyFile
	d.object(fileKeys, func(key string) {
		switch key {
		case "name":
			f.Name = d.str()
		case "text":
			f.Text = d.str()
		}
	})
	return f
}

func (d *decoder) schemaField() SchemaField {
	var f SchemaField
	d.object(schemaKeys, func(key string) {
		switch key {
		case "name":
			f.Name = d.str()
		case "type":
			f.Type = d.str()
		case "category":
			f.Category = d.str()
		case "method":
			f.Method = d.str()
		}
	})
	return f
}

func (d *decoder) transfer() *TransferRecord {
	t := &d.block.transfer
	d.object(transferKeys, func(key string) {
		switch key {
		case "destination":
			t.Destination = d.str()
		case "country":
			t.Country = d.str()
		case "legal_basis":
			t.LegalBasis = d.str()
		case "format":
			t.Format = d.str()
		case "rows":
			t.Rows = int(d.int(strconv.IntSize))
		case "suppressed":
			t.Suppressed = int(d.int(strconv.IntSize))
		case "bytes":
			t.Bytes = d.int(64)
		case "sha256":
			t.SHA256 = d.str()
		case "complete":
			t.Complete = d.bool()
		case "decided":
			d.block.decided = d.uint(math.MaxUint64)
			t.Decided = &d.block.decided
		}
	})
	return t
}

// object reads a non-empty object whose keys are among keys and in their
// order, calling member for each key to read its value.
func (d *decoder) object(keys []string, member func(key string)) {
	if !d.expect('{') {
		return
	}
	i := 0 // keys[:i] are behind us
	for {
		j := d.nextKey(keys[i:])
		if j < 0 {
			switch key := d.key(); {
			case d.err != nil:
			case slices.Contains(keys[:i], key):
				d.fail("field %q repeated or out of order", key)
			default:
				d.fail("unknown field %q", truncate(key))
			}
			return
		}
		j += i
		member(keys[j])
		i = j + 1
		if d.err != nil {
			return
		}
		if d.next(',') {
			continue
		}
		d.expect('}')
		return
	}
}

// nextKey reads the key and colon of the next member if the key is one of
// keys, returning its index, or returns -1 and reads nothing.
func (d *decoder) nextKey(keys []string) int {
	rest := d.s[d.pos:]
	if len(rest) == 0 || rest[0] != '"' {
		return -1
	}
	rest = rest[1:]
	for j, key := range keys {
		// No key holds a quote, so a match up to a quote is the key.
		if len(rest) > len(key)+1 && rest[len(key)] == '"' && rest[len(key)+1] == ':' && rest[:len(key)] == key {
			d.pos += len(key) + 3
			return j
		}
	}
	return -1
}

// key reads an object key and its colon, for an error message. Keys are plain ASCII: a key with
// an escape is not canonical.
func (d *decoder) key() string {
	if !d.expect('"') {
		return ""
	}
	start := d.pos
	for d.pos < len(d.s) {
		c := d.s[d.pos]
		if c == '"' {
			key := d.s[start:d.pos]
			d.pos++
			d.expect(':')
			return key
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			d.fail("unknown field (a key with %q)", c)
			return ""
		}
		d.pos++
	}
	d.fail("unterminated key")
	return ""
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// openArray reads the '[' of an array that must not be empty.
func (d *decoder) openArray() bool {
	if !d.expect('[') {
		return false
	}
	if d.next(']') {
		d.pos--
		d.fail("empty array (an empty field is left out)")
		return false
	}
	return true
}

// array reads a non-empty array, each element with elem.
func array[T any](d *decoder, elem func() T) []T {
	if !d.openArray() {
		return nil
	}
	var buf [16]T // most arrays fit: one allocation, of the right size
	out := buf[:0]
	for {
		out = append(out, elem())
		if d.err != nil {
			return nil
		}
		if !d.next(',') {
			break
		}
	}
	if !d.expect(']') {
		return nil
	}
	return slices.Clone(out)
}

// stringArray reads a non-empty array of strings. The arrays of an entry share
// one backing array, d.strs, each cut with a full slice expression so that
// appending to one cannot overwrite the next.
func (d *decoder) stringArray() []string {
	if !d.openArray() {
		return nil
	}
	if d.strs == nil {
		d.strs = make([]string, 0, 32)
	}
	start := len(d.strs)
	for {
		d.strs = append(d.strs, d.str())
		if d.err != nil {
			return nil
		}
		if !d.next(',') {
			break
		}
	}
	if !d.expect(']') {
		return nil
	}
	return d.strs[start:len(d.strs):len(d.strs)]
}

// str reads a string. Without escapes it is a slice of the input; with
// them, a new string. Only the escapes appendString writes are accepted,
// and no raw control character, U+2028, U+2029 or invalid UTF-8.
func (d *decoder) str() string {
	if !d.expect('"') {
		return ""
	}
	start := d.pos
	var buf strings.Builder // the string so far, once an escape was seen
	copied := start
	for i := start; i < len(d.s); {
		if i += plainLen(d.s[i:]); i == len(d.s) {
			break
		}
		switch c := d.s[i]; {
		case c == '"':
			d.pos = i + 1
			if copied == start {
				return d.s[start:i]
			}
			buf.WriteString(d.s[copied:i])
			return buf.String()
		case c == '\\':
			r, n := canonicalEscape(d.s[i:])
			if n == 0 {
				d.pos = i
				d.fail("escape %q is not the canonical one", truncate(d.s[i:min(i+6, len(d.s))]))
				return ""
			}
			if copied == start {
				// Escapes are longer than what they stand for, so the
				// string is at most as long as its encoding.
				buf.Grow(i - start + untilQuote(d.s[i:]))
			}
			buf.WriteString(d.s[copied:i])
			buf.WriteRune(r)
			i += n
			copied = i
		case c < ' ':
			d.pos = i
			d.fail("control character %q in a string", c)
			return ""
		default:
			r, n := utf8.DecodeRuneInString(d.s[i:])
			if r == utf8.RuneError && n == 1 || r == '\u2028' || r == '\u2029' {
				d.pos = i
				d.fail("invalid UTF-8 or unescaped U+2028/U+2029 in a string")
				return ""
			}
			i += n
		}
	}
	d.fail("unterminated string")
	return ""
}

// untilQuote returns the length of s before its first unescaped '"', or
// len(s).
func untilQuote(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(s)
}

// canonicalEscape decodes the escape at the start of s if it is one that
// appendString writes, returning the rune and the escape's length, or 0, 0.
func canonicalEscape(s string) (rune, int) {
	if len(s) < 2 {
		return 0, 0
	}
	switch s[1] {
	case '"', '\\':
		return rune(s[1]), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		if len(s) < 6 {
			return 0, 0
		}
		switch s[2:6] {
		case "2028":
			return '\u2028', 6
		case "2029":
			return '\u2029', 6
		}
		hi, lo := strings.IndexByte(hexDigits[:2], s[4]), strings.IndexByte(hexDigits, s[5])
		if s[2:4] != "00" || hi < 0 || lo < 0 {
			return 0, 0
		}
		switch r := rune(hi<<4 | lo); r {
		case '\b', '\f', '\n', '\r', '\t':
			return 0, 0 // written by name
		default:
			return r, 6
		}
	}
	return 0, 0
}

// bool reads true or false.
func (d *decoder) bool() bool {
	switch {
	case strings.HasPrefix(d.s[d.pos:], "true"):
		d.pos += len("true")
		return true
	case strings.HasPrefix(d.s[d.pos:], "false"):
		d.pos += len("false")
		return false
	}
	d.fail("want true or false")
	return false
}

// int reads an integer that fits in bits bits, written as strconv writes
// it: an optional minus sign and digits without leading zeros, no "-0".
func (d *decoder) int(bits int) int64 {
	if !d.next('-') {
		return int64(d.uint(1<<(bits-1) - 1))
	}
	n := d.uint(1 << (bits - 1))
	if n == 0 && d.err == nil {
		d.fail("-0 is not canonical")
	}
	return -int64(n)
}

// uint reads an unsigned integer of at most max, without leading zeros.
func (d *decoder) uint(max uint64) uint64 {
	start := d.pos
	var n uint64
	for d.pos < len(d.s) && '0' <= d.s[d.pos] && d.s[d.pos] <= '9' {
		digit := uint64(d.s[d.pos] - '0')
		if n > (max-digit)/10 {
			d.fail("number out of range")
			return 0
		}
		n = n*10 + digit
		d.pos++
	}
	switch {
	case d.pos == start:
		d.fail("want a number")
	case d.s[start] == '0' && d.pos > start+1:
		d.fail("leading zero in a number")
	case d.pos < len(d.s) && (d.s[d.pos] == '.' || d.s[d.pos] == 'e' || d.s[d.pos] == 'E'):
		d.fail("want an integer")
	}
	return n
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEntry}, args...)...)
}

// validate checks what Encode and Decode require of an entry.
func (e *Entry) validate() error {
	if err := e.validateValues(); err != nil {
		return err
	}
	if !e.validUTF8() {
		return invalidf("a string is not valid UTF-8")
	}
	return nil
}

// validateValues is validate but for the check that the strings are valid
// UTF-8, which Decode makes as it reads them.
func (e *Entry) validateValues() error {
	if e.Version < 0 || e.Version > EntryVersion {
		return invalidf("version %d, want 1 to %d (or 0, the current)", e.Version, EntryVersion)
	}
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
	return nil
}

func (e *Entry) validUTF8() bool {
	ok := validStrings(e.RequestID, string(e.Kind), e.Site, e.Action, e.Subject, string(e.Decision),
		e.Purpose, e.Justification, e.Grant, e.Detail)
	if a := e.Actor; a != nil {
		ok = ok && validStrings(a.Sub, a.Type, a.Country, a.Team) && validStrings(a.Roles...)
	}
	for _, f := range e.Fields {
		ok = ok && validStrings(f.Name, f.Form) && validStrings(f.Policies...)
	}
	if c := e.Context; c != nil {
		ok = ok && validStrings(c.SubjectCountry, c.SubjectJurisdiction, c.SubjectSite, c.Weekday)
	}
	if p := e.Policy; p != nil {
		ok = ok && utf8.ValidString(p.Digest) && validStrings(p.IDs...)
	}
	for _, f := range e.PolicyFiles {
		ok = ok && validStrings(f.Name, f.Text)
	}
	for _, f := range e.Schema {
		ok = ok && validStrings(f.Name, f.Type, f.Category, f.Method)
	}
	if t := e.Transfer; t != nil {
		ok = ok && validStrings(t.Destination, t.Country, t.LegalBasis, t.Format, t.SHA256)
	}
	return ok
}

func validStrings(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
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
