package vault

import (
	"context"
	"fmt"
	"io"

	"github.com/klauspost/reedsolomon"
)

// RebuildShard writes shard index of stripe s of an object laid out as l — all l.ShardSize bytes of it — to w,
// rebuilt from K of the stripe's other shards read from src: what a provider does when the ledger draws it to
// repair a shard that its holder lost. It goes a row at a time, as the coder does (memory stays at
// (K+M)·CellSize whatever the shard size): each row's cells are read from K shards, lowest indexes first, and
// the target's cell is rebuilt from them and written. Shard index itself is never opened. A shard whose Open or
// Read fails (a provider gone, bytes that do not verify) is given up on, reported to failed (may be nil), and
// another opened from the same row, so up to M shards of the stripe may be missing in all, the target included;
// past that it is ErrTooFewShards, and what was written to w is not the shard. ctx ends it between rows (src's
// readers should end with it too).
//
// The bytes are the Reed-Solomon rebuild of the K shards read, each of which verified against its own root: a
// stripe whose shards were never one codeword (a manifest made up by its uploader) rebuilds to other bytes, so
// the result must still be checked against the target's root (Outboard computes it as the shard is written).
func RebuildShard(ctx context.Context, w io.Writer, l Layout, s, index int, src ShardReader, failed func(ShardFailure)) error {
	n := l.K + l.M
	switch {
	case s < 0 || s >= l.Stripes:
		return fmt.Errorf("stripe %d: the object has %d", s, l.Stripes)
	case index < 0 || index >= n:
		return fmt.Errorf("shard %d of stripe %d: a stripe has k + m = %d", index, s, n)
	}
	enc, err := reedsolomon.New(l.K, l.M)
	if err != nil {
		return fmt.Errorf("coding k %d, m %d: %w", l.K, l.M, err)
	}
	rows := &stripeRows{l: l, s: s, src: src, failed: failed, end: l.ShardSize,
		open: make([]io.ReadCloser, n), dead: make([]bool, n)}
	defer rows.close()
	rows.dead[index] = true // the shard being rebuilt: not read, and not a failure
	row := make([]byte, n*CellSize)
	cells := make([][]byte, n)
	required := make([]bool, n)
	required[index] = true
	for off := uint64(0); off < l.ShardSize; off += CellSize {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stripe %d shard %d at %d: %w", s, index, off, err)
		}
		if err := rows.read(off, row, cells); err != nil {
			return fmt.Errorf("rebuilding shard %d: %w", index, err)
		}
		if err := enc.ReconstructSome(cells, required); err != nil {
			return fmt.Errorf("stripe %d row at %d: %w", s, off, err)
		}
		if _, err := w.Write(cells[index]); err != nil {
			return err
		}
	}
	return nil
}

// stripeRows reads a stripe's rows from K of its shards (lowest indexes first among those not dead), giving up
// on a shard that fails and reading the row again with another in its place.
type stripeRows struct {
	l      Layout
	s      int
	src    ShardReader
	failed func(ShardFailure)
	end    uint64          // in every shard: the rows read end here
	open   []io.ReadCloser // the shards being read
	dead   []bool          // shards not to read: given up on, or not wanted
}

func (r *stripeRows) fail(i int, off uint64, err error) {
	if r.open[i] != nil {
		r.open[i].Close()
		r.open[i] = nil
	}
	r.dead[i] = true
	if r.failed != nil {
		r.failed(ShardFailure{Stripe: r.s, Index: i, Offset: off, Err: err})
	}
}

func (r *stripeRows) close() {
	for i, rc := range r.open {
		if rc != nil {
			rc.Close()
			r.open[i] = nil
		}
	}
}

// fill keeps K shards open from offset off.
func (r *stripeRows) fill(off uint64) error {
	have := 0
	for _, rc := range r.open {
		if rc != nil {
			have++
		}
	}
	for i := 0; i < len(r.open) && have < r.l.K; i++ {
		if r.open[i] != nil || r.dead[i] {
			continue
		}
		rc, err := r.src.Open(i, off, r.end-off)
		if err != nil {
			r.fail(i, off, err)
			continue
		}
		r.open[i] = rc
		have++
	}
	if have < r.l.K {
		return fmt.Errorf("stripe %d at shard offset %d: %w (%d of k = %d left)", r.s, off, ErrTooFewShards, have, r.l.K)
	}
	return nil
}

// read reads the row at shard offset off into row (n cells of CellSize): cells[i] is shard i's cell, or empty
// with row's room behind it where shard i was not read (for ReconstructSome to rebuild in place).
func (r *stripeRows) read(off uint64, row []byte, cells [][]byte) error {
	for {
		if err := r.fill(off); err != nil {
			return err
		}
		ok := true
		for i := range cells {
			cell := row[i*CellSize : (i+1)*CellSize]
			cells[i] = cell[:0]
			if r.open[i] == nil {
				continue
			}
			if _, err := io.ReadFull(r.open[i], cell); err != nil {
				r.fail(i, off, noEOF(err))
				ok = false
				continue
			}
			cells[i] = cell
		}
		if ok {
			return nil
		}
		// A shard failed mid-row: the others have read this row already. Reopen them all at this row (only the
		// replacement is new), so that every row is read from K shards in step.
		r.close()
	}
}
