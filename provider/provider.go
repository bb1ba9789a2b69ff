// Package provider is the provider daemon (`spare provider start`): it registers the machine's hardware on the
// ledger and keeps its stake bonded, follows the chain's events, bids on orders its free capacity can serve,
// receives each won lease's manifest over its HTTPS tenant API, runs the workload through a runtime, and
// completes the lease with a signed receipt over the outputs. Its state lives in a local bbolt store so that a
// restart loses no bid, lease or event.
//
// Files: config.go (provider.toml), capacity.go (free vs reserved hardware), store.go (bbolt), bidder.go
// (feasibility and pricing), leases.go (lease lifecycle), api.go (tenant API), provider.go (wiring, event loop).
package provider

import (
	"github.com/sparenet/spare/liveness"

	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/runtime"
)

// Signer is the provider's key: it signs transactions, receipts and liveness challenges.
type Signer interface {
	client.Signer
}

// Options wire a Daemon.
type Options struct {
	Config   *Config
	DataDir  string // leases' directories and the local store live here
	Signer   Signer
	Client   *client.Client
	Runtimes map[string]runtime.Runtime // by name; the config's runtime must be present
	// CertFingerprint is the SHA-256 of the TLS certificate the tenant API serves (recorded on the ledger).
	CertFingerprint tx.Hash
	Logger          *slog.Logger
	Now             func() time.Time
	// Hide are directories workloads must not see even where file modes would let them: the Spare home (keys,
	// configuration). DataDir is always hidden. A runtime with a mount namespace covers them (runtime.Spec.HidePaths).
	Hide []string
}

// Daemon is a running provider.
type Daemon struct {
	cfg       *Config
	dataDir   string
	leasesDir string
	signer    Signer
	c         *client.Client
	sender    *client.Sender
	shards    *Shards   // the Vault shards held (nil: no storage offered)
	repairs   *repairer // rebuilds the shards the ledger draws onto this provider to repair (nil: no storage offered)
	runtimes  map[string]runtime.Runtime
	fp        tx.Hash
	hide      []string // runtime.Spec.HidePaths
	isolation IsolationReport
	log       *slog.Logger
	now       func() time.Time
	store     *Store
	capacity  *Capacity
	chainID   string

	life context.Context // ends at Close: background work (waiting on workloads, sending txs) stops with it
	end  context.CancelFunc

	mu         sync.Mutex                    // guards the maps below; never held across I/O (locks.go)
	leaseLocks map[uint64]*leaseLock         // one lock per lease being worked on
	accepting  map[uint64]context.CancelFunc // manifests being accepted (inputs fetched): cancelled when the lease closes
	workloads  map[uint64]runtime.Workload   // running leases
	deferred   deferredOrders                // orders to consider again when capacity frees (deferred.go)
	retrying   sync.Mutex                    // held by the pass over deferred orders
	retryAgain atomic.Bool                   // capacity freed during a pass: run another
	completing map[uint64]bool               // CompleteLease in flight
	ending     map[uint64]bool               // a lease's end being checked against the ledger (extend.go)
	endTimers  map[uint64]*time.Timer        // when each extendable running lease's duration ends (extend.go)

	portMu  sync.Mutex     // picking and claiming host ports (cluster.go)
	claimed map[int]uint64 // host port -> the lease whose manifest claimed it, until saved with the lease

	params   *api.Params // cachedParams (leases.go); guarded by mu
	paramsAt time.Time

	staking      atomic.Bool // keepStaked is running (stake.go)
	stakeProblem string      // why the stake is not kept bonded (stake.go); guarded by mu

	audMu    sync.Mutex // the ledger's auditor set, for /proof
	auditors []tx.Address
	audAt    time.Time
	bg       sync.WaitGroup
}

