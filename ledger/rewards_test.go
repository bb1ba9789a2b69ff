package ledger

import (
	"slices"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// rewardParams are testParams with rewards on and an emission that does not decay (K = 2^40: 1/K of the rate in
// nano-uspr rounds to nothing), so that every epoch's emission is exactly 1.2 SPR: 120,000 uspr to auditors,
// up to 600,000 to availability, the rest to work, capped at half the burns (10% of each payment).
func rewardParams() api.Params {
	p := testParams()
	p.EpochBlocks = 20
	p.BurnPPM, p.EmissionFirstEpoch, p.EmissionTimeConstantEpochs, p.EmissionCap = 100_000, 1_200_000, api.MaxEmissionTimeConstant, 1<<62
	p.AuditorSharePPM, p.AvailabilitySharePPM, p.WorkRewardCapPPM, p.RewardProofEpochs = 100_000, 500_000, 500_000, 10
	return p
}

// rewardLog collects the tally's reward events by kind, epoch and address.
type rewardLog map[string]uint64

func (l rewardLog) record(res *abci.ResponseFinalizeBlock) {
	for _, e := range res.Events {
		m := map[string]string{}
		for _, a := range e.Attributes {
			m[a.Key] = a.Value
		}
		switch e.Type {
		case api.EventProviderRewarded:
			l[e.Type+"/"+m[api.AttrEpoch]+"/"+m[api.AttrProvider]+"/"+m[api.AttrWhy]] += mustUint(m[api.AttrAvailability])
		case api.EventWorkRewarded:
			l[e.Type+"/"+m[api.AttrEpoch]+"/"+m[api.AttrProvider]] += mustUint(m[api.AttrWork])
		case api.EventAuditorRewarded:
			l[e.Type+"/"+m[api.AttrEpoch]+"/"+m[api.AttrAuditor]] += mustUint(m[api.AttrAmount])
		case api.EventRewardsForfeited:
			l[e.Type+"/"+m[api.AttrEpoch]+"/"+m[api.AttrProvider]] += mustUint(m[api.AttrAmount])
		}
	}
}

func mustUint(s string) uint64 {
	var v uint64
	for _, ch := range s {
		v = v*10 + uint64(ch-'0')
	}
	return v
}

// TestRewardsExactAmounts plays a table of epochs — who the auditors found up, who proved what, which leases
// completed and burned what, a lease holding a GPU at the tally — and checks every reward to the uspr, worked out
// by hand from docs/economics.md's rules:
//
//   - weights: p1 proved 2·10^12 int8 ops/s (2,000,000 Mops), p2 and p3 10^12; × uptime (up+1)/(up+down+1); the
//     weights are the ones fixed at the epoch's first block;
//   - availability 600,000 × (1 − utilisation) split by weight over the whole audit set: a provider found down
//     leaves its part unminted; auditors 120,000 by weight × the share of the verdicts they agreed with; work the
//     rest, min(W·b/B, b/2).
func TestRewardsExactAmounts(t *testing.T) {
	const spr = api.USPR
	p := rewardParams()
	c := newChainWith(t, p, map[string]uint64{"tenant": 1000 * spr, "p1": 2000 * spr, "p2": 2000 * spr, "p3": 2000 * spr,
		"a1": 10 * spr, "a2": 10 * spr, "a3": 10 * spr}, map[string]uint64{"a1": 1, "a2": 1, "a3": 1})
	log := rewardLog{}
	c.onBlock = func(_ [][]byte, res *abci.ResponseFinalizeBlock) { log.record(res) }
	for _, name := range []string{"p1", "p2", "p3"} {
		c.registerBonded(name)
	}
	auditors := []string{"a1", "a2", "a3"}
	attest := func(e api.EpochView, bitmaps map[string][]string) {
		for _, a := range auditors {
			c.do(a, &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, bitmaps[a]...)})
		}
	}
	proof := func(e api.EpochView, prov string, passed bool, ops uint64) {
		for _, a := range auditors {
			c.do(a, &tx.AttestHardware{Epoch: e.Epoch, Provider: c.addr(prov), Passed: passed, Class: "h100-pcie", OpsPerSec: ops})
		}
	}
	tallied := func(e api.EpochView) {
		for !c.epoch(&e.Epoch).Tallied {
			c.block(time.Second)
		}
	}
	all := []string{"p1", "p2", "p3"}
	everyone := map[string][]string{"a1": all, "a2": all, "a3": all}

	// Epoch A: everyone up, everyone proves its hardware. The set was made before the proofs: no weights yet.
	a := c.nextEpoch()
	proof(a, "p1", true, 2_000_000_000_000)
	proof(a, "p2", true, 1_000_000_000_000)
	proof(a, "p3", true, 1_000_000_000_000)
	attest(a, everyone)
	tallied(a)
	for _, name := range all {
		if key := api.EventProviderRewarded + "/" + itoa(a.Epoch) + "/" + c.addr(name).String() + "/no_recent_proof"; log[key] != 0 {
			t.Fatalf("%s earned %d before its proof", name, log[key])
		}
		if pv := c.provider(name); !pv.Verified || pv.RewardWhy != api.RewardNoProof {
			t.Fatalf("%s after epoch A: verified %v, why %s", name, pv.Verified, pv.RewardWhy)
		}
	}

	type row struct {
		name   string
		play   func(e api.EpochView)
		avail  map[string]uint64 // provider -> availability reward ("why" in the key below)
		why    map[string]string
		work   map[string]uint64
		audits map[string]uint64
	}
	var leaseID uint64
	rows := []row{
		{name: "everyone up, no leases", play: func(e api.EpochView) { attest(e, everyone) },
			// weights 2,000,000 : 1,000,000 : 1,000,000 (one up epoch each, none down)
			avail:  map[string]uint64{"p1": 300_000, "p2": 150_000, "p3": 150_000},
			audits: map[string]uint64{"a1": 40_000, "a2": 40_000, "a3": 40_000}},
		{name: "p3 down, a3 dissenting; p1 completes a 5 s lease", play: func(e api.EpochView) {
			c.do("tenant", gpuOrder(testRunPrice, 10*spr, 5))
			leaseID++
			c.do("p1", &tx.PlaceBid{OrderID: leaseID, Price: testRunPrice})
			c.do("p1", &tx.LeaseStarted{ID: leaseID})
			for range 5 {
				c.block(time.Second)
			}
			c.completeWith("p1", leaseID, "out", 0)
			if l := c.lease(leaseID); l.Paid != 5_000 || l.Burned != 500 || l.Take != 100 {
				t.Fatalf("lease paid %d, burned %d, take %d: want 5000, 500, 100", l.Paid, l.Burned, l.Take)
			}
			attest(e, map[string][]string{"a1": {"p1", "p2"}, "a2": {"p1", "p2"}, "a3": all})
		},
			// p3's part (150,000) is not minted; a3 agreed with 2 of the 3 verdicts; work min(480,000, 500/2)
			avail:  map[string]uint64{"p1": 300_000, "p2": 150_000, "p3": 0},
			why:    map[string]string{"p3": "not_up"},
			work:   map[string]uint64{"p1": 250},
			audits: map[string]uint64{"a1": 40_000, "a2": 40_000, "a3": 26_666}},
		{name: "p2 fails proof of GPU; a lease holds 1 of 24 GPUs at the tally", play: func(e api.EpochView) {
			c.do("tenant", gpuOrder(testRunPrice, 100*spr, 3600))
			leaseID++
			c.do("p1", &tx.PlaceBid{OrderID: leaseID, Price: testRunPrice})
			c.do("p1", &tx.LeaseStarted{ID: leaseID})
			proof(e, "p2", false, 0)
			attest(e, everyone)
		},
			// weights 2,000,000 (3 up) : 1,000,000 : 750,000 (p3: 2 up, 1 down: 3/4), total 3,750,000; utilisation
			// 1/24 = 41,666 ppm: 600,000 × 958,334/10^6 = 575,000 (the 25,000 tapered off is not minted); p2's
			// 153,333 is credited, then forfeited with the 300,000 it was owed.
			avail:  map[string]uint64{"p1": 306_666, "p2": 153_333, "p3": 115_000},
			audits: map[string]uint64{"a1": 40_000, "a2": 40_000, "a3": 40_000}},
		{name: "p2 jailed: out of the set", play: func(e api.EpochView) {
			for _, prov := range e.Providers {
				if prov == c.addr("p2") {
					t.Fatal("a jailed provider is in the audit set")
				}
			}
			attest(e, map[string][]string{"a1": {"p1", "p3"}, "a2": {"p1", "p3"}, "a3": {"p1", "p3"}})
		},
			// weights 2,000,000 (4 up) : 800,000 (p3: 3 up, 1 down: 4/5), total 2,800,000; still 1 of 16 GPUs
			// leased: 600,000 × 937,500/10^6 = 562,500
			avail:  map[string]uint64{"p1": 401_785, "p3": 160_714},
			audits: map[string]uint64{"a1": 40_000, "a2": 40_000, "a3": 40_000}},
	}
	for _, r := range rows {
		e := c.nextEpoch()
		before := c.supply()
		r.play(e)
		tallied(e)
		ep := itoa(e.Epoch)
		var minted uint64
		for prov, want := range r.avail {
			why := "earned"
			if w, ok := r.why[prov]; ok {
				why = w
			}
			key := api.EventProviderRewarded + "/" + ep + "/" + c.addr(prov).String() + "/" + why
			if got, ok := log[key]; !ok || got != want {
				t.Errorf("%s: %s availability %d (%v), want %d (%s)", r.name, prov, got, ok, want, why)
			}
			minted += want
		}
		for prov, want := range r.work {
			if got := log[api.EventWorkRewarded+"/"+ep+"/"+c.addr(prov).String()]; got != want {
				t.Errorf("%s: %s work %d, want %d", r.name, prov, got, want)
			}
			minted += want
		}
		for aud, want := range r.audits {
			if got := log[api.EventAuditorRewarded+"/"+ep+"/"+c.addr(aud).String()]; got != want {
				t.Errorf("%s: auditor %s %d, want %d", r.name, aud, got, want)
			}
			minted += want
		}
		// The work pot is the emission less the auditors' and the whole availability share, whatever the
		// utilisation: the taper is not minted (given to work, a utilisation pump could move it to its own burns).
		var ev api.EmissionView
		c.query(api.QueryEmission, nil, &ev)
		if ev.LastPots == nil || ev.LastPots.Epoch != e.Epoch || ev.LastPots.Work != 480_000 || ev.LastPots.Auditors != 120_000 ||
			ev.LastPots.UtilisationPPM == 0 && ev.LastPots.Availability != 600_000 {
			t.Errorf("%s: pots %+v", r.name, ev.LastPots)
		}
		after := c.supply()
		if after.Minted-before.Minted != minted {
			t.Errorf("%s: minted %d, the rewards add up to %d", r.name, after.Minted-before.Minted, minted)
		}
	}
	// p2's proof failed: everything it was owed is forfeited (burned), and it earned nothing since.
	p2 := c.provider("p2")
	if p2.Status != api.ProviderJailed || p2.RewardsOwed != 0 || p2.RewardsEarned != 150_000+150_000+153_333 || p2.RewardWhy != api.RewardProofFailed {
		t.Fatalf("p2 after its failed proof: %+v", p2.Provider)
	}
	var forfeited uint64
	for k, v := range log {
		if strings.HasPrefix(k, api.EventRewardsForfeited+"/") {
			forfeited += v
		}
	}
	if forfeited != 453_333 {
		t.Fatalf("forfeited %d, want 453,333", forfeited)
	}
	c.fail(tx.CodeNothingToWithdraw, "p2", &tx.ClaimRewards{})

	// p1 claims what it is owed: its balance rises by exactly that, the supply's rewards fall by it.
	p1 := c.provider("p1")
	if want := uint64(300_000 + 300_000 + 250 + 306_666 + 401_785); p1.RewardsOwed != want || p1.RewardsEarned != want {
		t.Fatalf("p1 owed %d, earned %d: want %d", p1.RewardsOwed, p1.RewardsEarned, want)
	}
	var rv api.RewardsView
	c.query(api.QueryRewards, api.AddressRequest{Address: c.addr("p1")}, &rv)
	if rv.Owed != p1.RewardsOwed || rv.Why != api.RewardEarned || rv.WeightNow == 0 {
		t.Fatalf("rewards view: %+v", rv)
	}
	bal, s := c.balance("p1"), c.supply()
	fee := c.feeFor(&tx.ClaimRewards{})
	c.do("p1", &tx.ClaimRewards{})
	if got := c.balance("p1"); got != bal+p1.RewardsOwed-fee {
		t.Fatalf("p1 balance after claim %d, want %d", got, bal+p1.RewardsOwed-fee)
	}
	if got := c.supply(); got.Rewards != s.Rewards-p1.RewardsOwed {
		t.Fatalf("supply rewards %d after the claim, want %d", got.Rewards, s.Rewards-p1.RewardsOwed)
	}
	c.fail(tx.CodeNothingToWithdraw, "p1", &tx.ClaimRewards{})
	c.fail(tx.CodeNotProvider, "tenant", &tx.ClaimRewards{})

	var ev api.EmissionView
	c.query(api.QueryEmission, nil, &ev)
	if !ev.On || ev.Minted != c.supply().Minted || ev.Burned != c.supply().Burned || ev.NextEmission != 1_200_000 || ev.LastPots == nil {
		t.Fatalf("emission view: %+v (supply %+v)", ev, c.supply())
	}
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

