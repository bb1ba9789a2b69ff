package ledger

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Commit, then reveal: the attacks on a replicated order's comparison that it stops, played against the real
// ledger. A lazy replica runs nothing and wants the pay of the honest one, whose result becomes public when it is
// revealed.

// replicatedRunning sets up a replicated order of n runs on p1..pn (named in the order of the runs), every run started, and the
// clock a minute on. Providers p1..p(n+1) are registered: the last one can referee.
func replicatedRunning(t *testing.T, n int, params api.Params) (*chain, api.VerificationView) {
	t.Helper()
	funded := map[string]uint64{"tenant": 1000 * api.USPR}
	for i := 1; i <= n+1; i++ {
		funded[fmt.Sprintf("p%d", i)] = 1000 * api.USPR
	}
	c := newChain(t, params, funded)
	for i := 1; i <= n+1; i++ {
		c.registerBonded(fmt.Sprintf("p%d", i))
	}
	c.do("tenant", replicatedOrder(uint32(n), api.USPR))
	var bids [][]byte
	for i := 1; i <= n; i++ {
		bids = append(bids, c.sign(fmt.Sprintf("p%d", i), &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 10 + uint64(i)}))
	}
	c.block(time.Second, bids...)
	v := c.verification(1)
	if v.State != api.VerifyRunning || len(v.Runs) != n {
		t.Fatalf("after the auction: %+v", v)
	}
	// The ledger draws which bidder runs which replica: the names follow the draw, so that p1 serves run 0.
	keys := map[string]key{}
	for i, r := range v.Runs {
		keys[fmt.Sprintf("p%d", i+1)] = c.keys[c.name(r.Provider)]
	}
	maps.Copy(c.keys, keys)
	var starts [][]byte
	for i, r := range v.Runs {
		starts = append(starts, c.sign(fmt.Sprintf("p%d", i+1), &tx.LeaseStarted{ID: r.LeaseID}))
	}
	c.block(time.Second, starts...)
	c.now = c.now.Add(time.Minute)
	return c, c.verification(1)
}

// TestLazyReplicaCannotCopy: p1 runs the job, p2 runs nothing and waits for p1's result. While p2 runs, p1's
// result is not public (only its commitment is), and a receipt is no longer how a run ends (CompleteLease is
// refused). p2 must commit before the reveal phase opens, so with nothing but p1's commitment: copying that
// commitment does not help, since a commitment opens only with its own provider's address. Once p1 reveals, p2's
// copy of p1's result (with p1's salt, or any other) does not match what p2 committed. p2 misses the reveal: no
// vote, not a uspr of pay, a failed lease. A referee decides for p1, who is paid.
func TestLazyReplicaCannotCopy(t *testing.T) {
	c, v := replicatedRunning(t, 2, testParams())
	honest, lazy := v.Runs[0].LeaseID, v.Runs[1].LeaseID
	lazyBalance, lazyStake := c.balance("p2"), c.provider("p2").Stake
	fee := c.app.params().MinFee

	reveal := c.commitRun("p1", honest, "A")
	v = c.verification(1)
	if v.Runs[0].Commit != api.CommitCommitted || v.Runs[0].Result || !v.Runs[0].OutputRoot.IsZero() || v.Phase != "commit" {
		t.Fatalf("after p1's commitment its result is public or the phase moved on: %+v", v)
	}
	// The copy that worked before commit-reveal: p2's own receipt with p1's result, right after p1 ended.
	c.fail(tx.CodeReplicated, "p2", &tx.CompleteLease{Receipt: c.runReceipt("p2", lazy, "A")})
	// Revealing without having committed.
	c.fail(tx.CodeNotCommitted, "p2", &tx.RevealResult{Receipt: c.runReceipt("p2", lazy, "A"), Salt: reveal.Salt})
	// p1 cannot reveal yet either: p2 still runs.
	c.fail(tx.CodeRevealClosed, "p1", reveal)

	// p2 commits the only thing it has: p1's commitment, byte for byte.
	c.do("p2", &tx.CommitResult{LeaseID: lazy, Commitment: v.Runs[0].Commitment})
	if v = c.verification(1); v.Phase != "reveal" || !v.RevealOpen || v.RevealDeadline != c.height+int64(testParams().RevealBlocks) {
		t.Fatalf("both runs committed: the reveal phase should be open: %+v", v)
	}
	c.do("p1", reveal)
	// p1's result and salt are public now. p2's receipt for them, with p1's salt or its own: neither opens what
	// p2 committed.
	for _, salt := range [][32]byte{reveal.Salt, testSalt("p2", lazy)} {
		c.fail(tx.CodeNotCommitted, "p2", &tx.RevealResult{Receipt: c.runReceipt("p2", lazy, "A"), Salt: salt})
	}
	// Nor does p1's own receipt (it is p1's lease's, signed by p1).
	c.fail(tx.CodeUnauthorized, "p2", reveal)

	for range testParams().RevealBlocks {
		c.block(time.Second)
	}
	v = c.verification(1)
	if v.Runs[1].Commit != api.CommitMissed || v.Runs[1].Result || v.State != api.VerifyReferee {
		t.Fatalf("after the reveal deadline: %+v", v)
	}
	c.fail(tx.CodeRevealClosed, "p2", &tx.RevealResult{Receipt: c.runReceipt("p2", lazy, "A"), Salt: testSalt("p2", lazy)})
	l := c.lease(lazy)
	if l.Paid != 0 || l.Held != 0 || l.Refunded != l.Deposit {
		t.Fatalf("the lazy run was paid: %+v", l.Lease)
	}
	if p := c.provider("p2"); p.Completed != 0 || p.Failed != 1 || p.Stake != lazyStake {
		t.Fatalf("lazy provider: completed %d, failed %d, stake %d", p.Completed, p.Failed, p.Stake)
	}
	if got, want := c.balance("p2"), lazyBalance-fee; got != want { // its CommitResult (the refused ones never reached a block)
		t.Fatalf("lazy provider balance %d, want %d: nothing but fees", got, want)
	}

	// The referee (p3) runs the job and agrees with p1.
	c.do("p3", &tx.PlaceBid{OrderID: v.RefereeOrder, Price: testRunPrice})
	c.block(time.Second)
	v = c.verification(1)
	c.do("p3", &tx.LeaseStarted{ID: v.Runs[2].LeaseID})
	c.now = c.now.Add(time.Minute)
	c.do("p3", c.commitRun("p3", v.Runs[2].LeaseID, "A"))
	v = c.verification(1)
	if v.State != api.VerifyAgreed || v.Root != reveal.Receipt.OutputRoot || v.Phase != "" {
		t.Fatalf("verdict: %+v", v)
	}
	if l := c.lease(honest); l.Paid == 0 || l.Held != 0 || v.Runs[0].Outvoted {
		t.Fatalf("the honest run was not paid: %+v", l.Lease)
	}
	if l := c.lease(lazy); l.Paid != 0 {
		t.Fatalf("the lazy run was paid after the verdict: %+v", l.Lease)
	}
}

