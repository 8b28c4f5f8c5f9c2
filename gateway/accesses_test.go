package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/auditlog/subjectindex"
	"github.com/cloverenclave/clover/authn"
	"github.com/google/go-cmp/cmp"
)

// openAccessIndex opens an access index under dir for the harness.
func openAccessIndex(t *testing.T, dir string) *subjectindex.Index {
	t.Helper()
	x, err := subjectindex.Open(filepath.Join(dir, "log", "subjects.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// at decodes the entry at index idx.
func (m *memLog) at(t *testing.T, idx uint64) *auditlog.Entry {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if idx >= uint64(len(m.entries)) {
		t.Fatalf("no entry %d", idx)
	}
	e, err := auditlog.Decode(m.entries[idx])
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// subjectToken mints a token for the data subject sub.
func (h *harness) subjectToken(sub string, roles ...string) string {
	h.t.Helper()
	if len(roles) == 0 {
		roles = []string{"subject"}
	}
	tok, err := h.dev.Mint(authn.TokenClaims{Subject: sub, Roles: roles, Country: "IE"}, time.Hour, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// accesses flushes the access index and lists path's accesses.
func (h *harness) accesses(path, token string) (response, accessesResponse) {
	h.t.Helper()
	if err := h.gw.accesses.flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	r := h.do("GET", path, token, "")
	var body accessesResponse
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.body, &body); err != nil {
			h.t.Fatalf("%s: %v: %s", path, err, r.body)
		}
	}
	return r, body
}

func logIndex(t *testing.T, r response) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(r.header.Get(HeaderLogIndex), 10, 64)
	if err != nil {
		t.Fatalf("no log index: %v (status %d %s)", err, r.status, r.body)
	}
	return n
}

func TestSubjectListsOwnAccesses(t *testing.T) {
	h := newHarness(t)
	put := h.do("PUT", "/v1/subjects/alice", h.token("ingest"), aliceBody)
	support := h.do("GET", "/v1/subjects/alice?fields=email,full_name", h.tokenFrom("IE", "support"), "",
		"Clover-Purpose", "support", "Clover-Justification", "T-1")
	service := h.do("GET", "/v1/subjects/alice?fields=email", h.token("service"), "", "Clover-Purpose", "service")
	denied := h.do("GET", "/v1/subjects/alice", h.token("ingest"), "")
	// Another subject's reads, and a read of a subject that does not exist.
	h.do("PUT", "/v1/subjects/bob", h.token("ingest"), aliceBody)
	h.do("GET", "/v1/subjects/bob", h.token("service"), "")
	h.do("GET", "/v1/subjects/nobody", h.token("service"), "")
	for _, r := range []response{put, support, service} {
		if r.status/100 != 2 {
			t.Fatalf("setup: %d %s", r.status, r.body)
		}
	}
	logged := h.audit.len()

	r, got := h.accesses("/v1/subjects/alice/accesses", h.subjectToken("alice"))
	if r.status != http.StatusOK {
		t.Fatalf("GET accesses = %d %s", r.status, r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	ts := func(r response) string { return h.audit.at(t, logIndex(t, r)).Time.UTC().Format(auditlog.TimeLayout) }
	var deniedFields []subjectindex.Field
	for _, f := range h.audit.at(t, logIndex(t, denied)).Fields {
		deniedFields = append(deniedFields, subjectindex.Field{Name: f.Name, Form: f.Form})
	}
	want := accessesResponse{Subject: "alice", Accesses: []accessItem{
		{Index: logIndex(t, put), Time: ts(put), Kind: "write", Decision: "allow",
			Accessor: accessAccessor{Type: "Employee", Roles: []string{"ingest"}, Country: "IE"}, Fields: []subjectindex.Field{}},
		{Index: logIndex(t, support), Time: ts(support), Kind: "decision", Decision: "allow",
			Accessor: accessAccessor{Type: "Employee", Roles: []string{"support"}, Country: "IE"}, Purpose: "support",
			Fields: []subjectindex.Field{{Name: "email", Form: "raw"}, {Name: "full_name", Form: "raw"}}, Status: 200},
		{Index: logIndex(t, service), Time: ts(service), Kind: "decision", Decision: "allow",
			Accessor: accessAccessor{Type: "Service", Roles: []string{"service"}, Country: "IE"}, Purpose: "service",
			Fields: []subjectindex.Field{{Name: "email", Form: "raw"}}, Status: 200},
		{Index: logIndex(t, denied), Time: ts(denied), Kind: "decision", Decision: "deny",
			Accessor: accessAccessor{Type: "Employee", Roles: []string{"ingest"}, Country: "IE"},
			Fields:   deniedFields, Status: 403},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accesses (-want +got):\n%s", diff)
	}
	if strings.Contains(string(r.body), "caller-1") {
		t.Errorf("the listing names an accessor: %s", r.body)
	}
	if r.header.Get(HeaderLogIndex) != "" || h.audit.len() != logged {
		t.Error("the listing was logged")
	}

	// A DPO sees the same; bob's accesses are bob's.
	if r, dpo := h.accesses("/v1/subjects/alice/accesses", h.token("dpo")); r.status != 200 || !cmp.Equal(got, dpo) {
		t.Errorf("dpo: %d %s", r.status, r.body)
	}
	if r, bob := h.accesses("/v1/subjects/bob/accesses", h.subjectToken("bob")); r.status != 200 || len(bob.Accesses) != 2 {
		t.Errorf("bob: %d %s", r.status, r.body)
	}
}

func TestAccessesRefused(t *testing.T) {
	h := newHarness(t)
	h.do("PUT", "/v1/subjects/alice", h.token("ingest"), aliceBody)
	h.do("PUT", "/v1/subjects/bob", h.token("ingest"), aliceBody)
	cases := []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"another subject", "/v1/subjects/alice/accesses", h.subjectToken("bob"), 403, "forbidden"},
		{"sub without the role", "/v1/subjects/alice/accesses", h.subjectToken("alice", "support"), 403, "forbidden"},
		{"support", "/v1/subjects/alice/accesses", h.token("support", "service"), 403, "forbidden"},
		{"no token", "/v1/subjects/alice/accesses", "", 401, "unauthenticated"},
		{"missing subject", "/v1/subjects/nobody/accesses", h.token("dpo"), 404, "not_found"},
		{"missing self", "/v1/subjects/nobody/accesses", h.subjectToken("nobody"), 404, "not_found"},
		{"bad id", "/v1/subjects/a%20b/accesses", h.token("dpo"), 400, "invalid_id"},
		{"limit 0", "/v1/subjects/alice/accesses?limit=0", h.token("dpo"), 400, "invalid_query"},
		{"limit too large", "/v1/subjects/alice/accesses?limit=1001", h.token("dpo"), 400, "invalid_query"},
		{"limit not a number", "/v1/subjects/alice/accesses?limit=ten", h.token("dpo"), 400, "invalid_query"},
		{"limit twice", "/v1/subjects/alice/accesses?limit=1&limit=2", h.token("dpo"), 400, "invalid_query"},
		{"after negative", "/v1/subjects/alice/accesses?after=-1", h.token("dpo"), 400, "invalid_query"},
		{"after too large", "/v1/subjects/alice/accesses?after=18446744073709551615", h.token("dpo"), 400, "invalid_query"},
		{"unknown parameter", "/v1/subjects/alice/accesses?fields=email", h.token("dpo"), 400, "invalid_query"},
	}
	for _, c := range cases {
		if r := h.do("GET", c.path, c.token, ""); r.status != c.status || r.errorCode(t) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
	}
	if r := h.do("POST", "/v1/subjects/alice/accesses", h.token("dpo"), ""); r.status != 405 || r.header.Get("Allow") != "GET" {
		t.Errorf("POST = %d %s", r.status, r.body)
	}
	// After erasure the subject's handle is gone, and with it the listing.
	h.do("DELETE", "/v1/subjects/alice", h.token("erasure"), "")
	if r, _ := h.accesses("/v1/subjects/alice/accesses", h.token("dpo")); r.status != 404 {
		t.Errorf("after erasure: %d %s", r.status, r.body)
	}
}

func TestAccessesPagination(t *testing.T) {
	h := newHarness(t)
	h.do("PUT", "/v1/subjects/alice", h.token("ingest"), aliceBody)
	service := h.token("service")
	for range 6 {
		h.do("GET", "/v1/subjects/alice", service, "")
		h.do("GET", "/v1/subjects/bob", service, "") // interleaved, not alice's
	}
	self := h.subjectToken("alice")
	_, all := h.accesses("/v1/subjects/alice/accesses", self)
	if len(all.Accesses) != 7 || all.NextAfter != nil {
		t.Fatalf("all: %d items, next %v", len(all.Accesses), all.NextAfter)
	}
	var paged []accessItem
	path := "/v1/subjects/alice/accesses?limit=3"
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		r, page := h.accesses(path, self)
		if r.status != 200 || len(page.Accesses) > 3 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		paged = append(paged, page.Accesses...)
		if page.NextAfter == nil {
			break
		}
		if *page.NextAfter != page.Accesses[len(page.Accesses)-1].Index {
			t.Fatalf("next_after %d is not the last index of the page", *page.NextAfter)
		}
		path = fmt.Sprintf("/v1/subjects/alice/accesses?limit=3&after=%d", *page.NextAfter)
	}
	if diff := cmp.Diff(all.Accesses, paged); diff != "" {
		t.Errorf("pages differ from the whole (-whole +pages):\n%s", diff)
	}
	// A page that ends exactly at the last item says so.
	r, last := h.accesses(fmt.Sprintf("/v1/subjects/alice/accesses?after=%d&limit=6", all.Accesses[0].Index), self)
	if r.status != 200 || len(last.Accesses) != 6 || last.NextAfter != nil {
		t.Errorf("last page: %d %s", r.status, r.body)
	}
	if !strings.Contains(string(r.body), `"next_after":null`) {
		t.Errorf("next_after not null: %s", r.body)
	}
}

func TestAccessesOffWithoutIndex(t *testing.T) {
	h := newHarness(t)
	g := h.gw
	off := New(g.cfg, Parts{Vault: g.vault, Verifier: g.verifier, Policies: g.policies.Load(), Transformer: g.transformer,
		SIV: g.siv, Audit: h.audit, LogKey: g.logKey, Metrics: NewMetrics(), Log: g.log})
	defer off.Close()
	h.gw = off
	for _, route := range off.Routes() {
		if strings.Contains(route, "accesses") {
			t.Errorf("route %s served without an index", route)
		}
	}
	if r := h.do("PUT", "/v1/subjects/alice", h.token("ingest"), aliceBody); r.status != 201 {
		t.Fatalf("PUT without an index = %d %s", r.status, r.body)
	}
	if r := h.do("GET", "/v1/subjects/alice/accesses", h.token("dpo"), ""); r.status != 404 || r.errorCode(t) != "not_found" {
		t.Errorf("GET accesses without an index = %d %s", r.status, r.body)
	}
}

// fakeIndex records batches; it can block and fail.
type fakeIndex struct {
	mu      sync.Mutex
	items   []subjectindex.Item
	block   chan struct{}
	fail    error
	batches int
}

func (f *fakeIndex) Add(_ context.Context, items ...subjectindex.Item) error {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches++
	if f.fail != nil {
		return f.fail
	}
	f.items = append(f.items, items...)
	return nil
}

func (f *fakeIndex) List(context.Context, string, int, uint64) ([]subjectindex.Item, error) {
	return nil, errors.New("not implemented")
}

func TestAccessIndexerDropsWhenFull(t *testing.T) {
	f := &fakeIndex{block: make(chan struct{})}
	var logged strings.Builder
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logged.Write(b)
	}), nil))
	a := newAccessIndexer(f, log)
	n := accessQueue + accessBatch + 10
	for i := range n {
		a.enqueue(subjectindex.Item{Index: uint64(i), Subject: "s"})
	}
	close(f.block)
	if err := a.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.close()
	a.close()                                                  // twice is fine
	a.enqueue(subjectindex.Item{Index: 1 << 40, Subject: "s"}) // after close: dropped, no panic
	if err := a.flush(context.Background()); err == nil {
		t.Error("flush after close succeeded")
	}
	f.mu.Lock()
	stored := len(f.items)
	f.mu.Unlock()
	if stored == 0 || stored >= n {
		t.Errorf("%d of %d items stored; want some dropped", stored, n)
	}
	for i := 1; i < stored; i++ {
		if f.items[i].Index <= f.items[i-1].Index {
			t.Fatalf("items out of order at %d", i)
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logged.String(), "items dropped") {
		t.Errorf("drops not logged: %s", logged.String())
	}
}

func TestAccessIndexerLogsFailures(t *testing.T) {
	f := &fakeIndex{fail: errors.New("disk full")}
	var logged strings.Builder
	a := newAccessIndexer(f, slog.New(slog.NewTextHandler(&logged, nil)))
	a.enqueue(subjectindex.Item{Index: 1, Subject: "s"})
	if err := a.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.close()
	if !strings.Contains(logged.String(), "disk full") {
		t.Errorf("failure not logged: %s", logged.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

var _ io.Writer = writerFunc(nil)
