package tenant_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/runtime"
	"github.com/sparenet/spare/tenant"
)

// corrupting wraps a runtime so that every workload's files are altered once it ends, before the provider
// collects its outputs: a provider that returns wrong results.
type corrupting struct{ runtime.Runtime }

func (c corrupting) Start(ctx context.Context, s runtime.Spec) (runtime.Workload, error) {
	w, err := c.Runtime.Start(ctx, s)
	if err != nil {
		return nil, err
	}
	return &corruptWorkload{Workload: w, dir: s.WorkDir}, nil
}

type corruptWorkload struct {
	runtime.Workload
	dir  string
	once sync.Once
}

func (w *corruptWorkload) Wait(ctx context.Context) (runtime.Result, error) {
	r, err := w.Workload.Wait(ctx)
	if err == nil {
		w.once.Do(func() {
			filepath.WalkDir(w.dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0); err == nil {
						f.WriteString("corrupted\n")
						f.Close()
					}
				}
				return nil
			})
		})
	}
	return r, err
}

// devReplicas runs `spare dev` with three providers priced apart (provider i at 0.05 + i/100 SPR per core-hour, so the
// auction's pick is known); those in corrupt return altered outputs.
func devReplicas(t *testing.T, corrupt ...int) (*tenant.Tenant, devnet.Info) {
	return startDev(t, func(o *devnet.Options) {
		o.Providers, o.Explorer = 3, "127.0.0.1:0"
		o.Provider = func(i int, cfg *provider.Config, rts map[string]runtime.Runtime) {
			cfg.Prices.CPUHour = []string{"0.05", "0.06", "0.07"}[i]
			cfg.Prices.MemoryGiBHour = "0"
			for _, c := range corrupt {
				if c == i {
					rts["process"] = corrupting{rts["process"]}
				}
			}
		}
	})
}

const deterministicRun = "sleep 2; mkdir -p out; echo replicated > out/result.txt; seq 1 100 | sha256sum >> out/result.txt"

// TestReplicatedHonestPair deploys examples/verified.yaml (verify.replicas 2) on two honest providers: both
// run the job, the ledger finds their output roots equal, both are paid what they earned, the reserve comes
// back, outputs verify.
func TestReplicatedHonestPair(t *testing.T) {
	tn, info := devReplicas(t)
	ctx := context.Background()
	job := loadExample(t, "verified.yaml")
	if job.Replicas != 2 {
		t.Fatalf("examples/verified.yaml asks for %d replicas", job.Replicas)
	}
	var stages []string
	res, err := tn.Deploy(ctx, job, tenant.Options{OutputsDir: t.TempDir(), Progress: func(e tenant.Event) { stages = append(stages, e.Stage+": "+e.Detail) }})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(stages, "\n"))
	}
	// The ledger draws the two runs among the three bidders (by stake), so any two distinct providers may run it.
	known := map[tx.Address]bool{}
	for _, p := range info.Providers {
		known[p.Address] = true
	}
	if res.Verdict != "agreed" || len(res.Runs) != 2 || res.Runs[0].Provider == res.Runs[1].Provider || !known[res.Runs[0].Provider] || !known[res.Runs[1].Provider] {
		t.Fatalf("result %+v\n%s", res, strings.Join(stages, "\n"))
	}
	// Each run committed its result before any was revealed; progress says so, and each run shows it.
	log := strings.Join(stages, "\n")
	if !strings.Contains(log, "commit: lease") || !strings.Contains(log, "reveal: every run committed") {
		t.Fatalf("progress does not tell the commit and reveal phases:\n%s", log)
	}
	for _, r := range res.Runs {
		if r.Commit != "revealed" || r.OutputRoot == nil {
			t.Fatalf("run %+v: not revealed", r)
		}
	}
	v, _ := tn.Client().Verification(ctx, res.OrderID)
	var cost uint64
	for _, r := range v.Runs {
		l, _ := tn.Client().Lease(ctx, r.LeaseID)
		if want := l.Price * (l.EndedMs - l.StartedMs) / 3_600_000; r.Outvoted || l.Paid != want || l.Held != 0 {
			t.Fatalf("run %+v: paid %d, want %d", r, l.Paid, want)
		}
		cost += l.Paid
	}
	if res.Cost != cost || v.Reserve != 0 || res.Refunded != 3*job.Order.Deposit-cost {
		t.Fatalf("cost %d (want %d), refunded %d, reserve %d", res.Cost, cost, res.Refunded, v.Reserve)
	}
	b, err := os.ReadFile(filepath.Join(res.OutputsPath, "out", "primes.txt"))
	if err != nil || !strings.HasPrefix(string(b), "2\n3\n5\n7\n") || strings.Count(string(b), "\n") != 2262 {
		t.Fatalf("outputs %.40q… (%d lines) %v", b, strings.Count(string(b), "\n"), err)
	}
}

