// Package merkle commits to a set of output files with one root hash and proves single files against it. The
// provider puts the root in a lease's signed receipt; the tenant recomputes it from the files it downloaded.
//
// Leaves are the files sorted by path: leaf = SHA-256(0x00 || len(path) || path || SHA-256(content)). Inner
// nodes are SHA-256(0x01 || left || right); an odd node is carried up unchanged. The empty set's root is
// SHA-256 of nothing. Domain-separating leaves from inner nodes stops a node from posing as a file.
package merkle

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/sparenet/spare/ledger/tx"
)

// File is one output: its slash-separated path relative to the work directory and the SHA-256 of its content.
type File struct {
	Path   string  `json:"path"`
	SHA256 tx.Hash `json:"sha256"`
	Size   int64   `json:"size"`
}

// Leaf is the hash of one file's entry.
func Leaf(f File) tx.Hash {
	h := sha256.New()
	h.Write([]byte{0})
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(f.Path)))
	h.Write(n[:])
	h.Write([]byte(f.Path))
	h.Write(f.SHA256[:])
	var out tx.Hash
	copy(out[:], h.Sum(nil))
	return out
}

func node(l, r tx.Hash) tx.Hash {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l[:])
	h.Write(r[:])
	var out tx.Hash
	copy(out[:], h.Sum(nil))
	return out
}

// Sort orders files by path, as the tree does; duplicate paths are an error.
func Sort(files []File) error {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for i := 1; i < len(files); i++ {
		if files[i].Path == files[i-1].Path {
			return fmt.Errorf("merkle: path %q listed twice", files[i].Path)
		}
	}
	return nil
}

// Root returns the root over files (sorted by path first).
func Root(files []File) (tx.Hash, error) {
	fs := append([]File(nil), files...)
	if err := Sort(fs); err != nil {
		return tx.Hash{}, err
	}
	if len(fs) == 0 {
		return sha256.Sum256(nil), nil
	}
	level := make([]tx.Hash, len(fs))
	for i, f := range fs {
		level[i] = Leaf(f)
	}
	for len(level) > 1 {
		next := make([]tx.Hash, 0, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
			} else {
				next = append(next, node(level[i], level[i+1]))
			}
		}
		level = next
	}
	return level[0], nil
}

// Step is one sibling on the path from a leaf to the root.
type Step struct {
	Hash  tx.Hash `json:"hash"`
	Right bool    `json:"right"` // the sibling is on the right
}

// Prove returns the path proving files[i] (index in path order) against the root.
func Prove(files []File, path string) ([]Step, error) {
	fs := append([]File(nil), files...)
	if err := Sort(fs); err != nil {
		return nil, err
	}
	idx := sort.Search(len(fs), func(i int) bool { return fs[i].Path >= path })
	if idx == len(fs) || fs[idx].Path != path {
		return nil, fmt.Errorf("merkle: %q is not among the files", path)
	}
	level := make([]tx.Hash, len(fs))
	for i, f := range fs {
		level[i] = Leaf(f)
	}
	var proof []Step
	for len(level) > 1 {
		if sib := idx ^ 1; sib < len(level) {
			proof = append(proof, Step{Hash: level[sib], Right: sib > idx})
		}
		next := make([]tx.Hash, 0, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
			} else {
				next = append(next, node(level[i], level[i+1]))
			}
		}
		level, idx = next, idx/2
	}
	return proof, nil
}

// ErrMismatch is returned when a proof does not lead to the root.
var ErrMismatch = errors.New("merkle: proof does not match the root")

// Verify checks that f is committed to by root through proof.
func Verify(root tx.Hash, f File, proof []Step) error {
	h := Leaf(f)
	for _, s := range proof {
		if s.Right {
			h = node(h, s.Hash)
		} else {
			h = node(s.Hash, h)
		}
	}
	if h != root {
		return ErrMismatch
	}
	return nil
}

// HashFile reads the file at path and returns its entry under the slash-separated name rel.
func HashFile(path, rel string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, err
	}
	out := File{Path: rel, Size: n}
	copy(out.SHA256[:], h.Sum(nil))
	return out, nil
}
