// Package store holds the ledger's key/value state: an ordered in-memory tree of the committed state, persisted
// to LevelDB atomically at each commit, with copy-on-write working copies for a block and overlays for a single
// transaction. It knows nothing of what the keys mean.
//
// The app hash chains the writes of every block: hash(h) = SHA-256(hash(h-1) || h || digest of the sorted writes
// of block h). Computing it costs O(writes in the block), not O(state), and two nodes agree on it exactly when they
// applied the same writes to the same state.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/google/btree"
	"github.com/syndtr/goleveldb/leveldb"
	lerrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// KV is the read/write interface modules use. Iterate visits keys in [start, end) in ascending order; end nil
// means no upper bound. The callback must not modify the KV; it returns false to stop.
type KV interface {
	Get(key string) ([]byte, bool)
	Set(key string, val []byte)
	Delete(key string)
	Iterate(start, end string, fn func(key string, val []byte) bool)
}

type item struct {
	key string
	val []byte
}

func less(a, b item) bool { return a.key < b.key }

const degree = 32

// metaPrefix marks keys the store keeps for itself in the database (never in the tree).
const metaPrefix = "\x00meta/"

var (
	keyHeight  = []byte(metaPrefix + "height")
	keyAppHash = []byte(metaPrefix + "apphash")
	keyDigest  = []byte(metaPrefix + "statesum") // the state's digest (digest.go), written with every commit
)

// ErrDamaged is a database whose contents are not what was committed to it: Open refuses it (the error says how
// to rebuild the state from the chain's blocks).
var ErrDamaged = errors.New("the ledger's database is damaged")

// Store is the committed state.
type Store struct {
	mu        sync.RWMutex
	committed *btree.BTreeG[item]
	db        *leveldb.DB // nil for an in-memory store
	height    int64
	appHash   []byte
	digest    digest // of committed, kept for a persisted store
}

// OpenMem returns an empty store that is not persisted (tests, benchmarks).
func OpenMem() *Store {
	return &Store{committed: btree.NewG(degree, less)}
}

// Open opens (or creates) the LevelDB at dir, loads the committed state into memory and checks it against the
// digest committed with it. A database LevelDB cannot read, or whose state does not add up to its digest, is
// refused with ErrDamaged and nothing in it is changed: an existing database is read and checked through a
// read-only open (which writes nothing: a read-write open would fold a damaged journal into a new table and
// delete it, rewrite the MANIFEST and rotate CURRENT) before it is opened for writing.
func Open(dir string) (*Store, error) {
	s := &Store{committed: btree.NewG(degree, less)}
	if exists(dir) {
		ro, err := leveldb.OpenFile(dir, &opt.Options{ReadOnly: true, ErrorIfMissing: true})
		if err != nil {
			return nil, openErr(dir, err)
		}
		err = s.load(dir, ro)
		ro.Close()
		if err != nil {
			return nil, err
		}
	}
	db, err := leveldb.OpenFile(dir, &opt.Options{})
	if err != nil {
		return nil, openErr(dir, err)
	}
	s.db = db
	return s, nil
}

// exists says whether dir holds a database to check, or the remains of one: any file but LevelDB's LOCK and info
// LOG, which an open that failed before it wrote anything leaves behind.
func exists(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); n != "LOCK" && n != "LOG" && n != "LOG.old" {
			return true
		}
	}
	return false
}

// openErr is what an open of dir failing with err means to the operator.
func openErr(dir string, err error) error {
	if lerrors.IsCorrupted(err) || errors.Is(err, os.ErrNotExist) {
		return damaged(dir, 0, err.Error())
	}
	return fmt.Errorf("store: open %s: %w", dir, err)
}

// load reads the committed state, height and app hash from db into s and checks the state against its digest.
func (s *Store) load(dir string, db *leveldb.DB) error {
	x := newHasher()
	it := db.NewIterator(&util.Range{}, nil)
	for it.Next() {
		k := it.Key()
		if bytes.HasPrefix(k, []byte(metaPrefix)) {
			continue
		}
		v := append([]byte(nil), it.Value()...)
		s.committed.ReplaceOrInsert(item{key: string(k), val: v})
		s.digest.add(x.term(string(k), v))
	}
	it.Release()
	if err := it.Error(); err != nil {
		if lerrors.IsCorrupted(err) || errors.Is(err, os.ErrNotExist) { // a table cut short or gone
			return damaged(dir, 0, err.Error())
		}
		return fmt.Errorf("store: load %s: %w", dir, err)
	}
	if v, err := db.Get(keyHeight, nil); err == nil && len(v) == 8 {
		s.height = int64(binary.BigEndian.Uint64(v))
	}
	if v, err := db.Get(keyAppHash, nil); err == nil {
		s.appHash = append([]byte(nil), v...)
	}
	// A database written before digests existed has none: its digest is written with the next commit.
	if v, err := db.Get(keyDigest, nil); err == nil {
		if want, ok := digestOf(v); !ok || want != s.digest {
			return damaged(dir, s.height, "its state does not add up to the digest committed with it (a part of what was committed was lost or changed on disk)")
		}
	}
	return nil
}

