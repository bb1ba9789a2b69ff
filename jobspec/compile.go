package jobspec

import (
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
)

// Manifest compiles the job to the manifest the provider runs, reading the files: entries relative to dir (the
// job file's directory), and returns it with its encoded bytes (whose SHA-256 goes in the order). A directory
// entry ships every file below it. Paths that leave dir, through ".." or a symbolic link, are refused; so are
// special files and symbolic links to directories inside a listed directory. The encoded manifest must fit
// manifest.MaxBytes: when the files are too large the error names the biggest and suggests inputs:.
func (j *Job) Manifest(dir string) (*manifest.Manifest, []byte, error) {
	m := j.baseManifest()
	files, errs := j.collectFiles(dir)
	if len(errs) > 0 {
		return nil, nil, errs.err()
	}
	// Check the size before reading anything: base64 makes 3 bytes 4, plus each file's JSON framing.
	base, err := m.Encode()
	if err != nil {
		return nil, nil, Errors{j.errorAt(pos{1, 1}, "", "%v", err)}.err()
	}
	total := int64(len(base))
	for _, f := range files {
		total += encodedFileSize(f)
	}
	if total > manifest.MaxBytes {
		return nil, nil, Errors{j.tooLarge(files, total)}.err()
	}
	var errs2 Errors
	for _, f := range files {
		data, err := os.ReadFile(f.abs)
		if err != nil {
			errs2 = append(errs2, j.errorAt(f.at, f.field, "cannot read %s: %v", f.rel, err))
			continue
		}
		if int64(len(data)) != f.size {
			errs2 = append(errs2, j.errorAt(f.at, f.field, "%s changed while being read: try again", f.rel))
			continue
		}
		mode := uint32(0o644)
		if f.mode&0o111 != 0 {
			mode = 0o755
		}
		m.Files = append(m.Files, manifest.File{Path: f.rel, Mode: mode, Data: data})
	}
	if len(errs2) > 0 {
		return nil, nil, errs2.err()
	}
	b, err := m.Encode()
	if err != nil {
		if len(b) == 0 && strings.Contains(err.Error(), "bytes encoded") {
			return nil, nil, Errors{j.tooLarge(files, int64(manifest.MaxBytes)+1)}.err()
		}
		return nil, nil, Errors{j.errorAt(pos{1, 1}, "", "%v", err)}.err()
	}
	return m, b, nil
}

// baseManifest is the manifest without its files.
func (j *Job) baseManifest() *manifest.Manifest {
	m := &manifest.Manifest{
		Version: manifest.Version,
		Name:    j.Name,
		Run:     j.Run,
		Image:   j.Image,
		Outputs: append([]string(nil), j.Outputs...),
		// the provider's receipt then carries the outputs' Vault root
		OutputsVault: j.VaultOutputs != nil,
		Ports:        append([]uint16(nil), j.Ports...),
		Resources:    j.TxResources(),
		DurationSec:  uint64(j.Duration / time.Second),
	}
	for _, in := range j.Inputs {
		m.Inputs = append(m.Inputs, manifest.Input{URL: in.URL, SHA256: in.SHA256, Vault: in.Vault, Path: in.Path, Unpack: in.Unpack})
	}
	if len(j.Env) > 0 {
		m.Env = make(map[string]string, len(j.Env))
		for k, v := range j.Env {
			m.Env[k] = v
		}
	}
	return m
}

