package ledger

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/sparenet/spare/ledger/tx"
)

// Redundant execution. A replicated order (CreateReplicatedOrder) leases Replicas distinct providers at once for
// the same deterministic job. Each run's earnings stay in escrow when it completes (Lease.Held); once every run
// has ended the ledger compares the results (output root and exit code of each receipt):
//
//   - a result that a strict majority of the runs with a result share, at least two of them, wins: its runs
//     are paid, every run with another result is unpaid (its earnings go back to the tenant), loses
//     params.SlashMismatchPPM of its stake and counts as a failed lease;
//   - without such a majority, if one more agreeing result would make one, the ledger orders one referee run
//     from another provider, paid from the reserve the tenant escrowed with the order, and judges again when
//     it has ended;
//   - still none (or no referee could run): inconclusive. Every run with a result is paid and nobody is
//     slashed, since nobody can be shown wrong.
//
// A run that ends without a receipt (closed, expired, its provider down) is settled by the ordinary rules and
// takes no part in the vote.
//
// Commit, then reveal. A run's result is not public when the run ends: its provider sends CommitResult, a hash
// of the result with its address and a secret salt (tx.ResultCommitment), which ends the run's billing like
// CompleteLease does and holds its earnings. Once no run of the group can still commit (each has committed or
// ended otherwise: a run still active when its billing ends, at the end of its duration or deposit, is closed
// unpaid and counts as failed), the reveal phase opens for params.RevealBlocks blocks: each committed run sends
// RevealResult, its signed receipt and the salt, which must hash to its commitment. A lazy run cannot copy
// another's result: every result is committed before any is revealed, and a commitment opens only with its own
// provider's address and salt. A run that committed and did not reveal in time has no vote, is unpaid and counts
// as failed. The comparison above is made once every committed run has revealed or the reveal phase closed. A
// referee run commits and reveals the same way, in a round of its own.

// VerifyState is where a replicated order's comparison is.
type VerifyState uint8

const (
	VerifyLeasing      VerifyState = 1 // the order is open: its runs are not leased yet
	VerifyRunning      VerifyState = 2 // leased: waiting for every run to end
	VerifyReferee      VerifyState = 3 // no majority: a referee run is ordered
	VerifyAgreed       VerifyState = 4 // decided by a majority
	VerifyInconclusive VerifyState = 5 // no majority even after the referee: every result paid, nobody slashed
	VerifyCancelled    VerifyState = 6 // the order was cancelled or expired before it was leased
)

func (s VerifyState) String() string {
	return [...]string{"unknown", "leasing", "running", "referee", "agreed", "inconclusive", "cancelled"}[min(int(s), 6)]
}

// MarshalText renders the state name in JSON.
func (s VerifyState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *VerifyState) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("verification state", b, map[string]VerifyState{"leasing": VerifyLeasing, "running": VerifyRunning,
		"referee": VerifyReferee, "agreed": VerifyAgreed, "inconclusive": VerifyInconclusive, "cancelled": VerifyCancelled})
	return err
}

// Verification is the comparison of a replicated order's runs.
type Verification struct {
	OrderID      uint64      `json:"order_id"`
	Replicas     uint32      `json:"replicas"`
	Leases       []uint64    `json:"leases"`                  // the replicas' leases, then the referee's
	RefereeOrder uint64      `json:"referee_order,omitempty"` // the order for a referee run, once needed
	Reserve      uint64      `json:"reserve"`                 // escrow kept for a referee run
	State        VerifyState `json:"state"`
	Root         tx.Hash     `json:"output_root,omitzero"` // the majority's result, once agreed
	ExitCode     int64       `json:"exit_code"`
	DecidedMs    uint64      `json:"decided_ms,omitempty"`
	// The reveal phase of the current round (the replicas', then the referee's): open from the block in which no
	// run can still commit, until the end of block RevealDeadline. RevealDeadline stays as the last phase's.
	RevealOpen     bool   `json:"reveal_open,omitempty"`
	RevealDeadline int64  `json:"reveal_deadline,omitempty"`
	Rewarded       uint64 `json:"rewarded,omitempty"` // paid from the pool to the agreeing runs' providers: half the outvoted ones' slash
}