// TestRewardParamsRefused: params under which a wash trade could profit, or the schedule is unbounded or
// meaningless, are refused at genesis with an error naming the condition.
func TestRewardParamsRefused(t *testing.T) {
	if err := api.DefaultParams().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if err := noRewards(api.DefaultParams()).Validate(); err != nil {
		t.Fatalf("rewards off: %v", err)
	}
	for _, tc := range []struct {
		name string
		set  func(p *api.Params)
		want string
	}{
		{"work reward as large as the burn: self-dealing breaks even", func(p *api.Params) { p.WorkRewardCapPPM = tx.PPM }, "wash trade"},
		{"work reward above the burn: self-dealing profits", func(p *api.Params) { p.WorkRewardCapPPM = 2 * tx.PPM }, "wash trade"},
		{"a work share with nothing burned", func(p *api.Params) { p.BurnPPM = 0 }, "burn_ppm 0"},
		{"a work share with no cap", func(p *api.Params) { p.WorkRewardCapPPM = 0 }, "work_reward_cap_ppm 0"},
		{"take and burn above the payment", func(p *api.Params) { p.BurnPPM = tx.PPM - p.TakeRatePPM + 1 }, "take_rate_ppm + burn_ppm"},
		{"shares above the emission", func(p *api.Params) { p.AuditorSharePPM, p.AvailabilitySharePPM = 500_001, 500_000 }, "the rest goes to work"},
		{"cap below the first epoch", func(p *api.Params) { p.EmissionCap = p.EmissionFirstEpoch - 1 }, "below emission_first_epoch"},
		{"a schedule that stops at the cap", func(p *api.Params) { p.EmissionCap = p.EmissionFirstEpoch * p.EmissionTimeConstantEpochs / 3 }, "halving in disguise"},
		{"no decay", func(p *api.Params) { p.EmissionTimeConstantEpochs = 0 }, "emission_time_constant_epochs 0"},
		{"an emission past 64 bits in nano-uspr", func(p *api.Params) { p.EmissionFirstEpoch, p.EmissionCap = api.MaxEmissionFirstEpoch+1, 1<<63 }, "emission_first_epoch"},
		{"rewards without auditing", func(p *api.Params) { p.EpochBlocks = 0 }, "epoch_blocks 0"},
		{"no proof window", func(p *api.Params) { p.RewardProofEpochs = 0 }, "reward_proof_epochs 0"},
		{"rewards off with a schedule left", func(p *api.Params) { p.EmissionFirstEpoch = 0 }, "emission_first_epoch is 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := api.DefaultParams()
			tc.set(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
			g := `{"params":` + mustJSON(p) + `}`
			if _, err := api.ParseGenesis([]byte(g)); err == nil {
				t.Fatal("genesis accepted")
			}
		})
	}
}

