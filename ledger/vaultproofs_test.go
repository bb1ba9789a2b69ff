package ledger

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

// proofChain is an audited chain (epochs of 10 blocks, three auditors of weight 1) with six storage providers
// and, stored at its first blocks, a term object (one stripe of 2+2) and a permanent one (1+1).
type proofChain struct {
	*chain
	epochBlocks int64
	provs       []storageProvider
}

func newProofChain(t *testing.T) *proofChain {
	const spr = api.USPR
	funded := map[string]uint64{"owner": 100_000 * spr, "a1": 10 * spr, "a2": 10 * spr, "a3": 10 * spr}
	var ps []storageProvider
	for i := range 6 {
		n := fmt.Sprintf("p%d", i)
		funded[n] = 10_000 * spr
		ps = append(ps, storageProvider{name: n, region: fmt.Sprintf("r%d", i), capacity: 1 << 30, price: 100_000_000 + 1_000_000*uint64(i)})
	}
	params := testParams()
	params.EpochBlocks = 10
	params.StorageGiBYearCost = 12 * 200_000_000 // permanent shards placed at up to 200 SPR a GiB-month: amounts large enough to check
	c := &proofChain{chain: newChainWith(t, params, funded, map[string]uint64{"a1": 1, "a2": 1, "a3": 1}), epochBlocks: 10, provs: ps}
	c.addStorage(ps...) // heights 1-3
	return c
}

// toHeight commits empty blocks (an hour apart) until height h is committed.
func (c *proofChain) toHeight(h int64) {
	for c.height < h {
		c.block(time.Hour)
	}
}

// epochStart is the first height of epoch e.
func (c *proofChain) epochStart(e uint64) int64 { return int64(e)*c.epochBlocks + 1 }

func (c *proofChain) vaultEpoch(e uint64) api.VaultEpoch {
	var v api.VaultEpoch
	c.query(api.QueryVaultEpoch, api.EpochRequest{Epoch: &e}, &v)
	return v
}

func (c *proofChain) challenges(e uint64) []api.VaultChallenge {
	var out []api.VaultChallenge
	r := api.VaultChallengesRequest{Epoch: e, Limit: 3}
	for {
		var page api.List[api.VaultChallenge]
		c.query(api.QueryVaultChallenges, r, &page)
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		var id uint64
		var ord uint32
		if _, err := fmt.Sscanf(page.Next, "%d:%d", &id, &ord); err != nil {
			c.t.Fatalf("next %q: %v", page.Next, err)
		}
		r.HasAfter, r.AfterObject, r.AfterOrdinal = true, id, ord
	}
}

