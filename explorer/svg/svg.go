// Package svg draws small server-side SVG charts (lines over time, bars) for the explorer's html/template
// pages: one self-contained <svg> element per chart, no JavaScript, no external assets, standard library only.
//
// Output is deterministic (same input, same bytes), always well-formed XML, never contains NaN or Inf, and
// escapes every piece of caller text. Links are kept only when they are relative ("/path" or "?query").
package svg

import (
	"encoding/xml"
	"fmt"
	"html/template"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Point is one sample: X is a unix time in milliseconds when Options.TimeX is set, otherwise any number.
type Point struct {
	X int64
	Y float64
}

// Series is one line; Href, when set, makes the legend entry a link.
type Series struct {
	Name   string
	Href   string
	Points []Point
}

// Bar is one bar of a bar chart; Href, when set, wraps the bar and its label in an <a>.
type Bar struct {
	Label string
	Value float64
	Href  string
}

// Options size and label a chart.
type Options struct {
	Width, Height int                  // pixels; 0 means 640x220
	Title         string               // rendered as <title> and a visible heading inside the SVG
	YLabel        string               // unit text shown by the Y axis, e.g. "SPR per GPU-hour"
	TimeX         bool                 // X values are unix ms: tick labels as times (UTC, "15:04" or "Jan 2" depending on span)
	YFormat       func(float64) string // tick and tooltip formatting; nil = compact (1.2k, 3.4M, up to 3 significant digits)
}

// palette holds the series colours, cycled; class "sN" names colour N for pages that want to restyle it.
var palette = [8]string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"}

const (
	limit  = 1e300 // values are clamped to ±limit so that no span overflows
	charW  = 6.5   // rough advance of one character at font-size 11
	hourMs = 3600e3
	dayMs  = 24 * hourMs
	yearMs = 365 * dayMs
)

// LineChart draws one line per series, a circle with a tooltip per finite point, and a legend when there is
// more than one series. Points are drawn in X order; NaN and Inf values are skipped.
func LineChart(series []Series, o Options) template.HTML {
	c := newCanvas(o, "line chart")
	pts := make([][]Point, len(series))
	n, xlo, xhi, ylo, yhi := 0, int64(math.MaxInt64), int64(math.MinInt64), 0.0, 0.0
	for i, s := range series {
		for _, p := range s.Points {
			if math.IsNaN(p.Y) || math.IsInf(p.Y, 0) {
				continue
			}
			p.Y = clamp(p.Y)
			pts[i] = append(pts[i], p)
			n, xlo, xhi, ylo, yhi = n+1, min(xlo, p.X), max(xhi, p.X), math.Min(ylo, p.Y), math.Max(yhi, p.Y)
		}
		sort.SliceStable(pts[i], func(a, b int) bool { return pts[i][a].X < pts[i][b].X })
	}
	if n == 0 {
		return c.empty()
	}
	lo, hi := float64(xlo), float64(xhi)
	if lo == hi { // one instant: centre it
		d := math.Max(1, math.Abs(lo)/10)
		if o.TimeX {
			d = hourMs
		}
		lo, hi = lo-d, hi+d
	}
	lo, hi = widen(lo, hi)
	xt := xTicks(lo, hi, o.TimeX)
	c.xlo, c.xhi = math.Min(lo, xt[0]), math.Max(hi, xt[len(xt)-1])
	xlabel := compact
	if o.TimeX {
		xlabel = func(v float64) string { return timeLabel(v, xt[1]-xt[0]) }
	}
	legend, rows := c.legend(series)
	yt := niceTicks(ylo, yhi)
	c.margins(yt)
	c.frame(yt, 22+16*float64(rows))
	for _, t := range xt {
		x := c.x(t)
		c.printf(`<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#f0f0f0"/>`, num(x), num(c.top), num(x), num(c.bottom))
		c.printf(`<text class="tick" x="%s" y="%s" text-anchor="middle" fill="#666">%s</text>`, num(x), num(c.bottom+14), esc(xlabel(t)))
	}
	for i, ps := range pts {
		if len(ps) == 0 {
			continue
		}
		col, name := palette[i%len(palette)], seriesName(series[i].Name, i)
		c.printf(`<g class="series s%d">`, i%len(palette))
		if len(ps) > 1 {
			var d strings.Builder
			for j, p := range ps {
				if j > 0 {
					d.WriteString("L")
				}
				d.WriteString(num(c.x(float64(p.X))) + " " + num(c.y(p.Y)))
			}
			c.printf(`<path class="line" d="M%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"/>`, d.String(), col)
		}
		for _, p := range ps {
			x := strconv.FormatInt(p.X, 10)
			if o.TimeX {
				x = time.UnixMilli(p.X).UTC().Format("2006-01-02 15:04 UTC")
			}
			c.printf(`<circle cx="%s" cy="%s" r="2.5" fill="%s"><title>%s</title></circle>`,
				num(c.x(float64(p.X))), num(c.y(p.Y)), col, esc(name+": "+x+" → "+c.fy(p.Y)))
		}
		c.b.WriteString("</g>")
	}
	c.b.WriteString(legend)
	return c.end()
}

// BarChart draws one vertical bar per finite value, labelled underneath (truncated with an ellipsis when
// long, turned on a slant when the bars are narrow) with the full label and value in a tooltip.
func BarChart(bars []Bar, o Options) template.HTML {
	c := newCanvas(o, "bar chart")
	var vis []Bar
	lo, hi := 0.0, 0.0
	for _, b := range bars {
		if math.IsNaN(b.Value) || math.IsInf(b.Value, 0) {
			continue
		}
		b.Value = clamp(b.Value)
		vis = append(vis, b)
		lo, hi = math.Min(lo, b.Value), math.Max(hi, b.Value)
	}
	if len(vis) == 0 {
		return c.empty()
	}
	yt := niceTicks(lo, hi)
	c.margins(yt)
	slot := (c.right - c.left) / float64(len(vis))
	runes, slant, bottom, every := int((slot-4)/charW), false, 22.0, 1
	if runes < 4 { // too narrow for level labels: slant them at 60°, thinning them out if even that overlaps
		runes, slant, bottom, every = 10, true, 64, max(1, int(math.Ceil(9.5/(slot*0.866))))
	}
	c.frame(yt, bottom)
	zero := c.y(0)
	for i, b := range vis {
		open, closing := anchor(b.Href)
		c.b.WriteString(open)
		tip := c.fy(b.Value)
		if b.Label != "" {
			tip = b.Label + ": " + tip
		}
		x, y := c.left+float64(i)*slot, c.y(b.Value)
		c.printf(`<g class="bar"><title>%s</title><rect class="s0" x="%s" y="%s" width="%s" height="%s" fill="%s"/>`,
			esc(tip), num(x+slot*0.1), num(math.Min(y, zero)), num(math.Max(1, slot*0.8)), num(math.Abs(y-zero)), palette[0])
		if label, cx := truncate(b.Label, runes), x+slot/2; label != "" && i%every == 0 {
			if slant {
				c.printf(`<text class="label" x="%s" y="%s" text-anchor="end" font-size="9" fill="#444" transform="rotate(-60 %[1]s %[2]s)">%s</text>`,
					num(cx+3), num(c.bottom+10), esc(label))
			} else {
				c.printf(`<text class="label" x="%s" y="%s" text-anchor="middle" fill="#444">%s</text>`, num(cx), num(c.bottom+14), esc(label))
			}
		}
		c.b.WriteString("</g>" + closing)
	}
	return c.end()
}

// canvas is a chart under construction: the markup so far and the plot area's geometry.
type canvas struct {
	b                        strings.Builder
	o                        Options
	w, h                     float64
	left, top, right, bottom float64   // plot area
	xlo, xhi                 float64   // X domain
	yt                       []float64 // Y ticks, whose ends are the Y domain
}

func newCanvas(o Options, kind string) *canvas {
	w, h := o.Width, o.Height
	if w <= 0 {
		w = 640
	}
	if h <= 0 {
		h = 220
	}
	w, h = min(max(w, 160), 10000), min(max(h, 100), 10000)
	c := &canvas{o: o, w: float64(w), h: float64(h)}
	label := o.Title
	if label == "" {
		label = kind
	}
	c.printf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" class="chart" `+
		`font-family="system-ui, sans-serif" font-size="11" style="max-width:100%%;height:auto">`, w, h, w, h, esc(label))
	if o.Title != "" {
		c.printf(`<title>%s</title><text class="title" x="8" y="18" font-size="13" font-weight="bold" fill="#222">%s</text>`, esc(o.Title), esc(o.Title))
	}
	return c
}

