package monitor

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cloverenclave/clover/monitor/incident"
)

// OpenAPI is the monitor API's OpenAPI 3.1 document, served at
// /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// Handler serves the monitor's HTTP API (documented in openapi.json):
//
//   - POST /add-checkpoint: the C2SP tlog-witness endpoint, for the
//     enclave's log (authenticated by the log's signature, not a token);
//   - /v1/incidents, /v1/incidents/{id}, .../ack, .../resolve, /v1/probes
//     and /v1/status: for operators, with a bearer token from the
//     operators file;
//   - /healthz and /metrics.
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/add-checkpoint", m.witness.Handler())
	api := m.store.Handler(m.operators.who)
	mux.Handle("/v1/incidents", api)
	mux.Handle("/v1/incidents/", api)
	mux.Handle("/v1/probes", api)
	mux.HandleFunc("GET /v1/status", m.serveStatus)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(OpenAPI)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return mux
}

func (m *Monitor) serveStatus(w http.ResponseWriter, r *http.Request) {
	if _, ok := m.operators.who(r); !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clover-monitor"`)
		writeError(w, http.StatusUnauthorized, "unauthenticated", "an operator bearer token is required")
		return
	}
	writeJSON(w, http.StatusOK, m.Status())
}

// Status returns the monitor's state.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// webhookTargets reads the webhooks' secrets.
func webhookTargets(cfg *Config) ([]incident.Target, error) {
	var out []incident.Target
	for i, w := range cfg.Webhooks {
		path := cfg.Path(w.SecretFile)
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("webhooks[%d] %s: secret file: %w", i, w.Name, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("webhooks[%d] %s: secret file %s has mode %v; chmod 600 it", i, w.Name, path, fi.Mode().Perm())
		}
		secret, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("webhooks[%d] %s: secret file: %w", i, w.Name, err)
		}
		t := incident.Target{Name: w.Name, URL: w.URL, Secret: trimNewline(secret)}
		if err := incident.ValidateTarget(t); err != nil {
			return nil, fmt.Errorf("webhooks[%d] %s: %w", i, w.Name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
