package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// BenchmarkWorstBlock: an attacker's dearest block at the block gas limit (DefaultBlockMaxGas). For each kind of
// transaction, a block holds as many as the limit lets in, each with the tightest gas limit (what it uses), from
// signers the node has never seen (a proposer's own transactions: no signature in the cache), and is timed
// through ProcessProposal, FinalizeBlock and Commit — what a validator does with a block. One kind also has a
// backlog of end-of-block work due behind it (each sweep then gets its floor share: see endBlock). The kind with the
// highest ms/block is the worst block; BENCHMARKS.md reports it against the 100 ms block time.
//
//	go test -run '^$' -bench WorstBlock -benchtime 3x ./ledger
func BenchmarkWorstBlock(b *testing.B) {
	maxRegion := strings.Repeat("r", tx.MaxNameLen)
	bigOrder := func() *tx.CreateOrder {
		o := gpuOrder(testRunPrice, 1000, 3600)
		for i := 0; i < tx.MaxListLen; i++ {
			o.Constraints.Regions = append(o.Constraints.Regions, fmt.Sprintf("%s%02d", maxRegion[:tx.MaxNameLen-2], i))
			o.Constraints.Deny = append(o.Constraints.Deny, newKey(fmt.Sprint("deny", i)).addr)
		}
		o.Resources.GPUModels = nil
		for i := 0; i < tx.MaxListLen; i++ {
			o.Resources.GPUModels = append(o.Resources.GPUModels, fmt.Sprintf("%s%02d", strings.Repeat("M", tx.MaxNameLen-2), i))
		}
		o.Resources.GPUModels[0] = "H100"
		return o
	}
	const orders, bidders = 400, 24
	kinds := []struct {
		name string
		// setup prepares the state; gen returns the i-th transaction of the block.
		setup func(c *chain)
		gen   func(c *chain, i int) []byte
	}{
		{"send", nil, func(c *chain, i int) []byte {
			return c.sign(fmt.Sprint("s", i%200), &tx.Send{To: c.addr("tenant"), Amount: 1})
		}},
		{"send x64 msgs", nil, func(c *chain, i int) []byte {
			msgs := make([]tx.Msg, tx.MaxMsgsPerTx)
			for k := range msgs {
				msgs[k] = &tx.Send{To: newKey(fmt.Sprint("to", i, k)).addr, Amount: 1}
			}
			return c.sign(fmt.Sprint("s", i%200), msgs...)
		}},
		{"create_order, every list at its maximum", nil, func(c *chain, i int) []byte {
			return c.sign(fmt.Sprint("s", i%200), bigOrder())
		}},
		{"place_bid on a full order (displaces its dearest)", func(c *chain) { fullOrders(b, c, orders, bidders-4) },
			func(c *chain, i int) []byte {
				// providers 21..24 each undercut on every order, in turn
				return c.sign(fmt.Sprint("p", bidders-3+i%4), &tx.PlaceBid{OrderID: uint64(i/4%orders + 1), Price: testRunPrice - 100 - uint64(i)})
			}},
		{"cancel_order with a full bid list", func(c *chain) { fullOrders(b, c, orders*4, bidders-4) },
			func(c *chain, i int) []byte { return c.sign("tenant", &tx.CancelOrder{ID: uint64(i + 1)}) }},
		{"send, with 20,000 orders' auctions and expiries due behind it", func(c *chain) { backlog(b, c, 20_000) },
			func(c *chain, i int) []byte {
				return c.sign(fmt.Sprint("s", i%200), &tx.Send{To: c.addr("tenant"), Amount: 1})
			}},
		{"place_bid on cluster orders past their window (each bid searches 17 bidders for 12 members)", func(c *chain) { clusterOrders(b, c, 800) },
			func(c *chain, i int) []byte {
				// p17 bids on each order in turn: every search is the same, on the same 17 bidders
				return c.sign("p17", &tx.PlaceBid{OrderID: uint64(i + 1), Price: testRunPrice - 100})
			}},
		{"withdraw_bid", func(c *chain) { fullOrders(b, c, orders, bidders-4) },
			func(c *chain, i int) []byte {
				// bid ids run order by order, provider by provider (fullOrders)
				return c.sign(fmt.Sprint("p", i%(bidders-4)+1), &tx.WithdrawBid{ID: uint64(i + 1)})
			}},
		// Spare Vault: anyone may store an object, and its shards' providers are drawn at the end of the next
		// block — work a block of store_object puts on the block after it, on top of that block's own.
		{"store_object, 10+20 shards, 200 storage offers", func(c *chain) { storageOffers(c, vaultOffers) },
			func(c *chain, i int) []byte { return c.sign("tenant", vaultStore(c, i)) }},
		{"send, with a full block of store_object draws due behind it (200 offers)", func(c *chain) {
			storageOffers(c, vaultOffers)
			stores := c.fullBlock(func(i int) []byte { return c.sign("tenant", vaultStore(c, 1_000_000+i)) })
			res := c.block(time.Second, stores...)
			for i, r := range res.TxResults {
				if r.Code != 0 {
					b.Fatalf("store_object %d of %d: %s", i, len(stores), r.Log)
				}
			}
			vaultStored = len(stores)
		}, func(c *chain, i int) []byte {
			return c.sign(fmt.Sprint("s", i%200), &tx.Send{To: c.addr("tenant"), Amount: 1})
		}},
	}
	// What a kind's timed block must have done.
	checks := map[string]func(b *testing.B, c *chain, fb *abci.ResponseFinalizeBlock){
		"send, with a full block of store_object draws due behind it (200 offers)": func(b *testing.B, c *chain, fb *abci.ResponseFinalizeBlock) {
			placed := 0
			for _, e := range fb.Events {
				if e.Type == api.EventVaultPlaced {
					placed++
				}
			}
			// the draws are a sweep: each block draws its share of the due ones (SweepDue), the rest wait
			if placed == 0 || placed > vaultStored {
				b.Fatalf("%d objects placed in the timed block, %d stored in the one before", placed, vaultStored)
			}
			b.ReportMetric(float64(placed*30), "shards-drawn")
		},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				b.StopTimer()
				funded := map[string]uint64{"tenant": 1 << 60}
				for i := 0; i < 200; i++ {
					funded[fmt.Sprint("s", i)] = 1 << 50
				}
				for i := 1; i <= bidders; i++ {
					funded[fmt.Sprint("p", i)] = 1 << 50
				}
				p := testParams()
				p.BidWindowBlocks, p.MaxBidWindowBlocks = 500, 1000
				c := newChain(b, p, funded)
				c.app.opts.CheckInvariants = false
				c.block(time.Second) // commit genesis
				c.plant(keyMaxGas, []byte(schema.BE64(api.DefaultBlockMaxGas)))
				var regs [][]byte
				for i := 1; i <= bidders; i++ {
					name := fmt.Sprint("p", i)
					regs = append(regs, c.sign(name, &tx.RegisterProvider{ProviderInfo: providerInfo(name)}, &tx.Bond{Amount: p.RequiredStake(8)}))
				}
				c.block(time.Second, regs...)
				if k.setup != nil {
					k.setup(c)
				}
				txs := c.fullBlock(func(i int) []byte { return k.gen(c, i) })
				c.height++
				c.now = c.now.Add(time.Second)
				runtime.GC() // the setup's garbage is not the block's
				b.StartTimer()
				start := time.Now()
				pp, err := c.app.ProcessProposal(context.Background(), &abci.RequestProcessProposal{Txs: txs, Height: c.height})
				if err != nil || pp.Status != abci.ResponseProcessProposal_ACCEPT {
					b.Fatalf("proposal: %v %v", err, pp)
				}
				tPP := time.Since(start)
				fb, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: c.height, Time: c.now, Txs: txs, ProposerAddress: c.proposer.addr[:]})
				if err != nil {
					b.Fatal(err)
				}
				tFB := time.Since(start)
				if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(start)
				b.ReportMetric(float64(tPP.Microseconds())/1000, "ms-proposal")
				b.ReportMetric(float64((tFB-tPP).Microseconds())/1000, "ms-finalize")
				b.StopTimer()
				var used uint64
				for i, r := range fb.TxResults {
					if r.Code != 0 {
						b.Fatalf("tx %d of %d: %s", i, len(txs), r.Log)
					}
					used += uint64(r.GasUsed)
				}
				if check := checks[k.name]; check != nil {
					check(b, c, fb)
				}
				b.ReportMetric(float64(elapsed.Microseconds())/1000, "ms/block")
				b.ReportMetric(float64(len(txs)), "txs/block")
				b.ReportMetric(float64(used)/float64(elapsed.Nanoseconds()), "gas/ns")
			}
		})
	}
}

