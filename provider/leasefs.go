package provider

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/vault"
)

// Every file the daemon opens on a lease's behalf after the workload may have touched the work directory
// (outputs to hash and serve, the disk it uses) is opened here: beneath the work directory, one path component
// at a time with O_NOFOLLOW, so that no symbolic link is ever resolved — not one the job planted in the middle
// of an output path (`ln -s / r` with outputs: [r/etc/shadow]), not one swapped in later. Hard links are the
// other way to make a file of the host appear inside the work directory: a regular file with more than one link
// must belong to the work directory's owner (the lease's user), so a link to a file of root or of the daemon is
// refused even on a host without fs.protected_hardlinks.

// errNotBeneath marks a path that a lease may not name (absolute, "..", a link, not a regular file).
var errNotBeneath = errors.New("not a plain path beneath the work directory")

// workTree is an open lease work directory.
type workTree struct {
	fd    int    // O_PATH descriptor of the work directory
	owner uint32 // its owner: the lease's user
}

// openWorkTree opens dir (the work directory: its own path is the daemon's, never the workload's, but the last
// component is not followed either).
func openWorkTree(dir string) (*workTree, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open work directory: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &workTree{fd: fd, owner: st.Uid}, nil
}

func (t *workTree) Close() error { return unix.Close(t.fd) }

// splitRel checks a slash-separated relative path and returns its components.
func splitRel(rel string) ([]string, error) {
	rel = strings.TrimSuffix(rel, "/")
	if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) {
		return nil, fmt.Errorf("not relative: %w", errNotBeneath)
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, fmt.Errorf("names %q: %w", p, errNotBeneath)
		}
	}
	return parts, nil
}

// openDir opens the directory at the components parts (none: the work directory itself), O_NOFOLLOW at every
// step. The caller closes the descriptor.
func (t *workTree) openDir(parts []string) (int, error) {
	fd, err := unix.Openat(t.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, p := range parts {
		next, err := unix.Openat(fd, p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
				return -1, fmt.Errorf("%s is a link or not a directory: %w", p, errNotBeneath)
			}
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// openFile opens the regular file rel for reading: no link followed, no FIFO or device opened (O_NONBLOCK, then
// checked), a multiply-linked file accepted only when it belongs to the lease's user.
func (t *workTree) openFile(rel string) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	parts, err := splitRel(rel)
	if err != nil {
		return nil, st, err
	}
	dir, err := t.openDir(parts[:len(parts)-1])
	if err != nil {
		return nil, st, err
	}
	defer unix.Close(dir)
	fd, err := unix.Openat(dir, parts[len(parts)-1], unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, st, fmt.Errorf("a symbolic link: %w", errNotBeneath)
		}
		return nil, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, st, err
	}
	if err := t.plain(st); err != nil {
		unix.Close(fd)
		return nil, st, err
	}
	return os.NewFile(uintptr(fd), rel), st, nil
}

// plain accepts a regular file that is the lease's own: singly linked, or linked more than once by the lease's
// user only.
func (t *workTree) plain(st unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("not a regular file: %w", errNotBeneath)
	}
	if st.Nlink > 1 && st.Uid != t.owner {
		return fmt.Errorf("a hard link to a file of uid %d: %w", st.Uid, errNotBeneath)
	}
	return nil
}

// outputLimits bound what collectOutputs reads.
type outputLimits struct {
	Bytes int64 // total size of the files hashed (the lease's disk)
	Files int   // number of files
}

// maxOutputFiles bounds the files of one lease's outputs (and the entries a disk scan visits).
const maxOutputFiles = 100_000

