package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

// The Vault tests play the attacker against StoreObject and the draw of its shards' providers: refusals that
// must leave nothing escrowed, placement that must follow the rules whatever the uploader does, a Sybil uploader
// that owns many minimum-stake storage providers, and offers withdrawn between a store and its draw.

// storageInfo is a CPU-only provider (the least stake a provider can bond) in region.
func storageInfo(name, region string) tx.ProviderInfo {
	info := providerInfo(name)
	info.Region = region
	info.Hardware = tx.Hardware{CPUMilli: 32000, MemoryMiB: 64 << 10, DiskMiB: 1 << 20}
	return info
}

// storageProvider is a storage provider a Vault test sets up.
type storageProvider struct {
	name, region    string
	stake           uint64 // bonded: 0 is exactly the required stake
	capacity, price uint64
}

// addStorage registers, bonds and offers each provider, in three blocks; each must be funded.
func (c *chain) addStorage(ps ...storageProvider) {
	c.t.Helper()
	need := c.app.params().RequiredStake(0)
	var reg, bond, offer [][]byte
	for _, p := range ps {
		reg = append(reg, c.sign(p.name, &tx.RegisterProvider{ProviderInfo: storageInfo(p.name, p.region)}))
		stake := p.stake
		if stake == 0 {
			stake = need
		}
		bond = append(bond, c.sign(p.name, &tx.Bond{Amount: stake}))
		offer = append(offer, c.sign(p.name, &tx.OfferStorage{CapacityBytes: p.capacity, PricePerGiBMonth: p.price}))
	}
	for _, txs := range [][][]byte{reg, bond, offer} {
		for i, r := range c.block(time.Second, txs...).TxResults {
			if r.Code != 0 {
				c.t.Fatalf("setting up storage provider %s: code %d: %s", ps[i].name, r.Code, r.Log)
			}
		}
	}
}

// blockHash commits a block as block does, with hash as the block's hash: the seed of the ledger's draws (the
// harness's blocks have none, a zero seed).
func (c *chain) blockHash(hash tx.Hash, dt time.Duration, txs ...[]byte) *abci.ResponseFinalizeBlock {
	c.t.Helper()
	c.height++
	c.now = c.now.Add(dt)
	res, err := c.app.FinalizeBlock(context.Background(), &abci.RequestFinalizeBlock{
		Height: c.height, Time: c.now, Txs: txs, ProposerAddress: c.proposer.addr[:], Hash: hash[:]})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.RequestCommit{}); err != nil {
		c.t.Fatal(err)
	}
	checkEvents(c.t, res)
	return res
}

func hashOf(s string) tx.Hash { return sha256.Sum256([]byte(s)) }

// vaultManifest lays out an object of size bytes in coding k+m with shards of at most shard bytes, with made-up
// roots derived from seed, and encodes its manifest.
func vaultManifest(t testing.TB, seed string, size uint64, k, m int, shard uint64) (*layout.Object, []byte) {
	t.Helper()
	l, err := layout.LayoutOf(size, layout.Coding{K: k, M: m, ShardSize: shard})
	if err != nil {
		t.Fatal(err)
	}
	o := &layout.Object{Root: hashOf("object/" + seed), Layout: l, Shards: make([][]tx.Hash, l.Stripes)}
	for s := range o.Shards {
		for i := range k + m {
			o.Shards[s] = append(o.Shards[s], hashOf(fmt.Sprintf("shard/%s/%d/%d", seed, s, i)))
		}
	}
	b, err := o.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return o, b
}

// rawManifest encodes a manifest field by field as vault/layout does, unchecked: for the non-canonical ones.
func rawManifest(version byte, size, k, m, shard uint64, roots int) []byte {
	root := hashOf("raw")
	b := append([]byte{version}, root[:]...)
	for _, v := range []uint64{size, k, m, shard} {
		b = binary.AppendUvarint(b, v)
	}
	for i := range roots {
		r := hashOf(fmt.Sprint("raw shard ", i))
		b = append(b, r[:]...)
	}
	return b
}

func (c *chain) vaultObject(id uint64) api.VaultObject {
	c.t.Helper()
	var o api.VaultObject
	c.query(api.QueryVaultObject, api.IDRequest{ID: id}, &o)
	return o
}

// vaultShards reads every shard of object id, page by page (limit shards a page).
func (c *chain) vaultShards(id uint64, limit int) []api.VaultShard {
	c.t.Helper()
	var out []api.VaultShard
	from := 0
	for pages := 0; ; pages++ {
		var page api.List[api.VaultShard]
		c.query(api.QueryVaultShards, api.VaultShardsRequest{ID: id, From: from, Limit: limit}, &page)
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		n, err := strconv.Atoi(page.Next)
		if err != nil || n <= from || pages > 10_000 {
			c.t.Fatalf("vault_shards of %d: next %q after %d", id, page.Next, from)
		}
		from = n
	}
}

// vaultObjects lists the objects of an owner or with a root, page by page.
func (c *chain) vaultObjects(r api.VaultObjectsRequest) []api.VaultObject {
	c.t.Helper()
	var out []api.VaultObject
	for pages := 0; ; pages++ {
		var page api.List[api.VaultObject]
		c.query(api.QueryVaultObjects, r, &page)
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		after, err := strconv.ParseUint(page.Next, 10, 64)
		if err != nil || after <= r.After || pages > 10_000 {
			c.t.Fatalf("vault_objects %+v: next %q", r, page.Next)
		}
		r.After = after
	}
}

func (c *chain) storageOffer(name string) api.StorageOfferView {
	c.t.Helper()
	var o api.StorageOfferView
	c.query(api.QueryStorageOffer, api.AddressRequest{Address: c.addr(name)}, &o)
	return o
}

// eventsOf are the attributes of every event of type typ.
func eventsOf(evs []abci.Event, typ string) []map[string]string {
	var out []map[string]string
	for _, e := range evs {
		if e.Type == typ {
			m := map[string]string{}
			for _, a := range e.Attributes {
				m[a.Key] = a.Value
			}
			out = append(out, m)
		}
	}
	return out
}

// termCost is what a term deal pays for one shard at price.
func termCost(t testing.TB, shard, price, months uint64) uint64 {
	t.Helper()
	c, ok := api.TermCost(shard, price, months)
	if !ok {
		t.Fatal("term cost overflows")
	}
	return c
}

