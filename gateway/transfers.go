package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/transfer"
	"github.com/cloverenclave/clover/transfer/ledger"
	"github.com/cloverenclave/clover/transfer/spill"
	"github.com/cloverenclave/clover/vault"
)

// transferRequest is the body of POST /v1/transfers.
type transferRequest struct {
	Destination string                     `json:"destination"`
	Purpose     string                     `json:"purpose"`
	Fields      []string                   `json:"fields"`
	Filter      map[string]json.RawMessage `json:"filter"`
}

// recordFilter selects records by exact field values (and "country").
type recordFilter struct {
	country string
	fields  map[string][]byte // compact JSON
}

func (f *recordFilter) match(r vault.Record) bool {
	if f.country != "" && r.Country != f.country {
		return false
	}
	for name, want := range f.fields {
		if !bytes.Equal(r.Fields[name], want) {
			return false
		}
	}
	return true
}

// parseFilter checks a filter against the schema: unknown fields and values
// of the wrong type are errors.
func (g *Gateway) parseFilter(in map[string]json.RawMessage) (*recordFilter, error) {
	f := &recordFilter{fields: map[string][]byte{}}
	for name, raw := range in {
		if name == "country" {
			if err := json.Unmarshal(raw, &f.country); err != nil || !enclave.ValidCountry(f.country) {
				return nil, errors.New(`filter "country" must be an ISO 3166-1 alpha-2 code`)
			}
			continue
		}
		if _, ok := g.vault.Schema().Field(name); !ok {
			return nil, fmt.Errorf("filter field %q is not in the schema", truncate(printable(name), 64))
		}
		clean, err := g.vault.Schema().Check(map[string]json.RawMessage{name: raw})
		if err != nil {
			return nil, fmt.Errorf("filter %s", err)
		}
		f.fields[name] = clean[name]
	}
	return f, nil
}

// transferEntry starts a transfer's log entry.
func (g *Gateway) transferEntry(p authn.Principal, pctx policy.Context, d transfer.Destination, format string) *auditlog.Entry {
	e := g.newEntry(auditlog.KindTransfer, "transfer", p, pctx)
	e.Site = d.Name
	e.Transfer = &auditlog.TransferRecord{Destination: d.Name, Country: d.Country, LegalBasis: d.LegalBasis, Format: format}
	return e
}

