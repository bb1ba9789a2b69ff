package ledger

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/sparenet/spare/ledger/tx"
)

// Escrow and lazy settlement. A lease's deposit sits in escrow. Nothing is paid per block: what the provider has
// earned is computed when the lease is touched, always from the start,
//
//	earned(t) = floor(price × (min(t, end) − started) / 1h)
//
// so rounding never accumulates. end = started + min(duration, the time the deposit lasts); active leases are
// indexed by when they close, and each block visits only the leases that close in it.
//
// Completion grace. A provider stops a workload at the end of its duration and only then can hash its outputs and
// sign the receipt, so its CompleteLease always lands after the end. A lease that runs to its duration (not out of
// its deposit) therefore stays active for params.completion_grace_sec after its end: billing has stopped (earned
// is bounded by end, whenever the lease is settled), the provider may still complete it (the receipt is recorded,
// the tenant pays exactly price × duration) or commit a replicated run's result, and the tenant can no longer
// close it (that would only drop the receipt it paid for). Once the grace has passed, the sweep closes it as
// before, paid to its end. The grace is bounded (MaxCompletionGraceSec), so escrow is never held longer.

const msPerHour = 3_600_000

func (c *ctx) lease(id uint64) (*Lease, error) {
	b, ok := c.kv.Get(idKey(pLease, id))
	if !ok {
		return nil, c.gone("lease", "lease", id, fmt.Sprintf("/api/leases/%d", id))
	}
	return mustDecode(decLease(b)), nil
}

func (c *ctx) setLease(l *Lease) {
	c.kv.Set(idKey(pLease, l.ID), encLease(l))
	if l.ended() {
		c.retire(l.OrderID)
	}
}

// EndMs is when billing of an active lease stops: its duration, or the moment its deposit is used up.
func (l *Lease) EndMs() uint64 {
	byDuration := l.DurationSec * 1000
	byDeposit := mulDiv(l.Deposit, msPerHour, l.Price)
	return l.StartedMs + min(byDuration, byDeposit)
}

// endsByDuration reports whether an active lease's billing ends at its duration rather than when its deposit runs
// out.
func (l *Lease) endsByDuration() bool {
	return l.DurationSec*1000 <= mulDiv(l.Deposit, msPerHour, l.Price)
}

// closeAtMs is when the end-of-block sweep closes an active lease, its key in the index of billing ends: its end,
// and for a lease that runs to its duration graceSec (params.completion_grace_sec) after it.
func (l *Lease) closeAtMs(graceSec uint64) uint64 {
	if l.endsByDuration() {
		return l.EndMs() + graceSec*1000
	}
	return l.EndMs()
}

// indexEnd and unindexEnd add an active lease to, and remove it from, the index of billing ends: every change to
// what its closing time depends on (its start, deposit, duration) goes through them, before and after.
func (c *ctx) indexEnd(l *Lease) {
	c.kv.Set(pairKey(pLeaseDepletion, l.closeAtMs(c.params.CompletionGraceSec), l.ID), nil)
}

func (c *ctx) unindexEnd(l *Lease) {
	c.kv.Delete(pairKey(pLeaseDepletion, l.closeAtMs(c.params.CompletionGraceSec), l.ID))
}

// inGrace reports whether an active lease ran to its duration and waits, unbilled, for its provider's completion.
func (c *ctx) inGrace(l *Lease) bool {
	return l.State == LeaseActive && l.StartedMs != 0 && l.endsByDuration() && c.timeMs >= l.EndMs()
}

// EarnedAt is the gross amount earned by time t (ms), never more than the deposit.
func (l *Lease) EarnedAt(t uint64) uint64 {
	if l.State != LeaseActive && l.State != LeaseClosed && l.State != LeaseCompleted || l.StartedMs == 0 {
		return l.Paid
	}
	end := min(t, l.EndMs())
	if l.EndedMs != 0 {
		end = min(end, l.EndedMs)
	}
	if end <= l.StartedMs {
		return 0
	}
	return min(mulDiv(l.Price, end-l.StartedMs, msPerHour), l.Deposit)
}

func takeOf(gross, ratePPM uint64) uint64 { return mulDiv(gross, ratePPM, tx.PPM) }

