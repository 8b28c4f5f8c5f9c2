// Package rules holds the monitor's detection rules, evaluated in real time
// over the audit log's entry stream.
//
// The package is pure: entries and their log indexes go in, alerts come
// out. It reads no clock and does no I/O; time is the entries' own time.
// An [Engine] is built from a [Config] of [Rule]s and fed every entry in
// log order through [Engine.Observe], which returns the alerts that entry
// raised.
//
// Two families of rules exist. Entry rules (country, off_hours, reidentify,
// transfer, cel) look at one entry at a time and raise one alert per
// matching entry. Window rules (bulk_access, denials) keep, per actor
// (Actor.Sub), a sliding window of the last T of that actor's matching
// entries and fire when a threshold is crossed within it.
//
// Window semantics:
//
//   - The engine's clock is the largest entry time seen so far ("now").
//     Entries arrive in log order and their times are nearly monotonic; an
//     entry whose time is earlier than now is counted as happening at now,
//     so small regressions neither reorder a window nor resurrect evicted
//     entries.
//   - A window holds the entries with time t such that now-T < t <= now.
//   - Evidence is bounded: a window keeps at most [MaxEvidence] entries
//     (thresholds must be below it), and the state of an actor with no
//     matching entry for 2T is dropped during Observe.
//   - Suppression: once a window rule fires for an actor at time f, it does
//     not fire again for that actor before f+T, when every entry that made
//     up the alert has left the window. A burst is one alert; a burst that
//     goes on raises a new alert per window length, each with fresh
//     evidence only.
package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloverenclave/clover/enclave"
)

// MaxEvidence is the most entries a window keeps for one actor, and so the
// most log indexes an alert carries. Window thresholds must be below it.
const MaxEvidence = 1000

// ErrInvalidConfig is matched (errors.Is) by every error of Validate and New.
var ErrInvalidConfig = errors.New("rules: invalid configuration")

// Severity grades an alert.
type Severity string

// Severities, least to most severe.
const (
	Info     Severity = "info"
	Low      Severity = "low"
	Medium   Severity = "medium"
	High     Severity = "high"
	Critical Severity = "critical"
)

func (s Severity) valid() bool {
	switch s {
	case Info, Low, Medium, High, Critical:
		return true
	}
	return false
}

// Rule kinds: the values of Rule.Kind, each the yaml key of its parameters.
const (
	KindBulkAccess = "bulk_access"
	KindCountry    = "country"
	KindDenials    = "denials"
	KindOffHours   = "off_hours"
	KindReidentify = "reidentify"
	KindTransfer   = "transfer"
)

// Config is the monitor's rule set.
type Config struct {
	Rules []Rule `yaml:"rules"`
}

// Rule is one detection rule: a name, a severity and the parameters of
// exactly one kind. Kind may be left empty, in which case it is the kind
// whose parameters are set; if given, it must name that kind.
type Rule struct {
	Name     string   `yaml:"name"`
	Severity Severity `yaml:"severity"`
	Kind     string   `yaml:"kind,omitempty"`

	BulkAccess *BulkAccess `yaml:"bulk_access,omitempty"`
	Country    *Country    `yaml:"country,omitempty"`
	Denials    *Denials    `yaml:"denials,omitempty"`
	OffHours   *OffHours   `yaml:"off_hours,omitempty"`
	Reidentify *Reidentify `yaml:"reidentify,omitempty"`
	Transfer   *Transfer   `yaml:"transfer,omitempty"`
	Condition  *Condition  `yaml:"condition,omitempty"`
}

// BulkAccess fires when one actor reads more than Subjects distinct
// subjects within Window. Reads are entries of kind decision with decision
// allow.
type BulkAccess struct {
	Subjects int           `yaml:"subjects"`
	Window   time.Duration `yaml:"window"`
}