// TestReplicatedCorruptOutvoted: one provider corrupts its outputs. When the ledger's draw makes it one of the two
// runs (the job is deployed again until it does: two times in three each), its root differs from the other
// replica's, the ledger orders a referee run from the third provider, which agrees with the honest one: the
// corrupt provider is unpaid, slashed (never more than the lease's value) and counted failed; the honest two are
// paid, with half the slash; the tenant's outputs are the honest ones.
func TestReplicatedCorruptOutvoted(t *testing.T) {
	tn, info := devReplicas(t, 0)
	ctx := context.Background()
	bad := info.Providers[0].Address
	before, _ := tn.Client().Provider(ctx, bad)
	job := cpuJob(t, deterministicRun, 10*api.USPR, api.USPR)
	job.Replicas = 2
	var stages []string
	var res *tenant.Result
	for attempt := 1; ; attempt++ {
		stages = nil
		var err error
		res, err = tn.Deploy(ctx, job, tenant.Options{OutputsDir: t.TempDir(), Progress: func(e tenant.Event) { stages = append(stages, e.Stage+": "+e.Detail) }})
		if err != nil {
			t.Fatalf("%v\n%s", err, strings.Join(stages, "\n"))
		}
		if res.Runs[0].Provider == bad || res.Runs[1].Provider == bad {
			break
		}
		if res.Verdict != "agreed" || attempt == 8 {
			t.Fatalf("attempt %d: the corrupt provider was not drawn, and the honest pair did not agree (or never drawn in 8): %+v", attempt, res)
		}
		before, _ = tn.Client().Provider(ctx, bad)
	}
	log := strings.Join(stages, "\n")
	if res.Verdict != "agreed" || len(res.Runs) != 3 || !res.Runs[2].Referee || res.Runs[2].Provider == bad ||
		res.Runs[2].Provider == res.Runs[0].Provider || res.Runs[2].Provider == res.Runs[1].Provider {
		t.Fatalf("result %+v\n%s", res, log)
	}
	if !strings.Contains(log, "referee") || !strings.Contains(log, "outvoted") || strings.Count(log, "reveal: every run committed") != 2 {
		t.Fatalf("progress does not tell the dispute:\n%s", log)
	}
	for _, r := range res.Runs {
		l, _ := tn.Client().Lease(ctx, r.LeaseID)
		switch {
		case r.Provider == bad:
			if !r.Outvoted || l.Paid != 0 || l.Refunded != l.Deposit || l.EndedMs == l.StartedMs {
				t.Fatalf("corrupt run %+v: %+v", r, l.Lease)
			}
		case r.Outvoted || l.Paid == 0 || l.Paid != l.Price*(l.EndedMs-l.StartedMs)/3_600_000:
			t.Fatalf("honest run %+v: %+v", r, l.Lease)
		}
	}
	after, _ := tn.Client().Provider(ctx, bad)
	params, _ := tn.Client().Params(ctx)
	if want := before.Slashed + min((before.Stake+before.Unbonding)*params.SlashMismatchPPM/1_000_000, job.Order.Deposit); after.Slashed != want || after.Failed != before.Failed+1 {
		t.Fatalf("corrupt provider: slashed %d (want %d), failed %d", after.Slashed, want, after.Failed)
	}
	if res.Provider == bad {
		t.Fatalf("outputs fetched from the outvoted provider")
	}
	b, err := os.ReadFile(filepath.Join(res.OutputsPath, "out", "result.txt"))
	if err != nil || strings.Contains(string(b), "corrupted") {
		t.Fatalf("outputs %q %v", b, err)
	}
	// Anyone sees the dispute on the explorer's order page: the runs, the referee, who was outvoted.
	resp, err := http.Get(info.Explorer + "/orders/" + strconv.FormatUint(res.OrderID, 10))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`id="runs"`, "verdict <span class=\"state agreed\">agreed</span>", "<strong>outvoted</strong>", "referee run"} {
		if resp.StatusCode != 200 || !strings.Contains(string(page), want) {
			t.Fatalf("order page (%d) lacks %q:\n%s", resp.StatusCode, want, page)
		}
	}
}
