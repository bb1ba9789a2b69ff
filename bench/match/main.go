// Command match measures matching at network scale on a simulated ledger state: 10,000 providers and a book of
// 100,000 open orders, generated from a fixed seed.
//
//	go run ./bench/match                  # 25,000 of the 100,000 orders, 200 cluster orders (≈ 35 s on 2 cores)
//	go run ./bench/match -orders 0        # every order of the book (≈ 95 s: the naive scan is the cost)
//	go run ./bench/match -quick           # 5,000 orders, 50 cluster orders
//	go run ./bench/match -seed 7 -o json
//
// Single-node matching: for each order, the top k = 5 providers by match.Index.Match, and side by side, on the
// same order in the same run, by match.NaiveMatch (every provider checked with every stage and priced, all the
// feasible ones sorted): the baseline, and the reference. Each call is timed on its own; the two alternate which
// goes first. The report gives p50, p99, max and mean per order for each, the speedup, and the number of orders
// whose two answers differ, which must be 0 (the command exits 1 otherwise). The index is built once, untimed
// per order; its build time is reported.
//
// Cluster selection: match.Cluster picks N = 8 providers whose pairwise round-trip times fit max_rtt, cheapest
// first, over a latency graph where each provider has measured links to up to 32 peers of its own region
// (0.2–8 ms: providers sit in sites of about 40, sites lie in a disc 7.8 ms across, 60% of a provider's peers are
// in its own site; 30% of pairs measured twice, in each direction), and one provider in 50 has a link to another
// region (20–150 ms). -clusters cluster orders, each with its own order id and a max_rtt of 1, 2, 3, 5 or 8 ms,
// in turn: every provider bids (at its cheapest GPU-hour, or 8 core-hours when it has no GPU); the providers
// that pass every stage for a random per-node order (1, 2 or 8 GPUs of any, two or one model; sometimes verified
// or docker only) bid at their PriceFor price; a random 30–90% of the providers bid. The links among the bidders
// are passed, re-indexed (untimed). Each call's time, search steps, and whether it finished (exact) are
// reported, and each chosen set is checked (distinct members, every pair measured within max_rtt at its worst,
// the price). -v prints a line per cluster order and the ten orders the index took longest on.
//
// The cluster baseline is not another search: an exhaustive search is infeasible at this size, and splitting the
// candidates by region would be an optimisation that is exact only while no pair across regions fits the bound,
// not a baseline. It is instead, on the same candidates and links, one pass that builds the compatibility graph
// (adjacency lists of the links within max_rtt): work any exact algorithm must do, since it has to read every
// link. Cluster's time over it is the cost of its deduplication, (n−1)-core reduction and branch-and-bound
// search.
//
// Targets: single-node match p99 ≤ 1 ms; cluster N = 8 p99 ≤ 50 ms (printed as met or not met). The report ends
// with the CPU other processes used during each part: figures taken on a busy machine are not comparable.
package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sparenet/spare/internal/benchenv"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/match"
)

var (
	verbose bool
	modes   = []string{"all bid", "per-node GPU order", "random bidders"}
)

// Config is one run.
type Config struct {
	Seed      uint64 `json:"seed"`
	Providers int    `json:"providers"`
	Book      int    `json:"book"`   // open orders simulated
	Orders    int    `json:"orders"` // of those, matched (the first ones; the book is drawn independently)
	K         int    `json:"k"`
	Clusters  int    `json:"clusters"`
	ClusterN  int    `json:"cluster_n"`
	Peers     int    `json:"peers"` // measured links per provider, at most
}

// Stats are per-call times, in microseconds.
type Stats struct {
	Calls  int     `json:"calls"`
	P50Us  float64 `json:"p50_us"`
	P99Us  float64 `json:"p99_us"`
	MaxUs  float64 `json:"max_us"`
	MeanUs float64 `json:"mean_us"`
}

// Single is the single-node figures.
type Single struct {
	IndexBuildMs float64 `json:"index_build_ms"`
	Index        Stats   `json:"index"`
	Naive        Stats   `json:"naive"`
	SpeedupMean  float64 `json:"speedup_mean"` // naive mean / index mean
	SpeedupP50   float64 `json:"speedup_p50"`
	SpeedupP99   float64 `json:"speedup_p99"`
	Mismatches   int     `json:"mismatches"`
	GPUOrders    int     `json:"gpu_orders"`
	CPUOrders    int     `json:"cpu_orders"`
	Unmatched    int     `json:"unmatched"` // orders no provider can serve
	Short        int     `json:"short"`     // orders with fewer than k providers (unmatched included)
	CPUOthers    float64 `json:"cpu_cores_others"`
}

