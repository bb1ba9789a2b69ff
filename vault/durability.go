package vault

import "math"

// StripeLoss is the probability that a stripe of n = K+M shards on n distinct providers is lost within one repair
// window, when each provider loses its shard in that window independently with probability p: more than M of
// the n lost before repair restores them, P[X > n−k] for X ~ Binomial(n, p). docs/vault.md uses it to choose the
// codings; independence is what placement on distinct providers and regions buys (correlated losses, a region
// at once, are why placement spreads over regions).
func StripeLoss(k, n int, p float64) float64 {
	if k < 1 || n < k || p < 0 || p > 1 {
		return math.NaN()
	}
	if p == 0 {
		return 0
	}
	if p == 1 {
		return 1
	}
	lp, lq := math.Log(p), math.Log1p(-p)
	var sum float64
	for j := n - k + 1; j <= n; j++ {
		sum += math.Exp(lchoose(n, j) + float64(j)*lp + float64(n-j)*lq)
	}
	return min(sum, 1)
}

func lchoose(n, j int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(j + 1))
	c, _ := math.Lgamma(float64(n - j + 1))
	return a - b - c
}

// ObjectLoss is the probability that an object of stripes stripes loses any of them in one repair window.
func ObjectLoss(k, n, stripes int, p float64) float64 {
	s := StripeLoss(k, n, p)
	return -math.Expm1(float64(stripes) * math.Log1p(-s))
}

// Codings: the network's default and spare dev's.
var (
	// DefaultCoding is 10 of 30: any 10 shards of a stripe rebuild it, 3× the bytes stored. With one provider
	// in ten losing its shard within a repair window (far worse than observed on Storj or Sia), a stripe is lost
	// with probability below 1e-11 per window (TestCodingsMeetTheirTarget; docs/vault.md has the table).
	DefaultCoding = Coding{K: 10, M: 20, ShardSize: 64 << 20}
	// DevCoding fits spare dev's handful of providers: 2 of 4, leaving providers to repair onto.
	DevCoding = Coding{K: 2, M: 2, ShardSize: 4 << 20}
)