// TestVaultStoreRefusals: every StoreObject the ledger must refuse is refused naming what is wrong and what to
// do, and leaves nothing behind — the sender pays the fee and nothing more, the supply's escrow does not move,
// no object, no vault event. The offers that must not count towards the K+M a stripe needs: a jailed provider's,
// an under-staked one's, one without the room for a shard, a withdrawn one, and (for the price asked) dearer ones.
func TestVaultStoreRefusals(t *testing.T) {
	const spr = api.USPR
	funded := map[string]uint64{"owner": 10_000 * spr, "poor": 0}
	for _, n := range []string{"s1", "s2", "s3", "jailed", "under", "small", "gone"} {
		funded[n] = 1_000 * spr
	}
	c := newChain(t, testParams(), funded)
	const shard = 1 << 20 // 1 MiB shards
	c.addStorage(
		storageProvider{name: "s1", region: "eu-west", capacity: 1 << 30, price: 2_000},
		storageProvider{name: "s2", region: "us-east", capacity: 1 << 30, price: 3_000},
		storageProvider{name: "s3", region: "ap-south", capacity: 1 << 30, price: 4_000},
		storageProvider{name: "jailed", region: "sa-east", capacity: 1 << 30, price: 1_000},
		storageProvider{name: "under", region: "af-south", stake: c.app.params().RequiredStake(0) - 1, capacity: 1 << 30, price: 1_000},
		storageProvider{name: "small", region: "me-central", capacity: shard - 1, price: 1_000},
		storageProvider{name: "gone", region: "eu-north", capacity: 1 << 30, price: 1_000},
	)
	c.do("gone", &tx.OfferStorage{}) // withdrawn
	c.mutate(func(x *ctx) {
		p, _ := x.Provider(c.addr("jailed"))
		p.Status = api.ProviderJailed
		x.SetProvider(p)
	})
	if p := c.provider("under"); p.Stake >= p.RequiredStake || p.Stake == 0 {
		t.Fatalf("the under-staked provider: %+v", p)
	}

	_, twoTwo := vaultManifest(t, "a", 4*shard, 2, 2, shard)       // 2 stripes of 2+2
	_, twoOne := vaultManifest(t, "b", 2*shard, 2, 1, shard)       // 1 stripe of 2+1
	_, small := vaultManifest(t, "c", 100, 2, 3, layout.GroupSize) // 16 KiB shards: "small" has the room
	// poor can pay the fee and one uspr less than the deal's most.
	poorNeeds := termCost(t, shard, 5_000, 12) * 3
	store := &tx.StoreObject{Manifest: twoOne, Months: 12, MaxPricePerGiBMonth: 5_000}
	c.do("owner", &tx.Send{To: c.addr("poor"), Amount: c.feeFor(store) + poorNeeds - 1})

	canonical := rawManifest(1, 100, 2, 2, layout.GroupSize, 4)
	nonMinimal := append(append(slices.Clone(canonical[:33]), 0xe4, 0x00), canonical[34:]...) // size 100 in two bytes

	type refusal struct {
		name string
		who  string
		m    *tx.StoreObject
		code tx.Code
		want []string
	}
	term := func(man []byte) *tx.StoreObject {
		return &tx.StoreObject{Manifest: man, Months: 12, MaxPricePerGiBMonth: 5_000}
	}
	refusals := []refusal{
		{"garbage", "owner", term([]byte("not a manifest at all")), tx.CodeInvalidMsg, []string{"manifest version 110"}},
		{"trailing byte", "owner", term(append(slices.Clone(twoTwo), 0)), tx.CodeInvalidMsg, []string{"manifest", "1 trailing bytes"}},
		{"a root missing", "owner", term(twoTwo[:len(twoTwo)-1]), tx.CodeInvalidMsg, []string{"shard root"}},
		{"version 2", "owner", term(rawManifest(2, 100, 2, 2, layout.GroupSize, 4)), tx.CodeInvalidMsg, []string{"manifest version 2"}},
		{"shard size not the layout's", "owner", term(rawManifest(1, 100, 2, 2, 2*layout.GroupSize, 4)), tx.CodeInvalidMsg,
			[]string{"shard_size 32768 is not a layout of 100 bytes"}},
		{"shard size not a group multiple", "owner", term(rawManifest(1, 100, 2, 2, 1000, 4)), tx.CodeInvalidMsg, []string{"shard_size 1000"}},
		{"non-minimal varint", "owner", term(nonMinimal), tx.CodeInvalidMsg, []string{"non-minimal varint"}},
		{"m = 0", "owner", term(rawManifest(1, 100, 2, 0, layout.GroupSize, 2)), tx.CodeInvalidMsg, []string{"coding m = 0"}},
		{"k over 256", "owner", term(rawManifest(1, 100, 300, 1, layout.GroupSize, 301)), tx.CodeInvalidMsg, []string{"at most 256 shards a stripe"}},
		{"empty object", "owner", term(rawManifest(1, 0, 2, 2, layout.GroupSize, 0)), tx.CodeInvalidMsg, []string{"0 bytes"}},
		{"max price below every offer", "owner", &tx.StoreObject{Manifest: twoOne, Months: 12, MaxPricePerGiBMonth: 1_999}, tx.CodeNotFound,
			[]string{"too few storage providers: 0 active", "at most 0.001999 SPR a GiB-month", "raise the maximum price"}},
		{"too few for 2+2", "owner", term(twoTwo), tx.CodeNotFound,
			[]string{"too few storage providers: 3 active", "a stripe of 2+2 needs 4 distinct ones", "use a coding with fewer shards (--coding)"}},
		{"too few for 2+3 of small shards, which the small offer has room for", "owner", term(small), tx.CodeNotFound,
			[]string{"too few storage providers: 4 active", "16384 bytes free", "a stripe of 2+3 needs 5"}},
		{"permanent, too few at the endowment's rate", "owner", &tx.StoreObject{Manifest: twoTwo}, tx.CodeNotFound,
			[]string{"too few storage providers: 3 active", "endowment's rate", "store for a term instead (--months)"}},
		{"insufficient balance", "poor", store, tx.CodeInsufficientFunds, []string{"needs"}},
	}
	if p := c.app.params(); p.PermanentPrice() < 4_000 {
		t.Fatalf("the permanent case needs the three offers within the endowment's rate: %d", p.PermanentPrice())
	}
	check := func(c *chain, r refusal) {
		t.Helper()
		bal, sup := c.balance(r.who), c.supply()
		fee := c.feeFor(r.m)
		res := c.block(time.Second, c.sign(r.who, r.m))
		tr := res.TxResults[0]
		if tx.Code(tr.Code) != r.code {
			t.Errorf("%s: code %s (%s), want %s", r.name, tx.Code(tr.Code), tr.Log, r.code)
		}
		for _, w := range r.want {
			if !strings.Contains(tr.Log, w) {
				t.Errorf("%s: %q does not say %q", r.name, tr.Log, w)
			}
		}
		if got := c.balance(r.who); got != bal-fee {
			t.Errorf("%s: balance %d, want %d less the fee %d", r.name, got, bal, fee)
		}
		if s := c.supply(); s.Escrow != sup.Escrow || !s.Holds() {
			t.Errorf("%s: escrow %d, was %d", r.name, s.Escrow, sup.Escrow)
		}
		for _, evs := range [][]abci.Event{tr.Events, res.Events} {
			for _, e := range evs {
				if strings.HasPrefix(e.Type, "vault.") {
					t.Errorf("%s: a refused store emitted %s", r.name, e.Type)
				}
			}
		}
		if objs := c.vaultObjects(api.VaultObjectsRequest{Owner: c.addr(r.who)}); len(objs) != 0 {
			t.Errorf("%s: objects stored: %+v", r.name, objs)
		}
	}
	for _, r := range refusals {
		check(c, r)
	}

	// What the mempool refuses before any block: nothing executes.
	for _, bad := range []struct {
		m    *tx.StoreObject
		want string
	}{
		{&tx.StoreObject{Months: 12, MaxPricePerGiBMonth: 1}, "manifest is empty"},
		{&tx.StoreObject{Manifest: twoOne, Months: tx.MaxStorageMonths + 1, MaxPricePerGiBMonth: 1}, "at most 1200"},
		{&tx.StoreObject{Manifest: twoOne, Months: 12}, "max_price_per_gib_month is 0"},
		{&tx.StoreObject{Manifest: twoOne, MaxPricePerGiBMonth: 1}, "on a permanent deal"},
		{&tx.StoreObject{Manifest: twoOne, Months: 1, MaxPricePerGiBMonth: tx.MaxStoragePrice + 1}, "above"},
	} {
		code, log := c.check(c.sign("owner", bad.m))
		c.nonces[c.addr("owner")]--
		if code != tx.CodeInvalidMsg || !strings.Contains(log, bad.want) {
			t.Errorf("CheckTx %+v: %s %q, want naming %q", bad.m, code, log, bad.want)
		}
	}

	// The control: 2+1 fits the three eligible offers, and the draw never reaches the other four.
	c.do("owner", store)
	c.block(time.Second)
	o := c.vaultObject(1)
	if o.State != api.VaultPlaced {
		t.Fatalf("the 2+1 control: %+v", o)
	}
	got := map[string]bool{}
	for _, s := range c.vaultShards(1, 0) {
		got[c.name(s.Provider)] = true
	}
	if len(got) != 3 || !got["s1"] || !got["s2"] || !got["s3"] {
		t.Fatalf("2+1 placed on %v, want s1, s2, s3", got)
	}

	// A chain that prices no permanent storage refuses a permanent deal, however many offers it has.
	p := testParams()
	p.StorageGiBYearCost, p.StorageDeclinePPM = 0, 0
	c0 := newChain(t, p, funded)
	c0.addStorage(
		storageProvider{name: "s1", region: "eu-west", capacity: 1 << 30, price: 1},
		storageProvider{name: "s2", region: "us-east", capacity: 1 << 30, price: 1},
		storageProvider{name: "s3", region: "ap-south", capacity: 1 << 30, price: 1},
	)
	check(c0, refusal{"permanent with no endowment params", "owner", &tx.StoreObject{Manifest: twoOne}, tx.CodeInvalidMsg,
		[]string{"prices no permanent storage", "store for a term (months > 0)"}})
}