// collectOutputs hashes the regular files under the output paths (files or directories, slash-separated and
// relative to the work directory) without following any link. What does not fit the limits, links, devices
// and paths through links are left out and listed in skipped (their reasons, at most a few); the receipt
// commits to the files returned.
func collectOutputs(ctx context.Context, workDir string, outputs []string, lim outputLimits) (files []merkle.File, skipped []string, err error) {
	t, err := openWorkTree(workDir)
	if err != nil {
		return nil, nil, err
	}
	defer t.Close()
	seen := map[string]bool{}
	var total int64
	skip := func(why string) {
		if len(skipped) < 8 {
			skipped = append(skipped, why)
		} else if len(skipped) == 8 {
			skipped = append(skipped, "…")
		}
	}
	var add func(rel string, depth int) error
	add = func(rel string, depth int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if seen[rel] {
			return nil
		}
		parts, err := splitRel(rel)
		if err != nil {
			skip(rel + ": " + err.Error())
			return nil
		}
		// A directory: walk it (its entries are opened the same way). Anything else falls through to openFile,
		// which refuses links and non-regular files.
		dfd, derr := t.openDir(parts)
		switch {
		case derr == nil:
			names, rerr := readDirNames(dfd)
			unix.Close(dfd)
			if rerr != nil {
				return rerr
			}
			if depth > 64 {
				skip(rel + ": nested too deep")
				return nil
			}
			for _, n := range names {
				if err := add(rel+"/"+n, depth+1); err != nil {
					return err
				}
			}
			return nil
		case errors.Is(derr, unix.ENOENT):
			return nil // an output the job did not write
		case !errors.Is(derr, errNotBeneath) && !errors.Is(derr, unix.ENOTDIR) && !errors.Is(derr, unix.ELOOP):
			return derr
		}
		f, st, err := t.openFile(rel)
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, errNotBeneath):
			skip(rel + ": " + err.Error())
			return nil
		case err != nil:
			return err
		}
		defer f.Close()
		seen[rel] = true
		if len(files) >= lim.Files {
			skip(fmt.Sprintf("%s: over %d files", rel, lim.Files))
			return nil
		}
		if st.Size > lim.Bytes-total {
			skip(fmt.Sprintf("%s: %d bytes, over the lease's disk (%d bytes of outputs at most)", rel, st.Size, lim.Bytes))
			return nil
		}
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(ctxReader{ctx, f}, st.Size))
		if err != nil {
			return err
		}
		total += n
		mf := merkle.File{Path: rel, Size: n}
		copy(mf.SHA256[:], h.Sum(nil))
		files = append(files, mf)
		return nil
	}
	for _, o := range outputs {
		rel := path.Clean(strings.TrimSuffix(o, "/"))
		if err := add(rel, 0); err != nil {
			return files, skipped, err
		}
	}
	return files, skipped, merkle.Sort(files)
}

// readDirNames lists a directory's entries, sorted, without following anything.
func readDirNames(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	names, err := f.Readdirnames(maxOutputFiles + 1)
	if err != nil && err != io.EOF {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// ctxReader stops a long read when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// diskUsage is the space the files under dir take (allocated blocks, so a sparse file counts what it really
// uses) and the number of entries, walked without following links. It stops counting past maxEntries.
func diskUsage(ctx context.Context, dir string, maxEntries int) (bytes int64, entries int, err error) {
	t, err := openWorkTree(dir)
	if err != nil {
		return 0, 0, err
	}
	defer t.Close()
	root, err := unix.Openat(t.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	var walk func(fd int, depth int) error
	walk = func(fd int, depth int) error {
		defer unix.Close(fd)
		names, err := readDirNames(fd)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			entries++
			if entries > maxEntries {
				return nil
			}
			var st unix.Stat_t
			if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				continue // removed meanwhile
			}
			bytes += st.Blocks * 512
			if st.Mode&unix.S_IFMT == unix.S_IFDIR && depth < 256 {
				sub, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					continue
				}
				if err := walk(sub, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err = walk(root, 0)
	return bytes, entries, err
}

// openLog opens a lease's log for reading: never through a link, never a FIFO or device.
func openLog(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: not a regular file: %w", p, errNotBeneath)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// outputsVaultRoot is the Vault root of a lease's outputs (vault.OutputsRoot of the files its receipt covers),
// when the files read as they were hashed: one that changed since (a workload's process that outlived it, say)
// gives an error, and the receipt no Vault root, rather than a root of files it does not cover.
func outputsVaultRoot(ctx context.Context, workDir string, files []merkle.File) (tx.Hash, error) {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	t, err := openWorkTree(workDir)
	if err != nil {
		return tx.Hash{}, err
	}
	defer t.Close()
	open := func(p string) (*os.File, error) { // as collectOutputs opens them: no link followed, no other's file
		f, _, err := t.openFile(p)
		return f, err
	}
	root, _, read, err := vault.OutputsRoot(ctx, paths, open)
	if err != nil {
		return tx.Hash{}, err
	}
	want := slices.Clone(files)
	if err := merkle.Sort(want); err != nil {
		return tx.Hash{}, err
	}
	for i, f := range read {
		if f != want[i] {
			return tx.Hash{}, fmt.Errorf("output %s changed since it was hashed", f.Path)
		}
	}
	return root, nil
}
