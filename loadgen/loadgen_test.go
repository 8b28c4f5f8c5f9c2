package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("an empty histogram is not all zeros")
	}
	// 1..100000 µs, uniformly.
	for v := 1; v <= 100000; v++ {
		h.Record(time.Duration(v) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 100000 * float64(time.Microsecond)
		got := float64(h.Quantile(q))
		if got < want*0.99 || got > want*1.01 {
			t.Errorf("q%.3f = %v, want %v ±1%%", q, time.Duration(got), time.Duration(want))
		}
	}
	if h.Min() != time.Microsecond || h.Max() != 100*time.Millisecond || h.Count() != 100000 {
		t.Errorf("min %v max %v count %d", h.Min(), h.Max(), h.Count())
	}
	if m := h.Mean(); m < 50*time.Millisecond || m > 50*time.Millisecond+time.Microsecond {
		t.Errorf("mean %v", m)
	}
	if h.Quantile(1) != h.Max() || h.Quantile(0) != h.Min() {
		t.Error("q0/q1 are not min/max")
	}
}

func TestHistogramExactSmallValuesAndMerge(t *testing.T) {
	var a, b, all Histogram
	for v := range 1000 {
		d := time.Duration(v)
		all.Record(d)
		if v%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged q%v = %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() || a.Mean() != all.Mean() {
		t.Error("merged summary differs")
	}
	var c Histogram
	c.Record(200)
	if c.Quantile(0.5) != 200 {
		t.Errorf("values below 256 ns are not exact: %v", c.Quantile(0.5))
	}
	for i := range 7000 {
		lo, hi := bucketBounds(i)
		if bucketOf(lo) != i || bucketOf(hi) != i || bucketOf(hi+1) != i+1 {
			t.Fatalf("bucket %d: bounds %d-%d do not round-trip", i, lo, hi)
		}
	}
}

func newConn(t *testing.T, url string) *Conn {
	t.Helper()
	tg, err := ParseTarget(url)
	if err != nil {
		t.Fatal(err)
	}
	c := tg.NewConn()
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnRequestAndResponse(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/prefix/echo":
			w.Header().Set("X-Auth", r.Header.Get("Authorization"))
			fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RawQuery, body)
		case "/prefix/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/prefix/chunked":
			w.Write([]byte("part one"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		default:
			http.Error(w, "nope", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c := newConn(t, srv.URL+"/prefix/")
	hdr, err := RenderHeader(http.Header{"Authorization": {"Bearer abc"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // three requests on one connection
		req := &Request{Method: "PUT", Path: []byte("/echo?x=1"), Header: hdr, Body: []byte(`{"a":1}`)}
		status, body, err := c.Do(req, true)
		if err != nil || status != 200 || string(body) != `PUT x=1 {"a":1}` {
			t.Fatalf("Do = %d %q %v", status, body, err)
		}
	}
	status, body, err := c.Do(&Request{Method: "GET", Path: []byte("/missing")}, false)
	if err != nil || status != 404 || body != nil {
		t.Fatalf("404: %d %q %v", status, body, err)
	}
	status, _, err = c.Do(&Request{Method: "DELETE", Path: []byte("/empty")}, true)
	if err != nil || status != 204 {
		t.Fatalf("204: %d %v", status, err)
	}
	if _, _, err = c.Do(&Request{Method: "GET", Path: []byte("/chunked")}, true); !errors.Is(err, ErrChunked) {
		t.Fatalf("chunked: err = %v, want ErrChunked", err)
	}
	if ErrorKind(err) != "chunked response" {
		t.Errorf("ErrorKind = %q", ErrorKind(err))
	}
	// After an error the connection is replaced.
	if status, _, err := c.Do(&Request{Method: "GET", Path: []byte("/missing")}, false); err != nil || status != 404 {
		t.Fatalf("after an error: %d %v", status, err)
	}
	if n := requests.Load(); n != 7 {
		t.Errorf("the server saw %d requests, want 7", n)
	}
}

// rawServer answers each connection's requests with the responses that
// answer returns, one per request, then closes when it says so.
func rawServer(t *testing.T, answer func(n int) (resp string, closeAfter bool)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	var n atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					// Read one request without a body.
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					resp, closeAfter := answer(int(n.Add(1)))
					if _, err := io.WriteString(nc, resp); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestConnRetriesAConnectionTheServerClosed(t *testing.T) {
	// The server answers once per connection and then closes it without
	// saying so, as an idle timeout would.
	url := rawServer(t, func(int) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true
	})
	c := newConn(t, url)
	for i := range 3 {
		if status, body, err := c.Do(&Request{Method: "GET", Path: []byte("/")}, true); err != nil || status != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q %v", i, status, body, err)
		}
	}
}

func TestConnMalformedResponses(t *testing.T) {
	for name, resp := range map[string]string{
		"garbage":           "hello\r\n\r\n",
		"bad status":        "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
		"no length":         "HTTP/1.1 200 OK\r\n\r\nbody",
		"bad length":        "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
		"short body":        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
		"transfer-encoding": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			url := rawServer(t, func(int) (string, bool) { return resp, true })
			c := newConn(t, url)
			if status, _, err := c.Do(&Request{Method: "GET", Path: []byte("/")}, true); err == nil {
				t.Fatalf("no error (status %d)", status)
			} else if k := ErrorKind(err); k == "other transport error" {
				t.Errorf("unclassified error %v", err)
			}
		})
	}
	// A body that ends at the connection's close is fine.
	url := rawServer(t, func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close", true })
	if status, body, err := newConn(t, url).Do(&Request{Method: "GET", Path: []byte("/")}, true); err != nil || status != 200 || string(body) != "until close" {
		t.Fatalf("close-delimited body: %d %q %v", status, body, err)
	}
}

func TestParseTarget(t *testing.T) {
	for _, bad := range []string{"", "127.0.0.1:7400", "ftp://x", "http://", "http://h/?q=1", "http://u:p@h/"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
	tg, err := ParseTarget("https://example.org/api/")
	if err != nil || tg.addr != "example.org:443" || tg.prefix != "/api" || tg.host != "example.org" || tg.tls == nil {
		t.Fatalf("%+v %v", tg, err)
	}
}

// pathOp is an op that requests a fixed path.
func pathOp(name string, weight int, path string) Op {
	return Op{Name: name, Weight: weight, Method: "GET", Next: func(_ *rand.Rand, r *Request) error {
		r.Path = append(r.Path, path...)
		return nil
	}}
}

func TestRunCountsMixAndStatuses(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path]++
		mu.Unlock()
		switch r.URL.Path {
		case "/a":
			w.Write([]byte("a"))
		case "/b":
			http.Error(w, "missing", http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	defer srv.Close()
	writeOp := Op{Name: "write", Weight: 10, Method: "PUT", Header: http.Header{"Content-Type": {"application/json"}},
		Next: func(rng *rand.Rand, r *Request) error {
			r.Path = append(r.Path, "/c"...)
			r.Body = append(r.Body, `{"n":1}`...)
			return nil
		},
		OK: func(status int) bool { return status == 201 },
	}
	const n = 20000
	res, err := Run(context.Background(), Config{
		URL: srv.URL, Concurrency: 8, Requests: n, Warmup: 20 * time.Millisecond, Seed: 1,
		Ops: []Op{pathOp("read", 70, "/a"), pathOp("missing", 20, "/b"), writeOp, pathOp("never", 0, "/never")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Requests != n || res.Interrupted {
		t.Fatalf("total %d (interrupted %v), want %d", res.Total.Requests, res.Interrupted, n)
	}
	byName := map[string]*OpResult{}
	for _, o := range res.Ops {
		byName[o.Name] = o
	}
	for name, want := range map[string]float64{"read": 0.7, "missing": 0.2, "write": 0.1, "never": 0} {
		got := float64(byName[name].Requests) / n
		if got < want-0.02 || got > want+0.02 {
			t.Errorf("%s: %.3f of the requests, want %.2f ± 0.02", name, got, want)
		}
	}
	if o := byName["read"]; o.OK != o.Requests || o.Status[200] != o.Requests || o.Latency.Count() != uint64(o.Requests) {
		t.Errorf("read: %+v", o)
	}
	if o := byName["missing"]; o.OK != 0 || o.Status[404] != o.Requests || o.Errors() != o.Requests {
		t.Errorf("missing: ok %d, statuses %v", o.OK, o.Status)
	}
	if o := byName["write"]; o.OK != o.Requests || o.Status[201] != o.Requests {
		t.Errorf("write: ok %d, statuses %v", o.OK, o.Status)
	}
	if res.Total.OK != byName["read"].OK+byName["write"].OK {
		t.Errorf("total ok %d", res.Total.OK)
	}
	// The warm-up's requests reached the server but are not counted.
	mu.Lock()
	defer mu.Unlock()
	if total := seen["/a"] + seen["/b"] + seen["/c"]; total < n {
		t.Errorf("the server saw %d requests, fewer than the %d counted", total, n)
	}
	if seen["/never"] != 0 {
		t.Error("an op with weight 0 was sent")
	}
	if res.Elapsed <= 0 || res.Total.Latency.Quantile(0.99) <= 0 {
		t.Errorf("elapsed %v, p99 %v", res.Elapsed, res.Total.Latency.Quantile(0.99))
	}
}

func TestRunCancelReturnsFiguresSoFar(t *testing.T) {
	release := make(chan struct{})
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) > 500 {
			<-release // hang: cancellation must not wait for these
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := Run(ctx, Config{URL: srv.URL, Concurrency: 4, Duration: time.Hour, Ops: []Op{pathOp("get", 1, "/")},
		Progress: func(p Progress) {
			if p.Done >= 400 {
				cancel()
			}
		}, ProgressEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted {
		t.Error("not marked interrupted")
	}
	if res.Total.Requests < 400 || res.Total.Requests > 500 || res.Total.Errors() != 0 {
		t.Errorf("requests %d, errors %d: want 400-500 and none", res.Total.Requests, res.Total.Errors())
	}
	if res.Elapsed <= 0 {
		t.Errorf("elapsed %v", res.Elapsed)
	}
}

func TestRunCancelDuringWarmup(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var measured atomic.Bool
	res, err := Run(ctx, Config{URL: srv.URL, Concurrency: 2, Duration: time.Hour, Warmup: time.Hour,
		Ops:       []Op{pathOp("get", 1, "/")},
		OnMeasure: func() { measured.Store(true) },
		Progress:  func(Progress) { cancel() }, ProgressEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Total.Requests != 0 || measured.Load() {
		t.Errorf("interrupted %v, requests %d, measured %v", res.Interrupted, res.Total.Requests, measured.Load())
	}
}

func TestRunCountsTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	res, err := Run(context.Background(), Config{URL: url, Concurrency: 2, Requests: 6, Ops: []Op{pathOp("get", 1, "/")}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Requests != 0 || res.Total.Transport["connection refused"] != 6 || res.Total.Errors() != 6 {
		t.Errorf("requests %d, transport %v", res.Total.Requests, res.Total.Transport)
	}
}

func TestRunRejectsBadConfigs(t *testing.T) {
	ok := []Op{pathOp("get", 1, "/")}
	for name, cfg := range map[string]Config{
		"no concurrency": {URL: "http://127.0.0.1:1", Requests: 1, Ops: ok},
		"no stop":        {URL: "http://127.0.0.1:1", Concurrency: 1, Ops: ok},
		"empty mix":      {URL: "http://127.0.0.1:1", Concurrency: 1, Requests: 1, Ops: []Op{pathOp("get", 0, "/")}},
		"bad url":        {URL: "127.0.0.1:1", Concurrency: 1, Requests: 1, Ops: ok},
		"bad header":     {URL: "http://127.0.0.1:1", Concurrency: 1, Requests: 1, Ops: []Op{{Name: "x", Weight: 1, Header: http.Header{"X": {"a\r\nb"}}, Next: ok[0].Next}}},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRunStopsWhenNextFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	boom := errors.New("boom")
	var calls atomic.Int64
	// One worker fails at once; the others would run for an hour.
	_, err := Run(context.Background(), Config{URL: srv.URL, Concurrency: 4, Duration: time.Hour,
		Ops: []Op{{Name: "x", Weight: 1, Method: "GET", Next: func(_ *rand.Rand, r *Request) error {
			if calls.Add(1) == 10 {
				return boom
			}
			r.Path = append(r.Path, '/')
			return nil
		}}}})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestCeiling(t *testing.T) {
	if len(CeilingBody) != 570 || !strings.HasSuffix(string(CeilingBody), "}}\n") {
		t.Fatalf("the ceiling body is %d bytes", len(CeilingBody))
	}
	res, err := Ceiling(context.Background(), Config{Concurrency: 4, Requests: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.OK != 2000 || res.Total.Errors() != 0 {
		t.Errorf("ok %d, errors %d", res.Total.OK, res.Total.Errors())
	}
}

func BenchmarkConnDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(CeilingBody) }))
	defer srv.Close()
	tg, err := ParseTarget(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	c := tg.NewConn()
	defer c.Close()
	req := &Request{Method: "GET", Path: []byte("/v1/subjects/s-00000001")}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Do(req, false); err != nil {
			b.Fatal(err)
		}
	}
}
