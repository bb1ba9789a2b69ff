package svg

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// parsed is what the tests need to know about one rendered chart.
type parsed struct {
	counts map[string]int // elements by local name
	hrefs  []string
	texts  []string // character data
	attrs  []string // every attribute value
}

// parse fails the test unless out is one well-formed <svg> element whose numeric attributes are finite.
func parse(t testing.TB, out string) parsed {
	t.Helper()
	p := parsed{counts: map[string]int{}}
	d := xml.NewDecoder(strings.NewReader(out))
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, out)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if tok.Name.Local != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("root is %v", tok.Name)
				}
			}
			depth++
			p.counts[tok.Name.Local]++
			for _, a := range tok.Attr {
				p.attrs = append(p.attrs, a.Value)
				if a.Name.Local == "href" {
					p.hrefs = append(p.hrefs, a.Value)
				}
				switch a.Name.Local {
				case "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height", "d", "transform", "viewBox":
					if v := strings.ToLower(a.Value); strings.Contains(v, "nan") || strings.Contains(v, "inf") {
						t.Fatalf("%s=%q", a.Name.Local, a.Value)
					}
				}
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && strings.TrimSpace(string(tok)) != "" {
				t.Fatalf("text outside <svg>: %q", tok)
			}
			p.texts = append(p.texts, string(tok))
		}
	}
	if roots != 1 {
		t.Fatalf("%d root elements", roots)
	}
	return p
}

func finitePoints(ss []Series) int {
	n := 0
	for _, s := range ss {
		for _, p := range s.Points {
			if !math.IsNaN(p.Y) && !math.IsInf(p.Y, 0) {
				n++
			}
		}
	}
	return n
}

func line(name string, ys ...float64) Series {
	s := Series{Name: name}
	for i, y := range ys {
		s.Points = append(s.Points, Point{X: int64(i) * 60_000, Y: y})
	}
	return s
}

func TestLineChart(t *testing.T) {
	const t0 = 1_700_000_000_000
	many := make([]Series, 11)
	for i := range many {
		many[i] = line("validator-"+strconv.Itoa(i), float64(i), float64(i*i), 3)
	}
	tests := []struct {
		name   string
		series []Series
		o      Options
		empty  bool
	}{
		{"nil", nil, Options{}, true},
		{"no points", []Series{{Name: "a"}, {Name: "b"}}, Options{}, true},
		{"only NaN", []Series{line("a", math.NaN(), math.Inf(1), math.Inf(-1))}, Options{}, true},
		{"single point", []Series{line("a", 5)}, Options{TimeX: true}, false},
		{"single point numeric", []Series{{Points: []Point{{X: 0, Y: 5}}}}, Options{}, false},
		{"all zero", []Series{line("a", 0, 0, 0)}, Options{}, false},
		{"equal X", []Series{{Name: "a", Points: []Point{{7, 1}, {7, 2}, {7, 3}}}}, Options{}, false},
		{"NaN mixed", []Series{line("a", 1, math.NaN(), 3, math.Inf(1))}, Options{}, false},
		{"negative", []Series{line("a", -5, -20, -3), line("b", 4, -1, 9)}, Options{YLabel: "SPR"}, false},
		{"huge", []Series{line("a", 1e15, 3e15, 2.5e15)}, Options{Title: "huge"}, false},
		{"extreme", []Series{line("a", math.MaxFloat64, -math.MaxFloat64, 5e-324)}, Options{}, false},
		{"time hours", []Series{{Name: "p", Points: []Point{{t0, 1}, {t0 + 5*3600_000, 2}, {t0 + 9*3600_000, 1.5}}}}, Options{TimeX: true}, false},
		{"time days", []Series{{Name: "p", Points: []Point{{t0, 1}, {t0 + 20*86400_000, 2}}}}, Options{TimeX: true}, false},
		{"time years", []Series{{Name: "p", Points: []Point{{0, 1}, {t0, 2}}}}, Options{TimeX: true}, false},
		{"time ms", []Series{{Name: "p", Points: []Point{{t0, 1}, {t0 + 3, 2}}}}, Options{TimeX: true}, false},
		{"extreme X", []Series{{Points: []Point{{math.MinInt64, 1}, {math.MaxInt64, 2}}}}, Options{TimeX: true}, false},
		{"unsorted", []Series{{Points: []Point{{5, 1}, {1, 2}, {3, 0}}}}, Options{}, false},
		{"many series", many, Options{Title: "eleven", YFormat: func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + " SPR" }}, false},
		{"tiny size", []Series{line("a", 1, 2)}, Options{Width: 1, Height: 1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := string(LineChart(tc.series, tc.o))
			p := parse(t, out)
			if got := strings.Contains(out, "no data yet"); got != tc.empty {
				t.Errorf("no data yet shown = %v, want %v", got, tc.empty)
			}
			if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
				t.Errorf("NaN/Inf in output:\n%s", out)
			}
			if got, want := p.counts["circle"], finitePoints(tc.series); got != want {
				t.Errorf("%d circles, want %d", got, want)
			}
			if out != string(LineChart(tc.series, tc.o)) {
				t.Error("output differs between two renders")
			}
			if !tc.empty {
				if n := p.counts["line"]; n < 6 || n > 12 { // 3-6 Y grid lines and 3-6 X grid lines
					t.Errorf("%d grid lines", n)
				}
				if legend := strings.Contains(out, `class="legend`); legend != (len(tc.series) > 1) {
					t.Errorf("legend shown = %v with %d series", legend, len(tc.series))
				}
			}
		})
	}
}