// fullBlock is as many transactions of gen as a block holds: each with the gas limit the first one uses
// (simulated) and the fee it needs, up to the block gas limit and 4 MiB.
func (c *chain) fullBlock(gen func(i int) []byte) [][]byte {
	probe := c.withGas(gen(0), api.DefaultBlockMaxGas)
	pt, _ := tx.Decode(probe)
	c.nonces[pt.Signer()]-- // only simulated: the nonce is used again
	var sim api.Simulation
	res, _ := c.app.Query(context.Background(), &abci.RequestQuery{Path: api.QuerySimulate, Data: probe})
	if err := json.Unmarshal(res.Value, &sim); err != nil || sim.Code != 0 {
		c.t.Fatalf("simulating: %v %+v", err, sim)
	}
	gas := sim.GasUsed * 11 / 10
	var txs [][]byte
	var total, bytes uint64
	for i := 0; ; i++ {
		raw := c.withGas(gen(i), gas)
		if total+gas > api.DefaultBlockMaxGas || bytes+uint64(len(raw)) > 4<<20 {
			t, _ := tx.Decode(raw)
			c.nonces[t.Signer()]-- // not sent
			break
		}
		total += gas
		bytes += uint64(len(raw))
		txs = append(txs, raw)
	}
	return txs
}

