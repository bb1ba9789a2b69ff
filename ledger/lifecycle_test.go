package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

func TestLeaseLifecycleExactAmounts(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 1000 * spr, "p1": 1000 * spr, "p2": 1000 * spr})
	fee := c.app.params().MinFee
	c.registerBonded("p1")
	c.registerBonded("p2")

	c.do("tenant", gpuOrder(3*spr, 6*spr, 7200))
	var o api.Order
	c.query(api.QueryOrder, api.IDRequest{ID: 1}, &o)
	if o.State != api.OrderOpen || o.WindowEnd != c.height+1 {
		t.Fatalf("order after create: %+v", o)
	}
	// Both bids land in the window's block; the auction closes at its end and the cheaper bid wins.
	res := c.block(time.Second, c.sign("p1", &tx.PlaceBid{OrderID: 1, Price: 2_500_000}), c.sign("p2", &tx.PlaceBid{OrderID: 1, Price: 2 * spr}))
	for _, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("bid: %s", r.Log)
		}
	}
	if !hasEvent(res.Events, "lease.created") {
		t.Fatalf("auction did not lease: %+v", res.Events)
	}
	c.query(api.QueryOrder, api.IDRequest{ID: 1}, &o)
	if o.State != api.OrderLeased || o.LeaseID != 1 {
		t.Fatalf("order after auction: %+v", o)
	}
	var b1, b2 api.Bid
	c.query(api.QueryBid, api.IDRequest{ID: 1}, &b1)
	c.query(api.QueryBid, api.IDRequest{ID: 2}, &b2)
	if b1.State != api.BidLost || b2.State != api.BidWon {
		t.Fatalf("bid states: %v %v", b1.State, b2.State)
	}
	l := c.lease(1)
	if l.State != api.LeasePending || l.Provider != c.addr("p2") || l.Price != 2*spr || l.Deposit != 6*spr {
		t.Fatalf("lease: %+v", l)
	}

	p2Before := c.balance("p2")
	c.do("p2", &tx.LeaseStarted{ID: 1})
	started := c.now
	// 30 minutes later the provider withdraws: 1 SPR earned, 2% take.
	c.now = started.Add(30*time.Minute - time.Second)
	c.do("p2", &tx.Withdraw{ID: 1})
	l = c.lease(1)
	if l.Paid != 1_000_000 || l.Take != 20_000 {
		t.Fatalf("after withdraw: paid %d take %d", l.Paid, l.Take)
	}
	if got, want := c.balance("p2"), p2Before-2*fee+980_000; got != want {
		t.Fatalf("p2 balance %d, want %d", got, want)
	}
	// Complete at 45 minutes with a signed receipt: 1.5 SPR earned in all, 4.5 SPR refunded.
	c.now = started.Add(45*time.Minute - time.Second)
	rc := tx.Receipt{ChainID: testChain, LeaseID: 1, ManifestHash: o.ManifestHash, StartMs: uint64(started.UnixMilli()),
		EndMs: uint64(c.now.UnixMilli()), GPUSeconds: 2700, OutputRoot: sha256.Sum256([]byte("out"))}
	rc.Signature = ed25519.Sign(c.keys["p2"].priv, rc.SignBytes())
	tenantBefore := c.balance("tenant")
	c.do("p2", &tx.CompleteLease{Receipt: rc})
	l = c.lease(1)
	if l.State != api.LeaseCompleted || l.Paid != 1_500_000 || l.Take != 30_000 || l.Refunded != 4_500_000 || l.Receipt == nil {
		t.Fatalf("completed lease: %+v", l)
	}
	if got := c.balance("tenant"); got != tenantBefore+4_500_000 {
		t.Fatalf("tenant refund: balance %d, want %d", got, tenantBefore+4_500_000)
	}
	if s := c.supply(); s.Pool != 30_000 || s.Escrow != 0 {
		t.Fatalf("supply: %+v", s)
	}
	var pv api.ProviderView
	c.query(api.QueryProvider, api.AddressRequest{Address: c.addr("p2")}, &pv)
	if pv.Completed != 1 {
		t.Fatalf("provider stats: %+v", pv)
	}
	// The batch query answers the same objects, in the order asked, and leaves out what does not exist.
	var objs api.Objects
	c.query(api.QueryObjects, api.ObjectsRequest{Providers: []tx.Address{c.addr("p2"), c.addr("tenant"), c.addr("p1")},
		Orders: []uint64{1, 9}, Bids: []uint64{2, 1}, Leases: []uint64{1, 2}}, &objs)
	if len(objs.Providers) != 2 || objs.Providers[0].Owner != c.addr("p2") || objs.Providers[0].Completed != 1 ||
		objs.Providers[1].Owner != c.addr("p1") || len(objs.Orders) != 1 || objs.Orders[0].State != api.OrderLeased ||
		len(objs.Bids) != 2 || objs.Bids[0].ID != 2 || objs.Bids[1].State != api.BidLost ||
		len(objs.Leases) != 1 || objs.Leases[0].Refunded != 4_500_000 || objs.Leases[0].Receipt == nil {
		t.Fatalf("objects: %+v", objs)
	}
	big := api.ObjectsRequest{Leases: make([]uint64, api.MaxPageLimit+1)}
	data, _ := json.Marshal(big)
	if res, _ := c.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryObjects, Data: data}); res.Code != api.QueryCodeBadRequest {
		t.Fatalf("oversized objects query: code %d %s", res.Code, res.Log)
	}
}