// postTransfer streams the selected records, transformed for the
// destination, after checking the request, the policy, the re-identification
// risk and the quota, and logging the decision. See docs/api.md.
func (g *Gateway) postTransfer(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	pctx, ok := g.policyContext(w, r, p)
	if !ok {
		return
	}
	var req transferRequest
	if !g.decodeBody(w, r, &req) {
		return
	}
	if req.Purpose != "" {
		if !g.purposes[req.Purpose] {
			writeError(w, http.StatusBadRequest, "unknown_purpose", fmt.Sprintf("purpose %q is not one of the configured purposes", truncate(printable(req.Purpose), 40)))
			return
		}
		if pctx.Purpose != "" && pctx.Purpose != req.Purpose {
			writeError(w, http.StatusBadRequest, "invalid_body", "the body's purpose and the Clover-Purpose header differ")
			return
		}
		pctx.Purpose = req.Purpose
	}
	d, ok := g.destinations[req.Destination]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_destination", fmt.Sprintf("no destination %q is configured", truncate(printable(req.Destination), 64)))
		return
	}
	sch := g.vault.Schema()
	plan, err := transfer.NewPlan(d, sch, req.Fields)
	var fe *transfer.FieldError
	switch {
	case errors.As(err, &fe):
		writeFieldError(w, http.StatusUnprocessableEntity, "field_not_allowed", fe.Error(), fe.Fields)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	filter, err := g.parseFilter(req.Filter)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_filter", err.Error())
		return
	}
	format, contentType := "ndjson", "application/x-ndjson"
	if strings.Contains(r.Header.Get("Accept"), "text/csv") {
		format, contentType = "csv", "text/csv; charset=utf-8"
	}
	set := g.policies.Load()
	allowed, ids := set.Allowed(p, "transfer", nil, pctx)
	e := g.transferEntry(p, pctx, d, format)
	e.Policy = &auditlog.PolicyRef{Digest: set.Digest(), IDs: ids}
	for _, c := range plan.Fields() {
		e.Fields = append(e.Fields, auditlog.Field{Name: c.Field.Name, Form: string(c.Form)})
	}
	deny := func(status int, code, msg string) {
		e.Decision, e.Status, e.Detail = auditlog.Deny, status, msg
		if g.record(w, r, e) {
			writeError(w, status, code, msg)
		}
	}
	if !allowed {
		deny(http.StatusForbidden, "forbidden", "transferring to this destination is not permitted by policy for this caller")
		return
	}

	// One pass over the store: every selected record transformed in the
	// vault's scan workers and, in scan order (vault.ScanMap), counted in
	// its quasi-identifier group and kept in a spool sealed under a key
	// held only in memory. The rows sent are replayed from it, so the store
	// is read and decrypted once, and the counts and the rows sent come
	// from the same snapshot; the stream and its digest do not depend on
	// the number of workers.
	now := g.now()
	spool, err := transfer.NewSpool(plan, "")
	if err != nil {
		g.internal(w, r, "transfer", err)
		return
	}
	defer func() {
		if err := spool.Close(); err != nil {
			g.log.Error("transfer: the spill file could not be removed", "error", err, "destination", d.Name)
		}
	}()
	err = vault.ScanMap(r.Context(), g.vault, vault.ScanOptions{}, func(rec *vault.Record, s *transferSlot) (err error) {
		if s.skip = !filter.match(*rec); s.skip {
			return nil
		}
		s.row, err = plan.Transform(g.transformer, rec.ID, rec.Country, rec.Fields, now, s.row)
		return err
	}, func(_ *vault.Record, s *transferSlot) error {
		if s.skip {
			return nil
		}
		return spool.Add(s.row)
	})
	if err != nil {
		g.internal(w, r, "transfer", err)
		return
	}
	total, suppressed := spool.Total(), spool.Suppressed()
	e.Transfer.Rows, e.Transfer.Suppressed = total-suppressed, suppressed
	if transfer.Refuse(suppressed, total, d.MaxSuppressed) {
		deny(http.StatusUnprocessableEntity, "reidentification_risk",
			fmt.Sprintf("%d of %d records are in groups smaller than k=%d, more than the %.0f%% the destination allows; nothing was sent", suppressed, total, d.K, 100*d.MaxSuppressed))
		return
	}
	// The quota: reserve the planned rows in the ledger, atomically with
	// the count of the day's transfers, before the decision is logged.
	if g.ledger == nil {
		writeError(w, http.StatusServiceUnavailable, "ledger_unavailable", "the transfer ledger is not available, so nothing was sent")
		return
	}
	start := ledger.Start{Time: now, Destination: d.Name, Country: d.Country, LegalBasis: d.LegalBasis, Format: format,
		RequesterRoles: p.Roles, RequesterCountry: p.Country, Rows: total - suppressed, Suppressed: suppressed}
	for _, f := range e.Fields {
		start.Fields = append(start.Fields, transfer.FieldForm{Name: f.Name, Form: f.Form})
	}
	id, err := g.ledger.Reserve(r.Context(), start, d.DailyQuota)
	var qe *ledger.QuotaError
	switch {
	case errors.As(err, &qe):
		deny(http.StatusTooManyRequests, "quota_exceeded", err.Error())
		return
	case err != nil:
		g.log.Error("transfer: the ledger cannot reserve the quota; nothing sent", "error", err, "destination", d.Name)
		writeError(w, http.StatusServiceUnavailable, "ledger_unavailable", "the transfer ledger cannot record this transfer, so nothing was sent")
		return
	}
	ctx := context.WithoutCancel(r.Context()) // the ledger is written even if the client goes away
	e.Decision = auditlog.Allow
	if !g.record(w, r, e) {
		if err := g.ledger.Cancel(ctx, id); err != nil {
			g.log.Error("transfer: not logged, and its quota reservation not released (it counts for the day)", "error", err, "destination", d.Name)
		}
		return
	}
	decided, _ := strconv.ParseUint(w.Header().Get(HeaderLogIndex), 10, 64)
	end := &transferEnd{p: p, pctx: pctx, d: d, format: format, decision: e, decided: decided, id: id, suppressed: suppressed}
	if err := g.ledger.Begin(ctx, id, decided); err != nil {
		g.log.Error("transfer: decided but the ledger cannot record it; nothing sent", "error", err, "destination", d.Name)
		g.endTransfer(ctx, end, transfer.Summary{}, false, "the transfer ledger could not record the decision; nothing was sent")
		writeError(w, http.StatusServiceUnavailable, "ledger_unavailable", "the transfer ledger cannot record this transfer, so nothing was sent")
		return
	}

	// Stream the spooled rows that are in large enough groups.
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Trailer", "Clover-Transfer-Sha256, Clover-Transfer-Rows, Clover-Transfer-Log-Index")
	h.Set("Clover-Transfer-Planned-Rows", strconv.Itoa(total-suppressed))
	w.WriteHeader(http.StatusOK)
	exp, err := transfer.NewExporter(w, format, plan.Columns())
	if err != nil {
		g.log.Error("transfer: exporter", "error", err)
		g.endTransfer(ctx, end, transfer.Summary{}, false, "the exporter could not start; nothing was sent")
		return
	}
	streamErr := spool.Replay(r.Context(), exp)
	sum, closeErr := exp.Close()
	complete := streamErr == nil && closeErr == nil
	detail := ""
	switch {
	case errors.Is(streamErr, spill.ErrCorrupt):
		// Not a client going away (whose errors may name its address, so
		// are not logged): the spill file was altered on disk.
		g.log.Error("transfer: the spill file failed its integrity check; the stream was stopped", "error", streamErr, "destination", d.Name)
		detail = "the spill file failed its integrity check; rows and digest are of what was sent"
	case !complete:
		detail = "stream ended early; rows and digest are of what was sent"
	}
	idx, ok := g.endTransfer(ctx, end, sum, complete, detail)
	if !ok {
		return
	}
	h.Set("Clover-Transfer-Sha256", sum.SHA256)
	h.Set("Clover-Transfer-Rows", strconv.Itoa(sum.Rows))
	h.Set("Clover-Transfer-Log-Index", strconv.FormatUint(idx, 10))
}

