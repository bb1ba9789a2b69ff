package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

const testRunPrice = 3_600_000 // uspr per hour: 1 uspr per ms of run

func replicatedOrder(replicas uint32, deposit uint64) *tx.CreateReplicatedOrder {
	return &tx.CreateReplicatedOrder{CreateOrder: *gpuOrder(testRunPrice, deposit, 3600), Replicas: replicas}
}

// complete sends name's signed receipt for a lease with the given result ("" closes it without one instead).
func (c *chain) completeWith(name string, leaseID uint64, root string, exit int64) {
	c.t.Helper()
	if root == "" {
		c.do(name, &tx.CloseLease{ID: leaseID, Reason: "gave up"})
		return
	}
	l := c.lease(leaseID)
	var o api.Order
	c.query(api.QueryOrder, api.IDRequest{ID: l.OrderID}, &o)
	rc := tx.Receipt{ChainID: testChain, LeaseID: leaseID, ManifestHash: o.ManifestHash, StartMs: l.StartedMs,
		EndMs: uint64(c.now.UnixMilli()), ExitCode: exit, OutputRoot: sha256.Sum256([]byte(root))}
	rc.Signature = ed25519.Sign(c.keys[name].priv, rc.SignBytes())
	c.do(name, &tx.CompleteLease{Receipt: rc})
}

// testResult reads a result as the tests write it: "A" is output root SHA-256("A") with exit code 0, "A:1" the
// same root with exit code 1.
func testResult(res string) (tx.Hash, int64) {
	root, exit, _ := strings.Cut(res, ":")
	code, _ := strconv.ParseInt(exit, 10, 64)
	return sha256.Sum256([]byte(root)), code
}

// runReceipt is name's signed receipt for a lease with the given result.
func (c *chain) runReceipt(name string, leaseID uint64, res string) tx.Receipt {
	l := c.lease(leaseID)
	o := c.order(l.OrderID)
	root, exit := testResult(res)
	rc := tx.Receipt{ChainID: testChain, LeaseID: leaseID, ManifestHash: o.ManifestHash, StartMs: l.StartedMs,
		EndMs: uint64(c.now.UnixMilli()), ExitCode: exit, OutputRoot: root}
	rc.Signature = ed25519.Sign(c.keys[name].priv, rc.SignBytes())
	return rc
}

// testSalt is a salt of name's for a lease (any 32 bytes the others cannot guess do).
func testSalt(name string, leaseID uint64) [32]byte {
	return sha256.Sum256([]byte(fmt.Sprintf("salt %s %d", name, leaseID)))
}

// commitRun commits name's result for a run of a replicated order, and returns the reveal that opens it.
func (c *chain) commitRun(name string, leaseID uint64, res string) *tx.RevealResult {
	c.t.Helper()
	rc := c.runReceipt(name, leaseID, res)
	salt := testSalt(name, leaseID)
	c.do(name, &tx.CommitResult{LeaseID: leaseID, Commitment: tx.ResultCommitment(rc.OutputRoot, rc.ExitCode, c.addr(name), salt)})
	return &tx.RevealResult{Receipt: rc, Salt: salt}
}

func (c *chain) verification(orderID uint64) api.VerificationView {
	var v api.VerificationView
	c.query(api.QueryVerify, api.IDRequest{ID: orderID}, &v)
	return v
}

