package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sparenet/spare/runtime"
)

// The lease's disk. Orders name their disk (jobs always do: 1 GiB by default); an order that asks for none
// gets noDiskBytes, for its manifest and log.
const noDiskBytes = 64 << 20

// diskBytes is what a lease may keep on this machine: its work directory (manifest files, inputs, everything
// the job writes) and its log together.
func (d *Daemon) diskBytes(l *LeaseRecord) int64 {
	if l.Reservation.DiskMiB == 0 {
		return noDiskBytes
	}
	return int64(l.Reservation.DiskMiB) << 20
}

// hashTime bounds the hashing of a lease's outputs: a minute, plus its disk read at 20 MiB/s (far below what any
// disk does, so only a machine in trouble reaches it).
func hashTime(diskBytes int64) time.Duration {
	return time.Minute + time.Duration(diskBytes/(20<<20))*time.Second
}

// watchLimits measures every running lease's disk every limits.disk_check_every and stops a lease over it, with
// the reason "disk limit" (the tenant is paid back what did not run and gets the receipt of what did). Between
// two checks a lease can write faster than the check sees; the process runtime also bounds each file
// (RLIMIT_FSIZE) and its /tmp by the same size. The same pass enforces port quotas (ports.go).
func (d *Daemon) watchLimits(ctx context.Context) {
	tick := time.NewTicker(d.cfg.Limits.DiskCheckEvery.Duration)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		leases, err := d.store.Leases()
		if err != nil {
			continue
		}
		for i := range leases {
			l := &leases[i]
			if l.State != LeaseRunning {
				continue
			}
			if why := d.overDisk(ctx, l); why != "" {
				d.stopForLimit(ctx, l.LeaseID, why)
			}
		}
		d.checkPorts(ctx, leases)
	}
}

// overDisk returns why a lease is over its disk, or "".
func (d *Daemon) overDisk(ctx context.Context, l *LeaseRecord) string {
	limit := d.diskBytes(l)
	dir := d.leaseDir(l.LeaseID)
	used, entries, err := diskUsage(ctx, filepath.Join(dir, "work"), maxOutputFiles*10)
	if err != nil {
		return ""
	}
	if fi, err := os.Lstat(filepath.Join(dir, "log")); err == nil && fi.Mode().IsRegular() {
		used += fi.Size()
	}
	switch {
	case used > limit:
		return fmt.Sprintf(diskLimitReason+": the job used %s of its %s disk (work directory and log)", mib(used), mib(limit))
	case entries > maxOutputFiles*10:
		return fmt.Sprintf(diskLimitReason+": the job made more than %d files", maxOutputFiles*10)
	}
	return ""
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// stopForLimit records why a lease is being stopped and stops its workload; the lease then completes with a
// receipt as usual, its reason the limit.
func (d *Daemon) stopForLimit(ctx context.Context, leaseID uint64, why string) {
	unlock := d.lockLease(leaseID)
	l, _ := d.store.Lease(leaseID)
	if l == nil || l.State != LeaseRunning {
		unlock()
		return
	}
	if l.EndReason == "" {
		l.EndReason = why
		d.stored("lease", l.LeaseID, d.store.PutLease(l))
	}
	d.mu.Lock()
	w := d.workloads[leaseID]
	d.mu.Unlock()
	unlock()
	if w == nil {
		return
	}
	d.log.Warn("stopping a lease over its limit", "lease", leaseID, "reason", why)
	if err := w.Stop(ctx); err != nil {
		d.log.Error("stopping workload", "lease", leaseID, "err", err)
	}
}

// diskLimitReason starts the end reason of a lease stopped over its disk (the workload's result says DiskLimit).
const diskLimitReason = "disk limit"

// stopReasonResult reports a workload the daemon stopped with a reason recorded first (a limit: stopForLimit; the
// lease closed on the ledger: leaseClosed) with that reason, not as "stopped on request", which reads as the
// tenant's own request (a job over its disk was reported "stopped on request; exited with code 143").
func stopReasonResult(l *LeaseRecord, res runtime.Result) runtime.Result {
	if l.EndReason == "" || !res.Stopped || !strings.Contains(res.Reason, "stopped on request") {
		return res
	}
	res.Reason = strings.Replace(res.Reason, "stopped on request", l.EndReason, 1)
	res.DiskLimit = strings.HasPrefix(l.EndReason, diskLimitReason)
	return res
}

// removeExpired removes the directories of leases that ended more than limits.keep_lease_data ago.
func (d *Daemon) removeExpired() {
	leases, err := d.store.Leases()
	if err != nil {
		return
	}
	keep := d.cfg.Limits.KeepLeaseData.Duration
	for i := range leases {
		l := &leases[i]
		if l.State != LeaseDone || l.Removed || l.DoneAt.IsZero() || d.now().Sub(l.DoneAt) < keep {
			continue
		}
		unlock := d.lockLease(l.LeaseID)
		cur, _ := d.store.Lease(l.LeaseID)
		if cur != nil && cur.State == LeaseDone && !cur.Removed {
			if err := os.RemoveAll(d.leaseDir(l.LeaseID)); err != nil {
				d.log.Warn("removing a finished lease's data", "lease", l.LeaseID, "err", err)
			} else {
				cur.Removed = true
				d.stored("lease", cur.LeaseID, d.store.PutLease(cur))
				d.log.Info("finished lease's data removed", "lease", l.LeaseID, "kept", keep.String(), "ended", cur.DoneAt.Format(time.RFC3339))
			}
		}
		unlock()
	}
}