// createLeases leases an open order to its winning bids — one, or one per replica — and closes it. A referee
// order's lease joins its group's runs.
func (c *ctx) createLeases(o *Order, bids []*Bid) error {
	v, grouped := c.groupOf(o)
	var ids []uint64
	for _, b := range bids {
		l := c.createLease(o, b)
		if o.LeaseID == 0 {
			o.LeaseID = l.ID
		}
		if grouped {
			v.Leases = append(v.Leases, l.ID)
		}
		ids = append(ids, l.ID)
	}
	if o.Nodes > 1 {
		c.clusterLeased(o, ids)
	}
	if grouped && o.RefereeFor == 0 {
		v.State = VerifyRunning
	}
	if grouped {
		c.setVerification(v)
	}
	c.closeOrder(o, OrderLeased)
	return nil
}

func (c *ctx) createLease(o *Order, b *Bid) *Lease {
	c.closeBid(b, BidWon, "")
	l := &Lease{
		ID: c.nextID("lease"), OrderID: o.ID, BidID: b.ID, Tenant: o.Tenant, Provider: b.Provider, Price: b.Price,
		DurationSec: o.DurationSec, State: LeasePending, CreatedHeight: c.height,
		StartDeadline: c.height + int64(c.params.StartTimeoutBlocks), Deposit: o.Deposit,
	}
	c.setLease(l)
	c.kv.Set(ownedKey(pLeaseByTenant, l.Tenant, l.ID), nil)
	c.kv.Set(ownedKey(pLeaseByProv, l.Provider, l.ID), nil)
	c.kv.Set(pairKey(pLeaseStartDL, uint64(l.StartDeadline), l.ID), nil)
	c.emit("lease.created", "lease_id", l.ID, "order_id", o.ID, "bid_id", b.ID,
		"tenant", l.Tenant, "provider", l.Provider, "price", l.Price,
		"start_deadline", l.StartDeadline)
	return l
}

// providerLease loads a lease that signer serves and that is in state want.
func (c *ctx) providerLease(signer tx.Address, id uint64, want LeaseState) (*Lease, error) {
	l, err := c.lease(id)
	if err != nil {
		return nil, err
	}
	if l.Provider != signer {
		return nil, tx.Errorf(tx.CodeUnauthorized, "lease %d is served by %s", l.ID, l.Provider)
	}
	if l.State != want {
		return nil, tx.Errorf(tx.CodeBadLeaseState, "lease %d is %s, not %s", l.ID, l.State, want)
	}
	return l, nil
}

func (c *ctx) leaseStarted(signer tx.Address, m *tx.LeaseStarted) error {
	l, err := c.providerLease(signer, m.ID, LeasePending)
	if err != nil {
		return err
	}
	p, err := c.mustProvider(signer)
	if err != nil {
		return err
	}
	if p.Status == ProviderJailed {
		return tx.Errorf(tx.CodeProviderJailed, "provider %s is jailed", signer)
	}
	if c.height > l.StartDeadline {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d had to start by block %d: it is being refunded", l.ID, l.StartDeadline)
	}
	c.kv.Delete(pairKey(pLeaseStartDL, uint64(l.StartDeadline), l.ID))
	l.State = LeaseActive
	l.StartedMs = c.timeMs
	c.setLease(l)
	c.indexEnd(l)
	c.emit("lease.started", "lease_id", l.ID, "provider", signer, "tenant", l.Tenant,
		"started_ms", l.StartedMs, "end_ms", l.EndMs())
	return nil
}

// settle pays the provider what the lease earned up to time t and not yet paid, minus the take.
func (c *ctx) settle(l *Lease, t uint64) error {
	earned := l.EarnedAt(t)
	if earned <= l.Paid {
		return nil
	}
	gross := earned - l.Paid
	takeTotal := takeOf(earned, c.params.TakeRatePPM)
	take := takeTotal - l.Take
	l.Paid, l.Take = earned, takeTotal
	c.move(inEscrow, inPool, take)
	if err := c.credit(l.Provider, gross-take, inEscrow); err != nil {
		return err
	}
	c.emit("lease.paid", "lease_id", l.ID, "provider", l.Provider, "amount", gross-take,
		"take", take, "paid_total", l.Paid)
	return nil
}

