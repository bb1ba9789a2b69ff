package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
)

// Queries. The ABCI query path names the object ("order", "leases", ...); Data is a JSON request; the answer is
// JSON. Lists page with a cursor: pass the returned "next" as "after" to continue. Queries read the last
// committed state.

// Query paths.
const (
	QueryStatus    = "status"
	QueryAccount   = "account"
	QueryProvider  = "provider"
	QueryProviders = "providers"
	QueryOrder     = "order"
	QueryOrders    = "orders"
	QueryBid       = "bid"
	QueryBids      = "bids"
	QueryLease     = "lease"
	QueryLeases    = "leases"
	QueryReceipt   = "receipt"
	QueryParams    = "params"
	QuerySupply    = "supply"
	QueryObjects   = "objects"
	QueryAuditors  = "auditors"
	QueryEpoch     = "epoch"
	QueryVerify    = "verification"
	QueryCluster   = "cluster"
	QueryLatency   = "latency"
	QuerySimulate  = "simulate" // Data: a signed transaction; runs it on a copy of the mempool's state
)

// Simulation is what running a transaction would do now, against the mempool's state: the gas it used (a client
// sets its gas limit from this, with a margin) and its result. Nothing is kept.
type Simulation struct {
	GasUsed uint64 `json:"gas_used"`
	Code    uint32 `json:"code"`
	Log     string `json:"log,omitempty"`
}

// EpochRequest names an epoch; without one, the current epoch.
type EpochRequest struct {
	Epoch *uint64 `json:"epoch,omitempty"`
}

// DefaultPageLimit and MaxPageLimit bound list sizes.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// QueryCodeBadRequest and QueryCodeNotFound are the codes of failed queries.
const (
	QueryCodeBadRequest uint32 = 1
	QueryCodeNotFound   uint32 = 2
)

// ListRequest selects a page of a list; the filter fields apply to the lists that name them.
type ListRequest struct {
	After    string     `json:"after,omitempty"`
	Limit    int        `json:"limit,omitempty"`
	Tenant   tx.Address `json:"tenant,omitzero"`
	Provider tx.Address `json:"provider,omitzero"`
	OrderID  uint64     `json:"order_id,omitempty"`
	Open     bool       `json:"open,omitempty"` // orders: only open ones
}

// ObjectsRequest names several objects of several kinds, read in one query (an indexer refreshing what a block
// touched). At most MaxPageLimit names in all.
type ObjectsRequest struct {
	Providers []tx.Address `json:"providers,omitempty"`
	Orders    []uint64     `json:"orders,omitempty"`
	Bids      []uint64     `json:"bids,omitempty"`
	Leases    []uint64     `json:"leases,omitempty"`
}

// Objects answers an ObjectsRequest, in the order asked; names that do not exist are left out.
type Objects struct {
	Providers []ProviderView `json:"providers"`
	Orders    []Order        `json:"orders"`
	Bids      []Bid          `json:"bids"`
	Leases    []LeaseView    `json:"leases"`
}

