package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"pgregory.net/rapid"
)

// TestRebuildShardAnyLosses is the property: for any object, coding, stripe and shard (data or parity), with up
// to M shards of the stripe missing in all (the one rebuilt among them), the rebuilt bytes are the shard's byte
// for byte, the shard itself is never asked for, and one more loss is ErrTooFewShards.
func TestRebuildShardAnyLosses(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := Coding{K: rapid.IntRange(1, 5).Draw(rt, "k"), M: rapid.IntRange(1, 4).Draw(rt, "m"),
			ShardSize: GroupSize * uint64(rapid.IntRange(1, 4).Draw(rt, "groups"))}
		n := c.K + c.M
		size := rapid.IntRange(1, 3*c.K*int(c.ShardSize)).Draw(rt, "size")
		data := make([]byte, size)
		rand.New(rand.NewSource(int64(size))).Read(data)
		st := store(rt, data, c)
		s := rapid.IntRange(0, st.obj.Stripes-1).Draw(rt, "stripe")
		target := rapid.IntRange(0, n-1).Draw(rt, "target")
		lost := map[int]bool{}
		for _, i := range rapid.SliceOfNDistinct(rapid.IntRange(0, n-1), 0, c.M-1, func(i int) int { return i }).Draw(rt, "lost") {
			if i != target {
				lost[i] = true
			}
		}
		src := &source{st: st, stripe: s, lost: lost, opens: map[int]int{}}
		var out bytes.Buffer
		var failures []ShardFailure
		err := RebuildShard(context.Background(), &out, st.obj.Layout, s, target, src, func(f ShardFailure) { failures = append(failures, f) })
		if err != nil || !bytes.Equal(out.Bytes(), st.shards[s][target]) {
			rt.Fatalf("rebuilding %d/%d with %v lost: %v (equal %v)", s, target, lost, err, bytes.Equal(out.Bytes(), st.shards[s][target]))
		}
		if src.opens[target] != 0 {
			rt.Fatalf("the shard being rebuilt was opened %d times", src.opens[target])
		}
		if len(failures) > len(lost) {
			rt.Fatalf("failures %+v: only %v are lost", failures, lost)
		}
		for _, f := range failures {
			if !lost[f.Index] || f.Stripe != s {
				rt.Fatalf("failure %+v: not a lost shard of stripe %d (%v)", f, s, lost)
			}
		}
		// One loss more than M (the target counted) and it cannot be done.
		for i := 0; i < n && len(lost) < c.M; i++ {
			if i != target && !lost[i] {
				lost[i] = true
			}
		}
		out.Reset()
		err = RebuildShard(context.Background(), &out, st.obj.Layout, s, target, &source{st: st, stripe: s, lost: lost}, nil)
		if !errors.Is(err, ErrTooFewShards) {
			rt.Fatalf("rebuilding %d/%d with %v lost (m = %d): %v, want ErrTooFewShards", s, target, lost, c.M, err)
		}
	})
}

// TestRebuildShardAroundCorruptSources plays providers serving bytes that do not verify: one corrupt from its
// first group, one in a later group (the rebuild is part-way through the shard when it fails). Both are given up
// on at the group that holds the bad byte and reported; the shard is still rebuilt byte for byte from the
// others. One more corrupt shard and it is ErrTooFewShards.
func TestRebuildShardAroundCorruptSources(t *testing.T) {
	c := Coding{K: 3, M: 3, ShardSize: 6 * GroupSize}
	data := make([]byte, 2*3*6*GroupSize-1000)
	rand.New(rand.NewSource(5)).Read(data)
	for _, target := range []int{1, 4} { // a data shard, a parity shard
		t.Run(fmt.Sprint("shard ", target), func(t *testing.T) {
			st := store(t, data, c)
			want := bytes.Clone(st.shards[1][target])
			others := []int{0, 2, 3, 5}
			if target == 4 {
				others = []int{0, 1, 2, 3}
			}
			st.shards[1][others[0]][10] ^= 0x01             // bad from its first group
			st.shards[1][others[1]][3*GroupSize+99] ^= 0x80 // bad from its fourth
			var out bytes.Buffer
			var failures []ShardFailure
			err := RebuildShard(context.Background(), &out, st.obj.Layout, 1, target, &source{st: st, stripe: 1}, func(f ShardFailure) { failures = append(failures, f) })
			if err != nil || !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("rebuild: %v (equal %v, failures %+v)", err, bytes.Equal(out.Bytes(), want), failures)
			}
			var bad *BadShardError
			if len(failures) != 2 || failures[0].Index != others[0] || failures[0].Offset != 0 || !errors.As(failures[0].Err, &bad) ||
				failures[1].Index != others[1] || failures[1].Offset != 3*GroupSize || !errors.As(failures[1].Err, &bad) {
				t.Fatalf("failures %+v: want shard %d bad at 0 and shard %d at %d", failures, others[0], others[1], 3*GroupSize)
			}
			// A third corrupt shard: with the target, M + 1 missing.
			st.shards[1][others[2]][5*GroupSize] ^= 0x02
			out.Reset()
			err = RebuildShard(context.Background(), &out, st.obj.Layout, 1, target, &source{st: st, stripe: 1}, nil)
			if !errors.Is(err, ErrTooFewShards) {
				t.Fatalf("three corrupt sources and the target missing (m = 3): %v", err)
			}
		})
	}
}

// TestRebuildShardRefuses: a stripe or shard out of the layout is refused, and a cancelled context stops it.
func TestRebuildShardRefuses(t *testing.T) {
	st := store(t, bytes.Repeat([]byte{1, 2, 3}, 30_000), Coding{K: 2, M: 2, ShardSize: 2 * GroupSize})
	l := st.obj.Layout
	for _, si := range [][2]int{{-1, 0}, {l.Stripes, 0}, {0, -1}, {0, 4}} {
		if err := RebuildShard(context.Background(), &bytes.Buffer{}, l, si[0], si[1], &source{st: st}, nil); err == nil {
			t.Fatalf("stripe %d shard %d rebuilt", si[0], si[1])
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := RebuildShard(ctx, &bytes.Buffer{}, l, 0, 0, &source{st: st}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
