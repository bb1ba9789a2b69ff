package provider

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/layout"
	"github.com/sparenet/spare/vault/remote"
)

// Vault inputs: a manifest's input {vault: ROOT, path} is an object stored in Spare Vault, fetched by the leased
// provider into the work directory before the workload starts, under the same bounds as the URL inputs (one
// lease disk budget for all inputs, [inputs] timeout and minimum progress, files created through the work
// directory's *os.Root, new, no link followed) and checked twice: every shard against its root as it streams,
// the whole object against ROOT at the end (remote.Reader).
//
//   - Who holds it: the ledger lists the stored objects with that root (VaultSource). Anyone can store a
//     manifest that claims any root, so the objects are candidates: the placed ones are tried oldest first
//     (an object stored before its root was public cannot be squatted by a later one), each manifest once, at
//     most maxVaultTries of them (of at most maxVaultOpens manifests fetched), until one's bytes hash to ROOT.
//     None does: the input fails, naming each try.
//   - Disk: an object's size is known before a byte is read; one larger than what the lease's disk has left for
//     inputs is not read, and when none fits the input is refused up front, naming both sizes.
//   - Time: all inputs within [inputs] timeout; a storage provider that sends nothing for half of
//     min_progress_window is read around (another shard of the row), and a read that still falls below the
//     minimum progress fails that object (another may be held by other providers).
//   - Addresses: the URL inputs' public-address rule is for the tenant's URLs. A vault input's hosts are the
//     storage providers the ledger placed its shards on, at the host_uri each registered; they are read through
//     remote.Reader's client, which pins the certificate fingerprint each provider registered, so that a
//     provider on loopback (spare dev) or a private network is read like any other, and an address a provider
//     registered that is not its own gets no further than a TLS handshake that fails (no request is sent).
//     Why a shard was given up on (a network error, which could name an address) stays out of the error the
//     tenant sees: it counts the shards given up on, and names their providers.
//   - The file is mode 0444. Both runtimes then give the whole work directory to the lease's uid (the file and
//     the directories above it), so the workload could chmod or replace it: the mode keeps it from being
//     overwritten by mistake; what the provider guarantees is that the bytes were the root's when it started.
//   - unpack: the object is a directory's archive (vault.Archive: spare store put DIR, a job's outputs stored with
//     outputs: {to: vault}), streamed as it is verified into vault.Extract, which creates the new directory and
//     writes beneath it through its own os.Root, accepting only what Archive writes (regular files and
//     directories, clean names, each once, in order; no link, no device). The directory's parents are made
//     here as createBeneath makes a file's, every existing one a real directory, and nothing else is in the work
//     directory before the workload starts (the manifest's files and the inputs, all the daemon's). The lease's
//     disk bounds it: the files hold at most the object's size (Extract's byte limit), at most one entry per
//     unpackEntryBytes of what is left beyond the object's size is accepted (a file or a directory takes a
//     block), and the blocks the directory takes once extracted (diskUsage, as the disk limit measures a lease)
//     are what it counts against the inputs that follow. The root is checked at the end of the stream, so an
//     object whose bytes are not the root's was partly extracted: the directory is removed, and the next object
//     tried. An archive that breaks the rules stops the read at once; whatever fails leaves no directory.

// maxVaultTries is how many stored objects (distinct manifests) claiming one root are read at most before the
// input fails; maxVaultOpens bounds the manifests fetched from the ledger to find them (copies of one manifest
// included), and maxVaultListed the objects listed to choose them from.
const (
	maxVaultTries  = 4
	maxVaultOpens  = 8
	maxVaultListed = 256
)

// VaultCandidate is a stored object that claims a root: its size, known before anything is read, and how to get
// its manifest and where its shards are.
type VaultCandidate struct {
	ID   uint64 // the ledger's object id, for messages
	Size uint64
	// Open returns the object's manifest (every shard's root) and where each shard is held (false: nowhere).
	Open func(ctx context.Context) (*layout.Object, func(stripe, index int) (remote.ShardHost, bool), error)
}

// VaultSource resolves a content root to the stored objects that claim it, those with their shards placed, in
// the order to try them. The daemon's asks the ledger (ledgerVault).
type VaultSource interface {
	VaultCandidates(ctx context.Context, root tx.Hash) ([]VaultCandidate, error)
}

