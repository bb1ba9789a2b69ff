package ledger

import (
	"bytes"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/providers"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// extendChain has a provider "p1" that accepts leases of up to 4 h in all, "p0" that accepts no extensions, and
// a tenant with a 2 SPR/h, 1 h lease on each: lease 1 on p1, lease 2 on p0 (both started).
func extendChain(t *testing.T) *chain {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr, "p0": 1000 * spr, "other": 100 * spr})
	info := providerInfo("p1")
	info.MaxLeaseSec = 4 * 3600
	c.do("p1", &tx.RegisterProvider{ProviderInfo: info})
	c.do("p1", &tx.Bond{Amount: c.app.params().RequiredStake(8)})
	c.registerBonded("p0")
	c.do("tenant", gpuOrder(2*spr, 2*spr, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	c.do("tenant", gpuOrder(2*spr, 2*spr, 3600))
	c.do("p0", &tx.PlaceBid{OrderID: 2, Price: 2 * spr})
	c.do("p0", &tx.LeaseStarted{ID: 2})
	return c
}

func eventAttrs(evs []abci.Event, typ string) map[string]string {
	for _, e := range evs {
		if e.Type == typ {
			m := map[string]string{}
			for _, a := range e.Attributes {
				m[a.Key] = a.Value
			}
			return m
		}
	}
	return nil
}

// TestExtendLease: the tenant lengthens a running lease in one message, which adds the deposit the new duration
// needs; the lease then runs to its new end, is paid for all of it, and closes there.
func TestExtendLease(t *testing.T) {
	const spr = api.USPR
	c := extendChain(t)
	started := time.UnixMilli(int64(c.lease(1).StartedMs))
	before := c.balance("tenant")
	res := c.do("tenant", &tx.ExtendLease{LeaseID: 1, AddSec: 3600})
	l := c.lease(1)
	if l.DurationSec != 7200 || l.Deposit != 4*spr || l.EndMs != uint64(started.Add(2*time.Hour).UnixMilli()) {
		t.Fatalf("extended lease: %+v", l)
	}
	fee := c.feeFor(&tx.ExtendLease{LeaseID: 1, AddSec: 3600})
	if got := before - c.balance("tenant"); got != 2*spr+fee {
		t.Fatalf("tenant paid %d, want %d + fee %d", got, 2*spr, fee)
	}
	ev := eventAttrs(res.Events, "lease.extended")
	if ev == nil || ev["lease_id"] != "1" || ev["duration_sec"] != "7200" || ev["added"] != "2000000" || ev["add_sec"] != "3600" {
		t.Fatalf("lease.extended: %v", ev)
	}
	c.now = started.Add(90 * time.Minute) // past the old end
	c.block(0)
	if l := c.lease(1); l.State != api.LeaseActive {
		t.Fatalf("closed at its old end: %+v", l)
	}
	c.now = started.Add(2*time.Hour - time.Second)
	c.block(0)
	if l := c.lease(1); l.State != api.LeaseActive {
		t.Fatalf("closed before its new end: %+v", l)
	}
	res2 := c.block(2*time.Second + time.Duration(c.app.params().CompletionGraceSec)*time.Second) // closed once its completion grace passed
	l = c.lease(1)
	if !hasEvent(res2.Events, "lease.closed") || l.State != api.LeaseClosed || l.CloseReason != "duration reached" ||
		l.Paid != 4*spr || l.Refunded != 0 || l.EndedMs != uint64(started.Add(2*time.Hour).UnixMilli()) {
		t.Fatalf("at the new end: %+v", l)
	}
}

// TestExtendLeaseCoversShortfall: a lease its deposit bound short of its duration is extended to run the whole
// new duration: the message adds the old shortfall too. A deposit above what is needed adds nothing.
func TestExtendLeaseCoversShortfall(t *testing.T) {
	const spr = api.USPR
	c := extendChain(t)
	c.do("tenant", gpuOrder(2*spr, spr, 3600)) // 1 SPR: 30 min of 1 h
	c.do("p1", &tx.PlaceBid{OrderID: 3, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 3})
	started := time.UnixMilli(int64(c.lease(3).StartedMs))
	c.do("tenant", &tx.ExtendLease{LeaseID: 3, AddSec: 1800})
	if l := c.lease(3); l.Deposit != 3*spr || l.EndMs != uint64(started.Add(90*time.Minute).UnixMilli()) {
		t.Fatalf("after extending a short deposit: %+v", l)
	}
	c.do("tenant", &tx.TopUp{LeaseID: 3, Amount: 10 * spr})
	res := c.do("tenant", &tx.ExtendLease{LeaseID: 3, AddSec: 60})
	if ev := eventAttrs(res.Events, "lease.extended"); ev["added"] != "0" {
		t.Fatalf("deposit already enough, added %v", ev)
	}
	// Odd prices round the deposit up: the lease must still last its whole duration.
	c.do("tenant", gpuOrder(7, 1, 3601))
	c.do("p1", &tx.PlaceBid{OrderID: 4, Price: 7})
	c.do("p1", &tx.LeaseStarted{ID: 4})
	c.do("tenant", &tx.ExtendLease{LeaseID: 4, AddSec: 7})
	if l := c.lease(4); l.EndMs != l.StartedMs+3608*1000 || l.Deposit != 8 { // ceil(7 × 3608 / 3600)
		t.Fatalf("odd price: %+v", l)
	}
}

// TestExtendPendingLease: a lease extended before it starts runs its new duration from its start.
func TestExtendPendingLease(t *testing.T) {
	const spr = api.USPR
	c := extendChain(t)
	c.do("tenant", gpuOrder(2*spr, 2*spr, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 3, Price: 2 * spr})
	res := c.do("tenant", &tx.ExtendLease{LeaseID: 3, AddSec: 1800})
	if ev := eventAttrs(res.Events, "lease.extended"); ev["end_ms"] != "0" || ev["duration_sec"] != "5400" {
		t.Fatalf("pending extension: %v", ev)
	}
	c.do("p1", &tx.LeaseStarted{ID: 3})
	if l := c.lease(3); l.EndMs != l.StartedMs+5400*1000 || l.Deposit != 3*spr {
		t.Fatalf("started after extension: %+v", l)
	}
}

func TestExtendLeaseRefused(t *testing.T) {
	const spr = api.USPR
	c := extendChain(t)
	ext := func(id, add uint64) *tx.ExtendLease { return &tx.ExtendLease{LeaseID: id, AddSec: add} }
	c.fail(tx.CodeUnauthorized, "other", ext(1, 60))
	c.fail(tx.CodeUnauthorized, "p1", ext(1, 60))
	c.fail(tx.CodeNotFound, "tenant", ext(99, 60))
	c.fail(tx.CodeInvalidMsg, "tenant", ext(1, 0))
	c.fail(tx.CodeInvalidMsg, "tenant", ext(1, tx.MaxDurationSec+1))
	c.fail(tx.CodeInvalidMsg, "tenant", ext(1, ^uint64(0)))
	c.fail(tx.CodeExtendRefused, "tenant", ext(1, tx.MaxDurationSec))
	// Past the provider's maximum: the log says both durations.
	raw := c.sign("tenant", ext(1, 4*3600))
	code, log := c.check(raw)
	c.nonces[c.addr("tenant")]--
	if code != tx.CodeExtendRefused || !strings.Contains(log, "accepts leases up to 4h; lease 1 would run 5h (1h + 4h); it can be extended by at most 3h") {
		t.Fatalf("over the max: %v %s", code, log)
	}
	// A provider that takes no extensions.
	raw = c.sign("tenant", ext(2, 60))
	code, log = c.check(raw)
	c.nonces[c.addr("tenant")]--
	if code != tx.CodeExtendRefused || !strings.Contains(log, "accepts no lease extensions") {
		t.Fatalf("no extensions: %v %s", code, log)
	}
	// Exactly the maximum is fine; a second of more is not.
	c.do("tenant", ext(1, 3*3600))
	c.fail(tx.CodeExtendRefused, "tenant", ext(1, 1))
	// Not enough balance for the deposit the new duration needs.
	c.do("p1", &tx.UpdateProvider{ProviderInfo: func() tx.ProviderInfo { i := providerInfo("p1"); i.MaxLeaseSec = tx.MaxDurationSec; return i }()})
	c.fail(tx.CodeInsufficientFunds, "tenant", ext(1, 1000*3600))
	// A closed lease.
	c.do("tenant", &tx.CloseLease{ID: 2})
	c.fail(tx.CodeBadLeaseState, "tenant", ext(2, 60))
	// A lease whose end has passed, extended in the block that would close it: what ended stays ended.
	l := c.lease(1)
	c.now = time.UnixMilli(int64(l.EndMs) - 1000)
	res := c.block(2*time.Second, c.sign("tenant", ext(1, 60)))
	if r := res.TxResults[0]; tx.Code(r.Code) != tx.CodeBadLeaseState {
		t.Fatalf("extending at the end: code %d %s", r.Code, r.Log)
	}
	if l := c.lease(1); l.State != api.LeaseActive || l.DurationSec != 4*3600 || l.CloseMs != l.EndMs+c.app.params().CompletionGraceSec*1000 {
		t.Fatalf("lease at its end (in its completion grace, not extended): %+v", l)
	}
}

// TestExtendLeaseOverflow: a price so high that the new duration's deposit does not fit 64 bits is refused (a
// pending lease: a started one at such a price would have ended at once).
func TestExtendLeaseOverflow(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr})
	info := providerInfo("p1")
	info.MaxLeaseSec = tx.MaxDurationSec
	c.do("p1", &tx.RegisterProvider{ProviderInfo: info})
	c.do("p1", &tx.Bond{Amount: c.app.params().RequiredStake(8)})
	price := uint64(1) << 62
	c.do("tenant", gpuOrder(price, spr, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: price}) // pending: its deposit, 1 SPR, buys no time at this price
	c.fail(tx.CodeOverflow, "tenant", &tx.ExtendLease{LeaseID: 1, AddSec: tx.MaxDurationSec - 3600})
	c.fail(tx.CodeInsufficientFunds, "tenant", &tx.ExtendLease{LeaseID: 1, AddSec: 1})
}

