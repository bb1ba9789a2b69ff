package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"pgregory.net/rapid"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/store"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

// Adversarial block sequences. A generator, shared by TestAdversarialSequences (rapid) and FuzzFinalizeBlock
// (native fuzzing), builds blocks of validly signed transactions from adversarial actors — tenants, bonded
// providers, Sybil accounts, auditors — covering every message type, with extreme amounts and prices,
// maximum-size fields, storms of one message, multi-message transactions whose later messages fail, bad
// envelopes (nonces, fees, gas, chain, memo), and block time jumps that end leases and epochs; honest steps
// (start, commit, reveal, complete, bid, accept, attest what is true) keep the market moving into deep states.
// It starts from fixtures: a running market on tight rules, the same on extreme rules, and genesis.
//
// After every block it checks that nothing panicked and FinalizeBlock did not fail (the chain runs with
// CheckInvariants, so the supply is recomputed from the whole state each block), that every result code is a
// known one and never internal, that gas used is within gas wanted, that a failed transaction left nothing but
// its fee, that every stored object decodes, its indexes agree with it and nothing is left past due, and that
// the App's queries read it all back. Along the way CheckTx, ProcessProposal and the simulate query see the same
// transactions (known codes; a simulation keeps nothing), and a node restarting on its store carries on; the rapid
// test also runs a twin chain on the same blocks, whose app hash must agree every block.
//
// The generator draws every choice from a source: rapid's draws (shrinkable) or the bytes of a fuzz input. Option
// 0 of every choice is the ordinary one, so an exhausted fuzz input (zeros) and a shrunk rapid case both fall
// back to ordinary transactions.

// source is where the generator's choices come from.
type source interface {
	intn(n int, label string) int // in [0, n); 0 when n <= 1
	u64(label string) uint64
}

// rapidSource draws from rapid.
type rapidSource struct{ t *rapid.T }

func (s rapidSource) intn(n int, label string) int {
	if n <= 1 {
		return 0
	}
	return rapid.IntRange(0, n-1).Draw(s.t, label)
}

func (s rapidSource) u64(label string) uint64 { return rapid.Uint64().Draw(s.t, label) }

// byteSource reads a fuzz input: one byte per choice of up to 256 options, two up to 65536, eight for a uint64;
// zeros once the input is used up. (recordSource, in block_fuzz_test.go, writes programs it reads back.)
type byteSource struct {
	b []byte
	i int
}

func (s *byteSource) next() byte {
	if s.i == len(s.b) {
		return 0
	}
	v := s.b[s.i]
	s.i++
	return v
}

// more reports whether the program goes on: every block reads at least one byte.
func (s *byteSource) more() bool { return s.i < len(s.b) }

func (s *byteSource) intn(n int, _ string) int {
	switch {
	case n <= 1:
		return 0
	case n <= 1<<8:
		return int(s.next()) % n
	case n <= 1<<16:
		return (int(s.next())<<8 | int(s.next())) % n
	}
	return int(s.u64("") % uint64(n))
}

func (s *byteSource) u64(string) uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(s.next())
	}
	return v
}

func pick[T any](s source, label string, xs []T) T { return xs[s.intn(len(xs), label)] }

// chance is true pct times in 100; false for an exhausted fuzz input and for a shrunk rapid draw.
func chance(s source, label string, pct int) bool { return s.intn(100, label) >= 100-pct }

// Actors.
var (
	advTenants   = []string{"whale", "t0", "t1"}
	advProviders = []string{"p0", "p1", "p2", "p3"}
	advSybils    = []string{"s0", "s1", "s2", "s3"} // s3 is not in genesis at all
	advAuditors  = []string{"a0", "a1", "a2"}
	advActors    = slices.Concat(advTenants, advProviders, advSybils, advAuditors)
)

// advParams are the chain rules of each fixture: 0 a tight market with short windows, epochs and reveal phases
// and three open bids per order, 1 extremes (free transactions, 100% take and slashing, one-block windows and
// reveal phases, two-block epochs, one bid per order beyond what it needs, a supply of 2^64-1), 2 the first
// profile's rules from genesis (epoch 0, no providers yet).
func advParams(profile int) api.Params {
	p := testParams()
	p.EpochBlocks, p.SlashDowntimePPM, p.JailAfterDownEpochs, p.UnjailCooldownSec = 6, 100_000, 2, 30
	p.OrderTTLBlocks, p.StartTimeoutBlocks, p.MaxBidWindowBlocks, p.MaxOrderTTLBlocks = 10, 3, 5, 1000
	p.UnbondingPeriodSec, p.RevealBlocks, p.MaxBidsPerOrder = 3600, 3, 3
	// Rewards on, generous and fast: the whole default schedule's shares, a proof window of two epochs, a cap
	// that a few hundred epochs reach.
	d := api.DefaultParams()
	p.BurnPPM, p.EmissionFirstEpoch, p.EmissionTimeConstantEpochs, p.EmissionCap = 100_000, 5*api.USPR, 50, 400*api.USPR
	p.AuditorSharePPM, p.AvailabilitySharePPM, p.WorkRewardCapPPM, p.RewardProofEpochs = d.AuditorSharePPM, d.AvailabilitySharePPM, 900_000, 2
	if profile == 1 { // parameters not named here keep their defaults (but rewards: a take of 100% leaves no burn)
		p = noRewards(api.DefaultParams())
		p.MinFee, p.TakeRatePPM, p.StakeBase, p.StakePerGPU, p.UnbondingPeriodSec = 0, tx.PPM, 1, 1, 0
		p.BidWindowBlocks, p.MaxBidWindowBlocks, p.OrderTTLBlocks, p.MaxOrderTTLBlocks, p.StartTimeoutBlocks = 1, 1, 2, 1<<40, 1
		p.EpochBlocks, p.SlashDowntimePPM, p.JailAfterDownEpochs, p.UnjailCooldownSec = 2, tx.PPM, 1, 0
		p.SlashProofPPM, p.SlashMismatchPPM, p.RevealBlocks, p.MinGasPrice, p.MaxBidsPerOrder = tx.PPM, tx.PPM, 1, 0, 1
	}
	p.RetentionBlocks = api.MinRetentionBlocks // the shortest window: TestRetentionBoundsState waits it out
	return p
}

// Maximum-size fields.

// advName is a valid name of exactly tx.MaxNameLen bytes.
func advName(tag string) string { return tag + strings.Repeat("x", tx.MaxNameLen-len(tag)) }

// advHostURI is a valid host_uri of exactly tx.MaxURILen bytes.
func advHostURI(tag string) string {
	const pre, port = "https://", ":65535"
	n := tx.MaxURILen - len(pre) - len(port) - len(tag) - 1
	var labels []string
	for n > 0 {
		l := min(63, n)
		if n-l == 1 { // a lone '.' would be left: shorten this label
			l--
		}
		labels = append(labels, strings.Repeat("h", l))
		n -= l + 1
	}
	return pre + strings.Join(append(labels, tag), ".") + port
}

// advMaxHardware declares 16 GPU groups (an H100 group first) of 1024 GPUs in all, with maximal names and sizes.
func advMaxHardware() tx.Hardware {
	h := tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 8}},
		CPUMilli: math.MaxUint64, MemoryMiB: math.MaxUint64, DiskMiB: math.MaxUint64}
	total := uint32(8)
	for i := 1; i < tx.MaxListLen; i++ {
		h.GPUs = append(h.GPUs, tx.GPUGroup{Model: advName(fmt.Sprintf("gpu%d-", i)), VRAMMiB: math.MaxUint64, Count: 67})
		total += 67
	}
	h.GPUs[1].Count += tx.MaxGPUsPerBox - total
	return h
}

func advModels() []string {
	var m []string
	for _, g := range advMaxHardware().GPUs {
		m = append(m, g.Model)
	}
	return m
}

// advInfo is a provider declaration: 0 the standard 8×H100 box in eu-west with docker, 1 every field at its
// maximum size, 2 8×H100 in us-east, 3 CPU only; 4.. invalid ones (rejected before execution).
func advInfo(name string, variant int) tx.ProviderInfo {
	info := providerInfo(name)
	switch variant {
	case 0:
		info.Docker, info.MaxLeaseSec = true, tx.MaxDurationSec
	case 1:
		info.HostURI, info.Region, info.Zone = advHostURI(name), advName("region-"), advName("zone-")
		info.Hardware, info.Docker = advMaxHardware(), true
	case 2:
		info.Region, info.MaxLeaseSec = "us-east", 24*3600
	case 3:
		info.Hardware = tx.Hardware{CPUMilli: 32000, MemoryMiB: 64 << 10, DiskMiB: 1 << 20}
	case 4:
		info.HostURI = "http://" + name + ".example.net" // not https
	case 5:
		info.Hardware.GPUs[0].Count = tx.MaxGPUsPerBox + 1
	case 6:
		info.Region = advName("region-") + "x" // one byte too long
	default:
		info.HostURI = advHostURI(name) + "/" // one byte too long
	}
	return info
}

// advFixture is a committed chain state that each run starts from (copied into a fresh store: no setup cost).
type advFixture struct {
	params  api.Params
	keys    []string
	vals    [][]byte
	height  int64
	now     time.Time
	appHash []byte
}

func advFixtures(tb testing.TB) []*advFixture {
	return []*advFixture{buildAdvFixture(tb, 0), buildAdvFixture(tb, 1), buildAdvFixture(tb, 2)}
}

// buildAdvFixture sets up a market: four providers (standard, maximal, us-east, CPU only) bonded and measuring
// each other's round trips; a plain lease running, a replicated order whose two runs committed their results
// and one revealed it (the reveal phase open for the other), a restartable two-node cluster running, an order with a long window and an open bid, a CPU
// order's lease pending; the heaviest auditor has attested everyone down and the CPU provider's proof failed,
// and that provider is unbonding all its stake. The script tolerates failures (the extreme profile expires
// things fast); what exists is what the runs find.
func buildAdvFixture(tb testing.TB, profile int) *advFixture {
	tb.Helper()
	p := advParams(profile)
	funded := map[string]uint64{"whale": 1 << 62, "t0": 1e12, "t1": 1e12, "s0": 0, "s1": 3 * p.MinFee, "s2": 50 * api.USPR,
		"a0": 1e9, "a1": 1e9, "a2": 1e9}
	for _, name := range advProviders {
		funded[name] = 1e12
	}
	if profile == 1 {
		var rest uint64
		for name, b := range funded {
			if name != "whale" {
				rest += b
			}
		}
		funded["whale"] = math.MaxUint64 - rest // the whole supply: every sum is one overflow away
	}
	c := newChainWith(tb, p, funded, map[string]uint64{"a0": 2, "a1": 1, "a2": 1})
	c.keys["s3"] = newKey("s3")
	for _, name := range advActors {
		for v := range 4 {
			if info := advInfo(name, v); info.Validate() != nil {
				err := info.Validate()
				tb.Fatalf("declaration %d of %s: %v", v, name, err)
			}
		}
	}
	if profile == 2 {
		c.block(time.Second) // commits the genesis state
	} else {
		sync := func() {
			for _, k := range c.keys {
				var a api.Account
				c.query(api.QueryAccount, api.AddressRequest{Address: k.addr}, &a)
				c.nonces[k.addr] = a.Nonce
			}
		}
		step := func(txs ...[]byte) { c.block(time.Second, txs...); sync() }
		var txs [][]byte
		for i, name := range advProviders {
			txs = append(txs, c.sign(name, &tx.RegisterProvider{ProviderInfo: advInfo(name, i)}))
		}
		step(txs...)
		txs = nil
		for i, name := range advProviders {
			txs = append(txs, c.sign(name, &tx.Bond{Amount: p.RequiredStake(advInfo(name, i).Hardware.GPUCount())}))
		}
		step(txs...)
		txs = nil
		for _, name := range advProviders {
			var s []tx.LatencySample
			for _, peer := range advProviders {
				if peer != name {
					s = append(s, tx.LatencySample{Peer: c.addr(peer), RTTMicros: 400})
				}
			}
			slices.SortFunc(s, func(a, b tx.LatencySample) int { return bytes.Compare(a.Peer[:], b.Peer[:]) })
			txs = append(txs, c.sign(name, &tx.PublishLatency{Samples: s}))
		}
		step(txs...)
		long := gpuOrder(testRunPrice, 10*api.USPR, 3600)
		long.BidWindow = p.MaxBidWindowBlocks
		cl := clusterOrder(2, 1000, 10*api.USPR)
		cl.OnFailure, cl.MaxRestarts = tx.OnFailureRestart, 1
		cpu := &tx.CreateOrder{Resources: tx.Resources{CPUMilli: 1000, MemoryMiB: 1024}, MaxPricePerHour: api.USPR,
			ManifestHash: sha256.Sum256([]byte("cpu job")), Deposit: api.USPR, DurationSec: 600}
		step(c.sign("t0", gpuOrder(testRunPrice, 100*api.USPR, 3600)), c.sign("t1", replicatedOrder(2, 10*api.USPR)),
			c.sign("t0", cl), c.sign("t1", long), c.sign("whale", cpu))
		step(c.sign("p0", &tx.PlaceBid{OrderID: 1, Price: testRunPrice - 1000}),
			c.sign("p1", &tx.PlaceBid{OrderID: 2, Price: testRunPrice}), c.sign("p2", &tx.PlaceBid{OrderID: 2, Price: testRunPrice - 1}),
			c.sign("p1", &tx.PlaceBid{OrderID: 3, Price: testRunPrice}), c.sign("p2", &tx.PlaceBid{OrderID: 3, Price: testRunPrice}),
			c.sign("p2", &tx.PlaceBid{OrderID: 4, Price: testRunPrice}), c.sign("p3", &tx.PlaceBid{OrderID: 5, Price: api.USPR}))
		var leases api.List[api.LeaseView]
		c.query(api.QueryLeases, api.ListRequest{}, &leases)
		txs = nil
		for _, l := range leases.Items {
			if l.State == api.LeasePending && l.OrderID != 5 {
				txs = append(txs, c.sign(c.name(l.Provider), &tx.LeaseStarted{ID: l.ID}))
			}
		}
		step(txs...)
		// The replicated order's runs commit their results, and the first reveals its own: the reveal phase is
		// open for the second. a0, the heaviest auditor, finds everyone down and p3's proof failing: one more
		// auditor's word decides.
		c.query(api.QueryLeases, api.ListRequest{}, &leases)
		var reveals [][]byte
		txs = nil
		for _, l := range leases.Items {
			if l.OrderID == 2 && l.State == api.LeaseActive {
				who := c.name(l.Provider)
				rc := tx.Receipt{ChainID: testChain, LeaseID: l.ID, ManifestHash: sha256.Sum256([]byte("manifest")),
					StartMs: l.StartedMs, EndMs: uint64(c.now.UnixMilli()), OutputRoot: advRoot(l.ID)}
				txs = append(txs, c.sign(who, &tx.CommitResult{LeaseID: l.ID, Commitment: advCommitment(l.ID, l.Provider)}))
				if len(reveals) == 0 {
					rc.Signature = ed25519.Sign(c.keys[who].priv, rc.SignBytes())
					reveals = append(reveals, c.sign(who, &tx.RevealResult{Receipt: rc, Salt: advSalt(l.ID)}))
				}
			}
		}
		step(txs...)
		step(reveals...)
		var e api.EpochView
		c.query(api.QueryEpoch, api.EpochRequest{}, &e)
		txs = append(txs, c.sign("a0", &tx.Attest{Epoch: e.Epoch, Up: make([]byte, (len(e.Providers)+7)/8)}),
			c.sign("a0", &tx.AttestHardware{Epoch: e.Epoch, Provider: c.addr("p3"), Class: "cpu"}),
			c.sign("p3", &tx.Unbond{Amount: p.StakeBase})) // all its stake, still slashable
		step(txs...)
	}
	f := &advFixture{params: p, height: c.height, now: c.now, appHash: c.app.store.AppHash()}
	v, _ := c.app.store.View()
	v.Iterate("", "", func(k string, val []byte) bool {
		f.keys = append(f.keys, k)
		f.vals = append(f.vals, val)
		return true
	})
	return f
}

