package provider_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/vault"
)

// storeNode is a storage provider's daemon that follows no chain: its shard store, and its shard API served over
// TLS on loopback — what a repair reads its sources from and keeps the rebuilt shard in.
type storeNode struct {
	d    *provider.Daemon
	key  localnet.Key
	addr tx.Address
	dir  string
	uri  string
	fp   tx.Hash
	gets atomic.Int64 // shard slices asked of it
}

func startStoreNode(t *testing.T, name string) *storeNode {
	t.Helper()
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := certs.FingerprintPEM(certPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "vault")
	cfg := provider.DefaultConfig()
	cfg.Node = "http://127.0.0.1:1" // never asked: the daemon does not run, its shard API serves from its store
	cfg.Region, cfg.HostURI, cfg.Listen = "eu-west", "https://"+ln.Addr().String(), ln.Addr().String()
	cfg.Prices.GPUHour = map[string]string{"H100": "2"}
	cfg.Prices.DefaultGPUHour = ""
	cfg.Hardware = eightH100()
	cfg.LeasesDir = leasesDir(t)
	cfg.Storage = provider.StorageConfig{CapacityGiB: 1, Path: dir, PricePerGiBMonth: "0.002"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg.Node, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key := localnet.NewKey(name)
	d, err := provider.New(provider.Options{Config: &cfg, DataDir: t.TempDir(), Signer: key, Client: c,
		Runtimes: runtimesFor(&cfg), CertFingerprint: fp, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	n := &storeNode{d: d, key: key, addr: key.Address(), dir: dir, uri: cfg.HostURI, fp: fp}
	h := d.Handler(&reqsig.Verifier{})
	srv := &http.Server{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/vault/shards/") {
				n.gets.Add(1)
			}
			h.ServeHTTP(w, r)
		})}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() {
		srv.Close()
		d.Close()
	})
	return n
}

// repairLedger is the ledger as the repairs read it — the shards placed on each provider (paged as
// vault_placed_on pages them), objects, their shards — with a repair drawn where a test says.
type repairLedger struct {
	mu      sync.Mutex
	objects map[uint64]api.VaultObject
	shards  map[uint64][]api.VaultShard // each object's, in ordinal order
	limit   int                         // the most a page holds (the client asks for more)
}

func (l *repairLedger) VaultObject(_ context.Context, id uint64) (api.VaultObject, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.objects[id]
	if !ok {
		return o, fmt.Errorf("vault object %d not found", id)
	}
	return o, nil
}

func (l *repairLedger) VaultShards(_ context.Context, r api.VaultShardsRequest) (api.List[api.VaultShard], error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	all := l.shards[r.ID]
	from := min(max(r.From, 0), len(all))
	return api.List[api.VaultShard]{Items: slices.Clone(all[from:min(from+r.Limit, len(all))])}, nil
}

func (l *repairLedger) VaultPlacedOn(_ context.Context, r api.VaultPlacedOnRequest) (api.List[api.VaultShard], error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	type placed struct {
		s   api.VaultShard
		ord uint32
	}
	var mine []placed
	for id, shards := range l.shards {
		o := l.objects[id]
		for _, s := range shards {
			if s.Provider == r.Provider && (!r.Unheld || s.HeldHeight == 0) {
				mine = append(mine, placed{s, uint32(s.Stripe*(o.K+o.M) + s.Index)})
			}
		}
	}
	key := func(p placed) int {
		return cmp.Or(bytes.Compare(p.s.Root[:], r.AfterRoot[:]), cmp.Compare(p.s.ObjectID, r.AfterObject), cmp.Compare(p.ord, r.AfterOrdinal))
	}
	slices.SortFunc(mine, func(a, b placed) int {
		return cmp.Or(bytes.Compare(a.s.Root[:], b.s.Root[:]), cmp.Compare(a.s.ObjectID, b.s.ObjectID), cmp.Compare(a.ord, b.ord))
	})
	out := api.List[api.VaultShard]{Items: []api.VaultShard{}}
	for _, p := range mine {
		if r.HasAfter && key(p) <= 0 {
			continue
		}
		if len(out.Items) == min(r.Limit, l.limit) {
			out.Next = "more"
			break
		}
		out.Items = append(out.Items, p.s)
	}
	return out, nil
}

