// Package client is the Go SDK every Spare role uses to talk to a node: typed queries of the ledger, signed
// transactions with nonce tracking and confirmed inclusion, and a block/event follower that reconnects and
// catches up from any height.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	jsonrpcclient "github.com/cometbft/cometbft/rpc/jsonrpc/client"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// ErrNotFound is returned by queries for objects that do not exist.
var ErrNotFound = errors.New("not found")

// notFound is a query's not-found answer: its text is the ledger's (which names the object, or says it was
// pruned), and errors.Is(err, ErrNotFound) holds.
type notFound struct{ msg string }

func (e notFound) Error() string        { return e.msg }
func (e notFound) Is(target error) bool { return target == ErrNotFound }

// Client talks to one node's RPC endpoint.
type Client struct {
	rpc  *rpchttp.HTTP
	hc   *http.Client
	url  string
	log  *slog.Logger
	poll time.Duration

	mu          sync.Mutex // guards what is read once and kept: fixed at genesis
	params      *api.Params
	maxGas      uint64
	maxGasKnown bool
}

// Options tune a Client.
type Options struct {
	Logger *slog.Logger
	// Poll is how often the client looks for new blocks while waiting for inclusion or following the chain
	// (default 20 ms: a provider sees its new lease, and a tenant its auction's end, within a fifth of a 100 ms
	// block; each look is two small RPCs).
	Poll time.Duration
	// RequestTimeout bounds each RPC request (default 10 s).
	RequestTimeout time.Duration
}

// New returns a client of the node at url (e.g. http://127.0.0.1:26657).
func New(url string, opts Options) (*Client, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "tcp://") {
		return nil, fmt.Errorf("node address %q: want http://host:port", url)
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	hc, err := jsonrpcclient.DefaultHTTPClient(url)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", url, err)
	}
	// A bound on every request: a node that stopped without closing its connections must not hang the caller.
	hc.Timeout = opts.RequestTimeout
	rpc, err := rpchttp.NewWithClient(url, "/websocket", hc)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", url, err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Poll <= 0 {
		opts.Poll = 20 * time.Millisecond
	}
	return &Client{rpc: rpc, hc: hc, url: url, log: opts.Logger, poll: opts.Poll}, nil
}

// dropConns closes idle connections after an error, so the next request dials afresh (a restarted node may
// have left the old server answering on connections it did not close).
func (c *Client) dropConns() { c.hc.CloseIdleConnections() }

// CloseIdleConnections drops kept-alive connections, so the next request dials the node afresh (after an error:
// a restarted node listens on a new socket).
func (c *Client) CloseIdleConnections() { c.dropConns() }

// URL is the node address.
func (c *Client) URL() string { return c.url }

// RPC exposes the underlying CometBFT RPC client.
func (c *Client) RPC() *rpchttp.HTTP { return c.rpc }

// NodeStatus returns CometBFT's status (chain id, latest height).
func (c *Client) NodeStatus(ctx context.Context) (*ctypes.ResultStatus, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s unreachable: %w", c.url, err)
	}
	return st, nil
}

// Query runs a ledger query (see api.Query* paths) and decodes the JSON answer into out.
func (c *Client) Query(ctx context.Context, path string, req, out any) error {
	var data []byte
	if req != nil {
		var err error
		if data, err = json.Marshal(req); err != nil {
			return err
		}
	}
	return c.queryData(ctx, path, data, out)
}

// MaxGas is the chain's block gas limit (0: none), fixed at genesis and read once.
func (c *Client) MaxGas(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	known, max := c.maxGasKnown, c.maxGas
	c.mu.Unlock()
	if known {
		return max, nil
	}
	st, err := c.Status(ctx)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.maxGasKnown, c.maxGas = true, st.MaxGas
	c.mu.Unlock()
	return st.MaxGas, nil
}

// Simulate runs a signed transaction against the node's mempool state without keeping anything, and says what
// it would do: the gas it used and its result code.
func (c *Client) Simulate(ctx context.Context, raw []byte) (api.Simulation, error) {
	var s api.Simulation
	return s, c.queryData(ctx, api.QuerySimulate, raw, &s)
}

