package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sparenet/spare/explorer/svg"
)

// Chart files, written into the charts directory and linked from the summary.
const (
	chartInflation = "inflation.svg"
	chartWorkShare = "work-share.svg"
	chartEmission  = "emission-burns.svg"
	chartSweep     = "sweep-best.svg"
	chartFake      = "fake-hardware.svg"
)

func chartNet(demand string) string  { return "net-" + demand + ".svg" }
func chartWash(demand string) string { return "wash-" + demand + ".svg" }

// writeCharts draws the report's charts as standalone SVG files (the explorer's chart code) into dir.
func writeCharts(rep *Report, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	files := map[string]string{}
	opt := func(title, unit string) svg.Options {
		return svg.Options{Width: 760, Height: 300, Title: title, YLabel: unit}
	}
	var inflation, work, emission, fake []svg.Series
	for _, sc := range rep.Scenarios {
		var net, diff []svg.Series
		for _, r := range sortedRoles(sc.Wash.Samples) {
			if r == roleFake.String() {
				fake = append(fake, roleSeries(sc.Wash.Samples, r, sc.Name+" demand"))
				continue
			}
			net = append(net, roleSeries(sc.Wash.Samples, r, r))
			d := svg.Series{Name: r}
			for i, smp := range sc.Wash.Samples {
				if i < len(sc.Counterfactual.Samples) {
					d.Points = append(d.Points, svg.Point{X: int64(smp.Epoch), Y: smp.Net[r] - sc.Counterfactual.Samples[i].Net[r]})
				}
			}
			diff = append(diff, d)
		}
		files[chartNet(sc.Name)] = string(svg.LineChart(net, opt(fmt.Sprintf("Net income per provider, %s (SPR)", sc.label()), "SPR")))
		files[chartWash(sc.Name)] = string(svg.LineChart(diff, opt(fmt.Sprintf("Net income against no %s, %s (SPR)", sc.trade(), sc.label()), "SPR")))
		inflation = append(inflation, sampleSeries(sc.Wash.Samples, sc.Name, func(s Sample) float64 { return s.InflationPc }),
			sampleSeries(sc.Counterfactual.Samples, sc.Name+", no "+sc.trade(), func(s Sample) float64 { return s.InflationPc }))
		work = append(work, sampleSeries(sc.Wash.Samples, sc.Name, func(s Sample) float64 { return 100 * s.WorkShare }),
			sampleSeries(sc.Counterfactual.Samples, sc.Name+", no "+sc.trade(), func(s Sample) float64 { return 100 * s.WorkShare }))
		if !sc.Pump {
			em, burns := epochSeries(sc.Counterfactual, 100)
			if len(emission) == 0 {
				em.Name = "emission"
				emission = append(emission, em)
			}
			burns.Name = "burns, " + sc.Name + " demand"
			emission = append(emission, burns)
		}
	}
	files[chartFake] = string(svg.LineChart(fake, opt("Net income of a provider with fake hardware (SPR)", "SPR")))
	window := 1
	if sc := rep.Scenarios; len(sc) > 0 && len(sc[0].Wash.Samples) > 1 {
		window = sc[0].Wash.Samples[1].Epoch - sc[0].Wash.Samples[0].Epoch
	}
	files[chartInflation] = string(svg.LineChart(inflation, opt("Net issuance (minted - burned) since genesis, % of genesis", "%")))
	files[chartWorkShare] = string(svg.LineChart(work, opt(fmt.Sprintf("Share of the minted emission paid for work (%%, %d-epoch windows)", window), "%")))
	files[chartEmission] = string(svg.LineChart(emission, opt("Emission and burns per epoch, no wash trades (SPR, window means)", "SPR")))
	if len(rep.Best) > 0 {
		var bars []svg.Bar
		for _, b := range rep.Best {
			bars = append(bars, svg.Bar{Label: b.Strategy, Value: b.MaxDiff})
		}
		files[chartSweep] = string(svg.BarChart(bars, svg.Options{Width: 760, Height: 260,
			Title:  fmt.Sprintf("Best net against not trading, %d param points (SPR per provider)", len(rep.Sweep)),
			YLabel: "SPR", YFormat: func(v float64) string { return fmt.Sprintf("%.3g", v) }}))
	}
	var names []string
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body+"\n"), 0o644); err != nil {
			return nil, err
		}
		names = append(names, path)
	}
	return names, nil
}

func roleSeries(samples []Sample, role, name string) svg.Series {
	return sampleSeries(samples, name, func(s Sample) float64 { return s.Net[role] })
}

func sampleSeries(samples []Sample, name string, f func(Sample) float64) svg.Series {
	s := svg.Series{Name: name}
	for _, smp := range samples {
		s.Points = append(s.Points, svg.Point{X: int64(smp.Epoch), Y: f(smp)})
	}
	return s
}

// epochSeries is a chain's emission and burns per epoch, as means over windows of points points.
func epochSeries(r *Result, points int) (svg.Series, svg.Series) {
	var em, burns svg.Series
	n := len(r.epochs)
	if n == 0 {
		return em, burns
	}
	w := max(1, n/points)
	for i := 0; i < n; i += w {
		var e, b float64
		j := min(i+w, n)
		for _, ep := range r.epochs[i:j] {
			e += float64(ep.Emission)
			b += float64(ep.Burns)
		}
		x := int64(r.epochs[j-1].Epoch)
		em.Points = append(em.Points, svg.Point{X: x, Y: spr(int64(e)) / float64(j-i)})
		burns.Points = append(burns.Points, svg.Point{X: x, Y: spr(int64(b)) / float64(j-i)})
	}
	return em, burns
}

// label names a scenario in a chart's title.
func (sc *Scenario) label() string {
	if sc.Pump {
		return "high demand, a worker pumping"
	}
	return sc.Name + " demand"
}

// trade names what a scenario's counterfactual lacks.
func (sc *Scenario) trade() string {
	if sc.Pump {
		return "pump"
	}
	return "wash"
}

// roleByName is the role of a name.
func roleByName(name string) role {
	for i, n := range roleNames {
		if n == name {
			return role(i)
		}
	}
	return numRoles
}

// relLink is path as a link from the directory of the summary file.
func relLink(summary, path string) string {
	if rel, err := filepath.Rel(filepath.Dir(summary), path); err == nil {
		return filepath.ToSlash(rel)
	}
	return strings.TrimPrefix(filepath.ToSlash(path), "./")
}