// ledgerVault resolves roots through the daemon's ledger client.
type ledgerVault struct{ c *client.Client }

// VaultCandidates lists the placed objects with root, oldest first, of the first maxVaultListed stored with it.
func (l ledgerVault) VaultCandidates(ctx context.Context, root tx.Hash) ([]VaultCandidate, error) {
	var out []VaultCandidate
	req := api.VaultObjectsRequest{Root: root, Limit: 64}
	for listed := 0; listed < maxVaultListed; {
		page, err := l.c.VaultObjects(ctx, req)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Items {
			if o.Root != root || o.State != api.VaultPlaced {
				continue
			}
			out = append(out, VaultCandidate{ID: o.ID, Size: o.Size, Open: func(ctx context.Context) (*layout.Object, func(int, int) (remote.ShardHost, bool), error) {
				if o.Stripes < 1 || o.K < 1 || o.M < 1 || o.Shards() > layout.MaxObjectShards {
					return nil, nil, fmt.Errorf("the ledger lists %d stripes of %d+%d shards: not a layout", o.Stripes, o.K, o.M)
				}
				shards, err := l.c.AllVaultShards(ctx, o.ID)
				if err != nil {
					return nil, nil, err
				}
				return vaultObjectOf(o, shards)
			}})
		}
		listed += len(page.Items)
		after, err := strconv.ParseUint(page.Next, 10, 64)
		if page.Next == "" || len(page.Items) == 0 || err != nil {
			break
		}
		req.After = after
	}
	return out, nil
}

// vaultObjectOf rebuilds an object's manifest from the ledger's record of it and its shards (in order), checked
// as the ledger's own manifests are (canonical layout, every root), and where each shard is held: at its
// provider's registered address, pinned to its registered certificate; a shard with no provider or address is
// held nowhere (read around, as a missing shard).
func vaultObjectOf(o api.VaultObject, shards []api.VaultShard) (*layout.Object, func(stripe, index int) (remote.ShardHost, bool), error) {
	n := o.K + o.M
	if o.K < 1 || o.M < 1 || o.Stripes < 1 || len(shards) != o.Stripes*n {
		return nil, nil, fmt.Errorf("object %d: the ledger lists %d shards for %d stripes of %d+%d", o.ID, len(shards), o.Stripes, o.K, o.M)
	}
	obj := &layout.Object{Root: o.Root, Layout: layout.Layout{Coding: layout.Coding{K: o.K, M: o.M, ShardSize: o.ShardSize},
		Size: o.Size, Stripes: o.Stripes}, Shards: make([][]tx.Hash, o.Stripes)}
	hosts := make([][]remote.ShardHost, o.Stripes)
	for s := range obj.Shards {
		obj.Shards[s], hosts[s] = make([]tx.Hash, n), make([]remote.ShardHost, n)
	}
	for ord, sh := range shards {
		if sh.ObjectID != o.ID || sh.Stripe != ord/n || sh.Index != ord%n {
			return nil, nil, fmt.Errorf("object %d: the ledger lists shard %d as %d/%d of object %d", o.ID, ord, sh.Stripe, sh.Index, sh.ObjectID)
		}
		obj.Shards[sh.Stripe][sh.Index] = sh.Root
		if !sh.Provider.IsZero() && sh.HostURI != "" {
			hosts[sh.Stripe][sh.Index] = remote.ShardHost{Provider: sh.Provider, HostURI: sh.HostURI, Fingerprint: sh.Fingerprint}
		}
	}
	enc, err := obj.Encode()
	if err == nil {
		obj, err = layout.DecodeObject(enc)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("object %d: %w", o.ID, err)
	}
	return obj, func(s, i int) (remote.ShardHost, bool) {
		if s < 0 || s >= len(hosts) || i < 0 || i >= n || hosts[s][i].HostURI == "" {
			return remote.ShardHost{}, false
		}
		return hosts[s][i], true
	}, nil
}

// vaultFile is the input's file as the reader writes it: never past the object's size, counting the bytes for
// the minimum-progress rule, and keeping its own error apart from the network's.
type vaultFile struct {
	f      *os.File
	rel    string
	n, max int64
	window *atomic.Int64
	err    error
}

