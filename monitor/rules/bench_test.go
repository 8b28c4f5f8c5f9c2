package rules

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
)

// benchEntries returns n entries of a realistic mix at 20,000 entries/s:
// 1000 actors (a tenth of them services, a few outside the EEA) reading
// from 100,000 subjects, with some denials, writes, re-identifications,
// break-glass reads and transfers.
func benchEntries(n int) []auditlog.Entry {
	rng := rand.New(rand.NewPCG(1, 2))
	actors := make([]*auditlog.Actor, 1000)
	for i := range actors {
		a := &auditlog.Actor{Sub: fmt.Sprintf("actor-%d", i), Type: "Employee", Roles: []string{"support"}, Country: "IE"}
		if i%10 == 0 {
			a.Type, a.Roles = "Service", []string{"service"}
		}
		if i%97 == 0 {
			a.Country = "US"
		}
		actors[i] = a
	}
	subjects := make([]string, 100_000)
	for i := range subjects {
		subjects[i] = subj(i)
	}
	start := time.Date(2026, 11, 18, 18, 0, 0, 0, time.UTC) // runs past 20:00 for large n
	out := make([]auditlog.Entry, n)
	for i := range out {
		tm := start.Add(time.Duration(i) * 50 * time.Microsecond)
		e := auditlog.Entry{Time: tm, Kind: auditlog.KindDecision, Action: "read", Site: "ie-dublin",
			Actor: actors[rng.IntN(len(actors))], Subject: subjects[rng.IntN(len(subjects))], Decision: auditlog.Allow,
			Fields:  []auditlog.Field{{Name: "email", Form: "masked"}, {Name: "name", Form: "raw"}},
			Purpose: "support", Context: &auditlog.RequestContext{SubjectCountry: "IE", Hour: tm.Hour(), Weekday: "Wed"}}
		switch r := rng.IntN(1000); {
		case r < 50:
			e.Decision = auditlog.Deny
		case r < 150:
			e.Kind, e.Action = auditlog.KindWrite, "write"
		case r < 152:
			e.Kind, e.Action = auditlog.KindReidentify, "reidentify"
		case r < 153:
			e.Grant = "break-glass:INC-1"
		case r < 154:
			e.Kind, e.Action, e.Subject, e.Site = auditlog.KindTransfer, "transfer", "", "partner"
		}
		out[i] = e
	}
	return out
}

func BenchmarkObserve(b *testing.B) {
	entries := benchEntries(1 << 18)
	e, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	alerts := 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Indexes and times keep growing across passes over the entries.
		en := &entries[i%len(entries)]
		if i >= len(entries) {
			en.Time = en.Time.Add(time.Duration(len(entries)) * 50 * time.Microsecond)
		}
		alerts += len(e.Observe(uint64(i), en))
		i++
	}
	b.ReportMetric(float64(alerts)/float64(i), "alerts/op")
}
