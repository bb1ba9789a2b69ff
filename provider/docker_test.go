package provider_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/internal/testimage"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/runtime/docker"
)

func buildImage(t *testing.T) string { return testimage.Build(t) }

// TestProviderRunsImageJob: a job naming an image is served by a provider that offers the docker runtime; the
// container's output lands in the lease's outputs and the receipt.
func TestProviderRunsImageJob(t *testing.T) {
	tag := buildImage(t)
	e := startEnvWith(t, func(c *provider.Config) { c.Docker, c.DockerImages = true, []string{tag} })
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
	if l.State != api.LeaseCompleted || l.Receipt == nil || l.Receipt.ExitCode != 0 {
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

// TestClusterContainersOff: with cluster_containers = false the daemon bids on a cluster order for a job
// without an image, and not on one for an image.
func TestClusterContainersOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := (&docker.Runtime{}).Available(ctx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no Docker engine: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	e := startEnvWith(t, func(c *provider.Config) { c.Docker, c.ClusterContainers = true, false })
	m, raw := job("true", 1)
	send := func(docker bool) uint64 {
		res, err := e.c.NewSender(e.net.Keys["tenant"]).Send(ctx, &tx.CreateClusterOrder{CreateOrder: tx.CreateOrder{Resources: m.Resources,
			Constraints: tx.Constraints{Docker: docker}, MaxPricePerHour: 10 * spr, ManifestHash: manifest.Hash(raw), Deposit: 10 * spr,
			DurationSec: 60}, Nodes: 2, MaxRTTMicros: 5000, OnFailure: tx.OnFailureClose})
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.Attr("order.created", "order_id")
		n, _ := strconv.ParseUint(id, 10, 64)
		return n
	}
	image, process := send(true), send(false)
	bids := func(order uint64) int {
		l, err := e.c.Bids(ctx, api.ListRequest{OrderID: order})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	e.waitFor(5*time.Second, "a bid on the process cluster order", func() bool { return bids(process) == 1 })
	if n := bids(image); n != 0 {
		t.Fatalf("%d bids on the cluster order for an image", n)
	}
}

// TestHostileDockerOutputsThroughLinks: the symlink escape from a container. The job links / and a secret
// directory of the host into /work and names paths through the links as outputs: inside the container the link
// is the container's root, but the daemon reads outputs on the host, where it would be the host's. Nothing but
// the job's own file is hashed or served.
func TestHostileDockerOutputsThroughLinks(t *testing.T) {
	tag := buildImage(t)
	secretDir, secret := hostSecret(t)
	e := startEnvWith(t, func(c *provider.Config) { c.Docker, c.DockerImages = true, []string{tag} })
	m := &manifest.Manifest{Version: 1, Image: tag,
		Run:       fmt.Sprintf("symlink / r symlink %s out-secrets write out/fine.txt mine", secretDir),
		Outputs:   []string{"r" + secretDir + "/", "r/etc/shadow", "r/etc/passwd", "out-secrets/", "out/"},
		Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 256}, DurationSec: 60}
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.c.NewSender(e.net.Keys["tenant"]).Send(context.Background(), &tx.CreateOrder{Resources: m.Resources,
		MaxPricePerHour: 10 * spr, ManifestHash: manifest.Hash(raw), Deposit: spr, DurationSec: 60, Constraints: tx.Constraints{Docker: true}})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.Attr("order.created", "order_id")
	orderID, _ := strconv.ParseUint(id, 10, 64)
	leaseID := e.leaseOf(orderID)
	e.manifestOK("tenant", leaseID, raw)
	e.waitLeaseEnded(leaseID)
	e.waitFor(30*time.Second, "the receipt", func() bool { return e.status("tenant", leaseID).Receipt != nil })
	st := e.status("tenant", leaseID)
	if len(st.OutputFiles) != 1 || st.OutputFiles[0].Path != "out/fine.txt" {
		t.Fatalf("outputs hashed: %+v (only out/fine.txt is the job's own); left out: %q", st.OutputFiles, st.OutputsLeftOut)
	}
	for name, b := range e.outputsTar("tenant", leaseID) {
		if name != "out/fine.txt" || bytes.Equal(b, secret) {
			t.Fatalf("served %s (%d bytes): a file from outside the work directory", name, len(b))
		}
	}
}
