package tenant

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
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
		bid, err := w.event(e)
		if err != nil { // said and skipped: never counted as a refund of 0, nor read as order 0
			w.log.Warn("ledger event ignored", "height", b.Height, "err", err)
			continue
		}
		if bid != nil {
			bids = append(bids, bid)
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

// event reads one event (w.mu held) through the ledger's typed parsers: the deploy's orders and leases it names,
// a bid on one of them (returned as the call to make to report it), and every refund the ledger makes from the
// deploy's escrow. An event that does not read (an id, an amount or an address missing or malformed) is an
// error and changes nothing.
func (w *watch) event(e client.Event) (bid func(), err error) {
	// Every credit the ledger makes from escrow to a tenant is a refund event (api.ParseRefund): it names the
	// lease refunded, or the order.
	rf, refunds, err := api.ParseRefund(e.Type, e.Attrs)
	if err != nil {
		return nil, err
	}
	switch e.Type {
	case api.EventLeaseCreated:
		ev, err := api.ParseLeaseCreated(e.Attrs)
		if err != nil {
			return nil, err
		}
		if w.orders[ev.OrderID] {
			w.leases[ev.LeaseID] = true
			w.leaseOf[ev.OrderID] = append(w.leaseOf[ev.OrderID], ev.LeaseID)
		}
	case api.EventBidPlaced:
		ev, err := api.ParseBidPlaced(e.Attrs)
		if err != nil {
			return nil, err
		}
		if w.orders[ev.OrderID] && w.onBid != nil {
			sb := seenBid{ID: ev.BidID, Provider: ev.Provider.String(), Price: ev.Price}
			w.bids[ev.OrderID] = append(w.bids[ev.OrderID], sb)
			bid = func() { w.onBid(ev.OrderID, sb) }
		}
	case api.EventOrderExpired, api.EventOrderCancelled:
		ev, err := api.ParseOrderEnded(e.Type, e.Attrs)
		if err != nil {
			return nil, err
		}
		if w.orders[ev.OrderID] {
			w.ended[ev.OrderID] = api.OrderCancelled.String()
			if e.Type == api.EventOrderExpired {
				w.ended[ev.OrderID] = api.OrderExpired.String()
			}
		}
	case api.EventClusterRestarted:
		ev, err := api.ParseClusterRestarted(e.Attrs)
		if err != nil {
			return nil, err
		}
		if w.orders[ev.OrderID] {
			w.orders[ev.NextOrder] = true
		}
	case api.EventVerifyReferee:
		ev, err := api.ParseVerifyReferee(e.Attrs)
		if err != nil {
			return nil, err
		}
		if w.orders[ev.OrderID] {
			w.orders[ev.RefereeOrder] = true
		}
	}
	if refunds && (rf.LeaseID != 0 && w.leases[rf.LeaseID] || rf.LeaseID == 0 && w.orders[rf.OrderID]) {
		w.refunded += rf.Amount
	}
	return bid, nil
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
