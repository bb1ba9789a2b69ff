package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// gasOf runs raw through CheckTx and returns the gas it used; it must pass. CheckTx runs against the same state a
// block would, and uses the transaction's nonce, so the caller commits raw afterwards (or rolls the nonce back).
func (c *chain) gasOf(raw []byte) uint64 {
	c.t.Helper()
	res, err := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
	if err != nil || res.Code != 0 {
		c.t.Fatalf("CheckTx: %v %d %s", err, res.Code, res.Log)
	}
	return uint64(res.GasUsed)
}

// simulate runs raw through the simulate query: nothing is kept, nonces included.
func (c *chain) simulate(raw []byte) api.Simulation {
	c.t.Helper()
	res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: api.QuerySimulate, Data: raw})
	if err != nil || res.Code != 0 {
		c.t.Fatalf("simulate: %v %+v", err, res)
	}
	var s api.Simulation
	if err := json.Unmarshal(res.Value, &s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

// manyProviders is a chain with a tenant and n bonded providers p1..pn.
func manyProviders(t *testing.T, n int, params api.Params) *chain {
	t.Helper()
	funded := map[string]uint64{"tenant": 100_000 * api.USPR, "bystander": 100_000 * api.USPR}
	for i := 1; i <= n; i++ {
		funded[fmt.Sprintf("p%d", i)] = 10_000 * api.USPR
	}
	c := newChain(t, params, funded)
	var regs, bonds [][]byte
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("p%d", i)
		regs = append(regs, c.sign(name, &tx.RegisterProvider{ProviderInfo: providerInfo(name)}))
	}
	c.block(time.Second, regs...)
	for i := 1; i <= n; i++ {
		bonds = append(bonds, c.sign(fmt.Sprintf("p%d", i), &tx.Bond{Amount: params.RequiredStake(8)}))
	}
	c.block(time.Second, bonds...)
	return c
}

// TestNoMessageCostGrowsWithUntouchedState: the gas of a bid, a withdrawal, an order, a cancellation and a send is
// the same on a young chain and after a storm of history — a thousand bids placed and withdrawn on the same
// order (finding 4: withdrawn bids stayed in the order's index, and every later bid decoded all of them), and
// hundreds of other orders with bids. Only the few bytes by which ids grow may differ.
func TestNoMessageCostGrowsWithUntouchedState(t *testing.T) {
	p := testParams()
	p.MaxBidWindowBlocks = 10_000
	p.BidWindowBlocks = 5_000
	p.OrderTTLBlocks, p.MaxOrderTTLBlocks = 10_000, 10_000
	c := manyProviders(t, 6, p)
	c.do("tenant", gpuOrder(testRunPrice, api.USPR, 3600))                            // order 1: the one every measurement bids on
	c.do("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}, &tx.WithdrawBid{ID: 1}) // the first bid ever creates the bid sequence
	bidSeq := uint64(1)
	measure := func() map[string]uint64 {
		out := map[string]uint64{}
		// Each measured transaction is committed right after, so the next one sees a consistent state.
		raw := c.sign("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
		out["place_bid"] = c.gasOf(raw)
		c.block(time.Second, raw)
		bidSeq++
		raw = c.sign("p1", &tx.WithdrawBid{ID: bidSeq})
		out["withdraw_bid"] = c.gasOf(raw)
		c.block(time.Second, raw)
		raw = c.sign("bystander", gpuOrder(testRunPrice, api.USPR, 3600))
		out["create_order"] = c.gasOf(raw)
		c.block(time.Second, raw)
		raw = c.sign("bystander", &tx.CancelOrder{ID: c.lastOrderID()})
		out["cancel_order"] = c.gasOf(raw)
		c.block(time.Second, raw)
		raw = c.sign("bystander", &tx.Send{To: c.addr("tenant"), Amount: 1})
		out["send"] = c.gasOf(raw)
		c.block(time.Second, raw)
		return out
	}
	young := measure()

	// The storm: every provider bids and withdraws on order 1, over and over, in blocks of many transactions; the
	// tenant opens other orders that collect bids.
	for round := 0; round < 25; round++ {
		var txs [][]byte
		for i := 2; i <= 6; i++ {
			bidSeq++
			txs = append(txs, c.sign(fmt.Sprintf("p%d", i), &tx.PlaceBid{OrderID: 1, Price: testRunPrice}, &tx.WithdrawBid{ID: bidSeq}))
		}
		for k := 0; k < 8; k++ {
			txs = append(txs, c.sign("tenant", gpuOrder(testRunPrice, 1000, 60)))
		}
		res := c.block(time.Second, txs...)
		for i, r := range res.TxResults {
			if r.Code != 0 {
				t.Fatalf("storm round %d tx %d: %d %s", round, i, r.Code, r.Log)
			}
		}
		first := c.lastOrderID() - 7
		txs = nil
		for k := uint64(0); k < 8; k++ {
			for i := 2; i <= 3; i++ {
				bidSeq++
				txs = append(txs, c.sign(fmt.Sprintf("p%d", i), &tx.PlaceBid{OrderID: first + k, Price: testRunPrice}))
			}
		}
		c.block(time.Second, txs...)
	}
	old := measure()
	for msg, g := range young {
		if o := old[msg]; o > g+g/50 || o+g/50 < g {
			t.Errorf("%s: %d gas on a young chain, %d after the storm: its cost depends on state it does not touch", msg, g, o)
		}
	}
	t.Logf("gas young %v, after the storm %v", young, old)
}

// lastOrderID is the id of the newest order.
func (c *chain) lastOrderID() uint64 {
	v, _ := c.app.store.View()
	b, ok := v.Get(schema.KeySeq + "order")
	if !ok {
		return 0
	}
	return schema.UnBE64(string(b))
}

// TestOrderBidsAreBounded: an order holds at most max_bids_per_order open bids. A full order refuses a bid that
// does not undercut its dearest (bids_full); a cheaper bid displaces the dearest, which is lost. Withdrawn bids
// free their slot. Filling an order's slots with dear bids cannot keep a cheaper provider out.
func TestOrderBidsAreBounded(t *testing.T) {
	p := testParams()
	p.MaxBidsPerOrder = 3
	p.BidWindowBlocks = 100
	c := manyProviders(t, 6, p)
	c.do("tenant", gpuOrder(testRunPrice, api.USPR, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	c.do("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 1})
	c.do("p3", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 2})
	c.fail(tx.CodeBidsFull, "p4", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	c.do("p4", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 3}) // displaces p1's bid 1, the dearest
	var b api.Bid
	c.query(api.QueryBid, api.IDRequest{ID: 1}, &b)
	if b.State != api.BidLost {
		t.Fatalf("the displaced bid: %+v", b)
	}
	c.do("p2", &tx.WithdrawBid{ID: 2})
	c.do("p5", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}) // a withdrawal freed a slot
	c.fail(tx.CodeDuplicateBid, "p5", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 5})
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 4}) // p1 may bid again: its old bid was lost
	var bids api.List[api.Bid]
	c.query(api.QueryBids, api.ListRequest{OrderID: 1, Limit: api.MaxPageLimit}, &bids)
	open := 0
	for _, b := range bids.Items {
		if b.State == api.BidOpen {
			open++
		}
	}
	if open != 3 {
		t.Fatalf("%d open bids, want 3: %+v", open, bids.Items)
	}
}