// TestReplicaNeverReveals: three runs commit the same result; p3 never reveals. When the reveal phase closes p3
// has no vote and no pay (its held earnings go back to the tenant) and counts a failed lease; the two that
// revealed agree and are paid.
func TestReplicaNeverReveals(t *testing.T) {
	c, v := replicatedRunning(t, 3, testParams())
	reveals := make([]*tx.RevealResult, 3)
	for i, r := range v.Runs {
		reveals[i] = c.commitRun(fmt.Sprintf("p%d", i+1), r.LeaseID, "A")
	}
	if v = c.verification(1); v.Runs[2].Held == 0 || v.Phase != "reveal" {
		t.Fatalf("after three commitments: %+v", v)
	}
	tenant := c.balance("tenant")
	held := v.Runs[2].Held
	c.do("p1", reveals[0])
	c.do("p2", reveals[1])
	if v = c.verification(1); v.State != api.VerifyRunning || v.Phase != "reveal" {
		t.Fatalf("judged before p3's reveal or the deadline: %+v", v)
	}
	for c.height < v.RevealDeadline {
		c.block(time.Second)
	}
	v = c.verification(1)
	if v.State != api.VerifyAgreed || v.Runs[2].Commit != api.CommitMissed || v.Runs[2].Result || v.Runs[2].Outvoted {
		t.Fatalf("after the reveal deadline: %+v", v)
	}
	l := c.lease(v.Runs[2].LeaseID)
	if l.Paid != 0 || l.Held != 0 || l.Refunded != l.Deposit {
		t.Fatalf("the run that never revealed: %+v", l.Lease)
	}
	if p := c.provider("p3"); p.Completed != 0 || p.Failed != 1 {
		t.Fatalf("p3: completed %d, failed %d", p.Completed, p.Failed)
	}
	// The tenant got p3's held earnings and the unused reserve back.
	if got, want := c.balance("tenant"), tenant+held+api.USPR; got != want {
		t.Fatalf("tenant %d, want %d", got, want)
	}
	for i := range 2 {
		if l := c.lease(v.Runs[i].LeaseID); l.Paid == 0 || l.Held != 0 || c.provider(fmt.Sprintf("p%d", i+1)).Completed != 1 {
			t.Fatalf("run %d that revealed: %+v", i, l.Lease)
		}
	}
}

