package storage

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"slices"
	"strconv"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// Storage proofs, the pool's pay and repairs (docs/vault.md, api/vaultproofs.go).
//
// The seed. Epoch e's challenges are drawn from a seed fixed at its first block: SHA-256 over e, epoch e-1's
// seed and the reveals of the auditors' beacon secrets that landed in epoch e-1, each committed in epoch e-2
// (AuditorBeacon). A block's proposer cannot choose it (it can only leave out reveals it sees, as any auditor can
// withhold its own: a choice between a few seeds, not a grind over many), and a provider cannot know it before
// the reveals land, an epoch after the commitments.
//
// The tally of epoch e begins at the end of epoch e+1, with the liveness tally (and goes on in the blocks after
// when it needs more than its share of a block: tally.go), and visits only what the epoch made: the auditors'
// votes against shards (sparse: failures), the shards failing lately, the lost and repaired shards, and the
// providers holding shards (one pay each, as the liveness tally visits each provider). It never walks every
// shard: a provider's pay is its rate (the sum over its shards of bytes × price) less the shards that did not
// pass.

func epochOf(c *kernel.Ctx, h int64) uint64 {
	if c.Params.EpochBlocks == 0 || h < 1 {
		return 0
	}
	return uint64(h-1) / c.Params.EpochBlocks
}

func isAuditor(c *kernel.Ctx, a tx.Address) bool {
	_, ok := c.KV.Get(schema.AddrKey(schema.PAuditor, a))
	return ok
}

func auditorWeights(c *kernel.Ctx) (map[tx.Address]uint64, uint64) {
	w := map[tx.Address]uint64{}
	var total uint64
	c.KV.Iterate(schema.PAuditor, schema.PrefixEnd(schema.PAuditor), func(k string, v []byte) bool {
		var addr tx.Address
		copy(addr[:], k[len(schema.PAuditor):])
		a := kernel.MustDecode(schema.DecAuditor(addr, v))
		w[addr] = a.Weight
		total += a.Weight
		return true
	})
	return w, total
}

// Epoch is the Vault's record of epoch e, if it started.
func (k *Keeper) Epoch(c *kernel.Ctx, e uint64) (*api.VaultEpoch, bool) {
	b, ok := c.KV.Get(schema.IDKey(schema.PVaultEpoch, e))
	if !ok {
		return nil, false
	}
	return kernel.MustDecode(schema.DecVaultEpoch(e, b)), true
}

func (k *Keeper) setEpoch(c *kernel.Ctx, e *api.VaultEpoch) {
	c.KV.Set(schema.IDKey(schema.PVaultEpoch, e.Epoch), schema.EncVaultEpoch(e))
}

// Pool is the Vault pool.
func (k *Keeper) Pool(c *kernel.Ctx) *api.VaultPool {
	b, ok := c.KV.Get(schema.KeyVaultPool)
	if !ok {
		return &api.VaultPool{}
	}
	return kernel.MustDecode(schema.DecVaultPool(b))
}

func (k *Keeper) setPool(c *kernel.Ctx, p *api.VaultPool) {
	c.KV.Set(schema.KeyVaultPool, schema.EncVaultPool(p))
}

// VaultProvider is provider a's Vault accounting.
func (k *Keeper) VaultProvider(c *kernel.Ctx, a tx.Address) (*api.VaultProvider, bool) {
	b, ok := c.KV.Get(schema.AddrKey(schema.PVaultProvider, a))
	if !ok {
		return &api.VaultProvider{Provider: a}, false
	}
	return kernel.MustDecode(schema.DecVaultProvider(a, b)), true
}

func (k *Keeper) setVaultProvider(c *kernel.Ctx, p *api.VaultProvider) {
	c.KV.Set(schema.AddrKey(schema.PVaultProvider, p.Provider), schema.EncVaultProvider(p))
}

// shard is a placed shard's record.
type shard struct {
	provider     tx.Address
	price        uint64
	repairHeight int64
	heldHeight   int64
}