// ClusterFigures are the cluster figures.
type ClusterFigures struct {
	Links       int     `json:"links"` // measured links in the whole graph
	Cluster     Stats   `json:"cluster"`
	Baseline    Stats   `json:"baseline_graph_pass"`
	RatioP50    float64 `json:"ratio_p50"` // cluster p50 / baseline p50
	StepsP50    int     `json:"steps_p50"`
	StepsP99    int     `json:"steps_p99"`
	StepsMax    int     `json:"steps_max"`
	Exact       int     `json:"exact"`
	Found       int     `json:"found"`
	Invalid     int     `json:"invalid"`
	MeanMembers float64 `json:"mean_candidates"`
	MeanLinks   float64 `json:"mean_links"`
	ByMode      []Mode  `json:"by_mode"`
	CPUOthers   float64 `json:"cpu_cores_others"`
}

// Mode is the cluster figures of one way of choosing the bidders.
type Mode struct {
	Mode        string  `json:"mode"`
	Cluster     Stats   `json:"cluster"`
	Baseline    Stats   `json:"baseline_graph_pass"`
	Found       int     `json:"found"`
	MeanMembers float64 `json:"mean_candidates"`
}

// Target is one goal and whether the run met it.
type Target struct {
	Name     string  `json:"name"`
	LimitUs  float64 `json:"limit_us"`
	Measured float64 `json:"measured_us"`
	Met      bool    `json:"met"`
}

// Report is the whole run.
type Report struct {
	Date    string         `json:"date"`
	Machine string         `json:"machine"`
	Go      string         `json:"go"`
	Command string         `json:"command"`
	Config  Config         `json:"config"`
	Single  Single         `json:"single"`
	Cluster ClusterFigures `json:"cluster"`
	Targets []Target       `json:"targets"`
}

func main() {
	var cfg Config
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of every random choice (PCG)")
	flag.IntVar(&cfg.Providers, "providers", 10_000, "providers")
	flag.IntVar(&cfg.Book, "book", 100_000, "open orders in the simulated state")
	flag.IntVar(&cfg.Orders, "orders", 25_000, "orders of the book to match, each by the index and the naive scan (0 = all)")
	flag.IntVar(&cfg.K, "k", 5, "providers returned per order")
	flag.IntVar(&cfg.Clusters, "clusters", 200, "cluster orders")
	flag.IntVar(&cfg.ClusterN, "cluster-n", 8, "providers per cluster")
	flag.IntVar(&cfg.Peers, "peers", 32, "measured links per provider, at most")
	quick := flag.Bool("quick", false, "5,000 orders and 50 cluster orders")
	output := flag.String("o", "table", "output: table or json")
	quiet := flag.Bool("q", false, "no progress lines on stderr")
	flag.BoolVar(&verbose, "v", false, "a line per cluster order on stderr")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (go tool pprof)")
	flag.Parse()
	if *quick {
		cfg.Orders, cfg.Clusters = 5_000, 50
	}
	if cfg.Orders <= 0 || cfg.Orders > cfg.Book {
		cfg.Orders = cfg.Book
	}
	if *output != "table" && *output != "json" {
		fatal(fmt.Errorf("-o %q: want table or json", *output))
	}
	if cfg.Providers < cfg.ClusterN || cfg.Book < 1 || cfg.K < 1 || cfg.ClusterN < 2 || cfg.Peers < 1 || cfg.Clusters < 0 {
		fatal(fmt.Errorf("want -providers ≥ -cluster-n ≥ 2, and -book, -k, -peers ≥ 1"))
	}
	var log io.Writer = os.Stderr
	if *quiet {
		log = io.Discard
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
	}
	rep := run(cfg, log)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	rep.Command = strings.TrimSpace("go run ./bench/match " + strings.Join(os.Args[1:], " "))
	if *output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReport(os.Stdout, rep)
	}
	if rep.Single.Mismatches > 0 || rep.Cluster.Invalid > 0 {
		fmt.Fprintf(os.Stderr, "bench/match: %d index answers differ from the naive scan, %d chosen clusters are invalid\n",
			rep.Single.Mismatches, rep.Cluster.Invalid)
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/match:", err)
	os.Exit(2)
}

