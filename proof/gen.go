package proof

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Limits of the challenge. With int8 entries every product is at most 128·128 = 2^14 in magnitude, so an
// int32 accumulator over n ≤ MaxN = 2^15 terms stays within ±2^29: exact, with room to spare. MaxN also keeps
// the generator's counter 2·n² below 2^31, and MaxK bounds what a transcript can make a verifier spend.
const (
	MaxN    = 1 << 15
	MaxK    = 1 << 16
	MaxRows = 1 << 12 // most rows an opening may carry
)

const (
	genTag  = "spare/pogpu/gen/v1"
	mixMul  = 0x045d9f3b // odd, < 2^27: x·mixMul < 2^59 fits an int64 exactly
	wrapKey = 0x9e3779b9
)

// Seed is the auditor's secret, revealed only when it challenges.
type Seed [32]byte

func (s Seed) String() string { return hex.EncodeToString(s[:]) }

// Which matrix an element belongs to: the generator's counter is m·n² + i·n + j.
const (
	MatA = 0
	MatB = 1
)

// Challenge is what both sides derive everything from.
type Challenge struct {
	Seed Seed
	N    int // side of the square matrices, 1..MaxN
	K    int // steps, 1..MaxK
}

// Validate reports whether c is within the protocol's limits.
func (c Challenge) Validate() error {
	if c.N < 1 || c.N > MaxN {
		return fmt.Errorf("%w: n = %d, want 1..%d", ErrParams, c.N, MaxN)
	}
	if c.K < 1 || c.K > MaxK {
		return fmt.Errorf("%w: k = %d, want 1..%d", ErrParams, c.K, MaxK)
	}
	return nil
}

// Ops is the prover's work, 2·n³·k integer operations (a multiply and an add per term).
func (c Challenge) Ops() float64 { n := float64(c.N); return 2 * n * n * n * float64(c.K) }

// mix32 is a 32-bit integer finaliser (xor-shift, multiply, twice). Every intermediate fits an int64, so
// PyTorch computes it on int64 tensors with no overflow.
func mix32(x uint32) uint32 {
	x = (x>>16 ^ x) * mixMul
	x = (x>>16 ^ x) * mixMul
	return x>>16 ^ x
}

// Generator makes the entries of A and B for one seed and size; any entry can be made on its own.
type Generator struct {
	n, k0, k1 uint32
}

// NewGenerator derives the generator's keys: the first two little-endian 32-bit words of
// SHA-256(genTag || seed || u32le(n)). Binding n means a seed used at two sizes yields unrelated matrices.
func NewGenerator(seed Seed, n int) Generator {
	h := sha256.New()
	h.Write([]byte(genTag))
	h.Write(seed[:])
	h.Write(binary.LittleEndian.AppendUint32(nil, uint32(n)))
	d := h.Sum(nil)
	return Generator{n: uint32(n), k0: binary.LittleEndian.Uint32(d[0:]), k1: binary.LittleEndian.Uint32(d[4:])}
}

func (g Generator) fromCounter(c uint32) int8 { return int8(mix32(mix32(c^g.k0)^g.k1) >> 24) }

// At is element (i, j) of matrix m (MatA or MatB).
func (g Generator) At(m, i, j int) int8 {
	return g.fromCounter(uint32(m)*g.n*g.n + uint32(i)*g.n + uint32(j))
}

// Row fills dst (length n) with row i of matrix m.
func (g Generator) Row(m, i int, dst []int8) {
	base := uint32(m)*g.n*g.n + uint32(i)*g.n
	for j := range dst[:g.n] {
		dst[j] = g.fromCounter(base + uint32(j))
	}
}

// Matrix returns matrix m row-major, n·n entries, built on all cores.
func (g Generator) Matrix(m int) []int8 {
	n := int(g.n)
	out := make([]int8, n*n)
	parallelRows(n, func(i int) { g.Row(m, i, out[i*n:(i+1)*n]) })
	return out
}

// Wrap maps an exact int32 dot product back to int8: the top byte of mix32(x ⊕ 0x9e3779b9), as a
// two's-complement byte. It is no homomorphism of any ring the products live in, so C_k cannot be had from
// A·B^k: each step needs the previous step's exact sums.
func Wrap(x int32) int8 { return int8(mix32(uint32(x)^wrapKey) >> 24) }
