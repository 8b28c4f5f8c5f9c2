package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloverenclave/clover/auditlog"
	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// t0 is a Wednesday, 10:00 UTC: working hours.
var t0 = time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC)

func subj(i int) string { return fmt.Sprintf("%064x", i) }

func at(d time.Duration) time.Time { return t0.Add(d) }

// read returns an allowed read of subject s by actor sub at time t.
func read(sub string, s int, t time.Time) auditlog.Entry {
	return auditlog.Entry{Time: t, Kind: auditlog.KindDecision, Action: "read", Site: "ie-dublin",
		Actor:   &auditlog.Actor{Sub: sub, Type: "Employee", Country: "IE"},
		Subject: subj(s), Decision: auditlog.Allow, Purpose: "support",
		Context: &auditlog.RequestContext{SubjectCountry: "IE", Hour: t.Hour(), Weekday: t.Format("Mon")}}
}

func with(e auditlog.Entry, f func(*auditlog.Entry)) auditlog.Entry {
	a := *e.Actor
	e.Actor = &a
	f(&e)
	return e
}

func denied(e auditlog.Entry) auditlog.Entry {
	return with(e, func(e *auditlog.Entry) { e.Decision = auditlog.Deny })
}

// run feeds entries, at log indexes 0, 1, ..., to an engine of one rule and
// returns every alert.
func run(t *testing.T, r Rule, entries []auditlog.Entry) []Alert {
	t.Helper()
	if r.Name == "" {
		r.Name = "r"
	}
	if r.Severity == "" {
		r.Severity = High
	}
	e, err := New(Config{Rules: []Rule{r}})
	if err != nil {
		t.Fatal(err)
	}
	var out []Alert
	for i := range entries {
		out = append(out, e.Observe(uint64(i), &entries[i])...)
	}
	return out
}

type ruleCase struct {
	name    string
	entries []auditlog.Entry
	want    []Alert
}

