package tenant

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/client"
)

// watch follows the chain for one deploy, from the block of its order on: it learns the deploy's orders (the one
// it created, a referee's, a cluster's next generations) and their leases from the ledger's events, reports bids
// as they come, sums every refund the ledger makes from the deploy's escrow, and wakes the deploy's waits at
// each new block. A deploy waits in one way: until (below).
type watch struct {
	mu       sync.Mutex
	height   int64         // the last block seen
	tick     chan struct{} // closed (and replaced) at each new block
	err      error         // why following stopped
	orders   map[uint64]bool
	leases   map[uint64]bool
	leaseOf  map[uint64][]uint64 // order -> its leases, as created
	ended    map[uint64]string   // order -> expired or cancelled
	bids     map[uint64][]seenBid
	refunded uint64
	// slow: the deploy can wait (its workload runs): ask the node for blocks less often.
	slow  atomic.Bool
	onBid func(order uint64, b seenBid)
	log   *slog.Logger
}

// seenBid is a bid placed on one of the deploy's orders.
type seenBid struct {
	ID       uint64
	Provider string
	Price    uint64
}

// runningPace is how often a deploy whose workload runs asks the node for new blocks; it asks at the client's own
// pace while it races a block (its lease, its start, its end).
const runningPace = 100 * time.Millisecond

// refundAttr names, per event, the attribute that holds what the ledger gave back to the tenant, and whether the
// event names its lease (else its order). Every credit the ledger makes from escrow to a tenant is one of these.
var refundAttr = map[string]struct {
	attr    string
	ofLease bool
}{
	"lease.closed":             {"refund", true}, // completed or closed: the deposit not paid
	"lease.forfeited":          {"refund", true}, // a run's held pay, when it did not vote
	"lease.outvoted":           {"refund", true}, // an outvoted run's pay
	"order.cancelled":          {"refund", false},
	"order.expired":            {"refund", false},
	"cluster.reserve_refunded": {"amount", false},
	"verify.decided":           {"reserve_refund", false},
}

// watch starts following from height from for the deploy of order (0: none yet) and lease (0: none); it stops
// with ctx.
func (t *Tenant) watch(ctx context.Context, from int64, order, lease uint64, onBid func(uint64, seenBid)) *watch {
	w := &watch{tick: make(chan struct{}), orders: map[uint64]bool{}, leases: map[uint64]bool{}, leaseOf: map[uint64][]uint64{},
		ended: map[uint64]string{}, bids: map[uint64][]seenBid{}, height: from - 1, onBid: onBid, log: t.log}
	if order != 0 {
		w.orders[order] = true
	}
	if lease != 0 {
		w.leases[lease] = true
	}
	pace := func() time.Duration {
		if w.slow.Load() {
			return runningPace
		}
		return 0
	}
	go func() {
		err := t.c.FollowPaced(ctx, from, pace, w.block)
		w.mu.Lock()
		w.err = err
		close(w.tick)
		w.tick = make(chan struct{})
		w.mu.Unlock()
	}()
	return w
}

// block reads one block's events.
func (w *watch) block(b client.Block) error {
	var bids []func()
	w.mu.Lock()
	for _, e := range b.Events {
		if e.Code != 0 {
			continue
		}
		// The numbers this event carries: absent reads 0 (not one of ours); present but not a number makes the
		// event unreadable — said and skipped, never read as 0.
		var bad error
		num := func(key string) uint64 {
			s, ok := e.Attrs[key]
			if !ok {
				return 0
			}
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil && bad == nil {
				bad = fmt.Errorf("ledger event %s at height %d: %s = %q is not a number", e.Type, b.Height, key, s)
			}
			return v
		}
		order, lease := num("order_id"), num("lease_id")
		bidID, price, nextOrder, referee := num("bid_id"), num("price"), num("next_order"), num("referee_order")
		var refund uint64
		r, refunds := refundAttr[e.Type]
		if refunds {
			refund = num(r.attr)
		}
		if bad != nil {
			w.log.Warn("ledger event ignored", "err", bad)
			continue
		}
		mine := w.orders[order]
		switch e.Type {
		case "lease.created":
			if mine {
				w.leases[lease] = true
				w.leaseOf[order] = append(w.leaseOf[order], lease)
			}
		case "bid.placed":
			if mine && w.onBid != nil {
				sb := seenBid{ID: bidID, Provider: e.Attrs["provider"], Price: price}
				w.bids[order] = append(w.bids[order], sb)
				bids = append(bids, func() { w.onBid(order, sb) })
			}
		case "order.expired", "order.cancelled":
			if mine {
				w.ended[order] = e.Type[len("order."):]
			}
		case "cluster.restarted":
			if mine {
				w.orders[nextOrder] = true
			}
		case "verify.referee":
			if mine {
				w.orders[referee] = true
			}
		}
		if refunds && (r.ofLease && w.leases[lease] || !r.ofLease && mine) {
			w.refunded += refund
		}
	}
	w.height = b.Height
	close(w.tick)
	w.tick = make(chan struct{})
	w.mu.Unlock()
	for _, f := range bids { // outside the lock: the callback may take time
		f()
	}
	return nil
}

// until calls check now and after every new block until it reports done or fails, ctx ends, or timeout (0:
// none) passes (done false).
func (w *watch) until(ctx context.Context, timeout time.Duration, check func() (bool, error)) (bool, error) {
	var deadline <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		deadline = timer.C
	}
	for {
		w.mu.Lock()
		tick, ferr := w.tick, w.err
		w.mu.Unlock()
		if done, err := check(); done || err != nil {
			return done, err
		}
		if ferr != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, ferr
		}
		select {
		case <-tick:
		case <-deadline:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// lease is the first lease created for order (0: none yet), and how the order ended without one ("" while open).
func (w *watch) lease(order uint64) (uint64, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ls := w.leaseOf[order]; len(ls) > 0 {
		return ls[0], ""
	}
	return 0, w.ended[order]
}

// bidsOf are the bids seen on order so far.
func (w *watch) bidsOf(order uint64) []seenBid {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]seenBid(nil), w.bids[order]...)
}

// seen is the last block seen.
func (w *watch) seen() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.height
}

// refunds is what the ledger gave back of the deploy's escrow once the watch has read every block the node had
// committed when it was called: the deploy's own last transactions and the ends it saw included.
func (w *watch) refunds(ctx context.Context, c Ledger) uint64 {
	if st, err := c.Status(ctx); err == nil {
		w.slow.Store(false)
		_, _ = w.until(ctx, 10*time.Second, func() (bool, error) { return w.seen() >= st.Height, nil })
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refunded
}
