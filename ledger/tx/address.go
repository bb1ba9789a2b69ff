package tx

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// AddressLen is the length in bytes of an account address.
const AddressLen = 20

// HRP is the human-readable prefix of Spare's bech32 addresses ("spare1...").
const HRP = "spare"

// Address identifies an account: the first 20 bytes of SHA-256 of its ed25519 public key.
type Address [AddressLen]byte

// AddressOf derives the account address of an ed25519 public key.
func AddressOf(pub ed25519.PublicKey) Address {
	sum := sha256.Sum256(pub)
	var a Address
	copy(a[:], sum[:AddressLen])
	return a
}

// IsZero reports whether a is the all-zero address (never a valid account).
func (a Address) IsZero() bool { return a == Address{} }

// String renders a as bech32 with the "spare" prefix.
func (a Address) String() string {
	var out [len(HRP) + 1 + 32 + 6]byte
	return string(a.AppendBech32(out[:0]))
}

// AppendBech32 appends the address's bech32 form to b.
func (a Address) AppendBech32(b []byte) []byte {
	// bech32Encode(HRP, a[:]) without its allocations: 160 bits are 32 groups of 5, no padding, and the
	// checksum's state after the HRP is the same for every address. Events name an address each (the liveness
	// tally's rewards name every provider found up): TestAddressStringIsBech32 checks it against the general code.
	b = append(b, HRP...)
	b = append(b, '1')
	chk := hrpPolymod
	var acc uint32
	bits := 0
	for _, x := range a {
		acc = acc<<8 | uint32(x)
		bits += 8
		for bits >= 5 {
			bits -= 5
			v := byte(acc>>uint(bits)) & 31
			chk = polymodStep(chk, v)
			b = append(b, bech32Charset[v])
		}
	}
	for range 6 {
		chk = polymodStep(chk, 0)
	}
	chk ^= 1
	for i := range 6 {
		b = append(b, bech32Charset[(chk>>uint(5*(5-i)))&31])
	}
	return b
}

// MarshalText implements encoding.TextMarshaler (bech32).
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (bech32).
func (a *Address) UnmarshalText(b []byte) error {
	p, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = p
	return nil
}

// ParseAddress parses a bech32 "spare1..." address.
func ParseAddress(s string) (Address, error) {
	var a Address
	hrp, data, err := bech32Decode(s)
	if err != nil {
		return a, fmt.Errorf("address %q: %w", s, err)
	}
	if hrp != HRP {
		return a, fmt.Errorf("address %q: prefix %q, want %q", s, hrp, HRP)
	}
	if len(data) != AddressLen {
		return a, fmt.Errorf("address %q: %d bytes, want %d", s, len(data), AddressLen)
	}
	copy(a[:], data)
	return a, nil
}

// bech32 (BIP-173) encoding, enough for fixed-size addresses.

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

var bech32Gen = [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}

func bech32Polymod(values []byte) uint32 {
	chk := uint32(1)
	for _, v := range values {
		chk = polymodStep(chk, v)
	}
	return chk
}

// bech32GenTable is the generator's XOR for each value of the checksum's top 5 bits.
var bech32GenTable = func() (t [32]uint32) {
	for top := range 32 {
		for i := range 5 {
			if top>>i&1 == 1 {
				t[top] ^= bech32Gen[i]
			}
		}
	}
	return t
}()

func polymodStep(chk uint32, v byte) uint32 {
	return (chk&0x1ffffff)<<5 ^ uint32(v) ^ bech32GenTable[chk>>25]
}

// hrpPolymod is the checksum's state after the expanded HRP.
var hrpPolymod = bech32Polymod(bech32HRPExpand(HRP))

func bech32HRPExpand(hrp string) []byte {
	out := make([]byte, 0, len(hrp)*2+1)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

func convertBits(data []byte, from, to uint, pad bool) ([]byte, error) {
	var acc, bits uint
	maxv := uint(1)<<to - 1
	var out []byte
	for _, b := range data {
		if uint(b)>>from != 0 {
			return nil, errors.New("invalid data range")
		}
		acc = acc<<from | uint(b)
		bits += from
		for bits >= to {
			bits -= to
			out = append(out, byte(acc>>bits&maxv))
		}
	}
	if pad {
		if bits > 0 {
			out = append(out, byte(acc<<(to-bits)&maxv))
		}
	} else if bits >= from || acc<<(to-bits)&maxv != 0 {
		return nil, errors.New("invalid padding")
	}
	return out, nil
}

func bech32Encode(hrp string, data []byte) (string, error) {
	five, err := convertBits(data, 8, 5, true)
	if err != nil {
		return "", err
	}
	values := append(bech32HRPExpand(hrp), five...)
	poly := bech32Polymod(append(values, 0, 0, 0, 0, 0, 0)) ^ 1
	var sb strings.Builder
	sb.WriteString(hrp)
	sb.WriteByte('1')
	for _, v := range five {
		sb.WriteByte(bech32Charset[v])
	}
	for i := 0; i < 6; i++ {
		sb.WriteByte(bech32Charset[(poly>>uint(5*(5-i)))&31])
	}
	return sb.String(), nil
}

func bech32Decode(s string) (string, []byte, error) {
	if len(s) > 90 || len(s) < 8 {
		return "", nil, errors.New("bad length")
	}
	if strings.ToLower(s) != s {
		return "", nil, errors.New("must be lower case")
	}
	pos := strings.LastIndexByte(s, '1')
	if pos < 1 || pos+7 > len(s) {
		return "", nil, errors.New("missing separator or checksum")
	}
	hrp := s[:pos]
	var vals []byte
	for i := pos + 1; i < len(s); i++ {
		d := strings.IndexByte(bech32Charset, s[i])
		if d < 0 {
			return "", nil, fmt.Errorf("invalid character %q", s[i])
		}
		vals = append(vals, byte(d))
	}
	if bech32Polymod(append(bech32HRPExpand(hrp), vals...)) != 1 {
		return "", nil, errors.New("checksum mismatch (typo?)")
	}
	data, err := convertBits(vals[:len(vals)-6], 5, 8, false)
	if err != nil {
		return "", nil, err
	}
	return hrp, data, nil
}

// Hash is a SHA-256 digest (manifest hashes, certificate fingerprints, output roots), hex in JSON.
type Hash [32]byte

// String is the lower-case hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zeros (unset).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler (hex).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (hex, 64 characters).
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses 64 hex characters.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("hash %q: want 64 hex characters", s)
	}
	copy(h[:], b)
	return h, nil
}