func encVerification(v *Verification) []byte {
	w := tx.NewWriter(96)
	w.Uvarint(v.OrderID)
	w.Uvarint(uint64(v.Replicas))
	w.List("leases", len(v.Leases), tx.MaxReplicas+1)
	for _, id := range v.Leases {
		w.Uvarint(id)
	}
	w.Uvarint(v.RefereeOrder)
	w.Uvarint(v.Reserve)
	w.Byte(byte(v.State))
	w.Raw(v.Root[:])
	w.Varint(v.ExitCode)
	w.Uvarint(v.DecidedMs)
	w.Bool(v.RevealOpen)
	w.Uvarint(uint64(v.RevealDeadline))
	w.Uvarint(v.Rewarded)
	return sealed(w, "verification")
}

func decVerification(b []byte) (*Verification, error) {
	r := tx.NewReader(b)
	v := &Verification{OrderID: r.Uvarint("order_id"), Replicas: r.U32("replicas")}
	n := r.Count("leases", tx.MaxReplicas+1)
	for i := 0; i < n && r.Err() == nil; i++ {
		v.Leases = append(v.Leases, r.Uvarint("lease"))
	}
	v.RefereeOrder = r.Uvarint("referee_order")
	v.Reserve = r.Uvarint("reserve")
	v.State = VerifyState(r.Byte("state"))
	v.Root = r.Hash("root")
	v.ExitCode = r.Varint("exit_code")
	v.DecidedMs = r.Uvarint("decided_ms")
	if r.Remaining() > 0 { // written before commit-reveal existed: no reveal phase open
		v.RevealOpen = r.Bool("reveal_open")
		v.RevealDeadline = int64(r.Uvarint("reveal_deadline"))
	}
	if r.Remaining() > 0 { // written before the honest runs were rewarded
		v.Rewarded = r.Uvarint("rewarded")
	}
	return v, r.Done("verification")
}

// Commit-reveal state, kept here with the code that owns it.
const (
	pCommit   = "vc/" // lease -> Commitment: a run's committed result
	pRevealDL = "vr/" // reveal deadline height | replicated order: the groups whose reveal phase is open
)

// RunCommit is where a run stands in commit-reveal.
type RunCommit uint8

const (
	CommitNone      RunCommit = 0 // ended without a commitment: no vote
	CommitAwaiting  RunCommit = 1 // pending or running: may still commit
	CommitCommitted RunCommit = 2 // committed; to reveal in the reveal phase
	CommitRevealed  RunCommit = 3 // revealed and matched: a vote
	CommitMissed    RunCommit = 4 // committed, not revealed before the reveal phase closed: no vote, unpaid
)

func (s RunCommit) String() string {
	return [...]string{"none", "awaiting", "committed", "revealed", "missed", "unknown"}[min(int(s), 5)]
}

// MarshalText renders the state name in JSON.
func (s RunCommit) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *RunCommit) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("commit state", b, map[string]RunCommit{"none": CommitNone, "awaiting": CommitAwaiting,
		"committed": CommitCommitted, "revealed": CommitRevealed, "missed": CommitMissed})
	return err
}

// Commitment is a run's committed result: stored by CommitResult, opened by RevealResult.
type Commitment struct {
	LeaseID    uint64    `json:"lease_id"`
	OrderID    uint64    `json:"order_id"` // the group's replicated order
	Commitment tx.Hash   `json:"commitment"`
	Height     int64     `json:"height"` // committed in this block
	State      RunCommit `json:"state"`  // committed, revealed or missed
}

func encCommitment(m *Commitment) []byte {
	w := tx.NewWriter(56)
	w.Uvarint(m.LeaseID)
	w.Uvarint(m.OrderID)
	w.Fixed("commitment", m.Commitment[:], len(m.Commitment))
	w.Uvarint(uint64(m.Height))
	w.Byte(byte(m.State))
	return sealed(w, "commitment")
}

func decCommitment(b []byte) (*Commitment, error) {
	r := tx.NewReader(b)
	m := &Commitment{LeaseID: r.Uvarint("lease_id"), OrderID: r.Uvarint("order_id"), Commitment: r.Hash("commitment"),
		Height: int64(r.Uvarint("height")), State: RunCommit(r.Byte("state"))}
	return m, r.Done("commitment")
}

func (c *ctx) commitment(leaseID uint64) (*Commitment, bool) {
	b, ok := c.kv.Get(idKey(pCommit, leaseID))
	if !ok {
		return nil, false
	}
	return mustDecode(decCommitment(b)), true
}

