// Package gateway is Clover's HTTP API: it authenticates each caller,
// decides what the caller may do, and wires the request through to the vault
// (placement, encryption, storage). Every error is a JSON object
// {"error":{"code":...,"message":...}} with a precise status; messages never
// carry personal data or token content.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/pseudonym"
	"github.com/cloverenclave/clover/schema"
	"github.com/cloverenclave/clover/transfer"
	"github.com/cloverenclave/clover/vault"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Verifier turns a bearer token into a principal; *authn.Verifier is one.
type Verifier interface {
	Verify(ctx context.Context, raw string) (authn.Principal, error)
}

// Config holds what the gateway needs besides its collaborators.
type Config struct {
	// MaxBodyBytes caps request bodies; larger bodies get 413.
	MaxBodyBytes int64
	// JWKS, if set, is served at /.well-known/jwks.json (the development
	// issuer's public keys).
	JWKS []byte
	// Version is reported by /healthz.
	Version string
	// Purposes are the accepted values of the Clover-Purpose header.
	Purposes []string
}

// Parts are the gateway's collaborators.
type Parts struct {
	Vault       *vault.Vault
	Verifier    Verifier
	Policies    *policy.Set
	Transformer *pseudonym.Transformer
	// SIV reverses the reversible tokens of POST /v1/reidentify.
	SIV *pseudonym.SIV
	// Audit records every decision before the gateway answers (required).
	Audit AuditLog
	// LogReader serves proofs and the log's tiles; nil leaves those routes out.
	LogReader LogReader
	// Destinations are where POST /v1/transfers may send data.
	Destinations []transfer.Destination
	// LogKey keys the pseudonyms that name subjects in the log.
	LogKey  []byte
	Metrics *Metrics
	Log     *slog.Logger
	// ReloadPolicies loads the policy set afresh (from the configured
	// directory); nil means policies cannot be reloaded.
	ReloadPolicies func() (*policy.Set, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AccessIndex, if set, indexes the log's access entries by subject and
	// serves GET /v1/subjects/{id}/accesses (accesses.go); nil leaves the
	// route out. Gateway.Close stops its feeding goroutine.
	AccessIndex AccessIndex
	// Ledger records every transfer and counts the destinations' daily
	// quotas (transfers.go); *ledger.Ledger is one. Nil: an in-memory
	// ledger, whose quotas restart from zero with the process.
	Ledger TransferLedger
}

// Gateway serves the API. Build it with New.
type Gateway struct {
	cfg          Config
	vault        *vault.Vault
	verifier     Verifier
	transformer  *pseudonym.Transformer
	siv          *pseudonym.SIV
	audit        AuditLog
	logReader    LogReader
	logKey       []byte
	pseudonyms   *pseudonymMACs // subject pseudonyms under logKey (audit.go)
	reqIDs       *requestIDs
	destinations map[string]transfer.Destination
	ledger       TransferLedger // nil only if no ledger could be opened (transfers.go)
	policies     atomic.Pointer[policy.Set]
	reload       func() (*policy.Set, error)
	reloadMu     sync.Mutex
	purposes     map[string]bool
	allFields    []schema.Field // the schema's fields, in order; read-only
	now          func() time.Time
	log          *slog.Logger
	metrics      *Metrics
	mux          *http.ServeMux
	routes       []string
	accesses     *accessIndexer // nil: no access index (accesses.go)
	responses    sync.Pool      // of *[]byte: encoding buffers of read responses (subjects.go)
}

// New wires the API handlers.
func New(cfg Config, p Parts) *Gateway {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	g := &Gateway{cfg: cfg, vault: p.Vault, verifier: p.Verifier, transformer: p.Transformer, siv: p.SIV,
		audit: p.Audit, logReader: p.LogReader, logKey: p.LogKey, pseudonyms: newPseudonymMACs(p.LogKey), reqIDs: newRequestIDs(),
		reload: p.ReloadPolicies, now: p.Now, log: p.Log, metrics: p.Metrics, mux: http.NewServeMux(),
		purposes: map[string]bool{}}
	if g.now == nil {
		g.now = time.Now
	}
	for _, pu := range cfg.Purposes {
		g.purposes[pu] = true
	}
	g.policies.Store(p.Policies)
	g.destinations = map[string]transfer.Destination{}
	for _, d := range p.Destinations {
		g.destinations[d.Name] = d
	}
	g.allFields = p.Vault.Schema().Fields()
	g.ledger = g.transferLedger(p.Ledger)
	metrics := p.Metrics

	g.handle("PUT /v1/subjects/{id}", g.authenticated(g.putSubject))
	g.handle("GET /v1/subjects/{id}", g.authenticated(g.getSubject))
	g.handle("DELETE /v1/subjects/{id}", g.authenticated(g.deleteSubject))
	g.handle("POST /v1/reidentify", g.authenticated(g.reidentify))
	g.handle("POST /v1/transfers", g.authenticated(g.postTransfer))
	g.handle("GET /v1/transfers", g.authenticated(g.listTransfers))
	g.handle("POST /v1/admin/policies/reload", g.authenticated(g.reloadPolicies))
	g.handle("GET /v1/admin/policies", g.authenticated(g.listPolicies))
	g.handle("GET /healthz", g.healthz)
	g.handle("GET /openapi.json", serveOpenAPI)
	g.handle("GET /metrics", promhttp.HandlerFor(metrics.registry, promhttp.HandlerOpts{}).ServeHTTP)
	if p.LogReader != nil {
		g.handle("GET /v1/log/proof/inclusion", g.inclusionProof)
		g.handle("GET /v1/log/proof/consistency", g.consistencyProof)
		g.handle("GET /log/", http.StripPrefix("/log", p.LogReader.Handler()).ServeHTTP)
	}
	if cfg.JWKS != nil {
		g.handle("GET /.well-known/jwks.json", g.jwks)
	}
	// Data-subject transparency (accesses.go).
	if g.accesses = newAccessIndexer(p.AccessIndex, g.log); g.accesses != nil {
		g.handle("GET /v1/subjects/{id}/accesses", g.authenticated(g.listAccesses))
		g.mux.HandleFunc("/v1/subjects/{id}/accesses", methodNotAllowed("GET"))
	}
	// Everything else is a JSON 404 or 405, not net/http's plain text.
	g.mux.HandleFunc("/v1/subjects/{id}", methodNotAllowed("GET, PUT, DELETE"))
	g.mux.HandleFunc("/v1/reidentify", methodNotAllowed("POST"))
	g.mux.HandleFunc("/v1/transfers", methodNotAllowed("GET, POST"))
	g.mux.HandleFunc("/v1/admin/policies/reload", methodNotAllowed("POST"))
	g.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return g
}

// Routes lists the "METHOD /path" patterns the gateway serves.
func (g *Gateway) Routes() []string { return slices.Clone(g.routes) }

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// net/http would redirect a path with "." or ".." segments or doubled
	// slashes; an API client gets a precise 400 instead.
	if p := r.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p {
		writeError(w, http.StatusBadRequest, "invalid_path", "the path is not in canonical form (no '.', '..' or empty segments)")
		return
	}
	g.mux.ServeHTTP(w, r)
}