func (j *Job) errorAt(at pos, field, format string, args ...any) *Error {
	return &Error{File: j.File, Line: at.line, Column: at.col, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (j *Job) fileAt(i int) pos {
	if i < len(j.fileLines) {
		return j.fileLines[i]
	}
	return pos{}
}

// shipped is one file found under a files: entry.
type shipped struct {
	rel   string // path in the manifest
	abs   string // path on disk (symbolic links resolved)
	size  int64
	mode  fs.FileMode
	at    pos
	field string
}

func encodedFileSize(f shipped) int64 {
	return (f.size+2)/3*4 + int64(len(f.rel)) + 48 // {"path":"…","mode":493,"data":"…"},
}

func (j *Job) tooLarge(files []shipped, total int64) *Error {
	sorted := append([]shipped(nil), files...)
	sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].size > sorted[b].size })
	var big []string
	for _, f := range sorted[:min(3, len(sorted))] {
		big = append(big, fmt.Sprintf("%s (%s)", f.rel, humanBytes(f.size)))
	}
	at, field := pos{}, "files"
	if len(sorted) > 0 {
		at = sorted[0].at
		field = sorted[0].field
	}
	return j.errorAt(at, field, "the files make the manifest about %s, limit %s; the biggest: %s: host large data on a web server and list it under inputs: (url, sha256, path), or store it in Spare Vault and list its root (vault, path): the provider fetches and checks it",
		humanBytes(total), humanBytes(manifest.MaxBytes), strings.Join(big, ", "))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// collectFiles expands the files: entries into the files to ship, checking each stays inside dir.
func (j *Job) collectFiles(dir string) ([]shipped, Errors) {
	var errs Errors
	if len(j.Files) == 0 {
		return nil, nil
	}
	if dir == "" {
		dir = "."
	}
	root, err := filepath.Abs(dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, Errors{j.errorAt(j.fileAt(0), "files", "the job's directory %s: %v", dir, err)}
	}
	inside := func(p string) bool {
		rel, err := filepath.Rel(root, p)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
	}
	var out []shipped
	seen := map[string]string{} // manifest path → the entry that shipped it
	inputs := map[string]bool{}
	var unpacked []string // directories inputs are unpacked into
	for _, in := range j.Inputs {
		inputs[inputDest(in)] = true
		if in.Unpack {
			unpacked = append(unpacked, inputDest(in))
		}
	}
	add := func(f shipped, entry string) {
		if prev, dup := seen[f.rel]; dup {
			errs = append(errs, j.errorAt(f.at, f.field, "%s is shipped twice (by %s and %s): list it once", f.rel, prev, entry))
			return
		}
		if inputs[f.rel] {
			errs = append(errs, j.errorAt(f.at, f.field, "%s is also where an input is downloaded: rename one of them", f.rel))
			return
		}
		for _, d := range unpacked {
			if beneath(f.rel, d) || beneath(d, f.rel) {
				errs = append(errs, j.errorAt(f.at, f.field, "%s overlaps %s, the directory an input is unpacked into, which must be new and hold nothing else: ship the file elsewhere, or unpack the input elsewhere", f.rel, d))
				return
			}
		}
		seen[f.rel] = entry
		out = append(out, f)
	}
	for i, entry := range j.Files {
		at, field := j.fileAt(i), fmt.Sprintf("files[%d]", i)
		clean := path.Clean(entry)
		if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) || strings.Contains(entry, "\\") {
			errs = append(errs, j.errorAt(at, field, "%q is outside the job's directory: list paths relative to it", entry))
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(clean))
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			msg := fmt.Sprintf("%s does not exist in %s", entry, dir)
			if strings.ContainsAny(entry, "*?[") {
				msg += ": patterns are not expanded: list the files, or their directory"
			} else {
				msg += ": check the spelling, or remove the entry"
			}
			if !os.IsNotExist(err) {
				msg = fmt.Sprintf("%s: %v", entry, err)
			}
			errs = append(errs, j.errorAt(at, field, "%s", msg))
			continue
		}
		if !inside(real) {
			errs = append(errs, j.errorAt(at, field, "%s leads outside the job's directory (to %s, through a symbolic link): copy the file into the directory instead", entry, real))
			continue
		}
		st, err := os.Stat(real)
		if err != nil {
			errs = append(errs, j.errorAt(at, field, "%s: %v", entry, err))
			continue
		}
		switch {
		case st.Mode().IsRegular():
			if strings.HasSuffix(entry, "/") {
				errs = append(errs, j.errorAt(at, field, "%s is a file, not a directory: drop the trailing /", entry))
				continue
			}
			add(shipped{rel: clean, abs: real, size: st.Size(), mode: st.Mode(), at: at, field: field}, entry)
		case st.IsDir():
			n := 0
			werr := filepath.WalkDir(real, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() {
					return nil
				}
				relDisk, err := filepath.Rel(real, q)
				if err != nil {
					return err
				}
				rel := path.Join(clean, filepath.ToSlash(relDisk))
				target := q
				if d.Type()&fs.ModeSymlink != 0 {
					target, err = filepath.EvalSymlinks(q)
					if err != nil {
						return fmt.Errorf("%s is a broken symbolic link: remove it or fix its target", rel)
					}
					if !inside(target) {
						return fmt.Errorf("%s leads outside the job's directory (to %s, through a symbolic link): copy the file into the directory instead", rel, target)
					}
				}
				fi, err := os.Stat(target)
				if err != nil {
					return err
				}
				switch {
				case fi.IsDir():
					return fmt.Errorf("%s is a symbolic link to a directory, which is not followed: list its target under files: instead", rel)
				case !fi.Mode().IsRegular():
					return fmt.Errorf("%s is not a regular file (%s): remove it from %s or list the files one by one", rel, fi.Mode().Type(), entry)
				}
				if len(rel) > manifest.MaxPathBytes {
					return fmt.Errorf("%s: path longer than %d bytes", rel, manifest.MaxPathBytes)
				}
				if n++; len(out) >= manifest.MaxFiles {
					return fmt.Errorf("more than %d files: pack them into an archive, or ship them with inputs:", manifest.MaxFiles)
				}
				add(shipped{rel: rel, abs: target, size: fi.Size(), mode: fi.Mode(), at: at, field: field}, entry)
				return nil
			})
			if werr != nil {
				errs = append(errs, j.errorAt(at, field, "%v", werr))
				continue
			}
			if n == 0 {
				errs = append(errs, j.errorAt(at, field, "the directory %s has no files: add some, or remove the entry", entry))
			}
		default:
			errs = append(errs, j.errorAt(at, field, "%s is not a regular file or directory (%s): remove the entry", entry, st.Mode().Type()))
		}
	}
	if len(out) > manifest.MaxFiles {
		errs = append(errs, j.errorAt(j.fileAt(0), "files", "%d files, limit %d: pack them into an archive, or ship them with inputs:", len(out), manifest.MaxFiles))
	}
	return out, errs
}