// transferSlot is one scan worker's result for one record: its transformed
// row, or skip when the filter rejects it.
type transferSlot struct {
	row  transfer.Row
	skip bool
}

// transferEnd is what ending a decided transfer needs.
type transferEnd struct {
	p          authn.Principal
	pctx       policy.Context
	d          transfer.Destination
	format     string
	decision   *auditlog.Entry
	decided    uint64
	id         ledger.ID
	suppressed int
}

// endTransfer writes the log entry that ends a transfer (what was actually
// sent, and its digest), then settles the transfer in the ledger, so that
// the rows sent replace the planned rows in the quota. It returns the end
// entry's index, and false if it could not be logged.
func (g *Gateway) endTransfer(ctx context.Context, t *transferEnd, sum transfer.Summary, complete bool, detail string) (uint64, bool) {
	end := g.transferEntry(t.p, t.pctx, t.d, t.format)
	end.Decision, end.Status, end.Policy, end.Fields = auditlog.Allow, http.StatusOK, t.decision.Policy, t.decision.Fields
	end.Transfer.Rows, end.Transfer.Suppressed, end.Transfer.Bytes = sum.Rows, t.suppressed, sum.Bytes
	end.Transfer.SHA256, end.Transfer.Complete, end.Transfer.Decided = sum.SHA256, complete, &t.decided
	end.Detail = detail
	settled := ledger.End{Time: end.Time, Rows: sum.Rows, Bytes: sum.Bytes, SHA256: sum.SHA256, Complete: complete}
	idx, logErr := g.audit.AppendEntry(ctx, end)
	if logErr != nil {
		g.log.Error("transfer sent but its ledger entry was not recorded", "error", logErr, "destination", t.d.Name)
	} else {
		settled.Index = &idx
	}
	if err := g.ledger.Settle(ctx, t.id, settled); err != nil {
		g.log.Error("transfer ended but the ledger cannot settle it; its planned rows count for the day", "error", err, "destination", t.d.Name)
	}
	return idx, logErr == nil
}

