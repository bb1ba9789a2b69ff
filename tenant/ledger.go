package tenant

import (
	"context"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Ledger is what the tenant reads of the ledger: a node's client (*client.Client) is one; a test may put a fake
// in its place (NewWith) and drive a deploy block by block.
type Ledger interface {
	// FollowPaced calls fn for every committed block from height from on, in order, asking for new ones every
	// pace() (client.Client.FollowPaced).
	FollowPaced(ctx context.Context, from int64, pace func() time.Duration, fn func(client.Block) error) error
	Status(ctx context.Context) (api.Status, error)
	Params(ctx context.Context) (*api.Params, error)
	Order(ctx context.Context, id uint64) (api.Order, error)
	Bids(ctx context.Context, r api.ListRequest) (api.List[api.Bid], error)
	Lease(ctx context.Context, id uint64) (api.LeaseView, error)
	Provider(ctx context.Context, a tx.Address) (api.ProviderView, error)
	Providers(ctx context.Context, r api.ListRequest) (api.List[api.ProviderView], error)
	Verification(ctx context.Context, orderID uint64) (api.VerificationView, error)
	Cluster(ctx context.Context, orderID uint64) (api.ClusterView, error)
}

// TxSender signs and submits the tenant's transactions and waits for their blocks (*client.Sender is one).
type TxSender interface {
	Send(ctx context.Context, msgs ...tx.Msg) (*client.Result, error)
}

var (
	_ Ledger   = (*client.Client)(nil)
	_ TxSender = (*client.Sender)(nil)
)