// New opens the daemon's store and restores its reservations.
func New(o Options) (*Daemon, error) {
	if o.Config == nil || o.Signer == nil || o.Client == nil {
		return nil, errors.New("provider: Config, Signer and Client are required")
	}
	if _, ok := o.Runtimes[o.Config.Runtime]; !ok {
		return nil, fmt.Errorf("provider: runtime %q is not available on this machine", o.Config.Runtime)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// Offer only the runtimes that can isolate tenants here (or whose risks the operator accepted).
	iso := CheckIsolation(context.Background(), o.Config.Isolation, o.Runtimes)
	rts := map[string]runtime.Runtime{}
	for name, rt := range o.Runtimes {
		ri, _ := iso.Runtime(name)
		switch {
		case ri.Offered:
			rts[name] = rt
			o.Logger.Info("runtime offered", "runtime", name, "guarantees", guaranteeSummary(ri))
			if len(ri.Accepted) > 0 {
				o.Logger.Warn("runtime offered with risks the operator accepted: tenants' jobs are less isolated", "runtime", name, "accepted", ri.Accepted)
			}
		case name == o.Config.Runtime:
			return nil, fmt.Errorf("provider: %w", ri.RefusalError())
		default:
			o.Logger.Warn("runtime not offered", "runtime", name, "err", ri.RefusalError())
		}
	}
	o.Runtimes = rts
	leases, err := prepareLeasesDir(o.Config.LeasesDir, o.DataDir)
	if err != nil {
		return nil, err
	}
	// One subdirectory per provider key: lease ids restart with every chain, and several daemons (or dev
	// networks) may share the leases directory.
	leases = filepath.Join(leases, o.Signer.Address().String())
	if err := os.MkdirAll(leases, 0o711); err != nil {
		return nil, fmt.Errorf("leases_dir: %w", err)
	}
	if err := os.Chmod(leases, 0o711); err != nil {
		return nil, fmt.Errorf("leases_dir: %w", err)
	}
	st, err := OpenStore(filepath.Join(o.DataDir, "provider.db"))
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: o.Config, dataDir: o.DataDir, leasesDir: leases, signer: o.Signer, c: o.Client, sender: o.Client.NewSender(o.Signer),
		runtimes: o.Runtimes, fp: o.CertFingerprint, log: o.Logger, now: o.Now, store: st,
		capacity: NewCapacity(o.Config.Hardware), workloads: map[uint64]runtime.Workload{}, completing: map[uint64]bool{}, ending: map[uint64]bool{}, endTimers: map[uint64]*time.Timer{},
		leaseLocks: map[uint64]*leaseLock{}, accepting: map[uint64]context.CancelFunc{}, claimed: map[int]uint64{}}
	d.isolation = iso
	if o.Config.Storage.CapacityGiB > 0 {
		if d.shards, err = OpenShards(o.Config.Storage.Path, o.Config.Storage.CapacityGiB<<30); err != nil {
			st.Close()
			return nil, fmt.Errorf("storage.path: %w", err)
		}
		d.repairs = newRepairer(o.Signer.Address(), d.shards, o.Client, o.Logger)
	}
	for _, p := range append([]string{o.DataDir}, o.Hide...) {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil && !slices.Contains(d.hide, abs) {
			d.hide = append(d.hide, abs)
		}
	}
	d.life, d.end = context.WithCancel(context.Background())
	d.capacity.OnFree = d.capacityFreed
	bids, err := st.Bids()
	if err != nil {
		st.Close()
		return nil, err
	}
	for _, b := range bids {
		d.capacity.Restore(orderKey(b.OrderID), b.Reservation)
	}
	recs, err := st.Leases()
	if err != nil {
		st.Close()
		return nil, err
	}
	for _, l := range recs {
		if l.State != LeaseDone && l.State != LeaseRevealing { // a committed run's workload has ended
			d.capacity.Restore(leaseKey(l.LeaseID), l.Reservation)
		}
	}
	return d, nil
}

// Close stops the daemon's background work and releases the store. Running workloads keep running; a new
// daemon reattaches to them.
func (d *Daemon) Close() error {
	d.end()
	d.bg.Wait()
	return d.store.Close()
}

// Address is the provider's account.
func (d *Daemon) Address() tx.Address { return d.signer.Address() }

// Isolation is what each runtime guarantees on this host and which are offered.
func (d *Daemon) Isolation() IsolationReport { return d.isolation }

// Capacity exposes the capacity tracker (status, tests).
func (d *Daemon) Capacity() *Capacity { return d.capacity }

