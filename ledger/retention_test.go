package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"pgregory.net/rapid"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
)

// historyPrefixes are the keys of orders and what is made for them: what retention prunes.
var historyPrefixes = []string{schema.POrder, schema.POrderByTenant, schema.POrderOpen, schema.POrderAuction, schema.POrderExpiry, schema.PBid, schema.PBidByOrder,
	schema.PBidOpen, schema.PBidOfProvider, schema.PBidByProvider, schema.PLease, schema.PLeaseByTenant, schema.PLeaseByProv, schema.PLeaseDepletion, schema.PLeaseStartDL,
	schema.PReceipt, schema.PVerify, schema.PCluster, schema.PCommit, schema.PRevealDL, schema.PRetireMark, schema.PRetireDue}

// historyKeys counts the keys under each history prefix of the committed state (empty prefixes left out).
func historyKeys(kv store.KV) map[string]int {
	out := map[string]int{}
	for _, p := range historyPrefixes {
		kv.Iterate(p, schema.PrefixEnd(p), func(string, []byte) bool {
			out[p]++
			return true
		})
	}
	return out
}

// queryErr runs a query that must fail and returns its log.
func (c *chain) queryErr(path string, req any) string {
	c.t.Helper()
	data, _ := json.Marshal(req)
	res, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: path, Data: data})
	if err != nil || res.Code == 0 {
		c.t.Fatalf("query %s %s: %v, code %d: want an error", path, data, err, res.Code)
	}
	return res.Log
}

