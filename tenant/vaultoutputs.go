package tenant

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/vault"
)

// Outputs to the Vault (outputs: {to: vault} in a job file): the manifest says outputs_vault, so the provider's
// signed receipt carries the outputs' Vault root (the root of vault.OutputsArchive of exactly the files its
// output root covers). Once a deploy has downloaded the outputs and verified them against the receipt, it stores
// their directory (outputs/<lease>/) in Spare Vault as that one object, paid by the tenant's key, as `spare store
// put outputs/<lease>/` would: the archive's files (path and SHA-256 of each, and no directory but those that hold
// them) must hash to the receipt's output root, and the archive must have the receipt's Vault root, before
// anything is stored. The receipt, on the ledger, then names the object, and anyone can fetch it by that root,
// extract it and check it against the receipt (`spare verify LEASE --outputs DIR`).

// VaultOutputs asks a deploy to store the job's verified outputs in Spare Vault (outputs: {to: vault}).
type VaultOutputs struct {
	// Months is the deal's term; 0 stores them permanently (the chain's endowment).
	Months uint64
	// Coding is how the object is coded (zero: vault.DefaultCoding; spare deploy gives spare dev's on a dev chain).
	Coding vault.Coding
	// MaxPrice is the most a term deal pays a shard's provider, uspr per GiB-month (0: DefaultMaxPrice).
	MaxPrice uint64
}

// VaultOutputsResult is what became of a deploy's outputs asked to go to the Vault: the object that holds them,
// or why they were not stored (NotStored).
type VaultOutputsResult struct {
	Stored bool    `json:"stored"`
	Root   tx.Hash `json:"root,omitzero"`
	// Vouched: the provider's signed receipt carries Root as its outputs' Vault root (a receipt of a provider
	// that did not compute one leaves it false: the files are verified, the object's root is not signed).
	Vouched   bool   `json:"vouched"`
	ObjectID  uint64 `json:"object_id,omitempty"`
	Size      uint64 `json:"size,omitempty"` // of the archive: the object's bytes
	Files     int    `json:"files"`
	Months    uint64 `json:"months"` // 0 with Permanent
	Permanent bool   `json:"permanent,omitempty"`
	Escrow    uint64 `json:"escrow,omitempty"` // what the deal holds for the storage providers
	Refund    uint64 `json:"refund,omitempty"` // given back after the draw
	Fee       uint64 `json:"fee,omitempty"`
	// NotStored says why they were not stored: the job did not succeed, had no output files, or the error.
	NotStored string `json:"not_stored,omitempty"`
}

// ErrVaultOutputs is wrapped by a deploy's error when the job asked for its outputs in the Vault and they could
// not be stored: the outputs are on local disk, verified, and the Result says so (OutputsVault).
var ErrVaultOutputs = errors.New("the outputs were not stored in the Vault")

// checkVaultOutputs refuses, before anything is sent, outputs to the Vault for a job whose deploy has no single
// set of outputs to store.
func (d *deployment) checkVaultOutputs() error {
	switch {
	case d.job.VaultOutputs == nil:
	case d.job.Cluster != nil:
		return errors.New("outputs to the Vault: a cluster has one set of outputs a member: store a member's with spare store put outputs/<lease>/")
	case d.service():
		return errors.New("outputs to the Vault: a service's deploy returns while it runs, before it has outputs: store them with spare store put once spare outputs LEASE has fetched them")
	case d.o.Detach:
		return errors.New("outputs to the Vault: --detach returns while the job runs, before it has outputs: deploy without --detach, or store them with spare store put once spare outputs LEASE has fetched them")
	}
	return nil
}