// Shards is the Vault shard store (nil when provider.toml offers no storage).
func (d *Daemon) Shards() *Shards { return d.shards }

// Store exposes the local store (status, tests).
func (d *Daemon) Store() *Store { return d.store }

// Register makes the ledger's record of this provider match the config (register or update) and bonds the
// configured stake.
func (d *Daemon) Register(ctx context.Context) error {
	st, err := d.c.NodeStatus(ctx)
	if err != nil {
		return err
	}
	d.chainID = st.NodeInfo.Network
	params, err := d.c.Params(ctx)
	if err != nil {
		return err
	}
	info := tx.ProviderInfo{HostURI: d.cfg.HostURI, CertFingerprint: d.fp, Region: d.cfg.Region, Zone: d.cfg.Zone,
		Hardware: d.cfg.Hardware.Ledger(), Docker: d.runtimes["docker"] != nil, MaxLeaseSec: d.cfg.MaxLeaseSec()}
	var msgs []tx.Msg
	cur, err := d.c.Provider(ctx, d.Address())
	switch {
	case errors.Is(err, client.ErrNotFound):
		msgs = append(msgs, &tx.RegisterProvider{ProviderInfo: info})
	case err != nil:
		return err
	case !sameInfo(cur.Info, info):
		msgs = append(msgs, &tx.UpdateProvider{ProviderInfo: info})
	}
	// The storage offer follows the registration in the same transaction (docs/vault.md).
	if offer, serr := d.storageOffer(ctx); serr != nil {
		return serr
	} else if offer != nil {
		msgs = append(msgs, offer)
		d.log.Info("storage offered", "capacity_gib", offer.CapacityBytes>>30, "price_per_gib_month", api.FormatSPR(offer.PricePerGiBMonth))
	}
	// Bond up to the stake target; what restores slashed stake comes out of stake_topup_budget (stake.go). A
	// refused top-up is said and recorded, and the provider still registers: it stays audited.
	want := d.stakeTarget(params)
	var prev *api.ProviderView
	if err == nil {
		prev = &cur
	}
	bond, restore, err := d.stakeToBond(ctx, prev, want)
	switch {
	case errors.Is(err, errStakeRefused) && prev != nil: // registered: run, audited, unable to bid
		d.setStakeProblem(err.Error())
	case err != nil: // not registered yet (e.g. the account still needs funds for the stake): Run retries
		return err
	}
	if len(msgs) == 0 && bond == 0 {
		if err == nil {
			d.setStakeProblem("")
			d.log.Info("provider already registered and bonded", "provider", d.Address(), "stake", cur.Stake)
		}
		return nil
	}
	if bond > 0 {
		err = d.sendBond(ctx, bond, restore, msgs...)
	} else {
		_, err = d.sender.Send(ctx, msgs...)
	}
	if err != nil {
		return fmt.Errorf("register provider: %w", err)
	}
	if bond > 0 {
		d.setStakeProblem("")
	}
	d.log.Info("provider registered", "provider", d.Address(), "host", info.HostURI, "gpus", info.Hardware.GPUCount(),
		"stake", client.FormatAmount(want), "max_lease_duration", time.Duration(info.MaxLeaseSec)*time.Second)
	return nil
}

func sameInfo(a, b tx.ProviderInfo) bool {
	if a.HostURI != b.HostURI || a.CertFingerprint != b.CertFingerprint || a.Region != b.Region || a.Zone != b.Zone ||
		a.Docker != b.Docker || a.MaxLeaseSec != b.MaxLeaseSec || len(a.Hardware.GPUs) != len(b.Hardware.GPUs) || a.Hardware.CPUMilli != b.Hardware.CPUMilli ||
		a.Hardware.MemoryMiB != b.Hardware.MemoryMiB || a.Hardware.DiskMiB != b.Hardware.DiskMiB {
		return false
	}
	for i := range a.Hardware.GPUs {
		if a.Hardware.GPUs[i] != b.Hardware.GPUs[i] {
			return false
		}
	}
	return true
}