func (c *canvas) printf(format string, args ...any) { fmt.Fprintf(&c.b, format, args...) }

func (c *canvas) end() template.HTML {
	c.b.WriteString("</svg>")
	return template.HTML(c.b.String()) //nolint:gosec // every piece of caller text went through esc
}

func (c *canvas) empty() template.HTML {
	c.printf(`<text class="empty" x="%s" y="%s" text-anchor="middle" fill="#888">no data yet</text>`, num(c.w/2), num(c.h/2))
	return c.end()
}

// fy formats a Y value with Options.YFormat, or compactly.
func (c *canvas) fy(v float64) string {
	if c.o.YFormat != nil {
		return c.o.YFormat(v)
	}
	return compact(v)
}

// margins places the plot area's left, top and right edges, leaving room for the Y tick labels.
func (c *canvas) margins(yt []float64) {
	runes := 0
	for _, t := range yt {
		runes = max(runes, utf8.RuneCountInString(truncate(c.fy(t), 14)))
	}
	c.left = 10 + math.Max(24, float64(runes)*charW)
	if c.o.YLabel != "" {
		c.left += 16
	}
	c.top = 12
	if c.o.Title != "" {
		c.top = 32
	}
	c.right = c.w - 20
}

// frame fixes the plot's bottom edge and draws the Y grid, tick labels, unit label and axes.
func (c *canvas) frame(yt []float64, bottomMargin float64) {
	c.yt, c.bottom = yt, math.Max(c.h-bottomMargin, c.top+20)
	for _, t := range yt {
		cls, col := "grid", "#e6e6e6"
		if t == 0 && yt[0] < 0 {
			cls, col = "grid zero", "#bbb"
		}
		y := num(c.y(t))
		c.printf(`<line class="%s" x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s"/>`, cls, num(c.left), y, num(c.right), y, col)
		c.printf(`<text class="tick" x="%s" y="%s" text-anchor="end" fill="#666">%s</text>`, num(c.left-6), num(c.y(t)+4), esc(truncate(c.fy(t), 14)))
	}
	if c.o.YLabel != "" {
		y := num((c.top + c.bottom) / 2)
		c.printf(`<text class="ylabel" x="12" y="%s" text-anchor="middle" fill="#444" transform="rotate(-90 12 %[1]s)">%s</text>`, y, esc(c.o.YLabel))
	}
	c.printf(`<path class="axis" d="M%s %sV%sH%s" fill="none" stroke="#999"/>`, num(c.left), num(c.top), num(c.bottom), num(c.right))
}

