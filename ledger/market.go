package ledger

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sparenet/spare/ledger/tx"
)

func (c *ctx) order(id uint64) (*Order, error) {
	b, ok := c.kv.Get(idKey(pOrder, id))
	if !ok {
		return nil, c.gone("order", "order", id, fmt.Sprintf("/api/orders/%d", id))
	}
	return mustDecode(decOrder(b)), nil
}

func (c *ctx) setOrder(o *Order) {
	c.kv.Set(idKey(pOrder, o.ID), encOrder(o))
	if o.State != OrderOpen && o.LeaseID == 0 { // an order that made leases finishes with its last lease
		c.retire(o.ID)
	}
}

func (c *ctx) bid(id uint64) (*Bid, error) {
	b, ok := c.kv.Get(idKey(pBid, id))
	if !ok {
		return nil, c.gone("bid", "bid", id, "/api/orders/{its order} (its order's bids)")
	}
	return mustDecode(decBid(b)), nil
}

func (c *ctx) setBid(b *Bid) { c.kv.Set(idKey(pBid, b.ID), encBid(b)) }

func (c *ctx) createOrder(tenant tx.Address, m *tx.CreateOrder) error {
	_, err := c.openOrder(tenant, m, m.Deposit, 0)
	return err
}

// openOrder escrows the given amount and opens an order for replicas runs (0: a plain single-run order).
func (c *ctx) openOrder(tenant tx.Address, m *tx.CreateOrder, escrow uint64, replicas uint32) (*Order, error) {
	window := m.BidWindow
	if window == 0 {
		window = c.params.BidWindowBlocks
	}
	if window > c.params.MaxBidWindowBlocks {
		return nil, tx.Errorf(tx.CodeInvalidMsg, "bid_window_blocks %d above the chain's maximum %d", window, c.params.MaxBidWindowBlocks)
	}
	ttl := m.TTL
	if ttl == 0 {
		ttl = c.params.OrderTTLBlocks
	}
	if ttl > c.params.MaxOrderTTLBlocks {
		return nil, tx.Errorf(tx.CodeInvalidMsg, "ttl_blocks %d above the chain's maximum %d", ttl, c.params.MaxOrderTTLBlocks)
	}
	if ttl <= window {
		return nil, tx.Errorf(tx.CodeInvalidMsg, "ttl_blocks %d must exceed bid_window_blocks %d", ttl, window)
	}
	if err := c.debit(tenant, escrow, inEscrow); err != nil {
		return nil, err
	}
	o := &Order{
		ID: c.nextID("order"), Tenant: tenant, Resources: m.Resources, Constraints: m.Constraints,
		MaxPricePerHour: m.MaxPricePerHour, ManifestHash: m.ManifestHash, Deposit: m.Deposit,
		DurationSec: m.DurationSec, State: OrderOpen, CreatedHeight: c.height,
		WindowEnd: c.height + int64(window), ExpiresHeight: c.height + int64(ttl), Replicas: replicas,
	}
	c.indexOrder(o)
	c.emit("order.created", "order_id", o.ID, "tenant", tenant,
		"max_price", o.MaxPricePerHour, "gpus", uint64(o.Resources.GPUCount),
		"deposit", o.Deposit, "window_end", o.WindowEnd, "expires", o.ExpiresHeight, "replicas", uint64(max(1, replicas)))
	return o, nil
}

// openFollowUp opens an order for the same job as parent (resources, constraints, price bound, manifest and
// duration) with deposit per lease, backed by escrow the tenant already holds in a reserve: a referee run, or a
// cluster's next generation. mark sets what makes it one; attrs go on its order.created event.
func (c *ctx) openFollowUp(parent *Order, deposit uint64, mark func(*Order), attrs ...any) *Order {
	o := &Order{
		ID: c.nextID("order"), Tenant: parent.Tenant, Resources: parent.Resources, Constraints: parent.Constraints,
		MaxPricePerHour: parent.MaxPricePerHour, ManifestHash: parent.ManifestHash, Deposit: deposit,
		DurationSec: parent.DurationSec, State: OrderOpen, CreatedHeight: c.height,
		WindowEnd: c.height + int64(c.params.BidWindowBlocks), ExpiresHeight: c.height + int64(c.params.OrderTTLBlocks),
	}
	mark(o)
	c.indexOrder(o)
	c.emit("order.created", append([]any{"order_id", o.ID, "tenant", o.Tenant,
		"max_price", o.MaxPricePerHour, "gpus", uint64(o.Resources.GPUCount),
		"deposit", o.Deposit, "window_end", o.WindowEnd, "expires", o.ExpiresHeight}, attrs...)...)
	return o
}

