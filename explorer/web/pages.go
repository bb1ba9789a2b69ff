package web

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/svg"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// pageRoutes lists every page; each is also served as JSON under /api.
func (s *Server) pageRoutes() []route {
	return []route{
		{"/{$}", "overview", s.loadOverview},
		{"/providers", "providers", s.loadProviders},
		{"/providers/{address}", "provider", s.loadProvider},
		{"/orders", "orders", s.loadOrders},
		{"/orders/{id}", "order", s.loadOrder},
		{"/leases", "leases", s.loadLeases},
		{"/leases/{id}", "lease", s.loadLease},
		{"/blocks", "blocks", s.loadBlocks},
		{"/blocks/{height}", "block", s.loadBlock},
		{"/txs/{hash}", "tx", s.loadTx},
		{"/accounts", "accounts", s.loadAccounts},
		{"/accounts/{address}", "account", s.loadAccount},
		{"/events", "events", s.loadEvents},
		{"/search", "search", s.loadSearch},
		{"/vault", "vault", s.loadVault},
		{"/vault/objects", "vault_objects", s.loadVaultObjects},
		{"/vault/object/{id}", "vault_object", s.loadVaultObject},
		{"/vault/root/{root}", "vault_root", s.loadVaultRoot},
		{"/vault/offers", "vault_offers", s.loadVaultOffers},
		{"/vault/shards", "vault_shards", s.loadVaultShards},
		{"/vault/epochs", "vault_epochs", s.loadVaultEpochs},
		{"/vault/repairs", "vault_repairs", s.loadVaultRepairs},
		{"/rewards", "rewards", s.loadRewards},
		{"/rewards/epochs", "reward_epochs", s.loadRewardEpochs},
		{"/rewards/earners", "reward_earners", s.loadRewardEarners},
	}
}

// Pager links a list's neighbouring pages, keeping the other query parameters.
type Pager struct {
	Prev, Next string
	From, To   int
	Total      int
}

func pagerOf[T any](r *http.Request, l index.List[T]) Pager {
	p := Pager{Total: l.Total, From: l.Offset + 1, To: l.Offset + len(l.Items)}
	if len(l.Items) == 0 {
		p.From = 0
	}
	at := func(off int) string {
		q := r.URL.Query()
		q.Set("offset", strconv.Itoa(off))
		return r.URL.Path + "?" + q.Encode()
	}
	if l.Offset > 0 {
		p.Prev = at(max(l.Offset-l.Limit, 0))
	}
	if l.Offset+len(l.Items) < l.Total {
		p.Next = at(l.Offset + l.Limit)
	}
	return p
}

// Validator is one validator of the network, as the node reports it.
type Validator struct {
	Address string `json:"address"`
	Power   int64  `json:"voting_power"`
}

// OverviewView is the overview page.
type OverviewView struct {
	index.Overview
	Validators []Validator `json:"validators"`
	// PriceIndex is /api/price-index: a series per GPU model, per GPU-hour, then the CPU-only leases' series,
	// per CPU-core-hour (each series names its unit).
	PriceIndex      []index.PriceSeries `json:"price_index"`
	RecentProviders []index.Provider    `json:"recent_providers"`
	RecentLeases    []index.Lease       `json:"recent_leases"`
	RecentBlocks    []index.Block       `json:"recent_blocks"`
	PriceChart      template.HTML       `json:"-"`
	CPUPriceChart   template.HTML       `json:"-"`
	TxChart         template.HTML       `json:"-"`
	GPUChart        template.HTML       `json:"-"`
}