// TestBlockGasBoundsTheBlock: the block's gas limit bounds what its transactions actually use, whatever they
// declared: once it is used up, the rest of the block is not run and pays nothing. A proposed block whose
// transactions' bytes and signatures alone cost more is rejected before any signature is verified.
func TestBlockGasBoundsTheBlock(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"a": api.USPR, "b": api.USPR, "c": api.USPR})
	c.block(time.Second)
	send := func(from string) []byte { return c.sign(from, &tx.Send{To: newKey("x").addr, Amount: 1}) }
	probe := send("a")
	one := c.gasOf(probe)
	c.plant(keyMaxGas, []byte(schema.BE64(one*2+one/2))) // room for two and a half sends
	res := c.block(time.Second, probe, send("b"), send("c"))
	if res.TxResults[0].Code != 0 || res.TxResults[1].Code != 0 {
		t.Fatalf("the first two: %v %v", res.TxResults[0].Log, res.TxResults[1].Log)
	}
	if r := res.TxResults[2]; tx.Code(r.Code) != tx.CodeOutOfGas || !strings.Contains(r.Log, "block's gas is used up") {
		t.Fatalf("the third: %d %s", r.Code, r.Log)
	}
	if got := c.balance("c"); got != api.USPR {
		t.Fatalf("the transaction left out paid: balance %d", got)
	}
	var big [][]byte
	for i := 0; i < 3; i++ {
		big = append(big, make([]byte, 100)) // garbage: rejected on size before anything is decoded or verified
	}
	c.plant(keyMaxGas, []byte(schema.BE64(2*intrinsicGasOf(100))))
	c.block(time.Second)
	pp, err := c.app.ProcessProposal(context.Background(), &abci.RequestProcessProposal{Txs: big, Height: c.height + 1})
	if err != nil || pp.Status != abci.ResponseProcessProposal_REJECT {
		t.Fatalf("an oversized proposal: %v %v", err, pp.Status)
	}
}

