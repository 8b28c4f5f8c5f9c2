package incident

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func apiStore(t *testing.T) (*Store, http.Handler) {
	t.Helper()
	s := openStore(t, WithClock(func() time.Time { return t0 }))
	commit(t, s, Batch{
		Incidents: []Incident{alert("a", Low, 1), alert("b", High, 2), alert("c", High, 3)},
		Probes:    []Probe{{ID: "p1", Started: t0, Outcome: ProbePending}, {ID: "p2", Started: t0.Add(time.Minute), Outcome: ProbePassed, Finished: t0.Add(2 * time.Minute)}},
	})
	who := func(r *http.Request) (string, bool) {
		switch r.Header.Get("Authorization") {
		case "Bearer op":
			return "operator-1", true
		case "Bearer empty":
			return "", true
		}
		return "", false
	}
	return s, s.Handler(who)
}

type apiResult struct {
	status int
	header http.Header
	body   map[string]json.RawMessage
	raw    string
}

func call(t *testing.T, h http.Handler, method, target, body string, auth string) apiResult {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	}
	if auth != "" {
		r.Header.Set("Authorization", "Bearer "+auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := apiResult{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &res.body); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, target, w.Body.String(), err)
	}
	return res
}

func TestAPIErrors(t *testing.T) {
	_, h := apiStore(t)
	tests := []struct {
		method, target, body, auth string
		status                     int
		code                       string
	}{
		{"GET", "/v1/incidents", "", "", 401, "unauthorized"},
		{"GET", "/v1/incidents", "", "wrong", 401, "unauthorized"},
		{"GET", "/v1/incidents", "", "empty", 401, "unauthorized"},
		{"POST", "/v1/incidents/1/ack", "", "", 401, "unauthorized"},
		{"GET", "/v1/incidents?state=closed", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents?severity=urgent", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents?limit=0", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents?limit=1001", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents?limit=01", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents?limit=x", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents?after_id=-1", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents?colour=red", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents?rule=a&rule=b", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents?%zz", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents/abc", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents/0", "", "op", 400, "bad_request"},
		{"GET", "/v1/incidents/1?x=1", "", "op", 400, "bad_request"},
		{"GET", "/v1/probes?limit=2000", "", "op", 400, "bad_request"},
		{"POST", "/v1/incidents/1/ack", `{"note":"x","extra":1}`, "op", 400, "bad_request"},
		{"POST", "/v1/incidents/1/ack", `{"note":`, "op", 400, "bad_request"},
		{"POST", "/v1/incidents/1/ack", `{"note":"a"} {}`, "op", 400, "bad_request"},
		{"POST", "/v1/incidents/1/ack", `["note"]`, "op", 400, "bad_request"},
		{"POST", "/v1/incidents/1/ack", `{"note":"` + strings.Repeat("é", MaxNote+1) + `"}`, "op", 400, "bad_request"},
		{"POST", "/v1/incidents/1/ack", `{"note":"` + strings.Repeat("x", maxBody) + `"}`, "op", 400, "bad_request"},
		{"GET", "/v1/incidents/99", "", "op", 404, "not_found"},
		{"POST", "/v1/incidents/99/resolve", "", "op", 404, "not_found"},
		{"GET", "/v1/nothing", "", "op", 404, "not_found"},
		{"GET", "/v1/incidents/1/notes", "", "op", 404, "not_found"},
		{"POST", "/v1/incidents", "", "op", 405, "method_not_allowed"},
		{"DELETE", "/v1/incidents/1", "", "op", 405, "method_not_allowed"},
		{"GET", "/v1/incidents/1/ack", "", "op", 405, "method_not_allowed"},
		{"PUT", "/v1/probes", "", "op", 405, "method_not_allowed"},
	}
	for _, tc := range tests {
		res := call(t, h, tc.method, tc.target, tc.body, tc.auth)
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(res.body["error"], &e); err != nil {
			t.Errorf("%s %s: error body %q: %v", tc.method, tc.target, res.raw, err)
		}
		if res.status != tc.status || e.Code != tc.code || e.Message == "" {
			t.Errorf("%s %s = %d %q, want %d %q (%s)", tc.method, tc.target, res.status, e.Code, tc.status, tc.code, res.raw)
		}
		if res.status == 405 && res.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.target)
		}
	}
}