// TestVaultPlacement: the draw at the end of the next block gives every shard a provider, never two shards of a
// stripe to one provider, a distinct region to each shard of a stripe when the offers span enough regions; the
// offers' used bytes grow by what they were given; a term deal's escrow drops to what the drawn prices cost and
// the owner gets the rest back, a permanent deal keeps its endowment; the queries and the events agree.
func TestVaultPlacement(t *testing.T) {
	const spr = api.USPR
	funded := map[string]uint64{"owner": 100_000 * spr}
	var ps []storageProvider
	for i := range 10 {
		n := fmt.Sprintf("p%d", i)
		funded[n] = 10_000 * spr
		ps = append(ps, storageProvider{name: n, region: fmt.Sprintf("r%d", i%5), stake: uint64(1+i%3) * 100 * spr,
			capacity: 1 << 30, price: 1_000 + 500*uint64(i)})
	}
	c := newChain(t, testParams(), funded)
	c.addStorage(ps...)
	region := map[string]string{}
	for _, p := range ps {
		region[p.name] = p.region
	}

	const shard = 16 << 20
	const months = 12
	const maxPrice = 6_000                                         // above every offer
	man, enc := vaultManifest(t, "placed", 5*shard+1, 2, 2, shard) // 3 stripes of 2+2
	if man.Stripes != 3 || man.ShardSize != shard {
		t.Fatalf("layout %+v", man.Layout)
	}
	m := &tx.StoreObject{Manifest: enc, Months: months, MaxPricePerGiBMonth: maxPrice}
	bal0, sup0 := c.balance("owner"), c.supply()
	fee := c.feeFor(m)
	most := termCost(t, shard, maxPrice, months) * 12
	res := c.block(time.Second, c.sign("owner", m))
	if r := res.TxResults[0]; r.Code != 0 {
		t.Fatalf("store: %s", r.Log)
	}
	stored := eventsOf(res.TxResults[0].Events, api.EventVaultStored)
	if len(stored) != 1 || stored[0][api.AttrObjectID] != "1" || stored[0][api.AttrOwner] != c.addr("owner").String() ||
		stored[0][api.AttrRoot] != man.Root.String() || stored[0][api.AttrShards] != "12" || stored[0][api.AttrAmount] != fmt.Sprint(most) ||
		stored[0][api.AttrHeight] != fmt.Sprint(c.height+1) || stored[0][api.AttrSize] != fmt.Sprint(5*shard+1) {
		t.Fatalf("vault.stored: %v", stored)
	}
	if len(eventsOf(res.Events, api.EventVaultShardPlaced)) != 0 {
		t.Fatal("placed in the block that stored it: the owner knew the seed")
	}
	o := c.vaultObject(1)
	if o.State != api.VaultPlacing || o.Escrow != most || o.PlaceAt != c.height+1 || c.balance("owner") != bal0-fee-most ||
		c.supply().Escrow != sup0.Escrow+most {
		t.Fatalf("stored: %+v", o)
	}
	for _, s := range c.vaultShards(1, 0) {
		if !s.Provider.IsZero() {
			t.Fatalf("a shard has a provider before the draw: %+v", s)
		}
	}

	res = c.block(time.Second) // the draw
	o = c.vaultObject(1)
	shards := c.vaultShards(1, 5)
	if o.State != api.VaultPlaced || len(shards) != 12 {
		t.Fatalf("after the draw: %+v, %d shards", o, len(shards))
	}
	var cost uint64
	held := map[string]int{}
	placedEvs := eventsOf(res.Events, api.EventVaultShardPlaced)
	if len(placedEvs) != 12 {
		t.Fatalf("%d vault.shard_placed events", len(placedEvs))
	}
	for ord, s := range shards {
		if s.ObjectID != 1 || s.Stripe != ord/4 || s.Index != ord%4 || s.Root != man.ShardRoot(ord/4, ord%4) || s.Provider.IsZero() {
			t.Fatalf("shard %d: %+v", ord, s)
		}
		who := c.name(s.Provider)
		off := c.storageOffer(who)
		if s.PricePerGiBMonth != off.PricePerGiBMonth || s.Region != region[who] || s.HostURI != storageInfo(who, "").HostURI ||
			s.Fingerprint != storageInfo(who, "").CertFingerprint {
			t.Fatalf("shard %d on %s: %+v, offer %+v", ord, who, s, off)
		}
		ev := placedEvs[ord]
		if ev[api.AttrObjectID] != "1" || ev[api.AttrStripe] != fmt.Sprint(s.Stripe) || ev[api.AttrIndex] != fmt.Sprint(s.Index) ||
			ev[api.AttrRoot] != s.Root.String() || ev[api.AttrProvider] != s.Provider.String() || ev[api.AttrPrice] != fmt.Sprint(s.PricePerGiBMonth) {
			t.Fatalf("shard %d: event %v, query %+v", ord, ev, s)
		}
		held[who]++
		cost += termCost(t, shard, s.PricePerGiBMonth, months)
		// What the provider is told to hold: exactly this shard under its root.
		var h []api.VaultShard
		c.query(api.QueryVaultHeld, api.VaultHeldRequest{Provider: s.Provider, Root: s.Root}, &h)
		if len(h) != 1 || h[0] != s {
			t.Fatalf("vault_held of %s, shard %d: %+v, want %+v", who, ord, h, s)
		}
	}
	for st := range 3 {
		provs, regions := map[tx.Address]bool{}, map[string]bool{}
		for _, s := range shards[st*4 : st*4+4] {
			provs[s.Provider], regions[s.Region] = true, true
		}
		// One shard a provider; regions spread softly (a pick in a used region is drawn once more): with these
		// block hashes every stripe spans at least three of the five regions.
		if len(provs) != 4 || len(regions) < 3 {
			t.Fatalf("stripe %d: %d providers in %d regions, want 4 in at least 3: %+v", st, len(provs), len(regions), shards[st*4:st*4+4])
		}
	}
	for _, p := range ps {
		if got := c.storageOffer(p.name).UsedBytes; got != uint64(held[p.name])*shard {
			t.Errorf("%s holds %d shards, offer's used_bytes %d", p.name, held[p.name], got)
		}
		var h []api.VaultShard
		c.query(api.QueryVaultHeld, api.VaultHeldRequest{Provider: c.addr(p.name), Root: man.Root}, &h)
		if len(h) != 0 {
			t.Errorf("vault_held under the object's root (not a shard's): %+v", h)
		}
	}
	if o.Escrow != cost || c.balance("owner") != bal0-fee-cost || c.supply().Escrow != sup0.Escrow+cost || cost >= most {
		t.Fatalf("escrow %d, balance %d: want escrow %d (Σ term cost at the drawn prices), balance %d", o.Escrow, c.balance("owner"), cost, bal0-fee-cost)
	}
	placed := eventsOf(res.Events, api.EventVaultPlaced)
	if len(placed) != 1 || placed[0][api.AttrCost] != fmt.Sprint(cost) || placed[0][api.AttrRefund] != fmt.Sprint(most-cost) ||
		placed[0][api.AttrShards] != "12" || placed[0][api.AttrOwner] != c.addr("owner").String() {
		t.Fatalf("vault.placed: %v (cost %d, refund %d)", placed, cost, most-cost)
	}

	// A permanent deal: the endowment is escrowed and kept; only offers within its rate are drawn.
	man2, enc2 := vaultManifest(t, "forever", 3*shard, 1, 1, shard) // 3 stripes of 1+1
	endow, err := c.app.params().Endowment(6 * shard)
	if err != nil {
		t.Fatal(err)
	}
	bal1 := c.balance("owner")
	m2 := &tx.StoreObject{Manifest: enc2}
	c.do("owner", m2)
	c.block(time.Second)
	o2 := c.vaultObject(2)
	if o2.State != api.VaultPlaced || o2.Escrow != endow || o2.Months != 0 || c.balance("owner") != bal1-c.feeFor(m2)-endow {
		t.Fatalf("permanent: %+v, endowment %d", o2, endow)
	}
	for _, s := range c.vaultShards(2, 0) {
		if s.PricePerGiBMonth > c.app.params().PermanentPrice() {
			t.Fatalf("a permanent shard placed at %d, above the endowment's rate %d", s.PricePerGiBMonth, c.app.params().PermanentPrice())
		}
	}

	// Listed by owner and by root, in id order, paged.
	if objs := c.vaultObjects(api.VaultObjectsRequest{Owner: c.addr("owner"), Limit: 1}); len(objs) != 2 || objs[0].ID != 1 || objs[1].ID != 2 {
		t.Fatalf("objects of the owner: %+v", objs)
	}
	for i, r := range []tx.Hash{man.Root, man2.Root} {
		if objs := c.vaultObjects(api.VaultObjectsRequest{Root: r}); len(objs) != 1 || objs[0].ID != uint64(i+1) || objs[0] != c.vaultObject(uint64(i+1)) {
			t.Fatalf("objects with root %s: %+v", r, objs)
		}
	}
	if objs := c.vaultObjects(api.VaultObjectsRequest{Owner: c.addr("p0")}); len(objs) != 0 {
		t.Fatalf("objects of someone else: %+v", objs)
	}
	for _, bad := range []api.VaultObjectsRequest{{}, {Owner: c.addr("owner"), Root: man.Root}} {
		if msg := c.queryErr(api.QueryVaultObjects, bad); !strings.Contains(msg, "an owner or a root") {
			t.Errorf("vault_objects %+v: %q", bad, msg)
		}
	}
	if msg := c.queryErr(api.QueryVaultObject, api.IDRequest{ID: 3}); !strings.Contains(msg, "not found") {
		t.Errorf("a missing object: %q", msg)
	}
}

