package ledger

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// publishRTTs makes every provider publish its round trips (µs) to the others; rtt[a][b] as given, missing
// pairs unmeasured.
func (c *chain) publishRTTs(rtt map[string]map[string]uint32) {
	c.t.Helper()
	var txs [][]byte
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range rtt {
			if !yield(k) {
				return
			}
		}
	}) {
		var s []tx.LatencySample
		for peer, us := range rtt[name] {
			s = append(s, tx.LatencySample{Peer: c.addr(peer), RTTMicros: us})
		}
		slices.SortFunc(s, func(a, b tx.LatencySample) int { return strings.Compare(string(a.Peer[:]), string(b.Peer[:])) })
		txs = append(txs, c.sign(name, &tx.PublishLatency{Samples: s}))
	}
	for i, r := range c.block(time.Second, txs...).TxResults {
		if r.Code != 0 {
			c.t.Fatalf("PublishLatency %d: %s", i, r.Log)
		}
	}
}

func (c *chain) clusterView(orderID uint64) api.ClusterView {
	var v api.ClusterView
	c.query(api.QueryCluster, api.IDRequest{ID: orderID}, &v)
	return v
}

// fourProviders is a chain with a funded tenant and four bonded providers, p1 to p4.
func fourProviders(t *testing.T) *chain {
	funded := map[string]uint64{"tenant": 1000 * api.USPR}
	for i := 1; i <= 4; i++ {
		funded[fmt.Sprintf("p%d", i)] = 1000 * api.USPR
	}
	c := newChain(t, testParams(), funded)
	for i := 1; i <= 4; i++ {
		c.registerBonded(fmt.Sprintf("p%d", i))
	}
	return c
}

func clusterOrder(nodes uint32, maxRTT uint32, deposit uint64) *tx.CreateClusterOrder {
	return &tx.CreateClusterOrder{CreateOrder: *gpuOrder(testRunPrice, deposit, 3600), Nodes: nodes, MaxRTTMicros: maxRTT, OnFailure: tx.OnFailureClose}
}

