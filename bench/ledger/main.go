// Command ledger measures the Spare ledger's committed throughput and latency side by side with a minimal
// signed key/value app (bench/kvbaseline), in one run, on the same node configuration: one in-process CometBFT
// validator, 100 ms blocks, transactions submitted over HTTP RPC broadcast_tx_sync by N workers, each with its
// own keys, locally tracked nonces and its own RPC client.
//
//	go run ./bench/ledger                      # both apps, 16 workers, 3 s warm-up + 20 s measured each
//	go run ./bench/ledger -duration 3s         # quick mode
//	go run ./bench/ledger -apps spare -cpuprofile cpu.pprof -o json
//
// For each app it reports committed tx/s (transactions in blocks committed during the measured window),
// submit-to-commit latency p50/p99 (transactions submitted during the window, matched by hash when their block
// is seen), the success rate of committed transactions (a failing market transaction is still committed and
// pays its fee), CheckTx rejections, mempool-full answers (the worker backs off), and transactions the node
// acknowledged but never put in a block (dropped). Spare runs a market mix (see -mix): sends, orders, bids and
// lease messages, after an untimed setup that registers and bonds the providers. Each worker caps its
// acknowledged-but-uncommitted transactions (-max-inflight over all workers, below the 5000-tx mempool), so the
// mempool does not overflow in normal runs.
//
// -apps spare-noindex is an experiment, not a product configuration: the real ledger with the Index flag of every
// event attribute cleared in FinalizeBlock's results, to measure what CometBFT's kv indexer costs Spare.
// -cpuprofile writes a profile of each measured window (go tool pprof). The report includes the CPU this
// process and other processes used during the window: figures taken while other work shared the machine are
// not comparable.
//
// Blocks are followed through the node's in-process event bus by default (-follow bus: no extra load, exact
// commit time); -follow rpc polls Block and BlockResults over HTTP like an external client would.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/bench/kvbaseline"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/benchenv"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/node"
)

// Config is one benchmark run.
type Config struct {
	Apps        []string
	Duration    time.Duration // measured window per app
	Warmup      time.Duration
	Workers     int
	Providers   int // per worker (spare)
	BlockTime   time.Duration
	MaxInflight int    // acknowledged, uncommitted transactions allowed over all workers (0 = no cap)
	Store       string // spare state: disk (LevelDB, as `spare node`) or mem
	Follow      string // bus or rpc
	Mix         string
	CPUProfile  string
	KeepHomes   bool      // leave the node homes (data directories) behind for inspection
	Index       bool      // after the window, time the explorer's indexer catching up from genesis (spare apps)
	Log         io.Writer // progress lines; nil = none
}

// AppResult is one app's figures.
type AppResult struct {
	App         string         `json:"app"`
	TxPerSec    float64        `json:"tx_per_s"`
	P50Ms       float64        `json:"p50_ms"`
	P99Ms       float64        `json:"p99_ms"`
	SuccessRate float64        `json:"success_rate"` // committed with code 0 / committed, in the window
	Committed   int            `json:"committed"`    // transactions in blocks committed in the window
	Blocks      int            `json:"blocks"`
	WindowSec   float64        `json:"window_s"`
	AvgTxBytes  float64        `json:"avg_tx_bytes"`
	Acked       int64          `json:"acked"`              // broadcast_tx_sync answered code 0 (whole run)
	Dropped     int            `json:"dropped"`            // acknowledged, never seen in a block
	Failed      map[string]int `json:"failed,omitempty"`   // committed with a non-zero code, by code
	Rejected    map[string]int `json:"rejected,omitempty"` // CheckTx rejections, by code
	MempoolFull int64          `json:"mempool_full"`
	RPCErrors   int64          `json:"rpc_errors"`
	Mix         map[string]int `json:"mix,omitempty"` // committed in the window, by kind
	Latencies   int            `json:"latency_samples"`
	// CPU during the window: cores used by this process (node, app and load generator together) and by other
	// processes on the machine (-1 if unknown). Other load makes the figures unreliable.
	CPUSelf   float64 `json:"cpu_cores_self"`
	CPUOthers float64 `json:"cpu_cores_others"`
	Profile   string  `json:"cpu_profile,omitempty"`
	// Index is the explorer's indexer catching up on the chain this run made (-index).
	Index *IndexResult `json:"index,omitempty"`
}