func run(cfg Config, log io.Writer) *Report {
	rep := &Report{Date: time.Now().UTC().Format(time.RFC3339), Machine: benchenv.Machine(), Go: runtime.Version(), Config: cfg}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5ba4e))
	t0 := time.Now()
	w := newWorld(r, cfg.Providers, cfg.Peers)
	book := make([]match.Order, cfg.Book)
	for i := range book {
		book[i] = w.order(r, uint64(i+1))
	}
	fmt.Fprintf(log, "state: %d providers, %d links, %d open orders, generated in %s\n", len(w.offers), len(w.links), len(book),
		time.Since(t0).Round(time.Millisecond))

	c0 := benchenv.SampleCPU()
	rep.Single = single(w, book[:cfg.Orders], cfg.K, log)
	c1 := benchenv.SampleCPU()
	rep.Cluster = clusters(w, r, cfg, log)
	_, rep.Single.CPUOthers = benchenv.Cores(c0, c1)
	_, rep.Cluster.CPUOthers = benchenv.Cores(c1, benchenv.SampleCPU())
	rep.Targets = []Target{
		{Name: "single-node match p99 (index, k=" + fmt.Sprint(cfg.K) + ")", LimitUs: 1000, Measured: rep.Single.Index.P99Us},
		{Name: fmt.Sprintf("cluster N=%d p99", cfg.ClusterN), LimitUs: 50_000, Measured: rep.Cluster.Cluster.P99Us},
	}
	for i := range rep.Targets {
		rep.Targets[i].Met = rep.Targets[i].Measured <= rep.Targets[i].LimitUs
	}
	return rep
}

// single times the index and the naive scan on each order, and compares their answers.
func single(w *world, orders []match.Order, k int, log io.Writer) Single {
	var s Single
	t0 := time.Now()
	x := match.NewIndex(w.offers)
	s.IndexBuildMs = float64(time.Since(t0).Microseconds()) / 1000
	fmt.Fprintf(log, "index built in %.1f ms; matching %d orders (index and naive scan each)\n", s.IndexBuildMs, len(orders))
	ix := make([]time.Duration, len(orders))
	nv := make([]time.Duration, len(orders))
	var got, want []match.Ranked
	for i := range orders {
		o := &orders[i]
		if i%2 == 0 {
			t := time.Now()
			got = x.Match(o, k)
			ix[i] = time.Since(t)
			t = time.Now()
			want = match.NaiveMatch(w.offers, o, k)
			nv[i] = time.Since(t)
		} else {
			t := time.Now()
			want = match.NaiveMatch(w.offers, o, k)
			nv[i] = time.Since(t)
			t = time.Now()
			got = x.Match(o, k)
			ix[i] = time.Since(t)
		}
		if !slices.Equal(got, want) {
			s.Mismatches++
			if s.Mismatches <= 3 {
				fmt.Fprintf(log, "MISMATCH order %d: index %v, naive %v\n", o.ID, got, want)
			}
		}
		if o.Resources.GPUCount > 0 {
			s.GPUOrders++
		} else {
			s.CPUOrders++
		}
		if len(want) == 0 {
			s.Unmatched++
		}
		if len(want) < k {
			s.Short++
		}
		if (i+1)%10_000 == 0 {
			fmt.Fprintf(log, "  %d orders\n", i+1)
		}
	}
	if verbose {
		slow := make([]int, len(orders))
		for i := range slow {
			slow[i] = i
		}
		slices.SortFunc(slow, func(a, b int) int { return cmp.Compare(ix[b], ix[a]) })
		for _, i := range slow[:min(10, len(slow))] {
			o := &orders[i]
			fmt.Fprintf(log, "  slow index order %d: %.0f µs (naive %.0f µs): %d GPUs %v vram %d, cpu %d, regions %v, verified %v, docker %v, rep %d, max %d: %d found\n",
				o.ID, float64(ix[i].Nanoseconds())/1000, float64(nv[i].Nanoseconds())/1000, o.Resources.GPUCount, o.Resources.GPUModels,
				o.Resources.GPUMinVRAMMiB, o.Resources.CPUMilli, o.Constraints.Regions, o.Constraints.Verified, o.Constraints.Docker,
				o.Constraints.MinReputationPPM, o.MaxPricePerHour, len(x.Match(o, k)))
		}
	}
	s.Index, s.Naive = stats(ix), stats(nv)
	s.SpeedupMean = ratio(s.Naive.MeanUs, s.Index.MeanUs)
	s.SpeedupP50 = ratio(s.Naive.P50Us, s.Index.P50Us)
	s.SpeedupP99 = ratio(s.Naive.P99Us, s.Index.P99Us)
	return s
}