// TestEmissionScheduleAndCap: each epoch's emission is the last one's less 1/K, in nano-uspr (the decay of a small
// emission is not lost to rounding), and nothing is minted past the cap — checked at every height with the supply
// invariant (the harness runs CheckInvariants on every block), over enough epochs to reach the cap.
func TestEmissionScheduleAndCap(t *testing.T) {
	const spr = api.USPR
	p := rewardParams()
	p.EpochBlocks, p.EmissionFirstEpoch, p.EmissionTimeConstantEpochs, p.EmissionCap = 4, 1_000, 3, 1_600
	p.AuditorSharePPM, p.AvailabilitySharePPM = tx.PPM, 0 // all to auditors: every epoch its auditor attests mints its whole emission
	c := newChainWith(t, p, map[string]uint64{"a1": 10 * spr}, map[string]uint64{"a1": 1})
	// The schedule alone: 1000, 666.67, 444.44, 296.30, 197.53, ... (uspr, from nano-uspr)
	rate, want := uint64(1_000_000), []uint64{1_000, 666, 444, 296, 197}
	for i, w := range want {
		if rate/api.NanoPerUSPR != w {
			t.Fatalf("epoch %d: emission %d nano-uspr, want %d uspr", i, rate, w)
		}
		rate = api.NextEmission(rate, p.EmissionTimeConstantEpochs)
	}
	var pots []api.RewardPots
	c.onBlock = func(_ [][]byte, res *abci.ResponseFinalizeBlock) {
		for _, e := range res.Events {
			if e.Type == api.EventEpochRewarded {
				m := map[string]string{}
				for _, a := range e.Attributes {
					m[a.Key] = a.Value
				}
				r, err := api.ParseEpochRewarded(m)
				if err != nil {
					t.Fatal(err)
				}
				pots = append(pots, r)
			}
		}
		if s := c.supply(); s.Minted > p.EmissionCap {
			t.Fatalf("height %d: minted %d past the cap %d", c.height, s.Minted, p.EmissionCap)
		}
	}
	for len(pots) < 8 {
		e := c.nextEpoch()
		c.do("a1", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e)})
	}
	// Epoch 0 was not attested: nothing minted. Then 666, 444, 296 (1,406 in all), 194 (the cap), and 0.
	var minted uint64
	for _, r := range pots {
		minted += r.Minted()
		if r.Minted() > r.Emission || r.PaidAvailability != 0 || r.PaidWork != 0 {
			t.Fatalf("epoch %d: %+v", r.Epoch, r)
		}
	}
	if s := c.supply(); s.Minted != minted || minted > p.EmissionCap || minted < p.EmissionCap-pots[len(pots)-1].Emission {
		t.Fatalf("minted %d (supply %d), cap %d: %+v", minted, s.Minted, p.EmissionCap, pots)
	}
	got := []uint64{}
	for _, r := range pots[:6] {
		got = append(got, r.Minted())
	}
	if !slices.Equal(got, []uint64{0, 666, 444, 296, 194, 0}) || minted != p.EmissionCap {
		t.Fatalf("minted per epoch %v (%d in all), want 0, 666, 444, 296, 194, 0 (the cap, 1,600)", got, minted)
	}
}

