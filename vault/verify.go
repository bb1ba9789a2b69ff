package vault

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"lukechampine.com/blake3/bao"

	"github.com/sparenet/spare/ledger/tx"
)

// Outboard reads a shard of size bytes and returns its root and Bao outboard tree (EncodedSize(size) bytes: a
// 64-byte parent node per pair of groups, about 0.4% of the shard). A provider computes it for each shard it
// accepts; the root it finds must be the ledger's.
func Outboard(r io.Reader, size uint64) (tx.Hash, []byte, error) {
	if size == 0 || size > MaxShardSize {
		return tx.Hash{}, nil, fmt.Errorf("shard of %d bytes: from 1 to %d", size, MaxShardSize)
	}
	buf := &writerAt{b: make([]byte, bao.EncodedSize(int(size), GroupLog, true))}
	root, err := bao.Encode(buf, r, int64(size), GroupLog, true)
	if err != nil {
		return tx.Hash{}, nil, noEOF(err)
	}
	return root, buf.b, nil
}

// OutboardSize is the bytes of the outboard of a shard of size bytes.
func OutboardSize(size uint64) int { return bao.EncodedSize(int(size), GroupLog, true) }

type writerAt struct{ b []byte }

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(w.b)) {
		return 0, fmt.Errorf("outboard write at %d of %d bytes past its %d", off, len(p), len(w.b))
	}
	return copy(w.b[off:], p), nil
}

// checkRange refuses a range that is not whole groups of a shard of size bytes.
func checkRange(size, offset, length uint64) error {
	if size == 0 || size > MaxShardSize || size%GroupSize != 0 {
		return fmt.Errorf("shard of %d bytes: a multiple of %d up to %d", size, GroupSize, MaxShardSize)
	}
	if offset%GroupSize != 0 || length == 0 || length%GroupSize != 0 || offset > size || length > size-offset {
		return fmt.Errorf("range %d+%d of a %d-byte shard: whole %d-byte groups within it", offset, length, size, GroupSize)
	}
	return nil
}

// SliceSize is the bytes of the verified-slice encoding of [offset, offset+length) of a shard of size bytes:
// the data and the parent nodes on the way to it. Both ends compute it, so a reader never reads more.
func SliceSize(size, offset, length uint64) uint64 {
	n := uint64(8)
	var rec func(pos, span uint64)
	rec = func(pos, span uint64) {
		if pos >= offset+length || offset >= pos+span {
			return
		}
		if span <= GroupSize {
			n += span
			return
		}
		n += 64
		mid := uint64(1) << (bits.Len64(span-1) - 1)
		rec(pos, mid)
		rec(pos+mid, span-mid)
	}
	rec(0, size)
	return n
}

// WriteSlice writes the verified-slice encoding of [offset, offset+length) of a shard to w: shard is the shard's
// bytes (its whole file, read at the range only), outboard its tree. What a provider serves to a reader and, for
// one group, to an auditor as a proof of storage.
func WriteSlice(w io.Writer, shard io.ReaderAt, outboard []byte, size, offset, length uint64) error {
	if err := checkRange(size, offset, length); err != nil {
		return err
	}
	if len(outboard) != bao.EncodedSize(int(size), GroupLog, true) {
		return fmt.Errorf("outboard of %d bytes for a %d-byte shard: want %d", len(outboard), size, bao.EncodedSize(int(size), GroupLog, true))
	}
	data := io.NewSectionReader(shard, int64(offset), int64(length))
	return bao.ExtractSlice(w, data, bytes.NewReader(outboard), GroupLog, offset, length)
}

// ReadSlice reads a verified-slice encoding of [offset, offset+length) of a shard of size bytes whose root is
// root, and writes the shard's bytes in that range to w as each group verifies: a bad byte stops it at the group
// that holds it, and nothing of that group is written. It reads exactly SliceSize bytes from r.
func ReadSlice(w io.Writer, r io.Reader, root tx.Hash, size, offset, length uint64) error {
	if err := checkRange(size, offset, length); err != nil {
		return err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("slice header: %w", noEOF(err))
	}
	if got := binary.LittleEndian.Uint64(hdr[:]); got != size {
		return fmt.Errorf("slice says the shard holds %d bytes: it holds %d", got, size)
	}
	body := io.LimitReader(r, int64(SliceSize(size, offset, length)-8))
	ok, err := bao.DecodeSlice(w, io.MultiReader(bytes.NewReader(hdr[:]), body), GroupLog, offset, length, root)
	if err != nil {
		return fmt.Errorf("shard %x… at %d: %w", root[:6], offset, noEOF(err))
	}
	if !ok {
		return &BadShardError{Root: root, Offset: offset}
	}
	return nil
}

// BadShardError is bytes of a shard that do not hash to its root.
type BadShardError struct {
	Root   tx.Hash
	Offset uint64 // the range that failed started here
}

func (e *BadShardError) Error() string {
	return fmt.Sprintf("shard %x… does not verify against its root in the range from byte %d: the provider served bytes it does not hold", e.Root[:6], e.Offset)
}

// Prove is the proof that a provider holds group index of a shard: the verified-slice encoding of that group.
func Prove(shard io.ReaderAt, outboard []byte, size uint64, group uint64) ([]byte, error) {
	if group >= size/GroupSize {
		return nil, fmt.Errorf("group %d of a %d-byte shard: it has %d", group, size, size/GroupSize)
	}
	var b bytes.Buffer
	if err := WriteSlice(&b, shard, outboard, size, group*GroupSize, GroupSize); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// MaxProofBytes bounds a proof: one group and the parent nodes above it in the largest shard.
const MaxProofBytes = 8 + GroupSize + 64*32

// VerifyProof checks a proof that group index of a shard of size bytes with root root is held, returning the
// group's bytes. A proof of the wrong length, for another group or shard, or with one bit changed fails.
func VerifyProof(root tx.Hash, size, group uint64, proof []byte) ([]byte, error) {
	if group >= size/GroupSize {
		return nil, fmt.Errorf("group %d of a %d-byte shard: it has %d", group, size, size/GroupSize)
	}
	if want := SliceSize(size, group*GroupSize, GroupSize); uint64(len(proof)) != want {
		return nil, fmt.Errorf("proof of %d bytes: a proof of group %d of a %d-byte shard has %d", len(proof), group, size, want)
	}
	var out bytes.Buffer
	if err := ReadSlice(&out, bytes.NewReader(proof), root, size, group*GroupSize, GroupSize); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// VerifiedReader reads a verified-slice encoding of [offset, offset+length) of a shard (what a provider serves
// for a read) and returns the shard's bytes as they verify; a group that does not verify is a *BadShardError
// from Read, and nothing of it is returned. Closing it stops the verification and closes r.
func VerifiedReader(r io.ReadCloser, root tx.Hash, size, offset, length uint64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(ReadSlice(pw, r, root, size, offset, length))
	}()
	return &verifiedReader{PipeReader: pr, src: r}
}

type verifiedReader struct {
	*io.PipeReader
	src io.Closer
}

func (v *verifiedReader) Close() error {
	v.PipeReader.Close()
	return v.src.Close()
}