// endLease stops billing at time t, pays what was earned, refunds the rest and drops the lease's indexes.
func (c *ctx) endLease(l *Lease, t uint64, state LeaseState, by tx.Address, reason string) error {
	return c.endRun(l, t, state, by, reason, false)
}

// endRun is endLease; unpaid ends a run of a replicated order that committed no result by the end of its
// billing: it earns nothing, and its whole deposit goes back to the tenant.
func (c *ctx) endRun(l *Lease, t uint64, state LeaseState, by tx.Address, reason string, unpaid bool) error {
	// The order tells whether the lease is a replica's run (its pay is held) or a cluster member's.
	o, err := c.order(l.OrderID)
	if err != nil {
		return err
	}
	v, grouped := c.groupOf(o)
	switch l.State {
	case LeasePending:
		c.kv.Delete(pairKey(pLeaseStartDL, uint64(l.StartDeadline), l.ID))
	case LeaseActive:
		c.unindexEnd(l)
		if !unpaid && (state != LeaseCompleted || !grouped) {
			if err := c.settle(l, t); err != nil {
				return err
			}
		}
		l.EndedMs = min(t, l.EndMs())
	default:
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is already %s", l.ID, l.State)
	}
	// A replica's earnings wait in escrow for the comparison of the runs (verify.go); everything else settles.
	if grouped && state == LeaseCompleted {
		l.Held = l.EarnedAt(t) - l.Paid
	}
	refund := l.Deposit - l.Paid - l.Held
	if err := c.credit(l.Tenant, refund, inEscrow); err != nil {
		return err
	}
	l.Refunded = refund
	l.State = state
	l.ClosedBy = by
	// The one place a close reason is stored: bounded here, whatever composed it (a cluster member's reason quotes
	// the tenant's own, up to MaxReasonLen already), so that it always decodes again.
	reason = tx.PlainText(reason, tx.MaxReasonLen)
	l.CloseReason = reason
	c.setLease(l)
	c.emit("lease.closed", "lease_id", l.ID, "provider", l.Provider, "tenant", l.Tenant,
		"state", state, "reason", reason, "paid", l.Paid, "refund", refund, "held", l.Held)
	if grouped {
		c.advance(v)
	}
	c.memberEnded(l, o)
	return nil
}

func (c *ctx) closeLease(signer tx.Address, m *tx.CloseLease) error {
	l, err := c.lease(m.ID)
	if err != nil {
		return err
	}
	if signer != l.Tenant && signer != l.Provider {
		return tx.Errorf(tx.CodeUnauthorized, "lease %d is between %s and %s", l.ID, l.Tenant, l.Provider)
	}
	reason := m.Reason
	if reason == "" {
		reason = "closed by tenant"
		if signer == l.Provider {
			reason = "closed by provider"
		}
	}
	grace := c.inGrace(l)
	if grace && signer == l.Tenant && signer != l.Provider {
		// Billing has stopped: closing now would save the tenant nothing and only drop the receipt it paid for.
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d ran to its duration at %d ms: nothing more is billed, and its provider may complete it with the receipt until %d ms, after which it closes by itself",
			l.ID, l.EndMs(), l.closeAtMs(c.params.CompletionGraceSec))
	}
	// A provider ending a running lease broke its promise (not one that ran its duration: it gives up only its
	// receipt); closing one that never started costs the tenant nothing (the deposit is refunded in full) and the
	// provider nothing either, unless the tenant proved that it delivered the manifest (see manifestDelivered).
	if signer == l.Provider && signer != l.Tenant && (l.State == LeaseActive && !grace || l.State == LeasePending && l.ManifestDelivered) {
		c.providerFailed(l.Provider, l.Deposit)
	}
	return c.endLease(l, c.timeMs, LeaseClosed, signer, reason)
}

// isReplica reports whether a lease is a run of a replicated order (a referee run included).
func (c *ctx) isReplica(l *Lease) bool {
	_, ok := c.leaseGroup(l)
	return ok
}

// providerFailed counts a failed lease against a provider's record, weighted by value: the lease's deposit, what
// the tenant committed to it.
func (c *ctx) providerFailed(a tx.Address, value uint64) {
	if p, ok := c.provider(a); ok {
		p.Failed++
		p.FailedValue = satAdd(p.FailedValue, value)
		c.setProvider(p)
	}
}

