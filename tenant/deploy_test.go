package tenant_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/match"
	"github.com/sparenet/spare/offers"
	"github.com/sparenet/spare/tenant"
)

// startDev runs `spare dev` in this process and returns the tenant SDK for its funded tenant key.
func startDev(t *testing.T, adjust ...func(*devnet.Options)) (*tenant.Tenant, devnet.Info) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "dev")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan devnet.Info, 1)
	done := make(chan error, 1)
	o := devnet.Options{Home: home, NoDocker: true, BlockTime: 100 * time.Millisecond}
	for _, f := range adjust {
		f(&o)
	}
	go func() {
		done <- devnet.Run(ctx, o, func(i devnet.Info) { ready <- i })
	}()
	var info devnet.Info
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("spare dev: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("spare dev did not become ready")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("spare dev stopped with: %v", err)
		}
	})
	kr, err := keyring.Open(filepath.Join(home, "keys"), keyring.Options{Backend: keyring.BackendTest})
	if err != nil {
		t.Fatal(err)
	}
	key, err := kr.Signer("tenant")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(info.RPC, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tenant.New(c, key, nil), info
}

func cpuJob(t *testing.T, run string, maxPrice, deposit uint64) tenant.Job {
	t.Helper()
	m := &manifest.Manifest{Version: 1, Run: run, Outputs: []string{"out/"}, Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 128}, DurationSec: 60}
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return tenant.Job{Manifest: raw, Order: tx.CreateOrder{Resources: m.Resources, MaxPricePerHour: maxPrice,
		ManifestHash: manifest.Hash(raw), Deposit: deposit, DurationSec: m.DurationSec}}
}

