package monitor

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/monitor/incident"
)

// TestOpenAPIMatchesServer requests every documented route and checks the
// monitor serves it (not the catch-all 404), and that /openapi.json is the
// document.
func TestOpenAPIMatchesServer(t *testing.T) {
	dir := t.TempDir()
	vkey := benchLog(t, dir, 10)
	m, err := New(context.Background(), benchConfig(t, vkey), Options{Fetcher: auditlog.DirFetcher(filepath.Join(dir, "tree"))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	created, err := m.Store().Commit(context.Background(), incident.Batch{Incidents: []incident.Incident{{Key: "k", Rule: "test", Severity: "low", Title: "a test incident"}}})
	if err != nil || len(created) != 1 {
		t.Fatal(created, err)
	}
	id := created[0].ID
	b, _ := os.ReadFile(filepath.Join(m.cfg.Data, "operators"))
	tok := strings.Fields(strings.Split(string(b), "\n")[1])[1]
	h := m.Handler()

	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %v (version %q)", err, doc.OpenAPI)
	}
	n := 0
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			n++
			p := strings.ReplaceAll(path, "{id}", jsonInt(id))
			req := httptest.NewRequest(strings.ToUpper(method), p, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			// The witness refuses an empty body (400) and the rest answer;
			// nothing documented may fall through to "no such endpoint".
			if rec.Code == http.StatusNotFound || rec.Code == http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d %s", strings.ToUpper(method), p, rec.Code, rec.Body.String())
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d operations documented", n)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/nowhere", nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "not_found") {
		t.Errorf("GET /nowhere = %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("GET /v1/status without a token = %d", rec.Code)
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
