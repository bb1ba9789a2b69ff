package settle

import (
	"fmt"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

func (k *Keeper) ExtendLease(c *kernel.Ctx, signer tx.Address, m *tx.ExtendLease) error {
	l, err := c.Lease(m.LeaseID)
	if err != nil {
		return err
	}
	if signer != l.Tenant {
		return tx.Errorf(tx.CodeUnauthorized, "lease %d is %s's: only its tenant extends it", l.ID, l.Tenant)
	}
	if l.State != api.LeasePending && l.State != api.LeaseActive {
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d is %s: only a pending or active lease can be extended (deploy the job again)", l.ID, l.State)
	}
	if l.State == api.LeaseActive && l.EndMs() <= c.TimeMs {
		// Its close may still wait in the end-of-block backlog: what ended stays ended.
		return tx.Errorf(tx.CodeBadLeaseState, "lease %d's billing ended at %d ms (block time %d ms): it is closing and cannot be extended", l.ID, l.EndMs(), c.TimeMs)
	}
	o, err := c.Order(l.OrderID)
	if err != nil {
		return err
	}
	if _, grouped := c.GroupOf(o); grouped || o.Nodes > 1 {
		what := "a run of a replicated order"
		if o.Nodes > 1 {
			what = "a member of a cluster"
		}
		return tx.Errorf(tx.CodeReplicated, "lease %d is %s (order %d): its runs end together, so one cannot be extended alone", l.ID, what, o.ID)
	}
	p, err := c.MustProvider(l.Provider)
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
	if err := c.Debit(signer, added, kernel.InEscrow); err != nil {
		return err
	}
	if l.State == api.LeaseActive {
		k.unindexEnd(c, l)
	}
	l.DurationSec, l.Deposit = duration, l.Deposit+added // Deposit + added = max(Deposit, need)
	var endMs uint64
	if l.State == api.LeaseActive {
		endMs = l.EndMs()
		k.indexEnd(c, l)
	}
	c.SetLease(l)
	c.Emit(api.EventLeaseExtended, api.AttrLeaseID, l.ID, api.AttrTenant, l.Tenant, api.AttrProvider, l.Provider, api.AttrAddSec, m.AddSec,
		api.AttrDurationSec, l.DurationSec, api.AttrAdded, added, api.AttrDeposit, l.Deposit, api.AttrEndMs, endMs)
	return nil
}
