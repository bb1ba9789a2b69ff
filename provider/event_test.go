package provider

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/logtest"
	"github.com/sparenet/spare/ledger/api"
)

// TestHandleMalformedEvents: a ledger event of this provider's whose ids, amounts, addresses or state do not read
// is said ("ledger event ignored", naming the event and the attribute) and changes nothing — never read as order
// or lease 0 — and one about another provider is passed over unread; a well-formed one is acted on.
func TestHandleMalformedEvents(t *testing.T) {
	st, err := OpenStore(filepath.Join(t.TempDir(), "provider.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &logtest.Warnings{}
	d := &Daemon{signer: newOfferSigner(), store: st, log: slog.New(w), capacity: NewCapacity(HardwareConfig{CPUCores: 4, MemoryMiB: 4096, DiskMiB: 4096}),
		cfg: &Config{}}
	me := d.Address().String()
	other := newSigner(1).Address().String()
	ev := func(typ string, kv ...string) client.Event {
		e := client.Event{Type: typ, Attrs: map[string]string{}}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Attrs[kv[i]] = kv[i+1]
		}
		return e
	}
	// The ledger's own attributes (ledger/market, ledger/settle), for this provider.
	bidPlaced := func(bid, order string) client.Event {
		return ev(api.EventBidPlaced, api.AttrBidID, bid, api.AttrOrderID, order, api.AttrProvider, me, api.AttrPrice, "900")
	}
	bidClosed := func(order, state string) client.Event {
		return ev(api.EventBidClosed, api.AttrBidID, "5", api.AttrOrderID, order, api.AttrProvider, me, api.AttrState, state)
	}
	if err := st.PutBid(&BidRecord{OrderID: 7, Price: 900}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	for _, c := range []struct {
		e    client.Event
		want string // in the warning
	}{
		{ev(api.EventOrderCreated, api.AttrOrderID, "0", api.AttrTenant, other), "order_id"},
		{ev(api.EventOrderCreated, api.AttrOrderID, "7x", api.AttrTenant, other), "order_id"},
		{ev(api.EventOrderCreated, api.AttrOrderID, "8"), "tenant"},
		{bidPlaced("", "7"), "bid_id"},
		{bidPlaced("5", "-7"), "order_id"},
		{ev(api.EventBidPlaced, api.AttrBidID, "5", api.AttrOrderID, "7", api.AttrProvider, me, api.AttrPrice, "9e3"), "price"},
		{bidClosed("7", "mislaid"), "state"},
		{bidClosed("", "lost"), "order_id"},
		{ev(api.EventLeaseCreated, api.AttrLeaseID, "0", api.AttrOrderID, "7", api.AttrProvider, me), "lease_id"},
		{ev(api.EventLeaseExtended, api.AttrLeaseID, "abc", api.AttrProvider, me), "lease_id"},
		{ev(api.EventProviderSlashed, api.AttrProvider, me, api.AttrAmount, "lots"), "amount"},
		{ev(api.EventLeaseClosed, api.AttrLeaseID, "18446744073709551616", api.AttrProvider, me), "lease_id"},
		{ev(api.EventLeaseClosed, api.AttrLeaseID, "3", api.AttrProvider, me, api.AttrTenant, other, api.AttrState, "closed",
			api.AttrReason, "r", api.AttrPaid, "1", api.AttrRefund, "", api.AttrHeld, "0"), "refund"},
	} {
		d.handle(ctx, c.e) // acting on any of these would reach for the (nil) node client, or change the bid below
		got := w.Take()
		if len(got) != 1 || !strings.HasPrefix(got[0], "ledger event ignored") || !strings.Contains(got[0], "ledger event "+c.e.Type+": ") ||
			!strings.Contains(got[0], c.want) {
			t.Errorf("%s %v: logged %q, want one warning naming %s", c.e.Type, c.e.Attrs, got, c.want)
		}
	}
	d.bg.Wait()
	if rec, _ := st.Bid(7); rec == nil || rec.BidID != 0 {
		t.Fatalf("a malformed event changed the bid: %+v", rec)
	}

	// Another provider's events are not this daemon's business, well-formed or not.
	for _, typ := range []string{api.EventBidPlaced, api.EventBidClosed, api.EventLeaseCreated, api.EventLeaseExtended,
		api.EventProviderSlashed, api.EventLeaseClosed} {
		d.handle(ctx, ev(typ, api.AttrProvider, other, api.AttrOrderID, "x"))
	}
	if got := w.Take(); len(got) != 0 {
		t.Fatalf("another provider's events: logged %q", got)
	}

	// Well-formed, they are acted on: the bid learns its id, then is lost and released.
	d.handle(ctx, bidPlaced("5", "7"))
	if rec, _ := st.Bid(7); rec == nil || rec.BidID != 5 {
		t.Fatalf("bid.placed: %+v", rec)
	}
	d.handle(ctx, bidClosed("7", api.BidWon.String()))
	if rec, _ := st.Bid(7); rec == nil {
		t.Fatal("a won bid was released")
	}
	d.handle(ctx, bidClosed("7", api.BidLost.String()))
	if rec, _ := st.Bid(7); rec != nil {
		t.Fatalf("a lost bid is kept: %+v", rec)
	}
	if got := w.Take(); len(got) != 0 {
		t.Fatalf("well-formed events: logged %q", got)
	}
}

func newSigner(seed byte) offerSigner {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return offerSigner{ed25519.NewKeyFromSeed(s)}
}
