package verify

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

func (k *Keeper) commitment(c *kernel.Ctx, leaseID uint64) (*api.Commitment, bool) {
	b, ok := c.KV.Get(schema.IDKey(schema.PCommit, leaseID))
	if !ok {
		return nil, false
	}
	return kernel.MustDecode(schema.DecCommitment(b)), true
}

func (k *Keeper) setCommitment(c *kernel.Ctx, m *api.Commitment) {
	c.KV.Set(schema.IDKey(schema.PCommit, m.LeaseID), schema.EncCommitment(m))
}

// runCommit is where a run of a group stands, with its commitment if it made one.
func (k *Keeper) runCommit(c *kernel.Ctx, l *api.Lease) (api.RunCommit, *api.Commitment) {
	if l.State == api.LeasePending || l.State == api.LeaseActive {
		return api.CommitAwaiting, nil
	}
	if m, ok := k.commitment(c, l.ID); ok {
		return m.State, m
	}
	if _, ok := c.KV.Get(schema.IDKey(schema.PReceipt, l.ID)); ok && l.State == api.LeaseCompleted {
		return api.CommitRevealed, nil // completed with its receipt before commit-reveal existed
	}
	return api.CommitNone, nil
}

// CommitResult ends a run with a commitment to its result: billing stops, its earnings are held, and its result
// is revealed once no run of its group can still commit.
func (k *Keeper) CommitResult(c *kernel.Ctx, signer tx.Address, m *tx.CommitResult) error {
	l, err := k.Leases.ProviderLease(c, signer, m.LeaseID, api.LeaseActive)
	if err != nil {
		return err
	}
	v, ok := c.LeaseGroup(l)
	if !ok {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is not a run of a replicated order: end it with complete_lease and its receipt", l.ID)
	}
	k.setCommitment(c, &api.Commitment{LeaseID: l.ID, OrderID: v.OrderID, Commitment: m.Commitment, Height: c.Height, State: api.CommitCommitted})
	c.Emit(api.EventVerifyCommitted, api.AttrOrderID, v.OrderID, api.AttrLeaseID, l.ID, api.AttrProvider, signer, api.AttrCommitment, m.Commitment)
	return k.Leases.EndLease(c, l, c.TimeMs, api.LeaseCompleted, signer, "result committed")
}

// RevealResult opens a run's commitment with its signed receipt and salt while its group's reveal phase is open.
func (k *Keeper) RevealResult(c *kernel.Ctx, signer tx.Address, m *tx.RevealResult) error {
	rc := m.Receipt
	l, err := c.Lease(rc.LeaseID)
	if err != nil {
		return err
	}
	if l.Provider != signer {
		return tx.Errorf(tx.CodeUnauthorized, "lease %d is served by %s", l.ID, l.Provider)
	}
	o, err := c.Order(l.OrderID)
	if err != nil {
		return err
	}
	v, ok := c.GroupOf(o)
	if !ok {
		return tx.Errorf(tx.CodeNotCommitted, "lease %d is not a run of a replicated order: there is no commitment to reveal (complete_lease carries its receipt)", l.ID)
	}
	state, cm := k.runCommit(c, l)
	switch {
	case state == api.CommitAwaiting:
		return tx.Errorf(tx.CodeNotCommitted, "lease %d is %s and has committed no result: send commit_result first, then reveal_result once the reveal phase opens", l.ID, l.State)
	case cm == nil:
		return tx.Errorf(tx.CodeNotCommitted, "lease %d ended (%s) without a committed result: it has nothing to reveal", l.ID, l.State)
	case state == api.CommitRevealed:
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d's result is already revealed", l.ID)
	case state == api.CommitMissed:
		return tx.Errorf(tx.CodeRevealClosed, "the reveal phase of replicated order %d closed at the end of block %d without lease %d's reveal", v.OrderID, v.RevealDeadline, l.ID)
	case !v.RevealOpen || c.Height > v.RevealDeadline:
		return tx.Errorf(tx.CodeRevealClosed, "the reveal phase of replicated order %d is not open: it opens once every run has committed its result or ended (%d still running); send reveal_result then", v.OrderID, k.stillRunning(c, v))
	}
	p, err := k.Leases.CheckReceipt(c, signer, &rc, o)
	if err != nil {
		return err
	}
	if tx.ResultCommitment(rc.OutputRoot, rc.ExitCode, signer, m.Salt) != cm.Commitment {
		return tx.Errorf(tx.CodeNotCommitted, "lease %d: the receipt's output root and exit code, with this salt and provider %s, do not hash to the result committed in block %d", l.ID, signer, cm.Height)
	}
	cm.State = api.CommitRevealed
	k.setCommitment(c, cm)
	c.KV.Set(schema.IDKey(schema.PReceipt, l.ID), schema.EncReceipt(&rc))
	p.Completed++
	c.SetProvider(p)
	c.Emit(api.EventVerifyRevealed, api.AttrOrderID, v.OrderID, api.AttrLeaseID, l.ID, api.AttrProvider, signer, api.AttrOutputRoot, rc.OutputRoot, api.AttrExitCode, rc.ExitCode)
	c.Emit(api.EventLeaseCompleted, api.CompletedAttrs(&rc, api.AttrLeaseID, l.ID, api.AttrProvider, signer, api.AttrExitCode, rc.ExitCode)...)
	k.advance(c, v)
	return nil
}