// TransferLedger records transfers from their quota reservation to their
// end, and lists them; *ledger.Ledger is one. Reserve refuses with a
// *ledger.QuotaError a transfer that would take its destination over its
// daily quota; see the ledger package for the order of the calls.
type TransferLedger interface {
	Reserve(ctx context.Context, s ledger.Start, quota int) (ledger.ID, error)
	Begin(ctx context.Context, id ledger.ID, decided uint64) error
	Cancel(ctx context.Context, id ledger.ID) error
	Settle(ctx context.Context, id ledger.ID, e ledger.End) error
	List(ctx context.Context, f ledger.Filter) ([]ledger.Transfer, error)
}

var _ TransferLedger = (*ledger.Ledger)(nil)

// transferLedger returns l, or an in-memory ledger when l is nil (with a
// warning: its quotas restart from zero with the process); nil if that
// cannot be opened, and transfers then fail closed with 503.
func (g *Gateway) transferLedger(l TransferLedger) TransferLedger {
	if l != nil {
		return l
	}
	mem, err := ledger.OpenMemory()
	if err != nil {
		g.log.Error("transfer ledger: none given and none can be made in memory; transfers are refused", "error", err)
		return nil
	}
	g.log.Warn("transfer ledger in memory: daily transfer quotas restart from zero with the process")
	return mem
}

const (
	// Transfer listing page sizes.
	defaultTransferLimit = 100
	maxTransferLimit     = 1000
	// maxTimeParam caps the length of ?since= and ?until=.
	maxTimeParam = 64
)

type transferRequester struct {
	Roles   []string `json:"roles"`
	Country string   `json:"country,omitempty"`
}

// transferItem is one transfer of GET /v1/transfers.
type transferItem struct {
	DecidedIndex uint64               `json:"decided_index"`
	EndIndex     *uint64              `json:"end_index,omitempty"`
	State        ledger.State         `json:"state"`
	Started      string               `json:"started"`
	Ended        string               `json:"ended,omitempty"`
	Destination  string               `json:"destination"`
	Country      string               `json:"country"`
	LegalBasis   string               `json:"legal_basis"`
	Format       string               `json:"format"`
	Requester    transferRequester    `json:"requester"`
	Fields       []transfer.FieldForm `json:"fields"`
	PlannedRows  int                  `json:"planned_rows"`
	Suppressed   int                  `json:"suppressed"`
	Rows         *int                 `json:"rows,omitempty"`
	Bytes        *int64               `json:"bytes,omitempty"`
	SHA256       string               `json:"sha256,omitempty"`
}

type transfersResponse struct {
	Transfers []transferItem `json:"transfers"`
	// NextAfter is the after of the next page; null on the last page.
	NextAfter *uint64 `json:"next_after"`
}

