package provider_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/tenant"
)

// TestDurationReachedGetsReceipt: a job still running at the end of its duration is stopped there by the provider,
// whose completion lands after the ledger's end. The ledger's completion grace takes it: the lease completes with
// the signed receipt, the tenant pays exactly price × duration, the SDK downloads the outputs and verifies them
// against the receipt, and the reason says "duration reached (2s)" (not "killed by killed").
func TestDurationReachedGetsReceipt(t *testing.T) {
	e := startEnv(t)
	ctx := context.Background()
	m, _ := job(`mkdir -p out; echo partial > out/p.txt; echo started; sleep 60`, 1)
	m.DurationSec = 2
	raw, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	tenant0, _ := e.c.Account(ctx, e.net.Keys["tenant"].Address())
	e.manifestOK("tenant", leaseID, raw)
	l := e.waitLeaseEnded(leaseID)
	if l.State != api.LeaseCompleted || l.Receipt == nil || l.CloseReason != "completed" {
		t.Fatalf("a lease that ran to its duration: %+v", l)
	}
	want := l.Price * 2000 / 3_600_000 // exactly the duration: nothing for the grace, nothing cut short
	if l.EndedMs != l.StartedMs+2000 || l.Paid != want || l.Refunded != l.Deposit-want {
		t.Fatalf("paid %d (want %d), refunded %d, ended %d ms after its start: %+v", l.Paid, want, l.Refunded, l.EndedMs-l.StartedMs, l)
	}
	acc, _ := e.c.Account(ctx, e.net.Keys["tenant"].Address())
	if acc.Balance != tenant0.Balance+l.Refunded {
		t.Fatalf("tenant balance %d, want %d + refund %d", acc.Balance, tenant0.Balance, l.Refunded)
	}
	code, body, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
	var st provider.Status
	if code != 200 || json.Unmarshal(body, &st) != nil || st.Result == nil || !st.Result.TimedOut ||
		!strings.HasPrefix(st.Result.Reason, "duration reached (2s)") || strings.Contains(st.Reason, "killed by killed") {
		t.Fatalf("status %d: %s", code, body)
	}
	dir := t.TempDir()
	path, files, err := tenant.New(e.c, e.net.Keys["tenant"], nil).FetchOutputs(ctx, leaseID, dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("outputs: %v %v", files, err)
	}
	if b, err := os.ReadFile(filepath.Join(path, "out", "p.txt")); err != nil || string(b) != "partial\n" {
		t.Fatalf("outputs: %q %v (files %v)", b, err, files)
	}
}

// TestNoManifestIsNotTheProvidersFailure: the ledger's start deadline (params.start_timeout_blocks) comes before
// the daemon's manifest_timeout (2 minutes by default); a tenant that leases and never sends the manifest does not
// lower the provider's record: no acknowledgement of the manifest was shown on the ledger. The daemon stops
// waiting at the ledger's deadline.
func TestNoManifestIsNotTheProvidersFailure(t *testing.T) {
	p := api.DefaultParams()
	p.StartTimeoutBlocks = 20
	e := startEnvOpts(t, envOpts{params: &p})
	ctx := context.Background()
	prov := e.net.Keys["prov"].Address()
	before, _ := e.c.Provider(ctx, prov)
	m, raw := job("true", 1)
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	l := e.waitLeaseEnded(leaseID)
	if l.State != api.LeaseClosed || l.Refunded != l.Deposit || l.Paid != 0 || !strings.Contains(l.CloseReason, "no manifest") {
		t.Fatalf("lease %+v", l)
	}
	pv, _ := e.c.Provider(ctx, prov)
	if pv.Failed != 0 || pv.FailedValue != 0 || pv.ReputationPPM != before.ReputationPPM {
		t.Fatalf("provider blamed for a manifest it never got: %+v", pv)
	}
	e.waitFor(10*time.Second, "the daemon to stop waiting for the manifest", func() bool {
		code, body, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
		return code == 200 && strings.Contains(string(body), `"state":"done"`)
	})
}

// TestManifestAckProvesDelivery: the daemon acknowledges an accepted manifest with a signature the ledger checks
// against its key; shown on the ledger by the tenant, it makes a lease the provider then fails to start its
// failure. Here the daemon's LeaseStarted is held back past the deadline (a provider that got the manifest and
// did not start it in time), and the tenant shows the acknowledgement.
func TestManifestAckProvesDelivery(t *testing.T) {
	p := api.DefaultParams()
	p.StartTimeoutBlocks = 80
	e := startEnvOpts(t, envOpts{params: &p})
	ctx := context.Background()
	defer provider.SetLeaseStartedDelay(12 * time.Second)() // past the deadline: 80 blocks of 100 ms
	m, raw := job("sleep 30", 1)
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	path := fmt.Sprintf("/leases/%d/manifest", leaseID)
	var st provider.Status
	e.waitFor(10*time.Second, "the daemon to accept the manifest", func() bool {
		code, body, _ := e.do(e.tenantClient("tenant", nil), "PUT", path, raw)
		if code != 200 && code != 404 {
			t.Fatalf("manifest: %d %s", code, body)
		}
		return code == 200 && json.Unmarshal(body, &st) == nil
	})
	ack, err := hex.DecodeString(st.ManifestAck)
	status, _ := e.c.Status(ctx)
	if err != nil || !ed25519.Verify(e.net.Keys["prov"].PubKey(), tx.ManifestAckBytes(status.ChainID, leaseID, manifest.Hash(raw)), ack) {
		t.Fatalf("manifest ack %q: %v", st.ManifestAck, err)
	}
	md := &tx.ManifestDelivered{LeaseID: leaseID}
	copy(md.Ack[:], ack)
	if _, err := e.c.NewSender(e.net.Keys["tenant"]).Send(ctx, md); err != nil {
		t.Fatal(err)
	}
	l := e.waitLeaseEnded(leaseID)
	if l.State != api.LeaseClosed || l.CloseReason != "not started in time" || !l.ManifestDelivered || l.Refunded != l.Deposit {
		t.Fatalf("lease %+v", l)
	}
	if pv, _ := e.c.Provider(ctx, e.net.Keys["prov"].Address()); pv.Failed != 1 || pv.FailedValue != l.Deposit {
		t.Fatalf("provider not blamed for a manifest it acknowledged and did not start: %+v", pv)
	}
	e.waitFor(20*time.Second, "the daemon to stop the workload of the closed lease", func() bool {
		code, body, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
		return code == 200 && strings.Contains(string(body), `"state":"done"`)
	})
}