// clusters times match.Cluster and the graph-building baseline on the cluster orders.
func clusters(w *world, r *rand.Rand, cfg Config, log io.Writer) ClusterFigures {
	c := ClusterFigures{Links: len(w.links)}
	fmt.Fprintf(log, "cluster: %d orders, N=%d\n", cfg.Clusters, cfg.ClusterN)
	x := match.NewIndex(w.offers)
	var times, base []time.Duration
	var steps []int
	modeTimes, modeBase := make([][]time.Duration, len(modes)), make([][]time.Duration, len(modes))
	modeFound, modeMembers := make([]int, len(modes)), make([]float64, len(modes))
	pos := make([]int, len(w.offers)) // provider → candidate index, -1 when it does not bid
	for i := range cfg.Clusters {
		orderID := uint64(1_000_000 + i)
		maxRTT := []uint32{1000, 2000, 3000, 5000, 8000}[r.IntN(5)]
		var cands []match.Member
		for j := range pos {
			pos[j] = -1
		}
		mi := i % len(modes)
		mode := modes[mi]
		switch mode {
		case "all bid": // every provider, at its cheapest unit
			for j := range w.offers {
				pos[j] = len(cands)
				cands = append(cands, match.Member{Address: w.offers[j].Provider.Address, Price: w.allPrice[j]})
			}
		case "random bidders": // a random 30–90% of the providers
			share := 30 + r.IntN(61)
			for j := range w.offers {
				if r.IntN(100) < share {
					pos[j] = len(cands)
					cands = append(cands, match.Member{Address: w.offers[j].Provider.Address, Price: w.allPrice[j]})
				}
			}
		default: // the providers that pass every stage of a per-node GPU order, at its price
			o := w.clusterOrder(r, orderID)
			for _, m := range x.Match(&o, 0) {
				pos[m.Index] = len(cands)
				cands = append(cands, match.Member{Address: m.Address, Price: m.Price})
			}
		}
		var links []match.Link
		for _, l := range w.links {
			if a, b := pos[l.A], pos[l.B]; a >= 0 && b >= 0 {
				links = append(links, match.Link{A: a, B: b, RTTMicros: l.RTTMicros})
			}
		}
		c.MeanMembers += float64(len(cands))
		c.MeanLinks += float64(len(links))

		t := time.Now()
		res := match.Cluster(orderID, cfg.ClusterN, maxRTT, cands, links, 0)
		times = append(times, time.Since(t))
		t = time.Now()
		g := graphPass(len(cands), links, maxRTT)
		base = append(base, time.Since(t))
		_ = g
		modeTimes[mi] = append(modeTimes[mi], times[len(times)-1])
		modeBase[mi] = append(modeBase[mi], base[len(base)-1])
		modeMembers[mi] += float64(len(cands))
		if res.Members != nil {
			modeFound[mi]++
		}

		if verbose {
			fmt.Fprintf(log, "  cluster order %d (%s): %d candidates, %d links, max_rtt %d µs: %.2f ms (graph pass %.2f ms), %d steps, exact %v, price %d, members %v\n",
				orderID, mode, len(cands), len(links), maxRTT, float64(times[len(times)-1].Microseconds())/1000,
				float64(base[len(base)-1].Microseconds())/1000, res.Steps, res.Exact, res.Price, res.Members)
		}
		steps = append(steps, res.Steps)
		if res.Exact {
			c.Exact++
		}
		if res.Members != nil {
			c.Found++
			if !validCluster(res, cfg.ClusterN, maxRTT, cands, links) {
				c.Invalid++
			}
		}
	}
	if cfg.Clusters > 0 {
		c.MeanMembers /= float64(cfg.Clusters)
		c.MeanLinks /= float64(cfg.Clusters)
	}
	c.Cluster, c.Baseline = stats(times), stats(base)
	for mi, m := range modes {
		if len(modeTimes[mi]) > 0 {
			c.ByMode = append(c.ByMode, Mode{Mode: m, Cluster: stats(modeTimes[mi]), Baseline: stats(modeBase[mi]),
				Found: modeFound[mi], MeanMembers: modeMembers[mi] / float64(len(modeTimes[mi]))})
		}
	}
	c.RatioP50 = ratio(c.Cluster.P50Us, c.Baseline.P50Us)
	slices.Sort(steps)
	if len(steps) > 0 {
		c.StepsP50, c.StepsP99, c.StepsMax = steps[rank(len(steps), 0.50)], steps[rank(len(steps), 0.99)], steps[len(steps)-1]
	}
	return c
}

