package ledger

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// updateGolden rewrites testdata/golden/apphashes.txt. A change to that file is a consensus change: the chain a
// node of the new code builds from the same blocks differs from the old one's. Regenerate it only for a change
// that means to be one, and name it in the commit message.
var updateGolden = flag.Bool("update-golden", false, "rewrite ledger/testdata/golden/apphashes.txt (a consensus change: name it in the commit)")

// goldenSource draws the golden scenario's choices from PCG-DXSM with fixed seeds, reduced by modulo (not
// math/rand's IntN, whose method may change between Go releases): the same choices on every machine and release.
type goldenSource struct{ rng *rand.PCG }

func (s goldenSource) intn(n int, _ string) int {
	if n <= 1 {
		return 0
	}
	return int(s.rng.Uint64() % uint64(n))
}

func (s goldenSource) u64(string) uint64 { return s.rng.Uint64() }

// The scenario: goldenRuns runs of goldenBlocks blocks from each fixture (within the retention window, which the
// generator's state checks assume nothing has left).
const (
	goldenRuns   = 10
	goldenBlocks = 90
)

// TestGoldenAppHashes pins the ledger's behaviour: the adversarial generator (adversary_test.go), drawing its
// choices from fixed seeds, builds goldenBlocks blocks from each fixture — every message type, successes and
// failures, multi-message transactions whose later messages fail, storms, extreme amounts and sizes, mempool
// checks, proposals, restarts — and the app hash of every height and the result code of every transaction must
// be the ones in testdata/golden/apphashes.txt. A refactor of the ledger that changes none of them preserves
// consensus; one that changes any forks a network of old and new nodes. -update-golden rewrites the file.
func TestGoldenAppHashes(t *testing.T) {
	fx := advFixtures(t)
	seenBefore := eventCounts()
	var got strings.Builder
	covered := map[string]bool{}
	for i, f := range fx {
		for run := range goldenRuns {
			s := goldenSource{rand.NewPCG(0x5bb3, uint64(i*goldenRuns+run))}
			r := newAdvRun(quietTB{t}, s, f, t, false)
			for range goldenBlocks {
				before := r.c.height
				r.step()
				fmt.Fprintf(&got, "fixture %d run %d height %d app_hash %X codes %s\n", i, run, r.c.height, r.lastAppHash, strings.Join(r.lastCodes, ","))
				if r.c.height != before+1 {
					t.Fatalf("fixture %d: height %d after %d", i, r.c.height, before)
				}
			}
			for k, codes := range r.stats {
				if codes[tx.CodeOK.String()] > 0 {
					covered[k] = true
				}
			}
		}
	}
	goldenScript(t, &got, covered)
	var missing []string
	for _, mt := range kindTypes {
		if !covered[mt.String()] {
			missing = append(missing, mt.String())
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("the golden scenario never succeeds with %s: give it more blocks or another seed", strings.Join(missing, ", "))
	}
	// Every event a client parses with a typed parser was emitted, and read (checkEvents), on the way.
	seen, unseen := eventCounts(), []string(nil)
	for typ := range eventParsers {
		// An outvoted run takes a scripted disagreement the scenario does not have: TestReplicatedVerdicts
		// emits it, and checkEvents reads it there.
		// A term deal ends a month or more after its draw, past the scenario's time: TestVaultTermEnds ends one.
		// Storage proofs failed, paid for, lost and repaired need auditors checking shards: TestVaultProofs.
		if seen[typ] == seenBefore[typ] && typ != api.EventLeaseOutvoted && typ != api.EventVaultEnded && !vaultProofEvents[typ] {
			unseen = append(unseen, typ)
		}
	}
	slices.Sort(unseen)
	if len(unseen) > 0 {
		t.Errorf("the golden scenario never emits %s: its typed parsers go unchecked", strings.Join(unseen, ", "))
	}
	path := filepath.Join("testdata", "golden", "apphashes.txt")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: a consensus change, to be named in the commit message", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./ledger -run TestGoldenAppHashes -update-golden writes it)", err)
	}
	if !bytes.Equal(want, []byte(got.String())) {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(got.String(), "\n")
		for i := range min(len(wl), len(gl)) {
			if wl[i] != gl[i] {
				t.Fatalf("consensus changed: the golden scenario differs first at line %d\nwant %s\ngot  %s\n(a change meant to change consensus regenerates it with -update-golden and says so in its commit)", i+1, wl[i], gl[i])
			}
		}
		t.Fatalf("consensus changed: %d golden lines, %d now", len(wl), len(gl))
	}
}

