package tenant

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"lukechampine.com/blake3"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/layout"
	"github.com/sparenet/spare/vault/remote"
)

// PutOptions is how an object is stored in Spare Vault.
type PutOptions struct {
	Coding vault.Coding
	// Months is a term deal's length; 0 stores permanently (an endowment priced by the chain's params).
	Months uint64
	// MaxPrice is the most a term deal pays a shard's provider, uspr per GiB-month (0: the price that lets K+M
	// of today's offers take every stripe, see DefaultMaxPrice).
	MaxPrice uint64
	// Progress hears of the put's phases and bytes (may be nil).
	Progress func(PutProgress)
	// TempDir holds the coded shards until they are uploaded ("": the system's).
	TempDir string
	// WantRoot, when set, is the root the object must have (a receipt's Vault root): another is refused once
	// coded, before anything is sent or escrowed.
	WantRoot tx.Hash
}

// ErrRootMismatch: a put whose object does not have the root it must have (PutOptions.WantRoot).
var ErrRootMismatch = errors.New("the object's root is not the one asked for")

// PutProgress is how far a put has come: Phase is "archiving", "coding", "storing" (the transaction), "placing"
// (waiting for the draw), "uploading" or "done"; Done of Total bytes of the phase.
type PutProgress struct {
	Phase       string
	Done, Total uint64
}

// PutResult is a stored object: where its shards went and what it cost.
type PutResult struct {
	Root     tx.Hash          `json:"root"`
	ObjectID uint64           `json:"object_id"`
	Size     uint64           `json:"size"`
	Coding   vault.Coding     `json:"coding"`
	Months   uint64           `json:"months"`
	Escrow   uint64           `json:"escrow"` // what the deal holds, at the drawn providers' prices
	Refund   uint64           `json:"refund"` // escrowed at the maximum price and given back after the draw
	Fee      uint64           `json:"fee"`
	Height   int64            `json:"height"`
	Shards   []api.VaultShard `json:"shards"`
}

// DefaultMaxPrice is the least price per GiB-month at which K+M distinct offers of today have room for a shard
// of shardSize: what a term deal must allow for the ledger's draw to place a stripe at all. Offers of providers
// that are jailed or short of stake are left out, as the ledger leaves them out.
func DefaultMaxPrice(ctx context.Context, c *client.Client, shardSize uint64, n int) (uint64, error) {
	offers, err := allStorageOffers(ctx, c)
	if err != nil {
		return 0, err
	}
	var prices []uint64
	for _, o := range offers {
		if o.Status == api.ProviderActive && o.Stake > 0 && o.FreeBytes() >= shardSize {
			prices = append(prices, o.PricePerGiBMonth)
		}
	}
	if len(prices) < n {
		return 0, fmt.Errorf("too few storage providers: %d offer %d bytes free for a shard, and a stripe needs %d distinct ones: use a coding with fewer shards (--coding), or wait for providers to offer storage (spare offers --storage)",
			len(prices), shardSize, n)
	}
	slices.Sort(prices)
	return prices[n-1], nil
}

func allStorageOffers(ctx context.Context, c *client.Client) ([]api.StorageOfferView, error) {
	var all []api.StorageOfferView
	for req := (api.ListRequest{Limit: api.MaxPageLimit}); ; {
		page, err := c.StorageOffers(ctx, req)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all, nil
		}
		req.After = page.Next
	}
}

