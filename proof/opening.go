package proof

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Opening is the prover's answer once the rows are drawn: each row of C_k with its Merkle proof.
type Opening struct {
	N    int
	Rows []OpenedRow
}

// OpenedRow is one row of C_k and the Depth(n) sibling hashes from its leaf up to the root.
type OpenedRow struct {
	Index int
	Row   []int8
	Proof []Hash
}

const openingMagic = "PGO1"

// Encode is the opening's binary form: "PGO1", u32be n, u32be s, then s times
// { u32be index, n row bytes (two's complement), Depth(n)·32 proof bytes }. Everything has a fixed size
// given n and s, so the form is canonical.
func (o Opening) Encode() []byte {
	d := Depth(o.N)
	b := make([]byte, 0, len(openingMagic)+8+len(o.Rows)*(4+o.N+32*d))
	b = append(b, openingMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(o.N))
	b = binary.BigEndian.AppendUint32(b, uint32(len(o.Rows)))
	for _, r := range o.Rows {
		b = binary.BigEndian.AppendUint32(b, uint32(r.Index))
		for _, v := range r.Row {
			b = append(b, byte(v))
		}
		for _, h := range r.Proof {
			b = append(b, h[:]...)
		}
	}
	return b
}

// DecodeOpening parses Encode's form strictly: limits are checked and the total length must match exactly
// before anything is allocated; indices must be below n.
func DecodeOpening(b []byte) (Opening, error) {
	if len(b) < len(openingMagic)+8 || string(b[:4]) != openingMagic {
		return Opening{}, fmt.Errorf("%w: opening header", ErrMalformed)
	}
	n, s := binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])
	if n < 1 || n > MaxN || s < 1 || s > MaxRows || s > n {
		return Opening{}, fmt.Errorf("%w: opening of %d rows of %d", ErrMalformed, s, n)
	}
	d := Depth(int(n))
	per := 4 + int(n) + 32*d
	if body := b[12:]; len(body) != int(s)*per {
		return Opening{}, fmt.Errorf("%w: opening body is %d bytes, want %d", ErrMalformed, len(body), int(s)*per)
	}
	o := Opening{N: int(n), Rows: make([]OpenedRow, s)}
	rows, proofs := make([]int8, int(s)*int(n)), make([]Hash, int(s)*d)
	for q := range o.Rows {
		rec := b[12+q*per : 12+(q+1)*per]
		idx := binary.BigEndian.Uint32(rec)
		if idx >= n {
			return Opening{}, fmt.Errorf("%w: row index %d of %d", ErrMalformed, idx, n)
		}
		row, proof := rows[q*int(n):(q+1)*int(n):(q+1)*int(n)], proofs[q*d:(q+1)*d:(q+1)*d]
		for j := range row {
			row[j] = int8(rec[4+j])
		}
		for l := range proof {
			copy(proof[l][:], rec[4+int(n)+32*l:])
		}
		o.Rows[q] = OpenedRow{Index: int(idx), Row: row, Proof: proof}
	}
	return o, nil
}

// Prove is the honest prover end to end on the CPU: C_k, its root, the drawn rows and their opening.
func Prove(c Challenge, s int) (Hash, Opening, error) {
	ck, err := Solve(c)
	if err != nil {
		return Hash{}, Opening{}, err
	}
	return CommitAndOpen(c, ck, s)
}

// CommitAndOpen commits to a C_k however it was computed (the CPU prover, an external solver), draws the s
// rows and opens them.
func CommitAndOpen(c Challenge, ck []int8, s int) (Hash, Opening, error) {
	t, err := Commit(c.N, ck)
	if err != nil {
		return Hash{}, Opening{}, err
	}
	idx, err := Sample(c.Seed, t.Root(), c.N, s)
	if err != nil {
		return Hash{}, Opening{}, err
	}
	return t.Root(), t.Open(idx), nil
}

// VerifyOpening checks an opening against the challenge and the committed root: the rows opened are exactly
// the s drawn from seed and root, each proof reaches the root, and each row equals the row recomputed from
// the seed in k vector–matrix steps (k·n² multiply-adds a row). Cheap checks come first.
func VerifyOpening(c Challenge, root Hash, s int, o Opening) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if o.N != c.N {
		return fmt.Errorf("%w: opening for n = %d, challenge has n = %d", ErrParams, o.N, c.N)
	}
	want, err := Sample(c.Seed, root, c.N, s)
	if err != nil {
		return err
	}
	got := make([]int, len(o.Rows))
	for q, r := range o.Rows {
		got[q] = r.Index
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("%w: opened %v, drawn %v", ErrIndices, got, want)
	}
	for _, r := range o.Rows {
		if !VerifyProof(root, c.N, r.Index, r.Row, r.Proof) {
			return fmt.Errorf("%w: row %d", ErrMerkle, r.Index)
		}
	}
	n := c.N
	g := NewGenerator(c.Seed, n)
	a := make([]int8, s*n)
	for q, i := range want {
		g.Row(MatA, i, a[q*n:(q+1)*n])
	}
	ck := steps(a, g.Matrix(MatB), n, c.K)
	for q, r := range o.Rows {
		if !slices.Equal(r.Row, ck[q*n:(q+1)*n]) {
			return fmt.Errorf("%w: row %d", ErrRow, r.Index)
		}
	}
	return nil
}
