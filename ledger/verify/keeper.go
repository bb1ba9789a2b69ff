package verify

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

// Keeper is the verify module. What it calls of the other modules is declared below, as the few methods it uses;
// the app wires them (ledger/modules.go), and registers the hooks through which it reacts to the others.
type Keeper struct {
	Market    Market
	Providers Providers
	Leases    Leases
	Trust     Trust
}

// Market is what the verify module calls of the market module.
type Market interface {
	OpenFollowUp(c *kernel.Ctx, parent *api.Order, deposit uint64, mark func(*api.Order), attrs ...any) *api.Order
	OpenOrder(c *kernel.Ctx, tenant tx.Address, m *tx.CreateOrder, escrow uint64, replicas uint32) (*api.Order, error)
}

// Providers is what the verify module calls of the providers module.
type Providers interface {
	ProviderFailed(c *kernel.Ctx, a tx.Address, value uint64)
}

// Leases is what the verify module calls of the settle module.
type Leases interface {
	CheckReceipt(c *kernel.Ctx, signer tx.Address, rc *tx.Receipt, o *api.Order) (*api.Provider, error)
	EndLease(c *kernel.Ctx, l *api.Lease, t uint64, state api.LeaseState, by tx.Address, reason string) error
	EndRun(c *kernel.Ctx, l *api.Lease, t uint64, state api.LeaseState, by tx.Address, reason string, unpaid bool) error
	ProviderLease(c *kernel.Ctx, signer tx.Address, id uint64, want api.LeaseState) (*api.Lease, error)
	Settle(c *kernel.Ctx, l *api.Lease, t uint64) error
}

// Trust is what the verify module calls of the trust module.
type Trust interface {
	SlashUpTo(c *kernel.Ctx, a tx.Address, ppm, limit uint64, reason string) uint64
}
