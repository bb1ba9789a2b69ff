package settle

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// indexEnd and unindexEnd add an active lease to, and remove it from, the index of billing ends: every change to
// what its closing time depends on (its start, deposit, duration) goes through them, before and after.
func (k *Keeper) indexEnd(c *kernel.Ctx, l *api.Lease) {
	c.KV.Set(schema.PairKey(schema.PLeaseDepletion, l.CloseAtMs(c.Params.CompletionGraceSec), l.ID), nil)
}

func (k *Keeper) unindexEnd(c *kernel.Ctx, l *api.Lease) {
	c.KV.Delete(schema.PairKey(schema.PLeaseDepletion, l.CloseAtMs(c.Params.CompletionGraceSec), l.ID))
}

// inGrace reports whether an active lease ran to its duration and waits, unbilled, for its provider's completion.
func (k *Keeper) inGrace(c *kernel.Ctx, l *api.Lease) bool {
	return l.State == api.LeaseActive && l.StartedMs != 0 && l.EndsByDuration() && c.TimeMs >= l.EndMs()
}

func TakeOf(gross, ratePPM uint64) uint64 { return tx.MulDiv(gross, ratePPM, tx.PPM) }

// CreateLeases leases an open order to its winning bids — one, or one per replica — and closes it. A referee
// order's lease joins its group's runs.
func (k *Keeper) CreateLeases(c *kernel.Ctx, o *api.Order, bids []*api.Bid) error {
	var ids []uint64
	for _, b := range bids {
		l := k.createLease(c, o, b)
		if o.LeaseID == 0 {
			o.LeaseID = l.ID
		}
		ids = append(ids, l.ID)
	}
	c.LeasesCreated(o, ids) // a cluster records its members, a verification its runs
	k.Market.CloseOrder(c, o, api.OrderLeased)
	return nil
}

func (k *Keeper) createLease(c *kernel.Ctx, o *api.Order, b *api.Bid) *api.Lease {
	k.Market.CloseBid(c, b, api.BidWon, "")
	l := &api.Lease{
		ID: c.NextID("lease"), OrderID: o.ID, BidID: b.ID, Tenant: o.Tenant, Provider: b.Provider, Price: b.Price,
		DurationSec: o.DurationSec, State: api.LeasePending, CreatedHeight: c.Height,
		StartDeadline: c.Height + int64(c.Params.StartTimeoutBlocks), Deposit: o.Deposit,
	}
	c.SetLease(l)
	c.KV.Set(schema.OwnedKey(schema.PLeaseByTenant, l.Tenant, l.ID), nil)
	c.KV.Set(schema.OwnedKey(schema.PLeaseByProv, l.Provider, l.ID), nil)
	c.KV.Set(schema.PairKey(schema.PLeaseStartDL, uint64(l.StartDeadline), l.ID), nil)
	c.Emit(api.EventLeaseCreated, api.AttrLeaseID, l.ID, api.AttrOrderID, o.ID, api.AttrBidID, b.ID,
		api.AttrTenant, l.Tenant, api.AttrProvider, l.Provider, api.AttrPrice, l.Price,
		api.AttrStartDeadline, l.StartDeadline)
	return l
}

