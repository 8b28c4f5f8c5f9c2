package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/store"
	"github.com/cloverenclave/clover/store/sqlite"
	"github.com/cloverenclave/clover/transfer"
	"github.com/cloverenclave/clover/vault"
	"github.com/google/go-cmp/cmp"
)

// harness is a gateway over real SQLite stores and the development issuer.
type harness struct {
	t      *testing.T
	dir    string
	gw     *Gateway
	dev    *authn.DevIssuer
	stores map[string]*sqlite.Store
	raw    map[string]store.Store
	keks   map[string]keys.KEK
	// policyDir, when set, is where ReloadPolicies reads policies from.
	policyDir string
	audit     *memLog
}

// memLog is an in-memory AuditLog: it encodes every entry as the real log
// would (so invalid entries fail) and can be made to fail.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	fail    error
}

func (m *memLog) AppendEntry(_ context.Context, e *auditlog.Entry) (uint64, error) {
	b, err := auditlog.Encode(e)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	m.entries = append(m.entries, b)
	return uint64(len(m.entries) - 1), nil
}

// last decodes the latest entry.
func (m *memLog) last(t *testing.T) *auditlog.Entry {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) == 0 {
		t.Fatal("nothing was logged")
	}
	e, err := auditlog.Decode(m.entries[len(m.entries)-1])
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The proof and tile routes are exercised against the real log in
// cmd/clover; here they only need to exist.
func (m *memLog) InclusionProof(context.Context, uint64, uint64) ([][]byte, error) {
	return nil, auditlog.ErrOutOfRange
}

func (m *memLog) ConsistencyProof(context.Context, uint64, uint64) ([][]byte, error) {
	return nil, auditlog.ErrOutOfRange
}

func (m *memLog) Handler() http.Handler { return http.NotFoundHandler() }