// handle registers a route with metrics and an access log line that names
// the route pattern, never the path (paths carry subject ids).
func (g *Gateway) handle(pattern string, h http.HandlerFunc) {
	g.routes = append(g.routes, pattern)
	requests, latency := g.metrics.route(pattern)
	g.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r)
		d := time.Since(start)
		requests(sw.status)
		latency.Observe(d.Seconds())
		if g.log.Enabled(r.Context(), slog.LevelDebug) || sw.status >= 500 {
			level := slog.LevelDebug
			if sw.status >= 500 {
				level = slog.LevelError
			}
			g.log.LogAttrs(r.Context(), level, "request",
				slog.String("route", pattern), slog.Int("status", sw.status), slog.Duration("duration", d))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (g *Gateway) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": g.cfg.Version})
}

func (g *Gateway) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	w.Write(g.cfg.JWKS)
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" is not allowed here; allowed: "+allow)
	}
}

// Metrics are the gateway's Prometheus collectors, in a registry of their own.
type Metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	store    *prometheus.HistogramVec
	// logFailures counts requests refused because the audit log could not
	// record them.
	logFailures prometheus.Counter
}

// NewMetrics makes the collectors and a registry holding them and the Go
// runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clover_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clover_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "clover_store_operation_duration_seconds", Help: "Store operation latency by site and operation.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1, .5},
		}, []string{"site", "op"}),
	}
	m.logFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clover_audit_log_failures_total", Help: "Requests refused (503) because the audit log could not record them.",
	})
	m.registry.MustRegister(m.requests, m.latency, m.store, m.logFailures,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

func (m *Metrics) route(pattern string) (func(status int), prometheus.Observer) {
	counters := map[int]prometheus.Counter{}
	for _, c := range []int{200, 201, 400, 401, 403, 404, 413, 415, 422, 500, 503} {
		counters[c] = m.requests.WithLabelValues(pattern, itoa(c))
	}
	return func(status int) {
		if c, ok := counters[status]; ok {
			c.Inc()
			return
		}
		m.requests.WithLabelValues(pattern, itoa(status)).Inc()
	}, m.latency.WithLabelValues(pattern)
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func slogErr(err error) slog.Attr { return slog.String("error", err.Error()) }