// indexOrder stores a new open order and its indexes.
func (c *ctx) indexOrder(o *Order) {
	c.setOrder(o)
	c.kv.Set(ownedKey(pOrderByTenant, o.Tenant, o.ID), nil)
	c.kv.Set(idKey(pOrderOpen, o.ID), nil)
	c.kv.Set(pairKey(pOrderAuction, uint64(o.WindowEnd), o.ID), nil)
	c.kv.Set(pairKey(pOrderExpiry, uint64(o.ExpiresHeight), o.ID), nil)
}

// closeOrder takes an open order out of the market: drops its indexes and settles its open bids as lost.
func (c *ctx) closeOrder(o *Order, state OrderState) {
	o.State = state
	c.setOrder(o)
	c.kv.Delete(idKey(pOrderOpen, o.ID))
	c.kv.Delete(pairKey(pOrderAuction, uint64(o.WindowEnd), o.ID))
	c.kv.Delete(pairKey(pOrderExpiry, uint64(o.ExpiresHeight), o.ID))
	for _, b := range c.openBids(o.ID) {
		c.closeBid(b, BidLost, "")
	}
}

// closeBid ends an open bid (won, lost or withdrawn) and takes it out of the order's indexes, so that the work
// of later bids on the order is proportional to its open bids, never to its history.
func (c *ctx) closeBid(b *Bid, state BidState, why string) {
	b.State = state
	c.setBid(b)
	c.kv.Delete(pairKey(pBidOpen, b.OrderID, b.ID))
	c.kv.Delete(bidOfProviderKey(b.OrderID, b.Provider))
	attrs := []any{"bid_id", b.ID, "order_id", b.OrderID, "provider", b.Provider, "state", b.State}
	if why != "" {
		attrs = append(attrs, "reason", why)
	}
	c.emit("bid.closed", attrs...)
}

func bidOfProviderKey(orderID uint64, p tx.Address) string {
	return pBidOfProvider + be64(orderID) + string(p[:])
}

// maxOpenBids is how many open bids an order holds at once: params.MaxBidsPerOrder, and at least two per lease
// it makes so that a cluster or replicated order can always be filled.
func (c *ctx) maxOpenBids(o *Order) int {
	return max(int(min(c.params.MaxBidsPerOrder, 1<<16)), 2*o.Leases())
}

// openBids lists an order's open bids in id order (at most maxOpenBids of them).
func (c *ctx) openBids(orderID uint64) []*Bid {
	var ids []uint64
	start := idKey(pBidOpen, orderID)
	c.kv.Iterate(start, prefixEnd(start), func(k string, _ []byte) bool {
		ids = append(ids, unbe64(k[len(start):]))
		return true
	})
	var out []*Bid
	for _, id := range ids {
		b, err := c.bid(id)
		if err != nil {
			panic("ledger: bid index without bid")
		}
		if b.State == BidOpen {
			out = append(out, b)
		}
	}
	return out
}

// refundOrder returns an open order's escrow (and a replicated order's referee reserve) to its tenant.
func (c *ctx) refundOrder(o *Order) error {
	if err := c.credit(o.Tenant, o.Escrowed(), inEscrow); err != nil {
		return err
	}
	return c.orderEnded(o)
}

func (c *ctx) cancelOrder(signer tx.Address, m *tx.CancelOrder) error {
	o, err := c.order(m.ID)
	if err != nil {
		return err
	}
	if o.Tenant != signer {
		return tx.Errorf(tx.CodeUnauthorized, "order %d belongs to %s", o.ID, o.Tenant)
	}
	if o.State != OrderOpen {
		return tx.Errorf(tx.CodeOrderNotOpen, "order %d is %s", o.ID, o.State)
	}
	c.closeOrder(o, OrderCancelled)
	if err := c.refundOrder(o); err != nil {
		return err
	}
	c.emit("order.cancelled", "order_id", o.ID, "tenant", o.Tenant, "refund", o.Escrowed())
	return nil
}