func (c *ctx) setCommitment(m *Commitment) { c.kv.Set(idKey(pCommit, m.LeaseID), encCommitment(m)) }

// runCommit is where a run of a group stands, with its commitment if it made one.
func (c *ctx) runCommit(l *Lease) (RunCommit, *Commitment) {
	if l.State == LeasePending || l.State == LeaseActive {
		return CommitAwaiting, nil
	}
	if m, ok := c.commitment(l.ID); ok {
		return m.State, m
	}
	if _, ok := c.kv.Get(idKey(pReceipt, l.ID)); ok && l.State == LeaseCompleted {
		return CommitRevealed, nil // completed with its receipt before commit-reveal existed
	}
	return CommitNone, nil
}

// commitResult ends a run with a commitment to its result: billing stops, its earnings are held, and its result
// is revealed once no run of its group can still commit.
func (c *ctx) commitResult(signer tx.Address, m *tx.CommitResult) error {
	l, err := c.providerLease(signer, m.LeaseID, LeaseActive)
	if err != nil {
		return err
	}
	v, ok := c.leaseGroup(l)
	if !ok {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is not a run of a replicated order: end it with complete_lease and its receipt", l.ID)
	}
	c.setCommitment(&Commitment{LeaseID: l.ID, OrderID: v.OrderID, Commitment: m.Commitment, Height: c.height, State: CommitCommitted})
	c.emit("verify.committed", "order_id", v.OrderID, "lease_id", l.ID, "provider", signer, "commitment", m.Commitment)
	return c.endLease(l, c.timeMs, LeaseCompleted, signer, "result committed")
}

// revealResult opens a run's commitment with its signed receipt and salt while its group's reveal phase is open.
func (c *ctx) revealResult(signer tx.Address, m *tx.RevealResult) error {
	rc := m.Receipt
	l, err := c.lease(rc.LeaseID)
	if err != nil {
		return err
	}
	if l.Provider != signer {
		return tx.Errorf(tx.CodeUnauthorized, "lease %d is served by %s", l.ID, l.Provider)
	}
	o, err := c.order(l.OrderID)
	if err != nil {
		return err
	}
	v, ok := c.groupOf(o)
	if !ok {
		return tx.Errorf(tx.CodeNotCommitted, "lease %d is not a run of a replicated order: there is no commitment to reveal (complete_lease carries its receipt)", l.ID)
	}
	state, cm := c.runCommit(l)
	switch {
	case state == CommitAwaiting:
		return tx.Errorf(tx.CodeNotCommitted, "lease %d is %s and has committed no result: send commit_result first, then reveal_result once the reveal phase opens", l.ID, l.State)
	case cm == nil:
		return tx.Errorf(tx.CodeNotCommitted, "lease %d ended (%s) without a committed result: it has nothing to reveal", l.ID, l.State)
	case state == CommitRevealed:
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d's result is already revealed", l.ID)
	case state == CommitMissed:
		return tx.Errorf(tx.CodeRevealClosed, "the reveal phase of replicated order %d closed at the end of block %d without lease %d's reveal", v.OrderID, v.RevealDeadline, l.ID)
	case !v.RevealOpen || c.height > v.RevealDeadline:
		return tx.Errorf(tx.CodeRevealClosed, "the reveal phase of replicated order %d is not open: it opens once every run has committed its result or ended (%d still running); send reveal_result then", v.OrderID, c.stillRunning(v))
	}
	p, err := c.checkReceipt(signer, &rc, o)
	if err != nil {
		return err
	}
	if tx.ResultCommitment(rc.OutputRoot, rc.ExitCode, signer, m.Salt) != cm.Commitment {
		return tx.Errorf(tx.CodeNotCommitted, "lease %d: the receipt's output root and exit code, with this salt and provider %s, do not hash to the result committed in block %d", l.ID, signer, cm.Height)
	}
	cm.State = CommitRevealed
	c.setCommitment(cm)
	c.kv.Set(idKey(pReceipt, l.ID), encReceipt(&rc))
	p.Completed++
	c.setProvider(p)
	c.emit("verify.revealed", "order_id", v.OrderID, "lease_id", l.ID, "provider", signer, "output_root", rc.OutputRoot, "exit_code", rc.ExitCode)
	c.emit("lease.completed", "lease_id", l.ID, "provider", signer, "exit_code", rc.ExitCode)
	c.advance(v)
	return nil
}