// ProviderLease loads a lease that signer serves and that is in state want.
func (k *Keeper) ProviderLease(c *kernel.Ctx, signer tx.Address, id uint64, want api.LeaseState) (*api.Lease, error) {
	l, err := c.Lease(id)
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

func (k *Keeper) LeaseStarted(c *kernel.Ctx, signer tx.Address, m *tx.LeaseStarted) error {
	l, err := k.ProviderLease(c, signer, m.ID, api.LeasePending)
	if err != nil {
		return err
	}
	p, err := c.MustProvider(signer)
	if err != nil {
		return err
	}
	if p.Status == api.ProviderJailed {
		return tx.Errorf(tx.CodeProviderJailed, "provider %s is jailed", signer)
	}
	if c.Height > l.StartDeadline {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d had to start by block %d: it is being refunded", l.ID, l.StartDeadline)
	}
	c.KV.Delete(schema.PairKey(schema.PLeaseStartDL, uint64(l.StartDeadline), l.ID))
	if c.Params.RewardsOn() { // the network's paid utilisation (rewards only)
		o, err := c.Order(l.OrderID)
		if err != nil {
			return err
		}
		c.LeaseGPUs(o, true)
	}
	l.State = api.LeaseActive
	l.StartedMs = c.TimeMs
	c.SetLease(l)
	k.indexEnd(c, l)
	c.Emit(api.EventLeaseStarted, api.AttrLeaseID, l.ID, api.AttrProvider, signer, api.AttrTenant, l.Tenant,
		api.AttrStartedMs, l.StartedMs, api.AttrEndMs, l.EndMs())
	return nil
}

// Settle pays the provider what the lease earned up to time t and not yet paid, minus the take.
func (k *Keeper) Settle(c *kernel.Ctx, l *api.Lease, t uint64) error {
	earned := l.EarnedAt(t)
	if earned <= l.Paid {
		return nil
	}
	gross := earned - l.Paid
	takeTotal := TakeOf(earned, c.Params.TakeRatePPM)
	take := takeTotal - l.Take
	// The burn (params.burn_ppm), counted over the whole lease like the take; two roundings in one small payment
	// could ask a uspr more than the payment leaves: the burn then waits for the next.
	var burn uint64
	if want := TakeOf(earned, c.Params.BurnPPM); want > l.Burned {
		burn = min(want-l.Burned, gross-take)
	}
	l.Paid, l.Take, l.Burned = earned, takeTotal, l.Burned+burn
	c.Move(kernel.InEscrow, kernel.InPool, take)
	c.Burn(kernel.InEscrow, burn)
	if err := c.Credit(l.Provider, gross-take-burn, kernel.InEscrow); err != nil {
		return err
	}
	kv := []any{api.AttrLeaseID, l.ID, api.AttrProvider, l.Provider, api.AttrAmount, gross - take - burn,
		api.AttrTake, take, api.AttrPaidTotal, l.Paid}
	if burn > 0 {
		kv = append(kv, api.AttrBurned, burn)
	}
	c.Emit(api.EventLeasePaid, kv...)
	return nil
}

// EndLease stops billing at time t, pays what was earned, refunds the rest and drops the lease's indexes.
func (k *Keeper) EndLease(c *kernel.Ctx, l *api.Lease, t uint64, state api.LeaseState, by tx.Address, reason string) error {
	return k.EndRun(c, l, t, state, by, reason, false)
}

// EndRun is endLease; unpaid ends a run of a replicated order that committed no result by the end of its
// billing: it earns nothing, and its whole deposit goes back to the tenant.
func (k *Keeper) EndRun(c *kernel.Ctx, l *api.Lease, t uint64, state api.LeaseState, by tx.Address, reason string, unpaid bool) error {
	// The order tells whether the lease is a replica's run (its pay is held) or a cluster member's.
	o, err := c.Order(l.OrderID)
	if err != nil {
		return err
	}
	v, grouped := c.GroupOf(o)
	switch l.State {
	case api.LeasePending:
		c.KV.Delete(schema.PairKey(schema.PLeaseStartDL, uint64(l.StartDeadline), l.ID))
	case api.LeaseActive:
		k.unindexEnd(c, l)
		c.LeaseGPUs(o, false)
		if !unpaid && (state != api.LeaseCompleted || !grouped) {
			if err := k.Settle(c, l, t); err != nil {
				return err
			}
		}
		l.EndedMs = min(t, l.EndMs())
	default:
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is already %s", l.ID, l.State)
	}
	// A replica's earnings wait in escrow for the comparison of the runs (package verify); everything else settles.
	if grouped && state == api.LeaseCompleted {
		l.Held = l.EarnedAt(t) - l.Paid
	}
	refund := l.Deposit - l.Paid - l.Held
	if err := c.Credit(l.Tenant, refund, kernel.InEscrow); err != nil {
		return err
	}
	l.Refunded = refund
	l.State = state
	l.ClosedBy = by
	// The one place a close reason is stored: bounded here, whatever composed it (a cluster member's reason quotes
	// the tenant's own, up to MaxReasonLen already), so that it always decodes again.
	reason = tx.PlainText(reason, tx.MaxReasonLen)
	l.CloseReason = reason
	c.SetLease(l)
	c.Emit(api.EventLeaseClosed, api.AttrLeaseID, l.ID, api.AttrProvider, l.Provider, api.AttrTenant, l.Tenant,
		api.AttrState, state, api.AttrReason, reason, api.AttrPaid, l.Paid, api.AttrRefund, refund, api.AttrHeld, l.Held)
	end := kernel.LeaseEnd{Lease: l, Order: o}
	if grouped {
		end.Group = v
	}
	c.LeaseEnded(end) // a verification advances, a cluster applies its failure policy
	return nil
}

func (k *Keeper) CloseLease(c *kernel.Ctx, signer tx.Address, m *tx.CloseLease) error {
	l, err := c.Lease(m.ID)
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
	grace := k.inGrace(c, l)
	if grace && signer == l.Tenant && signer != l.Provider {
		// Billing has stopped: closing now would save the tenant nothing and only drop the receipt it paid for.
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d ran to its duration at %d ms: nothing more is billed, and its provider may complete it with the receipt until %d ms, after which it closes by itself",
			l.ID, l.EndMs(), l.CloseAtMs(c.Params.CompletionGraceSec))
	}
	// A provider ending a running lease broke its promise (not one that ran its duration: it gives up only its
	// receipt); closing one that never started costs the tenant nothing (the deposit is refunded in full) and the
	// provider nothing either, unless the tenant proved that it delivered the manifest (see ManifestDelivered).
	if signer == l.Provider && signer != l.Tenant && (l.State == api.LeaseActive && !grace || l.State == api.LeasePending && l.ManifestDelivered) {
		k.Providers.ProviderFailed(c, l.Provider, l.Deposit)
	}
	return k.EndLease(c, l, c.TimeMs, api.LeaseClosed, signer, reason)
}

