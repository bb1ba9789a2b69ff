package cluster

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

// Keeper is the cluster module. What it calls of the other modules is declared below, as the few methods it uses;
// the app wires them (ledger/modules.go), and registers the hooks through which it reacts to the others.
type Keeper struct {
	Market Market
	Leases Leases
}

// Market is what the cluster module calls of the market module.
type Market interface {
	OpenFollowUp(c *kernel.Ctx, parent *api.Order, deposit uint64, mark func(*api.Order), attrs ...any) *api.Order
	OpenOrder(c *kernel.Ctx, tenant tx.Address, m *tx.CreateOrder, escrow uint64, replicas uint32) (*api.Order, error)
}

// Leases is what the cluster module calls of the settle module.
type Leases interface {
	EndLease(c *kernel.Ctx, l *api.Lease, t uint64, state api.LeaseState, by tx.Address, reason string) error
}
