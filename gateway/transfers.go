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
	"sync"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/authn"
	"github.com/cloverenclave/clover/enclave"
	"github.com/cloverenclave/clover/policy"
	"github.com/cloverenclave/clover/transfer"
	"github.com/cloverenclave/clover/vault"
)

// transferRequest is the body of POST /v1/transfers.
type transferRequest struct {
	Destination string                     `json:"destination"`
	Purpose     string                     `json:"purpose"`
	Fields      []string                   `json:"fields"`
	Filter      map[string]json.RawMessage `json:"filter"`
}

// quotas counts the rows sent to each destination per UTC day. It lives in
// memory: a restart resets the day's counts (documented in docs/api.md).
type quotas struct {
	mu   sync.Mutex
	day  string
	sent map[string]int
}

func (q *quotas) today(now time.Time, dest string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	return q.sent[dest]
}

func (q *quotas) add(now time.Time, dest string, n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now)
	q.sent[dest] += n
}

func (q *quotas) roll(now time.Time) {
	if d := now.UTC().Format(time.DateOnly); d != q.day || q.sent == nil {
		q.day, q.sent = d, map[string]int{}
	}
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

	// First pass: the transformed quasi-identifiers' group sizes.
	now := g.now()
	grouper := transfer.NewGrouper(d.K)
	var qbuf []json.RawMessage
	err = g.vault.Scan(r.Context(), func(rec vault.Record) error {
		if !filter.match(rec) {
			return nil
		}
		q, err := plan.TransformQuasi(g.transformer, rec.Country, rec.Fields, now, qbuf)
		if err != nil {
			return err
		}
		qbuf = q
		grouper.AddRaw(q)
		return nil
	})
	if err != nil {
		g.internal(w, r, "transfer", err)
		return
	}
	total, suppressed := grouper.Total(), grouper.Suppressed()
	e.Transfer.Rows, e.Transfer.Suppressed = total-suppressed, suppressed
	if transfer.Refuse(suppressed, total, d.MaxSuppressed) {
		deny(http.StatusUnprocessableEntity, "reidentification_risk",
			fmt.Sprintf("%d of %d records are in groups smaller than k=%d, more than the %.0f%% the destination allows; nothing was sent", suppressed, total, d.K, 100*d.MaxSuppressed))
		return
	}
	if err := transfer.CheckQuota(d, g.quotas.today(now, d.Name), total-suppressed); err != nil {
		deny(http.StatusTooManyRequests, "quota_exceeded", err.Error())
		return
	}
	e.Decision = auditlog.Allow
	if !g.record(w, r, e) {
		return
	}
	decided, _ := strconv.ParseUint(w.Header().Get(HeaderLogIndex), 10, 64)

	// Second pass: stream the rows that are in large enough groups.
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("Trailer", "Clover-Transfer-Sha256, Clover-Transfer-Rows, Clover-Transfer-Log-Index")
	h.Set("Clover-Transfer-Planned-Rows", strconv.Itoa(total-suppressed))
	w.WriteHeader(http.StatusOK)
	exp, err := transfer.NewExporter(w, format, plan.Columns())
	if err != nil {
		g.log.Error("transfer: exporter", "error", err)
		return
	}
	var row transfer.Row
	streamErr := g.vault.Scan(r.Context(), func(rec vault.Record) error {
		if !filter.match(rec) {
			return nil
		}
		var err error
		if row, err = plan.Transform(g.transformer, rec.ID, rec.Country, rec.Fields, now, row); err != nil {
			return err
		}
		if qbuf = plan.Quasi(row, qbuf); !grouper.KeepRaw(qbuf) {
			return nil
		}
		return exp.Write(row)
	})
	sum, closeErr := exp.Close()
	complete := streamErr == nil && closeErr == nil
	g.quotas.add(now, d.Name, sum.Rows)

	// The ledger: what was actually sent, and its digest.
	end := g.transferEntry(p, pctx, d, format)
	end.Decision, end.Status, end.Policy, end.Fields = auditlog.Allow, http.StatusOK, e.Policy, e.Fields
	end.Transfer.Rows, end.Transfer.Suppressed, end.Transfer.Bytes = sum.Rows, suppressed, sum.Bytes
	end.Transfer.SHA256, end.Transfer.Complete, end.Transfer.Decided = sum.SHA256, complete, &decided
	if !complete {
		end.Detail = "stream ended early; rows and digest are of what was sent"
	}
	// The client may be gone; the ledger entry is written regardless.
	idx, err := g.audit.AppendEntry(context.WithoutCancel(r.Context()), end)
	if err != nil {
		g.log.Error("transfer sent but its ledger entry was not recorded", "error", err, "destination", d.Name)
		return
	}
	h.Set("Clover-Transfer-Sha256", sum.SHA256)
	h.Set("Clover-Transfer-Rows", strconv.Itoa(sum.Rows))
	h.Set("Clover-Transfer-Log-Index", strconv.FormatUint(idx, 10))
}