// TestReplicatedVerdicts runs a replicated order to its verdict for each pattern of results and checks who is
// paid (exactly what the run earned), who is outvoted (unpaid, slashed, counted failed) and that the tenant gets
// back everything else, reserve included. The supply invariant is recomputed after every block.
func TestReplicatedVerdicts(t *testing.T) {
	outvotedBefore := eventCounts()[api.EventLeaseOutvoted]
	const deposit = 1_000_000
	for _, tc := range []struct {
		name     string
		results  []string // per replica, by bid price order; "" = closed without a result
		referee  string   // the referee's result; "expire" = nobody takes the referee order; "-" = none expected
		state    api.VerifyState
		paid     []int // runs (index in the group's leases) paid what they earned
		outvoted []int
	}{
		{"pair agrees", []string{"A", "A"}, "-", api.VerifyAgreed, []int{0, 1}, nil},
		{"corrupt replica outvoted by the referee", []string{"A", "B"}, "A", api.VerifyAgreed, []int{0, 2}, []int{1}},
		{"corrupt first replica", []string{"B", "A"}, "A", api.VerifyAgreed, []int{1, 2}, []int{0}},
		{"three results, no majority", []string{"A", "B"}, "C", api.VerifyInconclusive, []int{0, 1, 2}, nil},
		{"referee never runs", []string{"A", "B"}, "expire", api.VerifyInconclusive, []int{0, 1}, nil},
		{"one replica gives up", []string{"A", ""}, "A", api.VerifyAgreed, []int{0, 2}, nil},
		{"three replicas, one corrupt", []string{"A", "B", "A"}, "-", api.VerifyAgreed, []int{0, 2}, []int{1}},
		{"exit code differs", []string{"A", "A:1"}, "A", api.VerifyAgreed, []int{0, 2}, []int{1}},
		{"no result at all: no referee", []string{"", ""}, "-", api.VerifyInconclusive, nil, nil},
		{"three-way tie: a referee cannot decide", []string{"A", "B", "C"}, "-", api.VerifyInconclusive, []int{0, 1, 2}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			params := testParams()
			params.OrderTTLBlocks = 20
			funded := map[string]uint64{"tenant": 1000 * api.USPR}
			for i := 1; i <= 5; i++ {
				funded[fmt.Sprintf("p%d", i)] = 1000 * api.USPR
			}
			c := newChain(t, params, funded)
			fee := params.MinFee
			for i := 1; i <= 5; i++ {
				c.registerBonded(fmt.Sprintf("p%d", i))
			}
			r := uint32(len(tc.results))
			tenant0 := c.balance("tenant")
			c.do("tenant", replicatedOrder(r, deposit))
			if got := c.balance("tenant"); got != tenant0-fee-deposit*uint64(r+1) {
				t.Fatalf("escrowed %d, want deposit × %d runs", tenant0-fee-got, r+1)
			}
			// p1..pr bid; the ledger draws the runs among them (TestReplicasAreDrawn), so run i goes to names[i].
			var bids [][]byte
			for i := range r {
				bids = append(bids, c.sign(fmt.Sprintf("p%d", i+1), &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 10 + uint64(i)}))
			}
			c.block(time.Second, bids...)
			v := c.verification(1)
			if v.State != api.VerifyRunning || len(v.Runs) != int(r) {
				t.Fatalf("after the auction: %+v", v)
			}
			var starts [][]byte
			names := map[int]string{}
			for i, run := range v.Runs {
				names[i] = c.name(run.Provider)
				starts = append(starts, c.sign(names[i], &tx.LeaseStarted{ID: run.LeaseID}))
			}
			c.block(time.Second, starts...)
			before := map[string]uint64{}
			stake := map[string]uint64{}
			for i := 1; i <= 5; i++ {
				name := fmt.Sprintf("p%d", i)
				before[name], stake[name] = c.balance(name), c.provider(name).Stake
			}
			tenant1 := c.balance("tenant")
			c.fail(tx.CodeReplicated, names[0], &tx.Withdraw{ID: v.Runs[0].LeaseID})
			c.now = c.now.Add(time.Minute)
			// Every run commits (or gives up) first; the reveal phase opens with the last, and each reveals.
			reveals := map[int]*tx.RevealResult{}
			for i, res := range tc.results {
				name := names[i]
				if res == "" {
					c.do(name, &tx.CloseLease{ID: v.Runs[i].LeaseID, Reason: "gave up"})
					continue
				}
				if i > 0 && reveals[0] != nil { // the phase is not open while a run still runs
					c.fail(tx.CodeRevealClosed, names[0], reveals[0])
				}
				reveals[i] = c.commitRun(name, v.Runs[i].LeaseID, res)
			}
			if v = c.verification(1); len(reveals) > 0 && (v.Phase != "reveal" || !v.RevealOpen) {
				t.Fatalf("every run committed or ended, the reveal phase is not open: %+v", v)
			}
			for i := range tc.results {
				if r := reveals[i]; r != nil {
					c.do(names[i], r)
				}
			}
			v = c.verification(1)
			switch tc.referee {
			case "-":
				if v.RefereeOrder != 0 {
					t.Fatalf("a referee was ordered: %+v", v)
				}
			default:
				if v.State != api.VerifyReferee || v.RefereeOrder == 0 || v.Reserve != 0 {
					t.Fatalf("no referee ordered: %+v", v)
				}
				// A provider already running the job may not referee it.
				c.fail(tx.CodeReplicated, "p1", &tx.PlaceBid{OrderID: v.RefereeOrder, Price: testRunPrice})
				if tc.referee == "expire" {
					for range params.OrderTTLBlocks + 1 {
						c.block(time.Second)
					}
					break
				}
				c.do("p5", &tx.PlaceBid{OrderID: v.RefereeOrder, Price: testRunPrice - 1})
				c.block(time.Second) // the referee's auction closes
				v = c.verification(1)
				if len(v.Runs) != int(r)+1 || !v.Runs[r].Referee || v.Runs[r].Provider != c.addr("p5") {
					t.Fatalf("referee run: %+v", v)
				}
				c.do("p5", &tx.LeaseStarted{ID: v.Runs[r].LeaseID})
				c.now = c.now.Add(time.Minute)
				reveal := c.commitRun("p5", v.Runs[r].LeaseID, tc.referee)
				if v := c.verification(1); v.Phase != "reveal" || v.Runs[r].Commit != api.CommitCommitted {
					t.Fatalf("the referee committed: %+v", v)
				}
				c.do("p5", reveal)
			}
			v = c.verification(1)
			if v.State != tc.state || v.Reserve != 0 {
				t.Fatalf("verdict %s, want %s: %+v", v.State, tc.state, v)
			}
			if tc.state == api.VerifyAgreed && v.Root != sha256.Sum256([]byte("A")) {
				t.Fatalf("majority root %x", v.Root)
			}
			// An outvoted run's provider loses a tenth of its stake, never more than the lease's value (its
			// deposit); half of that goes to the providers of the runs that agreed, in equal shares.
			slashOf := func(name string) uint64 { return min(stake[name]/10, deposit) }
			var slashedTotal uint64
			for _, i := range tc.outvoted {
				slashedTotal += slashOf(names[i])
			}
			reward := uint64(0)
			if len(tc.outvoted) > 0 {
				reward = slashedTotal / 2 / uint64(len(tc.paid))
			}
			if v.Rewarded != reward*uint64(len(tc.paid)) {
				t.Fatalf("rewarded %d, want %d", v.Rewarded, reward*uint64(len(tc.paid)))
			}
			var paidTotal uint64
			for i, run := range v.Runs {
				name := names[i]
				if run.Referee {
					name = "p5"
				}
				l := c.lease(run.LeaseID)
				fees := uint64(2) // CommitResult and RevealResult
				if tc.results[min(i, len(tc.results)-1)] == "" && !run.Referee {
					fees = 1 // CloseLease
				}
				if run.Referee {
					fees = 4 // PlaceBid, LeaseStarted, CommitResult, RevealResult
				}
				if l.Held != 0 || l.Paid+l.Refunded != l.Deposit {
					t.Fatalf("run %d not settled: %+v", i, l.Lease)
				}
				// What each run earned, worked out by hand: replica i bid 3,599,990 + i uspr/h and its receipt
				// landed 61 + i s after its start (one block a second); the referee bid 3,599,999 and ran 61 s.
				// (3,599,990 + i) × (61,000 + 1,000 i) / 3,600,000 rounded down: 60,999, 61,999, 62,999; the referee 60,999.
				earned := []uint64{60_999, 61_999, 62_999}[i]
				if run.Referee {
					earned = 60_999
				}
				switch {
				case slices.Contains(tc.paid, i):
					if l.Paid != earned || run.Outvoted {
						t.Fatalf("run %d paid %d, earned %d (outvoted %v)", i, l.Paid, earned, run.Outvoted)
					}
				case slices.Contains(tc.outvoted, i):
					if l.Paid != 0 || l.Refunded != l.Deposit || !run.Outvoted {
						t.Fatalf("outvoted run %d: %+v", i, l.Lease)
					}
					p := c.provider(name)
					if want := stake[name] - slashOf(name); p.Stake != want || p.Failed != 1 || p.Completed != 0 {
						t.Fatalf("outvoted %s: stake %d (want %d), failed %d, completed %d", name, p.Stake, want, p.Failed, p.Completed)
					}
				case tc.results[i] == "":
					// Gave up: paid for the time it ran by the ordinary rules, and counted failed.
					if l.Paid != earned || c.provider(name).Failed != 1 {
						t.Fatalf("run %d that gave up: %+v", i, l.Lease)
					}
				default:
					t.Fatalf("run %d not expected", i)
				}
				rewarded := uint64(0)
				if slices.Contains(tc.paid, i) {
					rewarded = reward
				}
				if got, want := c.balance(name), before[name]-fees*fee+l.Paid-l.Take+rewarded; got != want {
					t.Fatalf("%s balance %d, want %d", name, got, want)
				}
				if !slices.Contains(tc.outvoted, i) && c.provider(name).Stake != stake[name] {
					t.Fatalf("%s slashed without being outvoted", name)
				}
				paidTotal += l.Paid
			}
			// The tenant paid exactly what the paid runs earned; everything else (reserve included) came back.
			if got, want := c.balance("tenant"), tenant1+deposit*uint64(r+1)-paidTotal; got != want {
				t.Fatalf("tenant balance %d, want %d (paid %d)", got, want, paidTotal)
			}
		})
	}
	// Outvoted runs emitted lease.outvoted, and its typed parser read every one of them (checkEvents).
	if eventCounts()[api.EventLeaseOutvoted] == outvotedBefore {
		t.Error("no lease.outvoted event: the outvoted runs' refunds went unread")
	}
}

