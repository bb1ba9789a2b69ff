package tenant

import (
	"bytes"
	"crypto/ed25519"
	"log/slog"
	"strings"
	"testing"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/logtest"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

func testAddr(seed byte) tx.Address {
	return tx.AddressOf(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)).Public().(ed25519.PublicKey))
}

// TestWatchSkipsUnreadableEvents: an event of the deploy's whose ids, amounts or addresses do not read (a refund,
// a next order, a bid's price, a lease's id) is said and skipped — not counted as 0, nor as order 0 — while the
// well-formed events around it count.
func TestWatchSkipsUnreadableEvents(t *testing.T) {
	logged := &logtest.Warnings{}
	w := &watch{tick: make(chan struct{}), orders: map[uint64]bool{7: true}, leases: map[uint64]bool{}, leaseOf: map[uint64][]uint64{},
		ended: map[uint64]string{}, bids: map[uint64][]seenBid{}, log: slog.New(logged)}
	var seen []seenBid
	w.onBid = func(_ uint64, b seenBid) { seen = append(seen, b) }
	ten, prov := testAddr(1).String(), testAddr(2).String()
	ev := func(typ string, kv ...string) client.Event {
		e := client.Event{Type: typ, Attrs: map[string]string{}}
		for i := 0; i < len(kv); i += 2 {
			e.Attrs[kv[i]] = kv[i+1]
		}
		return e
	}
	leaseCreated := func(lease string) client.Event {
		return ev("lease.created", "order_id", "7", "lease_id", lease, "bid_id", "5", "tenant", ten, "provider", prov, "price", "900", "start_deadline", "40")
	}
	leaseClosed := func(lease, refund string) client.Event {
		return ev("lease.closed", "lease_id", lease, "provider", prov, "tenant", ten, "state", "completed", "reason", "",
			"paid", "60", "refund", refund, "held", "0")
	}
	bad := []client.Event{
		ev("order.cancelled", "order_id", "7", "tenant", ten, "refund", "12x"),                                                                                // unreadable refund
		ev("order.expired", "order_id", "7", "tenant", ten),                                                                                                   // no refund
		ev("cluster.reserve_refunded", "order_id", "7", "tenant", ten, "amount", "-5"),                                                                        // unreadable refund
		ev("verify.decided", "order_id", "0", "state", "agreed", "reserve_refund", "30"),                                                                      // order 0
		ev("cluster.restarted", "order_id", "7", "tenant", ten, "lease_id", "11", "reason", "x", "next_order", "-1", "generation", "1", "restarts_left", "0"), // unreadable next order
		ev("verify.referee", "order_id", "7", "tenant", ten),                                                                                                  // no referee order
		ev("bid.placed", "order_id", "7", "bid_id", "4", "provider", prov, "price", "9e3"),                                                                    // unreadable price
		ev("bid.placed", "order_id", "7", "bid_id", "6", "provider", "p", "price", "900"),                                                                     // unreadable provider
		leaseCreated("0"),     // lease 0
		leaseClosed("", "40"), // no lease
	}
	if err := w.block(client.Block{Height: 3, Events: append(bad,
		ev("bid.placed", "order_id", "7", "bid_id", "5", "price", "900", "provider", prov),
		leaseCreated("11"),
		leaseClosed("11", "40"),
		ev("verify.decided", "order_id", "7", "state", "agreed", "reserve_refund", "2"),
		ev("lease.closed", "lease_id", "12", "refund", "x"), // not the deploy's, but unreadable all the same: said
	)}); err != nil {
		t.Fatal(err)
	}
	if w.refunded != 42 || w.ended[7] != "" || w.orders[0] || len(w.orders) != 1 || len(seen) != 1 || seen[0].ID != 5 || seen[0].Price != 900 ||
		seen[0].Provider != prov || len(w.leases) != 1 || !w.leases[11] || len(w.leaseOf[7]) != 1 {
		t.Fatalf("refunded %d, ended %q, orders %v, bids %+v, leases %v", w.refunded, w.ended[7], w.orders, seen, w.leases)
	}
	got := logged.Lines()
	if len(got) != len(bad)+1 {
		t.Fatalf("%d warnings for %d unreadable events:\n%s", len(got), len(bad)+1, strings.Join(got, "\n"))
	}
	for i, l := range got {
		if !strings.HasPrefix(l, "ledger event ignored height=3 err=ledger event ") {
			t.Errorf("warning %d: %s", i, l)
		}
	}

	// Well-formed, the order's end is read with what it refunded.
	if err := w.block(client.Block{Height: 4, Events: []client.Event{ev("order.expired", "order_id", "7", "tenant", ten, "refund", "8")}}); err != nil {
		t.Fatal(err)
	}
	if w.ended[7] != api.OrderExpired.String() || w.refunded != 50 {
		t.Fatalf("ended %q, refunded %d", w.ended[7], w.refunded)
	}
}