// TestClusterOrder: the auction leases the cheapest set whose round trips fit, all at once and ranked cheapest
// first; the far cheap provider is left out; one member failing closes the others with exact refunds.
func TestClusterOrder(t *testing.T) {
	for _, ending := range []string{"member closes", "member crashes", "all complete"} {
		t.Run(ending, func(t *testing.T) {
			c := fourProviders(t)
			fee := c.feeFor(clusterOrder(3, 5_000, api.USPR))
			c.publishRTTs(map[string]map[string]uint32{
				"p1": {"p2": 900, "p3": 1200, "p4": 40_000},
				"p2": {"p1": 1100, "p3": 800},
				"p3": {"p2": 4_900, "p1": 1_000},
				"p4": {"p1": 2_000, "p2": 2_000, "p3": 2_000}, // p4 says it is near, but only p1 measured it (far)
			})
			c.fail(tx.CodeRateLimited, "p1", &tx.PublishLatency{})
			tenant0 := c.balance("tenant")
			c.do("tenant", clusterOrder(3, 5_000, api.USPR))
			if got := tenant0 - c.balance("tenant"); got != fee+3*api.USPR {
				t.Fatalf("escrowed %d", got-fee)
			}
			c.block(time.Second,
				c.sign("p4", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 100}),
				c.sign("p3", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 10}),
				c.sign("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 30}),
				c.sign("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 20}))
			v := c.clusterView(1)
			if v.State != api.ClusterRunning || len(v.Members) != 3 {
				t.Fatalf("cluster after the auction: %+v", v)
			}
			for r, want := range []string{"p1", "p2", "p3"} {
				if v.Members[r].Provider != c.addr(want) || v.Members[r].Rank != r || v.Members[r].HostURI == "" {
					t.Fatalf("rank %d: %+v, want %s", r, v.Members[r], want)
				}
			}
			var starts [][]byte
			for r, m := range v.Members {
				starts = append(starts, c.sign(fmt.Sprintf("p%d", r+1), &tx.LeaseStarted{ID: m.LeaseID}))
			}
			c.block(time.Second, starts...)
			c.now = c.now.Add(10 * time.Minute)
			tenant1 := c.balance("tenant")
			switch ending {
			case "member closes":
				c.do("p2", &tx.CloseLease{ID: v.Members[1].LeaseID, Reason: "gpu fell off the bus"})
			case "member crashes":
				c.completeWith("p2", v.Members[1].LeaseID, "partial", 137)
			default:
				for r, m := range v.Members {
					c.completeWith(fmt.Sprintf("p%d", r+1), m.LeaseID, "out", 0)
				}
			}
			v = c.clusterView(1)
			// Each member bid 30, 20 and 10 uspr/h under 3,600,000 (1 uspr a millisecond) and ran 10 min 1 s
			// (601,000 ms): 600,994.98, 600,996.66 and 600,998.33, rounded down. When all complete, the
			// receipts land a block (1 s) apart: 601,000, 602,000 and 603,000 ms.
			want := map[string][]uint64{"member closes": {600_994, 600_996, 600_998}, "member crashes": {600_994, 600_996, 600_998},
				"all complete": {600_994, 601_996, 602_998}}[ending]
			var paid uint64
			for _, m := range v.Members {
				l := c.lease(m.LeaseID)
				if l.State == api.LeaseActive || l.State == api.LeasePending {
					t.Fatalf("member %d still %s", m.Rank, l.State)
				}
				if l.Paid != want[m.Rank] || l.Paid+l.Refunded != l.Deposit {
					t.Fatalf("member %d paid %d (want %d), refunded %d", m.Rank, l.Paid, want[m.Rank], l.Refunded)
				}
				paid += l.Paid
			}
			if ending != "all complete" {
				if v.State != api.ClusterFailed || v.FailedLease != v.Members[1].LeaseID {
					t.Fatalf("cluster: %+v", v)
				}
				want := map[string]string{"member closes": "failed: closed by its provider", "member crashes": "failed: its workload exited with code 137"}[ending]
				if l := c.lease(v.Members[0].LeaseID); l.State != api.LeaseClosed || !strings.Contains(l.CloseReason, want) {
					t.Fatalf("rank 0: %s, close reason %q", l.State, l.CloseReason)
				}
			} else if v.State != api.ClusterDone {
				t.Fatalf("cluster: %+v", v)
			}
			if got, want := c.balance("tenant"), tenant1+3*api.USPR-paid; got != want {
				t.Fatalf("tenant %d, want %d", got, want)
			}
		})
	}
}

// TestClusterWaitsForAFit: with no pair within the bound the order stays open; the bid that completes a fitting
// set after the window leases it. Bad latency messages are refused.
func TestClusterWaitsForAFit(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"tenant": 1000 * api.USPR, "p1": 1000 * api.USPR, "p2": 1000 * api.USPR, "p3": 1000 * api.USPR, "nobody": api.USPR})
	for _, p := range []string{"p1", "p2", "p3"} {
		c.registerBonded(p)
	}
	c.publishRTTs(map[string]map[string]uint32{"p1": {"p2": 9_000, "p3": 300}, "p2": {"p1": 100}, "p3": {"p1": 200}})
	c.do("tenant", clusterOrder(2, 5_000, api.USPR))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	c.do("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	if v := c.clusterView(1); v.State != api.ClusterLeasing {
		t.Fatalf("leased a pair 9 ms apart: %+v", v)
	}
	c.fail(tx.CodeReplicated, "tenant", &tx.AcceptBid{ID: 1})
	c.do("p3", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	v := c.clusterView(1)
	if v.State != api.ClusterRunning || v.Members[0].Provider != c.addr("p1") && v.Members[1].Provider != c.addr("p1") {
		t.Fatalf("after p3's bid: %+v", v)
	}
	c.fail(tx.CodeNotProvider, "nobody", &tx.PublishLatency{})
	c.fail(tx.CodeInvalidMsg, "p2", &tx.PublishLatency{Samples: []tx.LatencySample{{Peer: c.addr("p2"), RTTMicros: 1}}})
	for _, bad := range []*tx.CreateClusterOrder{
		{CreateOrder: *gpuOrder(1, 1, 60), Nodes: 2, MaxRTTMicros: 1, OnFailure: tx.OnFailureRestart},                 // no restarts
		{CreateOrder: *gpuOrder(1, 1, 60), Nodes: 2, MaxRTTMicros: 1, OnFailure: tx.OnFailureRestart, MaxRestarts: 4}, // too many
		{CreateOrder: *gpuOrder(1, 1, 60), Nodes: 2, MaxRTTMicros: 1, OnFailure: tx.OnFailureClose, MaxRestarts: 1},   // restarts without restart
		{CreateOrder: *gpuOrder(1, 1, 60), Nodes: 2, MaxRTTMicros: 1, OnFailure: 3},
	} {
		c.fail(tx.CodeInvalidMsg, "p2", bad)
	}
}