// TestReplicatedAuction: a replicated order leases only when it has a bid per replica, from distinct providers;
// it cannot be accepted bid by bid; cancelling it refunds every run's deposit and the reserve.
func TestReplicatedAuction(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"tenant": 1000 * api.USPR, "p1": 1000 * api.USPR, "p2": 1000 * api.USPR})
	fee := c.app.params().MinFee
	c.registerBonded("p1")
	c.registerBonded("p2")
	before := c.balance("tenant")
	c.do("tenant", replicatedOrder(2, 5*api.USPR))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}) // the window closes with one bid: still open
	var o api.Order
	c.query(api.QueryOrder, api.IDRequest{ID: 1}, &o)
	if o.State != api.OrderOpen || o.Replicas != 2 || o.Escrowed() != 10*api.USPR {
		t.Fatalf("order with one bid: %+v", o)
	}
	c.fail(tx.CodeReplicated, "tenant", &tx.AcceptBid{ID: 1})
	c.fail(tx.CodeDuplicateBid, "p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	c.do("p2", &tx.PlaceBid{OrderID: 1, Price: testRunPrice}) // the second bid leases both at once
	v := c.verification(1)
	if v.State != api.VerifyRunning || len(v.Runs) != 2 || v.Runs[0].Provider == v.Runs[1].Provider || v.Reserve != 5*api.USPR {
		t.Fatalf("after the second bid: %+v", v)
	}

	// Cancelled while open: everything back.
	c.do("tenant", replicatedOrder(2, 5*api.USPR))
	c.do("tenant", &tx.CancelOrder{ID: 2})
	if v := c.verification(2); v.State != api.VerifyCancelled || v.Reserve != 0 {
		t.Fatalf("cancelled: %+v", v)
	}
	if got, want := c.balance("tenant"), before-3*fee-3*5*api.USPR; got != want {
		t.Fatalf("tenant %d, want %d (only order 1's runs and reserve escrowed)", got, want)
	}
	c.fail(tx.CodeInvalidMsg, "tenant", replicatedOrder(1, api.USPR))
	c.fail(tx.CodeInvalidMsg, "tenant", replicatedOrder(tx.MaxReplicas+1, api.USPR))
	c.fail(tx.CodeOverflow, "tenant", replicatedOrder(3, 1<<63))
}