// damaged is ErrDamaged for dir, with what was found and how to rebuild.
func damaged(dir string, height int64, what string) error {
	at := ""
	if height > 0 {
		at = fmt.Sprintf(" at height %d", height)
	}
	return fmt.Errorf("%w: %s%s: %s. Nothing was changed. Rebuild it from the chain's blocks with 'spare node --rebuild-ledger' (it moves %s aside and replays every block from genesis), or restore it from a backup",
		ErrDamaged, dir, at, what, dir)
}

// Close closes the database.
func (s *Store) Close() error {
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

// Height is the last committed height (0 before the first commit).
func (s *Store) Height() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.height
}

// AppHash is the app hash of the last committed height.
func (s *Store) AppHash() []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]byte(nil), s.appHash...)
}

// Begin returns a working copy of the committed state. The copy is O(1); pages are copied on first write.
func (s *Store) Begin() *Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Batch{tree: s.committed.Clone(), writes: map[string][]byte{}, deleted: map[string]bool{},
		journal: map[string]bool{}, prevHash: s.appHash}
}

// View returns a read-only snapshot of the committed state and its height, safe to use concurrently with commits.
func (s *Store) View() (*Batch, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Batch{tree: s.committed.Clone(), readOnly: true}, s.height
}

// Commit makes b the committed state at height with appHash, persisting its writes atomically.
func (s *Store) Commit(b *Batch, height int64, appHash []byte) error {
	var dg digest
	if s.db != nil {
		wb := new(leveldb.Batch)
		dg = s.digest // only Commit changes it, and commits do not overlap
		s.mu.RLock()  // committed is b's base (a View clones it meanwhile under the write lock)
		base := s.committed
		s.mu.RUnlock()
		x := newHasher()
		for _, k := range b.sortedKeys() {
			if old, ok := base.Get(item{key: k}); ok {
				dg.sub(x.term(k, old.val))
			}
			if b.deleted[k] {
				wb.Delete([]byte(k))
			} else {
				wb.Put([]byte(k), b.writes[k])
				dg.add(x.term(k, b.writes[k]))
			}
		}
		wb.Put(keyDigest, dg.bytes())
		var hb [8]byte
		binary.BigEndian.PutUint64(hb[:], uint64(height))
		wb.Put(keyHeight, hb[:])
		wb.Put(keyAppHash, appHash)
		if err := s.db.Write(wb, &opt.WriteOptions{Sync: true}); err != nil {
			return fmt.Errorf("store: commit height %d: %w", height, err)
		}
	}
	s.mu.Lock()
	s.committed = b.tree
	s.digest = dg
	s.height = height
	s.appHash = append([]byte(nil), appHash...)
	s.mu.Unlock()
	b.readOnly = true
	return nil
}

// Batch is a working copy of the state for one block (or for the mempool's checks). It records its writes so
// they can be hashed and persisted.
type Batch struct {
	tree     *btree.BTreeG[item]
	writes   map[string][]byte // to persist at commit
	deleted  map[string]bool   // to delete at commit
	journal  map[string]bool   // keys touched since the last AppHash
	prevHash []byte
	readOnly bool
}

var _ KV = (*Batch)(nil)

// Fork returns an independent working copy of b's current contents (O(1), copy-on-write). Its writes are not
// persisted by committing b.
func (b *Batch) Fork() *Batch {
	return &Batch{tree: b.tree.Clone(), writes: map[string][]byte{}, deleted: map[string]bool{},
		journal: map[string]bool{}, prevHash: b.prevHash}
}

// Get returns the value at key.
func (b *Batch) Get(key string) ([]byte, bool) {
	it, ok := b.tree.Get(item{key: key})
	return it.val, ok
}

// Set stores val at key.
func (b *Batch) Set(key string, val []byte) {
	if b.readOnly {
		panic("store: write to a read-only view")
	}
	b.tree.ReplaceOrInsert(item{key: key, val: val})
	b.writes[key] = val
	delete(b.deleted, key)
	b.journal[key] = true
}

