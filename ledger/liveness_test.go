package ledger

import (
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// TestSlashedProviderStaysAuditedAndIsJailed (issue 14, finding 3): a provider slashed below its required stake
// can no longer bid, but it stays in the audit set, so the down epochs that follow keep its down streak counting
// and jail it. Before, the audit set held only fully staked providers: the streak froze at one and the jail rule
// never applied.
func TestSlashedProviderStaysAuditedAndIsJailed(t *testing.T) {
	const spr = api.USPR
	params := testParams()
	params.EpochBlocks, params.SlashDowntimePPM, params.JailAfterDownEpochs, params.UnjailCooldownSec = 12, 100_000, 3, 30
	c := newChainWith(t, params, map[string]uint64{"tenant": 1000 * spr, "p1": 2000 * spr, "p2": 2000 * spr,
		"a1": spr, "a2": spr, "a3": spr}, map[string]uint64{"a1": 1, "a2": 1, "a3": 1})
	c.registerBonded("p1")
	c.registerBonded("p2")
	c.do("tenant", gpuOrder(3*spr, 6*spr, 7200))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})

	// All three auditors find p1 down in every epoch; p2 up.
	downEpoch := func() api.EpochView {
		e := c.nextEpoch()
		for _, a := range []string{"a1", "a2", "a3"} {
			c.do(a, &tx.Attest{Epoch: e.Epoch, Up: c.bitmap(e, "p2")})
		}
		for !c.epoch(&e.Epoch).Tallied {
			c.block(time.Second)
		}
		return e
	}
	e := downEpoch()
	p1 := c.provider("p1")
	if p1.DownStreak != 1 || p1.Slashed == 0 || c.lease(1).State != api.LeaseClosed {
		t.Fatalf("after the first down epoch: %+v", p1.Provider)
	}
	if need := params.RequiredStake(providerInfo("p1").Hardware.GPUCount()); p1.Stake >= need {
		t.Fatalf("stake %d after the slash, need %d: the test needs p1 under its required stake", p1.Stake, need)
	}
	// Under its required stake p1 cannot bid...
	c.do("tenant", gpuOrder(3*spr, 6*spr, 7200))
	c.fail(tx.CodeInsufficientStake, "p1", &tx.PlaceBid{OrderID: 2, Price: spr})
	// ...but it is still audited, and the streak keeps counting until the jail.
	for streak := uint64(2); streak <= params.JailAfterDownEpochs; streak++ {
		e = downEpoch()
		found := false
		for _, a := range e.Providers {
			found = found || a == c.addr("p1")
		}
		if !found {
			t.Fatalf("epoch %d: a slashed provider left the audit set: %+v", e.Epoch, e)
		}
		if p := c.provider("p1"); p.DownStreak != streak {
			t.Fatalf("epoch %d: down streak %d, want %d", e.Epoch, p.DownStreak, streak)
		}
	}
	p1 = c.provider("p1")
	if p1.Status != api.ProviderJailed || p1.JailedUntilMs == 0 {
		t.Fatalf("after %d down epochs in a row: %+v", params.JailAfterDownEpochs, p1.Provider)
	}
	// Jailed: out of the audit set; no lease held after the first epoch, so no second slash.
	if e := c.nextEpoch(); len(e.Providers) != 1 || e.Providers[0] != c.addr("p2") {
		t.Fatalf("audit set with p1 jailed: %+v", e)
	}
	if p1.Slashed != c.provider("p1").Slashed {
		t.Fatal("slashed again while jailed")
	}
}

// TestAnnouncedRestartExcused (issue 14, finding 2): a provider that announces a restart is not judged down — no
// slash, no lease closed, no streak — for the announcing epoch and the next, even when every auditor found it
// down; past the grace it is judged as usual. A second announcement within RestartEveryEpochs is refused, so a
// provider that abuses announcements is still audited, slashed and jailed.
func TestAnnouncedRestartExcused(t *testing.T) {
	const spr = api.USPR
	params := testParams()
	params.EpochBlocks, params.SlashDowntimePPM, params.JailAfterDownEpochs, params.UnjailCooldownSec = 12, 100_000, 2, 30
	c := newChainWith(t, params, map[string]uint64{"tenant": 1000 * spr, "p1": 2000 * spr, "a1": spr, "a2": spr, "a3": spr},
		map[string]uint64{"a1": 1, "a2": 1, "a3": 1})
	c.registerBonded("p1")
	c.do("tenant", gpuOrder(3*spr, 6*spr, 7200))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: 2 * spr})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	// down has every auditor find p1 down in epoch e, in one block.
	down := func(e uint64) {
		t.Helper()
		v := c.epoch(&e)
		var txs [][]byte
		for _, a := range []string{"a1", "a2", "a3"} {
			txs = append(txs, c.sign(a, &tx.Attest{Epoch: e, Up: c.bitmap(v)}))
		}
		for i, code := range c.results(txs...) {
			if code != 0 {
				t.Fatalf("attestation %d for epoch %d: code %d", i, e, code)
			}
		}
	}
	tallied := func(e uint64) {
		for !c.epoch(&e).Tallied {
			c.block(time.Second)
		}
	}

	ann := c.nextEpoch().Epoch
	res := c.do("p1", &tx.AnnounceRestart{})
	if !hasEvent(res.Events, "provider.restart_announced") {
		t.Fatalf("no provider.restart_announced event: %+v", res.Events)
	}
	c.fail(tx.CodeRateLimited, "p1", &tx.AnnounceRestart{}) // once per RestartEveryEpochs
	// Down in the announcing epoch and in the next: excused.
	down(ann)
	c.nextEpoch()
	down(ann + 1)
	tallied(ann + 1)
	if p := c.provider("p1"); p.EpochsDown != 0 || p.DownStreak != 0 || p.Slashed != 0 || c.lease(1).State != api.LeaseActive {
		t.Fatalf("down within the grace of an announced restart: %+v, lease %s", p.Provider, c.lease(1).State)
	}
	// Past the grace: judged down (lease closed, slashed), then jailed; the abuser's second announcement is refused.
	cur := c.epoch(nil).Current
	if cur != ann+2 {
		t.Fatalf("current epoch %d, want %d", cur, ann+2)
	}
	c.fail(tx.CodeRateLimited, "p1", &tx.AnnounceRestart{})
	down(cur)
	c.nextEpoch()
	down(cur + 1)
	tallied(cur)
	if p := c.provider("p1"); p.EpochsDown != 1 || p.Slashed == 0 || c.lease(1).State != api.LeaseClosed {
		t.Fatalf("down past the grace: %+v, lease %s", p.Provider, c.lease(1).State)
	}
	tallied(cur + 1)
	if p := c.provider("p1"); p.Status != api.ProviderJailed || p.DownStreak != 2 {
		t.Fatalf("after two down epochs past the grace: %+v", p.Provider)
	}
	c.fail(tx.CodeProviderJailed, "p1", &tx.AnnounceRestart{})
	c.fail(tx.CodeNotProvider, "tenant", &tx.AnnounceRestart{})
}
