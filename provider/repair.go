package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/layout"
	"github.com/sparenet/spare/vault/remote"
)

// Vault repairs: the provider's side. When a shard fails its storage proofs VaultLostAfterFailures epochs in a
// row, the ledger draws another storage provider for it and records the shard there with RepairHeight set.
// Nobody uploads it: the new provider rebuilds it itself from the stripe's other shards and declares it held
// within VaultRepairEpochs epochs (holds.go declares what the store holds; else the ledger draws it elsewhere),
// and is paid the repair once its first proof passes.
//
//   - When: a pass at start, on every vault.repair event that names this provider, and every repairEvery. A pass
//     pages vault_placed_on for this provider's shards not declared held (Unheld) and takes those with
//     RepairHeight > 0 that the shard store does not hold.
//   - How: the object's record and the stripe's K+M shards (one vault_shards page) give its layout, the stripe's
//     shard roots and where each is held; any K of the others are read from their providers through
//     remote.Reader — pinned TLS, each shard verified against its root as it streams, a provider that fails,
//     stalls or serves bad bytes routed around — and the stripe re-coded a row at a time (vault.RebuildShard).
//     The rebuilt bytes stream into the shard store (Shards.Put: a temporary file, the root checked against the
//     ledger's, synced, its outboard computed), so a shard is never held in memory whole, and nothing is kept
//     unless it hashes to its root.
//   - Bounds: repairsAtOnce repairs at a time, each within timeFor its layout (a base and a minimum rate over
//     the bytes it reads), and only when the store has the shard's room left (the offer's capacity is never
//     passed). A repair that fails — too few sources, a full store, a stripe whose shards were never one
//     codeword — is said in the log and tried again on the next pass.

const (
	// repairEvery is how often the daemon looks for repairs drawn onto it (besides at start and on the ledger's
	// vault.repair events naming it).
	repairEvery = time.Minute
	// repairsAtOnce is how many shards are rebuilt at a time: each reads K shards from the network and writes one.
	repairsAtOnce = 2
	// repairBaseTime and repairRate bound one repair: repairBaseTime, plus a second for every repairRate bytes it
	// reads (K shards).
	repairBaseTime = 2 * time.Minute
	repairRate     = 1 << 20
	// repairStall is how long a source provider may send nothing before it is read around.
	repairStall = 30 * time.Second
	// maxRepairTries is how many placements (object, stripe) of one root a pass tries to rebuild it from;
	// maxRepairRoots bounds the roots one pass takes on (the rest wait for the next).
	maxRepairTries = 4
	maxRepairRoots = 1024
)

// RepairLedger is what repairs read of the ledger (a *client.Client): the shards placed on this provider, and
// each object's record and shards.
type RepairLedger interface {
	client.PlacedOnLedger
	VaultObject(ctx context.Context, id uint64) (api.VaultObject, error)
	VaultShards(ctx context.Context, r api.VaultShardsRequest) (api.List[api.VaultShard], error)
}

// repairer rebuilds the shards the ledger drew onto this provider to repair (see the top of this file).
type repairer struct {
	me     tx.Address
	shards *Shards
	ledger RepairLedger
	log    *slog.Logger

	every, stall, base time.Duration // repairEvery, repairStall, repairBaseTime (tests shorten them)
	rate               uint64        // repairRate
	atOnce             int           // repairsAtOnce
	wake               chan struct{}
}

func newRepairer(me tx.Address, shards *Shards, ledger RepairLedger, log *slog.Logger) *repairer {
	return &repairer{me: me, shards: shards, ledger: ledger, log: log, every: repairEvery, stall: repairStall,
		base: repairBaseTime, rate: repairRate, atOnce: repairsAtOnce, wake: make(chan struct{}, 1)}
}

// kick asks for a pass now (a repair was drawn onto this provider); it never waits. A nil repairer (no storage
// offered) does nothing.
func (r *repairer) kick() {
	if r == nil {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run passes at start, when kicked and every r.every, until ctx ends.
func (r *repairer) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		r.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
	}
}