// vaultPick is the ledger's draw rule, modelled independently: K+M distinct providers a stripe, each pick by
// stake among the providers in regions the stripe does not use yet while there are any, else among the rest.
func vaultPick(rng *rand.Rand, stakes []uint64, regions []string, n int) []int {
	used, usedRegion := map[int]bool{}, map[string]bool{}
	var total uint64
	for _, st := range stakes {
		total += st
	}
	var out []int
	for range n {
		other := false // a provider not used, in a region the stripe does not use
		for j := range stakes {
			other = other || !used[j] && !usedRegion[regions[j]]
		}
		redrawn := false
		for {
			r := rng.Uint64N(total)
			j := 0
			for ; r >= stakes[j]; j++ {
				r -= stakes[j]
			}
			if used[j] {
				continue
			}
			if usedRegion[regions[j]] && other && !redrawn {
				redrawn = true
				continue
			}
			used[j], usedRegion[regions[j]] = true, true
			out = append(out, j)
			break
		}
	}
	return out
}

// TestVaultSybilsGainByStakeNotAccounts plays an uploader that also runs 20 storage providers, each bonded the
// least a provider can, and undercuts everyone (1 uspr a GiB-month), beside 6 honest providers with 50 or 100
// times that stake each. Over 1,200 stripes of 2+1 (3,600 shards) the uploader's Sybils get the share of shards
// the stake-weighted draw gives them — about their 4.3% of the stake, not their 77% of the accounts — and an
// honest provider with twice the stake holds about twice the shards. The tolerance: each stripe's Sybil count X is a draw
// independent of the others' (SHA-256 of the block hash, object id, stripe and place), so the observed share
// over N stripes has standard deviation sqrt(Var X / N) / 3; Var X and the expected share come from the rule
// itself, simulated 200,000 times; the test allows 5 standard deviations (a correct draw fails it for about
// one seed in 1.7 million), and in any case no more than three times the Sybils' stake share.
//
// The second case plays Sybils that each declare a region of their own, while every honest provider is in one
// region: a strict "unused regions first" rule would give them every shard of a stripe but the first (2 of 3
// here, on 4.3% of the stake). The draw redraws a pick in a used region once only, so declaring regions at most
// about doubles a stake's share: both cases must stay within three times the Sybils' stake share.
func TestVaultSybilsGainByStakeNotAccounts(t *testing.T) {
	const spr = api.USPR
	for _, tc := range []struct {
		name          string
		honestRegion  func(i int) string
		sybilRegion   func(i int) string
		assertByStake bool
	}{
		{"sybils in the honest regions", func(i int) string { return []string{"eu-west", "us-east", "ap-south"}[i%3] },
			func(i int) string { return []string{"eu-west", "us-east", "ap-south"}[i%3] }, true},
		{"sybils in fake regions of their own", func(int) string { return "eu-west" },
			func(i int) string { return fmt.Sprintf("sybil-land-%d", i) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			funded := map[string]uint64{"uploader": 1_000_000 * spr}
			minStake := testParams().RequiredStake(0)
			var ps []storageProvider
			for i := range 6 {
				n := fmt.Sprintf("honest%d", i)
				funded[n] = 101 * minStake
				ps = append(ps, storageProvider{name: n, region: tc.honestRegion(i), stake: 100 * minStake / 2 * uint64(1+i%2),
					capacity: 1 << 40, price: 2_000})
			}
			for i := range 20 {
				n := fmt.Sprintf("sybil%d", i)
				funded[n] = 2 * minStake
				ps = append(ps, storageProvider{name: n, region: tc.sybilRegion(i), capacity: 1 << 40, price: 1})
			}
			c := newChain(t, testParams(), funded)
			c.addStorage(ps...)
			var stakes []uint64
			var regions []string
			index := map[tx.Address]int{}
			var sybilStake, total uint64
			for i, p := range ps {
				stake := c.provider(p.name).Stake
				stakes, regions = append(stakes, stake), append(regions, p.region)
				index[c.addr(p.name)] = i
				total += stake
				if i >= 6 {
					sybilStake += stake
				}
			}
			isSybil := func(j int) bool { return j >= 6 }

			// The rule's expected Sybil share and the variance of a stripe's Sybil count.
			rng := rand.New(rand.NewPCG(1, 2))
			var sum, sumSq float64
			const sims = 200_000
			for range sims {
				x := 0
				for _, j := range vaultPick(rng, stakes, regions, 3) {
					if isSybil(j) {
						x++
					}
				}
				sum, sumSq = sum+float64(x), sumSq+float64(x*x)
			}
			mean := sum / sims
			varX := sumSq/sims - mean*mean
			want := mean / 3

			// 60 objects of 20 stripes, ten stored a block, each block with its own hash.
			const objects, perBlock, stripes = 60, 10, 20
			_, enc := vaultManifest(t, "sybil", stripes*2*layout.GroupSize, 2, 1, layout.GroupSize)
			for b := 0; b <= objects/perBlock; b++ {
				var txs [][]byte
				for range perBlock * min(1, objects/perBlock-b) {
					txs = append(txs, c.sign("uploader", &tx.StoreObject{Manifest: enc, Months: 1, MaxPricePerGiBMonth: 2_000}))
				}
				res := c.blockHash(hashOf(fmt.Sprint(tc.name, "/block/", b)), time.Second, txs...)
				for _, r := range res.TxResults {
					if r.Code != 0 {
						t.Fatalf("store: %s", r.Log)
					}
				}
			}
			var sybilShards, shards int
			perProvider := make([]int, len(ps))
			for id := uint64(1); id <= objects; id++ {
				if o := c.vaultObject(id); o.State != api.VaultPlaced {
					t.Fatalf("object %d: %+v", id, o)
				}
				for _, s := range c.vaultShards(id, api.MaxPageLimit) {
					j := index[s.Provider]
					perProvider[j]++
					shards++
					if isSybil(j) {
						sybilShards++
					}
				}
			}
			n := float64(objects * stripes)
			got := float64(sybilShards) / float64(shards)
			sd := math.Sqrt(varX/n) / 3
			stakeShare, accountShare := float64(sybilStake)/float64(total), 20.0/26
			t.Logf("Sybils: %.1f%% of the stake, %.0f%% of the accounts; %d of %d shards = %.2f%% (the rule: %.2f%% ± %.2f%%); shards per provider %v",
				100*stakeShare, 100*accountShare, sybilShards, shards, 100*got, 100*want, 100*sd, perProvider)
			if math.Abs(got-want) > 5*sd {
				t.Fatalf("the Sybils' share %.4f is not the draw rule's %.4f ± 5×%.4f", got, want, sd)
			}
			if got > 3*stakeShare {
				t.Fatalf("the Sybils got %.2f%% of the shards on %.2f%% of the stake", 100*got, 100*stakeShare)
			}
			if tc.assertByStake {
				// Stake, not accounts: an honest provider with twice the stake holds about twice the shards.
				var one, two int
				for i := range 6 {
					if i%2 == 0 {
						one += perProvider[i]
					} else {
						two += perProvider[i]
					}
				}
				if r := float64(two) / float64(one); r < 1.6 || r > 2.5 {
					t.Fatalf("twice the stake holds %.2f times the shards (%d vs %d)", r, two, one)
				}
			}
		})
	}
}

