package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloverenclave/clover/transfer"
	"github.com/cloverenclave/clover/transfer/ledger"
	"github.com/google/go-cmp/cmp"
)

// openLedger opens a transfer ledger file under dir.
func openLedger(t *testing.T, dir string) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(filepath.Join(dir, "log", "transfers.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// withLedger rebuilds h's gateway over the same collaborators with the
// ledger l and the destinations dests (transfer.Defaults() when nil), as a
// restarted process would be.
func withLedger(t *testing.T, h *harness, l TransferLedger, dests []transfer.Destination) {
	t.Helper()
	old := h.gw
	old.Close()
	if dests == nil {
		dests = transfer.Defaults()
	}
	var index AccessIndex
	if old.accesses != nil {
		index = old.accesses.index
	}
	h.gw = New(old.cfg, Parts{Vault: old.vault, Verifier: old.verifier, Policies: old.policies.Load(), Transformer: old.transformer,
		SIV: old.siv, Audit: old.audit, LogReader: old.logReader, Destinations: dests, LogKey: old.logKey, Metrics: old.metrics,
		Log: old.log, ReloadPolicies: old.reload, AccessIndex: index, Ledger: l})
}

// withQuota returns the default destinations with us-analytics capped at
// quota rows a day.
func withQuota(quota int) []transfer.Destination {
	ds := transfer.Defaults()
	for i := range ds {
		if ds[i].Name == "us-analytics" {
			ds[i].DailyQuota = quota
		}
	}
	return ds
}

const usTransfer = `{"destination":"us-analytics","purpose":"analytics"}`

// listing is the decoded body of GET /v1/transfers.
type listing struct {
	Transfers []struct {
		DecidedIndex uint64  `json:"decided_index"`
		EndIndex     *uint64 `json:"end_index"`
		State        string  `json:"state"`
		Started      string  `json:"started"`
		Ended        string  `json:"ended"`
		Destination  string  `json:"destination"`
		Country      string  `json:"country"`
		LegalBasis   string  `json:"legal_basis"`
		Format       string  `json:"format"`
		Requester    struct {
			Roles   []string `json:"roles"`
			Country string   `json:"country"`
		} `json:"requester"`
		Fields      []transfer.FieldForm `json:"fields"`
		PlannedRows int                  `json:"planned_rows"`
		Suppressed  int                  `json:"suppressed"`
		Rows        *int                 `json:"rows"`
		Bytes       *int64               `json:"bytes"`
		SHA256      string               `json:"sha256"`
	} `json:"transfers"`
	NextAfter *uint64 `json:"next_after"`
}

func (h *harness) listTransfers(t *testing.T, query string) listing {
	t.Helper()
	r := h.do("GET", "/v1/transfers"+query, h.token("dpo"), "")
	if r.status != 200 {
		t.Fatalf("GET /v1/transfers%s = %d %s", query, r.status, r.body)
	}
	var l listing
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("listing %s: %v", r.body, err)
	}
	return l
}

// TestTransferQuotaSurvivesRestart: the rows sent today are counted in the
// ledger file, so a gateway started afresh on it still refuses a transfer
// that would exceed the quota.
func TestTransferQuotaSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 60)
	dir := t.TempDir()
	withLedger(t, h, openLedger(t, dir), withQuota(100))
	r := h.do("POST", "/v1/transfers", officer(h, "IE"), usTransfer)
	if r.status != 200 {
		t.Fatalf("first transfer = %d %s", r.status, r.body)
	}
	sent, _ := strconv.Atoi(r.header.Get("Clover-Transfer-Rows"))
	if sent < 51 {
		t.Fatalf("the first transfer sent %d rows; the test needs more than half the quota of 100", sent)
	}
	// "Restart": close the ledger, open it again, build a new gateway.
	l := openLedger(t, dir)
	withLedger(t, h, l, withQuota(100))
	before := h.audit.len()
	r = h.do("POST", "/v1/transfers", officer(h, "IE"), usTransfer)
	if r.status != http.StatusTooManyRequests || r.errorCode(t) != "quota_exceeded" {
		t.Fatalf("transfer after a restart = %d %s, want 429 quota_exceeded", r.status, r.body)
	}
	if msg := r.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, fmt.Sprintf("(%d already sent", sent)) {
		t.Errorf("quota message %q does not count the %d rows sent before the restart", msg, sent)
	}
	if h.audit.len() != before+1 || h.audit.last(t).Status != http.StatusTooManyRequests {
		t.Error("the refusal was not logged as a denied decision with status 429")
	}
	// The same rows to another destination are not counted against it.
	r = h.do("POST", "/v1/transfers", officer(h, "IE"), `{"destination":"ch-research","purpose":"analytics","fields":["interests"]}`)
	if r.status == http.StatusTooManyRequests {
		t.Errorf("ch-research was refused for us-analytics's quota: %s", r.body)
	}
	// Without a ledger (the in-memory one) the count restarts: the
	// durability is the file's.
	withLedger(t, h, nil, withQuota(100))
	if r := h.do("POST", "/v1/transfers", officer(h, "IE"), usTransfer); r.status != 200 {
		t.Errorf("transfer with a fresh in-memory ledger = %d %s", r.status, r.body)
	}
}

