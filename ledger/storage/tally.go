package storage

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// The tally of epoch e's storage proofs begins at the end of epoch e+1 and works, like the end-of-block sweeps,
// within a share of each block's gas (c.Budget, given by the app's endBlock): the auditors' votes shard by shard,
// then (a decided epoch) the failure streaks the epoch did not extend, then the pay and the slashes provider by
// provider (a pass over the providers holding shards, by address, from a cursor), then the lost
// shards taken from their providers, then the repairs (bounded on their own) and the epoch's record. What does
// not fit goes on in the next block: what it found so far is written to the state (KeyVaultTally and the
// PVaultUnpaid, PVaultLostQ and PVaultNotPassed indexes) only then, so a tally done in one block — every honest
// epoch — leaves nothing behind. A tally due while another runs waits for it (PVaultTallyDue). The outcome does
// not depend on where the blocks cut it: a shard's votes are processed together, in the order of the shards,
// and the pay, the slashes and the losses come after every vote, as in one block (TestVaultTallySpansBlocks).
//
// What an auditor names costs it GasTallyVote a shard, the gas of the tally's work on it, so that no auditor
// can name shards faster than the tallies' share of the blocks processes them.

// GasTallyVote is charged by AttestStorage for each shard it names failed: the tally's reads, writes and deletes
// for that vote (≈ 12,000 gas through the metered store), times the block gas limit over the least share a
// block gives the tally (about 4×), so that a block full of attestations names no more than a block's share
// processes.
const GasTallyVote = 48_000

// tallyBatch is how many vote or streak keys a tally reads at once (then works through within its budget).
const tallyBatch = 1024

// tallyRun is the tally in progress: its record, and what it found in this block and has not yet written.
type tallyRun struct {
	rec       *schema.VaultTallyRec
	stored    bool // rec is in the state: the tally began in an earlier block
	epoch     *api.VaultEpoch
	weights   map[tx.Address]uint64
	unpaid    map[tx.Address]*schema.VaultUnpaid // found in this block
	notPassed map[tx.ShardRef]bool               // found in this block
	lost      []tx.ShardRef                      // found in this block (in order), not yet taken
	repairs   []tx.ShardRef                      // listed in this block (in order), not yet visited
	offers    []*candidate                       // the storage offers, read at this block's first redraw
	worked    bool                               // it did a piece of work in this block
}

// more reports whether the tally may take on another piece of work in this block: while its budget lasts, and
// always one (reading its batch may spend a small budget: it still advances every block).
func (run *tallyRun) more(c *kernel.Ctx) bool {
	ok := !run.worked || c.Gas == nil || c.Gas.Used < c.Budget
	run.worked = true
	return ok
}

// tallyWork goes on with the tally in progress, or begins the one of epoch dueEpoch when due is set, within the
// block's budget; then the next one due, while the budget lasts.
func (k *Keeper) tallyWork(c *kernel.Ctx, due bool, dueEpoch uint64) {
	run := k.loadTally(c)
	if due {
		if run == nil {
			run = k.beginTally(c, dueEpoch, false)
		} else {
			c.KV.Set(schema.IDKey(schema.PVaultTallyDue, dueEpoch), nil) // after the one running
		}
	}
	for run != nil {
		if !k.advance(c, run) {
			k.saveTally(c, run)
			return
		}
		run = nil
		if key, ok := c.FirstKey(schema.PVaultTallyDue); ok {
			c.KV.Delete(key)
			run = k.beginTally(c, schema.UnBE64(key[len(schema.PVaultTallyDue):]), true)
		}
	}
}

