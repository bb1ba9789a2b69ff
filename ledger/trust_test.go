package ledger

import (
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

func (c *chain) epoch(e *uint64) api.EpochView {
	var v api.EpochView
	c.query(api.QueryEpoch, api.EpochRequest{Epoch: e}, &v)
	return v
}

func (c *chain) provider(name string) api.ProviderView {
	var p api.ProviderView
	c.query(api.QueryProvider, api.AddressRequest{Address: c.addr(name)}, &p)
	return p
}

// nextEpoch commits empty blocks until a new epoch has started, and returns its view.
func (c *chain) nextEpoch() api.EpochView {
	start := c.epoch(nil).Current
	for c.epoch(nil).Current == start {
		c.block(time.Second)
	}
	return c.epoch(nil)
}

// bitmap sets the bits of the providers named up, over an epoch's audit set.
func (c *chain) bitmap(v api.EpochView, up ...string) []byte {
	b := make([]byte, (len(v.Providers)+7)/8)
	for i, a := range v.Providers {
		for _, name := range up {
			if c.addr(name) == a {
				b[i/8] |= 1 << (i % 8)
			}
		}
	}
	return b
}

func (c *chain) results(txs ...[]byte) []uint32 {
	res := c.block(time.Second, txs...)
	var codes []uint32
	for _, r := range res.TxResults {
		codes = append(codes, r.Code)
	}
	return codes
}

// TestLivenessVerdicts: two thirds of the auditor weight decide; a down provider holding a lease has it closed
// (billed up to the down epoch's start, the rest refunded) and its stake slashed, bonded first then unbonding;
// a streak of down epochs jails it until Unjail after the cooldown; one auditor alone decides nothing.
func TestLivenessVerdicts(t *testing.T) {
	const spr = api.USPR
	params := testParams()
	params.EpochBlocks, params.SlashDowntimePPM, params.JailAfterDownEpochs, params.UnjailCooldownSec = 12, 500_000, 2, 30
	c := newChainWith(t, params, map[string]uint64{"tenant": 1000 * spr, "p1": 2000 * spr, "p2": 2000 * spr,
		"a1": spr, "a2": spr, "a3": spr, "nobody": spr}, map[string]uint64{"a1": 1, "a2": 1, "a3": 1})
	c.registerBonded("p1")
	c.registerBonded("p2")
	stake := c.provider("p1").Stake
	c.do("tenant", gpuOrder(3*spr, 6*spr, 7200))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})

	e := c.nextEpoch()
	if len(e.Providers) != 2 {
		t.Fatalf("audit set %+v", e)
	}
	epochStart := c.now // the epoch's first block
	startedMs := c.lease(1).StartedMs
	// p1 moves most of its stake to unbonding: still slashable.
	c.do("p1", &tx.Unbond{Amount: stake * 9 / 10})

	// Rejections: not an auditor, a bitmap of the wrong size, bits past the set, a second attestation.
	if got := c.results(c.sign("nobody", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e)})); got[0] != uint32(tx.CodeNotAuditor) {
		t.Fatalf("non-auditor: %v", got)
	}
	if got := c.results(c.sign("a1", &tx.Attest{Epoch: e.Epoch, Up: []byte{0, 0}})); got[0] != uint32(tx.CodeBadEpoch) {
		t.Fatalf("bitmap size: %v", got)
	}
	if got := c.results(c.sign("a1", &tx.Attest{Epoch: e.Epoch, Up: []byte{0x80}})); got[0] != uint32(tx.CodeBadEpoch) {
		t.Fatalf("bits past the set: %v", got)
	}
	// a1 and a2 (2/3 of the weight) find p1 down; all three find p2 up.
	if got := c.results(c.sign("a1", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, "p2")}), c.sign("a2", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, "p2")}),
		c.sign("a3", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, "p1", "p2")})); got[0]+got[1]+got[2] != 0 {
		t.Fatalf("attestations: %v", got)
	}
	if got := c.results(c.sign("a1", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, "p2")})); got[0] != uint32(tx.CodeDuplicateAttest) {
		t.Fatalf("duplicate: %v", got)
	}
	if v := c.epoch(&e.Epoch); len(v.Attested) != 3 || v.Tallied {
		t.Fatalf("epoch view %+v", v)
	}
	tenantBefore := c.balance("tenant")
	c.nextEpoch() // nothing yet: the tally comes at the end of the next epoch
	if c.provider("p1").EpochsDown != 0 {
		t.Fatal("tallied too early")
	}
	for c.epoch(&e.Epoch).Tallied == false {
		c.block(time.Second)
	}
	p1, p2 := c.provider("p1"), c.provider("p2")
	if p1.EpochsDown != 1 || p1.DownStreak != 1 || p2.EpochsUp != 1 || p2.EpochsDown != 0 {
		t.Fatalf("verdicts: p1 %+v, p2 %+v", p1, p2)
	}
	l := c.lease(1)
	wantPaid := 2 * spr * (uint64(epochStart.UnixMilli()) - startedMs) / 3_600_000
	if l.State != api.LeaseClosed || l.Paid != wantPaid || l.Refunded != 6*spr-wantPaid || c.balance("tenant") != tenantBefore+l.Refunded {
		t.Fatalf("lease after the down verdict: %+v (want paid %d)", l.Lease, wantPaid)
	}
	// Slashed half of bonded + unbonding: the bonded tenth first, the rest from unbonding.
	if want := stake / 2; p1.Slashed != want || p1.Stake != 0 || p1.Unbonding != stake-want || p1.Failed != 1 {
		t.Fatalf("slash: %+v, want slashed %d", p1.Provider, want)
	}
	if s := c.supply(); s.Pool < stake/2 {
		t.Fatalf("pool %d after slashing %d", s.Pool, stake/2)
	}

	// p1 rebonds; the next epoch finds it down again, the second in a row: jailed (no lease held: no slash).
	// Only a1 speaks for p2 being down: one third of the weight decides nothing.
	c.do("p1", &tx.Bond{Amount: stake})
	e = c.nextEpoch()
	if len(e.Providers) != 2 {
		t.Fatalf("audit set: %+v", e)
	}
	c.results(c.sign("a1", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e)}), c.sign("a2", &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, "p2")}))
	for !c.epoch(&e.Epoch).Tallied {
		c.block(time.Second)
	}
	p1 = c.provider("p1")
	if p1.Status != api.ProviderJailed || p1.DownStreak != 2 || p1.Slashed != stake/2 || p1.JailedUntilMs == 0 {
		t.Fatalf("after a down streak: %+v", p1.Provider)
	}
	if c.provider("p2").EpochsUp != 1 {
		t.Fatalf("p2 judged without two thirds: %+v", c.provider("p2").Provider)
	}
	c.do("tenant", gpuOrder(3*spr, 6*spr, 7200))
	c.fail(tx.CodeProviderJailed, "p1", &tx.PlaceBid{OrderID: 2, Price: spr})
	if e := c.nextEpoch(); len(e.Providers) != 1 {
		t.Fatalf("a jailed provider is audited: %+v", e)
	}
	if got := c.results(c.sign("p1", &tx.Unjail{})); got[0] != uint32(tx.CodeJailCooldown) {
		t.Fatalf("early unjail: %v", got)
	}
	c.block(31 * time.Second)
	c.do("p1", &tx.Unjail{})
	if p := c.provider("p1"); p.Status != api.ProviderActive || p.DownStreak != 0 {
		t.Fatalf("after unjail: %+v", p.Provider)
	}
	if got := c.results(c.sign("p2", &tx.Unjail{})); got[0] != uint32(tx.CodeNotJailed) {
		t.Fatalf("unjail when not jailed: %v", got)
	}
	// An epoch long past is closed to attestations.
	if got := c.results(c.sign("a3", &tx.Attest{Epoch: 0, Up: nil})); got[0] != uint32(tx.CodeBadEpoch) {
		t.Fatalf("old epoch: %v", got)
	}
	if rep := c.provider("p2").ReputationPPM; rep == 0 {
		t.Fatal("reputation")
	}
}

