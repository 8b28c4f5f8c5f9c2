package report

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"slices"
	"time"
)

//go:embed report.html.tmpl
var pageSource string

// page is parsed once; a parsed html/template is safe for concurrent use.
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"time":    formatTime,
	"grouped": func(n any) string { return groupedAny(n) },
}).Parse(pageSource))

// dimension describes how the HTML report shows one dimension of Counts.
type dimension struct {
	key, title, unit string
}

var decisionDims = []dimension{
	{DimKind, "Audit entries by kind", "entries"},
	{DimDecision, "Decisions by outcome", "decisions"},
	{DimPurpose, "Decisions by purpose", "decisions"},
	{DimForm, "Fields released by form", "fields"},
	{DimCountry, "Decisions by accessor country", "decisions"},
	{DimSite, "Decisions by site", "decisions"},
}

var transferDims = []dimension{
	{DimTransferDestination, "Transfers by destination", "transfers"},
	{DimTransferBasis, "Transfers by legal basis", "transfers"},
	{DimTransferRows, "Rows transferred by destination", "rows"},
}

// view is what the template shows; every order and every chart is decided
// here so the template has no logic beyond placing values.
type view struct {
	Data
	Format          string
	IncidentsBySev  []severityCount
	OpenIncidents   int
	DecisionCharts  []chart
	TransferCharts  []chart
	OtherCharts     []chart
	SeverityChart   chart
	StateChart      chart
	ProbeChart      chart
	ProbesUnsettled int // control failures and log omissions: the probes that matter
}

type severityCount struct {
	Severity string
	N        int
}

// HTML renders d as one self-contained, printable HTML page: a title
// block, a summary, then sections with tables and inline SVG bar charts.
// All text from d is escaped by html/template. The same Data always gives
// the same bytes.
func HTML(d Data) ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	n := d.normalized()
	v := view{Data: n, Format: Format}

	for _, dim := range decisionDims {
		v.DecisionCharts = append(v.DecisionCharts, countsChart(dim, n.Counts[dim.key]))
	}
	for _, dim := range transferDims {
		v.TransferCharts = append(v.TransferCharts, countsChart(dim, n.Counts[dim.key]))
	}
	var others []string
	for key := range n.Counts {
		if !slices.ContainsFunc(decisionDims, func(x dimension) bool { return x.key == key }) &&
			!slices.ContainsFunc(transferDims, func(x dimension) bool { return x.key == key }) {
			others = append(others, key)
		}
	}
	slices.Sort(others)
	for _, key := range others {
		v.OtherCharts = append(v.OtherCharts, countsChart(dimension{key, "Counts by " + key, "count"}, n.Counts[key]))
	}

	bySev := map[string]int64{}
	byState := map[string]int64{}
	for _, inc := range n.Incidents {
		bySev[inc.Severity]++
		byState[inc.State]++
		if inc.State == "open" {
			v.OpenIncidents++
		}
	}
	sevs := byValue(bySev)
	slices.SortStableFunc(sevs, func(a, b entry) int {
		if c := rankOf(a.key) - rankOf(b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	for _, e := range sevs {
		v.IncidentsBySev = append(v.IncidentsBySev, severityCount{e.key, int(e.n)})
	}
	v.SeverityChart = newChart("incidents-severity", "Incidents by severity", "incidents", "No incidents in this period.", sevs)
	v.StateChart = newChart("incidents-state", "Incidents by state", "incidents", "No incidents in this period.", byValue(byState))

	p := n.Probes
	v.ProbeChart = newChart("probes", "Probe outcomes", "probes", "No probes in this period.", []entry{
		{"passed (refused and logged)", int64(p.Passed)},
		{"control failure (allowed)", int64(p.ControlFailures)},
		{"log omission (not logged)", int64(p.LogOmissions)},
		{"error (could not run)", int64(p.Errors)},
	})
	v.ProbesUnsettled = p.ControlFailures + p.LogOmissions

	var out bytes.Buffer
	if err := page.Execute(&out, v); err != nil {
		return nil, fmt.Errorf("report: render HTML: %w", err)
	}
	return out.Bytes(), nil
}

func countsChart(dim dimension, counts map[string]int64) chart {
	return newChart("dim-"+dim.key, dim.title, dim.unit, "No data in this period.", byValue(counts))
}

// formatTime writes a time in UTC to the second, or a dash for none.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func groupedAny(n any) string {
	switch n := n.(type) {
	case int:
		return grouped(int64(n))
	case int64:
		return grouped(n)
	case uint64:
		if n > 1<<62 {
			return fmt.Sprint(n)
		}
		return grouped(int64(n))
	}
	return fmt.Sprint(n)
}
