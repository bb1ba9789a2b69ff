package vault

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"

	"lukechampine.com/blake3"
	"pgregory.net/rapid"

	"github.com/sparenet/spare/ledger/tx"
)

// stored is an object's shards as providers would hold them: each shard's bytes and outboard.
type stored struct {
	obj       *Object
	shards    [][][]byte // [stripe][index]
	outboards [][][]byte
}

// tb is what the helpers need of a test: testing.TB's and rapid.T's common part.
type tb interface {
	Helper()
	Fatal(...any)
	Fatalf(string, ...any)
}

func store(t tb, data []byte, c Coding) *stored {
	t.Helper()
	l, err := LayoutOf(uint64(len(data)), c)
	if err != nil {
		t.Fatal(err)
	}
	st := &stored{shards: make([][][]byte, l.Stripes), outboards: make([][][]byte, l.Stripes)}
	bufs := map[[2]int]*bytes.Buffer{}
	obj, err := Encode(bytes.NewReader(data), uint64(len(data)), c, func(s, i int) (io.Writer, error) {
		b := &bytes.Buffer{}
		bufs[[2]int{s, i}] = b
		return b, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.obj = obj
	for s := range l.Stripes {
		for i := range l.K + l.M {
			b := bufs[[2]int{s, i}].Bytes()
			if uint64(len(b)) != l.ShardSize {
				t.Fatalf("stripe %d shard %d: %d bytes, want %d", s, i, len(b), l.ShardSize)
			}
			root, ob, err := Outboard(bytes.NewReader(b), l.ShardSize)
			if err != nil {
				t.Fatal(err)
			}
			if root != obj.Shards[s][i] || root != tx.Hash(blake3.Sum256(b)) {
				t.Fatalf("stripe %d shard %d: the manifest's root is not the shard's BLAKE3", s, i)
			}
			st.shards[s] = append(st.shards[s], b)
			st.outboards[s] = append(st.outboards[s], ob)
		}
	}
	return st
}

// source serves one stripe's shards through the verified-slice encoding, as a provider and a reader would:
// lost shards do not open, and a corrupt shard fails when its bad group is read.
type source struct {
	st     *stored
	stripe int
	lost   map[int]bool
	opens  map[int]int
}

func (s *source) Open(i int, off, length uint64) (io.ReadCloser, error) {
	if s.lost[i] {
		return nil, fmt.Errorf("shard %d: provider gone", i)
	}
	if s.opens != nil {
		s.opens[i]++
	}
	size := s.st.obj.ShardSize
	var enc bytes.Buffer
	if err := WriteSlice(&enc, bytes.NewReader(s.st.shards[s.stripe][i]), s.st.outboards[s.stripe][i], size, off, length); err != nil {
		return nil, err
	}
	return VerifiedReader(io.NopCloser(&enc), s.st.obj.Shards[s.stripe][i], size, off, length), nil
}

// counting counts the bytes a decoder asks its shards for.
type counting struct {
	ShardReader
	asked *uint64
}

func (c counting) Open(i int, off, length uint64) (io.ReadCloser, error) {
	rc, err := c.ShardReader.Open(i, off, length)
	if err == nil {
		*c.asked += length
	}
	return rc, err
}

func get(t tb, st *stored, lost map[int]map[int]bool) ([]byte, []ShardFailure, error) {
	t.Helper()
	var out bytes.Buffer
	var failures []ShardFailure
	for s := range st.obj.Stripes {
		if err := DecodeStripe(&out, st.obj.Layout, s, &source{st: st, stripe: s, lost: lost[s]}, func(f ShardFailure) { failures = append(failures, f) }); err != nil {
			return nil, failures, err
		}
	}
	return out.Bytes(), failures, nil
}

// TestEncodeDecodeAnyLosses is the property: for any object, coding and losses of up to M shards a stripe, the
// object comes back byte for byte, and its manifest survives its encoding.
func TestEncodeDecodeAnyLosses(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := Coding{K: rapid.IntRange(1, 5).Draw(rt, "k"), M: rapid.IntRange(1, 4).Draw(rt, "m"),
			ShardSize: GroupSize * uint64(rapid.IntRange(1, 4).Draw(rt, "groups"))}
		size := rapid.IntRange(1, 3*c.K*int(c.ShardSize)).Draw(rt, "size")
		data := make([]byte, size)
		rand.New(rand.NewSource(int64(size))).Read(data)
		st := store(rt, data, c)
		if st.obj.Root != tx.Hash(blake3.Sum256(data)) {
			rt.Fatal("object root is not the data's BLAKE3")
		}
		lost := map[int]map[int]bool{}
		for s := range st.obj.Stripes {
			lost[s] = map[int]bool{}
			for _, i := range rapid.SliceOfNDistinct(rapid.IntRange(0, c.K+c.M-1), 0, c.M, rapid.ID[int]).Draw(rt, fmt.Sprintf("lost%d", s)) {
				lost[s][i] = true
			}
		}
		got, _, err := get(rt, st, lost)
		if err != nil || !bytes.Equal(got, data) {
			rt.Fatalf("decode with losses %v: %v (equal %v)", lost, err, bytes.Equal(got, data))
		}
		// Any byte range, from the same shards: exactly those bytes, reading only the rows that hold them.
		off := uint64(rapid.IntRange(0, size-1).Draw(rt, "offset"))
		n := uint64(rapid.IntRange(0, size-int(off)).Draw(rt, "length"))
		var part bytes.Buffer
		var asked uint64
		err = DecodeRange(&part, st.obj.Layout, off, n, func(s int) ShardReader {
			return counting{&source{st: st, stripe: s, lost: lost[s]}, &asked}
		}, nil)
		if err != nil || !bytes.Equal(part.Bytes(), data[off:off+n]) {
			rt.Fatalf("range %d+%d: %v", off, n, err)
		}
		// Each stripe the range spans costs at most one row more than its share of it, at each end.
		rowBytes := uint64(c.K) * CellSize
		if rows := n/rowBytes + 2*uint64(st.obj.Stripes); asked > rows*uint64(c.K)*CellSize {
			rt.Fatalf("range %d+%d asked the shards for %d bytes: more than the rows that hold it", off, n, asked)
		}
		enc, err := st.obj.Encode()
		if err != nil {
			rt.Fatal(err)
		}
		back, err := DecodeObject(enc)
		if err != nil {
			rt.Fatal(err)
		}
		again, _ := back.Encode()
		if !bytes.Equal(enc, again) || back.Root != st.obj.Root || back.Layout != st.obj.Layout {
			rt.Fatal("manifest does not survive its encoding")
		}
	})
}