// TestDeployOnDev deploys a CPU job on `spare dev`: logs stream, outputs land in outputs/<lease>/ verified
// against the signed receipt, and the tenant pays exactly price × runtime plus fees.
func TestDeployOnDev(t *testing.T) {
	tn, info := startDev(t)
	ctx := context.Background()
	before, _ := tn.Client().Account(ctx, tn.Address())
	params, _ := tn.Client().Params(ctx)
	var logs bytes.Buffer
	var stages []string
	out := t.TempDir()
	job := cpuJob(t, "echo hello from a spare machine; mkdir -p out; echo 42 > out/answer.txt", api.USPR, api.USPR)
	// What `spare offers --job` quotes is what the provider bids.
	cands, err := tn.Candidates(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	quotes, ex := offers.EvalJob(match.Order{Resources: job.Order.Resources, Constraints: job.Order.Constraints, MaxPricePerHour: job.Order.MaxPricePerHour}, cands)
	if len(quotes) != 1 || quotes[0].Provider != info.Provider || quotes[0].Price == nil || ex.Feasible != 1 {
		t.Fatalf("offers for the job: %+v, %s", quotes, ex)
	}
	res, err := tn.Deploy(ctx, job, tenant.Options{Logs: &logs, OutputsDir: out, Progress: func(e tenant.Event) { stages = append(stages, e.Stage) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Price != *quotes[0].Price {
		t.Fatalf("the provider bid %d, its offer quoted %d", res.Price, *quotes[0].Price)
	}
	if !strings.Contains(logs.String(), "hello from a spare machine") {
		t.Fatalf("logs: %q", logs.String())
	}
	if res.ExitCode == nil || *res.ExitCode != 0 || res.State != "completed" {
		t.Fatalf("result: %+v", res)
	}
	b, err := os.ReadFile(filepath.Join(res.OutputsPath, "out", "answer.txt"))
	if err != nil || string(b) != "42\n" {
		t.Fatalf("output: %q %v", b, err)
	}
	l, _ := tn.Client().Lease(ctx, res.LeaseID)
	if want := l.Price * (l.EndedMs - l.StartedMs) / 3_600_000; res.Cost != want || l.Paid != want {
		t.Fatalf("cost %d, want %d", res.Cost, want)
	}
	if res.Refunded != job.Order.Deposit-res.Cost || res.Refunded != l.Refunded { // read from the ledger's events
		t.Fatalf("refunded %d of the deposit %d, cost %d (the lease says %d)", res.Refunded, job.Order.Deposit, res.Cost, l.Refunded)
	}
	after, _ := tn.Client().Account(ctx, tn.Address())
	txs := after.Nonce - before.Nonce
	if before.Balance-after.Balance != res.Cost+txs*params.MinFee || res.Fees != txs*params.MinFee {
		t.Fatalf("tenant paid %d, want cost %d + %d fees (deploy counted %d)", before.Balance-after.Balance, res.Cost, txs*params.MinFee, res.Fees)
	}
	for _, s := range []string{"order", "lease", "manifest", "started", "ended", "outputs"} {
		if !strings.Contains(strings.Join(stages, ","), s) {
			t.Fatalf("stages %v lack %s", stages, s)
		}
	}
}

// TestNoOffersExplained: a GPU job on a CPU-only dev network gets no bid; the deploy says why, per constraint,
// and cancels the order so the deposit comes back.
func TestNoOffersExplained(t *testing.T) {
	tn, info := startDev(t)
	if info.GPUs > 0 {
		t.Skip("this machine has GPUs")
	}
	ctx := context.Background()
	job := cpuJob(t, "nvidia-smi", 10*api.USPR, api.USPR)
	job.Order.Resources.GPUCount = 1
	m, _ := manifest.Decode(job.Manifest)
	m.Resources = job.Order.Resources
	job.Manifest, _ = m.Encode()
	job.Order.ManifestHash = manifest.Hash(job.Manifest)
	before, _ := tn.Client().Account(ctx, tn.Address())
	res, err := tn.Deploy(ctx, job, tenant.Options{NoBidTimeout: 2 * time.Second})
	if res == nil || res.Refunded != job.Order.Deposit || res.Outcome != tenant.OutcomeNoOffers {
		t.Fatalf("result %+v", res)
	}
	if !errors.Is(err, tenant.ErrNoOffers) || !strings.Contains(err.Error(), "1 provider: 1 lack a GPU of the model asked for ("+info.Provider.String()+")") {
		t.Fatalf("err = %v", err)
	}
	after, _ := tn.Client().Account(ctx, tn.Address())
	params, _ := tn.Client().Params(ctx)
	if before.Balance-after.Balance != 2*params.MinFee { // create + cancel: the deposit is back
		t.Fatalf("tenant lost %d", before.Balance-after.Balance)
	}
}

func manifestOf(j tenant.Job) (*manifest.Manifest, error) { return manifest.Decode(j.Manifest) }

// rejob re-encodes a changed manifest into the job and its order.
func rejob(t *testing.T, j tenant.Job, m *manifest.Manifest) tenant.Job {
	t.Helper()
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	j.Manifest, j.Order.ManifestHash, j.Order.DurationSec = raw, manifest.Hash(raw), m.DurationSec
	return j
}

func TestScore(t *testing.T) {
	for _, tc := range []struct {
		price uint64
		rtt   time.Duration
		rep   uint64
		want  uint64
	}{
		{1_000_000, 0, 1_000_000, 1_000_000},
		{1_000_000, 100 * time.Millisecond, 1_000_000, 1_100_000}, // +10%
		{1_000_000, 5 * time.Second, 1_000_000, 2_000_000},        // capped at 1 s: +100%
		{1_000_000, 0, 500_000, 2_000_000},                        // half the reputation: twice the cost
		{1_000_000, 0, 100_000, 2_000_000},                        // reputation floor 0.5
	} {
		if got := tenant.Score(tc.price, tc.rtt, tc.rep); got != tc.want {
			t.Errorf("Score(%d, %s, %d) = %d, want %d", tc.price, tc.rtt, tc.rep, got, tc.want)
		}
	}
}

// TestDeployChooses: with Choose, the tenant accepts the best-scored bid itself before the window closes.
func TestDeployChooses(t *testing.T) {
	tn, _ := startDev(t)
	var stages []string
	res, err := tn.Deploy(context.Background(), cpuJob(t, "echo chosen", api.USPR, api.USPR),
		tenant.Options{Choose: true, OutputsDir: t.TempDir(), Progress: func(e tenant.Event) { stages = append(stages, e.Stage+": "+e.Detail) }})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(stages, "\n"), "choose: accepting bid") || res.State != "completed" {
		t.Fatalf("stages:\n%s\nresult %+v", strings.Join(stages, "\n"), res)
	}
}

// TestDeployReportsOutputsLeftOut: a job that links / into its work directory and names paths through the link
// as outputs gets none of them (the provider opens nothing through a link), and the deploy says which outputs
// the provider left out of its receipt and why, instead of only "0 files".
func TestDeployReportsOutputsLeftOut(t *testing.T) {
	tn, _ := startDev(t)
	m := &manifest.Manifest{Version: 1, Run: "ln -s / r; mkdir -p out; echo mine > out/a", Outputs: []string{"r/etc/shadow", "out/"},
		Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 128}, DurationSec: 60}
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	job := tenant.Job{Manifest: raw, Order: tx.CreateOrder{Resources: m.Resources, MaxPricePerHour: api.USPR,
		ManifestHash: manifest.Hash(raw), Deposit: api.USPR, DurationSec: m.DurationSec}}
	var progress []string
	res, err := tn.Deploy(context.Background(), job, tenant.Options{OutputsDir: t.TempDir(),
		Progress: func(e tenant.Event) { progress = append(progress, e.Detail) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 1 || len(res.OutputsLeftOut) != 1 || !strings.Contains(res.OutputsLeftOut[0], "r/etc/shadow") {
		t.Fatalf("outputs %v, left out %q", res.Outputs, res.OutputsLeftOut)
	}
	if !strings.Contains(strings.Join(progress, "\n"), "left 1 output(s) out of its receipt: r/etc/shadow") {
		t.Fatalf("progress does not say what was left out:\n%s", strings.Join(progress, "\n"))
	}
}
