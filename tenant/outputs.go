package tenant

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/termsafe"
)

// Limits on what a provider may declare about a lease's outputs. The byte total is bounded separately, by the
// disk the order paid for.
const (
	maxOutputFiles   = 100_000
	maxOutputPathLen = 1024
	maxStatusBytes   = 32 << 20 // the status answer that carries the declared list
)

// ErrOutputs is wrapped by every error that says the provider's outputs (their list or their download) break the
// rules: the files are then left out of the destination.
var ErrOutputs = errors.New("the provider's outputs were refused")

// outputsError names what the provider did wrong.
func outputsError(leaseID uint64, format string, args ...any) error {
	return fmt.Errorf("%w: lease %d: %s", ErrOutputs, leaseID, termsafe.String(fmt.Sprintf(format, args...)))
}

// declaredOutputs is the part of the provider's GET /leases/{id}/status answer that lists the outputs.
type declaredOutputs struct {
	OutputFiles []merkle.File `json:"output_files"`
	// OutputsLeftOut are outputs the provider did not commit to (links, files over the lease's disk...), each
	// with its reason: provider text, shown sanitized.
	OutputsLeftOut []string `json:"outputs_left_out"`
}

// maxLeftOutNotes bounds the provider's notes on outputs it left out that the tenant keeps.
const maxLeftOutNotes = 16

// decodeDeclared reads the provider's status answer, bounded in size.
func decodeDeclared(leaseID uint64, r io.Reader) ([]merkle.File, error) {
	d, err := decodeStatus(leaseID, r)
	return d.OutputFiles, err
}

// decodeStatus reads the provider's status answer, bounded in size; the notes on outputs left out are
// sanitized and bounded.
func decodeStatus(leaseID uint64, r io.Reader) (declaredOutputs, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxStatusBytes+1))
	if err != nil {
		return declaredOutputs{}, fmt.Errorf("lease %d: reading the provider's status: %w", leaseID, err)
	}
	if len(b) > maxStatusBytes {
		return declaredOutputs{}, outputsError(leaseID, "the provider's status answer is larger than %d bytes", maxStatusBytes)
	}
	var st declaredOutputs
	if err := json.Unmarshal(b, &st); err != nil {
		return declaredOutputs{}, outputsError(leaseID, "the provider's status answer does not decode: %v", err)
	}
	if len(st.OutputsLeftOut) > maxLeftOutNotes {
		st.OutputsLeftOut = st.OutputsLeftOut[:maxLeftOutNotes]
	}
	for i, n := range st.OutputsLeftOut {
		if len(n) > 512 {
			n = n[:512] + "…"
		}
		st.OutputsLeftOut[i] = termsafe.String(n)
	}
	return st, nil
}

// checkDeclared checks the provider's list of output files against the signed receipt's root and the rules a
// download must follow, and returns the list by path with its byte total. maxBytes (0: no bound) bounds the
// total: the disk the order paid for.
func checkDeclared(leaseID uint64, files []merkle.File, root tx.Hash, maxBytes int64) (map[string]merkle.File, int64, error) {
	if len(files) > maxOutputFiles {
		return nil, 0, outputsError(leaseID, "the provider lists %d output files; at most %d are accepted", len(files), maxOutputFiles)
	}
	byPath := make(map[string]merkle.File, len(files))
	var total int64
	for _, f := range files {
		if err := validOutputPath(f.Path); err != "" {
			return nil, 0, outputsError(leaseID, "the provider lists output %q: %s", f.Path, err)
		}
		if _, dup := byPath[f.Path]; dup {
			return nil, 0, outputsError(leaseID, "the provider lists output %q twice", f.Path)
		}
		if f.Size < 0 {
			return nil, 0, outputsError(leaseID, "the provider lists output %q with %d bytes", f.Path, f.Size)
		}
		if maxBytes > 0 && f.Size > maxBytes {
			return nil, 0, outputsError(leaseID, "the provider lists output %q with %d bytes, more than the %d bytes of disk the order paid for", f.Path, f.Size, maxBytes)
		}
		if total += f.Size; maxBytes > 0 && total > maxBytes {
			return nil, 0, outputsError(leaseID, "the provider lists more than %d bytes of outputs, the disk the order paid for", maxBytes)
		}
		byPath[f.Path] = f
	}
	// A file may not also be a directory of another ("a" and "a/b").
	for p := range byPath {
		for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
			if _, clash := byPath[dir]; clash {
				return nil, 0, outputsError(leaseID, "the provider lists %q both as a file and as a directory (of %q)", dir, p)
			}
		}
	}
	got, err := merkle.Root(files)
	if err != nil {
		return nil, 0, outputsError(leaseID, "the provider's list of outputs: %v", err)
	}
	if got != root {
		return nil, 0, outputsError(leaseID, "the provider's list of %d output file(s) hashes to %s, but its signed receipt says %s", len(files), got, root)
	}
	return byPath, total, nil
}

