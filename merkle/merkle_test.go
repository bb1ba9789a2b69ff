package merkle

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

func files(n int) []File {
	var fs []File
	for i := 0; i < n; i++ {
		c := []byte(fmt.Sprintf("content %d", i))
		fs = append(fs, File{Path: fmt.Sprintf("out/f%03d", n-i), SHA256: sha256.Sum256(c), Size: int64(len(c))})
	}
	return fs
}

func TestRootAndProofs(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(0, 40).Draw(rt, "n")
		fs := files(n)
		root, err := Root(fs)
		if err != nil {
			rt.Fatal(err)
		}
		for _, f := range fs {
			p, err := Prove(fs, f.Path)
			if err != nil {
				rt.Fatal(err)
			}
			if err := Verify(root, f, p); err != nil {
				rt.Fatalf("%s: %v", f.Path, err)
			}
			bad := f
			bad.SHA256[0] ^= 1
			if Verify(root, bad, p) == nil {
				rt.Fatalf("%s: a changed file verified", f.Path)
			}
		}
	})
}

func TestRootOrderIndependentAndSensitive(t *testing.T) {
	fs := files(5)
	r1, _ := Root(fs)
	rev := append([]File(nil), fs...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	r2, _ := Root(rev)
	if r1 != r2 {
		t.Fatal("root depends on input order")
	}
	fs[2].Path = "out/renamed"
	if r3, _ := Root(fs); r3 == r1 {
		t.Fatal("renaming a file kept the root")
	}
	if _, err := Root([]File{{Path: "a"}, {Path: "a"}}); err == nil {
		t.Fatal("duplicate path accepted")
	}
	empty, _ := Root(nil)
	if empty != sha256.Sum256(nil) {
		t.Fatal("empty root")
	}
}