func (s *Server) loadOverview(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	return s.memo(r.Context(), "overview", func() (any, error) {
		ctx := r.Context()
		var v OverviewView
		var err error
		if v.Overview, err = s.db.Overview(ctx); err != nil {
			return nil, err
		}
		v.Validators = s.validators(ctx)
		if v.PriceIndex, err = s.priceIndex(ctx, 24); err != nil {
			return nil, err
		}
		provs, err := s.db.Providers(ctx, index.ProviderFilter{Sort: "registered"}, index.Page{Limit: 8})
		if err != nil {
			return nil, err
		}
		leases, err := s.db.Leases(ctx, index.ObjectFilter{}, index.Page{Limit: 10})
		if err != nil {
			return nil, err
		}
		if v.RecentBlocks, err = s.db.RecentBlocks(ctx, 100); err != nil {
			return nil, err
		}
		v.RecentProviders, v.RecentLeases = provs.Items, leases.Items
		v.PriceChart, v.CPUPriceChart = priceCharts(v.PriceIndex)
		v.TxChart = txChart(v.RecentBlocks)
		v.GPUChart = gpuChart(v.GPUs)
		if len(v.RecentBlocks) > 10 {
			v.RecentBlocks = slices.Clone(v.RecentBlocks[len(v.RecentBlocks)-10:])
		}
		slices.Reverse(v.RecentBlocks)
		return v, nil
	})
}

func (s *Server) loadPriceIndex(r *http.Request) (any, error) {
	if err := known(r, "buckets"); err != nil {
		return nil, err
	}
	n, err := intParam(r, "buckets", 24, 200)
	if err != nil {
		return nil, err
	}
	return s.priceIndex(r.Context(), n)
}

// priceIndex is the GPU price index's series followed by the CPU one's, in up to n time buckets each.
func (s *Server) priceIndex(ctx context.Context, n int) ([]index.PriceSeries, error) {
	gpu, err := s.db.PriceIndex(ctx, n)
	if err != nil {
		return nil, err
	}
	cpu, err := s.db.CPUPriceIndex(ctx, n)
	return append(gpu, cpu...), err
}

