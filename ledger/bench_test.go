package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

// populate creates n active leases directly through the handlers (fast setup, same code paths as transactions),
// each from its own order, on provider p1, with deposits lasting far longer than the benchmark, except the
// first `ending` leases, which end one per millisecond-block starting at the next block's time.
func populate(b *testing.B, c *chain, n int) {
	c.app.mu.Lock()
	c.app.working = c.app.store.Begin()
	x := &ctx{KV: c.app.working, ChainID: testChain, Height: c.height + 1, TimeMs: uint64(c.now.UnixMilli()), Params: kernel.LoadParams(c.app.working), Hooks: testMods.hooks}
	tenant, prov := c.addr("tenant"), c.addr("p1")
	for i := 0; i < n; i++ {
		m := gpuOrder(3*api.USPR, 1000*api.USPR, 7*24*3600)
		if err := testMods.Market.CreateOrder(x, tenant, m); err != nil {
			b.Fatal(err)
		}
		id := uint64(i + 1)
		o, _ := x.Order(id)
		bd := &api.Bid{ID: x.NextID("bid"), OrderID: id, Provider: prov, Price: api.USPR, State: api.BidOpen, CreatedHeight: x.Height}
		x.SetBid(bd)
		if err := testMods.Leases.CreateLeases(x, o, []*api.Bid{bd}); err != nil {
			b.Fatal(err)
		}
		if err := testMods.Leases.LeaseStarted(x, prov, &tx.LeaseStarted{ID: id}); err != nil {
			b.Fatal(err)
		}
	}
	c.app.mu.Unlock()
	c.block(time.Second)
}

// BenchmarkFinalizeBlock measures one block of 200 transactions (sends, order creations, top-ups and provider
// withdrawals on running leases) with 1,000 vs 100,000 running leases in state. Lazy settlement and the
// depletion index mean the cost should not grow with the number of running leases.
func BenchmarkFinalizeBlock(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("leases=%d", n), func(b *testing.B) {
			c := newChain(b, testParams(), map[string]uint64{"tenant": 1 << 60, "p1": 1 << 50, "other": 1 << 50})
			c.app.opts.CheckInvariants = false
			c.registerBonded("p1")
			populate(b, c, n)
			const perBlock = 200
			blocks := make([][][]byte, b.N)
			for i := range blocks {
				for j := 0; j < perBlock; j++ {
					lease := uint64((i*perBlock+j)%n + 1)
					var raw []byte
					switch j % 4 {
					case 0:
						raw = c.sign("other", &tx.Send{To: c.addr("tenant"), Amount: 1})
					case 1:
						raw = c.sign("tenant", gpuOrder(3*api.USPR, api.USPR, 3600))
					case 2:
						raw = c.sign("tenant", &tx.TopUp{LeaseID: lease, Amount: 1})
					case 3:
						raw = c.sign("p1", &tx.Withdraw{ID: lease})
					}
					blocks[i] = append(blocks[i], raw)
				}
			}
			// Signatures as CheckTx would have seen them: the cache holds them, as on a live node.
			for _, blk := range blocks {
				for _, raw := range blk {
					if _, err := c.app.decodeVerified(raw); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.height++
				c.now = c.now.Add(time.Second)
				res, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{Height: c.height, Time: c.now, Txs: blocks[i], ProposerAddress: c.proposer.addr[:]})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				for k, r := range res.TxResults {
					if r.Code != 0 {
						b.Fatalf("tx %d: %s", k, r.Log)
					}
				}
				if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