// isReplica reports whether a lease is a run of a replicated order (a referee run included).
func (k *Keeper) isReplica(c *kernel.Ctx, l *api.Lease) bool {
	_, ok := c.LeaseGroup(l)
	return ok
}

func (k *Keeper) CompleteLease(c *kernel.Ctx, signer tx.Address, m *tx.CompleteLease) error {
	rc := m.Receipt
	l, err := k.ProviderLease(c, signer, rc.LeaseID, api.LeaseActive)
	if err != nil {
		return err
	}
	o, err := c.Order(l.OrderID)
	if err != nil {
		return err
	}
	// A run's receipt is public once it lands: another run could copy its result. Runs commit, then reveal.
	if v, grouped := c.GroupOf(o); grouped {
		return tx.Errorf(tx.CodeReplicated, "lease %d is a run of replicated order %d: send commit_result with the hash of its result (tx.ResultCommitment, with a secret random salt) now, then reveal_result with the receipt and the salt once the reveal phase opens", l.ID, v.OrderID)
	}
	p, err := k.CheckReceipt(c, signer, &rc, o)
	if err != nil {
		return err
	}
	p.Completed++
	p.EarnedValue = tx.SatAdd(p.EarnedValue, l.EarnedAt(c.TimeMs)) // what the tenant pays for it, to the uspr
	c.SetProvider(p)
	c.KV.Set(schema.IDKey(schema.PReceipt, l.ID), schema.EncReceipt(&rc))
	c.Emit(api.EventLeaseCompleted, api.CompletedAttrs(&rc, api.AttrLeaseID, l.ID, api.AttrProvider, signer, api.AttrExitCode, rc.ExitCode, api.AttrInGrace, fmt.Sprint(k.inGrace(c, l)))...)
	if err := k.EndLease(c, l, c.TimeMs, api.LeaseCompleted, signer, "completed"); err != nil {
		return err
	}
	c.RecordWork(l.Provider, l.Burned) // its burns count toward the provider's work rewards (paid leases only)
	return nil
}

