package vault

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"syscall"

	"lukechampine.com/blake3"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/merkle"
)

// A lease's outputs in the Vault. The provider's receipt covers a job's outputs as a list of files (their paths
// and SHA-256, merkle.Root); when the manifest asks for them in the Vault, it also carries the root of the one
// object that holds exactly those files: OutputsArchive, the deterministic archive of the listed files and the
// directories above them, each file as a plain file (no executable bit: the list does not record one). It is a
// function of the list alone, so the provider (from its work directory) and the tenant (from the files it
// downloaded and verified) write the same bytes, and the object the tenant stores has the root the provider
// signed. For a directory holding only those files, none executable, it is what Archive writes: `spare store put
// outputs/<lease>/` gives the same root.

// OpenFile opens one output file (a slash-separated path) for reading. It must refuse anything but a regular
// file: the caller decides how (a provider opens its lease's work directory without following any link).
type OpenFile func(path string) (*os.File, error)

// DirFiles opens files beneath dir through root, so that nothing outside it is reached, refusing anything but a
// regular file. The returned close releases root.
func DirFiles(dir string) (OpenFile, func() error, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	return func(p string) (*os.File, error) {
		fi, err := root.Lstat(p)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			if fi.IsDir() {
				return nil, fmt.Errorf("a directory, not a regular file")
			}
			return nil, fmt.Errorf("a %s, not a regular file", kindOf(fi.Mode().Type()))
		}
		return root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0) // a pipe swapped in since is not waited on
	}, root.Close, nil
}

// OutputsArchive writes the outputs archive of the regular files paths (slash-separated) to w, opening each with
// open, and returns each file as it read it (size and SHA-256, sorted by path) for the caller to compare with
// what it vouches for. A path named twice, that is not clean, or that is also the directory above another, is
// refused naming it; so is a file that is not regular or changes size while it is read. It stops when ctx is
// done.
func OutputsArchive(ctx context.Context, w io.Writer, paths []string, open OpenFile) ([]merkle.File, error) {
	if len(paths) > DefaultArchiveLimits.Entries {
		return nil, fmt.Errorf("%d output files, at most %d in one object", len(paths), DefaultArchiveLimits.Entries)
	}
	isFile := make(map[string]bool, len(paths))
	entries := make([]string, 0, len(paths))
	for _, p := range paths {
		if err := checkName(p); err != nil {
			return nil, fmt.Errorf("output %q: %w", p, err)
		}
		if isFile[p] {
			return nil, fmt.Errorf("output %q is named twice", p)
		}
		isFile[p] = true
		entries = append(entries, p)
	}
	for _, p := range paths {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if isFile[d] {
				return nil, fmt.Errorf("output %q is both a file and the directory above %q", d, p)
			}
			if _, seen := isFile[d]; seen {
				break // and every directory above it
			}
			isFile[d] = false
			entries = append(entries, d)
		}
	}
	if len(entries) > DefaultArchiveLimits.Entries {
		return nil, fmt.Errorf("%d output files and directories, at most %d in one object", len(entries), DefaultArchiveLimits.Entries)
	}
	slices.Sort(entries) // whole paths in byte order, as Archive writes them
	tw := tar.NewWriter(w)
	files := make([]merkle.File, 0, len(paths))
	var total uint64
	buf := make([]byte, 256<<10)
	for _, p := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h := &tar.Header{Name: p, ModTime: epoch, Format: tar.FormatPAX}
		if !isFile[p] {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, p+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
			continue
		}
		f, err := open(p)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", p, err)
		}
		fi, err := f.Stat()
		if err == nil && !fi.Mode().IsRegular() {
			err = fmt.Errorf("a %s, not a regular file", kindOf(fi.Mode().Type()))
		}
		if err == nil {
			if total += uint64(fi.Size()); total > DefaultArchiveLimits.Bytes {
				err = fmt.Errorf("the outputs hold more than %d bytes, the largest object", DefaultArchiveLimits.Bytes)
			}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("output %s: %w", p, err)
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			f.Close()
			return nil, err
		}
		sum := sha256.New()
		n, err := io.CopyBuffer(io.MultiWriter(tw, sum), &ctxReader{ctx, io.LimitReader(f, h.Size)}, buf)
		f.Close()
		if err == nil && n != h.Size {
			err = fmt.Errorf("output %s: changed size while it was archived", p)
		}
		if err != nil {
			return nil, err
		}
		mf := merkle.File{Path: p, Size: n}
		sum.Sum(mf.SHA256[:0])
		files = append(files, mf)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return files, merkle.Sort(files)
}

// OutputsRoot is the Vault root and size of OutputsArchive(paths, open), computed as it streams (nothing written
// to disk), with the files it read.
func OutputsRoot(ctx context.Context, paths []string, open OpenFile) (tx.Hash, uint64, []merkle.File, error) {
	h := blake3.New(32, nil)
	cw := &countWriter{w: h}
	bw := bufio.NewWriterSize(cw, 256<<10) // BLAKE3 hashes in SIMD what it is given at once (see Encode)
	files, err := OutputsArchive(ctx, bw, paths, open)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return tx.Hash{}, 0, nil, err
	}
	if cw.n > MaxObjectSize {
		return tx.Hash{}, 0, nil, fmt.Errorf("the outputs' archive is %d bytes, more than the largest object (%d)", cw.n, uint64(MaxObjectSize))
	}
	var root tx.Hash
	h.Sum(root[:0])
	return root, cw.n, files, nil
}

type countWriter struct {
	w io.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