// beginTally opens the tally of epoch e: who attested and whether that decides it. An epoch with no record is
// not tallied — unless it waited behind another tally long enough for its record to go (queued): its votes are
// then only removed.
func (k *Keeper) beginTally(c *kernel.Ctx, e uint64, queued bool) *tallyRun {
	rec, ok := k.Epoch(c, e)
	if ok && rec.Tallied || !ok && !queued {
		return nil
	}
	weights, total := auditorWeights(c)
	var spoke uint64
	prefix := schema.IDKey(schema.PVaultAttested, e)
	var keys []string
	c.KV.Iterate(prefix, schema.PrefixEnd(prefix), func(key string, _ []byte) bool {
		var a tx.Address
		copy(a[:], key[len(prefix):])
		spoke += weights[a]
		keys = append(keys, key)
		return true
	})
	for _, key := range keys {
		c.KV.Delete(key)
	}
	t := &schema.VaultTallyRec{Epoch: e, Phase: schema.TallyVotes, Spoke: spoke, Total: total,
		Decided: ok && total > 0 && 3*spoke >= 2*total, EpochMissing: !ok}
	return &tallyRun{rec: t, epoch: rec, weights: weights, unpaid: map[tx.Address]*schema.VaultUnpaid{}, notPassed: map[tx.ShardRef]bool{}}
}

// loadTally reads the tally in progress, if one is.
func (k *Keeper) loadTally(c *kernel.Ctx) *tallyRun {
	b, ok := c.KV.Get(schema.KeyVaultTally)
	if !ok {
		return nil
	}
	t := kernel.MustDecode(schema.DecVaultTally(b))
	run := &tallyRun{rec: t, stored: true, unpaid: map[tx.Address]*schema.VaultUnpaid{}, notPassed: map[tx.ShardRef]bool{}}
	run.weights, _ = auditorWeights(c)
	if !t.EpochMissing {
		run.epoch, ok = k.Epoch(c, t.Epoch)
		if !ok {
			panic(fmt.Sprintf("ledger: the Vault tally of epoch %d is in progress and the epoch's record is gone", t.Epoch))
		}
	}
	return run
}

// saveTally writes what the tally found in this block, to go on in the next (in sorted order: the state's
// writes are consensus).
func (k *Keeper) saveTally(c *kernel.Ctx, run *tallyRun) {
	c.KV.Set(schema.KeyVaultTally, schema.EncVaultTally(run.rec))
	addrs := make([]tx.Address, 0, len(run.unpaid))
	for a := range run.unpaid {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b tx.Address) int { return cmp.Compare(string(a[:]), string(b[:])) })
	for _, a := range addrs {
		u := *run.unpaid[a]
		key := schema.AddrKey(schema.PVaultUnpaid, a)
		if b, ok := c.KV.Get(key); ok {
			was := kernel.MustDecode(schema.DecVaultUnpaid(b))
			u.Rate, u.Shards, u.Failed = u.Rate+was.Rate, u.Shards+was.Shards, u.Failed+was.Failed
		}
		c.KV.Set(key, schema.EncVaultUnpaid(u))
	}
	for _, ref := range run.lost { // in order already
		c.KV.Set(schema.ShardOrdKey(schema.PVaultLostQ, ref.Object, ref.Ordinal), nil)
	}
	for i, ref := range run.repairs { // listed in this block: none is written yet
		c.KV.Set(schema.PVaultRepairQ+schema.BE32(uint32(i)), refBytes(ref))
	}
	refs := make([]tx.ShardRef, 0, len(run.notPassed))
	for ref := range run.notPassed {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, tx.ShardRef.Compare)
	for _, ref := range refs {
		if _, open := c.KV.Get(schema.ShardOrdKey(schema.PVaultRepair, ref.Object, ref.Ordinal)); open { // only repairs read it
			c.KV.Set(schema.ShardOrdKey(schema.PVaultNotPassed, ref.Object, ref.Ordinal), nil)
		}
	}
}