// vaultOffers is how many storage offers the Vault's worst blocks draw among; vaultStored how many objects the
// block before the timed one stored.
const vaultOffers = 200

var vaultStored int

// storageOffers has s0..s(n-1) register as storage providers, bond the least stake and offer 1 PiB each at
// 1,000 uspr a GiB-month, in three blocks.
func storageOffers(c *chain, n int) {
	var ps []storageProvider
	for i := range n {
		ps = append(ps, storageProvider{name: fmt.Sprint("s", i), region: fmt.Sprint("r", i%8), capacity: 1 << 50, price: 1_000})
	}
	c.addStorage(ps...)
}

// vaultStore is a 12-month StoreObject of one stripe of 10+20 shards of 1 MiB, its roots made up from i.
func vaultStore(c *chain, i int) *tx.StoreObject {
	_, m := vaultManifest(c.t, fmt.Sprint("worst/", i), 10<<20, 10, 20, 1<<20)
	return &tx.StoreObject{Manifest: m, Months: 12, MaxPricePerGiBMonth: 5_000}
}

// withGas signs raw's body again with another gas limit and the fee it needs.
func (c *chain) withGas(raw []byte, gas uint64) []byte {
	t, err := tx.Decode(raw)
	if err != nil {
		c.t.Fatal(err)
	}
	p := c.app.params()
	t.Body.GasLimit, t.Body.Fee = gas, api.FeeFor(p, gas, p.MinGasPrice)
	return tx.Sign(t.Body, c.keys[c.name(t.Signer())].priv)
}

