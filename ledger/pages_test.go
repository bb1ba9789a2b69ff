package ledger

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// TestEveryListPages walks every paginated query of a market (providers; orders, all, a tenant's and the open
// ones; bids, all, an order's and a provider's; leases, all, a tenant's and a provider's) page by page at several
// page sizes, following each page's "next", and requires exactly the items of one whole-list read, in ascending
// order, each once, the last page saying there is no next. A cursor that is not an id (or address) and a limit
// past the maximum are refused.
func TestEveryListPages(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"alice": 1000 * api.USPR, "bob": 1000 * api.USPR, "p1": 1000 * api.USPR, "p2": 1000 * api.USPR, "p3": 1000 * api.USPR})
	for _, p := range []string{"p1", "p2", "p3"} {
		c.registerBonded(p)
		c.do(p, &tx.OfferStorage{CapacityBytes: 1 << 40, PricePerGiBMonth: 2_000})
	}
	// 12 orders from two tenants: some leased (bids from two providers, the cheaper wins), some cancelled, some
	// left open with bids on them.
	for i := range 12 {
		tenant := []string{"alice", "bob"}[i%2]
		c.do(tenant, gpuOrder(testRunPrice, api.USPR, 3600))
		id := uint64(i + 1)
		switch i % 3 {
		case 0:
			c.block(time.Second, c.sign("p1", &tx.PlaceBid{OrderID: id, Price: testRunPrice - 1}), c.sign("p2", &tx.PlaceBid{OrderID: id, Price: testRunPrice - 2}))
		case 1:
			c.do(tenant, &tx.CancelOrder{ID: id})
		}
	}
	o := gpuOrder(testRunPrice, api.USPR, 3600)
	o.BidWindow = 50
	for range 3 { // open orders holding bids
		c.do("bob", o)
	}
	c.block(time.Second, c.sign("p3", &tx.PlaceBid{OrderID: 13, Price: testRunPrice}), c.sign("p3", &tx.PlaceBid{OrderID: 14, Price: testRunPrice}),
		c.sign("p1", &tx.PlaceBid{OrderID: 14, Price: testRunPrice}))

	type lister struct {
		name string
		path string
		req  api.ListRequest
		ids  func(raw any) ([]string, string) // the page's items as ids, and its next
		min  int                              // at least this many items in the whole list (the test builds them)
	}
	orders := func(raw any) ([]string, string) {
		l := raw.(*api.List[*api.Order])
		var ids []string
		for _, o := range l.Items {
			ids = append(ids, fmt.Sprint(o.ID))
		}
		return ids, l.Next
	}
	bids := func(raw any) ([]string, string) {
		l := raw.(*api.List[*api.Bid])
		var ids []string
		for _, b := range l.Items {
			ids = append(ids, fmt.Sprint(b.ID))
		}
		return ids, l.Next
	}
	leases := func(raw any) ([]string, string) {
		l := raw.(*api.List[api.LeaseView])
		var ids []string
		for _, x := range l.Items {
			ids = append(ids, fmt.Sprint(x.ID))
		}
		return ids, l.Next
	}
	providers := func(raw any) ([]string, string) {
		l := raw.(*api.List[api.ProviderView])
		var ids []string
		for _, p := range l.Items {
			ids = append(ids, p.Owner.String())
		}
		return ids, l.Next
	}
	newOut := map[string]func() any{
		api.QueryOrders: func() any { return &api.List[*api.Order]{} }, api.QueryBids: func() any { return &api.List[*api.Bid]{} },
		api.QueryLeases: func() any { return &api.List[api.LeaseView]{} }, api.QueryProviders: func() any { return &api.List[api.ProviderView]{} },
		api.QueryStorageOffers: func() any { return &api.List[api.StorageOfferView]{} },
	}
	storage := func(raw any) ([]string, string) {
		l := raw.(*api.List[api.StorageOfferView])
		var ids []string
		for _, o := range l.Items {
			ids = append(ids, o.Provider.String())
		}
		return ids, l.Next
	}
	for _, l := range []lister{
		{"providers", api.QueryProviders, api.ListRequest{}, providers, 3},
		{"storage offers", api.QueryStorageOffers, api.ListRequest{}, storage, 3},
		{"orders", api.QueryOrders, api.ListRequest{}, orders, 15},
		{"a tenant's orders", api.QueryOrders, api.ListRequest{Tenant: c.addr("bob")}, orders, 9},
		{"open orders", api.QueryOrders, api.ListRequest{Open: true}, orders, 3},
		{"bids", api.QueryBids, api.ListRequest{}, bids, 11},
		{"an order's bids", api.QueryBids, api.ListRequest{OrderID: 14}, bids, 2},
		{"a provider's bids", api.QueryBids, api.ListRequest{Provider: c.addr("p1")}, bids, 5},
		{"leases", api.QueryLeases, api.ListRequest{}, leases, 4},
		{"a tenant's leases", api.QueryLeases, api.ListRequest{Tenant: c.addr("alice")}, leases, 2},
		{"a provider's leases", api.QueryLeases, api.ListRequest{Provider: c.addr("p2")}, leases, 4},
	} {
		t.Run(l.name, func(t *testing.T) {
			all := newOut[l.path]()
			req := l.req
			req.Limit = api.MaxPageLimit
			c.query(l.path, req, all)
			want, next := l.ids(all)
			if next != "" || len(want) < l.min {
				t.Fatalf("the whole list: %d items (at least %d), next %q", len(want), l.min, next)
			}
			if l.path != api.QueryProviders && l.path != api.QueryStorageOffers { // ids ascending (providers come in their keys' order)
				var n []uint64
				for _, id := range want {
					v, _ := strconv.ParseUint(id, 10, 64)
					n = append(n, v)
				}
				if !slices.IsSorted(n) {
					t.Fatalf("not in ascending order: %v", want)
				}
			}
			for _, size := range []int{1, 2, 3, 7} {
				var got []string
				req := l.req
				req.Limit = size
				for pages := 0; ; pages++ {
					if pages > len(want)+1 {
						t.Fatalf("page size %d: more pages than items", size)
					}
					page := newOut[l.path]()
					c.query(l.path, req, page)
					ids, next := l.ids(page)
					if len(ids) > size {
						t.Fatalf("page size %d: a page of %d", size, len(ids))
					}
					got = append(got, ids...)
					if next == "" {
						break
					}
					req.After = next
				}
				if !slices.Equal(got, want) {
					t.Fatalf("page size %d: %v, want %v", size, got, want)
				}
			}
		})
	}
	for _, bad := range []struct {
		path string
		req  api.ListRequest
		want string
	}{
		{api.QueryOrders, api.ListRequest{After: "x"}, "after"},
		{api.QueryBids, api.ListRequest{After: "-1"}, "after"},
		{api.QueryProviders, api.ListRequest{After: "not-an-address"}, "after"},
		{api.QueryStorageOffers, api.ListRequest{After: "not-an-address"}, "after"},
		{api.QueryLeases, api.ListRequest{Limit: api.MaxPageLimit + 1}, "limit"},
	} {
		if msg := c.queryErr(bad.path, bad.req); !strings.Contains(msg, bad.want) {
			t.Errorf("%s %+v: %q, want an error naming %q", bad.path, bad.req, msg, bad.want)
		}
	}
}