// Validate checks the parameters.
func (b *BulkAccess) Validate() error {
	if b.Subjects < 1 || b.Subjects >= MaxEvidence {
		return fmt.Errorf("subjects: %d is not in [1, %d)", b.Subjects, MaxEvidence)
	}
	if b.Window <= 0 {
		return fmt.Errorf("window: %v is not positive", b.Window)
	}
	return nil
}

// Country fires on every read (kind decision, decision allow) by an actor
// whose Actor.Country is not in Allowed. Allowed holds ISO 3166-1 alpha-2
// codes and the named sets EU and EEA. An actor with no country is outside
// the set unless AllowUnknown.
type Country struct {
	Allowed      []string `yaml:"allowed"`
	AllowUnknown bool     `yaml:"allow_unknown,omitempty"`
}

// Validate checks the parameters.
func (c *Country) Validate() error {
	if len(c.Allowed) == 0 {
		return errors.New("allowed: empty")
	}
	if _, err := enclave.ExpandCountries(c.Allowed); err != nil {
		return fmt.Errorf("allowed: %v", err)
	}
	return nil
}

// Denials fires when one actor is denied Count or more times within
// Window, in entries of any access kind.
type Denials struct {
	Count  int           `yaml:"count"`
	Window time.Duration `yaml:"window"`
}

// Validate checks the parameters.
func (d *Denials) Validate() error {
	if d.Count < 1 || d.Count >= MaxEvidence {
		return fmt.Errorf("count: %d is not in [1, %d)", d.Count, MaxEvidence)
	}
	if d.Window <= 0 {
		return fmt.Errorf("window: %v is not positive", d.Window)
	}
	return nil
}

// OffHours fires on every allowed access (an entry with an actor and
// decision allow) made outside working hours or on a listed day, judged by
// the entry's Time in UTC. Working hours are [Start, End) in whole hours
// (0-24); Start > End wraps past midnight; Start == End means every hour is
// a working hour, leaving only Days. Days are Mon, Tue, Wed, Thu, Fri, Sat,
// Sun. If ActorType is set, only actors of that type (e.g. "Employee") are
// watched, so that night-time batch services do not flood the monitor.
type OffHours struct {
	Start     int      `yaml:"start"`
	End       int      `yaml:"end"`
	Days      []string `yaml:"days,omitempty"`
	ActorType string   `yaml:"actor_type,omitempty"`
}

var weekdays = map[string]time.Weekday{
	"Sun": time.Sunday, "Mon": time.Monday, "Tue": time.Tuesday, "Wed": time.Wednesday,
	"Thu": time.Thursday, "Fri": time.Friday, "Sat": time.Saturday,
}

// Validate checks the parameters.
func (o *OffHours) Validate() error {
	if o.Start < 0 || o.Start > 24 {
		return fmt.Errorf("start: hour %d is not in [0, 24]", o.Start)
	}
	if o.End < 0 || o.End > 24 {
		return fmt.Errorf("end: hour %d is not in [0, 24]", o.End)
	}
	for _, d := range o.Days {
		if _, ok := weekdays[d]; !ok {
			return fmt.Errorf("days: unknown day %q (want Mon, Tue, Wed, Thu, Fri, Sat or Sun)", d)
		}
	}
	if o.Start%24 == o.End%24 && len(o.Days) == 0 {
		return errors.New("start, end: no off hours and no days: the rule can never fire")
	}
	return nil
}

// Reidentify fires on every re-identification that was allowed (kind
// reidentify, decision allow). With BreakGlass it fires instead only on
// allowed accesses of any kind whose Grant starts with "break-glass": by
// convention, emergency grants are named "break-glass" or
// "break-glass:<ticket>", so that they can be told apart in the log.
type Reidentify struct {
	BreakGlass bool `yaml:"break_glass,omitempty"`
}

// BreakGlassPrefix begins the Grant of every emergency (break-glass) access.
const BreakGlassPrefix = "break-glass"

// Validate checks the parameters; every Reidentify is valid.
func (r *Reidentify) Validate() error { return nil }