// chain starts a chain on a copy of the fixture's state.
func (f *advFixture) chain(tb testing.TB) *chain {
	st := store.OpenMem()
	b := st.Begin()
	for i, k := range f.keys {
		b.Set(k, append([]byte(nil), f.vals[i]...))
	}
	if err := st.Commit(b, f.height, f.appHash); err != nil {
		tb.Fatal(err)
	}
	c := &chain{t: tb, app: New(st, Options{CheckInvariants: true}), height: f.height, now: f.now,
		keys: map[string]key{}, nonces: map[tx.Address]uint64{}, proposer: newKey("proposer")}
	for _, name := range advActors {
		c.keys[name] = newKey(name)
	}
	return c
}

// reporter is what a run reports to: a *testing.T or a rapid check.
type reporter interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// rapidTB lets the harness's chain report to a rapid check.
type rapidTB struct {
	testing.TB
	rt *rapid.T
}

func (r rapidTB) Helper()                         {}
func (r rapidTB) Fatal(args ...any)               { r.rt.Fatal(args...) }
func (r rapidTB) Fatalf(format string, a ...any)  { r.rt.Fatalf(format, a...) }
func (r rapidTB) Error(args ...any)               { r.rt.Error(args...) }
func (r rapidTB) Errorf(format string, a ...any)  { r.rt.Errorf(format, a...) }
func (r rapidTB) Log(args ...any)                 { r.rt.Log(args...) }
func (r rapidTB) Logf(format string, args ...any) { r.rt.Logf(format, args...) }
func (r rapidTB) FailNow()                        { r.rt.FailNow() }

// advView is the committed state as the queries show it, observed before each block.
type advView struct {
	height                     int64
	timeMs                     uint64
	orders                     []api.Order
	bids                       []api.Bid
	leases                     []api.LeaseView
	provs                      []api.ProviderView
	accounts                   map[tx.Address]api.Account
	epochs                     []api.EpochView // the current epoch's view, then the previous one's while it is open
	seqOrder, seqBid, seqLease uint64
	runs                       map[uint64]api.RunView // runs of replicated orders, by lease
	phase                      map[uint64]string      // their group's phase, by lease
	offers                     []api.StorageOffer     // storage offers, by provider address
}

func (v *advView) order(id uint64) *api.Order {
	if id == 0 || id > uint64(len(v.orders)) {
		return nil
	}
	return &v.orders[id-1]
}

func (v *advView) lease(id uint64) *api.LeaseView {
	if id == 0 || id > uint64(len(v.leases)) {
		return nil
	}
	return &v.leases[id-1]
}

func (v *advView) provider(a tx.Address) *api.ProviderView {
	for i := range v.provs {
		if v.provs[i].Owner == a {
			return &v.provs[i]
		}
	}
	return nil
}

// advRun drives one chain (and, for the determinism check, a twin fed the same blocks) with generated blocks.
type advRun struct {
	rep    reporter
	s      source
	c      *chain
	twin   *chain
	params api.Params
	v      *advView
	names  map[tx.Address]string
	addrs  *strings.Replacer // addresses to actor names, in logs
	next   map[tx.Address]uint64
	spent  map[tx.Address]uint64
	block  int
	ntx    int // transactions so far
	// fullEvery is how often (in blocks) the queries are checked in full; 0: only when the run ends.
	fullEvery int
	// stats counts results by the type of a transaction's first message, then code: how far runs get.
	stats map[string]map[string]int
	// the last block's app hash and its transactions' result codes (the golden scenario pins them)
	lastAppHash []byte
	lastCodes   []string
	kinds       []string // the first message's type of each transaction of the block being built
}

func newAdvRun(rep reporter, s source, f *advFixture, tb testing.TB, twin bool) *advRun {
	r := &advRun{rep: rep, s: s, c: f.chain(tb), params: f.params, names: map[tx.Address]string{}}
	if twin {
		r.twin = f.chain(tb)
	}
	var pairs []string
	for name, k := range r.c.keys {
		r.names[k.addr] = name
		pairs = append(pairs, k.addr.String(), name)
	}
	pairs = append(pairs, r.c.proposer.addr.String(), "proposer")
	r.addrs = strings.NewReplacer(pairs...)
	r.stats = map[string]map[string]int{}
	return r
}

func (r *advRun) fail(format string, args ...any) {
	r.rep.Helper()
	r.rep.Fatalf("block %d (height %d): %s", r.block, r.c.height, fmt.Sprintf(format, args...))
}

// query answers a query or fails the run; a not-found answer is false where notFoundOK.
func (r *advRun) query(path string, req, out any, notFoundOK bool) bool {
	r.rep.Helper()
	data, err := json.Marshal(req)
	if err != nil {
		r.fail("query %s: %v", path, err)
	}
	res, err := r.c.app.Query(context.Background(), &abci.RequestQuery{Path: path, Data: data})
	if err != nil {
		r.fail("query %s %s: %v", path, data, err)
	}
	if notFoundOK && res.Code == api.QueryCodeNotFound {
		return false
	}
	if res.Code != 0 {
		r.fail("query %s %s: code %d: %s", path, data, res.Code, res.Log)
	}
	if err := json.Unmarshal(res.Value, out); err != nil {
		r.fail("query %s %s: answer does not decode: %v\n%s", path, data, err, res.Value)
	}
	return true
}

// listAll reads a list query page by page.
func listAll[T any](r *advRun, path string, lr api.ListRequest) []T {
	r.rep.Helper()
	var out []T
	for pages := 0; ; pages++ {
		var page api.List[T]
		r.query(path, lr, &page, false)
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		if pages > 100_000 || len(page.Items) == 0 {
			r.fail("list %s %+v: paging does not end (next %q)", path, lr, page.Next)
		}
		lr.After = page.Next
	}
}

func seqOf(kv store.KV, name string) uint64 {
	if b, ok := kv.Get(schema.KeySeq + name); ok {
		return schema.UnBE64(string(b))
	}
	return 0
}

// observe checks the committed state and reads it into the view the generator works from. The view comes
// straight from the state, with the ledger's own decoders (cheap); the queries are checked against it: after
// every block every list, group and epoch query must answer, with valid JSON; a full observation (every fourth
// block, and at the end of a run) also decodes every answer, reads every object by its own query, every actor's
// filtered lists and everything at once, and compares what they say with the state.
func (r *advRun) observe(full bool) {
	r.rep.Helper()
	kv, height := r.c.app.store.View()
	r.checkState(kv, height)
	r.v = r.stateView(kv, height)
	r.checkQueries(full)
}

// stateView reads the view from the committed state.
func (r *advRun) stateView(kv store.KV, height int64) *advView {
	r.rep.Helper()
	c := &ctx{KV: kv, Params: kernel.LoadParams(kv), Hooks: testMods.hooks}
	v := &advView{height: height, timeMs: lastTime(kv), accounts: map[tx.Address]api.Account{}, runs: map[uint64]api.RunView{}, phase: map[uint64]string{},
		seqOrder: seqOf(kv, "order"), seqBid: seqOf(kv, "bid"), seqLease: seqOf(kv, "lease")}
	kv.Iterate(schema.POrder, schema.PrefixEnd(schema.POrder), func(_ string, b []byte) bool {
		v.orders = append(v.orders, *kernel.MustDecode(schema.DecOrder(b)))
		return true
	})
	kv.Iterate(schema.PBid, schema.PrefixEnd(schema.PBid), func(_ string, b []byte) bool {
		v.bids = append(v.bids, *kernel.MustDecode(schema.DecBid(b)))
		return true
	})
	kv.Iterate(schema.PLease, schema.PrefixEnd(schema.PLease), func(_ string, b []byte) bool {
		v.leases = append(v.leases, testMods.leaseView(c, kernel.MustDecode(schema.DecLease(b))))
		return true
	})
	kv.Iterate(schema.PProvider, schema.PrefixEnd(schema.PProvider), func(_ string, b []byte) bool {
		v.provs = append(v.provs, testMods.providerView(c, kernel.MustDecode(schema.DecProvider(b))))
		return true
	})
	for _, l := range []struct {
		what string
		n    int
		seq  uint64
		id   func(i int) uint64
	}{
		{"orders", len(v.orders), v.seqOrder, func(i int) uint64 { return v.orders[i].ID }},
		{"bids", len(v.bids), v.seqBid, func(i int) uint64 { return v.bids[i].ID }},
		{"leases", len(v.leases), v.seqLease, func(i int) uint64 { return v.leases[i].ID }},
	} {
		if uint64(l.n) != l.seq {
			r.fail("%d %s stored, %d given out", l.n, l.what, l.seq)
		}
		for i := range l.n {
			if l.id(i) != uint64(i+1) {
				r.fail("%s stored out of order: #%d is id %d", l.what, i, l.id(i))
			}
		}
	}
	for _, name := range advActors {
		a := c.Account(r.c.addr(name))
		v.accounts[a.Address] = *a
	}
	kv.Iterate(schema.PStorageOffer, schema.PrefixEnd(schema.PStorageOffer), func(k string, b []byte) bool {
		var a tx.Address
		copy(a[:], k[len(schema.PStorageOffer):])
		v.offers = append(v.offers, *kernel.MustDecode(schema.DecStorageOffer(a, b)))
		return true
	})
	for _, o := range v.orders {
		if vf, ok := c.Verification(o.ID); ok {
			vv := testMods.Runs.VerificationView(c, vf)
			for _, run := range vv.Runs {
				v.runs[run.LeaseID], v.phase[run.LeaseID] = run, vv.Phase
			}
		}
	}
	if r.params.EpochBlocks > 0 {
		cur := testMods.Trust.EpochOf(c, height)
		ev, err := testMods.Trust.EpochView(c, cur, height)
		if err != nil {
			r.fail("epoch %d: %v", cur, err)
		}
		v.epochs = append(v.epochs, ev)
		if cur > 0 {
			if prev, err := testMods.Trust.EpochView(c, cur-1, height); err == nil && !prev.Tallied {
				v.epochs = append(v.epochs, prev)
			}
		}
	}
	return v
}

