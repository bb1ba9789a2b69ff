package ledger

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/storage"
	"github.com/sparenet/spare/ledger/tx"
)

// tallyOutcome is what the tallies of epochs 1-3 decided, as TestVaultTallySpansBlocks compares it: their events
// in order (a repair's epoch left out: it is the epoch its draw ran in), every storage provider's balance, stake
// and Vault record, the pool, every shard's provider, price and failure streak, and the tallies' records.
type tallyOutcome struct {
	events    []string
	providers []string
	pool      api.VaultPool
	shards    []string
	epochs    []string
}

// TestVaultTallySpansBlocks plays the same storage proofs twice — 14 objects on six providers; in epoch 1 two
// thirds of the auditors name 20 shards failed and the third names 10 others (not enough to fail them, enough to
// leave them unpaid); in epoch 2 two thirds name 8 of the 20 again (lost, and redrawn) and 2 more; epoch 3 decided
// with nothing failed — once with the tally's whole budget, where each tally finishes in its block, and once with
// a budget that lets each block do one piece of work, so that each tally runs for dozens of blocks, across
// epochs, the later ones waiting behind it. The outcome is the same to the uspr, event for event: where the
// blocks cut a tally changes when its work is recorded, never what it decides. And a tally never leaves its
// state behind.
func TestVaultTallySpansBlocks(t *testing.T) {
	whole := playTally(t, 0)
	spread := playTally(t, 1)
	if len(whole.events) == 0 || !slices.ContainsFunc(whole.events, func(e string) bool { return strings.HasPrefix(e, api.EventVaultShardLost) }) {
		t.Fatalf("the scenario lost no shard: %v", whole.events)
	}
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"events", spread.events, whole.events},
		{"providers", spread.providers, whole.providers},
		{"shards", spread.shards, whole.shards},
		{"epochs", spread.epochs, whole.epochs},
	} {
		if !slices.Equal(c.got, c.want) {
			for i := range max(len(c.got), len(c.want)) {
				var g, w string
				if i < len(c.got) {
					g = c.got[i]
				}
				if i < len(c.want) {
					w = c.want[i]
				}
				if g != w {
					t.Fatalf("%s differ at %d of %d/%d:\n spread: %s\n whole:  %s", c.name, i, len(c.got), len(c.want), g, w)
				}
			}
		}
	}
	if spread.pool != whole.pool {
		t.Fatalf("pool %+v, in one block %+v", spread.pool, whole.pool)
	}
}

func sortedRefs(refs []tx.ShardRef) []tx.ShardRef {
	refs = slices.Clone(refs)
	slices.SortFunc(refs, tx.ShardRef.Compare)
	return refs
}