func TestEscrowRunsDry(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr})
	c.registerBonded("p1")
	// 1 SPR at 2 SPR/h lasts exactly 30 minutes of a 2 h lease.
	c.do("tenant", gpuOrder(2*spr, spr, 7200))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	started := c.now
	if l := c.lease(1); l.EndMs != uint64(started.Add(30*time.Minute).UnixMilli()) {
		t.Fatalf("end %d, want %d", l.EndMs, started.Add(30*time.Minute).UnixMilli())
	}
	c.block(29 * time.Minute)
	if l := c.lease(1); l.State != api.LeaseActive {
		t.Fatalf("closed too early: %+v", l)
	}
	res := c.block(2 * time.Minute)
	if !hasEvent(res.Events, "lease.closed") {
		t.Fatal("no lease.closed event at depletion")
	}
	l := c.lease(1)
	if l.State != api.LeaseClosed || l.Paid != spr || l.Refunded != 0 || l.CloseReason != "deposit exhausted" ||
		l.EndedMs != uint64(started.Add(30*time.Minute).UnixMilli()) {
		t.Fatalf("depleted lease: %+v", l)
	}
	if s := c.supply(); s.Escrow != 0 || s.Pool != 20_000 {
		t.Fatalf("supply: %+v", s)
	}
}

func TestTopUpMovesDepletion(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr})
	c.registerBonded("p1")
	c.do("tenant", gpuOrder(2*spr, spr, 7200))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	started := c.now
	c.do("tenant", &tx.TopUp{LeaseID: 1, Amount: spr})
	if l := c.lease(1); l.EndMs != uint64(started.Add(time.Hour).UnixMilli()) || l.Deposit != 2*spr {
		t.Fatalf("after top-up: %+v", l)
	}
	c.block(40 * time.Minute) // past the old end, before the new one
	if l := c.lease(1); l.State != api.LeaseActive {
		t.Fatalf("top-up ignored: %+v", l)
	}
	// The tenant closes at ~41 min: paid for 41 min 1 s (the close lands a block later), refunded the rest.
	c.now = started.Add(41 * time.Minute)
	c.do("tenant", &tx.CloseLease{ID: 1})
	l := c.lease(1)
	const want = 1_367_222 // 2 SPR an hour for 41 min 1 s (2,461,000 ms): 1,367,222.2 uspr, rounded down
	if l.State != api.LeaseClosed || l.Paid != want || l.Refunded != 2*spr-want {
		t.Fatalf("closed: paid %d refunded %d, want %d", l.Paid, l.Refunded, want)
	}
}

