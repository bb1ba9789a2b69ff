package retention

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
)

// Finished reports whether nothing about an order can change any more: it is not open, each lease it made has
// ended holding no pay back, the verification its runs belong to (its own, or its parent's for a referee run)
// is judged with no reserve and no reveal phase open, and its cluster record, if any, is over with no reserve.
func (k *Keeper) Finished(c *kernel.Ctx, o *api.Order) bool {
	if o.State == api.OrderOpen {
		return false
	}
	if o.LeaseID != 0 {
		for i := range uint64(o.Leases()) {
			l, err := c.Lease(o.LeaseID + i)
			if err != nil || !l.Ended() {
				return false
			}
		}
	}
	if v, ok := c.GroupOf(o); ok {
		switch v.State {
		case api.VerifyAgreed, api.VerifyInconclusive, api.VerifyCancelled:
		default:
			return false
		}
		if v.Reserve != 0 || v.RevealOpen {
			return false
		}
	}
	if o.Nodes > 1 {
		if cl, ok := c.Cluster(o.ID); ok && (cl.State == api.ClusterLeasing || cl.State == api.ClusterRunning || cl.Reserve != 0) {
			return false
		}
	}
	return true
}

// Retire schedules an order's pruning once it is finished (see Finished); it is called whenever one of its
// objects is stored in a final state, so the last of them schedules it. Each order is scheduled once.
func (k *Keeper) Retire(c *kernel.Ctx, orderID uint64) {
	if c.Params.RetentionBlocks == 0 { // an archive chain: nothing is pruned
		return
	}
	if _, done := c.KV.Get(schema.IDKey(schema.PRetireMark, orderID)); done {
		return
	}
	o, err := c.Order(orderID)
	if err != nil || !k.Finished(c, o) {
		return
	}
	at := uint64(c.Height) + c.Params.RetentionBlocks
	c.KV.Set(schema.IDKey(schema.PRetireMark, orderID), []byte(schema.BE64(at)))
	c.KV.Set(schema.PairKey(schema.PRetireDue, at, orderID), nil)
	c.Emit(api.EventOrderFinished, api.AttrOrderID, orderID, api.AttrTenant, o.Tenant, api.AttrPruneHeight, at)
}

// PruneRetired removes the orders whose retention ended by this block, oldest first, within the sweep's share
// of the block's gas (see the app's endBlock). An order with many bids (every bid ever placed on it is kept for queries
// until then) may take several blocks: its bids go first, a batch at a time, and the order last.
func (k *Keeper) PruneRetired(c *kernel.Ctx) {
	type due struct {
		key string
		id  uint64
	}
	var list []due
	c.KV.Iterate(schema.PRetireDue, schema.PRetireDue+schema.BE64(uint64(c.Height)+1), func(k string, _ []byte) bool {
		list = append(list, due{k, schema.UnBE64(k[len(schema.PRetireDue)+8:])})
		return c.Due(len(list))
	})
	pr := kernel.LoadPruned(c.KV)
	defer func() { c.KV.Set(schema.KeyPruned, schema.EncPruned(pr)) }()
	for n, d := range list {
		if !c.Due(n) {
			return
		}
		o, err := c.Order(d.id)
		if err != nil {
			panic("ledger: retention schedule without order")
		}
		if !k.pruneBids(c, o.ID) {
			return // out of this block's share: the rest of its bids, then the order, next block
		}
		leases := 0
		if o.LeaseID != 0 {
			leases = o.Leases()
			for i := range uint64(leases) {
				id := o.LeaseID + i
				l, err := c.Lease(id)
				if err != nil {
					panic("ledger: order names a missing lease")
				}
				pr.Take += l.Take
				c.KV.Delete(schema.IDKey(schema.PLease, id))
				c.KV.Delete(schema.OwnedKey(schema.PLeaseByTenant, l.Tenant, id))
				c.KV.Delete(schema.OwnedKey(schema.PLeaseByProv, l.Provider, id))
				c.KV.Delete(schema.IDKey(schema.PReceipt, id))
				c.KV.Delete(schema.IDKey(schema.PCommit, id))
			}
		}
		if v, ok := c.Verification(o.ID); ok { // a replicated order's own (a referee run's is its parent's)
			pr.Rewarded += v.Rewarded
			c.KV.Delete(schema.IDKey(schema.PVerify, o.ID))
		}
		c.KV.Delete(schema.IDKey(schema.PCluster, o.ID))
		c.KV.Delete(schema.OwnedKey(schema.POrderByTenant, o.Tenant, o.ID))
		c.KV.Delete(schema.IDKey(schema.POrder, o.ID))
		c.KV.Delete(schema.IDKey(schema.PRetireMark, o.ID))
		c.KV.Delete(d.key)
		pr.Orders++
		c.Emit(api.EventOrderPruned, api.AttrOrderID, o.ID, api.AttrTenant, o.Tenant, api.AttrLeases, leases)
	}
}

// pruneBids removes an order's bids (all of them are closed by now) while the sweep has gas; it reports whether
// none is left.
func (k *Keeper) pruneBids(c *kernel.Ctx, orderID uint64) bool {
	var ids []uint64
	prefix := schema.IDKey(schema.PBidByOrder, orderID)
	c.KV.Iterate(prefix, schema.PrefixEnd(prefix), func(k string, _ []byte) bool {
		ids = append(ids, schema.UnBE64(k[len(prefix):]))
		return c.Due(len(ids))
	})
	for n, id := range ids {
		if n > 0 && !c.Due(n) {
			return false
		}
		b, err := c.Bid(id)
		if err != nil {
			panic("ledger: order index names a missing bid")
		}
		c.KV.Delete(schema.IDKey(schema.PBid, id))
		c.KV.Delete(schema.OwnedKey(schema.PBidByProvider, b.Provider, id))
		c.KV.Delete(schema.PairKey(schema.PBidByOrder, orderID, id))
	}
	if len(ids) == 0 {
		return true
	}
	_, more := c.FirstKey(prefix)
	return !more
}
