package report

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>`

func ptr[T any](v T) *T { return &v }

// sample is a full report in normalized form: UTC times, incidents by ID,
// evidence ascending, recent probes newest first.
func sample() Data {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	return Data{
		Monitor:    "monitor.example",
		MonitorKey: "monitor.example+12345678+AAAA",
		Log:        "clover.example/log",
		From:       from,
		To:         from.AddDate(0, 1, 0),
		Generated:  from.AddDate(0, 1, 0).Add(90 * time.Second),
		Checkpoints: CheckpointSummary{
			Verified: 4321,
			First:    &Checkpoint{Size: 100, RootHash: "q1z8", VerifiedAt: from.Add(time.Minute), Cosigned: true},
			Last:     &Checkpoint{Size: 98765, RootHash: "rTT3", VerifiedAt: from.Add(29 * 24 * time.Hour), Cosigned: false},
		},
		Entries: 98665,
		Counts: map[string]map[string]int64{
			DimKind:                {"decision": 90000, "grant": 120, "transfer": 45},
			DimDecision:            {"allow": 80000, "deny": 10000},
			DimPurpose:             {"support": 50000, "trust-and-safety": 30000, hostile: 3},
			DimForm:                {"raw": 1000, "pseudonymised": 60000, "masked": 20000, "withheld": 9000},
			DimCountry:             {"IE": 70000, "NO": 15000, "US": 5000},
			DimSite:                {"dublin-1": 60000, "hamar-1": 30000},
			DimTransferDestination: {"analytics-eu": 40, "research-ch": 5},
			DimTransferBasis:       {"adequacy": 5, "scc": 40},
			DimTransferRows:        {"analytics-eu": 1200000, "research-ch": 300},
		},
		Incidents: []Incident{
			{ID: 7, Rule: "bulk-access", Severity: "high", Title: "Bulk read by " + hostile, State: "open",
				FirstSeen: from.Add(48 * time.Hour), LastSeen: from.Add(49 * time.Hour), Evidence: []uint64{10, 11, 12}, Count: 3},
			{ID: 9, Rule: "read-outside-eea", Severity: "critical", Title: "Read from US", State: "resolved", StateBy: "auditor-1",
				StateNote: "approved travel " + hostile, StateAt: from.Add(80 * time.Hour),
				FirstSeen: from.Add(72 * time.Hour), LastSeen: from.Add(72 * time.Hour), Evidence: []uint64{500}, Count: 1},
		},
		Probes: ProbeSummary{
			Total: 720, Passed: 717, ControlFailures: 1, LogOmissions: 1, Errors: 1,
			Recent: []Probe{
				{Started: from.Add(700 * time.Hour), Outcome: "passed", Status: 403, LogIndex: ptr(uint64(98000))},
				{Started: from.Add(699 * time.Hour), Outcome: "error", Status: 502},
			},
		},
		Replay: ReplaySummary{Checked: 90000, Disagreements: 1, Examples: []string{"entry 4242: logged allow, replay deny " + hostile}},
	}
}

func TestJSONRoundTrip(t *testing.T) {
	d := sample()
	b, err := JSON(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, got); diff != "" {
		t.Errorf("Parse(JSON(d)) differs from d (-want +got):\n%s", diff)
	}
}

// TestJSONNormalizes checks that the order the monitor hands things over in
// and the zones of its times do not change the report.
func TestJSONNormalizes(t *testing.T) {
	want, err := JSON(sample())
	if err != nil {
		t.Fatal(err)
	}
	d := sample()
	paris := time.FixedZone("CET", 3600)
	d.From, d.To = d.From.In(paris), d.To.In(paris)
	d.Checkpoints.First.VerifiedAt = d.Checkpoints.First.VerifiedAt.In(paris)
	slices.Reverse(d.Incidents)
	slices.Reverse(d.Incidents[1].Evidence)
	slices.Reverse(d.Probes.Recent)
	evidence := d.Incidents[1].Evidence
	got, err := JSON(d)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("JSON of reordered data differs:\n%s\nwant:\n%s", got, want)
	}
	if evidence[0] != 12 {
		t.Errorf("JSON sorted the caller's evidence slice in place: %v", evidence)
	}
	for range 5 {
		again, _ := JSON(d)
		if !bytes.Equal(again, got) {
			t.Fatal("JSON is not deterministic")
		}
	}
}

func TestJSONFormatAndFields(t *testing.T) {
	b, err := JSON(sample())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("{\n  \"format\": \"clover-monitor-report/v1\",\n")) {
		t.Errorf("report does not start with the format field:\n%.80s", b)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var paths []string
	collect(&paths, "", doc)
	sort.Strings(paths)
	want := []string{
		"checkpoints", "checkpoints.first", "checkpoints.first.cosigned", "checkpoints.first.root_hash",
		"checkpoints.first.size", "checkpoints.first.verified_at", "checkpoints.last", "checkpoints.last.cosigned",
		"checkpoints.last.root_hash", "checkpoints.last.size", "checkpoints.last.verified_at", "checkpoints.verified",
		"counts", "entries", "format", "from", "generated",
		"incidents", "incidents[].count", "incidents[].evidence", "incidents[].first_seen", "incidents[].id",
		"incidents[].last_seen", "incidents[].rule", "incidents[].severity", "incidents[].state",
		"incidents[].state_at", "incidents[].state_by", "incidents[].state_note", "incidents[].title",
		"log", "monitor", "monitor_key",
		"probes", "probes.control_failures", "probes.errors", "probes.log_omissions", "probes.passed",
		"probes.recent", "probes.recent[].log_index", "probes.recent[].outcome", "probes.recent[].started",
		"probes.recent[].status", "probes.total",
		"replay", "replay.checked", "replay.disagreements", "replay.examples", "to",
	}
	if diff := cmp.Diff(want, slices.Compact(paths)); diff != "" {
		t.Errorf("JSON fields (-want +got):\n%s", diff)
	}
	// An incident that never changed state has no state fields.
	if strings.Count(string(b), `"state_at"`) != 1 || strings.Count(string(b), `"log_index"`) != 1 {
		t.Errorf("optional fields written for values that are not there:\n%s", b)
	}
}

// collect lists the object keys of v as dotted paths, without descending
// into counts, whose keys are data.
func collect(paths *[]string, prefix string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			*paths = append(*paths, p)
			if p != "counts" {
				collect(paths, p, e)
			}
		}
	case []any:
		for _, e := range v {
			collect(paths, prefix+"[]", e)
		}
	}
}

func TestJSONEmpty(t *testing.T) {
	d := Data{Monitor: "m", Log: "l", From: time.Unix(0, 0), To: time.Unix(3600, 0)}
	b, err := JSON(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"counts": {}`, `"incidents": []`, `"recent": []`, `"examples": []`, `"from": "1970-01-01T00:00:00Z"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("empty report lacks %s:\n%s", want, b)
		}
	}
	if bytes.Contains(b, []byte("null")) || bytes.Contains(b, []byte(`"first"`)) {
		t.Errorf("empty report has nulls or absent checkpoints:\n%s", b)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.From.Equal(d.From) || got.Checkpoints.First != nil || len(got.Incidents) != 0 {
		t.Errorf("Parse of empty report = %+v", got)
	}
}

func TestInvalidData(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Data)
		want   string
	}{
		{"no monitor", func(d *Data) { d.Monitor = "" }, "monitor name is empty"},
		{"no log", func(d *Data) { d.Log = "" }, "log origin is empty"},
		{"log with newline", func(d *Data) { d.Log = "a\nb" }, `log origin "a\nb" contains a control character`},
		{"no start", func(d *Data) { d.From = time.Time{} }, "period has no start or no end"},
		{"end before start", func(d *Data) { d.From, d.To = d.To, d.From }, "period start 2026-12-01T00:00:00Z is not before its end 2026-11-01T00:00:00Z"},
		{"empty period", func(d *Data) { d.To = d.From }, "is not before its end"},
		{"negative count", func(d *Data) { d.Counts[DimSite]["hamar-1"] = -1 }, `count "site"/"hamar-1" is negative (-1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := sample()
			tt.change(&d)
			for name, render := range map[string]func(Data) ([]byte, error){"JSON": JSON, "HTML": HTML} {
				if _, err := render(d); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: error %v, want one containing %q", name, err, tt.want)
				}
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	good, err := JSON(sample())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"unknown field", bytes.Replace(good, []byte(`"entries"`), []byte(`"extra": 1, "entries"`), 1), `unknown field "extra"`},
		{"unknown nested field", bytes.Replace(good, []byte(`"rule"`), []byte(`"who": "x", "rule"`), 1), `unknown field "who"`},
		{"other format", bytes.Replace(good, []byte("report/v1"), []byte("report/v2"), 1), `format "clover-monitor-report/v2" is not`},
		{"no format", bytes.Replace(good, []byte(`"format": "clover-monitor-report/v1",`), nil, 1), `format "" is not`},
		{"trailing data", append(bytes.Clone(good), "{}"...), "data after the report"},
		{"truncated", good[:len(good)/2], "decode JSON report"},
		{"wrong type", bytes.Replace(good, []byte(`"entries": 98665`), []byte(`"entries": "many"`), 1), "decode JSON report"},
		{"invalid data", bytes.Replace(good, []byte(`"monitor": "monitor.example"`), []byte(`"monitor": ""`), 1), "monitor name is empty"},
		{"too big", make([]byte, MaxReportSize+1), "JSON report is 67108865 bytes, more than 67108864"},
		{"empty", nil, "decode JSON report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.input)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// FuzzParse checks that whatever Parse accepts, JSON writes back to a
// report that parses to the same data.
func FuzzParse(f *testing.F) {
	good, err := JSON(sample())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	empty, _ := JSON(Data{Monitor: "m", Log: "l", From: time.Unix(0, 0), To: time.Unix(1, 0)})
	f.Add(empty)
	f.Add([]byte(`{"format":"clover-monitor-report/v1"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		again, err := JSON(d)
		if err != nil {
			t.Fatalf("JSON of parsed data: %v", err)
		}
		d2, err := Parse(again)
		if err != nil {
			t.Fatalf("Parse of rewritten report: %v", err)
		}
		if diff := cmp.Diff(d, d2); diff != "" {
			t.Fatalf("round trip differs (-first +second):\n%s", diff)
		}
		if _, err := HTML(d); err != nil {
			t.Fatalf("HTML of parsed data: %v", err)
		}
	})
}

func TestNormalizedLeavesInputAlone(t *testing.T) {
	d := sample()
	d.Counts[DimSite]["x"] = 1
	n := d.normalized()
	n.Counts[DimSite]["y"] = 2
	*n.Probes.Recent[0].LogIndex = 1
	if _, ok := d.Counts[DimSite]["y"]; ok || *d.Probes.Recent[0].LogIndex != 98000 {
		t.Error("normalized shares maps or pointers with its input")
	}
}