// place puts shard (s, i) of object id on node n (nil: on no provider, lost), drawn there at repairHeight (0: with
// its object).
func (l *repairLedger) place(id uint64, s, i int, n *storeNode, repairHeight int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.objects[id]
	sh := &l.shards[id][s*(o.K+o.M)+i]
	sh.Provider, sh.HostURI, sh.Fingerprint, sh.Lost = tx.Address{}, "", tx.Hash{}, n == nil
	if n != nil {
		sh.Provider, sh.HostURI, sh.Fingerprint = n.addr, n.uri, n.fp
	}
	sh.RepairHeight, sh.Repairing, sh.HeldHeight = repairHeight, repairHeight > 0, 0
}

// shard is what the ledger records of shard (s, i) of object id.
func (l *repairLedger) shard(id uint64, s, i int) api.VaultShard {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.objects[id]
	return l.shards[id][s*(o.K+o.M)+i]
}

// repairEnv is an object of random bytes coded 3+3 in three stripes, each shard held by one of six source
// providers (shard i of stripe s on source (i+s) mod 6), and a seventh provider, the repairer, with nothing.
type repairEnv struct {
	t       *testing.T
	sources []*storeNode
	rep     *storeNode
	ledger  *repairLedger
	obj     *vault.Object
	data    map[[2]int][]byte // each shard's bytes
	log     *lockedBuffer
	r       *provider.TestRepairer
}