// validOutputPath returns what is wrong with an output's slash-separated relative path, or "".
func validOutputPath(p string) string {
	switch {
	case p == "":
		return "the path is empty"
	case len(p) > maxOutputPathLen:
		return fmt.Sprintf("the path is longer than %d bytes", maxOutputPathLen)
	case strings.HasPrefix(p, "/"):
		return "the path is absolute"
	case strings.ContainsAny(p, "\x00\\"):
		return "the path holds a NUL byte or a backslash"
	case path.Clean(p) != p || p == ".":
		return "the path is not in its clean form (no ., .., // or trailing /)"
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "the path climbs out of the lease's directory (..)"
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f {
			return "the path holds a control character"
		}
	}
	return ""
}

// countingReader fails once more than limit bytes have been read: the tar cannot be larger than its declared
// files and their headers.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
}

var errTarTooLarge = errors.New("the download is larger than the declared files and their tar headers")

func (c *countingReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		return 0, errTarTooLarge
	}
	if int64(len(p)) > c.limit-c.n {
		p = p[:c.limit-c.n]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// receiveOutputs reads the provider's tar of a lease's outputs into a temporary directory next to dir/<lease>,
// checks every entry against the declared list (name, size, SHA-256, regular file, once each) and the whole
// against the receipt's root, and only then moves the files to dir/<lease>/. On any failure the temporary
// directory is removed and dir/<lease> is left as it was. It returns dir/<lease> and the files' paths.
func receiveOutputs(leaseID uint64, body io.Reader, declared map[string]merkle.File, total int64, root tx.Hash, dir string) (out string, names []string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("outputs directory %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(dir, fmt.Sprintf(".spare-outputs-%d-*", leaseID))
	if err != nil {
		return "", nil, fmt.Errorf("outputs directory %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	staging, err := os.OpenRoot(tmp)
	if err != nil {
		return "", nil, err
	}
	defer staging.Close()

	// Headers: 512 bytes each plus PAX records for long names, padding to 512, two end blocks.
	slack := int64(len(declared)+2)*(3*512+2*maxOutputPathLen) + 64<<10
	tr := tar.NewReader(&countingReader{r: body, limit: total + slack})
	var files []merkle.File
	seen := make(map[string]bool, len(declared))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, outputsError(leaseID, "reading the provider's tar after %d file(s): %v", len(files), err)
		}
		want, listed := declared[h.Name]
		switch {
		case h.Typeflag != tar.TypeReg:
			return "", nil, outputsError(leaseID, "the provider sent %q as a %s; only regular files are accepted", h.Name, tarType(h.Typeflag))
		case !listed:
			return "", nil, outputsError(leaseID, "the provider sent %q, which is not in its list of outputs", h.Name)
		case seen[h.Name]:
			return "", nil, outputsError(leaseID, "the provider sent %q twice", h.Name)
		case h.Size != want.Size:
			return "", nil, outputsError(leaseID, "the provider sent %q with %d bytes; its list says %d", h.Name, h.Size, want.Size)
		}
		seen[h.Name] = true
		rel := filepath.FromSlash(h.Name)
		if d := filepath.Dir(rel); d != "." {
			if err := staging.MkdirAll(d, 0o755); err != nil {
				return "", nil, fmt.Errorf("lease %d: staging %q: %w", leaseID, h.Name, err)
			}
		}
		f, err := staging.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return "", nil, fmt.Errorf("lease %d: staging %q: %w", leaseID, h.Name, err)
		}
		sum := sha256.New()
		n, err := io.CopyN(io.MultiWriter(f, sum), tr, want.Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", nil, outputsError(leaseID, "the provider's tar broke off in %q after %d of %d bytes: %v", h.Name, n, want.Size, err)
		}
		got := merkle.File{Path: h.Name, Size: n}
		copy(got.SHA256[:], sum.Sum(nil))
		if got.SHA256 != want.SHA256 {
			return "", nil, outputsError(leaseID, "the provider sent %q with SHA-256 %s; its list (under the signed receipt) says %s", h.Name, got.SHA256, want.SHA256)
		}
		files = append(files, got)
	}
	if len(files) != len(declared) {
		var missing []string
		for p := range declared {
			if !seen[p] {
				missing = append(missing, p)
			}
		}
		return "", nil, outputsError(leaseID, "the provider sent %d of its %d listed output file(s); missing: %s", len(files), len(declared), strings.Join(firstSorted(missing, 5), ", "))
	}
	got, err := merkle.Root(files)
	if err != nil {
		return "", nil, outputsError(leaseID, "%v", err)
	}
	if got != root {
		return "", nil, outputsError(leaseID, "downloaded outputs hash to %s, the signed receipt says %s", got, root)
	}
	if err := merkle.Sort(files); err != nil {
		return "", nil, err
	}
	for _, f := range files {
		names = append(names, f.Path)
	}
	out, err = placeOutputs(leaseID, dir, filepath.Base(tmp), names)
	if err != nil {
		return "", nil, err
	}
	return out, names, nil
}

// placeOutputs moves the verified files from dir/<staging> to dir/<lease> through an os.Root on dir, so no path
// leaves dir. A destination that does not exist yet is the staging directory renamed; into one that exists each
// file is moved, after checking that no directory on the way is a symbolic link or a file (nothing is moved
// when one is).
func placeOutputs(leaseID uint64, dir, staging string, names []string) (string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	dest := strconv.FormatUint(leaseID, 10)
	out := filepath.Join(dir, dest)
	fi, err := root.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		if err := root.Chmod(staging, 0o755); err != nil {
			return "", err
		}
		if err := root.Rename(staging, dest); err != nil {
			return "", fmt.Errorf("moving the verified outputs to %s: %w", out, err)
		}
		return out, nil
	}
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s exists and is not a directory (a symbolic link or a file): remove it, or download with another --dir", out)
	}
	for _, name := range names {
		parts := strings.Split(name, "/")
		at := dest
		for i, part := range parts {
			at = filepath.Join(at, part)
			fi, err := root.Lstat(at)
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return "", err
			}
			last := i == len(parts)-1
			switch {
			case fi.Mode()&fs.ModeSymlink != 0 && !last:
				return "", fmt.Errorf("%s is a symbolic link; outputs are never written through one: remove it, or download with another --dir", filepath.Join(dir, at))
			case !last && !fi.IsDir():
				return "", fmt.Errorf("%s is a file where output %q needs a directory: remove it, or download with another --dir", filepath.Join(dir, at), name)
			case last && fi.IsDir():
				return "", fmt.Errorf("%s is a directory where output %q is a file: remove it, or download with another --dir", filepath.Join(dir, at), name)
			}
		}
	}
	for _, name := range names {
		rel := filepath.FromSlash(name)
		if d := filepath.Dir(rel); d != "." {
			if err := root.MkdirAll(filepath.Join(dest, d), 0o755); err != nil {
				return "", err
			}
		}
		// Rename replaces a file or a symbolic link at the destination; it never follows one.
		if err := root.Rename(filepath.Join(staging, rel), filepath.Join(dest, rel)); err != nil {
			return "", fmt.Errorf("moving the verified output %q to %s: %w", name, out, err)
		}
	}
	if err := root.RemoveAll(staging); err != nil {
		return "", err
	}
	return out, nil
}

func tarType(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "FIFO"
	}
	return "tar entry of type " + strconv.QuoteRune(rune(t))
}

// firstSorted returns up to n of ss, sorted.
func firstSorted(ss []string, n int) []string {
	out := slices.Sorted(slices.Values(ss))
	if len(out) > n {
		out = append(out[:n], "…")
	}
	return out
}