// pass rebuilds the shards drawn onto this provider to repair that it does not hold, repairsAtOnce at a time,
// and returns how many it rebuilt and how many it failed to (each said in the log).
func (r *repairer) pass(ctx context.Context) (repaired, failed int) {
	todo := map[tx.Hash][]api.VaultShard{}
	var order []tx.Hash
	err := client.EachVaultPlacedOn(ctx, r.ledger, api.VaultPlacedOnRequest{Provider: r.me, Unheld: true, Limit: api.MaxPageLimit}, func(s api.VaultShard) (bool, error) {
		if s.Provider != r.me || s.HeldHeight > 0 || s.RepairHeight <= 0 { // not a repair: its owner's to upload
			return true, nil
		}
		if _, held := r.shards.Has(s.Root); held { // rebuilt already: the daemon declares it (holds.go)
			return true, nil
		}
		switch {
		case todo[s.Root] != nil:
			if len(todo[s.Root]) < maxRepairTries {
				todo[s.Root] = append(todo[s.Root], s)
			}
		case len(order) < maxRepairRoots:
			order = append(order, s.Root)
			todo[s.Root] = []api.VaultShard{s}
		default:
			return false, nil // the rest on the next pass
		}
		return true, nil
	})
	if err != nil && ctx.Err() == nil {
		r.log.Warn("vault repairs: could not list the shards placed here; trying again later", "err", err)
	}
	if len(order) == 0 {
		return 0, 0
	}
	r.log.Info("vault repairs: rebuilding shards drawn onto this provider", "shards", len(order))
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, max(r.atOnce, 1))
	for _, root := range order {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			ok := r.repairRoot(ctx, root, todo[root])
			mu.Lock()
			defer mu.Unlock()
			if ok {
				repaired++
			} else {
				failed++
			}
		})
	}
	wg.Wait()
	return repaired, failed
}