// CheckReceipt checks a receipt for a lease of order o signed by its provider: this network's, for the order's
// manifest, its signature valid under the provider's key. It returns the provider.
func (k *Keeper) CheckReceipt(c *kernel.Ctx, signer tx.Address, rc *tx.Receipt, o *api.Order) (*api.Provider, error) {
	if rc.ChainID != c.ChainID {
		return nil, tx.Errorf(tx.CodeBadReceipt, "receipt chain_id %q, this network is %q", rc.ChainID, c.ChainID)
	}
	if !bytes.Equal(rc.ManifestHash[:], o.ManifestHash[:]) {
		return nil, tx.Errorf(tx.CodeBadReceipt, "receipt manifest hash differs from order %d's", o.ID)
	}
	p, err := c.MustProvider(signer)
	if err != nil {
		return nil, err
	}
	c.Gas.Consume(kernel.GasSigVerify)
	if !ed25519.Verify(p.PubKey, rc.SignBytes(), rc.Signature) {
		return nil, tx.Errorf(tx.CodeBadReceipt, "receipt signature does not verify with provider %s's key", signer)
	}
	return p, nil
}

func (k *Keeper) TopUp(c *kernel.Ctx, signer tx.Address, m *tx.TopUp) error {
	l, err := c.Lease(m.LeaseID)
	if err != nil {
		return err
	}
	if l.State != api.LeasePending && l.State != api.LeaseActive {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is %s", l.ID, l.State)
	}
	deposit, err := kernel.AddChecked("deposit", l.Deposit, m.Amount)
	if err != nil {
		return err
	}
	if err := c.Debit(signer, m.Amount, kernel.InEscrow); err != nil {
		return err
	}
	if l.State == api.LeaseActive {
		k.unindexEnd(c, l)
	}
	l.Deposit = deposit
	if l.State == api.LeaseActive {
		k.indexEnd(c, l)
	}
	c.SetLease(l)
	c.Emit(api.EventLeaseToppedUp, api.AttrLeaseID, l.ID, api.AttrFrom, signer, api.AttrAmount, m.Amount,
		api.AttrDeposit, l.Deposit, api.AttrEndMs, l.EndMs())
	return nil
}

func (k *Keeper) Withdraw(c *kernel.Ctx, signer tx.Address, m *tx.Withdraw) error {
	l, err := k.ProviderLease(c, signer, m.ID, api.LeaseActive)
	if err != nil {
		return err
	}
	if k.isReplica(c, l) {
		return tx.Errorf(tx.CodeReplicated, "lease %d is a run of a replicated order: it is paid once the runs' results are compared, not before", l.ID)
	}
	if l.EarnedAt(c.TimeMs) <= l.Paid {
		return tx.Errorf(tx.CodeNothingToWithdraw, "lease %d has earned nothing since the last withdrawal", l.ID)
	}
	if err := k.Settle(c, l, c.TimeMs); err != nil {
		return err
	}
	c.SetLease(l)
	return nil
}