func (c *canvas) x(v float64) float64 { return scale(v, c.xlo, c.xhi, c.left, c.right) }
func (c *canvas) y(v float64) float64 { return scale(v, c.yt[0], c.yt[len(c.yt)-1], c.bottom, c.top) }

// scale maps v from lo..hi onto a..b.
func scale(v, lo, hi, a, b float64) float64 {
	if !(hi > lo) {
		return a
	}
	return a + (v-lo)/(hi-lo)*(b-a)
}

// legend lays the series names out in up to three rows along the bottom edge, and returns the markup and the
// number of rows; series that do not fit are counted in a trailing "+N more".
func (c *canvas) legend(series []Series) (string, int) {
	if len(series) < 2 {
		return "", 0
	}
	type item struct {
		x    float64
		row  int
		name string
	}
	var items []item
	x, row := 8.0, 0
	for i, s := range series {
		name := truncate(seriesName(s.Name, i), 20)
		w := 26 + float64(utf8.RuneCountInString(name))*charW
		if x > 8 && x+w > c.w-56 {
			if row == 2 {
				break
			}
			x, row = 8, row+1
		}
		items = append(items, item{x, row, name})
		x += w
	}
	rows := row + 1
	var b strings.Builder
	rowY := func(r int) float64 { return c.h - 8 - float64(rows-1-r)*16 }
	for i, it := range items {
		y := rowY(it.row)
		open, closing := anchor(series[i].Href)
		fmt.Fprintf(&b, `%s<g class="legend s%d"><rect x="%s" y="%s" width="10" height="10" fill="%s"/><text x="%s" y="%s" fill="#333">%s</text></g>%s`,
			open, i%len(palette), num(it.x), num(y-9), palette[i%len(palette)], num(it.x+14), num(y), esc(it.name), closing)
	}
	if more := len(series) - len(items); more > 0 {
		fmt.Fprintf(&b, `<text class="legend" x="%s" y="%s" fill="#666">+%d more</text>`, num(x), num(rowY(row)), more)
	}
	return b.String(), rows
}