// repairRoot rebuilds the shard with root from the first of its placements (object, stripe) that rebuilds it.
func (r *repairer) repairRoot(ctx context.Context, root tx.Hash, placed []api.VaultShard) bool {
	for _, s := range placed {
		if ctx.Err() != nil {
			return false
		}
		start := time.Now()
		given, err := r.repair(ctx, s)
		if err == nil {
			r.log.Info("vault shard repaired: rebuilt from its stripe and held", "object", s.ObjectID, "stripe", s.Stripe,
				"index", s.Index, "root", root.String(), "took", time.Since(start).Round(time.Millisecond), "sources_given_up", given)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.log.Error("vault repair failed; tried again on the next pass", "object", s.ObjectID, "stripe", s.Stripe,
			"index", s.Index, "root", root.String(), "repair_height", s.RepairHeight, "err", err)
	}
	return false
}

// repair rebuilds shard s (placed here to repair) from its stripe's other shards into the shard store, returning
// how many source shards were given up on.
func (r *repairer) repair(ctx context.Context, s api.VaultShard) (int, error) {
	o, err := r.ledger.VaultObject(ctx, s.ObjectID)
	if err != nil {
		return 0, fmt.Errorf("reading object %d: %w", s.ObjectID, err)
	}
	if o.State != api.VaultPlaced {
		return 0, fmt.Errorf("object %d is %s, not placed", o.ID, o.State)
	}
	l, err := layout.LayoutOf(o.Size, layout.Coding{K: o.K, M: o.M, ShardSize: o.ShardSize})
	if err != nil || l.ShardSize != o.ShardSize || l.Stripes != o.Stripes {
		return 0, fmt.Errorf("object %d: the ledger's layout (%d bytes, %d+%d, shards of %d, %d stripes) is not one (%v)",
			o.ID, o.Size, o.K, o.M, o.ShardSize, o.Stripes, err)
	}
	n := l.K + l.M
	if s.Stripe < 0 || s.Stripe >= l.Stripes || s.Index < 0 || s.Index >= n {
		return 0, fmt.Errorf("object %d has no shard %d of stripe %d", o.ID, s.Index, s.Stripe)
	}
	page, err := r.ledger.VaultShards(ctx, api.VaultShardsRequest{ID: o.ID, From: s.Stripe * n, Limit: n})
	if err != nil {
		return 0, fmt.Errorf("reading stripe %d of object %d: %w", s.Stripe, o.ID, err)
	}
	if len(page.Items) != n {
		return 0, fmt.Errorf("the ledger lists %d shards for stripe %d of object %d, want k + m = %d", len(page.Items), s.Stripe, o.ID, n)
	}
	roots := make([]tx.Hash, n)
	hosts := make([]remote.ShardHost, n)
	for i, sh := range page.Items {
		if sh.ObjectID != o.ID || sh.Stripe != s.Stripe || sh.Index != i {
			return 0, fmt.Errorf("the ledger lists shard %d/%d of object %d as stripe %d of object %d", sh.Stripe, sh.Index, sh.ObjectID, s.Stripe, o.ID)
		}
		roots[i] = sh.Root
		if i != s.Index && !sh.Provider.IsZero() && sh.HostURI != "" {
			hosts[i] = remote.ShardHost{Provider: sh.Provider, HostURI: sh.HostURI, Fingerprint: sh.Fingerprint}
		}
	}
	if t := page.Items[s.Index]; t.Provider != r.me || t.Root != s.Root {
		return 0, fmt.Errorf("the shard is no longer placed here (the ledger now places it on %s)", t.Provider)
	}
	if used := r.shards.Used(); used+l.ShardSize > r.shards.capacity || used+l.ShardSize < used {
		return 0, fmt.Errorf("%w: %d bytes held of %d offered, the shard needs %d more", ErrStorageFull, used, r.shards.capacity, l.ShardSize)
	}
	obj := &vault.Object{Root: o.Root, Layout: l, Shards: make([][]tx.Hash, l.Stripes)}
	obj.Shards[s.Stripe] = roots
	rd := &remote.Reader{Timeout: r.stall, Where: func(stripe, i int) (remote.ShardHost, bool) {
		if stripe != s.Stripe || i < 0 || i >= n || hosts[i].HostURI == "" {
			return remote.ShardHost{}, false
		}
		return hosts[i], true
	}}
	defer rd.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, r.timeFor(l))
	defer cancel()
	given := 0
	pr, pw := io.Pipe()
	kept := make(chan error, 1)
	go func() {
		err := r.shards.Put(s.Root, l.ShardSize, pr)
		pr.CloseWithError(err) // the rebuild's writes fail from now on
		kept <- err
	}()
	err = rd.RebuildShard(ctx, pw, obj, s.Stripe, s.Index, func(f vault.ShardFailure, h remote.ShardHost) {
		given++
		r.log.Warn("vault repair: a source shard given up on", "object", o.ID, "stripe", f.Stripe, "index", f.Index,
			"provider", h.Provider.String(), "at", f.Offset, "err", f.Err)
	})
	pw.CloseWithError(err) // nil: the shard's end
	putErr := <-kept
	var bad *vault.BadShardError
	switch {
	case err != nil && putErr == nil: // held already (stored meanwhile by its owner's upload): nothing was read
		if _, held := r.shards.Has(s.Root); held {
			return given, nil
		}
		return given, err
	case err != nil:
		return given, err
	case errors.As(putErr, &bad):
		return given, fmt.Errorf("the stripe's shards rebuild to bytes that do not hash to the ledger's root for the shard: they are not one Reed-Solomon codeword (a manifest made up by its uploader)")
	case putErr != nil:
		return given, fmt.Errorf("keeping the rebuilt shard: %w", putErr)
	}
	return given, nil
}

// timeFor is how long one repair of a shard of layout l may take: the base, and a second for every r.rate bytes
// of the K shards it reads.
func (r *repairer) timeFor(l layout.Layout) time.Duration {
	return r.base + time.Duration(uint64(l.K)*l.ShardSize/max(r.rate, 1))*time.Second
}