// advance works on the tally until it finishes (true) or the block's budget is spent (false).
func (k *Keeper) advance(c *kernel.Ctx, run *tallyRun) bool {
	for {
		switch run.rec.Phase {
		case schema.TallyVotes:
			if !k.tallyVotes(c, run) {
				return false
			}
			switch {
			case run.rec.EpochMissing:
				k.tallyFinish(c, run)
				return true
			case run.rec.Decided:
				run.rec.Phase, run.rec.Cursor = schema.TallyStreaks, nil
			default:
				run.rec.Phase, run.rec.Cursor = schema.TallyPay, nil
			}
		case schema.TallyStreaks:
			if !k.tallyStreaks(c, run) {
				return false
			}
			run.rec.Phase, run.rec.Cursor = schema.TallyPay, nil
		case schema.TallyPay:
			if !k.tallyPay(c, run) {
				return false
			}
			run.rec.Phase, run.rec.Cursor = schema.TallyLose, nil
		case schema.TallyLose:
			if !k.tallyLose(c, run) {
				return false
			}
			run.rec.Phase, run.rec.Cursor = schema.TallyRepairs, nil
			run.repairs = k.repairList(c)
		case schema.TallyRepairs:
			if !k.tallyRepairs(c, run) {
				return false
			}
			k.tallyFinish(c, run)
			return true
		default:
			panic(fmt.Sprintf("ledger: the Vault tally of epoch %d is in phase %d", run.rec.Epoch, run.rec.Phase))
		}
	}
}

func refAt(b string) tx.ShardRef {
	return tx.ShardRef{Object: schema.UnBE64(b[:8]), Ordinal: schema.UnBE32(b[8:12])}
}

func refBytes(r tx.ShardRef) []byte { return []byte(schema.BE64(r.Object) + schema.BE32(r.Ordinal)) }

// tallyVotes works through the votes against shards, a shard's votes together, from the cursor; true when none
// is left.
func (k *Keeper) tallyVotes(c *kernel.Ctx, run *tallyRun) bool {
	vp := schema.IDKey(schema.PVaultFailVote, run.rec.Epoch)
	end := schema.PrefixEnd(vp)
	for {
		from := vp
		if run.rec.Cursor != nil {
			from = schema.PrefixEnd(vp + string(run.rec.Cursor))
		}
		// A batch of whole shards: it ends where a shard's votes end.
		var keys []string
		var last string
		full := false
		c.KV.Iterate(from, end, func(key string, _ []byte) bool {
			ref := key[len(vp) : len(vp)+12]
			if len(keys) >= tallyBatch && ref != last {
				full = true
				return false
			}
			keys, last = append(keys, key), ref
			return true
		})
		for i := 0; i < len(keys); {
			ref := keys[i][len(vp) : len(vp)+12]
			j := i
			var w uint64
			for ; j < len(keys) && keys[j][len(vp):len(vp)+12] == ref; j++ {
				var a tx.Address
				copy(a[:], keys[j][len(vp)+12:])
				w += run.weights[a]
			}
			if !run.more(c) {
				return false
			}
			if !run.rec.EpochMissing {
				k.tallyShard(c, run, refAt(ref), w)
			}
			for _, key := range keys[i:j] {
				c.KV.Delete(key)
			}
			run.rec.Cursor = []byte(ref)
			i = j
		}
		if !full {
			return true
		}
	}
}

