// Package markettest scripts market histories on a real in-process chain (internal/localnet) for the explorer's
// tests: providers register, tenants order, leases start, end and fail, objects are stored in Spare Vault, epochs
// mint rewards, and an indexer follows it all into a SQLite index. The index's tests and the web server's share
// it, so that both check the same histories.
package markettest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

// SPR is one SPR in uspr.
const SPR = api.USPR

// Market sends a scripted history to a local network and remembers how far it went.
type Market struct {
	T    testing.TB
	Net  *localnet.Net
	C    *client.Client
	Sent int   // transactions included
	Last int64 // the highest height a transaction or a lease the script waited for landed at
}

// Start starts a one-validator network with o and returns a market on it; the network stops with the test.
func Start(t testing.TB, o localnet.Options) *Market {
	t.Helper()
	n, err := localnet.Start(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	c, err := n.Client(0)
	if err != nil {
		t.Fatal(err)
	}
	return &Market{T: t, Net: n, C: c}
}

// Addr is the address of a key of the network.
func (m *Market) Addr(key string) string { return m.Net.Keys[key].Address().String() }

// Send signs msgs with key and waits for their inclusion; a rejected transaction fails the test.
func (m *Market) Send(key string, msgs ...tx.Msg) *client.Result {
	m.T.Helper()
	res, err := m.C.NewSender(m.Net.Keys[key]).Send(context.Background(), msgs...)
	if err != nil {
		m.T.Fatalf("%s %T: %v", key, msgs[0], err)
	}
	m.Sent++
	m.Last = max(m.Last, res.Height)
	return res
}

// ID reads a numeric attribute of an event of res (an order, bid or lease id).
func (m *Market) ID(res *client.Result, event, attr string) uint64 {
	m.T.Helper()
	v, ok := res.Attr(event, attr)
	n, err := strconv.ParseUint(v, 10, 64)
	if !ok || err != nil {
		m.T.Fatalf("no %s %s in the transaction's events", event, attr)
	}
	return n
}

// Register registers key as a provider with count GPUs of model (none for a CPU-only provider) and bonds the
// stake it needs.
func (m *Market) Register(key, model string, vram uint64, count uint32, region string) {
	m.T.Helper()
	params, err := m.C.Params(context.Background())
	if err != nil {
		m.T.Fatal(err)
	}
	hw := tx.Hardware{CPUMilli: 32000, MemoryMiB: 256 << 10, DiskMiB: 1 << 20}
	if count > 0 {
		hw.GPUs = []tx.GPUGroup{{Model: model, VRAMMiB: vram, Count: count}}
	}
	info := tx.ProviderInfo{HostURI: "https://" + key + ".example.net:8443", CertFingerprint: sha256.Sum256([]byte(key)),
		Region: region, Hardware: hw}
	m.Send(key, &tx.RegisterProvider{ProviderInfo: info}, &tx.Bond{Amount: params.RequiredStake(uint64(count))})
}

// Order creates an order from tenant and returns its id.
func (m *Market) Order(tenant string, o *tx.CreateOrder) uint64 {
	m.T.Helper()
	return m.ID(m.Send(tenant, o), api.EventOrderCreated, api.AttrOrderID)
}

// Lease has provider bid price on the order and tenant accept the bid at once (no waiting for the auction), and
// returns the lease.
func (m *Market) Lease(tenant, provider string, orderID, price uint64) uint64 {
	m.T.Helper()
	bid := m.ID(m.Send(provider, &tx.PlaceBid{OrderID: orderID, Price: price}), api.EventBidPlaced, api.AttrBidID)
	return m.ID(m.Send(tenant, &tx.AcceptBid{ID: bid}), api.EventLeaseCreated, api.AttrLeaseID)
}

// WaitLease waits until the auction leased the order and returns the lease.
func (m *Market) WaitLease(orderID uint64) uint64 {
	m.T.Helper()
	var id uint64
	m.WaitFor("order "+strconv.FormatUint(orderID, 10)+" leased", func() bool {
		o, err := m.C.Order(context.Background(), orderID)
		if err != nil || o.State != api.OrderLeased {
			return false
		}
		l, _ := m.C.Lease(context.Background(), o.LeaseID)
		m.Last, id = max(m.Last, l.CreatedHeight), o.LeaseID
		return true
	})
	return id
}

// Complete has the lease's provider complete it with a signed receipt ending exitCode.
func (m *Market) Complete(provider string, leaseID uint64, manifest tx.Hash, exitCode int64) {
	m.T.Helper()
	m.CompleteVault(provider, leaseID, manifest, exitCode, tx.Hash{})
}

// VaultLease has tenant lease a CPU job from provider (a registered provider) and provider complete it with exit
// code 0 and a receipt carrying vaultRoot as its outputs' Vault root; it returns the lease.
func (m *Market) VaultLease(tenant, provider string, vaultRoot tx.Hash) uint64 {
	m.T.Helper()
	manifest := sha256.Sum256([]byte("outputs to the vault"))
	o := m.Order(tenant, &tx.CreateOrder{Resources: tx.Resources{CPUMilli: 500, MemoryMiB: 256}, MaxPricePerHour: SPR / 10,
		ManifestHash: manifest, Deposit: SPR / 10, DurationSec: 600, BidWindow: 50})
	id := m.Lease(tenant, provider, o, SPR/20)
	m.Send(provider, &tx.LeaseStarted{ID: id})
	m.CompleteVault(provider, id, manifest, 0, vaultRoot)
	m.Last = max(m.Last, m.Height())
	return id
}

// CompleteVault is Complete with the receipt's Vault root (zero: none).
func (m *Market) CompleteVault(provider string, leaseID uint64, manifest tx.Hash, exitCode int64, vaultRoot tx.Hash) {
	m.T.Helper()
	ctx := context.Background()
	l, err := m.C.Lease(ctx, leaseID)
	if err != nil {
		m.T.Fatal(err)
	}
	st, err := m.C.Status(ctx)
	if err != nil {
		m.T.Fatal(err)
	}
	rc := tx.Receipt{ChainID: st.ChainID, LeaseID: leaseID, ManifestHash: manifest, StartMs: l.StartedMs,
		EndMs: l.StartedMs + 1500, GPUSeconds: 1, OutputRoot: sha256.Sum256([]byte("out")), ExitCode: exitCode, VaultRoot: vaultRoot}
	rc.Signature = m.Net.Keys[provider].Sign(rc.SignBytes())
	m.Send(provider, &tx.CompleteLease{Receipt: rc})
}

// WaitFor polls cond until it holds, for up to 30 s.
func (m *Market) WaitFor(what string, cond func() bool) {
	m.T.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			m.T.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Height is the chain's last committed height.
func (m *Market) Height() int64 {
	m.T.Helper()
	st, err := m.C.Status(context.Background())
	if err != nil {
		m.T.Fatal(err)
	}
	return st.Height
}

// StartIndexer opens the index at path and follows c into it until the returned stop is called, which also
// closes the index (open it again to read what was indexed without following the chain further).
func StartIndexer(t testing.TB, path string, c *client.Client) (*index.DB, func()) {
	t.Helper()
	db, err := index.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ix := index.New(db, c, nil)
	ix.Poll = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	stopped := false
	return db, func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("indexer: %v", err)
		}
		db.Close()
	}
}

