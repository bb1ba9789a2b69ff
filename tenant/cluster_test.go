package tenant_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/internal/testimage"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/tenant"
)

// devCluster runs `spare dev` with three providers and waits until each has published its round trips to the
// two others (what cluster orders are placed on).
func devCluster(t *testing.T, adjust ...func(*devnet.Options)) (*tenant.Tenant, devnet.Info) {
	t.Helper()
	tn, info := startDev(t, append(adjust, func(o *devnet.Options) { o.Providers = 3 })...)
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	isProvider := map[tx.Address]bool{}
	for _, p := range info.Providers {
		isProvider[p.Address] = true
	}
	for _, p := range info.Providers {
		for {
			l, err := tn.Client().Latency(ctx, p.Address)
			peers := 0
			for _, s := range l.Samples {
				if isProvider[s.Peer] {
					peers++
				}
			}
			if err == nil && peers == len(info.Providers)-1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("provider %s has not published its round trips: %+v %v", p.Address, l, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return tn, info
}

// exactCosts checks that every member was paid exactly price × billed time and refunded the rest.
func exactCosts(t *testing.T, tn *tenant.Tenant, res *tenant.Result) {
	t.Helper()
	var cost uint64
	for _, m := range res.Members {
		l, err := tn.Client().Lease(context.Background(), m.LeaseID)
		if err != nil {
			t.Fatal(err)
		}
		if want := l.Price * (l.EndedMs - l.StartedMs) / 3_600_000; l.Paid != want || l.Paid+l.Refunded != l.Deposit || m.Paid != l.Paid {
			t.Fatalf("rank %d: paid %d (want %d), refunded %d of %d", m.Rank, l.Paid, want, l.Refunded, l.Deposit)
		}
		cost += l.Paid
	}
	if res.Cost != cost {
		t.Fatalf("result cost %d, members were paid %d", res.Cost, cost)
	}
}

// TestClusterOnDev deploys examples/cluster.yaml on three dev providers: two are leased at once, each member gets
// its rank and the rendezvous, rank 1 reaches rank 0 through MASTER_ADDR:MASTER_PORT, the logs merge with rank
// prefixes, both members' outputs are fetched and verified, and each is paid exactly what it ran.
func TestClusterOnDev(t *testing.T) {
	tn, info := devCluster(t, func(o *devnet.Options) { o.Explorer = "127.0.0.1:0" })
	ctx := context.Background()
	job := loadExample(t, "cluster.yaml")
	if job.Cluster == nil || job.Cluster.Nodes != 2 || job.Cluster.MaxRTTMicros != 5000 {
		t.Fatalf("examples/cluster.yaml: %+v", job.Cluster)
	}
	var logs bytes.Buffer
	var stages []string
	res, err := tn.Deploy(ctx, job, tenant.Options{Logs: &logs, OutputsDir: t.TempDir(), Progress: func(e tenant.Event) { stages = append(stages, e.Stage+": "+e.Detail) }})
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, strings.Join(stages, "\n"), logs.String())
	}
	if res.State != "done" || len(res.Members) != 2 || res.Members[0].Provider == res.Members[1].Provider {
		t.Fatalf("result %+v\n%s\n%s", res, strings.Join(stages, "\n"), logs.String())
	}
	known := map[string]bool{}
	for _, p := range info.Providers {
		known[p.Address.String()] = true
	}
	for _, m := range res.Members {
		if !known[m.Provider.String()] || m.ExitCode == nil || *m.ExitCode != 0 {
			t.Fatalf("member %+v", m)
		}
	}
	for _, want := range []string{"[rank 0] rank 0 of 2; rendezvous 127.0.0.1:", "[rank 1] rank 1 of 2", "[rank 0] rank 0 got: hello from rank 1 of 2", "[rank 1] rank 1 got: welcome, 1"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("logs lack %q:\n%s", want, logs.String())
		}
	}
	got, err := os.ReadFile(filepath.Join(res.Members[0].OutputsPath, "out", "messages.txt"))
	if err != nil || string(got) != "hello from rank 1 of 2\n" {
		t.Fatalf("rank 0 outputs %q %v", got, err)
	}
	got, err = os.ReadFile(filepath.Join(res.Members[1].OutputsPath, "out", "answer.txt"))
	if err != nil || string(got) != "welcome, 1\n" {
		t.Fatalf("rank 1 outputs %q %v", got, err)
	}
	exactCosts(t, tn, res)

	// The explorer's order page shows the cluster's members.
	if resp, err := http.Get(info.Explorer + "/orders/" + strconv.FormatUint(res.OrderID, 10)); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `id="members"`) || !strings.Contains(string(body), "/leases/"+strconv.FormatUint(res.Members[1].LeaseID, 10)) {
			t.Fatalf("order page: %d\n%s", resp.StatusCode, body)
		}
	}

	// The explorer shows each provider's published round trips.
	resp, err := http.Get(info.Explorer + "/api/providers/" + info.Providers[0].Address.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Latency *struct {
			Samples []struct {
				Peer    tx.Address `json:"peer"`
				Auditor bool       `json:"auditor"`
			} `json:"samples"`
		} `json:"latency"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || page.Latency == nil {
		t.Fatalf("explorer provider page latency: %+v %v", page.Latency, err)
	}
	// Its two peers and the dev auditor (whose genesis host the providers measure too).
	var peers, auditors int
	for _, s := range page.Latency.Samples {
		switch {
		case s.Auditor && s.Peer == info.Auditor:
			auditors++
		case !s.Auditor && s.Peer != info.Providers[0].Address:
			peers++
		}
	}
	if peers != 2 || auditors != 1 {
		t.Fatalf("explorer provider page latency: %+v", page.Latency)
	}
}

// TestClusterMemberFailure: rank 1's workload is killed mid-run; its lease ends with exit code 137, the ledger
// closes rank 0's lease at that moment (on_failure: close), its provider stops the workload, and both are paid
// exactly what they ran, the rest refunded.
func TestClusterMemberFailure(t *testing.T) {
	tn, _ := devCluster(t)
	ctx := context.Background()
	job := cpuJob(t, `if [ "$RANK" = 1 ]; then sleep 1; echo rank 1 dies; kill -9 $$; fi; echo rank 0 waits; sleep 60`, 10*api.USPR, api.USPR)
	job.Cluster = &tenant.Cluster{Nodes: 2, MaxRTTMicros: 5000}
	var logs bytes.Buffer
	t0 := time.Now()
	res, err := tn.Deploy(ctx, job, tenant.Options{Logs: &logs, OutputsDir: t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if res.State != "failed" || len(res.Members) != 2 || time.Since(t0) > 40*time.Second {
		t.Fatalf("result %+v after %s\n%s", res, time.Since(t0), logs.String())
	}
	if m := res.Members[1]; m.State != "completed" || m.ExitCode == nil || *m.ExitCode != 137 {
		t.Fatalf("rank 1: %+v", m)
	}
	if m := res.Members[0]; m.State != "closed" || !strings.Contains(m.Reason, "exited with code 137") {
		t.Fatalf("rank 0: %+v", m)
	}
	if !strings.Contains(logs.String(), "[rank 1] rank 1 dies") || !strings.Contains(logs.String(), "[rank 0] rank 0 waits") {
		t.Fatalf("logs:\n%s", logs.String())
	}
	exactCosts(t, tn, res)
}

// TestDDPOnDev runs examples/ddp.yaml: a real torch.distributed rendezvous (gloo, env://) across two members,
// all_reduce summing 1 + 2 on both.
func TestDDPOnDev(t *testing.T) {
	if out, err := exec.Command("/usr/bin/python3", "-c", "import torch").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI needs PyTorch for /usr/bin/python3 (apt-get install -y python3-torch): %s", out)
		}
		t.Skipf("no PyTorch for /usr/bin/python3: %s", bytes.TrimSpace(out))
	}
	tn, _ := devCluster(t)
	var logs bytes.Buffer
	res, err := tn.Deploy(context.Background(), loadExample(t, "ddp.yaml"), tenant.Options{Logs: &logs, OutputsDir: t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if res.State != "done" || len(res.Members) != 2 {
		t.Fatalf("result %+v\nlogs:\n%s", res, logs.String())
	}
	for _, m := range res.Members {
		got, err := os.ReadFile(filepath.Join(m.OutputsPath, "out", "allreduce.txt"))
		if err != nil || string(got) != "3\n" {
			t.Fatalf("rank %d all_reduce %q %v\n%s", m.Rank, got, err, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "[rank 1] rank 1 of 2: all_reduce sum = 3") {
		t.Fatalf("logs:\n%s", logs.String())
	}
}

// TestClusterNoFittingSet: a cluster larger than the network is never leased; deploy gives up at the timeout
// with ErrNoOffers saying what was needed, and cancels the order so the deposit comes back.
func TestClusterNoFittingSet(t *testing.T) {
	tn, _ := devCluster(t)
	ctx := context.Background()
	before, _ := tn.Client().Account(ctx, tn.Address())
	params, _ := tn.Client().Params(ctx)
	job := cpuJob(t, "true", api.USPR, api.USPR)
	job.Cluster = &tenant.Cluster{Nodes: 4, MaxRTTMicros: 5000}
	res, err := tn.Deploy(ctx, job, tenant.Options{NoBidTimeout: 2 * time.Second})
	if !errors.Is(err, tenant.ErrNoOffers) || !strings.Contains(err.Error(), "4 providers whose published round trips are all within 5ms; 3 bid") {
		t.Fatalf("err = %v", err)
	}
	after, _ := tn.Client().Account(ctx, tn.Address())
	// The fees of create (which prepays the cluster's placement search) and cancel: the deposit is back.
	if lost := before.Balance - after.Balance; res == nil || lost != res.Fees || lost <= 2*params.MinFee {
		t.Fatalf("tenant lost %d; deploy: %+v", lost, res)
	}
}

// TestClusterRestartOnDev deploys examples/cluster_restart.yaml on three dev providers: rank 1 crashes on the
// first run; the ledger closes rank 0 and opens the next generation, on which the crashed member's provider may
// not bid; the survivor (once its workload has stopped) and the third provider are leased; deploy sends them
// the job again and they exchange their hello. Every run is paid exactly what it ran and the unspent reserve
// comes back: the tenant pays the fee and the members' pay, nothing more.
func TestClusterRestartOnDev(t *testing.T) {
	tn, info := devCluster(t, func(o *devnet.Options) { o.Explorer = "127.0.0.1:0" })
	ctx := context.Background()
	job := loadExample(t, "cluster_restart.yaml")
	if job.Cluster == nil || job.Cluster.Restarts != 1 {
		t.Fatalf("examples/cluster_restart.yaml: %+v", job.Cluster)
	}
	before, _ := tn.Client().Account(ctx, tn.Address())
	params, _ := tn.Client().Params(ctx)
	// Detached, nobody would send the job to a restarted generation: refused before any order is made.
	if _, err := tn.Deploy(ctx, job, tenant.Options{Detach: true}); err == nil || !strings.Contains(err.Error(), "drop --detach") {
		t.Fatalf("detached restartable cluster: %v", err)
	}
	var logs bytes.Buffer
	var stages []string
	res, err := tn.Deploy(ctx, job, tenant.Options{Logs: &logs, OutputsDir: t.TempDir(), Progress: func(e tenant.Event) { stages = append(stages, e.Stage+": "+e.Detail) }})
	trace := func() string { return strings.Join(stages, "\n") + "\n" + logs.String() }
	if err != nil {
		t.Fatalf("%v\n%s", err, trace())
	}
	if res.State != "done" || res.Restarts != 1 || len(res.Members) != 4 || res.LastOrder == res.OrderID {
		t.Fatalf("result %+v\n%s", res, trace())
	}
	first, second := res.Members[:2], res.Members[2:]
	if m := first[1]; m.Generation != 0 || m.ExitCode == nil || *m.ExitCode != 137 {
		t.Fatalf("first run, rank 1: %+v", m)
	}
	if m := first[0]; m.State != "closed" || !strings.Contains(m.Reason, "exited with code 137; the cluster restarts") {
		t.Fatalf("first run, rank 0: %+v", m)
	}
	for _, m := range second {
		if m.Generation != 1 || m.OrderID != res.LastOrder || m.ExitCode == nil || *m.ExitCode != 0 || m.Provider == first[1].Provider {
			t.Fatalf("restart, rank %d: %+v (crashed provider %s)", m.Rank, m, first[1].Provider)
		}
	}
	got, err := os.ReadFile(filepath.Join(second[0].OutputsPath, "out", "messages.txt"))
	if err != nil || string(got) != "hello from rank 1 of 2\n" {
		t.Fatalf("restart rank 0 outputs %q %v\n%s", got, err, trace())
	}
	for _, want := range []string{"[rank 1] rank 1 crashes", "[rank 0, restart 1] rank 0 of 2, restart 1", "[rank 0, restart 1] rank 0 got: hello from rank 1 of 2"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("logs lack %q:\n%s", want, trace())
		}
	}
	exactCosts(t, tn, res)
	after, _ := tn.Client().Account(ctx, tn.Address())
	if spent := before.Balance - after.Balance; spent != res.Fees+res.Cost || res.Fees <= params.MinFee {
		t.Fatalf("tenant spent %d, want the fee %d (its order's, which prepays two placement searches) + the members' pay %d", spent, res.Fees, res.Cost)
	}
	if escrowed := job.Order.Deposit * 2 * 2; res.Refunded != escrowed-res.Cost {
		t.Fatalf("refunded %d of %d escrowed, cost %d", res.Refunded, escrowed, res.Cost)
	}
	// The explorer's order page links the first run to its restart.
	resp, err := http.Get(info.Explorer + "/orders/" + strconv.FormatUint(res.OrderID, 10))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`restarted as <a href="/orders/%d">`, res.LastOrder); resp.StatusCode != 200 || !strings.Contains(string(body), want) {
		t.Fatalf("order page lacks %q: %d\n%s", want, resp.StatusCode, body)
	}
}

// TestDockerClusterOnDev: a cluster job naming an image runs each member in a container in the host's network
// namespace; rank 1's container reaches rank 0's at MASTER_ADDR:MASTER_PORT (rank 0's provider's host and the
// port it gave), and rank 0 writes what it received to its outputs.
func TestDockerClusterOnDev(t *testing.T) {
	tag := testimage.Build(t)
	tn, _ := devCluster(t, func(o *devnet.Options) { o.NoDocker = false })
	m := &manifest.Manifest{Version: 1, Image: tag, Run: "rendezvous", Outputs: []string{"out/"},
		Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 128}, DurationSec: 60}
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	job := tenant.Job{Manifest: raw, Order: tx.CreateOrder{Resources: m.Resources, Constraints: tx.Constraints{Docker: true},
		MaxPricePerHour: 10 * api.USPR, ManifestHash: manifest.Hash(raw), Deposit: api.USPR, DurationSec: m.DurationSec},
		Cluster: &tenant.Cluster{Nodes: 2, MaxRTTMicros: 5000}}
	var logs bytes.Buffer
	res, err := tn.Deploy(context.Background(), job, tenant.Options{Logs: &logs, OutputsDir: t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	if res.State != "done" || len(res.Members) != 2 {
		t.Fatalf("result %+v\n%s", res, logs.String())
	}
	got, err := os.ReadFile(filepath.Join(res.Members[0].OutputsPath, "out", "messages.txt"))
	if err != nil || string(got) != "hello from rank 1\n" {
		t.Fatalf("rank 0 outputs %q %v\n%s", got, err, logs.String())
	}
	if !strings.Contains(logs.String(), "[rank 1] rank 1 sent its hello") {
		t.Fatalf("logs:\n%s", logs.String())
	}
	exactCosts(t, tn, res)
}

// TestClusterAutoTopUp: --auto-topup keeps every member's deposit topped up, so a cluster whose deposits would
// run out long before its work ends still completes.
func TestClusterAutoTopUp(t *testing.T) {
	tn, _ := devCluster(t)
	// At ≈10,625 uspr/h, 10 uspr last ≈3.4 s: too little for 6 s of work in a 15 s lease without top-ups.
	job := cpuJob(t, "sleep 6; echo finished", api.USPR, 10)
	m, _ := manifestOf(job)
	m.DurationSec = 15
	job = rejob(t, job, m)
	job.Cluster = &tenant.Cluster{Nodes: 2, MaxRTTMicros: 5000}
	var mu sync.Mutex
	toppedUp := map[string]bool{}
	res, err := tn.Deploy(context.Background(), job, tenant.Options{AutoTopUp: true, OutputsDir: t.TempDir(), Progress: func(e tenant.Event) {
		if e.Stage == "topup" {
			mu.Lock()
			toppedUp[strings.Fields(e.Detail)[1]] = true // "lease N topped up ..."
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.State != "done" || len(toppedUp) != 2 {
		t.Fatalf("result %+v, leases topped up %v", res, toppedUp)
	}
	for _, m := range res.Members {
		if m.ExitCode == nil || *m.ExitCode != 0 {
			t.Fatalf("member %+v", m)
		}
	}
}
