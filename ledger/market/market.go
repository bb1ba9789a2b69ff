package market

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

func (k *Keeper) CreateOrder(c *kernel.Ctx, tenant tx.Address, m *tx.CreateOrder) error {
	_, err := k.OpenOrder(c, tenant, m, m.Deposit, 0)
	return err
}

// OpenOrder escrows the given amount and opens an order for replicas runs (0: a plain single-run order).
func (k *Keeper) OpenOrder(c *kernel.Ctx, tenant tx.Address, m *tx.CreateOrder, escrow uint64, replicas uint32) (*api.Order, error) {
	window := m.BidWindow
	if window == 0 {
		window = c.Params.BidWindowBlocks
	}
	if window > c.Params.MaxBidWindowBlocks {
		return nil, tx.Errorf(tx.CodeInvalidMsg, "bid_window_blocks %d above the chain's maximum %d", window, c.Params.MaxBidWindowBlocks)
	}
	ttl := m.TTL
	if ttl == 0 {
		ttl = c.Params.OrderTTLBlocks
	}
	if ttl > c.Params.MaxOrderTTLBlocks {
		return nil, tx.Errorf(tx.CodeInvalidMsg, "ttl_blocks %d above the chain's maximum %d", ttl, c.Params.MaxOrderTTLBlocks)
	}
	if ttl <= window {
		return nil, tx.Errorf(tx.CodeInvalidMsg, "ttl_blocks %d must exceed bid_window_blocks %d", ttl, window)
	}
	if err := c.Debit(tenant, escrow, kernel.InEscrow); err != nil {
		return nil, err
	}
	o := &api.Order{
		ID: c.NextID("order"), Tenant: tenant, Resources: m.Resources, Constraints: m.Constraints,
		MaxPricePerHour: m.MaxPricePerHour, ManifestHash: m.ManifestHash, Deposit: m.Deposit,
		DurationSec: m.DurationSec, State: api.OrderOpen, CreatedHeight: c.Height,
		WindowEnd: c.Height + int64(window), ExpiresHeight: c.Height + int64(ttl), Replicas: replicas,
	}
	k.indexOrder(c, o)
	c.Emit(api.EventOrderCreated, api.AttrOrderID, o.ID, api.AttrTenant, tenant,
		api.AttrMaxPrice, o.MaxPricePerHour, api.AttrGPUs, uint64(o.Resources.GPUCount),
		api.AttrDeposit, o.Deposit, api.AttrWindowEnd, o.WindowEnd, api.AttrExpires, o.ExpiresHeight, api.AttrReplicas, uint64(max(1, replicas)))
	return o, nil
}

// OpenFollowUp opens an order for the same job as parent (resources, constraints, price bound, manifest and
// duration) with deposit per lease, backed by escrow the tenant already holds in a reserve: a referee run, or a
// cluster's next generation. mark sets what makes it one; attrs go on its order.created event.
func (k *Keeper) OpenFollowUp(c *kernel.Ctx, parent *api.Order, deposit uint64, mark func(*api.Order), attrs ...any) *api.Order {
	o := &api.Order{
		ID: c.NextID("order"), Tenant: parent.Tenant, Resources: parent.Resources, Constraints: parent.Constraints,
		MaxPricePerHour: parent.MaxPricePerHour, ManifestHash: parent.ManifestHash, Deposit: deposit,
		DurationSec: parent.DurationSec, State: api.OrderOpen, CreatedHeight: c.Height,
		WindowEnd: c.Height + int64(c.Params.BidWindowBlocks), ExpiresHeight: c.Height + int64(c.Params.OrderTTLBlocks),
	}
	mark(o)
	k.indexOrder(c, o)
	c.Emit(api.EventOrderCreated, append([]any{api.AttrOrderID, o.ID, api.AttrTenant, o.Tenant,
		api.AttrMaxPrice, o.MaxPricePerHour, api.AttrGPUs, uint64(o.Resources.GPUCount),
		api.AttrDeposit, o.Deposit, api.AttrWindowEnd, o.WindowEnd, api.AttrExpires, o.ExpiresHeight}, attrs...)...)
	return o
}

