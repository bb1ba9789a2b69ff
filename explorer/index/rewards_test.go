package index_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/internal/markettest"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// TestIndexRewards: a real chain's rewards (markettest.Rewards: three GPU providers proving their hardware, found
// up, down, slashed short of stake, failing proof of GPU and jailed; a lease's burn and its work reward; an
// auditor's shares; a claim), indexed with the indexer stopped in the middle and catching up, are the ledger's:
// every tallied epoch's emission and split as the tally's block records it (client.RewardEpochs), every provider's
// rewards and reasons by epoch, every address's totals (a provider's earned and owed as the rewards query answers
// them, the claim, the forfeit), the top earners, and what was minted and burned in all as the emission query
// answers, which the series over time ends at.
func TestIndexRewards(t *testing.T) {
	m := markettest.Start(t, markettest.RewardsOptions())
	path := markettest.TempIndex(t)
	db, stop := markettest.StartIndexer(t, path, m.C)
	h := m.Rewards(func() {
		markettest.WaitIndexed(t, db, m.Height())
		stop() // the rest is indexed catching up, from the figures written so far
	})
	db, stop = markettest.StartIndexer(t, path, m.C)
	defer stop()
	ctx := context.Background()

	// Nothing mints or burns after the script (no attestation, no payment): the ledger's figures stand still.
	em, err := m.C.Emission(ctx)
	if err != nil || !em.On || em.Minted == 0 || em.Burned == 0 {
		t.Fatalf("emission %+v (%v)", em, err)
	}
	ledger, err := m.C.RewardEpochs(ctx, int(min(em.NextEpoch, client.MaxRewardEpochs)))
	if err != nil || uint64(len(ledger)) != em.NextEpoch {
		t.Fatalf("%d epochs from the ledger, %d tallied (%v)", len(ledger), em.NextEpoch, err)
	}
	markettest.WaitIndexed(t, db, m.Height())
	if again, _ := m.C.Emission(ctx); again.Minted != em.Minted || again.Burned != em.Burned || again.Unclaimed != em.Unclaimed {
		t.Fatalf("the ledger minted or burned after the script: %+v, then %+v", em, again)
	}

	// Every epoch tallied, as its tally's block records it.
	epochs := map[uint64]index.RewardEpoch{}
	for off := 0; ; off += index.MaxLimit {
		l, err := db.RewardEpochs(ctx, index.Page{Offset: off, Limit: index.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Items {
			epochs[e.Epoch] = e
		}
		if len(l.Items) < index.MaxLimit {
			break
		}
	}
	if len(epochs) < len(ledger) {
		t.Fatalf("%d epochs indexed, %d tallied on the ledger", len(epochs), len(ledger))
	}
	type key struct {
		addr  string
		epoch uint64
	}
	want := map[key]api.EpochReward{}
	auditors := map[string]uint64{}
	for _, er := range ledger {
		got, ok := epochs[er.Epoch]
		p := er.Pots
		if !ok || got.Height != er.Height || got.Emission != p.Emission || got.Minted != p.Minted() || got.Auditors != p.PaidAuditors ||
			got.Availability != p.PaidAvailability || got.Work != p.PaidWork || got.Burns != p.Burns || got.UtilisationPPM != p.UtilisationPPM ||
			got.WeightTotal != p.WeightTotal || got.Unminted != p.Emission-p.Minted() || got.AuditorsPaid != len(er.Auditors) || got.Emission == 0 {
			t.Errorf("epoch %d: index %+v, ledger %+v at %d", er.Epoch, got, p, er.Height)
		}
		judged, earning, worked := 0, 0, 0
		for a, r := range er.Providers {
			want[key{a.String(), er.Epoch}] = *r
			if r.Why != api.RewardNone {
				judged++
			}
			if r.Availability > 0 {
				earning++
			}
			if r.Burned > 0 {
				worked++
			}
		}
		if got.Judged != judged || got.Earning != earning || got.Worked != worked {
			t.Errorf("epoch %d: %d judged, %d earning, %d worked; the ledger's events say %d, %d, %d", er.Epoch, got.Judged, got.Earning,
				got.Worked, judged, earning, worked)
		}
		for a, amount := range er.Auditors {
			auditors[a.String()] += amount
		}
	}

	// Every provider's rewards by epoch, and why, as the ledger's events say; the reasons as the script made them.
	f := h.First
	why := map[string]map[uint64]api.RewardWhy{
		"g1": {f: api.RewardNoProof, f + 1: api.RewardNoProof, f + 2: api.RewardEarned, f + 3: api.RewardEarned, f + 4: api.RewardEarned, f + 5: api.RewardEarned},
		"g2": {f: api.RewardNoProof, f + 1: api.RewardNoProof, f + 2: api.RewardEarned, f + 3: api.RewardNotUp, f + 4: api.RewardEarned, f + 5: api.RewardStakeShort},
		"g3": {f: api.RewardNoProof, f + 1: api.RewardNoProof, f + 2: api.RewardEarned, f + 3: api.RewardEarned, f + 4: api.RewardJailed},
	}
	lease, err := m.C.Lease(ctx, h.Lease)
	if err != nil || lease.Burned == 0 {
		t.Fatalf("g1's lease %+v (%v)", lease, err)
	}
	for _, name := range []string{"g1", "g2", "g3"} {
		addr := m.Addr(name)
		rows, err := db.ProviderRewards(ctx, addr, index.Page{Limit: index.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		for _, r := range rows.Items {
			w, ok := want[key{addr, r.Epoch}]
			if r.Forfeited > 0 && !r.Judged && !r.Worked {
				t.Errorf("%s forfeited in epoch %d, which judged it not", name, r.Epoch)
			}
			if !ok {
				t.Errorf("%s epoch %d: indexed %+v, the ledger's events name it not", name, r.Epoch, r)
				continue
			}
			seen++
			if r.Judged != (w.Why != api.RewardNone) || r.Availability != w.Availability || r.Weight != w.Weight || (r.Judged && r.Why != w.Why.String()) ||
				r.Worked != (w.Burned > 0) || r.Work != w.Work || r.Burned != w.Burned || r.Cap != w.Cap || r.Explain == "" {
				t.Errorf("%s epoch %d: index %+v, ledger %+v", name, r.Epoch, r, w)
			}
			if wantWhy, ok := why[name][r.Epoch]; !ok || r.Why != wantWhy.String() || !strings.HasPrefix(r.Explain, wantWhy.Explain()) {
				t.Errorf("%s epoch %d: why %s (%s), want %s", name, r.Epoch, r.Why, r.Explain, wantWhy)
			}
			if earnsNow := r.Why == "earned" || r.Why == "stake_short"; earnsNow != (r.Availability > 0) {
				t.Errorf("%s epoch %d: %d for availability with the reason %s", name, r.Epoch, r.Availability, r.Why)
			}
			switch {
			case name == "g1" && r.Epoch == h.WorkEpoch:
				if !r.Worked || r.Burned != lease.Burned || r.Cap != lease.Burned*api.DefaultParams().WorkRewardCapPPM/tx.PPM || r.Work == 0 || r.Work > r.Cap {
					t.Errorf("g1's work in epoch %d: %+v, its lease burned %d", r.Epoch, r, lease.Burned)
				}
			case r.Worked:
				t.Errorf("%s worked in epoch %d: %+v", name, r.Epoch, r)
			case name == "g3" && r.Epoch == h.First+3:
				if r.Forfeited == 0 {
					t.Errorf("g3 forfeited nothing in epoch %d: %+v", r.Epoch, r)
				}
			case r.Forfeited > 0:
				t.Errorf("%s forfeited in epoch %d: %+v", name, r.Epoch, r)
			}
		}
		for k := range want {
			if k.addr == addr {
				seen--
			}
		}
		if seen != 0 || rows.Total != len(rows.Items) {
			t.Errorf("%s: %d epochs indexed, not the ledger's %d", name, len(rows.Items), len(rows.Items)-seen)
		}

		// Its totals are the ledger's.
		rv, err := m.C.Rewards(ctx, m.Net.Keys[name].Address())
		if err != nil {
			t.Fatal(err)
		}
		tot, err := db.Rewards(ctx, addr)
		if err != nil || !tot.Provider || tot.ProviderEarned() != rv.Earned || tot.Owed != rv.Owed || tot.LastWhy != rv.Why.String() ||
			tot.LastEpoch != rv.LastEpoch || tot.Earned != tot.Availability+tot.Work+tot.Auditor || rv.Earned == 0 || tot.Epochs != len(why[name]) {
			t.Errorf("%s: index %+v, ledger %+v (%v)", name, tot, rv, err)
		}
		switch name {
		case "g1":
			if tot.Claimed != h.Claimed || tot.Claims != 1 || tot.Work == 0 || tot.EarningEpochs != 4 {
				t.Errorf("g1's claim and work: %+v, claimed %d", tot, h.Claimed)
			}
		case "g3":
			if tot.Forfeited == 0 || tot.Owed != 0 || tot.Claimed != 0 || tot.EarningEpochs != 2 {
				t.Errorf("g3's forfeit: %+v", tot)
			}
		}
	}
	aud := m.Addr("aud")
	if tot, err := db.Rewards(ctx, aud); err != nil || tot.Auditor != auditors[aud] || tot.Auditor == 0 || tot.Earned != tot.Auditor || tot.Provider {
		t.Errorf("the auditor: %+v, the ledger paid it %d (%v)", tot, auditors[aud], err)
	}
	if tot, err := db.Rewards(ctx, m.Addr("tenant")); err != nil || tot.Earned != 0 || tot.Address != m.Addr("tenant") {
		t.Errorf("the tenant: %+v (%v)", tot, err)
	}

	// The top earners: everyone paid, who earned most first.
	top, err := db.TopEarners(ctx, index.Page{})
	if err != nil || top.Total != 4 || len(top.Items) != 4 {
		t.Fatalf("top earners %+v (%v)", top, err)
	}
	for i, e := range top.Items {
		if i > 0 && e.Earned > top.Items[i-1].Earned || e.Earned != e.Availability+e.Work+e.Auditor {
			t.Errorf("top earner %d: %+v", i, e)
		}
	}

	// What was minted and burned in all, as the emission query answers; the series ends there.
	ov, err := db.RewardsOverview(ctx)
	if err != nil || !ov.On || ov.Minted != em.Minted || ov.Burned != em.Burned || ov.Unclaimed != em.Unclaimed || ov.Epochs < len(ledger) ||
		ov.Last == nil || ov.Last.Epoch+1 < em.NextEpoch || ov.Earners != 4 || ov.Forfeited == 0 || ov.LeaseBurns != lease.Burned ||
		ov.Burned != ov.LeaseBurns+ov.Forfeited || ov.Claimed != h.Claimed || ov.Minted != ov.ToAuditors+ov.ToProviders ||
		ov.NetIssuance != int64(ov.Minted)-int64(ov.Burned) || ov.ToAuditors != auditors[aud] {
		t.Errorf("overview %+v (%v), emission %+v", ov, err, em)
	}
	hist, err := db.RewardHistory(ctx, 200)
	if err != nil || len(hist) < 2 {
		t.Fatalf("history %+v (%v)", hist, err)
	}
	for i, p := range hist[1:] {
		if q := hist[i]; p.Minted < q.Minted || p.Burned < q.Burned || p.Emission < q.Emission || p.TimeMs < q.TimeMs || p.Height <= q.Height {
			t.Errorf("history goes back at %d: %+v after %+v", i+1, p, q)
		}
	}
	if last := hist[len(hist)-1]; last.Minted != em.Minted || last.Burned != em.Burned || last.Claimed != h.Claimed || last.Emission < last.Minted {
		t.Errorf("the history ends at %+v; the ledger minted %d and burned %d", last, em.Minted, em.Burned)
	}
	pays, err := db.Payments(ctx, "", h.Lease, index.Page{})
	var burned uint64
	for _, p := range pays.Items {
		burned += p.Burned
	}
	if err != nil || burned != lease.Burned {
		t.Errorf("lease %d's payments burned %d, the lease %d (%v)", h.Lease, burned, lease.Burned, err)
	}
}
