package vault

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/reedsolomon"
	"lukechampine.com/blake3"

	"github.com/sparenet/spare/ledger/tx"
)

// Encode reads an object's size bytes from r and codes them (see Layout), returning its manifest. Every shard's
// bytes go, as they are coded, to the writer open(stripe, index) returns; open may be nil, or return nil for a
// shard not wanted here (a first pass that only computes the roots, or an upload to one provider). r must hold
// exactly size bytes: fewer is an error, and more are not read.
func Encode(r io.Reader, size uint64, c Coding, open func(stripe, index int) (io.Writer, error)) (*Object, error) {
	l, err := LayoutOf(size, c)
	if err != nil {
		return nil, err
	}
	enc, err := reedsolomon.New(l.K, l.M)
	if err != nil {
		return nil, fmt.Errorf("coding k %d, m %d: %w", l.K, l.M, err)
	}
	n := l.K + l.M
	obj := &Object{Layout: l, Shards: make([][]tx.Hash, l.Stripes)}
	// BLAKE3 hashes in SIMD only what it is given at once: fed the 16 KiB cells one by one it runs at a sixth of
	// its speed on 256 KiB writes (BenchmarkEncode), so every hasher is fed through a 256 KiB buffer.
	const hashBuf = 256 << 10
	wholeH := blake3.New(32, nil)
	whole := bufio.NewWriterSize(wholeH, hashBuf)
	row := make([]byte, n*CellSize)
	cells := make([][]byte, n)
	for i := range cells {
		cells[i] = row[i*CellSize : (i+1)*CellSize]
	}
	data := row[:l.K*CellSize]
	hashers := make([]*blake3.Hasher, n)
	hashIn := make([]*bufio.Writer, n)
	writers := make([]io.Writer, n)
	read := uint64(0)
	for s := range l.Stripes {
		for i := range n {
			hashers[i] = blake3.New(32, nil)
			if hashIn[i] == nil {
				hashIn[i] = bufio.NewWriterSize(hashers[i], hashBuf)
			} else {
				hashIn[i].Reset(hashers[i])
			}
			writers[i] = nil
			if open != nil {
				if writers[i], err = open(s, i); err != nil {
					return nil, fmt.Errorf("stripe %d shard %d: %w", s, i, err)
				}
			}
		}
		left := l.StripeBytes(s) // this stripe's object bytes not yet read
		for range l.ShardSize / CellSize {
			take := min(left, uint64(len(data)))
			if _, err := io.ReadFull(r, data[:take]); err != nil {
				return nil, fmt.Errorf("reading the object at byte %d of %d: %w", read, size, noEOF(err))
			}
			clear(data[take:])
			whole.Write(data[:take])
			read += take
			left -= take
			if err := enc.Encode(cells); err != nil {
				return nil, fmt.Errorf("coding stripe %d: %w", s, err)
			}
			for i, cell := range cells {
				hashIn[i].Write(cell) // a blake3.Hasher never fails a write
				if writers[i] != nil {
					if _, err := writers[i].Write(cell); err != nil {
						return nil, fmt.Errorf("stripe %d shard %d: %w", s, i, err)
					}
				}
			}
		}
		obj.Shards[s] = make([]tx.Hash, n)
		for i, h := range hashers {
			hashIn[i].Flush()
			h.Sum(obj.Shards[s][i][:0])
		}
	}
	whole.Flush()
	wholeH.Sum(obj.Root[:0])
	return obj, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ShardReader gives a stripe's decoder the shards it reads: Open returns length verified bytes of a shard from
// offset (both multiples of CellSize) — bytes that did not verify must surface as an error from Read, never as
// data. A shard whose Open or Read fails is dropped and another opened at the same row (see DecodeStripe).
type ShardReader interface {
	Open(index int, offset, length uint64) (io.ReadCloser, error)
}

// ShardFailure says which shard of which stripe a decoder gave up on, and why: what `get` reports of a
// provider that served a bad or no shard.
type ShardFailure struct {
	Stripe, Index int
	Offset        uint64 // where in the shard it failed
	Err           error
}

// ErrTooFewShards is DecodeStripe's error when fewer than K shards of a stripe could be read.
var ErrTooFewShards = errors.New("fewer than k shards of the stripe could be read")

// DecodeStripe writes stripe s's object bytes to w, read from any K shards (see DecodeRange).
func DecodeStripe(w io.Writer, l Layout, s int, src ShardReader, failed func(ShardFailure)) error {
	if s < 0 || s >= l.Stripes {
		return fmt.Errorf("stripe %d: the object has %d", s, l.Stripes)
	}
	return decodeStripe(w, l, s, 0, l.StripeBytes(s), src, failed)
}

// DecodeRange writes the object's bytes [offset, offset+length) to w, reading from each stripe it spans only the
// rows that hold them. shards(s) is stripe s's ShardReader. Every shard given up on is reported to failed (may
// be nil).
func DecodeRange(w io.Writer, l Layout, offset, length uint64, shards func(stripe int) ShardReader, failed func(ShardFailure)) error {
	if offset > l.Size || length > l.Size-offset {
		return fmt.Errorf("range %d+%d of an object of %d bytes: it ends at %d", offset, length, l.Size, l.Size)
	}
	full := uint64(l.K) * l.ShardSize
	for length > 0 {
		s := int(offset / full)
		from := offset % full
		to := min(l.StripeBytes(s), from+length)
		if err := decodeStripe(w, l, s, from, to, shards(s), failed); err != nil {
			return err
		}
		offset += to - from
		length -= to - from
	}
	return nil
}

// decodeStripe writes stripe s's bytes [from, to) (stripe-relative) to w, from the rows that hold them: the data
// shards first (no decoding needed while they all read), a parity shard in place of each that fails, from the
// row where it failed. Memory stays at (K+M)·CellSize.
func decodeStripe(w io.Writer, l Layout, s int, from, to uint64, src ShardReader, failed func(ShardFailure)) error {
	enc, err := reedsolomon.New(l.K, l.M)
	if err != nil {
		return err
	}
	n := l.K + l.M
	rowBytes := uint64(l.K) * CellSize
	firstRow, endRow := from/rowBytes, (to+rowBytes-1)/rowBytes
	end := endRow * CellSize         // in every shard: the rows needed end here
	open := make([]io.ReadCloser, n) // the shards being read
	dead := make([]bool, n)          // shards given up on
	defer func() {
		for _, rc := range open {
			if rc != nil {
				rc.Close()
			}
		}
	}()
	fail := func(i int, off uint64, err error) {
		if open[i] != nil {
			open[i].Close()
			open[i] = nil
		}
		dead[i] = true
		if failed != nil {
			failed(ShardFailure{Stripe: s, Index: i, Offset: off, Err: err})
		}
	}
	// fill keeps K shards open from offset off, lowest indexes first.
	fill := func(off uint64) error {
		have := 0
		for i := range n {
			if open[i] != nil {
				have++
			}
		}
		for i := 0; i < n && have < l.K; i++ {
			if open[i] != nil || dead[i] {
				continue
			}
			rc, err := src.Open(i, off, end-off)
			if err != nil {
				fail(i, off, err)
				continue
			}
			open[i] = rc
			have++
		}
		if have < l.K {
			return fmt.Errorf("stripe %d at shard offset %d: %w (%d of k = %d left)", s, off, ErrTooFewShards, have, l.K)
		}
		return nil
	}
	row := make([]byte, n*CellSize)
	cells := make([][]byte, n)
	for r := firstRow; r < endRow; r++ {
		off := r * CellSize
		for {
			if err := fill(off); err != nil {
				return err
			}
			ok := true
			for i := range n {
				cell := row[i*CellSize : (i+1)*CellSize]
				cells[i] = cell[:0] // missing: ReconstructData rebuilds it in place
				if open[i] == nil {
					continue
				}
				if _, err := io.ReadFull(open[i], cell); err != nil {
					fail(i, off, noEOF(err))
					ok = false
					continue
				}
				cells[i] = cell
			}
			if ok {
				break
			}
			// A shard failed mid-row: the others have read this row already. Reopen them all at this row
			// (only the replacement is new), so that every row is read from the same K shards.
			for i := range n {
				if open[i] != nil {
					open[i].Close()
					open[i] = nil
				}
			}
		}
		if err := enc.ReconstructData(cells); err != nil {
			return fmt.Errorf("stripe %d row at %d: %w", s, off, err)
		}
		// The row's bytes are the stripe's [r·rowBytes, (r+1)·rowBytes): write what falls in [from, to).
		lo, hi := max(from, r*rowBytes), min(to, (r+1)*rowBytes)
		for p := lo; p < hi; {
			in := p - r*rowBytes
			i, at := in/CellSize, in%CellSize
			take := min(hi-p, CellSize-at)
			if _, err := w.Write(cells[i][at : at+take]); err != nil {
				return err
			}
			p += take
		}
	}
	return nil
}
