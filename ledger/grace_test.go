package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// deliveryAck is the ManifestDelivered a lease's tenant sends with its provider's signed acknowledgement.
func (c *chain) deliveryAck(provider string, leaseID uint64) *tx.ManifestDelivered {
	l := c.lease(leaseID)
	o := c.order(l.OrderID)
	m := &tx.ManifestDelivered{LeaseID: leaseID}
	copy(m.Ack[:], ed25519.Sign(c.keys[provider].priv, tx.ManifestAckBytes(testChain, leaseID, o.ManifestHash)))
	return m
}

// graceChain is a chain with a provider p1 serving lease 1 at 1 SPR/h for an hour, deposit 5 SPR, started at the
// returned time.
func graceChain(t *testing.T) (*chain, time.Time) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr})
	c.registerBonded("p1")
	c.do("tenant", gpuOrder(3*spr, 5*spr, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	return c, c.now
}

// TestLeaseCompletesInGrace: a job that runs to its duration is stopped there by its provider, whose receipt
// lands after the end. Within params.completion_grace_sec the ledger records it: the lease completes, the tenant
// pays exactly price × duration (nothing for the grace), the provider's record counts a completed lease, and the
// tenant cannot close it meanwhile (that would only drop the receipt it paid for), nor extend it.
func TestLeaseCompletesInGrace(t *testing.T) {
	const spr = api.USPR
	c, started := graceChain(t)
	end := uint64(started.Add(time.Hour).UnixMilli())
	if l := c.lease(1); l.EndMs != end || l.CloseMs != end+60_000 {
		t.Fatalf("end %d close %d, want %d and a minute later", l.EndMs, l.CloseMs, end)
	}
	tenant0 := c.balance("tenant")
	c.now = started.Add(time.Hour + 10*time.Second) // the provider stopped the workload and hashed its outputs
	c.block(0)
	l := c.lease(1)
	if l.State != api.LeaseActive || l.EarnedAt != spr {
		t.Fatalf("in the grace: %+v", l)
	}
	c.fail(tx.CodeBadLeaseState, "tenant", &tx.CloseLease{ID: 1})
	c.fail(tx.CodeBadLeaseState, "tenant", &tx.ExtendLease{LeaseID: 1, AddSec: 60})
	c.block(20 * time.Second)
	c.completeWith("p1", 1, "outputs", 143) // SIGTERM at the duration
	l = c.lease(1)
	if l.State != api.LeaseCompleted || l.Receipt == nil || l.Receipt.ExitCode != 143 || l.Paid != spr ||
		l.Refunded != 4*spr || l.EndedMs != end || l.CloseReason != "completed" {
		t.Fatalf("completed in the grace: %+v", l)
	}
	if got := c.balance("tenant"); got != tenant0+4*spr {
		t.Fatalf("tenant balance %d, want %d: it pays exactly the hour", got, tenant0+4*spr)
	}
	if p := c.provider("p1"); p.Completed != 1 || p.EarnedValue != spr || p.Failed != 0 {
		t.Fatalf("provider record: %+v", p)
	}
	if s := c.supply(); !s.Holds() || s.Escrow != 0 {
		t.Fatalf("supply: %+v", s)
	}
}

// TestLeaseClosesAfterGrace: without a completion, a lease that ran to its duration closes once the grace has
// passed, paid exactly to its end and no failure of the provider's; a receipt after that is refused. Escrow is
// never held past the grace.
func TestLeaseClosesAfterGrace(t *testing.T) {
	const spr = api.USPR
	c, started := graceChain(t)
	end := uint64(started.Add(time.Hour).UnixMilli())
	c.now = started.Add(time.Hour + 58*time.Second)
	c.block(0)
	if l := c.lease(1); l.State != api.LeaseActive {
		t.Fatalf("closed before the grace ended: %+v", l)
	}
	c.do("p1", &tx.Withdraw{ID: 1}) // in the grace the provider is paid to the end, no further
	if l := c.lease(1); l.Paid != spr {
		t.Fatalf("withdrawn in the grace: %+v", l)
	}
	res := c.block(time.Second)
	if !hasEvent(res.Events, "lease.closed") {
		t.Fatal("no lease.closed at the grace's end")
	}
	l := c.lease(1)
	if l.State != api.LeaseClosed || l.CloseReason != "duration reached" || l.Paid != spr || l.Refunded != 4*spr || l.EndedMs != end {
		t.Fatalf("after the grace: %+v", l)
	}
	if p := c.provider("p1"); p.Failed != 0 || p.Completed != 0 {
		t.Fatalf("provider record: %+v", p)
	}
	rc := c.runReceipt("p1", 1, "late")
	c.fail(tx.CodeBadLeaseState, "p1", &tx.CompleteLease{Receipt: rc})
	if s := c.supply(); !s.Holds() || s.Escrow != 0 {
		t.Fatalf("supply: %+v", s)
	}
}

// TestGraceProviderCloseIsNoFailure: a provider that gives up its receipt in the grace closes the lease paid to
// its end, as the sweep would, with no failure: it ran the whole duration.
func TestGraceProviderCloseIsNoFailure(t *testing.T) {
	const spr = api.USPR
	c, started := graceChain(t)
	c.now = started.Add(time.Hour + 5*time.Second)
	c.do("p1", &tx.CloseLease{ID: 1, Reason: "outputs lost"})
	if l := c.lease(1); l.State != api.LeaseClosed || l.Paid != spr || l.Refunded != 4*spr {
		t.Fatalf("closed by the provider in the grace: %+v", l)
	}
	if p := c.provider("p1"); p.Failed != 0 {
		t.Fatalf("a close in the grace counted as a failure: %+v", p)
	}
}

// TestDepositExhaustedHasNoGrace: a lease whose deposit runs out before its duration closes at that moment, as
// before: the provider does not stop its workload then, so there is no receipt to wait for.
func TestDepositExhaustedHasNoGrace(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr})
	c.registerBonded("p1")
	c.do("tenant", gpuOrder(2*spr, spr, 7200)) // 1 SPR at 2 SPR/h: 30 minutes of 2 h
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	started := c.now
	if l := c.lease(1); l.CloseMs != l.EndMs || l.EndMs != uint64(started.Add(30*time.Minute).UnixMilli()) {
		t.Fatalf("close %d, end %d", l.CloseMs, l.EndMs)
	}
	c.now = started.Add(30 * time.Minute)
	c.block(0)
	if l := c.lease(1); l.State != api.LeaseClosed || l.CloseReason != "deposit exhausted" || l.Paid != spr {
		t.Fatalf("at its deposit's end: %+v", l)
	}
}

