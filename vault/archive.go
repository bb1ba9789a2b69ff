package vault

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// A directory is stored as one object: a deterministic tar archive of its regular files and directories. The
// same tree gives the same bytes, so the same root, whoever archives it and whenever: entries in byte order of
// their paths, no times, owners or permissions beyond whether a file is executable. Symbolic links, devices and
// other special files are refused (a link could point anywhere on the machine that extracts it); so are names
// that are not clean relative UTF-8 paths.

// ArchiveLimits bound what Archive writes and Extract accepts.
type ArchiveLimits struct {
	Entries int    // files and directories
	Bytes   uint64 // of file contents in all
}

// DefaultArchiveLimits are generous for datasets and checkpoints (a million entries, the largest object).
var DefaultArchiveLimits = ArchiveLimits{Entries: 1_000_000, Bytes: MaxObjectSize}

const maxArchivePath = 4096

// epoch is every entry's time: none.
var epoch = time.Unix(0, 0).UTC()

// Archive writes the deterministic archive of directory dir to w. It reads dir through os.Root, so that nothing
// outside it is reached, and refuses any entry that is not a regular file or a directory, naming it.
func Archive(w io.Writer, dir string, lim ArchiveLimits) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var paths []string
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if t := d.Type(); !t.IsRegular() && !t.IsDir() {
			return fmt.Errorf("%s: a %s: only regular files and directories are stored (copy what it points to in its place)", path.Join(dir, p), kindOf(t))
		}
		if err := checkName(p); err != nil {
			return fmt.Errorf("%s: %w", path.Join(dir, p), err)
		}
		if len(paths) == lim.Entries {
			return fmt.Errorf("%s holds more than %d entries", dir, lim.Entries)
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(paths) // WalkDir's lexical order is per directory; the archive's is of whole paths
	tw := tar.NewWriter(w)
	var total uint64
	for _, p := range paths {
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: p, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, p+"/", 0o755
		case fi.Mode().IsRegular():
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, fi.Size()
			if fi.Mode()&0o111 != 0 {
				h.Mode = 0o755
			}
			total += uint64(fi.Size())
			if total > lim.Bytes {
				return fmt.Errorf("%s holds more than %d bytes", dir, lim.Bytes)
			}
		default:
			return fmt.Errorf("%s: changed into a %s while it was archived", path.Join(dir, p), kindOf(fi.Mode().Type()))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			f, err := root.Open(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, io.LimitReader(f, h.Size))
			f.Close()
			if err == nil && n != h.Size {
				err = fmt.Errorf("%s: changed size while it was archived", path.Join(dir, p))
			}
			if err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func kindOf(t fs.FileMode) string {
	switch {
	case t&fs.ModeSymlink != 0:
		return "symbolic link"
	case t&fs.ModeDevice != 0:
		return "device"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// checkName refuses a path that is not a clean relative path of UTF-8 names.
func checkName(p string) error {
	switch {
	case p == "" || len(p) > maxArchivePath:
		return fmt.Errorf("path of %d bytes: from 1 to %d", len(p), maxArchivePath)
	case !utf8.ValidString(p) || strings.ContainsAny(p, "\x00\\"):
		return errors.New("path is not UTF-8 without NUL or backslash")
	case !fs.ValidPath(p):
		return errors.New("path is not a clean relative path (no leading /, no . or .. elements)")
	}
	return nil
}

// Extract writes the archive read from r into directory dir, which it creates and which must not exist yet. It
// accepts only what Archive writes — directories and regular files with clean relative names, each once, in
// order, a directory before what it holds — within lim, through os.Root so that nothing lands outside dir, and
// refuses anything else naming the entry: an archive is what a tenant stored, and may be hostile.
func Extract(r io.Reader, dir string, lim ArchiveLimits) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var prev string
	var total uint64
	seen := map[string]bool{}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("archive entry %d: %w", n+1, err)
		}
		if n == lim.Entries {
			return fmt.Errorf("archive holds more than %d entries", lim.Entries)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if err := checkName(name); err != nil {
			return fmt.Errorf("archive entry %q: %w", h.Name, err)
		}
		if name <= prev && n > 0 || seen[name] {
			return fmt.Errorf("archive entry %q: out of order or repeated (not an archive this build writes)", h.Name)
		}
		prev = name
		seen[name] = true
		if d := path.Dir(name); d != "." && !seen[d] {
			return fmt.Errorf("archive entry %q: its directory %q comes first in an archive this build writes", h.Name, d)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if h.Size < 0 || uint64(h.Size) > lim.Bytes-total {
				return fmt.Errorf("archive entry %q: %d bytes, over the %d its archive may hold", h.Name, h.Size, lim.Bytes)
			}
			total += uint64(h.Size)
			mode := fs.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("archive entry %q: %w", h.Name, err)
			}
		default:
			return fmt.Errorf("archive entry %q: type %q: only directories and regular files are extracted", h.Name, h.Typeflag)
		}
	}
}