// checkQueries reads the state through the queries (see observe).
func (r *advRun) checkQueries(full bool) {
	r.rep.Helper()
	v := r.v
	var st api.Status
	r.query(api.QueryStatus, nil, &st, false)
	if st.Height != v.height || st.Height != r.c.height || st.ChainID != testChain || st.TimeMs != v.timeMs {
		r.fail("status %+v, want height %d", st, r.c.height)
	}
	var sup api.Supply
	r.query(api.QuerySupply, nil, &sup, false)
	if !sup.Holds() {
		r.fail("supply does not hold: %+v", sup)
	}
	var params api.Params
	r.query(api.QueryParams, nil, &params, false)
	if params != r.params {
		r.fail("params changed: %+v", params)
	}
	var auds []api.Auditor
	r.query(api.QueryAuditors, nil, &auds, false)
	var pending api.Account
	r.query(api.QueryAccount, api.AddressRequest{Address: r.c.addr("p0"), Pending: true}, &pending, false)
	if !full {
		// Every list, group and epoch answers; the items are left undecoded (checked in full observations).
		for _, l := range []struct {
			path string
			n    int
		}{{api.QueryOrders, len(v.orders)}, {api.QueryBids, len(v.bids)}, {api.QueryLeases, len(v.leases)}, {api.QueryProviders, len(v.provs)}} {
			if got := len(listAll[json.RawMessage](r, l.path, api.ListRequest{Limit: api.MaxPageLimit})); got != l.n {
				r.fail("%s: %d listed, %d stored", l.path, got, l.n)
			}
		}
		for _, o := range v.orders {
			var raw json.RawMessage
			if group := map[bool]uint64{true: o.ID, false: o.RefereeFor}[o.Replicas > 1]; group != 0 {
				r.query(api.QueryVerify, api.IDRequest{ID: group}, &raw, false)
			}
			if o.Nodes > 1 {
				r.query(api.QueryCluster, api.IDRequest{ID: o.ID}, &raw, false)
			}
		}
		for _, e := range v.epochs {
			var raw json.RawMessage
			r.query(api.QueryEpoch, api.EpochRequest{Epoch: &e.Epoch}, &raw, false)
		}
		return
	}
	for _, name := range advActors {
		var a api.Account
		r.query(api.QueryAccount, api.AddressRequest{Address: r.c.addr(name)}, &a, false)
		if a != v.accounts[a.Address] {
			r.fail("account %s: query says %+v, state %+v", name, a, v.accounts[a.Address])
		}
	}

	// Providers: a paged list, and each actor by address.
	provs := listAll[api.ProviderView](r, api.QueryProviders, api.ListRequest{Limit: 3})
	if len(provs) != len(v.provs) {
		r.fail("%d providers listed, %d stored", len(provs), len(v.provs))
	}
	for _, name := range advActors {
		var p api.ProviderView
		found := r.query(api.QueryProvider, api.AddressRequest{Address: r.c.addr(name)}, &p, true)
		if sp := v.provider(r.c.addr(name)); found != (sp != nil) || found && (p.Stake != sp.Stake || p.Status != sp.Status || p.ReputationPPM != sp.ReputationPPM) {
			r.fail("provider %s: query says %v %+v, state %+v", name, found, p, sp)
		}
		if found {
			var l api.Latency
			r.query(api.QueryLatency, api.AddressRequest{Address: p.Owner}, &l, true)
		}
	}

	// Orders, bids and leases: every id ever given out, by a paged list and one by one.
	orders := listAll[api.Order](r, api.QueryOrders, api.ListRequest{Limit: 7})
	bids := listAll[api.Bid](r, api.QueryBids, api.ListRequest{Limit: 11})
	leases := listAll[api.LeaseView](r, api.QueryLeases, api.ListRequest{Limit: 5})
	if len(orders) != len(v.orders) || len(bids) != len(v.bids) || len(leases) != len(v.leases) {
		r.fail("listed %d orders, %d bids, %d leases; stored %d, %d, %d", len(orders), len(bids), len(leases), len(v.orders), len(v.bids), len(v.leases))
	}
	open := 0
	for i, o := range orders {
		var one api.Order
		r.query(api.QueryOrder, api.IDRequest{ID: o.ID}, &one, false)
		if o.ID != v.orders[i].ID || o.State != v.orders[i].State || one.ID != o.ID || one.State != o.State {
			r.fail("order %d: listed %+v, by id %+v, stored %+v", i+1, o, one, v.orders[i])
		}
		if o.State == api.OrderOpen {
			open++
		}
		if group := map[bool]uint64{true: o.ID, false: o.RefereeFor}[o.Replicas > 1]; group != 0 {
			var vv api.VerificationView
			r.query(api.QueryVerify, api.IDRequest{ID: group}, &vv, false)
		}
		if o.Nodes > 1 {
			var cv api.ClusterView
			r.query(api.QueryCluster, api.IDRequest{ID: o.ID}, &cv, false)
			if len(cv.Members) != len(cv.Leases) {
				r.fail("cluster %d: %d members for %d leases", o.ID, len(cv.Members), len(cv.Leases))
			}
		}
		if o.State == api.OrderOpen {
			for _, b := range listAll[api.Bid](r, api.QueryBids, api.ListRequest{OrderID: o.ID}) {
				if b.OrderID != o.ID {
					r.fail("bids of order %d list bid %d of order %d", o.ID, b.ID, b.OrderID)
				}
			}
		}
	}
	if got := len(listAll[api.Order](r, api.QueryOrders, api.ListRequest{Open: true, Limit: 2})); got != open {
		r.fail("%d open orders listed, %d open", got, open)
	}
	for i, b := range bids {
		var one api.Bid
		r.query(api.QueryBid, api.IDRequest{ID: b.ID}, &one, false)
		if b.ID != v.bids[i].ID || b.State != v.bids[i].State || one != b {
			r.fail("bid %d: listed %+v, by id %+v, stored %+v", i+1, b, one, v.bids[i])
		}
	}
	for i, l := range leases {
		var one api.LeaseView
		r.query(api.QueryLease, api.IDRequest{ID: l.ID}, &one, false)
		if l.ID != v.leases[i].ID || l.State != v.leases[i].State || one.ID != l.ID || one.State != l.State || l.Paid != v.leases[i].Paid {
			r.fail("lease %d: listed %+v, by id %+v, stored %+v", i+1, l.Lease, one.Lease, v.leases[i].Lease)
		}
		// A run that committed its result is completed, and has a receipt once it revealed it.
		var rc tx.Receipt
		if found := r.query(api.QueryReceipt, api.IDRequest{ID: l.ID}, &rc, true); found != (l.Receipt != nil) || found && l.State != api.LeaseCompleted ||
			l.State == api.LeaseCompleted && !found && v.runs[l.ID].Commit != api.CommitCommitted && v.runs[l.ID].Commit != api.CommitMissed {
			r.fail("lease %d (%s): receipt found %v, in the lease view %v", l.ID, l.State, found, l.Receipt != nil)
		}
	}
	for _, name := range advActors {
		a := r.c.addr(name)
		for _, o := range listAll[api.Order](r, api.QueryOrders, api.ListRequest{Tenant: a, Limit: 4}) {
			if o.Tenant != a {
				r.fail("orders of %s list order %d of %s", name, o.ID, o.Tenant)
			}
		}
		for _, b := range listAll[api.Bid](r, api.QueryBids, api.ListRequest{Provider: a, Limit: 4}) {
			if b.Provider != a {
				r.fail("bids of %s list bid %d of %s", name, b.ID, b.Provider)
			}
		}
		for _, l := range listAll[api.LeaseView](r, api.QueryLeases, api.ListRequest{Tenant: a}) {
			if l.Tenant != a {
				r.fail("leases of tenant %s list lease %d of %s", name, l.ID, l.Tenant)
			}
		}
		for _, l := range listAll[api.LeaseView](r, api.QueryLeases, api.ListRequest{Provider: a, Limit: 3}) {
			if l.Provider != a {
				r.fail("leases of provider %s list lease %d of %s", name, l.ID, l.Provider)
			}
		}
	}
	var objs api.Objects
	or := api.ObjectsRequest{}
	for _, p := range v.provs {
		or.Providers = append(or.Providers, p.Owner)
	}
	// Every id given out and the next one (which does not exist), as many as one query may name.
	room := func() bool { return len(or.Providers)+len(or.Orders)+len(or.Bids)+len(or.Leases) < api.MaxPageLimit }
	var want [3]int
	for i, l := range []struct {
		ids *[]uint64
		seq uint64
	}{{&or.Orders, v.seqOrder}, {&or.Bids, v.seqBid}, {&or.Leases, v.seqLease}} {
		for id := uint64(1); id <= l.seq+1 && room(); id++ {
			*l.ids = append(*l.ids, id)
			if id <= l.seq {
				want[i]++
			}
		}
	}
	r.query(api.QueryObjects, or, &objs, false)
	if got := [3]int{len(objs.Orders), len(objs.Bids), len(objs.Leases)}; got != want || len(objs.Providers) != len(v.provs) {
		r.fail("objects query: %v orders, bids, leases, want %v; %d providers of %d", got, want, len(objs.Providers), len(v.provs))
	}
	if r.params.EpochBlocks > 0 {
		var cur api.EpochView
		r.query(api.QueryEpoch, api.EpochRequest{}, &cur, false)
		if len(v.epochs) == 0 || cur.Epoch != v.epochs[0].Epoch || len(cur.Providers) != len(v.epochs[0].Providers) || len(cur.Attested) != len(v.epochs[0].Attested) {
			r.fail("epoch: query says %+v, state %+v", cur, v.epochs)
		}
		if cur.Current > 0 {
			var prev api.EpochView
			e := cur.Current - 1
			r.query(api.QueryEpoch, api.EpochRequest{Epoch: &e}, &prev, false)
		}
		var future api.EpochView
		e := cur.Current + 1
		r.query(api.QueryEpoch, api.EpochRequest{Epoch: &e}, &future, true)
	}
}

// checkState decodes every stored object and checks the indexes the end-of-block work relies on: each index
// entry names an object in the state it indexes, at the key its fields give, and nothing is left past due.
func hasKey(kv store.KV, key string) bool {
	_, ok := kv.Get(key)
	return ok
}

func (r *advRun) checkState(kv store.KV, height int64) {
	r.rep.Helper()
	now := lastTime(kv)
	each := func(prefix string, fn func(rest string, v []byte) error) {
		kv.Iterate(prefix, schema.PrefixEnd(prefix), func(k string, v []byte) bool {
			if err := fn(k[len(prefix):], v); err != nil {
				r.fail("state key %q: %v", k, err)
			}
			return true
		})
	}
	orders, bids, leases := map[uint64]*api.Order{}, map[uint64]*api.Bid{}, map[uint64]*api.Lease{}
	each(schema.POrder, func(rest string, v []byte) (err error) {
		o, err := schema.DecOrder(v)
		if err == nil && schema.UnBE64(rest) != o.ID {
			err = fmt.Errorf("holds order %d", o.ID)
		}
		orders[schema.UnBE64(rest)] = o
		return err
	})
	each(schema.PBid, func(rest string, v []byte) (err error) {
		b, err := schema.DecBid(v)
		if err == nil && (schema.UnBE64(rest) != b.ID || orders[b.OrderID] == nil) {
			err = fmt.Errorf("bid %d on order %d", b.ID, b.OrderID)
		}
		bids[schema.UnBE64(rest)] = b
		return err
	})
	each(schema.PLease, func(rest string, v []byte) (err error) {
		l, err := schema.DecLease(v)
		if err == nil && (schema.UnBE64(rest) != l.ID || orders[l.OrderID] == nil || bids[l.BidID] == nil) {
			err = fmt.Errorf("lease %d of order %d, bid %d", l.ID, l.OrderID, l.BidID)
		}
		leases[schema.UnBE64(rest)] = l
		return err
	})
	each(schema.PReceipt, func(rest string, v []byte) error {
		_, err := schema.DecReceipt(v)
		if l := leases[schema.UnBE64(rest)]; err == nil && (l == nil || l.State != api.LeaseCompleted) {
			err = fmt.Errorf("receipt of a lease that did not complete")
		}
		return err
	})
	offers := map[tx.Address]*api.StorageOffer{}
	each(schema.PStorageOffer, func(rest string, v []byte) error {
		var a tx.Address
		copy(a[:], rest)
		o, err := schema.DecStorageOffer(a, v)
		offers[a] = o
		switch {
		case err != nil:
		case !hasKey(kv, schema.AddrKey(schema.PProvider, a)):
			err = fmt.Errorf("a storage offer from %s, which is no registered provider", a)
		case o.CapacityBytes == 0 && o.UsedBytes == 0:
			err = fmt.Errorf("a withdrawn offer holding nothing left in the state")
		case o.CapacityBytes > 0 && o.PricePerGiBMonth == 0:
			err = fmt.Errorf("an offer of capacity at price 0")
		}
		return err
	})
	each(schema.PLatency, func(rest string, v []byte) error {
		var a tx.Address
		copy(a[:], rest)
		_, err := schema.DecLatency(a, v)
		return err
	})
	revealing := map[uint64]int64{} // replicated order -> reveal deadline, while its reveal phase is open
	each(schema.PVerify, func(rest string, v []byte) error {
		vf, err := schema.DecVerification(v)
		for _, id := range vf.Leases {
			if err == nil && leases[id] == nil {
				err = fmt.Errorf("names missing lease %d", id)
			}
		}
		if err == nil && vf.RevealOpen {
			revealing[vf.OrderID] = vf.RevealDeadline
		}
		return err
	})
	each(schema.PCommit, func(rest string, v []byte) error {
		m, err := schema.DecCommitment(v)
		if l := leases[schema.UnBE64(rest)]; err == nil && (m.LeaseID != schema.UnBE64(rest) || l == nil || l.State != api.LeaseCompleted || m.State < api.CommitCommitted) {
			err = fmt.Errorf("commitment %+v of lease %+v", m, l)
		}
		return err
	})
	revealIndexed := 0
	each(schema.PRevealDL, func(rest string, _ []byte) error {
		revealIndexed++
		if dl, ok := revealing[schema.UnBE64(rest[8:])]; !ok || uint64(dl) != schema.UnBE64(rest[:8]) || dl <= height {
			return fmt.Errorf("reveal deadline index: order %d due at %d (open %v, deadline %d)", schema.UnBE64(rest[8:]), schema.UnBE64(rest[:8]), ok, dl)
		}
		return nil
	})
	if revealIndexed != len(revealing) {
		r.fail("%d reveal phases open, %d in the deadline index", len(revealing), revealIndexed)
	}
	each(schema.PCluster, func(rest string, v []byte) error {
		cl, err := schema.DecCluster(v)
		for _, id := range cl.Leases {
			if err == nil && leases[id] == nil {
				err = fmt.Errorf("names missing lease %d", id)
			}
		}
		return err
	})
	// Audit sets and attestations exist only for the epochs still open to attestations.
	epochOpen := func(e uint64) error {
		c := &ctx{KV: kv, Params: &r.params, Hooks: testMods.hooks}
		if cur := testMods.Trust.EpochOf(c, height); e != cur && e+1 != cur || e > cur {
			return fmt.Errorf("epoch %d is not open at height %d (epoch %d)", e, height, cur)
		}
		return nil
	}
	each(schema.PEpochSet, func(rest string, v []byte) error {
		if _, err := schema.DecAuditSet(v); err != nil {
			return err
		}
		return epochOpen(schema.UnBE64(rest[:8]))
	})
	each(schema.PAttest, func(rest string, _ []byte) error { return epochOpen(schema.UnBE64(rest[:8])) })
	each(schema.PHWAttest, func(rest string, v []byte) error {
		if _, err := schema.DecHWVerdict(v); err != nil {
			return err
		}
		return epochOpen(schema.UnBE64(rest[:8]))
	})
	each(schema.PUnbond, func(rest string, v []byte) error {
		var a tx.Address
		copy(a[:], rest[8:])
		if _, ok := (&ctx{KV: kv, Hooks: testMods.hooks}).Provider(a); !ok || len(v) != 8 || schema.UnBE64(rest[:8]) <= now {
			return fmt.Errorf("unbonding entry of %s (provider %v) matures at %d, now %d", a, ok, schema.UnBE64(rest[:8]), now)
		}
		return nil
	})

	r.checkVault(kv, height, each, offers)

	// Indexes.
	idx := func(prefix string, fn func(a, b uint64) error) {
		each(prefix, func(rest string, _ []byte) error { return fn(schema.UnBE64(rest[:8]), schema.UnBE64(rest[8:])) })
	}
	open := map[uint64]bool{}
	each(schema.POrderOpen, func(rest string, _ []byte) error {
		open[schema.UnBE64(rest)] = true
		if o := orders[schema.UnBE64(rest)]; o == nil || o.State != api.OrderOpen {
			return fmt.Errorf("open index names an order that is not open")
		}
		return nil
	})
	expiring := map[uint64]bool{}
	idx(schema.POrderExpiry, func(h, id uint64) error {
		expiring[id] = true
		if o := orders[id]; o == nil || o.State != api.OrderOpen || uint64(o.ExpiresHeight) != h || o.ExpiresHeight <= height {
			return fmt.Errorf("expiry index: order %d at height %d: %+v", id, h, o)
		}
		return nil
	})
	idx(schema.POrderAuction, func(h, id uint64) error {
		if o := orders[id]; o == nil || o.State != api.OrderOpen || uint64(o.WindowEnd) != h || o.WindowEnd <= height {
			return fmt.Errorf("auction index: order %d at height %d: %+v", id, h, o)
		}
		return nil
	})
	for id, o := range orders {
		if (o.State == api.OrderOpen) != open[id] || (o.State == api.OrderOpen) != expiring[id] {
			r.fail("order %d is %s: in the open index %v, in the expiry index %v", id, o.State, open[id], expiring[id])
		}
	}
	ending, starting := map[uint64]bool{}, map[uint64]bool{}
	idx(schema.PLeaseDepletion, func(end, id uint64) error {
		ending[id] = true
		if l := leases[id]; l == nil || l.State != api.LeaseActive || l.CloseAtMs(r.params.CompletionGraceSec) != end || end <= now {
			return fmt.Errorf("depletion index: lease %d ending at %d (now %d): %+v", id, end, now, l)
		}
		return nil
	})
	idx(schema.PLeaseStartDL, func(h, id uint64) error {
		starting[id] = true
		if l := leases[id]; l == nil || l.State != api.LeasePending || uint64(l.StartDeadline) != h || l.StartDeadline <= height {
			return fmt.Errorf("start index: lease %d due at height %d: %+v", id, h, l)
		}
		return nil
	})
	for id, l := range leases {
		if (l.State == api.LeaseActive) != ending[id] || (l.State == api.LeasePending) != starting[id] {
			r.fail("lease %d is %s: in the depletion index %v, in the start index %v", id, l.State, ending[id], starting[id])
		}
	}
	// Open bids: indexed by order and by (order, provider), each exactly once; only on open orders, at most
	// maxOpenBids of them each.
	c := &ctx{KV: kv, Params: &r.params, Hooks: testMods.hooks}
	byOrder, byProvider, perOrder := map[uint64]bool{}, map[uint64]bool{}, map[uint64]int{}
	idx(schema.PBidByOrder, func(order, id uint64) error { // the history: every bid, open or not
		if b := bids[id]; b == nil || b.OrderID != order {
			return fmt.Errorf("bid %d indexed under order %d: %+v", id, order, b)
		}
		return nil
	})
	idx(schema.PBidOpen, func(order, id uint64) error {
		byOrder[id] = true
		perOrder[order]++
		if b := bids[id]; b == nil || b.OrderID != order || b.State != api.BidOpen {
			return fmt.Errorf("bid %d indexed open under order %d: %+v", id, order, b)
		}
		if o := orders[order]; o == nil || o.State != api.OrderOpen || perOrder[order] > testMods.Market.MaxOpenBids(c, o) {
			return fmt.Errorf("order %d has %d open bids: %+v", order, perOrder[order], o)
		}
		return nil
	})
	each(schema.PBidOfProvider, func(rest string, v []byte) error {
		var a tx.Address
		copy(a[:], rest[8:])
		id := schema.UnBE64(string(v))
		byProvider[id] = true
		if b := bids[id]; b == nil || len(v) != 8 || b.OrderID != schema.UnBE64(rest[:8]) || b.Provider != a || b.State != api.BidOpen {
			return fmt.Errorf("bid %d indexed as %s's open bid on order %d: %+v", id, a, schema.UnBE64(rest[:8]), b)
		}
		return nil
	})
	for id, b := range bids {
		if (b.State == api.BidOpen) != byOrder[id] || (b.State == api.BidOpen) != byProvider[id] {
			r.fail("bid %d is %s: in the order's open index %v, in the provider's %v", id, b.State, byOrder[id], byProvider[id])
		}
	}
	owned := func(prefix string, fn func(a tx.Address, id uint64) bool) {
		each(prefix, func(rest string, _ []byte) error {
			var a tx.Address
			copy(a[:], rest)
			if !fn(a, schema.UnBE64(rest[tx.AddressLen:])) {
				return fmt.Errorf("names an object that %s does not own", a)
			}
			return nil
		})
	}
	owned(schema.PBidByProvider, func(a tx.Address, id uint64) bool { return bids[id] != nil && bids[id].Provider == a })
	owned(schema.POrderByTenant, func(a tx.Address, id uint64) bool { return orders[id] != nil && orders[id].Tenant == a })
	owned(schema.PLeaseByTenant, func(a tx.Address, id uint64) bool { return leases[id] != nil && leases[id].Tenant == a })
	owned(schema.PLeaseByProv, func(a tx.Address, id uint64) bool { return leases[id] != nil && leases[id].Provider == a })
}

