package provider

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault"
)

// Shards keeps the Spare Vault shards this provider holds under its storage path: each shard's bytes
// (ROOT.shard) and its Bao outboard (ROOT.bao), named by the shard's BLAKE3 root, written to a temporary file,
// checked against the root it was sent for, synced and only then renamed into place, so that what is kept is
// always whole and what it is said to be. The bytes held never pass the capacity offered.
type Shards struct {
	dir      string
	capacity uint64

	mu      sync.Mutex
	used    uint64
	sizes   map[tx.Hash]uint64
	writing map[tx.Hash]bool // a Put under way: a second one for the same root waits for none, it is refused
}

// ErrStorageFull is a shard that would take the held bytes past the capacity offered.
var ErrStorageFull = errors.New("storage full")

// OpenShards opens the shard store in dir (created 0700), counting what it already holds. A file that is not a
// whole shard with its outboard (a crash between the two renames, a temporary file) is removed.
func OpenShards(dir string, capacity uint64) (*Shards, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &Shards{dir: dir, capacity: capacity, sizes: map[tx.Hash]uint64{}, writing: map[tx.Hash]bool{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		root, ok := rootOf(strings.TrimSuffix(name, ".shard"))
		if !ok || !strings.HasSuffix(name, ".shard") || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		size := uint64(fi.Size())
		ob, err := os.Stat(s.path(root, ".bao"))
		if err != nil || size == 0 || size > vault.MaxShardSize || size%vault.GroupSize != 0 || ob.Size() != int64(vault.OutboardSize(size)) {
			os.Remove(s.path(root, ".shard")) // its outboard never landed, or it was cut: not a shard this store can serve
			continue
		}
		s.sizes[root] = size
		s.used += size
	}
	for _, e := range ents { // leftovers: temporary files, outboards without their shard
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			os.Remove(filepath.Join(dir, name))
		} else if r, ok := rootOf(strings.TrimSuffix(name, ".bao")); ok && strings.HasSuffix(name, ".bao") {
			if _, held := s.sizes[r]; !held {
				os.Remove(filepath.Join(dir, name))
			}
		}
	}
	return s, nil
}

func rootOf(s string) (tx.Hash, bool) {
	var h tx.Hash
	if len(s) != 64 || strings.ToLower(s) != s {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, false
	}
	return h, true
}

func (s *Shards) path(root tx.Hash, ext string) string {
	return filepath.Join(s.dir, hex.EncodeToString(root[:])+ext)
}

// Used is the bytes of the shards held.
func (s *Shards) Used() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Has reports whether the shard is held, and its size. A shard whose file is gone from the disk, or no longer its
// size (deleted or cut by someone else), is forgotten here and then: it is not held, and an upload may bring it
// back. (Bytes that rot in place are caught where they are read: every read is verified.)
func (s *Shards) Has(root tx.Hash) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held(root)
}

// held is Has with s.mu held.
func (s *Shards) held(root tx.Hash) (uint64, bool) {
	size, ok := s.sizes[root]
	if !ok {
		return 0, false
	}
	fi, err := os.Stat(s.path(root, ".shard"))
	if err != nil || uint64(fi.Size()) != size {
		os.Remove(s.path(root, ".shard"))
		os.Remove(s.path(root, ".bao"))
		delete(s.sizes, root)
		s.used -= size
		return 0, false
	}
	return size, true
}

