package incident

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Delivery is an outbox row: one incident to send to one webhook target.
type Delivery struct {
	ID          int64
	IncidentID  int64
	Target      string
	Created     time.Time
	Attempts    int
	NextAttempt time.Time
	LastError   string    // the last failure, "" if none
	Delivered   time.Time // zero while pending
}

// enqueue puts one delivery of in per target in the outbox, inside tx.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, in *Incident, now time.Time) error {
	if len(s.targets) == 0 {
		return nil
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode incident %d: %w", in.ID, err)
	}
	const q = `INSERT INTO outbox (incident_id, target, incident, created, next_attempt) VALUES (?, ?, ?, ?, ?)`
	for _, t := range s.targets {
		if _, err := tx.ExecContext(ctx, q, in.ID, t, string(body), now.UnixMicro(), now.UnixMicro()); err != nil {
			return fmt.Errorf("enqueue incident %d for %q: %w", in.ID, t, err)
		}
	}
	return nil
}

const deliveryColumns = `id, incident_id, target, created, attempts, next_attempt, last_error, delivered`

func scanDelivery(row scanner, extra ...any) (Delivery, error) {
	var d Delivery
	var created, next, delivered int64
	dest := append([]any{&d.ID, &d.IncidentID, &d.Target, &created, &d.Attempts, &next, &d.LastError, &delivered}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Delivery{}, err
	}
	d.Created, d.NextAttempt, d.Delivered = fromMicros(created), fromMicros(next), fromMicros(delivered)
	return d, nil
}

// Deliveries returns the outbox rows of an incident, in ID order.
func (s *Store) Deliveries(ctx context.Context, incidentID int64) ([]Delivery, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM outbox WHERE incident_id = ? ORDER BY id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("incident: deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("incident: deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incident: deliveries: %w", err)
	}
	return out, nil
}

// Pending returns how many deliveries are not yet delivered, per target.
func (s *Store) Pending(ctx context.Context) (map[string]int, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT target, COUNT(*) FROM outbox WHERE delivered = 0 GROUP BY target`)
	if err != nil {
		return nil, fmt.Errorf("incident: pending deliveries: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var t string
		var n int
		if err := rows.Scan(&t, &n); err != nil {
			return nil, fmt.Errorf("incident: pending deliveries: %w", err)
		}
		out[t] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incident: pending deliveries: %w", err)
	}
	return out, nil
}

// pendingDelivery is a due outbox row with the incident JSON to send.
type pendingDelivery struct {
	Delivery
	incident json.RawMessage
}

// due returns up to limit undelivered rows of target whose next attempt is
// at or before now, oldest first.
func (s *Store) due(ctx context.Context, target string, now time.Time, limit int) ([]pendingDelivery, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+deliveryColumns+`, incident FROM outbox
		WHERE target = ? AND delivered = 0 AND next_attempt <= ? ORDER BY id LIMIT ?`, target, now.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("incident: due deliveries: %w", err)
	}
	defer rows.Close()
	var out []pendingDelivery
	for rows.Next() {
		var p pendingDelivery
		var body string
		if p.Delivery, err = scanDelivery(rows, &body); err != nil {
			return nil, fmt.Errorf("incident: due deliveries: %w", err)
		}
		p.incident = json.RawMessage(body)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("incident: due deliveries: %w", err)
	}
	return out, nil
}

// nextAttempt returns the earliest next attempt of target's undelivered
// rows, and false if it has none.
func (s *Store) nextAttempt(ctx context.Context, target string) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.reader.QueryRowContext(ctx, `SELECT MIN(next_attempt) FROM outbox WHERE target = ? AND delivered = 0`, target).Scan(&next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("incident: next delivery: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromMicros(next.Int64), true, nil
}

// markDelivered records that delivery id was accepted at at.
func (s *Store) markDelivered(ctx context.Context, id int64, attempts int, at time.Time) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE outbox SET delivered = ?, attempts = ?, last_error = '' WHERE id = ?`,
		at.UnixMicro(), attempts, id)
	if err != nil {
		return fmt.Errorf("incident: mark delivery %d delivered: %w", id, err)
	}
	return oneRow(res, id)
}

// markFailed records a failed attempt of delivery id and when to retry.
func (s *Store) markFailed(ctx context.Context, id int64, attempts int, next time.Time, reason string) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?`,
		attempts, next.UnixMicro(), reason, id)
	if err != nil {
		return fmt.Errorf("incident: mark delivery %d failed: %w", id, err)
	}
	return oneRow(res, id)
}

func oneRow(res sql.Result, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("incident: delivery %d: %w", id, err)
	}
	if n != 1 {
		return fmt.Errorf("incident: delivery %d: %w", id, errors.New("no such row"))
	}
	return nil
}
