package market

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

// Keeper is the market module. What it calls of the other modules is declared below, as the few methods it uses;
// the app wires them (ledger/modules.go), and registers the hooks through which it reacts to the others.
type Keeper struct {
	Providers Providers
	Leases    Leases
	Runs      Runs
}

// Providers is what the market module calls of the providers module.
type Providers interface {
	CanServe(c *kernel.Ctx, p *api.Provider) error
}

// Leases is what the market module calls of the settle module.
type Leases interface {
	CreateLeases(c *kernel.Ctx, o *api.Order, bids []*api.Bid) error
}

// Runs is what the market module calls of the verify module.
type Runs interface {
	RunsBy(c *kernel.Ctx, v *api.Verification, a tx.Address) bool
}
