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

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
)

// Queries. The ABCI query path names the object ("order", "leases", ...); Data is a JSON request; the answer is
// JSON. Lists page with a cursor: pass the returned "next" as "after" to continue. Queries read the last
// committed state.

// notFound is a query's not-found answer in the ledger's words, said once; errors.Is(err, errNotFound) holds.
type notFound struct{ error }

func (e notFound) Is(target error) bool { return target == api.ErrNotFound }

func notFoundf(format string, args ...any) error { return notFound{fmt.Errorf(format, args...)} }

// Query answers a read of the committed state. A panic answers this query with QueryCodeInternal and is logged;
// the next query is served as usual.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (resp *abci.ResponseQuery, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("query panicked", "path", req.Path, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = &abci.ResponseQuery{Code: api.QueryCodeInternal, Codespace: codespace,
				Log: fmt.Sprintf("query %s: the ledger could not read what it stored (%v); this is a bug: report it with the node's log", req.Path, r)}, nil
		}
	}()
	if strings.TrimPrefix(req.Path, "/") == api.QuerySimulate {
		return a.simulate(req.Data)
	}
	if strings.TrimPrefix(req.Path, "/") == api.QueryAccount {
		var ar api.AddressRequest
		if err := decodeReq(req.Data, &ar); err == nil && ar.Pending {
			return a.pendingAccount(ar.Address)
		}
	}
	view, height := a.store.View()
	if req.Height != 0 && req.Height != height {
		return &abci.ResponseQuery{Code: api.QueryCodeBadRequest, Height: height,
			Log: fmt.Sprintf("height %d: only the latest state (%d) is kept; query with height 0", req.Height, height)}, nil
	}
	out, err := a.mods.runQuery(view, height, strings.TrimPrefix(req.Path, "/"), req.Data)
	if err != nil {
		code := api.QueryCodeBadRequest
		if errors.Is(err, api.ErrNotFound) {
			code = api.QueryCodeNotFound
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

func (k *modules) runQuery(kv store.KV, height int64, path string, data []byte) (any, error) {
	c := &ctx{KV: kv, Params: kernel.LoadParams(kv), Height: height}
	var idr api.IDRequest
	var ar api.AddressRequest
	var lr api.ListRequest
	switch path {
	case api.QueryStatus:
		return api.Status{ChainID: chainIDOf(kv), Height: height, TimeMs: lastTime(kv), MaxGas: maxGas(kv)}, nil
	case api.QueryParams:
		return c.Params, nil
	case api.QuerySupply:
		return c.Supply(), nil
	case api.QueryAccount:
		if err := decodeReq(data, &ar); err != nil {
			return nil, err
		}
		return c.Account(ar.Address), nil
	case api.QueryProvider:
		if err := decodeReq(data, &ar); err != nil {
			return nil, err
		}
		p, ok := c.Provider(ar.Address)
		if !ok {
			return nil, notFoundf("provider %s not found: no provider registered with that address", ar.Address)
		}
		return k.providerView(c, p), nil
	case api.QueryOrder, api.QueryBid, api.QueryLease, api.QueryReceipt:
		if err := decodeReq(data, &idr); err != nil {
			return nil, err
		}
		return k.getByID(c, path, idr.ID)
	case api.QueryProviders, api.QueryOrders, api.QueryBids, api.QueryLeases, api.QueryStorageOffers:
		if err := decodeReq(data, &lr); err != nil {
			return nil, err
		}
		return k.list(c, path, lr)
	case api.QueryEmission:
		return k.Rewards.EmissionView(c), nil
	case api.QueryRewards:
		if err := decodeReq(data, &ar); err != nil {
			return nil, err
		}
		return k.Rewards.RewardsView(c, ar.Address), nil
	case api.QueryAuditors:
		auds, _ := k.Trust.Auditors(c)
		if auds == nil {
			auds = []api.Auditor{}
		}
		return auds, nil
	case api.QueryEpoch:
		var er api.EpochRequest
		if err := decodeReq(data, &er); err != nil {
			return nil, err
		}
		if c.Params.EpochBlocks == 0 {
			return nil, fmt.Errorf("auditing is off on this chain (params.epoch_blocks is 0)")
		}
		e := k.Trust.EpochOf(c, height)
		if er.Epoch != nil {
			e = *er.Epoch
		}
		return k.Trust.EpochView(c, e, height)
	case api.QueryVerify:
		if err := decodeReq(data, &idr); err != nil {
			return nil, err
		}
		v, ok := c.Verification(idr.ID)
		if !ok {
			if _, err := c.Order(idr.ID); err != nil {
				return nil, notFound{err}
			}
			return nil, notFoundf("order %d is not a replicated order", idr.ID)
		}
		return k.Runs.VerificationView(c, v), nil
	case api.QueryCluster:
		if err := decodeReq(data, &idr); err != nil {
			return nil, err
		}
		cl, ok := c.Cluster(idr.ID)
		if !ok {
			if _, err := c.Order(idr.ID); err != nil {
				return nil, notFound{err}
			}
			return nil, notFoundf("order %d is not a cluster order", idr.ID)
		}
		return k.Clusters.ClusterView(c, cl), nil
	case api.QueryLatency:
		if err := decodeReq(data, &ar); err != nil {
			return nil, err
		}
		l, ok := k.Clusters.Latency(c, ar.Address)
		if !ok {
			return nil, notFoundf("provider %s has published no latency", ar.Address)
		}
		return l, nil
	case api.QueryVaultObject, api.QueryVaultObjects, api.QueryVaultShards, api.QueryVaultHeld,
		api.QueryVaultEpoch, api.QueryVaultChallenges, api.QueryVaultPool, api.QueryVaultProvider, api.QueryVaultPlacedOn:
		return k.vaultQuery(c, height, path, data)
	case api.QueryStorageOffer:
		if err := decodeReq(data, &ar); err != nil {
			return nil, err
		}
		o, ok := k.Storage.Offer(c, ar.Address)
		if !ok {
			return nil, notFoundf("provider %s offers no storage", ar.Address)
		}
		return k.Storage.OfferView(c, o), nil
	case api.QueryObjects:
		var or api.ObjectsRequest
		if err := decodeReq(data, &or); err != nil {
			return nil, err
		}
		return k.objects(c, or)
	}
	return nil, fmt.Errorf("unknown query path %q: one of status, params, supply, account, provider, providers, order, orders, bid, bids, lease, leases, receipt, objects, auditors, epoch, verification, cluster, latency, storage_offer, storage_offers", path)
}

func (k *modules) objects(c *ctx, r api.ObjectsRequest) (api.Objects, error) {
	out := api.Objects{Providers: []api.ProviderView{}, Orders: []api.Order{}, Bids: []api.Bid{}, Leases: []api.LeaseView{}}
	if n := len(r.Providers) + len(r.Orders) + len(r.Bids) + len(r.Leases); n > api.MaxPageLimit {
		return out, fmt.Errorf("%d objects asked, at most %d per query", n, api.MaxPageLimit)
	}
	for _, a := range r.Providers {
		if p, ok := c.Provider(a); ok {
			out.Providers = append(out.Providers, k.providerView(c, p))
		}
	}
	for _, id := range r.Orders {
		if o, err := c.Order(id); err == nil {
			out.Orders = append(out.Orders, *o)
		}
	}
	for _, id := range r.Bids {
		if b, err := c.Bid(id); err == nil {
			out.Bids = append(out.Bids, *b)
		}
	}
	for _, id := range r.Leases {
		if l, err := c.Lease(id); err == nil {
			out.Leases = append(out.Leases, k.leaseView(c, l))
		}
	}
	return out, nil
}

func (k *modules) providerView(c *ctx, p *api.Provider) api.ProviderView {
	return api.ProviderView{Provider: *p, ReputationPPM: p.ReputationPPM(), RequiredStake: c.Params.RequiredStake(p.Info.Hardware.GPUCount())}
}

func (k *modules) leaseView(c *ctx, l *api.Lease) api.LeaseView {
	v := api.LeaseView{Lease: *l}
	now := lastTime(c.KV)
	if l.State == api.LeaseActive {
		v.EndMs = l.EndMs()
		v.CloseMs = l.CloseAtMs(c.Params.CompletionGraceSec)
		v.EarnedAt = l.EarnedAt(now)
		v.Unpaid = v.EarnedAt - l.Paid
	} else {
		v.EarnedAt = l.Paid
	}
	if b, ok := c.KV.Get(schema.IDKey(schema.PReceipt, l.ID)); ok {
		v.Receipt = kernel.MustDecode(schema.DecReceipt(b))
	}
	return v
}

func (k *modules) getByID(c *ctx, path string, id uint64) (any, error) {
	var err error
	var out any
	switch path {
	case api.QueryOrder:
		out, err = c.Order(id)
	case api.QueryBid:
		out, err = c.Bid(id)
	case api.QueryLease:
		var l *api.Lease
		if l, err = c.Lease(id); err == nil {
			out = k.leaseView(c, l)
		}
	case api.QueryReceipt:
		b, ok := c.KV.Get(schema.IDKey(schema.PReceipt, id))
		if !ok {
			if _, err := c.Lease(id); err != nil {
				return nil, notFound{err}
			}
			return nil, notFoundf("lease %d has no receipt: it has not completed (closed leases have none)", id)
		}
		out = kernel.MustDecode(schema.DecReceipt(b))
	}
	if tx.CodeOf(err) == tx.CodeNotFound {
		return nil, notFound{err}
	}
	return out, err
}

func (k *modules) list(c *ctx, path string, r api.ListRequest) (any, error) {
	limit := r.Limit
	if limit <= 0 {
		limit = api.DefaultPageLimit
	}
	if limit > api.MaxPageLimit {
		return nil, fmt.Errorf("limit %d above the maximum %d", limit, api.MaxPageLimit)
	}
	if path == api.QueryProviders {
		return k.listProviders(c, r, limit)
	}
	if path == api.QueryStorageOffers {
		var after *tx.Address
		if r.After != "" {
			a, err := tx.ParseAddress(r.After)
			if err != nil {
				return nil, fmt.Errorf("after: %w", err)
			}
			after = &a
		}
		return k.Storage.Offers(c, after, limit), nil
	}
	var prefix string
	switch {
	case path == api.QueryOrders && !r.Tenant.IsZero():
		prefix = schema.AddrKey(schema.POrderByTenant, r.Tenant)
	case path == api.QueryOrders && r.Open:
		prefix = schema.POrderOpen
	case path == api.QueryOrders:
		prefix = schema.POrder
	case path == api.QueryBids && r.OrderID != 0:
		prefix = schema.IDKey(schema.PBidByOrder, r.OrderID)
	case path == api.QueryBids && !r.Provider.IsZero():
		prefix = schema.AddrKey(schema.PBidByProvider, r.Provider)
	case path == api.QueryBids:
		prefix = schema.PBid
	case path == api.QueryLeases && !r.Tenant.IsZero():
		prefix = schema.AddrKey(schema.PLeaseByTenant, r.Tenant)
	case path == api.QueryLeases && !r.Provider.IsZero():
		prefix = schema.AddrKey(schema.PLeaseByProv, r.Provider)
	default:
		prefix = schema.PLease
	}
	start := prefix
	if r.After != "" {
		after, err := strconv.ParseUint(r.After, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("after %q: want the id from a previous page's \"next\"", r.After)
		}
		start = prefix + schema.BE64(after+1)
	}
	var ids []uint64
	more := false
	c.KV.Iterate(start, schema.PrefixEnd(prefix), func(k string, _ []byte) bool {
		if len(ids) == limit {
			more = true
			return false
		}
		ids = append(ids, schema.UnBE64(k[len(prefix):len(prefix)+8]))
		return true
	})
	next := ""
	if more {
		next = strconv.FormatUint(ids[len(ids)-1], 10)
	}
	switch path {
	case api.QueryOrders:
		out := api.List[*api.Order]{Items: []*api.Order{}, Next: next}
		for _, id := range ids {
			o, err := c.Order(id)
			if err != nil {
				return nil, err
			}
			if r.Open && o.State != api.OrderOpen {
				continue
			}
			out.Items = append(out.Items, o)
		}
		return out, nil
	case api.QueryBids:
		out := api.List[*api.Bid]{Items: []*api.Bid{}, Next: next}
		for _, id := range ids {
			b, err := c.Bid(id)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, b)
		}
		return out, nil
	default:
		out := api.List[api.LeaseView]{Items: []api.LeaseView{}, Next: next}
		for _, id := range ids {
			l, err := c.Lease(id)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, k.leaseView(c, l))
		}
		return out, nil
	}
}

