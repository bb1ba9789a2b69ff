package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/layout"
)

var (
	vaultTallyShards    = flag.Int("vaulttally.shards", 1_000_000, "placed shards BenchmarkVaultTally builds (BENCHMARKS.md: 1,000,000)")
	vaultTallyProviders = flag.String("vaulttally.providers", "1000", "storage provider counts BenchmarkVaultTally builds a chain for, comma-separated (BENCHMARKS.md: 1000,10000)")
)

// BenchmarkVaultTally measures what one epoch's storage proofs cost the ledger at a million placed shards (issue
// 16), against the liveness tally at 10,000 providers in the same run. A chain with 4 auditors of weight 1,
// epochs of 24 blocks and N storage providers (-vaulttally.providers) is built through transactions —
// registrations, bonds, offers; StoreObjects of 960 shards each (32 stripes of the default 10+20 coding, about
// the most shards a transaction holds) in shards of 16 KiB, drawn by the real end-of-block work; every
// provider's HoldShards. Each epoch then plays through transactions: its first block fixes the seed, the second
// to last carries every auditor's AuditorBeacon and AttestStorage (and the repairers' HoldShards), the last begins
// the tally of the epoch before (the liveness tally runs in the same block, with no liveness attestation unless
// said), which goes on in the next epoch's first blocks when its budget a block is spent. Timed:
// FinalizeBlock alone, after a collection, the signatures verified beforehand as CheckTx would have. The tallies:
//
//   - honest: every auditor attests with no failure;
//   - liveness-only: the auditors attest liveness (every provider up) and no storage proofs: the liveness tally
//     on this chain; honest+liveness: both, as a chain runs them;
//   - failed-1000: every auditor names the same 1,000 failed shards (one full AttestStorage);
//   - failed-1%: 1% of the shards fail and every auditor names them all, in AttestStorage of 1,000 continued;
//   - lost-1000: 1,000 fail a second epoch in a row: the tally loses them and draws each onto another provider
//     (lost); the next tally walks the open repairs, whose providers declare them rebuilt (repairing); the
//     tally after the next pays each repair, its first proof passed (repaired).
//
// The tally works within the budget of an otherwise empty block at the default block gas limit and goes on in
// the next blocks (here: empty epochs) when that is spent: ms/tally-block is its longest block, ms/tally all of
// them, tally-blocks how many. The baseline, BenchmarkLivenessEpoch's tally block timed the same way, runs first
// and last (the host's load moves). Logged, and reported with honest: per auditor per epoch, its transactions and their bytes, the
// vault_challenges pages at limit 1,000 with their JSON bytes and the time a node takes to serve them, and the
// proof bytes it fetches from the providers; a provider's vault_placed_on page.
//
//	go test -run '^$' -bench VaultTally -benchtime 3x -timeout 60m ./ledger -vaulttally.providers 1000,10000
func BenchmarkVaultTally(b *testing.B) {
	// The tally's budget in a block that is otherwise empty, on a chain at the default block gas limit: the
	// harness sets no limit (its attestations of 1% of a million shards take several blocks' gas on a real
	// chain), which would leave the tally unbounded.
	testTallyBudget = vaultTallyFloor + api.DefaultBlockMaxGas/6
	defer func() { testTallyBudget = 0 }()
	baseline := func(b *testing.B) {
		const providers = 10_000
		c, auds := livenessChain(b, providers, 4, false)
		var tally time.Duration
		for i := 0; i < b.N; i++ {
			c.block(time.Second) // the audit set
			txs, _ := livenessAttests(b, c, auds, c.epoch(nil).Epoch, providers)
			c.block(time.Second, txs...)
			d, _ := c.timedBlock(time.Second)
			tally += d
		}
		b.ReportMetric(ms(tally)/float64(b.N), "ms/tally-block")
	}
	b.Run("liveness-baseline/providers=10000", baseline)
	defer b.Run("liveness-baseline-again/providers=10000", baseline) // the host's load moves: bracket the run
	for _, f := range strings.Split(*vaultTallyProviders, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 30 {
			b.Fatalf("-vaulttally.providers %q: counts of at least 30 (a stripe of 10+20 needs 30)", *vaultTallyProviders)
		}
		b.Run(fmt.Sprintf("providers=%d", n), func(b *testing.B) {
			v := newVaultTallyChain(b, n, *vaultTallyShards)
			per := v.perAuditor(b)
			b.Run("honest", func(b *testing.B) {
				v.t = b
				var d time.Duration
				for i := 0; i < b.N; i++ {
					v.play(epochPlan{}) // tallies whatever came before
					r := v.play(epochPlan{})
					v.expect(r, 0, 0)
					d += r.tally
				}
				b.ReportMetric(ms(d)/float64(b.N), "ms/tally-block")
				for _, m := range per {
					b.ReportMetric(m.v, m.unit)
				}
			})
			// The liveness tally on this chain (the auditors attest every provider up and leave their storage
			// proofs out: the Vault's epoch is undecided), and both tallies in one block, as a real chain runs them.
			both := func(plan epochPlan) func(b *testing.B) {
				return func(b *testing.B) {
					v.t = b
					var d time.Duration
					for i := 0; i < b.N; i++ {
						v.play(plan)
						d += v.play(plan).tally
					}
					b.ReportMetric(ms(d)/float64(b.N), "ms/tally-block")
				}
			}
			b.Run("liveness-only", both(epochPlan{liveness: true, noStorage: true}))
			b.Run("honest+liveness", both(epochPlan{liveness: true}))
			failed := func(pct int) func(b *testing.B) {
				return func(b *testing.B) {
					v.t = b
					var d, att, total time.Duration
					var named, blocks int
					for i := 0; i < b.N; i++ {
						fail := v.failing(pct)
						named = len(fail)
						v.play(epochPlan{})
						att += v.play(epochPlan{fail: fail}).attest
						r := v.play(epochPlan{}) // tallies the failures
						v.expect(r, len(fail), 0)
						d += r.tally
						total += r.tallyTotal
						blocks += r.blocks
					}
					b.ReportMetric(ms(d)/float64(b.N), "ms/tally-block")
					b.ReportMetric(ms(total)/float64(b.N), "ms/tally")
					b.ReportMetric(float64(blocks)/float64(b.N), "tally-blocks")
					b.ReportMetric(ms(att)/float64(b.N), "ms/attest-block")
					b.ReportMetric(float64(named), "failed")
				}
			}
			b.Run("failed-1000", failed(0))
			b.Run("failed-1%", failed(1))
			b.Run("lost-1000", func(b *testing.B) {
				v.t = b
				var lost, lostTotal, repairing, repaired time.Duration
				var named, lostBlocks int
				for i := 0; i < b.N; i++ {
					fail := v.failing(0)
					named = len(fail)
					v.play(epochPlan{})
					v.play(epochPlan{fail: fail})
					r := v.play(epochPlan{fail: fail}) // the first failures tallied
					v.expect(r, len(fail), 0)
					r = v.play(epochPlan{}) // the second: lost and drawn elsewhere
					v.expect(r, len(fail), len(fail))
					if len(r.repairs) != len(fail) {
						b.Fatalf("%d repairs drawn for %d lost shards", len(r.repairs), len(fail))
					}
					lost += r.tally
					lostTotal += r.tallyTotal
					lostBlocks += r.blocks
					// The repairers rebuild and declare them (HoldShards): challenged from the epoch after.
					byProvider := map[tx.Address][]tx.ShardRef{}
					for _, rp := range r.repairs {
						byProvider[rp.provider] = append(byProvider[rp.provider], rp.ref)
					}
					r = v.play(epochPlan{holds: byProvider}) // the open repairs walked: not declared in the epoch tallied
					repairing += r.tally
					v.play(epochPlan{})     // declared during the epoch tallied: not challenged in it
					r = v.play(epochPlan{}) // their first proofs passed: the repairs are paid
					if got := len(eventsOf(r.res.Events, api.EventVaultRepaired)); got != len(fail) {
						b.Fatalf("%d repairs paid, want %d", got, len(fail))
					}
					repaired += r.tally
				}
				n := float64(b.N)
				b.ReportMetric(ms(lost)/n, "ms/lost-block")
				b.ReportMetric(ms(lostTotal)/n, "ms/lost-tally")
				b.ReportMetric(float64(lostBlocks)/n, "lost-tally-blocks")
				b.ReportMetric(ms(repairing)/n, "ms/repairing-block")
				b.ReportMetric(ms(repaired)/n, "ms/repaired-block")
				b.ReportMetric(float64(named), "lost")
			})
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// timedBlock commits a block as block does and returns how long FinalizeBlock took, after a collection (the
// garbage of what came before is not the block's).
func (c *chain) timedBlock(dt time.Duration, txs ...[]byte) (time.Duration, *abci.ResponseFinalizeBlock) {
	c.t.Helper()
	c.height++
	c.now = c.now.Add(dt)
	runtime.GC()
	t0 := time.Now()
	res, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Height: c.height, Time: c.now, Txs: txs, ProposerAddress: c.proposer.addr[:]})
	d := time.Since(t0)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	checkEvents(c.t, res)
	return d, res
}

// signGas signs msgs from name with the next nonce, gas as the limit and the fee it needs.
func (c *chain) signGas(name string, gas uint64, msgs ...tx.Msg) []byte {
	k := c.keys[name]
	n := c.nonces[k.addr]
	c.nonces[k.addr] = n + 1
	p := c.app.params()
	return tx.Sign(tx.Body{ChainID: testChain, Nonce: n, Fee: api.FeeFor(p, gas, p.MinGasPrice), GasLimit: gas, Msgs: msgs}, k.priv)
}

// gasFor is the gas msgs from name use against the committed state, simulated (the nonce is not used).
func (c *chain) gasFor(name string, msgs ...tx.Msg) uint64 {
	c.t.Helper()
	raw := c.signGas(name, 4_000_000_000, msgs...)
	c.nonces[c.addr(name)]--
	sim := c.simulate(raw)
	if sim.Code != 0 {
		c.t.Fatalf("simulating %T from %s: code %d: %s", msgs[0], name, sim.Code, sim.Log)
	}
	return sim.GasUsed
}

// vaultTallyChain is BenchmarkVaultTally's chain, between epochs: its next block is an epoch's first.
type vaultTallyChain struct {
	*chain
	auds      []string
	objects   int // ids 1..objects, each of perObject shards
	perObject int
	shards    int
	salt      uint64
	secrets   map[string]tx.Hash    // each auditor's beacon secret committed in the epoch before, if any
	played    uint64                // the last epoch play attested in
	names     map[tx.Address]string // the storage providers' key names
	moved     map[tx.ShardRef]bool  // shards a repair moved: not drawn to fail again
}

const (
	vaultTallyEpoch  = 24 // blocks: the seed, empty blocks (where a long tally goes on), the transactions, the tally
	vaultTallyShard  = layout.GroupSize
	vaultTallyK      = 10
	vaultTallyM      = 20
	vaultTallyStripe = 32 // stripes an object: 960 shards, about the most a StoreObject's 32 KiB hold
	vaultTallyStores = 64 // StoreObjects a block
)

func newVaultTallyChain(b *testing.B, providers, shards int) *vaultTallyChain {
	start := time.Now()
	const spr = api.USPR
	auds := []string{"a0", "a1", "a2", "a3"}
	funded := map[string]uint64{"owner": 1 << 60}
	weights := map[string]uint64{}
	for _, a := range auds {
		funded[a], weights[a] = 1<<40, 1
	}
	params := testParams()
	params.EpochBlocks = vaultTallyEpoch
	need := params.RequiredStake(0)
	var ps []storageProvider
	for i := range providers {
		name := fmt.Sprintf("sp%05d", i)
		funded[name] = 4*need + 1_000*spr
		// Bonded at twice the required stake: slashed for failed proofs (1% an epoch), they stay eligible for repairs.
		ps = append(ps, storageProvider{name: name, region: fmt.Sprintf("r%d", i%9), stake: 2 * need, capacity: 1 << 30, price: 100_000_000 + 1_000_000*uint64(i%100)})
	}
	c := newChainWith(b, params, funded, weights)
	c.app.opts.CheckInvariants = false // it recomputes the supply from every key, every block
	c.addStorage(ps...)
	v := &vaultTallyChain{chain: c, auds: auds, perObject: vaultTallyStripe * (vaultTallyK + vaultTallyM), secrets: map[string]tx.Hash{},
		names: map[tx.Address]string{}, moved: map[tx.ShardRef]bool{}}
	for _, p := range ps {
		v.names[c.addr(p.name)] = p.name
	}
	v.objects = (shards + v.perObject - 1) / v.perObject
	v.shards = v.objects * v.perObject
	size := uint64(vaultTallyStripe * vaultTallyK * vaultTallyShard)
	store := func(i int) *tx.StoreObject {
		_, man := vaultManifest(b, fmt.Sprint("tally", i), size, vaultTallyK, vaultTallyM, vaultTallyShard)
		return &tx.StoreObject{Manifest: man, Months: 12, MaxPricePerGiBMonth: 200_000_000}
	}
	gas := c.gasFor("owner", store(0))
	var txBytes int
	placed := map[tx.Address][]tx.ShardRef{}
	for i := 0; i < v.objects+vaultTallyStores; i += vaultTallyStores { // one more block: the last draws
		var txs [][]byte
		for j := i; j < min(i+vaultTallyStores, v.objects); j++ {
			raw := c.signGas("owner", gas*5/4, store(j))
			txBytes = max(txBytes, len(raw))
			txs = append(txs, raw)
		}
		res := c.block(time.Second, txs...)
		for k, r := range res.TxResults {
			if r.Code != 0 {
				b.Fatalf("store %d: code %d: %s", i+k, r.Code, r.Log)
			}
		}
		v.shardsOf(res, api.EventVaultShardPlaced, placed)
	}
	// Every provider declares the shards it received (HoldShards): challenged from the next epoch on.
	holds, holdBytes, holdGas := v.holdTxs(placed)
	for k, r := range c.block(time.Second, holds...).TxResults {
		if r.Code != 0 {
			b.Fatalf("hold_shards %d: code %d: %s", k, r.Code, r.Log)
		}
	}
	var pool api.VaultPool
	c.query(api.QueryVaultPool, nil, &pool)
	if pool.TermBytes != uint64(v.shards)*vaultTallyShard {
		b.Fatalf("%d bytes of shards held, want %d", pool.TermBytes, uint64(v.shards)*vaultTallyShard)
	}
	for c.height%vaultTallyEpoch != 0 { // to an epoch's end: every shard is challenged from the next epoch on
		c.block(time.Second)
	}
	b.Logf("providers=%d: %d objects, %d shards placed and declared held through %d blocks in %s (StoreObject: %d bytes, %d gas; %d HoldShards, the largest %d bytes; the first %d gas)",
		providers, v.objects, v.shards, c.height, time.Since(start).Round(time.Second), txBytes, gas, len(holds), holdBytes, holdGas)
	return v
}

// shardsOf adds the shards that events of type typ in res name (placed, or drawn for a repair) to their
// providers' in to.
func (v *vaultTallyChain) shardsOf(res *abci.ResponseFinalizeBlock, typ string, to map[tx.Address][]tx.ShardRef) {
	for _, ev := range eventsOf(res.Events, typ) {
		id, _ := strconv.ParseUint(ev[api.AttrObjectID], 10, 64)
		s, _ := strconv.Atoi(ev[api.AttrStripe])
		i, _ := strconv.Atoi(ev[api.AttrIndex])
		p, err := tx.ParseAddress(ev[api.AttrProvider])
		if err != nil {
			v.t.Fatal(err)
		}
		to[p] = append(to[p], tx.ShardRef{Object: id, Ordinal: uint32(s*(vaultTallyK+vaultTallyM) + i)})
	}
}

func cmpRef(a, b tx.ShardRef) int { return a.Compare(b) }

// holdTxs are the HoldShards transactions by which providers declare shards held (tx.MaxFailedShards a
// message, a message a transaction), verified as CheckTx would have; with the largest one's size and the gas the
// first uses.
func (v *vaultTallyChain) holdTxs(shards map[tx.Address][]tx.ShardRef) ([][]byte, int, uint64) {
	var provs []tx.Address
	for p := range shards {
		provs = append(provs, p)
	}
	slices.SortFunc(provs, func(a, b tx.Address) int { return bytes.Compare(a[:], b[:]) })
	var txs [][]byte
	var gas0 uint64
	n0, size := 0, 0
	for _, p := range provs {
		refs := shards[p]
		slices.SortFunc(refs, cmpRef)
		for len(refs) > 0 {
			n := min(len(refs), tx.MaxFailedShards)
			m := &tx.HoldShards{Shards: refs[:n]}
			if gas0 == 0 {
				gas0, n0 = v.gasFor(v.names[p], m), n
			}
			raw := v.signGas(v.names[p], testGas+2*gas0*uint64(max(n, n0))/uint64(n0), m)
			if _, err := v.app.decodeVerified(raw); err != nil {
				v.t.Fatal(err)
			}
			size = max(size, len(raw))
			txs = append(txs, raw)
			refs = refs[n:]
		}
	}
	return txs, size, gas0
}

// attestTxs are auditor a's transactions for epoch e: its beacon (a new commitment, the last one's reveal) and
// its AttestStorage naming fail, continued every tx.MaxFailedShards; with their sizes.
func (v *vaultTallyChain) attestTxs(a string, e uint64, fail []tx.ShardRef, gas uint64) ([][]byte, []int) {
	var secret tx.Hash
	if _, err := rand.Read(secret[:]); err != nil {
		v.t.Fatal(err)
	}
	txs := [][]byte{v.sign(a, &tx.AuditorBeacon{Commit: tx.BeaconCommit(secret), Reveal: v.secrets[a]})}
	v.secrets[a] = secret
	for i := 0; i == 0 || i < len(fail); i += tx.MaxFailedShards {
		txs = append(txs, v.signGas(a, gas, &tx.AttestStorage{Epoch: e, Failed: fail[i:min(i+tx.MaxFailedShards, len(fail))]}))
	}
	var sizes []int
	for _, raw := range txs {
		sizes = append(sizes, len(raw))
	}
	return txs, sizes
}

// epochResult is what an epoch's blocks took, and its tally's results.
type epochResult struct {
	attest, tally time.Duration               // tally: the longest block the tally ran in
	tallyTotal    time.Duration               // all of them
	blocks        int                         // the blocks it ran in (it goes on in empty epochs when its budget a block is spent)
	res           *abci.ResponseFinalizeBlock // their events
	epoch         uint64                      // the epoch tallied
	repairs       []repairDrawn
}

type repairDrawn struct {
	provider tx.Address
	ref      tx.ShardRef
}

// epochPlan is what the auditors and providers send in an epoch: the shards the auditors name failed, the
// shards providers declare held, whether the auditors also attest liveness (every provider up) and whether they
// leave out their storage attestations.
type epochPlan struct {
	fail      []tx.ShardRef
	holds     map[tx.Address][]tx.ShardRef
	liveness  bool
	noStorage bool
}

// play commits one epoch: its first blocks (the seed and the audit set, then empty: where the tally begun at the
// end of the epoch before goes on when it runs over); its second to last with every auditor's beacon and
// attestations of this epoch, and the HoldShards, as planned; its last, where the tallies of the epoch before
// begin — then the blocks of the next epoch the Vault's tally goes on in, if it does. All but the empty blocks
// are timed.
func (v *vaultTallyChain) play(p epochPlan) epochResult {
	v.t.Helper()
	e := uint64(v.height) / vaultTallyEpoch // the epoch of the next block
	last := int64(e+1) * vaultTallyEpoch
	for v.height >= last-2 { // the tally before ran into this epoch's attestation block: play the next one
		for v.height < last {
			v.block(time.Second)
		}
		e, last = e+1, last+vaultTallyEpoch
	}
	for v.height < last-2 {
		v.block(time.Second)
	}
	if v.played+1 != e { // a tally ran over a whole epoch: nothing was committed in the one before
		clear(v.secrets)
	}
	v.played = e
	fail, holds := p.fail, p.holds
	gas := uint64(testGas)
	if len(fail) > 0 { // each continuation costs what the first does
		gas = testGas + 2*v.gasFor(v.auds[0], &tx.AttestStorage{Epoch: e, Failed: fail[:min(len(fail), tx.MaxFailedShards)]})
	}
	var txs [][]byte
	for _, a := range v.auds {
		t, _ := v.attestTxs(a, e, fail, gas)
		if p.noStorage {
			v.nonces[v.addr(a)] -= uint64(len(t) - 1)
			t = t[:1] // the beacon alone
		}
		txs = append(txs, t...)
	}
	if p.liveness {
		set := v.epoch(nil)
		if set.Epoch != e || len(set.Providers) != len(v.names) {
			v.t.Fatalf("liveness epoch %d audits %d providers; want epoch %d, %d", set.Epoch, len(set.Providers), e, len(v.names))
		}
		auds := map[string]uint64{}
		for _, a := range v.auds {
			auds[a] = 1
		}
		t, _ := livenessAttests(v.t, v.chain, auds, e, len(set.Providers))
		txs = append(txs, t...)
	}
	for _, raw := range txs {
		if _, err := v.app.decodeVerified(raw); err != nil { // as CheckTx would have, before the block
			v.t.Fatal(err)
		}
	}
	if len(holds) > 0 {
		h, _, _ := v.holdTxs(holds)
		txs = append(txs, h...)
	}
	var r epochResult
	var res *abci.ResponseFinalizeBlock
	r.attest, res = v.timedBlock(time.Second, txs...)
	for i, x := range res.TxResults {
		if x.Code != 0 {
			v.t.Fatalf("epoch %d, tx %d: code %d: %s", e, i, x.Code, x.Log)
		}
	}
	r.tally, r.res = v.timedBlock(time.Second)
	r.tallyTotal, r.blocks = r.tally, 1
	for v.tallying() { // its share of a block spent: it goes on in the next epoch's first blocks
		d, res := v.timedBlock(time.Second)
		r.tally, r.tallyTotal, r.blocks = max(r.tally, d), r.tallyTotal+d, r.blocks+1
		r.res.Events = append(r.res.Events, res.Events...)
	}
	r.epoch = e - 1
	drawn := map[tx.Address][]tx.ShardRef{}
	v.shardsOf(r.res, api.EventVaultRepair, drawn)
	for p, refs := range drawn {
		for _, ref := range refs {
			r.repairs = append(r.repairs, repairDrawn{p, ref})
			v.moved[ref] = true
		}
	}
	return r
}

// tallying reports whether a Vault tally is in progress.
func (v *vaultTallyChain) tallying() bool {
	kv, _ := v.app.store.View()
	_, ok := kv.Get(schema.KeyVaultTally)
	return ok
}

// expect checks the tally r made: the shards failed and lost.
func (v *vaultTallyChain) expect(r epochResult, failed, lost int) {
	v.t.Helper()
	var rec api.VaultEpoch
	v.query(api.QueryVaultEpoch, api.EpochRequest{Epoch: &r.epoch}, &rec)
	if !rec.Tallied || !rec.Decided || rec.Failed != failed || rec.Lost != lost {
		v.t.Fatalf("epoch %d tallied: %+v, want %d failed, %d lost", r.epoch, rec, failed, lost)
	}
}

// failing draws pct% of the shards (none a repair moved), in order, or with pct 0 the first tx.MaxFailedShards of
// 1%: what an auditor names when they fail.
func (v *vaultTallyChain) failing(pct int) []tx.ShardRef {
	v.salt++
	limit := v.shards
	if pct == 0 {
		pct, limit = 1, tx.MaxFailedShards
	}
	var out []tx.ShardRef
	for id := uint64(1); id <= uint64(v.objects) && len(out) < limit; id++ {
		for ord := uint32(0); ord < uint32(v.perObject) && len(out) < limit; ord++ {
			ref := tx.ShardRef{Object: id, Ordinal: ord}
			if mix(v.salt, id, ord)%100 < uint64(pct) && !v.moved[ref] {
				out = append(out, ref)
			}
		}
	}
	return out
}

// mix is a splitmix64 of (salt, id, ord): which shards fail.
func mix(salt, id uint64, ord uint32) uint64 {
	x := salt*0x9e3779b97f4a7c15 ^ id<<32 ^ uint64(ord)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

type metric struct {
	v    float64
	unit string
}

// perAuditor is what one auditor sends, reads and fetches in an epoch: its transactions, the vault_challenges
// pages at the largest limit (timed: what serving them costs a node) and the proofs. It logs them and returns
// them as metrics.
func (v *vaultTallyChain) perAuditor(b *testing.B) []metric {
	v.t = b
	e := uint64(v.height) / vaultTallyEpoch // the next epoch: the height is an epoch's last
	v.block(time.Second)                    // its seed
	secret := v.secrets["a0"]
	_, honest := v.attestTxs("a0", e, nil, testGas)
	v.nonces[v.addr("a0")] -= 2 // not sent
	onePct := v.failing(1)
	v.salt-- // the same draw is the scenarios' first
	_, failing := v.attestTxs("a0", e, onePct, 100_000_000)
	v.nonces[v.addr("a0")] -= uint64(len(failing))
	v.secrets["a0"] = secret
	fullGas := v.gasFor("a0", &tx.AttestStorage{Epoch: e, Failed: onePct[:min(len(onePct), tx.MaxFailedShards)]})
	failBytes := 0
	for _, n := range failing[1:] {
		failBytes += n
	}

	var pages, items, respBytes int
	var served time.Duration
	r := api.VaultChallengesRequest{Epoch: e, Limit: api.MaxPageLimit}
	perProvider := map[tx.Address]int{}
	var sample api.VaultChallenge
	for {
		data, _ := json.Marshal(r)
		t0 := time.Now()
		res, err := v.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryVaultChallenges, Data: data})
		served += time.Since(t0)
		if err != nil || res.Code != 0 {
			b.Fatalf("vault_challenges: %v %s", err, res.Log)
		}
		var page api.List[api.VaultChallenge]
		if err := json.Unmarshal(res.Value, &page); err != nil {
			b.Fatal(err)
		}
		pages++
		respBytes += len(res.Value)
		items += len(page.Items)
		for _, ch := range page.Items {
			perProvider[ch.Provider]++
			sample = ch
		}
		if page.Next == "" {
			break
		}
		var id uint64
		var ord uint32
		if _, err := fmt.Sscanf(page.Next, "%d:%d", &id, &ord); err != nil {
			b.Fatalf("next %q: %v", page.Next, err)
		}
		r.HasAfter, r.AfterObject, r.AfterOrdinal = true, id, ord
	}
	if items != v.shards {
		b.Fatalf("vault_challenges gave %d challenges for %d shards", items, v.shards)
	}
	// What a provider's daemon reads: its shards (vault_placed_on), a page of them, and the same page of those it has
	// not declared held (none).
	var busiest tx.Address
	for p, n := range perProvider {
		if n > perProvider[busiest] {
			busiest = p
		}
	}
	placedOn := func(unheld bool) (time.Duration, int) {
		data, _ := json.Marshal(api.VaultPlacedOnRequest{Provider: busiest, Unheld: unheld, Limit: api.MaxPageLimit})
		t0 := time.Now()
		res, err := v.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryVaultPlacedOn, Data: data})
		d := time.Since(t0)
		if err != nil || res.Code != 0 {
			b.Fatalf("vault_placed_on: %v %s", err, res.Log)
		}
		return d, len(res.Value)
	}
	placedMs, placedBytes := placedOn(false)
	unheldMs, _ := placedOn(true)
	// A proof of the challenged group, made and checked as provider and auditor do, for a shard of the
	// simulation's size; and the size of one for the default coding's 64 MiB shards.
	shard := make([]byte, vaultTallyShard)
	if _, err := rand.Read(shard); err != nil {
		b.Fatal(err)
	}
	root, outboard, err := vault.Outboard(bytes.NewReader(shard), uint64(len(shard)))
	if err != nil {
		b.Fatal(err)
	}
	proof, err := vault.Prove(bytes.NewReader(shard), outboard, uint64(len(shard)), sample.Group)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := vault.VerifyProof(root, uint64(len(shard)), sample.Group, proof); err != nil {
		b.Fatal(err)
	}
	bigShard := vault.DefaultCoding.ShardSize
	bigProof := int(vault.SliceSize(bigShard, 0, layout.GroupSize))
	most := 0
	for _, n := range perProvider {
		most = max(most, n)
	}
	b.Logf("per auditor per epoch at %d shards on %d providers (at most %d on one):\n"+
		"  txs: honest: beacon %d B + attest_storage %d B; 1%% failed (%d shards): beacon + %d attest_storage, %d B in all (the first %d B, %d gas)\n"+
		"  vault_challenges at limit %d: %d pages, %d B of JSON (%.0f B a challenge), served in %s (%.2f ms a page)\n"+
		"  proofs: %d × %d B = %.2f GB at %d-byte shards; %d × %d B = %.2f GB at the default coding's %d MiB shards\n"+
		"  a provider's vault_placed_on page at limit %d: %d B in %s; with unheld (none left): %s",
		v.shards, len(perProvider), most,
		honest[0], honest[1], len(onePct), len(failing)-1, failBytes, failing[1], fullGas,
		api.MaxPageLimit, pages, respBytes, float64(respBytes)/float64(items), served.Round(time.Millisecond), ms(served)/float64(pages),
		items, len(proof), float64(items*len(proof))/1e9, len(shard), items, bigProof, float64(items*bigProof)/1e9, bigShard>>20,
		api.MaxPageLimit, placedBytes, placedMs.Round(time.Microsecond), unheldMs.Round(time.Microsecond))
	for v.height%vaultTallyEpoch != 0 { // back to an epoch's end
		v.block(time.Second)
	}
	return []metric{
		{float64(honest[0] + honest[1]), "tx-bytes/auditor"},
		{float64(failing[0] + failBytes), "tx-bytes-1%/auditor"},
		{float64(pages), "query-pages/auditor"},
		{float64(respBytes), "query-bytes/auditor"},
		{ms(served), "query-ms/auditor"},
		{ms(unheldMs), "ms/placed-on-unheld-page"},
		{float64(items * len(proof)), "proof-bytes/auditor"},
		{float64(items * bigProof), "proof-bytes-64MiB/auditor"},
	}
}
