package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// figures splits a page into its charts, by figure id.
func figures(t *testing.T, page []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	parts := strings.Split(string(page), `<figure id="`)
	for _, p := range parts[1:] {
		id, body, _ := strings.Cut(p, `"`)
		body, _, ok := strings.Cut(body, "</figure>")
		if !ok {
			t.Fatalf("figure %q is not closed", id)
		}
		out[id] = body
	}
	return out
}

var allCharts = []string{
	"dim-kind", "dim-decision", "dim-purpose", "dim-form", "dim-country", "dim-site",
	"dim-transfer_destination", "dim-transfer_basis", "dim-transfer_rows",
	"incidents-severity", "incidents-state", "probes",
}

func render(t *testing.T, d Data) []byte {
	t.Helper()
	b, err := HTML(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHTMLDeterministic(t *testing.T) {
	want := render(t, sample())
	d := sample()
	slices.Reverse(d.Incidents)
	d.From = d.From.In(time.FixedZone("X", -7200))
	for range 5 {
		if got := render(t, d); !bytes.Equal(got, want) {
			t.Fatal("HTML differs between renderings of the same data")
		}
	}
}

func TestHTMLEscapes(t *testing.T) {
	d := sample()
	d.Monitor = hostile
	d.Log = hostile
	d.Incidents[0].Rule = hostile
	d.Incidents[0].Severity = hostile
	d.Incidents[0].State = hostile
	d.Probes.Recent[0].Outcome = hostile
	d.Counts["x</svg><script>"] = map[string]int64{hostile: 1}
	page := string(render(t, d))
	for _, bad := range []string{"<script", "<img", "</svg><"} {
		if strings.Contains(page, bad) {
			i := strings.Index(page, bad)
			t.Errorf("page contains %q unescaped: …%s…", bad, page[max(0, i-80):min(len(page), i+80)])
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Error("hostile title not shown escaped")
	}
	// The SVG namespace is a name, not a resource.
	page = strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, tag := range []string{"<link", "<script", "<img", "<iframe", "<object", "@import", "url(", "http://", "https://"} {
		if strings.Contains(page, tag) {
			t.Errorf("page is not self-contained: it contains %q", tag)
		}
	}
}

func TestHTMLCharts(t *testing.T) {
	page := render(t, sample())
	figs := figures(t, page)
	for _, id := range allCharts {
		fig, ok := figs[id]
		if !ok {
			t.Errorf("no chart %q", id)
			continue
		}
		if !strings.Contains(fig, "<svg") || strings.Contains(fig, "nodata") {
			t.Errorf("chart %q with data has no SVG:\n%s", id, fig)
		}
		checkSVG(t, id, fig)
	}
	// Bars are proportional to the largest value, which gets the full width.
	site := figs["dim-site"]
	for _, want := range []string{
		`<text x="210" y="21" text-anchor="end">dublin-1</text><rect class="bar" x="220" y="10" width="340.0" height="14"></rect><text x="566.0" y="21">60 000</text>`,
		`<rect class="bar" x="220" y="32" width="170.0" height="14"></rect><text x="396.0" y="43">30 000</text>`,
	} {
		if !strings.Contains(site, strings.ReplaceAll(want, " 000", "\u202f000")) {
			t.Errorf("site chart lacks %s:\n%s", want, site)
		}
	}
	// Severities come in order of gravity, not of count.
	sev := figs["incidents-severity"]
	if c, h := strings.Index(sev, ">critical<"), strings.Index(sev, ">high<"); c < 0 || h < c {
		t.Errorf("severity chart not ordered by gravity:\n%s", sev)
	}
	if !strings.Contains(string(page), "critical: 1, high: 1") {
		t.Error("summary does not count incidents by severity")
	}
}

// checkSVG checks that a chart is well-formed XML, as SVG must be.
func checkSVG(t *testing.T, id, fig string) {
	t.Helper()
	start := strings.Index(fig, "<svg")
	end := strings.Index(fig, "</svg>")
	if start < 0 || end < start {
		t.Errorf("chart %q: no complete <svg> element", id)
		return
	}
	dec := xml.NewDecoder(strings.NewReader(fig[start : end+len("</svg>")]))
	dec.Strict = true
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Errorf("chart %q is not well-formed SVG: %v", id, err)
			return
		}
	}
}

func TestHTMLTopTwelve(t *testing.T) {
	d := sample()
	countries := map[string]int64{}
	for i := range 20 {
		countries[fmt.Sprintf("C%02d", i)] = int64(100 - i)
	}
	d.Counts[DimCountry] = countries
	fig := figures(t, render(t, d))["dim-country"]
	if n := strings.Count(fig, "<rect "); n != 13 {
		t.Errorf("chart of 20 keys has %d bars, want 12 and one for the rest", n)
	}
	// C12..C19 are folded: 88+87+...+81 = 676.
	if !strings.Contains(fig, `<title>(8 others): 676</title>`) || !strings.Contains(fig, `class="other"`) {
		t.Errorf("no folded bar for the 8 smallest keys:\n%s", fig)
	}
	if strings.Contains(fig, ">C12<") || !strings.Contains(fig, ">C11<") {
		t.Errorf("wrong keys shown:\n%s", fig)
	}
	if !strings.Contains(fig, "1\u202f810 decisions in all") {
		t.Errorf("caption does not give the total:\n%s", fig)
	}
}

func TestHTMLEmpty(t *testing.T) {
	d := Data{Monitor: "monitor.example", Log: "clover.example/log", From: time.Unix(0, 0), To: time.Unix(86400, 0)}
	page := render(t, d)
	if bytes.Contains(page, []byte("<svg")) {
		t.Error("empty report draws a chart")
	}
	figs := figures(t, page)
	for _, id := range allCharts {
		if !strings.Contains(figs[id], `<p class="nodata">No `) {
			t.Errorf("chart %q of no data does not say so: %q", id, figs[id])
		}
	}
	for _, want := range []string{"No checkpoint was verified in this period.", "no disagreement", "<td>Incidents</td><td><span class=\"ok\">none</span>"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("empty report lacks %q", want)
		}
	}
	// A dimension whose keys are all zero is no data either.
	d.Counts = map[string]map[string]int64{DimSite: {"dublin-1": 0}}
	if fig := figures(t, render(t, d))["dim-site"]; strings.Contains(fig, "<svg") {
		t.Errorf("chart of zeros drawn:\n%s", fig)
	}
}