func (k *modules) listProviders(c *ctx, r api.ListRequest, limit int) (any, error) {
	start := schema.PProvider
	if r.After != "" {
		a, err := tx.ParseAddress(r.After)
		if err != nil {
			return nil, fmt.Errorf("after: %w", err)
		}
		start = schema.AddrKey(schema.PProvider, a) + "\x00"
	}
	out := api.List[api.ProviderView]{Items: []api.ProviderView{}}
	c.KV.Iterate(start, schema.PrefixEnd(schema.PProvider), func(_ string, v []byte) bool {
		if len(out.Items) == limit {
			out.Next = out.Items[len(out.Items)-1].Owner.String()
			return false
		}
		out.Items = append(out.Items, k.providerView(c, kernel.MustDecode(schema.DecProvider(v))))
		return true
	})
	return out, nil
}

// simulate runs a transaction on a copy of the mempool's state, with its signature unchecked (a client simulates
// before it knows the fee it will sign) but charged for. Its gas limit caps the run as in a block.
func (a *App) simulate(raw []byte) (*abci.ResponseQuery, error) {
	t, err := tx.Decode(raw)
	if err != nil {
		return &abci.ResponseQuery{Code: api.QueryCodeBadRequest, Log: err.Error(), Codespace: codespace}, nil
	}
	a.checkMu.Lock()
	fork, h := a.check.Fork(), a.checkH-1
	c := &ctx{KV: fork, ChainID: a.checkChain, Height: a.checkH, TimeMs: a.checkTime, Params: kernel.LoadParams(a.check), Quiet: true, Simulate: true, Hooks: a.mods.hooks}
	a.checkMu.Unlock()
	var used uint64
	err = guard(func() (err error) {
		used, err = a.mods.execTx(c, t, false, ^uint64(0))
		return err
	})
	out := api.Simulation{GasUsed: used, Code: uint32(tx.CodeOf(err))}
	if err != nil {
		out.Log = err.Error()
	}
	b, err := json.Marshal(out)
	return &abci.ResponseQuery{Value: b, Height: h}, err
}

