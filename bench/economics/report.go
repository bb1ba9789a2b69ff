package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sparenet/spare/ledger/api"
)

// Options are one run of the program.
type Options struct {
	Epochs      int    // main scenarios
	SweepEpochs int    // each sweep chain; 0: no sweep
	Seed        uint64 //
	Parallel    int    // chains simulated at once
	Log         io.Writer
}

// Scenario is a main scenario: the chain with the wash traders trading and the same chain without.
type Scenario struct {
	Name           string    `json:"name"`         // low, high: demand; pump: high demand and a utilisation pump
	DemandShare    float64   `json:"demand_share"` // of the honest providers' GPUs kept leased by the tenants
	Pump           bool      `json:"pump"`
	Wash           *Result   `json:"wash"`
	Counterfactual *Result   `json:"counterfactual"`
	Compare        []Compare `json:"compare"`
}

// Compare is a role's net in the chain with wash trading and in the counterfactual.
type Compare struct {
	Role    string  `json:"role"`
	NetSPR  float64 `json:"net_spr"`
	CfSPR   float64 `json:"counterfactual_spr"`
	DiffSPR float64 `json:"diff_spr"`
}

// Best is a strategy's best outcome over the sweep.
type Best struct {
	Strategy  string  `json:"strategy"`
	Points    int     `json:"points"`
	Positive  int     `json:"positive"` // points where it made more than the counterfactual
	MaxDiff   float64 `json:"max_diff_spr"`
	MaxAt     string  `json:"max_at"`
	MinDiff   float64 `json:"min_diff_spr"`
	MeanDiff  float64 `json:"mean_diff_spr"`
	MaxPaid   float64 `json:"wash_paid_at_max_spr"`
	MaxProfit float64 `json:"max_diff_per_paid"` // the best diff per SPR paid into wash leases
}

// Report is the whole run.
type Report struct {
	Date        string        `json:"date"`
	Machine     string        `json:"machine"`
	Go          string        `json:"go"`
	Command     string        `json:"command"`
	Seconds     float64       `json:"seconds"`
	Params      api.Params    `json:"params"` // the main scenarios'
	BlockSec    float64       `json:"block_sec"`
	Scenarios   []Scenario    `json:"scenarios"`
	SweepEpochs int           `json:"sweep_epochs"`
	Sweep       []*SweepPoint `json:"sweep,omitempty"`
	Best        []Best        `json:"sweep_best,omitempty"`
	Refused     []Refused     `json:"refused"`
}

// job is one chain to simulate.
type job struct {
	cfg Config
	put func(*Result)
}