// indexOrder stores a new open order and its indexes.
func (k *Keeper) indexOrder(c *kernel.Ctx, o *api.Order) {
	c.SetOrder(o)
	c.KV.Set(schema.OwnedKey(schema.POrderByTenant, o.Tenant, o.ID), nil)
	c.KV.Set(schema.IDKey(schema.POrderOpen, o.ID), nil)
	c.KV.Set(schema.PairKey(schema.POrderAuction, uint64(o.WindowEnd), o.ID), nil)
	c.KV.Set(schema.PairKey(schema.POrderExpiry, uint64(o.ExpiresHeight), o.ID), nil)
}

// CloseOrder takes an open order out of the market: drops its indexes and settles its open bids as lost.
func (k *Keeper) CloseOrder(c *kernel.Ctx, o *api.Order, state api.OrderState) {
	o.State = state
	c.SetOrder(o)
	c.KV.Delete(schema.IDKey(schema.POrderOpen, o.ID))
	c.KV.Delete(schema.PairKey(schema.POrderAuction, uint64(o.WindowEnd), o.ID))
	c.KV.Delete(schema.PairKey(schema.POrderExpiry, uint64(o.ExpiresHeight), o.ID))
	for _, b := range k.openBids(c, o.ID) {
		k.CloseBid(c, b, api.BidLost, "")
	}
}

// CloseBid ends an open bid (won, lost or withdrawn) and takes it out of the order's indexes, so that the work
// of later bids on the order is proportional to its open bids, never to its history.
func (k *Keeper) CloseBid(c *kernel.Ctx, b *api.Bid, state api.BidState, why string) {
	b.State = state
	c.SetBid(b)
	c.KV.Delete(schema.PairKey(schema.PBidOpen, b.OrderID, b.ID))
	c.KV.Delete(bidOfProviderKey(b.OrderID, b.Provider))
	attrs := []any{api.AttrBidID, b.ID, api.AttrOrderID, b.OrderID, api.AttrProvider, b.Provider, api.AttrState, b.State}
	if why != "" {
		attrs = append(attrs, "reason", why)
	}
	c.Emit(api.EventBidClosed, attrs...)
}

func bidOfProviderKey(orderID uint64, p tx.Address) string {
	return schema.PBidOfProvider + schema.BE64(orderID) + string(p[:])
}

// MaxOpenBids is how many open bids an order holds at once: params.MaxBidsPerOrder, and at least two per lease
// it makes so that a cluster or replicated order can always be filled.
func (k *Keeper) MaxOpenBids(c *kernel.Ctx, o *api.Order) int {
	return max(int(min(c.Params.MaxBidsPerOrder, 1<<16)), 2*o.Leases())
}

// openBids lists an order's open bids in id order (at most maxOpenBids of them).
func (k *Keeper) openBids(c *kernel.Ctx, orderID uint64) []*api.Bid {
	var ids []uint64
	start := schema.IDKey(schema.PBidOpen, orderID)
	c.KV.Iterate(start, schema.PrefixEnd(start), func(k string, _ []byte) bool {
		ids = append(ids, schema.UnBE64(k[len(start):]))
		return true
	})
	var out []*api.Bid
	for _, id := range ids {
		b, err := c.Bid(id)
		if err != nil {
			panic("ledger: bid index without bid")
		}
		if b.State == api.BidOpen {
			out = append(out, b)
		}
	}
	return out
}

// refundOrder returns an open order's escrow (and a replicated order's referee reserve) to its tenant.
func (k *Keeper) refundOrder(c *kernel.Ctx, o *api.Order) error {
	if err := c.Credit(o.Tenant, o.Escrowed(), kernel.InEscrow); err != nil {
		return err
	}
	return c.OrderEnded(o) // a cluster's or a verification's reserve is refunded too
}

func (k *Keeper) CancelOrder(c *kernel.Ctx, signer tx.Address, m *tx.CancelOrder) error {
	o, err := c.Order(m.ID)
	if err != nil {
		return err
	}
	if o.Tenant != signer {
		return tx.Errorf(tx.CodeUnauthorized, "order %d belongs to %s", o.ID, o.Tenant)
	}
	if o.State != api.OrderOpen {
		return tx.Errorf(tx.CodeOrderNotOpen, "order %d is %s", o.ID, o.State)
	}
	k.CloseOrder(c, o, api.OrderCancelled)
	if err := k.refundOrder(c, o); err != nil {
		return err
	}
	c.Emit(api.EventOrderCancelled, api.AttrOrderID, o.ID, api.AttrTenant, o.Tenant, api.AttrRefund, o.Escrowed())
	return nil
}

