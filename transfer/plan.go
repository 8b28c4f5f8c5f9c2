package transfer

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
)

// FieldError lists the requested fields a destination may not receive. The
// gateway answers it with 422 before sending a byte.
type FieldError struct {
	Destination string
	Fields      []string // sorted
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("destination %s may not receive: %s", e.Destination, strings.Join(e.Fields, ", "))
}

// Plan is one transfer resolved against a destination: the columns sent and
// the form of each. It is immutable and safe for concurrent use.
type Plan struct {
	dest    Destination
	scope   string
	fields  []Column // the fields sent, after subject and country
	columns []string // subject, country, fields...
	quasi   []int    // indexes into columns of the quasi-identifiers sent
}

// subjectField is how the subject identifier is tokenised: an HMAC token in
// the destination's scope.
var subjectField = schema.Field{Name: ColumnSubject, Type: "string", Category: "identity", Method: "hmac"}

// NewPlan resolves requested fields for destination d. An empty request asks
// for every field the destination may receive, in schema order; otherwise
// the fields are sent in the order requested (duplicates, "subject" and
// "country" ignored: those two are always sent first). Fields the
// destination may not receive, or that are not in the schema, are all
// listed in a *FieldError. d must be valid (ValidateAll).
func NewPlan(d Destination, sch *schema.Schema, requested []string) (*Plan, error) {
	recv, err := d.Receives(sch)
	if err != nil {
		return nil, err
	}
	p := &Plan{dest: d, scope: "destination:" + d.Name}
	if len(requested) == 0 {
		p.fields = recv
	} else {
		var refused []string
		seen := map[string]bool{ColumnSubject: true, ColumnCountry: true}
		for _, name := range requested {
			if seen[name] {
				continue
			}
			seen[name] = true
			i := slices.IndexFunc(recv, func(c Column) bool { return c.Name == name })
			if i < 0 {
				refused = append(refused, name)
				continue
			}
			p.fields = append(p.fields, recv[i])
		}
		if len(refused) > 0 {
			slices.Sort(refused)
			return nil, &FieldError{Destination: d.Name, Fields: refused}
		}
	}
	p.columns = make([]string, 0, 2+len(p.fields))
	p.columns = append(p.columns, ColumnSubject, ColumnCountry)
	for _, c := range p.fields {
		p.columns = append(p.columns, c.Name)
	}
	for _, q := range d.QuasiIdentifiers {
		if i := slices.Index(p.columns, q); i >= 0 {
			p.quasi = append(p.quasi, i)
		}
	}
	return p, nil
}

// Destination returns the plan's destination.
func (p *Plan) Destination() Destination { return p.dest }

// Scope is the pseudonymisation scope of the destination's tokens.
func (p *Plan) Scope() string { return p.scope }

// Columns returns the columns of every exported row: "subject", "country",
// then the fields sent.
func (p *Plan) Columns() []string { return slices.Clone(p.columns) }

// Fields returns the fields sent and their forms, for the ledger.
func (p *Plan) Fields() []Column { return slices.Clone(p.fields) }

// QuasiIdentifiers returns the indexes, in Columns, of the
// quasi-identifiers this transfer sends. Configured quasi-identifiers that
// are not requested are not sent, so they cannot single anyone out.
func (p *Plan) QuasiIdentifiers() []int { return slices.Clone(p.quasi) }

// Cell is one column of an exported row; Value is compact JSON.
type Cell struct {
	Column string
	Value  json.RawMessage
}

// Row is an exported record: its cells in column order.
type Row []Cell

// null is the value of a field the record does not hold.
var null = json.RawMessage("null")