func (k *Keeper) shard(c *kernel.Ctx, id uint64, ord int) (shard, bool) {
	b, ok := c.KV.Get(schema.VaultShardKey(id, ord))
	if !ok {
		return shard{}, false
	}
	return decShard(c, b), true
}

func decShard(c *kernel.Ctx, b []byte) shard {
	r, err := schema.DecVaultShard(b)
	c.Must(err)
	return shard{r.Provider, r.Price, r.RepairHeight, r.HeldHeight}
}

func (k *Keeper) setShard(c *kernel.Ctx, id uint64, ord int, s shard) {
	c.KV.Set(schema.VaultShardKey(id, ord), schema.EncVaultShard(schema.VaultShardRec{Provider: s.provider, Price: s.price,
		RepairHeight: s.repairHeight, HeldHeight: s.heldHeight}))
}

// holdAll adds (sign +1) or removes (-1) a pooled object's shards (lost ones, with no provider, skipped) to or
// from their providers' accounting and the pool's bytes: one write a provider.
func (k *Keeper) holdAll(c *kernel.Ctx, o *api.VaultObject, shards []shard, sign int) {
	type sum struct{ shards, rate uint64 }
	by := map[tx.Address]*sum{}
	var order []tx.Address
	var bytes uint64
	for _, s := range shards {
		if s.provider.IsZero() {
			continue
		}
		t := by[s.provider]
		if t == nil {
			t = &sum{}
			by[s.provider] = t
			order = append(order, s.provider)
		}
		t.shards++
		t.rate += api.ShardRate(o.ShardSize, s.price)
		bytes += o.ShardSize
	}
	slices.SortFunc(order, func(a, b tx.Address) int { return cmp.Compare(string(a[:]), string(b[:])) })
	for _, a := range order {
		t := by[a]
		vp, _ := k.VaultProvider(c, a)
		r := &vp.TermRate
		if o.Months == 0 {
			r = &vp.PermRate
		}
		if sign > 0 {
			vp.Shards += t.shards
			vp.Bytes += t.shards * o.ShardSize
			*r += t.rate
		} else {
			vp.Shards -= min(vp.Shards, t.shards)
			vp.Bytes -= min(vp.Bytes, t.shards*o.ShardSize)
			*r -= min(*r, t.rate)
		}
		if vp.Shards == 0 && vp.Earned == 0 && vp.Failed == 0 {
			c.KV.Delete(schema.AddrKey(schema.PVaultProvider, a))
		} else {
			k.setVaultProvider(c, vp)
		}
	}
	pool := k.Pool(c)
	b := &pool.TermBytes
	if o.Months == 0 {
		b = &pool.PermBytes
	}
	if sign > 0 {
		*b += bytes
	} else {
		*b -= min(*b, bytes)
	}
	k.setPool(c, pool)
}

// EpochWork runs at the end of every block when auditing is on, after the liveness work: at an epoch's first
// block it fixes the epoch's seed; at its last, it begins the tally of the epoch before, which goes on in the
// blocks after it when it needs more than its share of a block's gas (tally.go).
func (k *Keeper) EpochWork(c *kernel.Ctx) {
	if c.Params.EpochBlocks == 0 || c.Height < 1 {
		return
	}
	e := epochOf(c, c.Height)
	if uint64(c.Height-1)%c.Params.EpochBlocks == 0 {
		k.startEpoch(c, e)
	}
	k.tallyWork(c, uint64(c.Height)%c.Params.EpochBlocks == 0 && e >= 1, e-1)
}

// maxRepairsPerTally bounds the open repairs one tally looks at (see repairList).
const maxRepairsPerTally = 1024

// vaultEpochsKept is how many epochs' records the state keeps (the explorer keeps the history from events).
const vaultEpochsKept = 16