// Run registers the provider, reconciles its local state with the ledger, reattaches to running workloads and
// then follows the chain until ctx ends. Blocks are processed in order; the last processed height is saved
// after each, so a restart resumes exactly where it stopped.
func (d *Daemon) Run(ctx context.Context) error {
	// Until the provider is registered and bonded, keep trying: the node may still be starting, or the account
	// may still need funds for the stake.
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		err := d.Register(ctx)
		if err == nil {
			break
		}
		d.log.Warn("cannot register yet; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	from, err := d.store.Height()
	if err != nil {
		return err
	}
	fresh := from == 0
	if fresh {
		st, err := d.c.NodeStatus(ctx)
		if err != nil {
			return err
		}
		from = st.SyncInfo.LatestBlockHeight // a new provider follows the chain from now on...
	}
	if err := d.reconcile(ctx); err != nil {
		return err
	}
	d.bg.Add(4)
	go func() { defer d.bg.Done(); d.watchStake(ctx) }()
	go func() { defer d.bg.Done(); d.housekeeping(ctx) }()
	go func() { defer d.bg.Done(); d.watchLimits(ctx) }()
	go func() { defer d.bg.Done(); d.publishLatency(ctx) }()
	if d.repairs != nil {
		d.spawn(ctx, d.repairs.run)
	}
	if fresh { // ...and considers the orders already open (a tenant may have ordered while it registered)
		d.spawn(ctx, d.considerOpenOrders)
	}
	err = d.c.Follow(ctx, from+1, func(b client.Block) error {
		for _, e := range b.Events {
			if e.Code != 0 {
				continue // a failed transaction changed nothing
			}
			d.handle(ctx, e)
		}
		return d.store.SetHeight(b.Height)
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// handle reacts to one ledger event. Slow work (transactions, workloads) runs in the background. The events it
// acts on are read through the ledger's typed parsers (api.Parse*): one that does not read (an id, an amount or
// an address missing or malformed) is said and ignored, since acting on it would act on the wrong (zero) order
// or lease. Events about other providers are passed over before they are read.
func (d *Daemon) handle(ctx context.Context, e client.Event) {
	me := d.Address()
	mine := e.Attrs[api.AttrProvider] == me.String()
	ignored := func(err error) { d.log.Warn("ledger event ignored", "err", err) }
	switch e.Type {
	case api.EventOrderCreated:
		if ev, err := api.ParseOrderCreated(e.Attrs); err != nil {
			ignored(err)
		} else {
			d.spawn(ctx, func(ctx context.Context) { d.considerOrder(ctx, ev.OrderID) })
		}
	case api.EventBidPlaced:
		if !mine {
			return
		}
		if ev, err := api.ParseBidPlaced(e.Attrs); err != nil {
			ignored(err)
		} else {
			d.bidPlaced(ev.OrderID, ev.BidID)
		}
	case api.EventBidClosed:
		if !mine {
			return
		}
		if ev, err := api.ParseBidClosed(e.Attrs); err != nil {
			ignored(err)
		} else if ev.State != api.BidWon {
			d.bidLost(ev.OrderID)
		}
	case api.EventLeaseCreated:
		if !mine {
			return
		}
		if ev, err := api.ParseLeaseCreated(e.Attrs); err != nil {
			ignored(err)
		} else {
			d.leaseCreated(ctx, ev.LeaseID, ev.OrderID)
		}
	case api.EventLeaseExtended:
		if !mine {
			return
		}
		if ev, err := api.ParseLeaseExtended(e.Attrs); err != nil {
			ignored(err)
		} else {
			d.spawn(ctx, func(ctx context.Context) { d.leaseExtended(ctx, ev.LeaseID) })
		}
	case api.EventProviderSlashed:
		if !mine {
			return
		}
		if _, err := api.ParseProviderSlashed(e.Attrs); err != nil {
			ignored(err) // the periodic stake check (watchStake) still tops it up
		} else { // below the stake it needs, it can no longer bid: top up (stake.go)
			d.spawn(ctx, d.keepStaked)
		}
	case api.EventVaultRepair:
		if mine { // a shard drawn here to rebuild: at once, not at the next pass (repair.go)
			d.repairs.kick()
		}
	case api.EventLeaseClosed:
		if !mine {
			return
		}
		// In the background: stopping a workload takes its grace period, and the follower must not wait.
		if ev, err := api.ParseLeaseClosed(e.Attrs); err != nil {
			ignored(err)
		} else {
			d.spawn(ctx, func(ctx context.Context) { d.leaseClosed(ctx, ev.LeaseID, ev.Reason) })
		}
	}
}

func (d *Daemon) spawn(ctx context.Context, f func(context.Context)) {
	d.bg.Add(1)
	go func() { defer d.bg.Done(); f(ctx) }()
}

// sign signs bytes with the provider key.
func (d *Daemon) sign(b []byte) []byte { return d.signer.Sign(b) }

// VerifyChallenge checks a liveness answer (for auditors and tests).
func VerifyChallenge(pub ed25519.PublicKey, nonce, sig []byte) bool {
	return liveness.Verify(pub, nonce, sig)
}

// prepareLeasesDir creates the directory that holds the leases' directories. When the daemon runs as root the
// workloads run as other users, which must be able to reach their own directory: every directory above it must
// be traversable by others.
func prepareLeasesDir(dir, dataDir string) (string, error) {
	root := os.Geteuid() == 0
	if dir == "" {
		dir = filepath.Join(dataDir, "leases")
		if root {
			dir = "/var/lib/spare/leases"
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", fmt.Errorf("leases_dir: %w", err)
	}
	if !root {
		return dir, nil
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return "", fmt.Errorf("leases_dir: %w", err)
	}
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("leases_dir: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return "", fmt.Errorf("leases_dir %s: %s (mode %o) is not traversable by the workloads' users: choose a leases_dir under a directory like /var/lib/spare", dir, p, fi.Mode().Perm())
		}
		if p == filepath.Dir(p) {
			return dir, nil
		}
	}
}

// maxOpenOrdersAtStart bounds how many orders a new provider considers at its first start: those among the
// newest order ids (the likeliest still to need a bid; the rest expire by themselves). A flood of open orders
// costs the daemon a few queries to find the newest, then no more than this.
var maxOpenOrdersAtStart uint64 = 5_000

// considerOpenOrders considers, one after the other, the orders open on the ledger when a new provider starts
// among the newest maxOpenOrdersAtStart order ids: those created before it followed the chain would otherwise
// never see a bid from it.
func (d *Daemon) considerOpenOrders(ctx context.Context) {
	newest, err := d.newestOpenOrder(ctx)
	if err != nil {
		d.log.Warn("listing open orders at start", "err", err)
		return
	}
	var ids []uint64
	after := newest - min(newest, maxOpenOrdersAtStart)
	for uint64(len(ids)) < maxOpenOrdersAtStart && after < newest {
		page, err := d.c.Orders(ctx, api.ListRequest{Open: true, After: strconv.FormatUint(after, 10), Limit: api.MaxPageLimit})
		if err != nil {
			d.log.Warn("listing open orders at start", "err", err)
			return
		}
		for _, o := range page.Items {
			ids = append(ids, o.ID)
		}
		if page.Next == "" {
			break
		}
		if after, err = strconv.ParseUint(page.Next, 10, 64); err != nil {
			return
		}
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		d.considerOrder(ctx, id)
	}
	if len(ids) > 0 {
		d.log.Info("considered the orders open at start", "orders", len(ids), "newest", newest)
	}
}

// newestOpenOrder is the highest id of an open order (0 when none is open), found by bisection over the open
// orders' index: about 64 one-item queries, however many orders are open.
func (d *Daemon) newestOpenOrder(ctx context.Context) (uint64, error) {
	openAfter := func(x uint64) (bool, error) { // is an order with an id above x open?
		page, err := d.c.Orders(ctx, api.ListRequest{Open: true, After: strconv.FormatUint(x, 10), Limit: 1})
		return err == nil && len(page.Items) > 0, err
	}
	lo, hi := uint64(0), uint64(1)<<63 // an open id above lo, none above hi
	if ok, err := openAfter(lo); err != nil || !ok {
		return 0, err
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := openAfter(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}