// graphPass is the baseline: one pass over the links that builds the adjacency lists of those within the bound.
func graphPass(n int, links []match.Link, maxRTT uint32) [][]int32 {
	adj := make([][]int32, n)
	for _, l := range links {
		if l.RTTMicros <= maxRTT && l.A != l.B {
			adj[l.A] = append(adj[l.A], int32(l.B))
			adj[l.B] = append(adj[l.B], int32(l.A))
		}
	}
	return adj
}

// validCluster checks a chosen set: n distinct members, every pair measured and within the bound at its worst
// measurement, and the reported price.
func validCluster(res match.ClusterResult, n int, maxRTT uint32, cands []match.Member, links []match.Link) bool {
	if len(res.Members) != n {
		return false
	}
	in := map[int]bool{}
	var sum uint64
	for _, m := range res.Members {
		if in[m] {
			return false
		}
		in[m] = true
		sum += cands[m].Price
	}
	worst := map[[2]int]uint32{}
	for _, l := range links {
		if in[l.A] && in[l.B] && l.A != l.B {
			k := [2]int{min(l.A, l.B), max(l.A, l.B)}
			worst[k] = max(worst[k], l.RTTMicros)
		}
	}
	if len(worst) != n*(n-1)/2 {
		return false
	}
	for _, w := range worst {
		if w > maxRTT {
			return false
		}
	}
	return sum == res.Price
}

// The simulated state.

var (
	regions       = []string{"us-east", "us-west", "eu-west", "eu-central", "ap-northeast", "ap-south", "sa-east", "me-central", "af-south"}
	regionWeights = []int{22, 14, 18, 14, 10, 8, 7, 4, 3}
	models        = []string{"H100", "A100", "L40S", "RTX4090"}
	modelWeights  = []int{25, 25, 20, 30}
	basePrice     = map[string]uint64{"H100": 2_500_000, "A100": 1_400_000, "L40S": 900_000, "RTX4090": 400_000} // uspr per GPU-hour
	cpuBase       = uint64(20_000)                                                                               // uspr per core-hour
)

const gib = 1024

type world struct {
	offers   []match.Offer
	allPrice []uint64 // each provider's bid when every provider bids on a cluster: one GPU, or 8 cores without GPUs
	links    []match.Link
	byRegion [][]int // provider indexes per region
}