// storeOutputs stores the deploy's verified outputs in the Vault when the job asked for it and succeeded, and
// records the result in d.res.OutputsVault. An error (wrapping ErrVaultOutputs) means they were not stored.
func (d *deployment) storeOutputs(ctx context.Context) error {
	vo, res := d.job.VaultOutputs, d.res
	if vo == nil {
		return nil
	}
	r := &VaultOutputsResult{Files: len(res.Outputs), Months: vo.Months, Permanent: vo.Months == 0}
	res.OutputsVault = r
	dir := res.OutputsPath
	switch {
	case res.Receipt == nil || dir == "":
		r.NotStored = "the job ended without a receipt: it has no verified outputs to store"
	case res.Outcome != OutcomeExited || res.ExitCode == nil || *res.ExitCode != 0:
		how := string(res.Outcome)
		if res.ExitCode != nil && res.Outcome == OutcomeExited {
			how = fmt.Sprintf("exited with code %d", *res.ExitCode)
		}
		r.NotStored = fmt.Sprintf("the job did not succeed (%s): its outputs were not stored in the Vault; they are in %s, and spare store put %s stores them", how, dir, dir)
	case len(res.Outputs) == 0:
		r.NotStored = "the job wrote no output files: nothing to store in the Vault"
	}
	if r.NotStored != "" {
		d.emit("vault", "%s", r.NotStored)
		return nil
	}
	deal := fmt.Sprintf("for %d months", vo.Months)
	if vo.Months == 0 {
		deal = "permanently"
	}
	d.emit("vault", "storing %d output file(s) from %s in the Vault %s", len(res.Outputs), dir, deal)
	if res.Receipt.VaultRoot.IsZero() {
		d.emit("vault", "the provider's receipt carries no Vault root for them (an older provider, or one that could not read them back): the object is stored from the verified files, its root is not signed by the provider")
	} else {
		d.emit("vault", "the provider's receipt vouches for Vault root %s", res.Receipt.VaultRoot)
	}
	phase := ""
	opt := PutOptions{Coding: vo.Coding, Months: vo.Months, MaxPrice: vo.MaxPrice, Progress: func(p PutProgress) {
		if p.Phase != phase && p.Phase != "done" {
			phase = p.Phase
			d.emit("vault", "%s", putPhase(p))
		}
	}}
	put, err := d.t.StoreOutputs(ctx, dir, res.Receipt, opt)
	if put != nil {
		r.Root, r.ObjectID, r.Size, r.Escrow, r.Refund, r.Fee = put.Root, put.ObjectID, put.Size, put.Escrow, put.Refund, put.Fee
		if f, ok := ctx.Value(feesKey{}).(*atomic.Uint64); ok {
			f.Add(put.Fee)
		}
	}
	if err != nil {
		r.NotStored = fmt.Sprintf("%v; they are in %s, verified: spare store put %s stores them with the same root", err, dir, dir)
		d.emit("vault", "outputs NOT stored in the Vault: %s", r.NotStored)
		return fmt.Errorf("%w: %s", ErrVaultOutputs, r.NotStored)
	}
	r.Stored, r.Vouched = true, res.Receipt.VaultRoot == put.Root
	d.emit("vault", "outputs stored in the Vault: root %s (object %d), %s held for the storage providers", put.Root, put.ObjectID, client.FormatAmount(put.Escrow))
	return nil
}

func putPhase(p PutProgress) string {
	switch p.Phase {
	case "coding":
		return fmt.Sprintf("coding %d bytes into shards", p.Total)
	case "storing":
		return "sending the storage deal"
	case "placing":
		return "waiting for the ledger to draw the shards' providers"
	case "uploading":
		return fmt.Sprintf("uploading %d bytes of shards to their providers", p.Total)
	}
	return p.Phase
}

