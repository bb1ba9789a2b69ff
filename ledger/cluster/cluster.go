package cluster

import (
	"fmt"
	"slices"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/match"
)

func (k *Keeper) Latency(c *kernel.Ctx, a tx.Address) (*api.Latency, bool) {
	b, ok := c.KV.Get(schema.AddrKey(schema.PLatency, a))
	if !ok {
		return nil, false
	}
	return kernel.MustDecode(schema.DecLatency(a, b)), true
}

func (k *Keeper) PublishLatency(c *kernel.Ctx, signer tx.Address, m *tx.PublishLatency) error {
	if _, err := c.MustProvider(signer); err != nil {
		return err
	}
	for i, s := range m.Samples {
		if s.Peer == signer {
			return tx.Errorf(tx.CodeInvalidMsg, "samples[%d]: a provider does not measure itself", i)
		}
	}
	if prev, ok := k.Latency(c, signer); ok && c.Height < prev.Height+api.LatencyIntervalBlocks {
		return tx.Errorf(tx.CodeRateLimited, "latency published at height %d: the next may come at height %d", prev.Height, prev.Height+api.LatencyIntervalBlocks)
	}
	l := &api.Latency{Provider: signer, Height: c.Height, Samples: m.Samples}
	c.KV.Set(schema.AddrKey(schema.PLatency, signer), schema.EncLatency(l))
	c.Emit(api.EventLatencyPublished, api.AttrProvider, signer, api.AttrPeers, uint64(len(m.Samples)))
	return nil
}

func (k *Keeper) CreateClusterOrder(c *kernel.Ctx, tenant tx.Address, m *tx.CreateClusterOrder) error {
	run, err := kernel.MulChecked("deposit", m.Deposit, uint64(m.Nodes))
	if err != nil {
		return err
	}
	total, err := kernel.MulChecked("deposit", run, 1+uint64(m.MaxRestarts))
	if err != nil {
		return err
	}
	o, err := k.Market.OpenOrder(c, tenant, &m.CreateOrder, total, 0)
	if err != nil {
		return err
	}
	o.Nodes = m.Nodes
	c.SetOrder(o)
	c.SetCluster(&api.Cluster{OrderID: o.ID, Nodes: m.Nodes, MaxRTTMicros: m.MaxRTTMicros, OnFailure: m.OnFailure, State: api.ClusterLeasing,
		RestartsLeft: uint32(m.MaxRestarts), Reserve: total - run})
	c.Emit(api.EventClusterOpened, api.AttrOrderID, o.ID, api.AttrTenant, tenant, api.AttrNodes, uint64(m.Nodes), api.AttrMaxRTTUS, uint64(m.MaxRTTMicros),
		api.AttrMaxRestarts, uint64(m.MaxRestarts), api.AttrReserve, total-run)
	return nil
}

// ExcludeFailed refuses a provider's bid on a cluster order when its member failed an earlier generation of the
// same job (a BidFilters hook).
func (k *Keeper) ExcludeFailed(c *kernel.Ctx, o *api.Order, a tx.Address) error {
	if o.Nodes < 2 {
		return nil
	}
	if cl, ok := c.Cluster(o.ID); ok && slices.Contains(cl.Excluded, a) {
		return tx.Errorf(tx.CodeExcluded, "order %d restarts a cluster whose member on %s failed: another provider must take its place", o.ID, a)
	}
	return nil
}

// ClusterBids (the SelectBids hook) picks, among an order's eligible open bids, the cheapest set of Nodes whose pairwise published
// round trips fit the bound, in rank order; nil when none fits yet.
func (k *Keeper) ClusterBids(c *kernel.Ctx, o *api.Order, bids []*api.Bid) []*api.Bid {
	cl, ok := c.Cluster(o.ID)
	if !ok {
		panic("ledger: cluster order without its cluster")
	}
	members := make([]match.Member, len(bids))
	at := make(map[tx.Address]int, len(bids)) // lookups only, never iterated
	for i, b := range bids {
		members[i] = match.Member{Address: b.Provider, Price: b.Price}
		at[b.Provider] = i
	}
	// A pair counts only when both sides measured it (one provider alone cannot claim to be near another), at
	// the worse of the two.
	measured := make([]map[tx.Address]uint32, len(bids)) // lookups only
	published := make([]*api.Latency, len(bids))
	for i, b := range bids {
		if l, ok := k.Latency(c, b.Provider); ok {
			published[i] = l
			measured[i] = make(map[tx.Address]uint32, len(l.Samples))
			for _, s := range l.Samples {
				measured[i][s.Peer] = s.RTTMicros
			}
		}
	}
	var links []match.Link
	for i, b := range bids {
		l := published[i]
		if l == nil {
			continue
		}
		for _, s := range l.Samples {
			j, ok := at[s.Peer]
			if !ok || j < i || measured[j] == nil {
				continue
			}
			if back, ok := measured[j][b.Provider]; ok {
				links = append(links, match.Link{A: i, B: j, RTTMicros: max(s.RTTMicros, back)})
			}
		}
	}
	c.Gas.Consume(kernel.GasSearchBidder * uint64(len(bids)))
	res := match.Cluster(o.ID, int(cl.Nodes), cl.MaxRTTMicros, members, links, api.ClusterSearchBudget)
	c.Gas.Consume(kernel.GasSearchStep * uint64(res.Steps))
	cl.SearchSteps += uint64(res.Steps)
	c.SetCluster(cl)
	if res.Members == nil {
		return nil
	}
	out := make([]*api.Bid, len(res.Members))
	for k, i := range res.Members {
		out[k] = bids[i]
	}
	return out
}