// TestClusterRestart: with on_failure restart, a member's failure closes the others and opens the next
// generation from the reserve, on which the failed provider may not bid; each run pays exactly what ran and the
// unspent reserve comes back at the end. A failure the tenant causes is not restarted; a restart nobody takes
// ends cancelled with the reserve refunded.
func TestClusterRestart(t *testing.T) {
	for _, ending := range []string{"restart completes", "restarts exhausted", "tenant closes", "no manifest", "restart unleased"} {
		t.Run(ending, func(t *testing.T) {
			c := fourProviders(t)
			minFee := c.app.params().MinFee
			all := map[string]map[string]uint32{}
			for i := 1; i <= 4; i++ {
				all[fmt.Sprintf("p%d", i)] = map[string]uint32{}
				for j := 1; j <= 4; j++ {
					if i != j {
						all[fmt.Sprintf("p%d", i)][fmt.Sprintf("p%d", j)] = 500
					}
				}
			}
			c.publishRTTs(all)
			tenant0 := c.balance("tenant")
			m := clusterOrder(2, 1_000, api.USPR)
			m.OnFailure, m.MaxRestarts = tx.OnFailureRestart, 1
			c.do("tenant", m)
			fee := c.feeFor(m) // the cluster order's: it prepays a placement search per generation
			if got := tenant0 - c.balance("tenant"); got != fee+4*api.USPR {
				t.Fatalf("escrowed %d, want deposit × 2 members × 2 runs", got-fee)
			}
			run := func(order uint64, start bool, bidders ...string) api.ClusterView {
				t.Helper()
				var bids [][]byte
				for i, p := range bidders {
					bids = append(bids, c.sign(p, &tx.PlaceBid{OrderID: order, Price: testRunPrice - uint64(10*i)}))
				}
				c.block(time.Second, bids...)
				for c.clusterView(order).State == api.ClusterLeasing && c.height < 100 {
					c.block(time.Second)
				}
				v := c.clusterView(order)
				if v.State != api.ClusterRunning {
					t.Fatalf("cluster %d: %+v", order, v)
				}
				if !start {
					return v
				}
				var starts [][]byte
				for _, m := range v.Members {
					starts = append(starts, c.sign(c.name(m.Provider), &tx.LeaseStarted{ID: m.LeaseID}))
				}
				c.block(time.Second, starts...)
				c.now = c.now.Add(10 * time.Minute)
				return v
			}
			first := run(1, ending != "no manifest", "p1", "p2")
			if first.Reserve != 2*api.USPR || first.RestartsLeft != 1 {
				t.Fatalf("first generation: %+v", first)
			}
			if ending == "tenant closes" {
				c.do("tenant", &tx.CloseLease{ID: first.Members[0].LeaseID})
				if v := c.clusterView(1); v.State != api.ClusterFailed || v.NextOrder != 0 || v.Reserve != 0 {
					t.Fatalf("closed by the tenant: %+v", v)
				}
				c.checkPaidExactly(tenant0, fee+minFee, []uint64{600_998, 601_000}, first)
				return
			}
			if ending == "no manifest" { // a provider closes its member that never started: the tenant's side
				c.do(c.name(first.Members[1].Provider), &tx.CloseLease{ID: first.Members[1].LeaseID, Reason: "no manifest within 10m"})
				if v := c.clusterView(1); v.State != api.ClusterFailed || v.NextOrder != 0 || v.Reserve != 0 {
					t.Fatalf("a member closed before it started: %+v", v)
				}
				c.checkPaidExactly(tenant0, fee, []uint64{0, 0}, first) // neither started
				return
			}
			failing := c.name(first.Members[1].Provider)
			c.completeWith(failing, first.Members[1].LeaseID, "partial", 137)
			v := c.clusterView(1)
			if v.State != api.ClusterRestarted || v.NextOrder == 0 || v.Reserve != 0 || v.FailedLease != first.Members[1].LeaseID {
				t.Fatalf("after the failure: %+v", v)
			}
			if l := c.lease(first.Members[0].LeaseID); l.State != api.LeaseClosed || !strings.Contains(l.CloseReason, "restarts") {
				t.Fatalf("other member: %+v", l.Lease)
			}
			next := c.clusterView(v.NextOrder)
			if next.State != api.ClusterLeasing || next.Generation != 1 || next.PrevOrder != 1 || next.RestartsLeft != 0 ||
				next.Reserve != 0 || !slices.Equal(next.Excluded, []tx.Address{first.Members[1].Provider}) {
				t.Fatalf("next generation: %+v", next)
			}
			if o := c.order(v.NextOrder); o.State != api.OrderOpen || o.Nodes != 2 || o.Deposit != api.USPR {
				t.Fatalf("next order: %+v", o)
			}
			c.fail(tx.CodeExcluded, failing, &tx.PlaceBid{OrderID: v.NextOrder, Price: testRunPrice})
			if ending == "restart unleased" {
				for c.order(v.NextOrder).State == api.OrderOpen {
					c.block(time.Second)
				}
				if n := c.clusterView(v.NextOrder); n.State != api.ClusterCancelled {
					t.Fatalf("unleased restart: %+v", n)
				}
				c.checkPaidExactly(tenant0, fee, []uint64{600_998, 601_000}, first)
				return
			}
			others := []string{"p1", "p2", "p3", "p4"}
			others = slices.DeleteFunc(others, func(p string) bool { return p == failing })
			second := run(v.NextOrder, true, others...)
			for _, m := range second.Members {
				if m.Provider == first.Members[1].Provider {
					t.Fatalf("the failed provider was leased again: %+v", second)
				}
			}
			if ending == "restarts exhausted" {
				c.do(c.name(second.Members[0].Provider), &tx.CloseLease{ID: second.Members[0].LeaseID, Reason: "gpu fell off the bus"})
				if n := c.clusterView(v.NextOrder); n.State != api.ClusterFailed || n.NextOrder != 0 {
					t.Fatalf("second failure with no restart left: %+v", n)
				}
			} else {
				for _, m := range second.Members {
					c.completeWith(c.name(m.Provider), m.LeaseID, "out", 0)
				}
				if n := c.clusterView(v.NextOrder); n.State != api.ClusterDone {
					t.Fatalf("second generation: %+v", n)
				}
			}
			// The second generation's first member ran as long in either ending (10 min 1 s); its second
			// completed a block later (10 min 2 s) or was closed with the first (10 min 1 s).
			want := []uint64{600_998, 601_000, 600_996, 601_998}
			if ending == "restarts exhausted" {
				want[3] = 600_998
			}
			c.checkPaidExactly(tenant0, fee, want, first, second)
		})
	}
}