// goldenScript is the golden scenario's scripted part: the market's paths the random generator seldom completes,
// each with its exact amounts asserted elsewhere (lifecycle, cluster and verify tests) — a provider registered,
// bonded and updated, latencies published, a cluster leased and run to completion, an order whose tenant accepts a
// bid, started, topped up, extended, withdrawn from and completed, a replicated order committed and revealed to its
// verdict, a transaction whose second message fails (the first rolled back, the fee charged once), an unbonding
// and its maturity. Every block's app hash and result codes go to out.
func goldenScript(t *testing.T, out *strings.Builder, covered map[string]bool) {
	funded := map[string]uint64{"tenant": 1000 * api.USPR}
	for i := 1; i <= 4; i++ {
		funded[fmt.Sprintf("p%d", i)] = 1000 * api.USPR
	}
	c := newChain(t, testParams(), funded)
	c.onBlock = func(txs [][]byte, res *abci.ResponseFinalizeBlock) {
		var codes []string
		for i, r := range res.TxResults {
			codes = append(codes, tx.Code(r.Code).String())
			if d, err := tx.Decode(txs[i]); err == nil && r.Code == 0 {
				for _, m := range d.Body.Msgs {
					covered[m.Type().String()] = true
				}
			}
		}
		fmt.Fprintf(out, "script height %d app_hash %X codes %s\n", c.height, res.AppHash, strings.Join(codes, ","))
	}
	for i := 1; i <= 4; i++ {
		c.registerBonded(fmt.Sprintf("p%d", i))
	}
	c.do("p1", &tx.UpdateProvider{ProviderInfo: func() tx.ProviderInfo { i := providerInfo("p1"); i.MaxLeaseSec = 7200; return i }()})

	// A cluster of three, run to completion.
	c.publishRTTs(map[string]map[string]uint32{"p1": {"p2": 900, "p3": 1200}, "p2": {"p1": 1100, "p3": 800}, "p3": {"p2": 900, "p1": 1_000}})
	c.do("tenant", clusterOrder(3, 5_000, api.USPR))
	cluster := uint64(1)
	c.block(time.Second, c.sign("p3", &tx.PlaceBid{OrderID: cluster, Price: testRunPrice - 10}),
		c.sign("p1", &tx.PlaceBid{OrderID: cluster, Price: testRunPrice - 30}), c.sign("p2", &tx.PlaceBid{OrderID: cluster, Price: testRunPrice - 20}))
	v := c.clusterView(cluster)
	if v.State != api.ClusterRunning || len(v.Members) != 3 {
		t.Fatalf("cluster: %+v", v)
	}
	var starts [][]byte
	for _, m := range v.Members {
		starts = append(starts, c.sign(c.name(m.Provider), &tx.LeaseStarted{ID: m.LeaseID}))
	}
	c.block(time.Second, starts...)
	c.now = c.now.Add(10 * time.Minute)
	for _, m := range v.Members {
		c.completeWith(c.name(m.Provider), m.LeaseID, "out", 0)
	}

	// An order whose tenant accepts p1's bid over the cheaper p4's, and the lease's whole life.
	o := gpuOrder(testRunPrice, api.USPR, 3600)
	o.BidWindow = 3
	c.do("tenant", o)
	order := uint64(2)
	res := c.block(time.Second, c.sign("p4", &tx.PlaceBid{OrderID: order, Price: testRunPrice - 100}), c.sign("p1", &tx.PlaceBid{OrderID: order, Price: testRunPrice - 50}))
	for i, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("bid %d: %s", i, r.Log)
		}
	}
	var bids api.List[*api.Bid]
	c.query(api.QueryBids, api.ListRequest{OrderID: order}, &bids)
	var accept uint64
	for _, b := range bids.Items {
		if b.Provider == c.addr("p1") {
			accept = b.ID
		}
	}
	c.do("tenant", &tx.AcceptBid{ID: accept})
	lease := c.order(order).LeaseID
	if lease == 0 || c.lease(lease).Provider != c.addr("p1") {
		t.Fatalf("order %d: %+v", order, c.order(order))
	}
	c.do("p1", &tx.LeaseStarted{ID: lease})
	c.do("tenant", &tx.TopUp{LeaseID: lease, Amount: api.USPR / 2})
	c.do("tenant", &tx.ExtendLease{LeaseID: lease, AddSec: 1800})
	c.now = c.now.Add(5 * time.Minute)
	c.do("p1", &tx.Withdraw{ID: lease})
	c.now = c.now.Add(5 * time.Minute)
	c.completeWith("p1", lease, "out", 0)

	// A replicated order of two runs that agree.
	c.do("tenant", replicatedOrder(2, api.USPR))
	rep := uint64(3)
	c.block(time.Second, c.sign("p2", &tx.PlaceBid{OrderID: rep, Price: testRunPrice - 10}), c.sign("p3", &tx.PlaceBid{OrderID: rep, Price: testRunPrice - 9}))
	vv := c.verification(rep)
	if vv.State != api.VerifyRunning || len(vv.Runs) != 2 {
		t.Fatalf("replicated: %+v", vv)
	}
	starts = nil
	for _, r := range vv.Runs {
		starts = append(starts, c.sign(c.name(r.Provider), &tx.LeaseStarted{ID: r.LeaseID}))
	}
	c.block(time.Second, starts...)
	c.now = c.now.Add(10 * time.Minute)
	var reveals []*tx.RevealResult
	var who []string
	for _, r := range vv.Runs {
		who = append(who, c.name(r.Provider))
		reveals = append(reveals, c.commitRun(c.name(r.Provider), r.LeaseID, "A"))
	}
	for i, rv := range reveals {
		c.do(who[i], rv)
	}
	if vv = c.verification(rep); vv.State != api.VerifyAgreed {
		t.Fatalf("replicated: %+v", vv)
	}

	// Two sends in one transaction, the second more than the sender holds: both undone, the fee charged once.
	before := c.balance("p4")
	res = c.block(time.Second, c.sign("p4", &tx.Send{To: c.addr("tenant"), Amount: api.USPR}, &tx.Send{To: c.addr("tenant"), Amount: 1 << 62}))
	if res.TxResults[0].Code == 0 || c.balance("p4") != before-c.feeFor(&tx.Send{}, &tx.Send{}) {
		t.Fatalf("multi-message tx: code %d, p4 %d → %d", res.TxResults[0].Code, before, c.balance("p4"))
	}

	// An unbonding, matured after the unbonding period.
	c.do("p4", &tx.Unbond{Amount: api.USPR})
	c.now = c.now.Add(2 * time.Minute)
	c.block(time.Second)
}

// vaultProofEvents are the Vault's proof events the golden scenario does not reach (TestVaultProofs emits them).
var vaultProofEvents = map[string]bool{api.EventVaultEpochPaid: true, api.EventVaultProofFailed: true, api.EventVaultRepair: true,
	api.EventVaultRepaired: true, api.EventVaultShardLost: true}