// TestVaultDrawSeededByNextBlock: the uploader cannot choose where its shards go. The same manifest stored in the
// same state is placed differently when the block after the store has another hash, identically when it has the
// same one — whatever the hash of the block the store was in (all the uploader could know when it signed).
func TestVaultDrawSeededByNextBlock(t *testing.T) {
	const spr = api.USPR
	placement := func(storeHash, drawHash tx.Hash) []string {
		funded := map[string]uint64{"owner": 10_000 * spr}
		var ps []storageProvider
		for i := range 12 {
			n := fmt.Sprintf("p%d", i)
			funded[n] = 1_000 * spr
			ps = append(ps, storageProvider{name: n, region: fmt.Sprintf("r%d", i%6), capacity: 1 << 30, price: 1_000})
		}
		c := newChain(t, testParams(), funded)
		c.addStorage(ps...)
		_, enc := vaultManifest(t, "seeded", 8*layout.GroupSize, 2, 2, layout.GroupSize) // 4 stripes of 2+2
		if r := c.blockHash(storeHash, time.Second, c.sign("owner", &tx.StoreObject{Manifest: enc, Months: 1, MaxPricePerGiBMonth: 1_000})).TxResults[0]; r.Code != 0 {
			t.Fatal(r.Log)
		}
		c.blockHash(drawHash, time.Second)
		var out []string
		for _, s := range c.vaultShards(1, 0) {
			out = append(out, c.name(s.Provider))
		}
		if len(out) != 16 {
			t.Fatalf("%d shards placed", len(out))
		}
		return out
	}
	a := placement(hashOf("store"), hashOf("draw A"))
	b := placement(hashOf("store"), hashOf("draw B"))
	a2 := placement(hashOf("another store block"), hashOf("draw A"))
	t.Logf("draw A: %v\ndraw B: %v", a, b)
	if slices.Equal(a, b) {
		t.Fatalf("two next-block hashes, one placement: %v", a)
	}
	if !slices.Equal(a, a2) {
		t.Fatalf("the same next-block hash placed differently after another store block:\n%v\n%v", a, a2)
	}
}

