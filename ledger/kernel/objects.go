package kernel

import (
	"fmt"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

func (c *Ctx) Cluster(orderID uint64) (*api.Cluster, bool) {
	b, ok := c.KV.Get(schema.IDKey(schema.PCluster, orderID))
	if !ok {
		return nil, false
	}
	return MustDecode(schema.DecCluster(b)), true
}

func (c *Ctx) SetCluster(cl *api.Cluster) {
	c.KV.Set(schema.IDKey(schema.PCluster, cl.OrderID), schema.EncCluster(cl))
	if cl.State != api.ClusterLeasing && cl.State != api.ClusterRunning && cl.Reserve == 0 {
		c.Retire(cl.OrderID)
	}
}

func (c *Ctx) Lease(id uint64) (*api.Lease, error) {
	b, ok := c.KV.Get(schema.IDKey(schema.PLease, id))
	if !ok {
		return nil, c.gone("lease", "lease", id, fmt.Sprintf("/api/leases/%d", id))
	}
	return MustDecode(schema.DecLease(b)), nil
}

func (c *Ctx) SetLease(l *api.Lease) {
	c.KV.Set(schema.IDKey(schema.PLease, l.ID), schema.EncLease(l))
	if l.Ended() {
		c.Retire(l.OrderID)
	}
}

func (c *Ctx) Order(id uint64) (*api.Order, error) {
	b, ok := c.KV.Get(schema.IDKey(schema.POrder, id))
	if !ok {
		return nil, c.gone("order", "order", id, fmt.Sprintf("/api/orders/%d", id))
	}
	return MustDecode(schema.DecOrder(b)), nil
}

func (c *Ctx) SetOrder(o *api.Order) {
	c.KV.Set(schema.IDKey(schema.POrder, o.ID), schema.EncOrder(o))
	if o.State != api.OrderOpen && o.LeaseID == 0 { // an order that made leases finishes with its last lease
		c.Retire(o.ID)
	}
}

func (c *Ctx) Bid(id uint64) (*api.Bid, error) {
	b, ok := c.KV.Get(schema.IDKey(schema.PBid, id))
	if !ok {
		return nil, c.gone("bid", "bid", id, "/api/orders/{its order} (its order's bids)")
	}
	return MustDecode(schema.DecBid(b)), nil
}

func (c *Ctx) SetBid(b *api.Bid) { c.KV.Set(schema.IDKey(schema.PBid, b.ID), schema.EncBid(b)) }

func (c *Ctx) Provider(a tx.Address) (*api.Provider, bool) {
	b, ok := c.KV.Get(schema.AddrKey(schema.PProvider, a))
	if !ok {
		return nil, false
	}
	return MustDecode(schema.DecProvider(b)), true
}

func (c *Ctx) MustProvider(a tx.Address) (*api.Provider, error) {
	p, ok := c.Provider(a)
	if !ok {
		return nil, tx.Errorf(tx.CodeNotProvider, "%s is not a registered provider: send RegisterProvider first", a)
	}
	return p, nil
}

func (c *Ctx) SetProvider(p *api.Provider) {
	c.KV.Set(schema.AddrKey(schema.PProvider, p.Owner), schema.EncProvider(p))
}

func (c *Ctx) Verification(orderID uint64) (*api.Verification, bool) {
	b, ok := c.KV.Get(schema.IDKey(schema.PVerify, orderID))
	if !ok {
		return nil, false
	}
	return MustDecode(schema.DecVerification(b)), true
}

func (c *Ctx) SetVerification(v *api.Verification) {
	c.KV.Set(schema.IDKey(schema.PVerify, v.OrderID), schema.EncVerification(v))
	switch v.State {
	case api.VerifyAgreed, api.VerifyInconclusive, api.VerifyCancelled: // judged: the order and its referee run may be finished
		c.Retire(v.OrderID)
		if v.RefereeOrder != 0 {
			c.Retire(v.RefereeOrder)
		}
	}
}

// GroupOf is the verification an order's runs belong to: its own if replicated, its parent's if a referee run.
func (c *Ctx) GroupOf(o *api.Order) (*api.Verification, bool) {
	switch {
	case o.Replicas > 1:
		return c.Verification(o.ID)
	case o.RefereeFor != 0:
		return c.Verification(o.RefereeFor)
	}
	return nil, false
}

// LeaseGroup is the verification a lease's run belongs to, if any.
func (c *Ctx) LeaseGroup(l *api.Lease) (*api.Verification, bool) {
	o, err := c.Order(l.OrderID)
	if err != nil {
		return nil, false
	}
	return c.GroupOf(o)
}
