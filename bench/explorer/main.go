// Command explorer measures the explorer's page and API latency under load: an index holding a synthetic
// market of -providers providers and -leases leases (written through the indexer's own row writers), served by
// the real handler on loopback, and -clients concurrent clients requesting a mix of pages and API routes for
// -duration. The same clients then request a static asset from the same server for the same time: the baseline
// of this machine's HTTP stack, reported as a ratio.
//
//	go run ./bench/explorer                                 # 10,000 providers, 100,000 leases, 100 clients, 15 s
//	go run ./bench/explorer -providers 1000 -leases 10000 -duration 5s -o json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/web"
)

// Route is one route's figures.
type Route struct {
	Route    string  `json:"route"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
}

// Report is the whole run.
type Report struct {
	Date        string  `json:"date"`
	Machine     string  `json:"machine"`
	Providers   int     `json:"providers"`
	Leases      int     `json:"leases"`
	Clients     int     `json:"clients"`
	Duration    string  `json:"duration"`
	FillSeconds float64 `json:"fill_s"`
	DBBytes     int64   `json:"db_bytes"`
	Routes      []Route `json:"routes"`
	All         Route   `json:"all"`
	ReqPerSec   float64 `json:"req_per_s"`
	Baseline    Route   `json:"baseline_static"`
	BaselineRPS float64 `json:"baseline_req_per_s"`
	RatioP50    float64 `json:"ratio_p50_vs_static"`
}

func main() {
	providers := flag.Int("providers", 10_000, "providers in the index")
	leases := flag.Int("leases", 100_000, "leases in the index")
	clients := flag.Int("clients", 100, "concurrent clients")
	duration := flag.Duration("duration", 15*time.Second, "load per phase (pages, then the static baseline)")
	output := flag.String("o", "table", "output: table or json")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "explorer:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *providers < 1 || *leases < 1 || *clients < 1 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "explorer: -providers, -leases, -clients and -duration must be positive")
		os.Exit(2)
	}
	rep, err := run(*providers, *leases, *clients, *duration)
	if err != nil {
		fmt.Fprintln(os.Stderr, "explorer:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	if *output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route\trequests\terrors\tp50 ms\tp99 ms\t")
	for _, r := range append(append(rep.Routes, rep.All), rep.Baseline) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t\n", r.Route, r.Requests, r.Errors, r.P50Ms, r.P99Ms)
	}
	tw.Flush()
	fmt.Printf("\n%d providers, %d leases (index %.0f MiB, filled in %.1f s); %d clients, %s per phase; %s\n",
		rep.Providers, rep.Leases, float64(rep.DBBytes)/(1<<20), rep.FillSeconds, rep.Clients, rep.Duration, rep.Machine)
	fmt.Printf("pages and API: %.0f req/s; static baseline: %.0f req/s; p50 ratio pages/static %.1fx\n", rep.ReqPerSec, rep.BaselineRPS, rep.RatioP50)
}

func run(providers, leases, clients int, d time.Duration) (*Report, error) {
	dir, err := os.MkdirTemp("", "bench-explorer-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "explorer.db")
	db, err := index.Open(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	t0 := time.Now()
	fmt.Fprintf(os.Stderr, "writing %d providers and %d leases...\n", providers, leases)
	height, err := db.WriteSynthetic(context.Background(), index.Synthetic{Providers: providers, Leases: leases, PerBlock: 500})
	if err != nil {
		return nil, err
	}
	rep := &Report{Date: time.Now().UTC().Format(time.RFC3339), Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
		Providers: providers, Leases: leases, Clients: clients, Duration: d.String(), FillSeconds: time.Since(t0).Seconds()}
	if st, err := os.Stat(path); err == nil {
		rep.DBBytes = st.Size()
	}
	h, err := web.New(db, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}, Timeout: 30 * time.Second}

	prov := func(r *rand.Rand) string { return index.SyntheticAddress("provider", r.IntN(providers)).String() }
	routes := []struct {
		name string
		path func(r *rand.Rand) string
	}{
		{"overview", func(*rand.Rand) string { return "/" }},
		{"api overview", func(*rand.Rand) string { return "/api/overview" }},
		{"providers (by earnings)", func(r *rand.Rand) string { return fmt.Sprintf("/providers?offset=%d", r.IntN(max(providers-50, 1))) }},
		{"providers filtered+sorted", func(r *rand.Rand) string {
			return "/providers?model=" + []string{"H100", "A100", "L40S", "RTX4090"}[r.IntN(4)] + "&sort=stake&order=asc"
		}},
		{"provider page", func(r *rand.Rand) string { return "/providers/" + prov(r) }},
		{"api provider", func(r *rand.Rand) string { return "/api/providers/" + prov(r) }},
		{"leases list", func(r *rand.Rand) string { return fmt.Sprintf("/leases?offset=%d", r.IntN(1000)) }},
		{"api leases by provider", func(r *rand.Rand) string { return "/api/leases?provider=" + prov(r) }},
		{"lease page", func(r *rand.Rand) string { return fmt.Sprintf("/leases/%d", 1+r.IntN(leases)) }},
		{"blocks", func(*rand.Rand) string { return "/blocks" }},
		{"block page", func(r *rand.Rand) string { return fmt.Sprintf("/blocks/%d", 1+r.IntN(int(height))) }},
		{"search lease id", func(r *rand.Rand) string { return fmt.Sprintf("/api/search?q=%d", 1+r.IntN(leases)) }},
	}
	// Warm the caches the way a running explorer would have them.
	for _, rt := range routes {
		if _, err := fetch(hc, base+rt.path(rand.New(rand.NewPCG(1, 2)))); err != nil {
			return nil, fmt.Errorf("%s: %w", rt.name, err)
		}
	}
	fmt.Fprintf(os.Stderr, "load: %d clients for %s over %d routes...\n", clients, d, len(routes))
	lat, errs, total := load(hc, clients, d, func(r *rand.Rand) (string, string) {
		rt := routes[r.IntN(len(routes))]
		return rt.name, base + rt.path(r)
	})
	var all []time.Duration
	for _, rt := range routes {
		rep.Routes = append(rep.Routes, summarize(rt.name, lat[rt.name], errs[rt.name]))
		all = append(all, lat[rt.name]...)
	}
	var allErr int
	for _, e := range errs {
		allErr += e
	}
	rep.All = summarize("all pages and API", all, allErr)
	rep.ReqPerSec = float64(total) / d.Seconds()
	fmt.Fprintf(os.Stderr, "baseline: the same clients on /static/style.css for %s...\n", d)
	blat, berrs, btotal := load(hc, clients, d, func(*rand.Rand) (string, string) { return "static", base + "/static/style.css" })
	rep.Baseline = summarize("baseline: static asset", blat["static"], berrs["static"])
	rep.BaselineRPS = float64(btotal) / d.Seconds()
	if rep.Baseline.P50Ms > 0 {
		rep.RatioP50 = rep.All.P50Ms / rep.Baseline.P50Ms
	}
	return rep, nil
}

func fetch(hc *http.Client, url string) (int, error) {
	res, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != 200 {
		return res.StatusCode, fmt.Errorf("GET %s: %d", url, res.StatusCode)
	}
	return res.StatusCode, nil
}

func load(hc *http.Client, clients int, d time.Duration, pick func(*rand.Rand) (string, string)) (map[string][]time.Duration, map[string]int, int) {
	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	errs := map[string]int{}
	total := 0
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 7))
			local := map[string][]time.Duration{}
			localErr := map[string]int{}
			n := 0
			for time.Now().Before(end) {
				name, url := pick(r)
				t := time.Now()
				_, err := fetch(hc, url)
				if err != nil {
					localErr[name]++
					continue
				}
				local[name] = append(local[name], time.Since(t))
				n++
			}
			mu.Lock()
			for k, v := range local {
				lat[k] = append(lat[k], v...)
			}
			for k, v := range localErr {
				errs[k] += v
			}
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, errs, total
}

func summarize(name string, d []time.Duration, errs int) Route {
	sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
	r := Route{Route: strings.TrimSpace(name), Requests: len(d), Errors: errs}
	if len(d) > 0 {
		ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
		r.P50Ms, r.P99Ms = ms(d[len(d)/2]), ms(d[min(len(d)-1, len(d)*99/100)])
	}
	return r
}
