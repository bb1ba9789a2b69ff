package ledger

import (
	"fmt"
	"slices"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/match"
)

// Clusters. A cluster order (CreateClusterOrder) asks for Nodes members on distinct providers whose every pair
// has a published round trip within MaxRTTMicros. Providers bid per member as on any order; the auction
// leases, all at once or not at all, the cheapest set of bidders that fits the bound (match.Cluster, bounded
// search). Until such a set exists the order stays open and each new bid after the window tries again. One
// escrow holds Deposit per member; each member's lease is paid its own price. Ranks follow the set's order,
// cheapest first: rank 0 hosts the rendezvous (MASTER_ADDR).
//
// Round trips come from the providers themselves: each publishes its latest measurements to up to
// tx.MaxLatencyPeers other providers (PublishLatency), at most once every LatencyIntervalBlocks. A pair counts
// only when both of its providers measured it, at the worse of the two measurements: one provider alone cannot
// claim to be near another. Any other pair is too far.
//
// Failure: a member's lease that ends without completing — closed by either side, not started in time, or
// closed by the auditors' down verdict — or completes with a non-zero exit code (a crashed rank leaves the
// others waiting in their collectives) closes every other running member at once, each billed to now by the
// ordinary rules, so refunds are exact. With OnFailureClose the cluster then ends, failed.
//
// Restart (OnFailureRestart): as a distributed job restarts every rank from its last checkpoint when one rank
// dies (torchrun's elastic restarts do the same), the whole cluster is leased again. The tenant escrowed
// Deposit × Nodes once more for each of MaxRestarts; after the others are closed, that reserve funds a new
// cluster order for the same job — the next generation: a new order id, the same resources, price bound and
// round-trip bound — and the failed member's provider, and every earlier generation's failed one, may not bid
// on it (CodeExcluded). The old cluster records its successor (next_order), the new one its predecessor. A
// failure the tenant caused (the tenant closed a member; a provider closed a member that never started, for no
// manifest came or it was refused) or a member running out of its duration or deposit is not restarted: a new
// run would end the same way. When no restart is left, or the new order ends unleased,
// the cluster ends failed or cancelled as with OnFailureClose, and the unspent reserve goes back to the tenant.
// Members learn their generation as SPARE_RESTART_COUNT.

// LatencyIntervalBlocks is the least number of blocks between two PublishLatency of one provider.
const LatencyIntervalBlocks = 20

// ClusterState is where a cluster order is.
type ClusterState uint8

const (
	ClusterLeasing   ClusterState = 1 // the order is open
	ClusterRunning   ClusterState = 2 // members leased
	ClusterFailed    ClusterState = 3 // a member failed: the others were closed
	ClusterDone      ClusterState = 4 // every member ended by completing
	ClusterCancelled ClusterState = 5 // the order ended unleased
	ClusterRestarted ClusterState = 6 // a member failed: the others were closed and NextOrder leases the cluster again
)

func (s ClusterState) String() string {
	return [...]string{"unknown", "leasing", "running", "failed", "done", "cancelled", "restarted"}[min(int(s), 6)]
}

// MarshalText renders the state name in JSON.
func (s ClusterState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *ClusterState) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("cluster state", b, map[string]ClusterState{"leasing": ClusterLeasing, "running": ClusterRunning,
		"failed": ClusterFailed, "done": ClusterDone, "cancelled": ClusterCancelled, "restarted": ClusterRestarted})
	return err
}