// Put keeps the shard of size bytes with root root read from r: exactly size bytes, which must hash to root (a
// *vault.BadShardError otherwise, and nothing is kept). A shard already held is not written again (r is not
// read); one being written by another Put, or past the capacity (ErrStorageFull), is refused.
func (s *Shards) Put(root tx.Hash, size uint64, r io.Reader) (err error) {
	if size == 0 || size > vault.MaxShardSize || size%vault.GroupSize != 0 {
		return fmt.Errorf("shard of %d bytes: a multiple of %d up to %d", size, vault.GroupSize, vault.MaxShardSize)
	}
	s.mu.Lock()
	_, held := s.held(root)
	switch {
	case held:
		s.mu.Unlock()
		return nil
	case s.writing[root]:
		s.mu.Unlock()
		return fmt.Errorf("shard %x… is being written already", root[:6])
	case s.used+size > s.capacity || s.used+size < s.used:
		s.mu.Unlock()
		return fmt.Errorf("%w: %d bytes held of %d offered, the shard needs %d more", ErrStorageFull, s.used, s.capacity, size)
	}
	s.writing[root] = true
	s.used += size // reserved while it is written
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.writing, root)
		if err == nil {
			s.sizes[root] = size
		} else {
			s.used -= size
		}
		s.mu.Unlock()
	}()
	tmp, err := os.CreateTemp(s.dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	defer tmp.Close()
	// One pass: the bytes go to the file as the outboard (and the root) is computed over them.
	got, ob, err := vault.Outboard(io.TeeReader(io.LimitReader(r, int64(size)), tmp), size)
	if err != nil {
		return fmt.Errorf("shard %x…: %w (want %d bytes)", root[:6], err, size)
	}
	if n, _ := io.CopyN(io.Discard, r, 1); n != 0 {
		return fmt.Errorf("shard %x…: more than its %d bytes", root[:6], size)
	}
	if got != root {
		return &vault.BadShardError{Root: root}
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	obTmp, err := os.CreateTemp(s.dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(obTmp.Name())
	defer obTmp.Close()
	if _, err := obTmp.Write(ob); err != nil {
		return err
	}
	if err := obTmp.Sync(); err != nil {
		return err
	}
	// The outboard first: a shard file is only ever there with its outboard (OpenShards drops one without).
	if err := os.Rename(obTmp.Name(), s.path(root, ".bao")); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), s.path(root, ".shard")); err != nil {
		return err
	}
	return syncDir(s.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// open returns a held shard's file, outboard and size.
func (s *Shards) open(root tx.Hash) (*os.File, []byte, uint64, error) {
	size, ok := s.Has(root)
	if !ok {
		return nil, nil, 0, fmt.Errorf("shard %x… is not held here", root[:6])
	}
	ob, err := os.ReadFile(s.path(root, ".bao"))
	if err != nil {
		return nil, nil, 0, err
	}
	f, err := os.Open(s.path(root, ".shard"))
	if err != nil {
		return nil, nil, 0, err
	}
	return f, ob, size, nil
}

// Slice writes the verified-slice encoding of [offset, offset+length) of a held shard to w (what a reader
// verifies as it streams).
func (s *Shards) Slice(w io.Writer, root tx.Hash, offset, length uint64) error {
	f, ob, size, err := s.open(root)
	if err != nil {
		return err
	}
	defer f.Close()
	return vault.WriteSlice(w, f, ob, size, offset, length)
}

// Prove is the proof that group g of a held shard is held (vault.Prove).
func (s *Shards) Prove(root tx.Hash, g uint64) ([]byte, error) {
	f, ob, size, err := s.open(root)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return vault.Prove(f, ob, size, g)
}

// Delete drops a held shard (its deal ended, or it moved).
func (s *Shards) Delete(root tx.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	size, ok := s.sizes[root]
	if !ok {
		return nil
	}
	if err := os.Remove(s.path(root, ".shard")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	os.Remove(s.path(root, ".bao"))
	delete(s.sizes, root)
	s.used -= size
	return nil
}

// Roots lists the roots of the shards held, sorted.
func (s *Shards) Roots() []tx.Hash {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]tx.Hash, 0, len(s.sizes))
	for r := range s.sizes {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b tx.Hash) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// Release deletes the shards the ledger no longer places here: held reports whether any object still places root
// on this provider. A shard whose answer fails is kept (asked again next time); the roots deleted are returned.
func (s *Shards) Release(held func(root tx.Hash) (bool, error)) []tx.Hash {
	var gone []tx.Hash
	for _, r := range s.Roots() {
		if placed, err := held(r); err == nil && !placed {
			if s.Delete(r) == nil {
				gone = append(gone, r)
			}
		}
	}
	return gone
}
