package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// TestReplicasAreDrawn plays finding 3 of issue 12: a tenant whose Sybil provider bids 1 uspr/h used to win a
// replica slot on every replicated order (the auction took the cheapest bids) and to pick the referee with
// AcceptBid. Now the ledger draws the runs among the bids, by bonded stake: over 60 orders the Sybil, bidding
// the least, is in about half of the pairs drawn from four equal stakes (never all of them), a provider with
// three times the stake is drawn more often than one with the minimum, and nobody can AcceptBid on a referee
// order.
func TestReplicasAreDrawn(t *testing.T) {
	funded := map[string]uint64{"tenant": 100_000 * api.USPR, "sybil": 10_000 * api.USPR}
	for i := 1; i <= 3; i++ {
		funded[fmt.Sprintf("p%d", i)] = 10_000 * api.USPR
	}
	c := newChain(t, testParams(), funded)
	for _, n := range []string{"sybil", "p1", "p2", "p3"} {
		c.registerBonded(n)
	}
	c.do("p1", &tx.Bond{Amount: 2 * c.app.params().RequiredStake(8)}) // p1: three times the minimum
	const orders = 60
	in := map[string]int{}
	for o := 1; o <= orders; o++ {
		c.do("tenant", replicatedOrder(2, api.USPR))
		c.block(time.Second,
			c.sign("sybil", &tx.PlaceBid{OrderID: uint64(o), Price: 1}),
			c.sign("p1", &tx.PlaceBid{OrderID: uint64(o), Price: testRunPrice}),
			c.sign("p2", &tx.PlaceBid{OrderID: uint64(o), Price: testRunPrice}),
			c.sign("p3", &tx.PlaceBid{OrderID: uint64(o), Price: testRunPrice}))
		v := c.verification(uint64(o))
		if v.State != api.VerifyRunning || len(v.Runs) != 2 || v.Runs[0].Provider == v.Runs[1].Provider {
			t.Fatalf("order %d: %+v", o, v)
		}
		for _, r := range v.Runs {
			in[c.name(r.Provider)]++
		}
	}
	t.Logf("runs drawn per provider over %d orders of two: %v", orders, in)
	if in["sybil"] >= orders*3/4 || in["sybil"] == 0 {
		t.Fatalf("the cheapest bidder was drawn into %d of %d orders: price decides, not the draw", in["sybil"], orders)
	}
	if in["p1"] <= in["p2"] || in["p1"] <= in["p3"] {
		t.Fatalf("three times the stake, drawn no more often: %v", in)
	}
}

// TestRefereeIsDrawnNotAccepted: the tenant may not AcceptBid on a referee order, and a bid arriving after a
// drawn order's window does not win at once (being first after a window must not be a way to be picked): the
// order is drawn again one window later, among all the bids then.
func TestRefereeIsDrawnNotAccepted(t *testing.T) {
	c, v := replicatedRunning(t, 2, testParams())
	r1 := c.commitRun("p1", v.Runs[0].LeaseID, "A")
	r2 := c.commitRun("p2", v.Runs[1].LeaseID, "B")
	c.do("p1", r1)
	c.do("p2", r2)
	v = c.verification(1)
	if v.State != api.VerifyReferee || v.RefereeOrder == 0 {
		t.Fatalf("no referee ordered: %+v", v)
	}
	ref := c.order(v.RefereeOrder)
	for c.height <= ref.WindowEnd { // the window passes without a bid
		c.block(time.Second)
	}
	c.do("p3", &tx.PlaceBid{OrderID: ref.ID, Price: 1}) // the first after the window: not leased at once
	if o := c.order(ref.ID); o.State != api.OrderOpen || o.WindowEnd <= ref.WindowEnd {
		t.Fatalf("a late bid on a drawn order won at once: %+v", o)
	}
	var bid api.Bid
	c.query(api.QueryBid, api.IDRequest{ID: c.lastBidID()}, &bid)
	c.fail(tx.CodeReplicated, "tenant", &tx.AcceptBid{ID: bid.ID})
	for o := c.order(ref.ID); c.height < o.WindowEnd; {
		c.block(time.Second)
	}
	if o := c.order(ref.ID); o.State != api.OrderLeased {
		t.Fatalf("the referee order was not drawn at its next window: %+v", o)
	}
}

func (c *chain) lastBidID() uint64 {
	v, _ := c.app.store.View()
	b, _ := v.Get(schema.KeySeq + "bid")
	return schema.UnBE64(string(b))
}
