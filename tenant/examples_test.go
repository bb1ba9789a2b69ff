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

	"github.com/sparenet/spare/jobspec"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

func loadExample(t *testing.T, name string) tenant.Job {
	t.Helper()
	path := filepath.Join("..", "examples", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := jobspec.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	_, raw, err := j.Manifest(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	return tenant.JobFrom(j, raw)
}

// TestExamplesOnDev deploys every example on `spare dev`: the CPU ones run and their outputs verify; the GPU one
// is refused with the reason on a machine without GPUs.
func TestExamplesOnDev(t *testing.T) {
	tn, info := startDev(t)
	ctx := context.Background()
	for _, tc := range []struct {
		file   string
		log    string
		output string
	}{
		{"hello.yaml", "hello from a spare machine", ""},
		{"train.yaml", "epoch 30/30", "out/model.txt"},
	} {
		var logs bytes.Buffer
		res, err := tn.Deploy(ctx, loadExample(t, tc.file), tenant.Options{Logs: &logs, OutputsDir: t.TempDir()})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if res.ExitCode == nil || *res.ExitCode != 0 || !strings.Contains(logs.String(), tc.log) {
			t.Fatalf("%s: %+v\n%s", tc.file, res, logs.String())
		}
		if tc.output != "" {
			if _, err := os.Stat(filepath.Join(res.OutputsPath, tc.output)); err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
		}
	}
	if info.GPUs == 0 {
		_, err := tn.Deploy(ctx, loadExample(t, "gpu.yaml"), tenant.Options{NoBidTimeout: 2 * time.Second})
		if !errors.Is(err, tenant.ErrNoOffers) || !strings.Contains(err.Error(), "lack a GPU") {
			t.Fatalf("gpu.yaml: %v", err)
		}
	}
}

// TestDetachLogsClose: --detach returns once the workload runs; logs follow; closing pays for what ran and
// refunds the rest.
func TestDetachLogsClose(t *testing.T) {
	tn, _ := startDev(t)
	ctx := context.Background()
	job := cpuJob(t, "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done", api.USPR, api.USPR)
	res, err := tn.Deploy(ctx, job, tenant.Options{Detach: true})
	if err != nil || res.State != "active" {
		t.Fatalf("detach: %+v %v", res, err)
	}
	lctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	var logs bytes.Buffer
	_ = tn.StreamLogs(lctx, res.LeaseID, true, &logs)
	cancel()
	if !strings.Contains(logs.String(), "tick 2\n") {
		t.Fatalf("followed logs: %q", logs.String())
	}
	if _, err := tn.Sender().Send(ctx, &tx.CloseLease{ID: res.LeaseID}); err != nil {
		t.Fatal(err)
	}
	l, _ := tn.Client().Lease(ctx, res.LeaseID)
	if l.State != api.LeaseClosed || l.Paid+l.Refunded != l.Deposit || l.Paid != l.Price*(l.EndedMs-l.StartedMs)/3_600_000 {
		t.Fatalf("closed lease: %+v", l)
	}
	waitProviderDone(t, tn, res.LeaseID) // the provider stops the workload once the ledger closed the lease
}

func waitProviderDone(t *testing.T, tn *tenant.Tenant, lease uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := tn.ProviderStatus(context.Background(), lease)
		if err == nil && st["state"] == "done" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider never finished lease %d: %v %v", lease, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEscrowExhaustionStopsTheJob: a deposit that lasts about a second ends the lease on the ledger; the provider
// stops the workload; the tenant is refunded nothing twice and the provider paid exactly the deposit.
func TestEscrowExhaustionStopsTheJob(t *testing.T) {
	tn, _ := startDev(t)
	ctx := context.Background()
	// 3600 uspr at 1 SPR/h... the provider asks 0.02 SPR/core-h + memory: price ≈ 10,625 uspr/h, so a deposit of
	// 3 uspr lasts about a second.
	job := cpuJob(t, "while true; do echo working; sleep 0.1; done", api.USPR, 3)
	before, _ := tn.Client().Account(ctx, tn.Address())
	res, err := tn.Deploy(ctx, job, tenant.Options{OutputsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := tn.Client().Lease(ctx, res.LeaseID)
	// Billing ends when the deposit cannot pay another whole millisecond; what is owed is floored, so at most a
	// rounding remainder comes back.
	if l.State != api.LeaseClosed || l.CloseReason != "deposit exhausted" || l.Paid != l.Price*(l.EndedMs-l.StartedMs)/3_600_000 ||
		l.Paid+l.Refunded != 3 || l.Refunded > 1 {
		t.Fatalf("lease: %+v", l)
	}
	waitProviderDone(t, tn, res.LeaseID)
	after, _ := tn.Client().Account(ctx, tn.Address())
	params, _ := tn.Client().Params(ctx)
	if before.Balance-after.Balance != l.Paid+(after.Nonce-before.Nonce)*params.MinFee {
		t.Fatalf("tenant paid %d", before.Balance-after.Balance)
	}
}

// TestAutoTopUp: a deposit that would run out long before the job ends is topped up while it runs, so the job
// finishes with exit code 0 instead of being cut off.
func TestAutoTopUp(t *testing.T) {
	tn, _ := startDev(t)
	ctx := context.Background()
	// At ≈10,625 uspr/h, 10 uspr last ≈3.4 s: too little for 6 s of work in a 15 s lease without top-ups.
	job := cpuJob(t, "sleep 6; echo finished", api.USPR, 10)
	m, _ := manifestOf(job)
	m.DurationSec = 15
	job = rejob(t, job, m)
	var topups int
	res, err := tn.Deploy(ctx, job, tenant.Options{AutoTopUp: true, OutputsDir: t.TempDir(), Progress: func(e tenant.Event) {
		if e.Stage == "topup" {
			topups++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.State != "completed" || res.ExitCode == nil || *res.ExitCode != 0 || topups == 0 {
		t.Fatalf("result %+v, %d top-ups", res, topups)
	}
}
