package proof

import (
	"fmt"
	"math"
	"time"
)

// Class is a kind of device a provider can claim, with the dense int8 throughput the deadline is set from.
type Class struct {
	ID     string
	Name   string
	TOPS   float64 // dense int8 tera-operations per second, a multiply-add counted as two
	MemGiB float64 // device memory, bounding n
	Source string  // where TOPS comes from
}

// Classes, slowest first. GPU figures are NVIDIA spec-sheet peaks for dense int8 tensor math (without
// structured sparsity), placeholders until measured figures replace them: real kernels reach a fraction of
// peak, and that fraction differs by card. The CPU row is not claimable; it is the floor the first GPU
// tier must beat, set high on purpose (an attacker's server, not a typical one).
var Classes = []Class{
	{ID: "cpu", Name: "CPU server (64 cores, AVX-512 VNNI)", TOPS: 50, MemGiB: 256,
		Source: "estimate: 64 cores × 2 ports × 64 int8 MACs × 2 ops × 3 GHz ≈ 49 TOPS; AMX CPUs exceed it and must be measured"},
	{ID: "rtx3090", Name: "NVIDIA GeForce RTX 3090", TOPS: 284, MemGiB: 24, Source: "spec: Ampere GA102 whitepaper, 284 dense int8 TOPS"},
	{ID: "a100", Name: "NVIDIA A100", TOPS: 624, MemGiB: 40, Source: "spec: A100 datasheet, 624 dense int8 TOPS"},
	{ID: "rtx4090", Name: "NVIDIA GeForce RTX 4090", TOPS: 660.6, MemGiB: 24, Source: "spec: Ada AD102 whitepaper, 660.6 dense int8 TOPS"},
	{ID: "l40s", Name: "NVIDIA L40S", TOPS: 733, MemGiB: 48, Source: "spec: L40S datasheet, 733 dense int8 TOPS"},
	{ID: "h100-pcie", Name: "NVIDIA H100 PCIe", TOPS: 1513, MemGiB: 80, Source: "spec: H100 datasheet, 1513 dense int8 TOPS"},
	{ID: "h100-sxm", Name: "NVIDIA H100 SXM", TOPS: 1979, MemGiB: 80, Source: "spec: H100 datasheet, 1979 dense int8 TOPS"},
}

// ClassByID finds a class in Classes.
func ClassByID(id string) (Class, bool) {
	for _, c := range Classes {
		if c.ID == id {
			return c, true
		}
	}
	return Class{}, false
}

// Policy turns a claimed class into challenge parameters. Compute times below are work / TOPS.
type Policy struct {
	Target       time.Duration // least compute time asked of the claimed class
	Comfort      float64       // most deadline-to-compute ratio granted (the claimed class finishes by 1/Comfort)
	PeerRatio    float64       // classes closer than this in throughput are peers, not told apart
	MaxFraction  float64       // most of the rows the class below may finish by the deadline
	FalsePass    float64       // chance that the class below, finishing that fraction, passes
	SlackBase    time.Duration // added to every deadline: network, solver wake-up, generating A and B
	SlackPerByte time.Duration // added per byte of C_k: moving it off the device and hashing it
	MinN, MaxN   int           // sizes tried: powers of two from MinN to MaxN
}

// DefaultPolicy: a claimed device computes for ≥ 0.5 s and gets up to 3× that plus slack; the class below
// passes with chance ≤ 0.1%.
func DefaultPolicy() Policy {
	return Policy{
		Target: 500 * time.Millisecond, Comfort: 3, PeerRatio: 1.6, MaxFraction: 0.9, FalsePass: 0.001,
		SlackBase: 250 * time.Millisecond, SlackPerByte: 2 * time.Nanosecond, MinN: 1024, MaxN: 16384,
	}
}

// Params is one challenge's sizing for a claimed class.
type Params struct {
	Class, Below string        // the claimed class and the fastest class that is not its peer
	N, K, Rows   int           // matrix side, steps, rows to open (s)
	Deadline     time.Duration // for the commitment, from the moment the seed is sent
	Expected     time.Duration // the claimed class's compute time
	BelowTime    time.Duration // the class below's compute time
	Fraction     float64       // of the rows the class below finishes by the deadline (f)
	VerifyOps    float64       // the verifier's work, 2·s·k·n²
}

// Challenge is the challenge these parameters describe for a seed.
func (p Params) Challenge(seed Seed) Challenge { return Challenge{Seed: seed, N: p.N, K: p.K} }

