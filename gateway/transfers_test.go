package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cloverenclave/clover/auditlog"
)

// seedTransfer writes n subjects from IE whose birth years fall in a few
// age bands, with known contact and identity values.
func seedTransfer(t *testing.T, h *harness, n int) {
	t.Helper()
	ingest := h.token("ingest")
	for i := range n {
		body := fmt.Sprintf(`{"country":"IE","fields":{"email":"person%d@example.ie","full_name":"Person Number%d","phone":"+353 87 000 %04d","birth_date":"19%d0-03-0%d","interests":"topic-%d","device_id":"dev-%d","ip_address":"198.51.100.%d"}}`,
			i, i, i, 7+i%3, 1+i%9, i%4, i, i%250)
		if r := h.do("PUT", fmt.Sprintf("/v1/subjects/t-%03d", i), ingest, body); r.status != 201 {
			t.Fatalf("seed %d: %d %s", i, r.status, r.body)
		}
	}
}

func officer(h *harness, country string) string { return h.tokenFrom(country, "transfer-officer") }

func TestTransferToANonEEADestination(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 60)
	before := h.audit.len()
	r := h.do("POST", "/v1/transfers", officer(h, "IE"), `{"destination":"us-analytics","purpose":"analytics"}`)
	if r.status != 200 {
		t.Fatalf("transfer = %d %s", r.status, r.body)
	}
	// No raw contact or identity value leaves.
	for i := range 60 {
		for _, secret := range []string{fmt.Sprintf("person%d@example.ie", i), fmt.Sprintf("Number%d", i), fmt.Sprintf("000 %04d", i), fmt.Sprintf("t-%03d", i)} {
			if bytes.Contains(r.body, []byte(secret)) {
				t.Fatalf("the export contains %q", secret)
			}
		}
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("not NDJSON: %q", sc.Text())
		}
		if _, ok := row["email"]; ok {
			t.Fatal("a contact field was sent to us-analytics")
		}
		if s, _ := row["subject"].(string); !strings.HasPrefix(s, "tk_") || row["country"] != "IE" {
			t.Fatalf("row %v: want a tokenised subject and the country", row)
		}
		lines++
	}
	// Two entries: the decision, then the ledger with the digest of the bytes.
	if h.audit.len() != before+2 {
		t.Fatalf("%d entries logged, want 2", h.audit.len()-before)
	}
	end := h.audit.last(t)
	sum := sha256.Sum256(r.body)
	if end.Kind != auditlog.KindTransfer || end.Transfer == nil || !end.Transfer.Complete || end.Transfer.Rows != lines ||
		end.Transfer.SHA256 != hex.EncodeToString(sum[:]) || end.Transfer.LegalBasis != "scc" || end.Transfer.Bytes != int64(len(r.body)) {
		t.Fatalf("ledger entry %+v does not match the %d rows / %d bytes received", end.Transfer, lines, len(r.body))
	}
	if lines+end.Transfer.Suppressed != 60 {
		t.Fatalf("sent %d + suppressed %d != 60", lines, end.Transfer.Suppressed)
	}
	if r.header.Get("Clover-Transfer-Sha256") != end.Transfer.SHA256 {
		t.Errorf("trailer digest %q != ledger %q", r.header.Get("Clover-Transfer-Sha256"), end.Transfer.SHA256)
	}
}

func TestTransferTokensAreScopedAndStable(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 30)
	subjects := func(dest string) []string {
		r := h.do("POST", "/v1/transfers", officer(h, "IE"), `{"destination":"`+dest+`","purpose":"analytics"}`)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", dest, r.status, r.body)
		}
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(string(r.body)), "\n") {
			var row map[string]any
			json.Unmarshal([]byte(line), &row)
			out = append(out, row["subject"].(string))
		}
		return out
	}
	us1, us2 := subjects("us-analytics"), subjects("us-analytics")
	if strings.Join(us1, ",") != strings.Join(us2, ",") {
		t.Fatal("tokens differ between two runs to the same destination")
	}
	h.gw.destinations["us-analytics-2"] = withName(h.gw.destinations["us-analytics"], "us-analytics-2")
	other := subjects("us-analytics-2")
	for _, a := range us1 {
		for _, b := range other {
			if a == b {
				t.Fatal("the same token appears in exports to two destinations")
			}
		}
	}
}