// ClusterLeased records a cluster's members, in rank order (a LeasesCreated hook).
func (k *Keeper) ClusterLeased(c *kernel.Ctx, o *api.Order, leases []uint64) {
	if o.Nodes < 2 {
		return
	}
	cl, ok := c.Cluster(o.ID)
	if !ok {
		return
	}
	cl.Leases, cl.State = leases, api.ClusterRunning
	c.SetCluster(cl)
	c.Emit(api.EventClusterLeased, api.AttrOrderID, o.ID, api.AttrTenant, o.Tenant, api.AttrNodes, uint64(cl.Nodes), api.AttrMasterLease, leases[0])
}

// ClusterOrderEnded marks a cluster order that ended unleased and refunds its reserve (an OrderEnded hook).
func (k *Keeper) ClusterOrderEnded(c *kernel.Ctx, o *api.Order) error {
	cl, ok := c.Cluster(o.ID)
	if !ok || cl.State != api.ClusterLeasing {
		return nil
	}
	cl.State = api.ClusterCancelled
	if err := k.refundReserve(c, cl, o.Tenant); err != nil {
		return err
	}
	c.SetCluster(cl)
	c.Emit(api.EventClusterCancelled, api.AttrOrderID, o.ID, api.AttrTenant, o.Tenant, api.AttrGeneration, uint64(cl.Generation))
	return nil
}

// refundReserve gives a cluster's unspent restart reserve back to the tenant (the caller saves cl).
func (k *Keeper) refundReserve(c *kernel.Ctx, cl *api.Cluster, tenant tx.Address) error {
	if cl.Reserve == 0 {
		return nil
	}
	if err := c.Credit(tenant, cl.Reserve, kernel.InEscrow); err != nil {
		return err
	}
	c.Emit(api.EventClusterReserveRefunded, api.AttrOrderID, cl.OrderID, api.AttrTenant, tenant, api.AttrAmount, cl.Reserve)
	cl.Reserve = 0
	return nil
}