// biddable reports whether an order takes bids: open, and not past its expiry (an order expires at the end of
// its expiry block, even when a backlog of end-of-block work records it later: see the app's endBlock).
func (k *Keeper) biddable(c *kernel.Ctx, o *api.Order) error {
	if o.State != api.OrderOpen {
		return tx.Errorf(tx.CodeOrderNotOpen, "order %d is %s", o.ID, o.State)
	}
	if c.Height > o.ExpiresHeight {
		return tx.Errorf(tx.CodeOrderNotOpen, "order %d expired at the end of block %d", o.ID, o.ExpiresHeight)
	}
	return nil
}

func (k *Keeper) PlaceBid(c *kernel.Ctx, signer tx.Address, m *tx.PlaceBid) error {
	o, err := c.Order(m.OrderID)
	if err != nil {
		return err
	}
	if err := k.biddable(c, o); err != nil {
		return err
	}
	if o.Tenant == signer {
		return tx.Errorf(tx.CodeSelfDeal, "order %d is your own", o.ID)
	}
	if err := c.FilterBid(o, signer); err != nil {
		return err
	}
	p, err := c.MustProvider(signer)
	if err != nil {
		return err
	}
	if err := k.Providers.CanServe(c, p); err != nil {
		return err
	}
	if m.Price > o.MaxPricePerHour {
		return tx.Errorf(tx.CodeBidAboveMax, "price %s/h above the order's maximum %s/h", api.FormatSPR(m.Price), api.FormatSPR(o.MaxPricePerHour))
	}
	if r := api.Feasible(p, o.Resources, o.Constraints); r != api.ReasonOK {
		return tx.Errorf(tx.CodeInfeasible, "provider %s does not satisfy order %d: %s", signer, o.ID, r)
	}
	if id, ok := c.KV.Get(bidOfProviderKey(o.ID, signer)); ok {
		return tx.Errorf(tx.CodeDuplicateBid, "bid %d is already open on order %d: withdraw it first", schema.UnBE64(string(id)), o.ID)
	}
	if v, ok := c.GroupOf(o); ok && k.Runs.RunsBy(c, v, signer) {
		return tx.Errorf(tx.CodeReplicated, "order %d is a referee run of order %d, which you already run: a referee must be another provider", o.ID, v.OrderID)
	}
	// A full order takes a new bid only if it is cheaper than its dearest open bid, which it displaces: filling an
	// order's bid slots with dear bids cannot keep cheaper providers out.
	if open := k.openBids(c, o.ID); len(open) >= k.MaxOpenBids(c, o) {
		dearest := open[0]
		for _, b := range open[1:] {
			if b.Price > dearest.Price || b.Price == dearest.Price && b.ID > dearest.ID {
				dearest = b
			}
		}
		if m.Price >= dearest.Price {
			return tx.Errorf(tx.CodeBidsFull, "order %d holds its maximum of %d open bids: bid below %s/h (its dearest) or wait", o.ID, len(open), api.FormatSPR(dearest.Price))
		}
		k.CloseBid(c, dearest, api.BidLost, "outbid")
	}
	b := &api.Bid{ID: c.NextID("bid"), OrderID: o.ID, Provider: signer, Price: m.Price, State: api.BidOpen, CreatedHeight: c.Height}
	c.SetBid(b)
	c.KV.Set(schema.PairKey(schema.PBidByOrder, o.ID, b.ID), nil)
	c.KV.Set(schema.PairKey(schema.PBidOpen, o.ID, b.ID), nil)
	c.KV.Set(bidOfProviderKey(o.ID, signer), []byte(schema.BE64(b.ID)))
	c.KV.Set(schema.OwnedKey(schema.PBidByProvider, signer, b.ID), nil)
	c.Emit(api.EventBidPlaced, api.AttrBidID, b.ID, api.AttrOrderID, o.ID, api.AttrProvider, signer, api.AttrPrice, b.Price)
	// After an auction window closed without enough bids, the first acceptable bids win at once — except on the
	// orders whose runs the ledger draws (see drawn): there a late bid waits for the next draw, so that being
	// first after a window is no way to be picked.
	if c.Height > o.WindowEnd && !drawn(o) {
		if best := k.bestBids(c, o); len(best) > 0 {
			return k.Leases.CreateLeases(c, o, best)
		}
	}
	return nil
}