// stillRunning counts a group's runs that may still commit.
func (c *ctx) stillRunning(v *Verification) int {
	n := 0
	for _, id := range v.Leases {
		if l, err := c.lease(id); err == nil && (l.State == LeasePending || l.State == LeaseActive) {
			n++
		}
	}
	return n
}

// commitMissed closes a run whose billing ended (its duration or its deposit) before it committed a result: it
// is unpaid (the deposit goes back to the tenant), has no vote and counts as failed.
func (c *ctx) commitMissed(l *Lease, v *Verification, why string) {
	c.providerFailed(l.Provider, l.Deposit)
	c.emit("verify.commit_missed", "order_id", v.OrderID, "lease_id", l.ID, "provider", l.Provider, "reason", why)
	if err := c.endRun(l, l.EndMs(), LeaseClosed, tx.Address{}, why+" before a result was committed: unpaid", true); err != nil {
		panic("ledger: " + err.Error())
	}
}

// advance moves a group's comparison on after one of its runs changed: once no run can still commit it opens the
// reveal phase, once no committed run is left to reveal it closes it, and then it judges.
func (c *ctx) advance(v *Verification) {
	if v.State != VerifyRunning && v.State != VerifyReferee {
		return
	}
	if v.RefereeOrder != 0 {
		if o, err := c.order(v.RefereeOrder); err == nil && o.State == OrderOpen {
			return
		}
	}
	running, toReveal := 0, 0
	for _, id := range v.Leases {
		l, err := c.lease(id)
		if err != nil {
			panic("ledger: verification names a missing lease")
		}
		switch st, _ := c.runCommit(l); st {
		case CommitAwaiting:
			running++
		case CommitCommitted:
			toReveal++
		}
	}
	switch {
	case running > 0:
		return
	case toReveal > 0 && !v.RevealOpen:
		v.RevealOpen, v.RevealDeadline = true, c.height+int64(c.params.RevealBlocks)
		c.kv.Set(pairKey(pRevealDL, uint64(v.RevealDeadline), v.OrderID), nil)
		c.setVerification(v)
		c.emit("verify.reveal_opened", "order_id", v.OrderID, "deadline", v.RevealDeadline, "committed", uint64(toReveal))
		return
	case toReveal > 0:
		return
	case v.RevealOpen:
		c.kv.Delete(pairKey(pRevealDL, uint64(v.RevealDeadline), v.OrderID))
		v.RevealOpen = false
		c.setVerification(v)
		c.emit("verify.reveal_closed", "order_id", v.OrderID, "deadline", v.RevealDeadline)
	}
	c.judge(v)
}

// closeDueReveals closes the reveal phases whose deadline is this block: a run that committed and did not reveal
// is unpaid (its held earnings go back to the tenant), has no vote and counts as failed; then the group is
// judged. The index is ordered by deadline, so the cost is proportional to the phases that close.
func (c *ctx) closeDueReveals() {
	var due []uint64
	c.kv.Iterate(pRevealDL, pRevealDL+be64(uint64(c.height)+1), func(k string, _ []byte) bool {
		due = append(due, unbe64(k[len(pRevealDL)+8:]))
		return c.due(len(due))
	})
	for n, id := range due {
		if !c.due(n) {
			break
		}
		v, ok := c.verification(id)
		if !ok || !v.RevealOpen {
			panic("ledger: reveal deadline index without an open reveal phase")
		}
		for _, lid := range v.Leases {
			l, err := c.lease(lid)
			if err != nil {
				panic("ledger: verification names a missing lease")
			}
			if st, cm := c.runCommit(l); st == CommitCommitted {
				cm.State = CommitMissed
				c.setCommitment(cm)
				c.emit("verify.reveal_missed", "order_id", v.OrderID, "lease_id", l.ID, "provider", l.Provider)
				c.forfeit(l, "result not revealed in time")
			}
		}
		c.advance(v)
	}
}