// StorePut stores the file or directory at path (a directory as its deterministic archive) in Spare Vault: codes
// it into shards under a temporary directory, sends StoreObject, waits for the ledger to draw the shards'
// providers, and uploads each shard to its provider. A put interrupted after the transaction is resumed by
// running it again: the same bytes make the same root, the upload skips what providers hold, and a new object is
// not stored while the owner has one with that root placed (its shards are uploaded again instead).
func (t *Tenant) StorePut(ctx context.Context, path string, opt PutOptions) (*PutResult, error) {
	c := t.node
	progress := opt.Progress
	if progress == nil {
		progress = func(PutProgress) {}
	}
	tmp, err := os.MkdirTemp(opt.TempDir, "spare-put-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	src, size, err := openObject(path, tmp, progress)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	l, err := vault.LayoutOf(size, opt.Coding)
	if err != nil {
		return nil, err
	}
	progress(PutProgress{Phase: "coding", Total: size})
	counted := &codingProgress{r: src, each: func(n uint64) { progress(PutProgress{Phase: "coding", Done: n, Total: size}) }}
	files := map[[2]int]*os.File{}
	obj, err := vault.Encode(counted, size, opt.Coding, func(s, i int) (io.Writer, error) {
		f, err := os.Create(filepath.Join(tmp, fmt.Sprintf("shard-%d-%d", s, i)))
		files[[2]int{s, i}] = f
		return f, err
	})
	for _, f := range files {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return nil, err
	}
	if !opt.WantRoot.IsZero() && obj.Root != opt.WantRoot {
		return nil, fmt.Errorf("%w: %s codes to root %s, not %s: nothing was stored", ErrRootMismatch, path, obj.Root, opt.WantRoot)
	}
	if c == nil {
		return nil, errors.New("storing needs a node client")
	}
	res := &PutResult{Root: obj.Root, Size: size, Coding: opt.Coding, Months: opt.Months}
	o, err := t.placedObject(ctx, obj)
	if err != nil {
		return nil, err
	}
	if o == nil {
		if o, err = t.storeObject(ctx, obj, l, opt, res, progress); err != nil {
			return nil, err
		}
	}
	res.ObjectID, res.Escrow = o.ID, o.Escrow
	shards, err := c.AllVaultShards(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	res.Shards = shards
	if err := t.upload(ctx, obj, shards, tmp, progress); err != nil {
		return res, fmt.Errorf("object %d is stored and placed, but not every shard reached its provider (run the put again to resume): %w", o.ID, err)
	}
	progress(PutProgress{Phase: "done", Done: size, Total: size})
	return res, nil
}

// placedObject is an object of the owner's with obj's root and coding already stored (a put being resumed),
// waited for until its providers are drawn, or nil. The root's objects are paged through (anyone may store
// objects claiming the root; a few pages of them are looked at, and past those the put stores anew).
func (t *Tenant) placedObject(ctx context.Context, obj *vault.Object) (*api.VaultObject, error) {
	req := api.VaultObjectsRequest{Root: obj.Root, Limit: api.MaxPageLimit}
	for range 20 {
		l, err := t.node.VaultObjects(ctx, req)
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			o := &l.Items[i]
			if o.Owner == t.Address() && o.K == obj.K && o.M == obj.M && o.ShardSize == obj.ShardSize && o.Size == obj.Size {
				return t.awaitPlaced(ctx, o.ID, o.PlaceAt)
			}
		}
		if l.Next == "" || len(l.Items) == 0 {
			break
		}
		req.After = l.Items[len(l.Items)-1].ID
	}
	return nil, nil
}

// awaitPlaced waits for object id's providers to be drawn (at the end of block placeAt).
func (t *Tenant) awaitPlaced(ctx context.Context, id uint64, placeAt int64) (*api.VaultObject, error) {
	for {
		o, err := t.node.VaultObject(ctx, id)
		if errors.Is(err, client.ErrNotFound) {
			return nil, fmt.Errorf("the ledger could not place object %d: the storage offers changed before its draw at block %d; its escrow was refunded in full: run the put again", id, placeAt)
		}
		if err != nil {
			return nil, err
		}
		if o.State == api.VaultPlaced {
			return &o, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// storeObject sends StoreObject and waits for the draw.
func (t *Tenant) storeObject(ctx context.Context, obj *vault.Object, l layout.Layout, opt PutOptions, res *PutResult, progress func(PutProgress)) (*api.VaultObject, error) {
	c := t.node
	price := uint64(0)
	if opt.Months > 0 {
		price = opt.MaxPrice
		if price == 0 {
			var err error
			if price, err = DefaultMaxPrice(ctx, c, l.ShardSize, l.K+l.M); err != nil {
				return nil, err
			}
		}
	}
	manifest, err := obj.Encode()
	if err != nil {
		return nil, err
	}
	if len(manifest) > tx.MaxManifestInTx {
		return nil, fmt.Errorf("the object's manifest is %d bytes (%d shards), more than a transaction carries (%d): use a larger shard size (--coding K+M/SIZE)", len(manifest), l.Shards(), tx.MaxManifestInTx)
	}
	progress(PutProgress{Phase: "storing"})
	r, err := t.Sender().Send(ctx, &tx.StoreObject{Manifest: manifest, Months: opt.Months, MaxPricePerGiBMonth: price})
	if err != nil {
		return nil, err
	}
	res.Fee, res.Height = r.Fee, r.Height
	var stored *api.VaultStoredEvent
	for _, e := range r.Events {
		if e.Type != api.EventVaultStored {
			continue
		}
		m := map[string]string{}
		for _, a := range e.Attributes {
			m[a.Key] = a.Value
		}
		ev, err := api.ParseVaultStored(m)
		if err != nil {
			return nil, err
		}
		stored = &ev
	}
	if stored == nil {
		return nil, fmt.Errorf("transaction %s stored no object (no %s event)", r.Hash, api.EventVaultStored)
	}
	progress(PutProgress{Phase: "placing"})
	o, err := t.awaitPlaced(ctx, stored.ObjectID, stored.PlaceAt)
	if err != nil {
		return nil, err
	}
	res.Refund = stored.Escrow - o.Escrow
	return o, nil
}

// upload sends every shard to its provider, a few at a time.
func (t *Tenant) upload(ctx context.Context, obj *vault.Object, shards []api.VaultShard, dir string, progress func(PutProgress)) error {
	total := obj.StoredBytes()
	var done atomic.Uint64
	progress(PutProgress{Phase: "uploading", Total: total})
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, s := range shards {
		g.Go(func() error {
			if s.Provider.IsZero() {
				return fmt.Errorf("stripe %d shard %d has no provider", s.Stripe, s.Index)
			}
			h := remote.ShardHost{Provider: s.Provider, HostURI: s.HostURI, Fingerprint: s.Fingerprint}
			name := filepath.Join(dir, fmt.Sprintf("shard-%d-%d", s.Stripe, s.Index))
			// A connection that drops (a provider restarting, a network blip) is tried again twice; a provider's
			// refusal is not retried on its own account, but costs only the same requests again.
			var err error
			for try := range 3 {
				if try > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(time.Duration(try) * 500 * time.Millisecond):
					}
				}
				if err = remote.Upload(ctx, h, s.Root, int64(obj.ShardSize), func() (io.Reader, error) { return os.Open(name) }, t.key.PrivateKey()); err == nil {
					break
				}
			}
			if err != nil {
				return fmt.Errorf("stripe %d shard %d to provider %s: %w", s.Stripe, s.Index, s.Provider, err)
			}
			progress(PutProgress{Phase: "uploading", Done: done.Add(obj.ShardSize), Total: total})
			return nil
		})
	}
	return g.Wait()
}

// openObject opens the object's bytes: the file at path, or a directory's archive written under tmp.
func openObject(path, tmp string, progress func(PutProgress)) (io.ReadCloser, uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if fi.IsDir() {
		progress(PutProgress{Phase: "archiving"})
		a, err := os.Create(filepath.Join(tmp, "archive"))
		if err != nil {
			return nil, 0, err
		}
		if err := vault.Archive(a, path, vault.DefaultArchiveLimits); err != nil {
			a.Close()
			return nil, 0, fmt.Errorf("archiving %s: %w", path, err)
		}
		if _, err := a.Seek(0, io.SeekStart); err != nil {
			a.Close()
			return nil, 0, err
		}
		fi, err = a.Stat()
		if err != nil {
			a.Close()
			return nil, 0, err
		}
		return a, uint64(fi.Size()), nil
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file or a directory", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	if fi.Size() == 0 {
		f.Close()
		return nil, 0, fmt.Errorf("%s is empty: there is nothing to store", path)
	}
	return f, uint64(fi.Size()), nil
}

type codingProgress struct {
	r    io.Reader
	n    uint64
	each func(uint64)
	last time.Time
}

func (c *codingProgress) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	if now := time.Now(); now.Sub(c.last) > 100*time.Millisecond || err != nil {
		c.last = now
		c.each(c.n)
	}
	return n, err
}

// GetOptions is how an object is read back.
type GetOptions struct {
	// Offset and Length select a byte range (Length 0: to the end).
	Offset, Length uint64
	// Progress hears of bytes written (may be nil).
	Progress func(done, total uint64)
	// Failed hears of every shard given up on, with its provider (may be nil).
	Failed func(vault.ShardFailure, remote.ShardHost)
	// Timeout bounds each wait on a provider (0: remote's default).
	Timeout time.Duration
}

// GetResult is what a get read.
type GetResult struct {
	Root     tx.Hash  `json:"root"`
	ObjectID uint64   `json:"object_id"`
	Size     uint64   `json:"size"`    // the object's
	Offset   uint64   `json:"offset"`  // of the range written
	Length   uint64   `json:"length"`  // of the range written
	Resumed  uint64   `json:"resumed"` // bytes a partial file already held, not fetched again
	Dest     string   `json:"dest"`
	Failed   []string `json:"failed_providers,omitempty"`
}

// ObjectByRoot is the placed objects with root, and each one's manifest rebuilt from the ledger (the objects are
// the candidates a reader tries in turn: anyone may store a manifest claiming a root, and only the bytes tell).
func ObjectByRoot(ctx context.Context, c *client.Client, root tx.Hash) ([]api.VaultObject, error) {
	l, err := c.VaultObjects(ctx, api.VaultObjectsRequest{Root: root, Limit: api.MaxPageLimit})
	if err != nil {
		return nil, err
	}
	var out []api.VaultObject
	for _, o := range l.Items {
		if o.State == api.VaultPlaced {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		if len(l.Items) > 0 {
			return nil, fmt.Errorf("object %x is stored, its shards' providers not drawn yet: try again in a block", root)
		}
		return nil, fmt.Errorf("no object with root %x is stored: check the root (spare store ls lists yours)", root)
	}
	return out, nil
}

// Manifest rebuilds object o's manifest and shard hosts from the ledger.
func Manifest(ctx context.Context, c *client.Client, o api.VaultObject) (*vault.Object, []api.VaultShard, error) {
	shards, err := c.AllVaultShards(ctx, o.ID)
	if err != nil {
		return nil, nil, err
	}
	obj := &vault.Object{Root: o.Root, Layout: vault.Layout{Coding: vault.Coding{K: o.K, M: o.M, ShardSize: o.ShardSize}, Size: o.Size, Stripes: o.Stripes},
		Shards: make([][]tx.Hash, o.Stripes)}
	n := o.K + o.M
	if len(shards) != o.Stripes*n {
		return nil, nil, fmt.Errorf("object %d lists %d shards, its layout has %d", o.ID, len(shards), o.Stripes*n)
	}
	for s := range obj.Shards {
		obj.Shards[s] = make([]tx.Hash, n)
	}
	for _, s := range shards {
		obj.Shards[s.Stripe][s.Index] = s.Root
	}
	return obj, shards, nil
}

// StoreGet writes object root (or a range of it) to dest, from the providers holding its shards, each shard
// verified as it streams. A whole get goes to dest+".partial" first and resumes from what that file holds: the
// rest is fetched, and the whole file is checked against the root before it is renamed into place (a partial
// file that does not check is removed, and the get fails naming it). A range is written as asked, unresumed.
func StoreGet(ctx context.Context, c *client.Client, root tx.Hash, dest string, opt GetOptions) (*GetResult, error) {
	objs, err := ObjectByRoot(ctx, c, root)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, o := range objs {
		res, err := getObject(ctx, c, o, dest, opt)
		if err == nil {
			return res, nil
		}
		errs = append(errs, fmt.Errorf("object %d: %w", o.ID, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func getObject(ctx context.Context, c *client.Client, o api.VaultObject, dest string, opt GetOptions) (*GetResult, error) {
	obj, shards, err := Manifest(ctx, c, o)
	if err != nil {
		return nil, err
	}
	hosts := map[[2]int]remote.ShardHost{}
	for _, s := range shards {
		if !s.Provider.IsZero() && s.HostURI != "" {
			hosts[[2]int{s.Stripe, s.Index}] = remote.ShardHost{Provider: s.Provider, HostURI: s.HostURI, Fingerprint: s.Fingerprint}
		}
	}
	res := &GetResult{Root: o.Root, ObjectID: o.ID, Size: o.Size, Offset: opt.Offset, Dest: dest}
	var failedMu sync.Mutex
	r := &remote.Reader{Where: func(s, i int) (remote.ShardHost, bool) { h, ok := hosts[[2]int{s, i}]; return h, ok }, Timeout: opt.Timeout}
	failed := func(f vault.ShardFailure, h remote.ShardHost) {
		failedMu.Lock()
		res.Failed = append(res.Failed, fmt.Sprintf("%s (stripe %d shard %d): %v", h.Provider, f.Stripe, f.Index, f.Err))
		failedMu.Unlock()
		if opt.Failed != nil {
			opt.Failed(f, h)
		}
	}
	if opt.Offset >= o.Size {
		return nil, fmt.Errorf("--range starts at byte %d: the object has %d bytes", opt.Offset, o.Size)
	}
	length := opt.Length
	if length == 0 || length > o.Size-opt.Offset {
		length = o.Size - opt.Offset
	}
	res.Length = length
	whole := opt.Offset == 0 && length == o.Size
	if !whole || dest == "-" {
		w, closeW, err := destWriter(dest)
		if err != nil {
			return nil, err
		}
		pw := &progressWriter{w: w, total: length, each: opt.Progress}
		err = r.Read(ctx, pw, obj, opt.Offset, length, failed)
		if cerr := closeW(); err == nil {
			err = cerr
		}
		return res, err
	}
	part := dest + ".partial"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	have := uint64(fi.Size())
	if have > o.Size {
		have = 0
		if err := f.Truncate(0); err != nil {
			return nil, err
		}
	}
	if _, err := f.Seek(int64(have), io.SeekStart); err != nil {
		return nil, err
	}
	res.Resumed = have
	if have < o.Size {
		pw := &progressWriter{w: f, done: have, total: o.Size, each: opt.Progress}
		if err := r.Read(ctx, pw, obj, have, o.Size-have, failed); err != nil {
			return res, fmt.Errorf("%w (what arrived is kept in %s: the next get resumes from it)", err, part)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	h := blake3.New(32, nil)
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	var got tx.Hash
	h.Sum(got[:0])
	if got != o.Root {
		f.Close()
		os.Remove(part)
		return nil, fmt.Errorf("%s does not hash to the root (a partial file from another object, or changed on disk): removed, run the get again", part)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := os.Rename(part, dest); err != nil {
		return nil, err
	}
	return res, nil
}

func destWriter(dest string) (io.Writer, func() error, error) {
	if dest == "-" {
		return os.Stdout, func() error { return nil }, nil
	}
	f, err := os.Create(dest)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

type progressWriter struct {
	w           io.Writer
	done, total uint64
	each        func(done, total uint64)
	last        time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += uint64(n)
	if p.each != nil {
		if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond || p.done == p.total {
			p.last = now
			p.each(p.done, p.total)
		}
	}
	return n, err
}

// ShardState is one shard of an object as the ledger has it (its provider; lost, being repaired, failing its
// proofs: api.VaultShard) and as its provider answers for it now (Held: HEAD says it holds it).
type ShardState struct {
	api.VaultShard
	Held  bool   `json:"held"`
	Error string `json:"error,omitempty"`
}

// Healthy is a shard its provider holds that is neither lost nor being repaired: a repaired shard counts once
// its first proof on its new provider passed (the ledger clears Repairing then), not before, even when that
// provider already answers that it holds it.
func (s ShardState) Healthy() bool { return s.Held && !s.Lost && !s.Repairing }

// ObjectHealth is what an object's shards say of it now.
type ObjectHealth struct {
	// Least is the fewest healthy shards (ShardState.Healthy) in any stripe: at least K, the object reads back.
	Least   int `json:"least"`
	Healthy int `json:"healthy"`
	Held    int `json:"held"` // shards whose provider answered that it holds them, healthy or not
	// Lost shards (counted as missing: no provider has them until a repair draws one), shards being repaired
	// (not counted until their first proof on their new provider passes), shards failing their proofs lately,
	// and shards their provider has not declared held yet (not challenged or paid until it does).
	Lost       int    `json:"lost"`
	Repairing  int    `json:"repairing"`
	Failing    int    `json:"failing"`
	Undeclared int    `json:"undeclared"`
	Text       string `json:"health"`
}

// Health sums object o's shard states st (as StoreStatus returns them) into its health.
func Health(o api.VaultObject, st []ShardState) ObjectHealth {
	var h ObjectHealth
	per := make([]int, o.Stripes)
	for _, s := range st {
		switch {
		case s.Lost:
			h.Lost++
		case s.Repairing:
			h.Repairing++
		case s.HeldHeight == 0 && !s.Provider.IsZero():
			h.Undeclared++
		}
		if s.Failures > 0 && !s.Lost {
			h.Failing++
		}
		if s.Held {
			h.Held++
		}
		if s.Healthy() {
			h.Healthy++
			if s.Stripe >= 0 && s.Stripe < len(per) {
				per[s.Stripe]++
			}
		}
	}
	h.Least = -1
	for _, n := range per {
		if h.Least < 0 || n < h.Least {
			h.Least = n
		}
	}
	h.Least = max(h.Least, 0)
	n := o.K + o.M
	switch {
	case o.State != api.VaultPlaced:
		h.Text = fmt.Sprintf("placing: its providers are drawn at the end of block %d", o.PlaceAt)
		return h
	case h.Least >= n:
		h.Text = "full"
	case h.Least >= o.K:
		h.Text = fmt.Sprintf("readable: at least %d of %d shards healthy in every stripe (K = %d)", h.Least, n, o.K)
	default:
		h.Text = fmt.Sprintf("unreadable now: a stripe has %d healthy shards, fewer than K = %d", h.Least, o.K)
	}
	if h.Lost > 0 {
		h.Text += fmt.Sprintf("; %d lost (counted as missing until a repair draws a provider for it)", h.Lost)
	}
	if h.Repairing > 0 {
		h.Text += fmt.Sprintf("; %d being repaired (not counted healthy until its first proof on its new provider passes)", h.Repairing)
	}
	if h.Failing > 0 {
		h.Text += fmt.Sprintf("; %d failing its storage proofs (lost after %d epochs in a row)", h.Failing, api.VaultLostAfterFailures)
	}
	if h.Undeclared > 0 && o.Pooled {
		h.Text += fmt.Sprintf("; %d not declared held by their providers yet (not challenged or paid until they are)", h.Undeclared)
	}
	return h
}

// StoreStatus asks every provider of object o whether it holds its shard, and sorts the answers by stripe. A
// lost shard has no provider to ask.
func StoreStatus(ctx context.Context, c *client.Client, o api.VaultObject, timeout time.Duration) ([]ShardState, error) {
	shards, err := c.AllVaultShards(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	out := make([]ShardState, len(shards))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, s := range shards {
		out[i].VaultShard = s
		if s.Provider.IsZero() {
			continue
		}
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(gctx, timeout)
			defer cancel()
			held, err := remote.Has(cctx, remote.ShardHost{Provider: s.Provider, HostURI: s.HostURI, Fingerprint: s.Fingerprint}, s.Root)
			out[i].Held = held
			if err != nil {
				out[i].Error = err.Error()
			}
			return nil
		})
	}
	_ = g.Wait()
	slices.SortStableFunc(out, func(a, b ShardState) int {
		return cmp.Or(cmp.Compare(a.Stripe, b.Stripe), cmp.Compare(a.Index, b.Index))
	})
	return out, nil
}
