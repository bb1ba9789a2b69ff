package ledger

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/settle"
	"github.com/sparenet/spare/ledger/tx"
)

// TestReputationCostsWhatItClaims plays finding 6 of issue 12. A provider with a Sybil tenant used to raise its
// record from 500,000 to over 940,000 ppm with 64 one-minute leases for a few thousand uspr: the record counted
// leases. It now weighs them by value: the same 64 leases barely move it, and reaching 900,000 ppm takes
// P(2r−1)/(1−r) = 800 SPR paid for completed work (P = 100 SPR). Renting to itself, the pair then loses exactly
// the take on those 800 SPR plus the fees — 16 SPR at the default 2%, the figure docs/ledger.md gives.
func TestReputationCostsWhatItClaims(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"sybil": 10_000 * api.USPR, "farmer": 10_000 * api.USPR})
	c.registerBonded("farmer")
	p := c.app.params()
	lease := func(price, deposit uint64, run time.Duration) {
		o := gpuOrder(price, deposit, uint64(run/time.Second))
		c.do("sybil", o)
		id := c.lastOrderID()
		c.do("farmer", &tx.PlaceBid{OrderID: id, Price: price})
		c.block(time.Second) // the auction closes
		var l api.LeaseView
		for lid := uint64(1); ; lid++ {
			if l = c.lease(lid); l.OrderID == id {
				break
			}
		}
		c.do("farmer", &tx.LeaseStarted{ID: l.ID})
		c.now = c.now.Add(run)
		l = c.lease(l.ID)
		rc := tx.Receipt{ChainID: testChain, LeaseID: l.ID, ManifestHash: o.ManifestHash, StartMs: l.StartedMs, EndMs: uint64(c.now.UnixMilli())}
		rc.Signature = ed25519.Sign(c.keys["farmer"].priv, rc.SignBytes())
		c.do("farmer", &tx.CompleteLease{Receipt: rc})
	}
	// The old farm: 64 short, cheap leases.
	for i := 0; i < 64; i++ {
		lease(60_000, 1_000, time.Minute) // 1,000 uspr each
	}
	if rep := c.provider("farmer").ReputationPPM; rep > 500_400 {
		t.Fatalf("64 leases worth 64,000 uspr raised the record to %d ppm", rep)
	}
	// What the docs say 900,000 ppm costs: 800 SPR of completed work.
	before := c.balance("sybil") + c.balance("farmer")
	fees0 := 4 * p.MinFee // order, bid, start, complete
	lease(800*api.USPR, 800*api.USPR, time.Hour)
	pv := c.provider("farmer")
	if pv.ReputationPPM < 900_000 || pv.ReputationPPM > 900_010 { // the 64,000 uspr before add 6 ppm
		t.Fatalf("after 800 SPR of completed work: %d ppm (earned %d)", pv.ReputationPPM, pv.EarnedValue)
	}
	take := settle.TakeOf(800*api.USPR, p.TakeRatePPM)
	if lost := before - c.balance("sybil") - c.balance("farmer"); lost != take+fees0 || take != 16*api.USPR {
		t.Fatalf("the Sybil pair lost %d uspr, want the take %d + fees %d", lost, take, fees0)
	}
}