// forfeit gives a run's held earnings back to the tenant and counts the lease as failed: it committed a result
// it did not reveal.
func (c *ctx) forfeit(l *Lease, why string) {
	refund := l.Held
	if err := c.credit(l.Tenant, refund, inEscrow); err != nil {
		panic("ledger: " + err.Error())
	}
	l.Held = 0
	l.Refunded += refund
	c.setLease(l)
	c.providerFailed(l.Provider, l.Deposit)
	c.emit("lease.forfeited", "lease_id", l.ID, "provider", l.Provider, "tenant", l.Tenant, "refund", refund, "reason", why)
}

func (c *ctx) verification(orderID uint64) (*Verification, bool) {
	b, ok := c.kv.Get(idKey(pVerify, orderID))
	if !ok {
		return nil, false
	}
	return mustDecode(decVerification(b)), true
}

func (c *ctx) setVerification(v *Verification) {
	c.kv.Set(idKey(pVerify, v.OrderID), encVerification(v))
	switch v.State {
	case VerifyAgreed, VerifyInconclusive, VerifyCancelled: // judged: the order and its referee run may be finished
		c.retire(v.OrderID)
		if v.RefereeOrder != 0 {
			c.retire(v.RefereeOrder)
		}
	}
}

// groupOf is the verification an order's runs belong to: its own if replicated, its parent's if a referee run.
func (c *ctx) groupOf(o *Order) (*Verification, bool) {
	switch {
	case o.Replicas > 1:
		return c.verification(o.ID)
	case o.RefereeFor != 0:
		return c.verification(o.RefereeFor)
	}
	return nil, false
}

// leaseGroup is the verification a lease's run belongs to, if any.
func (c *ctx) leaseGroup(l *Lease) (*Verification, bool) {
	o, err := c.order(l.OrderID)
	if err != nil {
		return nil, false
	}
	return c.groupOf(o)
}

// runsBy reports whether provider a already serves a run of the group (a referee must be someone else).
func (c *ctx) runsBy(v *Verification, a tx.Address) bool {
	for _, id := range v.Leases {
		if l, err := c.lease(id); err == nil && l.Provider == a {
			return true
		}
	}
	return false
}

// createReplicatedOrder escrows Deposit for each run plus one more as the referee reserve.
func (c *ctx) createReplicatedOrder(tenant tx.Address, m *tx.CreateReplicatedOrder) error {
	reserve := m.Deposit
	total, err := mulChecked("deposit", m.Deposit, uint64(m.Replicas)+1)
	if err != nil {
		return err
	}
	o, err := c.openOrder(tenant, &m.CreateOrder, total, m.Replicas)
	if err != nil {
		return err
	}
	c.setVerification(&Verification{OrderID: o.ID, Replicas: m.Replicas, Reserve: reserve, State: VerifyLeasing})
	c.emit("verify.opened", "order_id", o.ID, "tenant", tenant, "replicas", uint64(m.Replicas), "reserve", reserve)
	return nil
}

// orderEnded marks a cluster order that ended unleased, refunds a group's reserve when its replicated order ends
// unleased, and judges a group whose referee order ended unleased.
func (c *ctx) orderEnded(o *Order) error {
	if err := c.clusterOrderEnded(o); err != nil {
		return err
	}
	v, ok := c.groupOf(o)
	if !ok {
		return nil
	}
	if o.RefereeFor != 0 {
		c.advance(v)
		return nil
	}
	if err := c.credit(o.Tenant, v.Reserve, inEscrow); err != nil {
		return err
	}
	refund := v.Reserve
	v.Reserve, v.State = 0, VerifyCancelled
	c.setVerification(v)
	c.emit("verify.decided", "order_id", v.OrderID, "state", v.State, "reserve_refund", refund)
	return nil
}

type result struct {
	root tx.Hash
	exit int64
}

type vote struct {
	r result
	n int
}