// Cluster is a cluster order's members.
type Cluster struct {
	OrderID      uint64       `json:"order_id"`
	Nodes        uint32       `json:"nodes"`
	MaxRTTMicros uint32       `json:"max_rtt_us"`
	OnFailure    uint8        `json:"on_failure"`
	Leases       []uint64     `json:"leases"` // by rank
	State        ClusterState `json:"state"`
	FailedLease  uint64       `json:"failed_lease,omitempty"`
	SearchSteps  uint64       `json:"search_steps,omitempty"` // what choosing the set cost
	// Restarts (OnFailureRestart only).
	Generation   uint32       `json:"generation,omitempty"`    // 0 for the tenant's order, n for its n-th restart
	RestartsLeft uint32       `json:"restarts_left,omitempty"` // how many more times a failure may restart it
	Reserve      uint64       `json:"reserve,omitempty"`       // escrow kept for those restarts
	PrevOrder    uint64       `json:"prev_order,omitempty"`    // the generation this one restarts
	NextOrder    uint64       `json:"next_order,omitempty"`    // the generation that restarted this one
	Excluded     []tx.Address `json:"excluded,omitempty"`      // providers whose member failed an earlier generation
}

func encCluster(cl *Cluster) []byte {
	w := tx.NewWriter(64)
	w.Uvarint(cl.OrderID)
	w.Uvarint(uint64(cl.Nodes))
	w.Uvarint(uint64(cl.MaxRTTMicros))
	w.Byte(cl.OnFailure)
	w.List("leases", len(cl.Leases), tx.MaxClusterNodes)
	for _, id := range cl.Leases {
		w.Uvarint(id)
	}
	w.Byte(byte(cl.State))
	w.Uvarint(cl.FailedLease)
	w.Uvarint(cl.SearchSteps)
	w.Uvarint(uint64(cl.Generation))
	w.Uvarint(uint64(cl.RestartsLeft))
	w.Uvarint(cl.Reserve)
	w.Uvarint(cl.PrevOrder)
	w.Uvarint(cl.NextOrder)
	w.List("excluded", len(cl.Excluded), tx.MaxClusterRestarts)
	for _, a := range cl.Excluded {
		w.Address(a)
	}
	return sealed(w, "cluster")
}

func decCluster(b []byte) (*Cluster, error) {
	r := tx.NewReader(b)
	cl := &Cluster{OrderID: r.Uvarint("order_id"), Nodes: r.U32("nodes"), MaxRTTMicros: r.U32("max_rtt"), OnFailure: r.Byte("on_failure")}
	n := r.Count("leases", tx.MaxClusterNodes)
	for i := 0; i < n && r.Err() == nil; i++ {
		cl.Leases = append(cl.Leases, r.Uvarint("lease"))
	}
	cl.State = ClusterState(r.Byte("state"))
	cl.FailedLease = r.Uvarint("failed_lease")
	cl.SearchSteps = r.Uvarint("search_steps")
	if r.Remaining() > 0 { // written before restarts existed
		cl.Generation, cl.RestartsLeft = r.U32("generation"), r.U32("restarts_left")
		cl.Reserve, cl.PrevOrder, cl.NextOrder = r.Uvarint("reserve"), r.Uvarint("prev_order"), r.Uvarint("next_order")
		n := r.Count("excluded", tx.MaxClusterRestarts)
		for i := 0; i < n && r.Err() == nil; i++ {
			cl.Excluded = append(cl.Excluded, r.Address("excluded"))
		}
	}
	return cl, r.Done("cluster")
}

func (c *ctx) cluster(orderID uint64) (*Cluster, bool) {
	b, ok := c.kv.Get(idKey(pCluster, orderID))
	if !ok {
		return nil, false
	}
	return mustDecode(decCluster(b)), true
}

func (c *ctx) setCluster(cl *Cluster) {
	c.kv.Set(idKey(pCluster, cl.OrderID), encCluster(cl))
	if cl.State != ClusterLeasing && cl.State != ClusterRunning && cl.Reserve == 0 {
		c.retire(cl.OrderID)
	}
}

// Latency is a provider's latest published round trips.
type Latency struct {
	Provider tx.Address         `json:"provider"`
	Height   int64              `json:"height"`
	Samples  []tx.LatencySample `json:"samples"`
}