func TestBarChart(t *testing.T) {
	fifty := make([]Bar, 50)
	for i := range fifty {
		fifty[i] = Bar{Label: "provider-with-a-long-name-" + strconv.Itoa(i), Value: float64(i * 37), Href: "/provider/" + strconv.Itoa(i)}
	}
	tests := []struct {
		name  string
		bars  []Bar
		o     Options
		empty bool
	}{
		{"nil", nil, Options{}, true},
		{"only NaN", []Bar{{Label: "a", Value: math.NaN()}}, Options{}, true},
		{"single", []Bar{{Label: "a", Value: 3}}, Options{Title: "one"}, false},
		{"all zero", []Bar{{Label: "a"}, {Label: "b"}}, Options{}, false},
		{"negative", []Bar{{Label: "a", Value: -3}, {Label: "b", Value: 7}, {Label: "c", Value: math.Inf(1)}}, Options{YLabel: "GPU-h"}, false},
		{"huge", []Bar{{Label: "a", Value: 1e15}, {Label: "b", Value: math.MaxFloat64}}, Options{}, false},
		{"fifty", fifty, Options{}, false},
		{"two hundred", append(append(append(fifty, fifty...), fifty...), fifty...), Options{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := string(BarChart(tc.bars, tc.o))
			p := parse(t, out)
			if got := strings.Contains(out, "no data yet"); got != tc.empty {
				t.Errorf("no data yet shown = %v, want %v", got, tc.empty)
			}
			if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
				t.Errorf("NaN/Inf in output:\n%s", out)
			}
			if out != string(BarChart(tc.bars, tc.o)) {
				t.Error("output differs between two renders")
			}
			finite := 0
			for _, b := range tc.bars {
				if !math.IsNaN(b.Value) && !math.IsInf(b.Value, 0) {
					finite++
				}
			}
			if got := p.counts["rect"]; got != finite {
				t.Errorf("%d bars, want %d", got, finite)
			}
		})
	}
}

func TestBarLabelsTruncated(t *testing.T) {
	long := strings.Repeat("abcdefghij", 10)
	out := string(BarChart([]Bar{{Label: long, Value: 1}, {Label: "b", Value: 2}, {Label: "c", Value: 3}, {Label: "d", Value: 4},
		{Label: "e", Value: 5}, {Label: "f", Value: 6}, {Label: "g", Value: 7}, {Label: "h", Value: 8}}, Options{}))
	p := parse(t, out)
	var full, cut bool
	for _, s := range p.texts {
		full = full || strings.Contains(s, long+": 1")
		cut = cut || strings.HasSuffix(s, "…") && strings.HasPrefix(long, strings.TrimSuffix(s, "…"))
	}
	if !full || !cut {
		t.Errorf("full label in tooltip %v, truncated label %v\n%s", full, cut, out)
	}
}