func amountOf(t *testing.T, ev map[string]string) uint64 {
	v, err := strconv.ParseUint(ev[api.AttrAmount], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVaultProofs plays the Vault's storage proofs on an audited chain: the auditors' beacon makes each epoch's
// seed (a wrong or repeated reveal refused); every placed shard is challenged from the epoch after its draw;
// providers are paid every epoch from the pool, exactly rate × epoch time, for the shards that did not fail; a
// shard two thirds of the auditors name failed is not paid and slashes its provider; failed two epochs in a row
// it is lost, drawn onto a provider holding no other shard of its stripe, and that provider is paid the repair
// once its first proof passes; an epoch the auditors did not decide pays nobody. The supply invariant (the pool
// counted in the escrow) is checked after every block by the harness.
func TestVaultProofs(t *testing.T) {
	c := newProofChain(t)
	const shard = 64 << 10
	_, term := vaultManifest(t, "term", 2*shard, 2, 2, shard)                                                                     // one stripe of 2+2
	_, perm := vaultManifest(t, "perm", shard, 1, 1, shard)                                                                       // one stripe of 1+1
	c.do("owner", &tx.StoreObject{Manifest: term, Months: 12, MaxPricePerGiBMonth: 200_000_000}, &tx.StoreObject{Manifest: perm}) // height 4
	c.block(time.Second)                                                                                                          // 5: the draws
	for _, id := range []uint64{1, 2} {
		if o := c.vaultObject(id); o.State != api.VaultPlaced || !o.Pooled {
			t.Fatalf("object %d: %+v", id, o)
		}
	}
	var pool api.VaultPool
	c.query(api.QueryVaultPool, nil, &pool)
	if pool.Balance != c.vaultObject(1).Escrow+c.vaultObject(2).Escrow || pool.TermBytes != 0 || pool.PermBytes != 0 {
		t.Fatalf("pool after the draws (nothing held yet): %+v", pool)
	}
	// The providers declare the shards they received (each its own; a shard placed elsewhere and a repeat are
	// passed over): challenged and paid from the next epoch, never before — an owner who never uploads cannot
	// have an honest provider slashed.
	mine := map[string][]tx.ShardRef{}
	for _, id := range []uint64{1, 2} {
		for _, s := range c.vaultShards(id, 0) {
			o := c.vaultObject(id)
			n := c.name(s.Provider)
			mine[n] = append(mine[n], tx.ShardRef{Object: id, Ordinal: uint32(s.Stripe*(o.K+o.M) + s.Index)})
		}
	}
	var someone string
	for n := range mine {
		someone = n
	}
	c.fail(tx.CodeNotProvider, "owner", &tx.HoldShards{Shards: mine[someone]})
	for range 2 { // the second time: counted once
		txs := [][]byte{c.sign("p5", &tx.HoldShards{Shards: mine[someone]})} // not p5's (or p5 holds none): passed over
		for n, refs := range mine {
			txs = append(txs, c.sign(n, &tx.HoldShards{Shards: refs}))
		}
		for _, r := range c.block(time.Second, txs...).TxResults {
			if r.Code != 0 {
				t.Fatal(r.Log)
			}
		}
	}
	c.query(api.QueryVaultPool, nil, &pool)
	if pool.TermBytes != 4*shard || pool.PermBytes != 2*shard {
		t.Fatalf("pool once every shard is declared held: %+v", pool)
	}
	if n := len(c.challenges(0)); n != 0 {
		t.Fatalf("epoch 0 challenges %d shards declared held during it", n)
	}

	// The beacon: commitments in epoch 0, reveals in epoch 1 make epoch 2's seed.
	secret := func(a string, e uint64) tx.Hash { return sha256.Sum256(fmt.Appendf(nil, "%s/%d", a, e)) }
	auds := []string{"a1", "a2", "a3"}
	var commits [][]byte
	for _, a := range auds {
		commits = append(commits, c.sign(a, &tx.AuditorBeacon{Commit: tx.BeaconCommit(secret(a, 0))}))
	}
	for _, r := range c.block(time.Second, commits...).TxResults {
		if r.Code != 0 {
			t.Fatal(r.Log)
		}
	}
	c.fail(tx.CodeDuplicateAttest, "a1", &tx.AuditorBeacon{Commit: tx.BeaconCommit(secret("a1", 9))})
	c.fail(tx.CodeNotAuditor, "p1", &tx.AuditorBeacon{})
	c.toHeight(c.epochStart(1))
	if e1 := c.vaultEpoch(1); e1.Reveals != 0 || e1.StartHeight != c.epochStart(1) {
		t.Fatalf("epoch 1: %+v", e1)
	}
	c.fail(tx.CodeInvalidMsg, "a1", &tx.AuditorBeacon{Reveal: secret("a1", 9)}) // not what it committed
	for _, a := range auds[:2] {
		c.do(a, &tx.AuditorBeacon{Commit: tx.BeaconCommit(secret(a, 1)), Reveal: secret(a, 0)})
	}
	c.do("a3", &tx.AuditorBeacon{}) // withholds its reveal: its part is simply missing

	// Epoch 1 challenges all six shards (placed at height 5, before its start), each at its seed's group.
	e1 := c.vaultEpoch(1)
	ch := c.challenges(1)
	if len(ch) != 6 {
		t.Fatalf("epoch 1 challenges %d shards: %+v", len(ch), ch)
	}
	for _, x := range ch {
		if x.Group != api.ChallengeGroup(e1.Seed, x.Root, x.Object, x.Ordinal, shard) || x.Group >= shard/layout.GroupSize || x.Provider.IsZero() {
			t.Fatalf("challenge %+v", x)
		}
	}
	victim := ch[0] // object 1, ordinal 0
	bad := tx.ShardRef{Object: victim.Object, Ordinal: victim.Ordinal}
	// Two of three auditors name it failed (with a shard that does not exist, passed over); the third passes it.
	c.do("a1", &tx.AttestStorage{Epoch: 1, Failed: []tx.ShardRef{bad, {Object: 99, Ordinal: 0}}})
	c.do("a2", &tx.AttestStorage{Epoch: 1, Failed: []tx.ShardRef{bad}})
	c.do("a3", &tx.AttestStorage{Epoch: 1})
	c.fail(tx.CodeDuplicateAttest, "a3", &tx.AttestStorage{Epoch: 1})
	c.fail(tx.CodeBadEpoch, "a3", &tx.AttestStorage{Epoch: 5})

	c.toHeight(c.epochStart(2))
	if e2 := c.vaultEpoch(2); e2.Reveals != 2 {
		t.Fatalf("epoch 2's seed mixes %d reveals, want 2", e2.Reveals)
	}
	stakeBefore := c.provider(c.name(victim.Provider)).Stake
	rates := map[tx.Address]uint64{}
	for _, id := range []uint64{1, 2} {
		for _, s := range c.vaultShards(id, 0) {
			rates[s.Provider] += api.ShardRate(shard, s.PricePerGiBMonth)
		}
	}
	c.toHeight(c.epochStart(3) - 2)
	before := map[tx.Address]uint64{}
	for a := range rates {
		before[a] = c.balance(c.name(a))
	}
	res := c.block(time.Second) // the last block of epoch 2: epoch 1's tally
	e1, e2 := c.vaultEpoch(1), c.vaultEpoch(2)
	if !e1.Tallied || !e1.Decided || e1.Failed != 1 || e1.Lost != 0 {
		t.Fatalf("epoch 1 tallied: %+v", e1)
	}
	dt := e2.StartMs - e1.StartMs
	failed := eventsOf(res.Events, api.EventVaultProofFailed)
	if len(failed) != 1 || failed[0][api.AttrProvider] != victim.Provider.String() || failed[0][api.AttrFailures] != "1" ||
		failed[0][api.AttrRoot] != victim.Root.String() {
		t.Fatalf("vault.proof_failed: %v", failed)
	}
	paid := map[string]uint64{}
	for _, ev := range eventsOf(res.Events, api.EventVaultEpochPaid) {
		paid[ev[api.AttrProvider]] = amountOf(t, ev)
	}
	victimRate := api.ShardRate(shard, c.vaultShards(1, 0)[0].PricePerGiBMonth)
	var sum uint64
	for a, rate := range rates {
		want := tx.MulDiv(rate, dt, uint64(api.MonthMs)<<10)
		if a == victim.Provider {
			want = tx.MulDiv(rate-victimRate, dt, uint64(api.MonthMs)<<10)
		}
		if want == 0 && a != victim.Provider {
			t.Fatalf("the test's amounts are too small to tell: rate %d over %d ms", rate, dt)
		}
		if paid[a.String()] != want || c.balance(c.name(a))-before[a] != want {
			t.Errorf("%s paid %d (balance +%d), want %d", c.name(a), paid[a.String()], c.balance(c.name(a))-before[a], want)
		}
		sum += want
	}
	if e1.Paid != sum {
		t.Errorf("epoch 1 paid %d, providers got %d", e1.Paid, sum)
	}
	if got := c.provider(c.name(victim.Provider)).Stake; got >= stakeBefore {
		t.Errorf("the failing provider's stake %d, was %d: not slashed", got, stakeBefore)
	}
	if s := c.vaultShards(1, 0)[0]; s.Failures != 1 || s.LastFailed != 1 || s.Lost {
		t.Errorf("shard after one failure: %+v", s)
	}

	// Epoch 2: named failed again, by two thirds — the second epoch in a row: lost, and repaired elsewhere.
	c.do("a1", &tx.AttestStorage{Epoch: 2, Failed: []tx.ShardRef{bad}})
	c.do("a2", &tx.AttestStorage{Epoch: 2, Failed: []tx.ShardRef{bad}})
	c.toHeight(c.epochStart(4) - 2)
	res = c.block(time.Second) // epoch 2's tally
	lost := eventsOf(res.Events, api.EventVaultShardLost)
	repair := eventsOf(res.Events, api.EventVaultRepair)
	if len(lost) != 1 || len(repair) != 1 || lost[0][api.AttrProvider] != victim.Provider.String() ||
		lost[0][api.AttrRoot] != victim.Root.String() || repair[0][api.AttrRoot] != victim.Root.String() {
		t.Fatalf("lost %v, repair %v", lost, repair)
	}
	stripe := c.vaultShards(1, 0)
	s0 := stripe[0]
	if s0.Provider.IsZero() || s0.Provider == victim.Provider || !s0.Repairing || s0.RepairHeight != c.height || s0.Failures != 0 {
		t.Fatalf("repaired shard: %+v", s0)
	}
	for _, s := range stripe[1:] {
		if s.Provider == s0.Provider {
			t.Fatalf("repair drawn onto %s, which holds shard %d of the stripe", c.name(s0.Provider), s.Index)
		}
	}
	var held []api.VaultShard
	c.query(api.QueryVaultHeld, api.VaultHeldRequest{Provider: victim.Provider, Root: victim.Root}, &held)
	if len(held) != 0 {
		t.Fatalf("the losing provider still holds it in the ledger: %+v", held)
	}
	var placed api.List[api.VaultShard]
	c.query(api.QueryVaultPlacedOn, api.VaultPlacedOnRequest{Provider: s0.Provider}, &placed)
	found := false
	for _, s := range placed.Items {
		found = found || s.ObjectID == 1 && s.Stripe == 0 && s.Index == 0 && s.Repairing
	}
	if !found {
		t.Fatalf("vault_placed_on %s: %+v", c.name(s0.Provider), placed.Items)
	}

	// The repaired shard is challenged only once its new provider declares it rebuilt: not in epoch 4.
	c.toHeight(c.epochStart(4))
	if n := len(c.challenges(4)); n != 5 {
		t.Fatalf("epoch 4 challenges %d shards, want the 5 not being repaired", n)
	}
	c.do(c.name(s0.Provider), &tx.HoldShards{Shards: []tx.ShardRef{bad}})
	c.toHeight(c.epochStart(5))
	if n := len(c.challenges(5)); n != 6 {
		t.Fatalf("epoch 5 challenges %d shards, want 6", n)
	}
	// Epoch 3: no auditor attests — undecided: nobody paid. Epoch 5: all pass.
	for _, a := range auds {
		c.do(a, &tx.AttestStorage{Epoch: 5})
	}
	c.toHeight(c.epochStart(5) - 2)
	c.toHeight(c.epochStart(6) - 2)
	res = c.block(time.Second) // epoch 4's tally
	if e3 := c.vaultEpoch(3); e3.Decided || e3.Paid != 0 {
		t.Fatalf("an undecided epoch paid: %+v", e3)
	}
	c.toHeight(c.epochStart(7) - 2)
	bal := c.balance(c.name(s0.Provider))
	res = c.block(time.Second) // epoch 5's tally
	done := eventsOf(res.Events, api.EventVaultRepaired)
	fee, _ := api.TermCost(shard, s0.PricePerGiBMonth, api.VaultRepairMonths)
	if len(done) != 1 || amountOf(t, done[0]) != fee || fee == 0 {
		t.Fatalf("vault.repaired: %v (fee %d)", done, fee)
	}
	var epochPay uint64
	for _, ev := range eventsOf(res.Events, api.EventVaultEpochPaid) {
		if ev[api.AttrProvider] == s0.Provider.String() {
			epochPay = amountOf(t, ev)
		}
	}
	if got := c.balance(c.name(s0.Provider)) - bal; got != fee+epochPay || epochPay == 0 {
		t.Errorf("the repairer got %d, want the fee %d and its epoch's pay %d", got, fee, epochPay)
	}
	if s := c.vaultShards(1, 0)[0]; s.Repairing || s.Lost {
		t.Errorf("after its first proof: %+v", s)
	}
	var vp api.VaultProvider
	c.query(api.QueryVaultProvider, api.AddressRequest{Address: victim.Provider}, &vp)
	if vp.Failed != 2 {
		t.Errorf("the losing provider's record: %+v", vp)
	}
}

// TestVaultAttestationContinues: an auditor with more failed shards to name than a transaction holds continues
// its attestation with another, after a full one and starting past its last shard; anything else is a second
// attestation, refused.
func TestVaultAttestationContinues(t *testing.T) {
	c := newProofChain(t)
	c.toHeight(c.epochStart(1))
	page := func(from uint64, n int) []tx.ShardRef {
		out := make([]tx.ShardRef, n)
		for i := range out {
			out[i] = tx.ShardRef{Object: from + uint64(i)/4, Ordinal: uint32(i % 4)}
		}
		return out
	}
	full := page(100, tx.MaxFailedShards)
	c.do("a1", &tx.AttestStorage{Epoch: 1, Failed: full})
	c.fail(tx.CodeDuplicateAttest, "a1", &tx.AttestStorage{Epoch: 1})                       // a continuation names shards
	c.fail(tx.CodeDuplicateAttest, "a1", &tx.AttestStorage{Epoch: 1, Failed: page(100, 3)}) // not after its last
	last := full[len(full)-1]
	c.do("a1", &tx.AttestStorage{Epoch: 1, Failed: []tx.ShardRef{{Object: last.Object, Ordinal: last.Ordinal + 1}}})
	c.fail(tx.CodeDuplicateAttest, "a1", &tx.AttestStorage{Epoch: 1, Failed: page(9_000, 2)}) // the last was not full
	c.toHeight(c.epochStart(2))
	c.do("a2", &tx.AttestStorage{Epoch: 2, Failed: page(5, 2)})
	c.fail(tx.CodeDuplicateAttest, "a2", &tx.AttestStorage{Epoch: 2, Failed: page(9_000, 2)})
	c.fail(tx.CodeInvalidMsg, "a3", &tx.AttestStorage{Epoch: 2, Failed: append(page(5, 2), page(5, 1)...)}) // out of order
	c.fail(tx.CodeDecode, "a3", &tx.AttestStorage{Epoch: 2, Failed: page(1, tx.MaxFailedShards+1)})
	c.fail(tx.CodeNotAuditor, "p0", &tx.AttestStorage{Epoch: 2})
	// Epoch 1 is tallied with the liveness tally at the end of epoch 2: a1's weight counted once (1 of 3: not
	// decided), however many transactions its attestation took.
	c.toHeight(c.epochStart(3) - 1)
	if e := c.vaultEpoch(1); !e.Tallied || e.Decided {
		t.Fatalf("epoch 1 with a1 alone attesting: %+v", e)
	}
}

// TestVaultRepairExpires: the provider a repair is drawn onto that does not declare the shard rebuilt within
// VaultRepairEpochs loses the repair, drawn again onto another provider — never back onto the one that lost
// the shard; a shard that keeps failing is never paid.
func TestVaultRepairExpires(t *testing.T) {
	c := newProofChain(t)
	const shard = 64 << 10
	_, term := vaultManifest(t, "term", 2*shard, 2, 2, shard)
	c.do("owner", &tx.StoreObject{Manifest: term, Months: 12, MaxPricePerGiBMonth: 200_000_000})
	c.block(time.Second) // the draw
	var txs [][]byte
	for _, s := range c.vaultShards(1, 0) {
		txs = append(txs, c.sign(c.name(s.Provider), &tx.HoldShards{Shards: []tx.ShardRef{{Object: 1, Ordinal: uint32(s.Index)}}}))
	}
	c.block(time.Second, txs...)
	victim := c.vaultShards(1, 0)[1].Provider
	bad := []tx.ShardRef{{Object: 1, Ordinal: 1}}
	for e := uint64(1); e <= 2; e++ {
		c.toHeight(c.epochStart(e))
		c.do("a1", &tx.AttestStorage{Epoch: e, Failed: bad})
		c.do("a2", &tx.AttestStorage{Epoch: e, Failed: bad})
	}
	c.toHeight(c.epochStart(4) - 1) // epoch 2's tally: lost, drawn onto another provider
	first := c.vaultShards(1, 0)[1]
	if first.Provider.IsZero() || first.Provider == victim || !first.Repairing || first.HeldHeight != 0 {
		t.Fatalf("repair drawn: %+v (victim %s)", first, c.name(victim))
	}
	// Its provider never declares it: drawn in epoch 3, at the tally of epoch 3+3 (the end of epoch 7) it is
	// drawn elsewhere.
	c.toHeight(c.epochStart(8) - 2)
	if s := c.vaultShards(1, 0)[1]; s.Provider != first.Provider {
		t.Fatalf("the repair moved before its time: %+v", s)
	}
	res := c.block(time.Second)
	again := eventsOf(res.Events, api.EventVaultRepair)
	s := c.vaultShards(1, 0)[1]
	if len(again) != 1 || s.Provider.IsZero() || s.Provider == first.Provider || s.Provider == victim {
		t.Fatalf("redrawn: %v, shard %+v (first %s, victim %s)", again, s, c.name(first.Provider), c.name(victim))
	}
	for _, o := range c.vaultShards(1, 0) {
		if o.Index != 1 && o.Provider == s.Provider {
			t.Fatalf("redrawn onto %s, which holds shard %d of the stripe", c.name(s.Provider), o.Index)
		}
	}
	var held []api.VaultShard
	c.query(api.QueryVaultHeld, api.VaultHeldRequest{Provider: first.Provider, Root: first.Root}, &held)
	if len(held) != 0 {
		t.Fatalf("the provider that did not rebuild still has it placed: %+v", held)
	}
	var vp api.VaultProvider
	c.query(api.QueryVaultProvider, api.AddressRequest{Address: first.Provider}, &vp)
	if vp.Shards != 0 || vp.Earned != 0 {
		t.Fatalf("the provider that never declared the shard: %+v", vp)
	}
	// Nobody ever rebuilds it (a manifest whose shards were never one codeword could not be): after
	// VaultRepairAttempts providers it stays lost, and the tallies stop drawing it.
	drawn := 2
	for range 30 * c.epochBlocks {
		res := c.block(time.Hour)
		drawn += len(eventsOf(res.Events, api.EventVaultRepair))
	}
	if s := c.vaultShards(1, 0)[1]; !s.Lost || s.Repairing || drawn != api.VaultRepairAttempts {
		t.Fatalf("after %d draws: %+v", drawn, s)
	}
}