func TestHTMLSummary(t *testing.T) {
	page := string(render(t, sample()))
	for _, want := range []string{
		"<dt>Monitor</dt><dd>monitor.example</dd>",
		"<code>monitor.example&#43;12345678&#43;AAAA</code>",
		"<dt>Period</dt><dd>2026-11-01 00:00:00 UTC to 2026-12-01 00:00:00 UTC (end excluded)</dd>",
		"<dt>Generated</dt><dd>2026-12-01 00:01:30 UTC</dd>",
		"<td>Log entries verified</td><td>98\u202f665</td>",
		"4\u202f321, last at tree size 98\u202f765",
		`<span class="alert">1 disagreement(s) with the gateway</span>`,
		`2 (critical: 1, high: 1); 1 open`,
		`720 run, 717 passed, <span class="alert">1 control failure(s), 1 log omission(s)</span>, 1 error(s)`,
		"<td class=\"num\">98000</td>", // a probe's log index
		"<td>10, 11, 12</td>",          // an incident's evidence
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The incident table lists incidents by ID.
	if !regexp.MustCompile(`(?s)<td class="num">7</td>.*<td class="num">9</td>`).MatchString(page) {
		t.Error("incidents not listed by ID")
	}
}

func TestGrouped(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1 000", 1234567: "1 234 567", -45678: "-45 678"} {
		if got := grouped(n); got != strings.ReplaceAll(want, " ", "\u202f") {
			t.Errorf("grouped(%d) = %q, want %q", n, got, want)
		}
	}
	if got := shorten(strings.Repeat("é", 40)); got != strings.Repeat("é", 27)+"…" {
		t.Errorf("shorten = %q", got)
	}
}

// TestHTMLConcurrent renders from many goroutines: the parsed template is
// shared, so this is what -race checks.
func TestHTMLConcurrent(t *testing.T) {
	want := render(t, sample())
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			got, err := HTML(sample())
			if err == nil && !bytes.Equal(got, want) {
				err = fmt.Errorf("concurrent rendering differs")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
