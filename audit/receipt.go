// Package audit holds the checks anyone can run against the ledger's records, without trusting a provider or a
// tenant: today, a lease's signed receipt and its outputs (`spare verify`).
package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/vault"
)

// Check is one verified property: its name, whether it holds, and what was compared.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// ReceiptReport is the verification of one lease's receipt.
type ReceiptReport struct {
	LeaseID  uint64        `json:"lease_id"`
	Provider tx.Address    `json:"provider"`
	Receipt  *tx.Receipt   `json:"receipt,omitempty"`
	Files    []merkle.File `json:"files,omitempty"` // the outputs checked, when a directory was given
	Checks   []Check       `json:"checks"`
	OK       bool          `json:"ok"` // every check holds
}

// ReceiptInput is everything a receipt is checked against, as read from the ledger (and a directory of outputs).
type ReceiptInput struct {
	ChainID     string
	Lease       api.LeaseView
	Order       api.Order
	ProviderKey ed25519.PublicKey
	GPUs        uint32        // GPUs the order leased
	Outputs     []merkle.File // nil: outputs not checked
	// OutputsVaultRoot is the Vault root of Outputs (vault.OutputsRoot of the files as given), checked against
	// a receipt that carries one.
	OutputsVaultRoot tx.Hash
}

// CheckReceipt checks a receipt against the ledger's records: pure, no I/O.
func CheckReceipt(in ReceiptInput) ReceiptReport {
	l, rc := in.Lease, in.Lease.Receipt
	r := ReceiptReport{LeaseID: l.ID, Provider: l.Provider, Receipt: rc, OK: true}
	add := func(name string, ok bool, format string, a ...any) {
		r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
		r.OK = r.OK && ok
	}
	if rc == nil && l.State == api.LeaseCompleted {
		group := in.Order.ID
		if in.Order.RefereeFor != 0 {
			group = in.Order.RefereeFor
		}
		add("receipt on the ledger", false, "lease %d is completed with no receipt yet: a run of a replicated order commits its result first and reveals its receipt once every run has committed or ended ('spare query verification %d' shows each run's commit state)", l.ID, group)
		return r
	}
	if rc == nil {
		add("receipt on the ledger", false, "lease %d is %s: only a completed lease has a receipt", l.ID, l.State)
		return r
	}
	add("receipt on the ledger", l.State == api.LeaseCompleted, "lease %d is %s with a receipt recorded", l.ID, l.State)
	add("signature", ed25519.Verify(in.ProviderKey, rc.SignBytes(), rc.Signature),
		"ed25519 over the receipt's fields with provider %s's key as registered on the ledger", l.Provider)
	add("chain", rc.ChainID == in.ChainID, "receipt names chain %q, the node runs %q", rc.ChainID, in.ChainID)
	add("lease", rc.LeaseID == l.ID, "receipt names lease %d", rc.LeaseID)
	add("manifest", rc.ManifestHash == in.Order.ManifestHash, "receipt's manifest hash %s, order %d's %s", rc.ManifestHash, in.Order.ID, in.Order.ManifestHash)
	add("times", rc.StartMs <= rc.EndMs, "workload ran %d ms by the provider's clock (ledger billed %d ms, from LeaseStarted to completion)",
		int64(rc.EndMs)-int64(rc.StartMs), int64(l.EndedMs)-int64(l.StartedMs))
	maxGPUSec := uint64(in.GPUs) * ((rc.EndMs-min(rc.StartMs, rc.EndMs))/1000 + 1)
	add("gpu-seconds", rc.GPUSeconds <= maxGPUSec, "%d GPU-seconds claimed, at most %d for %d GPU(s) over the run", rc.GPUSeconds, maxGPUSec, in.GPUs)
	if in.Outputs != nil {
		r.Files = in.Outputs
		root, err := merkle.Root(slices.Clone(in.Outputs))
		switch {
		case err != nil:
			add("outputs", false, "%v", err)
		default:
			add("outputs", root == rc.OutputRoot, "%d file(s) hash to root %s; the receipt says %s", len(in.Outputs), root, rc.OutputRoot)
		}
		if !rc.VaultRoot.IsZero() {
			add("vault root", in.OutputsVaultRoot == rc.VaultRoot, "the outputs are the Vault object %s (spare store get fetches it by that root); the receipt says %s", in.OutputsVaultRoot, rc.VaultRoot)
		}
	}
	return r
}

// VerifyLease reads lease id, its order and its provider from the ledger and checks the receipt; with dir, also
// the outputs in dir (the files at their paths relative to dir, as `spare outputs` writes them).
func VerifyLease(ctx context.Context, c *client.Client, id uint64, dir string) (ReceiptReport, error) {
	st, err := c.NodeStatus(ctx)
	if err != nil {
		return ReceiptReport{}, err
	}
	l, err := c.Lease(ctx, id)
	if err != nil {
		return ReceiptReport{}, fmt.Errorf("lease %d: %w", id, err)
	}
	o, err := c.Order(ctx, l.OrderID)
	if err != nil {
		return ReceiptReport{}, fmt.Errorf("order %d of lease %d: %w", l.OrderID, id, err)
	}
	p, err := c.Provider(ctx, l.Provider)
	if err != nil {
		return ReceiptReport{}, fmt.Errorf("provider %s of lease %d: %w", l.Provider, id, err)
	}
	in := ReceiptInput{ChainID: st.NodeInfo.Network, Lease: l, Order: o, ProviderKey: p.PubKey, GPUs: o.Resources.GPUCount}
	if dir != "" {
		if in.Outputs, err = HashDir(dir); err != nil {
			return ReceiptReport{}, err
		}
		if l.Receipt != nil && !l.Receipt.VaultRoot.IsZero() {
			if in.OutputsVaultRoot, err = outputsVaultRoot(ctx, dir, in.Outputs); err != nil {
				return ReceiptReport{}, err
			}
		}
	}
	return CheckReceipt(in), nil
}

// outputsVaultRoot is the Vault root of the files in dir.
func outputsVaultRoot(ctx context.Context, dir string, files []merkle.File) (tx.Hash, error) {
	open, done, err := vault.DirFiles(dir)
	if err != nil {
		return tx.Hash{}, err
	}
	defer done()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	root, _, _, err := vault.OutputsRoot(ctx, paths, open)
	if err != nil {
		return tx.Hash{}, fmt.Errorf("outputs: %w", err)
	}
	return root, nil
}

// HashDir lists the regular files under dir with their SHA-256, paths relative to dir and slash-separated.
// Links and other special files are refused: outputs are plain files.
func HashDir(dir string) ([]merkle.File, error) {
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("outputs: %s is not a directory (give the lease's directory, e.g. outputs/7)", dir)
	}
	files := []merkle.File{}
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := merkle.HashFile(p, filepath.ToSlash(rel))
		files = append(files, f)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	return files, merkle.Sort(files)
}