func pick(r *rand.Rand, weights []int) int {
	t := 0
	for _, w := range weights {
		t += w
	}
	x := r.IntN(t)
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// spread is a price multiplier around 1 (log-normal, σ 0.25, within 0.5–2.5), rounded so that equal prices occur.
func spread(r *rand.Rand, base uint64) uint64 {
	f := min(max(math.Exp(0.25*r.NormFloat64()), 0.5), 2.5)
	step := max(base/100, 1)
	return max(uint64(float64(base)*f)/step*step, step)
}

func newWorld(r *rand.Rand, n, peers int) *world {
	w := &world{offers: make([]match.Offer, n), allPrice: make([]uint64, n), byRegion: make([][]int, len(regions))}
	type site struct{ x, y float64 }
	var sites [][]site // per region
	for range regions {
		sites = append(sites, nil)
	}
	siteOf := make([]int, n)
	for i := range w.offers {
		var a tx.Address
		for j := range a {
			a[j] = byte(r.Uint32())
		}
		reg := pick(r, regionWeights)
		w.byRegion[reg] = append(w.byRegion[reg], i)
		// About 40 providers per site; a site is a point in a disc of radius 3.9 ms around the region's centre.
		if len(w.byRegion[reg]) > 40*len(sites[reg]) {
			rho, th := 3.9*math.Sqrt(r.Float64()), 2*math.Pi*r.Float64()
			sites[reg] = append(sites[reg], site{rho * math.Cos(th), rho * math.Sin(th)})
		}
		siteOf[i] = r.IntN(len(sites[reg]))
		p := match.Provider{Address: a, Region: regions[reg], Docker: r.IntN(100) < 85, Verified: r.IntN(100) < 60,
			Jailed: r.IntN(100) < 2, UnderBonded: r.IntN(100) < 1}
		if r.IntN(100) < 70 {
			p.ReputationPPM = uint64(900_000 + r.IntN(100_001))
		} else {
			p.ReputationPPM = uint64(300_000 + r.IntN(600_000))
		}
		f := match.Offer{}
		if r.IntN(100) < 15 { // CPU only
			c := []uint64{4, 8, 16, 32, 64, 128}[r.IntN(6)]
			p.Hardware = tx.Hardware{CPUMilli: c * 1000, MemoryMiB: c * 4 * gib, DiskMiB: 500 * gib}
			f.CPUHour = spread(r, cpuBase)
			w.allPrice[i] = f.CPUHour * 8
		} else {
			f.GPUHour = map[string]uint64{}
			var gpus uint64
			for g := range 1 + boolInt(r.IntN(100) < 15) {
				m := models[pick(r, modelWeights)]
				if _, dup := f.GPUHour[m]; dup && g > 0 {
					break
				}
				cnt := []uint32{1, 2, 4, 8}[pick(r, []int{25, 20, 25, 30})]
				if m == "RTX4090" && cnt == 8 {
					cnt = 4
				}
				vram := map[string]uint64{"H100": 80 * gib, "A100": 40 * gib, "L40S": 48 * gib, "RTX4090": 24 * gib}[m]
				if m == "A100" && r.IntN(2) == 0 {
					vram = 80 * gib
				}
				p.Hardware.GPUs = append(p.Hardware.GPUs, tx.GPUGroup{Model: m, VRAMMiB: vram, Count: cnt})
				f.GPUHour[m] = spread(r, basePrice[m])
				gpus += uint64(cnt)
			}
			c := 8*gpus + uint64(8*r.IntN(4))
			p.Hardware.CPUMilli, p.Hardware.MemoryMiB, p.Hardware.DiskMiB = c*1000, 32*gpus*gib+64*gib, 2000*gib
			if r.IntN(100) < 40 {
				f.CPUHour = spread(r, cpuBase)
			}
			w.allPrice[i] = math.MaxUint64
			for _, u := range f.GPUHour {
				w.allPrice[i] = min(w.allPrice[i], u)
			}
		}
		f.Provider = p
		w.offers[i] = f
	}
	// Links: each provider measures up to `peers` peers of its region, 60% in its own site, and nobody measures
	// more than `peers`. 30% of pairs are measured twice (both directions, different jitter).
	deg := make([]int, n)
	linked := make([]map[int]bool, n)
	for i := range linked {
		linked[i] = map[int]bool{}
	}
	bySite := map[[2]int][]int{}
	regionOf := make([]int, n)
	for reg, ps := range w.byRegion {
		for _, i := range ps {
			regionOf[i] = reg
			k := [2]int{reg, siteOf[i]}
			bySite[k] = append(bySite[k], i)
		}
	}
	rtt := func(a, b int) uint32 {
		sa, sb := sites[regionOf[a]][siteOf[a]], sites[regionOf[b]][siteOf[b]]
		d := math.Hypot(sa.x-sb.x, sa.y-sb.y)
		ms := 0.2 + d + 0.4*r.Float64()
		return uint32(min(ms, 8) * 1000)
	}
	for reg, ps := range w.byRegion {
		for _, i := range ps {
			for try := 0; try < 3*peers && deg[i] < peers; try++ {
				var j int
				if own := bySite[[2]int{reg, siteOf[i]}]; r.IntN(100) < 60 && len(own) > 1 {
					j = own[r.IntN(len(own))]
				} else {
					j = ps[r.IntN(len(ps))]
				}
				if j == i || linked[i][j] || deg[j] >= peers {
					continue
				}
				linked[i][j], linked[j][i] = true, true
				deg[i]++
				deg[j]++
				w.links = append(w.links, match.Link{A: i, B: j, RTTMicros: rtt(i, j)})
				if r.IntN(100) < 30 {
					w.links = append(w.links, match.Link{A: j, B: i, RTTMicros: rtt(i, j)})
				}
			}
		}
	}
	// A few links across regions.
	for range n / 50 {
		a, b := r.IntN(n), r.IntN(n)
		if regionOf[a] != regionOf[b] && !linked[a][b] {
			linked[a][b], linked[b][a] = true, true
			w.links = append(w.links, match.Link{A: a, B: b, RTTMicros: uint32(20_000 + r.IntN(130_000))})
		}
	}
	return w
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// order draws an open order: 70% GPU orders (one model in 90% of them, two in 5%, any in 5%; 1–8 GPUs), 30%
// CPU-only; regions, verification, runtime, reputation, deny lists and price bounds at random, some of them
// beyond what any provider offers.
func (w *world) order(r *rand.Rand, id uint64) match.Order {
	o := match.Order{ID: id}
	res := &o.Resources
	var unit uint64
	if r.IntN(100) < 70 {
		res.GPUCount = uint32([]int{1, 2, 3, 4, 5, 6, 7, 8}[pick(r, []int{35, 20, 3, 20, 2, 3, 2, 15})])
		m := models[pick(r, modelWeights)]
		switch x := r.IntN(100); {
		case x < 90:
			res.GPUModels = []string{m}
		case x < 95:
			res.GPUModels = []string{m, models[r.IntN(len(models))]}
		}
		if r.IntN(100) < 20 {
			res.GPUMinVRAMMiB = []uint64{24, 40, 48, 80, 96}[r.IntN(5)] * gib // 96 GiB: no such GPU
		}
		res.CPUMilli = uint64(res.GPUCount) * 4000
		res.MemoryMiB = uint64(res.GPUCount) * 16 * gib
		res.DiskMiB = 100 * gib
		unit = basePrice[m] * uint64(res.GPUCount)
	} else {
		res.CPUMilli = uint64(500 * (1 + r.IntN(128)))
		res.MemoryMiB = uint64(1+r.IntN(256)) * gib
		res.DiskMiB = 20 * gib
		unit = cpuBase * ((res.CPUMilli + 999) / 1000)
	}
	switch x := r.IntN(100); {
	case x < 45:
	case x < 90:
		o.Constraints.Regions = []string{regions[pick(r, regionWeights)]}
	default:
		o.Constraints.Regions = []string{regions[pick(r, regionWeights)], regions[pick(r, regionWeights)]}
	}
	o.Constraints.Verified = r.IntN(100) < 30
	o.Constraints.Docker = r.IntN(100) < 75
	o.Constraints.MinReputationPPM = uint32([]int{0, 800_000, 950_000}[pick(r, []int{70, 20, 10})])
	if r.IntN(100) < 5 {
		for range 1 + r.IntN(3) {
			o.Constraints.Deny = append(o.Constraints.Deny, w.offers[r.IntN(len(w.offers))].Provider.Address)
		}
	}
	if r.IntN(100) < 65 {
		o.MaxPricePerHour = unit * uint64(40+r.IntN(161)) / 100 // 0.4–2× the base price: some below every bid
	}
	return o
}

// clusterOrder draws the per-node resources of a cluster order: 1–2 GPUs (8 in one order of ten) of any model,
// of one of two models, or of one model; sometimes verified providers only or the docker runtime. No region or
// price bound: the latency bound places the cluster, and the cheapest set is wanted.
func (w *world) clusterOrder(r *rand.Rand, id uint64) match.Order {
	o := match.Order{ID: id}
	res := &o.Resources
	res.GPUCount = uint32([]int{1, 2, 8}[pick(r, []int{60, 30, 10})])
	switch x := r.IntN(100); {
	case x < 40:
	case x < 80:
		a := r.IntN(len(models))
		res.GPUModels = []string{models[a], models[(a+1+r.IntN(len(models)-1))%len(models)]}
	default:
		res.GPUModels = []string{models[pick(r, modelWeights)]}
	}
	res.CPUMilli = uint64(res.GPUCount) * 4000
	res.MemoryMiB = uint64(res.GPUCount) * 16 * gib
	res.DiskMiB = 100 * gib
	o.Constraints.Verified = r.IntN(100) < 20
	o.Constraints.Docker = r.IntN(100) < 60
	return o
}

// Figures.

func rank(n int, q float64) int {
	return min(max(int(q*float64(n)+0.5)-1, 0), n-1)
}

func stats(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	us := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1000 }
	return Stats{Calls: len(s), P50Us: us(s[rank(len(s), 0.50)]), P99Us: us(s[rank(len(s), 0.99)]), MaxUs: us(s[len(s)-1]),
		MeanUs: us(sum) / float64(len(s))}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func printReport(w io.Writer, rep *Report) {
	s, c := rep.Single, rep.Cluster
	fmt.Fprintf(w, "single-node match, top k=%d, %d providers, %d of %d open orders (%d GPU, %d CPU-only; %d unmatched, %d with fewer than k)\n",
		rep.Config.K, rep.Config.Providers, s.Index.Calls, rep.Config.Book, s.GPUOrders, s.CPUOrders, s.Unmatched, s.Short)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tp50 µs\tp99 µs\tmax µs\tmean µs\t")
	for _, x := range []struct {
		name string
		s    Stats
	}{{"match.Index.Match", s.Index}, {"match.NaiveMatch (baseline)", s.Naive}} {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t\n", x.name, x.s.P50Us, x.s.P99Us, x.s.MaxUs, x.s.MeanUs)
	}
	tw.Flush()
	fmt.Fprintf(w, "speedup naive/index: mean %.0fx, p50 %.0fx, p99 %.0fx; index build %.1f ms; answers differing from naive: %d\n\n",
		s.SpeedupMean, s.SpeedupP50, s.SpeedupP99, s.IndexBuildMs, s.Mismatches)

	fmt.Fprintf(w, "cluster N=%d, %d orders, %d links in the graph (mean per order: %.0f candidates, %.0f links)\n",
		rep.Config.ClusterN, c.Cluster.Calls, c.Links, c.MeanMembers, c.MeanLinks)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tp50 ms\tp99 ms\tmax ms\tmean ms\t")
	for _, x := range []struct {
		name string
		s    Stats
	}{{"match.Cluster", c.Cluster}, {"baseline: one graph-building pass", c.Baseline}} {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t\n", x.name, x.s.P50Us/1000, x.s.P99Us/1000, x.s.MaxUs/1000, x.s.MeanUs/1000)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "bidders\torders\tcandidates\tfound\tp50 ms\tp99 ms\tmax ms\tgraph pass p50 ms\t")
	for _, m := range c.ByMode {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", m.Mode, m.Cluster.Calls, m.MeanMembers, m.Found,
			m.Cluster.P50Us/1000, m.Cluster.P99Us/1000, m.Cluster.MaxUs/1000, m.Baseline.P50Us/1000)
	}
	tw.Flush()
	fmt.Fprintf(w, "cluster / baseline p50: %.1fx; steps p50 %d, p99 %d, max %d; exact %d/%d; found %d; invalid %d\n\n",
		c.RatioP50, c.StepsP50, c.StepsP99, c.StepsMax, c.Exact, c.Cluster.Calls, c.Found, c.Invalid)

	for _, t := range slices.SortedFunc(slices.Values(rep.Targets), func(a, b Target) int { return cmp.Compare(a.Name, b.Name) }) {
		met := "met"
		if !t.Met {
			met = "NOT MET"
		}
		fmt.Fprintf(w, "target %s ≤ %.0f ms: %.3f ms, %s\n", t.Name, t.LimitUs/1000, t.Measured/1000, met)
	}
	fmt.Fprintf(w, "%s; %s; seed %d; CPU cores used by other processes: %.2f (single-node), %.2f (cluster)\n", rep.Machine,
		rep.Go, rep.Config.Seed, s.CPUOthers, c.CPUOthers)
}