// judge compares a group's results once none of its runs can still commit or reveal (advance calls it), and
// settles them (see above).
func (c *ctx) judge(v *Verification) {
	if v.State != VerifyRunning && v.State != VerifyReferee || v.RevealOpen {
		return
	}
	if v.RefereeOrder != 0 {
		if o, err := c.order(v.RefereeOrder); err == nil && o.State == OrderOpen {
			return
		}
	}
	leases := make([]*Lease, len(v.Leases))
	results := make([]*result, len(v.Leases))
	var tally []vote
	with := 0
	for i, id := range v.Leases {
		l, err := c.lease(id)
		if err != nil {
			panic("ledger: verification names a missing lease")
		}
		st, _ := c.runCommit(l)
		if st == CommitAwaiting || st == CommitCommitted {
			return
		}
		leases[i] = l
		if st != CommitRevealed {
			continue
		}
		b, ok := c.kv.Get(idKey(pReceipt, id))
		if !ok {
			panic("ledger: a revealed run without its receipt")
		}
		rc := mustDecode(decReceipt(b))
		r := result{rc.OutputRoot, rc.ExitCode}
		results[i] = &r
		with++
		j := slices.IndexFunc(tally, func(t vote) bool { return t.r == r })
		if j < 0 {
			tally = append(tally, vote{r, 0})
			j = len(tally) - 1
		}
		tally[j].n++
	}
	// Sorted by count, most first; ties keep the order the results came in (deterministic).
	slices.SortStableFunc(tally, func(a, b vote) int { return cmp.Compare(b.n, a.n) })
	majority := len(tally) > 0 && tally[0].n >= 2 && 2*tally[0].n > with
	// A referee can only help when one more vote for the leading result would make it a majority: not with no
	// result at all, nor with several results tied too widely (say 1-1-1 of three replicas).
	refereeCanDecide := len(tally) > 0 && tally[0].n+1 >= 2 && 2*(tally[0].n+1) > with+1
	if !majority && refereeCanDecide && v.RefereeOrder == 0 && v.Reserve > 0 {
		c.orderReferee(v, leases[0])
		return
	}
	agreeing, outvoted := 0, 0
	var honest []tx.Address // the providers of the runs that agreed with the majority
	var slashed uint64      // taken from the outvoted runs' providers
	for i, l := range leases {
		switch {
		case results[i] == nil:
			if l.Held > 0 { // no vote: nothing held is paid (every path that ends a run so has already refunded it)
				c.forfeit(l, "no revealed result")
			}
		case !majority || *results[i] == tally[0].r:
			if err := c.release(l); err != nil {
				panic("ledger: " + err.Error())
			}
			agreeing++
			if majority {
				honest = append(honest, l.Provider)
			}
		default:
			taken, err := c.unpay(l)
			if err != nil {
				panic("ledger: " + err.Error())
			}
			slashed += taken
			outvoted++
		}
	}
	c.rewardHonest(v, honest, slashed)
	if err := c.credit(leases[0].Tenant, v.Reserve, inEscrow); err != nil {
		panic("ledger: " + err.Error())
	}
	refund := v.Reserve
	v.Reserve, v.DecidedMs, v.State = 0, c.timeMs, VerifyInconclusive
	if majority {
		v.State, v.Root, v.ExitCode = VerifyAgreed, tally[0].r.root, tally[0].r.exit
	}
	c.setVerification(v)
	c.emit("verify.decided", "order_id", v.OrderID, "state", v.State, "output_root", v.Root,
		"agreeing", uint64(agreeing), "outvoted", uint64(outvoted), "reserve_refund", refund)
}

// release pays a run its held earnings.
func (c *ctx) release(l *Lease) error {
	if l.Held == 0 {
		return nil
	}
	l.Held = 0
	if err := c.settle(l, l.EndedMs); err != nil {
		return err
	}
	c.setLease(l)
	if p, ok := c.provider(l.Provider); ok { // a run's value counts once it is paid, after the verdict
		p.EarnedValue = satAdd(p.EarnedValue, l.Paid)
		c.setProvider(p)
	}
	return nil
}

// unpay gives an outvoted run's held earnings back to the tenant, slashes its provider — params.SlashMismatchPPM
// of its stake, never more than the lease's value (its deposit): a tenant cannot make a cheap order cost an honest
// provider more than the order was worth — and counts the lease as failed rather than completed. It returns what
// the slash took.
func (c *ctx) unpay(l *Lease) (uint64, error) {
	refund := l.Held
	if err := c.credit(l.Tenant, refund, inEscrow); err != nil {
		return 0, err
	}
	l.Held = 0
	l.Refunded += refund
	c.setLease(l)
	if p, ok := c.provider(l.Provider); ok {
		p.Completed -= min(p.Completed, 1)
		p.Failed++
		p.FailedValue = satAdd(p.FailedValue, l.Deposit)
		c.setProvider(p)
	}
	c.emit("lease.outvoted", "lease_id", l.ID, "provider", l.Provider, "tenant", l.Tenant, "refund", refund)
	return c.slashUpTo(l.Provider, c.params.SlashMismatchPPM, l.Deposit, "outvoted on replicated order "+strconv.FormatUint(l.OrderID, 10)), nil
}