// List is a page of results.
type List[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// IDRequest names one object by number.
type IDRequest struct {
	ID uint64 `json:"id"`
}

// AddressRequest names one account or provider.
type AddressRequest struct {
	Address tx.Address `json:"address"`
	// Pending reads the account as the mempool sees it: the committed state plus the transactions waiting to be
	// included. Clients use it to pick the next nonce.
	Pending bool `json:"pending,omitempty"`
}

// Status is the ledger's position.
type Status struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`
	TimeMs  uint64 `json:"time_ms"`
	MaxGas  uint64 `json:"max_gas,omitempty"` // the block gas limit; a transaction's gas limit may not exceed it
}

// ProviderView is a provider with derived figures.
type ProviderView struct {
	Provider
	ReputationPPM uint64 `json:"reputation_ppm"`
	RequiredStake uint64 `json:"required_stake"`
}

// LeaseView is a lease with what it has earned as of the last block.
type LeaseView struct {
	Lease
	EndMs uint64 `json:"end_ms,omitempty"` // when billing stops if nothing changes
	// CloseMs is when the ledger closes an active lease if nothing changes: EndMs, plus params.completion_grace_sec
	// for a lease that runs to its duration (its provider may complete it until then; nothing more is billed).
	CloseMs  uint64      `json:"close_ms,omitempty"`
	EarnedAt uint64      `json:"earned"` // gross earned by the last block time
	Unpaid   uint64      `json:"unpaid"` // earned but not yet settled
	Receipt  *tx.Receipt `json:"receipt,omitempty"`
}

var errNotFound = errors.New("not found")

// notFound is a query's not-found answer in the ledger's words, said once; errors.Is(err, errNotFound) holds.
type notFound struct{ error }

func (e notFound) Is(target error) bool { return target == errNotFound }

func notFoundf(format string, args ...any) error { return notFound{fmt.Errorf(format, args...)} }

// QueryCodeInternal is the code of a query that hit a broken invariant (an unreadable stored object).
const QueryCodeInternal uint32 = 3

// Query answers a read of the committed state. A panic answers this query with QueryCodeInternal and is logged;
// the next query is served as usual.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (resp *abci.ResponseQuery, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("query panicked", "path", req.Path, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = &abci.ResponseQuery{Code: QueryCodeInternal, Codespace: codespace,
				Log: fmt.Sprintf("query %s: the ledger could not read what it stored (%v); this is a bug: report it with the node's log", req.Path, r)}, nil
		}
	}()
	if strings.TrimPrefix(req.Path, "/") == QuerySimulate {
		return a.simulate(req.Data)
	}
	if strings.TrimPrefix(req.Path, "/") == QueryAccount {
		var ar AddressRequest
		if err := decodeReq(req.Data, &ar); err == nil && ar.Pending {
			return a.pendingAccount(ar.Address)
		}
	}
	view, height := a.store.View()
	if req.Height != 0 && req.Height != height {
		return &abci.ResponseQuery{Code: QueryCodeBadRequest, Height: height,
			Log: fmt.Sprintf("height %d: only the latest state (%d) is kept; query with height 0", req.Height, height)}, nil
	}
	out, err := runQuery(view, height, strings.TrimPrefix(req.Path, "/"), req.Data)
	if err != nil {
		code := QueryCodeBadRequest
		if errors.Is(err, errNotFound) {
			code = QueryCodeNotFound
		}
		return &abci.ResponseQuery{Code: code, Log: err.Error(), Height: height, Codespace: codespace}, nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &abci.ResponseQuery{Value: b, Height: height}, nil
}

func decodeReq(data []byte, v any) error {
	if len(data) == 0 {
		return nil
	}
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("bad query request: %w", err)
	}
	return nil
}

func runQuery(kv store.KV, height int64, path string, data []byte) (any, error) {
	c := &ctx{kv: kv, params: loadParams(kv), height: height}
	var idr IDRequest
	var ar AddressRequest
	var lr ListRequest
	switch path {
	case QueryStatus:
		return Status{ChainID: chainIDOf(kv), Height: height, TimeMs: lastTime(kv), MaxGas: maxGas(kv)}, nil
	case QueryParams:
		return c.params, nil
	case QuerySupply:
		return c.supply(), nil
	case QueryAccount:
		if err := decodeReq(data, &ar); err != nil {
			return nil, err
		}
		return c.account(ar.Address), nil
	case QueryProvider:
		if err := decodeReq(data, &ar); err != nil {
			return nil, err
		}
		p, ok := c.provider(ar.Address)
		if !ok {
			return nil, notFoundf("provider %s not found: no provider registered with that address", ar.Address)
		}
		return c.providerView(p), nil
	case QueryOrder, QueryBid, QueryLease, QueryReceipt:
		if err := decodeReq(data, &idr); err != nil {
			return nil, err
		}
		return c.getByID(path, idr.ID)
	case QueryProviders, QueryOrders, QueryBids, QueryLeases:
		if err := decodeReq(data, &lr); err != nil {
			return nil, err
		}
		return c.list(path, lr)
	case QueryAuditors:
		auds, _ := c.auditors()
		if auds == nil {
			auds = []Auditor{}
		}
		return auds, nil
	case QueryEpoch:
		var er EpochRequest
		if err := decodeReq(data, &er); err != nil {
			return nil, err
		}
		if c.params.EpochBlocks == 0 {
			return nil, fmt.Errorf("auditing is off on this chain (params.epoch_blocks is 0)")
		}
		e := c.epochOf(height)
		if er.Epoch != nil {
			e = *er.Epoch
		}
		return c.epochView(e, height)
	case QueryVerify:
		if err := decodeReq(data, &idr); err != nil {
			return nil, err
		}
		v, ok := c.verification(idr.ID)
		if !ok {
			if _, err := c.order(idr.ID); err != nil {
				return nil, notFound{err}
			}
			return nil, notFoundf("order %d is not a replicated order", idr.ID)
		}
		return c.verificationView(v), nil
	case QueryCluster:
		if err := decodeReq(data, &idr); err != nil {
			return nil, err
		}
		cl, ok := c.cluster(idr.ID)
		if !ok {
			if _, err := c.order(idr.ID); err != nil {
				return nil, notFound{err}
			}
			return nil, notFoundf("order %d is not a cluster order", idr.ID)
		}
		return c.clusterView(cl), nil
	case QueryLatency:
		if err := decodeReq(data, &ar); err != nil {
			return nil, err
		}
		l, ok := c.latency(ar.Address)
		if !ok {
			return nil, notFoundf("provider %s has published no latency", ar.Address)
		}
		return l, nil
	case QueryObjects:
		var or ObjectsRequest
		if err := decodeReq(data, &or); err != nil {
			return nil, err
		}
		return c.objects(or)
	}
	return nil, fmt.Errorf("unknown query path %q: one of status, params, supply, account, provider, providers, order, orders, bid, bids, lease, leases, receipt, objects, auditors, epoch, verification, cluster, latency", path)
}

func (c *ctx) objects(r ObjectsRequest) (Objects, error) {
	out := Objects{Providers: []ProviderView{}, Orders: []Order{}, Bids: []Bid{}, Leases: []LeaseView{}}
	if n := len(r.Providers) + len(r.Orders) + len(r.Bids) + len(r.Leases); n > MaxPageLimit {
		return out, fmt.Errorf("%d objects asked, at most %d per query", n, MaxPageLimit)
	}
	for _, a := range r.Providers {
		if p, ok := c.provider(a); ok {
			out.Providers = append(out.Providers, c.providerView(p))
		}
	}
	for _, id := range r.Orders {
		if o, err := c.order(id); err == nil {
			out.Orders = append(out.Orders, *o)
		}
	}
	for _, id := range r.Bids {
		if b, err := c.bid(id); err == nil {
			out.Bids = append(out.Bids, *b)
		}
	}
	for _, id := range r.Leases {
		if l, err := c.lease(id); err == nil {
			out.Leases = append(out.Leases, c.leaseView(l))
		}
	}
	return out, nil
}

func (c *ctx) providerView(p *Provider) ProviderView {
	return ProviderView{Provider: *p, ReputationPPM: p.ReputationPPM(), RequiredStake: c.params.RequiredStake(p.Info.Hardware.GPUCount())}
}

func (c *ctx) leaseView(l *Lease) LeaseView {
	v := LeaseView{Lease: *l}
	now := lastTime(c.kv)
	if l.State == LeaseActive {
		v.EndMs = l.EndMs()
		v.CloseMs = l.closeAtMs(c.params.CompletionGraceSec)
		v.EarnedAt = l.EarnedAt(now)
		v.Unpaid = v.EarnedAt - l.Paid
	} else {
		v.EarnedAt = l.Paid
	}
	if b, ok := c.kv.Get(idKey(pReceipt, l.ID)); ok {
		v.Receipt = mustDecode(decReceipt(b))
	}
	return v
}

func (c *ctx) getByID(path string, id uint64) (any, error) {
	var err error
	var out any
	switch path {
	case QueryOrder:
		out, err = c.order(id)
	case QueryBid:
		out, err = c.bid(id)
	case QueryLease:
		var l *Lease
		if l, err = c.lease(id); err == nil {
			out = c.leaseView(l)
		}
	case QueryReceipt:
		b, ok := c.kv.Get(idKey(pReceipt, id))
		if !ok {
			if _, err := c.lease(id); err != nil {
				return nil, notFound{err}
			}
			return nil, notFoundf("lease %d has no receipt: it has not completed (closed leases have none)", id)
		}
		out = mustDecode(decReceipt(b))
	}
	if tx.CodeOf(err) == tx.CodeNotFound {
		return nil, notFound{err}
	}
	return out, err
}

func (c *ctx) list(path string, r ListRequest) (any, error) {
	limit := r.Limit
	if limit <= 0 {
		limit = DefaultPageLimit
	}
	if limit > MaxPageLimit {
		return nil, fmt.Errorf("limit %d above the maximum %d", limit, MaxPageLimit)
	}
	if path == QueryProviders {
		return c.listProviders(r, limit)
	}
	var prefix string
	switch {
	case path == QueryOrders && !r.Tenant.IsZero():
		prefix = addrKey(pOrderByTenant, r.Tenant)
	case path == QueryOrders && r.Open:
		prefix = pOrderOpen
	case path == QueryOrders:
		prefix = pOrder
	case path == QueryBids && r.OrderID != 0:
		prefix = idKey(pBidByOrder, r.OrderID)
	case path == QueryBids && !r.Provider.IsZero():
		prefix = addrKey(pBidByProvider, r.Provider)
	case path == QueryBids:
		prefix = pBid
	case path == QueryLeases && !r.Tenant.IsZero():
		prefix = addrKey(pLeaseByTenant, r.Tenant)
	case path == QueryLeases && !r.Provider.IsZero():
		prefix = addrKey(pLeaseByProv, r.Provider)
	default:
		prefix = pLease
	}
	start := prefix
	if r.After != "" {
		after, err := strconv.ParseUint(r.After, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("after %q: want the id from a previous page's \"next\"", r.After)
		}
		start = prefix + be64(after+1)
	}
	var ids []uint64
	more := false
	c.kv.Iterate(start, prefixEnd(prefix), func(k string, _ []byte) bool {
		if len(ids) == limit {
			more = true
			return false
		}
		ids = append(ids, unbe64(k[len(prefix):len(prefix)+8]))
		return true
	})
	next := ""
	if more {
		next = strconv.FormatUint(ids[len(ids)-1], 10)
	}
	switch path {
	case QueryOrders:
		out := List[*Order]{Items: []*Order{}, Next: next}
		for _, id := range ids {
			o, err := c.order(id)
			if err != nil {
				return nil, err
			}
			if r.Open && o.State != OrderOpen {
				continue
			}
			out.Items = append(out.Items, o)
		}
		return out, nil
	case QueryBids:
		out := List[*Bid]{Items: []*Bid{}, Next: next}
		for _, id := range ids {
			b, err := c.bid(id)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, b)
		}
		return out, nil
	default:
		out := List[LeaseView]{Items: []LeaseView{}, Next: next}
		for _, id := range ids {
			l, err := c.lease(id)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, c.leaseView(l))
		}
		return out, nil
	}
}

func (c *ctx) listProviders(r ListRequest, limit int) (any, error) {
	start := pProvider
	if r.After != "" {
		a, err := tx.ParseAddress(r.After)
		if err != nil {
			return nil, fmt.Errorf("after: %w", err)
		}
		start = addrKey(pProvider, a) + "\x00"
	}
	out := List[ProviderView]{Items: []ProviderView{}}
	c.kv.Iterate(start, prefixEnd(pProvider), func(k string, v []byte) bool {
		if len(out.Items) == limit {
			out.Next = out.Items[len(out.Items)-1].Owner.String()
			return false
		}
		out.Items = append(out.Items, c.providerView(mustDecode(decProvider(v))))
		return true
	})
	return out, nil
}

// simulate runs a transaction on a copy of the mempool's state, with its signature unchecked (a client simulates
// before it knows the fee it will sign) but charged for. Its gas limit caps the run as in a block.
func (a *App) simulate(raw []byte) (*abci.ResponseQuery, error) {
	t, err := tx.Decode(raw)
	if err != nil {
		return &abci.ResponseQuery{Code: QueryCodeBadRequest, Log: err.Error(), Codespace: codespace}, nil
	}
	a.checkMu.Lock()
	fork, h := a.check.Fork(), a.checkH-1
	c := &ctx{kv: fork, chainID: a.checkChain, height: a.checkH, timeMs: a.checkTime, params: loadParams(a.check), quiet: true, simulate: true}
	a.checkMu.Unlock()
	var used uint64
	err = guard(func() (err error) {
		used, err = execTx(c, t, false, ^uint64(0))
		return err
	})
	out := Simulation{GasUsed: used, Code: uint32(tx.CodeOf(err))}
	if err != nil {
		out.Log = err.Error()
	}
	b, err := json.Marshal(out)
	return &abci.ResponseQuery{Value: b, Height: h}, err
}

func (a *App) pendingAccount(addr tx.Address) (*abci.ResponseQuery, error) {
	a.checkMu.Lock()
	defer a.checkMu.Unlock() // released even if the account does not decode
	acc := (&ctx{kv: a.check}).account(addr)
	h := a.checkH - 1
	b, err := json.Marshal(acc)
	return &abci.ResponseQuery{Value: b, Height: h}, err
}
