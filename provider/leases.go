package provider

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/inventory"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/runtime"
)

// The life of a lease on this provider:
//
//	lease.created → awaiting_manifest → (PUT manifest, hash checked) → starting → workload runs → LeaseStarted
//	→ running → workload exits → outputs hashed, receipt signed → finishing → CompleteLease → done
//
// A run of a replicated order (or of its referee order) does not publish its result when it ends, so that no
// other run can copy it: finishing → CommitResult (the hash of the result with a fresh random salt, saved first)
// → revealing → once every run of its group has committed or ended, RevealResult (receipt and salt) → done.
//
// A lease with no manifest by the ledger's start deadline (or limits.manifest_timeout, when shorter) is closed:
// the tenant is refunded in full, and the ledger counts no failure, since the tenant showed no acknowledgement of
// the manifest. Once the manifest is accepted and the workload started, the daemon signs that acknowledgement
// for the tenant (Status.ManifestAck); from then on not starting would be its failure. lease.closed from the
// ledger (the tenant closed it, or its deposit ran out) stops the workload. Every state is saved before the
// step it leads to, so a restarted daemon picks each lease up where it was.

func (d *Daemon) leaseDir(id uint64) string {
	return filepath.Join(d.leasesDir, strconv.FormatUint(id, 10))
}

