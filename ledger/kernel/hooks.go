package kernel

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Hooks are how modules react to what happens in other modules without calling them: the module where something
// happens runs the hooks registered for it, in the order the app registered them (that order is part of
// consensus: hooks write state). A module that needs an answer from another declares the few methods it calls in
// its keeper instead (its expected interface); hooks are for reactions. Gas metering, storage, rewards or staking
// each fit as one more module that registers its reactions here.
type Hooks struct {
	// OrderObjectFinal runs whenever one of an order's objects (the order, a lease, its verification, its
	// cluster record) is stored in a final state: retention schedules the order's pruning once all of them are.
	OrderObjectFinal []func(c *Ctx, orderID uint64)
	// LeasesCreated runs after an auction (or a draw) leased order o to the new leases ids, before the order is
	// closed: a cluster records its members, a verification its runs.
	LeasesCreated []func(c *Ctx, o *api.Order, ids []uint64)
	// LeaseEnded runs after a lease ended (closed or completed), was settled and stored.
	LeaseEnded []func(c *Ctx, e LeaseEnd)
	// OrderEnded runs after an order ended unleased (cancelled or expired) and its escrow was refunded.
	OrderEnded []func(c *Ctx, o *api.Order) error
	// BidFilters may refuse a provider's bid on order o before its standing is looked at, with the error the
	// bidder sees (a cluster refuses the provider whose member failed an earlier generation).
	BidFilters []func(c *Ctx, o *api.Order, provider tx.Address) error
	// SelectBids chooses the winning set among the eligible open bids of an order that leases several members
	// at once (Nodes > 1): nil while none fits, and the order stays open.
	SelectBids func(c *Ctx, o *api.Order, bids []*api.Bid) []*api.Bid
}

// LeaseEnd is what the LeaseEnded hooks learn of a lease that ended: the lease as stored, its order, and the
// verification group it ran in (nil for a lease that was not a run of a replicated order).
type LeaseEnd struct {
	Lease *api.Lease
	Order *api.Order
	Group *api.Verification
}

// hooks are the context's hooks; a context that runs a module's work without them is a bug in the app's wiring
// (what a hook would have written would silently be missing), so it stops here.
func (c *Ctx) hooks() *Hooks {
	if c.Hooks == nil {
		panic("ledger: a context without the app's hooks ran work that needs them")
	}
	return c.Hooks
}

// Retire runs the OrderObjectFinal hooks for an order.
func (c *Ctx) Retire(orderID uint64) {
	for _, h := range c.hooks().OrderObjectFinal {
		h(c, orderID)
	}
}

// LeasesCreated runs the LeasesCreated hooks.
func (c *Ctx) LeasesCreated(o *api.Order, ids []uint64) {
	for _, h := range c.hooks().LeasesCreated {
		h(c, o, ids)
	}
}

// LeaseEnded runs the LeaseEnded hooks.
func (c *Ctx) LeaseEnded(e LeaseEnd) {
	for _, h := range c.hooks().LeaseEnded {
		h(c, e)
	}
}

// OrderEnded runs the OrderEnded hooks, stopping at the first error.
func (c *Ctx) OrderEnded(o *api.Order) error {
	for _, h := range c.hooks().OrderEnded {
		if err := h(c, o); err != nil {
			return err
		}
	}
	return nil
}

// FilterBid runs the BidFilters, returning the first refusal.
func (c *Ctx) FilterBid(o *api.Order, provider tx.Address) error {
	for _, h := range c.hooks().BidFilters {
		if err := h(c, o, provider); err != nil {
			return err
		}
	}
	return nil
}

// SelectBids runs the SelectBids hook: nil when none is registered (no module leases several members at once).
func (c *Ctx) SelectBids(o *api.Order, bids []*api.Bid) []*api.Bid {
	if sel := c.hooks().SelectBids; sel != nil {
		return sel(c, o, bids)
	}
	return nil
}
