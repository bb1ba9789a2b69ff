package provider

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/runtime"
)

// Extended leases. A tenant may lengthen a lease on the ledger (ExtendLease) up to this provider's
// max_lease_duration, which the daemon publishes with its registration. A lease that can be extended (a single
// order, on a provider that takes extensions) is started with a wall-clock limit of the most it may ever run, and
// the daemon stops it itself at its start plus its current duration: the duration follows the ledger, from the
// lease.extended event and, when the end comes, from the ledger itself (an event missed during a restart cannot
// cut a lease short). A lease that cannot be extended keeps the runtime's own limit, its duration, as before.

// extendable reads the lease's current duration from the ledger (it may have been extended while it waited for
// its manifest) and, when the lease can still be extended, sets its wall-clock limit to the longest this provider
// lets it run (else its duration, the runtime's own limit). o is the lease's order.
func (d *Daemon) extendable(ctx context.Context, l *LeaseRecord, o *api.Order) error {
	lv, err := d.c.Lease(ctx, l.LeaseID)
	if err != nil {
		return err
	}
	l.DurationSec = max(l.DurationSec, lv.DurationSec)
	l.TimeoutSec = l.DurationSec
	if o.Nodes <= 1 && o.Replicas <= 1 && o.RefereeFor == 0 { // the ledger extends no run of a group
		l.TimeoutSec = max(l.DurationSec, d.cfg.MaxLeaseSec())
	}
	return nil
}

// leaseExtended takes a lease's new duration from the ledger after a lease.extended event.
func (d *Daemon) leaseExtended(ctx context.Context, id uint64) {
	lv, err := d.c.Lease(ctx, id)
	if err != nil {
		d.log.Warn("reading an extended lease; its end is checked against the ledger again when it comes", "lease", id, "err", err)
		return
	}
	d.setDuration(id, lv.DurationSec)
}

// setDuration records a longer duration for lease id.
func (d *Daemon) setDuration(id, sec uint64) {
	unlock := d.lockLease(id)
	defer unlock()
	l, _ := d.store.Lease(id)
	if l == nil || sec <= l.DurationSec || l.State == LeaseDone {
		return
	}
	old := l.DurationSec
	l.DurationSec = sec
	if err := d.store.PutLease(l); err != nil {
		d.log.Error("saving an extended lease", "lease", id, "err", err)
		return
	}
	d.armEnd(l)
	d.log.Info("lease extended", "lease", id, "from", time.Duration(old)*time.Second, "to", time.Duration(sec)*time.Second,
		"runs_until", l.StartedAt.Add(time.Duration(sec)*time.Second))
	if l.TimeoutSec != 0 && sec > l.TimeoutSec {
		// This provider raised its max_lease_duration after the lease started: the runtime's limit stays the old one.
		d.log.Warn("lease extended past the wall-clock limit it was started with; it stops at that limit",
			"lease", id, "limit", time.Duration(l.TimeoutSec)*time.Second)
	}
}

// armEnd sets the timer that stops a running lease at the end of its current duration, when the daemon rather
// than the runtime stops it (see extendable); it replaces the lease's earlier timer.
func (d *Daemon) armEnd(l *LeaseRecord) {
	if l.TimeoutSec <= l.DurationSec || l.StartedAt.IsZero() || l.DurationStop {
		return
	}
	id := l.LeaseID
	wait := l.StartedAt.Add(time.Duration(l.DurationSec) * time.Second).Sub(d.now())
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.endTimers[id]; t != nil {
		t.Stop()
	}
	d.endTimers[id] = time.AfterFunc(max(wait, 0), func() {
		if d.life.Err() == nil && d.claimEnd(id) {
			d.spawn(d.life, func(ctx context.Context) { d.durationReached(ctx, id) })
		}
	})
}

// disarmEnd drops a lease's end timer: its workload ended.
func (d *Daemon) disarmEnd(id uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.endTimers[id]; t != nil {
		t.Stop()
		delete(d.endTimers, id)
	}
}

// endDue reports whether housekeeping should check a running lease's end, should its timer not have (it is
// armed at the start and on every extension): the daemon, not the runtime, stops it at its duration, and that
// time has come.
func (d *Daemon) endDue(l *LeaseRecord) bool {
	if l.State != LeaseRunning || l.TimeoutSec <= l.DurationSec || l.DurationStop || l.StartedAt.IsZero() {
		return false
	}
	if d.now().Before(l.StartedAt.Add(time.Duration(l.DurationSec) * time.Second)) {
		return false
	}
	return d.claimEnd(l.LeaseID)
}

// claimEnd makes sure one check of a lease's end runs at a time.
func (d *Daemon) claimEnd(id uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ending[id] {
		return false
	}
	d.ending[id] = true
	return true
}

// durationReached stops a lease's workload at the end of its duration unless the ledger extended it meanwhile.
func (d *Daemon) durationReached(ctx context.Context, id uint64) {
	defer func() {
		d.mu.Lock()
		delete(d.ending, id)
		d.mu.Unlock()
	}()
	lv, err := d.c.Lease(ctx, id)
	if ctx.Err() != nil {
		return // the daemon is stopping: the workload runs on, and a restarted daemon checks its end again
	}
	if err != nil {
		d.log.Warn("reading a lease at its end; stopping it at the duration recorded here", "lease", id, "err", err)
	} else {
		d.setDuration(id, lv.DurationSec)
	}
	unlock := d.lockLease(id)
	l, _ := d.store.Lease(id)
	if l == nil || l.State != LeaseRunning || l.DurationStop {
		unlock()
		d.mu.Lock()
		delete(d.endTimers, id)
		d.mu.Unlock()
		return
	}
	if d.now().Before(l.StartedAt.Add(time.Duration(l.DurationSec) * time.Second)) {
		unlock() // extended: setDuration armed the new end
		return
	}
	l.DurationStop = true
	d.mu.Lock()
	delete(d.endTimers, id)
	d.mu.Unlock()
	if err := d.store.PutLease(l); err != nil {
		unlock()
		d.log.Error("saving a lease at its end", "lease", id, "err", err)
		return
	}
	d.mu.Lock()
	w := d.workloads[id]
	d.mu.Unlock()
	unlock()
	if w == nil {
		return
	}
	d.log.Info("lease duration reached: stopping the workload", "lease", id, "duration", time.Duration(l.DurationSec)*time.Second)
	if err := w.Stop(ctx); err != nil {
		d.log.Error("stopping workload", "lease", id, "err", err)
	}
}

// durationResult reports a workload the daemon stopped at its lease's end as the runtime reports its own
// wall-clock limit: timed out, not stopped on request.
func durationResult(l *LeaseRecord, res runtime.Result) runtime.Result {
	if !l.DurationStop || !res.Stopped || res.OOMKilled {
		return res
	}
	limit := fmt.Sprintf("duration reached (%s)", runtime.DurationText(time.Duration(l.DurationSec)*time.Second))
	res.Stopped, res.TimedOut = false, true
	if strings.Contains(res.Reason, "stopped on request") {
		res.Reason = strings.Replace(res.Reason, "stopped on request", limit, 1)
	} else {
		res.Reason = strings.TrimSuffix(limit+"; "+res.Reason, "; ")
	}
	return res
}
