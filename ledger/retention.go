package ledger

import (
	"github.com/sparenet/spare/ledger/tx"
)

// Retention. An order and everything made for it — its bids, its leases and their receipts and commitments, its
// verification, its cluster record — leave the state RetentionBlocks blocks after the order is finished: no longer
// open, every lease ended, its verification judged, no escrow, reserve or held pay left in any of them. Until
// then every query answers as before; after, a query names what was pruned and where its history is (the
// explorer keeps it in its database). Providers, accounts and stake are never pruned. The state then holds the
// live objects plus what finished within the window, whatever the chain's age.
//
// Keys: pRetireMark marks a finished order (its value: the block it is pruned at), so that it is scheduled once;
// pRetireDue is the schedule, ordered by that block; keyPruned keeps what the supply invariant summed over the
// pruned objects (their take and the rewards paid from the pool), so the invariant still holds without them.
const (
	pRetireMark = "rm/" // order -> prune height
	pRetireDue  = "rd/" // prune height | order
	keyPruned   = "pruned"
)

// Pruned is what the supply invariant summed over pruned objects, and how many orders were pruned.
type Pruned struct {
	Orders   uint64 `json:"orders"`
	Take     uint64 `json:"take"`     // the pool's take of the pruned leases' payments
	Rewarded uint64 `json:"rewarded"` // paid from the pool to agreeing runs of pruned verifications
}

func encPruned(p *Pruned) []byte {
	w := tx.NewWriter(24)
	w.Uvarint(p.Orders)
	w.Uvarint(p.Take)
	w.Uvarint(p.Rewarded)
	return sealed(w, "pruned")
}

func decPruned(b []byte) (*Pruned, error) {
	r := tx.NewReader(b)
	p := &Pruned{Orders: r.Uvarint("orders"), Take: r.Uvarint("take"), Rewarded: r.Uvarint("rewarded")}
	return p, r.Done("pruned")
}

func loadPruned(kv interface{ Get(string) ([]byte, bool) }) *Pruned {
	b, ok := kv.Get(keyPruned)
	if !ok {
		return &Pruned{}
	}
	return mustDecode(decPruned(b))
}

// ended reports whether a lease's run is over and holds nothing back.
func (l *Lease) ended() bool {
	return (l.State == LeaseClosed || l.State == LeaseCompleted) && l.Held == 0
}

// finished reports whether nothing about an order can change any more: it is not open, each lease it made has
// ended holding no pay back, the verification its runs belong to (its own, or its parent's for a referee run)
// is judged with no reserve and no reveal phase open, and its cluster record, if any, is over with no reserve.
func (c *ctx) finished(o *Order) bool {
	if o.State == OrderOpen {
		return false
	}
	if o.LeaseID != 0 {
		for i := range uint64(o.Leases()) {
			l, err := c.lease(o.LeaseID + i)
			if err != nil || !l.ended() {
				return false
			}
		}
	}
	if v, ok := c.groupOf(o); ok {
		switch v.State {
		case VerifyAgreed, VerifyInconclusive, VerifyCancelled:
		default:
			return false
		}
		if v.Reserve != 0 || v.RevealOpen {
			return false
		}
	}
	if o.Nodes > 1 {
		if cl, ok := c.cluster(o.ID); ok && (cl.State == ClusterLeasing || cl.State == ClusterRunning || cl.Reserve != 0) {
			return false
		}
	}
	return true
}

// retire schedules an order's pruning once it is finished (see finished); it is called whenever one of its
// objects is stored in a final state, so the last of them schedules it. Each order is scheduled once.
func (c *ctx) retire(orderID uint64) {
	if c.params.RetentionBlocks == 0 { // an archive chain: nothing is pruned
		return
	}
	if _, done := c.kv.Get(idKey(pRetireMark, orderID)); done {
		return
	}
	o, err := c.order(orderID)
	if err != nil || !c.finished(o) {
		return
	}
	at := uint64(c.height) + c.params.RetentionBlocks
	c.kv.Set(idKey(pRetireMark, orderID), []byte(be64(at)))
	c.kv.Set(pairKey(pRetireDue, at, orderID), nil)
	c.emit("order.finished", "order_id", orderID, "tenant", o.Tenant, "prune_height", at)
}

