package layout

import (
	"fmt"
)

// GroupLog is the Bao chunk-group size as a power of two of BLAKE3's 1 KiB chunks: 16 KiB groups. A proof of
// storage opens one group; verified streaming checks a group at a time.
const GroupLog = 4

// GroupSize is the bytes of one chunk group (16 KiB).
const GroupSize = 1024 << GroupLog

// CellSize is the bytes of one shard in one coded row (see Layout).
const CellSize = GroupSize

// Bounds of a coding. Reed-Solomon over GF(2^8) codes at most 256 shards a stripe; a shard is at most
// MaxShardSize so that a provider holds, serves and proves it in bounded memory and time.
const (
	MaxShards    = 256
	MaxShardSize = 256 << 20 // 256 MiB
	// MaxObjectSize bounds one object (1 TiB).
	MaxObjectSize = 1 << 40
	// MaxObjectShards bounds the shards of one object, so that its manifest (a root per shard) stays at most
	// 2 MiB: an object too large for its coding's shard size is refused with the shard size it would need.
	MaxObjectShards = 1 << 16
)

// Coding is how objects are cut and coded: K data and M parity shards a stripe, shards of at most ShardSize
// bytes (a multiple of GroupSize). An object smaller than a full stripe gets smaller shards.
type Coding struct {
	K         int    `json:"k"`
	M         int    `json:"m"`
	ShardSize uint64 `json:"shard_size"`
}

// Validate names the first field out of its bounds and what it may be.
func (c Coding) Validate() error {
	switch {
	case c.K < 1:
		return fmt.Errorf("coding k = %d: at least 1 data shard a stripe", c.K)
	case c.M < 1:
		return fmt.Errorf("coding m = %d: at least 1 parity shard a stripe (0 would lose the object with any one provider)", c.M)
	case c.K+c.M > MaxShards:
		return fmt.Errorf("coding k + m = %d: at most %d shards a stripe (Reed-Solomon over GF(2^8))", c.K+c.M, MaxShards)
	case c.ShardSize < GroupSize || c.ShardSize > MaxShardSize || c.ShardSize%GroupSize != 0:
		return fmt.Errorf("coding shard_size = %d: a multiple of %d bytes from %d to %d", c.ShardSize, GroupSize, GroupSize, MaxShardSize)
	}
	return nil
}

// Layout is where an object's bytes go: Stripes stripes of K+M shards of ShardSize bytes. Stripe s holds the
// object's bytes [s·K·ShardSize, (s+1)·K·ShardSize), the last stripe padded with zeros, as rows of K cells of
// CellSize bytes: row r is the stripe's bytes [r·K·CellSize, (r+1)·K·CellSize), its cell i goes to data shard i
// at offset r·CellSize, and the row's M parity cells (Reed-Solomon over its K data cells) to the parity shards.
// Coding a row at a time keeps memory at (K+M)·CellSize whatever the shard size, and a byte range of the object
// maps to the same rows of K shards.
type Layout struct {
	Coding
	Size    uint64 `json:"size"`
	Stripes int    `json:"stripes"`
}

// LayoutOf lays out an object of size bytes (at least 1): shards of ShardSize, or for an object under a full
// stripe the least multiple of GroupSize that holds it in K shards.
func LayoutOf(size uint64, c Coding) (Layout, error) {
	if err := c.Validate(); err != nil {
		return Layout{}, err
	}
	if size > MaxObjectSize {
		return Layout{}, fmt.Errorf("object of %d bytes: at most %d (1 TiB)", size, uint64(MaxObjectSize))
	}
	if size == 0 {
		return Layout{}, fmt.Errorf("object of 0 bytes: there is nothing to store")
	}
	l := Layout{Coding: c, Size: size}
	k := uint64(c.K)
	perShard := (size + k - 1) / k
	l.ShardSize = min(c.ShardSize, (perShard+GroupSize-1)/GroupSize*GroupSize)
	stripe := k * l.ShardSize
	stripes := (size + stripe - 1) / stripe
	if stripes*uint64(c.K+c.M) > MaxObjectShards {
		need := (size/(MaxObjectShards/uint64(c.K+c.M)) + k*GroupSize - 1) / (k * GroupSize) * GroupSize
		return Layout{}, fmt.Errorf("object of %d bytes needs %d shards at shard_size %d: at most %d an object; a coding with shard_size %d or more stores it",
			size, stripes*uint64(c.K+c.M), c.ShardSize, MaxObjectShards, need)
	}
	l.Stripes = int(stripes)
	return l, nil
}

// StripeBytes is the object bytes stripe s holds (the last stripe may hold fewer than K·ShardSize).
func (l Layout) StripeBytes(s int) uint64 {
	full := uint64(l.K) * l.ShardSize
	start := uint64(s) * full
	return min(full, l.Size-start)
}

// Shards is the total number of shards.
func (l Layout) Shards() int { return l.Stripes * (l.K + l.M) }

// StoredBytes is what the providers hold in all: every shard, parity included (outboards aside).
func (l Layout) StoredBytes() uint64 { return uint64(l.Shards()) * l.ShardSize }
