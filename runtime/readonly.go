package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// Read-only paths (Spec.ReadOnlyPaths): files and directory trees of the work directory that the workload sees
// read-only and cannot remove, rename or replace — a job's Vault inputs, which the provider fetched and checked
// against their roots before the start. A runtime with a mount namespace (runtime/docker, runtime/process's
// sandbox) binds each onto itself read-only: a mount point cannot be unlinked or renamed (EBUSY), nothing can
// be linked from it into the writable work directory (EXDEV), and what it holds cannot be written, created,
// chmod-ed or renamed (EROFS). A directory above one is the workload's, and renaming it would take the input
// along and leave its path free: each such directory is bound onto itself too, writable (a "pin"), so that it
// cannot be renamed or removed either. ReadOnlyMounts computes those mounts.

// BindMount is one bind mount of a path of the work directory onto itself.
type BindMount struct {
	// Path is relative to the work directory, clean and slash-separated.
	Path string `json:"path"`
	// ReadOnly: the path and everything beneath it read-only (a read-only path); false: a directory above a
	// read-only path, left writable, bound only so that it cannot be renamed or removed.
	ReadOnly bool `json:"read_only,omitempty"`
}

// CheckReadOnlyPath checks that p is a read-only path a runtime can mount: relative to the work directory,
// slash-separated and clean (no "..", ".", empty or repeated element, no trailing slash), not the work directory
// itself.
func CheckReadOnlyPath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("read-only path %q: the work directory itself cannot be read-only: name a file or directory in it", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("read-only path %q: absolute; give it relative to the work directory", p)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("read-only path %q: contains a NUL byte", p)
	case slices.Contains(strings.Split(p, "/"), ".."):
		return fmt.Errorf("read-only path %q: has a \"..\" element: it must stay in the work directory", p)
	case path.Clean(p) != p:
		return fmt.Errorf("read-only path %q: not clean (want %q)", p, path.Clean(p))
	}
	return nil
}

// ReadOnlyLayout checks paths (CheckReadOnlyPath) and returns the bind mounts that make them read-only, in the
// order to make them (a directory before what it holds): each directory above a read-only path, writable, then
// the path, read-only. A path beneath another read-only path adds nothing (the mount of the one above is
// recursive); duplicates are dropped. It does not look at the file system: see ReadOnlyMounts.
func ReadOnlyLayout(paths []string) ([]BindMount, error) {
	ro := map[string]bool{}
	for _, p := range paths {
		if err := CheckReadOnlyPath(p); err != nil {
			return nil, err
		}
		ro[p] = true
	}
	// covered reports whether p is beneath another read-only path.
	covered := func(p string) bool {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if ro[d] {
				return true
			}
		}
		return false
	}
	all := map[string]bool{} // path → read-only
	for p := range ro {
		if covered(p) {
			continue
		}
		all[p] = true
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			all[d] = false // not itself read-only: then p would be covered
		}
	}
	out := make([]BindMount, 0, len(all))
	for p, r := range all {
		out = append(out, BindMount{Path: p, ReadOnly: r})
	}
	// A directory is a prefix of what it holds, so sorts first.
	slices.SortFunc(out, func(a, b BindMount) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// ReadOnlyMounts is ReadOnlyLayout(paths) checked against the work directory workDir as it is on disk: every
// path and every directory above it exists, as what it is (no element is a symbolic link: each is looked at
// with lstat, one element at a time, beneath workDir opened as an *os.Root), the directories are directories
// and a read-only path is a regular file or a directory. So a runtime that hands a path to someone who would
// follow links (the Docker engine binds what a host path resolves to) binds what the work directory holds at
// that path. Nothing in the work directory runs before the start, but a runtime whose mount set-up does not
// follow links either (openat2 RESOLVE_NO_SYMLINKS) should still use it. No paths: nil, with no look.
func ReadOnlyMounts(workDir string, paths []string) ([]BindMount, error) {
	mounts, err := ReadOnlyLayout(paths)
	if err != nil || len(mounts) == 0 {
		return nil, err
	}
	root, err := os.OpenRoot(workDir)
	if err != nil {
		return nil, fmt.Errorf("read-only paths: open the work directory: %w", err)
	}
	defer root.Close()
	for _, m := range mounts {
		// Every element above m was checked already (it is an earlier mount, sorted first): a real directory.
		fi, err := root.Lstat(m.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read-only path %q: not in the work directory", m.Path)
		}
		if err != nil {
			return nil, fmt.Errorf("read-only path %q: %w", m.Path, err)
		}
		switch t := fi.Mode().Type(); {
		case t&fs.ModeSymlink != 0:
			return nil, fmt.Errorf("read-only path %q: is a symbolic link (links are not followed)", m.Path)
		case !m.ReadOnly && !fi.IsDir():
			return nil, fmt.Errorf("read-only path below %q: it is not a directory (%v)", m.Path, t)
		case m.ReadOnly && !fi.IsDir() && !fi.Mode().IsRegular():
			return nil, fmt.Errorf("read-only path %q: neither a regular file nor a directory (%v)", m.Path, t)
		}
	}
	return mounts, nil
}