// stillRunning counts a group's runs that may still commit.
func (k *Keeper) stillRunning(c *kernel.Ctx, v *api.Verification) int {
	n := 0
	for _, id := range v.Leases {
		if l, err := c.Lease(id); err == nil && (l.State == api.LeasePending || l.State == api.LeaseActive) {
			n++
		}
	}
	return n
}

// CommitMissed closes a run whose billing ended (its duration or its deposit) before it committed a result: it
// is unpaid (the deposit goes back to the tenant), has no vote and counts as failed.
func (k *Keeper) CommitMissed(c *kernel.Ctx, l *api.Lease, v *api.Verification, why string) {
	k.Providers.ProviderFailed(c, l.Provider, l.Deposit)
	c.Emit(api.EventVerifyCommitMissed, api.AttrOrderID, v.OrderID, api.AttrLeaseID, l.ID, api.AttrProvider, l.Provider, api.AttrReason, why)
	if err := k.Leases.EndRun(c, l, l.EndMs(), api.LeaseClosed, tx.Address{}, why+" before a result was committed: unpaid", true); err != nil {
		panic("ledger: " + err.Error())
	}
}

// advance moves a group's comparison on after one of its runs changed: once no run can still commit it opens the
// reveal phase, once no committed run is left to reveal it closes it, and then it judges.
func (k *Keeper) advance(c *kernel.Ctx, v *api.Verification) {
	if v.State != api.VerifyRunning && v.State != api.VerifyReferee {
		return
	}
	if v.RefereeOrder != 0 {
		if o, err := c.Order(v.RefereeOrder); err == nil && o.State == api.OrderOpen {
			return
		}
	}
	running, toReveal := 0, 0
	for _, id := range v.Leases {
		l, err := c.Lease(id)
		if err != nil {
			panic("ledger: verification names a missing lease")
		}
		switch st, _ := k.runCommit(c, l); st {
		case api.CommitAwaiting:
			running++
		case api.CommitCommitted:
			toReveal++
		}
	}
	switch {
	case running > 0:
		return
	case toReveal > 0 && !v.RevealOpen:
		v.RevealOpen, v.RevealDeadline = true, c.Height+int64(c.Params.RevealBlocks)
		c.KV.Set(schema.PairKey(schema.PRevealDL, uint64(v.RevealDeadline), v.OrderID), nil)
		c.SetVerification(v)
		c.Emit(api.EventVerifyRevealOpened, api.AttrOrderID, v.OrderID, api.AttrDeadline, v.RevealDeadline, api.AttrCommitted, uint64(toReveal))
		return
	case toReveal > 0:
		return
	case v.RevealOpen:
		c.KV.Delete(schema.PairKey(schema.PRevealDL, uint64(v.RevealDeadline), v.OrderID))
		v.RevealOpen = false
		c.SetVerification(v)
		c.Emit(api.EventVerifyRevealClosed, api.AttrOrderID, v.OrderID, api.AttrDeadline, v.RevealDeadline)
	}
	k.judge(c, v)
}

