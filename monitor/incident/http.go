package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// maxBody is the most bytes of a request body the API reads.
const maxBody = 16 << 10

// Handler returns the incident API. who authenticates a request and returns
// the operator's name; the handler answers 401 when it returns false or an
// empty name. Routes
// and answers are described in the package comment.
func (s *Store) Handler(who func(*http.Request) (string, bool)) http.Handler {
	a := &api{store: s}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/incidents", only(http.MethodGet, a.list))
	mux.HandleFunc("/v1/incidents/{id}", only(http.MethodGet, a.get))
	mux.HandleFunc("/v1/incidents/{id}/ack", only(http.MethodPost, a.transition(StateAcknowledged)))
	mux.HandleFunc("/v1/incidents/{id}/resolve", only(http.MethodPost, a.transition(StateResolved)))
	mux.HandleFunc("/v1/probes", only(http.MethodGet, a.probes))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		operator, ok := who(r)
		if !ok || operator == "" {
			writeError(w, http.StatusUnauthorized, "unauthorized", "authentication required")
			return
		}
		mux.ServeHTTP(w, r.WithContext(withOperator(r.Context(), operator)))
	})
}

type api struct{ store *Store }

type operatorKey struct{}

func withOperator(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, operatorKey{}, name)
}

// operator returns the name the Handler's who function gave.
func operator(ctx context.Context) string {
	name, _ := ctx.Value(operatorKey{}).(string)
	return name
}

func only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+method)
			return
		}
		h(w, r)
	}
}

// query returns the request's query parameters, rejecting any not in allowed
// and any given twice.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errors.New("query does not parse")
	}
	for k, v := range q {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			return nil, fmt.Errorf("unknown query parameter %q", k)
		}
		if len(v) > 1 {
			return nil, fmt.Errorf("query parameter %q given %d times", k, len(v))
		}
	}
	return q, nil
}

// positive parses a query value or path segment as an integer in [1, maxV].
func positive(name, v string, maxV int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > maxV || strconv.FormatInt(n, 10) != v {
		return 0, fmt.Errorf("%s %q is not an integer from 1 to %d", name, v, maxV)
	}
	return n, nil
}

func limitParam(q url.Values) (int, error) {
	if !q.Has("limit") {
		return DefaultLimit, nil
	}
	n, err := positive("limit", q.Get("limit"), MaxLimit)
	return int(n), err
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	q, err := query(r, "state", "severity", "rule", "limit", "after_id")
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	f := Filter{State: q.Get("state"), Severity: q.Get("severity"), Rule: q.Get("rule")}
	if f.Limit, err = limitParam(q); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if q.Has("after_id") {
		if f.AfterID, err = positive("after_id", q.Get("after_id"), 1<<63-1); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
	}
	list, err := a.store.Incidents(r.Context(), f)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": list})
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	id, ok := incidentID(w, r)
	if !ok {
		return
	}
	if _, err := query(r); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	in, err := a.store.Incident(r.Context(), id)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": in})
}

func (a *api) transition(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := incidentID(w, r)
		if !ok {
			return
		}
		if _, err := query(r); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		var body struct {
			Note string `json:"note"`
		}
		if err := decodeBody(w, r, &body); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		if err := checkNote(body.Note); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		in, err := a.store.Transition(r.Context(), id, to, operator(r.Context()), body.Note)
		if err != nil {
			storeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"incident": in})
	}
}

func (a *api) probes(w http.ResponseWriter, r *http.Request) {
	q, err := query(r, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	limit, err := limitParam(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	list, err := a.store.Probes(r.Context(), limit)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"probes": list})
}

func incidentID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := positive("incident id", r.PathValue("id"), 1<<63-1)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return 0, false
	}
	return id, true
}

// decodeBody decodes an optional JSON object into v: an empty body leaves v
// as it is; unknown fields, trailing data and bodies over maxBody are errors.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return fmt.Errorf("body: more than %d bytes or unreadable", maxBody)
	}
	if len(data) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("body: data after the JSON object")
	}
	return nil
}

// storeError answers the error of a store call.
func storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrInvalidTransition):
		writeError(w, http.StatusConflict, "invalid_transition", err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