// TestReplicaNeverCommits: p3 runs nothing and never commits. Its commit deadline is the end of its billing:
// there it is closed with no pay (the whole deposit goes back to the tenant) and a failed lease, where before
// commit-reveal it was paid for the whole duration. The reveal phase opens then, and the two others agree.
func TestReplicaNeverCommits(t *testing.T) {
	c, v := replicatedRunning(t, 3, testParams())
	r1 := c.commitRun("p1", v.Runs[0].LeaseID, "A")
	r2 := c.commitRun("p2", v.Runs[1].LeaseID, "A")
	c.fail(tx.CodeRevealClosed, "p1", r1)
	c.block(time.Hour) // past the runs' duration
	v = c.verification(1)
	l := c.lease(v.Runs[2].LeaseID)
	if l.State != api.LeaseClosed || l.Paid != 0 || l.Held != 0 || l.Refunded != l.Deposit || v.Runs[2].Commit != api.CommitNone {
		t.Fatalf("the run that never committed: %+v (%+v)", l.Lease, v.Runs[2])
	}
	if p := c.provider("p3"); p.Failed != 1 || p.Completed != 0 {
		t.Fatalf("p3: completed %d, failed %d", p.Completed, p.Failed)
	}
	if v.Phase != "reveal" {
		t.Fatalf("no run can still commit: the reveal phase should be open: %+v", v)
	}
	c.do("p1", r1)
	c.do("p2", r2)
	if v = c.verification(1); v.State != api.VerifyAgreed || v.RefereeOrder != 0 {
		t.Fatalf("verdict: %+v", v)
	}
}

// TestRevealMustOpenTheCommitment: a reveal is taken only in the reveal phase and only if it hashes, with its
// salt and its provider's address, to what the run committed; its receipt is checked as CompleteLease's is.
func TestRevealMustOpenTheCommitment(t *testing.T) {
	c, v := replicatedRunning(t, 2, testParams())
	run1, run2 := v.Runs[0].LeaseID, v.Runs[1].LeaseID
	r1 := c.commitRun("p1", run1, "A")
	c.fail(tx.CodeRevealClosed, "p1", r1) // p2 still runs
	r2 := c.commitRun("p2", run2, "A")
	c.fail(tx.CodeBadLeaseState, "p2", &tx.CommitResult{LeaseID: run2, Commitment: r2.Receipt.OutputRoot}) // committed once

	other := func(mut func(r *tx.RevealResult)) *tx.RevealResult {
		r := *r1
		mut(&r)
		return &r
	}
	wrongRoot := c.runReceipt("p1", run1, "B")
	wrongExit := c.runReceipt("p1", run1, "A:1")
	for _, bad := range []*tx.RevealResult{
		other(func(r *tx.RevealResult) { r.Receipt = wrongRoot }), // another output root
		other(func(r *tx.RevealResult) { r.Receipt = wrongExit }), // another exit code
		other(func(r *tx.RevealResult) { r.Salt[0] ^= 1 }),        // another salt
	} {
		c.fail(tx.CodeNotCommitted, "p1", bad)
	}
	badSig := other(func(r *tx.RevealResult) {
		r.Receipt.Signature = append([]byte(nil), r.Receipt.Signature...)
		r.Receipt.Signature[0] ^= 1
	})
	c.fail(tx.CodeBadReceipt, "p1", badSig)
	badChain := other(func(r *tx.RevealResult) { r.Receipt.ChainID = "elsewhere" })
	c.fail(tx.CodeBadReceipt, "p1", badChain)
	c.fail(tx.CodeInvalidMsg, "p1", other(func(r *tx.RevealResult) { r.Salt = [32]byte{} }))

	c.do("p1", r1)
	c.fail(tx.CodeBadLeaseState, "p1", r1) // revealed once
	c.do("p2", r2)
	if v = c.verification(1); v.State != api.VerifyAgreed || v.Phase != "" || v.RevealOpen {
		t.Fatalf("both revealed: %+v", v)
	}
	c.fail(tx.CodeBadLeaseState, "p2", r2)
}

// TestCommitOnlyForReplicas: a plain lease completes with its receipt as before; it has no commitment to make.
func TestCommitOnlyForReplicas(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"tenant": 1000 * api.USPR, "p1": 1000 * api.USPR})
	c.registerBonded("p1")
	c.do("tenant", gpuOrder(testRunPrice, api.USPR, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	rc := c.runReceipt("p1", 1, "A")
	salt := testSalt("p1", 1)
	c.fail(tx.CodeBadLeaseState, "p1", &tx.CommitResult{LeaseID: 1, Commitment: tx.ResultCommitment(rc.OutputRoot, rc.ExitCode, c.addr("p1"), salt)})
	c.fail(tx.CodeNotCommitted, "p1", &tx.RevealResult{Receipt: rc, Salt: salt})
	c.do("p1", &tx.CompleteLease{Receipt: rc})
	if l := c.lease(1); l.State != api.LeaseCompleted || l.Receipt == nil {
		t.Fatalf("plain lease: %+v", l)
	}
}
