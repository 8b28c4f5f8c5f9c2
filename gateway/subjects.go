package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/vault"
)

// maxTokenHeader caps the Authorization header we are willing to parse.
const maxTokenHeader = 8 << 10

type principalKey struct{}

// PrincipalFrom returns the authenticated caller of a request.
func PrincipalFrom(ctx context.Context) (authn.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(authn.Principal)
	return p, ok
}

// authenticated rejects requests without a valid bearer token with 401.
func (g *Gateway) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(h, " ")
		if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="clover"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated", "an Authorization: Bearer <token> header is required")
			return
		}
		if len(h) > maxTokenHeader {
			w.Header().Set("WWW-Authenticate", `Bearer realm="clover", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated", "token too large")
			return
		}
		p, err := g.verifier.Verify(r.Context(), strings.TrimSpace(token))
		if err != nil {
			if !errors.Is(err, authn.ErrUnauthenticated) {
				g.log.Error("token verification failed", "error", err)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="clover", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthenticated", authn.Reason(err))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

// subjectID reads and checks the {id} path value.
func subjectID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !vault.ValidID(id) {
		writeError(w, http.StatusBadRequest, "invalid_id", vault.ErrBadID.Error())
		return "", false
	}
	return id, true
}

type putRequest struct {
	Country string                     `json:"country"`
	Fields  map[string]json.RawMessage `json:"fields"`
}

type putResponse struct {
	ID        string   `json:"id"`
	Site      string   `json:"site"`
	Replica   string   `json:"replica,omitempty"`
	Created   bool     `json:"created"`
	MovedFrom []string `json:"moved_from,omitempty"`
}

func (g *Gateway) putSubject(w http.ResponseWriter, r *http.Request) {
	id, ok := subjectID(w, r)
	if !ok {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	pctx, ok := g.policyContext(w, r, p)
	if !ok {
		return
	}
	var req putRequest
	if !g.decodeBody(w, r, &req) {
		return
	}
	if req.Country == "" {
		writeError(w, http.StatusBadRequest, "invalid_body", `"country" is required: the subject's ISO 3166-1 alpha-2 country code`)
		return
	}
	if !enclave.ValidCountry(req.Country) {
		writeError(w, http.StatusBadRequest, "invalid_body", `"country" must be an ISO 3166-1 alpha-2 code such as "IE"`)
		return
	}
	if req.Fields == nil {
		writeError(w, http.StatusBadRequest, "invalid_body", `"fields" is required: an object of field name to value`)
		return
	}
	pctx.SubjectCountry = req.Country
	if pl, err := g.vault.Enclave().Place(req.Country); err == nil {
		pctx.SubjectSite = pl.Home
	}
	handle, err := g.vault.Handle(r.Context(), id)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		handle = nil
	case err != nil:
		g.internal(w, r, "write subject", err)
		return
	}
	e := g.newEntry(auditlog.KindWrite, "write", p, pctx)
	e.Site = pctx.SubjectSite
	if handle == nil {
		// A new subject: its handle is chosen now, so that the entry can
		// name it before anything is written.
		handle = make([]byte, 16)
		rand.Read(handle)
	}
	e.Subject = g.subjectPseudonym(handle, id)
	if !g.allowAndRecord(w, r, p, "write", pctx, e, "writing a subject") {
		return
	}
	res, err := g.vault.PutWithHandle(r.Context(), id, req.Country, req.Fields, handle)
	var ve *schema.ValueError
	switch {
	case errors.Is(err, enclave.ErrOutsideJurisdiction):
		writeError(w, http.StatusUnprocessableEntity, "outside_jurisdiction",
			fmt.Sprintf("subjects from %s cannot be stored: the country is outside the jurisdictions of enclave %q; nothing was stored", req.Country, g.vault.Enclave().Name()))
		return
	case errors.As(err, &ve):
		writeFieldError(w, http.StatusUnprocessableEntity, "invalid_fields", "fields do not fit the schema: "+ve.Error()+"; nothing was stored", ve.Fields())
		return
	case err != nil:
		g.internal(w, r, "write subject", err)
		return
	}
	if len(res.MovedFrom) > 0 {
		re := g.newEntry(auditlog.KindRehome, "write", p, pctx)
		re.Actor, re.Decision, re.Action = nil, "", ""
		re.Site, re.Subject = res.Placement.Home, g.subjectPseudonym(res.Handle, id)
		re.Detail = "moved from " + strings.Join(res.MovedFrom, ",") + " to " + res.Placement.Home
		if _, err := g.audit.AppendEntry(r.Context(), re); err != nil {
			g.log.Error("re-homing done but not logged", "error", err)
		}
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	writeJSON(w, status, putResponse{ID: id, Site: res.Placement.Home, Replica: res.Placement.Replica, Created: res.Created, MovedFrom: res.MovedFrom})
}

type getResponse struct {
	ID     string                     `json:"id"`
	Site   string                     `json:"site"`
	Fields map[string]json.RawMessage `json:"fields"`
	// Forms says in which form each returned field was released.
	Forms map[string]policy.Form `json:"forms"`
	// Withheld lists the requested fields that policy did not release.
	Withheld []string `json:"withheld"`
}