// Order is the CreateOrder for the job, given the encoded manifest from Manifest. BidWindow and TTL are left
// at 0 (the chain's defaults).
//
//	MaxPricePerHour = price.max × GPUs, or price.max × cores for a CPU-only job (uspr, rounded up)
//	Deposit         = MaxPricePerHour × duration in hours (uspr, rounded up)
func (j *Job) Order(manifestBytes []byte) tx.CreateOrder {
	perHour, _ := maxPricePerHour(j.Price.MaxUSPR, j.Resources)
	dur := uint64(j.Duration / time.Second)
	dep, _ := deposit(perHour, dur)
	return tx.CreateOrder{
		Resources:       j.TxResources(),
		Constraints:     j.TxConstraints(),
		MaxPricePerHour: perHour,
		ManifestHash:    manifest.Hash(manifestBytes),
		Deposit:         dep,
		DurationSec:     dur,
	}
}

// maxPricePerHour is the price for the whole lease per hour: per GPU-hour × GPUs, or per core-hour × cores
// (millicores / 1000, rounded up to a whole uspr). ok is false when it does not fit 64 bits.
func maxPricePerHour(price uint64, r Resources) (uint64, bool) {
	if r.GPU.Count > 0 {
		hi, lo := bits.Mul64(price, uint64(r.GPU.Count))
		return lo, hi == 0
	}
	return tx.MulDivUp(price, r.CPUMilli, 1000)
}

// deposit covers the whole duration at the maximum price: perHour × seconds / 3600, rounded up.
func deposit(perHour, seconds uint64) (uint64, bool) {
	return tx.MulDivUp(perHour, seconds, 3600)
}
