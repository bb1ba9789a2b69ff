// Command deploy measures deploy latency on `spare dev`: from the start of a deploy to the workload's first line
// of output, over many deploys, with the split per stage (order committed, first bid, lease, manifest sent,
// started, first output).
//
//	go run ./bench/deploy -n 50
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/jobspec"
	"github.com/sparenet/spare/tenant"
)

func main() {
	n := flag.Int("n", 50, "number of deploys")
	blockTime := flag.Duration("block-time", 200*time.Millisecond, "block time of the dev network")
	jobFile := flag.String("job", "examples/hello.yaml", "job file to deploy")
	jsonOut := flag.Bool("json", false, "print the figures as JSON")
	flag.Parse()
	if err := run(*n, *blockTime, *jobFile, *jsonOut); err != nil {
		log.Fatal(err)
	}
}

type stat struct {
	Stage string  `json:"stage"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func run(n int, blockTime time.Duration, jobFile string, jsonOut bool) error {
	stats, err := measure(n, blockTime, jobFile)
	if err != nil {
		return err
	}
	if jsonOut {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"deploys": n, "block_time_ms": blockTime.Milliseconds(), "stages": stats})
	}
	fmt.Printf("%d deploys of %s on spare dev (%s blocks); time since the deploy began:\n", n, jobFile, blockTime)
	fmt.Printf("%-16s %9s %9s %9s\n", "stage", "p50 ms", "p99 ms", "max ms")
	for _, s := range stats {
		fmt.Printf("%-16s %9.1f %9.1f %9.1f\n", s.Stage, s.P50, s.P99, s.Max)
	}
	return nil
}

// stageOrder is the deploy's stages in the order they happen.
var stageOrder = []string{"order committed", "first bid", "leased", "manifest sent", "started", "first output"}

// measure deploys the job n times on a fresh spare dev and returns each stage's p50, p99 and max.
func measure(n int, blockTime time.Duration, jobFile string) ([]stat, error) {
	home, err := os.MkdirTemp("", "spare-bench-deploy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan devnet.Info, 1)
	done := make(chan error, 1)
	go func() {
		done <- devnet.Run(ctx, devnet.Options{Home: filepath.Join(home, "dev"), NoDocker: true, BlockTime: blockTime},
			func(i devnet.Info) { ready <- i })
	}()
	var info devnet.Info
	select {
	case info = <-ready:
	case err := <-done:
		return nil, err
	}
	kr, err := keyring.Open(filepath.Join(home, "dev", "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		return nil, err
	}
	key, err := kr.Signer("tenant")
	if err != nil {
		return nil, err
	}
	c, err := client.New(info.RPC, client.Options{})
	if err != nil {
		return nil, err
	}
	tn := tenant.New(c, key, nil)
	data, err := os.ReadFile(jobFile)
	if err != nil {
		return nil, err
	}
	j, err := jobspec.Parse(jobFile, data)
	if err != nil {
		return nil, err
	}
	_, raw, err := j.Manifest(filepath.Dir(jobFile))
	if err != nil {
		return nil, err
	}
	job := tenant.JobFrom(j, raw)
	stages := map[string][]time.Duration{}
	out := os.TempDir()
	for i := 0; i < n; i++ {
		res, err := tn.Deploy(ctx, job, tenant.Options{OutputsDir: filepath.Join(out, "spare-bench-outputs")})
		if err != nil {
			return nil, fmt.Errorf("deploy %d: %w", i+1, err)
		}
		t := res.Timings
		for k, v := range map[string]time.Duration{"order committed": t.OrderCommitted, "first bid": t.FirstBid, "leased": t.Leased,
			"manifest sent": t.ManifestSent, "started": t.Started, "first output": t.FirstOutput} {
			stages[k] = append(stages[k], v)
		}
	}
	var stats []stat
	for _, k := range stageOrder {
		v := stages[k]
		sort.Slice(v, func(a, b int) bool { return v[a] < v[b] })
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		stats = append(stats, stat{Stage: k, P50: ms(v[len(v)/2]), P99: ms(v[min(len(v)-1, len(v)*99/100)]), Max: ms(v[len(v)-1])})
	}
	return stats, nil
}
