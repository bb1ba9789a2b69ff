package ledger

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/bank"
	"github.com/sparenet/spare/ledger/cluster"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/market"
	"github.com/sparenet/spare/ledger/providers"
	"github.com/sparenet/spare/ledger/retention"
	"github.com/sparenet/spare/ledger/rewards"
	"github.com/sparenet/spare/ledger/settle"
	"github.com/sparenet/spare/ledger/storage"
	"github.com/sparenet/spare/ledger/trust"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/ledger/verify"
)

// ctx is the kernel's execution context, as the app's message router and end-of-block list see it.
type ctx = kernel.Ctx

// modules are the ledger's modules, wired: each keeper gets the others it calls through the small interfaces it
// declares, and the app registers the hooks through which they react to each other. The router (dispatch), the
// end-of-block list (endBlock) and the queries reach the modules only through here.
type modules struct {
	Bank      *bank.Keeper
	Providers *providers.Keeper
	Market    *market.Keeper
	Leases    *settle.Keeper
	Runs      *verify.Keeper
	Clusters  *cluster.Keeper
	Trust     *trust.Keeper
	Retention *retention.Keeper
	Storage   *storage.Keeper
	Rewards   *rewards.Keeper
	hooks     *kernel.Hooks
}

func newModules() *modules {
	k := &modules{
		Bank: &bank.Keeper{}, Providers: &providers.Keeper{}, Market: &market.Keeper{}, Leases: &settle.Keeper{},
		Runs: &verify.Keeper{}, Clusters: &cluster.Keeper{}, Trust: &trust.Keeper{}, Retention: &retention.Keeper{}, Storage: &storage.Keeper{},
		Rewards: &rewards.Keeper{},
	}
	k.wire()
	return k
}

// wire gives each keeper the others it calls, and registers the hooks. The order of each hook list is part of
// consensus (hooks write state): it is the order in which the code before the split called them.
func (k *modules) wire() {
	k.Market.Leases, k.Market.Providers, k.Market.Runs = k.Leases, k.Providers, k.Runs
	k.Leases.Market, k.Leases.Providers, k.Leases.Runs = k.Market, k.Providers, k.Runs
	k.Runs.Market, k.Runs.Providers, k.Runs.Leases, k.Runs.Trust = k.Market, k.Providers, k.Leases, k.Trust
	k.Clusters.Market, k.Clusters.Leases = k.Market, k.Leases
	k.Trust.Providers, k.Trust.Leases, k.Trust.Rewards = k.Providers, k.Leases, k.Rewards
	k.Storage.Slasher = k.Trust
	k.hooks = &kernel.Hooks{
		OrderObjectFinal: []func(*kernel.Ctx, uint64){k.Retention.Retire},
		LeasesCreated:    []func(*kernel.Ctx, *api.Order, []uint64){k.Clusters.ClusterLeased, k.Runs.RunsLeased},
		LeaseEnded:       []func(*kernel.Ctx, kernel.LeaseEnd){k.Runs.RunEnded, k.Clusters.MemberEnded},
		OrderEnded:       []func(*kernel.Ctx, *api.Order) error{k.Clusters.ClusterOrderEnded, k.Runs.OrderEnded},
		BidFilters:       []func(*kernel.Ctx, *api.Order, tx.Address) error{k.Clusters.ExcludeFailed},
		SelectBids:       k.Clusters.ClusterBids,
	}
}