func (a *App) pendingAccount(addr tx.Address) (*abci.ResponseQuery, error) {
	a.checkMu.Lock()
	defer a.checkMu.Unlock() // released even if the account does not decode
	acc := (&ctx{KV: a.check}).Account(addr)
	h := a.checkH - 1
	b, err := json.Marshal(acc)
	return &abci.ResponseQuery{Value: b, Height: h}, err
}

// vaultQuery answers Spare Vault's queries.
func (k *modules) vaultQuery(c *ctx, height int64, path string, data []byte) (any, error) {
	limit := func(l int) (int, error) {
		switch {
		case l <= 0:
			return api.DefaultPageLimit, nil
		case l > api.MaxPageLimit:
			return 0, fmt.Errorf("limit %d above the maximum %d", l, api.MaxPageLimit)
		}
		return l, nil
	}
	switch path {
	case api.QueryVaultObject:
		var r api.IDRequest
		if err := decodeReq(data, &r); err != nil {
			return nil, err
		}
		o, ok := k.Storage.Object(c, r.ID)
		if !ok {
			return nil, notFoundf("vault object %d not found", r.ID)
		}
		return o, nil
	case api.QueryVaultObjects:
		var r api.VaultObjectsRequest
		if err := decodeReq(data, &r); err != nil {
			return nil, err
		}
		if r.Owner.IsZero() == r.Root.IsZero() {
			return nil, fmt.Errorf("give an owner or a root, not both or neither")
		}
		n, err := limit(r.Limit)
		if err != nil {
			return nil, err
		}
		return k.Storage.Objects(c, r, n), nil
	case api.QueryVaultShards:
		var r api.VaultShardsRequest
		if err := decodeReq(data, &r); err != nil {
			return nil, err
		}
		n, err := limit(r.Limit)
		if err != nil {
			return nil, err
		}
		o, ok := k.Storage.Object(c, r.ID)
		if !ok {
			return nil, notFoundf("vault object %d not found", r.ID)
		}
		return k.Storage.Shards(c, o, r.From, n), nil
	case api.QueryVaultEpoch:
		var r api.EpochRequest
		if err := decodeReq(data, &r); err != nil {
			return nil, err
		}
		if c.Params.EpochBlocks == 0 {
			return nil, fmt.Errorf("auditing is off on this chain (params.epoch_blocks is 0): no storage proofs")
		}
		e := k.Trust.EpochOf(c, height)
		if r.Epoch != nil {
			e = *r.Epoch
		}
		rec, ok := k.Storage.Epoch(c, e)
		if !ok {
			return nil, notFoundf("epoch %d has no Vault record: not started (the current epoch is %d) or too old", e, k.Trust.EpochOf(c, height))
		}
		return rec, nil
	case api.QueryVaultChallenges:
		var r api.VaultChallengesRequest
		if err := decodeReq(data, &r); err != nil {
			return nil, err
		}
		n, err := limit(r.Limit)
		if err != nil {
			return nil, err
		}
		rec, ok := k.Storage.Epoch(c, r.Epoch)
		if !ok {
			return nil, notFoundf("epoch %d has no Vault record: not started or too old", r.Epoch)
		}
		return k.Storage.Challenges(c, rec, r, n), nil
	case api.QueryVaultPool:
		return k.Storage.Pool(c), nil
	case api.QueryVaultProvider:
		var r api.AddressRequest
		if err := decodeReq(data, &r); err != nil {
			return nil, err
		}
		vp, _ := k.Storage.VaultProvider(c, r.Address)
		return vp, nil
	case api.QueryVaultPlacedOn:
		var r api.VaultPlacedOnRequest
		if err := decodeReq(data, &r); err != nil {
			return nil, err
		}
		n, err := limit(r.Limit)
		if err != nil {
			return nil, err
		}
		return k.Storage.PlacedOn(c, r, n), nil
	default:
		var r api.VaultHeldRequest
		if err := decodeReq(data, &r); err != nil {
			return nil, err
		}
		return k.Storage.Held(c, r.Provider, r.Root, api.MaxPageLimit), nil
	}
}
