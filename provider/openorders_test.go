package provider_test

import (
	"context"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
)

// TestNewProviderConsidersNewestOpenOrders: a Sybil tenant has flooded the ledger with open orders before a new
// provider's first start. The daemon considers only the orders among the newest ids (here 20; 5,000 by default),
// found by bisection over the open orders rather than by reading the whole flood, and bids on those it fits.
func TestNewProviderConsidersNewestOpenOrders(t *testing.T) {
	defer provider.SetMaxOpenOrdersAtStart(20)()
	const flood = 260 // more than one page of the open orders (200) past the 20 considered
	e := startEnvOpts(t, envOpts{beforeStart: func(e *env) {
		m, raw := job("echo hi", 1)
		o := &tx.CreateOrder{Resources: m.Resources, MaxPricePerHour: 10 * spr, ManifestHash: manifest.Hash(raw), Deposit: spr / 10,
			DurationSec: m.DurationSec}
		for range flood / 20 {
			msgs := make([]tx.Msg, 20)
			for i := range msgs {
				msgs[i] = o
			}
			if _, err := e.c.NewSender(e.net.Keys["tenant"]).Send(context.Background(), msgs...); err != nil {
				e.t.Fatal(err)
			}
		}
	}})
	prov := e.net.Keys["prov"].Address()
	var bids []api.Bid
	e.waitFor(30*time.Second, "bids on the open orders", func() bool {
		l, err := e.c.Bids(context.Background(), api.ListRequest{Provider: prov, Limit: api.MaxPageLimit})
		bids = l.Items
		return err == nil && len(bids) > 0
	})
	time.Sleep(time.Second) // the rest of the bids it places
	l, err := e.c.Bids(context.Background(), api.ListRequest{Provider: prov, Limit: api.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range l.Items {
		if b.OrderID <= flood-20 {
			t.Fatalf("bid %d on order %d, not among the newest 20 of %d open orders", b.ID, b.OrderID, flood)
		}
	}
	t.Logf("%d bids, on orders %d..%d", len(l.Items), l.Items[0].OrderID, l.Items[len(l.Items)-1].OrderID)
}