// Report is the whole run.
type Report struct {
	Date    string      `json:"date"`
	Machine string      `json:"machine"`
	Go      string      `json:"go"`
	Command string      `json:"command"`
	Config  configJSON  `json:"config"`
	Results []AppResult `json:"results"`
	// Ratio is spare tx/s over baseline tx/s, when both ran.
	Ratio *float64 `json:"ratio_spare_over_baseline,omitempty"`
}

type configJSON struct {
	Duration    string `json:"duration"`
	Warmup      string `json:"warmup"`
	Workers     int    `json:"workers"`
	Providers   int    `json:"providers_per_worker"`
	BlockTime   string `json:"block_time"`
	MaxInflight int    `json:"max_inflight"`
	Store       string `json:"store"`
	Follow      string `json:"follow"`
	Mix         string `json:"mix"`
}

func main() {
	var (
		cfg    Config
		apps   string
		output string
	)
	flag.StringVar(&apps, "apps", "baseline,spare", "apps to run, in order: baseline, spare, spare-noindex (experiment: Spare with its event attributes not indexed)")
	flag.DurationVar(&cfg.Duration, "duration", 20*time.Second, "measured window per app (quick mode: 3s)")
	flag.DurationVar(&cfg.Warmup, "warmup", 0, "load before the window (default 3s, or duration/3 when shorter)")
	flag.IntVar(&cfg.Workers, "workers", 16, "load workers (one RPC client and one set of keys each)")
	flag.IntVar(&cfg.Providers, "providers", 2, "provider keys per worker (spare)")
	flag.DurationVar(&cfg.BlockTime, "block-time", 100*time.Millisecond, "block interval (timeout_commit)")
	flag.IntVar(&cfg.MaxInflight, "max-inflight", 4000, "acknowledged but uncommitted txs allowed over all workers (mempool holds 5000); 0 = no cap")
	flag.StringVar(&cfg.Store, "store", "disk", "spare state store: disk (LevelDB, as `spare node`) or mem")
	flag.StringVar(&cfg.Follow, "follow", "bus", "how blocks are followed: bus (in-process event bus) or rpc (Block+BlockResults polling)")
	flag.StringVar(&cfg.Mix, "mix", defaultMix, "spare transaction mix, kind=weight (kinds: "+strings.Join(mixKinds, ", ")+")")
	flag.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of each app's measured window (app name added before the extension when several apps run)")
	flag.BoolVar(&cfg.KeepHomes, "keep-homes", false, "keep each node's home directory (printed on stderr) instead of deleting it")
	flag.BoolVar(&cfg.Index, "index", false, "after spare's window, time the explorer's indexer catching up from genesis on the chain it made")
	flag.StringVar(&output, "o", "table", "output: table or json")
	quiet := flag.Bool("q", false, "no progress lines on stderr")
	flag.Parse()
	cfg.Apps = splitApps(apps)
	if !*quiet {
		cfg.Log = os.Stderr
	}
	if output != "table" && output != "json" {
		fatal(fmt.Errorf("-o %q: want table or json", output))
	}
	rep, err := run(cfg)
	if err != nil {
		fatal(err)
	}
	rep.Command = "go run ./bench/ledger " + strings.Join(os.Args[1:], " ")
	if output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	printTable(os.Stdout, rep)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/ledger:", err)
	os.Exit(1)
}

func splitApps(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func (c *Config) validate() error {
	if len(c.Apps) == 0 {
		return errors.New("-apps is empty: give baseline, spare or both")
	}
	for _, a := range c.Apps {
		if a != "baseline" && a != "spare" && a != "spare-noindex" {
			return fmt.Errorf("-apps: unknown app %q (baseline, spare, spare-noindex)", a)
		}
	}
	if c.Duration <= 0 || c.Workers < 1 || c.BlockTime <= 0 {
		return errors.New("-duration, -workers and -block-time must be positive")
	}
	if c.Providers < 1 {
		return errors.New("-providers must be at least 1")
	}
	if c.Warmup <= 0 {
		c.Warmup = min(3*time.Second, (c.Duration / 3).Round(time.Millisecond))
	}
	if c.Store == "" {
		c.Store = "disk"
	}
	if c.Store != "disk" && c.Store != "mem" {
		return fmt.Errorf("-store %q: want disk or mem", c.Store)
	}
	if c.Follow == "" {
		c.Follow = "bus"
	}
	if c.Follow != "bus" && c.Follow != "rpc" {
		return fmt.Errorf("-follow %q: want bus or rpc", c.Follow)
	}
	if c.Mix == "" {
		c.Mix = defaultMix
	}
	_, err := parseMix(c.Mix)
	return err
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
}

// run benchmarks each app in turn.
func run(cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rep := &Report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: benchenv.Machine(),
		Go:      runtime.Version(),
		Config: configJSON{Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(), Workers: cfg.Workers,
			Providers: cfg.Providers, BlockTime: cfg.BlockTime.String(), MaxInflight: cfg.MaxInflight,
			Store: cfg.Store, Follow: cfg.Follow, Mix: cfg.Mix},
	}
	for _, app := range cfg.Apps {
		r, err := runApp(cfg, app)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", app, err)
		}
		rep.Results = append(rep.Results, *r)
	}
	rep.Ratio = ratio(rep.Results)
	return rep, nil
}