// tallyShard decides one shard named failed by auditors of weight w: passed (nothing to do), not passed (not
// paid for the epoch), or failed (not paid, its provider slashed once for the epoch, its streak extended: lost
// after VaultLostAfterFailures epochs in a row).
func (k *Keeper) tallyShard(c *kernel.Ctx, run *tallyRun, ref tx.ShardRef, w uint64) {
	o, ok := k.Object(c, ref.Object)
	if !ok {
		return
	}
	s, ok := k.shard(c, o.ID, int(ref.Ordinal))
	if !ok || !challenged(o, s, run.epoch.StartHeight) {
		return
	}
	total, spoke, e := run.rec.Total, run.rec.Spoke, run.rec.Epoch
	failed := total > 0 && 3*w >= 2*total
	passed := run.rec.Decided && 3*(spoke-min(spoke, w)) >= 2*total
	if passed && !failed {
		return
	}
	run.notPassed[ref] = true
	u := run.unpaid[s.provider]
	if u == nil {
		u = &schema.VaultUnpaid{}
		run.unpaid[s.provider] = u
	}
	if o.Pooled {
		u.Rate += api.ShardRate(o.ShardSize, s.price)
	}
	u.Shards++
	if !failed {
		return
	}
	u.Failed++
	run.rec.Failed++
	n := o.K + o.M
	skey := schema.ShardOrdKey(schema.PVaultStreak, o.ID, ref.Ordinal)
	count := uint64(1)
	if b, ok := c.KV.Get(skey); ok {
		last, cnt, err := schema.DecVaultStreak(b)
		c.Must(err)
		if last+1 == e {
			count = cnt + 1
		}
	}
	c.KV.Set(skey, schema.EncVaultStreak(e, count))
	root := k.ShardRoot(c, o, int(ref.Ordinal))
	c.Emit(api.EventVaultProofFailed, api.AttrObjectID, o.ID, api.AttrStripe, int(ref.Ordinal)/n, api.AttrIndex, int(ref.Ordinal)%n,
		api.AttrRoot, root, api.AttrProvider, s.provider, api.AttrEpoch, e, api.AttrFailures, count)
	if count >= api.VaultLostAfterFailures {
		run.lost = append(run.lost, ref)
		run.rec.Lost++
	}
}

// tallyStreaks removes, from the cursor, the failure streaks the decided epoch did not extend (the shard passed);
// true when none is left.
func (k *Keeper) tallyStreaks(c *kernel.Ctx, run *tallyRun) bool {
	end := schema.PrefixEnd(schema.PVaultStreak)
	for {
		from := schema.PVaultStreak
		if run.rec.Cursor != nil {
			from = schema.PrefixEnd(schema.PVaultStreak + string(run.rec.Cursor))
		}
		var keys []string
		var vals [][]byte
		c.KV.Iterate(from, end, func(key string, v []byte) bool {
			keys, vals = append(keys, key), append(vals, v)
			return len(keys) < tallyBatch
		})
		for i, key := range keys {
			if !run.more(c) {
				return false
			}
			last, _, err := schema.DecVaultStreak(vals[i])
			c.Must(err)
			if last < run.rec.Epoch {
				c.KV.Delete(key)
			}
			run.rec.Cursor = []byte(key[len(schema.PVaultStreak):])
		}
		if len(keys) < tallyBatch {
			return true
		}
	}
}

// tallyPay pays each provider holding shards for the epoch — its rates less those of its shards that failed,
// from the Vault pool — and slashes each whose shards failed, once for the epoch: provider by provider in address
// order, within the block's budget (the cursor is the last provider done); then slashes the providers with
// failures and no Vault record left. A provider's pay and slash touch only its own records, the pools and the
// supply, so the outcome does not depend on where the blocks cut the pass.
func (k *Keeper) tallyPay(c *kernel.Ctx, run *tallyRun) bool {
	e := run.rec.Epoch
	var dt uint64
	if next, ok := k.Epoch(c, e+1); ok && next.StartMs > run.epoch.StartMs {
		dt = next.StartMs - run.epoch.StartMs
	}
	pool := k.Pool(c)
	from := schema.PVaultProvider
	if run.rec.Cursor != nil {
		from = schema.PVaultProvider + string(run.rec.Cursor) + "\x00"
	}
	for {
		var provs []*api.VaultProvider
		c.KV.Iterate(from, schema.PrefixEnd(schema.PVaultProvider), func(key string, b []byte) bool {
			var a tx.Address
			copy(a[:], key[len(schema.PVaultProvider):])
			provs = append(provs, kernel.MustDecode(schema.DecVaultProvider(a, b)))
			return len(provs) < tallyBatch
		})
		if len(provs) == 0 {
			break
		}
		for _, p := range provs {
			if !run.more(c) {
				k.setPool(c, pool)
				return false
			}
			k.payProvider(c, run, p, pool, dt)
			run.rec.Cursor = append([]byte(nil), p.Provider[:]...)
		}
		from = schema.AddrKey(schema.PVaultProvider, provs[len(provs)-1].Provider) + "\x00"
	}
	k.setPool(c, pool)
	// Failures of providers with no Vault record (it went with their last shard): slashed all the same, sorted.
	var left []tx.Address
	c.KV.Iterate(schema.PVaultUnpaid, schema.PrefixEnd(schema.PVaultUnpaid), func(key string, _ []byte) bool {
		var a tx.Address
		copy(a[:], key[len(schema.PVaultUnpaid):])
		if _, ok := run.unpaid[a]; !ok {
			left = append(left, a)
		}
		return true
	})
	for a := range run.unpaid {
		left = append(left, a)
	}
	slices.SortFunc(left, func(a, b tx.Address) int { return cmp.Compare(string(a[:]), string(b[:])) })
	failed := make([]uint64, len(left))
	for i, a := range left {
		failed[i] = k.takeUnpaid(c, run, a).Failed
	}
	for i, a := range left {
		if failed[i] > 0 && k.Slasher != nil {
			k.Slasher.SlashUpTo(c, a, c.Params.SlashDowntimePPM, ^uint64(0), fmt.Sprintf("failed %d storage proof(s) in epoch %d", failed[i], e))
		}
	}
	return true
}