// checkPaidExactly: the generations' members, in order, were paid want (worked out by hand: each member bid
// just under 1 uspr a millisecond and ran about 10 minutes), each refunded the rest of its deposit, and the tenant
// paid its fees and exactly that, nothing more.
func (c *chain) checkPaidExactly(tenant0, fees uint64, want []uint64, gens ...api.ClusterView) {
	c.t.Helper()
	var paid uint64
	i := 0
	for _, g := range gens {
		for _, m := range g.Members {
			l := c.lease(m.LeaseID)
			if l.State == api.LeaseActive || l.State == api.LeasePending || l.Paid+l.Refunded != l.Deposit {
				c.t.Fatalf("lease %d: %+v", m.LeaseID, l.Lease)
			}
			if i >= len(want) || l.Paid != want[i] {
				c.t.Fatalf("lease %d (member %d) paid %d, want %v", m.LeaseID, i, l.Paid, want)
			}
			paid += l.Paid
			i++
		}
	}
	if i != len(want) {
		c.t.Fatalf("%d members, %d amounts", i, len(want))
	}
	if got, want := c.balance("tenant"), tenant0-fees-paid; got != want {
		c.t.Fatalf("tenant %d, want %d (paid %d)", got, want, paid)
	}
}

// TestGenesisAuditorHosts: an auditor's host is optional, must be host:port, and reaches the auditors query.
func TestGenesisAuditorHosts(t *testing.T) {
	a, b := newKey("aud-a").addr, newKey("aud-b").addr
	for _, tc := range []struct {
		host string
		ok   bool
	}{{"", true}, {"127.0.0.1:26700", true}, {"auditor.example.net:443", true}, {"no-port", false}, {":80", false}, {"h:0", false}, {"h:70000", false}} {
		g := api.Genesis{Params: api.DefaultParams(), Auditors: []api.GenesisAuditor{{Address: a, Weight: 1, Host: tc.host}, {Address: b, Weight: 2}}}
		raw, _ := json.Marshal(g)
		_, err := api.ParseGenesis(raw)
		if (err == nil) != tc.ok {
			t.Fatalf("host %q: err %v", tc.host, err)
		}
	}
	c := newChainWith(t, testParams(), map[string]uint64{"x": 1}, nil)
	c.mutate(func(cx *ctx) {
		testMods.Trust.SetAuditor(cx, api.GenesisAuditor{Address: a, Weight: 3, Host: "10.0.0.1:26700"})
		testMods.Trust.SetAuditor(cx, api.GenesisAuditor{Address: b, Weight: 2})
	})
	var auds []api.Auditor
	c.query(api.QueryAuditors, nil, &auds)
	got := map[tx.Address]api.Auditor{}
	for _, x := range auds {
		got[x.Address] = x
	}
	if got[a].Host != "10.0.0.1:26700" || got[a].Weight != 3 || got[b].Host != "" || got[b].Weight != 2 {
		t.Fatalf("auditors %+v", auds)
	}
}