// StoreOutputs stores the directory dir of a lease's verified outputs in Spare Vault as the object the receipt
// rc vouches for: vault.OutputsArchive of its files, which must be exactly the files whose Merkle root is the
// receipt's output root (path and SHA-256 of each, nothing more, and no directory but those that hold them), and
// whose root must be the receipt's Vault root when it has one. A directory that holds anything else (a file added
// or changed since the download, an empty directory, a link) or that archives to another root is refused and
// nothing is stored. opt.TempDir, when empty, is dir's parent (the archive and the coded shards are as large as
// the outputs).
func (t *Tenant) StoreOutputs(ctx context.Context, dir string, rc *tx.Receipt, opt PutOptions) (*PutResult, error) {
	if opt.Coding == (vault.Coding{}) {
		opt.Coding = vault.DefaultCoding
	}
	if opt.TempDir == "" {
		opt.TempDir = filepath.Dir(filepath.Clean(dir))
	}
	paths, err := outputPaths(dir)
	if err != nil {
		return nil, err
	}
	open, closeDir, err := vault.DirFiles(dir)
	if err != nil {
		return nil, err
	}
	defer closeDir()
	tmp, err := os.MkdirTemp(opt.TempDir, ".spare-vault-outputs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	opt.TempDir = tmp
	name := filepath.Join(tmp, "outputs.tar")
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files, err := vault.OutputsArchive(ctx, f, paths, open)
	if err != nil {
		return nil, fmt.Errorf("archiving %s: %w", dir, err)
	}
	got, err := merkle.Root(files)
	if err != nil {
		return nil, err
	}
	if got != rc.OutputRoot {
		return nil, fmt.Errorf("%s does not hold exactly the outputs the receipt covers: its %d file(s) hash to %s, the receipt says %s (a file added, changed or removed since they were downloaded): download them again into an empty directory",
			dir, len(files), got, rc.OutputRoot)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	opt.WantRoot = rc.VaultRoot
	res, err := t.StorePut(ctx, name, opt)
	if errors.Is(err, ErrRootMismatch) {
		return nil, fmt.Errorf("lease %d's receipt says its outputs' Vault root is %s, but the files it covers, verified, archive to another: the provider signed a wrong Vault root (report it), and nothing was stored: %w",
			rc.LeaseID, rc.VaultRoot, err)
	}
	return res, err
}

// outputPaths lists the regular files beneath dir, slash-separated, refusing anything a receipt does not cover:
// a link or special file, a directory that holds no file, a name a provider could not have written.
func outputPaths(dir string) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var paths []string
	dirs := map[string]bool{}
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case p == ".":
			return nil
		case !validArchivedName(p):
			return fmt.Errorf("%s: not a name a provider's outputs have", filepath.Join(dir, p))
		case d.IsDir():
			dirs[p] = true
		case d.Type().IsRegular():
			paths = append(paths, p)
		default:
			return fmt.Errorf("%s: not a regular file: a receipt covers regular files only", filepath.Join(dir, p))
		}
		if len(paths)+len(dirs) > vault.DefaultArchiveLimits.Entries {
			return fmt.Errorf("%s holds more than %d entries", dir, vault.DefaultArchiveLimits.Entries)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		for d := path.Dir(p); d != "." && dirs[d]; d = path.Dir(d) {
			delete(dirs, d)
		}
	}
	for d := range dirs {
		return nil, fmt.Errorf("%s: a directory that holds no file: the receipt covers files only (remove it)", filepath.Join(dir, d))
	}
	return paths, nil
}

// ArchivedFiles reads a directory's archive (vault.Archive's, as an object stored from a directory is) and lists
// its files with their SHA-256, as a receipt's Merkle root covers outputs: merkle.Root of the list is the output
// root of a lease whose outputs it holds. It accepts only regular files and directories, each directory one
// that holds a file (a receipt covers files: an empty directory would be more than it vouches for), and
// refuses anything else naming the entry. It reads, never writes: an archive from anyone may be checked.
func ArchivedFiles(r io.Reader) ([]merkle.File, error) {
	tr := tar.NewReader(r)
	var files []merkle.File
	dirs := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name == "" || !validArchivedName(name) {
			return nil, fmt.Errorf("archive entry %q: not a clean relative path", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			dirs[name] = true
		case tar.TypeReg:
			sum := sha256.New()
			n, err := io.Copy(sum, tr)
			if err != nil {
				return nil, fmt.Errorf("archive entry %q: %w", h.Name, err)
			}
			f := merkle.File{Path: name, Size: n}
			copy(f.SHA256[:], sum.Sum(nil))
			files = append(files, f)
		default:
			return nil, fmt.Errorf("archive entry %q: a %s: outputs are regular files", h.Name, tarType(h.Typeflag))
		}
	}
	held := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			held[d] = true
		}
	}
	for d := range dirs {
		if !held[d] {
			return nil, fmt.Errorf("archive entry %q: a directory that holds no file: the receipt covers files only", d+"/")
		}
	}
	return files, merkle.Sort(files)
}

func validArchivedName(p string) bool {
	return validOutputPath(p) == ""
}
