package tenant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Extending a lease: `spare extend`. A lease runs the duration it was ordered with; its provider may let it run
// longer, up to the max_lease_duration it publishes on the ledger. Extend lengthens a pending or running lease
// in one transaction (ExtendLease), which also adds to the deposit what the new duration needs at the lease's
// price, so the lease then runs to its new end.

// ErrExtendRefused is wrapped by Extend's error when the provider's maximum does not allow the extension (or the
// provider takes none): ExtendRefusedError says why.
var ErrExtendRefused = errors.New("extension refused")

// ExtendRefusedError is a refusal by the provider's max_lease_duration.
type ExtendRefusedError struct {
	LeaseID     uint64
	Provider    tx.Address
	MaxSec      uint64 // the provider's max_lease_sec on the ledger; 0: it takes no extensions
	DurationSec uint64 // the lease's duration now
	AddSec      uint64 // asked for
}

func (e *ExtendRefusedError) Error() string {
	if e.MaxSec == 0 {
		return fmt.Sprintf("provider %s accepts no lease extensions (it sets no max_lease_duration): lease %d ends at the end of its %s; deploy the job again for more time",
			e.Provider, e.LeaseID, tx.DurationText(e.DurationSec))
	}
	s := fmt.Sprintf("provider %s accepts leases up to %s; lease %d would run %s (%s + %s)",
		e.Provider, tx.DurationText(e.MaxSec), e.LeaseID, tx.DurationText(e.DurationSec+e.AddSec), tx.DurationText(e.DurationSec), tx.DurationText(e.AddSec))
	if e.MaxSec > e.DurationSec {
		return s + fmt.Sprintf(": extend it by at most %s", tx.DurationText(e.MaxSec-e.DurationSec))
	}
	return s + ": it cannot be extended any more"
}

// Unwrap makes errors.Is(err, ErrExtendRefused) and tx.CodeOf(err) == tx.CodeExtendRefused hold, as for the
// ledger's own refusal (the CLI's exit status 2).
func (e *ExtendRefusedError) Unwrap() []error {
	return []error{ErrExtendRefused, &tx.Error{Code: tx.CodeExtendRefused, Msg: e.Error()}}
}

// Extension is an extension of a lease, planned (ExtendPlan) or done (Extend).
type Extension struct {
	LeaseID     uint64     `json:"lease_id"`
	Provider    tx.Address `json:"provider"`
	AddSec      uint64     `json:"add_sec"`
	DurationSec uint64     `json:"duration_sec"`     // the new duration
	MaxSec      uint64     `json:"max_lease_sec"`    // the provider's maximum
	Added       uint64     `json:"deposit_added"`    // uspr moved from the tenant's balance into the lease's escrow
	Deposit     uint64     `json:"deposit"`          // the lease's deposit after it
	State       string     `json:"state"`            // pending or active
	EndMs       uint64     `json:"end_ms,omitempty"` // when billing now stops (an active lease)
	WasEndMs    uint64     `json:"was_end_ms,omitempty"`
	Fee         uint64     `json:"fee,omitempty"` // the transaction's fee (Extend)
	Height      int64      `json:"height,omitempty"`
}