func encLatency(l *Latency) []byte {
	w := tx.NewWriter(16 + 24*len(l.Samples))
	w.Uvarint(uint64(l.Height))
	(&tx.PublishLatency{Samples: l.Samples}).EncodeTo(w)
	return sealed(w, "latency")
}

func decLatency(a tx.Address, b []byte) (*Latency, error) {
	r := tx.NewReader(b)
	l := &Latency{Provider: a, Height: int64(r.Uvarint("height"))}
	var m tx.PublishLatency
	m.DecodeFrom(r)
	l.Samples = m.Samples
	return l, r.Done("latency")
}

func (c *ctx) latency(a tx.Address) (*Latency, bool) {
	b, ok := c.kv.Get(addrKey(pLatency, a))
	if !ok {
		return nil, false
	}
	return mustDecode(decLatency(a, b)), true
}

func (c *ctx) publishLatency(signer tx.Address, m *tx.PublishLatency) error {
	if _, err := c.mustProvider(signer); err != nil {
		return err
	}
	for i, s := range m.Samples {
		if s.Peer == signer {
			return tx.Errorf(tx.CodeInvalidMsg, "samples[%d]: a provider does not measure itself", i)
		}
	}
	if prev, ok := c.latency(signer); ok && c.height < prev.Height+LatencyIntervalBlocks {
		return tx.Errorf(tx.CodeRateLimited, "latency published at height %d: the next may come at height %d", prev.Height, prev.Height+LatencyIntervalBlocks)
	}
	l := &Latency{Provider: signer, Height: c.height, Samples: m.Samples}
	c.kv.Set(addrKey(pLatency, signer), encLatency(l))
	c.emit("latency.published", "provider", signer, "peers", uint64(len(m.Samples)))
	return nil
}

func (c *ctx) createClusterOrder(tenant tx.Address, m *tx.CreateClusterOrder) error {
	run, err := mulChecked("deposit", m.Deposit, uint64(m.Nodes))
	if err != nil {
		return err
	}
	total, err := mulChecked("deposit", run, 1+uint64(m.MaxRestarts))
	if err != nil {
		return err
	}
	o, err := c.openOrder(tenant, &m.CreateOrder, total, 0)
	if err != nil {
		return err
	}
	o.Nodes = m.Nodes
	c.setOrder(o)
	c.setCluster(&Cluster{OrderID: o.ID, Nodes: m.Nodes, MaxRTTMicros: m.MaxRTTMicros, OnFailure: m.OnFailure, State: ClusterLeasing,
		RestartsLeft: uint32(m.MaxRestarts), Reserve: total - run})
	c.emit("cluster.opened", "order_id", o.ID, "tenant", tenant, "nodes", uint64(m.Nodes), "max_rtt_us", uint64(m.MaxRTTMicros),
		"max_restarts", uint64(m.MaxRestarts), "reserve", total-run)
	return nil
}

// excludedFrom reports whether a provider may not bid on a cluster order (its member failed an earlier
// generation of the same job).
func (c *ctx) excludedFrom(o *Order, a tx.Address) bool {
	if o.Nodes < 2 {
		return false
	}
	cl, ok := c.cluster(o.ID)
	return ok && slices.Contains(cl.Excluded, a)
}