// TestRetentionPrunesFinishedOrders: an expired order, a cancelled one and a leased one whose lease completed
// (three bids, one withdrawn, a receipt) stay queryable for retention_blocks after they finish, then leave the
// state with every key made for them; a query or transaction naming them says they were pruned and where their
// history is. An order whose lease still runs is kept, and so is everything not made for an order. The supply
// invariant (checked after every block by the harness) holds throughout.
func TestRetentionPrunesFinishedOrders(t *testing.T) {
	p := testParams()
	p.RetentionBlocks = api.MinRetentionBlocks
	p.BidWindowBlocks, p.OrderTTLBlocks = 10, 20
	c := newChain(t, p, map[string]uint64{"tenant": 1000 * api.USPR, "p1": 1000 * api.USPR, "p2": 1000 * api.USPR, "p3": 1000 * api.USPR})
	for _, name := range []string{"p1", "p2", "p3"} {
		c.registerBonded(name)
	}
	view := func() store.KV { kv, _ := c.app.store.View(); return kv }
	before := historyKeys(view())
	if len(before) != 0 {
		t.Fatalf("history before any order: %v", before)
	}
	c.block(time.Second,
		c.sign("tenant", gpuOrder(testRunPrice, api.USPR, 3600)), // 1: expires unbid
		c.sign("tenant", gpuOrder(testRunPrice, api.USPR, 3600)), // 2: cancelled
		c.sign("tenant", gpuOrder(testRunPrice, api.USPR, 3600)), // 3: leased and completed
		c.sign("tenant", gpuOrder(testRunPrice, api.USPR, 3600))) // 4: leased, still running
	c.do("tenant", &tx.CancelOrder{ID: 2})
	ends := map[uint64]int64{2: c.height} // the block each order finished in
	c.block(time.Second,
		c.sign("p1", &tx.PlaceBid{OrderID: 3, Price: testRunPrice - 1}),
		c.sign("p2", &tx.PlaceBid{OrderID: 3, Price: testRunPrice - 2}),
		c.sign("p3", &tx.PlaceBid{OrderID: 3, Price: testRunPrice - 3}),
		c.sign("p1", &tx.PlaceBid{OrderID: 4, Price: testRunPrice}))
	c.do("p3", &tx.WithdrawBid{ID: 3})
	for c.order(3).State == api.OrderOpen || c.order(4).State == api.OrderOpen {
		c.block(time.Second)
	}
	done, running := c.order(3).LeaseID, c.order(4).LeaseID
	c.do(c.name(c.lease(done).Provider), &tx.LeaseStarted{ID: done})
	c.do("p1", &tx.LeaseStarted{ID: running})
	c.now = c.now.Add(10 * time.Minute)
	c.completeWith(c.name(c.lease(done).Provider), done, "out", 0)
	ends[3] = c.height
	for c.order(1).State == api.OrderOpen {
		c.block(time.Second)
	}
	ends[1] = c.height
	prunedAt := map[uint64]int64{}
	for c.height < ends[1]+int64(p.RetentionBlocks)+1 {
		for _, e := range c.block(time.Second).Events {
			if e.Type == "order.pruned" {
				var id uint64
				fmt.Sscan(e.Attributes[0].Value, &id)
				prunedAt[id] = c.height
			}
		}
		if c.height == ends[3]+int64(p.RetentionBlocks)-1 { // the last block of order 3's window: all still there
			c.order(3)
			c.lease(done)
			var rc tx.Receipt
			c.query(api.QueryReceipt, api.IDRequest{ID: done}, &rc)
		}
	}
	for id, end := range ends {
		if prunedAt[id] != end+int64(p.RetentionBlocks) {
			t.Errorf("order %d finished at %d, pruned at %d: want %d blocks later", id, end, prunedAt[id], p.RetentionBlocks)
		}
	}
	if len(prunedAt) != 3 {
		t.Fatalf("pruned: %v, want orders 1-3", prunedAt)
	}
	for _, q := range []struct {
		path string
		id   uint64
		want string
	}{
		{api.QueryOrder, 1, "GET /api/orders/1"},
		{api.QueryOrder, 2, "GET /api/orders/2"},
		{api.QueryOrder, 3, "GET /api/orders/3"},
		{api.QueryBid, 2, "its order's bids"},
		{api.QueryLease, done, fmt.Sprintf("GET /api/leases/%d", done)},
		{api.QueryReceipt, done, fmt.Sprintf("GET /api/leases/%d", done)},
	} {
		if log := c.queryErr(q.path, api.IDRequest{ID: q.id}); !strings.Contains(log, "was pruned from the ledger's state") {
			t.Errorf("%s %d: %s", q.path, q.id, log)
		} else if !strings.Contains(log, q.want) {
			t.Errorf("%s %d: %s, want it to name %s", q.path, q.id, log, q.want)
		}
	}
	if log := c.queryErr(api.QueryOrder, api.IDRequest{ID: 99}); !strings.Contains(log, "order 99 not found") {
		t.Errorf("an order never made: %s", log)
	}
	c.fail(tx.CodeNotFound, "tenant", &tx.CloseLease{ID: done})
	// Order 4 and its lease are untouched; nothing of orders 1-3 is left.
	c.order(4)
	if l := c.lease(running); l.State != api.LeaseActive {
		t.Fatalf("the running lease: %+v", l.Lease)
	}
	left := historyKeys(view())
	want := map[string]int{schema.POrder: 1, schema.POrderByTenant: 1, schema.PBid: 1, schema.PBidByOrder: 1, schema.PBidByProvider: 1, schema.PLease: 1,
		schema.PLeaseByTenant: 1, schema.PLeaseByProv: 1, schema.PLeaseDepletion: 1}
	if fmt.Sprint(left) != fmt.Sprint(want) {
		t.Fatalf("history keys left: %v, want order 4's only: %v", left, want)
	}
	if pr := kernel.LoadPruned(view()); pr.Orders != 3 || pr.Take == 0 {
		t.Fatalf("pruned totals: %+v", pr)
	}
}

// TestRetentionBoundsState: after random adversarial sequences (all the message kinds, maximum-size fields,
// Sybils, replicated and cluster orders, failed reveals; see TestAdversarialSequences), every open order is
// cancelled and time runs until nothing is live; one retention window later the state holds no order, bid,
// lease, receipt, verification, cluster or index key at all — whatever the sequence did — and the supply
// invariant held on every block. An order that could never finish would stay forever, and fails the test.
func TestRetentionBoundsState(t *testing.T) {
	fx := advFixtures(t)
	rapid.Check(t, func(rt *rapid.T) {
		s := rapidSource{rt}
		f := fx[s.intn(len(fx), "fixture")]
		r := newAdvRun(rt, s, f, rapidTB{TB: t, rt: rt}, false)
		for range rapid.IntRange(1, 8).Draw(rt, "blocks") {
			r.step()
		}
		r.drain()
	})
}

