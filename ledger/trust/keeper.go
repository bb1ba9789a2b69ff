package trust

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// Keeper is the trust module. What it calls of the other modules is declared below, as the few methods it uses;
// the app wires them (ledger/modules.go), and registers the hooks through which it reacts to the others.
type Keeper struct {
	Providers Providers
	Leases    Leases
	Rewards   Rewards
}

// Rewards is what the trust module calls of the rewards module: an epoch's pots before its tally's pass, the
// work and auditor rewards after it, and the forfeit of a provider failing proof of GPU.
type Rewards interface {
	Pots(c *kernel.Ctx, e uint64, set *schema.AuditSet) api.RewardPots
	Finish(c *kernel.Ctx, pots *api.RewardPots, votes []api.AuditorVote, decided, totalWeight uint64)
	Forfeit(c *kernel.Ctx, p *api.Provider, e uint64)
}

// Providers is what the trust module calls of the providers module.
type Providers interface {
	ProviderFailed(c *kernel.Ctx, a tx.Address, value uint64)
}

// Leases is what the trust module calls of the settle module.
type Leases interface {
	EndLease(c *kernel.Ctx, l *api.Lease, t uint64, state api.LeaseState, by tx.Address, reason string) error
}