// TestVaultOffersGoneBeforeTheDraw: the race the draw a block later opens. Between a StoreObject and its draw,
// offers are withdrawn, priced out, jailed or shrunk below what the object needs: the draw then places nothing,
// emits vault.unplaced naming why, refunds the whole escrow and removes the object and its indexes; no offer's
// used bytes move (not even for the stripes that did fit), and the supply invariant holds (the chain checks it
// after every block).
func TestVaultOffersGoneBeforeTheDraw(t *testing.T) {
	const spr = api.USPR
	const shard = 1 << 20
	for _, tc := range []struct {
		name    string
		stripes int
		between func(c *chain) *abci.ResponseFinalizeBlock // commits the draw block
		reason  string
	}{
		{"withdrawn", 1, func(c *chain) *abci.ResponseFinalizeBlock {
			return c.block(time.Second, c.sign("p1", &tx.OfferStorage{}))
		}, "stripe 0: only 3 storage providers had room"},
		{"priced out", 1, func(c *chain) *abci.ResponseFinalizeBlock {
			return c.block(time.Second, c.sign("p2", &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 5_001}))
		}, "stripe 0: only 3"},
		{"jailed", 1, func(c *chain) *abci.ResponseFinalizeBlock {
			var res *abci.ResponseFinalizeBlock
			c.onBlock = func(_ [][]byte, r *abci.ResponseFinalizeBlock) { res = r }
			c.mutate(func(x *ctx) {
				p, _ := x.Provider(c.addr("p3"))
				p.Status = api.ProviderJailed
				x.SetProvider(p)
			})
			c.onBlock = nil
			return res
		}, "stripe 0: only 3"},
		{"shrunk: the first stripe fits, the second does not", 2, func(c *chain) *abci.ResponseFinalizeBlock {
			return c.block(time.Second, c.sign("p0", &tx.OfferStorage{CapacityBytes: shard, PricePerGiBMonth: 1_000}))
		}, "stripe 1: only 3"},
		{"withdrawn in the store's own block", 1, nil, "stripe 0: only 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			funded := map[string]uint64{"owner": 10_000 * spr}
			var ps []storageProvider
			for i := range 4 {
				n := fmt.Sprintf("p%d", i)
				funded[n] = 1_000 * spr
				ps = append(ps, storageProvider{name: n, region: fmt.Sprintf("r%d", i), capacity: 1 << 30, price: 1_000})
			}
			c := newChain(t, testParams(), funded)
			c.addStorage(ps...)
			man, enc := vaultManifest(t, tc.name, uint64(tc.stripes)*2*shard, 2, 2, shard)
			m := &tx.StoreObject{Manifest: enc, Months: 6, MaxPricePerGiBMonth: 5_000}
			bal, sup := c.balance("owner"), c.supply()
			most := termCost(t, shard, 5_000, 6) * uint64(4*tc.stripes)
			var res *abci.ResponseFinalizeBlock
			if tc.between == nil {
				res = c.block(time.Second, c.sign("owner", m), c.sign("p1", &tx.OfferStorage{}))
				if res.TxResults[0].Code != 0 || res.TxResults[1].Code != 0 {
					t.Fatalf("%s / %s", res.TxResults[0].Log, res.TxResults[1].Log)
				}
				if c.vaultObject(1).Escrow != most || c.supply().Escrow != sup.Escrow+most {
					t.Fatal("not escrowed")
				}
				res = c.block(time.Second)
			} else {
				c.do("owner", m)
				if c.vaultObject(1).Escrow != most || c.supply().Escrow != sup.Escrow+most {
					t.Fatal("not escrowed")
				}
				res = tc.between(c)
			}
			un := eventsOf(res.Events, api.EventVaultUnplaced)
			if len(un) != 1 || un[0][api.AttrObjectID] != "1" || un[0][api.AttrRefund] != fmt.Sprint(most) ||
				un[0][api.AttrOwner] != c.addr("owner").String() || !strings.Contains(un[0][api.AttrReason], tc.reason) {
				t.Fatalf("vault.unplaced: %v, want a refund of %d naming %q", un, most, tc.reason)
			}
			if n := len(eventsOf(res.Events, api.EventVaultShardPlaced)) + len(eventsOf(res.Events, api.EventVaultPlaced)); n != 0 {
				t.Fatalf("%d placement events for an object that was not placed", n)
			}
			if got := c.balance("owner"); got != bal-c.feeFor(m) {
				t.Fatalf("balance %d, want %d: the escrow refunded whole, the fee paid", got, bal-c.feeFor(m))
			}
			if s := c.supply(); s.Escrow != sup.Escrow || !s.Holds() {
				t.Fatalf("escrow %d, was %d", s.Escrow, sup.Escrow)
			}
			if msg := c.queryErr(api.QueryVaultObject, api.IDRequest{ID: 1}); !strings.Contains(msg, "not found") {
				t.Fatalf("the unplaced object: %q", msg)
			}
			if msg := c.queryErr(api.QueryVaultShards, api.VaultShardsRequest{ID: 1}); !strings.Contains(msg, "not found") {
				t.Fatalf("the unplaced object's shards: %q", msg)
			}
			if objs := c.vaultObjects(api.VaultObjectsRequest{Owner: c.addr("owner")}); len(objs) != 0 {
				t.Fatalf("listed by owner: %+v", objs)
			}
			if objs := c.vaultObjects(api.VaultObjectsRequest{Root: man.Root}); len(objs) != 0 {
				t.Fatalf("listed by root: %+v", objs)
			}
			var offers api.List[api.StorageOfferView]
			c.query(api.QueryStorageOffers, api.ListRequest{}, &offers)
			for _, o := range offers.Items {
				if o.UsedBytes != 0 {
					t.Fatalf("%s's used bytes moved: %+v", c.name(o.Provider), o)
				}
			}
			for _, p := range ps {
				var h []api.VaultShard
				for _, stripe := range man.Shards {
					for _, r := range stripe {
						c.query(api.QueryVaultHeld, api.VaultHeldRequest{Provider: c.addr(p.name), Root: r}, &h)
						if len(h) != 0 {
							t.Fatalf("%s told to hold %+v", p.name, h)
						}
					}
				}
			}
			// The same object stored again once the offers are back is placed: nothing was left half done.
			c.block(time.Second, c.sign("p0", &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 1_000}),
				c.sign("p1", &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 1_000}),
				c.sign("p2", &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 1_000}))
			c.mutate(func(x *ctx) {
				p, _ := x.Provider(c.addr("p3"))
				p.Status = api.ProviderActive
				x.SetProvider(p)
			})
			c.do("owner", m)
			c.block(time.Second)
			if o := c.vaultObject(2); o.State != api.VaultPlaced {
				t.Fatalf("stored again: %+v", o)
			}
		})
	}
}