// playTally plays TestVaultTallySpansBlocks' scenario with the tally's budget (0: the app's) and returns the
// outcome once epoch 3 is tallied.
func playTally(t *testing.T, budget uint64) tallyOutcome {
	testTallyBudget = budget
	t.Cleanup(func() { testTallyBudget = 0 })
	c := newProofChain(t)
	var out tallyOutcome
	spans, payCut := 0, false
	c.onBlock = func(_ [][]byte, res *abci.ResponseFinalizeBlock) {
		for _, ev := range res.Events {
			switch ev.Type {
			case api.EventVaultProofFailed, api.EventVaultEpochPaid, api.EventVaultShardLost, api.EventVaultRepair, api.EventVaultRepaired, api.EventVaultTallied:
			default:
				continue
			}
			var attrs []string
			later := false // of a tally after epoch 3's (done at once, in the spread run, in the block 3's ends)
			for _, a := range ev.Attributes {
				if ev.Type == api.EventVaultRepair && a.Key == api.AttrEpoch {
					continue
				}
				later = later || a.Key == api.AttrEpoch && a.Value > "3" && len(a.Value) == 1 || a.Key == api.AttrEpoch && len(a.Value) > 1
				attrs = append(attrs, a.Key+"="+a.Value)
			}
			if !later {
				out.events = append(out.events, ev.Type+" "+strings.Join(attrs, " "))
			}
		}
		kv, _ := c.app.store.View()
		if b, ok := kv.Get(schema.KeyVaultTally); ok {
			spans++
			if rec, err := schema.DecVaultTally(b); err == nil && rec.Phase == schema.TallyPay && rec.Cursor != nil {
				payCut = true
			}
		}
	}
	const shard = 64 << 10
	var stores []tx.Msg
	for i := range 12 {
		_, m := vaultManifest(t, fmt.Sprint("term", i), 2*shard, 2, 2, shard)
		stores = append(stores, &tx.StoreObject{Manifest: m, Months: 12, MaxPricePerGiBMonth: 200_000_000})
	}
	for i := range 2 {
		_, m := vaultManifest(t, fmt.Sprint("perm", i), shard, 1, 1, shard)
		stores = append(stores, &tx.StoreObject{Manifest: m})
	}
	var txs [][]byte
	for _, m := range stores {
		txs = append(txs, c.sign("owner", m))
	}
	for _, r := range c.block(time.Second, txs...).TxResults { // height 4
		if r.Code != 0 {
			t.Fatal(r.Log)
		}
	}
	c.block(time.Second) // 5: the draws
	mine := map[string][]tx.ShardRef{}
	var all []tx.ShardRef
	for id := uint64(1); id <= 14; id++ {
		o := c.vaultObject(id)
		if o.State != api.VaultPlaced {
			t.Fatalf("object %d: %+v", id, o)
		}
		for _, s := range c.vaultShards(id, 0) {
			ref := tx.ShardRef{Object: id, Ordinal: uint32(s.Stripe*(o.K+o.M) + s.Index)}
			mine[c.name(s.Provider)] = append(mine[c.name(s.Provider)], ref)
			all = append(all, ref)
		}
	}
	var holds [][]byte
	for _, p := range c.provs {
		if refs := mine[p.name]; len(refs) > 0 {
			holds = append(holds, c.sign(p.name, &tx.HoldShards{Shards: refs}))
		}
	}
	for _, r := range c.block(time.Second, holds...).TxResults {
		if r.Code != 0 {
			t.Fatal(r.Log)
		}
	}
	attest := func(a string, e uint64, refs []tx.ShardRef) {
		refs = slices.Clone(refs)
		slices.SortFunc(refs, cmpRef)
		c.do(a, &tx.AttestStorage{Epoch: e, Failed: refs})
	}
	// Epoch 1: 20 shards failed by two thirds; 10 others named by the third auditor alone (and 5 of the 20).
	c.toHeight(c.epochStart(1))
	f1, m1 := all[:20], append(slices.Clone(all[15:20]), all[30:40]...)
	// Each shard an auditor names costs it the tally's work on it: a named shard more, GasTallyVote more.
	one := c.gasFor("a1", &tx.AttestStorage{Epoch: 1, Failed: sortedRefs(f1[:1])})
	two := c.gasFor("a1", &tx.AttestStorage{Epoch: 1, Failed: sortedRefs(f1[:2])})
	if two < one+storage.GasTallyVote {
		t.Fatalf("naming a second shard costs %d gas more, want at least %d", two-one, storage.GasTallyVote)
	}
	attest("a1", 1, f1)
	attest("a2", 1, f1)
	attest("a3", 1, m1)
	// Epoch 2: 8 of them again (lost), and 2 more; the third auditor names only 3 of them.
	c.toHeight(c.epochStart(2))
	f2 := append(slices.Clone(all[:8]), all[40:42]...)
	attest("a1", 2, f2)
	attest("a2", 2, f2)
	attest("a3", 2, all[:3])
	// Epoch 3: decided, nothing failed.
	c.toHeight(c.epochStart(3))
	attest("a1", 3, nil)
	attest("a2", 3, nil)
	for !c.vaultEpoch(3).Tallied {
		if c.height > 600 {
			t.Fatalf("epoch 3 not tallied by height %d", c.height)
		}
		c.block(time.Second)
	}
	if budget != 0 && spans < 30 || budget == 0 && spans != 0 {
		t.Fatalf("budget %d: the tally was in progress at the end of %d blocks", budget, spans)
	}
	if budget != 0 && !payCut { // the pay pass too goes on in the next block, from the last provider it paid
		t.Fatal("no block ended in the middle of a pay pass")
	}
	for _, p := range c.provs {
		var vp api.VaultProvider
		c.query(api.QueryVaultProvider, api.AddressRequest{Address: c.addr(p.name)}, &vp)
		out.providers = append(out.providers, fmt.Sprintf("%s balance %d stake %d %+v", p.name, c.balance(p.name), c.provider(p.name).Stake, vp))
	}
	c.query(api.QueryVaultPool, nil, &out.pool)
	for id := uint64(1); id <= 14; id++ {
		for _, s := range c.vaultShards(id, 0) {
			who := "none"
			if !s.Provider.IsZero() {
				who = c.name(s.Provider)
			}
			out.shards = append(out.shards, fmt.Sprintf("%d/%d/%d %s price %d lost %v failures %d last %d", id, s.Stripe, s.Index,
				who, s.PricePerGiBMonth, s.Lost, s.Failures, s.LastFailed))
		}
	}
	for e := uint64(1); e <= 3; e++ {
		v := c.vaultEpoch(e)
		out.epochs = append(out.epochs, fmt.Sprintf("%d decided %v failed %d lost %d paid %d", e, v.Decided, v.Failed, v.Lost, v.Paid))
	}
	for _, p := range []string{schema.PVaultUnpaid, schema.PVaultLostQ, schema.PVaultNotPassed, schema.IDKey(schema.PVaultFailVote, 1), schema.IDKey(schema.PVaultFailVote, 2)} {
		kv, _ := c.app.store.View()
		kv.Iterate(p, schema.PrefixEnd(p), func(key string, _ []byte) bool {
			t.Errorf("budget %d: %q left in the state after the tallies", budget, key)
			return false
		})
	}
	return out
}
