package vault

import (
	"math"
	"testing"
)

func TestStripeLoss(t *testing.T) {
	for _, tc := range []struct {
		k, n int
		p    float64
		want float64
	}{
		{1, 1, 0.1, 0.1},                // one copy: lost with its provider
		{1, 2, 0.1, 0.01},               // two copies: both lost
		{2, 3, 0.1, 3*0.01*0.9 + 0.001}, // two or three of three
		{3, 3, 0.5, 1 - 0.125},          // any one of three
		{2, 4, 0, 0},
		{2, 4, 1, 1},
	} {
		if got := StripeLoss(tc.k, tc.n, tc.p); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("StripeLoss(%d, %d, %g) = %g, want %g", tc.k, tc.n, tc.p, got, tc.want)
		}
	}
	if !math.IsNaN(StripeLoss(3, 2, 0.1)) || !math.IsNaN(StripeLoss(1, 2, 1.5)) {
		t.Error("impossible codings give a number")
	}
	if got := ObjectLoss(1, 2, 2, 0.1); math.Abs(got-(1-0.99*0.99)) > 1e-12 {
		t.Errorf("ObjectLoss = %g", got)
	}
}

// TestCodingsMeetTheirTarget pins the figures DefaultCoding's comment and docs/vault.md claim.
func TestCodingsMeetTheirTarget(t *testing.T) {
	if p := StripeLoss(DefaultCoding.K, DefaultCoding.K+DefaultCoding.M, 0.1); p >= 1e-11 {
		t.Errorf("default coding loses a stripe with probability %g per window at p = 0.1", p)
	}
	// A 1 TiB object at the default coding (1,639 stripes of 640 MiB) stays below one in a hundred million.
	stripes := int((uint64(MaxObjectSize) + 10*DefaultCoding.ShardSize - 1) / (10 * DefaultCoding.ShardSize))
	if p := ObjectLoss(DefaultCoding.K, DefaultCoding.K+DefaultCoding.M, stripes, 0.1); p >= 1e-8 {
		t.Errorf("a 1 TiB object: %g", p)
	}
	for _, c := range []Coding{DefaultCoding, DevCoding} {
		if err := c.Validate(); err != nil {
			t.Error(err)
		}
	}
}