// biddable reports whether an order takes bids: open, and not past its expiry (an order expires at the end of
// its expiry block, even when a backlog of end-of-block work records it later: see endBlock).
func (c *ctx) biddable(o *Order) error {
	if o.State != OrderOpen {
		return tx.Errorf(tx.CodeOrderNotOpen, "order %d is %s", o.ID, o.State)
	}
	if c.height > o.ExpiresHeight {
		return tx.Errorf(tx.CodeOrderNotOpen, "order %d expired at the end of block %d", o.ID, o.ExpiresHeight)
	}
	return nil
}

func (c *ctx) placeBid(signer tx.Address, m *tx.PlaceBid) error {
	o, err := c.order(m.OrderID)
	if err != nil {
		return err
	}
	if err := c.biddable(o); err != nil {
		return err
	}
	if o.Tenant == signer {
		return tx.Errorf(tx.CodeSelfDeal, "order %d is your own", o.ID)
	}
	if c.excludedFrom(o, signer) {
		return tx.Errorf(tx.CodeExcluded, "order %d restarts a cluster whose member on %s failed: another provider must take its place", o.ID, signer)
	}
	p, err := c.mustProvider(signer)
	if err != nil {
		return err
	}
	if err := c.canServe(p); err != nil {
		return err
	}
	if m.Price > o.MaxPricePerHour {
		return tx.Errorf(tx.CodeBidAboveMax, "price %s/h above the order's maximum %s/h", FormatSPR(m.Price), FormatSPR(o.MaxPricePerHour))
	}
	if r := Feasible(p, o.Resources, o.Constraints); r != ReasonOK {
		return tx.Errorf(tx.CodeInfeasible, "provider %s does not satisfy order %d: %s", signer, o.ID, r)
	}
	if id, ok := c.kv.Get(bidOfProviderKey(o.ID, signer)); ok {
		return tx.Errorf(tx.CodeDuplicateBid, "bid %d is already open on order %d: withdraw it first", unbe64(string(id)), o.ID)
	}
	if v, ok := c.groupOf(o); ok && c.runsBy(v, signer) {
		return tx.Errorf(tx.CodeReplicated, "order %d is a referee run of order %d, which you already run: a referee must be another provider", o.ID, v.OrderID)
	}
	// A full order takes a new bid only if it is cheaper than its dearest open bid, which it displaces: filling an
	// order's bid slots with dear bids cannot keep cheaper providers out.
	if open := c.openBids(o.ID); len(open) >= c.maxOpenBids(o) {
		dearest := open[0]
		for _, b := range open[1:] {
			if b.Price > dearest.Price || b.Price == dearest.Price && b.ID > dearest.ID {
				dearest = b
			}
		}
		if m.Price >= dearest.Price {
			return tx.Errorf(tx.CodeBidsFull, "order %d holds its maximum of %d open bids: bid below %s/h (its dearest) or wait", o.ID, len(open), FormatSPR(dearest.Price))
		}
		c.closeBid(dearest, BidLost, "outbid")
	}
	b := &Bid{ID: c.nextID("bid"), OrderID: o.ID, Provider: signer, Price: m.Price, State: BidOpen, CreatedHeight: c.height}
	c.setBid(b)
	c.kv.Set(pairKey(pBidByOrder, o.ID, b.ID), nil)
	c.kv.Set(pairKey(pBidOpen, o.ID, b.ID), nil)
	c.kv.Set(bidOfProviderKey(o.ID, signer), []byte(be64(b.ID)))
	c.kv.Set(ownedKey(pBidByProvider, signer, b.ID), nil)
	c.emit("bid.placed", "bid_id", b.ID, "order_id", o.ID, "provider", signer, "price", b.Price)
	// After an auction window closed without enough bids, the first acceptable bids win at once — except on the
	// orders whose runs the ledger draws (see drawn): there a late bid waits for the next draw, so that being
	// first after a window is no way to be picked.
	if c.height > o.WindowEnd && !drawn(o) {
		if best := c.bestBids(o); len(best) > 0 {
			return c.createLeases(o, best)
		}
	}
	return nil
}