func TestAuctionTieBreaksAndLateBid(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "pa": 1000 * spr, "pb": 1000 * spr})
	c.registerBonded("pa")
	c.registerBonded("pb")
	// Equal prices and reputations: the lower address wins.
	c.do("tenant", gpuOrder(3*spr, spr, 3600))
	c.block(time.Second, c.sign("pa", &tx.PlaceBid{OrderID: 1, Price: spr}), c.sign("pb", &tx.PlaceBid{OrderID: 1, Price: spr}))
	lower := c.addr("pa")
	if b := c.addr("pb"); string(b[:]) < string(lower[:]) {
		lower = b
	}
	if l := c.lease(1); l.Provider != lower {
		t.Fatalf("tie went to %s, want %s", l.Provider, lower)
	}
	// No bid in the window: the order stays open and the first acceptable bid after it wins at once.
	c.do("tenant", gpuOrder(3*spr, spr, 3600))
	c.block(time.Second)
	var o api.Order
	c.query(api.QueryOrder, api.IDRequest{ID: 2}, &o)
	if o.State != api.OrderOpen {
		t.Fatalf("order 2: %+v", o)
	}
	c.do("pb", &tx.PlaceBid{OrderID: 2, Price: 2 * spr})
	c.query(api.QueryOrder, api.IDRequest{ID: 2}, &o)
	if o.State != api.OrderLeased {
		t.Fatalf("late bid did not lease: %+v", o)
	}
	// AcceptBid before the window closes picks a bid that is not the cheapest.
	window := uint64(5)
	ord := gpuOrder(3*spr, spr, 3600)
	ord.BidWindow = window
	c.do("tenant", ord)
	c.block(time.Second, c.sign("pa", &tx.PlaceBid{OrderID: 3, Price: 2 * spr}), c.sign("pb", &tx.PlaceBid{OrderID: 3, Price: spr}))
	var bids api.List[api.Bid]
	c.query(api.QueryBids, api.ListRequest{OrderID: 3}, &bids)
	var paBid uint64
	for _, b := range bids.Items {
		if b.Provider == c.addr("pa") {
			paBid = b.ID
		}
	}
	c.do("tenant", &tx.AcceptBid{ID: paBid})
	c.query(api.QueryOrder, api.IDRequest{ID: 3}, &o)
	if l := c.lease(o.LeaseID); l.Provider != c.addr("pa") || l.Price != 2*spr {
		t.Fatalf("accepted lease: %+v", l)
	}
}

func TestOrderExpiryAndStartTimeoutRefund(t *testing.T) {
	const spr = api.USPR
	p := testParams()
	p.OrderTTLBlocks = 3
	p.StartTimeoutBlocks = 2
	c := newChain(t, p, map[string]uint64{"tenant": 100 * spr, "p1": 1000 * spr})
	c.registerBonded("p1")
	before := c.balance("tenant")
	fee := p.MinFee
	c.do("tenant", gpuOrder(3*spr, 5*spr, 3600))
	for i := 0; i < 3; i++ {
		c.block(time.Second)
	}
	var o api.Order
	c.query(api.QueryOrder, api.IDRequest{ID: 1}, &o)
	if o.State != api.OrderExpired || c.balance("tenant") != before-fee {
		t.Fatalf("expired order %+v, balance %d want %d", o, c.balance("tenant"), before-fee)
	}
	c.do("tenant", gpuOrder(3*spr, 5*spr, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 2, Price: spr})
	c.do("tenant", c.deliveryAck("p1", 1)) // p1 acknowledged the manifest: not starting is its failure
	c.block(time.Second)
	l := c.lease(1)
	if l.State != api.LeaseClosed || l.Refunded != 5*spr || l.CloseReason != "not started in time" {
		t.Fatalf("unstarted lease: %+v", l)
	}
	var pv api.ProviderView
	c.query(api.QueryProvider, api.AddressRequest{Address: c.addr("p1")}, &pv)
	// The record weighs the failed lease by its deposit: (100 SPR) / (100 SPR + 5 SPR + 100 SPR).
	if pv.Failed != 1 || pv.FailedValue != 5*spr || pv.ReputationPPM != 487_804 {
		t.Fatalf("provider after failure: %+v", pv)
	}
}

func TestUnbondingMatures(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"p1": 1000 * spr})
	c.registerBonded("p1")
	need := c.app.params().RequiredStake(8)
	c.do("p1", &tx.Unbond{Amount: need})
	var pv api.ProviderView
	c.query(api.QueryProvider, api.AddressRequest{Address: c.addr("p1")}, &pv)
	if pv.Stake != 0 || pv.Unbonding != need {
		t.Fatalf("unbonding: %+v", pv)
	}
	bal := c.balance("p1")
	c.block(30 * time.Second)
	if c.balance("p1") != bal {
		t.Fatal("unbonded before the period ended")
	}
	c.block(31 * time.Second)
	if c.balance("p1") != bal+need {
		t.Fatalf("balance %d, want %d", c.balance("p1"), bal+need)
	}
}

func hasEvent(evs []abci.Event, typ string) bool {
	for _, e := range evs {
		if e.Type == typ {
			return true
		}
	}
	return false
}