// TestClusterMemberDown: the auditors find one member's provider down; its lease is closed (billed to the down
// epoch's start) and it is slashed, and the other member is closed in the same block, billed to that moment.
// With on_failure restart the next generation's order opens in that block, closed to the down provider.
func TestClusterMemberDown(t *testing.T) {
	for _, policy := range []uint8{tx.OnFailureClose, tx.OnFailureRestart} {
		t.Run(fmt.Sprint("on_failure ", policy), func(t *testing.T) { testClusterMemberDown(t, policy) })
	}
}

func testClusterMemberDown(t *testing.T, policy uint8) {
	params := testParams()
	params.EpochBlocks, params.SlashDowntimePPM = 12, 100_000
	c := newChainWith(t, params, map[string]uint64{"tenant": 1000 * api.USPR, "p1": 2000 * api.USPR, "p2": 2000 * api.USPR, "a1": api.USPR},
		map[string]uint64{"a1": 1})
	c.registerBonded("p1")
	c.registerBonded("p2")
	c.publishRTTs(map[string]map[string]uint32{"p1": {"p2": 500}, "p2": {"p1": 700}})
	m := clusterOrder(2, 1_000, api.USPR)
	if m.OnFailure = policy; policy == tx.OnFailureRestart {
		m.MaxRestarts = 2
	}
	c.do("tenant", m)
	c.block(time.Second, c.sign("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}), c.sign("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}))
	v := c.clusterView(1)
	if v.State != api.ClusterRunning {
		t.Fatalf("cluster %+v", v)
	}
	c.block(time.Second, c.sign("p1", &tx.LeaseStarted{ID: v.Members[0].LeaseID}), c.sign("p2", &tx.LeaseStarted{ID: v.Members[1].LeaseID}))
	e := c.nextEpoch()
	epochStart := uint64(c.now.UnixMilli())
	down := v.Members[1].Provider // a1 (all the weight) finds it down
	up := "p1"
	if c.addr("p1") == down {
		up = "p2"
	}
	if got := c.results(c.sign("a1", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, up)})); got[0] != 0 {
		t.Fatalf("attest: %v", got)
	}
	stake := func() uint64 {
		var p api.ProviderView
		c.query(api.QueryProvider, api.AddressRequest{Address: down}, &p)
		return p.Stake
	}
	before := stake()
	for !c.epoch(&e.Epoch).Tallied {
		c.block(time.Second)
	}
	talliedMs := uint64(c.now.UnixMilli())
	v = c.clusterView(1)
	want := map[uint8]api.ClusterState{tx.OnFailureClose: api.ClusterFailed, tx.OnFailureRestart: api.ClusterRestarted}[policy]
	if v.State != want || v.FailedLease != v.Members[1].LeaseID {
		t.Fatalf("cluster after the down verdict: %+v", v)
	}
	if policy == tx.OnFailureRestart {
		next := c.clusterView(v.NextOrder)
		if next.State != api.ClusterLeasing || next.RestartsLeft != 1 || next.Reserve != 2*api.USPR || !slices.Equal(next.Excluded, []tx.Address{down}) {
			t.Fatalf("next generation: %+v", next)
		}
		c.fail(tx.CodeExcluded, c.name(down), &tx.PlaceBid{OrderID: v.NextOrder, Price: testRunPrice})
	}
	failed, other := c.lease(v.Members[1].LeaseID), c.lease(v.Members[0].LeaseID)
	// At 1 uspr a millisecond: the down member is paid up to the start of the epoch found down (5 s after it
	// started), the other up to the tally (28 s).
	if failed.State != api.LeaseClosed || failed.EndedMs != epochStart || failed.Paid != 5_000 {
		t.Fatalf("down member: %+v (epoch start %d)", failed.Lease, epochStart)
	}
	if other.State != api.LeaseClosed || other.EndedMs != talliedMs || other.Paid != 28_000 ||
		!strings.Contains(other.CloseReason, "cluster member lease") {
		t.Fatalf("other member: %+v (tallied at %d)", other.Lease, talliedMs)
	}
	if got := stake(); got != before-before/10 {
		t.Fatalf("down provider's stake %d, want %d", got, before-before/10)
	}
}