func TestRefusedTransfersSendNothingAndAreLogged(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 12)
	cases := []struct {
		name, token, body string
		status            int
		code              string
		logged            bool
	}{
		{"not permitted", h.token("analyst"), `{"destination":"us-analytics","purpose":"analytics"}`, 403, "forbidden", true},
		{"officer abroad", officer(h, "US"), `{"destination":"us-analytics","purpose":"analytics"}`, 403, "forbidden", true},
		{"unknown destination", officer(h, "IE"), `{"destination":"mars","purpose":"analytics"}`, 404, "unknown_destination", false},
		{"field not allowed", officer(h, "IE"), `{"destination":"us-analytics","purpose":"analytics","fields":["email","interests"]}`, 422, "field_not_allowed", false},
		{"unknown filter field", officer(h, "IE"), `{"destination":"us-analytics","purpose":"analytics","filter":{"shoe":1}}`, 400, "invalid_filter", false},
		{"filter wrong type", officer(h, "IE"), `{"destination":"us-analytics","purpose":"analytics","filter":{"birth_date":5}}`, 400, "invalid_filter", false},
		// 12 subjects in groups of at most ~4: k=10 at ch-research suppresses most.
		{"re-identification risk", officer(h, "IE"), `{"destination":"ch-research","purpose":"analytics"}`, 422, "reidentification_risk", true},
	}
	for _, c := range cases {
		before := h.audit.len()
		r := h.do("POST", "/v1/transfers", c.token, c.body)
		if r.status != c.status || r.errorCode(t) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
			continue
		}
		logged := h.audit.len() - before
		if c.logged && (logged != 1 || h.audit.last(t).Decision != auditlog.Deny) {
			t.Errorf("%s: the refusal was not logged as a denied decision", c.name)
		}
		if !c.logged && logged != 0 {
			t.Errorf("%s: a malformed request was logged", c.name)
		}
	}
}

func TestTransferCSVAndFailClosed(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 40)
	r := h.do("POST", "/v1/transfers", officer(h, "IE"), `{"destination":"us-analytics","purpose":"analytics"}`, "Accept", "text/csv")
	if r.status != 200 || !strings.HasPrefix(string(r.body), "subject,country,") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv transfer = %d %q", r.status, r.body[:min(len(r.body), 80)])
	}
	h.audit.fail = auditlog.ErrUnavailable
	r = h.do("POST", "/v1/transfers", officer(h, "IE"), `{"destination":"us-analytics","purpose":"analytics"}`)
	if r.status != http.StatusServiceUnavailable || bytes.Contains(r.body, []byte("tk_")) {
		t.Fatalf("transfer with a failed log = %d %s", r.status, r.body)
	}
}

// brokenWriter is a client that goes away: after limit bytes every write
// fails.
type brokenWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	limit  int
}

func (b *brokenWriter) Header() http.Header { return b.header }
func (b *brokenWriter) WriteHeader(s int)   { b.status = s }
func (b *brokenWriter) Write(p []byte) (int, error) {
	room := b.limit - b.body.Len()
	if room <= 0 {
		return 0, fmt.Errorf("client went away")
	}
	if len(p) > room {
		b.body.Write(p[:room])
		return room, fmt.Errorf("client went away")
	}
	return b.body.Write(p)
}

func TestTransferCutOffIsLedgeredIncomplete(t *testing.T) {
	h := newHarness(t)
	seedTransfer(t, h, 60)
	req := newReq("POST", "/v1/transfers", officer(h, "IE"))
	body := `{"destination":"us-analytics","purpose":"analytics"}`
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	w := &brokenWriter{header: http.Header{}, limit: 500}
	h.gw.ServeHTTP(w, req)
	e := h.audit.last(t)
	if e.Transfer == nil || e.Transfer.Complete || e.Transfer.Decided == nil {
		t.Fatalf("ledger entry after a cut-off stream: %+v, want incomplete", e.Transfer)
	}
	if w.body.Len() != 500 {
		t.Fatalf("the client got %d bytes, want the 500 it accepted", w.body.Len())
	}
	sum := sha256.Sum256(w.body.Bytes())
	if e.Transfer.Bytes != int64(w.body.Len()) || e.Transfer.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("ledger says %d bytes %s; the client got %d bytes %x", e.Transfer.Bytes, e.Transfer.SHA256, w.body.Len(), sum)
	}
}