func (d *Daemon) spec(l *LeaseRecord, m *manifest.Manifest) runtime.Spec {
	dir := d.leaseDir(l.LeaseID)
	env := []string{"SPARE_LEASE_ID=" + strconv.FormatUint(l.LeaseID, 10)}
	env = append(env, gpuEnv(d.capacity.GPUsByUUID(l.Reservation.GPUs))...)
	if m != nil {
		for k, v := range m.Env {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, l.Rendezvous...) // after the job's own: a cluster's rendezvous cannot be overridden
	// A cluster member's container shares the host's network: its collectives connect to each member's host.
	hostNet := l.Rank != nil
	env = append(env, portEnv(l.Ports, l.Runtime == "docker" && !hostNet)...)
	s := runtime.Spec{LeaseID: l.LeaseID, Dir: dir, WorkDir: filepath.Join(dir, "work"), LogPath: filepath.Join(dir, "log"),
		Env: env, GPUs: l.Reservation.GPUs, CPUMilli: l.Reservation.CPUMilli, MemoryBytes: l.Reservation.MemoryMiB << 20,
		Timeout: time.Duration(max(l.TimeoutSec, l.DurationSec)) * time.Second, Ports: l.Ports, HostNetwork: hostNet,
		DiskBytes: uint64(d.diskBytes(l)), HidePaths: d.hide}
	// On the host's network a lease may bind, of this provider's port ranges, only the ports it was given.
	for _, r := range []func() (int, int, error){d.cfg.ServicePortRange, d.cfg.ClusterPortRange} {
		if a, b, err := r(); err == nil {
			s.BindRanges = append(s.BindRanges, [2]int{a, b})
		}
	}
	for _, p := range l.Ports {
		s.BindAllowed = append(s.BindAllowed, p.Host)
	}
	if l.MasterPort != 0 {
		s.BindAllowed = append(s.BindAllowed, l.MasterPort)
	}
	if m != nil {
		s.Command, s.Image = m.Run, m.Image
		s.ReadOnlyPaths = vaultInputPaths(m)
	}
	return s
}

// vaultInputPaths are where m's Vault inputs land in the work directory (a file, or the directory an archive is
// unpacked into): the runtime shows them to the workload read-only (Spec.ReadOnlyPaths), so that what it reads
// there is what the daemon checked against the roots. The URL inputs and the manifest's files are the
// workload's, as ever.
func vaultInputPaths(m *manifest.Manifest) []string {
	var out []string
	for _, in := range m.Inputs {
		if in.Vault.IsZero() {
			continue
		}
		if p, err := inputPath(in); err == nil { // else the manifest was refused as its inputs were fetched
			out = append(out, p)
		}
	}
	return out
}

// gpuEnv exposes exactly the assigned GPUs (by UUID); with none, no GPU is visible.
func gpuEnv(gpus []GPUConfig) []string {
	inv := make([]inventory.GPU, len(gpus))
	for i, g := range gpus {
		inv[i] = inventory.GPU{Index: g.Index, UUID: g.UUID, Model: g.Model, MemoryMiB: g.MemoryMiB}
	}
	return inventory.IsolationEnv(inv)
}

// leaseCreated takes over a won order: the bid's reservation becomes the lease's, and the lease waits for its
// manifest.
func (d *Daemon) leaseCreated(ctx context.Context, leaseID, orderID uint64) {
	if rec, _ := d.store.Lease(leaseID); rec != nil {
		return // seen before a restart
	}
	bid, _ := d.store.Bid(orderID)
	res, ok := d.capacity.Promote(orderID, leaseID)
	if !ok && bid != nil {
		res = bid.Reservation
		d.capacity.Restore(leaseKey(leaseID), res)
	}
	l, err := d.c.Lease(ctx, leaseID)
	if err != nil {
		d.log.Error("cannot read won lease", "lease", leaseID, "err", err)
		return
	}
	o, err := d.c.Order(ctx, orderID)
	if err != nil {
		d.log.Error("cannot read won order", "order", orderID, "err", err)
		return
	}
	rec := &LeaseRecord{LeaseID: leaseID, OrderID: orderID, Tenant: l.Tenant, Price: l.Price, DurationSec: l.DurationSec,
		ManifestHash: o.ManifestHash, Reservation: res, State: LeaseAwaitingManifest,
		ManifestDeadline: d.now().Add(d.cfg.Limits.ManifestTimeout.Duration), StartDeadline: l.StartDeadline}
	// A directory left by an earlier chain's lease with the same id holds nothing of this lease.
	if err := os.RemoveAll(d.leaseDir(leaseID)); err != nil {
		d.log.Error("cannot clear the lease directory", "lease", leaseID, "err", err)
		return
	}
	if err := d.store.PutLease(rec); err != nil {
		d.log.Error("cannot save lease", "lease", leaseID, "err", err)
		return
	}
	d.stored("bid", orderID, d.store.DeleteBid(orderID))
	d.log.Info("lease won: waiting for the manifest", "lease", leaseID, "tenant", l.Tenant, "price", client.FormatAmount(l.Price)+"/h")
}

// Errors the tenant API maps to statuses.
var (
	ErrLeaseNotFound = errors.New("lease not found")
	ErrNotYourLease  = errors.New("lease belongs to another tenant")
	ErrBadManifest   = errors.New("bad manifest")
	ErrLeaseState    = errors.New("lease is not in a state that allows this")
	ErrStartFailed   = errors.New("the provider could not start the workload; the lease is closed and the deposit refunded")
)

// AcceptManifest checks body against the order's manifest hash, unpacks it and starts the workload.
// A cluster member gets its rendezvous environment (see rendezvous); masterPort is rank 0's port, required from
// the other ranks.
func (d *Daemon) AcceptManifest(ctx context.Context, tenant tx.Address, leaseID uint64, body []byte, masterPort int) (*LeaseRecord, error) {
	unlock := d.lockLease(leaseID) // this lease only: fetching its inputs holds up nobody else
	defer unlock()
	l, err := d.authorized(tenant, leaseID)
	if err != nil {
		return nil, err
	}
	if l.State != LeaseAwaitingManifest {
		return nil, fmt.Errorf("%w: lease %d is %s", ErrLeaseState, leaseID, l.State)
	}
	if got := manifest.Hash(body); got != l.ManifestHash {
		return nil, fmt.Errorf("%w: its SHA-256 %s differs from the order's manifest hash %s", ErrBadManifest, got, l.ManifestHash)
	}
	m, err := manifest.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	// A lease closed on the ledger while its manifest is being accepted (inputs still downloading) stops here.
	ctx, cancel := context.WithCancel(ctx)
	d.mu.Lock()
	d.accepting[leaseID] = cancel
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.accepting, leaseID)
		d.mu.Unlock()
		cancel()
	}()
	o, err := d.c.Order(ctx, l.OrderID)
	if err != nil {
		return nil, err
	}
	if !sameResources(m.Resources, o.Resources) || m.DurationSec != o.DurationSec {
		return nil, fmt.Errorf("%w: its resources or duration differ from the order's", ErrBadManifest)
	}
	rtName := "process"
	if m.Image != "" {
		rtName = "docker"
		if err := d.cfg.ImageAllowed(m.Image); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
		}
	}
	if len(m.Ports) > 0 && len(l.Ports) == 0 {
		ports, err := d.servicePorts(l.LeaseID, m.Ports)
		if err != nil {
			return nil, err
		}
		l.Ports = ports
	}
	if o.Nodes > 1 {
		if rtName == "docker" && !d.cfg.ClusterContainers {
			return nil, fmt.Errorf("%w: this provider runs cluster members without an image only (cluster_containers = false); drop image", ErrBadManifest)
		}
		if err := d.rendezvous(ctx, l, o.ID, masterPort); err != nil {
			return nil, err
		}
	}
	rt := d.runtimes[rtName]
	if rt == nil {
		return nil, fmt.Errorf("%w: it needs the %s runtime, which this provider does not run", ErrBadManifest, rtName)
	}
	l.Runtime = rtName // spec reads it (a container's ports are its declared ones)
	if err := d.extendable(ctx, l, &o); err != nil {
		return nil, err
	}
	spec := d.spec(l, m)
	if err := unpack(spec, body, m); err != nil {
		return nil, fmt.Errorf("unpack manifest: %w", err)
	}
	if err := fetchInputsIn(ctx, spec.WorkDir, m, d.diskBytes(l), d.inputOptions()); err != nil {
		_ = os.RemoveAll(spec.Dir) // a corrected manifest can't be sent (the hash is fixed), but leave no data behind
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: lease %d was closed while its inputs were fetched", ErrLeaseState, leaseID)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if err := d.startInTime(ctx, l); err != nil {
		_ = os.RemoveAll(spec.Dir)
		return nil, err
	}
	l.State, l.Runtime, l.Outputs, l.OutputsVault, l.StartedAt = LeaseStarting, rtName, m.Outputs, m.OutputsVault, d.now()
	if err := d.store.PutLease(l); err != nil {
		return nil, err
	}
	w, err := rt.Start(ctx, spec)
	if err != nil {
		l.State, l.EndReason = LeaseFinishing, "workload failed to start: "+err.Error()
		d.stored("lease", l.LeaseID, d.store.PutLease(l))
		d.spawn(d.life, func(ctx context.Context) { d.closeLease(ctx, l.LeaseID, l.EndReason) })
		d.log.Error("workload failed to start", "lease", l.LeaseID, "err", err)
		return nil, fmt.Errorf("%w: %s", ErrStartFailed, l.EndReason) // the reason the ledger records too
	}
	l.WorkloadState = w.State()
	l.State = LeaseRunning
	// The workload's own start (the runtime may take a while to start it on a busy host): an extendable lease is
	// stopped at StartedAt + its duration (armEnd), which must not cut it short of what the receipt shows it ran.
	l.StartedAt = d.now()
	// The tenant's proof that this provider got the manifest (and started it): LeaseStarted follows at once.
	l.ManifestAck = d.sign(tx.ManifestAckBytes(d.chainID, l.LeaseID, l.ManifestHash))
	if err := d.store.PutLease(l); err != nil {
		return nil, err
	}
	d.watch(d.life, l.LeaseID, w)
	d.armEnd(l)
	d.spawn(d.life, func(ctx context.Context) {
		time.Sleep(time.Duration(testLeaseStartedDelay.Load()))
		if _, err := d.sender.Send(ctx, &tx.LeaseStarted{ID: l.LeaseID}); err != nil && !client.IsCode(err, tx.CodeBadLeaseState) {
			d.log.Error("LeaseStarted not accepted", "lease", l.LeaseID, "err", err)
		}
	})
	d.log.Info("workload started", "lease", l.LeaseID, "runtime", rtName)
	return l, nil
}