// TestClusterLongCloseReasonDoesNotPoisonState: a tenant closes one member of a running cluster with a reason of
// the largest size allowed. The others are closed naming the failed member's lease (whose record keeps the
// tenant's reason); what is stored stays within the decoder's bound, so every later read of those leases works,
// later blocks commit, and the mempool still checks transactions. (Before, the others' reason quoted the
// tenant's, was stored over the bound, and every read of the other member panicked.)
func TestClusterLongCloseReasonDoesNotPoisonState(t *testing.T) {
	c := fourProviders(t)
	c.publishRTTs(map[string]map[string]uint32{"p1": {"p2": 900}, "p2": {"p1": 1100}})
	c.do("tenant", clusterOrder(2, 5_000, api.USPR))
	c.block(time.Second, c.sign("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}), c.sign("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}))
	v := c.clusterView(1)
	if v.State != api.ClusterRunning || len(v.Members) != 2 {
		t.Fatalf("cluster: %+v", v)
	}
	c.block(time.Second, c.sign(c.name(v.Members[0].Provider), &tx.LeaseStarted{ID: v.Members[0].LeaseID}),
		c.sign(c.name(v.Members[1].Provider), &tx.LeaseStarted{ID: v.Members[1].LeaseID}))
	reason := strings.Repeat("é", tx.MaxReasonLen/2) // 256 bytes of two-byte runes: a cut must fall between them
	c.do("tenant", &tx.CloseLease{ID: v.Members[0].LeaseID, Reason: reason})
	other := c.lease(v.Members[1].LeaseID) // panicked before
	if other.State != api.LeaseClosed || len(other.CloseReason) > tx.MaxReasonLen || !utf8.ValidString(other.CloseReason) ||
		other.CloseReason != fmt.Sprintf("cluster member lease %d failed: closed by the tenant", v.Members[0].LeaseID) {
		t.Fatalf("other member's reason (%d bytes): %q", len(other.CloseReason), other.CloseReason)
	}
	if closed := c.lease(v.Members[0].LeaseID); closed.CloseReason != reason {
		t.Fatalf("the closed member's own reason: %q", closed.CloseReason)
	}
	for i := 0; i < 3; i++ {
		c.block(time.Second)
	}
	c.do("tenant", &tx.Send{To: c.addr("p1"), Amount: 1}) // CheckTx and FinalizeBlock still work
}