// TestConcurrentTransfersNeverExceedTheQuota: transfers started together
// cannot together send more than the quota.
func TestConcurrentTransfersNeverExceedTheQuota(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 30)
	l := openLedger(t, t.TempDir())
	// Each transfer plans the same rows; the quota fits two of them.
	withLedger(t, h, l, nil)
	r := h.do("POST", "/v1/transfers", officer(h, "IE"), usTransfer)
	planned, _ := strconv.Atoi(r.header.Get("Clover-Transfer-Planned-Rows"))
	if r.status != 200 || planned == 0 {
		t.Fatalf("probe transfer = %d, %d rows", r.status, planned)
	}
	withLedger(t, h, openLedger(t, t.TempDir()), withQuota(2*planned+planned/2))
	tok := officer(h, "IE")
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			req := newReq("POST", "/v1/transfers", tok)
			req.Body = io.NopCloser(strings.NewReader(usTransfer))
			req.ContentLength = int64(len(usTransfer))
			w := httptest.NewRecorder()
			h.gw.ServeHTTP(w, req)
			statuses[i] = w.Code
		})
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Errorf("status %d", s)
		}
	}
	if ok != 2 || refused != n-2 {
		t.Errorf("%d transfers sent and %d refused; the quota fits exactly 2", ok, refused)
	}
	if got := h.listTransfers(t, "?destination=us-analytics"); len(got.Transfers) != 2 {
		t.Errorf("the ledger lists %d transfers, want 2", len(got.Transfers))
	}
}