// TestGraceThroughTopUp: a top-up in the grace moves nothing (the duration bounds billing); one that makes a
// deposit-bound lease last its duration gives it the grace, and the index follows.
func TestGraceThroughTopUp(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr})
	c.registerBonded("p1")
	c.do("tenant", gpuOrder(2*spr, spr, 3600)) // 1 SPR at 2 SPR/h: 30 minutes of 1 h
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	started := c.now
	c.do("tenant", &tx.TopUp{LeaseID: 1, Amount: spr})
	end := uint64(started.Add(time.Hour).UnixMilli())
	if l := c.lease(1); l.EndMs != end || l.CloseMs != end+60_000 {
		t.Fatalf("after the top-up: end %d close %d", l.EndMs, l.CloseMs)
	}
	c.now = started.Add(time.Hour)
	c.do("tenant", &tx.TopUp{LeaseID: 1, Amount: spr})
	if l := c.lease(1); l.State != api.LeaseActive || l.EndMs != end || l.CloseMs != end+60_000 || l.EarnedAt != 2*spr {
		t.Fatalf("topped up in the grace: %+v", l)
	}
	c.now = started.Add(time.Hour + time.Minute)
	c.block(0)
	if l := c.lease(1); l.State != api.LeaseClosed || l.Paid != 2*spr || l.Refunded != spr {
		t.Fatalf("after the grace: %+v", l)
	}
}

