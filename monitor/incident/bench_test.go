package incident

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkCommitToDelivery measures the alert latency: from the start of
// a Commit that creates an incident (fsynced, synchronous=FULL) to the
// webhook's arrival at a local receiver, with Wake and an hour-long poll.
// It reports the median and 99th percentile.
func BenchmarkCommitToDelivery(b *testing.B) {
	arrived := make(chan time.Time, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- time.Now()
	}))
	defer srv.Close()
	target := Target{Name: "ops", URL: srv.URL, Secret: testSecret}
	s, err := Open(filepath.Join(b.TempDir(), "monitor.db"), WithTargets(target))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	n := NewNotifier(s, []Target{target}, srv.Client(), slog.New(slog.NewTextHandler(io.Discard, nil)), WithPollInterval(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := s.Commit(ctx, Batch{Incidents: []Incident{alert(strconv.Itoa(i), High, uint64(i))}}); err != nil {
			b.Fatal(err)
		}
		n.Wake()
		lat = append(lat, (<-arrived).Sub(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}