// Transform turns a stored record into the row sent: the subject identifier
// as a token scoped to the destination, the subject's country as is, each
// field in its form (null when the record does not hold it). The row is
// appended to dst[:0], so a caller can reuse it. now is the time age bands
// are computed at; both passes of one transfer must use the same now. Errors
// name the field, never the value.
func (p *Plan) Transform(t *pseudonym.Transformer, subjectID, country string, fields map[string]json.RawMessage, now time.Time, dst Row) (Row, error) {
	if !enclave.ValidCountry(country) {
		return nil, fmt.Errorf("transfer: subject country is not an ISO 3166-1 alpha-2 code")
	}
	subj, err := json.Marshal(subjectID)
	if err != nil {
		return nil, err
	}
	tok, err := t.Transform(subjectField, pseudonym.Pseudonym, subj, p.scope, now)
	if err != nil {
		return nil, err
	}
	dst = append(dst[:0], Cell{ColumnSubject, tok}, Cell{ColumnCountry, json.RawMessage(`"` + country + `"`)})
	for _, c := range p.fields {
		v, ok := fields[c.Name]
		if !ok || string(v) == "null" {
			dst = append(dst, Cell{c.Name, null})
			continue
		}
		out, err := t.Transform(c.Field, c.Form, v, p.scope, now)
		if err != nil {
			return nil, err
		}
		dst = append(dst, Cell{c.Name, out})
	}
	return dst, nil
}

// Quasi appends to dst[:0] the quasi-identifier values of a row made by
// Transform, for a Grouper.
func (p *Plan) Quasi(row Row, dst []json.RawMessage) []json.RawMessage {
	dst = dst[:0]
	for _, i := range p.quasi {
		dst = append(dst, row[i].Value)
	}
	return dst
}

// Ledger is the substance of the audit log entry of one transfer
// (auditlog.KindTransfer).
type Ledger struct {
	Time        time.Time   `json:"time"`
	Destination string      `json:"destination"`
	Country     string      `json:"country"`
	LegalBasis  string      `json:"legal_basis"`
	Fields      []FieldForm `json:"fields"`
	Rows        int         `json:"rows"`
	Suppressed  int         `json:"suppressed"`
	Bytes       int64       `json:"bytes"`
	SHA256      string      `json:"sha256"`
}

// FieldForm is a column sent and its form.
type FieldForm struct {
	Name string `json:"name"`
	Form string `json:"form"`
}

// Ledger returns the ledger entry of a transfer made with the plan.
func (p *Plan) Ledger(now time.Time, s Summary, suppressed int) Ledger {
	ff := make([]FieldForm, 0, len(p.columns))
	ff = append(ff, FieldForm{ColumnSubject, string(pseudonym.Pseudonym)}, FieldForm{ColumnCountry, string(pseudonym.Raw)})
	for _, c := range p.fields {
		ff = append(ff, FieldForm{c.Name, string(c.Form)})
	}
	return Ledger{
		Time: now.UTC(), Destination: p.dest.Name, Country: p.dest.Country, LegalBasis: p.dest.LegalBasis,
		Fields: ff, Rows: s.Rows, Suppressed: suppressed, Bytes: s.Bytes, SHA256: s.SHA256,
	}
}

// QuotaError says a transfer would exceed the destination's daily quota.
type QuotaError struct {
	Destination    string
	Quota, Sent, N int
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("destination %s: %d rows would exceed the daily quota of %d (%d already sent today)", e.Destination, e.N, e.Quota, e.Sent)
}

// CheckQuota returns a *QuotaError if sending n more rows to d, after
// sentToday, would exceed its daily quota.
func CheckQuota(d Destination, sentToday, n int) error {
	if sentToday+n > d.DailyQuota || sentToday < 0 || n < 0 {
		return &QuotaError{d.Name, d.DailyQuota, sentToday, n}
	}
	return nil
}

// TransformQuasi appends to dst[:0] the quasi-identifier values of a record,
// transformed as Transform would (same order as Quasi), without transforming
// the other fields or tokenising the subject: the cheap first pass.
func (p *Plan) TransformQuasi(t *pseudonym.Transformer, country string, fields map[string]json.RawMessage, now time.Time, dst []json.RawMessage) ([]json.RawMessage, error) {
	dst = dst[:0]
	for _, i := range p.quasi {
		if i == 1 {
			if !enclave.ValidCountry(country) {
				return nil, fmt.Errorf("transfer: subject country is not an ISO 3166-1 alpha-2 code")
			}
			dst = append(dst, json.RawMessage(`"`+country+`"`))
			continue
		}
		c := p.fields[i-2]
		v, ok := fields[c.Name]
		if !ok || string(v) == "null" {
			dst = append(dst, null)
			continue
		}
		out, err := t.Transform(c.Field, c.Form, v, p.scope, now)
		if err != nil {
			return nil, err
		}
		dst = append(dst, out)
	}
	return dst, nil
}