func TestAPIIncidents(t *testing.T) {
	s, h := apiStore(t)
	list := func(target string) []Incident {
		t.Helper()
		res := call(t, h, "GET", target, "", "op")
		if res.status != 200 {
			t.Fatalf("GET %s = %d %s", target, res.status, res.raw)
		}
		var out []Incident
		if err := json.Unmarshal(res.body["incidents"], &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	ids := func(in []Incident) []int64 {
		out := []int64{}
		for _, x := range in {
			out = append(out, x.ID)
		}
		return out
	}
	for target, want := range map[string][]int64{
		"/v1/incidents":                                          {3, 2, 1},
		"/v1/incidents?severity=high":                            {3, 2},
		"/v1/incidents?limit=1":                                  {3},
		"/v1/incidents?limit=2&after_id=3":                       {2, 1},
		"/v1/incidents?rule=fork":                                {},
		"/v1/incidents?state=open&rule=bulk_access&severity=low": {1},
	} {
		if got := ids(list(target)); !cmp.Equal(got, want) {
			t.Errorf("GET %s = %v, want %v", target, got, want)
		}
	}
	if res := call(t, h, "GET", "/v1/incidents?rule=fork", "", "op"); !strings.Contains(res.raw, `"incidents":[]`) {
		t.Errorf("empty listing is %s, want an empty array", res.raw)
	}

	res := call(t, h, "GET", "/v1/incidents/2", "", "op")
	var one Incident
	if err := json.Unmarshal(res.body["incident"], &one); err != nil || res.status != 200 || one.ID != 2 || one.Key != "b" {
		t.Errorf("GET /v1/incidents/2 = %d %s", res.status, res.raw)
	}

	// ack with a note, then ack again (409), then resolve with no body.
	res = call(t, h, "POST", "/v1/incidents/2/ack", `{"note":"on it"}`, "op")
	if err := json.Unmarshal(res.body["incident"], &one); err != nil || res.status != 200 ||
		one.State != StateAcknowledged || one.StateBy != "operator-1" || one.StateNote != "on it" || !one.StateAt.Equal(t0) {
		t.Errorf("ack = %d %s", res.status, res.raw)
	}
	if res := call(t, h, "POST", "/v1/incidents/2/ack", "", "op"); res.status != 409 || !strings.Contains(res.raw, `"invalid_transition"`) {
		t.Errorf("second ack = %d %s, want 409", res.status, res.raw)
	}
	if res := call(t, h, "POST", "/v1/incidents/2/resolve", "", "op"); res.status != 200 {
		t.Errorf("resolve = %d %s", res.status, res.raw)
	}
	if res := call(t, h, "POST", "/v1/incidents/2/resolve", `{}`, "op"); res.status != 409 {
		t.Errorf("second resolve = %d %s, want 409", res.status, res.raw)
	}
	got, err := s.Incident(t.Context(), 2)
	if err != nil || got.State != StateResolved || got.StateBy != "operator-1" {
		t.Errorf("stored after resolve: %+v, %v", got, err)
	}
}

func TestAPIProbes(t *testing.T) {
	_, h := apiStore(t)
	res := call(t, h, "GET", "/v1/probes?limit=1", "", "op")
	var probes []map[string]any
	if err := json.Unmarshal(res.body["probes"], &probes); err != nil || res.status != 200 {
		t.Fatalf("GET /v1/probes = %d %s", res.status, res.raw)
	}
	if len(probes) != 1 || probes[0]["id"] != "p2" || probes[0]["finished"] != "2026-03-04T10:02:00Z" {
		t.Errorf("probes = %v", probes)
	}
	if v, ok := probes[0]["log_index"]; !ok || v != nil {
		t.Errorf("log_index of an unfound probe = %v (present %v), want null", v, ok)
	}
	res = call(t, h, "GET", "/v1/probes", "", "op")
	if err := json.Unmarshal(res.body["probes"], &probes); err != nil || len(probes) != 2 {
		t.Errorf("GET /v1/probes = %s", res.raw)
	}
	if _, ok := probes[1]["finished"]; ok {
		t.Errorf("a pending probe has finished: %v", probes[1])
	}
}