func (c *Client) queryData(ctx context.Context, path string, data []byte, out any) error {
	var res rawQuery
	if err := c.rawGet(ctx, "abci_query", queryParams(path, data), &res); err != nil {
		return fmt.Errorf("query %s: node %s: %w", path, c.url, err)
	}
	switch res.Response.Code {
	case 0:
	case api.QueryCodeNotFound:
		return notFound{res.Response.Log} // the ledger's own words, said once
	default:
		return fmt.Errorf("query %s: %s", path, res.Response.Log)
	}
	return json.Unmarshal(res.Response.Value, out)
}

// Typed queries.

func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var s api.Status
	return s, c.Query(ctx, api.QueryStatus, nil, &s)
}

func (c *Client) Params(ctx context.Context) (*api.Params, error) {
	c.mu.Lock()
	p := c.params
	c.mu.Unlock()
	if p != nil {
		return p, nil
	}
	// The genesis params are in the state from the first block on: before it a node answers the defaults, which
	// must not be kept (a client made with its node, as spare dev's, would keep another epoch length for ever).
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	p = &api.Params{}
	if err := c.Query(ctx, api.QueryParams, nil, p); err != nil {
		return nil, err
	}
	if st.Height >= 1 {
		c.mu.Lock()
		c.params = p // fixed at genesis
		c.mu.Unlock()
	}
	return p, nil
}

func (c *Client) Supply(ctx context.Context) (api.Supply, error) {
	var s api.Supply
	return s, c.Query(ctx, api.QuerySupply, nil, &s)
}

func (c *Client) Account(ctx context.Context, a tx.Address) (api.Account, error) {
	var acc api.Account
	return acc, c.Query(ctx, api.QueryAccount, api.AddressRequest{Address: a}, &acc)
}

// PendingAccount reads the account as the mempool sees it (next nonce after queued transactions).
func (c *Client) PendingAccount(ctx context.Context, a tx.Address) (api.Account, error) {
	var acc api.Account
	return acc, c.Query(ctx, api.QueryAccount, api.AddressRequest{Address: a, Pending: true}, &acc)
}

func (c *Client) Provider(ctx context.Context, a tx.Address) (api.ProviderView, error) {
	var p api.ProviderView
	return p, c.Query(ctx, api.QueryProvider, api.AddressRequest{Address: a}, &p)
}

func (c *Client) Providers(ctx context.Context, r api.ListRequest) (api.List[api.ProviderView], error) {
	var l api.List[api.ProviderView]
	return l, c.Query(ctx, api.QueryProviders, r, &l)
}

// StorageOffer is provider a's offer of disk to Spare Vault (ErrNotFound: it offers none).
func (c *Client) StorageOffer(ctx context.Context, a tx.Address) (api.StorageOfferView, error) {
	var o api.StorageOfferView
	return o, c.Query(ctx, api.QueryStorageOffer, api.AddressRequest{Address: a}, &o)
}

// StorageOffers lists storage offers by provider address (r.After, r.Limit).
func (c *Client) StorageOffers(ctx context.Context, r api.ListRequest) (api.List[api.StorageOfferView], error) {
	var l api.List[api.StorageOfferView]
	return l, c.Query(ctx, api.QueryStorageOffers, r, &l)
}

func (c *Client) Order(ctx context.Context, id uint64) (api.Order, error) {
	var o api.Order
	return o, c.Query(ctx, api.QueryOrder, api.IDRequest{ID: id}, &o)
}

func (c *Client) Orders(ctx context.Context, r api.ListRequest) (api.List[api.Order], error) {
	var l api.List[api.Order]
	return l, c.Query(ctx, api.QueryOrders, r, &l)
}

func (c *Client) Bid(ctx context.Context, id uint64) (api.Bid, error) {
	var b api.Bid
	return b, c.Query(ctx, api.QueryBid, api.IDRequest{ID: id}, &b)
}

func (c *Client) Bids(ctx context.Context, r api.ListRequest) (api.List[api.Bid], error) {
	var l api.List[api.Bid]
	return l, c.Query(ctx, api.QueryBids, r, &l)
}

