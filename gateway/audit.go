package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/policy"
)

// AuditLog is where the gateway records every decision before it answers;
// *auditlog.Log is one. AppendEntry returns once the entry is durable.
type AuditLog interface {
	AppendEntry(ctx context.Context, e *auditlog.Entry) (uint64, error)
}

// LogReader serves the log's proofs and tiles; *auditlog.Log is one.
type LogReader interface {
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error)
	Handler() http.Handler
}

// HeaderLogIndex carries the index of the response's audit log entry.
const HeaderLogIndex = "Clover-Log-Index"

// requestIDs makes request ids: a random process prefix and a counter.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	b := make([]byte, 6)
	rand.Read(b)
	return &requestIDs{prefix: hex.EncodeToString(b)}
}

func (r *requestIDs) next() string {
	return r.prefix + "-" + strconv.FormatUint(r.n.Add(1), 36)
}

// subjectPseudonym names a subject in the log by a keyed hash of its
// handle; a subject the enclave does not hold (a read of a missing id, a
// refused write of a new one) by a keyed hash of its id under another label.
func (g *Gateway) subjectPseudonym(handle []byte, id string) string {
	if handle != nil {
		return g.pseudonyms.of(handle)
	}
	return g.pseudonyms.of([]byte("unheld-subject:" + id))
}

// pseudonymMACs computes auditlog.SubjectPseudonym under one log key with
// HMAC states kept for reuse: every read names its subject, and a new HMAC
// costs more than the hash itself.
type pseudonymMACs struct {
	key  []byte
	pool sync.Pool // of hash.Hash
}

func newPseudonymMACs(key []byte) *pseudonymMACs {
	p := &pseudonymMACs{key: key}
	p.pool.New = func() any { return hmac.New(sha256.New, p.key) }
	return p
}

// of returns auditlog.SubjectPseudonym(key, handle).
func (p *pseudonymMACs) of(handle []byte) string {
	m := p.pool.Get().(hash.Hash)
	m.Reset()
	m.Write(handle)
	var sum [sha256.Size]byte
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], m.Sum(sum[:0]))
	p.pool.Put(m)
	return string(out[:])
}

// tokenPseudonym names a re-identified token in the log: the gateway does
// not know whose it is, and the token itself must not be written.
func (g *Gateway) tokenPseudonym(token string) string {
	m := hmac.New(sha256.New, g.logKey)
	m.Write([]byte("reidentify-token:"))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// newEntry starts an entry for a request by p.
func (g *Gateway) newEntry(kind auditlog.Kind, action string, p authn.Principal, ctx policy.Context) *auditlog.Entry {
	return &auditlog.Entry{
		Time:      g.now(),
		RequestID: g.reqIDs.next(),
		Kind:      kind,
		Action:    action,
		Actor: &auditlog.Actor{Sub: p.Subject, Type: policy.PrincipalType(p), Roles: p.Roles,
			Country: p.Country, Team: p.Team},
		Purpose:       ctx.Purpose,
		Justification: ctx.Justification,
		Grant:         ctx.Grant,
		Context: &auditlog.RequestContext{SubjectCountry: ctx.SubjectCountry, SubjectJurisdiction: ctx.SubjectJurisdiction,
			SubjectSite: ctx.SubjectSite, CallerInJurisdiction: ctx.CallerInJurisdiction, Hour: ctx.Hour, Weekday: ctx.Weekday},
	}
}

// record appends e and sets the Clover-Log-Index header. On failure it
// answers 503 and returns false: the caller must release nothing.
func (g *Gateway) record(w http.ResponseWriter, r *http.Request, e *auditlog.Entry) bool {
	idx, err := g.audit.AppendEntry(r.Context(), e)
	if err != nil {
		g.metrics.logFailures.Inc()
		if errors.Is(err, auditlog.ErrPushback) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "log_busy", "the audit log is saturated; nothing was released; retry")
			return false
		}
		g.log.Error("audit log append failed; failing closed", "error", err)
		writeError(w, http.StatusServiceUnavailable, "log_unavailable", "the audit log cannot record this request, so nothing was released")
		return false
	}
	w.Header().Set(HeaderLogIndex, strconv.FormatUint(idx, 10))
	w.Header().Set("Clover-Request-Id", e.RequestID)
	g.indexAccess(e, idx)
	return true
}

