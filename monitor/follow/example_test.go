package follow_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/cloverenclave/clover/monitor/follow"
)

// A monitor loop: poll, handle each verified chunk, persist the state with
// what the chunk produced, stop on a violation.
func Example() {
	dir, verifierKey := "/var/lib/clover-monitor", "clover/eu+1234abcd+AAAA..."
	statePath := filepath.Join(dir, "follow.state")

	var st follow.State
	if b, err := os.ReadFile(statePath); err == nil {
		if err := st.UnmarshalBinary(b); err != nil {
			slog.Error("saved state", "err", err)
			return
		}
	}
	src, err := auditlog.NewHTTPFetcher("https://clover.example/log/", nil)
	if err != nil {
		return
	}
	f, err := follow.New(src, verifierKey, st, follow.Options{})
	if err != nil {
		slog.Error("follower", "err", err)
		return
	}
	ctx := context.Background()
	for {
		_, err := f.Poll(ctx, func(c follow.Chunk) error {
			// Process c.Entries here, then persist what they produced
			// together with c.State (in one transaction, or as here one
			// atomic file replacement).
			b, err := c.State.MarshalBinary()
			if err != nil {
				return err
			}
			tmp := statePath + ".tmp"
			if err := os.WriteFile(tmp, b, 0o600); err != nil {
				return err
			}
			return os.Rename(tmp, statePath)
		})
		var v *follow.Violation
		if errors.As(err, &v) {
			slog.Error("audit log violation", "kind", v.Kind, "msg", v.Msg)
			return
		}
		if err != nil {
			slog.Warn("poll", "err", err) // transient: retry
		}
		time.Sleep(10 * time.Second)
	}
}