// widen returns lo..hi, or a wider span around it when it is degenerate (equal ends, or a difference lost
// in float rounding), so that every scale has room.
func widen(lo, hi float64) (float64, float64) {
	if mag := math.Max(math.Abs(lo), math.Abs(hi)); !(hi-lo > 1e-9*mag && hi-lo > 1e-200) {
		d := math.Max(1, mag/10)
		if lo != 0 {
			lo -= d
		}
		hi += d
	}
	return lo, hi
}

// niceTicks returns 3 to 6 evenly spaced ticks, 1, 2 or 5 times a power of ten apart, covering lo..hi.
func niceTicks(lo, hi float64) []float64 {
	lo, hi = widen(lo, hi)
	if t := pickTicks(lo, hi, niceSteps(hi-lo), true); t != nil {
		return t
	}
	return []float64{lo, hi} // not reached: a 1-2-5 step always gives 3 to 6
}

// xTicks returns 3 to 6 ticks for an X axis, inside lo..hi when a step allows that and covering it otherwise.
// Time axes (unix ms) tick on whole seconds, minutes, hours, days (UTC) or, for spans of years, on 1 January.
func xTicks(lo, hi float64, timeX bool) []float64 {
	steps := niceSteps(hi - lo)
	if timeX && hi-lo >= 4e3 { // shorter spans tick on 1-2-5 milliseconds
		steps = timeSteps
	}
	for _, cover := range []bool{false, true} {
		if t := pickTicks(lo, hi, steps, cover); t != nil {
			return t
		}
	}
	if !timeX {
		return []float64{lo, hi} // not reached: a 1-2-5 step always gives 3 to 6
	}
	const avgYear = 365.2425 * dayMs
	ylo, yhi := 1970+lo/avgYear, 1970+hi/avgYear
	steps = niceSteps(yhi - ylo)
	for steps[0] < 1 {
		steps = steps[1:]
	}
	t := pickTicks(ylo, yhi, steps, false)
	if t == nil {
		t = pickTicks(ylo, yhi, steps, true)
	}
	for i, y := range t {
		t[i] = float64(time.Date(int(math.Round(y)), 1, 1, 0, 0, 0, 0, time.UTC).Unix()) * 1e3
	}
	if len(t) < 2 {
		return []float64{lo, hi}
	}
	return t
}

// timeSteps are the tick spacings, in ms, tried for time axes before whole years.
var timeSteps = []float64{1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3,
	hourMs, 2 * hourMs, 3 * hourMs, 6 * hourMs, 12 * hourMs, dayMs, 2 * dayMs, 7 * dayMs, 14 * dayMs,
	30 * dayMs, 91 * dayMs, 182 * dayMs}