// ratio is spare's tx/s over the baseline's, nil unless both ran and the baseline committed something.
func ratio(rs []AppResult) *float64 {
	var base, spare *AppResult
	for i := range rs {
		switch rs[i].App {
		case "baseline":
			base = &rs[i]
		case "spare":
			spare = &rs[i]
		}
	}
	if base == nil || spare == nil || base.TxPerSec <= 0 {
		return nil
	}
	r := spare.TxPerSec / base.TxPerSec
	return &r
}

func profilePath(cfg Config, app string) string {
	if cfg.CPUProfile == "" || len(cfg.Apps) == 1 {
		return cfg.CPUProfile
	}
	ext := filepath.Ext(cfg.CPUProfile)
	return strings.TrimSuffix(cfg.CPUProfile, ext) + "." + app + ext
}

// runApp starts a fresh node with app, loads it and measures.
func runApp(cfg Config, app string) (*AppResult, error) {
	home, err := os.MkdirTemp("", "bench-ledger-"+app+"-")
	if err != nil {
		return nil, err
	}
	if cfg.KeepHomes {
		cfg.logf("%s: home %s (kept)", app, home)
	} else {
		defer os.RemoveAll(home)
	}
	base, err := node.FreePorts(1)
	if err != nil {
		return nil, err
	}
	chainID := "bench-" + app
	mix, _ := parseMix(cfg.Mix)

	var (
		appState json.RawMessage
		market   *spareMarket
		st       *store.Store
		abciApp  abci.Application
		codeName = kvCodeName
	)
	isSpare := app != "baseline"
	switch {
	case isSpare:
		market = newSpareMarket(chainID, cfg.Workers, cfg.Providers, mix)
		if appState, err = market.genesis(); err != nil {
			return nil, err
		}
		codeName = spareCodeName
	}
	if err := node.Init(home, node.Options{ChainID: chainID, BlockTime: cfg.BlockTime, AppState: appState,
		RPCListen: fmt.Sprintf("tcp://127.0.0.1:%d", base), P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", base+1)}); err != nil {
		return nil, err
	}
	switch {
	case isSpare:
		if cfg.Store == "mem" {
			st = store.OpenMem()
		} else if st, err = store.Open(filepath.Join(home, "data", "ledger")); err != nil {
			return nil, err
		}
		defer st.Close()
		la := ledger.New(st, ledger.Options{})
		abciApp = la
		if app == "spare-noindex" {
			abciApp = noIndex{la}
		}
	default:
		abciApp = kvbaseline.New()
	}
	n, err := node.Start(home, abciApp, nil)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = n.Stop()
		}
	}()
	cfg.logf("%s: node up at %s", app, n.RPCAddress())

	e := newEngine(codeName)
	if market != nil {
		e.onBlock = market.onBlock
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var followDone <-chan error
	if cfg.Follow == "rpc" {
		c, err := client.New(n.RPCAddress(), client.Options{})
		if err != nil {
			return nil, err
		}
		followDone, err = followRPC(ctx, c.RPC(), e)
		if err != nil {
			return nil, err
		}
	} else if followDone, err = followBus(ctx, n.Comet().EventBus(), e); err != nil {
		return nil, err
	}
	select {
	case <-e.firstSeen:
	case err := <-followDone:
		return nil, fmt.Errorf("follower stopped before the first block: %v", err)
	case <-time.After(30 * time.Second):
		return nil, errors.New("no block within 30 s of start")
	}

	// One client (HTTP transport) per worker.
	gens := make([]generator, cfg.Workers)
	rpcs := make([]*client.Client, cfg.Workers)
	for w := range cfg.Workers {
		if rpcs[w], err = client.New(n.RPCAddress(), client.Options{}); err != nil {
			return nil, err
		}
		if market != nil {
			market.workers[w].c = rpcs[w]
			gens[w] = market.workers[w]
		} else {
			gens[w] = newKVGen(w)
		}
	}
	if market != nil {
		t0 := time.Now()
		if err := spareSetup(ctx, e, market); err != nil {
			return nil, err
		}
		cfg.logf("%s: %d providers registered and bonded in %s", app, cfg.Workers*cfg.Providers, time.Since(t0).Round(time.Millisecond))
	}

	perWorker := 0
	if cfg.MaxInflight > 0 {
		perWorker = max(1, cfg.MaxInflight/cfg.Workers)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.worker(ctx, gens[w], rpcs[w].RPC(), perWorker, stop)
		}()
	}
	cfg.logf("%s: %d workers, warm-up %s", app, cfg.Workers, cfg.Warmup)
	time.Sleep(cfg.Warmup)

	res := &AppResult{App: app, Profile: profilePath(cfg, app)}
	var prof *os.File
	if res.Profile != "" {
		if prof, err = os.Create(res.Profile); err != nil {
			close(stop)
			return nil, err
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			close(stop)
			return nil, err
		}
	}
	cpu0 := benchenv.SampleCPU()
	start := time.Now()
	e.winStart.Store(start.UnixNano())
	cfg.logf("%s: measuring for %s", app, cfg.Duration)
	time.Sleep(cfg.Duration)
	end := time.Now()
	e.winEnd.Store(end.UnixNano())
	res.CPUSelf, res.CPUOthers = benchenv.Cores(cpu0, benchenv.SampleCPU())
	if prof != nil {
		pprof.StopCPUProfile()
		prof.Close()
	}
	close(stop)
	wg.Wait()

	// Drain: wait for what was acknowledged to show up, or give up after 3 s without progress.
	last, lastChange, deadline := -1, time.Now(), time.Now().Add(20*time.Second)
	for time.Now().Before(deadline) {
		p := e.pendingAcked()
		if p == 0 {
			break
		}
		if p != last {
			last, lastChange = p, time.Now()
		} else if time.Since(lastChange) > 3*time.Second {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if cfg.Index && isSpare {
		e.mu.Lock()
		blocks, committed := e.blocks, e.committed
		e.mu.Unlock()
		cfg.logf("%s: indexing the chain from genesis", app)
		ir, err := measureIndex(ctx, n.RPCAddress(), home, blocks, committed, end.Sub(start).Seconds())
		if err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		res.Index = ir
		cfg.logf("%s: indexed %d blocks, %d txs in %.1f s: %.0f blocks/s, %.0f tx/s; the chain made %.1f blocks/s, %.0f tx/s: ratio %.2f (tx), %.2f (blocks)",
			app, ir.Height, ir.Txs, ir.Seconds, ir.BlocksPerSec, ir.TxPerSec, ir.ChainBlocksSec, ir.ChainTxPerSec, ir.RatioTx, ir.RatioBlocks)
	}
	cancel()
	if err := n.Stop(); err != nil {
		cfg.logf("%s: stopping node: %v", app, err)
	}
	stopped = true

	e.mu.Lock()
	defer e.mu.Unlock()
	res.WindowSec = end.Sub(start).Seconds()
	res.Committed = e.committed
	res.Blocks = e.blocks
	res.TxPerSec = float64(e.committed) / res.WindowSec
	if e.committed > 0 {
		res.SuccessRate = float64(e.codes[0]) / float64(e.committed)
		res.AvgTxBytes = float64(e.txBytes) / float64(e.committed)
	}
	lat := sortedCopy(e.latencies)
	res.Latencies = len(lat)
	res.P50Ms, res.P99Ms = percentileMs(lat, 0.50), percentileMs(lat, 0.99)
	for code, k := range e.codes {
		if code != 0 {
			if res.Failed == nil {
				res.Failed = map[string]int{}
			}
			res.Failed[codeName(code)] += k
		}
	}
	for _, p := range e.pending {
		if p.acked.Load() {
			res.Dropped++
		}
	}
	res.Acked = e.acked.Load()
	res.MempoolFull = e.mempoolFull.Load()
	res.RPCErrors = e.rpcErrors.Load()
	e.rejMu.Lock()
	if len(e.rejected) > 0 {
		res.Rejected = e.rejected
	}
	e.rejMu.Unlock()
	if len(e.kinds) > 1 || e.unknown > 0 {
		res.Mix = e.kinds
		if e.unknown > 0 {
			res.Mix["unmatched"] = e.unknown
		}
	}
	if v, ok := e.lastRPCErr.Load().(string); ok {
		cfg.logf("%s: last RPC error: %s", app, v)
	}
	cfg.logf("%s: %.0f tx/s, p50 %.0f ms, p99 %.0f ms, success %.2f%%, dropped %d; CPU cores: %.2f self, %.2f others",
		app, res.TxPerSec, res.P50Ms, res.P99Ms, 100*res.SuccessRate, res.Dropped, res.CPUSelf, res.CPUOthers)
	return res, nil
}

// spareSetup registers and bonds every provider and waits for all of them to be committed.
func spareSetup(ctx context.Context, e *engine, m *spareMarket) error {
	var (
		mu    sync.Mutex
		left  int
		bad   []string
		ready = make(chan struct{})
	)
	done := func(code uint32) {
		mu.Lock()
		defer mu.Unlock()
		if code != 0 {
			bad = append(bad, spareCodeName(code))
		}
		if left--; left == 0 {
			close(ready)
		}
	}
	type item struct {
		g  *spareGen
		mk func() ([]byte, *op)
	}
	var items []item
	for _, g := range m.workers {
		for _, mk := range g.setupOps(done) {
			items = append(items, item{g, mk})
		}
	}
	left = len(items)
	for _, it := range items {
		raw, o := it.mk()
		h := sha256.Sum256(raw)
		p := &pendingTx{submit: time.Now(), op: o}
		e.put(h, p)
		res, err := it.g.c.RPC().BroadcastTxSync(ctx, raw)
		if err != nil {
			return fmt.Errorf("setup broadcast: %w", err)
		}
		if res.Code != 0 {
			return fmt.Errorf("setup rejected: %s: %s", spareCodeName(res.Code), res.Log)
		}
		p.acked.Store(true)
		it.g.acked(o)
	}
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		return errors.New("setup transactions not committed within 30 s")
	}
	if len(bad) > 0 {
		return fmt.Errorf("setup transactions failed: %v", bad)
	}
	for _, g := range m.workers { // setup is not part of the mix
		clear(g.issued)
		g.total = 0
	}
	return nil
}

