package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Layout of a bar chart, in SVG user units (pixels at 100%).
const (
	chartWidth   = 680
	labelWidth   = 210 // the label column, right-aligned against the bars
	barX         = labelWidth + 10
	barMaxWidth  = 340
	rowHeight    = 22
	barHeight    = 14
	chartPadding = 6
	maxBars      = 12 // more keys than this are folded into one "other" bar
	maxLabel     = 28 // runes of a label shown; the full label is the bar's tooltip
)

// chart is a horizontal bar chart ready for the template: every number is
// computed here so the template only places them.
type chart struct {
	ID     string // anchor and aria id, from the dimension
	Title  string
	Unit   string // what the values count, for the caption
	Empty  string // what to say when there is nothing to draw
	Total  int64
	Bars   []bar
	Height int
	Width  int
	LabelX int // right edge of the labels
	BarX   int // left edge of the bars
	BarH   int
}

type bar struct {
	Label     string // as shown, perhaps shortened
	FullLabel string
	Value     string // formatted
	Y         int    // top of the row
	TextY     int    // baseline of the row's text
	BarY      int
	BarWidth  string // formatted, proportional to the value
	ValueX    string // where the value text starts
	Other     bool   // the folded remainder
}

type entry struct {
	key string
	n   int64
}

// byValue orders counts from the largest down, ties by key, so that the
// order never depends on map iteration.
func byValue(counts map[string]int64) []entry {
	es := make([]entry, 0, len(counts))
	for k, n := range counts {
		es = append(es, entry{k, n})
	}
	slices.SortFunc(es, func(a, b entry) int {
		if c := cmp.Compare(b.n, a.n); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	return es
}

// newChart lays out entries in the order given, folding all after the
// first maxBars into one bar. A chart whose values are all zero is empty.
func newChart(id, title, unit, empty string, es []entry) chart {
	c := chart{ID: id, Title: title, Unit: unit, Empty: empty, Width: chartWidth, LabelX: labelWidth, BarX: barX, BarH: barHeight}
	for _, e := range es {
		c.Total += e.n
	}
	if c.Total == 0 {
		return c
	}
	if len(es) > maxBars {
		var rest int64
		for _, e := range es[maxBars:] {
			rest += e.n
		}
		folded := len(es) - maxBars
		es = append(es[:maxBars:maxBars], entry{key: fmt.Sprintf("(%d others)", folded), n: rest})
	}
	var maxN int64
	for _, e := range es {
		maxN = max(maxN, e.n)
	}
	for i, e := range es {
		w := float64(barMaxWidth) * float64(e.n) / float64(maxN)
		if e.n > 0 && w < 1 {
			w = 1 // a value that is not zero stays visible
		}
		y := chartPadding + i*rowHeight
		c.Bars = append(c.Bars, bar{
			Label:     shorten(e.key),
			FullLabel: e.key,
			Value:     grouped(e.n),
			Y:         y,
			TextY:     y + rowHeight/2 + 4,
			BarY:      y + (rowHeight-barHeight)/2,
			BarWidth:  strconv.FormatFloat(w, 'f', 1, 64),
			ValueX:    strconv.FormatFloat(float64(barX)+w+6, 'f', 1, 64),
			Other:     i == maxBars,
		})
	}
	c.Height = 2*chartPadding + len(c.Bars)*rowHeight
	return c
}

// shorten cuts a label to maxLabel runes, marking the cut.
func shorten(s string) string {
	if s == "" {
		return "(none)"
	}
	if utf8.RuneCountInString(s) <= maxLabel {
		return s
	}
	r := []rune(s)
	return string(r[:maxLabel-1]) + "…"
}

// grouped formats n with thin spaces between groups of three digits, so
// that large counts read at a glance in any language.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, "\u202f"...)
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
