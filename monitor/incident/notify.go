package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Notifier defaults.
const (
	DefaultBackoffBase    = time.Second
	DefaultBackoffMax     = 5 * time.Minute
	DefaultPollInterval   = 30 * time.Second
	DefaultAttemptTimeout = 30 * time.Second

	// batchSize is the most rows a target's worker reads at once.
	batchSize = 100
	// maxReason is the most bytes of a failure kept in the outbox.
	maxReason = 500
)

// Notifier delivers the outbox to the webhook targets. Each target has its
// own worker, so a slow or failing target delays only its own deliveries.
// Within a target, due deliveries are sent oldest first; after a failure the
// target waits for that delivery's backoff before trying anything else.
type Notifier struct {
	store   *Store
	targets []Target
	client  *http.Client
	log     *slog.Logger
	cfg     notifierConfig
	wake    []chan struct{}
	running atomic.Bool
}

type notifierConfig struct {
	base, max, poll, timeout time.Duration
	jitter                   func() float64 // in [0, 1)
	// idle, if set (by tests), is called with the target's index each time
	// its worker starts waiting.
	idle func(int)
}

// A NotifierOption configures NewNotifier.
type NotifierOption func(*notifierConfig)

// WithBackoff sets the delay after a first failed attempt (base, doubled
// after each further failure) and its cap. The defaults are
// DefaultBackoffBase and DefaultBackoffMax.
func WithBackoff(base, maxDelay time.Duration) NotifierOption {
	return func(c *notifierConfig) { c.base, c.max = base, maxDelay }
}

// WithPollInterval sets how often a worker looks at the outbox when nothing
// wakes it (DefaultPollInterval). Wake makes delivery prompt regardless.
func WithPollInterval(d time.Duration) NotifierOption {
	return func(c *notifierConfig) { c.poll = d }
}

// WithAttemptTimeout bounds one delivery attempt (DefaultAttemptTimeout).
func WithAttemptTimeout(d time.Duration) NotifierOption {
	return func(c *notifierConfig) { c.timeout = d }
}

