package store

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// digest is a checksum of a whole state, kept up to date at each commit in O(writes): per lane, the sum modulo
// 2^64 of XXH64(len(key) || key || value) over every key, with two seeds (two independent lanes: 128 bits). A sum
// does not depend on the order of the keys, and a write moves it by the difference of its old and new terms. It
// is stored with each commit, in the same atomic batch as the writes, and checked against the state loaded at
// start: a database that dropped or changed anything of what was committed (a corrupt journal block that LevelDB
// skips while applying later writes, a damaged table) no longer adds up to it, but for a chance of 2^-128.
//
// It guards against damage, not against someone who writes the database on purpose (who could also rewrite the
// digest): that is why a fast non-cryptographic hash does. SHA-256 was measured first and cost about a tenth of
// the ledger's throughput under the ledger benchmark's load; this costs less than that benchmark's run-to-run
// noise (BENCHMARKS.md).
type digest [2]uint64

// digestSeeds are the lanes' seeds (any two distinct constants).
var digestSeeds = [2]uint64{0, 0x9e3779b97f4a7c15}

// hasher computes terms, reusing its state: one per commit (not safe for concurrent use).
type hasher struct{ h [2]*xxhash.Digest }

func newHasher() *hasher {
	return &hasher{h: [2]*xxhash.Digest{xxhash.NewWithSeed(digestSeeds[0]), xxhash.NewWithSeed(digestSeeds[1])}}
}

func (x *hasher) term(key string, val []byte) digest {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	var d digest
	for i, h := range x.h {
		h.ResetWithSeed(digestSeeds[i])
		h.Write(n[:])
		h.WriteString(key)
		h.Write(val)
		d[i] = h.Sum64()
	}
	return d
}

func (d *digest) add(t digest) {
	for i := range d {
		d[i] += t[i]
	}
}

func (d *digest) sub(t digest) {
	for i := range d {
		d[i] -= t[i]
	}
}

func (d digest) bytes() []byte {
	out := make([]byte, 16)
	for i, l := range d {
		binary.LittleEndian.PutUint64(out[8*i:], l)
	}
	return out
}

func digestOf(b []byte) (digest, bool) {
	var d digest
	if len(b) != 16 {
		return d, false
	}
	for i := range d {
		d[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return d, true
}