func (k *Keeper) startEpoch(c *kernel.Ctx, e uint64) {
	var acc tx.Hash
	n := 0
	if b, ok := c.KV.Get(schema.IDKey(schema.PVaultBeacon, e)); ok {
		var err error
		acc, n, err = schema.DecVaultBeacon(b)
		c.Must(err)
		c.KV.Delete(schema.IDKey(schema.PVaultBeacon, e))
	}
	var prev tx.Hash
	if e > 0 {
		if p, ok := k.Epoch(c, e-1); ok {
			prev = p.Seed
		}
	}
	var buf []byte
	buf = append(buf, "spare/vault-seed\x00"...)
	buf = binary.BigEndian.AppendUint64(buf, e)
	buf = append(buf, prev[:]...)
	buf = append(buf, acc[:]...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	rec := &api.VaultEpoch{Epoch: e, Seed: sha256.Sum256(buf), Reveals: n, StartHeight: c.Height, StartMs: c.TimeMs}
	k.setEpoch(c, rec)
	if e >= 2 { // commitments two epochs old were never revealed: they can no longer be
		prefix := schema.IDKey(schema.PVaultCommit, e-2)
		var keys []string
		c.KV.Iterate(prefix, schema.PrefixEnd(prefix), func(key string, _ []byte) bool {
			keys = append(keys, key)
			return true
		})
		for _, key := range keys {
			c.KV.Delete(key)
		}
	}
	if e >= vaultEpochsKept {
		if old, ok := k.Epoch(c, e-vaultEpochsKept); ok && old.Tallied { // one not yet tallied goes when it is
			c.KV.Delete(schema.IDKey(schema.PVaultEpoch, e-vaultEpochsKept))
		}
	}
	c.Emit(api.EventVaultEpoch, api.AttrEpoch, e, api.AttrSeed, rec.Seed, api.AttrReveals, n, api.AttrHeight, c.Height)
}

// AuditorBeacon records an auditor's commitment for this epoch and checks its reveal of the one before, which
// goes into the next epoch's seed.
func (k *Keeper) AuditorBeacon(c *kernel.Ctx, signer tx.Address, m *tx.AuditorBeacon) error {
	if !isAuditor(c, signer) {
		return tx.Errorf(tx.CodeNotAuditor, "%s is not in the auditor set", signer)
	}
	if c.Params.EpochBlocks == 0 {
		return tx.Errorf(tx.CodeBadEpoch, "auditing is off on this chain (params.epoch_blocks is 0)")
	}
	cur := epochOf(c, c.Height)
	key := schema.IDKey(schema.PVaultCommit, cur) + string(signer[:])
	if _, dup := c.KV.Get(key); dup {
		return tx.Errorf(tx.CodeDuplicateAttest, "%s already sent its beacon in epoch %d: one an epoch", signer, cur)
	}
	revealed := false
	if !m.Reveal.IsZero() {
		var prevKey string
		var commit []byte
		ok := false
		if cur > 0 {
			prevKey = schema.IDKey(schema.PVaultCommit, cur-1) + string(signer[:])
			commit, ok = c.KV.Get(prevKey)
		}
		if !ok {
			return tx.Errorf(tx.CodeInvalidMsg, "reveal: %s committed no beacon in epoch %d; send a zero reveal", signer, cur-min(cur, 1))
		}
		if h := tx.BeaconCommit(m.Reveal); string(h[:]) != string(commit) {
			return tx.Errorf(tx.CodeInvalidMsg, "reveal does not hash to the commitment %s sent in epoch %d: reveal that epoch's secret, or zero", signer, cur-1)
		}
		c.KV.Delete(prevKey)
		var acc tx.Hash
		n := 0
		if b, ok := c.KV.Get(schema.IDKey(schema.PVaultBeacon, cur+1)); ok {
			var err error
			acc, n, err = schema.DecVaultBeacon(b)
			c.Must(err)
		}
		h := sha256.Sum256(append(append([]byte("spare/vault-reveal\x00"), signer[:]...), m.Reveal[:]...))
		for i := range acc {
			acc[i] ^= h[i]
		}
		c.KV.Set(schema.IDKey(schema.PVaultBeacon, cur+1), schema.EncVaultBeacon(acc, n+1))
		revealed = true
	}
	if !m.Commit.IsZero() {
		c.KV.Set(key, append([]byte{}, m.Commit[:]...))
	}
	c.Emit(api.EventVaultBeacon, api.AttrAuditor, signer, api.AttrEpoch, cur, api.AttrRevealed, strconv.FormatBool(revealed))
	return nil
}

// challenged reports whether a shard of o (record s) is challenged in the epoch that started at height start:
// its provider declared it held (HoldShards) before it, and it is not lost.
func challenged(o *api.VaultObject, s shard, start int64) bool {
	return o.State == api.VaultPlaced && !s.provider.IsZero() && s.heldHeight > 0 && s.heldHeight < start
}

// HoldShards records a provider's declaration that it holds shards placed on it: each is challenged and paid
// from the next epoch on. A named shard not placed on the signer, or already declared, is passed over.
func (k *Keeper) HoldShards(c *kernel.Ctx, signer tx.Address, m *tx.HoldShards) error {
	if _, err := c.MustProvider(signer); err != nil {
		return err
	}
	var obj *api.VaultObject
	var batch []shard
	flush := func() {
		if obj != nil && obj.Pooled && len(batch) > 0 {
			k.holdAll(c, obj, batch, +1)
		}
		batch = batch[:0]
	}
	held := 0
	for _, ref := range m.Shards {
		if obj == nil || obj.ID != ref.Object {
			flush()
			o, ok := k.Object(c, ref.Object)
			if !ok {
				obj = nil
				continue
			}
			obj = o
		}
		if obj.State != api.VaultPlaced || int64(ref.Ordinal) >= int64(obj.Shards()) {
			continue
		}
		s, ok := k.shard(c, obj.ID, int(ref.Ordinal))
		if !ok || s.provider != signer || s.heldHeight > 0 {
			continue
		}
		s.heldHeight = c.Height
		k.setShard(c, obj.ID, int(ref.Ordinal), s)
		batch = append(batch, s)
		held++
	}
	flush()
	c.Emit(api.EventVaultHeld, api.AttrProvider, signer, api.AttrShards, held)
	return nil
}

// AttestStorage records an auditor's verdict on an epoch's storage proofs: the shards it names failed; it
// passes every other challenged shard. A named shard the epoch did not challenge (placed since, lost, moved by a
// repair) is passed over, not refused: the auditor read the ledger a few blocks before.
func (k *Keeper) AttestStorage(c *kernel.Ctx, signer tx.Address, m *tx.AttestStorage) error {
	if !isAuditor(c, signer) {
		return tx.Errorf(tx.CodeNotAuditor, "%s is not in the auditor set", signer)
	}
	if c.Params.EpochBlocks == 0 {
		return tx.Errorf(tx.CodeBadEpoch, "auditing is off on this chain (params.epoch_blocks is 0)")
	}
	cur := epochOf(c, c.Height)
	if m.Epoch != cur && (cur == 0 || m.Epoch != cur-1) {
		return tx.Errorf(tx.CodeBadEpoch, "epoch %d is not open: attest the current epoch %d or the one before", m.Epoch, cur)
	}
	rec, ok := k.Epoch(c, m.Epoch)
	if !ok || rec.Tallied {
		return tx.Errorf(tx.CodeBadEpoch, "epoch %d has no Vault seed yet", m.Epoch)
	}
	// One attestation an auditor an epoch — continued by further ones while each names a full MaxFailedShards,
	// each starting after the last shard the one before named (more failures than a transaction holds).
	key := schema.IDKey(schema.PVaultAttested, m.Epoch) + string(signer[:])
	if prev, dup := c.KV.Get(key); dup {
		if len(prev) == 0 {
			return tx.Errorf(tx.CodeDuplicateAttest, "%s already attested epoch %d's storage proofs", signer, m.Epoch)
		}
		last := tx.ShardRef{Object: schema.UnBE64(string(prev[:8])), Ordinal: schema.UnBE32(string(prev[8:12]))}
		if len(m.Failed) == 0 || !last.Less(m.Failed[0]) {
			return tx.Errorf(tx.CodeDuplicateAttest, "%s continues its attestation of epoch %d: name failed shards after object %d ordinal %d, the last it named",
				signer, m.Epoch, last.Object, last.Ordinal)
		}
	}
	var more []byte // a full list: the auditor may name more, after its last
	if n := len(m.Failed); n == tx.MaxFailedShards {
		more = []byte(schema.BE64(m.Failed[n-1].Object) + schema.BE32(m.Failed[n-1].Ordinal))
	}
	c.KV.Set(key, more)
	named := 0
	var obj *api.VaultObject
	for _, f := range m.Failed {
		if obj == nil || obj.ID != f.Object {
			if obj, ok = k.Object(c, f.Object); !ok {
				obj = nil
				continue
			}
		}
		if int64(f.Ordinal) >= int64(obj.Shards()) {
			continue
		}
		s, ok := k.shard(c, obj.ID, int(f.Ordinal))
		if !ok || !challenged(obj, s, rec.StartHeight) {
			continue
		}
		c.KV.Set(schema.ShardOrdKey(schema.IDKey(schema.PVaultFailVote, m.Epoch), f.Object, f.Ordinal)+string(signer[:]), nil)
		c.Gas.Consume(GasTallyVote) // the tally's work on it, paid here (tally.go)
		named++
	}
	c.Emit(api.EventVaultAttested, api.AttrEpoch, m.Epoch, api.AttrAuditor, signer, api.AttrFailed, named)
	return nil
}

// accrue is rate × dt ÷ VaultPayUnit in whole uspr, and the rest carried, with what was owed before added.
func accrue(rate, dt, owed uint64) (pay, rest uint64) {
	hi, lo := bits.Mul64(rate, dt)
	lo, carry := bits.Add64(lo, owed, 0)
	hi += carry
	if hi >= api.VaultPayUnit {
		return ^uint64(0), 0
	}
	return bits.Div64(hi, lo, api.VaultPayUnit)
}

// lose takes a shard from the provider that failed it and opens its repair (vault.shard_lost).
func (k *Keeper) lose(c *kernel.Ctx, ref tx.ShardRef, e uint64) {
	o, ok := k.Object(c, ref.Object)
	if !ok {
		return
	}
	ord := int(ref.Ordinal)
	s, ok := k.shard(c, o.ID, ord)
	if !ok || s.provider.IsZero() {
		return
	}
	n := o.K + o.M
	root := k.ShardRoot(c, o, ord)
	k.unhold(c, o, ord, s, root)
	k.setShard(c, o.ID, ord, shard{price: s.price})
	c.KV.Delete(schema.ShardOrdKey(schema.PVaultStreak, o.ID, ref.Ordinal))
	c.KV.Set(schema.ShardOrdKey(schema.PVaultRepair, o.ID, ref.Ordinal), schema.EncVaultRepair(schema.VaultRepairRec{Since: e, Not: s.provider})) // not drawn back onto it
	c.Emit(api.EventVaultShardLost, api.AttrObjectID, o.ID, api.AttrStripe, ord/n, api.AttrIndex, ord%n, api.AttrRoot, root,
		api.AttrProvider, s.provider, api.AttrEpoch, e)
}

// unhold releases a shard from its provider: the held index, the offer's room and (declared held, pooled) its
// accounting.
func (k *Keeper) unhold(c *kernel.Ctx, o *api.VaultObject, ord int, s shard, root tx.Hash) {
	c.KV.Delete(schema.VaultHeldKey(s.provider, root, o.ID, ord))
	if off, ok := k.Offer(c, s.provider); ok {
		off.UsedBytes -= min(off.UsedBytes, o.ShardSize)
		k.setOffer(c, off)
	}
	if o.Pooled && s.heldHeight > 0 {
		k.holdAll(c, o, []shard{s}, -1)
	}
}

// repairList is the open repairs epoch e's tally looks at: at most maxRepairsPerTally, from where the last tally
// stopped, round the index — a mass loss (a large provider gone) costs the tallies after it a bounded share each,
// not one tally every lost shard times every offer. The tally then visits them in this order (repairOne), within
// its budget a block (tally.go).
func (k *Keeper) repairList(c *kernel.Ctx) []tx.ShardRef {
	var refs []tx.ShardRef
	collect := func(from, to string) {
		c.KV.Iterate(from, to, func(key string, _ []byte) bool {
			if len(refs) == maxRepairsPerTally {
				return false
			}
			refs = append(refs, refAt(key[len(schema.PVaultRepair):]))
			return true
		})
	}
	end := schema.PrefixEnd(schema.PVaultRepair)
	cur, hasCur := c.KV.Get(schema.KeyVaultRepairCursor)
	if hasCur {
		after := schema.PVaultRepair + string(cur) + "\x00"
		collect(after, end)
		collect(schema.PVaultRepair, after)
	} else {
		collect(schema.PVaultRepair, end)
	}
	if len(refs) == maxRepairsPerTally {
		last := refs[len(refs)-1]
		c.KV.Set(schema.KeyVaultRepairCursor, []byte(schema.BE64(last.Object)+schema.BE32(last.Ordinal)))
	} else if hasCur {
		c.KV.Delete(schema.KeyVaultRepairCursor)
	}
	return refs
}

// repairOne visits an open repair after epoch e's tally: a lost shard is drawn onto a provider with room that
// holds no other shard of its stripe; one drawn and not declared rebuilt in time is drawn again elsewhere; a
// repaired shard whose first challenge (epoch e) it passed is paid VaultRepairMonths of its price from the pool.
// What it pays is returned. cands reads the offers (once a block).
func (k *Keeper) repairOne(c *kernel.Ctx, e uint64, rec *api.VaultEpoch, ref tx.ShardRef, notPassed func(tx.ShardRef) bool, cands func() []*candidate) uint64 {
	key := schema.ShardOrdKey(schema.PVaultRepair, ref.Object, ref.Ordinal)
	b, ok := c.KV.Get(key)
	if !ok {
		return 0 // closed since it was listed
	}
	r := kernel.MustDecode(schema.DecVaultRepair(b))
	o, ok := k.Object(c, ref.Object)
	if !ok {
		c.KV.Delete(key)
		return 0
	}
	ord := int(ref.Ordinal)
	s, ok := k.shard(c, o.ID, ord)
	if !ok {
		c.KV.Delete(key)
		return 0
	}
	n := o.K + o.M
	root := k.ShardRoot(c, o, ord)
	switch {
	case s.provider.IsZero():
		k.redraw(c, o, ord, root, rec.Seed, r, cands())
	case s.heldHeight == 0 && e >= r.Since+api.VaultRepairDeadline(o.K, o.ShardSize):
		// Drawn for a repair and not declared rebuilt in time: drawn again, elsewhere — up to
		// VaultRepairAttempts providers; then it stays lost.
		k.unhold(c, o, ord, s, root)
		k.setShard(c, o.ID, ord, shard{price: s.price})
		c.Emit(api.EventVaultShardLost, api.AttrObjectID, o.ID, api.AttrStripe, ord/n, api.AttrIndex, ord%n, api.AttrRoot, root,
			api.AttrProvider, s.provider, api.AttrEpoch, e)
		if r.Attempts >= api.VaultRepairAttempts {
			c.KV.Delete(key)
			return 0
		}
		r = schema.VaultRepairRec{Since: e, Attempts: r.Attempts, Not: s.provider}
		c.KV.Set(key, schema.EncVaultRepair(r)) // what stays when no offer can take it now
		k.redraw(c, o, ord, root, rec.Seed, r, cands())
	case challenged(o, s, rec.StartHeight) && !notPassed(ref) && rec.Decided:
		fee := uint64(0)
		if o.Pooled {
			pool := k.Pool(c)
			fee, _ = api.TermCost(o.ShardSize, s.price, api.VaultRepairMonths)
			fee = min(fee, pool.Balance)
			pool.Balance -= fee
			pool.PaidTotal += fee
			k.setPool(c, pool)
			c.Must(c.Credit(s.provider, fee, kernel.InEscrow))
			vp, _ := k.VaultProvider(c, s.provider)
			vp.Earned += fee
			k.setVaultProvider(c, vp)
		}
		c.KV.Delete(key)
		c.Emit(api.EventVaultRepaired, api.AttrObjectID, o.ID, api.AttrStripe, ord/n, api.AttrIndex, ord%n, api.AttrRoot, root,
			api.AttrProvider, s.provider, api.AttrEpoch, e, api.AttrAmount, fee)
		return fee
	}
	return 0
}

// redraw draws a lost shard's new provider, stake-weighted among the offers with room at the deal's maximum
// price that hold no other shard of its stripe, from the epoch's seed (no proposer chooses it); none: it stays
// lost and is drawn again after the next tally.
func (k *Keeper) redraw(c *kernel.Ctx, o *api.VaultObject, ord int, root tx.Hash, seed tx.Hash, r schema.VaultRepairRec, offers []*candidate) {
	n := o.K + o.M
	stripe := ord / n
	taken := map[tx.Address]bool{r.Not: true}
	for i := range n {
		if t, ok := k.shard(c, o.ID, stripe*n+i); ok && !t.provider.IsZero() {
			taken[t.provider] = true
		}
	}
	var cands []*candidate
	var total uint64
	for _, cd := range offers {
		if !taken[cd.offer.Provider] && cd.offer.PricePerGiBMonth <= o.MaxPricePerGiBMonth && cd.offer.FreeBytes() >= o.ShardSize {
			cands = append(cands, cd)
			total += cd.stake
		}
	}
	c.Gas.Consume(uint64(len(offers)) * gasPerOffer) // the offers weighed: the tally's budget counts them
	if len(cands) == 0 || total == 0 {
		return
	}
	var buf []byte
	buf = append(buf, "spare/vault-repair\x00"...)
	buf = append(buf, seed[:]...)
	buf = binary.BigEndian.AppendUint64(buf, o.ID)
	buf = binary.BigEndian.AppendUint32(buf, uint32(ord))
	buf = binary.BigEndian.AppendUint64(buf, r.Attempts)
	h := sha256.Sum256(buf)
	at := binary.BigEndian.Uint64(h[:8]) % total
	var cd *candidate
	for _, x := range cands {
		if at < x.stake {
			cd = x
			break
		}
		at -= x.stake
	}
	ns := shard{provider: cd.offer.Provider, price: cd.offer.PricePerGiBMonth, repairHeight: c.Height}
	k.setShard(c, o.ID, ord, ns)
	c.KV.Set(schema.VaultHeldKey(ns.provider, root, o.ID, ord), nil)
	c.KV.Set(schema.ShardOrdKey(schema.PVaultRepair, o.ID, uint32(ord)), schema.EncVaultRepair(schema.VaultRepairRec{
		Since: epochOf(c, c.Height), Attempts: r.Attempts + 1, Not: r.Not}))
	cd.offer.UsedBytes += o.ShardSize
	k.setOffer(c, cd.offer)
	c.Emit(api.EventVaultRepair, api.AttrObjectID, o.ID, api.AttrStripe, stripe, api.AttrIndex, ord%n, api.AttrRoot, root,
		api.AttrProvider, ns.provider, api.AttrEpoch, epochOf(c, c.Height), api.AttrPrice, ns.price)
}
