package loadgen

import (
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	const page = `# HELP clover_http_requests_total HTTP requests by route pattern and status code.
# TYPE clover_http_requests_total counter
clover_http_requests_total{code="200",route="GET /v1/subjects/{id}"} 1500
clover_http_requests_total{code="404",route="GET /v1/subjects/{id}"} 3
clover_http_requests_total{code="201",route="PUT /v1/subjects/{id}"} 20
clover_http_request_duration_seconds_bucket{route="GET /v1/subjects/{id}",le="+Inf"} 1503
clover_http_request_duration_seconds_sum{route="GET /v1/subjects/{id}"} 0.75
odd_label{v="a \"quoted\" \\ value\n",w=""} 1e3 1700000000000
process_cpu_seconds_total 12.5
`
	ss, err := ParseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if got := ss.Sum("clover_http_requests_total", map[string]string{"route": "GET /v1/subjects/{id}"}); got != 1503 {
		t.Errorf("GET requests = %v", got)
	}
	if got := ss.Sum("clover_http_requests_total", nil); got != 1523 {
		t.Errorf("all requests = %v", got)
	}
	if got := ss.Sum("process_cpu_seconds_total", nil); got != 12.5 {
		t.Errorf("cpu = %v", got)
	}
	if got := ss.LabelValues("clover_http_requests_total", "route"); len(got) != 2 {
		t.Errorf("routes = %v", got)
	}
	for _, s := range ss {
		if s.Name == "odd_label" && (s.Labels["v"] != "a \"quoted\" \\ value\n" || s.Value != 1000) {
			t.Errorf("odd_label = %+v", s)
		}
	}
	for _, bad := range []string{"novalue", `x{a="b} 1`, `x{a=b} 1`, "x abc"} {
		if _, err := ParseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