func (s *Server) validators(ctx context.Context) []Validator {
	if s.c == nil {
		return []Validator{}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := s.c.RPC().Validators(ctx, nil, nil, nil)
	if err != nil {
		s.log.Warn("validators", "err", err)
		return []Validator{}
	}
	out := make([]Validator, 0, len(res.Validators))
	for _, v := range res.Validators {
		out = append(out, Validator{Address: v.Address.String(), Power: v.VotingPower})
	}
	return out
}

func sprFloat(uspr uint64) float64 { return float64(uspr) / float64(api.USPR) }

// priceCharts draws the price index: the GPU models' series on one chart, the CPU-only series on another (their
// units differ).
func priceCharts(ps []index.PriceSeries) (gpu, cpu template.HTML) {
	var gpus, cpus []svg.Series
	for _, p := range ps {
		s := svg.Series{Name: p.Model, Href: "/providers?model=" + url.QueryEscape(p.Model)}
		if p.Unit == index.UnitCPUCoreHour {
			s.Name, s.Href = "CPU-only leases", "/leases"
		}
		for _, pt := range p.Points {
			s.Points = append(s.Points, svg.Point{X: pt.StartMs, Y: sprFloat(pt.Median)})
		}
		if p.Unit == index.UnitCPUCoreHour {
			cpus = append(cpus, s)
		} else {
			gpus = append(gpus, s)
		}
	}
	return svg.LineChart(gpus, svg.Options{Title: "Median price per GPU-hour, by model", YLabel: "SPR / GPU-hour", TimeX: true}),
		svg.LineChart(cpus, svg.Options{Title: "Median price per CPU-core-hour, leases without GPUs", YLabel: "SPR / core-hour", TimeX: true})
}

func txChart(blocks []index.Block) template.HTML {
	s := svg.Series{Name: "transactions per block"}
	for _, b := range blocks {
		s.Points = append(s.Points, svg.Point{X: b.TimeMs, Y: float64(b.Txs)})
	}
	return svg.LineChart([]svg.Series{s}, svg.Options{Title: "Transactions per block (last 100 blocks)", YLabel: "txs", TimeX: true})
}

func gpuChart(gpus []index.ModelCount) template.HTML {
	var bars []svg.Bar
	for _, g := range gpus {
		label := g.Model
		if label == "" {
			label = "(any)"
		}
		bars = append(bars, svg.Bar{Label: label, Value: float64(g.Online), Href: "/providers?model=" + url.QueryEscape(g.Model)})
	}
	return svg.BarChart(bars, svg.Options{Title: "GPUs online by model", YLabel: "GPUs"})
}

// ProvidersView is the providers table.
type ProvidersView struct {
	index.List[index.Provider]
	Filter index.ProviderFilter `json:"filter"`
	Sorts  []string             `json:"-"`
	Pager  Pager                `json:"-"`
	Query  url.Values           `json:"-"`
}

func (s *Server) loadProviders(r *http.Request) (any, error) {
	if err := known(r, "model", "region", "status", "verified", "sort", "order"); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	f := index.ProviderFilter{Model: q.Get("model"), Region: q.Get("region"), Status: q.Get("status"), Verified: q.Get("verified"), Sort: q.Get("sort")}
	switch q.Get("order") {
	case "", "desc":
	case "asc":
		f.Asc = true
	default:
		return nil, badRequest("order %q: use asc or desc", q.Get("order"))
	}
	if err := f.Validate(); err != nil {
		return nil, badRequest("%v", err)
	}
	l, err := s.db.Providers(r.Context(), f, p)
	if err != nil {
		return nil, err
	}
	return ProvidersView{List: l, Filter: f, Sorts: index.ProviderSorts, Pager: pagerOf(r, l), Query: q}, nil
}

// ProviderView is a provider's page. Its lists are named apart from the provider's own fields: a list named
// Leases would hide the provider's lease count (index.Provider.Leases), in the template and in the JSON alike
// (TestViewsHideNoField).
type ProviderView struct {
	index.Provider
	Balance   *uint64                 `json:"balance,omitempty"` // live from the node
	Latency   *LatencyView            `json:"latency,omitempty"` // its published round trips, live from the node
	LeaseList index.List[index.Lease] `json:"lease_list"`        // the newest leases it served
	// Outcomes count its leases by how they ended, as the explorer sees them; Completed and Failed are the
	// ledger's record, which counts neither a job's exit code nor a lease closed before it started.
	Outcomes      index.LeaseOutcomes       `json:"lease_outcomes"`
	Payments      index.List[index.Payment] `json:"payments"`
	Bids          index.List[index.Bid]     `json:"bids"`
	Events        index.List[index.Event]   `json:"events"`
	Earnings      []index.Sum               `json:"earnings"`
	EarningsChart template.HTML             `json:"-"`
	// Storage is its Spare Vault offer and what it holds; VaultShards the newest shards placed on it.
	Storage     index.ProviderStorage        `json:"storage"`
	VaultShards index.List[index.VaultShard] `json:"vault_shards"`
	// VaultEarnings is what the Vault pool paid it and how its proofs went; VaultEpochs its newest epochs paid,
	// VaultProofs the newest proof events naming it (failures, shards lost, repairs drawn onto it).
	VaultEarnings index.VaultEarnings                  `json:"vault_earnings"`
	VaultEpochs   index.List[index.VaultProviderEpoch] `json:"vault_epochs"`
	VaultProofs   index.List[index.VaultProofEvent]    `json:"vault_proofs"`
	VaultChart    template.HTML                        `json:"-"`
	// Rewards are what it was paid in rewards (earned, claimed, forfeited, owed: rewards.go), RewardEpochs its
	// newest epochs judged or paid, each with why, RewardsLive what the node says it is owed now and would weigh.
	Rewards      index.RewardTotals            `json:"rewards"`
	RewardEpochs index.List[index.EpochReward] `json:"reward_epochs"`
	RewardsLive  *api.RewardsView              `json:"rewards_live,omitempty"`
	RewardsChart template.HTML                 `json:"-"`
}

func (s *Server) loadProvider(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	addr, err := addrParam(r.PathValue("address"), "provider address")
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	p, err := s.db.Provider(ctx, addr)
	if err != nil {
		return nil, err
	}
	v := ProviderView{Provider: p, Balance: s.balance(ctx, addr), Latency: s.latency(ctx, addr)}
	if v.LeaseList, err = s.db.Leases(ctx, index.ObjectFilter{Provider: addr}, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if v.Outcomes, err = s.db.ProviderLeaseOutcomes(ctx, addr); err != nil {
		return nil, err
	}
	if v.Payments, err = s.db.Payments(ctx, addr, 0, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if v.Bids, err = s.db.Bids(ctx, 0, addr, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if v.Events, err = s.db.Events(ctx, index.EventFilter{Kind: "account", Ref: addr}, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if v.Earnings, err = s.db.Earnings(ctx, addr, 30); err != nil {
		return nil, err
	}
	if v.Storage, err = s.db.ProviderStorage(ctx, addr); err != nil {
		return nil, err
	}
	if v.VaultShards, err = s.db.VaultShards(ctx, index.VaultShardFilter{Provider: addr}, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if v.VaultEarnings, err = s.db.VaultEarnings(ctx, addr); err != nil {
		return nil, err
	}
	if v.VaultEpochs, err = s.db.VaultProviderEpochs(ctx, addr, index.Page{Limit: 30}); err != nil {
		return nil, err
	}
	if v.VaultProofs, err = s.db.VaultProofEvents(ctx, index.VaultProofFilter{Provider: addr}, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if err := s.providerRewards(ctx, &v); err != nil {
		return nil, err
	}
	if v.VaultEpochs.Total > 0 {
		var vbars []svg.Bar
		for _, e := range slices.Backward(v.VaultEpochs.Items) {
			vbars = append(vbars, svg.Bar{Label: "epoch " + strconv.FormatUint(e.Epoch, 10), Value: sprFloat(e.Amount)})
		}
		v.VaultChart = svg.BarChart(vbars, svg.Options{Title: "Vault pay by epoch (the last 30 paid)", YLabel: "SPR"})
	}
	var bars []svg.Bar
	for _, e := range v.Earnings {
		bars = append(bars, svg.Bar{Label: time.UnixMilli(e.StartMs).UTC().Format("Jan 2 15:04"), Value: sprFloat(e.Amount)})
	}
	v.EarningsChart = svg.BarChart(bars, svg.Options{Title: "Earnings over time (net of the network's take)", YLabel: "SPR"})
	return v, nil
}

// LatencyView is a provider's published round trips, each peer marked as a provider or an auditor.
type LatencyView struct {
	Height  int64        `json:"height"`
	Samples []LatencyRow `json:"samples"`
}

// LatencyRow is one published round trip.
type LatencyRow struct {
	Peer      tx.Address `json:"peer"`
	RTTMicros uint32     `json:"rtt_us"`
	Auditor   bool       `json:"auditor,omitempty"`
}

// latency reads a provider's published round trips from the node (nil without a node or a publication).
func (s *Server) latency(ctx context.Context, addr string) *LatencyView {
	var v *LatencyView
	s.fromNode(ctx, addr, func(ctx context.Context, pa tx.Address) {
		l, err := s.c.Latency(ctx, pa)
		if err != nil {
			return
		}
		auds, _ := s.c.Auditors(ctx)
		v = &LatencyView{Height: l.Height, Samples: []LatencyRow{}}
		for _, smp := range l.Samples {
			v.Samples = append(v.Samples, LatencyRow{Peer: smp.Peer, RTTMicros: smp.RTTMicros,
				Auditor: slices.ContainsFunc(auds, func(a api.Auditor) bool { return a.Address == smp.Peer })})
		}
	})
	return v
}

// fromNode runs read against the node for an address, within 2 s; nothing without a node or a valid address.
func (s *Server) fromNode(ctx context.Context, addr string, read func(context.Context, tx.Address)) {
	if s.c == nil {
		return
	}
	pa, err := tx.ParseAddress(addr)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	read(ctx, pa)
}

func (s *Server) balance(ctx context.Context, addr string) *uint64 {
	var out *uint64
	s.fromNode(ctx, addr, func(ctx context.Context, pa tx.Address) {
		if acc, err := s.c.Account(ctx, pa); err == nil {
			out = &acc.Balance
		}
	})
	return out
}

// ListView is a filtered list page.
type ListView[T any] struct {
	index.List[T]
	Filter index.ObjectFilter `json:"filter"`
	States []string           `json:"-"`
	Pager  Pager              `json:"-"`
}

func objectFilter(r *http.Request, states []string, provider bool) (index.ObjectFilter, error) {
	names := []string{"state", "tenant"}
	if provider {
		names = append(names, "provider")
	}
	if err := known(r, names...); err != nil {
		return index.ObjectFilter{}, err
	}
	q := r.URL.Query()
	f := index.ObjectFilter{State: q.Get("state")}
	if f.State != "" && !slices.Contains(states, f.State) {
		return f, badRequest("state %q: use one of %s", f.State, strings.Join(states, ", "))
	}
	var err error
	if f.Tenant, err = addrParam(q.Get("tenant"), "tenant"); err != nil {
		return f, err
	}
	if f.Provider, err = addrParam(q.Get("provider"), "provider"); err != nil {
		return f, err
	}
	return f, nil
}

func (s *Server) loadOrders(r *http.Request) (any, error) {
	f, err := objectFilter(r, index.OrderStates, false)
	if err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	l, err := s.db.Orders(r.Context(), f, p)
	if err != nil {
		return nil, err
	}
	return ListView[index.Order]{List: l, Filter: f, States: index.OrderStates, Pager: pagerOf(r, l)}, nil
}

// OrderView is an order's page.
type OrderView struct {
	index.Order
	Bids   index.List[index.Bid]   `json:"bids"`
	Lease  *index.Lease            `json:"lease,omitempty"`
	Events index.List[index.Event] `json:"events"`
	// Live from the node: a replicated order's comparison of its runs, a cluster order's members, and for a
	// referee run the order it referees.
	Verification *api.VerificationView `json:"verification,omitempty"`
	Cluster      *api.ClusterView      `json:"cluster,omitempty"`
	RefereeFor   uint64                `json:"referee_for,omitempty"`
}

func (s *Server) loadOrder(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	id, err := idParam(r, "id", "order")
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	o, err := s.db.Order(ctx, id)
	if err != nil {
		return nil, err
	}
	v := OrderView{Order: o}
	if v.Bids, err = s.db.Bids(ctx, id, "", index.Page{Limit: index.MaxLimit}); err != nil {
		return nil, err
	}
	if o.LeaseID != 0 {
		if l, err := s.db.Lease(ctx, o.LeaseID); err == nil {
			v.Lease = &l
		}
	}
	v.Events, err = s.db.Events(ctx, index.EventFilter{Kind: "order", Ref: strconv.FormatUint(id, 10)}, index.Page{Limit: 50})
	var lo api.Order
	if json.Unmarshal(o.Ledger, &lo) == nil {
		v.RefereeFor = lo.RefereeFor
		if s.c != nil && (lo.Replicas > 1 || lo.Nodes > 1) {
			nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if vv, err := s.c.Verification(nctx, id); err == nil && lo.Replicas > 1 {
				v.Verification = &vv
			}
			if cv, err := s.c.Cluster(nctx, id); err == nil && lo.Nodes > 1 {
				v.Cluster = &cv
			}
		}
	}
	return v, err
}

func (s *Server) loadLeases(r *http.Request) (any, error) {
	f, err := objectFilter(r, index.LeaseStates, true)
	if err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	l, err := s.db.Leases(r.Context(), f, p)
	if err != nil {
		return nil, err
	}
	return ListView[index.Lease]{List: l, Filter: f, States: index.LeaseStates, Pager: pagerOf(r, l)}, nil
}

// LeaseView is a lease's page.
type LeaseView struct {
	index.Lease
	Payments index.List[index.Payment] `json:"payments"`
	Events   index.List[index.Event]   `json:"events"`
	Receipt  json.RawMessage           `json:"receipt,omitempty"`
}

func (s *Server) loadLease(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	id, err := idParam(r, "id", "lease")
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	l, err := s.db.Lease(ctx, id)
	if err != nil {
		return nil, err
	}
	v := LeaseView{Lease: l}
	var lv struct {
		Receipt json.RawMessage `json:"receipt"`
	}
	if json.Unmarshal(l.Ledger, &lv) == nil && len(lv.Receipt) > 0 && string(lv.Receipt) != "null" {
		v.Receipt = lv.Receipt
	}
	if v.Payments, err = s.db.Payments(ctx, "", id, index.Page{Limit: index.MaxLimit}); err != nil {
		return nil, err
	}
	v.Events, err = s.db.Events(ctx, index.EventFilter{Kind: "lease", Ref: strconv.FormatUint(id, 10)}, index.Page{Limit: 100})
	return v, err
}

// BlocksView is the blocks list.
type BlocksView struct {
	index.List[index.Block]
	Pager Pager `json:"-"`
}

func (s *Server) loadBlocks(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	l, err := s.db.Blocks(r.Context(), p)
	if err != nil {
		return nil, err
	}
	return BlocksView{List: l, Pager: pagerOf(r, l)}, nil
}

// BlockView is a block's page.
type BlockView struct {
	index.Block
	Transactions index.List[index.Tx]    `json:"transactions"`
	EventList    index.List[index.Event] `json:"event_list"` // not "events": the block's event count is
	Pager        Pager                   `json:"-"`
}

func (s *Server) loadBlock(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	h, err := strconv.ParseInt(r.PathValue("height"), 10, 64)
	if err != nil || h <= 0 {
		return nil, badRequest("block height %q: use a positive whole number", r.PathValue("height"))
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	b, err := s.db.Block(ctx, h)
	if err != nil {
		return nil, err
	}
	v := BlockView{Block: b}
	if v.Transactions, err = s.db.Txs(ctx, index.TxFilter{Height: h}, p); err != nil {
		return nil, err
	}
	v.Pager = pagerOf(r, v.Transactions)
	v.EventList, err = s.db.Events(ctx, index.EventFilter{Height: h}, index.Page{Limit: index.MaxLimit})
	return v, err
}

// TxView is a transaction's page.
type TxView struct {
	index.Tx
	Events index.List[index.Event] `json:"events"`
}

func (s *Server) loadTx(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	h := r.PathValue("hash")
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return nil, badRequest("transaction hash %q: want 64 hex digits", h)
	}
	ctx := r.Context()
	t, err := s.db.Tx(ctx, h)
	if err != nil {
		return nil, err
	}
	v := TxView{Tx: t}
	v.Events, err = s.db.Events(ctx, index.EventFilter{TxHash: t.Hash}, index.Page{Limit: index.MaxLimit})
	return v, err
}

// AccountsView is the accounts list.
type AccountsView struct {
	index.List[AccountRow]
	Pager Pager `json:"-"`
}

// AccountRow is an account in the list, with its live balance.
type AccountRow struct {
	index.Account
	Balance *uint64 `json:"balance,omitempty"` // live from the node
}

func (s *Server) loadAccounts(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	l, err := s.db.Accounts(ctx, p)
	if err != nil {
		return nil, err
	}
	auds := s.auditors(ctx)
	rows := index.List[AccountRow]{Items: make([]AccountRow, len(l.Items)), Total: l.Total, Offset: l.Offset, Limit: l.Limit}
	addrs := make([]string, len(l.Items))
	for i, a := range l.Items {
		rows.Items[i] = AccountRow{Account: withAuditor(a, auds)}
		addrs[i] = a.Address
	}
	for i, b := range s.balances(ctx, addrs) {
		rows.Items[i].Balance = b
	}
	return AccountsView{List: rows, Pager: pagerOf(r, l)}, nil
}

// withAuditor adds the role "auditor" to an account in the auditor set (which the node knows, not the index).
func withAuditor(a index.Account, auditors map[string]bool) index.Account {
	if auditors[a.Address] {
		a.Roles = append(slices.Clone(a.Roles), "auditor")
	}
	return a
}

// auditors is the auditor set, live from the node (empty without one).
func (s *Server) auditors(ctx context.Context) map[string]bool {
	out := map[string]bool{}
	if s.c == nil {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	auds, err := s.c.Auditors(ctx)
	if err != nil {
		return out
	}
	for _, a := range auds {
		out[a.Address.String()] = true
	}
	return out
}

// balances reads the balances of a page of accounts from the node, a few at a time, within 2 s in all; an
// account the node did not answer for gets nil. The ledger has no query for many accounts at once.
func (s *Server) balances(ctx context.Context, addrs []string) []*uint64 {
	out := make([]*uint64, len(addrs))
	if s.c == nil {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, a := range addrs {
		pa, err := tx.ParseAddress(a)
		if err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if acc, err := s.c.Account(ctx, pa); err == nil {
				out[i] = &acc.Balance
			}
		}()
	}
	wg.Wait()
	return out
}

// AccountView is an address's page. Its list of transactions is named apart from the account's transaction
// count (index.Account.Txs), which it would otherwise hide.
type AccountView struct {
	index.Account
	Balance  *uint64                 `json:"balance,omitempty"` // live from the node
	Provider bool                    `json:"provider"`          // registered as a provider (also in roles)
	TxList   index.List[index.Tx]    `json:"tx_list"`
	Events   index.List[index.Event] `json:"events"`
	Orders   index.List[index.Order] `json:"orders"`
	Leases   index.List[index.Lease] `json:"leases"` // as tenant
	// VaultObjects are the newest objects it stored in Spare Vault.
	VaultObjects index.List[index.VaultObject] `json:"vault_objects"`
}

func (s *Server) loadAccount(r *http.Request) (any, error) {
	if err := known(r); err != nil {
		return nil, err
	}
	addr, err := addrParam(r.PathValue("address"), "address")
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	a, err := s.db.Account(ctx, addr)
	if err != nil {
		return nil, err
	}
	v := AccountView{Account: withAuditor(a, s.auditors(ctx)), Balance: s.balance(ctx, addr), Provider: slices.Contains(a.Roles, "provider")}
	if v.TxList, err = s.db.Txs(ctx, index.TxFilter{Signer: addr}, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if v.Events, err = s.db.Events(ctx, index.EventFilter{Kind: "account", Ref: addr}, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if v.Orders, err = s.db.Orders(ctx, index.ObjectFilter{Tenant: addr}, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	if v.Leases, err = s.db.Leases(ctx, index.ObjectFilter{Tenant: addr}, index.Page{Limit: 20}); err != nil {
		return nil, err
	}
	v.VaultObjects, err = s.db.VaultObjects(ctx, index.VaultFilter{Owner: addr}, index.Page{Limit: 20})
	return v, err
}

// EventsView lists events naming an object: what a figure is made of.
type EventsView struct {
	index.List[index.Event]
	Filter index.EventFilter `json:"filter"`
	Pager  Pager             `json:"-"`
}

var refKinds = []string{"account", "provider", "order", "bid", "lease", "object"}

func (s *Server) loadEvents(r *http.Request) (any, error) {
	if err := known(r, "kind", "ref", "type", "height"); err != nil {
		return nil, err
	}
	q := r.URL.Query()
	f := index.EventFilter{Kind: q.Get("kind"), Ref: q.Get("ref"), Type: q.Get("type")}
	if (f.Kind == "") != (f.Ref == "") {
		return nil, badRequest("kind and ref go together: e.g. kind=lease&ref=7 or kind=account&ref=spare1...")
	}
	if f.Kind != "" && !slices.Contains(refKinds, f.Kind) {
		return nil, badRequest("kind %q: use one of %s", f.Kind, strings.Join(refKinds, ", "))
	}
	switch f.Kind {
	case "account", "provider":
		a, err := addrParam(f.Ref, "ref")
		if err != nil {
			return nil, err
		}
		f.Ref = a
	case "order", "bid", "lease", "object":
		if n, err := strconv.ParseUint(f.Ref, 10, 64); err != nil || n == 0 {
			return nil, badRequest("ref %q: a %s id is a positive whole number", f.Ref, f.Kind)
		}
	}
	if v := q.Get("height"); v != "" {
		h, err := strconv.ParseInt(v, 10, 64)
		if err != nil || h <= 0 {
			return nil, badRequest("height %q: use a positive whole number", v)
		}
		f.Height = h
	}
	if f.Type != "" && !validEventType(f.Type) {
		return nil, badRequest("type %q: an event type is like lease.paid or provider.registered", f.Type)
	}
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	l, err := s.db.Events(r.Context(), f, p)
	if err != nil {
		return nil, err
	}
	return EventsView{List: l, Filter: f, Pager: pagerOf(r, l)}, nil
}

func validEventType(t string) bool {
	if len(t) > 64 {
		return false
	}
	for _, c := range t {
		if !(c >= 'a' && c <= 'z' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// SearchView is what a search found.
type SearchView struct {
	Query   string   `json:"query"`
	Matches []string `json:"matches"` // paths of the pages that match
}

func (s *Server) loadSearch(r *http.Request) (any, error) {
	if err := known(r, "q"); err != nil {
		return nil, err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		return nil, badRequest("q is empty: search for an address, a tx hash, a Vault root, a block height, or an order, lease or Vault object id")
	}
	if len(q) > 128 {
		return nil, badRequest("q is %d characters: nothing searchable is that long", len(q))
	}
	ctx := r.Context()
	v := SearchView{Query: q, Matches: []string{}}
	if a, err := tx.ParseAddress(q); err == nil {
		if _, err := s.db.Provider(ctx, a.String()); err == nil {
			v.Matches = append(v.Matches, "/providers/"+a.String()) // its page links to the account
		} else if _, err := s.db.Account(ctx, a.String()); err == nil {
			v.Matches = append(v.Matches, "/accounts/"+a.String())
		}
	} else if b, err := hex.DecodeString(q); err == nil && len(b) == 32 {
		if t, err := s.db.Tx(ctx, q); err == nil {
			v.Matches = append(v.Matches, "/txs/"+t.Hash)
		}
		root := strings.ToLower(q)
		if objects, shards, err := s.db.VaultRootMatches(ctx, root); err != nil {
			return nil, err
		} else if objects+shards > 0 {
			v.Matches = append(v.Matches, "/vault/root/"+root)
		}
	} else if n, err := strconv.ParseUint(strings.TrimPrefix(q, "#"), 10, 63); err == nil && n > 0 {
		if _, err := s.db.Block(ctx, int64(n)); err == nil {
			v.Matches = append(v.Matches, fmt.Sprintf("/blocks/%d", n))
		}
		if _, err := s.db.Order(ctx, n); err == nil {
			v.Matches = append(v.Matches, fmt.Sprintf("/orders/%d", n))
		}
		if _, err := s.db.Lease(ctx, n); err == nil {
			v.Matches = append(v.Matches, fmt.Sprintf("/leases/%d", n))
		}
		if _, err := s.db.VaultObject(ctx, n); err == nil {
			v.Matches = append(v.Matches, fmt.Sprintf("/vault/object/%d", n))
		}
	} else {
		return nil, badRequest("%q is not an address (spare1...), a 64-digit tx hash or Vault root, or a number", q)
	}
	return v, nil
}

// page renders a route as HTML; with the header X-Partial (sent by live.js) only the <main> content.
func (s *Server) page(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := rt.load(r)
		if err != nil {
			code, msg := status(err)
			if code == http.StatusInternalServerError {
				s.log.Error("page", "path", r.URL.Path, "err", err)
			}
			s.renderError(w, r, code, msg)
			return
		}
		if sv, ok := v.(SearchView); ok && len(sv.Matches) == 1 && r.Header.Get("X-Partial") == "" {
			http.Redirect(w, r, sv.Matches[0], http.StatusSeeOther)
			return
		}
		s.render(w, r, http.StatusOK, rt.tmpl, v)
	}
}

// pageData is what every template receives.
type pageData struct {
	Title string
	Path  string
	Live  bool
	V     any
	Error string
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, v any) {
	t := s.tmpl[name]
	d := pageData{Title: titles[name], Path: r.URL.Path, Live: s.ix != nil, V: v}
	var buf bytes.Buffer
	tname := "layout"
	if r.Header.Get("X-Partial") != "" {
		tname = "main"
	}
	if err := t.ExecuteTemplate(&buf, tname, d); err != nil {
		s.log.Error("render", "page", name, "err", err)
		if !errors.Is(err, context.Canceled) {
			http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Vary", "X-Partial") // the same URL answers a whole page or its <main> only
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	t := s.tmpl["error"]
	var buf bytes.Buffer
	_ = t.ExecuteTemplate(&buf, "layout", pageData{Title: http.StatusText(code), Path: r.URL.Path, Error: msg, V: code})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

var titles = map[string]string{
	"overview": "Overview", "providers": "Providers", "provider": "Provider", "orders": "Orders", "order": "Order",
	"leases": "Leases", "lease": "Lease", "blocks": "Blocks", "block": "Block", "tx": "Transaction",
	"accounts": "Accounts", "account": "Account", "events": "Events", "search": "Search",
	"vault": "Vault", "vault_objects": "Vault objects", "vault_object": "Vault object", "vault_root": "Vault root",
	"vault_offers": "Storage offers", "vault_shards": "Vault shards", "vault_epochs": "Vault epochs", "vault_repairs": "Vault repairs",
	"rewards": "Rewards", "reward_epochs": "Reward epochs", "reward_earners": "Top earners",
}