// clusterBids picks, among an order's eligible open bids, the cheapest set of Nodes whose pairwise published
// round trips fit the bound, in rank order; nil when none fits yet.
func (c *ctx) clusterBids(o *Order, bids []*Bid) []*Bid {
	cl, ok := c.cluster(o.ID)
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
	published := make([]*Latency, len(bids))
	for i, b := range bids {
		if l, ok := c.latency(b.Provider); ok {
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
	c.gas.consume(gasSearchBidder * uint64(len(bids)))
	res := match.Cluster(o.ID, int(cl.Nodes), cl.MaxRTTMicros, members, links, ClusterSearchBudget)
	c.gas.consume(gasSearchStep * uint64(res.Steps))
	cl.SearchSteps += uint64(res.Steps)
	c.setCluster(cl)
	if res.Members == nil {
		return nil
	}
	out := make([]*Bid, len(res.Members))
	for k, i := range res.Members {
		out[k] = bids[i]
	}
	return out
}

// clusterLeased records a cluster's members, in rank order.
func (c *ctx) clusterLeased(o *Order, leases []uint64) {
	cl, ok := c.cluster(o.ID)
	if !ok {
		return
	}
	cl.Leases, cl.State = leases, ClusterRunning
	c.setCluster(cl)
	c.emit("cluster.leased", "order_id", o.ID, "tenant", o.Tenant, "nodes", uint64(cl.Nodes), "master_lease", leases[0])
}

// clusterOrderEnded marks a cluster order that ended unleased and refunds its reserve.
func (c *ctx) clusterOrderEnded(o *Order) error {
	cl, ok := c.cluster(o.ID)
	if !ok || cl.State != ClusterLeasing {
		return nil
	}
	cl.State = ClusterCancelled
	if err := c.refundReserve(cl, o.Tenant); err != nil {
		return err
	}
	c.setCluster(cl)
	c.emit("cluster.cancelled", "order_id", o.ID, "tenant", o.Tenant, "generation", uint64(cl.Generation))
	return nil
}

// refundReserve gives a cluster's unspent restart reserve back to the tenant (the caller saves cl).
func (c *ctx) refundReserve(cl *Cluster, tenant tx.Address) error {
	if cl.Reserve == 0 {
		return nil
	}
	if err := c.credit(tenant, cl.Reserve, inEscrow); err != nil {
		return err
	}
	c.emit("cluster.reserve_refunded", "order_id", cl.OrderID, "tenant", tenant, "amount", cl.Reserve)
	cl.Reserve = 0
	return nil
}

// memberEnded applies the failure policy when a member's lease ends otherwise than by completing, and marks
// the cluster done when every member has completed.
func (c *ctx) memberEnded(l *Lease, o *Order) {
	if o.Nodes < 2 {
		return
	}
	cl, ok := c.cluster(o.ID)
	if !ok || cl.State != ClusterRunning {
		return
	}
	why := l.CloseReason
	// A member completed in its completion grace ran its whole duration: the provider stopped it there, so a
	// non-zero exit code (the stop's signal) is no failure of the job.
	if l.State == LeaseCompleted && !(l.StartedMs != 0 && l.EndedMs == l.EndMs() && l.endsByDuration()) {
		if b, ok := c.kv.Get(idKey(pReceipt, l.ID)); ok {
			if rc := mustDecode(decReceipt(b)); rc.ExitCode != 0 {
				why = fmt.Sprintf("its workload exited with code %d", rc.ExitCode)
			}
		}
	}
	if l.State == LeaseCompleted && why == l.CloseReason {
		for _, id := range cl.Leases {
			if m, err := c.lease(id); err != nil || m.State != LeaseCompleted {
				return
			}
		}
		cl.State = ClusterDone
		c.must(c.refundReserve(cl, o.Tenant))
		c.setCluster(cl)
		c.emit("cluster.done", "order_id", o.ID, "tenant", o.Tenant, "generation", uint64(cl.Generation))
		return
	}
	// A failure the tenant caused would end a new run the same way: the tenant closed a member, or a provider
	// closed a member that never started (no manifest came, or the provider refused it). So would a member that
	// ran out of its duration or deposit.
	tenantSide := l.ClosedBy == l.Tenant || l.StartedMs == 0 && l.ClosedBy == l.Provider
	exhausted := l.State == LeaseClosed && l.StartedMs != 0 && l.EndedMs == l.EndMs()
	restart := cl.OnFailure == tx.OnFailureRestart && cl.RestartsLeft > 0 && cl.Reserve >= o.Escrowed() && !tenantSide && !exhausted
	cl.State, cl.FailedLease = ClusterFailed, l.ID
	if restart {
		cl.State = ClusterRestarted
	}
	c.setCluster(cl) // before closing the others: their ends find the cluster no longer running and stop here
	// The others' reason names the failed member's lease, whose own record keeps the reason its closer wrote; it
	// quotes only text the ledger composed itself, so it has a fixed bound whatever a tenant or provider wrote.
	reason := fmt.Sprintf("cluster member lease %d failed: %s", l.ID, ledgerText(l, why))
	if restart {
		reason += "; the cluster restarts"
	}
	for _, id := range cl.Leases {
		m, err := c.lease(id)
		if err != nil || id == l.ID || m.State != LeasePending && m.State != LeaseActive {
			continue
		}
		c.must(c.endLease(m, c.timeMs, LeaseClosed, tx.Address{}, reason))
	}
	if !restart {
		c.must(c.refundReserve(cl, o.Tenant))
		c.setCluster(cl)
		c.emit("cluster.failed", "order_id", o.ID, "tenant", o.Tenant, "lease_id", l.ID, "reason", why, "generation", uint64(cl.Generation))
		return
	}
	c.restartCluster(cl, o, l, why)
}

// ledgerText says why a member's lease ended in the ledger's own words: its exit code, the ledger's own close
// reason (not started in time, duration reached, deposit exhausted, provider down), or who closed it.
func ledgerText(l *Lease, why string) string {
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
func (c *ctx) restartCluster(cl *Cluster, o *Order, failed *Lease, why string) {
	reserve := cl.Reserve - o.Escrowed() // the next generation escrows what this one did
	next := c.openFollowUp(o, o.Deposit, func(n *Order) { n.Nodes = o.Nodes }, "nodes", uint64(o.Nodes), "restart_of", o.ID)
	excluded := cl.Excluded
	if !slices.Contains(excluded, failed.Provider) {
		excluded = append(slices.Clone(excluded), failed.Provider)
	}
	nc := &Cluster{OrderID: next.ID, Nodes: cl.Nodes, MaxRTTMicros: cl.MaxRTTMicros, OnFailure: cl.OnFailure, State: ClusterLeasing,
		Generation: cl.Generation + 1, RestartsLeft: cl.RestartsLeft - 1, Reserve: reserve, PrevOrder: o.ID, Excluded: excluded}
	cl.Reserve, cl.NextOrder = 0, next.ID // the reserve's escrow now backs the new order and its successors
	c.setCluster(cl)
	c.setCluster(nc)
	c.emit("cluster.restarted", "order_id", o.ID, "tenant", o.Tenant, "lease_id", failed.ID, "reason", why,
		"next_order", next.ID, "generation", uint64(nc.Generation), "restarts_left", uint64(nc.RestartsLeft), "excluded", failed.Provider)
}

// ClusterView is a cluster with its members' leases and hosts, in rank order.
type ClusterView struct {
	Cluster
	Members []ClusterMember `json:"members"`
}

// ClusterMember is one rank of a cluster.
type ClusterMember struct {
	Rank     int        `json:"rank"`
	LeaseID  uint64     `json:"lease_id"`
	Provider tx.Address `json:"provider"`
	HostURI  string     `json:"host_uri"`
	State    LeaseState `json:"state"`
}

func (c *ctx) clusterView(cl *Cluster) ClusterView {
	v := ClusterView{Cluster: *cl, Members: []ClusterMember{}}
	for r, id := range cl.Leases {
		l, err := c.lease(id)
		if err != nil {
			continue
		}
		m := ClusterMember{Rank: r, LeaseID: id, Provider: l.Provider, State: l.State}
		if p, ok := c.provider(l.Provider); ok {
			m.HostURI = p.Info.HostURI
		}
		v.Members = append(v.Members, m)
	}
	return v
}

// must panics on an error that a consistent state cannot produce, as the ledger does for every broken invariant:
// a validator stops rather than commit a state that differs from the others'.
func (c *ctx) must(err error) {
	if err != nil {
		panic("ledger: " + err.Error())
	}
}