// MemberEnded applies the failure policy when a member's lease ends otherwise than by completing, and marks
// the cluster done when every member has completed (a LeaseEnded hook).
func (k *Keeper) MemberEnded(c *kernel.Ctx, e kernel.LeaseEnd) {
	l, o := e.Lease, e.Order
	if o.Nodes < 2 {
		return
	}
	cl, ok := c.Cluster(o.ID)
	if !ok || cl.State != api.ClusterRunning {
		return
	}
	why := l.CloseReason
	// A member completed in its completion grace ran its whole duration: the provider stopped it there, so a
	// non-zero exit code (the stop's signal) is no failure of the job.
	if l.State == api.LeaseCompleted && !(l.StartedMs != 0 && l.EndedMs == l.EndMs() && l.EndsByDuration()) {
		if b, ok := c.KV.Get(schema.IDKey(schema.PReceipt, l.ID)); ok {
			if rc := kernel.MustDecode(schema.DecReceipt(b)); rc.ExitCode != 0 {
				why = fmt.Sprintf("its workload exited with code %d", rc.ExitCode)
			}
		}
	}
	if l.State == api.LeaseCompleted && why == l.CloseReason {
		for _, id := range cl.Leases {
			if m, err := c.Lease(id); err != nil || m.State != api.LeaseCompleted {
				return
			}
		}
		cl.State = api.ClusterDone
		c.Must(k.refundReserve(c, cl, o.Tenant))
		c.SetCluster(cl)
		c.Emit(api.EventClusterDone, api.AttrOrderID, o.ID, api.AttrTenant, o.Tenant, api.AttrGeneration, uint64(cl.Generation))
		return
	}
	// A failure the tenant caused would end a new run the same way: the tenant closed a member, or a provider
	// closed a member that never started (no manifest came, or the provider refused it). So would a member that
	// ran out of its duration or deposit.
	tenantSide := l.ClosedBy == l.Tenant || l.StartedMs == 0 && l.ClosedBy == l.Provider
	exhausted := l.State == api.LeaseClosed && l.StartedMs != 0 && l.EndedMs == l.EndMs()
	restart := cl.OnFailure == tx.OnFailureRestart && cl.RestartsLeft > 0 && cl.Reserve >= o.Escrowed() && !tenantSide && !exhausted
	cl.State, cl.FailedLease = api.ClusterFailed, l.ID
	if restart {
		cl.State = api.ClusterRestarted
	}
	c.SetCluster(cl) // before closing the others: their ends find the cluster no longer running and stop here
	// The others' reason names the failed member's lease, whose own record keeps the reason its closer wrote; it
	// quotes only text the ledger composed itself, so it has a fixed bound whatever a tenant or provider wrote.
	reason := fmt.Sprintf("cluster member lease %d failed: %s", l.ID, ledgerText(l, why))
	if restart {
		reason += "; the cluster restarts"
	}
	for _, id := range cl.Leases {
		m, err := c.Lease(id)
		if err != nil || id == l.ID || m.State != api.LeasePending && m.State != api.LeaseActive {
			continue
		}
		c.Must(k.Leases.EndLease(c, m, c.TimeMs, api.LeaseClosed, tx.Address{}, reason))
	}
	if !restart {
		c.Must(k.refundReserve(c, cl, o.Tenant))
		c.SetCluster(cl)
		c.Emit(api.EventClusterFailed, api.AttrOrderID, o.ID, api.AttrTenant, o.Tenant, api.AttrLeaseID, l.ID, api.AttrReason, why, api.AttrGeneration, uint64(cl.Generation))
		return
	}
	k.restartCluster(c, cl, o, l, why)
}

// ledgerText says why a member's lease ended in the ledger's own words: its exit code, the ledger's own close
// reason (not started in time, duration reached, deposit exhausted, provider down), or who closed it.
func ledgerText(l *api.Lease, why string) string {
	switch {
	case why != l.CloseReason, l.ClosedBy.IsZero():
		return why
	case l.ClosedBy == l.Tenant:
		return "closed by the tenant"
	}
	return "closed by its provider"
}

// restartCluster opens the next generation of a failed cluster: a new cluster order for the same job, funded by
// the reserve, on which the failed member's provider (and earlier generations' failed ones) may not bid.
func (k *Keeper) restartCluster(c *kernel.Ctx, cl *api.Cluster, o *api.Order, failed *api.Lease, why string) {
	reserve := cl.Reserve - o.Escrowed() // the next generation escrows what this one did
	next := k.Market.OpenFollowUp(c, o, o.Deposit, func(n *api.Order) { n.Nodes = o.Nodes }, api.AttrNodes, uint64(o.Nodes), api.AttrRestartOf, o.ID)
	excluded := cl.Excluded
	if !slices.Contains(excluded, failed.Provider) {
		excluded = append(slices.Clone(excluded), failed.Provider)
	}
	nc := &api.Cluster{OrderID: next.ID, Nodes: cl.Nodes, MaxRTTMicros: cl.MaxRTTMicros, OnFailure: cl.OnFailure, State: api.ClusterLeasing,
		Generation: cl.Generation + 1, RestartsLeft: cl.RestartsLeft - 1, Reserve: reserve, PrevOrder: o.ID, Excluded: excluded}
	cl.Reserve, cl.NextOrder = 0, next.ID // the reserve's escrow now backs the new order and its successors
	c.SetCluster(cl)
	c.SetCluster(nc)
	c.Emit(api.EventClusterRestarted, api.AttrOrderID, o.ID, api.AttrTenant, o.Tenant, api.AttrLeaseID, failed.ID, api.AttrReason, why,
		api.AttrNextOrder, next.ID, api.AttrGeneration, uint64(nc.Generation), api.AttrRestartsLeft, uint64(nc.RestartsLeft), api.AttrExcluded, failed.Provider)
}

func (k *Keeper) ClusterView(c *kernel.Ctx, cl *api.Cluster) api.ClusterView {
	v := api.ClusterView{Cluster: *cl, Members: []api.ClusterMember{}}
	for r, id := range cl.Leases {
		l, err := c.Lease(id)
		if err != nil {
			continue
		}
		m := api.ClusterMember{Rank: r, LeaseID: id, Provider: l.Provider, State: l.State}
		if p, ok := c.Provider(l.Provider); ok {
			m.HostURI = p.Info.HostURI
		}
		v.Members = append(v.Members, m)
	}
	return v
}
