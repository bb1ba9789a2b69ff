package tenant

import (
	"log/slog"
	"testing"

	"github.com/sparenet/spare/client"
)

// TestWatchSkipsUnreadableEvents: an event of the deploy's whose numbers do not read (a refund, a next order, a
// bid's price) is skipped — not counted as 0, nor as order 0 — while the well-formed events around it count.
func TestWatchSkipsUnreadableEvents(t *testing.T) {
	w := &watch{tick: make(chan struct{}), orders: map[uint64]bool{7: true}, leases: map[uint64]bool{}, leaseOf: map[uint64][]uint64{},
		ended: map[uint64]string{}, bids: map[uint64][]seenBid{}, log: slog.New(slog.DiscardHandler)}
	var seen []seenBid
	w.onBid = func(_ uint64, b seenBid) { seen = append(seen, b) }
	ev := func(typ string, kv ...string) client.Event {
		e := client.Event{Type: typ, Attrs: map[string]string{}}
		for i := 0; i < len(kv); i += 2 {
			e.Attrs[kv[i]] = kv[i+1]
		}
		return e
	}
	if err := w.block(client.Block{Height: 3, Events: []client.Event{
		ev("order.cancelled", "order_id", "7", "refund", "12x"),          // unreadable refund: skipped
		ev("cluster.restarted", "order_id", "7", "next_order", "-1"),     // unreadable next order: skipped
		ev("bid.placed", "order_id", "7", "bid_id", "4", "price", "9e3"), // unreadable price: skipped
		ev("bid.placed", "order_id", "7", "bid_id", "5", "price", "900", "provider", "p"),
		ev("lease.created", "order_id", "7", "lease_id", "11"),
		ev("lease.closed", "lease_id", "11", "refund", "40"),
	}}); err != nil {
		t.Fatal(err)
	}
	if w.refunded != 40 || w.ended[7] != "" || w.orders[0] || len(w.orders) != 1 || len(seen) != 1 || seen[0].ID != 5 || seen[0].Price != 900 || !w.leases[11] {
		t.Fatalf("refunded %d, ended %q, orders %v, bids %+v, leases %v", w.refunded, w.ended[7], w.orders, seen, w.leases)
	}
}