// TestCompletionGraceParam: bounded in validation; state written before the param decodes with no grace (its
// leases were indexed at their ends).
func TestCompletionGraceParam(t *testing.T) {
	p := noRewards(api.DefaultParams())
	if p.CompletionGraceSec != 60 || p.Validate() != nil {
		t.Fatalf("default %d: %v", p.CompletionGraceSec, p.Validate())
	}
	p.CompletionGraceSec = api.MaxCompletionGraceSec
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	p.CompletionGraceSec = api.MaxCompletionGraceSec + 1
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "completion_grace_sec") {
		t.Fatalf("over the bound: %v", err)
	}
	p.CompletionGraceSec = 42
	got, err := schema.DecParams(schema.EncParams(&p))
	if err != nil || *got != p {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	p.StorageGiBYearCost, p.StorageDeclinePPM = 0, 0 // each one zero byte after the grace
	old := schema.EncParams(&p)
	old = old[:len(old)-3] // 42 is one byte, then the storage params: the encoding before the grace existed
	got, err = schema.DecParams(old)
	if err != nil || got.CompletionGraceSec != 0 || got.RetentionBlocks != p.RetentionBlocks {
		t.Fatalf("state written before the grace: %+v %v", got, err)
	}
}

// TestUnstartedWithoutDeliveryIsNobodysFailure: a tenant that leases and never sends the manifest cannot lower
// the provider's record: the lease expires at its start deadline with a full refund and no failure.
func TestUnstartedWithoutDeliveryIsNobodysFailure(t *testing.T) {
	const spr = api.USPR
	p := testParams()
	p.StartTimeoutBlocks = 3
	c := newChain(t, p, map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr})
	c.registerBonded("p1")
	rep0 := c.provider("p1").ReputationPPM
	c.do("tenant", gpuOrder(3*spr, 5*spr, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: spr})
	for range 3 {
		c.block(time.Second)
	}
	l := c.lease(1)
	if l.State != api.LeaseClosed || l.Refunded != 5*spr || l.Paid != 0 || l.CloseReason != "no manifest delivered in time" || l.ManifestDelivered {
		t.Fatalf("expired without delivery: %+v", l)
	}
	if pv := c.provider("p1"); pv.Failed != 0 || pv.FailedValue != 0 || pv.ReputationPPM != rep0 {
		t.Fatalf("provider blamed for a manifest it never got: %+v", pv)
	}
}