// ExtendPlan checks that lease leaseID can run add longer, as the ledger will, and says what it would add to the
// deposit, without sending anything. add is a whole number of seconds, at least 1 s.
func (t *Tenant) ExtendPlan(ctx context.Context, leaseID uint64, add time.Duration) (*Extension, error) {
	if add < time.Second || add%time.Second != 0 || add > tx.MaxDurationSec*time.Second {
		return nil, fmt.Errorf("extend by %v: give whole seconds from 1s to 8760h (e.g. 30m, 2h)", add)
	}
	addSec := uint64(add / time.Second)
	l, err := t.c.Lease(ctx, leaseID)
	if err != nil {
		return nil, err
	}
	if l.Tenant != t.Address() {
		return nil, fmt.Errorf("lease %d is %s's, not yours (%s): only its tenant extends it", leaseID, l.Tenant, t.Address())
	}
	switch {
	case l.State != api.LeasePending && l.State != api.LeaseActive:
		why := ""
		if l.CloseReason != "" {
			why = " (" + l.CloseReason + ")"
		}
		return nil, fmt.Errorf("lease %d is %s%s: only a pending or running lease can be extended; deploy the job again", leaseID, l.State, why)
	case l.State == api.LeaseActive && l.EndMs <= uint64(time.Now().UnixMilli()):
		return nil, fmt.Errorf("lease %d's billing ended at %s: it is closing and cannot be extended", leaseID, time.UnixMilli(int64(l.EndMs)).Local().Format(time.DateTime))
	}
	o, err := t.c.Order(ctx, l.OrderID)
	if err != nil {
		return nil, err
	}
	switch {
	case o.Nodes > 1:
		return nil, fmt.Errorf("lease %d is a member of cluster order %d: its members end together, so one cannot be extended alone", leaseID, o.ID)
	case o.Replicas > 1 || o.RefereeFor != 0:
		return nil, fmt.Errorf("lease %d is a run of a replicated order (order %d): its runs end together, so one cannot be extended alone", leaseID, o.ID)
	}
	p, err := t.c.Provider(ctx, l.Provider)
	if err != nil {
		return nil, err
	}
	duration := l.DurationSec + addSec
	if p.Info.MaxLeaseSec == 0 || duration > p.Info.MaxLeaseSec {
		return nil, fmt.Errorf("lease %d: %w", leaseID, &ExtendRefusedError{LeaseID: leaseID, Provider: l.Provider, MaxSec: p.Info.MaxLeaseSec, DurationSec: l.DurationSec, AddSec: addSec})
	}
	need, ok := tx.MulDivUp(l.Price, duration, 3600)
	if !ok {
		return nil, fmt.Errorf("lease %d: the deposit for %s at %s/h does not fit 64 bits", leaseID, tx.DurationText(duration), client.FormatAmount(l.Price))
	}
	e := &Extension{LeaseID: leaseID, Provider: l.Provider, AddSec: addSec, DurationSec: duration, MaxSec: p.Info.MaxLeaseSec,
		Added: need - min(need, l.Deposit), State: l.State.String()}
	e.Deposit = l.Deposit + e.Added
	if l.State == api.LeaseActive {
		e.WasEndMs = l.EndMs
		e.EndMs = l.StartedMs + duration*1000 // the deposit now covers the whole duration
	}
	return e, nil
}

// Extend lengthens lease leaseID by add (ExtendPlan's checks first, so that a refusal costs no fee) and adds to
// its deposit what the new duration needs; it returns what the ledger recorded.
func (t *Tenant) Extend(ctx context.Context, leaseID uint64, add time.Duration) (*Extension, error) {
	e, err := t.ExtendPlan(ctx, leaseID, add)
	if err != nil {
		return nil, err
	}
	r, err := t.sender.Send(ctx, &tx.ExtendLease{LeaseID: leaseID, AddSec: e.AddSec})
	if err != nil {
		return nil, fmt.Errorf("extend lease %d: %w", leaseID, err)
	}
	e.Fee, e.Height = r.Fee, r.Height
	// What the ledger recorded (the deposit may have grown since the plan: anyone may top a lease up). The lease
	// is extended whatever its event says: one that is missing or does not read is said, and the plan's figures
	// stand (an error would invite extending it again).
	ev, ok := r.Event(api.EventLeaseExtended)
	if !ok {
		t.log.Warn("lease extended, but the transaction has no event saying how: its figures are the plan's", "lease", leaseID, "tx", r.Hash)
		return e, nil
	}
	x, err := api.ParseLeaseExtended(ev.Attrs)
	if err != nil {
		t.log.Warn("lease extended, but its event does not read: its figures are the plan's", "lease", leaseID, "tx", r.Hash, "err", err)
		return e, nil
	}
	e.Added, e.Deposit, e.DurationSec, e.EndMs = x.Added, x.Deposit, x.DurationSec, x.EndMs
	return e, nil
}