func (w *vaultFile) Write(b []byte) (int, error) {
	if int64(len(b)) > w.max-w.n {
		w.err = errors.New("the reader wrote past the object's size")
		return 0, w.err
	}
	n, err := w.f.Write(b)
	w.n += int64(n)
	w.window.Add(int64(n))
	if err != nil {
		w.err = fmt.Errorf("write %s: %w", w.rel, pathOnly(err))
	}
	return n, err
}

// fetchVault fetches the Vault object with root into rel beneath work (a new file, mode 0444; with unpack, the
// archive extracted into the new directory rel), at most left bytes (total is the lease's whole limit, for the
// message), and returns the bytes of disk it takes. See the top of this file.
func fetchVault(ctx context.Context, src VaultSource, work *os.Root, rel string, root tx.Hash, unpack bool, left, total int64, opt InputOptions) (int64, error) {
	if src == nil {
		return 0, errors.New("this provider cannot resolve Spare Vault roots (no ledger client)")
	}
	if unpack {
		if err := newDirBeneath(work, rel); err != nil {
			return 0, err
		}
	}
	cands, err := src.VaultCandidates(ctx, root)
	if err != nil {
		return 0, fmt.Errorf("look the root up on the ledger: %w", fetchError(ctx, err))
	}
	if len(cands) == 0 {
		return 0, errors.New("no object with this root is stored in Spare Vault with its shards placed: store it first, or wait until the ledger has placed it")
	}
	var tries []string
	var tooBig []uint64
	seen := map[tx.Hash]bool{} // manifests tried
	opened := 0
	for _, c := range cands {
		if c.Size > uint64(left) {
			tooBig = append(tooBig, c.Size)
			continue
		}
		if len(tries) == maxVaultTries || opened == maxVaultOpens {
			break
		}
		opened++
		obj, where, err := c.Open(ctx)
		switch {
		case err != nil:
		case obj == nil || where == nil:
			err = errors.New("no manifest")
		case obj.Root != root || obj.Size != c.Size:
			err = fmt.Errorf("its manifest is of another object (%d bytes, root %s)", obj.Size, obj.Root)
		}
		if err != nil {
			if ctx.Err() != nil {
				return 0, fetchError(ctx, err)
			}
			tries = append(tries, fmt.Sprintf("object %d: %v", c.ID, err))
			continue
		}
		enc, err := obj.Encode()
		if err != nil {
			tries = append(tries, fmt.Sprintf("object %d: %v", c.ID, err))
			continue
		}
		if key := tx.Hash(sha256.Sum256(enc)); seen[key] {
			continue // the same manifest as one read already: not another try
		} else {
			seen[key] = true
		}
		used := int64(obj.Size)
		var why string
		if unpack {
			why, used, err = unpackVaultObject(ctx, work, rel, obj, where, left, total, opt)
		} else {
			why, err = readVaultObject(ctx, work, rel, obj, where, opt)
		}
		if err != nil {
			return 0, err // the deadline, the file: no other object would do better
		}
		if why == "" {
			return used, nil
		}
		tries = append(tries, fmt.Sprintf("object %d: %s", c.ID, why))
	}
	if len(tries) == 0 { // every object stored with this root is too large
		what := fmt.Sprintf("the object is %d bytes", tooBig[0])
		if small := slices.Min(tooBig); small != slices.Max(tooBig) {
			what = fmt.Sprintf("the objects stored with this root are %d bytes and more", small)
		}
		return 0, fmt.Errorf("%s, more than the %d bytes the lease's disk has left for inputs (%d for all inputs together): order more disk",
			what, left, total)
	}
	msg := fmt.Sprintf("none of the %d stored object(s) tried for this root could be read and verified: %s", len(tries), strings.Join(tries, "; "))
	if len(tooBig) > 0 {
		msg += fmt.Sprintf(" (%d more, of %d bytes and up, are larger than the %d bytes the lease's disk has left for inputs)", len(tooBig), slices.Min(tooBig), left)
	}
	return 0, errors.New(msg)
}

