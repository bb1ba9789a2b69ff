package provider

import "sync"

// Locking. d.mu guards only the daemon's small maps (workloads, completing, accepting, lease locks) and is never
// held across network or disk I/O. Each lease's state changes are serialised by that lease's own lock, which
// may be held across its own slow work (fetching its inputs, hashing its outputs) without holding up any other
// lease, the chain follower, bidding or the tenant API.

// leaseLock is one lease's mutex, shared by the goroutines that work on that lease.
type leaseLock struct {
	mu   sync.Mutex
	refs int
}

// lockLease takes lease id's lock and returns the function that releases it.
func (d *Daemon) lockLease(id uint64) (unlock func()) {
	d.mu.Lock()
	l := d.leaseLocks[id]
	if l == nil {
		l = &leaseLock{}
		d.leaseLocks[id] = l
	}
	l.refs++
	d.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		d.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(d.leaseLocks, id)
		}
		d.mu.Unlock()
	}
}
