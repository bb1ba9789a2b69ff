package api

import (
	"github.com/sparenet/spare/ledger/tx"
)

const MsPerHour = 3_600_000

// EndMs is when billing of an active lease stops: its duration, or the moment its deposit is used up.
func (l *Lease) EndMs() uint64 {
	byDuration := l.DurationSec * 1000
	byDeposit := tx.MulDiv(l.Deposit, MsPerHour, l.Price)
	return l.StartedMs + min(byDuration, byDeposit)
}

// EndsByDuration reports whether an active lease's billing ends at its duration rather than when its deposit runs
// out.
func (l *Lease) EndsByDuration() bool {
	return l.DurationSec*1000 <= tx.MulDiv(l.Deposit, MsPerHour, l.Price)
}

// CloseAtMs is when the end-of-block sweep closes an active lease, its key in the index of billing ends: its end,
// and for a lease that runs to its duration graceSec (params.completion_grace_sec) after it.
func (l *Lease) CloseAtMs(graceSec uint64) uint64 {
	if l.EndsByDuration() {
		return l.EndMs() + graceSec*1000
	}
	return l.EndMs()
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
	return min(tx.MulDiv(l.Price, end-l.StartedMs, MsPerHour), l.Deposit)
}

func (p *Provider) UnbondingMs(params *Params) uint64 { return params.UnbondingPeriodSec * 1000 }

// Ended reports whether a lease's run is over and holds nothing back.
func (l *Lease) Ended() bool {
	return (l.State == LeaseClosed || l.State == LeaseCompleted) && l.Held == 0
}