// takeUnpaid is what the tally found for provider a — the rates of its failed shards, their count — in this
// block and in earlier ones, removed from both.
func (k *Keeper) takeUnpaid(c *kernel.Ctx, run *tallyRun, a tx.Address) schema.VaultUnpaid {
	var u schema.VaultUnpaid
	if mine := run.unpaid[a]; mine != nil {
		u = *mine
		delete(run.unpaid, a)
	}
	key := schema.AddrKey(schema.PVaultUnpaid, a)
	if b, ok := c.KV.Get(key); ok {
		was := kernel.MustDecode(schema.DecVaultUnpaid(b))
		u.Rate, u.Shards, u.Failed = u.Rate+was.Rate, u.Shards+was.Shards, u.Failed+was.Failed
		c.KV.Delete(key)
	}
	return u
}

// payProvider pays one provider its epoch's pay (a decided epoch) and slashes it when its shards failed.
func (k *Keeper) payProvider(c *kernel.Ctx, run *tallyRun, p *api.VaultProvider, pool *api.VaultPool, dt uint64) {
	e, decided := run.rec.Epoch, run.rec.Decided
	u := k.takeUnpaid(c, run, p.Provider)
	amount := uint64(0)
	if decided && p.Shards > 0 {
		rate := p.TermRate + p.PermRate - min(p.TermRate+p.PermRate, u.Rate)
		amount, p.Owed = accrue(rate, dt, p.Owed)
		amount = min(amount, pool.Balance) // a pool run dry pays what it holds
	}
	if amount == 0 && u.Failed == 0 {
		if decided && p.Shards > 0 {
			k.setVaultProvider(c, p) // what it is owed grew
		}
		return
	}
	c.Must(c.Credit(p.Provider, amount, kernel.InEscrow))
	pool.Balance -= amount
	pool.PaidTotal += amount
	run.rec.Paid += amount
	p.Earned += amount
	p.Failed += u.Failed
	if amount > 0 {
		p.LastPaid = e
	}
	k.setVaultProvider(c, p)
	c.Emit(api.EventVaultEpochPaid, api.AttrProvider, p.Provider, api.AttrEpoch, e, api.AttrAmount, amount,
		api.AttrShards, p.Shards, api.AttrFailed, u.Failed)
	if u.Failed > 0 && k.Slasher != nil {
		k.Slasher.SlashUpTo(c, p.Provider, c.Params.SlashDowntimePPM, ^uint64(0), fmt.Sprintf("failed %d storage proof(s) in epoch %d", u.Failed, e))
	}
}