// TestProofOfGPUVerdicts: two thirds of the weight passing a provider verify it (class and median throughput
// recorded); two thirds failing it slash and jail it; one auditor alone decides nothing.
func TestProofOfGPUVerdicts(t *testing.T) {
	const spr = api.USPR
	params := testParams()
	params.EpochBlocks, params.SlashProofPPM = 12, 50_000
	c := newChainWith(t, params, map[string]uint64{"p1": 2000 * spr, "p2": 2000 * spr, "p3": 2000 * spr,
		"a1": spr, "a2": spr, "a3": spr}, map[string]uint64{"a1": 1, "a2": 1, "a3": 1})
	for _, p := range []string{"p1", "p2", "p3"} {
		c.registerBonded(p)
	}
	stake := c.provider("p2").Stake
	e := c.nextEpoch()
	hw := func(aud, prov string, passed bool, ops uint64) []byte {
		return c.sign(aud, &tx.AttestHardware{Epoch: e.Epoch, Provider: c.addr(prov), Passed: passed, Class: "h100-pcie", OpsPerSec: ops})
	}
	codes := c.results(hw("a1", "p1", true, 9e14), hw("a2", "p1", true, 7e14), hw("a3", "p1", false, 0),
		hw("a1", "p2", false, 0), hw("a2", "p2", false, 0), hw("a3", "p3", false, 0))
	for i, code := range codes {
		if code != 0 {
			t.Fatalf("attestation %d: code %d", i, code)
		}
	}
	if got := c.results(hw("a1", "p1", true, 1)); got[0] != uint32(tx.CodeDuplicateAttest) {
		t.Fatalf("duplicate: %v", got)
	}
	if got := c.results(c.sign("p3", &tx.AttestHardware{Epoch: e.Epoch, Provider: c.addr("p1"), Passed: true, Class: "cpu"})); got[0] != uint32(tx.CodeNotAuditor) {
		t.Fatalf("non-auditor: %v", got)
	}
	for !c.epoch(&e.Epoch).Tallied {
		c.block(time.Second)
	}
	p1, p2, p3 := c.provider("p1"), c.provider("p2"), c.provider("p3")
	if !p1.Verified || p1.VerifiedClass != "h100-pcie" || p1.VerifiedOps != 9e14 || p1.Status != api.ProviderActive {
		t.Fatalf("passing provider: %+v", p1.Provider)
	}
	if p2.Verified || p2.Status != api.ProviderJailed || p2.Slashed != stake/20 || p2.Stake != stake-stake/20 {
		t.Fatalf("failing provider: %+v", p2.Provider)
	}
	// Slashing lowers reputation by the share of stake lost: 0.5 (no leases yet) × 95%.
	if p2.ReputationPPM != 475_000 || p3.ReputationPPM != 500_000 {
		t.Fatalf("reputation after a failed proof %d, untouched %d", p2.ReputationPPM, p3.ReputationPPM)
	}
	if p3.Verified || p3.Status != api.ProviderActive || p3.Slashed != 0 {
		t.Fatalf("one auditor decided: %+v", p3.Provider)
	}
	// A new declaration must be proven again.
	c.do("p1", &tx.UpdateProvider{ProviderInfo: providerInfo("p1")})
	if p := c.provider("p1"); p.Verified || p.VerifiedClass != "" {
		t.Fatalf("after UpdateProvider: %+v", p.Provider)
	}
}