// Message kinds, with the weight each is drawn with.
const (
	kSend = iota
	kRegister
	kUpdate
	kBond
	kUnbond
	kOrder
	kReplicated
	kCluster
	kLatency
	kCancel
	kBid
	kWithdrawBid
	kAccept
	kStarted
	kClose
	kComplete
	kTopUp
	kWithdraw
	kAttest
	kUnjail
	kAttestHW
	kCommit
	kReveal
	kExtend
	kDelivered
	kRestart
	kOfferStorage
	kStoreObject
	kAttestStorage
	kBeacon
	kHoldShards
	kClaimRewards
	nKinds
)

var kindWeights = [nKinds]int{kSend: 4, kRegister: 2, kUpdate: 1, kBond: 2, kUnbond: 2, kOrder: 6, kReplicated: 3,
	kCluster: 3, kLatency: 2, kCancel: 2, kBid: 9, kWithdrawBid: 3, kAccept: 3, kStarted: 7, kClose: 4, kComplete: 6,
	kTopUp: 3, kWithdraw: 3, kAttest: 4, kUnjail: 2, kAttestHW: 3, kCommit: 4, kReveal: 4, kExtend: 3, kDelivered: 3, kRestart: 2, kOfferStorage: 2,
	kStoreObject: 3, kAttestStorage: 3, kBeacon: 2, kHoldShards: 3, kClaimRewards: 2}

// kindTypes is the message type each kind generates: every type there is (TestAdversarialSequences checks).
var kindTypes = [nKinds]tx.MsgType{kSend: tx.TypeSend, kRegister: tx.TypeRegisterProvider, kUpdate: tx.TypeUpdateProvider,
	kBond: tx.TypeBond, kUnbond: tx.TypeUnbond, kOrder: tx.TypeCreateOrder, kReplicated: tx.TypeCreateReplicated,
	kCluster: tx.TypeCreateCluster, kLatency: tx.TypePublishLatency, kCancel: tx.TypeCancelOrder, kBid: tx.TypePlaceBid,
	kWithdrawBid: tx.TypeWithdrawBid, kAccept: tx.TypeAcceptBid, kStarted: tx.TypeLeaseStarted, kClose: tx.TypeCloseLease,
	kComplete: tx.TypeCompleteLease, kTopUp: tx.TypeTopUp, kWithdraw: tx.TypeWithdraw, kAttest: tx.TypeAttest,
	kUnjail: tx.TypeUnjail, kAttestHW: tx.TypeAttestHardware, kCommit: tx.TypeCommitResult, kReveal: tx.TypeRevealResult,
	kExtend: tx.TypeExtendLease, kDelivered: tx.TypeManifestDelivered, kRestart: tx.TypeAnnounceRestart,
	kOfferStorage: tx.TypeOfferStorage, kStoreObject: tx.TypeStoreObject, kAttestStorage: tx.TypeAttestStorage,
	kBeacon: tx.TypeAuditorBeacon, kHoldShards: tx.TypeHoldShards, kClaimRewards: tx.TypeClaimRewards}

func (r *advRun) kind(label string) int {
	total := 0
	for _, w := range kindWeights {
		total += w
	}
	x := r.s.intn(total, label)
	for k, w := range kindWeights {
		if x < w {
			return k
		}
		x -= w
	}
	return kSend
}

func (r *advRun) name(a tx.Address) string { return r.names[a] }

// signerFor picks who sends a transaction starting with a message of kind k: mostly someone the message makes
// sense for (the provider of a pending lease starts it), sometimes anyone.
func (r *advRun) signerFor(k int) string {
	if chance(r.s, "stray signer", 12) {
		return pick(r.s, "signer", advActors)
	}
	var cands []string
	add := func(a tx.Address) {
		if n := r.name(a); n != "" && !slices.Contains(cands, n) {
			cands = append(cands, n)
		}
	}
	v := r.v
	switch k {
	case kStarted:
		for _, l := range v.leases {
			if l.State == api.LeasePending {
				add(l.Provider)
			}
		}
	case kComplete, kWithdraw, kCommit:
		for _, l := range v.leases {
			if l.State == api.LeaseActive {
				add(l.Provider)
			}
		}
	case kReveal:
		for _, l := range v.leases {
			if v.runs[l.ID].Commit == api.CommitCommitted {
				add(l.Provider)
			}
		}
	case kClose, kTopUp, kExtend, kDelivered:
		for _, l := range v.leases {
			if l.State == api.LeaseActive || l.State == api.LeasePending {
				add(l.Tenant)
				if k == kClose {
					add(l.Provider)
				}
			}
		}
	case kCancel, kAccept:
		for _, o := range v.orders {
			if o.State == api.OrderOpen {
				add(o.Tenant)
			}
		}
	case kWithdrawBid:
		for _, b := range v.bids {
			if b.State == api.BidOpen {
				add(b.Provider)
			}
		}
	case kUnjail:
		for _, p := range v.provs {
			if p.Status == api.ProviderJailed {
				add(p.Owner)
			}
		}
	case kClaimRewards:
		for _, p := range v.provs {
			if p.RewardsOwed > 0 {
				add(p.Owner)
			}
		}
	}
	if len(cands) == 0 {
		switch k {
		case kAttest, kAttestHW, kAttestStorage, kBeacon:
			cands = advAuditors
		case kSend, kOrder, kReplicated, kCluster, kCancel, kAccept, kTopUp, kClose, kExtend, kDelivered, kStoreObject:
			cands = append(slices.Clone(advTenants), "p0", "s2") // a provider as tenant: self-dealing
		default:
			cands = append(slices.Clone(advProviders), "s2", "s3")
		}
	}
	return pick(r.s, "signer", cands)
}

// pickID picks one of the good ids mostly; otherwise an id just given out or about to be (made earlier in this
// block, perhaps), any id ever given, 0 (invalid) or the largest id.
func (r *advRun) pickID(label string, good []uint64, seq uint64) uint64 {
	if len(good) > 0 && !chance(r.s, label+" stray", 15) {
		return pick(r.s, label, good)
	}
	switch r.s.intn(6, label+" stray kind") {
	case 0:
		return seq + 1
	case 1:
		return seq + 2
	case 2:
		return 1 + r.s.u64(label)%max(seq, 1)
	case 3:
		return seq
	case 4:
		return 0
	}
	return math.MaxUint64
}

func (r *advRun) orderID(label string, ok func(o *api.Order) bool) uint64 {
	var good []uint64
	for i := range r.v.orders {
		if ok(&r.v.orders[i]) {
			good = append(good, r.v.orders[i].ID)
		}
	}
	return r.pickID(label, good, r.v.seqOrder)
}

func (r *advRun) bidID(label string, ok func(b *api.Bid) bool) uint64 {
	var good []uint64
	for i := range r.v.bids {
		if ok(&r.v.bids[i]) {
			good = append(good, r.v.bids[i].ID)
		}
	}
	return r.pickID(label, good, r.v.seqBid)
}

func (r *advRun) leaseID(label string, ok func(l *api.LeaseView) bool) uint64 {
	var good []uint64
	for i := range r.v.leases {
		if ok(&r.v.leases[i]) {
			good = append(good, r.v.leases[i].ID)
		}
	}
	return r.pickID(label, good, r.v.seqLease)
}

// amount is an amount of uspr: mostly up to typical, else everything the signer has, one more, 1, or the
// largest amounts there are (0 is invalid).
func (r *advRun) amount(label string, typical, have uint64) uint64 {
	switch r.s.intn(14, label) {
	case 0, 1, 2, 3, 4, 5:
		return 1 + r.s.u64(label)%max(typical, 1)
	case 6:
		return max(have, 1)
	case 7:
		return have + 1
	case 8:
		return 1
	case 9:
		return math.MaxUint64
	case 10:
		return 1 << 63
	case 11:
		return have / 2
	case 12:
		return r.s.u64(label)
	}
	return 0
}

// addr is someone to send to or name: an actor mostly, else a fresh address, the proposer, or zero (invalid).
func (r *advRun) addr(label string) tx.Address {
	switch r.s.intn(12, label) {
	case 9:
		var a tx.Address
		for i := range a {
			a[i] = byte(r.s.intn(256, label))
		}
		return a
	case 10:
		return r.c.proposer.addr
	case 11:
		return tx.Address{}
	}
	return r.c.addr(pick(r.s, label+" actor", advActors))
}

// text is a close reason or memo of up to limit bytes: often exactly limit bytes, in ASCII or multi-byte UTF-8
// (a cut of it mid-rune must still decode), or invalid UTF-8; sometimes one byte over (rejected).
func (r *advRun) text(label string, limit int) string {
	switch r.s.intn(10, label) {
	case 0:
		return ""
	case 1:
		return "gpu fell off the bus"
	case 2:
		return strings.Repeat("x", limit)
	case 3:
		return "x" + strings.Repeat("€", (limit-1)/3) // 1 + 3×85 = 256
	case 4:
		return strings.Repeat("😀", limit/4)
	case 5:
		return strings.Repeat("é", limit/2)
	case 6:
		return strings.Repeat("\xff", limit) // not UTF-8 at all
	case 7:
		return strings.Repeat("€", limit/3) + "\xe2" // ends in a cut rune
	case 8:
		return strings.Repeat("\x80", limit) // continuation bytes only
	}
	return strings.Repeat("y", limit+1)
}

func (r *advRun) resources() tx.Resources {
	switch r.s.intn(8, "resources") {
	case 1:
		return tx.Resources{CPUMilli: 1000, MemoryMiB: 1024}
	case 2:
		return tx.Resources{GPUCount: 8}
	case 3: // every field at its largest
		return tx.Resources{GPUCount: tx.MaxGPUsPerBox, GPUModels: advModels(), GPUMinVRAMMiB: 1, CPUMilli: 1, MemoryMiB: 1, DiskMiB: 1}
	case 4:
		return tx.Resources{GPUCount: 9, GPUModels: []string{"H100"}} // more than a standard box
	case 5:
		return tx.Resources{CPUMilli: math.MaxUint64, MemoryMiB: math.MaxUint64, DiskMiB: math.MaxUint64}
	case 6:
		return tx.Resources{GPUCount: tx.MaxGPUsPerBox + 1} // invalid
	case 7:
		return tx.Resources{GPUCount: 1, GPUModels: []string{"h100"}, GPUMinVRAMMiB: 81920, CPUMilli: 64000}
	}
	return tx.Resources{GPUCount: 1, GPUModels: []string{"H100"}, CPUMilli: 4000, MemoryMiB: 16 << 10}
}

func (r *advRun) constraints() tx.Constraints {
	switch r.s.intn(12, "constraints") {
	case 1: // every list at its longest
		c := tx.Constraints{Regions: []string{"eu-west"}}
		for len(c.Regions) < tx.MaxListLen {
			c.Regions = append(c.Regions, advName(fmt.Sprintf("r%d-", len(c.Regions))))
		}
		for len(c.Deny) < tx.MaxListLen {
			c.Deny = append(c.Deny, r.addr("deny"))
		}
		return c
	case 2:
		return tx.Constraints{Verified: true}
	case 3:
		return tx.Constraints{MinReputationPPM: uint32(r.s.intn(tx.PPM+2, "min reputation"))} // PPM+1 is invalid
	case 4:
		return tx.Constraints{Docker: true}
	case 5:
		return tx.Constraints{Regions: []string{"us-east", advName("region-")}}
	case 6:
		var c tx.Constraints
		for _, p := range advProviders {
			c.Deny = append(c.Deny, r.c.addr(p))
		}
		return c
	case 7:
		return tx.Constraints{Regions: slices.Repeat([]string{"eu-west"}, tx.MaxListLen+1)} // invalid
	}
	return tx.Constraints{}
}