// drain cancels every open order, block after block (referee runs and cluster restarts open new ones), and lets
// time run until no order is open and no lease runs; it checks that every order is then finished, lets a
// retention window pass and checks that no history is left.
func (r *advRun) drain() {
	r.rep.Helper()
	c := r.c
	kv := func() store.KV { kv, _ := c.app.store.View(); return kv }
	live := func() (open []*api.Order, running int) {
		v := kv()
		v.Iterate(schema.POrderOpen, schema.PrefixEnd(schema.POrderOpen), func(k string, _ []byte) bool {
			o, err := schema.DecOrder(mustGet(v, schema.IDKey(schema.POrder, schema.UnBE64(k[len(schema.POrderOpen):]))))
			if err != nil {
				r.fail("order: %v", err)
			}
			open = append(open, o)
			return true
		})
		v.Iterate(schema.PRevealDL, schema.PrefixEnd(schema.PRevealDL), func(string, []byte) bool {
			running++ // a reveal phase still open
			return true
		})
		v.Iterate(schema.PLease, schema.PrefixEnd(schema.PLease), func(_ string, b []byte) bool {
			if l := kernel.MustDecode(schema.DecLease(b)); l.State == api.LeasePending || l.State == api.LeaseActive {
				running++
			}
			return true
		})
		return open, running
	}
	limit := int64(200) // blocks of draining; an order whose tenant cannot pay a cancellation's fee expires instead
	for i := int64(0); ; i++ {
		open, running := live()
		if len(open) == 0 && running == 0 {
			break
		}
		for _, o := range open {
			limit = max(limit, o.ExpiresHeight-c.height+i+10)
		}
		if i == limit {
			r.fail("still %d open orders and %d running leases or reveal phases after %d blocks of draining", len(open), running, limit)
		}
		var txs [][]byte
		nonces := map[tx.Address]uint64{}
		for _, o := range open {
			name := r.name(o.Tenant)
			if name == "" {
				continue // expires instead
			}
			if _, ok := nonces[o.Tenant]; !ok {
				var acc api.Account
				r.query(api.QueryAccount, api.AddressRequest{Address: o.Tenant}, &acc, false)
				nonces[o.Tenant] = acc.Nonce
			}
			body := tx.Body{ChainID: testChain, Nonce: nonces[o.Tenant], GasLimit: advGas, Msgs: []tx.Msg{&tx.CancelOrder{ID: o.ID}}}
			body.Fee = api.FeeFor(&r.params, body.GasLimit, r.params.MinGasPrice)
			nonces[o.Tenant]++
			txs = append(txs, tx.Sign(body, c.keys[name].priv))
		}
		c.block(24*time.Hour, txs...) // durations and deposits run out; results not revealed are forfeited
	}
	v := kv()
	v.Iterate(schema.POrder, schema.PrefixEnd(schema.POrder), func(_ string, b []byte) bool {
		o := kernel.MustDecode(schema.DecOrder(b))
		x := &ctx{KV: v, Params: &r.params, Height: c.height, Hooks: testMods.hooks}
		if !testMods.Retention.Finished(x, o) {
			vf, _ := x.GroupOf(o)
			cl, _ := x.Cluster(o.ID)
			r.fail("order %d never finishes: %+v; verification %+v; cluster %+v", o.ID, o, vf, cl)
		}
		if _, ok := v.Get(schema.IDKey(schema.PRetireMark, o.ID)); !ok {
			r.fail("order %d is finished and not scheduled for pruning", o.ID)
		}
		return true
	})
	var last uint64
	if b, ok := v.Get(schema.KeySeq + "order"); ok {
		last = schema.UnBE64(string(b))
	}
	for range r.params.RetentionBlocks + 1 {
		c.block(time.Second)
	}
	if left := historyKeys(kv()); len(left) != 0 {
		r.fail("history left a retention window after everything finished: %v", left)
	}
	if last > 0 {
		if log := c.queryErr(api.QueryOrder, api.IDRequest{ID: last}); !strings.Contains(log, "was pruned") {
			r.fail("the last order: %s", log)
		}
	}
}

func mustGet(kv store.KV, key string) []byte {
	b, ok := kv.Get(key)
	if !ok {
		panic("missing " + key)
	}
	return b
}