// TestFourAuditorsQuorum: in a set of four equal auditors, one or two calling a provider down (or failing its
// proof) slash no one; three do.
func TestFourAuditorsQuorum(t *testing.T) {
	const spr = api.USPR
	params := testParams()
	params.EpochBlocks, params.SlashDowntimePPM, params.SlashProofPPM = 12, 100_000, 50_000
	c := newChainWith(t, params, map[string]uint64{"tenant": 1000 * spr, "p1": 2000 * spr, "a1": spr, "a2": spr, "a3": spr, "a4": spr},
		map[string]uint64{"a1": 1, "a2": 1, "a3": 1, "a4": 1})
	c.registerBonded("p1")
	c.do("tenant", gpuOrder(3*spr, 6*spr, 7200))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	stake := c.provider("p1").Stake
	round := func(down int) api.ProviderView {
		e := c.nextEpoch()
		var txs [][]byte
		for i, a := range []string{"a1", "a2", "a3", "a4"} {
			up := c.bitmap(e, "p1")
			if i < down {
				up = c.bitmap(e)
				txs = append(txs, c.sign(a, &tx.AttestHardware{Epoch: e.Epoch, Provider: c.addr("p1"), Passed: false, Class: "h100-pcie"}))
			}
			txs = append(txs, c.sign(a, &tx.Attest{Epoch: e.Epoch, Up: up}))
		}
		for i, code := range c.results(txs...) {
			if code != 0 {
				t.Fatalf("tx %d: code %d", i, code)
			}
		}
		for !c.epoch(&e.Epoch).Tallied {
			c.block(time.Second)
		}
		return c.provider("p1")
	}
	for _, down := range []int{1, 2} {
		if p := round(down); p.Slashed != 0 || p.EpochsDown != 0 || p.Status != api.ProviderActive || c.lease(1).State != api.LeaseActive {
			t.Fatalf("%d of 4 auditors changed something: %+v", down, p.Provider)
		}
	}
	p := round(3)
	want := stake / 10 // down while holding a lease, 10%
	want += (stake - want) / 20
	if p.EpochsDown != 1 || p.Slashed != want || p.Status != api.ProviderJailed || c.lease(1).State != api.LeaseClosed {
		t.Fatalf("3 of 4 auditors: %+v (want slashed %d)", p.Provider, want)
	}
}
