package audit

import (
	"testing"

	"github.com/sparenet/spare/ledger/api"
)

// TestProofGoingStale: a verified provider whose last passed proof is older than half the reward window at an
// epoch's start is challenged by every auditor in that epoch; not before, not without rewards, not unverified.
func TestProofGoingStale(t *testing.T) {
	on := api.DefaultParams()
	on.EpochBlocks, on.RewardProofEpochs = 10, 100 // a 1,000-block window: stale past 500 blocks
	off := on
	off.EmissionFirstEpoch = 0
	for _, tc := range []struct {
		name     string
		params   api.Params
		verified bool
		height   int64
		epoch    uint64
		want     bool
	}{
		{"fresh", on, true, 100, 50, false},                 // epoch 50 starts at 501: 401 blocks old
		{"half the window exactly", on, true, 1, 50, false}, // 500 blocks
		{"past half the window", on, true, 1, 51, true},     // 510 blocks
		{"far past the window", on, true, 1, 10_000, true},
		{"not verified", on, false, 1, 10_000, false},
		{"rewards off", off, true, 1, 10_000, false},
		{"verified in the future (a node behind)", on, true, 900, 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := api.Provider{Verified: tc.verified, VerifiedHeight: tc.height}
			if got := proofGoingStale(&tc.params, p, tc.epoch); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