func (k *Keeper) WithdrawBid(c *kernel.Ctx, signer tx.Address, m *tx.WithdrawBid) error {
	b, err := c.Bid(m.ID)
	if err != nil {
		return err
	}
	if b.Provider != signer {
		return tx.Errorf(tx.CodeUnauthorized, "bid %d belongs to %s", b.ID, b.Provider)
	}
	if b.State != api.BidOpen {
		return tx.Errorf(tx.CodeBidNotOpen, "bid %d is %s", b.ID, b.State)
	}
	k.CloseBid(c, b, api.BidWithdrawn, "")
	return nil
}

func (k *Keeper) AcceptBid(c *kernel.Ctx, signer tx.Address, m *tx.AcceptBid) error {
	b, err := c.Bid(m.ID)
	if err != nil {
		return err
	}
	o, err := c.Order(b.OrderID)
	if err != nil {
		return err
	}
	if o.Tenant != signer {
		return tx.Errorf(tx.CodeUnauthorized, "bid %d is on order %d of %s, not yours", b.ID, o.ID, o.Tenant)
	}
	if err := k.biddable(c, o); err != nil {
		return err
	}
	if o.Leases() > 1 {
		return tx.Errorf(tx.CodeReplicated, "order %d runs on %d providers: its auction picks them all at once; wait for the bid window to close", o.ID, o.Leases())
	}
	if drawn(o) {
		return tx.Errorf(tx.CodeReplicated, "order %d is a referee run of order %d: the ledger draws its provider, not the tenant", o.ID, o.RefereeFor)
	}
	if b.State != api.BidOpen {
		return tx.Errorf(tx.CodeBidNotOpen, "bid %d is %s", b.ID, b.State)
	}
	p, err := c.MustProvider(b.Provider)
	if err != nil {
		return err
	}
	if err := k.Providers.CanServe(c, p); err != nil {
		return err
	}
	return k.Leases.CreateLeases(c, o, []*api.Bid{b})
}

// CloseAuctions leases the best open bids of every order whose bid window ends in this block (one bid, or one
// per replica: see bestBids). Orders without enough bids stay open; the first acceptable bids then win.
func (k *Keeper) CloseAuctions(c *kernel.Ctx) {
	c.SweepDue(schema.POrderAuction, uint64(c.Height), func(id uint64) {
		o, err := c.Order(id)
		if err != nil {
			panic("ledger: auction index without order")
		}
		c.KV.Delete(schema.PairKey(schema.POrderAuction, uint64(o.WindowEnd), o.ID))
		if o.State != api.OrderOpen || o.ExpiresHeight < c.Height {
			return // a backlog held its auction past a block that leased, cancelled or expired it
		}
		best := k.bestBids(c, o)
		var winner *api.Bid
		if len(best) > 0 {
			winner = best[0]
		}
		c.Emit(api.EventAuctionClosed, api.AttrOrderID, o.ID, api.AttrWinnerBid, bidID(winner), api.AttrWinners, uint64(len(best)))
		if len(best) == 0 && drawn(o) && o.ExpiresHeight > c.Height+1 {
			// Not enough bids for a draw yet: draw again after another window (the order still expires on time).
			window := max(1, o.WindowEnd-o.CreatedHeight)
			o.WindowEnd = min(c.Height+window, o.ExpiresHeight-1)
			c.SetOrder(o)
			c.KV.Set(schema.PairKey(schema.POrderAuction, uint64(o.WindowEnd), o.ID), nil)
			return
		}
		if len(best) > 0 {
			if err := k.Leases.CreateLeases(c, o, best); err != nil {
				panic("ledger: auction lease: " + err.Error())
			}
		}
	})
}