// startMarginBlocks is how many blocks before the ledger's start deadline the daemon still starts a workload:
// its LeaseStarted must land by the deadline, and once the workload runs the tenant holds its acknowledgement of
// the manifest. A tenant whose manifest (or inputs) arrive later is refused, with no acknowledgement: the lease
// then expires as nobody's failure. A tenth of params.start_timeout_blocks, at least 2 (TODO: a provider.toml
// value, should an operator on a slow chain want more).
func startMarginBlocks(p *api.Params) int64 {
	return max(2, int64(p.StartTimeoutBlocks/10))
}

// startInTime refuses to start a lease whose start deadline on the ledger is too near (or passed).
func (d *Daemon) startInTime(ctx context.Context, l *LeaseRecord) error {
	if l.StartDeadline == 0 {
		return nil // a record made before start deadlines were kept: the ledger decides
	}
	// The height the daemon's follower has reached (it is at most a poll behind the node) and the params read
	// within the last minute: a manifest's start waits on no round trip to the node.
	height, err := d.store.Height()
	if err != nil {
		return err
	}
	p, err := d.cachedParams(ctx)
	if err != nil {
		return err
	}
	if height+startMarginBlocks(p) > l.StartDeadline {
		return fmt.Errorf("%w: lease %d must start by block %d on the ledger and the chain is at block %d: too late to start it (the lease expires with a full refund)",
			ErrLeaseState, l.LeaseID, l.StartDeadline, height)
	}
	return nil
}

// paramsTTL is how long the daemon reuses the ledger's params where a change would matter little (the start
// margin).
const paramsTTL = time.Minute

// cachedParams is the ledger's params, read again once paramsTTL has passed.
func (d *Daemon) cachedParams(ctx context.Context) (*api.Params, error) {
	d.mu.Lock()
	p, at := d.params, d.paramsAt
	d.mu.Unlock()
	if p != nil && time.Since(at) < paramsTTL {
		return p, nil
	}
	p, err := d.c.Params(ctx)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.params, d.paramsAt = p, time.Now()
	d.mu.Unlock()
	return p, nil
}

// testLeaseStartedDelay holds back the LeaseStarted sent after a start, so that tests can make a workload end
// before its lease is started on the ledger. Zero outside tests.
var testLeaseStartedDelay atomic.Int64 // nanoseconds

func sameResources(a, b tx.Resources) bool {
	if a.GPUCount != b.GPUCount || a.GPUMinVRAMMiB != b.GPUMinVRAMMiB || a.CPUMilli != b.CPUMilli ||
		a.MemoryMiB != b.MemoryMiB || a.DiskMiB != b.DiskMiB || len(a.GPUModels) != len(b.GPUModels) {
		return false
	}
	for i := range a.GPUModels {
		if a.GPUModels[i] != b.GPUModels[i] {
			return false
		}
	}
	return true
}

// authorized loads a lease and checks that tenant owns it.
func (d *Daemon) authorized(tenant tx.Address, leaseID uint64) (*LeaseRecord, error) {
	l, err := d.store.Lease(leaseID)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, fmt.Errorf("%w: %d", ErrLeaseNotFound, leaseID)
	}
	if l.Tenant != tenant {
		return nil, ErrNotYourLease
	}
	return l, nil
}