// CloseDueReveals closes the reveal phases whose deadline is this block: a run that committed and did not reveal
// is unpaid (its held earnings go back to the tenant), has no vote and counts as failed; then the group is
// judged. The index is ordered by deadline, so the cost is proportional to the phases that close.
func (k *Keeper) CloseDueReveals(c *kernel.Ctx) {
	c.SweepDue(schema.PRevealDL, uint64(c.Height), func(id uint64) {
		v, ok := c.Verification(id)
		if !ok || !v.RevealOpen {
			panic("ledger: reveal deadline index without an open reveal phase")
		}
		for _, lid := range v.Leases {
			l, err := c.Lease(lid)
			if err != nil {
				panic("ledger: verification names a missing lease")
			}
			if st, cm := k.runCommit(c, l); st == api.CommitCommitted {
				cm.State = api.CommitMissed
				k.setCommitment(c, cm)
				c.Emit(api.EventVerifyRevealMissed, api.AttrOrderID, v.OrderID, api.AttrLeaseID, l.ID, api.AttrProvider, l.Provider)
				k.forfeit(c, l, "result not revealed in time")
			}
		}
		k.advance(c, v)
	})
}

// forfeit gives a run's held earnings back to the tenant and counts the lease as failed: it committed a result
// it did not reveal.
func (k *Keeper) forfeit(c *kernel.Ctx, l *api.Lease, why string) {
	refund := l.Held
	if err := c.Credit(l.Tenant, refund, kernel.InEscrow); err != nil {
		panic("ledger: " + err.Error())
	}
	l.Held = 0
	l.Refunded += refund
	c.SetLease(l)
	k.Providers.ProviderFailed(c, l.Provider, l.Deposit)
	c.Emit(api.EventLeaseForfeited, api.AttrLeaseID, l.ID, api.AttrProvider, l.Provider, api.AttrTenant, l.Tenant, api.AttrRefund, refund, api.AttrReason, why)
}

// RunsBy reports whether provider a already serves a run of the group (a referee must be someone else).
func (k *Keeper) RunsBy(c *kernel.Ctx, v *api.Verification, a tx.Address) bool {
	for _, id := range v.Leases {
		if l, err := c.Lease(id); err == nil && l.Provider == a {
			return true
		}
	}
	return false
}

// CreateReplicatedOrder escrows Deposit for each run plus one more as the referee reserve.
func (k *Keeper) CreateReplicatedOrder(c *kernel.Ctx, tenant tx.Address, m *tx.CreateReplicatedOrder) error {
	reserve := m.Deposit
	total, err := kernel.MulChecked("deposit", m.Deposit, uint64(m.Replicas)+1)
	if err != nil {
		return err
	}
	o, err := k.Market.OpenOrder(c, tenant, &m.CreateOrder, total, m.Replicas)
	if err != nil {
		return err
	}
	c.SetVerification(&api.Verification{OrderID: o.ID, Replicas: m.Replicas, Reserve: reserve, State: api.VerifyLeasing})
	c.Emit(api.EventVerifyOpened, api.AttrOrderID, o.ID, api.AttrTenant, tenant, api.AttrReplicas, uint64(m.Replicas), api.AttrReserve, reserve)
	return nil
}