func (c *ctx) withdrawBid(signer tx.Address, m *tx.WithdrawBid) error {
	b, err := c.bid(m.ID)
	if err != nil {
		return err
	}
	if b.Provider != signer {
		return tx.Errorf(tx.CodeUnauthorized, "bid %d belongs to %s", b.ID, b.Provider)
	}
	if b.State != BidOpen {
		return tx.Errorf(tx.CodeBidNotOpen, "bid %d is %s", b.ID, b.State)
	}
	c.closeBid(b, BidWithdrawn, "")
	return nil
}

func (c *ctx) acceptBid(signer tx.Address, m *tx.AcceptBid) error {
	b, err := c.bid(m.ID)
	if err != nil {
		return err
	}
	o, err := c.order(b.OrderID)
	if err != nil {
		return err
	}
	if o.Tenant != signer {
		return tx.Errorf(tx.CodeUnauthorized, "bid %d is on order %d of %s, not yours", b.ID, o.ID, o.Tenant)
	}
	if err := c.biddable(o); err != nil {
		return err
	}
	if o.Leases() > 1 {
		return tx.Errorf(tx.CodeReplicated, "order %d runs on %d providers: its auction picks them all at once; wait for the bid window to close", o.ID, o.Leases())
	}
	if drawn(o) {
		return tx.Errorf(tx.CodeReplicated, "order %d is a referee run of order %d: the ledger draws its provider, not the tenant", o.ID, o.RefereeFor)
	}
	if b.State != BidOpen {
		return tx.Errorf(tx.CodeBidNotOpen, "bid %d is %s", b.ID, b.State)
	}
	p, err := c.mustProvider(b.Provider)
	if err != nil {
		return err
	}
	if err := c.canServe(p); err != nil {
		return err
	}
	return c.createLeases(o, []*Bid{b})
}

// closeAuctions leases the best open bids of every order whose bid window ends in this block (one bid, or one
// per replica: see bestBids). Orders without enough bids stay open; the first acceptable bids then win.
func (c *ctx) closeAuctions() {
	start := pOrderAuction
	end := pOrderAuction + be64(uint64(c.height)+1)
	var due []uint64
	c.kv.Iterate(start, end, func(k string, _ []byte) bool {
		due = append(due, unbe64(k[len(pOrderAuction)+8:]))
		return c.due(len(due))
	})
	for n, id := range due {
		if !c.due(n) {
			break
		}
		o, err := c.order(id)
		if err != nil {
			panic("ledger: auction index without order")
		}
		c.kv.Delete(pairKey(pOrderAuction, uint64(o.WindowEnd), o.ID))
		if o.State != OrderOpen || o.ExpiresHeight < c.height {
			continue // a backlog held its auction past a block that leased, cancelled or expired it
		}
		best := c.bestBids(o)
		var winner *Bid
		if len(best) > 0 {
			winner = best[0]
		}
		c.emit("auction.closed", "order_id", o.ID, "winner_bid", bidID(winner), "winners", uint64(len(best)))
		if len(best) == 0 && drawn(o) && o.ExpiresHeight > c.height+1 {
			// Not enough bids for a draw yet: draw again after another window (the order still expires on time).
			window := max(1, o.WindowEnd-o.CreatedHeight)
			o.WindowEnd = min(c.height+window, o.ExpiresHeight-1)
			c.setOrder(o)
			c.kv.Set(pairKey(pOrderAuction, uint64(o.WindowEnd), o.ID), nil)
			continue
		}
		if len(best) > 0 {
			if err := c.createLeases(o, best); err != nil {
				panic("ledger: auction lease: " + err.Error())
			}
		}
	}
}