// Transfer fires on every allowed transfer (kind transfer, decision allow)
// to a destination not in Destinations. In transfer entries, Site holds the
// destination. It judges where records go, not how many: volume thresholds
// arrive with the transfer ledger entries.
type Transfer struct {
	Destinations []string `yaml:"destinations,omitempty"`
}

// Validate checks the parameters.
func (t *Transfer) Validate() error {
	if slices.Contains(t.Destinations, "") {
		return errors.New("destinations: empty destination")
	}
	return nil
}

// kind returns the kind whose parameters are set, or an error if not
// exactly one is.
func (r *Rule) kind() (string, error) {
	var set []string
	add := func(ok bool, k string) {
		if ok {
			set = append(set, k)
		}
	}
	add(r.BulkAccess != nil, KindBulkAccess)
	add(r.Country != nil, KindCountry)
	add(r.Denials != nil, KindDenials)
	add(r.OffHours != nil, KindOffHours)
	add(r.Reidentify != nil, KindReidentify)
	add(r.Transfer != nil, KindTransfer)
	add(r.Condition != nil, KindCondition)
	switch {
	case len(set) == 0:
		return "", errors.New("no rule parameters: set one of bulk_access, country, denials, off_hours, reidentify, transfer, condition")
	case len(set) > 1:
		return "", fmt.Errorf("parameters of %d kinds set (%s): set exactly one", len(set), strings.Join(set, ", "))
	case r.Kind != "" && r.Kind != set[0]:
		return "", fmt.Errorf("kind: %q but the parameters are of %q", r.Kind, set[0])
	}
	return set[0], nil
}

// Validate checks the rule. Errors name the rule and the field.
func (r *Rule) Validate() error {
	if err := r.validate(); err != nil {
		return fmt.Errorf("%w: rule %q: %v", ErrInvalidConfig, r.Name, err)
	}
	return nil
}

func (r *Rule) validate() error {
	if r.Name == "" {
		return errors.New("name: empty")
	}
	if !r.Severity.valid() {
		return fmt.Errorf("severity: %q is not info, low, medium, high or critical", r.Severity)
	}
	k, err := r.kind()
	if err != nil {
		return err
	}
	var perr error
	switch k {
	case KindBulkAccess:
		perr = r.BulkAccess.Validate()
	case KindCountry:
		perr = r.Country.Validate()
	case KindDenials:
		perr = r.Denials.Validate()
	case KindOffHours:
		perr = r.OffHours.Validate()
	case KindReidentify:
		perr = r.Reidentify.Validate()
	case KindTransfer:
		perr = r.Transfer.Validate()
	case KindCondition:
		perr = r.Condition.Validate()
	}
	if perr != nil {
		return fmt.Errorf("%s.%v", k, perr)
	}
	return nil
}

// Validate checks every rule and that names are unique.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if err := r.Validate(); err != nil {
			return err
		}
		if seen[r.Name] {
			return fmt.Errorf("%w: rule %q: name: used by another rule", ErrInvalidConfig, r.Name)
		}
		seen[r.Name] = true
	}
	return nil
}

// DefaultConfig returns a sensible default rule set.
func DefaultConfig() Config {
	return Config{Rules: []Rule{
		{Name: "bulk-access", Severity: High, BulkAccess: &BulkAccess{Subjects: 50, Window: 5 * time.Minute}},
		{Name: "read-outside-eea", Severity: Critical, Country: &Country{Allowed: []string{"EEA"}}},
		{Name: "repeated-denials", Severity: Medium, Denials: &Denials{Count: 5, Window: 10 * time.Minute}},
		{Name: "off-hours", Severity: Low, OffHours: &OffHours{Start: 7, End: 20, Days: []string{"Sat", "Sun"}, ActorType: "Employee"}},
		{Name: "reidentify", Severity: Medium, Reidentify: &Reidentify{}},
		{Name: "break-glass", Severity: High, Reidentify: &Reidentify{BreakGlass: true}},
		{Name: "transfer-destination", Severity: High, Transfer: &Transfer{}},
	}}
}