func TestEscaping(t *testing.T) {
	const evil = `<script>alert("x&'y")</script>`
	o := Options{Title: evil, YLabel: evil, YFormat: func(float64) string { return evil }}
	outs := []string{
		string(LineChart([]Series{{Name: evil, Href: "/a?b=" + evil, Points: []Point{{1, 1}, {2, 2}}}, line(evil, 3)}, o)),
		string(BarChart([]Bar{{Label: evil, Value: 1, Href: "?q=" + evil}}, o)),
		string(LineChart(nil, o)),
	}
	for i, out := range outs {
		if strings.Contains(out, "<script") || strings.Contains(out, `"x&`) {
			t.Errorf("chart %d: unescaped text:\n%s", i, out)
		}
		p := parse(t, out)
		seen := false
		for _, s := range append(p.texts, p.attrs...) {
			seen = seen || strings.Contains(s, evil)
		}
		if !seen {
			t.Errorf("chart %d: text does not round-trip", i)
		}
	}
}

func TestHrefs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/provider/abc", "/provider/abc"},
		{"?page=2&sort=price", "?page=2&sort=price"},
		{"javascript:alert(1)", ""},
		{"JavaScript:alert(1)", ""},
		{" javascript:alert(1)", ""},
		{"https://evil.example", ""},
		{"//evil.example", ""},
		{`/\evil.example`, ""},
		{"/\t/evil.example", ""},
		{"data:text/html,x", ""},
		{"", ""},
	} {
		if got := safeHref(tc.in); got != tc.want {
			t.Errorf("safeHref(%q) = %q, want %q", tc.in, got, tc.want)
		}
		outs := []string{
			string(LineChart([]Series{line("a", 1), {Name: "b", Href: tc.in, Points: []Point{{1, 2}}}}, Options{})),
			string(BarChart([]Bar{{Label: "a", Value: 1, Href: tc.in}}, Options{})),
		}
		for _, out := range outs {
			hrefs := parse(t, out).hrefs
			if tc.want == "" && len(hrefs) != 0 || tc.want != "" && (len(hrefs) != 1 || hrefs[0] != tc.want) {
				t.Errorf("href %q rendered as %q", tc.in, hrefs)
			}
		}
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 87, []float64{0, 20, 40, 60, 80, 100}},
		{0, 100, []float64{0, 20, 40, 60, 80, 100}},
		{0, 1, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{0, 0, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{-3, 7, []float64{-5, 0, 5, 10}},
		{0, 1e15, []float64{0, 2e14, 4e14, 6e14, 8e14, 1e15}},
		{0, 0.003, []float64{0, 0.001, 0.002, 0.003}},
		{0, 4, []float64{0, 1, 2, 3, 4}},
	} {
		got := niceTicks(tc.lo, tc.hi)
		if len(got) != len(tc.want) {
			t.Errorf("niceTicks(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-9*math.Max(1, math.Abs(tc.want[i])) {
				t.Errorf("niceTicks(%v, %v) = %v, want %v", tc.lo, tc.hi, got, tc.want)
				break
			}
		}
	}
	// Properties over many ranges: 3 to 6 ticks covering the range, a 1-2-5 step.
	for _, r := range [][2]float64{{0, 1}, {0, 7}, {-1, 1}, {3, 3.5}, {-250, -10}, {1e-7, 3e-7}, {0, 1e300}, {-1e300, 1e300},
		{1e18, 1e18 + 1}, {5, 5}, {-5, -5}, {0, 5e-324}, {0, 9.99}, {0, 10.01}, {1234, 98765}} {
		ticks := niceTicks(r[0], r[1])
		if len(ticks) < 3 || len(ticks) > 6 || ticks[0] > r[0] || ticks[len(ticks)-1] < r[1] {
			t.Errorf("niceTicks(%v, %v) = %v", r[0], r[1], ticks)
			continue
		}
		step := ticks[1] - ticks[0]
		m := step / math.Pow(10, math.Floor(math.Log10(step)))
		if math.Abs(m-1) > 1e-6 && math.Abs(m-2) > 1e-6 && math.Abs(m-5) > 1e-6 && math.Abs(m-10) > 1e-6 {
			t.Errorf("niceTicks(%v, %v) step %v", r[0], r[1], step)
		}
	}
}

func TestXTicksProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		lo := float64(r.Int64N(4e12)) - 2e12
		hi := lo + math.Pow(10, r.Float64()*13)
		lo, hi = widen(lo, hi)
		for _, timeX := range []bool{false, true} {
			ticks := xTicks(lo, hi, timeX)
			if len(ticks) < 3 || len(ticks) > 6 {
				t.Fatalf("xTicks(%v, %v, %v) = %v", lo, hi, timeX, ticks)
			}
			for j := 1; j < len(ticks); j++ {
				if !(ticks[j] > ticks[j-1]) {
					t.Fatalf("xTicks(%v, %v, %v) = %v: not increasing", lo, hi, timeX, ticks)
				}
			}
		}
	}
}