// pruneRetired removes the orders whose retention ended by this block, oldest first, within the sweep's share
// of the block's gas (see endBlock). An order with many bids (every bid ever placed on it is kept for queries
// until then) may take several blocks: its bids go first, a batch at a time, and the order last.
func (c *ctx) pruneRetired() {
	type due struct {
		key string
		id  uint64
	}
	var list []due
	c.kv.Iterate(pRetireDue, pRetireDue+be64(uint64(c.height)+1), func(k string, _ []byte) bool {
		list = append(list, due{k, unbe64(k[len(pRetireDue)+8:])})
		return c.due(len(list))
	})
	pr := loadPruned(c.kv)
	defer func() { c.kv.Set(keyPruned, encPruned(pr)) }()
	for n, d := range list {
		if !c.due(n) {
			return
		}
		o, err := c.order(d.id)
		if err != nil {
			panic("ledger: retention schedule without order")
		}
		if !c.pruneBids(o.ID) {
			return // out of this block's share: the rest of its bids, then the order, next block
		}
		leases := 0
		if o.LeaseID != 0 {
			leases = o.Leases()
			for i := range uint64(leases) {
				id := o.LeaseID + i
				l, err := c.lease(id)
				if err != nil {
					panic("ledger: order names a missing lease")
				}
				pr.Take += l.Take
				c.kv.Delete(idKey(pLease, id))
				c.kv.Delete(ownedKey(pLeaseByTenant, l.Tenant, id))
				c.kv.Delete(ownedKey(pLeaseByProv, l.Provider, id))
				c.kv.Delete(idKey(pReceipt, id))
				c.kv.Delete(idKey(pCommit, id))
			}
		}
		if v, ok := c.verification(o.ID); ok { // a replicated order's own (a referee run's is its parent's)
			pr.Rewarded += v.Rewarded
			c.kv.Delete(idKey(pVerify, o.ID))
		}
		c.kv.Delete(idKey(pCluster, o.ID))
		c.kv.Delete(ownedKey(pOrderByTenant, o.Tenant, o.ID))
		c.kv.Delete(idKey(pOrder, o.ID))
		c.kv.Delete(idKey(pRetireMark, o.ID))
		c.kv.Delete(d.key)
		pr.Orders++
		c.emit("order.pruned", "order_id", o.ID, "tenant", o.Tenant, "leases", leases)
	}
}

// pruneBids removes an order's bids (all of them are closed by now) while the sweep has gas; it reports whether
// none is left.
func (c *ctx) pruneBids(orderID uint64) bool {
	var ids []uint64
	prefix := idKey(pBidByOrder, orderID)
	c.kv.Iterate(prefix, prefixEnd(prefix), func(k string, _ []byte) bool {
		ids = append(ids, unbe64(k[len(prefix):]))
		return c.due(len(ids))
	})
	for n, id := range ids {
		if n > 0 && !c.due(n) {
			return false
		}
		b, err := c.bid(id)
		if err != nil {
			panic("ledger: order index names a missing bid")
		}
		c.kv.Delete(idKey(pBid, id))
		c.kv.Delete(ownedKey(pBidByProvider, b.Provider, id))
		c.kv.Delete(pairKey(pBidByOrder, orderID, id))
	}
	if len(ids) == 0 {
		return true
	}
	_, more := c.firstKey(prefix)
	return !more
}

// firstKey returns the first key with the prefix, if any.
func (c *ctx) firstKey(prefix string) (string, bool) {
	var first string
	found := false
	c.kv.Iterate(prefix, prefixEnd(prefix), func(k string, _ []byte) bool {
		first, found = k, true
		return false
	})
	return first, found
}

// gone is the error for an object not in the state: pruned if its id was ever given out (ids are sequential and
// only retention deletes objects), else not found. page is where the explorer shows its history.
func (c *ctx) gone(kind, seq string, id uint64, page string) error {
	if c.params != nil && c.params.RetentionBlocks > 0 && id != 0 {
		if b, ok := c.kv.Get(keySeq + seq); ok && id <= unbe64(string(b)) {
			return tx.Errorf(tx.CodeNotFound, "%s %d was pruned from the ledger's state: it finished at block %d or before (params.retention_blocks %d); its history is in the explorer: GET %s",
				kind, id, max(0, c.height-int64(c.params.RetentionBlocks)), c.params.RetentionBlocks, page)
		}
	}
	return tx.Errorf(tx.CodeNotFound, "%s %d not found", kind, id)
}