// unpack writes the manifest and its files into the lease's directory, every file created beneath the work
// directory (os.Root: no path of the manifest can leave it, through ".." or a link), none overwritten.
func unpack(s runtime.Spec, raw []byte, m *manifest.Manifest) error {
	if err := os.MkdirAll(s.WorkDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "manifest.json"), raw, 0o600); err != nil {
		return err
	}
	root, err := os.OpenRoot(s.WorkDir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range m.Files {
		rel := filepath.FromSlash(path.Clean(f.Path))
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("file %q leaves the work directory", f.Path)
		}
		if dir := filepath.Dir(rel); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		mode := os.FileMode(f.Mode) & 0o777 // never setuid, setgid or sticky
		if mode == 0 {
			mode = 0o644
		}
		w, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		_, err = w.Write(f.Data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// watch waits for a workload in the background and completes its lease when it ends.
func (d *Daemon) watch(ctx context.Context, leaseID uint64, w runtime.Workload) {
	d.mu.Lock()
	d.workloads[leaseID] = w
	d.mu.Unlock()
	d.spawn(ctx, func(ctx context.Context) {
		res, err := w.Wait(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("waiting for workload", "lease", leaseID, "err", err)
			}
			return // the daemon is stopping: the workload runs on, a restarted daemon reattaches
		}
		d.finish(ctx, leaseID, res)
	})
}

// finish hashes the outputs, signs the receipt and completes the lease on the ledger. Hashing is bounded by the
// lease's disk and runs under this lease's lock only.
func (d *Daemon) finish(ctx context.Context, leaseID uint64, res runtime.Result) {
	d.mu.Lock()
	delete(d.workloads, leaseID)
	d.mu.Unlock()
	d.disarmEnd(leaseID)
	unlock := d.lockLease(leaseID)
	l, err := d.store.Lease(leaseID)
	if err != nil || l == nil {
		unlock()
		return
	}
	res = stopReasonResult(l, durationResult(l, res))
	spec := d.spec(l, nil)
	limit := d.diskBytes(l)
	hctx, cancel := context.WithTimeout(ctx, hashTime(limit))
	files, skipped, err := collectOutputs(hctx, spec.WorkDir, l.Outputs, outputLimits{Bytes: limit, Files: maxOutputFiles})
	cancel()
	if err != nil {
		d.log.Warn("collecting outputs", "lease", leaseID, "err", err)
		if ctx.Err() != nil {
			unlock()
			return // the daemon is stopping: a restarted one collects them again
		}
		if errors.Is(err, context.DeadlineExceeded) {
			skipped = append(skipped, fmt.Sprintf("hashing stopped after %s: the outputs not yet hashed are left out", hashTime(limit)))
		}
		_ = merkle.Sort(files)
	}
	root, _ := merkle.Root(files)
	m, _ := os.ReadFile(filepath.Join(spec.Dir, "manifest.json"))
	if res.EndedAt.Before(res.StartedAt) {
		res.EndedAt = res.StartedAt // a receipt that ends before it starts is refused by the ledger
	}
	gpuSec := uint64(len(l.Reservation.GPUs)) * uint64(res.EndedAt.Sub(res.StartedAt)/time.Second)
	rc := tx.Receipt{ChainID: d.chainID, LeaseID: leaseID, ManifestHash: manifest.Hash(m), StartMs: uint64(res.StartedAt.UnixMilli()),
		EndMs: uint64(res.EndedAt.UnixMilli()), ExitCode: int64(res.ExitCode), GPUSeconds: gpuSec, OutputRoot: root}
	if l.OutputsVault && len(files) > 0 {
		vctx, cancel := context.WithTimeout(ctx, hashTime(limit))
		vr, err := outputsVaultRoot(vctx, spec.WorkDir, files)
		cancel()
		if err != nil {
			d.log.Warn("the outputs' Vault root", "lease", leaseID, "err", err)
			if ctx.Err() != nil {
				unlock()
				return
			}
			skipped = append(skipped, "the receipt carries no Vault root for the outputs: "+err.Error())
		}
		rc.VaultRoot = vr
	}
	rc.Signature = d.sign(rc.SignBytes())
	l.Result, l.OutputFiles, l.OutputsLeftOut, l.Receipt, l.State = &res, files, skipped, &rc, LeaseFinishing
	if l.EndReason == "" {
		l.EndReason = res.Reason
	}
	d.stored("lease", l.LeaseID, d.store.PutLease(l))
	unlock()
	d.log.Info("workload ended", "lease", leaseID, "exit_code", res.ExitCode, "reason", res.Reason, "outputs", len(files), "left_out", len(skipped))
	d.complete(ctx, l)
}

// complete sends CompleteLease (or learns the lease already ended on the ledger) and releases the resources;
// for a run of a replicated order it commits the result instead (commit). One attempt runs at a time per lease;
// a failed one is retried by housekeeping. A workload can end before its LeaseStarted is in a block (a job that
// exits at once), and the ledger completes only started leases, so a pending lease is started first. A receipt
// the ledger refuses for good (bad_receipt, say) is not retried forever: the lease is closed with the refusal as
// its reason.
func (d *Daemon) complete(ctx context.Context, l *LeaseRecord) {
	if !d.inFlight(l.LeaseID) {
		return
	}
	defer d.landed(l.LeaseID)
	lv, err := d.c.Lease(ctx, l.LeaseID)
	if err != nil {
		d.log.Error("reading the lease before completing it; will retry", "lease", l.LeaseID, "err", err)
		return
	}
	group, err := d.groupOf(ctx, l)
	if err != nil {
		d.log.Error("reading the lease's order before completing it; will retry", "lease", l.LeaseID, "err", err)
		return
	}
	if d.beforeLedgerEnd(ctx, l, lv) {
		return // housekeeping tries again
	}
	switch lv.State {
	case api.LeaseCompleted, api.LeaseClosed:
		if lv.State == api.LeaseCompleted && group != 0 && l.Salt != nil {
			d.committed(l) // our CommitResult is in a block: the reply was lost, or the daemon restarted since
			return
		}
		d.log.Info("lease had already ended on the ledger", "lease", l.LeaseID, "state", lv.State)
		d.done(l)
		return
	case api.LeasePending:
		if _, err := d.sender.Send(ctx, &tx.LeaseStarted{ID: l.LeaseID}); err != nil && !client.IsCode(err, tx.CodeBadLeaseState) {
			if permanent(err) {
				d.refused(ctx, l, "LeaseStarted", err)
				return
			}
			d.log.Error("LeaseStarted before CompleteLease failed; will retry", "lease", l.LeaseID, "err", err)
			return
		}
	}
	if group != 0 {
		d.commit(ctx, l, group)
		return
	}
	if _, err := d.sender.Send(ctx, &tx.CompleteLease{Receipt: *l.Receipt}); err != nil {
		switch {
		case client.IsCode(err, tx.CodeBadLeaseState):
			// The lease changed state meanwhile; the next attempt reads it again.
			d.log.Warn("lease state changed while completing; will look again", "lease", l.LeaseID, "err", err)
		case permanent(err):
			d.refused(ctx, l, "CompleteLease", err)
		default:
			d.log.Error("CompleteLease failed; will retry", "lease", l.LeaseID, "err", err)
		}
		return
	}
	d.done(l)
}

// beforeLedgerEnd reports whether a lease whose workload was stopped at its duration should wait before its
// completion is sent: the daemon counts the duration from its own start, which precedes the ledger's
// (LeaseStarted's block), so the workload stops just before the ledger's end. Sent at once, the completion would
// cut the billing short of the duration the tenant ordered and the workload ran; the ledger keeps such a lease
// open for params.completion_grace_sec after its end, so the daemon sends it once the chain's time has reached the
// end: the tenant pays exactly price × duration. Without a grace (CloseMs = EndMs) it does not wait.
func (d *Daemon) beforeLedgerEnd(ctx context.Context, l *LeaseRecord, lv api.LeaseView) bool {
	if lv.State != api.LeaseActive || l.Result == nil || !l.Result.TimedOut || lv.CloseMs <= lv.EndMs {
		return false
	}
	st, err := d.c.Status(ctx)
	if err != nil || st.TimeMs >= lv.EndMs {
		return false
	}
	d.log.Debug("workload stopped at its duration: completing once the ledger's end has passed", "lease", l.LeaseID,
		"end_ms", lv.EndMs, "chain_ms", st.TimeMs)
	return true
}

// inFlight claims a lease's completion (or reveal) for one attempt; false when one is already under way.
func (d *Daemon) inFlight(id uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.completing[id] {
		return false
	}
	d.completing[id] = true
	return true
}

func (d *Daemon) landed(id uint64) {
	d.mu.Lock()
	delete(d.completing, id)
	d.mu.Unlock()
}

// groupOf is the replicated order whose comparison a lease's run belongs to (its own order if replicated, the
// order it referees otherwise), or 0 for a plain lease.
func (d *Daemon) groupOf(ctx context.Context, l *LeaseRecord) (uint64, error) {
	if l.Group != 0 {
		return l.Group, nil
	}
	o, err := d.c.Order(ctx, l.OrderID)
	if err != nil {
		return 0, err
	}
	switch {
	case o.Replicas > 1:
		return o.ID, nil
	case o.RefereeFor != 0:
		return o.RefereeFor, nil
	}
	return 0, nil
}

// commit sends a replicated run's CommitResult: the hash of its result (output root, exit code), this provider's
// address and a random salt. The salt is drawn once and saved before the commitment is sent, so that a retry
// sends the same commitment and a restarted daemon can still reveal it.
func (d *Daemon) commit(ctx context.Context, l *LeaseRecord, group uint64) {
	unlock := d.lockLease(l.LeaseID)
	cur, err := d.store.Lease(l.LeaseID)
	if err != nil || cur == nil || cur.State != LeaseFinishing || cur.Receipt == nil {
		unlock()
		return // ended here meanwhile
	}
	if cur.Salt == nil {
		var salt tx.Hash
		if _, err := rand.Read(salt[:]); err != nil {
			unlock()
			d.log.Error("drawing a salt for the result's commitment; will retry", "lease", l.LeaseID, "err", err)
			return
		}
		cur.Salt, cur.Group = &salt, group
		if err := d.store.PutLease(cur); err != nil {
			unlock()
			d.log.Error("saving the salt before committing; will retry", "lease", l.LeaseID, "err", err)
			return
		}
	}
	*l = *cur
	unlock()
	commitment := tx.ResultCommitment(l.Receipt.OutputRoot, l.Receipt.ExitCode, d.Address(), *l.Salt)
	if _, err := d.sender.Send(ctx, &tx.CommitResult{LeaseID: l.LeaseID, Commitment: commitment}); err != nil {
		switch {
		case client.IsCode(err, tx.CodeBadLeaseState):
			d.log.Warn("lease state changed while committing; will look again", "lease", l.LeaseID, "err", err)
		case permanent(err):
			d.refused(ctx, l, "CommitResult", err)
		default:
			d.log.Error("CommitResult failed; will retry", "lease", l.LeaseID, "err", err)
		}
		return
	}
	d.committed(l)
}

// committed records that a run's result is committed on the ledger: its workload has ended, so its resources are
// free; it waits (housekeeping) for the reveal phase.
func (d *Daemon) committed(l *LeaseRecord) {
	unlock := d.lockLease(l.LeaseID)
	defer unlock()
	cur, _ := d.store.Lease(l.LeaseID)
	if cur == nil || cur.State == LeaseDone {
		return
	}
	cur.State = LeaseRevealing
	d.stored("lease", cur.LeaseID, d.store.PutLease(cur))
	*l = *cur
	d.capacity.ReleaseLease(l.LeaseID)
	d.log.Info("result committed: revealed once every run of the replicated order has committed or ended", "lease", l.LeaseID, "order", l.Group)
}

// reveal sends a committed run's RevealResult once its group's reveal phase is open, and ends the lease here when
// it is revealed or can no longer be (the phase closed without it). Housekeeping calls it until then.
func (d *Daemon) reveal(ctx context.Context, l *LeaseRecord) {
	if l.Salt == nil || l.Receipt == nil || !d.inFlight(l.LeaseID) {
		return
	}
	defer d.landed(l.LeaseID)
	v, err := d.c.Verification(ctx, l.Group)
	if err != nil {
		d.log.Warn("reading the replicated order's comparison; will retry", "lease", l.LeaseID, "order", l.Group, "err", err)
		return
	}
	i := slices.IndexFunc(v.Runs, func(r api.RunView) bool { return r.LeaseID == l.LeaseID })
	if i < 0 {
		d.log.Error("the replicated order does not list this run; giving up its reveal", "lease", l.LeaseID, "order", l.Group)
		d.endReveal(l, "not a run of replicated order "+strconv.FormatUint(l.Group, 10))
		return
	}
	switch run := v.Runs[i]; {
	case run.Commit == api.CommitRevealed:
		d.endReveal(l, "")
		return
	case run.Commit != api.CommitCommitted:
		d.log.Error("the result can no longer be revealed", "lease", l.LeaseID, "commit", run.Commit)
		d.endReveal(l, "result not revealed: "+run.Commit.String())
		return
	case !v.RevealOpen:
		return // other runs may still commit
	}
	if _, err := d.sender.Send(ctx, &tx.RevealResult{Receipt: *l.Receipt, Salt: *l.Salt}); err != nil {
		switch {
		case client.IsCode(err, tx.CodeRevealClosed), client.IsCode(err, tx.CodeBadLeaseState):
			d.log.Warn("reveal not taken now; will look again", "lease", l.LeaseID, "err", err)
		case client.IsCode(err, tx.CodeNotCommitted) || permanent(err):
			d.log.Error("RevealResult refused by the ledger", "lease", l.LeaseID, "err", err)
			d.endReveal(l, "RevealResult refused: "+err.Error())
		default:
			d.log.Error("RevealResult failed; will retry", "lease", l.LeaseID, "err", err)
		}
		return
	}
	d.log.Info("result revealed", "lease", l.LeaseID, "order", l.Group, "output_root", l.Receipt.OutputRoot)
	d.endReveal(l, "")
}

// endReveal ends a committed run here: revealed, or (with a reason) no longer revealable.
func (d *Daemon) endReveal(l *LeaseRecord, reason string) {
	unlock := d.lockLease(l.LeaseID)
	if cur, _ := d.store.Lease(l.LeaseID); cur != nil {
		*l = *cur
	}
	if reason != "" {
		l.EndReason = reason
	}
	unlock()
	d.done(l)
}

// permanent tells a refusal that sending again cannot change (the receipt itself is wrong, the provider is
// jailed or no longer serves the lease) from a transient failure (the node unreachable, a fee to top up).
func permanent(err error) bool {
	for _, c := range []tx.Code{tx.CodeBadReceipt, tx.CodeUnauthorized, tx.CodeNotFound, tx.CodeInvalidMsg,
		tx.CodeProviderJailed, tx.CodeDecode, tx.CodeTxTooLarge} {
		if client.IsCode(err, c) {
			return true
		}
	}
	return false
}

// refused closes a lease whose completion the ledger refused for good, so that it does not run on to its
// duration: the tenant gets back what was not earned, and the reason says why.
func (d *Daemon) refused(ctx context.Context, l *LeaseRecord, what string, err error) {
	d.log.Error(what+" refused by the ledger; closing the lease", "lease", l.LeaseID, "err", err)
	d.closeLease(ctx, l.LeaseID, what+" refused: "+err.Error())
}

// done marks a lease finished here and frees what it held.
func (d *Daemon) done(l *LeaseRecord) {
	unlock := d.lockLease(l.LeaseID)
	defer unlock()
	l.State, l.DoneAt = LeaseDone, d.now()
	d.stored("lease", l.LeaseID, d.store.PutLease(l))
	d.capacity.ReleaseLease(l.LeaseID)
	d.log.Info("lease done", "lease", l.LeaseID)
}

// leaseClosed reacts to the ledger ending a lease we serve (tenant close, deposit exhausted, start timeout).
func (d *Daemon) leaseClosed(ctx context.Context, leaseID uint64, reason string) {
	d.mu.Lock()
	if cancel := d.accepting[leaseID]; cancel != nil {
		cancel() // its inputs are still downloading: stop that first, so the lease's lock comes free
	}
	d.mu.Unlock()
	unlock := d.lockLease(leaseID)
	l, _ := d.store.Lease(leaseID)
	d.mu.Lock()
	w := d.workloads[leaseID]
	d.mu.Unlock()
	if l == nil || l.State == LeaseDone {
		unlock()
		return
	}
	if l.Salt != nil && (l.State == LeaseFinishing || l.State == LeaseRevealing) {
		unlock() // a replicated run's result being committed or revealed: commit and reveal read the ledger
		return
	}
	if l.EndReason == "" {
		l.EndReason = "lease closed on the ledger: " + reason
	}
	if w == nil {
		l.State, l.DoneAt = LeaseDone, d.now()
		d.stored("lease", l.LeaseID, d.store.PutLease(l))
		d.capacity.ReleaseLease(leaseID)
		unlock()
		return
	}
	d.stored("lease", l.LeaseID, d.store.PutLease(l))
	unlock()
	d.log.Info("lease closed on the ledger: stopping the workload", "lease", leaseID, "reason", reason)
	if err := w.Stop(ctx); err != nil {
		d.log.Error("stopping workload", "lease", leaseID, "err", err)
	}
}

// StopLease stops a lease's workload at the tenant's request; the lease then completes with a receipt.
func (d *Daemon) StopLease(ctx context.Context, tenant tx.Address, leaseID uint64) error {
	l, err := d.authorized(tenant, leaseID)
	d.mu.Lock()
	w := d.workloads[leaseID]
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if l.State != LeaseRunning || w == nil {
		return fmt.Errorf("%w: lease %d is %s", ErrLeaseState, leaseID, l.State)
	}
	return w.Stop(ctx)
}

// closeLease closes a lease we cannot serve (no manifest, failed start) and releases it.
func (d *Daemon) closeLease(ctx context.Context, leaseID uint64, reason string) {
	reason = tx.PlainText(reason, tx.MaxReasonLen) // an error's text may hold newlines, or run long
	if _, err := d.sender.Send(ctx, &tx.CloseLease{ID: leaseID, Reason: reason}); err != nil && !client.IsCode(err, tx.CodeBadLeaseState) {
		d.log.Error("CloseLease failed; will retry", "lease", leaseID, "err", err)
		return
	}
	unlock := d.lockLease(leaseID)
	defer unlock()
	if l, _ := d.store.Lease(leaseID); l != nil {
		l.State, l.EndReason, l.DoneAt = LeaseDone, reason, d.now()
		d.stored("lease", l.LeaseID, d.store.PutLease(l))
	}
	d.capacity.ReleaseLease(leaseID)
	d.log.Info("lease closed", "lease", leaseID, "reason", reason)
}

// reconcile brings local state in line with the ledger after a (re)start: bids on orders that are no longer open
// are released, running workloads are reattached, finished leases are completed.
func (d *Daemon) reconcile(ctx context.Context) error {
	bids, err := d.store.Bids()
	if err != nil {
		return err
	}
	for _, b := range bids {
		o, err := d.c.Order(ctx, b.OrderID)
		if err == nil && o.State != api.OrderOpen && !(o.State == api.OrderLeased && d.ownsLease(ctx, o.LeaseID)) {
			d.bidLost(b.OrderID)
		}
	}
	leases, err := d.store.Leases()
	if err != nil {
		return err
	}
	for i := range leases {
		l := &leases[i]
		switch l.State {
		case LeaseRunning, LeaseStarting:
			rt := d.runtimes[l.Runtime]
			if rt == nil || l.WorkloadState == nil {
				d.spawn(ctx, func(ctx context.Context) { d.closeLease(ctx, l.LeaseID, "workload lost in a provider restart") })
				continue
			}
			w, err := rt.Reattach(ctx, d.spec(l, nil), l.WorkloadState)
			if err != nil {
				d.log.Warn("workload not found after restart", "lease", l.LeaseID, "err", err)
				d.spawn(ctx, func(ctx context.Context) { d.closeLease(ctx, l.LeaseID, "workload lost in a provider restart") })
				continue
			}
			d.log.Info("reattached to workload", "lease", l.LeaseID)
			d.watch(d.life, l.LeaseID, w)
			d.armEnd(l)
			if lv, err := d.c.Lease(ctx, l.LeaseID); err == nil && lv.State == api.LeasePending {
				d.spawn(ctx, func(ctx context.Context) { _, _ = d.sender.Send(ctx, &tx.LeaseStarted{ID: l.LeaseID}) })
			}
		case LeaseFinishing:
			if l.Receipt != nil {
				d.spawn(ctx, func(ctx context.Context) { d.complete(ctx, l) })
			}
		}
	}
	return nil
}

// startDeadlinePassed reports whether the ledger's start deadline of a lease awaiting its manifest has passed, as
// far as the blocks this daemon has processed tell: the ledger has closed it (as nobody's failure, the tenant
// having shown no acknowledgement), and the daemon stops waiting.
func (d *Daemon) startDeadlinePassed(l *LeaseRecord) bool {
	if l.StartDeadline == 0 {
		return false
	}
	h, err := d.store.Height()
	return err == nil && h >= l.StartDeadline
}

func (d *Daemon) ownsLease(ctx context.Context, leaseID uint64) bool {
	l, err := d.c.Lease(ctx, leaseID)
	return err == nil && l.Provider == d.Address()
}

// housekeeping closes leases whose manifest never came, withdraws earnings of running leases periodically and
// removes finished leases' data after the retention period.
func (d *Daemon) housekeeping(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastWithdraw, lastCleanup, lastUnjail, lastShardRelease := d.now(), time.Time{}, time.Time{}, d.now()
	lastDeclare := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		leases, err := d.store.Leases()
		if err != nil {
			continue
		}
		withdraw := d.now().Sub(lastWithdraw) >= d.cfg.Limits.WithdrawEvery.Duration
		for _, l := range leases {
			switch {
			case d.endDue(&l):
				d.spawn(ctx, func(ctx context.Context) { d.durationReached(ctx, l.LeaseID) })
			case l.State == LeaseAwaitingManifest && (d.now().After(l.ManifestDeadline) || d.startDeadlinePassed(&l)):
				d.closeLease(ctx, l.LeaseID, "no manifest received in time")
			case l.State == LeaseRunning && withdraw:
				if _, err := d.sender.Send(ctx, &tx.Withdraw{ID: l.LeaseID}); err != nil &&
					!client.IsCode(err, tx.CodeNothingToWithdraw) && !client.IsCode(err, tx.CodeReplicated) { // a replica is paid after the comparison
					d.log.Warn("withdraw failed", "lease", l.LeaseID, "err", err)
				}
			case l.State == LeaseFinishing && l.Receipt != nil:
				d.complete(ctx, &l)
			case l.State == LeaseRevealing:
				d.reveal(ctx, &l)
			}
		}
		if withdraw {
			lastWithdraw = d.now()
		}
		// A jailed provider asks to be let out as soon as the cooldown allows (checked at start and every few
		// seconds: two queries), not at the next withdrawal minutes later.
		if d.now().Sub(lastUnjail) >= unjailCheckEvery {
			lastUnjail = d.now()
			d.unjailIfDue(ctx)
		}
		if d.now().Sub(lastCleanup) >= time.Minute {
			lastCleanup = d.now()
			d.removeExpired()
		}
		if d.shards != nil && d.now().Sub(lastDeclare) >= shardDeclareEvery {
			lastDeclare = d.now()
			d.declareHeld(ctx)
		}
		if d.shards != nil && d.now().Sub(lastShardRelease) >= shardReleaseEvery {
			lastShardRelease = d.now()
			d.releaseShards(ctx)
		}
	}
}