// fullOrders opens n orders of the tenant and has providers p1..pk bid on each, directly through the handlers.
func fullOrders(b *testing.B, c *chain, n, k int) {
	c.app.mu.Lock()
	c.app.working = c.app.store.Begin()
	x := &ctx{KV: c.app.working, ChainID: testChain, Height: c.height + 1, TimeMs: uint64(c.now.UnixMilli()), Params: kernel.LoadParams(c.app.working), Hooks: testMods.hooks}
	for i := 0; i < n; i++ {
		if err := testMods.Market.CreateOrder(x, c.addr("tenant"), gpuOrder(testRunPrice, 1000, 3600)); err != nil {
			b.Fatal(err)
		}
		for j := 1; j <= k; j++ {
			if err := testMods.Market.PlaceBid(x, c.addr(fmt.Sprint("p", j)), &tx.PlaceBid{OrderID: uint64(i + 1), Price: testRunPrice - uint64(j)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	c.app.mu.Unlock()
	c.block(time.Second)
}

// backlog opens n orders of the tenant, every other one with a bid of p1, directly through the handlers, whose
// auctions fall due in the block after next and expiries in the one after that; it commits the next block, in
// which part of the auctions close, so that the block the benchmark times has the rest of them due and every
// expiry.
func backlog(b *testing.B, c *chain, n int) {
	c.app.mu.Lock()
	c.app.working = c.app.store.Begin()
	x := &ctx{KV: c.app.working, ChainID: testChain, Height: c.height + 1, TimeMs: uint64(c.now.UnixMilli()), Params: kernel.LoadParams(c.app.working), Hooks: testMods.hooks}
	var first uint64 = 1
	if v, ok := x.KV.Get(schema.KeySeq + "order"); ok {
		first = schema.UnBE64(string(v)) + 1
	}
	for i := 0; i < n; i++ {
		o := gpuOrder(testRunPrice, 1000, 3600)
		o.BidWindow, o.TTL = 1, 2
		if err := testMods.Market.CreateOrder(x, c.addr("tenant"), o); err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			if err := testMods.Market.PlaceBid(x, c.addr("p1"), &tx.PlaceBid{OrderID: first + uint64(i), Price: testRunPrice}); err != nil {
				b.Fatal(err)
			}
		}
	}
	c.app.mu.Unlock()
	c.block(time.Second)
	due := 0
	for _, e := range c.block(time.Second).Events {
		if e.Type == "auction.closed" {
			due++
		}
	}
	if due == 0 || due == n {
		b.Fatalf("%d of %d auctions closed in the block before: want a backlog", due, n)
	}
}

// clusterOrders has providers p1..p17 publish round trips to each other (95 pairs in 100 within 1 ms, at random
// with the seed that made match's search the longest of 3,000 tried: 623 steps) and opens n cluster orders of 12
// members within 1 ms, each with bids of p1..p16, directly through the handlers; then it lets their auctions
// close. No 12 of the 17 fit, so each later bid runs a whole search.
func clusterOrders(b *testing.B, c *chain, n int) {
	c.app.mu.Lock()
	c.app.working = c.app.store.Begin()
	x := &ctx{KV: c.app.working, ChainID: testChain, Height: c.height + 1, TimeMs: uint64(c.now.UnixMilli()), Params: kernel.LoadParams(c.app.working), Hooks: testMods.hooks}
	const providers = 17
	rng := rand.New(rand.NewPCG(2263, 4))
	near := map[[2]int]bool{}
	for i := 0; i < providers; i++ {
		for j := i + 1; j < providers; j++ {
			near[[2]int{i, j}] = rng.IntN(100) < 95
		}
	}
	for i := 0; i < providers; i++ {
		var m tx.PublishLatency
		for j := 0; j < providers; j++ {
			if j == i {
				continue
			}
			rtt := uint32(50_000)
			if near[[2]int{min(i, j), max(i, j)}] {
				rtt = 500
			}
			m.Samples = append(m.Samples, tx.LatencySample{Peer: c.addr(fmt.Sprint("p", j+1)), RTTMicros: rtt})
		}
		if err := testMods.Clusters.PublishLatency(x, c.addr(fmt.Sprint("p", i+1)), &m); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		o := gpuOrder(testRunPrice, 1000, 3600)
		o.BidWindow = 1
		if err := testMods.Clusters.CreateClusterOrder(x, c.addr("tenant"), &tx.CreateClusterOrder{CreateOrder: *o, Nodes: 12, MaxRTTMicros: 1_000, OnFailure: tx.OnFailureClose}); err != nil {
			b.Fatal(err)
		}
		for j := 1; j < providers; j++ {
			if err := testMods.Market.PlaceBid(x, c.addr(fmt.Sprint("p", j)), &tx.PlaceBid{OrderID: uint64(i + 1), Price: testRunPrice - uint64(j)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	c.app.mu.Unlock()
	for due := true; due; { // the auctions close, a backlog at a time
		c.block(time.Second)
		kv, _ := c.app.store.View()
		_, due = (&ctx{KV: kv, Hooks: testMods.hooks}).FirstKey(schema.POrderAuction)
	}
	kv, _ := c.app.store.View()
	if o, err := (&ctx{KV: kv, Params: kernel.LoadParams(kv), Hooks: testMods.hooks}).Order(1); err != nil || o.State != api.OrderOpen {
		b.Fatalf("cluster order 1 after its auction: %+v %v", o, err)
	}
}