// TestWashTradeLoses: a provider funds a tenant that rents the provider itself for several epochs, the lease
// completes and its burns earn work rewards. The pair ends with less — balance, stake and rewards owed together —
// than the same chain without the trade, whatever the emission: the work reward is at most half the burn, the
// take and fees are lost, and the lease's GPUs lower the availability share.
func TestWashTradeLoses(t *testing.T) {
	const spr = api.USPR
	wealth := func(trade bool, availability uint64) uint64 {
		p := rewardParams()
		p.AvailabilitySharePPM = availability
		// An emission far above any burn: pure pro-rata would pay the trade many times over.
		p.EmissionFirstEpoch, p.EmissionTimeConstantEpochs, p.EmissionCap = 1_000*spr, 1_000, 1<<62
		c := newChainWith(t, p, map[string]uint64{"p1": 2000 * spr, "sock": 0, "a1": 10 * spr}, map[string]uint64{"a1": 1})
		c.registerBonded("p1")
		e := c.nextEpoch()
		c.do("a1", &tx.AttestHardware{Epoch: e.Epoch, Provider: c.addr("p1"), Passed: true, Class: "h100-pcie", OpsPerSec: 1e12})
		c.do("a1", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, "p1")})
		if trade {
			c.do("p1", &tx.Send{To: c.addr("sock"), Amount: 200 * spr})
			c.do("sock", gpuOrder(testRunPrice, 150*spr, 3*20*2))
			c.do("p1", &tx.PlaceBid{OrderID: 1, Price: testRunPrice})
			c.do("p1", &tx.LeaseStarted{ID: 1})
		}
		for range 8 {
			e := c.nextEpoch()
			if trade && c.lease(1).State == api.LeaseActive && c.lease(1).StartedMs+120_000 <= uint64(c.now.UnixMilli()) {
				c.completeWith("p1", 1, "out", 0)
			}
			c.do("a1", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, "p1")})
		}
		for range 3 * int(p.EpochBlocks) {
			c.block(time.Second)
		}
		if trade && (c.lease(1).State != api.LeaseCompleted || c.lease(1).Burned == 0) {
			t.Fatalf("the wash lease: %+v", c.lease(1))
		}
		pv := c.provider("p1")
		if pv.RewardsEarned == 0 && (trade || availability > 0) {
			t.Fatal("p1 earned nothing: the test shows nothing")
		}
		return c.balance("p1") + c.balance("sock") + pv.Stake + pv.RewardsOwed
	}
	// With the default split, and with everything but the auditors' share paid for work (pure burn-and-mint, where
	// an uncapped pro-rata share would pay the trade 900 SPR an epoch).
	for _, availability := range []uint64{500_000, 0} {
		honest, washed := wealth(false, availability), wealth(true, availability)
		if washed >= honest {
			t.Fatalf("availability share %d ppm: the wash-trading pair ends with %d uspr, the honest provider alone %d: self-dealing paid", availability, washed, honest)
		}
		t.Logf("availability share %d ppm: the wash trade cost the pair %d uspr", availability, honest-washed)
	}
}