func (g *Gateway) getSubject(w http.ResponseWriter, r *http.Request) {
	id, ok := subjectID(w, r)
	if !ok {
		return
	}
	want, ok := g.requestedFields(w, r)
	if !ok {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	pctx, ok := g.policyContext(w, r, p)
	if !ok {
		return
	}
	set := g.policies.Load()
	rec, err := g.vault.Get(r.Context(), id)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		// Say "not found" only to a caller who could read something of some
		// subject; anyone else learns nothing about who exists.
		fields := g.fieldsFor(want, nil)
		d := set.Decide(policy.Request{Principal: p, Fields: fields, Context: pctx}, g.supports)
		e := g.newEntry(auditlog.KindDecision, "read", p, pctx)
		e.Subject = g.subjectPseudonym(nil, id)
		e.Policy = &auditlog.PolicyRef{Digest: d.Digest, IDs: deciding(d)}
		if !anyReleased(d) {
			e.Decision, e.Status, e.Fields = auditlog.Deny, http.StatusForbidden, decisionFields(d, nil)
			if g.record(w, r, e) {
				writeError(w, http.StatusForbidden, "forbidden", "policy permits none of the requested fields")
			}
			return
		}
		e.Decision, e.Status, e.Detail = auditlog.Allow, http.StatusNotFound, "no such subject; nothing released"
		if g.record(w, r, e) {
			writeError(w, http.StatusNotFound, "not_found", "no such subject")
		}
		return
	case err != nil:
		g.internal(w, r, "read subject", err)
		return
	}
	pctx.SubjectCountry, pctx.SubjectSite = rec.Country, rec.Site
	fields := g.fieldsFor(want, rec.Fields)
	d := set.Decide(policy.Request{Principal: p, Fields: fields, Context: pctx}, g.supports)
	e := g.newEntry(auditlog.KindDecision, "read", p, pctx)
	e.Site, e.Subject = rec.Site, g.subjectPseudonym(rec.Handle, id)
	e.Policy = &auditlog.PolicyRef{Digest: d.Digest, IDs: deciding(d)}
	if len(fields) > 0 && !anyReleased(d) {
		e.Decision, e.Status, e.Fields = auditlog.Deny, http.StatusForbidden, decisionFields(d, nil)
		if g.record(w, r, e) {
			writeError(w, http.StatusForbidden, "forbidden", "policy permits none of the requested fields")
		}
		return
	}
	resp := getResponse{ID: id, Site: rec.Site, Fields: make(map[string]json.RawMessage, len(fields)),
		Forms: make(map[string]policy.Form, len(fields)), Withheld: []string{}}
	scope := purposeScope(pctx.Purpose)
	now := g.now()
	for i, fd := range d.Fields {
		value, present := rec.Fields[fd.Field]
		if !present {
			continue
		}
		if fd.Form == policy.Withheld {
			resp.Withheld = append(resp.Withheld, fd.Field)
			continue
		}
		out, err := value, error(nil)
		if fd.Form != policy.Raw { // raw values were validated when written
			out, err = g.transformer.Transform(fields[i], pseudonym.Form(fd.Form), value, scope, now)
		}
		if err != nil || out == nil {
			// A value that cannot take its form is withheld, never sent in
			// a more revealing one.
			resp.Withheld = append(resp.Withheld, fd.Field)
			continue
		}
		resp.Fields[fd.Field] = out
		resp.Forms[fd.Field] = fd.Form
	}
	// The entry records what is released, and is durable before it is.
	e.Decision, e.Status, e.Fields = auditlog.Allow, http.StatusOK, decisionFields(d, resp.Forms)
	if !g.record(w, r, e) {
		return
	}
	w.Header().Set("Clover-Policy-Digest", d.Digest)
	buf, _ := g.responses.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = appendGetResponse((*buf)[:0], &resp)
	writeRaw(w, http.StatusOK, *buf) // copies it into the connection's buffer
	if cap(*buf) <= maxPooledResponse {
		g.responses.Put(buf)
	}
}

// maxPooledResponse caps the buffers Gateway.responses keeps, so that a
// rare large response does not stay.
const maxPooledResponse = 16 << 10

