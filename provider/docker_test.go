package provider_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/runtime/docker"
)

// buildImage builds a FROM-scratch image holding runtime/docker's static test workload (also as /bin/sh) with
// the docker CLI, and returns its tag. Without a Docker engine the test is skipped, except under CI=true.
func buildImage(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := (&docker.Runtime{}).Available(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no Docker engine: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	dir := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "workload"), "../runtime/docker/testdata/workload")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY workload /workload\nCOPY workload /bin/sh\nENTRYPOINT [\"/workload\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("spare-provider-test:%d", os.Getpid())
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

// TestProviderRunsImageJob: a job naming an image is served by a provider that offers the docker runtime; the
// container's output lands in the lease's outputs and the receipt.
func TestProviderRunsImageJob(t *testing.T) {
	tag := buildImage(t)
	e := startEnvWith(t, func(c *provider.Config) { c.Docker = true })
	ctx := context.Background()
	m := &manifest.Manifest{Version: 1, Image: tag, Run: "out hello-from-container write out/result.txt done",
		Outputs: []string{"out/"}, Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 256}, DurationSec: 60}
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.c.NewSender(e.net.Keys["tenant"]).Send(ctx, &tx.CreateOrder{Resources: m.Resources, MaxPricePerHour: 10 * spr,
		ManifestHash: manifest.Hash(raw), Deposit: spr, DurationSec: 60, Constraints: tx.Constraints{Docker: true}})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.Attr("order.created", "order_id")
	var orderID uint64
	fmt.Sscan(id, &orderID)
	leaseID := e.leaseOf(orderID)
	e.manifestOK("tenant", leaseID, raw)
	l := e.waitLeaseEnded(leaseID)
	if l.State != ledger.LeaseCompleted || l.Receipt == nil || l.Receipt.ExitCode != 0 {
		t.Fatalf("lease %+v", l)
	}
	_, logs, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/logs", leaseID), nil)
	if !strings.Contains(string(logs), "hello-from-container") {
		t.Fatalf("logs: %q", logs)
	}
	code, st, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
	if code != 200 || !strings.Contains(string(st), `"runtime":"docker"`) || !strings.Contains(string(st), "out/result.txt") {
		t.Fatalf("status %d: %s", code, st)
	}
}