func runCases(t *testing.T, r Rule, cases []ruleCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := run(t, r, c.entries)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("alerts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBulkAccess(t *testing.T) {
	r := Rule{BulkAccess: &BulkAccess{Subjects: 3, Window: time.Minute}}
	alert := func(idx []uint64, first, last time.Time, n int) []Alert {
		return []Alert{{Rule: "r", Severity: High, Actor: "alice", Indexes: idx, FirstSeen: first, LastSeen: last,
			Message: fmt.Sprintf("read %d distinct subjects within 1m0s (threshold 3)", n)}}
	}
	runCases(t, r, []ruleCase{
		{name: "fires above N", entries: []auditlog.Entry{
			read("alice", 1, at(0)), read("alice", 2, at(10*time.Second)),
			read("alice", 3, at(20*time.Second)), read("alice", 4, at(30*time.Second)),
		}, want: alert([]uint64{0, 1, 2, 3}, at(0), at(30*time.Second), 4)},
		{name: "evidence is latest read per subject", entries: []auditlog.Entry{
			read("alice", 1, at(0)), read("alice", 2, at(1)), read("alice", 1, at(2)),
			read("alice", 3, at(3)), read("alice", 4, at(4)),
		}, want: alert([]uint64{1, 2, 3, 4}, at(1), at(4), 4)},
		{name: "exactly N", entries: []auditlog.Entry{
			read("alice", 1, at(0)), read("alice", 2, at(1)), read("alice", 3, at(2)),
		}},
		{name: "repeated subjects", entries: []auditlog.Entry{
			read("alice", 1, at(0)), read("alice", 2, at(1)), read("alice", 3, at(2)),
			read("alice", 1, at(3)), read("alice", 2, at(4)), read("alice", 3, at(5)),
		}},
		{name: "outside the window", entries: []auditlog.Entry{
			read("alice", 1, at(0)), read("alice", 2, at(20*time.Second)),
			read("alice", 3, at(40*time.Second)), read("alice", 4, at(60*time.Second)),
		}},
		{name: "denied reads do not count", entries: []auditlog.Entry{
			read("alice", 1, at(0)), read("alice", 2, at(1)), read("alice", 3, at(2)),
			denied(read("alice", 4, at(3))),
		}},
		{name: "per actor", entries: []auditlog.Entry{
			read("alice", 1, at(0)), read("alice", 2, at(1)), read("bob", 3, at(2)), read("bob", 4, at(3)),
		}},
	})
}

func TestBulkAccessReRead(t *testing.T) {
	// Subject 1 re-read at 50s stays in the window at 61s, when its first
	// read has left: 4 distinct subjects (1, 2, 3, 4) in (1s, 61s].
	r := Rule{BulkAccess: &BulkAccess{Subjects: 3, Window: time.Minute}}
	got := run(t, r, []auditlog.Entry{
		read("alice", 1, at(0)), read("alice", 2, at(20*time.Second)),
		read("alice", 3, at(40*time.Second)), read("alice", 1, at(50*time.Second)),
		read("alice", 4, at(61*time.Second)),
	})
	want := []Alert{{Rule: "r", Severity: High, Actor: "alice", Indexes: []uint64{1, 2, 3, 4},
		FirstSeen: at(20 * time.Second), LastSeen: at(61 * time.Second),
		Message: "read 4 distinct subjects within 1m0s (threshold 3)"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
}

func TestDenials(t *testing.T) {
	r := Rule{Denials: &Denials{Count: 3, Window: 10 * time.Minute}}
	d := func(sub string, t time.Duration) auditlog.Entry { return denied(read(sub, 1, at(t))) }
	write := with(d("alice", 2*time.Minute), func(e *auditlog.Entry) { e.Kind, e.Action = auditlog.KindWrite, "write" })
	runCases(t, r, []ruleCase{
		{name: "fires at N", entries: []auditlog.Entry{d("alice", 0), read("alice", 2, at(time.Minute)), write, d("alice", 9*time.Minute)},
			want: []Alert{{Rule: "r", Severity: High, Actor: "alice", Indexes: []uint64{0, 2, 3},
				FirstSeen: at(0), LastSeen: at(9 * time.Minute), Message: "denied 3 times within 10m0s (threshold 3)"}}},
		{name: "just under", entries: []auditlog.Entry{d("alice", 0), d("alice", time.Minute), read("alice", 1, at(2*time.Minute))}},
		{name: "outside the window", entries: []auditlog.Entry{d("alice", 0), d("alice", 5*time.Minute), d("alice", 10*time.Minute)}},
		{name: "per actor", entries: []auditlog.Entry{d("alice", 0), d("bob", 0), d("alice", 1), d("bob", 1)}},
	})
}

func TestSuppression(t *testing.T) {
	r := Rule{Denials: &Denials{Count: 3, Window: time.Minute}}
	var entries []auditlog.Entry
	// A burst of 20 denials in 19s, then a second burst starting 2s after
	// the first alert's window has rolled over.
	for i := range 20 {
		entries = append(entries, denied(read("alice", 1, at(time.Duration(i)*time.Second))))
	}
	for i := range 5 {
		entries = append(entries, denied(read("alice", 1, at(62*time.Second+time.Duration(i)*time.Second))))
	}
	got := run(t, r, entries)
	want := []Alert{
		{Rule: "r", Severity: High, Actor: "alice", Indexes: []uint64{0, 1, 2}, FirstSeen: at(0), LastSeen: at(2 * time.Second),
			Message: "denied 3 times within 1m0s (threshold 3)"},
		// Quiet until 62s; the window at 62s holds 3s..19s and 62s.
		{Rule: "r", Severity: High, Actor: "alice", Indexes: []uint64{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20},
			FirstSeen: at(3 * time.Second), LastSeen: at(62 * time.Second), Message: "denied 18 times within 1m0s (threshold 3)"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
}

func TestTimeRegression(t *testing.T) {
	// An entry a little earlier than the latest counts as happening at the
	// latest time, so it neither falls out of nor reorders the window.
	r := Rule{Denials: &Denials{Count: 3, Window: time.Minute}}
	got := run(t, r, []auditlog.Entry{
		denied(read("alice", 1, at(0))), denied(read("alice", 1, at(30*time.Second))),
		denied(read("alice", 1, at(29*time.Second))),
	})
	want := []Alert{{Rule: "r", Severity: High, Actor: "alice", Indexes: []uint64{0, 1, 2}, FirstSeen: at(0),
		LastSeen: at(30 * time.Second), Message: "denied 3 times within 1m0s (threshold 3)"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
}

func TestCountry(t *testing.T) {
	from := func(c string, f func(*auditlog.Entry)) auditlog.Entry {
		return with(read("alice", 1, t0), func(e *auditlog.Entry) {
			e.Actor.Country = c
			if f != nil {
				f(e)
			}
		})
	}
	one := func(msg string) []Alert {
		return []Alert{{Rule: "r", Severity: High, Actor: "alice", Indexes: []uint64{0}, FirstSeen: t0, LastSeen: t0, Message: msg}}
	}
	runCases(t, Rule{Country: &Country{Allowed: []string{"EEA", "CH"}}}, []ruleCase{
		{name: "outside", entries: []auditlog.Entry{from("US", nil)}, want: one("read by an actor in US, outside the allowed countries")},
		{name: "unknown", entries: []auditlog.Entry{from("", nil)}, want: one("read by an actor with no country")},
		{name: "EEA", entries: []auditlog.Entry{from("IE", nil), from("NO", nil), from("DE", nil)}},
		{name: "listed", entries: []auditlog.Entry{from("CH", nil)}},
		{name: "denied", entries: []auditlog.Entry{from("US", func(e *auditlog.Entry) { e.Decision = auditlog.Deny })}},
		{name: "not a read", entries: []auditlog.Entry{from("US", func(e *auditlog.Entry) { e.Kind = auditlog.KindWrite })}},
	})
	runCases(t, Rule{Country: &Country{Allowed: []string{"EU"}, AllowUnknown: true}}, []ruleCase{
		{name: "unknown allowed", entries: []auditlog.Entry{from("", nil)}},
		{name: "EEA but not EU", entries: []auditlog.Entry{from("NO", nil)}, want: one("read by an actor in NO, outside the allowed countries")},
	})
}

func TestOffHours(t *testing.T) {
	r := Rule{OffHours: &OffHours{Start: 7, End: 20, Days: []string{"Sat", "Sun"}, ActorType: "Employee"}}
	wed := func(h, m int) auditlog.Entry {
		return read("alice", 1, time.Date(2026, 11, 18, h, m, 0, 0, time.UTC))
	}
	one := func(e auditlog.Entry, msg string) []Alert {
		return []Alert{{Rule: "r", Severity: High, Actor: "alice", Indexes: []uint64{0}, FirstSeen: e.Time, LastSeen: e.Time, Message: msg}}
	}
	early, late := wed(6, 59), wed(20, 0)
	sat := read("alice", 1, time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	// 08:30 in UTC+2 is 06:30 UTC.
	zoned := read("alice", 1, time.Date(2026, 11, 18, 8, 30, 0, 0, time.FixedZone("EET", 2*3600)))
	runCases(t, r, []ruleCase{
		{name: "early", entries: []auditlog.Entry{early}, want: one(early, "decision at 06:59 UTC, outside working hours 07:00-20:00")},
		{name: "late", entries: []auditlog.Entry{late}, want: one(late, "decision at 20:00 UTC, outside working hours 07:00-20:00")},
		{name: "weekend", entries: []auditlog.Entry{sat}, want: one(sat, "decision on a Saturday")},
		{name: "UTC", entries: []auditlog.Entry{zoned}, want: one(zoned, "decision at 06:30 UTC, outside working hours 07:00-20:00")},
		{name: "working hours", entries: []auditlog.Entry{wed(7, 0), wed(12, 0), wed(19, 59)}},
		{name: "other actor type", entries: []auditlog.Entry{with(early, func(e *auditlog.Entry) { e.Actor.Type = "Service" })}},
		{name: "denied", entries: []auditlog.Entry{denied(early)}},
	})
	runCases(t, Rule{OffHours: &OffHours{Start: 22, End: 6}}, []ruleCase{
		{name: "night shift works", entries: []auditlog.Entry{wed(23, 0), wed(2, 0), wed(5, 59)}},
		{name: "night shift off", entries: []auditlog.Entry{wed(12, 0)}, want: one(wed(12, 0), "decision at 12:00 UTC, outside working hours 22:00-06:00")},
	})
	runCases(t, Rule{OffHours: &OffHours{Start: 0, End: 24, Days: []string{"Sun"}}}, []ruleCase{
		{name: "days only", entries: []auditlog.Entry{wed(3, 0), sat}},
	})
}

func TestReidentify(t *testing.T) {
	reid := with(read("alice", 1, t0), func(e *auditlog.Entry) { e.Kind, e.Action = auditlog.KindReidentify, "reidentify" })
	glass := with(read("alice", 1, t0), func(e *auditlog.Entry) { e.Grant = "break-glass:INC-42" })
	one := func(msg string) []Alert {
		return []Alert{{Rule: "r", Severity: High, Actor: "alice", Indexes: []uint64{0}, FirstSeen: t0, LastSeen: t0, Message: msg}}
	}
	runCases(t, Rule{Reidentify: &Reidentify{}}, []ruleCase{
		{name: "allowed", entries: []auditlog.Entry{reid}, want: one("a token was re-identified")},
		{name: "denied", entries: []auditlog.Entry{denied(reid)}},
		{name: "a read", entries: []auditlog.Entry{read("alice", 1, t0), glass}},
	})
	runCases(t, Rule{Reidentify: &Reidentify{BreakGlass: true}}, []ruleCase{
		{name: "break-glass", entries: []auditlog.Entry{glass}, want: one(`break-glass decision under grant "break-glass:INC-42"`)},
		{name: "denied", entries: []auditlog.Entry{denied(glass)}},
		{name: "other grants", entries: []auditlog.Entry{reid, with(reid, func(e *auditlog.Entry) { e.Grant = "ticket-7" })}},
	})
}

func TestTransfer(t *testing.T) {
	to := func(dest string) auditlog.Entry {
		return with(read("svc", 0, t0), func(e *auditlog.Entry) {
			e.Kind, e.Action, e.Subject, e.Site = auditlog.KindTransfer, "transfer", "", dest
		})
	}
	runCases(t, Rule{Transfer: &Transfer{Destinations: []string{"partner-eu"}}}, []ruleCase{
		{name: "unknown", entries: []auditlog.Entry{to("acme-us")}, want: []Alert{{Rule: "r", Severity: High, Actor: "svc",
			Indexes: []uint64{0}, FirstSeen: t0, LastSeen: t0, Message: `transfer to unknown destination "acme-us"`}}},
		{name: "known", entries: []auditlog.Entry{to("partner-eu")}},
		{name: "denied", entries: []auditlog.Entry{denied(to("acme-us"))}},
		{name: "not a transfer", entries: []auditlog.Entry{read("svc", 1, t0)}},
	})
}

func TestIdleEviction(t *testing.T) {
	e, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// 1e5 entries, one every 100ms, each by a new actor: about 28 hours.
	maxActors, maxEntries := 0, 0
	for i := range 100_000 {
		en := read(fmt.Sprintf("actor-%d", i), i, at(time.Duration(i)*100*time.Millisecond))
		if i%2 == 0 {
			en = denied(en)
		}
		e.Observe(uint64(i), &en)
		if i%97 == 0 {
			a, n := e.stateSize()
			maxActors, maxEntries = max(maxActors, a), max(maxEntries, n)
		}
	}
	// An actor's state lives at most 3 windows (2 idle, 1 between sweeps):
	// bulk (5m, every other entry) 15m/200ms = 4500 actors, denials (10m,
	// every other entry) 30m/200ms = 9000; it holds one entry each.
	t.Logf("largest state: %d actors, %d window entries", maxActors, maxEntries)
	if maxActors > 18_000 || maxEntries > 18_000 {
		t.Errorf("state grew to %d actors, %d entries; want at most 18000 each", maxActors, maxEntries)
	}
}

func TestEvidenceCap(t *testing.T) {
	e, err := New(Config{Rules: []Rule{
		{Name: "bulk", Severity: High, BulkAccess: &BulkAccess{Subjects: 10, Window: time.Hour}},
		{Name: "denials", Severity: High, Denials: &Denials{Count: 10, Window: time.Hour}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20_000 {
		// Distinct subjects, then one subject over and over, all denied too.
		s := i
		if i >= 10_000 {
			s = 7
		}
		en := read("alice", s, at(time.Duration(i)*time.Millisecond))
		for _, a := range e.Observe(uint64(2*i), &en) {
			if len(a.Indexes) > MaxEvidence {
				t.Fatalf("alert with %d indexes", len(a.Indexes))
			}
		}
		en = denied(en)
		e.Observe(uint64(2*i+1), &en)
		if i%97 != 0 {
			continue
		}
		if _, n := e.stateSize(); n > 3*MaxEvidence+2 {
			t.Fatalf("after %d entries, %d window entries held", i, n)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := func(f func(*Rule)) Config {
		r := Rule{Name: "r", Severity: Low, BulkAccess: &BulkAccess{Subjects: 5, Window: time.Minute}}
		f(&r)
		return Config{Rules: []Rule{r}}
	}
	for _, c := range []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"no name", ok(func(r *Rule) { r.Name = "" }), "name: empty"},
		{"bad severity", ok(func(r *Rule) { r.Severity = "urgent" }), `rule "r": severity: "urgent"`},
		{"subjects < 1", ok(func(r *Rule) { r.BulkAccess.Subjects = 0 }), "bulk_access.subjects: 0"},
		{"subjects too many", ok(func(r *Rule) { r.BulkAccess.Subjects = MaxEvidence }), "bulk_access.subjects: 1000"},
		{"zero window", ok(func(r *Rule) { r.BulkAccess.Window = 0 }), "bulk_access.window: 0s"},
		{"count < 1", ok(func(r *Rule) { r.BulkAccess, r.Denials = nil, &Denials{Window: time.Minute} }), "denials.count: 0"},
		{"denials zero window", ok(func(r *Rule) { r.BulkAccess, r.Denials = nil, &Denials{Count: 2} }), "denials.window: 0s"},
		{"unknown day", ok(func(r *Rule) {
			r.BulkAccess, r.OffHours = nil, &OffHours{Start: 7, End: 20, Days: []string{"Saturday"}}
		}),
			`off_hours.days: unknown day "Saturday"`},
		{"bad hour", ok(func(r *Rule) { r.BulkAccess, r.OffHours = nil, &OffHours{Start: 7, End: 25} }), "off_hours.end: hour 25"},
		{"never fires", ok(func(r *Rule) { r.BulkAccess, r.OffHours = nil, &OffHours{Start: 0, End: 24} }), "can never fire"},
		{"bad country", ok(func(r *Rule) { r.BulkAccess, r.Country = nil, &Country{Allowed: []string{"EEA", "ie"}} }), `country.allowed: "ie"`},
		{"no countries", ok(func(r *Rule) { r.BulkAccess, r.Country = nil, &Country{} }), "country.allowed: empty"},
		{"empty destination", ok(func(r *Rule) { r.BulkAccess, r.Transfer = nil, &Transfer{Destinations: []string{""}} }), "transfer.destinations"},
		{"two kinds", ok(func(r *Rule) { r.Reidentify = &Reidentify{} }), "parameters of 2 kinds set (bulk_access, reidentify)"},
		{"none", ok(func(r *Rule) { r.BulkAccess = nil }), "no rule parameters"},
		{"kind mismatch", ok(func(r *Rule) { r.Kind = KindDenials }), `kind: "denials" but the parameters are of "bulk_access"`},
		{"duplicate name", Config{Rules: []Rule{ok(func(*Rule) {}).Rules[0], ok(func(*Rule) {}).Rules[0]}}, "used by another rule"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v; want ErrInvalidConfig containing %q", err, c.want)
			}
		})
	}
	good := ok(func(r *Rule) { r.Kind = KindBulkAccess })
	if err := good.Validate(); err != nil {
		t.Errorf("Validate with a matching kind: %v", err)
	}
}

func TestDefaultConfigYAML(t *testing.T) {
	def := DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := yaml.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if diff := cmp.Diff(def, got); diff != "" {
		t.Errorf("YAML round trip (-want +got):\n%s", diff)
	}
	const text = `
rules:
  - name: bulk
    severity: high
    bulk_access: {subjects: 50, window: 5m}
  - name: glass
    severity: high
    kind: reidentify
    reidentify: {break_glass: true}
`
	var cfg Config
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); err != nil {
		t.Fatal(err)
	}
	if w := cfg.Rules[0].BulkAccess.Window; w != 5*time.Minute {
		t.Errorf("window %v, want 5m", w)
	}
}

// TestOddEntries checks that Observe never panics on entries with missing
// parts, and raises nothing on a nil entry.
func TestOddEntries(t *testing.T) {
	cfg := DefaultConfig()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a := e.Observe(0, nil); a != nil {
		t.Errorf("Observe(nil) = %v", a)
	}
	kinds := []auditlog.Kind{auditlog.KindDecision, auditlog.KindWrite, auditlog.KindErase, auditlog.KindRehome,
		auditlog.KindReidentify, auditlog.KindPolicy, auditlog.KindTransfer, "", "bogus"}
	decisions := []auditlog.Decision{auditlog.Allow, auditlog.Deny, ""}
	times := []time.Time{{}, t0, t0.Add(-time.Hour), time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC)}
	i := uint64(1)
	for _, k := range kinds {
		for _, d := range decisions {
			for _, tm := range times {
				for _, actor := range []*auditlog.Actor{nil, {}, {Sub: "a", Type: "Employee"}} {
					for _, ctx := range []*auditlog.RequestContext{nil, {}} {
						en := auditlog.Entry{Time: tm, Kind: k, Decision: d, Actor: actor, Context: ctx, Grant: "break-glass"}
						e.Observe(i, &en)
						i++
					}
				}
			}
		}
	}
}

func TestConditionRule(t *testing.T) {
	cfg := Config{Rules: []Rule{{Name: "raw-from-us", Severity: Critical, Condition: &Condition{
		Expr: `kind == "decision" && actor.country == "US" && fields.exists(f, f.form == "raw")`}}}}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	entry := func(country, form string) *auditlog.Entry {
		return &auditlog.Entry{Time: time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC), Kind: auditlog.KindDecision, Decision: auditlog.Allow,
			Actor:  &auditlog.Actor{Sub: "s", Type: "Employee", Roles: []string{"support"}, Country: country},
			Fields: []auditlog.Field{{Name: "email", Form: form}}}
	}
	if got := e.Observe(1, entry("US", "raw")); len(got) != 1 || got[0].Rule != "raw-from-us" || got[0].Indexes[0] != 1 {
		t.Fatalf("raw read from US: alerts %+v, want one", got)
	}
	for _, c := range []struct{ country, form string }{{"US", "pseudonym"}, {"IE", "raw"}} {
		if got := e.Observe(2, entry(c.country, c.form)); len(got) != 0 {
			t.Errorf("%s/%s fired: %+v", c.country, c.form, got)
		}
	}
	if got := e.Observe(3, &auditlog.Entry{Time: time.Now(), Kind: auditlog.KindPolicy}); len(got) != 0 {
		t.Errorf("an entry without actor fired: %+v", got)
	}
}

func TestConditionValidate(t *testing.T) {
	for expr, want := range map[string]string{
		"":                   "expr: empty",
		`kind ==`:            "expr:",
		`hour + 1`:           "must be a boolean",
		`unknown_var == "x"`: "undeclared reference",
	} {
		_, err := New(Config{Rules: []Rule{{Name: "c", Severity: Low, Condition: &Condition{Expr: expr}}}})
		if err == nil || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `rule "c"`) {
			t.Errorf("expr %q: err = %v, want it to name the rule and contain %q", expr, err, want)
		}
	}
}