func startRepairEnv(t *testing.T) *repairEnv {
	t.Helper()
	e := &repairEnv{t: t, data: map[[2]int][]byte{}, log: &lockedBuffer{}}
	for i := range 6 {
		e.sources = append(e.sources, startStoreNode(t, fmt.Sprint("source", i)))
	}
	e.rep = startStoreNode(t, "repairer")
	c := vault.Coding{K: 3, M: 3, ShardSize: 4 * vault.GroupSize}
	data := make([]byte, 3*3*4*vault.GroupSize-5_000)
	rand.New(rand.NewSource(77)).Read(data) // random: equal shards would be one root
	bufs := map[[2]int]*bytes.Buffer{}
	var err error
	e.obj, err = vault.Encode(bytes.NewReader(data), uint64(len(data)), c, func(s, i int) (io.Writer, error) {
		b := &bytes.Buffer{}
		bufs[[2]int{s, i}] = b
		return b, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, b := range bufs {
		e.data[k] = b.Bytes()
	}
	if e.obj.Stripes != 3 {
		t.Fatalf("%d stripes", e.obj.Stripes)
	}
	const id = 7
	o := api.VaultObject{ID: id, Owner: tx.Address{0xee}, Root: e.obj.Root, Size: e.obj.Size, K: c.K, M: c.M,
		ShardSize: e.obj.ShardSize, Stripes: e.obj.Stripes, Months: 1, State: api.VaultPlaced}
	e.ledger = &repairLedger{objects: map[uint64]api.VaultObject{id: o}, shards: map[uint64][]api.VaultShard{}, limit: 2}
	for s := range e.obj.Stripes {
		for i := range c.K + c.M {
			e.ledger.shards[id] = append(e.ledger.shards[id], api.VaultShard{ObjectID: id, Stripe: s, Index: i, Ordinal: s*(c.K+c.M) + i,
				Root: e.obj.Shards[s][i], PricePerGiBMonth: 1_000})
			src := e.sources[(i+s)%6]
			e.ledger.place(id, s, i, src, 0)
			if err := src.d.Shards().Put(e.obj.Shards[s][i], e.obj.ShardSize, bytes.NewReader(e.data[[2]int{s, i}])); err != nil {
				t.Fatal(err)
			}
		}
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(e.log, testLogWriter()), &slog.HandlerOptions{Level: slog.LevelInfo}))
	e.r = provider.NewTestRepairer(e.rep.addr, e.rep.d.Shards(), e.ledger, log, time.Hour, 20*time.Second)
	return e
}

// testLogWriter is where the repairer's log also goes: stderr with SPARE_TEST_LOG set.
func testLogWriter() io.Writer {
	if os.Getenv("SPARE_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}

// lose has shard (s, i)'s provider lose it, and the ledger draw it onto the repairer.
func (e *repairEnv) lose(s, i int) {
	e.t.Helper()
	src := e.sources[(i+s)%6]
	if err := src.d.Shards().Delete(e.obj.Shards[s][i]); err != nil {
		e.t.Fatal(err)
	}
	e.ledger.place(7, s, i, e.rep, 1_000+int64(s))
}

// holds fails unless the repairer holds shard (s, i) byte for byte, and serves it verified against its root.
func (e *repairEnv) holds(s, i int) {
	e.t.Helper()
	root := e.obj.Shards[s][i]
	got, err := os.ReadFile(filepath.Join(e.rep.dir, hexRoot(root)+".shard"))
	if err != nil || !bytes.Equal(got, e.data[[2]int{s, i}]) {
		e.t.Fatalf("shard %d/%d: the repairer holds %d bytes (%v), equal %v", s, i, len(got), err, bytes.Equal(got, e.data[[2]int{s, i}]))
	}
	res, err := certs.PinnedHTTPClient(e.rep.fp, 10*time.Second).Get(e.rep.uri + "/vault/shards/" + hexRoot(root))
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out bytes.Buffer
	if err := vault.ReadSlice(&out, res.Body, root, e.obj.ShardSize, 0, e.obj.ShardSize); err != nil || !bytes.Equal(out.Bytes(), got) {
		e.t.Fatalf("shard %d/%d served by the repairer: %v", s, i, err)
	}
}

// holdsNothing fails unless the repairer holds none of its storage path's files but the shards held.
func (e *repairEnv) holdsNothing(s, i int, held int) {
	e.t.Helper()
	if _, ok := e.rep.d.Shards().Has(e.obj.Shards[s][i]); ok {
		e.t.Fatalf("shard %d/%d held", s, i)
	}
	if u := e.rep.d.Shards().Used(); u != uint64(held)*e.obj.ShardSize {
		e.t.Fatalf("%d bytes counted as held, want %d shards'", u, held)
	}
	ents, _ := os.ReadDir(e.rep.dir)
	if len(ents) != 2*held {
		var names []string
		for _, en := range ents {
			names = append(names, en.Name())
		}
		e.t.Fatalf("the repairer's storage path holds %v", names)
	}
}

// TestVaultRepairRebuildsShards: two shards lost by their providers — a data shard and a parity shard — are
// drawn onto the repairer, which rebuilds each from three of its stripe's other shards read from their
// providers' shard APIs, and holds and serves it byte for byte. A shard placed on it with its object is not
// rebuilt (its owner uploads it); a second pass has nothing to do and reads nothing.
func TestVaultRepairRebuildsShards(t *testing.T) {
	e := startRepairEnv(t)
	e.lose(1, 1)
	e.lose(0, 4)
	e.ledger.place(7, 2, 0, e.rep, 0) // placed with its object: the owner's to upload
	e.sources[2].d.Shards().Delete(e.obj.Shards[2][0])
	ctx := context.Background()
	if repaired, failed := e.r.Pass(ctx); repaired != 2 || failed != 0 {
		t.Fatalf("pass: %d repaired, %d failed; log:\n%s", repaired, failed, e.log)
	}
	e.holds(1, 1)
	e.holds(0, 4)
	if _, ok := e.rep.d.Shards().Has(e.obj.Shards[2][0]); ok {
		t.Fatal("a shard placed with its object was rebuilt: its owner uploads it")
	}
	if !strings.Contains(e.log.String(), "vault shard repaired") || strings.Contains(e.log.String(), "given up") {
		t.Fatalf("log:\n%s", e.log)
	}
	gets := func() (n int64) {
		for _, s := range e.sources {
			n += s.gets.Load()
		}
		return n
	}
	if n := gets(); n != 2*3 {
		t.Fatalf("%d shards read from the sources, want k = 3 for each of two repairs", n)
	}
	if repaired, failed := e.r.Pass(ctx); repaired != 0 || failed != 0 || gets() != 2*3 {
		t.Fatalf("second pass: %d repaired, %d failed, %d more reads", repaired, failed, gets()-6)
	}
}

// TestVaultRepairAroundBadSources: of the stripe's other shards, one rotted on its provider's disk (it serves
// bytes that do not verify, from its third group on) and one provider holds nothing: the repairer reads around
// both — the rotten one given up on part-way through — and rebuilds the shard byte for byte, naming them in
// its log.
func TestVaultRepairAroundBadSources(t *testing.T) {
	e := startRepairEnv(t)
	e.lose(2, 3) // and of stripe 2, shard 0 rots, shard 1 is gone
	rotten := e.sources[(0+2)%6]
	f := filepath.Join(rotten.dir, hexRoot(e.obj.Shards[2][0])+".shard")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	b[2*vault.GroupSize+100] ^= 0x20
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	gone := e.sources[(1+2)%6]
	gone.d.Shards().Delete(e.obj.Shards[2][1])
	if repaired, failed := e.r.Pass(context.Background()); repaired != 1 || failed != 0 {
		t.Fatalf("pass: %d repaired, %d failed; log:\n%s", repaired, failed, e.log)
	}
	e.holds(2, 3)
	log := e.log.String()
	for _, want := range []string{
		fmt.Sprintf("provider=%s at=0", gone.addr), "404",
		fmt.Sprintf("provider=%s at=%d", rotten.addr, 2*vault.GroupSize), "does not verify",
		"sources_given_up=2",
	} {
		if !strings.Contains(log, want) {
			t.Fatalf("the log does not say %q:\n%s", want, log)
		}
	}
}

// TestVaultRepairRetriedWhenTooFewSources: with four of the stripe's six shards missing (the lost one, two gone,
// one rotten) only two of k = 3 can be read: nothing is kept — no shard, no temporary file, no bytes counted — and the
// failure is in the log. Once one gone provider has its shard back, the next pass rebuilds it.
func TestVaultRepairRetriedWhenTooFewSources(t *testing.T) {
	e := startRepairEnv(t)
	e.lose(1, 0)
	rotten := e.sources[(2+1)%6]
	f := filepath.Join(rotten.dir, hexRoot(e.obj.Shards[1][2])+".shard")
	b, _ := os.ReadFile(f)
	b[3*vault.GroupSize] ^= 1
	os.WriteFile(f, b, 0o600)
	gone := e.sources[(4+1)%6]
	gone.d.Shards().Delete(e.obj.Shards[1][4])
	e.sources[(5+1)%6].d.Shards().Delete(e.obj.Shards[1][5])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if repaired, failed := e.r.Pass(ctx); repaired != 0 || failed != 1 {
		t.Fatalf("pass: %d repaired, %d failed; log:\n%s", repaired, failed, e.log)
	}
	e.holdsNothing(1, 0, 0)
	if log := e.log.String(); !strings.Contains(log, "vault repair failed") || !strings.Contains(log, vault.ErrTooFewShards.Error()) {
		t.Fatalf("log:\n%s", log)
	}
	// The run loop: a pass at once (fails again), then, kicked once the shard is back, one that rebuilds it.
	done := make(chan struct{})
	go func() { defer close(done); e.r.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(e.log.String(), "vault repair failed") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second pass; log:\n%s", e.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := gone.d.Shards().Put(e.obj.Shards[1][4], e.obj.ShardSize, bytes.NewReader(e.data[[2]int{1, 4}])); err != nil {
		t.Fatal(err)
	}
	e.r.Kick()
	deadline = time.Now().Add(60 * time.Second)
	for {
		if _, ok := e.rep.d.Shards().Has(e.obj.Shards[1][0]); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rebuilt once its sources were back; log:\n%s", e.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	e.holds(1, 0)
}

// TestVaultRepairRefusals: a repair that would pass the offered capacity reads nothing and keeps nothing; a
// stripe whose shards are not one codeword (its uploader made up a shard that verifies against the root it gave)
// rebuilds to bytes that are not the shard's, and nothing is kept; a shard the ledger moved on is left alone.
func TestVaultRepairRefusals(t *testing.T) {
	e := startRepairEnv(t)
	e.lose(0, 0)
	// A store with room for one shard, holding one already.
	small, err := provider.OpenShards(filepath.Join(t.TempDir(), "small"), e.obj.ShardSize)
	if err != nil {
		t.Fatal(err)
	}
	other, otherRoot := shard(99, 4)
	if err := small.Put(otherRoot, uint64(len(other)), bytes.NewReader(other)); err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	r := provider.NewTestRepairer(e.rep.addr, small, e.ledger, slog.New(slog.NewTextHandler(&log, nil)), time.Hour, 20*time.Second)
	if repaired, failed := r.Pass(context.Background()); repaired != 0 || failed != 1 {
		t.Fatalf("full store: %d repaired, %d failed", repaired, failed)
	}
	if !strings.Contains(log.String(), "storage full") || small.Used() != e.obj.ShardSize {
		t.Fatalf("full store: %d bytes held; log:\n%s", small.Used(), log.String())
	}
	for _, s := range e.sources {
		if n := s.gets.Load(); n != 0 {
			t.Fatalf("a full store's repair read %d slices", n)
		}
	}
	// Not one codeword: the ledger's root for shard 1 of stripe 0 is that of other bytes its provider holds.
	bogus, bogusRoot := shard(5, 4)
	src := e.sources[1]
	if err := src.d.Shards().Put(bogusRoot, uint64(len(bogus)), bytes.NewReader(bogus)); err != nil {
		t.Fatal(err)
	}
	e.ledger.mu.Lock()
	e.ledger.shards[7][1].Root = bogusRoot
	e.ledger.mu.Unlock()
	if repaired, failed := e.r.Pass(context.Background()); repaired != 0 || failed != 1 {
		t.Fatalf("not a codeword: %d repaired, %d failed; log:\n%s", repaired, failed, e.log)
	}
	e.holdsNothing(0, 0, 0)
	if !strings.Contains(e.log.String(), "not one Reed-Solomon codeword") {
		t.Fatalf("log:\n%s", e.log)
	}
	// The ledger draws the shard elsewhere before the pass reads its stripe: left alone.
	e.ledger.mu.Lock()
	e.ledger.shards[7][1].Root = e.obj.Shards[0][1]
	e.ledger.mu.Unlock()
	moved := &movingLedger{repairLedger: e.ledger, to: e.sources[4]}
	var log2 lockedBuffer
	r = provider.NewTestRepairer(e.rep.addr, e.rep.d.Shards(), moved, slog.New(slog.NewTextHandler(&log2, nil)), time.Hour, 20*time.Second)
	if repaired, failed := r.Pass(context.Background()); repaired != 0 || failed != 1 {
		t.Fatalf("moved: %d repaired, %d failed", repaired, failed)
	}
	e.holdsNothing(0, 0, 0)
	if !strings.Contains(log2.String(), "no longer placed here") {
		t.Fatalf("log:\n%s", log2.String())
	}
}

// movingLedger draws shard 0 of stripe 0 onto another provider once the pass has listed it.
type movingLedger struct {
	*repairLedger
	to *storeNode
}

func (m *movingLedger) VaultObject(ctx context.Context, id uint64) (api.VaultObject, error) {
	m.repairLedger.place(id, 0, 0, m.to, 2_000)
	return m.repairLedger.VaultObject(ctx, id)
}

// TestVaultRepairOnTheLedger plays a repair on a real ledger with one auditor (the test attests for it): an
// object of 2+1 is placed on three storage providers (which declare their shards held) before the daemon offers
// storage; one of them loses its shard (and withdraws its offer). Named failed two epochs in a row, the shard is
// lost and drawn onto the daemon — the only offer with room that holds no shard of the stripe — which hears the
// vault.repair event, rebuilds it from the other two providers' shard APIs, holds it byte for byte, declares it
// held, and is paid the repair once its first proof passes.
func TestVaultRepairOnTheLedger(t *testing.T) {
	params := api.DefaultParams()
	params.EpochBlocks = 10
	var srcs []*storeNode
	for i := range 3 {
		srcs = append(srcs, startStoreNode(t, fmt.Sprint("ledger-source", i)))
	}
	dir := filepath.Join(t.TempDir(), "vault")
	var log lockedBuffer
	var obj *vault.Object
	var objID uint64
	data := map[tx.Hash][]byte{}
	ctx := context.Background()
	e := startEnvOpts(t, envOpts{params: &params, auditors: map[string]uint64{"aud": 1},
		logger: slog.New(slog.NewTextHandler(io.MultiWriter(&log, testLogWriter()), &slog.HandlerOptions{Level: slog.LevelInfo})),
		mutate: func(c *provider.Config) {
			c.Storage = provider.StorageConfig{CapacityGiB: 1, Path: dir, PricePerGiBMonth: "0.002"}
		},
		beforeStart: func(e *env) { // the daemon offers no storage yet: the object's shards go to the three others
			for _, n := range srcs {
				if _, err := e.c.NewSender(e.net.Keys["prov"]).Send(ctx, &tx.Send{To: n.addr, Amount: 500 * spr}); err != nil {
					t.Fatal(err)
				}
				info := tx.ProviderInfo{HostURI: n.uri, CertFingerprint: n.fp, Region: "eu-west",
					Hardware: tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 1}}, CPUMilli: 8000, MemoryMiB: 1 << 16, DiskMiB: 1 << 20}}
				if _, err := e.c.NewSender(n.key).Send(ctx, &tx.RegisterProvider{ProviderInfo: info}, &tx.Bond{Amount: params.RequiredStake(1)},
					&tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 1_000}); err != nil {
					t.Fatal(err)
				}
			}
			b := make([]byte, 4*vault.GroupSize-100)
			rand.New(rand.NewSource(8)).Read(b)
			bufs := map[[2]int]*bytes.Buffer{}
			var err error
			obj, err = vault.Encode(bytes.NewReader(b), uint64(len(b)), vault.Coding{K: 2, M: 1, ShardSize: 2 * vault.GroupSize}, func(s, i int) (io.Writer, error) {
				bf := &bytes.Buffer{}
				bufs[[2]int{s, i}] = bf
				return bf, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for k, bf := range bufs {
				data[obj.Shards[k[0]][k[1]]] = bf.Bytes()
			}
			man, _ := obj.Encode()
			if _, err := e.c.NewSender(e.net.Keys["tenant"]).Send(ctx, &tx.StoreObject{Manifest: man, Months: 1, MaxPricePerGiBMonth: 5_000}); err != nil {
				t.Fatal(err)
			}
			e.waitFor(30*time.Second, "the object placed", func() bool {
				l, err := e.c.VaultObjects(ctx, api.VaultObjectsRequest{Owner: e.net.Keys["tenant"].Address()})
				if err != nil || len(l.Items) != 1 {
					return false
				}
				objID = l.Items[0].ID
				return l.Items[0].State == api.VaultPlaced
			})
		}})
	me := e.d.Address()
	all, err := e.c.AllVaultShards(ctx, objID)
	if err != nil || len(all) != 3 {
		t.Fatalf("shards %+v: %v", all, err)
	}
	node := func(a tx.Address) *storeNode {
		for _, n := range srcs {
			if n.addr == a {
				return n
			}
		}
		t.Fatalf("shard placed on %s, not a source", a)
		return nil
	}
	for i, s := range all { // the owner's upload, short-cut, and each provider declaring its shard held
		n := node(s.Provider)
		if err := n.d.Shards().Put(s.Root, obj.ShardSize, bytes.NewReader(data[s.Root])); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.NewSender(n.key).Send(ctx, &tx.HoldShards{Shards: []tx.ShardRef{{Object: objID, Ordinal: uint32(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	victim := node(all[0].Provider)
	if err := victim.d.Shards().Delete(all[0].Root); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.NewSender(victim.key).Send(ctx, &tx.OfferStorage{}); err != nil {
		t.Fatal(err)
	}
	e.waitFor(30*time.Second, "the daemon's storage offer", func() bool {
		o, err := e.c.StorageOffer(ctx, me)
		return err == nil && o.CapacityBytes > 0
	})
	// The auditor: every epoch, the victim's shard failed while it is the victim's, every other shard passed.
	aud := e.c.NewSender(e.net.Keys["aud"])
	ref := tx.ShardRef{Object: objID, Ordinal: 0}
	attested := map[uint64]bool{}
	var s0 api.VaultShard
	deadline := time.Now().Add(120 * time.Second)
	for {
		var ep api.VaultEpoch
		if err := e.c.Query(ctx, api.QueryVaultEpoch, api.EpochRequest{}, &ep); err == nil && !attested[ep.Epoch] {
			l, err := e.c.VaultShards(ctx, api.VaultShardsRequest{ID: objID, Limit: 1})
			if err != nil || len(l.Items) != 1 {
				t.Fatalf("shard 0: %+v %v", l, err)
			}
			var failed []tx.ShardRef
			if l.Items[0].Provider == victim.addr {
				failed = []tx.ShardRef{ref}
			}
			if _, err := aud.Send(ctx, &tx.AttestStorage{Epoch: ep.Epoch, Failed: failed}); err != nil {
				t.Fatalf("attesting epoch %d: %v", ep.Epoch, err)
			}
			attested[ep.Epoch] = true
		}
		l, err := e.c.VaultShards(ctx, api.VaultShardsRequest{ID: objID, Limit: 1})
		if err == nil && len(l.Items) == 1 {
			s0 = l.Items[0]
		}
		_, held := e.d.Shards().Has(all[0].Root)
		if s0.Provider == me && s0.RepairHeight > 0 && !s0.Repairing && held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not repaired: shard 0 %+v, held %v; epochs attested %v; log:\n%s", s0, held, attested, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, err := os.ReadFile(filepath.Join(dir, hexRoot(all[0].Root)+".shard"))
	if err != nil || !bytes.Equal(got, data[all[0].Root]) {
		t.Fatalf("the daemon holds %d bytes (%v), not the shard", len(got), err)
	}
	if l := log.String(); !strings.Contains(l, "vault shard repaired") || strings.Contains(l, "could not list") {
		t.Fatalf("log:\n%s", l)
	}
}

// TestVaultPlacedOnPages, on a real ledger: vault_placed_on pages through the daemon's shards one at a time (its
// Next followed), all of them, and with Unheld those not declared held (all: nothing was uploaded).
func TestVaultPlacedOnPages(t *testing.T) {
	p := startPlaced(t, 3)
	ctx := context.Background()
	list := func(unheld bool) []string {
		t.Helper()
		var out []string
		err := client.EachVaultPlacedOn(ctx, p.c, api.VaultPlacedOnRequest{Provider: p.d.Address(), Unheld: unheld, Limit: 1}, func(s api.VaultShard) (bool, error) {
			out = append(out, fmt.Sprintf("%d/%d/%d/%d", s.ObjectID, s.Stripe, s.Index, s.Ordinal))
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	var want []string
	for _, s := range p.mine {
		want = append(want, fmt.Sprintf("%d/%d/%d/%d", s.ObjectID, s.Stripe, s.Index, s.Stripe*3+s.Index))
	}
	slices.Sort(want)
	if got := list(false); !slices.Equal(got, want) {
		t.Fatalf("vault_placed_on lists %v, want %v", got, want)
	}
	if got := list(true); !slices.Equal(got, want) {
		t.Fatalf("vault_placed_on lists %v not declared held, want %v", got, want)
	}
}