// rewardHonest pays half of what the outvoted runs' providers were slashed to the providers whose runs agreed
// with the majority, in equal shares (the remainder of the division stays in the pool with the other half):
// checking another's work pays, and a provider wrongly accused by a colluding majority could not be — it is
// outvoted itself.
func (c *ctx) rewardHonest(v *Verification, honest []tx.Address, slashed uint64) {
	if len(honest) == 0 || slashed == 0 {
		return
	}
	share := slashed / 2 / uint64(len(honest))
	for _, a := range honest {
		if share == 0 {
			break
		}
		c.must(c.credit(a, share, inPool))
		v.Rewarded += share
		c.emit("verify.rewarded", "order_id", v.OrderID, "provider", a, "amount", share)
	}
}

// orderReferee opens a single-run order for the same job, funded by the group's reserve; the providers of the
// group's runs may not bid on it.
func (c *ctx) orderReferee(v *Verification, like *Lease) {
	parent, err := c.order(v.OrderID)
	if err != nil {
		panic("ledger: verification without its order")
	}
	o := c.openFollowUp(parent, v.Reserve, func(o *Order) { o.RefereeFor = v.OrderID }, "referee_for", v.OrderID)
	v.Reserve, v.RefereeOrder, v.State = 0, o.ID, VerifyReferee // the reserve's escrow now backs this open order
	c.setVerification(v)
	c.emit("verify.referee", "order_id", v.OrderID, "referee_order", o.ID, "tenant", o.Tenant, "lease_id", like.ID)
}

// VerificationView is a replicated order's comparison with each run's result.
type VerificationView struct {
	Verification
	// Phase is where the current round is: "commit" (runs still running may commit), "reveal" (until the end of
	// block reveal_deadline), or "" once there is no round running (leasing, decided, cancelled, a referee order
	// not leased yet).
	Phase string    `json:"phase,omitempty"`
	Runs  []RunView `json:"runs"`
}

// RunView is one run of a replicated order.
type RunView struct {
	LeaseID    uint64     `json:"lease_id"`
	Provider   tx.Address `json:"provider"`
	Referee    bool       `json:"referee,omitempty"`
	State      LeaseState `json:"state"`
	Result     bool       `json:"result"` // revealed its receipt: a vote
	Commit     RunCommit  `json:"commit"` // awaiting, committed, revealed, missed, or none (ended without committing)
	Commitment tx.Hash    `json:"commitment,omitzero"`
	CommitAt   int64      `json:"committed_height,omitempty"`
	OutputRoot tx.Hash    `json:"output_root,omitzero"`
	ExitCode   int64      `json:"exit_code"`
	Held       uint64     `json:"held"`
	Paid       uint64     `json:"paid"`
	Outvoted   bool       `json:"outvoted,omitempty"`
}

func (c *ctx) verificationView(v *Verification) VerificationView {
	out := VerificationView{Verification: *v, Runs: []RunView{}}
	switch {
	case v.RevealOpen:
		out.Phase = "reveal"
	case v.State == VerifyRunning, v.State == VerifyReferee && c.stillRunning(v) > 0:
		out.Phase = "commit"
	}
	for i, id := range v.Leases {
		l, err := c.lease(id)
		if err != nil {
			continue
		}
		r := RunView{LeaseID: id, Provider: l.Provider, Referee: i >= int(v.Replicas), State: l.State, Held: l.Held, Paid: l.Paid}
		var cm *Commitment
		r.Commit, cm = c.runCommit(l)
		if cm != nil {
			r.Commitment, r.CommitAt = cm.Commitment, cm.Height
		}
		if b, ok := c.kv.Get(idKey(pReceipt, id)); ok && r.Commit == CommitRevealed {
			rc := mustDecode(decReceipt(b))
			r.Result, r.OutputRoot, r.ExitCode = true, rc.OutputRoot, rc.ExitCode
			r.Outvoted = v.State == VerifyAgreed && (rc.OutputRoot != v.Root || rc.ExitCode != v.ExitCode)
		}
		out.Runs = append(out.Runs, r)
	}
	return out
}
