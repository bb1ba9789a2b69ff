package settle

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

// Keeper is the settle module. What it calls of the other modules is declared below, as the few methods it uses;
// the app wires them (ledger/modules.go), and registers the hooks through which it reacts to the others.
type Keeper struct {
	Market    Market
	Providers Providers
	Runs      Runs
}

// Market is what the settle module calls of the market module.
type Market interface {
	CloseBid(c *kernel.Ctx, b *api.Bid, state api.BidState, why string)
	CloseOrder(c *kernel.Ctx, o *api.Order, state api.OrderState)
}

// Providers is what the settle module calls of the providers module.
type Providers interface {
	ProviderFailed(c *kernel.Ctx, a tx.Address, value uint64)
}

// Runs is what the settle module calls of the verify module.
type Runs interface {
	CommitMissed(c *kernel.Ctx, l *api.Lease, v *api.Verification, why string)
}
