package replay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/gateway"
	"github.com/cloverenclave/clover/keys"
	"github.com/cloverenclave/clover/monitor/replay"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/store/sqlite"
	"github.com/cloverenclave/clover/transfer"
	"github.com/cloverenclave/clover/vault"
	"github.com/google/go-cmp/cmp"
)

// memLog is an in-memory audit log that keeps each entry as the real log
// stores it: its canonical encoding.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
}

func (m *memLog) AppendEntry(_ context.Context, e *auditlog.Entry) (uint64, error) {
	b, err := auditlog.Encode(e)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, b)
	return uint64(len(m.entries) - 1), nil
}

// decoded returns every entry, decoded as the monitor reads them.
func (m *memLog) decoded(t *testing.T) []*auditlog.Entry {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*auditlog.Entry, len(m.entries))
	for i, b := range m.entries {
		e, err := auditlog.Decode(b)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		out[i] = e
	}
	return out
}

// testGateway is a real gateway over SQLite stores and the development
// issuer, logging to a memLog; its policies reload to the stricter set.
type testGateway struct {
	t   *testing.T
	gw  *gateway.Gateway
	dev *authn.DevIssuer
	log *memLog
}

func newTestGateway(t *testing.T) *testGateway {
	t.Helper()
	dir := t.TempDir()
	enc, err := enclave.New(enclave.Default())
	if err != nil {
		t.Fatal(err)
	}
	sch, err := schema.New(schema.Default())
	if err != nil {
		t.Fatal(err)
	}
	var sites []vault.Site
	for _, s := range enc.Sites() {
		st, err := sqlite.Open(filepath.Join(dir, "sites", s.Name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		kek, err := keys.LoadOrCreateFileKEK(filepath.Join(dir, "kek", s.Name+".key"), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sites = append(sites, vault.Site{Name: s.Name, Store: st, KEK: kek})
	}
	v, err := vault.New(enc, sch, sites)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := authn.LoadOrCreateDevIssuer(filepath.Join(dir, "dev-issuer"), "urn:clover:dev-issuer", "clover")
	if err != nil {
		t.Fatal(err)
	}
	ver, err := authn.NewVerifier(authn.Config{Issuer: "urn:clover:dev-issuer", Audience: "clover"}, dev.Keys(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
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
	tg := &testGateway{t: t, dev: dev, log: &memLog{}}
	tg.gw = gateway.New(gateway.Config{MaxBodyBytes: 64 << 10, Version: "test", Purposes: []string{"support", "analytics", "service"}},
		gateway.Parts{Vault: v, Verifier: ver, Policies: defaultSet(t), Transformer: tr, SIV: siv,
			Metrics: gateway.NewMetrics(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Audit: tg.log, LogKey: key(32, 9), Destinations: transfer.Defaults(),
			ReloadPolicies: func() (*policy.Set, error) { return policy.Load(stricterFS(t)) }})
	t.Cleanup(func() { tg.gw.Close() })
	// As clover serve does before it listens.
	if _, err := tg.gw.RecordPolicy(context.Background(), tg.gw.Policies(), "start"); err != nil {
		t.Fatal(err)
	}
	return tg
}

// token mints a token for a caller working from country.
func (tg *testGateway) token(country string, roles ...string) string {
	tg.t.Helper()
	tok, err := tg.dev.Mint(authn.TokenClaims{Subject: "caller-" + strings.ToLower(country), Roles: roles, Country: country}, time.Hour, time.Now())
	if err != nil {
		tg.t.Fatal(err)
	}
	return tok
}

// do sends a request and returns its status and body.
func (tg *testGateway) do(method, path, token, body string, hdr ...string) (int, []byte) {
	tg.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	tg.gw.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

const (
	niamh = `{"country":"IE","fields":{"email":"niamh.kelly@example.ie","full_name":"Niamh Kelly","birth_date":"1988-03-02","phone":"+353 87 123 4567","ip_address":"203.0.113.77","interests":"hurling","health_condition":"asthma","location":{"lat":53.34,"lon":-6.26}}}`
	ola   = `{"country":"NO","fields":{"email":"ola@example.no","full_name":"Ola Nordmann","birth_date":"1979-11-30","interests":"skiing"}}`
)

// drive sends the gateway a spread of requests: writes, reads by several
// roles, purposes and countries (some fields, all fields, a missing
// subject), re-identifications, a transfer and erasures, allowed and
// denied.
func (tg *testGateway) drive() {
	t := tg.t
	t.Helper()
	if code, body := tg.do("PUT", "/v1/subjects/niamh", tg.token("IE", "ingest"), niamh); code != 201 && code != 200 {
		t.Fatalf("PUT niamh = %d %s", code, body)
	}
	if code, body := tg.do("PUT", "/v1/subjects/ola", tg.token("IE", "ingest", "service"), ola); code != 201 && code != 200 {
		t.Fatalf("PUT ola = %d %s", code, body)
	}
	tg.do("PUT", "/v1/subjects/x", tg.token("IE", "support"), ola) // denied
	// A crowd in one age band, so that a transfer passes its k-anonymity
	// check.
	for i := range 8 {
		body := fmt.Sprintf(`{"country":"IE","fields":{"email":"p%d@example.ie","birth_date":"1990-03-0%d","interests":"topic-%d"}}`, i, i+1, i)
		if code, body := tg.do("PUT", fmt.Sprintf("/v1/subjects/crowd-%d", i), tg.token("IE", "ingest"), body); code != 201 && code != 200 {
			t.Fatalf("PUT crowd-%d = %d %s", i, code, body)
		}
	}
	ticket := []string{"Clover-Purpose", "support", "Clover-Justification", "TICKET-4711"}
	reads := []struct {
		token string
		hdr   []string
	}{
		{tg.token("IE", "support"), ticket},
		{tg.token("CN", "support"), ticket},
		{tg.token("IE", "support"), []string{"Clover-Purpose", "support"}},
		{tg.token("DE", "analyst"), []string{"Clover-Purpose", "analytics"}},
		{tg.token("IE", "service"), nil},
		{tg.token("US", "service"), []string{"Clover-Purpose", "service"}},
		{tg.token("IE", "intern"), nil},
		{tg.token("NO", "support", "analyst"), []string{"Clover-Purpose", "analytics"}},
	}
	for _, r := range reads {
		for _, q := range []string{"", "?fields=email,birth_date", "?fields=interests,ip_address,health_condition"} {
			for _, id := range []string{"niamh", "ola", "ghost"} {
				tg.do("GET", "/v1/subjects/"+id+q, r.token, "", r.hdr...)
			}
		}
	}
	// A reversible token of full_name, re-identified by whom policy allows
	// and refused to others.
	code, body := tg.do("GET", "/v1/subjects/niamh?fields=full_name", tg.token("IE", "support"), "", "Clover-Purpose", "support")
	var got struct{ Fields map[string]string }
	if err := json.Unmarshal(body, &got); code != 200 || err != nil || !strings.HasPrefix(got.Fields["full_name"], "sv_") {
		t.Fatalf("support read of full_name = %d %s", code, body)
	}
	reid := `{"field":"full_name","token":"` + got.Fields["full_name"] + `"}`
	if code, body := tg.do("POST", "/v1/reidentify", tg.token("IE", "support"), reid, ticket...); code != 200 {
		t.Fatalf("reidentify = %d %s", code, body)
	}
	tg.do("POST", "/v1/reidentify", tg.token("US", "support"), reid, ticket...)
	tg.do("POST", "/v1/reidentify", tg.token("IE", "support"), `{"field":"full_name","token":"sv_AAAA"}`, ticket...)
	if code, body := tg.do("POST", "/v1/transfers", tg.token("IE", "transfer-officer"), `{"destination":"us-analytics","purpose":"analytics"}`); code != 200 {
		t.Fatalf("transfer = %d %s", code, body)
	}
	tg.do("POST", "/v1/transfers", tg.token("IE", "analyst"), `{"destination":"us-analytics","purpose":"analytics"}`)
	tg.do("DELETE", "/v1/subjects/ola", tg.token("IE", "support"), "")
	if code, body := tg.do("DELETE", "/v1/subjects/ola", tg.token("IE", "dpo"), ""); code != 200 {
		t.Fatalf("erase = %d %s", code, body)
	}
}

// TestGatewayEntriesReplay replays what a real gateway logged, across a
// reload to a stricter set: the replay agrees with every entry, and a
// forged form in any read is caught.
func TestGatewayEntriesReplay(t *testing.T) {
	tg := newTestGateway(t)
	tg.drive()
	if _, err := tg.gw.ReloadPolicies(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	tg.drive()
	entries := tg.log.decoded(t)

	count := map[string]int{}
	for _, e := range entries {
		count[string(e.Kind)+" "+string(e.Decision)]++
		if e.Kind == auditlog.KindPolicy && len(e.Schema) != len(schema.Default()) {
			t.Fatalf("the gateway's policy entry records %d schema fields, want %d", len(e.Schema), len(schema.Default()))
		}
	}
	for _, k := range []string{"policy ", "decision allow", "decision deny", "write allow", "write deny", "erase allow", "erase deny",
		"reidentify allow", "reidentify deny", "transfer allow", "transfer deny"} {
		if count[k] == 0 {
			t.Errorf("the gateway logged no %q entry: %v", k, count)
		}
	}
	r := replay.New()
	for i, e := range entries {
		if ds := r.Observe(uint64(i), e); len(ds) != 0 {
			t.Errorf("disagreements on the gateway's own entry %d (%s): %v", i, e.Kind, ds)
		}
	}

	// Forge every field each read released in a protected form, one at a
	// time, to raw: a "form" disagreement naming the field. The forged
	// entry is observed by a Replayer restored from a snapshot of the
	// honest replay at that point.
	honest, perSet := replay.New(), map[string]int{}
	for i, e := range entries {
		if e.Kind == auditlog.KindDecision {
			index, b, ok := honest.Snapshot()
			if !ok {
				t.Fatalf("no snapshot at entry %d", i)
			}
			for j, f := range e.Fields {
				if f.Form == string(policy.Raw) || f.Form == string(policy.Withheld) {
					continue
				}
				r := replay.New()
				if err := r.Restore(index, b); err != nil {
					t.Fatal(err)
				}
				bad := *e
				bad.Fields = append([]auditlog.Field(nil), e.Fields...)
				bad.Fields[j].Form = string(policy.Raw)
				ds := r.Observe(uint64(i), canonical(t, &bad))
				want := []replay.Disagreement{{Index: uint64(i), Kind: replay.KindForm, Field: f.Name, Released: "raw", Allowed: f.Form}}
				if diff := cmp.Diff(want, ds, cmpMessageSet()); diff != "" {
					t.Fatalf("entry %d, field %s forged raw (-want +got):\n%s", i, f.Name, diff)
				}
				perSet[e.Policy.Digest]++
			}
		}
		honest.Observe(uint64(i), e)
	}
	if len(perSet) != 2 {
		t.Errorf("forged reads under %d policy sets, want both", len(perSet))
	}
}