// niceSteps lists the 1-2-5 steps around the size of span, ascending.
func niceSteps(span float64) []float64 {
	var steps []float64
	for e := math.Floor(math.Log10(span)) - 1; len(steps) < 9; e++ {
		steps = append(steps, math.Pow(10, e), 2*math.Pow(10, e), 5*math.Pow(10, e))
	}
	return steps
}

// pickTicks returns the multiples of the first of steps that gives at most 6 of them, either covering lo..hi
// or inside it; nil when there are fewer than 3.
func pickTicks(lo, hi float64, steps []float64, cover bool) []float64 {
	for _, s := range steps {
		a, b := math.Ceil(lo/s-1e-9), math.Floor(hi/s+1e-9)
		if cover {
			a, b = math.Floor(lo/s+1e-9), math.Ceil(hi/s-1e-9)
		}
		if n := b - a + 1; !(n <= 6) {
			continue
		} else if n < 3 {
			return nil
		}
		t := make([]float64, 0, 6)
		for j := 0; j <= int(b-a); j++ {
			t = append(t, (a+float64(j))*s)
		}
		return t
	}
	return nil
}

// timeLabel formats a tick of a time axis whose ticks are step ms apart.
func timeLabel(ms, step float64) string {
	t := msTime(ms)
	midnight := t.Hour() == 0 && t.Minute() == 0
	switch {
	case step < 1e3:
		return t.Format("15:04:05.000")
	case step < 60e3:
		return t.Format("15:04:05")
	case step < hourMs || step < dayMs && !midnight:
		return t.Format("15:04")
	case step < yearMs:
		return t.Format("Jan 2")
	}
	return t.Format("2006")
}

// msTime converts unix ms to UTC time, clamping values that int64 cannot hold.
func msTime(ms float64) time.Time {
	return time.UnixMilli(int64(math.Max(-9e18, math.Min(9e18, ms)))).UTC()
}

// compact formats v with up to 3 significant digits and an SI suffix: 0.25, 950, 1.23k, 3.4M, 1.5G.
func compact(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64) // rounded first, so 999.9 becomes 1k
	a := math.Abs(r)
	if a == 0 {
		return "0"
	}
	if a < 1e3 || a >= 1e21 {
		return strconv.FormatFloat(r, 'g', 3, 64)
	}
	e := 1
	for a >= math.Pow10(3*e+3) {
		e++
	}
	return strconv.FormatFloat(r/math.Pow10(3*e), 'g', 3, 64) + "kMGTPE"[e-1:e]
}

// num formats a coordinate with at most one decimal; it never yields NaN or Inf.
func num(v float64) string {
	v = math.Round(v*10) / 10
	if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func clamp(v float64) float64 { return math.Max(-limit, math.Min(limit, v)) }

// esc escapes s for XML text and attribute values; invalid characters become U+FFFD.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) //nolint:errcheck // a strings.Builder does not fail
	return b.String()
}

// safeHref returns h when it is a same-site relative URL ("/path" or "?query"), otherwise "". Protocol-relative
// "//host" and "/\host", and anything with control characters (which browsers strip), are refused.
func safeHref(h string) string {
	if strings.ContainsFunc(h, func(r rune) bool { return r < 0x20 || r == 0x7f }) ||
		strings.HasPrefix(h, "//") || strings.HasPrefix(h, `/\`) || !strings.HasPrefix(h, "/") && !strings.HasPrefix(h, "?") {
		return ""
	}
	return h
}

// anchor returns the opening and closing tags of a link to href, or two empty strings when href is not safe.
func anchor(href string) (string, string) {
	if href = safeHref(href); href == "" {
		return "", ""
	}
	return `<a href="` + esc(href) + `">`, "</a>"
}

// truncate shortens s to at most n runes, ending it with an ellipsis when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func seriesName(name string, i int) string {
	if name == "" {
		return "series " + strconv.Itoa(i+1)
	}
	return name
}