// TestUnstartedAfterDeliveryIsProvidersFailure: once the tenant shows the provider's signed acknowledgement of
// the manifest, a lease not started by its deadline counts against the provider, and so does the provider
// closing it. An acknowledgement the provider did not sign, for another manifest, from someone other than the
// tenant, or after the deadline, is refused.
func TestUnstartedAfterDeliveryIsProvidersFailure(t *testing.T) {
	const spr = api.USPR
	p := testParams()
	p.StartTimeoutBlocks = 4
	c := newChain(t, p, map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr, "p2": 1000 * spr})
	c.registerBonded("p1")
	c.registerBonded("p2")
	c.do("tenant", gpuOrder(3*spr, 5*spr, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: spr})
	forged := c.deliveryAck("tenant", 1) // the tenant's own signature proves nothing
	c.fail(tx.CodeBadReceipt, "tenant", forged)
	other := &tx.ManifestDelivered{LeaseID: 1}
	h := sha256.Sum256([]byte("another manifest"))
	copy(other.Ack[:], ed25519.Sign(c.keys["p1"].priv, tx.ManifestAckBytes(testChain, 1, h)))
	c.fail(tx.CodeBadReceipt, "tenant", other)
	c.fail(tx.CodeUnauthorized, "p2", c.deliveryAck("p1", 1))
	res := c.do("tenant", c.deliveryAck("p1", 1))
	if !hasEvent(res.Events, "lease.manifest_delivered") || !c.lease(1).ManifestDelivered {
		t.Fatalf("delivery not recorded: %+v", c.lease(1))
	}
	c.fail(tx.CodeBadLeaseState, "tenant", c.deliveryAck("p1", 1))
	for range 3 {
		c.block(time.Second)
	}
	l := c.lease(1)
	if l.State != api.LeaseClosed || l.Refunded != 5*spr || l.CloseReason != "not started in time" {
		t.Fatalf("expired after delivery: %+v", l)
	}
	if pv := c.provider("p1"); pv.Failed != 1 || pv.FailedValue != 5*spr {
		t.Fatalf("provider not blamed for a manifest it acknowledged: %+v", pv)
	}

	// The provider closing a lease it acknowledged, rather than starting it, fails it too; closing one it never
	// got the manifest of does not.
	c.do("tenant", gpuOrder(3*spr, 5*spr, 3600))
	c.do("p2", &tx.PlaceBid{OrderID: 2, Price: spr})
	c.do("p2", &tx.CloseLease{ID: 2, Reason: "no manifest"})
	c.do("tenant", gpuOrder(3*spr, 5*spr, 3600))
	c.do("p2", &tx.PlaceBid{OrderID: 3, Price: spr})
	c.do("tenant", c.deliveryAck("p2", 3))
	c.do("p2", &tx.CloseLease{ID: 3, Reason: "changed my mind"})
	if pv := c.provider("p2"); pv.Failed != 1 || pv.FailedValue != 5*spr {
		t.Fatalf("p2's record: %+v", pv)
	}
	if c.lease(3).Refunded != 5*spr {
		t.Fatalf("lease 3: %+v", c.lease(3))
	}
	// After the deadline the ack comes too late.
	c.do("tenant", gpuOrder(3*spr, 5*spr, 3600))
	c.do("p2", &tx.PlaceBid{OrderID: 4, Price: spr})
	ack := c.deliveryAck("p2", 4)
	for range 4 {
		c.block(time.Second)
	}
	c.fail(tx.CodeBadLeaseState, "tenant", ack)
	if s := c.supply(); !s.Holds() {
		t.Fatalf("supply: %+v", s)
	}
}

// TestStorageParamsOnOlderState: params written before the Vault read as no permanent deals (both 0), and a
// chain that sets one storage param without the other is refused.
func TestStorageParamsOnOlderState(t *testing.T) {
	p := api.DefaultParams()
	enc := schema.EncParams(&p)
	got, err := schema.DecParams(enc)
	if err != nil || *got != p {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	p = noRewards(p)
	p.StorageGiBYearCost, p.StorageDeclinePPM = 0, 0
	old := schema.EncParams(&p)
	old = old[:len(old)-2]
	if got, err = schema.DecParams(old); err != nil || got.StorageGiBYearCost != 0 || got.StorageDeclinePPM != 0 || got.CompletionGraceSec != p.CompletionGraceSec {
		t.Fatalf("state written before the Vault: %+v %v", got, err)
	}
	if _, err := got.Endowment(1 << 30); err == nil || !strings.Contains(err.Error(), "store for a term") {
		t.Fatalf("a permanent deal on a chain without storage params: %v", err)
	}
	for _, bad := range []api.Params{
		func() api.Params { q := api.DefaultParams(); q.StorageDeclinePPM = 0; return q }(),
		func() api.Params { q := api.DefaultParams(); q.StorageGiBYearCost = 0; return q }(),
		func() api.Params { q := api.DefaultParams(); q.StorageDeclinePPM = tx.PPM; return q }(),
	} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "storage_") {
			t.Errorf("%d/%d accepted: %v", bad.StorageGiBYearCost, bad.StorageDeclinePPM, err)
		}
	}
	// The default endowment: 0.06 SPR a GiB-year at 0.5% a year is 12 SPR a stored GiB.
	if e, err := api.DefaultParams().Endowment(1 << 30); err != nil || e != 12*api.USPR {
		t.Fatalf("endowment of a GiB: %d %v", e, err)
	}
}
