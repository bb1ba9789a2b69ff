package store

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// digest is a checksum of a whole state, kept up to date at each commit in O(writes): the sum, modulo 2^256, of
// SHA-256(len(key) || key || value) over every key. A sum does not depend on the order of the keys, and a write
// moves it by the difference of its old and new terms. It is stored with each commit, in the same atomic batch as
// the writes, and checked against the state loaded at start: a database that dropped or changed anything of what
// was committed (a corrupt journal block that LevelDB skips while applying later writes, a damaged table) no
// longer adds up to it. It guards against damage, not against someone who writes the database on purpose.
type digest [4]uint64 // little-endian limbs

func term(key string, val []byte) digest {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	h.Write(n[:])
	h.Write([]byte(key))
	h.Write(val)
	var sum [32]byte
	h.Sum(sum[:0])
	var d digest
	for i := range d {
		d[i] = binary.LittleEndian.Uint64(sum[8*i:])
	}
	return d
}

func (d *digest) add(t digest) {
	var c uint64
	for i := range d {
		d[i], c = bits.Add64(d[i], t[i], c)
	}
}

func (d *digest) sub(t digest) {
	var b uint64
	for i := range d {
		d[i], b = bits.Sub64(d[i], t[i], b)
	}
}

func (d digest) bytes() []byte {
	out := make([]byte, 32)
	for i, l := range d {
		binary.LittleEndian.PutUint64(out[8*i:], l)
	}
	return out
}

func digestOf(b []byte) (digest, bool) {
	var d digest
	if len(b) != 32 {
		return d, false
	}
	for i := range d {
		d[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return d, true
}