// TestSimulateKeepsNothing: the simulate query measures a transaction as CheckTx would (the same gas), whatever
// its nonce or fee, and keeps nothing: the mempool's state and the committed one are as before. Garbage is a bad
// request, not a panic.
func TestSimulateKeepsNothing(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"a": api.USPR})
	c.block(time.Second)
	simulate := c.simulate
	raw := c.sign("a", &tx.Send{To: newKey("x").addr, Amount: 5})
	sim := simulate(raw)
	ahead := c.sign("a", &tx.Send{To: newKey("x").addr, Amount: 5}) // nonce 1 while the account expects 0
	if s := simulate(ahead); s.Code != 0 || s.GasUsed != sim.GasUsed {
		t.Fatalf("a simulation with a later nonce: %+v, want the gas of %+v", s, sim)
	}
	if got := c.balance("a"); got != api.USPR {
		t.Fatalf("a simulation moved the balance: %d", got)
	}
	if gas := c.gasOf(raw); gas != sim.GasUsed || sim.Code != 0 {
		t.Fatalf("CheckTx used %d gas, the simulation said %+v", gas, sim)
	}
	res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: api.QuerySimulate, Data: []byte{tx.Version, 0xff}})
	if err != nil || res.Code != api.QueryCodeBadRequest {
		t.Fatalf("simulating garbage: %v %+v", err, res)
	}
}

// TestEndOfBlockWorkIsBounded: a thousand orders made to fall due in the same block (their auctions, then their
// expiries) are handled over several blocks, each within its share of the block's gas, oldest first; an order
// past its expiry but not yet swept takes no bid; in the end every order expired with its deposit refunded.
// Before, every due entry of every sweep ran in the block it fell due in, however many there were.
func TestEndOfBlockWorkIsBounded(t *testing.T) {
	p := testParams()
	p.BidWindowBlocks, p.OrderTTLBlocks = 2, 3
	c := newChain(t, p, map[string]uint64{"tenant": 100_000 * api.USPR, "p1": 1000 * api.USPR})
	c.registerBonded("p1")
	const orders = 1024
	k := c.keys["tenant"]
	var txs [][]byte
	for i := 0; i < orders/tx.MaxMsgsPerTx; i++ {
		msgs := make([]tx.Msg, tx.MaxMsgsPerTx)
		for j := range msgs {
			msgs[j] = gpuOrder(testRunPrice, 1000, 3600)
		}
		const gas = 40_000_000
		txs = append(txs, tx.Sign(tx.Body{ChainID: testChain, Nonce: c.nonces[k.addr], Fee: api.FeeFor(c.app.params(), gas, p.MinGasPrice),
			GasLimit: gas, Msgs: msgs}, k.priv))
		c.nonces[k.addr]++
	}
	tenant0 := c.balance("tenant")
	res := c.block(time.Second, txs...)
	var fees uint64
	for i, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
		fees += api.FeeFor(c.app.params(), 40_000_000, p.MinGasPrice)
	}
	const first = 1 // the first order's id
	expiresAt := c.height + int64(p.OrderTTLBlocks)
	// A block gas limit of 20,000,000: each of the six sweeps gets 1/6 of the floor plus 1/6 of what is left.
	c.plant(keyMaxGas, []byte(schema.BE64(20_000_000)))
	count := func(r *abci.ResponseFinalizeBlock, typ string) (n int, ids []uint64) {
		for _, e := range r.Events {
			if e.Type != typ {
				continue
			}
			n++
			for _, a := range e.Attributes {
				if a.Key == "order_id" {
					var id uint64
					fmt.Sscan(a.Value, &id)
					ids = append(ids, id)
				}
			}
		}
		return n, ids
	}
	auctions, expired, blocks := 0, 0, 0
	var last uint64
	refused := false
	for expired < orders {
		if blocks++; blocks > 200 {
			t.Fatalf("after 200 blocks: %d auctions closed, %d orders expired", auctions, expired)
		}
		r := c.block(time.Second)
		a, _ := count(r, "auction.closed")
		e, ids := count(r, "order.expired")
		if a == orders || e == orders {
			t.Fatalf("block %d did all %d due auctions or expiries at once: the sweeps are not bounded", c.height, orders)
		}
		if c.height >= expiresAt && a+e == 0 {
			t.Fatalf("block %d: a backlog and no progress", c.height)
		}
		for _, id := range ids { // oldest first
			if id <= last {
				t.Fatalf("order %d expired after order %d", id, last)
			}
			last = id
		}
		auctions, expired = auctions+a, expired+e
		if c.height > expiresAt && expired < orders && !refused {
			open := first + uint64(expired) // the next to expire: still open, past its expiry
			if o := c.order(open); o.State != api.OrderOpen {
				t.Fatalf("order %d: %s", open, o.State)
			}
			raw := c.sign("p1", &tx.PlaceBid{OrderID: open, Price: testRunPrice})
			if code, log := c.check(raw); code != tx.CodeOrderNotOpen || !strings.Contains(log, "expired at the end of block") {
				t.Fatalf("bid on an expired order awaiting its sweep: %d %s", code, log)
			}
			c.nonces[c.addr("p1")]--
			refused = true
		}
	}
	if !refused || blocks < 4 {
		t.Fatalf("the backlog took %d blocks; refused a late bid: %v", blocks, refused)
	}
	if got, want := c.balance("tenant"), tenant0-fees; got != want {
		t.Fatalf("tenant %d after every refund, want %d", got, want)
	}
	t.Logf("%d auctions and %d expiries over %d blocks", auctions, expired, blocks)
}