// TestVaultObjectsCompeteForRoom: two objects stored in one block each pass the store's check (four offers with
// room for a shard each), but only the first drawn fits: the second is unplaced and refunded whole, and the
// offers are full, not over-full.
func TestVaultObjectsCompeteForRoom(t *testing.T) {
	const spr = api.USPR
	const shard = 1 << 20
	funded := map[string]uint64{"a": 10_000 * spr, "b": 10_000 * spr}
	var ps []storageProvider
	for i := range 4 {
		n := fmt.Sprintf("p%d", i)
		funded[n] = 1_000 * spr
		ps = append(ps, storageProvider{name: n, region: fmt.Sprintf("r%d", i), capacity: shard, price: 1_000})
	}
	c := newChain(t, testParams(), funded)
	c.addStorage(ps...)
	_, ea := vaultManifest(t, "a", 2*shard, 2, 2, shard)
	_, eb := vaultManifest(t, "b", 2*shard, 2, 2, shard)
	ma := &tx.StoreObject{Manifest: ea, Months: 1, MaxPricePerGiBMonth: 1_000}
	mb := &tx.StoreObject{Manifest: eb, Months: 1, MaxPricePerGiBMonth: 1_000}
	balB, sup := c.balance("b"), c.supply()
	res := c.block(time.Second, c.sign("a", ma), c.sign("b", mb))
	if res.TxResults[0].Code != 0 || res.TxResults[1].Code != 0 {
		t.Fatalf("stores: %q, %q", res.TxResults[0].Log, res.TxResults[1].Log)
	}
	res = c.block(time.Second)
	if un := eventsOf(res.Events, api.EventVaultUnplaced); len(un) != 1 || un[0][api.AttrObjectID] != "2" {
		t.Fatalf("vault.unplaced: %v", un)
	}
	if o := c.vaultObject(1); o.State != api.VaultPlaced || o.Escrow != 4*termCost(t, shard, 1_000, 1) {
		t.Fatalf("the first object: %+v", o)
	}
	if c.balance("b") != balB-c.feeFor(mb) || c.supply().Escrow != sup.Escrow+4*termCost(t, shard, 1_000, 1) {
		t.Fatal("the second object's escrow was not refunded whole")
	}
	for _, p := range ps {
		if o := c.storageOffer(p.name); o.UsedBytes != shard || o.FreeBytes() != 0 {
			t.Fatalf("%s: %+v", p.name, o)
		}
	}
	// Full offers no longer count: a third store is refused at once.
	r := c.block(time.Second, c.sign("b", mb)).TxResults[0]
	if tx.Code(r.Code) != tx.CodeNotFound || !strings.Contains(r.Log, "0 active") {
		t.Fatalf("a store onto full offers: %s %q", tx.Code(r.Code), r.Log)
	}
}

// TestVaultRootIsNotAnotherIndex: an object's root is whatever its uploader writes in the manifest, and it starts
// the key of the by-root index. Stored under a prefix another index uses, a chosen root forges that index's
// entries: with the reveal deadlines' prefix, a root of 8 zero bytes then order id 1 reads as order 1's reveal
// deadline at height 0, and the end of the block it is stored in closes a reveal phase that is not open — a panic on every node, the
// chain halted for the price of a StoreObject (a root naming a real order instead would close its reveal phase
// early, forfeiting its providers' pay). The object must be stored, placed and listed like any other, and the
// chain go on.
func TestVaultRootIsNotAnotherIndex(t *testing.T) {
	const spr = api.USPR
	funded := map[string]uint64{"owner": 10_000 * spr, "p0": 1_000 * spr, "p1": 1_000 * spr}
	c := newChain(t, testParams(), funded)
	c.addStorage(storageProvider{name: "p0", region: "r0", capacity: 1 << 30, price: 1_000},
		storageProvider{name: "p1", region: "r1", capacity: 1 << 30, price: 1_000})
	// Height 0 and order 1; the highest height.
	low := tx.Hash{15: 1, 31: 7}
	for i, root := range []tx.Hash{low, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		o := &layout.Object{Root: root}
		l, err := layout.LayoutOf(100, layout.Coding{K: 1, M: 1, ShardSize: layout.GroupSize})
		if err != nil {
			t.Fatal(err)
		}
		o.Layout, o.Shards = l, [][]tx.Hash{{hashOf(fmt.Sprint("a", i)), hashOf(fmt.Sprint("b", i))}}
		enc, err := o.Encode()
		if err != nil {
			t.Fatal(err)
		}
		c.do("owner", &tx.StoreObject{Manifest: enc, Months: 1, MaxPricePerGiBMonth: 1_000}) // fails the test if the block panics
		c.block(time.Second)
		id := uint64(i + 1)
		if got := c.vaultObject(id); got.State != api.VaultPlaced || got.Root != root {
			t.Fatalf("object %d with root %s: %+v", id, root, got)
		}
		if objs := c.vaultObjects(api.VaultObjectsRequest{Root: root}); len(objs) != 1 || objs[0].ID != id {
			t.Fatalf("objects with root %s: %+v", root, objs)
		}
	}
}

