package tx

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The wire format is a small, canonical binary encoding: unsigned varints (minimal length only), length-prefixed
// byte strings, fixed-size arrays, and nothing else. Every value has exactly one encoding, so
// Encode(Decode(b)) == b for every accepted b, and a decoder rejects non-minimal varints, short input and trailing
// bytes. Structures are encoded field by field in a fixed order; a format version byte leads every transaction.

// ErrDecode is wrapped by every decoding error.
var ErrDecode = errors.New("decode")

// Writer appends canonical encodings to a byte slice. An encoder enforces the same bounds as its decoder (Str,
// BlobMax, Fixed, List): a value its decoder would refuse is recorded as the Writer's error, so that nothing is
// written that cannot be read back.
type Writer struct {
	buf []byte
	err error
}

// NewWriter returns a Writer with room for n bytes.
func NewWriter(n int) *Writer { return &Writer{buf: make([]byte, 0, n)} }

// Bytes returns the encoded bytes.
func (w *Writer) Bytes() []byte { return w.buf }

// Len is the number of bytes written so far.
func (w *Writer) Len() int { return len(w.buf) }

// Err is the first bound an encoder broke, or nil.
func (w *Writer) Err() error { return w.err }

func (w *Writer) fail(field, format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("encode: %s: %s", field, fmt.Sprintf(format, args...))
	}
}

// Fail records that field breaks a rule of its encoding (the first failure sticks): for bounds beyond a max.
func (w *Writer) Fail(field, format string, args ...any) { w.fail(field, format, args...) }

// Str appends a length-prefixed string that its decoder reads with the same max (Reader.String).
func (w *Writer) Str(field, s string, max int) {
	if len(s) > max {
		w.fail(field, "%d bytes, limit %d", len(s), max)
	}
	w.String(s)
}

// BlobMax appends a length-prefixed byte string that its decoder reads with the same max (Reader.Blob).
func (w *Writer) BlobMax(field string, b []byte, max int) {
	if len(b) > max {
		w.fail(field, "%d bytes, limit %d", len(b), max)
	}
	w.Blob(b)
}

// Fixed appends b, which must be exactly n bytes (Reader.Raw with n).
func (w *Writer) Fixed(field string, b []byte, n int) {
	if len(b) != n {
		w.fail(field, "%d bytes, want %d", len(b), n)
	}
	w.Raw(b)
}

// List appends the length of a list that its decoder reads with the same max (Reader.Count).
func (w *Writer) List(field string, n, max int) {
	if n > max {
		w.fail(field, "%d entries, limit %d", n, max)
	}
	w.Uvarint(uint64(n))
}

// Bounded appends an unsigned integer that its decoder reads with the same max (Reader.Bounded).
func (w *Writer) Bounded(field string, v, max uint64) {
	if v > max {
		w.fail(field, "%d, limit %d", v, max)
	}
	w.Uvarint(v)
}

// Uvarint appends v as a minimal unsigned varint.
func (w *Writer) Uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

// Varint appends a signed integer (zig-zag).
func (w *Writer) Varint(v int64) { w.buf = binary.AppendVarint(w.buf, v) }

// Bool appends 0 or 1.
func (w *Writer) Bool(v bool) {
	if v {
		w.buf = append(w.buf, 1)
	} else {
		w.buf = append(w.buf, 0)
	}
}

// Byte appends one byte.
func (w *Writer) Byte(b byte) { w.buf = append(w.buf, b) }

// Raw appends b with no length prefix (fixed-size fields).
func (w *Writer) Raw(b []byte) { w.buf = append(w.buf, b...) }

// Blob appends a length-prefixed byte string.
func (w *Writer) Blob(b []byte) {
	w.Uvarint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// String appends a length-prefixed string.
func (w *Writer) String(s string) {
	w.Uvarint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Address appends a fixed 20-byte address.
func (w *Writer) Address(a Address) { w.buf = append(w.buf, a[:]...) }

// Reader decodes canonical encodings; the first error sticks and later calls return zero values.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader reads from b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first decoding error.
func (r *Reader) Err() error { return r.err }

// Fail records an error (if none yet) naming the field.
func (r *Reader) Fail(field, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s: %s", ErrDecode, field, fmt.Sprintf(format, args...))
	}
}

// Done fails if bytes remain, and returns the first error.
func (r *Reader) Done(what string) error {
	if r.err == nil && r.off != len(r.b) {
		r.Fail(what, "%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}

// Remaining is the number of unread bytes.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

// Uvarint reads a minimal unsigned varint.
func (r *Reader) Uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.Fail(field, "bad varint")
		return 0
	}
	if n != uvarintLen(v) {
		r.Fail(field, "non-minimal varint")
		return 0
	}
	r.off += n
	return v
}

// Varint reads a zig-zag signed varint.
func (r *Reader) Varint(field string) int64 {
	u := r.Uvarint(field)
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// Len reads a length prefix and checks it against max and the bytes left.
func (r *Reader) Len(field string, max int) int {
	n := r.Uvarint(field)
	if r.err != nil {
		return 0
	}
	if n > uint64(max) {
		r.Fail(field, "length %d exceeds limit %d", n, max)
		return 0
	}
	return int(n)
}

// Count reads a list length; each element takes at least one byte, so it cannot exceed the bytes left.
func (r *Reader) Count(field string, max int) int {
	n := r.Len(field, max)
	if r.err == nil && n > r.Remaining() {
		r.Fail(field, "count %d exceeds remaining %d bytes", n, r.Remaining())
		return 0
	}
	return n
}

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool(field string) bool {
	b := r.Byte(field)
	if b > 1 {
		r.Fail(field, "bool must be 0 or 1, got %d", b)
	}
	return b == 1
}

// Byte reads one byte.
func (r *Reader) Byte(field string) byte {
	b := r.Raw(field, 1)
	if b == nil {
		return 0
	}
	return b[0]
}

// Raw reads n bytes (aliasing the input).
func (r *Reader) Raw(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b)-r.off {
		r.Fail(field, "need %d bytes, have %d", n, len(r.b)-r.off)
		return nil
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b
}

// Blob reads a length-prefixed byte string of at most max bytes (copied).
func (r *Reader) Blob(field string, max int) []byte {
	n := r.Len(field, max)
	b := r.Raw(field, n)
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// String reads a length-prefixed string of at most max bytes.
func (r *Reader) String(field string, max int) string {
	n := r.Len(field, max)
	return string(r.Raw(field, n))
}

// Address reads a 20-byte address.
func (r *Reader) Address(field string) Address {
	var a Address
	copy(a[:], r.Raw(field, AddressLen))
	return a
}

// Hash reads a 32-byte hash.
func (r *Reader) Hash(field string) Hash {
	var h Hash
	copy(h[:], r.Raw(field, 32))
	return h
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