// TestDecodeRoutesAroundBadShards plays hostile providers: one serves a shard with a flipped byte, another is
// gone. The reader gets the object byte for byte, reports the corrupt shard (not the healthy ones), and a stripe
// with more than M bad shards is an error, never wrong bytes.
func TestDecodeRoutesAroundBadShards(t *testing.T) {
	c := Coding{K: 3, M: 2, ShardSize: 4 * GroupSize}
	data := make([]byte, 3*4*GroupSize)
	rand.New(rand.NewSource(12)).Read(data)
	st := store(t, data, c)
	st.shards[0][1][2*GroupSize+17] ^= 0x40 // shard 1 corrupt in its third group
	got, failures, err := get(t, st, map[int]map[int]bool{0: {0: true}})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, equal %v, err %v", len(got), bytes.Equal(got, data), err)
	}
	var bad *BadShardError
	if len(failures) != 2 || failures[0].Index != 0 || failures[1].Index != 1 || failures[1].Offset != 2*GroupSize || !errors.As(failures[1].Err, &bad) {
		t.Fatalf("failures %+v: want shard 0 gone at 0, shard 1 bad at %d", failures, 2*GroupSize)
	}
	// Three of five bad: too few.
	st.shards[0][3][5] ^= 1
	if _, _, err := get(t, st, map[int]map[int]bool{0: {0: true}}); !errors.Is(err, ErrTooFewShards) {
		t.Fatalf("three bad shards of five (k = 3): %v", err)
	}
}