func (c *ctx) completeLease(signer tx.Address, m *tx.CompleteLease) error {
	rc := m.Receipt
	l, err := c.providerLease(signer, rc.LeaseID, LeaseActive)
	if err != nil {
		return err
	}
	o, err := c.order(l.OrderID)
	if err != nil {
		return err
	}
	// A run's receipt is public once it lands: another run could copy its result. Runs commit, then reveal.
	if v, grouped := c.groupOf(o); grouped {
		return tx.Errorf(tx.CodeReplicated, "lease %d is a run of replicated order %d: send commit_result with the hash of its result (tx.ResultCommitment, with a secret random salt) now, then reveal_result with the receipt and the salt once the reveal phase opens", l.ID, v.OrderID)
	}
	p, err := c.checkReceipt(signer, &rc, o)
	if err != nil {
		return err
	}
	p.Completed++
	p.EarnedValue = satAdd(p.EarnedValue, l.EarnedAt(c.timeMs)) // what the tenant pays for it, to the uspr
	c.setProvider(p)
	c.kv.Set(idKey(pReceipt, l.ID), encReceipt(&rc))
	c.emit("lease.completed", "lease_id", l.ID, "provider", signer, "exit_code", rc.ExitCode, "in_grace", fmt.Sprint(c.inGrace(l)))
	return c.endLease(l, c.timeMs, LeaseCompleted, signer, "completed")
}

// checkReceipt checks a receipt for a lease of order o signed by its provider: this network's, for the order's
// manifest, its signature valid under the provider's key. It returns the provider.
func (c *ctx) checkReceipt(signer tx.Address, rc *tx.Receipt, o *Order) (*Provider, error) {
	if rc.ChainID != c.chainID {
		return nil, tx.Errorf(tx.CodeBadReceipt, "receipt chain_id %q, this network is %q", rc.ChainID, c.chainID)
	}
	if !bytes.Equal(rc.ManifestHash[:], o.ManifestHash[:]) {
		return nil, tx.Errorf(tx.CodeBadReceipt, "receipt manifest hash differs from order %d's", o.ID)
	}
	p, err := c.mustProvider(signer)
	if err != nil {
		return nil, err
	}
	c.gas.consume(gasSigVerify)
	if !ed25519.Verify(p.PubKey, rc.SignBytes(), rc.Signature) {
		return nil, tx.Errorf(tx.CodeBadReceipt, "receipt signature does not verify with provider %s's key", signer)
	}
	return p, nil
}

func (c *ctx) topUp(signer tx.Address, m *tx.TopUp) error {
	l, err := c.lease(m.LeaseID)
	if err != nil {
		return err
	}
	if l.State != LeasePending && l.State != LeaseActive {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is %s", l.ID, l.State)
	}
	deposit, err := addChecked("deposit", l.Deposit, m.Amount)
	if err != nil {
		return err
	}
	if err := c.debit(signer, m.Amount, inEscrow); err != nil {
		return err
	}
	if l.State == LeaseActive {
		c.unindexEnd(l)
	}
	l.Deposit = deposit
	if l.State == LeaseActive {
		c.indexEnd(l)
	}
	c.setLease(l)
	c.emit("lease.topped_up", "lease_id", l.ID, "from", signer, "amount", m.Amount,
		"deposit", l.Deposit, "end_ms", l.EndMs())
	return nil
}

func (c *ctx) withdraw(signer tx.Address, m *tx.Withdraw) error {
	l, err := c.providerLease(signer, m.ID, LeaseActive)
	if err != nil {
		return err
	}
	if c.isReplica(l) {
		return tx.Errorf(tx.CodeReplicated, "lease %d is a run of a replicated order: it is paid once the runs' results are compared, not before", l.ID)
	}
	if l.EarnedAt(c.timeMs) <= l.Paid {
		return tx.Errorf(tx.CodeNothingToWithdraw, "lease %d has earned nothing since the last withdrawal", l.ID)
	}
	if err := c.settle(l, c.timeMs); err != nil {
		return err
	}
	c.setLease(l)
	return nil
}