// Delete removes key.
func (b *Batch) Delete(key string) {
	if b.readOnly {
		panic("store: write to a read-only view")
	}
	b.tree.Delete(item{key: key})
	delete(b.writes, key)
	b.deleted[key] = true
	b.journal[key] = true
}

// Iterate visits [start, end) in order.
func (b *Batch) Iterate(start, end string, fn func(string, []byte) bool) {
	visit := func(it item) bool { return fn(it.key, it.val) }
	if end == "" {
		b.tree.AscendGreaterOrEqual(item{key: start}, visit)
	} else {
		b.tree.AscendRange(item{key: start}, item{key: end}, visit)
	}
}

// Len is the number of keys.
func (b *Batch) Len() int { return b.tree.Len() }

// Writes is the number of keys written or deleted so far.
func (b *Batch) Writes() int { return len(b.writes) + len(b.deleted) }

func (b *Batch) sortedKeys() []string {
	keys := make([]string, 0, len(b.writes)+len(b.deleted))
	for k := range b.writes {
		keys = append(keys, k)
	}
	for k := range b.deleted {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// AppHash seals the writes made since the previous call: it returns SHA-256(previous hash || height || digest of
// those writes in key order) and makes that the previous hash for the next call.
func (b *Batch) AppHash(height int64) []byte {
	keys := make([]string, 0, len(b.journal))
	for k := range b.journal {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := sha256.New()
	var n [8]byte
	for _, k := range keys {
		binary.BigEndian.PutUint64(n[:], uint64(len(k)))
		d.Write(n[:])
		d.Write([]byte(k))
		v, ok := b.Get(k)
		if !ok {
			d.Write([]byte{0})
			continue
		}
		d.Write([]byte{1})
		binary.BigEndian.PutUint64(n[:], uint64(len(v)))
		d.Write(n[:])
		d.Write(v)
	}
	h := sha256.New()
	h.Write(b.prevHash)
	binary.BigEndian.PutUint64(n[:], uint64(height))
	h.Write(n[:])
	h.Write(d.Sum(nil))
	b.prevHash = h.Sum(nil)
	b.journal = map[string]bool{}
	return append([]byte(nil), b.prevHash...)
}

// Overlay buffers the writes of one transaction over a parent KV; Write applies them, dropping the overlay
// discards them, so a failed transaction leaves no trace.
type Overlay struct {
	parent KV
	writes map[string][]byte // nil value = deleted
}

var _ KV = (*Overlay)(nil)

// NewOverlay starts an overlay on parent.
func NewOverlay(parent KV) *Overlay { return &Overlay{parent: parent, writes: map[string][]byte{}} }

// Get reads through the overlay.
func (o *Overlay) Get(key string) ([]byte, bool) {
	if v, ok := o.writes[key]; ok {
		return v, v != nil
	}
	return o.parent.Get(key)
}

// Set buffers a write. A nil val is stored as empty.
func (o *Overlay) Set(key string, val []byte) {
	if val == nil {
		val = []byte{}
	}
	o.writes[key] = val
}

// Delete buffers a deletion.
func (o *Overlay) Delete(key string) { o.writes[key] = nil }

// Iterate merges the overlay's writes with the parent's keys in order.
func (o *Overlay) Iterate(start, end string, fn func(string, []byte) bool) {
	var mine []string
	for k := range o.writes {
		if k >= start && (end == "" || k < end) {
			mine = append(mine, k)
		}
	}
	sort.Strings(mine)
	i := 0
	stopped := false
	emitMineBefore := func(limit string, bounded bool) bool {
		for i < len(mine) && (!bounded || mine[i] < limit) {
			k := mine[i]
			i++
			if v := o.writes[k]; v != nil {
				if !fn(k, v) {
					return false
				}
			}
		}
		return true
	}
	o.parent.Iterate(start, end, func(k string, v []byte) bool {
		if !emitMineBefore(k, true) {
			stopped = true
			return false
		}
		if _, overridden := o.writes[k]; overridden {
			if i < len(mine) && mine[i] == k {
				i++
				if w := o.writes[k]; w != nil && !fn(k, w) {
					stopped = true
					return false
				}
			}
			return true
		}
		if !fn(k, v) {
			stopped = true
			return false
		}
		return true
	})
	if !stopped {
		emitMineBefore("", false)
	}
}

// Write applies the buffered writes to the parent. Their order does not matter: the parent's state and its
// journal of written keys (hashed in key order) come out the same.
func (o *Overlay) Write() {
	for k, v := range o.writes {
		if v == nil {
			o.parent.Delete(k)
		} else {
			o.parent.Set(k, v)
		}
	}
	o.writes = map[string][]byte{}
}
