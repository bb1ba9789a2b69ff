package provider

import (
	"context"
	"slices"
	"sync"
)

// Orders seen while busy. The daemon considers an order when the ledger announces it. An order that this
// machine could serve but not now — its free capacity is held by running leases or open bids, or it is at
// max_leases — is remembered, and considered again each time a reservation is released, while the order
// stays open. That is how the survivors of a failed cluster bid on its restart, which opens in the very block
// that closes their leases, before their workloads have stopped.

// maxDeferred bounds the orders remembered; the oldest (smallest id) are forgotten first.
const maxDeferred = 256

type deferredOrders struct {
	mu  sync.Mutex
	ids map[uint64]bool
}

func (q *deferredOrders) add(id uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ids == nil {
		q.ids = map[uint64]bool{}
	}
	q.ids[id] = true
	for len(q.ids) > maxDeferred {
		delete(q.ids, slices.Min(slices.Collect(func(yield func(uint64) bool) {
			for k := range q.ids {
				if !yield(k) {
					return
				}
			}
		})))
	}
}

// take empties the set and returns its orders in id order.
func (q *deferredOrders) take() []uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]uint64, 0, len(q.ids))
	for id := range q.ids {
		out = append(out, id)
	}
	clear(q.ids)
	slices.Sort(out)
	return out
}

// capacityFreed considers the remembered orders again (each one still open and still out of reach is
// remembered again). One pass at a time, in order id order, so two bids never race for the same capacity.
func (d *Daemon) capacityFreed() {
	if d.life.Err() != nil {
		return
	}
	d.retryAgain.Store(true)
	if !d.retrying.TryLock() {
		return // the running pass sees retryAgain and runs once more
	}
	d.spawn(d.life, func(ctx context.Context) {
		for {
			d.retryAgain.Store(false)
			for _, id := range d.deferred.take() {
				d.considerOrder(ctx, id)
			}
			if ctx.Err() == nil && d.retryAgain.Load() {
				continue
			}
			d.retrying.Unlock()
			// A release between the check and the unlock found the lock held: take the pass over again.
			if ctx.Err() != nil || !d.retryAgain.Load() || !d.retrying.TryLock() {
				return
			}
		}
	})
}
