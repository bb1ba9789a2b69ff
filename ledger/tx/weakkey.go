package tx

import (
	"crypto/ed25519"
	"math/big"
)

// Small-order ed25519 public keys must be refused: for such a key A, [k]A
// takes at most 8 values, so a fixed "signature" (R = one of those points,
// S = 0) verifies for a sizeable fraction of all messages, letting anyone
// authenticate as AddressOf(A) without any private key. crypto/ed25519
// accepts them (and non-canonical encodings of them), so they are
// blocklisted here by y-coordinate: the eight small-order points have
// y ∈ {0, 1, -1, ±y8} (mod p), and the sign bit only selects x, so
// reducing the encoded y mod p catches every encoding, canonical or not.

var (
	fieldP      = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	smallOrderY = func() []*big.Int {
		// y of the order-8 point encoded c7176a70…ac037a; the other order-8 y is p minus it.
		y8 := leY([]byte{
			0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
			0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
		})
		return []*big.Int{
			big.NewInt(0),
			big.NewInt(1),
			new(big.Int).Sub(fieldP, big.NewInt(1)),
			y8,
			new(big.Int).Sub(fieldP, y8),
		}
	}()
)

// leY reads the y-coordinate of an encoded point: little-endian, sign bit cleared, reduced mod p.
func leY(enc []byte) *big.Int {
	be := make([]byte, len(enc))
	for i, b := range enc {
		be[len(enc)-1-i] = b
	}
	be[0] &= 0x7f
	y := new(big.Int).SetBytes(be)
	return y.Mod(y, fieldP)
}

// SmallOrderKey reports whether pub encodes a point of small order (the
// identity among them), which no honest key is; see the comment above.
func SmallOrderKey(pub ed25519.PublicKey) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	y := leY(pub)
	for _, s := range smallOrderY {
		if y.Cmp(s) == 0 {
			return true
		}
	}
	return false
}