func TestTimeTicks(t *testing.T) {
	const t0 = 1_700_000_000_000 // 2023-11-14 22:13:20 UTC
	for _, tc := range []struct {
		lo, hi float64
		first  string
	}{
		{t0, t0 + 10*60_000, "22:14"},
		{t0, t0 + 9*hourMs, "Nov 15"},
		{t0, t0 + 20*dayMs, "Nov 16"},
		{t0, t0 + 10*yearMs, "2024"},
		{t0, t0 + 2500, "22:13:20.000"},
	} {
		ticks := xTicks(tc.lo, tc.hi, true)
		if len(ticks) < 3 || len(ticks) > 6 || ticks[0] < tc.lo || ticks[len(ticks)-1] > tc.hi {
			t.Errorf("xTicks(%v, %v) = %v", tc.lo, tc.hi, ticks)
		}
		if got := timeLabel(ticks[0], ticks[1]-ticks[0]); got != tc.first {
			t.Errorf("xTicks(+%vms): first label %q, want %q", tc.hi-tc.lo, got, tc.first)
		}
	}
	if got := timeLabel(t0-math.Mod(t0, dayMs), 6*hourMs); got != "Nov 14" {
		t.Errorf("midnight tick on an hour axis = %q, want the date", got)
	}
}

func TestCompact(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {5, "5"}, {0.25, "0.25"}, {0.1 + 0.2, "0.3"}, {12.345, "12.3"},
		{999, "999"}, {999.9, "1k"}, {1000, "1k"}, {1234, "1.23k"}, {1500, "1.5k"}, {-1200, "-1.2k"},
		{12345, "12.3k"}, {123456, "123k"}, {999999, "1M"}, {3.4e6, "3.4M"}, {2.5e9, "2.5G"}, {1e12, "1T"},
		{1e15, "1P"}, {4.2e18, "4.2E"}, {1e21, "1e+21"}, {0.00012, "0.00012"}, {1.5e-7, "1.5e-07"},
		{math.NaN(), "–"}, {math.Inf(1), "–"},
	} {
		if got := compact(tc.v); got != tc.want {
			t.Errorf("compact(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestNum(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {-0.04, "0"}, {1.25, "1.3"}, {12.04, "12"}, {-3.33, "-3.3"}, {math.NaN(), "0"}, {math.Inf(-1), "0"}} {
		if got := num(tc.v); got != tc.want {
			t.Errorf("num(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{{"abc", 3, "abc"}, {"abcd", 3, "ab…"}, {"日本語テキスト", 4, "日本語…"}, {"abc", 0, ""}} {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func FuzzLineChart(f *testing.F) {
	f.Add("validators", "/v", "<b>&", 1.0, 2.0, math.NaN(), int64(0), int64(60_000), true)
	f.Add("", "javascript:x", "", math.Inf(1), -1e308, 1e-320, int64(math.MinInt64), int64(math.MaxInt64), false)
	f.Add("\x00\xff\"'", "?q=\x01", "\u2028", 0.0, 0.0, 0.0, int64(5), int64(5), false)
	f.Fuzz(func(t *testing.T, name, href, title string, y1, y2, y3 float64, x1, x2 int64, timeX bool) {
		series := []Series{
			{Name: name, Href: href, Points: []Point{{x1, y1}, {x2, y2}, {x1 / 2, y3}}},
			{Name: title, Points: []Point{{x2, y3}}},
		}
		o := Options{Title: title, YLabel: name, TimeX: timeX, Width: int(x1 % 2000), Height: int(x2 % 1000)}
		out := string(LineChart(series, o))
		p := parse(t, out)
		if got, want := p.counts["circle"], finitePoints(series); got != want {
			t.Fatalf("%d circles, want %d", got, want)
		}
		if in := name + href + title; !strings.Contains(in, "NaN") && strings.Contains(out, "NaN") {
			t.Fatalf("NaN in output:\n%s", out)
		}
		if out != string(LineChart(series, o)) {
			t.Fatal("not deterministic")
		}
		parse(t, string(BarChart([]Bar{{name, y1, href}, {title, y2, ""}, {"", y3, href}}, o)))
	})
}