// EndDepletedLeases closes the active leases due to close by this block's time: those whose deposit ran out, and
// those that ran to their duration and whose completion grace has passed. The index is ordered by that time, so
// the cost is proportional to the leases that close, not to the leases that run. Each is paid to its end.
func (k *Keeper) EndDepletedLeases(c *kernel.Ctx) {
	c.SweepDue(schema.PLeaseDepletion, c.TimeMs, func(id uint64) {
		l, err := c.Lease(id)
		if err != nil {
			panic("ledger: depletion index without lease")
		}
		if l.State != api.LeaseActive {
			return // closed earlier in this sweep: a cluster member whose partner's end closed it too
		}
		reason := "duration reached"
		if l.EndMs() < l.StartedMs+l.DurationSec*1000 {
			reason = "deposit exhausted"
		}
		if v, grouped := c.LeaseGroup(l); grouped { // a run of a replicated order: its commit deadline passed
			k.Runs.CommitMissed(c, l, v, reason)
			return
		}
		if err := k.EndLease(c, l, l.EndMs(), api.LeaseClosed, tx.Address{}, reason); err != nil {
			panic("ledger: " + err.Error())
		}
	})
}

// ManifestDelivered records, for a pending lease, its provider's signed acknowledgement that it received the
// manifest (tx.ManifestAckBytes over this chain, the lease and the order's manifest hash). Only the lease's tenant
// sends it (it holds the acknowledgement the provider's API answered with), and only before the start deadline.
func (k *Keeper) ManifestDelivered(c *kernel.Ctx, signer tx.Address, m *tx.ManifestDelivered) error {
	l, err := c.Lease(m.LeaseID)
	if err != nil {
		return err
	}
	if signer != l.Tenant {
		return tx.Errorf(tx.CodeUnauthorized, "lease %d is %s's: only its tenant shows its manifest was delivered", l.ID, l.Tenant)
	}
	if l.State != api.LeasePending {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is %s: delivery matters only to a lease not yet started", l.ID, l.State)
	}
	if c.Height > l.StartDeadline {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d had to start by block %d: it is being refunded", l.ID, l.StartDeadline)
	}
	if l.ManifestDelivered {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d's manifest delivery is already recorded", l.ID)
	}
	o, err := c.Order(l.OrderID)
	if err != nil {
		return err
	}
	p, err := c.MustProvider(l.Provider)
	if err != nil {
		return err
	}
	c.Gas.Consume(kernel.GasSigVerify)
	if !ed25519.Verify(p.PubKey, tx.ManifestAckBytes(c.ChainID, l.ID, o.ManifestHash), m.Ack[:]) {
		return tx.Errorf(tx.CodeBadReceipt, "ack does not verify with provider %s's key over lease %d and order %d's manifest hash on this chain", l.Provider, l.ID, o.ID)
	}
	l.ManifestDelivered = true
	c.SetLease(l)
	c.Emit(api.EventLeaseManifestDelivered, api.AttrLeaseID, l.ID, api.AttrTenant, l.Tenant, api.AttrProvider, l.Provider,
		api.AttrStartDeadline, l.StartDeadline)
	return nil
}

// ExpireUnstartedLeases closes pending leases past their start deadline with a full refund. It counts against the
// provider only when the tenant showed that the provider acknowledged the manifest (manifestDelivered): a lease
// whose manifest the ledger cannot tell was delivered is nobody's failure, so that no tenant can lower a
// provider's record by leasing and sending nothing.
func (k *Keeper) ExpireUnstartedLeases(c *kernel.Ctx) {
	c.SweepDue(schema.PLeaseStartDL, uint64(c.Height), func(id uint64) {
		l, err := c.Lease(id)
		if err != nil {
			panic("ledger: start index without lease")
		}
		if l.State != api.LeasePending {
			return // closed earlier in this sweep (a cluster member's partner)
		}
		reason := "no manifest delivered in time"
		if l.ManifestDelivered {
			reason = "not started in time"
			k.Providers.ProviderFailed(c, l.Provider, l.Deposit)
		}
		if err := k.EndLease(c, l, c.TimeMs, api.LeaseClosed, tx.Address{}, reason); err != nil {
			panic("ledger: " + err.Error())
		}
	})
}
