package proof

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
)

const sampleTag = "spare/pogpu/sample/v1"

// Sample draws the s distinct rows to open, in order, once the root is committed. Block c of the stream is
// SHA-256(sampleTag || seed || root || u32be(n) || u32be(c)), c = 0, 1, …; each block gives four big-endian
// 64-bit words x, and each x below ⌊(2^64−1)/n⌋·n that is not already drawn yields row x mod n.
func Sample(seed Seed, root Hash, n, s int) ([]int, error) {
	if n < 1 || n > MaxN || s < 1 || s > min(n, MaxRows) {
		return nil, fmt.Errorf("%w: %d rows of %d", ErrParams, s, n)
	}
	zone := math.MaxUint64 / uint64(n) * uint64(n)
	out, seen := make([]int, 0, s), make(map[int]bool, s)
	buf := make([]byte, 0, len(sampleTag)+32+32+8)
	buf = append(append(append(buf, sampleTag...), seed[:]...), root[:]...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	for c := uint32(0); len(out) < s; c++ {
		d := sha256.Sum256(binary.BigEndian.AppendUint32(buf, c))
		for w := 0; w < 4 && len(out) < s; w++ {
			x := binary.BigEndian.Uint64(d[8*w:])
			if i := int(x % uint64(n)); x < zone && !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
	}
	return out, nil
}

// RowsFor is how many rows to open so that a prover who computed only a fraction f of the rows passes with
// probability at most p: the least s with f^s ≤ p, ⌈ln p / ln f⌉. (Rows are drawn without replacement, so
// the true chance is a little lower still.)
func RowsFor(p, f float64) (int, error) {
	if !(p > 0 && p < 1 && f > 0 && f < 1) {
		return 0, fmt.Errorf("%w: p = %v, f = %v, want both in (0, 1)", ErrParams, p, f)
	}
	s := math.Ceil(math.Log(p)/math.Log(f) - 1e-9)
	if s > MaxRows {
		return 0, fmt.Errorf("%w: p = %v at f = %v needs %v rows, more than %d", ErrParams, p, f, s, MaxRows)
	}
	return max(1, int(s)), nil
}
