package index_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/internal/markettest"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
)

// TestIndexVault: a Spare Vault history (markettest.Vault: four storage offers, one of them updated; a term
// object of two stripes, a permanent one, one claiming the term object's root, and one the ledger could not
// place) is indexed as the ledger has it, with the indexer stopped in the middle and catching up: every object
// with its layout and deal (the unplaced one too, which the ledger no longer has), every shard's provider and
// price, every offer's capacity and used bytes; each provider's shards add up to its offer's used bytes, the
// network's totals to the ledger's, and the series over time ends at them.
func TestIndexVault(t *testing.T) {
	m := markettest.Start(t, localnet.Options{CheckInvariants: true, Funded: markettest.VaultKeys})
	path := markettest.TempIndex(t)
	db, stop := markettest.StartIndexer(t, path, m.C)
	h := m.Vault(func() {
		markettest.WaitIndexed(t, db, m.Height())
		stop() // the rest is indexed catching up, from the totals written so far
	})
	db, stop = markettest.StartIndexer(t, path, m.C)
	defer stop()
	markettest.WaitIndexed(t, db, m.Last)
	ctx := context.Background()

	placed := map[string]index.VaultObject{}
	var stored, termEscrow uint64
	for name, id := range h.Objects {
		got, err := db.VaultObject(ctx, id)
		if err != nil {
			t.Fatalf("object %s: %v", name, err)
		}
		if got.Owner != m.Addr("owner") || got.Root != h.Roots[name].String() || got.K != 2 || got.M != 2 || got.StoredHeight == 0 {
			t.Errorf("object %s: %+v", name, got)
		}
		if name == "unplaced" {
			if got.State != index.VaultUnplaced || !strings.Contains(got.Reason, "only 3 storage providers had room") || got.Escrow != 0 ||
				got.Refund != got.Deposit || got.Deposit == 0 || got.ShardSize != 16<<10 || got.Stripes != 1 || got.EndedHeight != got.PlaceAt {
				t.Errorf("the unplaced object: %+v", got)
			}
			if s, _ := db.VaultShards(ctx, index.VaultShardFilter{ObjectID: id}, index.Page{}); s.Total != 0 {
				t.Errorf("the unplaced object has %d shards", s.Total)
			}
			continue
		}
		want, err := m.C.VaultObject(ctx, id)
		if err != nil || got.State != index.VaultPlaced || got.Size != want.Size || got.ShardSize != want.ShardSize ||
			got.Stripes != want.Stripes || got.Shards != uint64(want.Shards()) || got.Months != want.Months ||
			got.MaxPrice != want.MaxPricePerGiBMonth || got.Escrow != want.Escrow || got.PlaceAt != want.PlaceAt ||
			got.StoredHeight != want.Height || got.EndedHeight != want.PlaceAt || got.Deposit != got.Escrow+got.Refund {
			t.Errorf("object %s: index %+v, ledger %+v (%v)", name, got, want, err)
		}
		placed[name] = got
		stored += got.StoredBytes()
		if !got.Permanent() {
			termEscrow += got.Escrow
		}

		// Every shard, in order, with its provider and price as the ledger drew them.
		ledger, err := m.C.AllVaultShards(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		shards, err := db.VaultShards(ctx, index.VaultShardFilter{ObjectID: id}, index.Page{Limit: index.MaxLimit})
		if err != nil || shards.Total != len(ledger) || len(ledger) != int(got.Shards) {
			t.Fatalf("object %s: %d shards indexed, %d on the ledger (%v)", name, shards.Total, len(ledger), err)
		}
		for i, s := range shards.Items {
			l := ledger[i]
			if s.Stripe != l.Stripe || s.Index != l.Index || s.Root != l.Root.String() || s.Provider != l.Provider.String() ||
				s.PricePerGiBMonth != l.PricePerGiBMonth || s.Size != got.ShardSize || s.Parity != (s.Index >= got.K) || s.Region != l.Region {
				t.Errorf("object %s shard %d: index %+v, ledger %+v", name, i, s, l)
			}
		}
	}
	if term := placed["term"]; term.Stripes != 2 || term.Refund == 0 || term.Months != 12 {
		t.Errorf("the term object: %+v (two stripes, a refund at the drawn prices)", term)
	}
	if perm := placed["permanent"]; !perm.Permanent() || perm.Refund != 0 || perm.Escrow == 0 {
		t.Errorf("the permanent object: %+v", perm)
	}

	// Offers as the ledger has them; each provider's shards are its offer's used bytes.
	offers, err := m.C.StorageOffers(ctx, api.ListRequest{Limit: api.MaxPageLimit})
	if err != nil || len(offers.Items) != 4 {
		t.Fatalf("ledger offers %+v (%v)", offers, err)
	}
	var capacity, used uint64
	for _, want := range offers.Items {
		capacity, used = capacity+want.CapacityBytes, used+want.UsedBytes
		ps, err := db.ProviderStorage(ctx, want.Provider.String())
		if err != nil || ps.Offer == nil || ps.Offer.CapacityBytes != want.CapacityBytes || ps.Offer.UsedBytes != want.UsedBytes ||
			ps.Offer.PricePerGiBMonth != want.PricePerGiBMonth || ps.Offer.Region != want.Region || ps.Bytes != want.UsedBytes ||
			ps.Offer.Shards != ps.Shards || ps.Shards == 0 || ps.Objects != 3 {
			t.Errorf("provider %s storage: index %+v %+v, ledger %+v (%v)", want.Provider, ps, ps.Offer, want, err)
		}
	}
	s4, _ := db.ProviderStorage(ctx, m.Addr("s4"))
	if o := s4.Offer; o == nil || o.PricePerGiBMonth != 3_500 || o.FreeBytes != 0 || o.Eligible() {
		t.Errorf("s4's offer after its update and the last draw: %+v", o)
	}
	list, err := db.StorageOffers(ctx, index.Page{})
	if err != nil || list.Total != 4 || list.Items[0].PricePerGiBMonth != 1_000 || list.Items[3].Provider != m.Addr("s4") {
		t.Errorf("offers, cheapest first: %+v (%v)", list, err)
	}

	// The network's totals.
	ov, err := db.VaultOverview(ctx)
	if err != nil || ov.StoredBytes != stored || ov.StoredBytes != used || ov.CapacityBytes != capacity || ov.Shards != 16 ||
		ov.Objects != 3 || ov.Placing != 0 || ov.Unplaced != 1 || ov.Offers != 4 || ov.OffersEligible != 3 || ov.Providers != 4 ||
		ov.TermEscrow != termEscrow || ov.Endowments != placed["permanent"].Escrow || ov.FreeBytes != capacity-used-0 {
		t.Errorf("vault overview %+v (%v); stored %d, used %d, capacity %d, term escrow %d", ov, err, stored, used, capacity, termEscrow)
	}
	hist, err := db.VaultHistory(ctx, 200)
	if err != nil || len(hist) < 4 {
		t.Fatalf("history %+v (%v)", hist, err)
	}
	first, last := hist[0], hist[len(hist)-1]
	if first.StoredBytes != 0 || first.CapacityBytes != 64<<20 || last.StoredBytes != stored || last.CapacityBytes != capacity ||
		last.Objects != 3 || last.TermEscrow != termEscrow || last.Height < m.Last { // carried to the last block indexed, which may be past m.Last
		t.Errorf("history from %+v to %+v", first, last)
	}
	for i := 1; i < len(hist); i++ {
		if hist[i].StoredBytes < hist[i-1].StoredBytes || hist[i].TimeMs < hist[i-1].TimeMs {
			t.Errorf("history goes back: %+v then %+v", hist[i-1], hist[i])
		}
	}

	// A root names both objects that claim it, oldest first; a shard's root its shard.
	byRoot, err := db.VaultObjects(ctx, index.VaultFilter{Root: h.Roots["term"].String(), Oldest: true}, index.Page{})
	if err != nil || byRoot.Total != 2 || byRoot.Items[0].ID != h.Objects["term"] || byRoot.Items[1].ID != h.Objects["same_root"] {
		t.Errorf("objects with the term object's root: %+v (%v)", byRoot, err)
	}
	shard, _ := db.VaultShards(ctx, index.VaultShardFilter{ObjectID: h.Objects["permanent"]}, index.Page{Limit: 1})
	if objs, shards, err := db.VaultRootMatches(ctx, shard.Items[0].Root); err != nil || objs != 0 || shards != 1 {
		t.Errorf("root of a shard: %d objects, %d shards (%v)", objs, shards, err)
	}
	for _, tc := range []struct {
		f     index.VaultFilter
		total int
	}{
		{index.VaultFilter{State: index.VaultUnplaced}, 1},
		{index.VaultFilter{State: index.VaultPlaced, Deal: "term"}, 2},
		{index.VaultFilter{Deal: "permanent"}, 1},
		{index.VaultFilter{Owner: m.Addr("owner")}, 4},
		{index.VaultFilter{Owner: m.Addr("s1")}, 0},
	} {
		if l, err := db.VaultObjects(ctx, tc.f, index.Page{}); err != nil || l.Total != tc.total {
			t.Errorf("objects %+v: %d (%v), want %d", tc.f, l.Total, err, tc.total)
		}
	}
	if _, err := db.VaultObjects(ctx, index.VaultFilter{State: "lost"}, index.Page{}); err == nil {
		t.Error("a filter on an unknown state was taken")
	}

	// The events name the object and its owner.
	evs, _ := db.Events(ctx, index.EventFilter{Kind: "object", Ref: strconv.FormatUint(h.Objects["term"], 10)}, index.Page{Limit: 100})
	seen := map[string]int{}
	for _, e := range evs.Items {
		seen[e.Type]++
	}
	if seen[api.EventVaultStored] != 1 || seen[api.EventVaultShardPlaced] != 8 || seen[api.EventVaultPlaced] != 1 || len(seen) != 3 {
		t.Errorf("events of the term object: %v", seen)
	}
	if evs, _ := db.Events(ctx, index.EventFilter{Kind: "account", Ref: m.Addr("owner"), Type: api.EventVaultUnplaced}, index.Page{}); evs.Total != 1 {
		t.Errorf("the owner's vault.unplaced events: %d", evs.Total)
	}
}
