package monitor

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the monitor's Prometheus metrics. None carries an actor,
// a subject or anything else from an entry beyond its rule and severity.
type metrics struct {
	reg           *prometheus.Registry
	entries       prometheus.Counter
	checkpoints   prometheus.Counter
	size          prometheus.Gauge
	pollErrors    prometheus.Counter
	violations    *prometheus.CounterVec
	disagreements prometheus.Counter
	incidents     *prometheus.CounterVec
	probes        *prometheus.CounterVec
	detect        prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		entries: prometheus.NewCounter(prometheus.CounterOpts{Name: "clover_monitor_entries_verified_total",
			Help: "Log entries verified, replayed and run through the rules."}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{Name: "clover_monitor_checkpoints_verified_total",
			Help: "Checkpoints verified (signature, consistency and every entry)."}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clover_monitor_log_size",
			Help: "Entries of the log verified so far."}),
		pollErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "clover_monitor_poll_errors_total",
			Help: "Polls that could not read the log."}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clover_monitor_log_violations_total",
			Help: "Polls that found the log violating its guarantees, by kind."}, []string{"kind"}),
		disagreements: prometheus.NewCounter(prometheus.CounterOpts{Name: "clover_monitor_replay_disagreements_total",
			Help: "Logged decisions that the policy in force did not allow."}),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clover_monitor_incidents_total",
			Help: "Incidents raised, by severity and rule."}, []string{"severity", "rule"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clover_monitor_probes_total",
			Help: "Canary probe results, by outcome."}, []string{"outcome"}),
		detect: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "clover_monitor_detect_seconds",
			Help:    "From the start of the poll that found an entry to its incident being stored.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5}}),
	}
	m.reg.MustRegister(m.entries, m.checkpoints, m.size, m.pollErrors, m.violations, m.disagreements,
		m.incidents, m.probes, m.detect, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}