func (r *advRun) createOrder(me tx.Address) *tx.CreateOrder {
	m := &tx.CreateOrder{Resources: r.resources(), Constraints: r.constraints(), DurationSec: 3600,
		ManifestHash: sha256.Sum256([]byte{byte(r.s.intn(3, "manifest"))})}
	switch r.s.intn(8, "max price") {
	case 0, 1, 2, 3:
		m.MaxPricePerHour = testRunPrice
	case 4:
		m.MaxPricePerHour = 1
	case 5:
		m.MaxPricePerHour = math.MaxUint64
	case 6:
		m.MaxPricePerHour = r.s.u64("max price")
	default:
		m.MaxPricePerHour = 1 + r.s.u64("max price")%(100*api.USPR)
	}
	m.Deposit = r.amount("deposit", 100*api.USPR, r.v.accounts[me].Balance)
	switch r.s.intn(8, "duration") {
	case 1:
		m.DurationSec = 1
	case 2:
		m.DurationSec = tx.MaxDurationSec
	case 3:
		m.DurationSec = tx.MaxDurationSec + 1 // invalid
	case 4:
		m.DurationSec = 1 + r.s.u64("duration")%tx.MaxDurationSec
	case 5:
		m.DurationSec = 0 // invalid
	}
	switch r.s.intn(10, "bid window") {
	case 1, 5, 6:
		m.BidWindow = 2 + uint64(r.s.intn(3, "bid window")) // bids stay open over blocks: accepted, withdrawn
	case 2:
		m.BidWindow = r.params.MaxBidWindowBlocks
	case 3:
		m.BidWindow = r.params.MaxBidWindowBlocks + 1
	case 4:
		m.BidWindow = math.MaxUint64
	}
	switch r.s.intn(10, "ttl") {
	case 1:
		m.TTL = max(m.BidWindow, r.params.BidWindowBlocks) + 1
	case 2:
		m.TTL = r.params.MaxOrderTTLBlocks
	case 3:
		m.TTL = r.params.MaxOrderTTLBlocks + 1
	case 4:
		m.TTL = 1
	case 5:
		m.TTL = math.MaxUint64
	}
	if chance(r.s, "zero manifest", 3) {
		m.ManifestHash = tx.Hash{}
	}
	return m
}

func (r *advRun) latency(me tx.Address) *tx.PublishLatency {
	var peers []tx.Address
	for _, p := range r.v.provs {
		if p.Owner != me {
			peers = append(peers, p.Owner)
		}
	}
	variant := r.s.intn(8, "latency")
	if variant == 1 { // as many peers as allowed, made-up ones too
		for len(peers) < tx.MaxLatencyPeers {
			peers = append(peers, r.addr("latency peer"))
		}
	}
	var m tx.PublishLatency
	for _, p := range peers {
		if len(m.Samples) == tx.MaxLatencyPeers || p.IsZero() || p == me || slices.ContainsFunc(m.Samples, func(s tx.LatencySample) bool { return s.Peer == p }) {
			continue
		}
		rtt := uint32(400)
		if chance(r.s, "far", 30) {
			rtt = uint32(r.s.intn(tx.MaxRTTMicros+1, "rtt"))
		}
		m.Samples = append(m.Samples, tx.LatencySample{Peer: p, RTTMicros: rtt})
	}
	slices.SortFunc(m.Samples, func(a, b tx.LatencySample) int { return bytes.Compare(a.Peer[:], b.Peer[:]) })
	switch variant {
	case 2:
		m.Samples = nil
	case 3: // measures itself
		m.Samples = append(m.Samples, tx.LatencySample{Peer: me, RTTMicros: 1})
		slices.SortFunc(m.Samples, func(a, b tx.LatencySample) int { return bytes.Compare(a.Peer[:], b.Peer[:]) })
	case 4:
		slices.Reverse(m.Samples) // unsorted: invalid when there are two
	case 5:
		if len(m.Samples) > 0 {
			m.Samples[0].RTTMicros = tx.MaxRTTMicros + 1 // invalid
		}
	}
	return &m
}

func (r *advRun) receipt(me string, id uint64) tx.Receipt {
	rc := tx.Receipt{ChainID: testChain, LeaseID: id, EndMs: uint64(r.c.now.UnixMilli()),
		OutputRoot: sha256.Sum256([]byte{"ABC"[r.s.intn(3, "output root")]})}
	if l := r.v.lease(id); l != nil {
		rc.StartMs = l.StartedMs
		if o := r.v.order(l.OrderID); o != nil {
			rc.ManifestHash = o.ManifestHash
		}
	}
	switch r.s.intn(8, "exit code") {
	case 1:
		rc.ExitCode = 1
	case 2:
		rc.ExitCode = 137
	case 3:
		rc.ExitCode = math.MinInt64
	case 4:
		rc.ExitCode = math.MaxInt64
	}
	if chance(r.s, "gpu seconds", 30) {
		rc.GPUSeconds = r.s.u64("gpu seconds")
	}
	signer := r.c.keys[me].priv
	switch r.s.intn(16, "receipt") {
	case 10:
		signer = r.c.keys[pick(r.s, "receipt signer", advActors)].priv // someone else's signature
	case 11:
		rc.ChainID = advName("chain-") // the longest chain id, not ours
	case 12:
		rc.ManifestHash = sha256.Sum256([]byte("another job"))
	case 13:
		rc.EndMs, rc.StartMs = rc.StartMs, rc.StartMs+1 // ends before it starts: invalid
	}
	rc.Signature = ed25519.Sign(signer, rc.SignBytes())
	switch r.s.intn(16, "receipt after signing") {
	case 14:
		rc.ExitCode ^= 1 // tampered with after signing
	case 15:
		rc.Signature = rc.Signature[:tx.SignatureLen-1] // invalid
	}
	return rc
}

func (r *advRun) epoch(label string) (uint64, *api.EpochView) {
	var cur uint64
	if len(r.v.epochs) > 0 {
		cur = r.v.epochs[0].Current
	}
	switch r.s.intn(10, label) {
	case 0, 1, 2, 3:
		if len(r.v.epochs) > 0 {
			return cur, &r.v.epochs[0]
		}
	case 4, 5, 6:
		if len(r.v.epochs) > 1 {
			return cur - 1, &r.v.epochs[1]
		}
	case 7:
		return cur + 1, nil
	case 8:
		return math.MaxUint64, nil // the epoch before epoch 0, were it to wrap
	}
	return cur - min(cur, 2), nil
}

func (r *advRun) attest() *tx.Attest {
	e, ev := r.epoch("attest epoch")
	n := 0
	if ev != nil {
		n = len(ev.Providers)
	}
	m := &tx.Attest{Epoch: e, Up: make([]byte, (n+7)/8)}
	for i := range m.Up {
		m.Up[i] = byte(r.s.intn(256, "up bits"))
	}
	if n%8 != 0 && len(m.Up) > 0 {
		m.Up[len(m.Up)-1] &= byte(1)<<(n%8) - 1
	}
	switch r.s.intn(12, "bitmap") {
	case 1:
		for i := range m.Up {
			m.Up[i] = 0 // everyone down
		}
	case 2:
		for i := range m.Up {
			m.Up[i] = 0xff
		}
		if n%8 != 0 && len(m.Up) > 0 {
			m.Up[len(m.Up)-1] = byte(1)<<(n%8) - 1
		}
	case 3:
		m.Up = append(m.Up, 0) // a byte too many
	case 4:
		if len(m.Up) > 0 {
			m.Up[len(m.Up)-1] |= 0x80 // a bit past the set, when the set is not a multiple of 8
		}
	case 5:
		m.Up = make([]byte, tx.MaxTxBytes-512) // as large as fits a transaction
	}
	return m
}

func (r *advRun) attestHW() *tx.AttestHardware {
	e, _ := r.epoch("hardware epoch")
	m := &tx.AttestHardware{Epoch: e, Passed: !chance(r.s, "failed", 40), Class: "h100-pcie", OpsPerSec: 9e14}
	if len(r.v.provs) > 0 && !chance(r.s, "stray provider", 20) {
		m.Provider = pick(r.s, "provider", r.v.provs).Owner
	} else {
		m.Provider = r.addr("provider")
	}
	switch r.s.intn(8, "class") {
	case 1:
		m.Class = advName("class-")
	case 2:
		m.Class = "cpu"
	case 3:
		m.Class = "bad class" // invalid
	case 4:
		m.Class = ""
	}
	if chance(r.s, "ops", 40) {
		m.OpsPerSec = r.s.u64("ops")
	}
	if chance(r.s, "transcript", 50) {
		m.Transcript = sha256.Sum256([]byte(m.Class))
	}
	return m
}

// msg builds a message of kind k from who.
func (r *advRun) msg(k int, who string) tx.Msg {
	me := r.c.addr(who)
	v := r.v
	bal := v.accounts[me].Balance
	switch k {
	case kSend:
		return &tx.Send{To: r.addr("to"), Amount: r.amount("send", 10*api.USPR, bal)}
	case kRegister, kUpdate:
		info := advInfo(who, r.s.intn(8, "declaration"))
		if k == kRegister {
			return &tx.RegisterProvider{ProviderInfo: info}
		}
		return &tx.UpdateProvider{ProviderInfo: info}
	case kBond:
		need := r.params.StakeBase
		if p := v.provider(me); p != nil && p.RequiredStake > p.Stake {
			need = p.RequiredStake - p.Stake
		}
		return &tx.Bond{Amount: r.amount("bond", need, bal)}
	case kUnbond:
		var stake uint64
		if p := v.provider(me); p != nil {
			stake = p.Stake
		}
		return &tx.Unbond{Amount: r.amount("unbond", stake, stake)}
	case kOrder:
		return r.createOrder(me)
	case kReplicated:
		m := &tx.CreateReplicatedOrder{CreateOrder: *r.createOrder(me), Replicas: 2}
		switch r.s.intn(10, "replicas") {
		case 5, 6:
			m.Replicas = 3
		case 7:
			m.Replicas = uint32(2 + r.s.intn(tx.MaxReplicas-1, "replicas"))
		case 1:
			m.Replicas = tx.MaxReplicas + uint32(r.s.intn(2, "replicas over")) // 9 is invalid
		case 2:
			m.Replicas = 1 // invalid
		case 3:
			m.Deposit = math.MaxUint64 / uint64(m.Replicas+1) // the largest that does not overflow
		case 4:
			m.Deposit = math.MaxUint64/uint64(m.Replicas+1) + 1 // overflows
		}
		return m
	case kCluster:
		m := &tx.CreateClusterOrder{CreateOrder: *r.createOrder(me), Nodes: 2, MaxRTTMicros: 1000, OnFailure: tx.OnFailureClose}
		switch r.s.intn(8, "nodes") {
		case 1:
			m.Nodes = 3
		case 2:
			m.Nodes = 4
		case 3:
			m.Nodes = tx.MaxClusterNodes
		case 4:
			m.Nodes = tx.MaxClusterNodes + 1 // invalid
		case 5:
			m.Nodes = 1 // invalid
		}
		switch r.s.intn(6, "max rtt") {
		case 1:
			m.MaxRTTMicros = tx.MaxRTTMicros
		case 2:
			m.MaxRTTMicros = 1
		case 3:
			m.MaxRTTMicros = 0 // invalid
		}
		switch r.s.intn(6, "on failure") {
		case 1, 2:
			m.OnFailure, m.MaxRestarts = tx.OnFailureRestart, uint8(1+r.s.intn(tx.MaxClusterRestarts, "restarts"))
		case 3:
			m.OnFailure, m.MaxRestarts = tx.OnFailureRestart, 0 // invalid
		case 4:
			m.MaxRestarts = 1 // invalid with close
		case 5:
			m.OnFailure = uint8(r.s.intn(256, "on failure"))
		}
		if chance(r.s, "cluster deposit edge", 10) {
			m.Deposit = math.MaxUint64 / (uint64(m.Nodes) * (1 + uint64(m.MaxRestarts))) // + 0 or 1
			m.Deposit += uint64(r.s.intn(2, "cluster deposit over"))
		}
		return m
	case kLatency:
		return r.latency(me)
	case kCancel:
		return &tx.CancelOrder{ID: r.orderID("cancel", func(o *api.Order) bool { return o.Tenant == me && o.State == api.OrderOpen })}
	case kBid:
		selfDeal := chance(r.s, "self deal", 20)
		id := r.orderID("bid order", func(o *api.Order) bool { return o.State == api.OrderOpen && (o.Tenant != me || selfDeal) })
		maxPrice := uint64(testRunPrice)
		if o := v.order(id); o != nil {
			maxPrice = o.MaxPricePerHour
		}
		m := &tx.PlaceBid{OrderID: id}
		switch r.s.intn(10, "price") {
		case 0, 1, 2, 3:
			m.Price = 1 + r.s.u64("price")%maxPrice
		case 4:
			m.Price = maxPrice
		case 5:
			m.Price = 1
		case 6:
			m.Price = maxPrice + 1
		case 7:
			m.Price = math.MaxUint64
		case 8:
			m.Price = 0 // invalid
		default:
			m.Price = max(maxPrice-uint64(r.s.intn(3, "undercut")), 1)
		}
		return m
	case kWithdrawBid:
		return &tx.WithdrawBid{ID: r.bidID("withdraw bid", func(b *api.Bid) bool { return b.Provider == me && b.State == api.BidOpen })}
	case kAccept:
		return &tx.AcceptBid{ID: r.bidID("accept", func(b *api.Bid) bool {
			o := v.order(b.OrderID)
			return b.State == api.BidOpen && o != nil && o.Tenant == me && o.State == api.OrderOpen
		})}
	case kStarted:
		return &tx.LeaseStarted{ID: r.leaseID("start", func(l *api.LeaseView) bool { return l.Provider == me && l.State == api.LeasePending })}
	case kClose:
		id := r.leaseID("close", func(l *api.LeaseView) bool {
			return (l.Tenant == me || l.Provider == me) && (l.State == api.LeasePending || l.State == api.LeaseActive)
		})
		return &tx.CloseLease{ID: id, Reason: r.text("reason", tx.MaxReasonLen)}
	case kComplete:
		id := r.leaseID("complete", func(l *api.LeaseView) bool { return l.Provider == me && l.State == api.LeaseActive })
		return &tx.CompleteLease{Receipt: r.receipt(who, id)}
	case kTopUp:
		anyones := chance(r.s, "someone else's", 20)
		id := r.leaseID("top up", func(l *api.LeaseView) bool {
			return (l.Tenant == me || anyones) && (l.State == api.LeasePending || l.State == api.LeaseActive)
		})
		return &tx.TopUp{LeaseID: id, Amount: r.amount("top up", 10*api.USPR, bal)}
	case kWithdraw:
		return &tx.Withdraw{ID: r.leaseID("withdraw", func(l *api.LeaseView) bool { return l.Provider == me && l.State == api.LeaseActive })}
	case kAttest:
		return r.attest()
	case kUnjail:
		return &tx.Unjail{}
	case kClaimRewards:
		return &tx.ClaimRewards{}
	case kRestart:
		return &tx.AnnounceRestart{}
	case kOfferStorage:
		// Offers, changes and withdrawals, with capacities and prices at and past their bounds.
		m := &tx.OfferStorage{CapacityBytes: 1 + r.s.u64("capacity")%(1<<40), PricePerGiBMonth: 1 + r.s.u64("storage price")%5_000}
		switch r.s.intn(8, "offer") {
		case 5:
			m.CapacityBytes = 0 // a withdrawal
		case 6:
			m.CapacityBytes = tx.MaxStorageCapacity + r.s.u64("over")%2 // at the bound, or one past it
		case 7:
			m.PricePerGiBMonth = r.s.u64("any price") // 0, or far past the bound, or anything
		}
		return m
	case kStoreObject:
		return r.storeObject()
	case kAttestStorage:
		return r.attestStorage()
	case kBeacon:
		return r.beacon(who)
	case kHoldShards:
		return r.holdShards(me)
	case kCommit:
		id := r.leaseID("commit", func(l *api.LeaseView) bool { return l.Provider == me && l.State == api.LeaseActive })
		m := &tx.CommitResult{LeaseID: id, Commitment: advCommitment(id, me)}
		switch r.s.intn(8, "commitment") {
		case 5:
			m.Commitment = sha256.Sum256([]byte("a guess"))
		case 6:
			m.Commitment = advCommitment(id, r.c.addr("p0")) // as another provider would commit it
		case 7:
			m.Commitment = tx.Hash{} // invalid
		}
		return m
	case kReveal:
		id := r.leaseID("reveal", func(l *api.LeaseView) bool { return l.Provider == me && v.runs[l.ID].Commit == api.CommitCommitted })
		return r.reveal(who, id)
	case kExtend:
		id := r.leaseID("extend", func(l *api.LeaseView) bool {
			return l.Tenant == me && (l.State == api.LeasePending || l.State == api.LeaseActive)
		})
		add := []uint64{60, 3600, 1 + r.s.u64("extend by")%tx.MaxDurationSec, tx.MaxDurationSec, 0, tx.MaxDurationSec + 1}[r.s.intn(6, "extension")]
		return &tx.ExtendLease{LeaseID: id, AddSec: add}
	case kDelivered:
		// A tenant shows its provider's acknowledgement of the manifest: mostly the provider's own, else one signed
		// by someone else, or for another manifest.
		id := r.leaseID("delivered", func(l *api.LeaseView) bool { return l.Tenant == me && l.State == api.LeasePending })
		m := &tx.ManifestDelivered{LeaseID: id}
		var hash tx.Hash
		signer := r.c.keys[pick(r.s, "ack signer", advActors)].priv
		if l := r.v.lease(id); l != nil {
			if o := r.v.order(l.OrderID); o != nil {
				hash = o.ManifestHash
			}
			if name := r.c.name(l.Provider); name != "" && !chance(r.s, "forged ack", 20) {
				signer = r.c.keys[name].priv
			}
		}
		if chance(r.s, "another manifest", 10) {
			hash = sha256.Sum256([]byte("another job"))
		}
		copy(m.Ack[:], ed25519.Sign(signer, tx.ManifestAckBytes(testChain, id, hash)))
		return m
	}
	return r.attestHW()
}