// appendGetResponse encodes resp as encoding/json would (keys sorted), by
// hand: it is the hot path of every read. Every string in it comes from a
// restricted alphabet (subject ids, site and field names, form names) and
// every value is compact JSON, so nothing needs escaping.
func appendGetResponse(b []byte, resp *getResponse) []byte {
	names := make([]string, 0, len(resp.Fields))
	for name := range resp.Fields {
		names = append(names, name)
	}
	slices.Sort(names)
	b = append(b, `{"id":"`...)
	b = append(b, resp.ID...)
	b = append(b, `","site":"`...)
	b = append(b, resp.Site...)
	b = append(b, `","fields":{`...)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = append(b, resp.Fields[name]...)
	}
	b = append(b, `},"forms":{`...)
	for i, name := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":"`...)
		b = append(b, resp.Forms[name]...)
		b = append(b, '"')
	}
	b = append(b, `},"withheld":[`...)
	for i, name := range resp.Withheld {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"')
	}
	return append(b, "]}\n"...)
}

// supports adapts the pseudonymisation package's capabilities to policy.
func (g *Gateway) supports(f schema.Field, form policy.Form) bool {
	return pseudonym.Supports(f, pseudonym.Form(form))
}

func anyReleased(d policy.Decision) bool {
	for _, f := range d.Fields {
		if f.Form != policy.Withheld {
			return true
		}
	}
	return false
}

// fieldsFor returns the schema fields to decide: those asked for, or,
// when none were named, every schema field the record holds (every schema
// field when there is no record). The result is read-only: when it is
// every schema field, it is the gateway's own list (a read of a full
// record is spared an allocation).
func (g *Gateway) fieldsFor(want []string, have map[string]json.RawMessage) []schema.Field {
	all := g.allFields[:len(g.allFields):len(g.allFields)]
	if want == nil {
		if have == nil {
			return all
		}
		// One lookup per field; a list of its own only from the first
		// field the record lacks.
		var out []schema.Field
		for i, f := range all {
			_, ok := have[f.Name]
			switch {
			case ok && out != nil:
				out = append(out, f)
			case !ok && out == nil:
				out = append(make([]schema.Field, 0, len(all)), all[:i]...)
			}
		}
		if out == nil {
			return all
		}
		return out
	}
	sch := g.vault.Schema()
	out := make([]schema.Field, 0, len(all))
	for _, name := range want {
		f, _ := sch.Field(name)
		if !slices.ContainsFunc(out, func(x schema.Field) bool { return x.Name == name }) {
			out = append(out, f)
		}
	}
	return out
}

func purposeScope(purpose string) string {
	if purpose == "" {
		return "purpose:unstated"
	}
	return "purpose:" + purpose
}

// requestedFields parses ?fields=a,b; nil means all fields.
func (g *Gateway) requestedFields(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	q := r.URL.Query()
	for k := range q {
		if k != "fields" {
			writeError(w, http.StatusBadRequest, "invalid_query", fmt.Sprintf("unknown query parameter %q", truncate(k, 64)))
			return nil, false
		}
	}
	if !q.Has("fields") {
		return nil, true
	}
	if len(q["fields"]) > 1 {
		writeError(w, http.StatusBadRequest, "invalid_query", `give "fields" once, as a comma-separated list`)
		return nil, false
	}
	sch := g.vault.Schema()
	var out []string
	for _, name := range strings.Split(q.Get("fields"), ",") {
		name = strings.TrimSpace(name)
		if _, ok := sch.Field(name); !ok {
			writeFieldError(w, http.StatusBadRequest, "unknown_field", fmt.Sprintf("field %q is not in the schema", truncate(name, 64)), []string{truncate(name, 64)})
			return nil, false
		}
		out = append(out, name)
	}
	return out, true
}

type deleteResponse struct {
	ID     string   `json:"id"`
	Erased bool     `json:"erased"`
	Sites  []string `json:"sites"`
}

func (g *Gateway) deleteSubject(w http.ResponseWriter, r *http.Request) {
	id, ok := subjectID(w, r)
	if !ok {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	pctx, ok := g.policyContext(w, r, p)
	if !ok {
		return
	}
	handle, err := g.vault.Handle(r.Context(), id)
	if err != nil && !errors.Is(err, vault.ErrNotFound) {
		g.internal(w, r, "erase subject", err)
		return
	}
	e := g.newEntry(auditlog.KindErase, "erase", p, pctx)
	e.Subject = g.subjectPseudonym(handle, id)
	if !g.allowAndRecord(w, r, p, "erase", pctx, e, "erasing a subject") {
		return
	}
	sites, err := g.vault.Erase(r.Context(), id)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such subject")
		return
	case err != nil:
		g.internal(w, r, "erase subject", err)
		return
	}
	writeJSON(w, http.StatusOK, deleteResponse{ID: id, Erased: true, Sites: sites})
}

// decodeBody reads a size-limited JSON body strictly into v: unknown
// fields, trailing data and wrong types are 400; oversized bodies 413.
func (g *Gateway) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
			return false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is larger than %d bytes", g.cfg.MaxBodyBytes))
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid_body", "cannot read the body")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", jsonProblem(err))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_json", "the body holds more than one JSON value")
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, "invalid_json", "the body holds data after the JSON value")
		return false
	}
	return true
}

// jsonProblem describes a decoding error without quoting values.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("%q must be of JSON type %s, not %s", te.Field, jsonType(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("the body must be a JSON object, not %s", te.Value)
	case errors.Is(err, io.EOF):
		return "the body is empty; a JSON object is required"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON body ends early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown key " + truncate(strings.TrimPrefix(err.Error(), "json: unknown field "), 70) + ` (allowed: "country", "fields")`
	default:
		return "malformed JSON body"
	}
}

func jsonType(kind string) string {
	switch kind {
	case "map", "struct":
		return "object"
	default:
		return kind
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (g *Gateway) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	g.log.LogAttrs(r.Context(), slog.LevelError, what+" failed", slogErr(err))
	writeError(w, http.StatusInternalServerError, "internal", what+" failed; see the server log")
}