func (m *memLog) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith opens each site's store with open, or SQLite under the
// harness directory when open is nil.
func newHarnessWith(t *testing.T, open func(site string) store.Store) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), stores: map[string]*sqlite.Store{}, raw: map[string]store.Store{}, keks: map[string]keys.KEK{}}
	enc, err := enclave.New(enclave.Default())
	if err != nil {
		t.Fatal(err)
	}
	sch, _ := schema.New(schema.Default())
	m := NewMetrics()
	var sites []vault.Site
	for _, s := range enc.Sites() {
		var st store.Store
		if open != nil {
			st = open(s.Name)
		} else {
			sq, err := sqlite.Open(filepath.Join(h.dir, "sites", s.Name))
			if err != nil {
				t.Fatal(err)
			}
			h.stores[s.Name] = sq
			st = sq
		}
		t.Cleanup(func() { st.Close() })
		h.raw[s.Name] = st
		kek, err := keys.LoadOrCreateFileKEK(filepath.Join(h.dir, "kek", s.Name+".key"), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		h.keks[s.Name] = kek
		sites = append(sites, vault.Site{Name: s.Name, Store: m.InstrumentStore(s.Name, st), KEK: kek})
	}
	v, err := vault.New(enc, sch, sites)
	if err != nil {
		t.Fatal(err)
	}
	h.dev, err = authn.LoadOrCreateDevIssuer(filepath.Join(h.dir, "dev-issuer"), "urn:clover:dev-issuer", "clover")
	if err != nil {
		t.Fatal(err)
	}
	ver, err := authn.NewVerifier(authn.Config{Issuer: "urn:clover:dev-issuer", Audience: "clover"}, h.dev.Keys(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	set, err := policy.Default()
	if err != nil {
		t.Fatal(err)
	}
	tr, siv := testTransformer(t)
	h.audit = &memLog{}
	h.gw = New(Config{MaxBodyBytes: 64 << 10, JWKS: h.dev.JWKS(), Version: "test", Purposes: []string{"support", "analytics", "service"}},
		Parts{Vault: v, Verifier: ver, Policies: set, Transformer: tr, SIV: siv, Metrics: m, Log: log,
			Audit: h.audit, LogReader: h.audit, LogKey: bytes.Repeat([]byte{9}, 32),
			Destinations: transfer.Defaults(),
			AccessIndex:  openAccessIndex(t, h.dir), // accesses_test.go
			ReloadPolicies: func() (*policy.Set, error) {
				if h.policyDir == "" {
					return policy.Default()
				}
				return policy.Load(os.DirFS(h.policyDir))
			}})
	t.Cleanup(func() { h.gw.Close() }) // before the access index closes
	return h
}

// testTransformer builds the pseudonymisation keys from fixed bytes.
func testTransformer(t *testing.T) (*pseudonym.Transformer, *pseudonym.SIV) {
	t.Helper()
	key := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	tok, err := pseudonym.NewTokenizer(key(32, 1))
	if err != nil {
		t.Fatal(err)
	}
	siv, err := pseudonym.NewSIV(key(64, 2))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := pseudonym.NewTransformer(pseudonym.Keys{HMAC: tok, SIV: siv, FF1Key: key(32, 3)})
	if err != nil {
		t.Fatal(err)
	}
	return tr, siv
}

func (h *harness) token(roles ...string) string {
	h.t.Helper()
	return h.tokenFrom("IE", roles...)
}

// tokenFrom mints a token for a caller working from country.
func (h *harness) tokenFrom(country string, roles ...string) string {
	h.t.Helper()
	tok, err := h.dev.Mint(authn.TokenClaims{Subject: "caller-1", Roles: roles, Country: country}, time.Hour, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON (%v): %s", err, r.body)
	}
	return m
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("response has no error object: %s", r.body)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("error without a message: %s", r.body)
	}
	code, _ := e["code"].(string)
	return code
}

func (h *harness) do(method, path, token, body string, hdr ...string) response {
	h.t.Helper()
	req := newReq(method, path, token)
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return h.serve(req)
}

func newReq(method, path, token string) *http.Request {
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func (h *harness) serve(req *http.Request) response {
	w := httptest.NewRecorder()
	h.gw.ServeHTTP(w, req)
	return response{w.Code, w.Header(), w.Body.Bytes()}
}

const aliceBody = `{"country":"IE","fields":{"email":"alice@example.ie","full_name":"Alice Byrne","birth_date":"1991-04-12","location":{"lat":53.34,"lon":-6.26}}}`

func TestWriteReadErase(t *testing.T) {
	h := newHarness(t)
	ingest, service, erasure := h.token("ingest"), h.token("service"), h.token("erasure")

	r := h.do("PUT", "/v1/subjects/alice", ingest, aliceBody)
	if r.status != http.StatusCreated {
		t.Fatalf("PUT = %d %s", r.status, r.body)
	}
	if diff := cmp.Diff(map[string]any{"id": "alice", "site": "ie-dublin", "created": true}, r.json(t)); diff != "" {
		t.Errorf("PUT body (-want +got):\n%s", diff)
	}
	r = h.do("PUT", "/v1/subjects/alice", ingest, aliceBody)
	if r.status != http.StatusOK {
		t.Fatalf("second PUT = %d %s", r.status, r.body)
	}

	r = h.do("GET", "/v1/subjects/alice", service, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET = %d %s", r.status, r.body)
	}
	want := map[string]any{"id": "alice", "site": "ie-dublin", "fields": map[string]any{
		"email": "alice@example.ie", "full_name": "Alice Byrne", "birth_date": "1991-04-12",
		"location": map[string]any{"lat": 53.34, "lon": -6.26}},
		"forms":    map[string]any{"email": "raw", "full_name": "raw", "birth_date": "raw", "location": "raw"},
		"withheld": []any{}}
	if diff := cmp.Diff(want, r.json(t)); diff != "" {
		t.Errorf("GET body (-want +got):\n%s", diff)
	}
	r = h.do("GET", "/v1/subjects/alice?fields=email,%20birth_date", service, "")
	if diff := cmp.Diff(map[string]any{"email": "alice@example.ie", "birth_date": "1991-04-12"}, r.json(t)["fields"]); diff != "" {
		t.Errorf("GET ?fields (-want +got):\n%s", diff)
	}

	r = h.do("DELETE", "/v1/subjects/alice", erasure, "")
	if r.status != http.StatusOK {
		t.Fatalf("DELETE = %d %s", r.status, r.body)
	}
	if diff := cmp.Diff(map[string]any{"id": "alice", "erased": true, "sites": []any{"ie-dublin"}}, r.json(t)); diff != "" {
		t.Errorf("DELETE body (-want +got):\n%s", diff)
	}
	for _, m := range []string{"GET", "DELETE"} {
		tok := service
		if m == "DELETE" {
			tok = erasure
		}
		if r := h.do(m, "/v1/subjects/alice", tok, ""); r.status != http.StatusNotFound || r.errorCode(t) != "not_found" {
			t.Errorf("%s after erasure = %d %s", m, r.status, r.body)
		}
	}
}

// TestPolicyDecidesLifecycle: writes, reads and erasure are decided by the
// default policies (ingest writes, services read, erasure erases).
func TestPolicyDecidesLifecycle(t *testing.T) {
	h := newHarness(t)
	h.do("PUT", "/v1/subjects/bob", h.token("ingest"), aliceBody)
	support := h.token("support")
	cases := []struct{ method, path, token, body string }{
		{"PUT", "/v1/subjects/bob", support, aliceBody},
		{"PUT", "/v1/subjects/bob", h.token("service"), aliceBody},
		{"GET", "/v1/subjects/bob", support, ""},
		{"GET", "/v1/subjects/bob", h.token("ingest"), ""},
		{"DELETE", "/v1/subjects/bob", support, ""},
		{"DELETE", "/v1/subjects/bob", h.token("ingest", "service"), ""},
	}
	for _, c := range cases {
		r := h.do(c.method, c.path, c.token, c.body)
		if r.status != http.StatusForbidden || r.errorCode(t) != "forbidden" {
			t.Errorf("%s %s = %d %s, want 403", c.method, c.path, r.status, r.body)
		}
	}
	if r := h.do("GET", "/v1/subjects/bob", h.token("service"), ""); r.status != http.StatusOK {
		t.Errorf("the record changed or vanished after forbidden calls: %d", r.status)
	}
}

func TestAuthenticationFailures(t *testing.T) {
	h := newHarness(t)
	good := h.token("service")
	parts := strings.Split(good, ".")
	other, _ := authn.LoadOrCreateDevIssuer(filepath.Join(t.TempDir(), "other"), "urn:clover:dev-issuer", "clover")
	foreign, _ := other.Mint(authn.TokenClaims{Subject: "x", Roles: []string{"service"}, Country: "IE"}, time.Hour, time.Now())
	expired, _ := h.dev.Mint(authn.TokenClaims{Subject: "x", Roles: []string{"service"}, Country: "IE"}, time.Second, time.Now().Add(-time.Hour))
	none := base64url(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "."
	hs := base64url(`{"alg":"HS256","typ":"JWT"}`) + "." + parts[1] + "." + parts[2]
	cases := map[string]string{
		"no header":      "",
		"basic auth":     "Basic dXNlcjpwYXNz",
		"bearer only":    "Bearer",
		"garbage":        "Bearer not.a.jwt",
		"alg none":       "Bearer " + none,
		"hmac":           "Bearer " + hs,
		"bad signature":  "Bearer " + parts[0] + "." + parts[1] + "." + flipB64(parts[2]),
		"unknown key":    "Bearer " + foreign,
		"expired":        "Bearer " + expired,
		"huge":           "Bearer " + strings.Repeat("a", 9000),
		"tampered claim": "Bearer " + parts[0] + "." + base64url(`{"sub":"x","roles":["service"],"country":"IE"}`) + "." + parts[2],
	}
	for name, auth := range cases {
		req := httptest.NewRequest("GET", "/v1/subjects/alice", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.gw.ServeHTTP(w, req)
		r := response{w.Code, w.Header(), w.Body.Bytes()}
		if r.status != http.StatusUnauthorized || r.errorCode(t) != "unauthenticated" {
			t.Errorf("%s: %d %s, want 401", name, r.status, r.body)
		}
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: no WWW-Authenticate header", name)
		}
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	h := newHarness(t)
	ingest, service := h.token("ingest"), h.token("service")
	big := `{"country":"IE","fields":{"bio":"` + strings.Repeat("x", 70<<10) + `"}}`
	cases := []struct {
		name, path, body string
		hdr              []string
		status           int
		code             string
	}{
		{"bad json", "/v1/subjects/c1", `{"country":`, nil, 400, "invalid_json"},
		{"not an object", "/v1/subjects/c1", `[1,2]`, nil, 400, "invalid_json"},
		{"empty", "/v1/subjects/c1", ``, nil, 400, "invalid_json"},
		{"unknown key", "/v1/subjects/c1", `{"country":"IE","fields":{},"extra":1}`, nil, 400, "invalid_json"},
		{"trailing", "/v1/subjects/c1", `{"country":"IE","fields":{}} {}`, nil, 400, "invalid_json"},
		{"wrong type", "/v1/subjects/c1", `{"country":5,"fields":{}}`, nil, 400, "invalid_json"},
		{"no country", "/v1/subjects/c1", `{"fields":{}}`, nil, 400, "invalid_body"},
		{"bad country", "/v1/subjects/c1", `{"country":"Ireland","fields":{}}`, nil, 400, "invalid_body"},
		{"no fields", "/v1/subjects/c1", `{"country":"IE"}`, nil, 400, "invalid_body"},
		{"bad id", "/v1/subjects/a%2Fb", `{"country":"IE","fields":{}}`, nil, 400, "invalid_id"},
		{"long id", "/v1/subjects/" + strings.Repeat("a", 129), `{"country":"IE","fields":{}}`, nil, 400, "invalid_id"},
		{"too large", "/v1/subjects/c1", big, nil, 413, "body_too_large"},
		{"media type", "/v1/subjects/c1", `{"country":"IE","fields":{}}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"outside", "/v1/subjects/c1", `{"country":"US","fields":{"email":"x@example.com"}}`, nil, 422, "outside_jurisdiction"},
		{"bad field", "/v1/subjects/c1", `{"country":"IE","fields":{"email":"nope","shoe":1}}`, nil, 422, "invalid_fields"},
	}
	for _, c := range cases {
		r := h.do("PUT", c.path, ingest, c.body, c.hdr...)
		if r.status != c.status || r.errorCode(t) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
	}
	r := h.do("PUT", "/v1/subjects/c1", ingest, `{"country":"IE","fields":{"email":"nope","shoe":1}}`)
	var body struct{ Error errorDetail }
	json.Unmarshal(r.body, &body)
	if diff := cmp.Diff([]string{"email", "shoe"}, body.Error.Fields); diff != "" {
		t.Errorf("invalid_fields does not name the fields (-want +got):\n%s", diff)
	}
	if r := h.do("GET", "/v1/subjects/c1", service, ""); r.status != 404 {
		t.Errorf("a refused write stored something: GET = %d %s", r.status, r.body)
	}
	for name, s := range h.stores {
		for _, p := range s.Paths() {
			if b, _ := readAll(p); bytes.Contains(b, []byte("c1")) {
				t.Errorf("site %s file %s mentions the refused subject", name, filepath.Base(p))
			}
		}
	}
}

func TestReadQueryErrors(t *testing.T) {
	h := newHarness(t)
	h.do("PUT", "/v1/subjects/d1", h.token("ingest"), aliceBody)
	service := h.token("service")
	cases := map[string]string{
		"/v1/subjects/d1?fields=email,shoe_size": "unknown_field",
		"/v1/subjects/d1?fields=":                "unknown_field",
		"/v1/subjects/d1?fields=email&fields=x":  "invalid_query",
		"/v1/subjects/d1?limit=1":                "invalid_query",
		"/v1/subjects/d%20d":                     "invalid_id",
	}
	for path, code := range cases {
		r := h.do("GET", path, service, "")
		if r.status != 400 || r.errorCode(t) != code {
			t.Errorf("GET %s = %d %s, want 400 %s", path, r.status, r.body, code)
		}
	}
}

func TestUnknownRoutesAndMethodsAreJSON(t *testing.T) {
	h := newHarness(t)
	if r := h.do("GET", "/v2/whatever", "", ""); r.status != 404 || r.errorCode(t) != "not_found" {
		t.Errorf("unknown path = %d %s", r.status, r.body)
	}
	r := h.do("POST", "/v1/subjects/x", h.token("ingest"), "{}")
	if r.status != 405 || r.errorCode(t) != "method_not_allowed" || r.header.Get("Allow") == "" {
		t.Errorf("POST = %d %s allow=%q", r.status, r.body, r.header.Get("Allow"))
	}
}

func TestOperationalEndpoints(t *testing.T) {
	h := newHarness(t)
	if r := h.do("GET", "/healthz", "", ""); r.status != 200 || r.json(t)["status"] != "ok" {
		t.Errorf("healthz = %d %s", r.status, r.body)
	}
	r := h.do("GET", "/.well-known/jwks.json", "", "")
	var jwks struct{ Keys []map[string]any }
	if r.status != 200 || json.Unmarshal(r.body, &jwks) != nil || len(jwks.Keys) != 1 || jwks.Keys[0]["d"] != nil {
		t.Errorf("jwks = %d %s", r.status, r.body)
	}
	h.do("GET", "/v1/subjects/nobody", h.token("service"), "")
	r = h.do("GET", "/metrics", "", "")
	for _, want := range []string{
		`clover_http_requests_total{code="404",route="GET /v1/subjects/{id}"} 1`,
		`clover_http_request_duration_seconds_bucket{route="GET /v1/subjects/{id}"`,
		`clover_store_operation_duration_seconds_count{op="get_record",site="no-hamar"} 1`,
	} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if bytes.Contains(r.body, []byte("nobody")) {
		t.Error("metrics mention a subject id")
	}
}

// TestOpenAPICoversRoutes keeps openapi.json true: every route the gateway
// serves is documented, and nothing documented is missing.
func TestOpenAPICoversRoutes(t *testing.T) {
	h := newHarness(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	served := h.gw.Routes()
	slices.Sort(documented)
	slices.Sort(served)
	if diff := cmp.Diff(served, documented); diff != "" {
		t.Errorf("routes served vs documented (-served +documented):\n%s", diff)
	}
	if r := h.do("GET", "/openapi.json", "", ""); r.status != 200 || !bytes.Equal(r.body, OpenAPI) {
		t.Errorf("/openapi.json = %d", r.status)
	}
}

func FuzzPutSubject(f *testing.F) {
	f.Add("alice", aliceBody)
	f.Add("b", `{"country":"NO","fields":{"phone":"+47 912 34 567"}}`)
	f.Add("c", `{"country":"IE","fields":{"location":{"lat":1e309,"lon":0}}}`)
	f.Add("d", `{"country":"IE","fields":{"email":null}}`)
	f.Add("..", `{"country":"IE","fields":{"ip_address":"::ffff:1.2.3.4"}}`)
	h := newHarness(&testing.T{})
	ingest := h.token("ingest")
	f.Fuzz(func(t *testing.T, id, body string) {
		req := httptest.NewRequest("PUT", "/", strings.NewReader(body))
		req.URL.Path = "/v1/subjects/" + id
		req.Header.Set("Authorization", "Bearer "+ingest)
		w := httptest.NewRecorder()
		h.gw.ServeHTTP(w, req)
		switch w.Code {
		case 200, 201:
		case 400, 404, 405, 413, 415, 422:
			var e struct{ Error errorDetail }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%d without a JSON error: %s", w.Code, w.Body)
			}
		default:
			t.Fatalf("PUT %q %q = %d %s", id, body, w.Code, w.Body)
		}
	})
}