// readVaultObject reads obj whole into rel beneath work. It returns why this object could not be the input
// ("" when it is: the file holds the root's bytes), or an error that no other object would avoid (the
// deadline, the lease closed, the file), having removed the file in both cases. A read that falls below the
// minimum progress is this object's failure (its storage providers', another object's may do better). A
// storage provider that sends nothing is given up on after half the progress window, so that the reader
// reads around it before the rule cuts the whole read off.
func readVaultObject(ctx context.Context, work *os.Root, rel string, obj *layout.Object, where func(int, int) (remote.ShardHost, bool), opt InputOptions) (string, error) {
	outer := ctx
	ctx, window, stop := watchProgress(ctx, opt)
	defer stop()
	f, err := createBeneath(work, rel, 0o444)
	if err != nil {
		return "", err
	}
	w := &vaultFile{f: f, rel: rel, max: int64(obj.Size), window: window}
	var gaveUp int
	var providers []string
	r := &remote.Reader{Where: where, Timeout: max(time.Second, opt.MinProgressWindow/2)}
	err = r.Read(ctx, w, obj, 0, obj.Size, func(_ vault.ShardFailure, h remote.ShardHost) {
		gaveUp++
		if p := h.Provider.String(); !h.Provider.IsZero() && len(providers) < 8 && !slices.Contains(providers, p) {
			providers = append(providers, p)
		}
	})
	if err == nil {
		if cerr := f.Chmod(0o444); cerr != nil { // exactly, whatever the daemon's umask
			w.err = fmt.Errorf("chmod %s: %w", rel, pathOnly(cerr))
			err = w.err
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		w.err = fmt.Errorf("write %s: %w", rel, pathOnly(cerr))
		err = w.err
	}
	if err == nil {
		return "", nil
	}
	_ = work.Remove(rel)
	switch {
	case w.err != nil:
		return "", w.err
	case outer.Err() != nil:
		return "", fetchError(outer, err)
	}
	why := err.Error()
	if errors.Is(context.Cause(ctx), errInputStalled) {
		why = "its storage providers " + strings.TrimPrefix(errInputStalled.Error(), "the server ")
	}
	if w.n == int64(obj.Size) && !errors.Is(err, vault.ErrTooFewShards) {
		// Every byte came, each shard verified, and the whole object's root check failed.
		why = "its shards hold other bytes than the root's: its manifest claims this root for other data"
	}
	if gaveUp > 0 {
		why += fmt.Sprintf(" (%d shard read(s) given up on", gaveUp)
		if len(providers) > 0 {
			why += ", from " + strings.Join(providers, ", ")
		}
		why += ")"
	}
	return why, nil
}

// unpackEntryBytes is what one entry of an unpacked archive is counted to take of the lease's disk beyond its
// bytes: a block, which most file systems give every file and directory.
const unpackEntryBytes = 4096

// unpackLimits bounds the archive of size bytes extracted with left bytes of the lease's disk: its files hold at
// most its own size, and it has at most one entry per unpackEntryBytes left beyond that.
func unpackLimits(size uint64, left int64) vault.ArchiveLimits {
	entries := int64(0)
	if left > int64(size) {
		entries = min((left-int64(size))/unpackEntryBytes, int64(vault.DefaultArchiveLimits.Entries))
	}
	return vault.ArchiveLimits{Entries: int(entries), Bytes: size}
}

// newDirBeneath makes the parents of rel beneath root (every existing one a real directory, no link followed)
// and checks that rel itself does not exist: an archive is unpacked into a new directory, which vault.Extract
// creates.
func newDirBeneath(root *os.Root, rel string) error {
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		fi, err := root.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			if err = root.Mkdir(dir, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
				fi, err = root.Lstat(dir)
			}
		}
		if err != nil {
			return fmt.Errorf("create directory %s: %w", dir, pathOnly(err))
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is in the way of %s: it is not a directory (links are not followed)", dir, rel)
		}
	}
	switch _, err := root.Lstat(rel); {
	case err == nil:
		return fmt.Errorf("%s already exists (a file of the manifest or another input): an object is unpacked into a new directory: give the input another path", rel)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", rel, pathOnly(err))
	}
	return nil
}

// unpackWriter is the pipe from the reader to the extraction: never past the object's size, counting the bytes
// for the minimum-progress rule, and noting that a write failed because the extraction had stopped (the read
// then failed for the archive's sake, not its own).
type unpackWriter struct {
	pw      *io.PipeWriter
	n, max  int64
	window  *atomic.Int64
	stopped bool
}

func (w *unpackWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > w.max-w.n {
		return 0, errors.New("the reader wrote past the object's size")
	}
	n, err := w.pw.Write(b)
	w.n += int64(n)
	w.window.Add(int64(n))
	if err != nil {
		w.stopped = true
	}
	return n, err
}