func printTable(w io.Writer, rep *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "app\ttx/s\tp50 ms\tp99 ms\tsuccess\tcommitted\tdropped\trejected\tmempool full\tavg tx B\tcpu self\tcpu others\t")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%.2f%%\t%d\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t\n", r.App, r.TxPerSec, r.P50Ms,
			r.P99Ms, 100*r.SuccessRate, r.Committed, r.Dropped, sumMap(r.Rejected), r.MempoolFull, r.AvgTxBytes, r.CPUSelf,
			r.CPUOthers)
	}
	tw.Flush()
	if rep.Ratio != nil {
		fmt.Fprintf(w, "\nspare / baseline: %.2fx\n", *rep.Ratio)
	}
	for _, r := range rep.Results {
		if len(r.Mix) > 0 {
			fmt.Fprintf(w, "%s committed mix: %s\n", r.App, fmtMap(r.Mix))
		}
		if len(r.Failed) > 0 {
			fmt.Fprintf(w, "%s failed in block: %s\n", r.App, fmtMap(r.Failed))
		}
		if len(r.Rejected) > 0 {
			fmt.Fprintf(w, "%s rejected by CheckTx: %s\n", r.App, fmtMap(r.Rejected))
		}
		if r.Profile != "" {
			fmt.Fprintf(w, "%s CPU profile: %s\n", r.App, r.Profile)
		}
		if ir := r.Index; ir != nil {
			fmt.Fprintf(w, "%s explorer index from genesis: %d blocks, %d txs in %.1f s = %.0f blocks/s, %.0f tx/s; chain made %.1f blocks/s, %.0f tx/s in the window: ratio %.2f (tx), %.2f (blocks)\n",
				r.App, ir.Height, ir.Txs, ir.Seconds, ir.BlocksPerSec, ir.TxPerSec, ir.ChainBlocksSec, ir.ChainTxPerSec, ir.RatioTx, ir.RatioBlocks)
		}
	}
	fmt.Fprintf(w, "%s; %s; workers %s; blocks %s; window %s after %s warm-up; store %s; follow %s\n", rep.Machine, rep.Go,
		fmt.Sprint(rep.Config.Workers), rep.Config.BlockTime, rep.Config.Duration, rep.Config.Warmup, rep.Config.Store, rep.Config.Follow)
}

func sumMap(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func fmtMap(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