// OrderEnded marks a cluster order that ended unleased, refunds a group's reserve when its replicated order ends
// unleased, and judges a group whose referee order ended unleased.
func (k *Keeper) OrderEnded(c *kernel.Ctx, o *api.Order) error {
	v, ok := c.GroupOf(o)
	if !ok {
		return nil
	}
	if o.RefereeFor != 0 {
		k.advance(c, v)
		return nil
	}
	if err := c.Credit(o.Tenant, v.Reserve, kernel.InEscrow); err != nil {
		return err
	}
	refund := v.Reserve
	v.Reserve, v.State = 0, api.VerifyCancelled
	c.SetVerification(v)
	c.Emit(api.EventVerifyDecided, api.AttrOrderID, v.OrderID, api.AttrState, v.State, api.AttrReserveRefund, refund)
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
func (k *Keeper) judge(c *kernel.Ctx, v *api.Verification) {
	if v.State != api.VerifyRunning && v.State != api.VerifyReferee || v.RevealOpen {
		return
	}
	if v.RefereeOrder != 0 {
		if o, err := c.Order(v.RefereeOrder); err == nil && o.State == api.OrderOpen {
			return
		}
	}
	leases := make([]*api.Lease, len(v.Leases))
	results := make([]*result, len(v.Leases))
	var tally []vote
	with := 0
	for i, id := range v.Leases {
		l, err := c.Lease(id)
		if err != nil {
			panic("ledger: verification names a missing lease")
		}
		st, _ := k.runCommit(c, l)
		if st == api.CommitAwaiting || st == api.CommitCommitted {
			return
		}
		leases[i] = l
		if st != api.CommitRevealed {
			continue
		}
		b, ok := c.KV.Get(schema.IDKey(schema.PReceipt, id))
		if !ok {
			panic("ledger: a revealed run without its receipt")
		}
		rc := kernel.MustDecode(schema.DecReceipt(b))
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
		k.orderReferee(c, v, leases[0])
		return
	}
	agreeing, outvoted := 0, 0
	var honest []tx.Address // the providers of the runs that agreed with the majority
	var slashed uint64      // taken from the outvoted runs' providers
	for i, l := range leases {
		switch {
		case results[i] == nil:
			if l.Held > 0 { // no vote: nothing held is paid (every path that ends a run so has already refunded it)
				k.forfeit(c, l, "no revealed result")
			}
		case !majority || *results[i] == tally[0].r:
			if err := k.release(c, l); err != nil {
				panic("ledger: " + err.Error())
			}
			agreeing++
			if majority {
				honest = append(honest, l.Provider)
			}
		default:
			taken, err := k.unpay(c, l)
			if err != nil {
				panic("ledger: " + err.Error())
			}
			slashed += taken
			outvoted++
		}
	}
	k.rewardHonest(c, v, honest, slashed)
	if err := c.Credit(leases[0].Tenant, v.Reserve, kernel.InEscrow); err != nil {
		panic("ledger: " + err.Error())
	}
	refund := v.Reserve
	v.Reserve, v.DecidedMs, v.State = 0, c.TimeMs, api.VerifyInconclusive
	if majority {
		v.State, v.Root, v.ExitCode = api.VerifyAgreed, tally[0].r.root, tally[0].r.exit
	}
	c.SetVerification(v)
	c.Emit(api.EventVerifyDecided, api.AttrOrderID, v.OrderID, api.AttrState, v.State, api.AttrOutputRoot, v.Root,
		api.AttrAgreeing, uint64(agreeing), api.AttrOutvoted, uint64(outvoted), api.AttrReserveRefund, refund)
}

// release pays a run its held earnings.
func (k *Keeper) release(c *kernel.Ctx, l *api.Lease) error {
	if l.Held == 0 {
		return nil
	}
	l.Held = 0
	if err := k.Leases.Settle(c, l, l.EndedMs); err != nil {
		return err
	}
	c.SetLease(l)
	if p, ok := c.Provider(l.Provider); ok { // a run's value counts once it is paid, after the verdict
		p.EarnedValue = tx.SatAdd(p.EarnedValue, l.Paid)
		c.SetProvider(p)
	}
	c.RecordWork(l.Provider, l.Burned) // and its burns as work
	return nil
}

// unpay gives an outvoted run's held earnings back to the tenant, slashes its provider — params.SlashMismatchPPM
// of its stake, never more than the lease's value (its deposit): a tenant cannot make a cheap order cost an honest
// provider more than the order was worth — and counts the lease as failed rather than completed. It returns what
// the slash took.
func (k *Keeper) unpay(c *kernel.Ctx, l *api.Lease) (uint64, error) {
	refund := l.Held
	if err := c.Credit(l.Tenant, refund, kernel.InEscrow); err != nil {
		return 0, err
	}
	l.Held = 0
	l.Refunded += refund
	c.SetLease(l)
	if p, ok := c.Provider(l.Provider); ok {
		p.Completed -= min(p.Completed, 1)
		p.Failed++
		p.FailedValue = tx.SatAdd(p.FailedValue, l.Deposit)
		c.SetProvider(p)
	}
	c.Emit(api.EventLeaseOutvoted, api.AttrLeaseID, l.ID, api.AttrProvider, l.Provider, api.AttrTenant, l.Tenant, api.AttrRefund, refund)
	return k.Trust.SlashUpTo(c, l.Provider, c.Params.SlashMismatchPPM, l.Deposit, "outvoted on replicated order "+strconv.FormatUint(l.OrderID, 10)), nil
}

// rewardHonest pays half of what the outvoted runs' providers were slashed to the providers whose runs agreed
// with the majority, in equal shares (the remainder of the division stays in the pool with the other half):
// checking another's work pays, and a provider wrongly accused by a colluding majority could not be — it is
// outvoted itself.
func (k *Keeper) rewardHonest(c *kernel.Ctx, v *api.Verification, honest []tx.Address, slashed uint64) {
	if len(honest) == 0 || slashed == 0 {
		return
	}
	share := slashed / 2 / uint64(len(honest))
	for _, a := range honest {
		if share == 0 {
			break
		}
		c.Must(c.Credit(a, share, kernel.InPool))
		v.Rewarded += share
		c.Emit(api.EventVerifyRewarded, api.AttrOrderID, v.OrderID, api.AttrProvider, a, api.AttrAmount, share)
	}
}

// orderReferee opens a single-run order for the same job, funded by the group's reserve; the providers of the
// group's runs may not bid on it.
func (k *Keeper) orderReferee(c *kernel.Ctx, v *api.Verification, like *api.Lease) {
	parent, err := c.Order(v.OrderID)
	if err != nil {
		panic("ledger: verification without its order")
	}
	o := k.Market.OpenFollowUp(c, parent, v.Reserve, func(o *api.Order) { o.RefereeFor = v.OrderID }, api.AttrRefereeFor, v.OrderID)
	v.Reserve, v.RefereeOrder, v.State = 0, o.ID, api.VerifyReferee // the reserve's escrow now backs this open order
	c.SetVerification(v)
	c.Emit(api.EventVerifyReferee, api.AttrOrderID, v.OrderID, api.AttrRefereeOrder, o.ID, api.AttrTenant, o.Tenant, api.AttrLeaseID, like.ID)
}

func (k *Keeper) VerificationView(c *kernel.Ctx, v *api.Verification) api.VerificationView {
	out := api.VerificationView{Verification: *v, Runs: []api.RunView{}}
	switch {
	case v.RevealOpen:
		out.Phase = "reveal"
	case v.State == api.VerifyRunning, v.State == api.VerifyReferee && k.stillRunning(c, v) > 0:
		out.Phase = "commit"
	}
	for i, id := range v.Leases {
		l, err := c.Lease(id)
		if err != nil {
			continue
		}
		r := api.RunView{LeaseID: id, Provider: l.Provider, Referee: i >= int(v.Replicas), State: l.State, Held: l.Held, Paid: l.Paid}
		var cm *api.Commitment
		r.Commit, cm = k.runCommit(c, l)
		if cm != nil {
			r.Commitment, r.CommitAt = cm.Commitment, cm.Height
		}
		if b, ok := c.KV.Get(schema.IDKey(schema.PReceipt, id)); ok && r.Commit == api.CommitRevealed {
			rc := kernel.MustDecode(schema.DecReceipt(b))
			r.Result, r.OutputRoot, r.ExitCode = true, rc.OutputRoot, rc.ExitCode
			r.Outvoted = v.State == api.VerifyAgreed && (rc.OutputRoot != v.Root || rc.ExitCode != v.ExitCode)
		}
		out.Runs = append(out.Runs, r)
	}
	return out
}

// RunsLeased adds the new leases of a replicated order, or of its referee order, to the group's runs; a group
// whose runs are leased is running (a LeasesCreated hook).
func (k *Keeper) RunsLeased(c *kernel.Ctx, o *api.Order, ids []uint64) {
	v, grouped := c.GroupOf(o)
	if !grouped {
		return
	}
	v.Leases = append(v.Leases, ids...)
	if o.RefereeFor == 0 {
		v.State = api.VerifyRunning
	}
	c.SetVerification(v)
}

// RunEnded advances the group of a run that ended (a LeaseEnded hook).
func (k *Keeper) RunEnded(c *kernel.Ctx, e kernel.LeaseEnd) {
	if e.Group != nil {
		k.advance(c, e.Group)
	}
}