// unpackVaultObject reads obj whole into vault.Extract, which creates the directory rel beneath work and
// extracts the archive into it within the limits left bytes of the lease's disk allow (total: the lease's
// whole limit, for messages). It returns why this object could not be the input ("" when it is: the directory
// holds the root's archive, extracted) and the disk the directory takes, or an error that no other object
// would avoid. Every failure removes the directory.
func unpackVaultObject(ctx context.Context, work *os.Root, rel string, obj *layout.Object, where func(int, int) (remote.ShardHost, bool), left, total int64, opt InputOptions) (why string, used int64, err error) {
	outer := ctx
	ctx, window, stop := watchProgress(ctx, opt)
	defer stop()
	defer func() {
		if why != "" || err != nil {
			_ = work.RemoveAll(rel)
		}
	}()
	dir := filepath.Join(work.Name(), filepath.FromSlash(rel))
	lim := unpackLimits(obj.Size, left)
	pr, pw := io.Pipe()
	var xerr error
	extracted := make(chan struct{})
	go func() {
		defer close(extracted)
		xerr = vault.Extract(pr, dir, lim)
		if xerr == nil { // the archive's end: what follows must be nothing, read to the end for the root's check
			if n, cerr := io.Copy(io.Discard, pr); cerr == nil && n > 0 {
				xerr = fmt.Errorf("%d bytes follow the archive's end (not an archive spare store put writes)", n)
			}
		}
		pr.CloseWithError(errors.New("the extraction stopped"))
	}()
	w := &unpackWriter{pw: pw, max: int64(obj.Size), window: window}
	var gaveUp int
	var providers []string
	r := &remote.Reader{Where: where, Timeout: max(time.Second, opt.MinProgressWindow/2)}
	rerr := r.Read(ctx, w, obj, 0, obj.Size, func(_ vault.ShardFailure, h remote.ShardHost) {
		gaveUp++
		if p := h.Provider.String(); !h.Provider.IsZero() && len(providers) < 8 && !slices.Contains(providers, p) {
			providers = append(providers, p)
		}
	})
	pw.CloseWithError(rerr) // nil: the extraction reads the end of the stream
	<-extracted
	bounds := fmt.Sprintf("at most %d entries and %d bytes of files fit the %d bytes the lease's disk has left for inputs", lim.Entries, lim.Bytes, left)
	var unpackErr string // the provider's own directories are not the tenant's business: only rel is named
	if xerr != nil {
		unpackErr = strings.ReplaceAll(xerr.Error(), dir, rel)
	}
	switch {
	case rerr == nil && xerr != nil:
		// The bytes are the root's: every object with it would fail alike.
		return "", 0, fmt.Errorf("the object is not a directory archive this provider can unpack (%s): %s", bounds, unpackErr)
	case rerr == nil:
		n, _, merr := diskUsage(outer, dir, lim.Entries+16)
		if merr != nil {
			return "", 0, fmt.Errorf("measure %s: %w", rel, pathOnly(merr))
		}
		if n > left {
			return "", 0, fmt.Errorf("unpacked, the object takes %d bytes of disk, more than the %d bytes the lease's disk has left for inputs (%d for all inputs together): order more disk", n, left, total)
		}
		return "", n, nil
	case outer.Err() != nil:
		return "", 0, fetchError(outer, rerr)
	case w.stopped && xerr != nil:
		// The archive broke the rules before the stream ended: this object's failure (it may be a forgery).
		return fmt.Sprintf("not a directory archive this provider can unpack (%s): %s", bounds, unpackErr), 0, nil
	}
	why = rerr.Error()
	if errors.Is(context.Cause(ctx), errInputStalled) {
		why = "its storage providers " + strings.TrimPrefix(errInputStalled.Error(), "the server ")
	}
	if w.n == int64(obj.Size) && !errors.Is(rerr, vault.ErrTooFewShards) {
		why = "its shards hold other bytes than the root's: its manifest claims this root for other data"
	}
	if gaveUp > 0 {
		why += fmt.Sprintf(" (%d shard read(s) given up on", gaveUp)
		if len(providers) > 0 {
			why += ", from " + strings.Join(providers, ", ")
		}
		why += ")"
	}
	return why, 0, nil
}
