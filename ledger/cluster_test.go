package ledger

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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

func (c *chain) clusterView(orderID uint64) ClusterView {
	var v ClusterView
	c.query(QueryCluster, IDRequest{ID: orderID}, &v)
	return v
}

func clusterOrder(nodes uint32, maxRTT uint32, deposit uint64) *tx.CreateClusterOrder {
	return &tx.CreateClusterOrder{CreateOrder: *gpuOrder(testRunPrice, deposit, 3600), Nodes: nodes, MaxRTTMicros: maxRTT, OnFailure: tx.OnFailureClose}
}

// TestClusterOrder: the auction leases the cheapest set whose round trips fit, all at once and ranked cheapest
// first; the far cheap provider is left out; one member failing closes the others with exact refunds.
func TestClusterOrder(t *testing.T) {
	for _, ending := range []string{"member closes", "member crashes", "all complete"} {
		t.Run(ending, func(t *testing.T) {
			funded := map[string]uint64{"tenant": 1000 * USPR}
			for i := 1; i <= 4; i++ {
				funded[fmt.Sprintf("p%d", i)] = 1000 * USPR
			}
			c := newChain(t, testParams(), funded)
			fee := c.app.params().MinFee
			for i := 1; i <= 4; i++ {
				c.registerBonded(fmt.Sprintf("p%d", i))
			}
			c.publishRTTs(map[string]map[string]uint32{
				"p1": {"p2": 900, "p3": 1200, "p4": 40_000},
				"p2": {"p1": 1100, "p3": 800},
				"p3": {"p2": 4_900, "p1": 1_000},
				"p4": {"p1": 2_000, "p2": 2_000, "p3": 2_000}, // p4 says it is near, but only p1 measured it (far)
			})
			c.fail(tx.CodeRateLimited, "p1", &tx.PublishLatency{})
			tenant0 := c.balance("tenant")
			c.do("tenant", clusterOrder(3, 5_000, USPR))
			if got := tenant0 - c.balance("tenant"); got != fee+3*USPR {
				t.Fatalf("escrowed %d", got-fee)
			}
			c.block(time.Second,
				c.sign("p4", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 100}),
				c.sign("p3", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 10}),
				c.sign("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 30}),
				c.sign("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 20}))
			v := c.clusterView(1)
			if v.State != ClusterRunning || len(v.Members) != 3 {
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
			var paid uint64
			for _, m := range v.Members {
				l := c.lease(m.LeaseID)
				if l.State == LeaseActive || l.State == LeasePending {
					t.Fatalf("member %d still %s", m.Rank, l.State)
				}
				if want := l.Price * (l.EndedMs - l.StartedMs) / msPerHour; l.Paid != want || l.Paid+l.Refunded != l.Deposit || l.Paid == 0 {
					t.Fatalf("member %d paid %d (want %d), refunded %d", m.Rank, l.Paid, want, l.Refunded)
				}
				paid += l.Paid
			}
			if ending != "all complete" {
				if v.State != ClusterFailed || v.FailedLease != v.Members[1].LeaseID {
					t.Fatalf("cluster: %+v", v)
				}
				want := map[string]string{"member closes": "gpu fell off the bus", "member crashes": "exited with code 137"}[ending]
				if l := c.lease(v.Members[0].LeaseID); l.State != LeaseClosed || !strings.Contains(l.CloseReason, want) {
					t.Fatalf("rank 0: %s, close reason %q", l.State, l.CloseReason)
				}
			} else if v.State != ClusterDone {
				t.Fatalf("cluster: %+v", v)
			}
			if got, want := c.balance("tenant"), tenant1+3*USPR-paid; got != want {
				t.Fatalf("tenant %d, want %d", got, want)
			}
		})
	}
}

// TestClusterWaitsForAFit: with no pair within the bound the order stays open; the bid that completes a fitting
// set after the window leases it. Bad latency messages are refused.
func TestClusterWaitsForAFit(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"tenant": 1000 * USPR, "p1": 1000 * USPR, "p2": 1000 * USPR, "p3": 1000 * USPR, "nobody": USPR})
	for _, p := range []string{"p1", "p2", "p3"} {
		c.registerBonded(p)
	}
	c.publishRTTs(map[string]map[string]uint32{"p1": {"p2": 9_000, "p3": 300}, "p2": {"p1": 100}, "p3": {"p1": 200}})
	c.do("tenant", clusterOrder(2, 5_000, USPR))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	c.do("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	if v := c.clusterView(1); v.State != ClusterLeasing {
		t.Fatalf("leased a pair 9 ms apart: %+v", v)
	}
	c.fail(tx.CodeReplicated, "tenant", &tx.AcceptBid{ID: 1})
	c.do("p3", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	v := c.clusterView(1)
	if v.State != ClusterRunning || v.Members[0].Provider != c.addr("p1") && v.Members[1].Provider != c.addr("p1") {
		t.Fatalf("after p3's bid: %+v", v)
	}
	c.fail(tx.CodeNotProvider, "nobody", &tx.PublishLatency{})
	c.fail(tx.CodeInvalidMsg, "p2", &tx.PublishLatency{Samples: []tx.LatencySample{{Peer: c.addr("p2"), RTTMicros: 1}}})
	c.fail(tx.CodeInvalidMsg, "p2", &tx.CreateClusterOrder{CreateOrder: *gpuOrder(1, 1, 60), Nodes: 2, MaxRTTMicros: 1, OnFailure: tx.OnFailureRestart})
}

// TestGenesisAuditorHosts: an auditor's host is optional, must be host:port, and reaches the auditors query.
func TestGenesisAuditorHosts(t *testing.T) {
	a, b := newKey("aud-a").addr, newKey("aud-b").addr
	for _, tc := range []struct {
		host string
		ok   bool
	}{{"", true}, {"127.0.0.1:26700", true}, {"auditor.example.net:443", true}, {"no-port", false}, {":80", false}, {"h:0", false}, {"h:70000", false}} {
		g := Genesis{Params: DefaultParams(), Auditors: []GenesisAuditor{{Address: a, Weight: 1, Host: tc.host}, {Address: b, Weight: 2}}}
		raw, _ := json.Marshal(g)
		_, err := ParseGenesis(raw)
		if (err == nil) != tc.ok {
			t.Fatalf("host %q: err %v", tc.host, err)
		}
	}
	c := newChainWith(t, testParams(), map[string]uint64{"x": 1}, nil)
	c.mutate(func(cx *ctx) {
		cx.setAuditor(GenesisAuditor{Address: a, Weight: 3, Host: "10.0.0.1:26700"})
		cx.setAuditor(GenesisAuditor{Address: b, Weight: 2})
	})
	var auds []Auditor
	c.query(QueryAuditors, nil, &auds)
	got := map[tx.Address]Auditor{}
	for _, x := range auds {
		got[x.Address] = x
	}
	if got[a].Host != "10.0.0.1:26700" || got[a].Weight != 3 || got[b].Host != "" || got[b].Weight != 2 {
		t.Fatalf("auditors %+v", auds)
	}
}

// TestClusterMemberDown: the auditors find one member's provider down; its lease is closed (billed to the down
// epoch's start) and it is slashed, and the other member is closed in the same block, billed to that moment.
func TestClusterMemberDown(t *testing.T) {
	params := testParams()
	params.EpochBlocks, params.SlashDowntimePPM = 12, 100_000
	c := newChainWith(t, params, map[string]uint64{"tenant": 1000 * USPR, "p1": 2000 * USPR, "p2": 2000 * USPR, "a1": USPR},
		map[string]uint64{"a1": 1})
	c.registerBonded("p1")
	c.registerBonded("p2")
	c.publishRTTs(map[string]map[string]uint32{"p1": {"p2": 500}, "p2": {"p1": 700}})
	c.do("tenant", clusterOrder(2, 1_000, USPR))
	c.block(time.Second, c.sign("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}), c.sign("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}))
	v := c.clusterView(1)
	if v.State != ClusterRunning {
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
		var p ProviderView
		c.query(QueryProvider, AddressRequest{Address: down}, &p)
		return p.Stake
	}
	before := stake()
	for !c.epoch(&e.Epoch).Tallied {
		c.block(time.Second)
	}
	talliedMs := uint64(c.now.UnixMilli())
	v = c.clusterView(1)
	if v.State != ClusterFailed || v.FailedLease != v.Members[1].LeaseID {
		t.Fatalf("cluster after the down verdict: %+v", v)
	}
	failed, other := c.lease(v.Members[1].LeaseID), c.lease(v.Members[0].LeaseID)
	if failed.State != LeaseClosed || failed.EndedMs != epochStart || failed.Paid != failed.Price*(epochStart-failed.StartedMs)/msPerHour {
		t.Fatalf("down member: %+v (epoch start %d)", failed.Lease, epochStart)
	}
	if other.State != LeaseClosed || other.EndedMs != talliedMs || other.Paid != other.Price*(talliedMs-other.StartedMs)/msPerHour ||
		!strings.Contains(other.CloseReason, "cluster member lease") {
		t.Fatalf("other member: %+v (tallied at %d)", other.Lease, talliedMs)
	}
	if got := stake(); got != before-before/10 {
		t.Fatalf("down provider's stake %d, want %d", got, before-before/10)
	}
}
