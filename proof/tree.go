package proof

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
)

// Hash is a SHA-256 digest.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Node domain tags: a leaf can never pose as an inner node, nor padding as either.
const (
	tagLeaf  = 0x00
	tagInner = 0x01
	tagPad   = 0x02
)

// padLeaf fills the tree's leaves past the last row.
var padLeaf = Hash(sha256.Sum256([]byte{tagPad}))

// Depth is the number of levels above the leaves: ⌈log2 n⌉, and the number of hashes in every proof.
func Depth(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}

// LeafHash is SHA-256(0x00 || u32be(i) || row), the row's entries as two's-complement bytes.
func LeafHash(i int, row []int8) Hash {
	buf := make([]byte, 5+len(row))
	buf[0] = tagLeaf
	binary.BigEndian.PutUint32(buf[1:], uint32(i))
	for j, v := range row {
		buf[5+j] = byte(v)
	}
	return sha256.Sum256(buf)
}

func innerHash(l, r Hash) Hash {
	var buf [65]byte
	buf[0] = tagInner
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

// Tree is the commitment to C_k: a complete binary tree over its rows, padded with padLeaf up to the next
// power of two.
type Tree struct {
	n      int
	ck     []int8
	levels [][]Hash // levels[0] are the 2^Depth leaves, the last level is the root
}

// Commit builds the tree over ck's n rows. ck is kept (not copied) to open rows later.
func Commit(n int, ck []int8) (*Tree, error) {
	if n < 1 || n > MaxN || len(ck) != n*n {
		return nil, fmt.Errorf("%w: %d entries for n = %d", ErrParams, len(ck), n)
	}
	leaves := make([]Hash, 1<<Depth(n))
	parallelRows(n, func(i int) { leaves[i] = LeafHash(i, ck[i*n:(i+1)*n]) })
	for i := n; i < len(leaves); i++ {
		leaves[i] = padLeaf
	}
	t := &Tree{n: n, ck: ck, levels: [][]Hash{leaves}}
	for l := leaves; len(l) > 1; {
		up := make([]Hash, len(l)/2)
		for i := range up {
			up[i] = innerHash(l[2*i], l[2*i+1])
		}
		t.levels = append(t.levels, up)
		l = up
	}
	return t, nil
}

// Root is the commitment the prover sends before its deadline.
func (t *Tree) Root() Hash { return t.levels[len(t.levels)-1][0] }

// Open returns the given rows with their proofs, in the given order.
func (t *Tree) Open(indices []int) Opening {
	op := Opening{N: t.n, Rows: make([]OpenedRow, len(indices))}
	for q, i := range indices {
		proof := make([]Hash, 0, Depth(t.n))
		for l, pos := 0, i; l < len(t.levels)-1; l, pos = l+1, pos/2 {
			proof = append(proof, t.levels[l][pos^1])
		}
		op.Rows[q] = OpenedRow{Index: i, Row: append([]int8(nil), t.ck[i*t.n:(i+1)*t.n]...), Proof: proof}
	}
	return op
}

// VerifyProof reports whether row i of an n-row commitment, with its proof, hashes up to root.
func VerifyProof(root Hash, n, i int, row []int8, proof []Hash) bool {
	if i < 0 || i >= n || len(row) != n || len(proof) != Depth(n) {
		return false
	}
	h := LeafHash(i, row)
	for l, sib := range proof {
		if i>>l&1 == 0 {
			h = innerHash(h, sib)
		} else {
			h = innerHash(sib, h)
		}
	}
	return h == root
}