// TestSchemaPrefixesAreDistinct: no key prefix of the ledger's state (schema's P… and Key… constants) is a prefix
// of another — else iterating one index walks the other's keys (see TestVaultRootIsNotAnotherIndex).
func TestSchemaPrefixesAreDistinct(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("schema", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	prefixes := map[string]string{} // value -> name
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !strings.HasPrefix(n.Name, "P") && !strings.HasPrefix(n.Name, "Key") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					if other, dup := prefixes[v]; dup {
						t.Errorf("%s and %s are both %q", other, n.Name, v)
					}
					prefixes[v] = n.Name
				}
			}
		}
	}
	if len(prefixes) < 30 {
		t.Fatalf("found only %d key prefixes: %v", len(prefixes), prefixes)
	}
	for a, an := range prefixes {
		for b, bn := range prefixes {
			if a != b && strings.HasPrefix(b, a) {
				t.Errorf("%s (%q) is a prefix of %s (%q)", an, a, bn, b)
			}
		}
	}
}

// TestVaultTermEnds: a term deal ends at its placement's block time plus its months. Not a millisecond before;
// then — on a chain without auditing, where no proofs pay by the epoch (TestVaultProofs has the audited chain) —
// each shard's provider is paid the term at the price it was placed at — the escrow, exactly, with nothing
// left in the supply's escrow — the offers' room is released for new objects, and the object and its shards
// leave the state (its providers may delete them). A permanent deal does not end.
func TestVaultTermEnds(t *testing.T) {
	const spr = api.USPR
	funded := map[string]uint64{"owner": 100_000 * spr}
	var ps []storageProvider
	for i := range 4 {
		n := fmt.Sprintf("p%d", i)
		funded[n] = 10_000 * spr
		ps = append(ps, storageProvider{name: n, region: fmt.Sprintf("r%d", i), capacity: 1 << 30, price: 1_000 + 1_000*uint64(i)})
	}
	params := testParams()
	params.EpochBlocks = 0 // no auditing: the escrow stays in the object and pays at the end, as placed
	c := newChain(t, params, funded)
	c.addStorage(ps...)
	const shard = 16 << 20
	_, enc := vaultManifest(t, "term", 3*shard, 2, 2, shard) // 2 stripes of 2+2
	_, perm := vaultManifest(t, "forever", shard, 1, 1, shard)
	for _, m := range []*tx.StoreObject{{Manifest: enc, Months: 2, MaxPricePerGiBMonth: 5_000}, {Manifest: perm}} {
		if r := c.block(time.Second, c.sign("owner", m)).TxResults[0]; r.Code != 0 {
			t.Fatal(r.Log)
		}
	}
	c.block(time.Second) // the second object's draw
	o := c.vaultObject(1)
	placedAt := c.now.Add(-time.Second) // the first object's draw was a block earlier
	if o.State != api.VaultPlaced || o.EndMs != placedAt.UnixMilli()+2*api.MonthMs {
		t.Fatalf("placed: %+v (draw at %d)", o, placedAt.UnixMilli())
	}
	owed := map[string]uint64{}
	held := map[string]uint64{}
	for _, s := range c.vaultShards(1, 0) {
		owed[c.name(s.Provider)] += termCost(t, shard, s.PricePerGiBMonth, 2)
	}
	bal := map[string]uint64{}
	for _, p := range ps {
		bal[p.name] = c.balance(p.name)
		held[p.name] = c.storageOffer(p.name).UsedBytes
	}
	escrow := c.supply().Escrow

	// A block just before the end: nothing happens.
	c.block(time.Until(time.UnixMilli(o.EndMs)) - time.Until(c.now) - time.Millisecond)
	if c.vaultObject(1).State != api.VaultPlaced {
		t.Fatal("the deal ended before its term")
	}
	endedBefore := eventCounts()[api.EventVaultEnded]
	res := c.block(time.Millisecond)
	if eventCounts()[api.EventVaultEnded] != endedBefore+1 {
		t.Fatal("vault.ended was not read by its typed parser (checkEvents)")
	}
	ended := eventsOf(res.Events, api.EventVaultEnded)
	if len(ended) != 1 || ended[0][api.AttrObjectID] != "1" || ended[0][api.AttrPaid] != fmt.Sprint(o.Escrow) {
		t.Fatalf("vault.ended: %v", ended)
	}
	var paidSum uint64
	for _, ev := range eventsOf(res.Events, api.EventVaultPaid) {
		v, err := strconv.ParseUint(ev[api.AttrAmount], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		paidSum += v
	}
	if paidSum != o.Escrow || len(eventsOf(res.Events, api.EventVaultPaid)) != len(owed) {
		t.Fatalf("vault.paid: %v, escrow %d", eventsOf(res.Events, api.EventVaultPaid), o.Escrow)
	}
	for _, p := range ps {
		if got := c.balance(p.name) - bal[p.name]; got != owed[p.name] {
			t.Errorf("%s paid %d, owed %d", p.name, got, owed[p.name])
		}
	}
	if got := c.supply().Escrow; got != escrow-o.Escrow {
		t.Fatalf("supply escrow %d after the end, want %d", got, escrow-o.Escrow)
	}
	var released uint64
	for _, p := range ps {
		released += held[p.name] - c.storageOffer(p.name).UsedBytes
	}
	if released != 8*shard {
		t.Fatalf("the offers released %d bytes, the object held %d", released, 8*shard)
	}
	if got := c.vaultObjects(api.VaultObjectsRequest{Root: c.vaultObject(2).Root}); len(got) != 1 {
		t.Fatalf("the permanent object: %+v", got)
	}
	data, _ := json.Marshal(api.IDRequest{ID: 1})
	if q, err := c.app.Query(context.Background(), &abci.RequestQuery{Path: api.QueryVaultObject, Data: data}); err != nil || q.Code == 0 {
		t.Fatalf("the ended object is still stored: %v %s", err, q.Value)
	}
	for _, s := range c.vaultShards(2, 0) { // the permanent object's shards only are held
		var h []api.VaultShard
		c.query(api.QueryVaultHeld, api.VaultHeldRequest{Provider: s.Provider, Root: s.Root}, &h)
		if len(h) != 1 || h[0].ObjectID != 2 {
			t.Fatalf("held after the end: %+v", h)
		}
	}
	// Much later, the permanent deal is still there.
	c.block(100 * 30 * 24 * time.Hour)
	if c.vaultObject(2).State != api.VaultPlaced {
		t.Fatal("a permanent deal ended")
	}
}