// NewNotifier returns a notifier of s's outbox to targets, sending with
// client (a client with a DefaultAttemptTimeout timeout if nil) and logging
// to logger (slog.Default() if nil). The targets are checked by Run.
func NewNotifier(s *Store, targets []Target, client *http.Client, logger *slog.Logger, opts ...NotifierOption) *Notifier {
	cfg := notifierConfig{
		base: DefaultBackoffBase, max: DefaultBackoffMax, poll: DefaultPollInterval,
		timeout: DefaultAttemptTimeout, jitter: rand.Float64,
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	if client == nil {
		client = &http.Client{Timeout: cfg.timeout}
	}
	if logger == nil {
		logger = slog.Default()
	}
	n := &Notifier{store: s, targets: append([]Target(nil), targets...), client: client, log: logger, cfg: cfg}
	for range n.targets {
		n.wake = append(n.wake, make(chan struct{}, 1))
	}
	return n
}

func (c *notifierConfig) validate() error {
	if c.base <= 0 || c.max < c.base || c.poll <= 0 || c.timeout <= 0 {
		return invalid("incident: notifier: backoff %v..%v, poll %v, timeout %v: durations must be positive and base <= max",
			c.base, c.max, c.poll, c.timeout)
	}
	return nil
}

// Wake makes every worker look at the outbox now, as Commit's caller does
// after Commit created incidents. It never blocks.
func (n *Notifier) Wake() {
	for _, w := range n.wake {
		select {
		case w <- struct{}{}:
		default: // a wake is already pending
		}
	}
}

// Run delivers the outbox until ctx is done, then returns nil. It fails at
// once if a target is invalid, two targets share a name, or Run is already
// running.
func (n *Notifier) Run(ctx context.Context) error {
	if err := n.cfg.validate(); err != nil {
		return err
	}
	seen := make(map[string]bool)
	for _, t := range n.targets {
		if err := ValidateTarget(t); err != nil {
			return err
		}
		if seen[t.Name] {
			return fmt.Errorf("incident: notifier: duplicate webhook target %q: %w", t.Name, ErrInvalid)
		}
		seen[t.Name] = true
	}
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("incident: notifier: already running")
	}
	defer n.running.Store(false)
	for _, t := range n.targets {
		if !slices.Contains(n.store.targets, t.Name) {
			n.log.Warn("webhook target not given to the store: Commit enqueues nothing for it", "target", t.Name)
		}
	}
	if pending, err := n.store.Pending(ctx); err == nil {
		for name, count := range pending {
			if !seen[name] {
				n.log.Warn("webhook deliveries pending for a target not configured", "target", name, "pending", count)
			}
		}
	}
	var wg sync.WaitGroup
	for i := range n.targets {
		wg.Go(func() { n.work(ctx, i) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// work is target i's worker.
func (n *Notifier) work(ctx context.Context, i int) {
	var blocked time.Time // no attempt before this, after a failure
	for {
		wait := n.round(ctx, &n.targets[i], &blocked)
		timer := time.NewTimer(wait)
		if n.cfg.idle != nil {
			n.cfg.idle(i)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-n.wake[i]:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// round delivers the target's due rows and returns how long to wait before
// the next round.
func (n *Notifier) round(ctx context.Context, t *Target, blocked *time.Time) time.Duration {
	now := time.Now()
	if now.Before(*blocked) {
		return min(blocked.Sub(now), n.cfg.poll)
	}
	rows, err := n.store.due(ctx, t.Name, now, batchSize)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("reading webhook outbox", "target", t.Name, "error", err)
		}
		return min(n.cfg.base, n.cfg.poll)
	}
	for _, r := range rows {
		err := n.send(ctx, t, &r)
		attempts := r.Attempts + 1
		if err == nil {
			// Record the delivery even if ctx ended meanwhile: the target has it.
			mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), busyTimeout)
			err := n.store.markDelivered(mctx, r.ID, attempts, time.Now())
			cancel()
			if err != nil {
				n.log.Error("recording webhook delivery", "target", t.Name, "delivery", r.ID, "error", err)
				return min(n.cfg.base, n.cfg.poll)
			}
			n.log.Debug("webhook delivered", "target", t.Name, "delivery", r.ID, "incident", r.IncidentID, "attempts", attempts)
			continue
		}
		if ctx.Err() != nil {
			return 0 // shutting down: the attempt does not count
		}
		delay := backoff(n.cfg.base, n.cfg.max, attempts, n.cfg.jitter())
		*blocked = time.Now().Add(delay)
		reason := err.Error()
		if len(reason) > maxReason {
			reason = reason[:maxReason]
		}
		n.log.Warn("webhook delivery failed", "target", t.Name, "delivery", r.ID, "incident", r.IncidentID,
			"attempts", attempts, "retry_in", delay, "error", reason)
		if err := n.store.markFailed(ctx, r.ID, attempts, *blocked, reason); err != nil {
			n.log.Error("recording webhook failure", "target", t.Name, "delivery", r.ID, "error", err)
		}
		return min(delay, n.cfg.poll)
	}
	if len(rows) == batchSize {
		return 0
	}
	next, ok, err := n.store.nextAttempt(ctx, t.Name)
	if err != nil || !ok {
		return n.cfg.poll
	}
	return min(max(time.Until(next), 0), n.cfg.poll)
}

// backoff is the delay after the attempt-th failed attempt (1, 2, ...):
// base doubled attempt-1 times, capped at maxDelay, plus up to a quarter
// more of jitter (jitter in [0, 1)), capped again.
func backoff(base, maxDelay time.Duration, attempt int, jitter float64) time.Duration {
	d := maxDelay
	if shift := attempt - 1; shift < 62 && base <= maxDelay>>shift {
		d = base << shift
	}
	d += time.Duration(float64(d) / 4 * jitter)
	return min(d, maxDelay)
}

// send makes one delivery attempt: a signed JSON POST of the payload.
func (n *Notifier) send(ctx context.Context, t *Target, r *pendingDelivery) error {
	body, err := json.Marshal(struct {
		ID       int64           `json:"id"`
		Delivery int64           `json:"delivery"`
		Incident json.RawMessage `json:"incident"`
	}{r.IncidentID, r.ID, r.incident})
	if err != nil {
		return fmt.Errorf("encode payload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("cannot build request for the target's URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "clover-monitor")
	req.Header.Set(SignatureHeader, Sign(t.Secret, time.Now(), body))
	req.Header.Set(DeliveryHeader, strconv.FormatInt(r.ID, 10))
	resp, err := n.client.Do(req)
	if err != nil {
		// The URL may carry a token: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("target answered %d", resp.StatusCode)
	}
	return nil
}