func (c *Client) Lease(ctx context.Context, id uint64) (api.LeaseView, error) {
	var l api.LeaseView
	return l, c.Query(ctx, api.QueryLease, api.IDRequest{ID: id}, &l)
}

func (c *Client) Leases(ctx context.Context, r api.ListRequest) (api.List[api.LeaseView], error) {
	var l api.List[api.LeaseView]
	return l, c.Query(ctx, api.QueryLeases, r, &l)
}

// Objects reads several objects in one query; those that do not exist are left out.
func (c *Client) Objects(ctx context.Context, r api.ObjectsRequest) (api.Objects, error) {
	var out api.Objects
	return out, c.Query(ctx, api.QueryObjects, r, &out)
}

// Auditors reads the auditor set.
func (c *Client) Auditors(ctx context.Context) ([]api.Auditor, error) {
	var out []api.Auditor
	return out, c.Query(ctx, api.QueryAuditors, nil, &out)
}

// Epoch reads an epoch's audit set and who attested it; nil for the current epoch.
func (c *Client) Epoch(ctx context.Context, epoch *uint64) (api.EpochView, error) {
	var out api.EpochView
	return out, c.Query(ctx, api.QueryEpoch, api.EpochRequest{Epoch: epoch}, &out)
}

// Receipt reads the signed receipt of a completed lease.
func (c *Client) Receipt(ctx context.Context, leaseID uint64) (tx.Receipt, error) {
	var r tx.Receipt
	return r, c.Query(ctx, api.QueryReceipt, api.IDRequest{ID: leaseID}, &r)
}

// Verification reads a replicated order's comparison of its runs.
func (c *Client) Verification(ctx context.Context, orderID uint64) (api.VerificationView, error) {
	var v api.VerificationView
	return v, c.Query(ctx, api.QueryVerify, api.IDRequest{ID: orderID}, &v)
}

// Cluster reads a cluster order's members by rank.
func (c *Client) Cluster(ctx context.Context, orderID uint64) (api.ClusterView, error) {
	var v api.ClusterView
	return v, c.Query(ctx, api.QueryCluster, api.IDRequest{ID: orderID}, &v)
}

// Latency reads a provider's published round trips.
func (c *Client) Latency(ctx context.Context, provider tx.Address) (api.Latency, error) {
	var l api.Latency
	return l, c.Query(ctx, api.QueryLatency, api.AddressRequest{Address: provider}, &l)
}

// VaultObject is stored object id (Spare Vault).
func (c *Client) VaultObject(ctx context.Context, id uint64) (api.VaultObject, error) {
	var o api.VaultObject
	return o, c.Query(ctx, api.QueryVaultObject, api.IDRequest{ID: id}, &o)
}

// VaultObjects lists objects by id: an owner's or those with a root (r.After, r.Limit).
func (c *Client) VaultObjects(ctx context.Context, r api.VaultObjectsRequest) (api.List[api.VaultObject], error) {
	var l api.List[api.VaultObject]
	return l, c.Query(ctx, api.QueryVaultObjects, r, &l)
}

// VaultShards pages an object's shards from ordinal r.From.
func (c *Client) VaultShards(ctx context.Context, r api.VaultShardsRequest) (api.List[api.VaultShard], error) {
	var l api.List[api.VaultShard]
	return l, c.Query(ctx, api.QueryVaultShards, r, &l)
}

// AllVaultShards is every shard of object id, in order.
func (c *Client) AllVaultShards(ctx context.Context, id uint64) ([]api.VaultShard, error) {
	var out []api.VaultShard
	for from := 0; ; {
		l, err := c.VaultShards(ctx, api.VaultShardsRequest{ID: id, From: from, Limit: api.MaxPageLimit})
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if l.Next == "" || len(l.Items) == 0 {
			return out, nil
		}
		from += len(l.Items)
	}
}

// VaultHeld lists the shards with root that the ledger placed on provider p.
func (c *Client) VaultHeld(ctx context.Context, p tx.Address, root tx.Hash) ([]api.VaultShard, error) {
	var l []api.VaultShard
	return l, c.Query(ctx, api.QueryVaultHeld, api.VaultHeldRequest{Provider: p, Root: root}, &l)
}