// TestTransferListing: a complete transfer is listed with the digest and
// log indexes its response and ledger entry carry; one whose client went
// away is listed incomplete with what was sent.
func TestTransferListing(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 60)
	withLedger(t, h, openLedger(t, t.TempDir()), nil)

	r := h.do("POST", "/v1/transfers", officer(h, "IE"), usTransfer)
	if r.status != 200 {
		t.Fatalf("transfer = %d %s", r.status, r.body)
	}
	end := h.audit.last(t)
	sum := sha256.Sum256(r.body)

	req := newReq("POST", "/v1/transfers", officer(h, "IE"))
	req.Body = io.NopCloser(strings.NewReader(usTransfer))
	req.ContentLength = int64(len(usTransfer))
	w := &brokenWriter{header: http.Header{}, limit: 500}
	h.gw.ServeHTTP(w, req)
	cut := h.audit.last(t)
	if cut.Transfer == nil || cut.Transfer.Complete {
		t.Fatalf("cut-off transfer entry %+v", cut.Transfer)
	}

	got := h.listTransfers(t, "")
	if len(got.Transfers) != 2 || got.NextAfter != nil {
		t.Fatalf("listing %+v, want two transfers on one page", got)
	}
	incomplete, complete := got.Transfers[0], got.Transfers[1]

	decided, _ := strconv.ParseUint(r.header.Get(HeaderLogIndex), 10, 64)
	endIndex, _ := strconv.ParseUint(r.header.Get("Clover-Transfer-Log-Index"), 10, 64)
	rows, _ := strconv.Atoi(r.header.Get("Clover-Transfer-Rows"))
	if complete.State != "complete" || complete.DecidedIndex != decided || complete.EndIndex == nil || *complete.EndIndex != endIndex ||
		complete.SHA256 != hex.EncodeToString(sum[:]) || complete.SHA256 != end.Transfer.SHA256 || complete.SHA256 != r.header.Get("Clover-Transfer-Sha256") ||
		complete.Rows == nil || *complete.Rows != rows || complete.Bytes == nil || *complete.Bytes != int64(len(r.body)) ||
		complete.PlannedRows != rows || complete.Suppressed != end.Transfer.Suppressed {
		t.Errorf("complete transfer listed as %+v; response: decided %d, end %d, %d rows, %d bytes, sha256 %x",
			complete, decided, endIndex, rows, len(r.body), sum)
	}
	if *end.Transfer.Decided != decided {
		t.Errorf("the ledger entry's decided %d != the response's log index %d", *end.Transfer.Decided, decided)
	}
	if complete.Destination != "us-analytics" || complete.Country != "US" || complete.LegalBasis != "scc" || complete.Format != "ndjson" ||
		!cmp.Equal(complete.Requester.Roles, []string{"transfer-officer"}) || complete.Requester.Country != "IE" || len(complete.Fields) != len(end.Fields) {
		t.Errorf("complete transfer listed as %+v", complete)
	}
	for i, f := range end.Fields {
		if complete.Fields[i] != (transfer.FieldForm{Name: f.Name, Form: f.Form}) {
			t.Errorf("field %d listed as %+v, logged as %+v", i, complete.Fields[i], f)
		}
	}
	cutSum := sha256.Sum256(w.body.Bytes())
	if incomplete.State != "incomplete" || incomplete.DecidedIndex != *cut.Transfer.Decided || incomplete.EndIndex == nil ||
		incomplete.SHA256 != hex.EncodeToString(cutSum[:]) || incomplete.SHA256 != cut.Transfer.SHA256 ||
		*incomplete.Rows != cut.Transfer.Rows || *incomplete.Bytes != 500 || incomplete.Ended == "" {
		t.Errorf("cut-off transfer listed as %+v; logged %+v", incomplete, cut.Transfer)
	}
	// No caller identity is listed.
	if r := h.do("GET", "/v1/transfers", h.token("dpo"), ""); strings.Contains(string(r.body), "caller-1") {
		t.Errorf("the listing names the requester: %s", r.body)
	}

	// Paging and filters.
	page := h.listTransfers(t, "?limit=1")
	if len(page.Transfers) != 1 || page.NextAfter == nil || *page.NextAfter != incomplete.DecidedIndex {
		t.Fatalf("first page %+v", page)
	}
	page = h.listTransfers(t, fmt.Sprintf("?limit=1&after=%d", *page.NextAfter))
	if len(page.Transfers) != 1 || page.Transfers[0].DecidedIndex != decided || page.NextAfter != nil {
		t.Errorf("second page %+v", page)
	}
	if got := h.listTransfers(t, "?after=0"); len(got.Transfers) != 0 {
		t.Errorf("after=0 lists %d transfers", len(got.Transfers))
	}
	if got := h.listTransfers(t, "?destination=ch-research"); len(got.Transfers) != 0 {
		t.Errorf("destination=ch-research lists %d transfers", len(got.Transfers))
	}
	if got := h.listTransfers(t, "?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z"); len(got.Transfers) != 0 {
		t.Errorf("a window in 2000 lists %d transfers", len(got.Transfers))
	}
	if got := h.listTransfers(t, "?since=2000-01-01T00:00:00Z&destination=us-analytics"); len(got.Transfers) != 2 {
		t.Errorf("since 2000 lists %d transfers", len(got.Transfers))
	}
}

