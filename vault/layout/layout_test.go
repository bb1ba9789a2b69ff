package layout

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
)

// object is a manifest of an object of size bytes with distinct made-up shard roots (no bytes needed).
func object(t testing.TB, size uint64, c Coding) *Object {
	t.Helper()
	l, err := LayoutOf(size, c)
	if err != nil {
		t.Fatal(err)
	}
	o := &Object{Root: tx.Hash{0xaa}, Layout: l, Shards: make([][]tx.Hash, l.Stripes)}
	for s := range o.Shards {
		for i := range l.K + l.M {
			o.Shards[s] = append(o.Shards[s], tx.Hash{byte(s), byte(i), 1})
		}
	}
	return o
}

func TestLayout(t *testing.T) {
	c := Coding{K: 4, M: 2, ShardSize: 4 * GroupSize}
	for _, tc := range []struct {
		size          uint64
		shard, stripe uint64
		stripes       int
		err           string
	}{
		{size: 1, shard: GroupSize, stripes: 1},
		{size: 4 * GroupSize, shard: GroupSize, stripes: 1},
		{size: 4*GroupSize + 1, shard: 2 * GroupSize, stripes: 1},
		{size: 16 * GroupSize, shard: 4 * GroupSize, stripes: 1},
		{size: 16*GroupSize + 1, shard: 4 * GroupSize, stripes: 2},
		{size: 0, err: "nothing to store"},
		{size: MaxObjectSize + 1, err: "at most"},
		{size: 1 << 32, err: "a coding with shard_size"},
	} {
		l, err := LayoutOf(tc.size, c)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("size %d: %v, want an error with %q", tc.size, err, tc.err)
			}
			continue
		}
		if err != nil || l.ShardSize != tc.shard || l.Stripes != tc.stripes {
			t.Errorf("size %d: %+v, %v; want shard %d, %d stripes", tc.size, l, err, tc.shard, tc.stripes)
		}
	}
	// The shard size the refusal names does store it.
	_, err := LayoutOf(1<<32, c)
	var need uint64
	if _, scanErr := fmt.Sscanf(err.Error()[strings.LastIndex(err.Error(), "shard_size ")+len("shard_size "):], "%d", &need); scanErr != nil {
		t.Fatal(err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("a coding with shard_size %d or more", need)) {
		t.Fatal(err)
	}
	if _, err := LayoutOf(1<<32, Coding{K: 4, M: 2, ShardSize: need}); err != nil {
		t.Fatalf("the shard size the refusal named (%d) does not store it: %v", need, err)
	}
	for _, bad := range []Coding{{K: 0, M: 2, ShardSize: GroupSize}, {K: 2, M: 0, ShardSize: GroupSize}, {K: 200, M: 57, ShardSize: GroupSize},
		{K: 2, M: 2, ShardSize: GroupSize + 1}, {K: 2, M: 2, ShardSize: 0}, {K: 2, M: 2, ShardSize: MaxShardSize + GroupSize}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestManifestRefusesNonCanonical(t *testing.T) {
	st := struct{ obj *Object }{object(t, 50_000, Coding{K: 2, M: 2, ShardSize: 4 * GroupSize})}
	enc, err := st.obj.Encode()
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(o *Object)) []byte {
		o := *st.obj
		f(&o)
		return o.write().Bytes() // encoded as it stands, bypassing Encode's own checks
	}
	for name, b := range map[string][]byte{
		"trailing byte":          append(bytes.Clone(enc), 0),
		"a root missing":         enc[:len(enc)-1],
		"version 2":              append([]byte{2}, enc[1:]...),
		"shard size too large":   mutate(func(o *Object) { o.ShardSize *= 2 }),
		"shard size not a group": mutate(func(o *Object) { o.ShardSize++ }),
		"size 0":                 mutate(func(o *Object) { o.Size = 0 }),
		"k over the bound":       mutate(func(o *Object) { o.K = 300 }),
		"m 0":                    mutate(func(o *Object) { o.M = 0 }),
		"size of more stripes":   mutate(func(o *Object) { o.Size *= 3 }),
	} {
		if _, err := DecodeObject(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzDecodeObject(f *testing.F) {
	enc, _ := object(f, 90_000, Coding{K: 3, M: 2, ShardSize: 2 * GroupSize}).Encode()
	f.Add(enc)
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeObject(b)
		if err != nil {
			return
		}
		again, err := o.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded manifest re-encodes differently: %v", err)
		}
	})
}