// endDepletedLeases closes the active leases due to close by this block's time: those whose deposit ran out, and
// those that ran to their duration and whose completion grace has passed. The index is ordered by that time, so
// the cost is proportional to the leases that close, not to the leases that run. Each is paid to its end.
func (c *ctx) endDepletedLeases() {
	var due []uint64
	c.kv.Iterate(pLeaseDepletion, pLeaseDepletion+be64(c.timeMs+1), func(k string, _ []byte) bool {
		due = append(due, unbe64(k[len(pLeaseDepletion)+8:]))
		return c.due(len(due))
	})
	for n, id := range due {
		if !c.due(n) {
			break
		}
		l, err := c.lease(id)
		if err != nil {
			panic("ledger: depletion index without lease")
		}
		if l.State != LeaseActive {
			continue // closed earlier in this loop: a cluster member whose partner's end closed it too
		}
		reason := "duration reached"
		if l.EndMs() < l.StartedMs+l.DurationSec*1000 {
			reason = "deposit exhausted"
		}
		if v, grouped := c.leaseGroup(l); grouped { // a run of a replicated order: its commit deadline passed
			c.commitMissed(l, v, reason)
			continue
		}
		if err := c.endLease(l, l.EndMs(), LeaseClosed, tx.Address{}, reason); err != nil {
			panic("ledger: " + err.Error())
		}
	}
}

// manifestDelivered records, for a pending lease, its provider's signed acknowledgement that it received the
// manifest (tx.ManifestAckBytes over this chain, the lease and the order's manifest hash). Only the lease's tenant
// sends it (it holds the acknowledgement the provider's API answered with), and only before the start deadline.
func (c *ctx) manifestDelivered(signer tx.Address, m *tx.ManifestDelivered) error {
	l, err := c.lease(m.LeaseID)
	if err != nil {
		return err
	}
	if signer != l.Tenant {
		return tx.Errorf(tx.CodeUnauthorized, "lease %d is %s's: only its tenant shows its manifest was delivered", l.ID, l.Tenant)
	}
	if l.State != LeasePending {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is %s: delivery matters only to a lease not yet started", l.ID, l.State)
	}
	if c.height > l.StartDeadline {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d had to start by block %d: it is being refunded", l.ID, l.StartDeadline)
	}
	if l.ManifestDelivered {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d's manifest delivery is already recorded", l.ID)
	}
	o, err := c.order(l.OrderID)
	if err != nil {
		return err
	}
	p, err := c.mustProvider(l.Provider)
	if err != nil {
		return err
	}
	c.gas.consume(gasSigVerify)
	if !ed25519.Verify(p.PubKey, tx.ManifestAckBytes(c.chainID, l.ID, o.ManifestHash), m.Ack[:]) {
		return tx.Errorf(tx.CodeBadReceipt, "ack does not verify with provider %s's key over lease %d and order %d's manifest hash on this chain", l.Provider, l.ID, o.ID)
	}
	l.ManifestDelivered = true
	c.setLease(l)
	c.emit("lease.manifest_delivered", "lease_id", l.ID, "tenant", l.Tenant, "provider", l.Provider,
		"start_deadline", l.StartDeadline)
	return nil
}

// expireUnstartedLeases closes pending leases past their start deadline with a full refund. It counts against the
// provider only when the tenant showed that the provider acknowledged the manifest (manifestDelivered): a lease
// whose manifest the ledger cannot tell was delivered is nobody's failure, so that no tenant can lower a
// provider's record by leasing and sending nothing.
func (c *ctx) expireUnstartedLeases() {
	var due []uint64
	c.kv.Iterate(pLeaseStartDL, pLeaseStartDL+be64(uint64(c.height)+1), func(k string, _ []byte) bool {
		due = append(due, unbe64(k[len(pLeaseStartDL)+8:]))
		return c.due(len(due))
	})
	for n, id := range due {
		if !c.due(n) {
			break
		}
		l, err := c.lease(id)
		if err != nil {
			panic("ledger: start index without lease")
		}
		if l.State != LeasePending {
			continue // closed earlier in this loop (a cluster member's partner)
		}
		reason := "no manifest delivered in time"
		if l.ManifestDelivered {
			reason = "not started in time"
			c.providerFailed(l.Provider, l.Deposit)
		}
		if err := c.endLease(l, c.timeMs, LeaseClosed, tx.Address{}, reason); err != nil {
			panic("ledger: " + err.Error())
		}
	}
}