// bestBids picks an order's winning open bids — lowest price, then higher reputation, then lower provider
// address — among providers still able to serve: one, or one per replica (distinct providers, since a
// provider has one open bid per order). It is empty until there are that many.
func (c *ctx) bestBids(o *Order) []*Bid {
	type cand struct {
		b   *Bid
		rep uint64
	}
	var cands []cand
	for _, b := range c.openBids(o.ID) {
		p, ok := c.provider(b.Provider)
		if !ok || c.canServe(p) != nil {
			continue // jailed or unbonded since bidding
		}
		cands = append(cands, cand{b, p.ReputationPPM()})
	}
	need := o.Leases()
	if len(cands) < need {
		return nil
	}
	if o.Nodes > 1 {
		bids := make([]*Bid, len(cands))
		for i, cd := range cands {
			bids[i] = cd.b
		}
		return c.clusterBids(o, bids)
	}
	if drawn(o) {
		bids := make([]*Bid, len(cands))
		stakes := make([]uint64, len(cands))
		for i, cd := range cands {
			bids[i] = cd.b
			p, _ := c.provider(cd.b.Provider)
			stakes[i] = p.Stake
		}
		return c.draw(o, bids, stakes, need)
	}
	slices.SortFunc(cands, func(x, y cand) int {
		if r := cmp.Compare(x.b.Price, y.b.Price); r != 0 {
			return r
		}
		if r := cmp.Compare(y.rep, x.rep); r != 0 {
			return r
		}
		return bytes.Compare(x.b.Provider[:], y.b.Provider[:])
	})
	out := make([]*Bid, need)
	for i := range out {
		out[i] = cands[i].b
	}
	return out
}

// drawn reports whether the ledger draws an order's providers rather than auctioning them: the runs of a
// replicated order and a referee run, whose providers judge each other. Were they chosen by price, a tenant
// with Sybil providers bidding the least would pick its own replicas and referee, and through them the verdict.
func drawn(o *Order) bool { return o.Replicas > 1 || o.RefereeFor != 0 }

// draw picks need of the bids (in bid id order), without replacement, each with a chance proportional to its
// provider's bonded stake — Sybils gain nothing by splitting a stake over many accounts, and each must bond the
// minimum. The randomness is SHA-256 over the block's hash, the order's id and the pick's number: see
// docs/ledger.md ("Who runs a replicated order") for what a block proposer can and cannot do with it.
func (c *ctx) draw(o *Order, bids []*Bid, stakes []uint64, need int) []*Bid {
	out := make([]*Bid, 0, need)
	for pick := 0; pick < need && len(bids) > 0; pick++ {
		var total uint64
		for _, s := range stakes {
			total += s // bounded by the supply
		}
		h := sha256.Sum256(append(append([]byte("spare/draw\x00"), c.seed[:]...), be64(o.ID)+be64(uint64(pick))...))
		r := binary.BigEndian.Uint64(h[:8]) % total
		i := 0
		for ; i < len(stakes)-1 && r >= stakes[i]; i++ {
			r -= stakes[i]
		}
		out = append(out, bids[i])
		c.emit("draw.picked", "order_id", o.ID, "bid_id", bids[i].ID, "provider", bids[i].Provider, "pick", pick,
			"stake", stakes[i], "of_stake", total)
		bids = append(bids[:i:i], bids[i+1:]...)
		stakes = append(stakes[:i:i], stakes[i+1:]...)
	}
	return out
}

func bidID(b *Bid) uint64 {
	if b == nil {
		return 0
	}
	return b.ID
}

// expireOrders refunds orders that reach their expiry height unmatched.
func (c *ctx) expireOrders() {
	prefixEndH := pOrderExpiry + be64(uint64(c.height)+1)
	var due []uint64
	c.kv.Iterate(pOrderExpiry, prefixEndH, func(k string, _ []byte) bool {
		due = append(due, unbe64(k[len(pOrderExpiry)+8:]))
		return c.due(len(due))
	})
	for n, id := range due {
		if !c.due(n) {
			break
		}
		o, err := c.order(id)
		if err != nil {
			panic("ledger: expiry index without order")
		}
		c.closeOrder(o, OrderExpired)
		if err := c.refundOrder(o); err != nil {
			panic("ledger: " + err.Error())
		}
		c.emit("order.expired", "order_id", o.ID, "tenant", o.Tenant, "refund", o.Escrowed())
	}
}
