package index_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/internal/markettest"
	"github.com/sparenet/spare/ledger/api"
)

// TestIndexVault: a Spare Vault history (markettest.Vault: four storage offers, one of them updated; a term
// object of two stripes, a permanent one, one claiming the term object's root, and one the ledger could not
// place) is indexed as the ledger has it, with the indexer stopped in the middle and catching up: every object
// with its layout and deal (the unplaced one too, which the ledger no longer has), every shard's provider and
// price, every offer's capacity and used bytes; each provider's shards add up to its offer's used bytes, the
// network's totals to the ledger's (the placed objects' escrow in the Vault pool: the chain audits storage), and
// the series over time ends at them. Then storage proofs (markettest.VaultProofs: a shard failed two epochs in a
// row, lost, drawn onto another provider and repaired; every decided epoch paying the providers) are indexed as
// the ledger has them: every epoch's result, the shards it challenged, the shard's state and history, the
// repair, each provider's pay and failures, the pool.
func TestIndexVault(t *testing.T) {
	m := markettest.Start(t, markettest.VaultOptions())
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
	var stored, pooled uint64
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
			got.StoredHeight != want.Height || got.EndedHeight != want.PlaceAt || got.Deposit != got.Escrow+got.Refund ||
			!want.Pooled || got.Pooled != want.Pooled {
			t.Errorf("object %s: index %+v, ledger %+v (%v)", name, got, want, err)
		}
		placed[name] = got
		stored += got.StoredBytes()
		pooled += got.Escrow

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

	// The network's totals: the placed objects' escrow is in the pool (no epoch was decided: nothing paid yet).
	pool, err := vaultPool(ctx, m)
	if err != nil || pool.Balance != pooled || pool.PaidTotal != 0 {
		t.Fatalf("the ledger's pool %+v (%v), want the placed objects' %d", pool, err, pooled)
	}
	ov, err := db.VaultOverview(ctx)
	if err != nil || ov.StoredBytes != stored || ov.StoredBytes != used || ov.CapacityBytes != capacity || ov.Shards != 16 ||
		ov.Objects != 3 || ov.Placing != 0 || ov.Unplaced != 1 || ov.Offers != 4 || ov.OffersEligible != 3 || ov.Providers != 4 ||
		ov.TermEscrow != 0 || ov.Endowments != 0 || ov.Pool != pooled || ov.PaidTotal != 0 || !ov.Audited || ov.FreeBytes != capacity-used-0 {
		t.Errorf("vault overview %+v (%v); stored %d, used %d, capacity %d, pooled %d", ov, err, stored, used, capacity, pooled)
	}
	hist, err := db.VaultHistory(ctx, 200)
	if err != nil || len(hist) < 4 {
		t.Fatalf("history %+v (%v)", hist, err)
	}
	first, last := hist[0], hist[len(hist)-1]
	if first.StoredBytes != 0 || first.CapacityBytes > 64<<20 || last.StoredBytes != stored || last.CapacityBytes != capacity ||
		last.Objects != 3 || last.Pool != pooled || last.TermEscrow != 0 || last.Height < m.Last { // carried to the last block indexed, which may be past m.Last
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

	checkVaultProofs(t, m, db, m.VaultProofs(), ctx)
}

func vaultPool(ctx context.Context, m *markettest.Market) (api.VaultPool, error) {
	var p api.VaultPool
	return p, m.C.Query(ctx, api.QueryVaultPool, nil, &p)
}

// checkVaultProofs checks the index against the ledger after markettest.VaultProofs.
func checkVaultProofs(t *testing.T, m *markettest.Market, db *index.DB, h markettest.VaultProofsHistory, ctx context.Context) {
	t.Helper()
	markettest.WaitIndexed(t, db, m.Last)
	// Every epoch the ledger still keeps, as the ledger has it. The shards an epoch challenged are those declared
	// held when it started: the proofs object's four (Vault's were never declared), but for the epoch that began
	// after shard 0 was lost and before its new provider declared it rebuilt; the ledger's vault_challenges for
	// the last epoch (nothing changed since it started) agree.
	for e := h.FirstEpoch; e <= h.LastEpoch; e++ {
		challenged := uint64(4)
		if e == h.FirstEpoch+3 {
			challenged = 3
		}
		var want api.VaultEpoch
		if err := m.C.Query(ctx, api.QueryVaultEpoch, api.EpochRequest{Epoch: &e}, &want); err != nil {
			t.Fatal(err)
		}
		var got index.VaultEpoch
		l, err := db.VaultEpochs(ctx, index.Page{Limit: index.MaxLimit})
		for _, x := range l.Items {
			if x.Epoch == e {
				got = x
			}
		}
		if err != nil || got.Epoch != e || got.StartHeight != want.StartHeight || got.StartMs != int64(want.StartMs) || !got.Tallied ||
			got.Decided != want.Decided || got.Failed != uint64(want.Failed) || got.Lost != uint64(want.Lost) || got.Paid != want.Paid ||
			got.Attestations != 1 || got.Reveals != uint64(want.Reveals) || got.Challenged != challenged {
			t.Errorf("epoch %d: index %+v, ledger %+v (%v)", e, got, want, err)
		}
		wantFailed := uint64(0)
		if e < h.FirstEpoch+2 {
			wantFailed = 1
		}
		if got.Failed != wantFailed || got.SuccessPPM != int64((challenged-wantFailed)*1_000_000/challenged) {
			t.Errorf("epoch %d: %d failed, success %d ppm; want %d failed of %d", e, got.Failed, got.SuccessPPM, wantFailed, challenged)
		}
	}
	n := 0
	for r := (api.VaultChallengesRequest{Epoch: h.LastEpoch, Limit: api.MaxPageLimit}); ; {
		var page api.List[api.VaultChallenge]
		if err := m.C.Query(ctx, api.QueryVaultChallenges, r, &page); err != nil {
			t.Fatal(err)
		}
		n += len(page.Items)
		if page.Next == "" {
			break
		}
		if _, err := fmt.Sscanf(page.Next, "%d:%d", &r.AfterObject, &r.AfterOrdinal); err != nil {
			t.Fatal(err)
		}
		r.HasAfter = true
	}
	if n != 4 {
		t.Errorf("the ledger challenges %d shards in epoch %d, want 4 (the index's count)", n, h.LastEpoch)
	}

	// The shard: failed twice, lost, drawn onto another provider, repaired.
	shards, err := db.VaultShards(ctx, index.VaultShardFilter{ObjectID: h.Object}, index.Page{})
	if err != nil || shards.Total != 4 {
		t.Fatalf("the proofs object's shards: %+v (%v)", shards, err)
	}
	s0 := shards.Items[0]
	if s0.Provider != h.Repaired.Provider.String() || s0.RepairHeight != h.Repaired.RepairHeight || s0.Repairing || s0.Lost ||
		s0.HeldHeight != h.Repaired.HeldHeight || s0.HeldHeight <= s0.RepairHeight ||
		s0.Failures != 0 || s0.FailedEpochs != 2 || s0.LastFailed != h.FirstEpoch+1 || s0.PricePerGiBMonth != h.Repaired.PricePerGiBMonth {
		t.Errorf("shard 0 indexed %+v; ledger %+v", s0, h.Repaired)
	}
	hist, err := db.VaultProofEvents(ctx, index.VaultProofFilter{ObjectID: h.Object}, index.Page{})
	var types []string
	for _, e := range hist.Items {
		types = append([]string{e.Type}, types...)
	}
	if err != nil || strings.Join(types, " ") != "vault.proof_failed vault.proof_failed vault.shard_lost vault.repair vault.repaired" ||
		hist.Items[4].Provider != h.Failed.Provider.String() || hist.Items[0].Provider != h.Repaired.Provider.String() ||
		hist.Items[3].Failures != 2 || hist.Items[1].Price != h.Repaired.PricePerGiBMonth {
		t.Errorf("the shard's proof history: %v %+v (%v)", types, hist.Items, err)
	}
	if byRoot, _ := db.VaultProofEvents(ctx, index.VaultProofFilter{Root: h.Failed.Root.String()}, index.Page{}); byRoot.Total != 5 {
		t.Errorf("the shard's root has %d proof events, want 5", byRoot.Total)
	}
	fee, _ := api.TermCost(256<<20, h.Repaired.PricePerGiBMonth, api.VaultRepairMonths)
	repairs, err := db.VaultRepairs(ctx, index.VaultRepairFilter{}, index.Page{})
	if err != nil || repairs.Total != 1 {
		t.Fatalf("repairs %+v (%v)", repairs, err)
	}
	if r := repairs.Items[0]; r.State != index.RepairRepaired || r.LostProvider != h.Failed.Provider.String() || r.Provider != h.Repaired.Provider.String() ||
		r.DrawnHeight != h.Repaired.RepairHeight || r.LostEpoch != h.FirstEpoch+1 || r.RepairedEpoch != h.LastEpoch || r.Fee != fee || fee == 0 ||
		r.ObjectID != h.Object || r.Stripe != 0 || r.Index != 0 || r.Root != h.Failed.Root.String() {
		t.Errorf("the repair %+v (fee %d)", r, fee)
	}
	for _, f := range []index.VaultRepairFilter{{State: index.RepairRepaired}, {Provider: h.Failed.Provider.String()}, {Provider: h.Repaired.Provider.String()}, {ObjectID: h.Object}} {
		if l, err := db.VaultRepairs(ctx, f, index.Page{}); err != nil || l.Total != 1 {
			t.Errorf("repairs %+v: %d (%v)", f, l.Total, err)
		}
	}
	if l, _ := db.VaultRepairs(ctx, index.VaultRepairFilter{State: index.RepairLost}, index.Page{}); l.Total != 0 {
		t.Errorf("%d repairs still lost", l.Total)
	}
	if _, err := db.VaultRepairs(ctx, index.VaultRepairFilter{State: "mended"}, index.Page{}); err == nil {
		t.Error("a filter on an unknown repair state was taken")
	}

	// Each provider's pay and failures are the ledger's; its offer's room and shards too.
	var paid uint64
	for _, key := range append([]string{"s1", "s2", "s3", "s4"}, h.Providers...) {
		var want api.VaultProvider
		if err := m.C.Query(ctx, api.QueryVaultProvider, api.AddressRequest{Address: m.Net.Keys[key].Address()}, &want); err != nil {
			t.Fatal(err)
		}
		got, err := db.VaultEarnings(ctx, m.Addr(key))
		if err != nil || got.Earned != want.Earned || got.Failed != want.Failed {
			t.Errorf("%s: index %+v, ledger %+v (%v)", key, got, want, err)
		}
		paid += got.EpochPay
		switch key {
		case h.FailedKey:
			if got.Failed != 2 || got.Lost != 1 || got.Repairs != 0 {
				t.Errorf("%s, which failed the shard: %+v", key, got)
			}
		case h.RepairedKey:
			if got.Repairs != 1 || got.Repaired != 1 || got.RepairFees != fee || got.Failed != 0 {
				t.Errorf("%s, which repaired the shard: %+v", key, got)
			}
		}
		if slices.Contains(h.Providers, key) && key != h.RepairedKey && key != h.FailedKey && (got.EpochPay == 0 || got.EpochsPaid != 5) {
			t.Errorf("%s held a shard for five decided epochs: %+v", key, got)
		}
		offer, err := m.C.StorageOffer(ctx, m.Net.Keys[key].Address())
		ps, err2 := db.ProviderStorage(ctx, m.Addr(key))
		if err != nil || err2 != nil || ps.Offer == nil || ps.Offer.UsedBytes != offer.UsedBytes || ps.Bytes != offer.UsedBytes || ps.Offer.Shards != ps.Shards {
			t.Errorf("%s's offer: index %+v %+v, ledger %+v (%v %v)", key, ps, ps.Offer, offer, err, err2)
		}
	}
	epochs, err := db.VaultProviderEpochs(ctx, m.Addr(h.FailedKey), index.Page{})
	if err != nil || epochs.Total == 0 || epochs.Items[len(epochs.Items)-1].Epoch != h.FirstEpoch || epochs.Items[len(epochs.Items)-1].Failed != 1 {
		t.Errorf("the failing provider's epochs: %+v (%v)", epochs, err)
	}

	// The network: the pool and what it paid are the ledger's, its bytes the shards held.
	pool, err := vaultPool(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	ov, err := db.VaultOverview(ctx)
	if err != nil || ov.Pool != pool.Balance || ov.PaidTotal != pool.PaidTotal || pool.PaidTotal != paid+fee || pool.TermBytes+pool.PermBytes != 4*256<<20 ||
		ov.Shards != 20 || ov.ShardsDeclared != 4 || ov.ShardsLost != 0 || ov.ShardsRepairing != 0 || ov.Repaired != 1 || ov.LastTallied == nil ||
		ov.LastTallied.Epoch < h.LastEpoch || ov.LastTallied.Pool != pool.Balance || ov.LastTallied.StoredBytes != pool.TermBytes+pool.PermBytes ||
		ov.LastDecided == nil || ov.LastDecided.Epoch != h.LastEpoch || ov.LastDecided.SuccessPPM != 1_000_000 {
		t.Errorf("overview %+v (last tallied %+v), ledger pool %+v, paid %d + %d (%v)", ov, ov.LastTallied, pool, paid, fee, err)
	}
	points, err := db.VaultEpochHistory(ctx, 200)
	sawFailure := false
	for _, p := range points {
		sawFailure = sawFailure || (p.SuccessPPM >= 0 && p.SuccessPPM < 1_000_000)
	}
	if err != nil || len(points) == 0 || !sawFailure || points[len(points)-1].Pool != pool.Balance {
		t.Errorf("epoch history %+v (%v)", points, err)
	}
	vh, err := db.VaultHistory(ctx, 200)
	if err != nil || vh[len(vh)-1].Pool != pool.Balance || vh[len(vh)-1].PaidTotal != pool.PaidTotal {
		t.Errorf("history ends at %+v, ledger pool %+v (%v)", vh[len(vh)-1], pool, err)
	}
}