func TestProofs(t *testing.T) {
	c := Coding{K: 2, M: 1, ShardSize: 8 * GroupSize}
	data := make([]byte, 2*8*GroupSize)
	rand.New(rand.NewSource(34)).Read(data)
	st := store(t, data, c)
	shard, ob, root, size := st.shards[0][2], st.outboards[0][2], st.obj.Shards[0][2], st.obj.ShardSize
	for g := range size / GroupSize {
		p, err := Prove(bytes.NewReader(shard), ob, size, g)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > MaxProofBytes {
			t.Fatalf("proof of %d bytes over MaxProofBytes", len(p))
		}
		got, err := VerifyProof(root, size, g, p)
		if err != nil || !bytes.Equal(got, shard[g*GroupSize:(g+1)*GroupSize]) {
			t.Fatalf("group %d: %v", g, err)
		}
		// Every wrong proof fails: a flipped bit anywhere, another group's, another shard's, cut short.
		for _, bit := range []int{0, 9, len(p) / 2, len(p) - 1} {
			bad := bytes.Clone(p)
			bad[bit] ^= 0x10
			if _, err := VerifyProof(root, size, g, bad); err == nil {
				t.Fatalf("group %d: proof with byte %d flipped accepted", g, bit)
			}
		}
		if _, err := VerifyProof(root, size, (g+1)%(size/GroupSize), p); err == nil {
			t.Fatalf("group %d's proof accepted for another group", g)
		}
		if _, err := VerifyProof(st.obj.Shards[0][0], size, g, p); err == nil {
			t.Fatalf("group %d's proof accepted for another shard", g)
		}
		if _, err := VerifyProof(root, size, g, p[:len(p)-1]); err == nil {
			t.Fatal("a proof cut short accepted")
		}
	}
	if _, err := VerifyProof(root, size, size/GroupSize, nil); err == nil {
		t.Fatal("a group past the shard's end accepted")
	}
	if _, err := Prove(bytes.NewReader(shard), ob, size, 1<<60); err == nil {
		t.Fatal("proving a group past the end")
	}
}

func FuzzVerifyProof(f *testing.F) {
	st := store(f, bytes.Repeat([]byte{9, 8, 7}, 20_000), Coding{K: 1, M: 1, ShardSize: 4 * GroupSize})
	shard, ob, root, size := st.shards[0][0], st.outboards[0][0], st.obj.Shards[0][0], st.obj.ShardSize
	p, _ := Prove(bytes.NewReader(shard), ob, size, 2)
	f.Add(uint64(2), p)
	f.Add(uint64(0), p[:100])
	f.Fuzz(func(t *testing.T, group uint64, proof []byte) {
		got, err := VerifyProof(root, size, group, proof)
		if err != nil {
			return
		}
		if group >= size/GroupSize || !bytes.Equal(got, shard[group*GroupSize:(group+1)*GroupSize]) {
			t.Fatalf("a proof of group %d verified with bytes the shard does not hold there", group)
		}
	})
}

// FuzzReadSlice plays a provider answering a read with any bytes it likes: ReadSlice never panics, and whatever
// it writes is the shard's own bytes at their place (a bad byte stops it at its group, writing nothing of it).
func FuzzReadSlice(f *testing.F) {
	st := store(f, bytes.Repeat([]byte{3, 1, 4, 1, 5}, 15_000), Coding{K: 1, M: 1, ShardSize: 4 * GroupSize})
	shard, ob, root, size := st.shards[0][0], st.outboards[0][0], st.obj.Shards[0][0], st.obj.ShardSize
	var good bytes.Buffer
	if err := WriteSlice(&good, bytes.NewReader(shard), ob, size, GroupSize, 2*GroupSize); err != nil {
		f.Fatal(err)
	}
	f.Add(uint64(GroupSize), uint64(2*GroupSize), good.Bytes())
	f.Add(uint64(0), size, good.Bytes()[:200])
	f.Fuzz(func(t *testing.T, off, length uint64, enc []byte) {
		var out bytes.Buffer
		err := ReadSlice(&out, bytes.NewReader(enc), root, size, off, length)
		if off > size || length > size-off {
			if err == nil {
				t.Fatalf("a range past the shard [%d, +%d) read", off, length)
			}
			return
		}
		got := out.Bytes()
		if !bytes.Equal(got, shard[off:off+uint64(len(got))]) {
			t.Fatalf("bytes written that the shard does not hold at %d", off)
		}
		if err == nil && uint64(len(got)) != length {
			t.Fatalf("read succeeded with %d of %d bytes", len(got), length)
		}
	})
}