// TestExtendReplicatedRefused: a run of a replicated order ends with its group; it is not extended alone.
func TestExtendReplicatedRefused(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr, "p2": 1000 * spr})
	for _, p := range []string{"p1", "p2"} {
		info := providerInfo(p)
		info.MaxLeaseSec = 24 * 3600
		c.do(p, &tx.RegisterProvider{ProviderInfo: info})
		c.do(p, &tx.Bond{Amount: c.app.params().RequiredStake(8)})
	}
	c.do("tenant", &tx.CreateReplicatedOrder{CreateOrder: *gpuOrder(2*spr, spr, 3600), Replicas: 2})
	c.block(time.Second, c.sign("p1", &tx.PlaceBid{OrderID: 1, Price: spr}), c.sign("p2", &tx.PlaceBid{OrderID: 1, Price: spr}))
	c.block(time.Second)
	l := c.lease(1)
	if l.State != api.LeasePending {
		t.Fatalf("replica lease: %+v", l)
	}
	c.fail(tx.CodeReplicated, "tenant", &tx.ExtendLease{LeaseID: 1, AddSec: 60})
}

// TestProviderRecordWithoutMaxLease: a provider record written before extensions existed decodes, with none
// accepted; a declaration that changes only max_lease_sec keeps the provider's verification.
func TestProviderRecordWithoutMaxLease(t *testing.T) {
	p := &api.Provider{Info: providerInfo("p1"), Status: api.ProviderActive, PubKey: make([]byte, 32)}
	b := schema.EncProvider(p)
	if b[len(b)-1] != 0 {
		t.Fatalf("max_lease_sec 0 is not the last byte: %x", b[len(b)-4:])
	}
	old, err := schema.DecProvider(b[:len(b)-1])
	if err != nil || old.Info.MaxLeaseSec != 0 {
		t.Fatalf("old record: %v %+v", err, old)
	}
	p.Info.MaxLeaseSec = 3600
	back, err := schema.DecProvider(schema.EncProvider(p))
	if err != nil || back.Info.MaxLeaseSec != 3600 || !bytes.Equal(schema.EncProvider(back), schema.EncProvider(p)) {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	a, b2 := providerInfo("p1"), providerInfo("p1")
	b2.MaxLeaseSec = 7200
	if !providers.SameDeclaration(&a, &b2) {
		t.Fatal("max_lease_sec alone changes the declaration")
	}
	b2.Zone = "b"
	if providers.SameDeclaration(&a, &b2) {
		t.Fatal("a new zone is the same declaration")
	}
}