// TempIndex is a path for an index in the test's temporary directory.
func TempIndex(t testing.TB) string { return filepath.Join(t.TempDir(), "explorer.db") }

// WaitIndexed waits until the index holds height h.
func WaitIndexed(t testing.TB, db *index.DB, h int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := db.Height(context.Background())
		if err == nil && got >= h {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("index at height %d (err %v), want %d", got, err, h)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// History is what EveryState made, by what happened to each object.
type History struct {
	Manifest tx.Hash
	// Leases: "pending", "active", "cpu_active", "completed_exit_0", "completed_exit_3", "cpu_completed",
	// "closed_by_tenant", "closed_by_provider" (after it started), "closed_before_start" (by its provider),
	// "not_started_in_time", "replica_0" and "replica_1" (the runs of the replicated order, started).
	Leases map[string]uint64
	// Orders: "open", "cancelled", "expired", "replicated", and the order of every lease above by its name.
	Orders map[string]uint64
}

// EveryStateKeys are the funded keys EveryState uses: a tenant, three providers (p1 with H100s, p2 with A100s,
// p3 CPU only), an auditor (in the auditor set) and bob, who only receives a transfer.
var EveryStateKeys = map[string]uint64{"tenant": 10_000 * SPR, "p1": 10_000 * SPR, "p2": 10_000 * SPR, "p3": 10_000 * SPR,
	"aud": 100 * SPR, "bob": SPR}

// EveryStateOptions are the network EveryState needs: a start timeout short enough to wait for.
func EveryStateOptions() localnet.Options {
	p := api.DefaultParams()
	p.StartTimeoutBlocks = 30
	return localnet.Options{CheckInvariants: true, Params: &p, Funded: EveryStateKeys, Auditors: map[string]uint64{"aud": 1}}
}

// EveryState scripts a history with an order and a lease in every state the explorer shows: orders open,
// leased, cancelled and expired, a replicated order; leases pending, active, completed with exit codes 0 and 3,
// closed by the tenant, closed by the provider before and after they started, and not started in time; GPU and
// CPU-only leases. The pending lease is made last, so that it is still pending for StartTimeoutBlocks (30)
// blocks after EveryState returns.
func (m *Market) EveryState() History {
	m.T.Helper()
	h := History{Manifest: sha256.Sum256([]byte("every state")), Leases: map[string]uint64{}, Orders: map[string]uint64{}}
	ctx := context.Background()
	m.Register("p1", "H100", 81559, 8, "eu-west")
	m.Register("p2", "A100", 40960, 4, "us-east")
	m.Register("p3", "", 0, 0, "eu-west")
	m.Send("aud", &tx.Send{To: m.Net.Keys["bob"].Address(), Amount: SPR})

	gpu := func() *tx.CreateOrder {
		return &tx.CreateOrder{Resources: tx.Resources{GPUCount: 1, CPUMilli: 1000, MemoryMiB: 1024}, MaxPricePerHour: 4 * SPR,
			ManifestHash: h.Manifest, Deposit: 10 * SPR, DurationSec: 3600, BidWindow: 50}
	}
	cpu := func(milli uint64) *tx.CreateOrder {
		return &tx.CreateOrder{Resources: tx.Resources{CPUMilli: milli, MemoryMiB: 1024}, MaxPricePerHour: SPR,
			ManifestHash: h.Manifest, Deposit: 2 * SPR, DurationSec: 3600, BidWindow: 50}
	}
	lease := func(name, provider string, o *tx.CreateOrder, price uint64) uint64 {
		h.Orders[name] = m.Order("tenant", o)
		h.Leases[name] = m.Lease("tenant", provider, h.Orders[name], price)
		return h.Leases[name]
	}
	started := func(name, provider string, o *tx.CreateOrder, price uint64) uint64 {
		id := lease(name, provider, o, price)
		m.Send(provider, &tx.LeaseStarted{ID: id})
		return id
	}

	// First the lease that will not start: its deadline passes while the rest is sent.
	notStarted := lease("not_started_in_time", "p2", gpu(), 2*SPR)
	// p2 acknowledged its manifest (the tenant shows the ack on the ledger) and never started it: its failure.
	if st, err := m.C.Status(ctx); err != nil {
		m.T.Fatal(err)
	} else {
		ack := m.Net.Keys["p2"].Sign(tx.ManifestAckBytes(st.ChainID, notStarted, h.Manifest))
		md := &tx.ManifestDelivered{LeaseID: notStarted}
		copy(md.Ack[:], ack)
		m.Send("tenant", md)
	}
	m.Complete("p1", started("completed_exit_0", "p1", gpu(), 2*SPR), h.Manifest, 0)
	m.Complete("p2", started("completed_exit_3", "p2", gpu(), 3*SPR), h.Manifest, 3)
	m.Complete("p3", started("cpu_completed", "p3", cpu(2000), SPR/2), h.Manifest, 0)
	m.Send("tenant", &tx.CloseLease{ID: started("closed_by_tenant", "p1", gpu(), 5*SPR/2), Reason: "done early"})
	m.Send("p2", &tx.CloseLease{ID: started("closed_by_provider", "p2", gpu(), 2*SPR), Reason: "host maintenance"})
	m.Send("p1", &tx.CloseLease{ID: lease("closed_before_start", "p1", gpu(), 2*SPR)})
	started("cpu_active", "p3", cpu(4000), SPR)
	active := started("active", "p1", gpu(), 2*SPR)
	time.Sleep(time.Second)
	m.Send("p1", &tx.Withdraw{ID: active}) // a payment while it runs

	h.Orders["open"] = m.Order("tenant", gpu())
	h.Orders["cancelled"] = m.Order("tenant", gpu())
	m.Send("tenant", &tx.CancelOrder{ID: h.Orders["cancelled"]})
	expiring := gpu()
	expiring.BidWindow, expiring.TTL = 1, 3
	h.Orders["expired"] = m.Order("tenant", expiring)

	// A replicated order: its two runs are drawn from the bidders when its window closes.
	rep := gpu()
	rep.BidWindow = 4
	h.Orders["replicated"] = m.ID(m.Send("tenant", &tx.CreateReplicatedOrder{CreateOrder: *rep, Replicas: 2}), api.EventOrderCreated, api.AttrOrderID)
	m.Send("p1", &tx.PlaceBid{OrderID: h.Orders["replicated"], Price: 3 * SPR})
	m.Send("p2", &tx.PlaceBid{OrderID: h.Orders["replicated"], Price: 3 * SPR})
	var runs api.VerificationView
	m.WaitFor("the replicated order's runs", func() bool {
		v, err := m.C.Verification(ctx, h.Orders["replicated"])
		runs = v
		return err == nil && len(v.Runs) == 2
	})
	for i, r := range runs.Runs {
		key := "p1"
		if r.Provider == m.Net.Keys["p2"].Address() {
			key = "p2"
		}
		h.Leases["replica_"+strconv.Itoa(i)] = r.LeaseID
		m.Send(key, &tx.LeaseStarted{ID: r.LeaseID})
	}

	m.WaitFor("the expired order", func() bool {
		o, err := m.C.Order(ctx, h.Orders["expired"])
		return err == nil && o.State == api.OrderExpired
	})
	m.WaitFor("the lease not started in time", func() bool {
		l, err := m.C.Lease(ctx, notStarted)
		return err == nil && l.State == api.LeaseClosed
	})
	m.Last = max(m.Last, m.Height())
	lease("pending", "p1", gpu(), 2*SPR)
	return h
}

// VaultHistory is what Vault made.
type VaultHistory struct {
	// Objects by name: "term" (12 months, two stripes), "permanent" (an endowment), "same_root" (claims the term
	// object's root) and "unplaced" (stored with same_root in one transaction; the offers had room for only one
	// of them at the draw, so the ledger removed it and refunded its escrow).
	Objects map[string]uint64
	Roots   map[string]tx.Hash
	// Storage are the storage providers' keys: s4 is the one whose room runs out.
	Storage []string
}

// VaultKeys are the funded keys Vault and VaultProofs use: an owner, four CPU-only storage providers (s1-s4,
// Vault's), five more (v1-v5, VaultProofs') and an auditor (aud, in the auditor set of VaultOptions).
var VaultKeys = map[string]uint64{"owner": 1_000 * SPR, "s1": 10_000 * SPR, "s2": 10_000 * SPR, "s3": 10_000 * SPR, "s4": 10_000 * SPR,
	"v1": 10_000 * SPR, "v2": 10_000 * SPR, "v3": 10_000 * SPR, "v4": 10_000 * SPR, "v5": 10_000 * SPR, "aud": 100 * SPR}

// VaultEpochBlocks is the epoch of VaultOptions' chain: short, so that storage proofs are challenged, tallied,
// paid and repaired within a test (2 s at the local network's 100 ms blocks).
const VaultEpochBlocks = 20

// VaultOptions are the network Vault and VaultProofs need: the Vault's keys, an auditor of weight 1 (the whole
// auditor set: its attestations decide every epoch it sends one for), epochs of VaultEpochBlocks.
func VaultOptions() localnet.Options {
	p := api.DefaultParams()
	p.EpochBlocks = VaultEpochBlocks
	return localnet.Options{CheckInvariants: true, Params: &p, Funded: VaultKeys, Auditors: map[string]uint64{"aud": 1}}
}

// VaultPrice is the highest storage offer's price in Vault (uspr a GiB-month), within a permanent deal's.
const VaultPrice = 4_000

// Vault scripts a Spare Vault history: four storage providers offer disk (one offer updated later), an owner
// stores a term object of two stripes and a permanent one, then two objects in one transaction when one
// provider has room left for one shard only: the first is placed, the second is not (vault.unplaced). mid, when
// not nil, runs after the first two objects are placed.
func (m *Market) Vault(mid func()) VaultHistory {
	m.T.Helper()
	ctx := context.Background()
	h := VaultHistory{Objects: map[string]uint64{}, Roots: map[string]tx.Hash{}, Storage: []string{"s1", "s2", "s3", "s4"}}
	for i, key := range h.Storage {
		m.Register(key, "", 0, 0, []string{"eu-west", "us-east", "ap-south", "eu-north"}[i])
		m.Send(key, &tx.OfferStorage{CapacityBytes: 64 << 20, PricePerGiBMonth: uint64(1_000 * (i + 1))})
	}
	store := func(msgs ...*tx.StoreObject) []uint64 {
		in := make([]tx.Msg, len(msgs))
		for i, msg := range msgs {
			in[i] = msg
		}
		res := m.Send("owner", in...)
		var ids []uint64
		for _, e := range res.LedgerEvents() {
			if e.Type == api.EventVaultStored {
				id, err := strconv.ParseUint(e.Attrs[api.AttrObjectID], 10, 64)
				if err != nil {
					m.T.Fatal(err)
				}
				ids = append(ids, id)
			}
		}
		if len(ids) != len(msgs) {
			m.T.Fatalf("%d objects stored of %d", len(ids), len(msgs))
		}
		return ids
	}
	placed := func(id uint64) {
		m.WaitFor("object "+strconv.FormatUint(id, 10)+" placed", func() bool {
			o, err := m.C.VaultObject(ctx, id)
			return err == nil && o.State == api.VaultPlaced
		})
	}
	h.Roots["term"] = sha256.Sum256([]byte("vault term object"))
	h.Objects["term"] = store(&tx.StoreObject{Manifest: m.manifest("term", h.Roots["term"], 200<<10), Months: 12, MaxPricePerGiBMonth: VaultPrice})[0]
	placed(h.Objects["term"])
	h.Roots["permanent"] = sha256.Sum256([]byte("vault permanent object"))
	h.Objects["permanent"] = store(&tx.StoreObject{Manifest: m.manifest("permanent", h.Roots["permanent"], 40<<10)})[0]
	placed(h.Objects["permanent"])
	if mid != nil {
		mid()
	}

	// s4 offers room for one more 16 KiB shard, at a new price; two objects of 16 KiB shards are stored at once.
	s4, err := m.C.StorageOffer(ctx, m.Net.Keys["s4"].Address())
	if err != nil {
		m.T.Fatal(err)
	}
	m.Send("s4", &tx.OfferStorage{CapacityBytes: s4.UsedBytes + 16<<10, PricePerGiBMonth: 3_500})
	h.Roots["same_root"], h.Roots["unplaced"] = h.Roots["term"], sha256.Sum256([]byte("vault unplaced object"))
	ids := store(&tx.StoreObject{Manifest: m.manifest("same_root", h.Roots["same_root"], 30<<10), Months: 1, MaxPricePerGiBMonth: VaultPrice},
		&tx.StoreObject{Manifest: m.manifest("unplaced", h.Roots["unplaced"], 20<<10), Months: 1, MaxPricePerGiBMonth: VaultPrice})
	h.Objects["same_root"], h.Objects["unplaced"] = ids[0], ids[1]
	placed(h.Objects["same_root"])
	m.WaitFor("the second object refused at its draw", func() bool {
		_, err := m.C.VaultObject(ctx, h.Objects["unplaced"])
		return errors.Is(err, client.ErrNotFound)
	})
	m.Last = max(m.Last, m.Height())
	return h
}

// VaultProofsHistory is what VaultProofs made.
type VaultProofsHistory struct {
	// Object is "proofs": one stripe of 2+2 shards of 256 MiB, for a month, placed on four of v1-v5, which
	// declare them held at once.
	Object uint64
	Root   tx.Hash
	// Failed is its shard 0 as placed: the auditor names it failed in FirstEpoch and the epoch after, so the
	// second tally loses it and draws it onto the one of v1-v5 left, which declares it rebuilt; Repaired is the
	// shard there, repaired by the tally of LastEpoch (its first proof passed).
	Failed, Repaired       api.VaultShard
	FirstEpoch, LastEpoch  uint64
	Providers              []string // v1-v5
	ProviderKeys           map[string]string
	FailedKey, RepairedKey string // the keys of Failed's and Repaired's providers
}

// VaultProofsPrice is what v1-v5 ask, at least (uspr a GiB-month): 40 SPR, so that a 256 MiB shard earns a few
// uspr in a 2-second epoch (a small holding is paid nothing until it is owed a whole uspr).
const VaultProofsPrice = 40 * SPR

// VaultProofs scripts storage proofs on VaultOptions' chain, after Vault: five more storage providers offer
// 1 GiB each; the owner stores "proofs" (2+2 shards of 256 MiB, a month at up to 50 SPR a GiB-month) and its
// providers declare their shards held (Vault's s1-s4 declare nothing: their shards are never challenged). From
// the first epoch that challenges them, the auditor attests five epochs in a row, naming shard 0 failed in the
// first two: the second tally loses it and draws it onto the one of v1-v5 left, which declares it rebuilt; the
// fifth tally repairs it (its first proof passed) and pays the fee. Every other shard passes, and each decided
// epoch pays the providers from the pool.
func (m *Market) VaultProofs() VaultProofsHistory {
	m.T.Helper()
	ctx := context.Background()
	h := VaultProofsHistory{Providers: []string{"v1", "v2", "v3", "v4", "v5"}, ProviderKeys: map[string]string{}}
	for i, key := range h.Providers {
		m.Register(key, "", 0, 0, []string{"eu-west", "us-east", "ap-south", "eu-north", "sa-east"}[i])
		m.Send(key, &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: VaultProofsPrice + uint64(i)*SPR})
		h.ProviderKeys[m.Addr(key)] = key
	}
	h.Root = sha256.Sum256([]byte("vault proofs object"))
	res := m.Send("owner", &tx.StoreObject{Manifest: m.manifestCoded("proofs", h.Root, 512<<20, layout.Coding{K: 2, M: 2, ShardSize: 256 << 20}),
		Months: 1, MaxPricePerGiBMonth: 50 * SPR})
	h.Object = m.ID(res, api.EventVaultStored, api.AttrObjectID)
	m.WaitFor("the proofs object placed", func() bool {
		o, err := m.C.VaultObject(ctx, h.Object)
		return err == nil && o.State == api.VaultPlaced
	})
	shards, err := m.C.AllVaultShards(ctx, h.Object)
	if err != nil || len(shards) != 4 {
		m.T.Fatalf("the proofs object's shards: %d (%v)", len(shards), err)
	}
	var declared int64
	for _, s := range shards {
		res := m.Send(h.ProviderKeys[s.Provider.String()], &tx.HoldShards{Shards: []tx.ShardRef{{Object: h.Object, Ordinal: uint32(s.Ordinal)}}})
		declared = max(declared, res.Height)
	}
	h.Failed = shards[0]
	h.FailedKey = h.ProviderKeys[h.Failed.Provider.String()]
	const eb = VaultEpochBlocks
	start := func(e uint64) int64 { return int64(e)*eb + 1 }
	h.FirstEpoch = uint64(declared-1)/eb + 1 // the first epoch to start after the last declaration
	h.LastEpoch = h.FirstEpoch + 4
	for e := h.FirstEpoch; e <= h.LastEpoch; e++ {
		m.WaitFor(fmt.Sprintf("epoch %d", e), func() bool { return m.Height() >= start(e) })
		var failed []tx.ShardRef
		if e < h.FirstEpoch+2 {
			failed = []tx.ShardRef{{Object: h.Object, Ordinal: 0}}
		}
		m.Send("aud", &tx.AttestStorage{Epoch: e, Failed: failed})
		if e == h.FirstEpoch+3 { // the tally at the end of the epoch before lost shard 0 and drew it elsewhere
			var s0 api.VaultShard
			m.WaitFor("shard 0 drawn onto another provider", func() bool {
				l, err := m.C.VaultShards(ctx, api.VaultShardsRequest{ID: h.Object, Limit: 1})
				if err != nil || len(l.Items) != 1 {
					return false
				}
				s0 = l.Items[0]
				return !s0.Provider.IsZero() && s0.Provider != h.Failed.Provider
			})
			m.Send(h.ProviderKeys[s0.Provider.String()], &tx.HoldShards{Shards: []tx.ShardRef{{Object: h.Object, Ordinal: 0}}})
		}
	}
	m.WaitFor(fmt.Sprintf("epoch %d tallied", h.LastEpoch), func() bool {
		var rec api.VaultEpoch
		err := m.C.Query(ctx, api.QueryVaultEpoch, api.EpochRequest{Epoch: &h.LastEpoch}, &rec)
		return err == nil && rec.Tallied
	})
	for e := h.FirstEpoch; e <= h.LastEpoch; e++ {
		var rec api.VaultEpoch
		if err := m.C.Query(ctx, api.QueryVaultEpoch, api.EpochRequest{Epoch: &e}, &rec); err != nil || !rec.Decided {
			m.T.Fatalf("epoch %d: %+v (%v): every epoch from %d to %d must be decided (an attestation landed too late?)", e, rec, err, h.FirstEpoch, h.LastEpoch)
		}
	}
	shards, err = m.C.AllVaultShards(ctx, h.Object)
	if err != nil || len(shards) != 4 {
		m.T.Fatal(err)
	}
	h.Repaired = shards[0]
	h.RepairedKey = h.ProviderKeys[h.Repaired.Provider.String()]
	if h.Repaired.Lost || h.Repaired.Repairing || h.Repaired.RepairHeight == 0 || h.RepairedKey == "" || h.Repaired.Provider == h.Failed.Provider {
		m.T.Fatalf("shard 0 after its repair: %+v (placed %+v)", h.Repaired, h.Failed)
	}
	m.Last = max(m.Last, m.Height())
	return h
}

// RewardsKeys are the funded keys Rewards uses: a tenant, three providers of one GPU each (g1 with an H100, g2
// and g3 with A100s) and an auditor (aud, the whole auditor set of RewardsOptions).
var RewardsKeys = map[string]uint64{"tenant": 1_000 * SPR, "g1": 10_000 * SPR, "g2": 10_000 * SPR, "g3": 10_000 * SPR, "aud": 100 * SPR}

// RewardsEpochBlocks is the epoch of RewardsOptions' chain: short, so that epochs are tallied with rewards within
// a test (2 s at the local network's 100 ms blocks).
const RewardsEpochBlocks = 20

// RewardsOptions are the network Rewards needs: the default params (rewards on: 5% of every lease payment
// burned, 16.484 SPR an epoch, 5% of it to auditors, up to half to available capacity, the rest to work),
// epochs of RewardsEpochBlocks, and an auditor of weight 1 (its attestations decide every epoch it sends one for).
func RewardsOptions() localnet.Options {
	p := api.DefaultParams()
	p.EpochBlocks = RewardsEpochBlocks
	return localnet.Options{CheckInvariants: true, Params: &p, Funded: RewardsKeys, Auditors: map[string]uint64{"aud": 1}}
}

// RewardsHistory is what Rewards made. Rewards' epochs are First to First+5 (Last); by provider and epoch (an
// epoch is tallied at the end of the next, and its audit set, with each provider's weight and reason, is made
// at its start):
//
//	epoch     g1               g2                 g3
//	First     no_recent_proof  no_recent_proof    no_recent_proof   (proofs of GPU attested: passed)
//	First+1   no_recent_proof  no_recent_proof    no_recent_proof   (its set was made before the proofs' tally)
//	First+2   earned           earned             earned
//	First+3   earned           not_up             earned, then forfeited: its proof of GPU failed (slashed, jailed)
//	First+4   earned           earned (unbonds)   jailed            (its set was made before that tally)
//	First+5   earned           stake_short        —                 (jailed: not in the set)
//
// g1 completes a lease in WorkEpoch (First+1, or the next on a slow machine): a work reward against its burn; it
// claims what it is owed in First+4, after the tally of First+2.
type RewardsHistory struct {
	First, Last uint64
	WorkEpoch   uint64
	Lease       uint64 // g1's lease
	Claimed     uint64 // what g1 claimed
}

// Rewards scripts rewards on RewardsOptions' chain: three GPU providers register; from the first epoch whose audit
// set holds them all, the auditor attests six epochs in a row, and proofs of GPU for all three in the first (the
// table in RewardsHistory says what each provider earns, and why); g1 completes a lease (a burn, then a work
// reward) and claims its rewards. It returns once the last epoch is tallied. mid, when not nil, runs once the
// third epoch is attested.
func (m *Market) Rewards(mid func()) RewardsHistory {
	m.T.Helper()
	ctx := context.Background()
	m.Register("g1", "H100", 81559, 1, "eu-west")
	m.Register("g2", "A100", 40960, 1, "us-east")
	m.Register("g3", "A100", 40960, 1, "us-east")
	const eb = RewardsEpochBlocks
	start := func(e uint64) int64 { return int64(e)*eb + 1 }
	h := RewardsHistory{First: uint64(m.Last-1)/eb + 1} // its audit set is made after the last registration
	h.Last = h.First + 5
	ops := map[string]uint64{"g1": 2_000_000_000_000, "g2": 1_000_000_000_000, "g3": 1_000_000_000_000}
	manifest := sha256.Sum256([]byte("rewarded work"))
	for e := h.First; e <= h.Last; e++ {
		m.WaitFor(fmt.Sprintf("epoch %d", e), func() bool { return m.Height() >= start(e) })
		ev, err := m.C.Epoch(ctx, &e)
		want := 3
		if e == h.First+5 {
			want = 2 // g3, jailed, is out of the set
		}
		if err != nil || len(ev.Providers) != want {
			m.T.Fatalf("epoch %d's audit set: %+v (%v): want %d providers of g1, g2 and g3", e, ev, err, want)
		}
		up := make([]byte, 1)
		for i, a := range ev.Providers {
			if e == h.First+3 && a == m.Net.Keys["g2"].Address() {
				continue
			}
			up[0] |= 1 << i
		}
		m.Send("aud", &tx.Attest{Epoch: e, Up: up})
		switch e {
		case h.First:
			for _, key := range []string{"g1", "g2", "g3"} {
				m.Send("aud", &tx.AttestHardware{Epoch: e, Provider: m.Net.Keys[key].Address(), Passed: true, Class: "h100-pcie", OpsPerSec: ops[key]})
			}
		case h.First + 1:
			o := m.Order("tenant", &tx.CreateOrder{Resources: tx.Resources{GPUCount: 1, CPUMilli: 1000, MemoryMiB: 1024}, MaxPricePerHour: 40 * SPR,
				ManifestHash: manifest, Deposit: 10 * SPR, DurationSec: 3600, BidWindow: 50})
			h.Lease = m.Lease("tenant", "g1", o, 40*SPR)
			m.Send("g1", &tx.LeaseStarted{ID: h.Lease})
			time.Sleep(time.Second)
			m.Complete("g1", h.Lease, manifest, 0)
			h.WorkEpoch = uint64(m.Last-1) / eb
		case h.First + 2:
			if mid != nil {
				mid()
			}
		case h.First + 3:
			m.Send("aud", &tx.AttestHardware{Epoch: e, Provider: m.Net.Keys["g3"].Address(), Passed: false, Class: "h100-pcie"})
		case h.First + 4:
			m.Send("g2", &tx.Unbond{Amount: SPR}) // below the stake its GPU requires: its weight is cut from the next set
			res := m.Send("g1", &tx.ClaimRewards{})
			v, _ := res.Attr(api.EventRewardsClaimed, api.AttrAmount)
			if h.Claimed, err = strconv.ParseUint(v, 10, 64); err != nil || h.Claimed == 0 {
				m.T.Fatalf("g1 claimed %q (%v)", v, err)
			}
		}
	}
	m.WaitFor(fmt.Sprintf("epoch %d tallied", h.Last), func() bool {
		em, err := m.C.Emission(ctx)
		return err == nil && em.NextEpoch > h.Last
	})
	m.Last = max(m.Last, m.Height())
	return h
}

// manifest lays out an object of size bytes in 2+2 shards of at most 64 KiB and encodes its manifest, its shard
// roots made up from name (the ledger checks a manifest's layout; the shards' bytes are the providers' business).
func (m *Market) manifest(name string, root tx.Hash, size uint64) []byte {
	return m.manifestCoded(name, root, size, layout.Coding{K: 2, M: 2, ShardSize: 64 << 10})
}

func (m *Market) manifestCoded(name string, root tx.Hash, size uint64, c layout.Coding) []byte {
	m.T.Helper()
	l, err := layout.LayoutOf(size, c)
	if err != nil {
		m.T.Fatal(err)
	}
	o := &layout.Object{Root: root, Layout: l, Shards: make([][]tx.Hash, l.Stripes)}
	for s := range o.Shards {
		for i := range l.K + l.M {
			o.Shards[s] = append(o.Shards[s], sha256.Sum256(fmt.Appendf(nil, "%s shard %d/%d", name, s, i)))
		}
	}
	b, err := o.Encode()
	if err != nil {
		m.T.Fatal(err)
	}
	return b
}

// goSyntax are the marks of a Go value printed where text was meant: a struct or slice dump (`{[{1 2 …}] 3}`,
// `[1 2]`), a map, a pointer (`&{…}`, `0xc000…`), a fmt error (`%!d(string=…)`), a nil, a time.Time's String.
var goSyntax = []struct {
	name string
	re   *regexp.Regexp
}{
	{"struct holding a slice", regexp.MustCompile(`\{\[`)},
	{"slice of structs or numbers", regexp.MustCompile(`\[[{0-9]`)},
	{"map", regexp.MustCompile(`map\[`)},
	{"pointer to a struct", regexp.MustCompile(`&\{`)},
	{"pointer", regexp.MustCompile(`0x[0-9a-f]{6,}`)},
	{"fmt error", regexp.MustCompile(`%!`)},
	{"nil", regexp.MustCompile(`<nil>`)},
	{"time.Time", regexp.MustCompile(`\d\d:\d\d:\d\d(\.\d+)? \+0000 UTC`)},
}

// GoSyntax names the Go syntax in text meant for people (a page's text, a JSON string), with some context
// around each (up to three of each kind): a template or a handler printed a Go value instead of its fields.
func GoSyntax(text string) []string {
	var out []string
	for _, g := range goSyntax {
		for _, at := range g.re.FindAllStringIndex(text, 3) {
			out = append(out, fmt.Sprintf("%s: %q", g.name, text[max(at[0]-60, 0):min(at[1]+60, len(text))]))
		}
	}
	return out
}