// TestTransferLedgerFailsClosed: a ledger that cannot reserve stops the
// transfer before anything is logged or sent; a decision the log refuses
// releases its reservation.
func TestTransferLedgerFailsClosed(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 30)
	l := openLedger(t, t.TempDir())
	withLedger(t, h, l, withQuota(1000))
	h.audit.fail = fmt.Errorf("disk full")
	if r := h.do("POST", "/v1/transfers", officer(h, "IE"), usTransfer); r.status != http.StatusServiceUnavailable {
		t.Fatalf("transfer with a failed log = %d", r.status)
	}
	h.audit.fail = nil
	// The failed attempt reserved nothing: a transfer of the whole quota's
	// worth still fits.
	if got, _ := l.List(context.Background(), ledger.Filter{Limit: 10}); len(got) != 0 {
		t.Errorf("the ledger lists %+v after a refused log", got)
	}
	r := h.do("POST", "/v1/transfers", officer(h, "IE"), usTransfer)
	if r.status != 200 {
		t.Fatalf("transfer = %d %s", r.status, r.body)
	}
	l.Close()
	before := h.audit.len()
	r = h.do("POST", "/v1/transfers", officer(h, "IE"), usTransfer)
	if r.status != http.StatusServiceUnavailable || r.errorCode(t) != "ledger_unavailable" || strings.Contains(string(r.body), "tk_") {
		t.Fatalf("transfer with a closed ledger = %d %s, want 503 ledger_unavailable", r.status, r.body)
	}
	if h.audit.len() != before {
		t.Error("a transfer the ledger could not reserve was logged as decided")
	}
}

func TestTransferListingAuthorisation(t *testing.T) {
	h := newHarness(t)
	withLedger(t, h, openLedger(t, t.TempDir()), nil)
	for _, roles := range [][]string{{"dpo"}, {"transfer-officer"}, {"analyst", "dpo"}} {
		if r := h.do("GET", "/v1/transfers", h.token(roles...), ""); r.status != 200 {
			t.Errorf("roles %v: %d %s", roles, r.status, r.body)
		}
	}
	for _, roles := range [][]string{{"analyst"}, {"admin"}, {"auditor"}, {"service"}, {"subject"}} {
		if r := h.do("GET", "/v1/transfers", h.token(roles...), ""); r.status != 403 || r.errorCode(t) != "forbidden" {
			t.Errorf("roles %v: %d %s, want 403", roles, r.status, r.body)
		}
	}
	if r := h.do("GET", "/v1/transfers", "", ""); r.status != 401 || r.errorCode(t) != "unauthenticated" {
		t.Errorf("no token: %d %s, want 401", r.status, r.body)
	}
	if r := h.do("PUT", "/v1/transfers", h.token("dpo"), ""); r.status != 405 || r.header.Get("Allow") != "GET, POST" {
		t.Errorf("PUT: %d allow %q", r.status, r.header.Get("Allow"))
	}
}

func TestTransferListingBadQuery(t *testing.T) {
	h := newHarness(t)
	dpo := h.token("dpo")
	for _, q := range []string{
		"?limit=0", "?limit=1001", "?limit=x", "?limit=1&limit=2",
		"?after=-1", "?after=x", "?after=9223372036854775808",
		"?since=yesterday", "?until=2026-11-23", "?since=2026-11-23T00:00:00Z&until=2026-11-23T00:00:00Z",
		"?destination=", "?destination=US", "?destination=a%0Ab", "?destination=" + strings.Repeat("a", 41),
		"?shoe=1",
	} {
		r := h.do("GET", "/v1/transfers"+q, dpo, "")
		if r.status != 400 || r.errorCode(t) != "invalid_query" {
			t.Errorf("GET /v1/transfers%s = %d %s, want 400 invalid_query", q, r.status, r.body)
		}
	}
}