// attestStorage names failed shards of an epoch (current, the one before, or one not open): mostly placed
// shards of the first objects, sometimes ones that do not exist or out of order (refused), up to the bound.
func (r *advRun) attestStorage() *tx.AttestStorage {
	e, _ := r.epoch("storage epoch")
	m := &tx.AttestStorage{Epoch: e}
	n := r.s.intn(6, "failed shards")
	if n == 5 {
		n = tx.MaxFailedShards + r.s.intn(2, "past the bound")
	}
	seen := map[tx.ShardRef]bool{}
	for range n {
		ref := tx.ShardRef{Object: 1 + r.s.u64("failed object")%4, Ordinal: uint32(r.s.u64("failed ordinal") % 12)}
		if n > 5 {
			ref = tx.ShardRef{Object: uint64(len(m.Failed)/8 + 1), Ordinal: uint32(len(m.Failed) % 8)}
		}
		if !seen[ref] {
			seen[ref] = true
			m.Failed = append(m.Failed, ref)
		}
	}
	if !chance(r.s, "unordered", 15) {
		slices.SortFunc(m.Failed, func(a, b tx.ShardRef) int {
			if a.Less(b) {
				return -1
			}
			if b.Less(a) {
				return 1
			}
			return 0
		})
	}
	return m
}

