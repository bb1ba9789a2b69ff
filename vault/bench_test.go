package vault

import (
	"bytes"
	"io"
	"math/rand"
	"testing"

	"github.com/klauspost/reedsolomon"
)

// BenchmarkEncode codes a 64 MiB object (BLAKE3 of the object and of every shard, Reed-Solomon a row at a time)
// against Reed-Solomon alone over the same rows, in the same run: what content addressing adds to coding. MB/s
// are of the object's bytes, on one core.
func BenchmarkEncode(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	for _, c := range []Coding{{K: 10, M: 20, ShardSize: 4 << 20}, {K: 2, M: 2, ShardSize: 4 << 20}} {
		name := func(s string) string { return s + "/k=" + itoa(c.K) + ",m=" + itoa(c.M) }
		b.Run(name("vault"), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				if _, err := Encode(bytes.NewReader(data), size, c, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name("reedsolomon-only"), func(b *testing.B) {
			enc, _ := reedsolomon.New(c.K, c.M)
			row := make([]byte, (c.K+c.M)*CellSize)
			cells := make([][]byte, c.K+c.M)
			for i := range cells {
				cells[i] = row[i*CellSize : (i+1)*CellSize]
			}
			b.SetBytes(size)
			for b.Loop() {
				for off := 0; off < size; off += c.K * CellSize {
					copy(row[:c.K*CellSize], data[off:])
					if err := enc.Encode(cells); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkRead reads a 16 MiB stripe back from its K data shards, verified as it streams (the slice encoding
// served, every group checked against the shard's root) against the same shards read unverified, in the same
// run. The target: verified ≤ 1.2× unverified.
func BenchmarkRead(b *testing.B) {
	c := Coding{K: 4, M: 2, ShardSize: 4 << 20}
	data := make([]byte, 16<<20)
	rand.New(rand.NewSource(2)).Read(data)
	st := store(b, data, c)
	// What providers serve, encoded once (their work is not the reader's).
	served := make([][]byte, c.K+c.M)
	for i := range served {
		var enc bytes.Buffer
		if err := WriteSlice(&enc, bytes.NewReader(st.shards[0][i]), st.outboards[0][i], st.obj.ShardSize, 0, st.obj.ShardSize); err != nil {
			b.Fatal(err)
		}
		served[i] = enc.Bytes()
	}
	b.Run("verified", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			src := openFunc(func(i int, off, length uint64) (io.ReadCloser, error) {
				return VerifiedReader(io.NopCloser(bytes.NewReader(served[i])), st.obj.Shards[0][i], st.obj.ShardSize, 0, st.obj.ShardSize), nil
			})
			if err := DecodeStripe(io.Discard, st.obj.Layout, 0, src, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unverified", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			src := openFunc(func(i int, off, length uint64) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(st.shards[0][i][off : off+length])), nil
			})
			if err := DecodeStripe(io.Discard, st.obj.Layout, 0, src, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type openFunc func(i int, off, length uint64) (io.ReadCloser, error)

func (f openFunc) Open(i int, off, length uint64) (io.ReadCloser, error) { return f(i, off, length) }

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