// bestBids picks an order's winning open bids — lowest price, then higher reputation, then lower provider
// address — among providers still able to serve: one, or one per replica (distinct providers, since a
// provider has one open bid per order). It is empty until there are that many.
func (k *Keeper) bestBids(c *kernel.Ctx, o *api.Order) []*api.Bid {
	type cand struct {
		b   *api.Bid
		rep uint64
	}
	var cands []cand
	for _, b := range k.openBids(c, o.ID) {
		p, ok := c.Provider(b.Provider)
		if !ok || k.Providers.CanServe(c, p) != nil {
			continue // jailed or unbonded since bidding
		}
		cands = append(cands, cand{b, p.ReputationPPM()})
	}
	need := o.Leases()
	if len(cands) < need {
		return nil
	}
	if o.Nodes > 1 {
		bids := make([]*api.Bid, len(cands))
		for i, cd := range cands {
			bids[i] = cd.b
		}
		return c.SelectBids(o, bids)
	}
	if drawn(o) {
		bids := make([]*api.Bid, len(cands))
		stakes := make([]uint64, len(cands))
		for i, cd := range cands {
			bids[i] = cd.b
			p, _ := c.Provider(cd.b.Provider)
			stakes[i] = p.Stake
		}
		return k.draw(c, o, bids, stakes, need)
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
	out := make([]*api.Bid, need)
	for i := range out {
		out[i] = cands[i].b
	}
	return out
}

// drawn reports whether the ledger draws an order's providers rather than auctioning them: the runs of a
// replicated order and a referee run, whose providers judge each other. Were they chosen by price, a tenant
// with Sybil providers bidding the least would pick its own replicas and referee, and through them the verdict.
func drawn(o *api.Order) bool { return o.Replicas > 1 || o.RefereeFor != 0 }

// draw picks need of the bids (in bid id order), without replacement, each with a chance proportional to its
// provider's bonded stake — Sybils gain nothing by splitting a stake over many accounts, and each must bond the
// minimum. The randomness is SHA-256 over the block's hash, the order's id and the pick's number: see
// docs/ledger.md ("Who runs a replicated order") for what a block proposer can and cannot do with it.
func (k *Keeper) draw(c *kernel.Ctx, o *api.Order, bids []*api.Bid, stakes []uint64, need int) []*api.Bid {
	out := make([]*api.Bid, 0, need)
	for pick := 0; pick < need && len(bids) > 0; pick++ {
		var total uint64
		for _, s := range stakes {
			total += s // bounded by the supply
		}
		h := sha256.Sum256(append(append([]byte("spare/draw\x00"), c.Seed[:]...), schema.BE64(o.ID)+schema.BE64(uint64(pick))...))
		r := binary.BigEndian.Uint64(h[:8]) % total
		i := 0
		for ; i < len(stakes)-1 && r >= stakes[i]; i++ {
			r -= stakes[i]
		}
		out = append(out, bids[i])
		c.Emit(api.EventDrawPicked, api.AttrOrderID, o.ID, api.AttrBidID, bids[i].ID, api.AttrProvider, bids[i].Provider, api.AttrPick, pick,
			api.AttrStake, stakes[i], api.AttrOfStake, total)
		bids = append(bids[:i:i], bids[i+1:]...)
		stakes = append(stakes[:i:i], stakes[i+1:]...)
	}
	return out
}

func bidID(b *api.Bid) uint64 {
	if b == nil {
		return 0
	}
	return b.ID
}

// ExpireOrders refunds orders that reach their expiry height unmatched.
func (k *Keeper) ExpireOrders(c *kernel.Ctx) {
	c.SweepDue(schema.POrderExpiry, uint64(c.Height), func(id uint64) {
		o, err := c.Order(id)
		if err != nil {
			panic("ledger: expiry index without order")
		}
		k.CloseOrder(c, o, api.OrderExpired)
		if err := k.refundOrder(c, o); err != nil {
			panic("ledger: " + err.Error())
		}
		c.Emit(api.EventOrderExpired, api.AttrOrderID, o.ID, api.AttrTenant, o.Tenant, api.AttrRefund, o.Escrowed())
	})
}