// holdShards declares shards held: mostly those placed on the signer and not declared yet (from the ledger),
// with shards of others, repeats of declared ones and ones that do not exist mixed in.
func (r *advRun) holdShards(me tx.Address) *tx.HoldShards {
	var refs []tx.ShardRef
	var page api.List[api.VaultShard]
	r.c.query(api.QueryVaultPlacedOn, api.VaultPlacedOnRequest{Provider: me, Unheld: !chance(r.s, "declared too", 20), Limit: 30}, &page)
	n := map[uint64]int{}
	for _, s := range page.Items {
		if _, ok := n[s.ObjectID]; !ok {
			var o api.VaultObject
			r.c.query(api.QueryVaultObject, api.IDRequest{ID: s.ObjectID}, &o)
			n[s.ObjectID] = o.K + o.M
		}
		if !chance(r.s, "skip one", 20) {
			refs = append(refs, tx.ShardRef{Object: s.ObjectID, Ordinal: uint32(s.Stripe*n[s.ObjectID] + s.Index)})
		}
	}
	for range r.s.intn(3, "stray refs") {
		refs = append(refs, tx.ShardRef{Object: 1 + r.s.u64("stray object")%6, Ordinal: uint32(r.s.u64("stray ordinal") % 16)})
	}
	slices.SortFunc(refs, func(a, b tx.ShardRef) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	return &tx.HoldShards{Shards: slices.Compact(refs)}
}

// advSecret is an auditor's beacon secret for an epoch.
func advSecret(who string, e uint64) tx.Hash {
	return sha256.Sum256(fmt.Appendf(nil, "beacon %s %d", who, e))
}

// beacon commits to this epoch's secret and reveals the one before: mostly right, sometimes zero, a wrong secret,
// or a zero commitment.
func (r *advRun) beacon(who string) *tx.AuditorBeacon {
	var cur uint64
	if len(r.v.epochs) > 0 {
		cur = r.v.epochs[0].Current
	}
	m := &tx.AuditorBeacon{Commit: tx.BeaconCommit(advSecret(who, cur))}
	if cur > 0 {
		m.Reveal = advSecret(who, cur-1)
	}
	switch r.s.intn(8, "beacon") {
	case 5:
		m.Reveal = tx.Hash{}
	case 6:
		m.Reveal = advSecret(who, cur+7) // not what it committed
	case 7:
		m.Commit = tx.Hash{}
	}
	return m
}

// advManifest is the manifest of an object of size bytes in coding k+m (shards of at most shard bytes, a layout
// within bounds), with made-up roots.
func advManifest(size uint64, k, m int, shard uint64) []byte {
	l, err := layout.LayoutOf(size, layout.Coding{K: k, M: m, ShardSize: shard})
	if err != nil {
		panic(err)
	}
	o := layout.Object{Root: sha256.Sum256(fmt.Appendf(nil, "object %d %d %d", size, k, m)), Layout: l, Shards: make([][]tx.Hash, l.Stripes)}
	for s := range o.Shards {
		for i := range k + m {
			o.Shards[s] = append(o.Shards[s], sha256.Sum256(fmt.Appendf(nil, "shard %d %d %d %d %d", size, k, m, s, i)))
		}
	}
	b, err := o.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

// storeObject is a Vault store: mostly a small object in a narrow coding, for a term at a price around the
// offers' or for good; else codings wider than any fixture has offers for, as many shards as a transaction holds,
// a root of zeros and a small number (what a key built on it reads as a height and an id), manifests that are
// garbage, cut short, with trailing bytes or empty, and deals at and past their bounds.
func (r *advRun) storeObject() *tx.StoreObject {
	k, m := 1+r.s.intn(3, "vault k"), 1+r.s.intn(2, "vault m")
	shard := uint64(layout.GroupSize) << r.s.intn(4, "vault shard")
	size := 1 + r.s.u64("vault size")%(3*uint64(k)*shard)
	switch r.s.intn(10, "vault coding") {
	case 8:
		k, m = 10, 20 // wider than the offers
	case 9: // about the most shards a transaction holds: 32 stripes of 10+20
		k, m, shard, size = 10, 20, layout.GroupSize, 32*10*layout.GroupSize
	}
	man := advManifest(size, k, m, shard)
	switch r.s.intn(12, "vault manifest") {
	case 7: // a root of the uploader's choosing (roots are not checked): zeros, then a small number
		clear(man[1:33])
		man[16] = byte(size % 4)
	case 8:
		man = man[:r.s.intn(len(man), "cut")] // cut short (empty: invalid)
	case 9:
		man = append(man, byte(r.s.intn(256, "trailing")))
	case 10:
		man = fmt.Appendf(nil, "not a manifest %d", r.s.u64("garbage"))
	case 11:
		man[0]++ // another version
	}
	msg := &tx.StoreObject{Manifest: man, Months: 1 + r.s.u64("months")%24, MaxPricePerGiBMonth: 1 + r.s.u64("vault price")%6_000}
	switch r.s.intn(10, "vault deal") {
	case 6, 7:
		msg.Months, msg.MaxPricePerGiBMonth = 0, 0 // permanent
	case 8:
		msg.Months = tx.MaxStorageMonths + uint64(r.s.intn(2, "months over")) // at the bound, or past it
		msg.MaxPricePerGiBMonth = tx.MaxStoragePrice
	case 9:
		msg.MaxPricePerGiBMonth = []uint64{0, tx.MaxStoragePrice + 1, 1}[r.s.intn(3, "vault price edge")] // 0 and past the bound: invalid
		if chance(r.s, "permanent with a price", 50) {
			msg.Months = 0 // invalid with a price
		}
	}
	return msg
}

// checkVault checks Spare Vault's state: every object decodes, with its manifest, which agrees with it; one
// being placed is in the draw index at its place_at, after this height, and has no shard placed yet; one placed
// has every shard's provider, each indexed as held by that provider under the shard's root; the owner and root
// indexes name stored objects; and each offer's used bytes are exactly the bytes of the shards placed on it.
func (r *advRun) checkVault(kv store.KV, height int64, each func(string, func(string, []byte) error), offers map[tx.Address]*api.StorageOffer) {
	r.rep.Helper()
	objs, mans := map[uint64]*api.VaultObject{}, map[uint64]*layout.Object{}
	each(schema.PVaultObject, func(rest string, v []byte) error {
		id := schema.UnBE64(rest)
		o, err := schema.DecVaultObject(id, v)
		if err != nil {
			return err
		}
		objs[id] = o
		b, ok := kv.Get(schema.IDKey(schema.PVaultManifest, id))
		if !ok {
			return fmt.Errorf("vault object %d has no manifest", id)
		}
		man, err := layout.DecodeObject(b)
		if err != nil {
			return fmt.Errorf("vault object %d: %v", id, err)
		}
		mans[id] = man
		if man.Root != o.Root || man.Size != o.Size || man.K != o.K || man.M != o.M || man.ShardSize != o.ShardSize || man.Stripes != o.Stripes {
			return fmt.Errorf("vault object %+v, its manifest's layout %+v", o, man.Layout)
		}
		drawn := hasKey(kv, schema.PVaultDraw+schema.BE64(uint64(o.PlaceAt))+schema.BE64(id))
		if (o.State == api.VaultPlacing) != drawn || o.State == api.VaultPlacing && o.PlaceAt <= height {
			return fmt.Errorf("vault object %d is %s, place_at %d (height %d), in the draw index %v", id, o.State, o.PlaceAt, height, drawn)
		}
		if !hasKey(kv, schema.PVaultByRoot+string(o.Root[:])+schema.BE64(id)) || !hasKey(kv, schema.OwnedKey(schema.PVaultByOwner, o.Owner, id)) {
			return fmt.Errorf("vault object %d is missing from the root or owner index", id)
		}
		for ord := range o.Shards() {
			if hasKey(kv, schema.VaultShardKey(id, ord)) != (o.State == api.VaultPlaced) {
				return fmt.Errorf("vault object %d (%s): shard %d placed %v", id, o.State, ord, !(o.State == api.VaultPlaced))
			}
		}
		return nil
	})
	each(schema.PVaultManifest, func(rest string, _ []byte) error {
		if objs[schema.UnBE64(rest)] == nil {
			return fmt.Errorf("a manifest without its object")
		}
		return nil
	})
	each(schema.PVaultDraw, func(rest string, _ []byte) error {
		if o := objs[schema.UnBE64(rest[8:])]; o == nil || o.State != api.VaultPlacing || uint64(o.PlaceAt) != schema.UnBE64(rest[:8]) {
			return fmt.Errorf("draw index: object %d at %d: %+v", schema.UnBE64(rest[8:]), schema.UnBE64(rest[:8]), o)
		}
		return nil
	})
	each(schema.PVaultByOwner, func(rest string, _ []byte) error {
		if o := objs[schema.UnBE64(rest[tx.AddressLen:])]; o == nil || string(o.Owner[:]) != rest[:tx.AddressLen] {
			return fmt.Errorf("owner index names an object its owner does not own: %+v", o)
		}
		return nil
	})
	each(schema.PVaultByRoot, func(rest string, _ []byte) error {
		if o := objs[schema.UnBE64(rest[32:])]; o == nil || string(o.Root[:]) != rest[:32] {
			return fmt.Errorf("root index names an object of another root: %+v", o)
		}
		return nil
	})
	used, shards := map[tx.Address]uint64{}, map[string]tx.Address{}
	acct := map[tx.Address]*api.VaultProvider{} // pooled shards' providers' accounting, recounted
	var poolBytes [2]uint64                     // term, permanent
	each(schema.PVaultShard, func(rest string, v []byte) error {
		id, ord := schema.UnBE64(rest[:8]), int(schema.UnBE32(rest[8:]))
		rec, err := schema.DecVaultShard(v)
		p, price := rec.Provider, rec.Price
		o := objs[id]
		if err == nil && (o == nil || o.State != api.VaultPlaced || ord >= o.Shards()) {
			err = fmt.Errorf("shard %d of object %d: %+v", ord, id, o)
		}
		if !p.IsZero() { // a lost shard has no provider until its repair is drawn
			shards[rest] = p
			if err == nil && o.Pooled && rec.HeldHeight > 0 { // paid for once declared held
				a := acct[p]
				if a == nil {
					a = &api.VaultProvider{Provider: p}
					acct[p] = a
				}
				a.Shards++
				a.Bytes += o.ShardSize
				if o.Months == 0 {
					a.PermRate += api.ShardRate(o.ShardSize, price)
					poolBytes[1] += o.ShardSize
				} else {
					a.TermRate += api.ShardRate(o.ShardSize, price)
					poolBytes[0] += o.ShardSize
				}
			}
		}
		return err
	})
	held := 0
	each(schema.PVaultHeld, func(rest string, _ []byte) error {
		var p tx.Address
		var root tx.Hash
		copy(p[:], rest)
		copy(root[:], rest[tx.AddressLen:])
		id, ord := schema.UnBE64(rest[tx.AddressLen+32:]), int(schema.UnBE32(rest[tx.AddressLen+40:]))
		o, man := objs[id], mans[id]
		if o == nil || ord >= o.Shards() || man.ShardRoot(ord/(o.K+o.M), ord%(o.K+o.M)) != root || shards[schema.BE64(id)+schema.BE32(uint32(ord))] != p {
			return fmt.Errorf("held index: %s holds shard %d of object %d: %+v", p, ord, id, o)
		}
		used[p] += o.ShardSize
		held++
		return nil
	})
	if held != len(shards) {
		r.fail("%d vault shards placed, %d in the held index", len(shards), held)
	}
	for a, o := range offers {
		if o.UsedBytes != used[a] {
			r.fail("storage offer of %s: used_bytes %d, its placed shards hold %d", a, o.UsedBytes, used[a])
		}
	}
	for a, u := range used {
		if offers[a] == nil {
			r.fail("%s holds %d bytes of shards and has no storage offer", a, u)
		}
	}
	each(schema.PVaultProvider, func(rest string, v []byte) error {
		var a tx.Address
		copy(a[:], rest)
		got, err := schema.DecVaultProvider(a, v)
		if err != nil {
			return err
		}
		want := acct[a]
		if want == nil {
			want = &api.VaultProvider{}
		}
		if got.Shards != want.Shards || got.Bytes != want.Bytes || got.TermRate != want.TermRate || got.PermRate != want.PermRate {
			return fmt.Errorf("vault accounting of %s: %+v, its pooled shards make %+v", a, got, want)
		}
		delete(acct, a)
		return nil
	})
	for a, want := range acct {
		r.fail("%s holds pooled shards (%+v) and has no vault accounting", a, want)
	}
	pool := &api.VaultPool{}
	if b, ok := kv.Get(schema.KeyVaultPool); ok {
		var err error
		if pool, err = schema.DecVaultPool(b); err != nil {
			r.fail("vault pool: %v", err)
		}
	}
	if pool.TermBytes != poolBytes[0] || pool.PermBytes != poolBytes[1] {
		r.fail("vault pool %+v; its pooled shards hold %d term and %d permanent bytes", pool, poolBytes[0], poolBytes[1])
	}
}

// advSalt and advRoot are the salt and output root an honest provider commits to for a run (the root mostly
// agrees with the other runs'); advCommitment is its commitment.
func advSalt(lease uint64) [32]byte { return sha256.Sum256(fmt.Appendf(nil, "salt/%d", lease)) }

func advRoot(lease uint64) tx.Hash {
	return sha256.Sum256([]byte{"AAAB"[sha256.Sum256(fmt.Appendf(nil, "root/%d", lease))[0]%4]})
}

func advCommitment(lease uint64, provider tx.Address) tx.Hash {
	return tx.ResultCommitment(advRoot(lease), 0, provider, advSalt(lease))
}

// reveal opens a run's commitment: mostly the receipt and salt it committed to; sometimes another result, the
// wrong salt, an all-zero salt (invalid), or a receipt that does not verify.
func (r *advRun) reveal(who string, id uint64) *tx.RevealResult {
	rc := r.receipt(who, id)
	m := &tx.RevealResult{Receipt: rc, Salt: advSalt(id)}
	switch r.s.intn(10, "reveal") {
	case 0, 1, 2, 3, 4, 5: // what it committed to, signed properly
		m.Receipt.OutputRoot, m.Receipt.ExitCode = advRoot(id), 0
		m.Receipt.Signature = ed25519.Sign(r.c.keys[who].priv, m.Receipt.SignBytes())
	case 6:
		m.Salt = advSalt(id + 1)
	case 7:
		m.Salt = [32]byte{}
	}
	return m
}

// truth is what honest auditors find of a provider in an epoch (whether it answered, whether its proof of GPU
// passed): fixed per epoch and provider, so that auditors agree and verdicts, slashing and jailing happen.
func truth(what string, e uint64, p tx.Address) bool {
	h := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%x", what, e, p))
	return h[0]%4 != 0
}

// honest is the step an honest market would take next on some object of the state — the provider of a pending
// lease starts it, the provider of an active lease completes it (mostly agreeing with the other replicas), a
// provider bids on an open order, a tenant closes, an auditor attests what it found, a jailed provider asks to
// be let out — so that runs reach deep states: auctions, verdicts, referees, cluster restarts, jail.
func (r *advRun) honest() (string, []tx.Msg) {
	v := r.v
	var acts []func() (string, tx.Msg)
	var audits []func() (string, []tx.Msg)
	for _, l := range v.leases {
		switch l.State {
		case api.LeasePending:
			acts = append(acts, func() (string, tx.Msg) { return r.name(l.Provider), &tx.LeaseStarted{ID: l.ID} })
		case api.LeaseActive:
			if run, ok := v.runs[l.ID]; ok && run.Commit == api.CommitAwaiting { // a replica's run: commit, then reveal
				acts = append(acts, func() (string, tx.Msg) {
					return r.name(l.Provider), &tx.CommitResult{LeaseID: l.ID, Commitment: advCommitment(l.ID, l.Provider)}
				})
				continue
			}
			acts = append(acts, func() (string, tx.Msg) {
				who := r.name(l.Provider)
				rc := tx.Receipt{ChainID: testChain, LeaseID: l.ID, StartMs: l.StartedMs, EndMs: max(l.StartedMs, uint64(r.c.now.UnixMilli())),
					OutputRoot: sha256.Sum256([]byte("A"))}
				if o := v.order(l.OrderID); o != nil {
					rc.ManifestHash = o.ManifestHash
				}
				switch r.s.intn(8, "honest ending") {
				case 1:
					rc.OutputRoot = sha256.Sum256([]byte("B")) // a replica that disagrees
				case 2:
					rc.ExitCode = 1 // a crashed cluster rank
				case 3:
					return r.name(l.Tenant), &tx.CloseLease{ID: l.ID, Reason: r.text("reason", tx.MaxReasonLen)}
				case 4:
					return who, &tx.CloseLease{ID: l.ID, Reason: r.text("reason", tx.MaxReasonLen)}
				case 5:
					return who, &tx.Withdraw{ID: l.ID}
				}
				rc.Signature = ed25519.Sign(r.c.keys[who].priv, rc.SignBytes())
				return who, &tx.CompleteLease{Receipt: rc}
			})
		}
	}
	for _, l := range v.leases { // in id order: map order would make the program depend on the run
		if v.runs[l.ID].Commit == api.CommitCommitted && v.phase[l.ID] == "reveal" {
			acts = append(acts, func() (string, tx.Msg) {
				id, who := l.ID, r.name(l.Provider)
				rc := tx.Receipt{ChainID: testChain, LeaseID: id, StartMs: l.StartedMs, EndMs: l.EndedMs, OutputRoot: advRoot(id)}
				if o := v.order(l.OrderID); o != nil {
					rc.ManifestHash = o.ManifestHash
				}
				rc.Signature = ed25519.Sign(r.c.keys[who].priv, rc.SignBytes())
				return who, &tx.RevealResult{Receipt: rc, Salt: advSalt(id)}
			})
		}
	}
	for _, b := range v.bids {
		if o := v.order(b.OrderID); b.State == api.BidOpen && o != nil && o.State == api.OrderOpen {
			acts = append(acts, func() (string, tx.Msg) {
				if o.Leases() > 1 || chance(r.s, "withdraw instead", 30) {
					return r.name(b.Provider), &tx.WithdrawBid{ID: b.ID}
				}
				return r.name(o.Tenant), &tx.AcceptBid{ID: b.ID}
			})
		}
	}
	for _, o := range v.orders {
		if o.State == api.OrderOpen {
			acts = append(acts, func() (string, tx.Msg) {
				var bidders []string
				for _, p := range v.provs {
					if p.Owner != o.Tenant && p.Status == api.ProviderActive && r.name(p.Owner) != "" {
						bidders = append(bidders, r.name(p.Owner))
					}
				}
				if len(bidders) == 0 {
					bidders = advProviders
				}
				return pick(r.s, "bidder", bidders), &tx.PlaceBid{OrderID: o.ID, Price: max(o.MaxPricePerHour-uint64(r.s.intn(100, "undercut")), 1)}
			})
		}
	}
	for _, ev := range v.epochs {
		for _, a := range advAuditors {
			if slices.ContainsFunc(ev.Attested, func(x api.Auditor) bool { return x.Address == r.c.addr(a) }) {
				continue
			}
			audits = append(audits, func() (string, []tx.Msg) {
				m := &tx.Attest{Epoch: ev.Epoch, Up: make([]byte, (len(ev.Providers)+7)/8)}
				for i, p := range ev.Providers {
					if truth("up", ev.Epoch, p) != chance(r.s, "dissent", 10) {
						m.Up[i/8] |= 1 << (i % 8)
					}
				}
				return a, []tx.Msg{m}
			}, func() (string, []tx.Msg) { // proof of GPU of every provider audited
				var ms []tx.Msg
				for _, p := range ev.Providers {
					ms = append(ms, &tx.AttestHardware{Epoch: ev.Epoch, Provider: p, Passed: truth("proof", ev.Epoch, p),
						Class: "h100-pcie", OpsPerSec: 9e14 + uint64(r.s.intn(1000, "ops"))})
				}
				if len(ms) == 0 {
					ms = append(ms, &tx.Unjail{})
				}
				return a, ms
			})
		}
	}
	for _, p := range v.provs {
		if r.name(p.Owner) == "" {
			continue
		}
		if p.Status == api.ProviderJailed && p.JailedUntilMs <= uint64(r.c.now.UnixMilli()) {
			acts = append(acts, func() (string, tx.Msg) { return r.name(p.Owner), &tx.Unjail{} })
		}
		if p.Stake >= 10 { // stake on its way out stays slashable; now and then all of it
			acts = append(acts, func() (string, tx.Msg) {
				return r.name(p.Owner), &tx.Unbond{Amount: p.Stake / map[bool]uint64{true: 1, false: 10}[chance(r.s, "unbond all", 10)]}
			})
		}
		if p.Stake < p.RequiredStake {
			acts = append(acts, func() (string, tx.Msg) { return r.name(p.Owner), &tx.Bond{Amount: p.RequiredStake - p.Stake} })
		}
	}
	// Storage: a staked provider without an offer offers some; with two offers or more that could take a shard,
	// a tenant stores an object in a coding they can take.
	eligible := 0
	for _, o := range v.offers {
		if p := v.provider(o.Provider); p != nil && p.Status == api.ProviderActive && p.Stake > 0 && p.Stake >= p.RequiredStake &&
			o.FreeBytes() >= 4*layout.GroupSize && o.PricePerGiBMonth <= 5_000 {
			eligible++
		}
	}
	for _, p := range v.provs {
		if r.name(p.Owner) != "" && p.Status == api.ProviderActive && p.Stake >= p.RequiredStake &&
			!slices.ContainsFunc(v.offers, func(o api.StorageOffer) bool { return o.Provider == p.Owner }) {
			acts = append(acts, func() (string, tx.Msg) {
				return r.name(p.Owner), &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 1_000 + uint64(r.s.intn(4_000, "storage price"))}
			})
		}
	}
	if eligible >= 2 {
		acts = append(acts, func() (string, tx.Msg) {
			k := 1 + r.s.intn(eligible-1, "vault k")
			m := &tx.StoreObject{Manifest: advManifest(uint64(1+r.s.intn(3*k*layout.GroupSize, "vault size")), k, eligible-k, layout.GroupSize),
				Months: 1 + uint64(r.s.intn(12, "months")), MaxPricePerGiBMonth: 5_000}
			if chance(r.s, "permanent", 30) {
				m.Months, m.MaxPricePerGiBMonth = 0, 0
			}
			return pick(r.s, "uploader", advTenants), m
		})
	}
	if len(audits) > 0 && (len(acts) == 0 || chance(r.s, "audit", 30)) {
		return pick(r.s, "audit", audits)()
	}
	if len(acts) == 0 {
		return "t0", []tx.Msg{r.createOrder(r.c.addr("t0"))}
	}
	who, m := pick(r.s, "honest step", acts)()
	return who, []tx.Msg{m}
}

// failing is a message that fails when it runs (after the others of its transaction succeeded, perhaps).
func (r *advRun) failing() tx.Msg {
	switch r.s.intn(4, "failing") {
	case 1:
		return &tx.CancelOrder{ID: math.MaxUint64}
	case 2:
		return &tx.Unbond{Amount: math.MaxUint64}
	case 3:
		return &tx.Withdraw{ID: math.MaxUint64}
	}
	return &tx.Send{To: r.c.addr("t0"), Amount: math.MaxUint64}
}

// genTx builds one signed transaction: an honest next step, or adversarial messages (one mostly; several, or as
// many as allowed, of one kind — a storm — or mixed; often ending in one that fails).
func (r *advRun) genTx() ([]byte, string) {
	if r.s.intn(100, "honest") < 45 { // low draws: what rapid leans to, and an exhausted fuzz input reads

		return r.sign(r.honest())
	}
	k := r.kind("kind")
	who := r.signerFor(k)
	n := 1
	switch r.s.intn(20, "messages") {
	case 15, 16, 17:
		n = 2 + r.s.intn(4, "messages")
	case 18:
		n = 5 + r.s.intn(tx.MaxMsgsPerTx-4, "messages")
	case 19:
		n = tx.MaxMsgsPerTx + r.s.intn(2, "messages over") // 65 is too many
	}
	storm := n > 1 && chance(r.s, "storm", 50)
	msgs := []tx.Msg{r.msg(k, who)}
	for len(msgs) < n {
		if len(msgs) == n-1 && n > 1 && chance(r.s, "fails last", 40) {
			msgs = append(msgs, r.failing())
			break
		}
		kk := k
		if !storm {
			kk = r.kind("kind")
		}
		msgs = append(msgs, r.msg(kk, who))
	}
	return r.sign(who, msgs)
}

// advGas is the gas limit a transaction gets per message: enough for any one message but the largest bitmaps.
const advGas = 2_000_000

// sign wraps messages in an envelope — mostly right: the signer's next nonce, gas for its messages and the fee
// that covers it at the chain's gas price; sometimes a replayed or future nonce, too little gas or the most there
// is, a fee too low or too high, another chain, a memo of the maximum size or over it — and signs it.
func (r *advRun) sign(who string, msgs []tx.Msg) ([]byte, string) {
	me := r.c.addr(who)
	body := tx.Body{ChainID: testChain, Nonce: r.next[me], GasLimit: advGas * uint64(len(msgs)), Msgs: msgs}
	fee := func() uint64 { return api.FeeFor(&r.params, body.GasLimit, r.params.MinGasPrice) }
	body.Fee = fee()
	switch r.s.intn(28, "envelope") {
	case 14:
		body.Nonce-- // a replay (or, from nonce 0, the largest nonce)
	case 15:
		body.Nonce++
	case 16:
		body.Fee -= min(body.Fee, 1)
	case 17:
		body.Fee = math.MaxUint64
	case 18:
		body.Fee += r.s.u64("fee") % (10 * api.USPR)
	case 19:
		body.ChainID = advName("chain-")
	case 20, 21:
		body.Memo = r.text("memo", tx.MaxMemoLen)
	case 22:
		body.Fee = r.v.accounts[me].Balance // all it has
	case 23:
		body.GasLimit = uint64(r.s.intn(200_000, "gas")) // runs out at once, or soon
		body.Fee = fee()
	case 24:
		body.GasLimit = math.MaxUint64 // its fee overflows, unless gas is free
		body.Fee = fee()
	case 25:
		body.GasLimit = 0
	case 26:
		body.GasLimit = 1 << 40 // a fee of millions of SPR
		body.Fee = fee()
	}
	// Keep a transaction within MaxTxBytes mostly: drop messages from the end until it fits.
	for len(body.Msgs) > 1 && len(tx.EncodeBody(body))+tx.SignatureLen+8 > tx.MaxTxBytes && !chance(r.s, "oversized", 5) {
		body.Msgs = body.Msgs[:len(body.Msgs)*3/4]
	}
	raw := tx.Sign(body, r.c.keys[who].priv)
	r.kinds = append(r.kinds, msgs[0].Type().String())
	// The nonce is used when the transaction reaches execution and pays its fee.
	if t, err := tx.Decode(raw); err == nil && t.Body.ValidateBasic(testChain) == nil && body.Nonce == r.next[me] &&
		body.Fee >= fee() && r.v.accounts[me].Balance-min(r.spent[me], r.v.accounts[me].Balance) >= body.Fee {
		r.next[me]++
		r.spent[me] += body.Fee
	}
	return raw, r.describe(who, body, len(raw))
}

// describe is a transaction in a line, for the log of a failing run.
func (r *advRun) describe(who string, b tx.Body, size int) string {
	var ms []string
	for _, m := range b.Msgs {
		var d string
		switch m := m.(type) {
		case *tx.CloseLease:
			d = fmt.Sprintf("{ID:%d Reason:%s}", m.ID, textDesc(m.Reason))
		case *tx.CompleteLease:
			rc := m.Receipt
			d = fmt.Sprintf("{Lease:%d Chain:%s Manifest:%.8s Start:%d End:%d Exit:%d Root:%.8s Sig:%dB}", rc.LeaseID, textDesc(rc.ChainID),
				rc.ManifestHash, rc.StartMs, rc.EndMs, rc.ExitCode, rc.OutputRoot, len(rc.Signature))
		case *tx.RevealResult:
			rc := m.Receipt
			d = fmt.Sprintf("{Lease:%d Root:%.8s Exit:%d Salt:%.8x Sig:%dB}", rc.LeaseID, rc.OutputRoot, rc.ExitCode, m.Salt, len(rc.Signature))
		case *tx.Attest:
			d = fmt.Sprintf("{Epoch:%d Up:%x}", m.Epoch, m.Up[:min(len(m.Up), 8)])
			if len(m.Up) > 8 {
				d += fmt.Sprintf("…(%dB)", len(m.Up))
			}
		case *tx.RegisterProvider:
			d = infoDesc(m.ProviderInfo)
		case *tx.UpdateProvider:
			d = infoDesc(m.ProviderInfo)
		default:
			d = fmt.Sprintf("%+v", m)
			if len(d) > 600 {
				d = d[:600] + "…"
			}
		}
		ms = append(ms, m.Type().String()+d)
	}
	env := ""
	if b.ChainID != testChain {
		env += " chain=" + textDesc(b.ChainID)
	}
	if b.Memo != "" {
		env += " memo=" + textDesc(b.Memo)
	}
	return r.addrs.Replace(fmt.Sprintf("%s nonce=%d fee=%d gas=%d%s size=%dB msgs=%d [%s]", who, b.Nonce, b.Fee, b.GasLimit, env, size, len(b.Msgs), strings.Join(ms, " ")))
}

func textDesc(s string) string {
	if len(s) <= 24 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…(%dB)", s[:12], len(s))
}

func infoDesc(p tx.ProviderInfo) string {
	return fmt.Sprintf("{Host:%s Region:%s Zone:%s GPUs:%d groups:%d CPU:%d Docker:%v}", textDesc(p.HostURI), textDesc(p.Region),
		textDesc(p.Zone), p.Hardware.GPUCount(), len(p.Hardware.GPUs), p.Hardware.CPUMilli, p.Docker)
}

// dt is how far a block moves the clock: a second mostly; sometimes not at all, a millisecond, minutes, or
// jumps of days to years that end every lease and many epochs' worth of time.
func (r *advRun) dt() time.Duration {
	switch r.s.intn(16, "dt") {
	case 1:
		return 0
	case 2:
		return time.Millisecond
	case 3:
		return 10 * time.Second
	case 4:
		return time.Minute
	case 5:
		return 10 * time.Minute
	case 6:
		return time.Hour
	case 7:
		return 24 * time.Hour
	case 8:
		return 30 * 24 * time.Hour
	case 9:
		return (tx.MaxDurationSec + 1) * time.Second
	case 10:
		return time.Duration(r.s.intn(2*api.MsPerHour, "dt ms")) * time.Millisecond
	case 11:
		return time.Duration(r.s.u64("dt")%(1000*24*3600*1000)) * time.Millisecond
	}
	return time.Second
}

// knownCode reports whether code is a result code a transaction may end with: listed, and not internal.
func knownCode(code uint32) bool {
	c := tx.Code(code)
	return c != tx.CodeInternal && c.String() != fmt.Sprintf("code_%d", code)
}

// step generates, logs and commits one block, then checks its results and observes the state it left.
func (r *advRun) step() {
	r.rep.Helper()
	r.block++
	if r.v == nil {
		r.observe(true)
	}
	r.next, r.spent = map[tx.Address]uint64{}, map[tx.Address]uint64{}
	for a, acc := range r.v.accounts {
		r.next[a] = acc.Nonce
	}
	var txs [][]byte
	var descs []string
	r.kinds = r.kinds[:0]
	for range r.s.intn(11, "txs") {
		raw, d := r.genTx()
		txs = append(txs, raw)
		descs = append(descs, d)
	}
	if r.s.intn(100, "market round") < 25 { // every provider able to bids on one open order: replicas and clusters fill
		id := r.orderID("market round", func(o *api.Order) bool { return o.State == api.OrderOpen })
		if o := r.v.order(id); o != nil {
			for _, p := range r.v.provs {
				if who := r.name(p.Owner); who != "" && p.Owner != o.Tenant && p.Status == api.ProviderActive && p.Stake >= p.RequiredStake {
					raw, d := r.sign(who, []tx.Msg{&tx.PlaceBid{OrderID: id, Price: max(o.MaxPricePerHour-uint64(r.s.intn(1000, "undercut")), 1)}})
					txs = append(txs, raw)
					descs = append(descs, d)
				}
			}
		}
	}
	dt := r.dt()
	mempool, propose, restart := chance(r.s, "mempool", 30), chance(r.s, "propose", 20), chance(r.s, "restart", 5)
	simulate := chance(r.s, "simulate", 15)
	r.rep.Logf("block %d: height %d, +%v, %d txs (mempool %v, proposal %v, simulation %v, restart %v)", r.block, r.c.height+1, dt, len(txs), mempool, propose, simulate, restart)
	for i, d := range descs {
		r.rep.Logf("  tx %d: %s", i, d)
	}
	r.ntx += len(txs)
	ctx := context.Background()
	if mempool {
		for i, raw := range txs {
			res, err := r.c.app.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw})
			if err != nil || !knownCode(res.Code) {
				r.fail("CheckTx tx %d: %v, code %d: %s", i, err, res.Code, res.Log)
			}
		}
	}
	if simulate { // a simulation answers with a known code and keeps nothing, not even in the mempool's state
		for i, raw := range txs {
			t, derr := tx.Decode(raw)
			var before, after api.Account
			if derr == nil {
				r.query(api.QueryAccount, api.AddressRequest{Address: t.Signer(), Pending: true}, &before, false)
			}
			res, err := r.c.app.Query(ctx, &abci.RequestQuery{Path: api.QuerySimulate, Data: raw})
			if err != nil || derr == nil && res.Code != 0 || derr != nil && res.Code != api.QueryCodeBadRequest {
				r.fail("simulate tx %d: %v, code %d: %s", i, err, res.Code, res.Log)
			}
			if derr != nil {
				continue
			}
			var sim api.Simulation
			if err := json.Unmarshal(res.Value, &sim); err != nil || !knownCode(sim.Code) {
				r.fail("simulate tx %d: %v, code %d: %s", i, err, sim.Code, sim.Log)
			}
			if r.query(api.QueryAccount, api.AddressRequest{Address: t.Signer(), Pending: true}, &after, false); after != before {
				r.fail("simulating tx %d changed the mempool's account: %+v, then %+v", i, before, after)
			}
		}
	}
	if propose {
		want := abci.ResponseProcessProposal_ACCEPT
		for _, raw := range txs {
			if _, err := tx.Decode(raw); err != nil {
				want = abci.ResponseProcessProposal_REJECT
			}
		}
		res, err := r.c.app.ProcessProposal(ctx, &abci.RequestProcessProposal{Height: r.c.height + 1, Txs: txs})
		if err != nil || res.Status != want {
			r.fail("ProcessProposal: %v %v, want %v", res.Status, err, want)
		}
	}
	res := r.c.block(dt, txs...)
	if len(res.TxResults) != len(txs) {
		r.fail("%d results for %d txs", len(res.TxResults), len(txs))
	}
	var codes []string
	for i, tr := range res.TxResults {
		codes = append(codes, tx.Code(tr.Code).String())
		if r.stats[r.kinds[i]] == nil {
			r.stats[r.kinds[i]] = map[string]int{}
		}
		r.stats[r.kinds[i]][tx.Code(tr.Code).String()]++
		if !knownCode(tr.Code) {
			r.fail("tx %d: code %d (%s): %s", i, tr.Code, tx.Code(tr.Code), tr.Log)
		}
		if tr.GasUsed < 0 || tr.GasWanted < 0 || tr.GasUsed > tr.GasWanted {
			r.fail("tx %d: gas used %d, wanted %d", i, tr.GasUsed, tr.GasWanted)
		}
		if tr.Code != 0 {
			for _, e := range tr.Events {
				if e.Type != "fee.paid" {
					r.fail("tx %d failed (%s) but left a %s event", i, tr.Log, e.Type)
				}
			}
		}
	}
	r.rep.Logf("  results: %v", codes)
	r.lastAppHash, r.lastCodes = res.AppHash, codes
	if r.twin != nil {
		tres := r.twin.block(dt, txs...)
		if !bytes.Equal(tres.AppHash, res.AppHash) {
			r.fail("app hash %x, the twin fed the same blocks has %x", res.AppHash, tres.AppHash)
		}
		for i := range tres.TxResults {
			if tres.TxResults[i].Code != res.TxResults[i].Code {
				r.fail("tx %d: code %d, on the twin %d", i, res.TxResults[i].Code, tres.TxResults[i].Code)
			}
		}
	}
	if restart { // a node restarting on its committed state carries on where it stopped
		r.c.app = New(r.c.app.store, Options{CheckInvariants: true})
		info, err := r.c.app.Info(ctx, &abci.RequestInfo{})
		if err != nil || info.LastBlockHeight != r.c.height || !bytes.Equal(info.LastBlockAppHash, res.AppHash) {
			r.fail("restarted: %+v %v", info, err)
		}
	}
	r.observe(r.fullEvery > 0 && r.block%r.fullEvery == 0)
}