// FuzzTransfersQuery: whatever the query, the listing answers 200 or a
// JSON 400, never a server error.
func FuzzTransfersQuery(f *testing.F) {
	for _, q := range []string{"", "limit=5&after=3", "destination=us-analytics&since=2026-01-01T00:00:00Z", "until=2026-11-23T00:00:00.5%2B01:00", "after=0", "x=%00"} {
		f.Add(q)
	}
	h := newHarness(&testing.T{})
	dpo := h.token("dpo")
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest("GET", "/v1/transfers", nil)
		req.URL.RawQuery = query
		req.Header.Set("Authorization", "Bearer "+dpo)
		w := httptest.NewRecorder()
		h.gw.ServeHTTP(w, req)
		var body map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%q: not JSON: %s", query, w.Body)
		}
		switch w.Code {
		case 200:
			if _, ok := body["transfers"]; !ok {
				t.Fatalf("%q: 200 without transfers: %s", query, w.Body)
			}
		case 400:
			var e struct{ Error errorDetail }
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Code != "invalid_query" || e.Error.Message == "" {
				t.Fatalf("%q: 400 without a JSON error: %s", query, w.Body)
			}
		default:
			t.Fatalf("%q: %d %s", query, w.Code, w.Body)
		}
	})
}

// fakeLedger is a TransferLedger whose steps can fail; the others pass to
// a real ledger.
type fakeLedger struct {
	*ledger.Ledger
	begin   func(ledger.ID, uint64) error
	settled []ledger.End
}

func (f *fakeLedger) Begin(ctx context.Context, id ledger.ID, decided uint64) error {
	if f.begin != nil {
		return f.begin(id, decided)
	}
	return f.Ledger.Begin(ctx, id, decided)
}

func (f *fakeLedger) Settle(ctx context.Context, id ledger.ID, e ledger.End) error {
	f.settled = append(f.settled, e)
	return f.Ledger.Settle(ctx, id, e)
}

// TestTransferNotStartedWhenTheLedgerCannotRecordIt: a decision the ledger
// cannot record sends nothing, and the log gets an end entry that says so.
func TestTransferNotStartedWhenTheLedgerCannotRecordIt(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 30)
	l := openLedger(t, t.TempDir())
	fake := &fakeLedger{Ledger: l, begin: func(ledger.ID, uint64) error { return fmt.Errorf("disk I/O error") }}
	withLedger(t, h, fake, nil)
	before := h.audit.len()
	r := h.do("POST", "/v1/transfers", officer(h, "IE"), usTransfer)
	if r.status != http.StatusServiceUnavailable || r.errorCode(t) != "ledger_unavailable" || strings.Contains(string(r.body), "tk_") {
		t.Fatalf("transfer = %d %s, want 503 ledger_unavailable and nothing sent", r.status, r.body)
	}
	end := h.audit.last(t)
	if h.audit.len() != before+2 || end.Transfer == nil || end.Transfer.Decided == nil || end.Transfer.Complete || end.Transfer.Rows != 0 || end.Transfer.Bytes != 0 {
		t.Fatalf("log after a ledger failure: %d entries, last %+v; want the decision and an empty end", h.audit.len()-before, end.Transfer)
	}
	if len(fake.settled) != 1 || fake.settled[0].Rows != 0 || fake.settled[0].Complete || fake.settled[0].Index == nil {
		t.Errorf("settled %+v, want one empty incomplete end naming its entry", fake.settled)
	}
	// Settled from its reservation, the transfer counts the 0 rows it sent.
	if n, _ := l.Counted(context.Background(), "us-analytics", time.Now()); n != 0 {
		t.Errorf("Counted = %d, want 0", n)
	}
}