func (k *Keeper) tallyLose(c *kernel.Ctx, run *tallyRun) bool {
	end := schema.PrefixEnd(schema.PVaultLostQ)
	for {
		var keys []string
		c.KV.Iterate(schema.PVaultLostQ, end, func(key string, _ []byte) bool {
			keys = append(keys, key)
			return len(keys) < tallyBatch
		})
		for _, key := range keys {
			if !run.more(c) {
				return false
			}
			k.lose(c, refAt(key[len(schema.PVaultLostQ):]), run.rec.Epoch)
			c.KV.Delete(key)
		}
		if len(keys) < tallyBatch {
			break
		}
	}
	for len(run.lost) > 0 {
		if !run.more(c) {
			return false
		}
		k.lose(c, run.lost[0], run.rec.Epoch)
		run.lost = run.lost[1:]
	}
	return true
}

// tallyRepairs visits the open repairs listed for the tally, in order: those listed in an earlier block
// (written), or this block's list; true when none is left.
func (k *Keeper) tallyRepairs(c *kernel.Ctx, run *tallyRun) bool {
	e, rec := run.rec.Epoch, run.epoch
	rec.Decided = run.rec.Decided
	notPassed := func(ref tx.ShardRef) bool {
		if run.notPassed[ref] {
			return true
		}
		_, ok := c.KV.Get(schema.ShardOrdKey(schema.PVaultNotPassed, ref.Object, ref.Ordinal))
		return ok
	}
	cands := func() []*candidate {
		if run.offers == nil {
			run.offers = k.eligible(c, 0, ^uint64(0))
		}
		return run.offers
	}
	for {
		var keys []string
		var refs []tx.ShardRef
		c.KV.Iterate(schema.PVaultRepairQ, schema.PrefixEnd(schema.PVaultRepairQ), func(key string, v []byte) bool {
			keys, refs = append(keys, key), append(refs, refAt(string(v)))
			return len(keys) < tallyBatch
		})
		for i, key := range keys {
			if !run.more(c) {
				return false
			}
			run.rec.Paid += k.repairOne(c, e, rec, refs[i], notPassed, cands)
			c.KV.Delete(key)
		}
		if len(keys) < tallyBatch {
			break
		}
	}
	for len(run.repairs) > 0 {
		if !run.more(c) {
			return false
		}
		run.rec.Paid += k.repairOne(c, e, rec, run.repairs[0], notPassed, cands)
		run.repairs = run.repairs[1:]
	}
	return true
}

// tallyFinish records the epoch's tally (vault.tallied); the tally's state goes.
func (k *Keeper) tallyFinish(c *kernel.Ctx, run *tallyRun) {
	if run.stored {
		c.KV.Delete(schema.KeyVaultTally)
	}
	if run.rec.EpochMissing {
		return
	}
	var keys []string
	c.KV.Iterate(schema.PVaultNotPassed, schema.PrefixEnd(schema.PVaultNotPassed), func(key string, _ []byte) bool {
		keys = append(keys, key)
		return true
	})
	for _, key := range keys {
		c.KV.Delete(key)
	}
	e, rec := run.rec.Epoch, run.epoch
	rec.Decided = run.rec.Decided
	paid := run.rec.Paid
	rec.Tallied, rec.Failed, rec.Lost, rec.Paid = true, int(run.rec.Failed), int(run.rec.Lost), paid
	if e+vaultEpochsKept <= epochOf(c, c.Height) {
		c.KV.Delete(schema.IDKey(schema.PVaultEpoch, e)) // tallied after its time to go (startEpoch kept it for the tally)
	} else {
		k.setEpoch(c, rec)
	}
	pool := k.Pool(c)
	c.Emit(api.EventVaultTallied, api.AttrEpoch, e, api.AttrDecided, strconv.FormatBool(rec.Decided), api.AttrStoredBytes, pool.TermBytes+pool.PermBytes,
		api.AttrFailed, run.rec.Failed, api.AttrLost, run.rec.Lost, api.AttrPaid, paid, api.AttrPool, pool.Balance)
}