// TestAdversarialSequences runs random sequences of blocks from adversarial actors (see the top of this file)
// from each fixture, against a twin chain fed the same blocks (the app hash must agree), checking after every
// block that nothing panicked, every result code is known, failed transactions changed nothing but fees, and
// every stored object reads back through the queries (the Vault's tally whole in its block, or cut into pieces
// over blocks). Longer hunts: -rapid.checks=2000.
func TestAdversarialSequences(t *testing.T) {
	for mt := tx.MsgType(1); mt < 256; mt++ {
		if !strings.HasPrefix(mt.String(), "msg_") && !slices.Contains(kindTypes[:], mt) {
			t.Errorf("message type %d (%s) is never generated: give it a kind", mt, mt)
		}
	}
	fx := advFixtures(t)
	var blocks, txs int
	stats := map[string]map[string]int{}
	rapid.Check(t, func(rt *rapid.T) {
		s := rapidSource{rt}
		f := fx[s.intn(len(fx), "fixture")]
		// The Vault's tally with the app's budget, or one that cuts it into a piece a block (storage/tally.go).
		testTallyBudget = rapid.SampledFrom([]uint64{0, 1, 300_000}).Draw(rt, "tally_budget")
		defer func() { testTallyBudget = 0 }()
		r := newAdvRun(rt, s, f, rapidTB{TB: t, rt: rt}, true)
		r.fullEvery = 4
		n := rapid.IntRange(1, 16).Draw(rt, "blocks")
		for range n {
			r.step()
		}
		r.observe(true)
		blocks, txs = blocks+n, txs+r.ntx
		for k, codes := range r.stats {
			if stats[k] == nil {
				stats[k] = map[string]int{}
			}
			for c, n := range codes {
				stats[k][c] += n
			}
		}
	})
	t.Logf("%d blocks, %d transactions; results by first message:", blocks, txs)
	for _, k := range slices.Sorted(maps.Keys(stats)) {
		var line []string
		for _, c := range slices.Sorted(maps.Keys(stats[k])) {
			line = append(line, fmt.Sprintf("%s %d", c, stats[k][c]))
		}
		t.Logf("  %-24s %s", k, strings.Join(line, ", "))
	}
}