// runAll simulates the jobs, opts.Parallel at a time, and stops at the first error.
func runAll(jobs []job, parallel int, log io.Writer, what string) error {
	var mu sync.Mutex
	var first error
	next, done := 0, 0
	var wg sync.WaitGroup
	start := time.Now()
	for range max(parallel, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= len(jobs) || first != nil {
					mu.Unlock()
					return
				}
				j := jobs[next]
				next++
				mu.Unlock()
				t := time.Now()
				r, err := Run(j.cfg)
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("%s: %w", j.cfg.Name, err)
				}
				if err == nil {
					r.Seconds = time.Since(t).Seconds()
					j.put(r)
				}
				done++
				if log != nil && (done%50 == 0 || done == len(jobs) || len(jobs) < 20) {
					fmt.Fprintf(log, "%s: %d/%d chains (%.0f s)\n", what, done, len(jobs), time.Since(start).Seconds())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// simulate runs the main scenarios, the sweep and the refused params.
func simulate(o Options) (*Report, error) {
	rep := &Report{Params: baseParams(mainE0, mainK), BlockSec: blockDT.Seconds(), SweepEpochs: o.SweepEpochs, Refused: refusedCases()}
	var jobs []job
	for _, d := range scenarioDefs {
		rep.Scenarios = append(rep.Scenarios, Scenario{Name: d.Name, DemandShare: d.Share, Pump: d.Pump})
		i := len(rep.Scenarios) - 1
		for _, wash := range []bool{true, false} {
			wash := wash
			jobs = append(jobs, job{cfg: mainConfig(d, o.Epochs, o.Seed, wash), put: func(r *Result) {
				if wash {
					rep.Scenarios[i].Wash = r
				} else {
					rep.Scenarios[i].Counterfactual = r
				}
			}})
		}
	}
	if err := runAll(jobs, o.Parallel, o.Log, "main scenarios"); err != nil {
		return nil, err
	}
	for i := range rep.Scenarios {
		sc := &rep.Scenarios[i]
		for _, rr := range sc.Wash.Roles {
			cf := sc.Counterfactual.role(rr.Role)
			sc.Compare = append(sc.Compare, Compare{Role: rr.Role, NetSPR: rr.NetSPR, CfSPR: cf.NetSPR, DiffSPR: rr.NetSPR - cf.NetSPR})
		}
	}
	if o.SweepEpochs > 0 {
		if err := sweep(rep, o); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// sweep runs every grid point: the counterfactual chain and one chain per strategy.
func sweep(rep *Report, o Options) error {
	rep.Sweep = sweepPoints(o.SweepEpochs, o.Seed)
	var jobs []job
	var mu sync.Mutex
	for _, sp := range rep.Sweep {
		if sp.Refused != "" {
			continue
		}
		sp.runs = map[string]*Result{}
		sp := sp
		jobs = append(jobs, job{cfg: sweepConfig(sp.params, sp.sweepEpochs, sp.sweepSeed, 0, false), put: func(r *Result) { sp.cf = r }})
		for _, st := range strategies {
			st := st
			jobs = append(jobs, job{cfg: sweepConfig(sp.params, sp.sweepEpochs, sp.sweepSeed, st, true), put: func(r *Result) {
				mu.Lock()
				sp.runs[st.String()] = r
				mu.Unlock()
			}})
		}
	}
	if err := runAll(jobs, o.Parallel, o.Log, "sweep"); err != nil {
		return err
	}
	best := map[string]*Best{}
	for _, st := range strategies {
		best[st.String()] = &Best{Strategy: st.String(), MaxDiff: math.Inf(-1), MinDiff: math.Inf(1)}
	}
	for _, sp := range rep.Sweep {
		if sp.Refused != "" {
			continue
		}
		sp.Outcomes = map[string]Outcome{}
		sp.Invariants = sp.cf.Invariants
		sp.Failures = countFailures(sp.cf)
		for _, st := range strategies {
			r := sp.runs[st.String()]
			sp.Invariants += r.Invariants
			sp.Failures += countFailures(r)
			w, cf := r.role(st.String()), sp.cf.role(st.String())
			out := Outcome{NetSPR: w.NetSPR, CfSPR: cf.NetSPR, DiffSPR: w.NetSPR - cf.NetSPR, PaidSPR: w.WashPaidSPR, WorkSPR: w.WorkSPR, AvailSPR: w.AvailSPR}
			sp.Outcomes[st.String()] = out
			b := best[st.String()]
			b.Points++
			b.MeanDiff += out.DiffSPR
			if out.DiffSPR > 0 {
				b.Positive++
			}
			if out.DiffSPR > b.MaxDiff {
				b.MaxDiff, b.MaxAt, b.MaxPaid = out.DiffSPR, sp.label(), out.PaidSPR
			}
			b.MinDiff = math.Min(b.MinDiff, out.DiffSPR)
			if out.PaidSPR > 0 {
				if v := out.DiffSPR / out.PaidSPR; b.MaxProfit == 0 || v > b.MaxProfit {
					b.MaxProfit = v
				}
			}
		}
	}
	for _, st := range strategies {
		b := best[st.String()]
		if b.Points > 0 {
			b.MeanDiff /= float64(b.Points)
		}
		rep.Best = append(rep.Best, *b)
	}
	return nil
}

func countFailures(r *Result) int {
	n := 0
	for _, v := range r.Failures {
		n += v
	}
	return n
}

// text writes the report for people.
func (rep *Report) text(w io.Writer) {
	fmt.Fprintf(w, "Spare economic simulation (%s, %s): %.0f s\n", rep.Machine, rep.Go, rep.Seconds)
	p := rep.Params
	fmt.Fprintf(w, "params: take %d ppm, burn %d ppm, auditors %d ppm, availability %d ppm, work cap %d ppm; emission %s an epoch at first, K %d epochs, cap %s; %d-block epochs of %.0f s blocks\n\n",
		p.TakeRatePPM, p.BurnPPM, p.AuditorSharePPM, p.AvailabilitySharePPM, p.WorkRewardCapPPM, api.FormatSPR(p.EmissionFirstEpoch),
		p.EmissionTimeConstantEpochs, api.FormatSPR(p.EmissionCap), p.EpochBlocks, rep.BlockSec)
	for _, sc := range rep.Scenarios {
		r := sc.Wash
		fmt.Fprintf(w, "%s (%.0f%% of the honest GPUs leased): %d epochs, %d blocks, %d txs, %.1f s; mean sampled utilisation %.1f%% (counterfactual %.1f%%)\n",
			sc.Name, 100*sc.DemandShare, r.Epochs, r.Blocks, r.Txs, r.Seconds, 100*r.MeanUtil, 100*sc.Counterfactual.MeanUtil)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "role\tproviders\tnet SPR\tcounterfactual\tdiff\tleases SPR\tavailability\twork\tfees\tslashed\twash paid\t")
		for i, rr := range r.Roles {
			c := sc.Compare[i]
			fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%+.3f\t%.3f\t%.3f\t%.4f\t%.3f\t%.2f\t%.2f\t\n", rr.Role, rr.Providers, rr.NetSPR, c.CfSPR, c.DiffSPR,
				rr.LeaseSPR, rr.AvailSPR, rr.WorkSPR, rr.FeesSPR, rr.SlashedSPR, rr.WashPaidSPR)
		}
		tw.Flush()
		for _, x := range []*Result{r, sc.Counterfactual} {
			fmt.Fprintf(w, "  %-28s minted %s (of %s scheduled: auditors %s, availability %s, work %s), burned %s; net issuance %+.4f%% of genesis %s; work share %.1f%%; invariant checks %d; failed txs %d\n",
				x.Name, api.FormatSPR(x.Minted), api.FormatSPR(x.Scheduled), api.FormatSPR(x.PaidAuditors), api.FormatSPR(x.PaidAvail), api.FormatSPR(x.PaidWork),
				api.FormatSPR(x.Burned), 100*(float64(x.Minted)-float64(x.Burned))/float64(x.Genesis), api.FormatSPR(x.Genesis),
				100*share(x.PaidWork, x.Minted), x.Invariants, countFailures(x))
		}
		fmt.Fprintln(w)
	}
	if len(rep.Sweep) > 0 {
		fmt.Fprintf(w, "wash-trading sweep: %d param points x (counterfactual + %d strategies), %d epochs each, high demand\n", len(rep.Sweep), len(strategies), rep.SweepEpochs)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "strategy\tpoints\tpositive\tbest diff SPR\tworst\tmean\tbest diff / SPR paid\tbest at\t")
		for _, b := range rep.Best {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%+.4f\t%+.3f\t%+.3f\t%+.4f\t%s\t\n", b.Strategy, b.Points, b.Positive, b.MaxDiff, b.MinDiff, b.MeanDiff, b.MaxProfit, b.MaxAt)
		}
		tw.Flush()
		refused, failed := 0, 0
		for _, sp := range rep.Sweep {
			if sp.Refused != "" {
				refused++
			}
			failed += sp.Failures
		}
		fmt.Fprintf(w, "  grid points refused by Params.Validate: %d; failed transactions over the sweep: %d\n\n", refused, failed)
	}
	fmt.Fprintln(w, "refused at genesis (Params.Validate, and the ledger's InitChain):")
	for _, r := range rep.Refused {
		fmt.Fprintf(w, "  %s\n    InitChain %s: %s\n", r.Change, r.InitChain, r.Error)
	}
}

func share(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// sortedRoles lists the roles present in a sample set, in role order.
func sortedRoles(samples []Sample) []string {
	seen := map[string]bool{}
	for _, s := range samples {
		for r := range s.Net {
			seen[r] = true
		}
	}
	var out []string
	for r := range seen {
		out = append(out, r)
	}
	order := map[string]int{}
	for i, n := range roleNames {
		order[n] = i
	}
	sort.Slice(out, func(i, j int) bool { return order[out[i]] < order[out[j]] })
	return out
}