// TestCheckTxReleasesItsLockOnPanic: when a transaction's check panics (here on a stored object over its bound,
// planted in the mempool's state as the bug above did), the panic does not keep the mempool's lock: the next
// CheckTx and Commit go on.
func TestCheckTxReleasesItsLockOnPanic(t *testing.T) {
	c := fourProviders(t)
	c.do("tenant", clusterOrder(2, 5_000, api.USPR))
	c.app.checkMu.Lock()
	c.app.check.Set(schema.IDKey(schema.PLease, 99), overlongLease(t, 99, c.addr("tenant"))) // what the old code stored
	c.app.checkMu.Unlock()
	func() {
		defer func() { _ = recover() }() // as the ABCI server does
		c.check(c.sign("tenant", &tx.CloseLease{ID: 99}))
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if code, log := c.check(c.sign("p3", &tx.Send{To: c.addr("p1"), Amount: 1})); code != 0 {
			t.Errorf("a later CheckTx: %d %s", code, log)
		}
		c.block(time.Second)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("CheckTx and Commit wait forever for the lock a panicking check held")
	}
}

// TestClusterSearchIsPaid: a cluster order prepays a whole placement search per generation it may run (its
// auction runs at the end of a block, out of any transaction's gas), and a bid that runs a search pays each step.
// Before, the end-of-block search was free and a step cost a fortieth of its time.
func TestClusterSearchIsPaid(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"tenant": 1000 * api.USPR, "p1": 1000 * api.USPR, "p2": 1000 * api.USPR, "p3": 1000 * api.USPR})
	for _, p := range []string{"p1", "p2", "p3"} {
		c.registerBonded(p)
	}
	c.publishRTTs(map[string]map[string]uint32{"p1": {"p2": 9_000, "p3": 300}, "p2": {"p1": 100}, "p3": {"p1": 200}})
	gasOf := func(name string, m tx.Msg) uint64 {
		s := c.simulate(c.sign(name, m))
		c.nonces[c.addr(name)]--
		if s.Code != 0 {
			t.Fatalf("%T: %s", m, s.Log)
		}
		return s.GasUsed
	}
	plain := clusterOrder(2, 5_000, api.USPR)
	restarting := clusterOrder(2, 5_000, api.USPR)
	restarting.OnFailure, restarting.MaxRestarts = tx.OnFailureRestart, tx.MaxClusterRestarts
	search := uint64(kernel.GasSearchStep*api.ClusterSearchBudget + kernel.GasSearchBidder*c.app.params().MaxBidsPerOrder) // 2 members: up to 20 bidders
	g0, g3 := gasOf("tenant", plain), gasOf("tenant", restarting)
	if g0 < search || g3-g0 < tx.MaxClusterRestarts*search || g3-g0 > tx.MaxClusterRestarts*search+100_000 {
		t.Fatalf("cluster order gas %d, with %d restarts %d: want a search (%d gas) prepaid per generation", g0, tx.MaxClusterRestarts, g3, search)
	}
	c.do("tenant", plain)
	c.block(time.Second)
	c.block(time.Second) // the bid window closes with no bid: later bids search at once
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	before := c.clusterView(1).SearchSteps
	bid := &tx.PlaceBid{OrderID: 1, Price: testRunPrice}
	withSearch := gasOf("p2", bid)
	c.do("p2", bid)
	steps := c.clusterView(1).SearchSteps - before
	if want := steps*kernel.GasSearchStep + 2*kernel.GasSearchBidder; steps == 0 || withSearch < want {
		t.Fatalf("a bid that searched %d steps among 2 bidders used %d gas, want at least %d", steps, withSearch, want)
	}
	if v := c.clusterView(1); v.State != api.ClusterLeasing {
		t.Fatalf("leased a pair 9 ms apart: %+v", v)
	}
}
