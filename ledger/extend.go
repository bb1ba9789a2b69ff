package ledger

import (
	"fmt"

	"github.com/sparenet/spare/ledger/tx"
)

// Extending a lease. A provider says on the ledger how long it lets its leases run in all (ProviderInfo's
// MaxLeaseSec, 0: no extensions); the lease's tenant may lengthen a pending or active lease up to that, and pays
// into escrow, in the same message, what the new duration needs beyond the deposit, so that the lease runs to its
// new end rather than running out of deposit before it. The end moves in the index of billing ends with it.

func (c *ctx) extendLease(signer tx.Address, m *tx.ExtendLease) error {
	l, err := c.lease(m.LeaseID)
	if err != nil {
		return err
	}
	if signer != l.Tenant {
		return tx.Errorf(tx.CodeUnauthorized, "lease %d is %s's: only its tenant extends it", l.ID, l.Tenant)
	}
	if l.State != LeasePending && l.State != LeaseActive {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is %s: only a pending or active lease can be extended (deploy the job again)", l.ID, l.State)
	}
	if l.State == LeaseActive && l.EndMs() <= c.timeMs {
		// Its close may still wait in the end-of-block backlog: what ended stays ended.
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d's billing ended at %d ms (block time %d ms): it is closing and cannot be extended", l.ID, l.EndMs(), c.timeMs)
	}
	o, err := c.order(l.OrderID)
	if err != nil {
		return err
	}
	if _, grouped := c.groupOf(o); grouped || o.Nodes > 1 {
		what := "a run of a replicated order"
		if o.Nodes > 1 {
			what = "a member of a cluster"
		}
		return tx.Errorf(tx.CodeReplicated, "lease %d is %s (order %d): its runs end together, so one cannot be extended alone", l.ID, what, o.ID)
	}
	p, err := c.mustProvider(l.Provider)
	if err != nil {
		return err
	}
	duration := l.DurationSec + m.AddSec // both at most tx.MaxDurationSec: no overflow
	if p.Info.MaxLeaseSec == 0 {
		return tx.Errorf(tx.CodeExtendRefused, "provider %s accepts no lease extensions (its max_lease_duration is not set): lease %d ends at its %s; deploy the job again for more time",
			l.Provider, l.ID, tx.DurationText(l.DurationSec))
	}
	if duration > p.Info.MaxLeaseSec {
		more := ""
		if p.Info.MaxLeaseSec > l.DurationSec {
			more = fmt.Sprintf("; it can be extended by at most %s", tx.DurationText(p.Info.MaxLeaseSec-l.DurationSec))
		}
		return tx.Errorf(tx.CodeExtendRefused, "provider %s accepts leases up to %s; lease %d would run %s (%s + %s)%s",
			l.Provider, tx.DurationText(p.Info.MaxLeaseSec), l.ID, tx.DurationText(duration), tx.DurationText(l.DurationSec), tx.DurationText(m.AddSec), more)
	}
	need, ok := tx.MulDivUp(l.Price, duration, 3600)
	if !ok {
		return tx.Errorf(tx.CodeOverflow, "deposit for %d s at %d uspr/h overflows 64 bits", duration, l.Price)
	}
	added := need - min(need, l.Deposit)
	if err := c.debit(signer, added, inEscrow); err != nil {
		return err
	}
	if l.State == LeaseActive {
		c.unindexEnd(l)
	}
	l.DurationSec, l.Deposit = duration, l.Deposit+added // Deposit + added = max(Deposit, need)
	var endMs uint64
	if l.State == LeaseActive {
		endMs = l.EndMs()
		c.indexEnd(l)
	}
	c.setLease(l)
	c.emit("lease.extended", "lease_id", l.ID, "tenant", l.Tenant, "provider", l.Provider, "add_sec", m.AddSec,
		"duration_sec", l.DurationSec, "added", added, "deposit", l.Deposit, "end_ms", endMs)
	return nil
}