// decisionFields converts a policy decision into the log's field list.
func decisionFields(d policy.Decision, released map[string]policy.Form) []auditlog.Field {
	out := make([]auditlog.Field, 0, len(d.Fields))
	for _, f := range d.Fields {
		form := f.Form
		if released != nil {
			if rf, ok := released[f.Field]; ok {
				form = rf
			} else {
				form = policy.Withheld
			}
		}
		out = append(out, auditlog.Field{Name: f.Field, Form: string(form), Policies: f.Policies})
	}
	return out
}

// deciding collects the ids of the policies that decided, without repeats,
// in order of first appearance. A decision names a handful of policies, so
// a linear search beats a set (this runs on every read).
func deciding(d policy.Decision) []string {
	var ids []string
	for _, f := range d.Fields {
		for _, id := range f.Policies {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// RecordPolicy logs the policy set now in force, with its full text and
// the field schema it decides over, so that a monitor can replay every
// later decision from the log alone (monitor/replay).
func (g *Gateway) RecordPolicy(ctx context.Context, set *policy.Set, by string) (uint64, error) {
	e := &auditlog.Entry{Time: g.now(), RequestID: g.reqIDs.next(), Kind: auditlog.KindPolicy,
		Policy: &auditlog.PolicyRef{Digest: set.Digest(), IDs: set.IDs()}, Detail: "policy set in force; loaded by " + by}
	for _, f := range set.Files() {
		e.PolicyFiles = append(e.PolicyFiles, auditlog.PolicyFile{Name: f.Name, Text: f.Text})
	}
	for _, f := range g.allFields {
		e.Schema = append(e.Schema, auditlog.SchemaField{Name: f.Name, Type: f.Type, Category: f.Category, Method: f.Method})
	}
	return g.audit.AppendEntry(ctx, e)
}

// proof endpoints

type proofResponse struct {
	Index  *uint64  `json:"index,omitempty"`
	Size   *uint64  `json:"size,omitempty"`
	From   *uint64  `json:"from,omitempty"`
	To     *uint64  `json:"to,omitempty"`
	Hashes []string `json:"hashes"`
}

func parseUint(w http.ResponseWriter, r *http.Request, name string) (uint64, bool) {
	v := r.URL.Query().Get(name)
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_query", "query parameter "+name+" must be a non-negative integer")
		return 0, false
	}
	return n, true
}

func (g *Gateway) inclusionProof(w http.ResponseWriter, r *http.Request) {
	index, ok := parseUint(w, r, "index")
	if !ok {
		return
	}
	size, ok := parseUint(w, r, "size")
	if !ok {
		return
	}
	hashes, err := g.logReader.InclusionProof(r.Context(), index, size)
	if !g.proofError(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, proofResponse{Index: &index, Size: &size, Hashes: encodeHashes(hashes)})
}

func (g *Gateway) consistencyProof(w http.ResponseWriter, r *http.Request) {
	from, ok := parseUint(w, r, "from")
	if !ok {
		return
	}
	to, ok := parseUint(w, r, "to")
	if !ok {
		return
	}
	hashes, err := g.logReader.ConsistencyProof(r.Context(), from, to)
	if !g.proofError(w, r, err) {
		return
	}
	writeJSON(w, http.StatusOK, proofResponse{From: &from, To: &to, Hashes: encodeHashes(hashes)})
}

func (g *Gateway) proofError(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, auditlog.ErrOutOfRange):
		writeError(w, http.StatusBadRequest, "out_of_range", "index or size is beyond the published tree: "+err.Error())
	default:
		g.internal(w, r, "compute proof", err)
	}
	return false
}

func encodeHashes(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}