// shardReleaseEvery is how often the daemon deletes the Vault shards the ledger no longer places on it (their
// term deals ended): one query a shard held.
const shardReleaseEvery = 10 * time.Minute

// releaseShards deletes the shards no object on the ledger places here any more. A shard the ledger could not be
// asked about is kept, and asked about next time.
func (d *Daemon) releaseShards(ctx context.Context) {
	gone := d.shards.Release(func(root tx.Hash) (bool, error) {
		held, err := d.c.VaultHeld(ctx, d.Address(), root)
		return len(held) > 0, err
	})
	if len(gone) > 0 {
		d.log.Info("vault shards released: their deals ended", "shards", len(gone), "held_bytes", d.shards.Used())
	}
}

// stored reports a write to the daemon's state that failed (a full or failing disk): the record of the lease
// (or the bid on the order) on disk is now behind what the daemon did, and a restart would act on the old one.
// It is said loudly; the daemon carries on with what it holds in memory.
func (d *Daemon) stored(what string, id uint64, err error) {
	if err != nil {
		d.log.Error("provider state not saved: the record on disk is behind (disk full or failing?); a restart would act on the old one",
			what, id, "err", err)
	}
}

// unjailCheckEvery is how often the daemon checks whether it is jailed and may send Unjail.
const unjailCheckEvery = 5 * time.Second

// unjailIfDue sends Unjail when the auditors jailed this provider and the cooldown has passed: a daemon that
// runs again is answering its challenges, and stays in service only as long as it does.
func (d *Daemon) unjailIfDue(ctx context.Context) {
	p, err := d.c.Provider(ctx, d.Address())
	if err != nil || p.Status != api.ProviderJailed {
		return
	}
	st, err := d.c.Status(ctx)
	if err != nil || st.TimeMs < p.JailedUntilMs {
		return
	}
	if _, err := d.sender.Send(ctx, &tx.Unjail{}); err != nil && !client.IsCode(err, tx.CodeNotJailed) {
		d.log.Warn("unjail failed", "err", err)
		return
	}
	d.log.Info("unjailed: back in service after the auditors' jail", "jailed_until_ms", p.JailedUntilMs)
}