// Params sizes a challenge for a claimed class against the fastest class in table that is slower by at least
// PeerRatio (the class below). With r the ratio of their throughputs and g = min(Comfort, √r):
//
//	deadline = g·t_claimed + slack(n),  f = deadline / t_below
//
// so when r ≥ Comfort² the claimed class finishes in a Comfort-th of the deadline (slack aside); otherwise
// the deadline (slack aside) is the geometric mean of the two compute times, a factor √r from each. k is the least that meets Target and keeps f ≤ MaxFraction; n is the power of two that fits in
// half the device's memory (6n² bytes) and makes the verifier's work, 2·s·k·n², least.
func (pol Policy) Params(claimed Class, table []Class) (Params, error) {
	var below *Class
	for i, c := range table {
		if c.TOPS*pol.PeerRatio <= claimed.TOPS && (below == nil || c.TOPS > below.TOPS) {
			below = &table[i]
		}
	}
	if below == nil {
		return Params{}, fmt.Errorf("%w: no class below %q to tell it from", ErrParams, claimed.ID)
	}
	tc, tl := claimed.TOPS*1e12, below.TOPS*1e12
	r := tc / tl
	g := min(pol.Comfort, math.Sqrt(r))
	if g/r >= pol.MaxFraction {
		return Params{}, fmt.Errorf("%w: %q and %q are too close to separate", ErrParams, claimed.ID, below.ID)
	}
	var best Params
	for n := pol.MinN; n <= pol.MaxN && n <= MaxN; n *= 2 {
		if 6*float64(n)*float64(n) > claimed.MemGiB*(1<<30)/2 {
			break
		}
		w := 2 * math.Pow(float64(n), 3)
		slack := pol.SlackBase + time.Duration(n*n)*pol.SlackPerByte
		// A larger f needs less work but more rows; try the f bounds up to MaxFraction in steps of 0.01.
		for fmax := math.Floor(100*g/r+1) / 100; fmax <= pol.MaxFraction+1e-9; fmax += 0.01 {
			k := max(1, math.Ceil(pol.Target.Seconds()*tc/w), math.Ceil(slack.Seconds()*tl/(w*(fmax-g/r))))
			if k > MaxK {
				continue
			}
			work := w * k
			p := Params{Class: claimed.ID, Below: below.ID, N: n, K: int(k),
				Expected: seconds(work / tc), BelowTime: seconds(work / tl), Deadline: seconds(g*work/tc) + slack}
			p.Fraction = p.Deadline.Seconds() / p.BelowTime.Seconds()
			s, err := RowsFor(pol.FalsePass, p.Fraction)
			if err != nil {
				continue
			}
			p.Rows, p.VerifyOps = s, 2*float64(s)*k*float64(n)*float64(n)
			if best.N == 0 || p.VerifyOps < best.VerifyOps {
				best = p
			}
		}
	}
	if best.N == 0 {
		return Params{}, fmt.Errorf("%w: no size in %d..%d fits %q", ErrParams, pol.MinN, pol.MaxN, claimed.ID)
	}
	return best, nil
}

func seconds(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

// CPUFloorOpsPerCore is the int8 throughput (operations per second, a multiply-add counted as two) each
// declared core must sustain for a CPU-only provider to be verified: a tenth of what this package's prover does
// on one core of a 2020s x86 server. A CPU challenge proves the declared cores compute; it proves no GPU.
const CPUFloorOpsPerCore = 1e9

// CPUParams sizes the challenge of a CPU-only provider declaring cores: n = 512, k so that the floor takes about
// half a second, three times that (plus slack) as the deadline, 16 rows opened.
func CPUParams(cores float64) Params {
	cores = max(cores, 0.5)
	const n = 512
	rate := cores * CPUFloorOpsPerCore
	w := 2 * math.Pow(n, 3)
	k := max(1, int(math.Ceil(0.5*rate/w)))
	expected := seconds(w * float64(k) / rate)
	return Params{Class: "cpu", Below: "", N: n, K: k, Rows: 16, Expected: expected,
		Deadline: 3*expected + DefaultPolicy().SlackBase, VerifyOps: 2 * 16 * float64(k) * n * n}
}

// ClassForModel maps a GPU model as providers declare it (inventory's names: "H100", "A100", "L40S",
// "RTX4090", "RTX3090") to the class it is challenged as. A model with several classes gets the slowest
// (an H100 is challenged as an H100 PCIe), so an honest card always meets its deadline.
func ClassForModel(model string) (Class, bool) {
	id := map[string]string{"H100": "h100-pcie", "A100": "a100", "L40S": "l40s", "RTX4090": "rtx4090",
		"RTX3090": "rtx3090", "RTX 4090": "rtx4090", "RTX 3090": "rtx3090"}[model]
	if id == "" {
		return Class{}, false
	}
	return ClassByID(id)
}