// listTransfers answers GET
// /v1/transfers[?destination=&since=&until=&limit=&after=]: the transfer
// ledger, newest first, for a data-protection officer (role dpo) or a
// transfer officer (role transfer-officer). Like the access listing it is
// decided by role, not by policy, and not logged: it holds no personal
// data (the requester appears by roles and country), and each item names
// the log entries that decided and ended the transfer, which are the record.
func (g *Gateway) listTransfers(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	if !p.HasRole("dpo") && !p.HasRole("transfer-officer") {
		writeError(w, http.StatusForbidden, "forbidden", "only a data-protection officer (role dpo) or a transfer officer (role transfer-officer) may list transfers")
		return
	}
	f, none, ok := transfersQuery(w, r)
	if !ok {
		return
	}
	if g.ledger == nil {
		writeError(w, http.StatusServiceUnavailable, "ledger_unavailable", "the transfer ledger is not available")
		return
	}
	limit := f.Limit
	var items []ledger.Transfer
	if !none {
		f.Limit++
		var err error
		if items, err = g.ledger.List(r.Context(), f); err != nil {
			g.internal(w, r, "list transfers", err)
			return
		}
	}
	resp := transfersResponse{Transfers: make([]transferItem, 0, min(len(items), limit))}
	if len(items) > limit {
		items = items[:limit]
		next := items[limit-1].Decided
		resp.NextAfter = &next
	}
	for _, t := range items {
		it := transferItem{DecidedIndex: t.Decided, State: t.State, Started: t.Time.UTC().Format(auditlog.TimeLayout),
			Destination: t.Destination, Country: t.Country, LegalBasis: t.LegalBasis, Format: t.Format,
			Requester: transferRequester{Roles: t.RequesterRoles, Country: t.RequesterCountry},
			Fields:    t.Fields, PlannedRows: t.Rows, Suppressed: t.Suppressed}
		if it.Requester.Roles == nil {
			it.Requester.Roles = []string{}
		}
		if it.Fields == nil {
			it.Fields = []transfer.FieldForm{}
		}
		if e := t.End; e != nil {
			it.EndIndex, it.Ended, it.Rows, it.Bytes, it.SHA256 = e.Index, e.Time.UTC().Format(auditlog.TimeLayout), &e.Rows, &e.Bytes, e.SHA256
		}
		resp.Transfers = append(resp.Transfers, it)
	}
	writeJSON(w, http.StatusOK, resp)
}

// transfersQuery parses the listing's query: destination (a destination
// name), since and until (RFC 3339 times bounding the start, since
// inclusive, until exclusive), limit (1..1000, default 100) and after (a
// decided log index: the listing continues with older transfers). none
// reports a query that can match nothing (after=0).
func transfersQuery(w http.ResponseWriter, r *http.Request) (f ledger.Filter, none, ok bool) {
	bad := func(msg string) (ledger.Filter, bool, bool) {
		writeError(w, http.StatusBadRequest, "invalid_query", msg)
		return ledger.Filter{}, false, false
	}
	q := r.URL.Query()
	for k, vs := range q {
		switch k {
		case "destination", "since", "until", "limit", "after":
		default:
			return bad(fmt.Sprintf("unknown query parameter %q", truncate(printable(k), 64)))
		}
		if len(vs) > 1 {
			return bad("give query parameter " + k + " at most once")
		}
	}
	f.Limit = defaultTransferLimit
	if q.Has("destination") {
		if f.Destination = q.Get("destination"); !validDestinationName(f.Destination) {
			return bad(fmt.Sprintf("query parameter destination %q is not a destination name (a-z, 0-9 and '-', at most 40, starting with a letter)",
				truncate(printable(f.Destination), 64)))
		}
	}
	for _, t := range []struct {
		name string
		into *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if !q.Has(t.name) {
			continue
		}
		v := q.Get(t.name)
		parsed, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || len(v) > maxTimeParam {
			return bad(fmt.Sprintf("query parameter %s %q is not an RFC 3339 time such as 2026-11-23T00:00:00Z", t.name, truncate(printable(v), 64)))
		}
		*t.into = parsed
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return bad("query parameter until must be later than since")
	}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxTransferLimit {
			return bad(fmt.Sprintf("query parameter limit must be an integer from 1 to %d", maxTransferLimit))
		}
		f.Limit = n
	}
	if q.Has("after") {
		n, err := strconv.ParseUint(q.Get("after"), 10, 63)
		if err != nil {
			return bad("query parameter after must be a log index: a non-negative integer")
		}
		f.AfterIndex, none = n, n == 0
	}
	return f, none, true
}

// validDestinationName reports whether s has the shape of a destination
// name (transfer.Destination.Name).
func validDestinationName(s string) bool {
	if len(s) == 0 || len(s) > 40 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
