package layout

import (
	"fmt"

	"github.com/sparenet/spare/ledger/tx"
)

// Object is an object's manifest: its content address, its layout and the root of every shard. The ledger
// stores it (placement and proofs refer to its shards by stripe and index); a reader needs nothing else to fetch
// and verify the object from any K shards of each stripe.
type Object struct {
	Root tx.Hash `json:"root"` // BLAKE3 of the object's bytes
	Layout
	Shards [][]tx.Hash `json:"shards"` // [stripe][index]: K data shards, then M parity shards
}

// ShardRoot is the root of shard index of stripe s.
func (o *Object) ShardRoot(s, index int) tx.Hash { return o.Shards[s][index] }

// manifestVersion is the first byte of an encoded manifest.
const manifestVersion = 1

// MaxManifestBytes bounds an encoded manifest: a root per shard at most, and its header.
const MaxManifestBytes = MaxObjectShards*32 + 64

// Encode is the manifest's canonical encoding: version, root, size, k, m, shard size, then every shard root,
// stripe by stripe. The stripe count and each stripe's shard size follow from size and the coding.
func (o *Object) Encode() ([]byte, error) {
	l, err := LayoutOf(o.Size, o.Coding)
	if err != nil {
		return nil, err
	}
	if l.ShardSize != o.ShardSize || l.Stripes != o.Stripes || len(o.Shards) != l.Stripes {
		return nil, fmt.Errorf("manifest: layout %+v is not the one its size and coding give (%+v, %d stripes of roots)", o.Layout, l, len(o.Shards))
	}
	for s, stripe := range o.Shards {
		if len(stripe) != o.K+o.M {
			return nil, fmt.Errorf("manifest: stripe %d has %d shard roots, want k + m = %d", s, len(stripe), o.K+o.M)
		}
	}
	w := o.write()
	if err := w.Err(); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// write encodes the manifest as it stands, unchecked (Encode checks it first).
func (o *Object) write() *tx.Writer {
	w := tx.NewWriter(64 + 32*o.Layout.Shards())
	w.Byte(manifestVersion)
	w.Fixed("root", o.Root[:], 32)
	w.Uvarint(o.Size)
	w.Uvarint(uint64(o.K))
	w.Uvarint(uint64(o.M))
	w.Uvarint(o.ShardSize)
	for _, stripe := range o.Shards {
		for _, r := range stripe {
			w.Fixed("shard root", r[:], 32)
		}
	}
	return w
}

// DecodeObject reads a manifest, refusing anything but the canonical encoding of a valid layout: a coding or
// size out of bounds, a shard size that is not the one the size gives (the coding's for a full stripe), a root
// missing or trailing bytes.
func DecodeObject(b []byte) (*Object, error) {
	if len(b) > MaxManifestBytes {
		return nil, fmt.Errorf("manifest of %d bytes: at most %d", len(b), MaxManifestBytes)
	}
	r := tx.NewReader(b)
	if v := r.Byte("version"); r.Err() == nil && v != manifestVersion {
		return nil, fmt.Errorf("manifest version %d: this build reads version %d", v, manifestVersion)
	}
	o := &Object{Root: r.Hash("root")}
	size := r.Uvarint("size")
	k, m := r.Uvarint("k"), r.Uvarint("m")
	shard := r.Uvarint("shard_size")
	if err := r.Err(); err != nil {
		return nil, err
	}
	if k > MaxShards || m > MaxShards {
		return nil, fmt.Errorf("manifest: k %d, m %d: at most %d shards a stripe", k, m, MaxShards)
	}
	// The encoded shard size is the layout's: for an object under a full stripe, smaller than the coding's. The
	// coding it came from is any whose shard size lays the object out the same way; the smallest such is shard
	// itself, so lay it out with that and require the result to match.
	l, err := LayoutOf(size, Coding{K: int(k), M: int(m), ShardSize: max(shard, GroupSize)})
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if l.ShardSize != shard {
		return nil, fmt.Errorf("manifest: shard_size %d is not a layout of %d bytes in %d data shards", shard, size, k)
	}
	l.ShardSize = shard
	o.Layout = l
	o.Shards = make([][]tx.Hash, l.Stripes)
	for s := range o.Shards {
		o.Shards[s] = make([]tx.Hash, l.K+l.M)
		for i := range o.Shards[s] {
			o.Shards[s][i] = r.Hash("shard root")
		}
	}
	if err := r.Done("manifest"); err != nil {
		return nil, err
	}
	return o, nil
}
