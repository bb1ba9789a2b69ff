package trust

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// AnnounceRestart records a provider's announced restart.
func (k *Keeper) AnnounceRestart(c *kernel.Ctx, signer tx.Address) error {
	p, err := c.MustProvider(signer)
	if err != nil {
		return err
	}
	if c.Params.EpochBlocks == 0 {
		return tx.Errorf(tx.CodeBadEpoch, "auditing is off on this chain (params.epoch_blocks is 0): no restart needs announcing")
	}
	if p.Status == api.ProviderJailed {
		return tx.Errorf(tx.CodeProviderJailed, "provider %s is jailed: it is not audited", signer)
	}
	cur := k.EpochOf(c, c.Height)
	if v, ok := c.KV.Get(schema.AddrKey(schema.PRestart, signer)); ok {
		if last := schema.UnBE64(string(v)); cur < last+api.RestartEveryEpochs {
			return tx.Errorf(tx.CodeRateLimited, "provider %s announced a restart in epoch %d: the next announcement is allowed from epoch %d (now %d)",
				signer, last, last+api.RestartEveryEpochs, cur)
		}
	}
	c.KV.Set(schema.AddrKey(schema.PRestart, signer), []byte(schema.BE64(cur)))
	c.Emit(api.EventProviderRestartAnnounced, api.AttrProvider, signer, api.AttrEpoch, cur, api.AttrExcusedThrough, cur+api.RestartGraceEpochs)
	return nil
}

// restartExcuses says whether a down verdict for epoch e is excused by a restart announced in e or the
// RestartGraceEpochs before it, and that announcement's epoch.
func (k *Keeper) restartExcuses(c *kernel.Ctx, a tx.Address, e uint64) (uint64, bool) {
	v, ok := c.KV.Get(schema.AddrKey(schema.PRestart, a))
	if !ok {
		return 0, false
	}
	at := schema.UnBE64(string(v))
	return at, at <= e && e-at <= api.RestartGraceEpochs
}

func (k *Keeper) EpochOf(c *kernel.Ctx, h int64) uint64 {
	if c.Params.EpochBlocks == 0 || h < 1 {
		return 0
	}
	return uint64(h-1) / c.Params.EpochBlocks
}

func (k *Keeper) Auditors(c *kernel.Ctx) ([]api.Auditor, uint64) {
	var out []api.Auditor
	var total uint64
	c.KV.Iterate(schema.PAuditor, schema.PrefixEnd(schema.PAuditor), func(k string, v []byte) bool {
		var addr tx.Address
		copy(addr[:], k[len(schema.PAuditor):])
		a := kernel.MustDecode(schema.DecAuditor(addr, v))
		out = append(out, *a)
		total += a.Weight
		return true
	})
	return out, total
}

func (k *Keeper) SetAuditor(c *kernel.Ctx, a api.GenesisAuditor) {
	c.KV.Set(schema.AddrKey(schema.PAuditor, a.Address), schema.EncAuditor(&api.Auditor{Address: a.Address, Weight: a.Weight, Host: a.Host}))
}

func (k *Keeper) epochSet(c *kernel.Ctx, e uint64) (schema.AuditSet, bool) {
	b, ok := c.KV.Get(schema.IDKey(schema.PEpochSet, e))
	if !ok {
		return schema.AuditSet{}, false
	}
	return kernel.MustDecode(schema.DecAuditSet(b)), true
}

// EpochWork runs at the end of every block when auditing is on: it fixes the audit set at an epoch's first
// block and tallies the epoch before the one that ends here.
func (k *Keeper) EpochWork(c *kernel.Ctx) {
	if c.Params.EpochBlocks == 0 || c.Height < 1 {
		return
	}
	e := k.EpochOf(c, c.Height)
	if uint64(c.Height-1)%c.Params.EpochBlocks == 0 {
		set := schema.AuditSet{StartMs: c.TimeMs}
		c.KV.Iterate(schema.PProvider, schema.PrefixEnd(schema.PProvider), func(_ string, v []byte) bool {
			// Every provider that is not jailed and has bonded at least half its required stake: one slashed below
			// what it needs cannot bid, but it is still judged, so that a down streak keeps counting and
			// JailAfterDownEpochs applies to it (at 1% a slash, a streak jails it long before it falls to half).
			// The half keeps the set's cost bounded by stake: a provider that unbonded everything (it left, or a
			// Sybil recycling one stake into many registrations) is not audited.
			if p := kernel.MustDecode(schema.DecProvider(v)); p.Status != api.ProviderJailed && 2*p.Stake >= c.Params.RequiredStake(p.Info.Hardware.GPUCount()) {
				set.Providers = append(set.Providers, p.Owner)
				if c.Params.RewardsOn() { // its availability weight is fixed now, for the epoch's tally
					w, why := api.AvailabilityWeight(p, c.Params, c.Height)
					set.Weights, set.Whys = append(set.Weights, w), append(set.Whys, why)
					set.GPUs += p.Info.Hardware.GPUCount()
				}
			}
			// An auditor's bitmap has a bit for at most maxAuditSet providers (half a million): beyond that the
			// set would need splitting across epochs, which no network this size is near.
			return len(set.Providers) < schema.MaxAuditSet
		})
		if c.Params.RewardsOn() && set.Weights == nil {
			set.Weights, set.Whys = []uint64{}, []api.RewardWhy{} // an empty set still records that rewards are on
		}
		c.KV.Set(schema.IDKey(schema.PEpochSet, e), schema.EncAuditSet(set))
		c.Emit(api.EventEpochStarted, api.AttrEpoch, e, api.AttrProviders, len(set.Providers), api.AttrHeight, c.Height)
	}
	if uint64(c.Height)%c.Params.EpochBlocks == 0 && e >= 1 {
		k.tally(c, e-1)
	}
}

// Attest records an auditor's bitmap for an epoch that is open for it (the current one or the one before).
func (k *Keeper) Attest(c *kernel.Ctx, signer tx.Address, m *tx.Attest) error {
	if _, ok := c.KV.Get(schema.AddrKey(schema.PAuditor, signer)); !ok {
		return tx.Errorf(tx.CodeNotAuditor, "%s is not in the auditor set", signer)
	}
	if c.Params.EpochBlocks == 0 {
		return tx.Errorf(tx.CodeBadEpoch, "auditing is off on this chain (params.epoch_blocks is 0)")
	}
	cur := k.EpochOf(c, c.Height)
	if m.Epoch != cur && (cur == 0 || m.Epoch != cur-1) {
		return tx.Errorf(tx.CodeBadEpoch, "epoch %d is not open: attest the current epoch %d or the one before", m.Epoch, cur)
	}
	es, ok := k.epochSet(c, m.Epoch)
	if !ok {
		return tx.Errorf(tx.CodeBadEpoch, "epoch %d has no audit set yet", m.Epoch)
	}
	set := es.Providers
	if want := (len(set) + 7) / 8; len(m.Up) != want {
		return tx.Errorf(tx.CodeBadEpoch, "up bitmap is %d bytes; epoch %d audits %d providers: %d bytes", len(m.Up), m.Epoch, len(set), want)
	}
	if len(set)%8 != 0 && len(m.Up) > 0 && m.Up[len(m.Up)-1]>>(len(set)%8) != 0 {
		return tx.Errorf(tx.CodeBadEpoch, "up bitmap sets bits past the %d providers of epoch %d", len(set), m.Epoch)
	}
	key := schema.PAttest + schema.BE64(m.Epoch) + string(signer[:])
	if _, dup := c.KV.Get(key); dup {
		return tx.Errorf(tx.CodeDuplicateAttest, "%s already attested epoch %d", signer, m.Epoch)
	}
	c.KV.Set(key, append([]byte{}, m.Up...))
	up := 0
	for _, b := range m.Up {
		up += bits.OnesCount8(b)
	}
	c.Emit(api.EventEpochAttested, api.AttrEpoch, m.Epoch, api.AttrAuditor, signer, api.AttrUp, up, api.AttrProviders, len(set))
	return nil
}

// tally turns epoch e's attestations into verdicts, then drops the set and the attestations.
func (k *Keeper) tally(c *kernel.Ctx, e uint64) {
	es, ok := k.epochSet(c, e)
	if !ok {
		return
	}
	set := es.Providers
	weights := map[tx.Address]uint64{}
	auds, total := k.Auditors(c)
	for _, a := range auds {
		weights[a.Address] = a.Weight
	}
	type att struct {
		key    string
		weight uint64
		up     []byte
	}
	var atts []att
	prefix := schema.PAttest + schema.BE64(e)
	c.KV.Iterate(prefix, schema.PrefixEnd(prefix), func(k string, v []byte) bool {
		var a tx.Address
		copy(a[:], k[len(prefix):])
		atts = append(atts, att{k, weights[a], v})
		return true
	})
	var spoke uint64
	for _, a := range atts {
		spoke += a.weight
	}
	// Rewards (an audit set made with them on): the epoch's pots, and each auditor's agreement with the verdicts.
	var pots *api.RewardPots
	var agreed []uint64
	var rows *kernel.EventRows // provider.rewarded, one per provider judged, built together
	if c.Params.RewardsOn() && es.Weights != nil {
		p := k.Rewards.Pots(c, e, &es)
		pots, agreed = &p, make([]uint64, len(atts))
		rows = c.Rows(len(set), api.EventProviderRewarded, api.AttrProvider, api.AttrEpoch, api.AttrAvailability, api.AttrWeight, api.AttrWhy)
	}
	var ups, downs, excused int
	for i, addr := range set {
		var upW uint64
		for _, a := range atts {
			if a.up[i/8]&(1<<(i%8)) != 0 {
				upW += a.weight
			}
		}
		downW := spoke - upW
		isUp := 3*upW >= 2*total && total > 0
		isDown := !isUp && 3*downW >= 2*total && total > 0
		if pots != nil && (isUp || isDown) {
			for j, a := range atts {
				if (a.up[i/8]&(1<<(i%8)) != 0) == isUp {
					agreed[j]++
				}
			}
		}
		switch {
		case isUp:
			ups++
			k.providerUp(c, addr, e, pots, &es, i, rows)
		case isDown:
			if at, ok := k.restartExcuses(c, addr, e); ok {
				excused++
				c.Emit(api.EventProviderDownExcused, api.AttrProvider, addr, api.AttrEpoch, e, api.AttrAnnouncedEpoch, at)
				continue
			}
			downs++
			k.providerDown(c, addr, e, es.StartMs, rows)
		}
	}
	if pots != nil {
		rows.Flush(c)
		c.Mint(kernel.InRewards, pots.PaidAvailability) // what providerUp owed the providers it credited
	}
	for _, a := range atts {
		c.KV.Delete(a.key)
	}
	c.KV.Delete(schema.IDKey(schema.PEpochSet, e))
	k.tallyHardware(c, e, weights, total)
	c.Emit(api.EventEpochTallied, api.AttrEpoch, e, api.AttrProviders, len(set), api.AttrUp, ups, api.AttrDown, downs, api.AttrExcused, excused, api.AttrAuditorWeight, spoke, api.AttrTotalWeight, total)
	if pots != nil {
		votes := make([]api.AuditorVote, len(atts))
		for j, a := range atts {
			copy(votes[j].Address[:], a.key[len(prefix):])
			votes[j].Weight, votes[j].Agreed = a.weight, agreed[j]
		}
		k.Rewards.Finish(c, pots, votes, uint64(ups+downs+excused), total)
	}
}

// providerUp records an up epoch and, with rewards on (pots), credits the provider's availability reward: its
// weight, fixed in the audit set, of the epoch's availability pot — nothing when jailed since.
func (k *Keeper) providerUp(c *kernel.Ctx, a tx.Address, e uint64, pots *api.RewardPots, es *schema.AuditSet, i int, rows *kernel.EventRows) {
	p, ok := c.Provider(a)
	if !ok {
		return
	}
	p.EpochsUp++
	p.DownStreak = 0
	if pots != nil {
		w, why := es.Weights[i], es.Whys[i]
		var r uint64
		if p.Status == api.ProviderJailed {
			w, why = 0, api.RewardJailed
		}
		if w > 0 && pots.WeightTotal > 0 {
			r = tx.MulDiv(pots.Availability, w, pots.WeightTotal)
		}
		kernel.Owe(p, r) // minted once for the whole pass, after it
		pots.PaidAvailability += r
		p.RewardEpoch, p.RewardWhy = e, why
		rows.Row(c).Addr(a).Uint(e).Uint(r).Uint(w).Str(why.String())
	}
	c.SetProvider(p)
}

// providerDown records a down epoch: leases held are closed, billed only up to the epoch's start and the rest
// refunded; stake is slashed; a long streak jails.
func (k *Keeper) providerDown(c *kernel.Ctx, a tx.Address, e, epochStartMs uint64, rows *kernel.EventRows) {
	p, ok := c.Provider(a)
	if !ok {
		return
	}
	p.EpochsDown++
	p.DownStreak++
	if rows != nil { // it earns no availability reward for the epoch
		p.RewardEpoch, p.RewardWhy = e, api.RewardNotUp
		rows.Row(c).Addr(a).Uint(e).Uint(0).Uint(0).Str(api.RewardNotUp.String())
	}
	c.SetProvider(p)
	c.Emit(api.EventProviderDown, api.AttrProvider, a, api.AttrEpoch, e, api.AttrDownStreak, p.DownStreak)
	var held []uint64
	prefix := schema.AddrKey(schema.PLeaseByProv, a)
	c.KV.Iterate(prefix, schema.PrefixEnd(prefix), func(k string, _ []byte) bool {
		held = append(held, schema.UnBE64(k[len(prefix):]))
		return true
	})
	closed := 0
	for _, id := range held {
		l, err := c.Lease(id)
		if err != nil || l.State != api.LeasePending && l.State != api.LeaseActive {
			continue
		}
		if l.State == api.LeaseActive {
			k.Providers.ProviderFailed(c, a, l.Deposit)
		}
		end := max(epochStartMs, l.StartedMs)
		if err := k.Leases.EndLease(c, l, end, api.LeaseClosed, tx.Address{}, fmt.Sprintf("provider down in epoch %d (auditors)", e)); err != nil {
			panic("ledger: closing a down provider's lease: " + err.Error())
		}
		closed++
	}
	if closed > 0 {
		k.slash(c, a, c.Params.SlashDowntimePPM, fmt.Sprintf("down in epoch %d holding %d lease(s)", e, closed))
	}
	if p, _ = c.Provider(a); c.Params.JailAfterDownEpochs > 0 && p.DownStreak >= c.Params.JailAfterDownEpochs && p.Status != api.ProviderJailed {
		p.Status = api.ProviderJailed
		p.JailedUntilMs = c.TimeMs + c.Params.UnjailCooldownSec*1000
		c.SetProvider(p)
		c.Emit(api.EventProviderJailed, api.AttrProvider, a, api.AttrUntilMs, p.JailedUntilMs, api.AttrReason, fmt.Sprintf("down %d epochs in a row", p.DownStreak))
	}
}

// slash takes ppm of a provider's stake — bonded first, then unbonding entries, soonest to mature first — into
// the network pool.
func (k *Keeper) slash(c *kernel.Ctx, a tx.Address, ppm uint64, reason string) {
	k.SlashUpTo(c, a, ppm, ^uint64(0), reason)
}

// SlashUpTo slashes as slash does, but never more than limit, and says how much it took.
func (k *Keeper) SlashUpTo(c *kernel.Ctx, a tx.Address, ppm, limit uint64, reason string) uint64 {
	p, ok := c.Provider(a)
	if !ok || ppm == 0 {
		return 0
	}
	want := min(tx.MulDiv(p.Stake+p.Unbonding, ppm, tx.PPM), limit)
	fromStake := min(want, p.Stake)
	p.Stake -= fromStake
	c.Move(kernel.InStaked, kernel.InPool, fromStake)
	rest := want - fromStake
	if rest > 0 {
		type entry struct {
			key    string
			amount uint64
		}
		// Only this provider's entries, soonest to mature first: the owner index, not every unbonding entry.
		var mine []entry
		own := schema.PUnbondOwner + string(a[:])
		c.KV.Iterate(own, schema.PrefixEnd(own), func(k string, _ []byte) bool {
			rest := k[len(own):] // completeMs | seq
			key := schema.PUnbond + rest[:8] + string(a[:]) + rest[8:]
			if v, ok := c.KV.Get(key); ok {
				mine = append(mine, entry{key, schema.UnBE64(string(v))})
			}
			return true
		})
		for _, en := range mine {
			take := min(rest, en.amount)
			if take == en.amount {
				c.KV.Delete(en.key)
				r := en.key[len(schema.PUnbond):]
				c.KV.Delete(schema.PUnbondOwner + r[8:8+tx.AddressLen] + r[:8] + r[8+tx.AddressLen:])
			} else {
				c.KV.Set(en.key, []byte(schema.BE64(en.amount-take)))
			}
			p.Unbonding -= take
			c.Move(kernel.InUnbonding, kernel.InPool, take)
			rest -= take
			if rest == 0 {
				break
			}
		}
	}
	taken := want - rest
	p.Slashed += taken
	c.SetProvider(p)
	c.Emit(api.EventProviderSlashed, api.AttrProvider, a, api.AttrAmount, taken, api.AttrStake, p.Stake, api.AttrUnbonding, p.Unbonding, api.AttrReason, reason)
	return taken
}

func (k *Keeper) Unjail(c *kernel.Ctx, signer tx.Address) error {
	p, err := c.MustProvider(signer)
	if err != nil {
		return err
	}
	if p.Status != api.ProviderJailed {
		return tx.Errorf(tx.CodeNotJailed, "provider %s is %s, not jailed", signer, p.Status)
	}
	if c.TimeMs < p.JailedUntilMs {
		return tx.Errorf(tx.CodeJailCooldown, "provider %s stays jailed for %d s more", signer, (p.JailedUntilMs-c.TimeMs+999)/1000)
	}
	p.Status, p.JailedUntilMs, p.DownStreak = api.ProviderActive, 0, 0
	c.SetProvider(p)
	c.Emit(api.EventProviderUnjailed, api.AttrProvider, signer)
	return nil
}

// EpochView answers the "epoch" query.
func (k *Keeper) EpochView(c *kernel.Ctx, e uint64, height int64) (api.EpochView, error) {
	v := api.EpochView{Epoch: e, Current: k.EpochOf(c, height), Providers: []tx.Address{}, Attested: []api.Auditor{}}
	set, ok := k.epochSet(c, e)
	if !ok {
		if e > v.Current {
			return v, fmt.Errorf("epoch %d has not started (current %d): %w", e, v.Current, api.ErrNotFound)
		}
		v.Tallied = true
		return v, nil
	}
	v.Providers = set.Providers
	auds, _ := k.Auditors(c)
	for _, a := range auds {
		if _, ok := c.KV.Get(schema.PAttest + schema.BE64(e) + string(a.Address[:])); ok {
			v.Attested = append(v.Attested, a)
		}
	}
	return v, nil
}

// Proof of GPU (DESIGN §5, package proof): auditors challenge a provider's devices, unannounced, and send
// AttestHardware for the epoch. At the epoch's tally, auditors holding two thirds of the weight saying it passed
// make the provider verified (class and median measured throughput recorded); two thirds saying it failed —
// a device missing its class's deadline, a wrong row — unverify it, slash params.SlashProofPPM of its stake and
// jail it.

func (k *Keeper) AttestHardware(c *kernel.Ctx, signer tx.Address, m *tx.AttestHardware) error {
	if _, ok := c.KV.Get(schema.AddrKey(schema.PAuditor, signer)); !ok {
		return tx.Errorf(tx.CodeNotAuditor, "%s is not in the auditor set", signer)
	}
	if c.Params.EpochBlocks == 0 {
		return tx.Errorf(tx.CodeBadEpoch, "auditing is off on this chain (params.epoch_blocks is 0)")
	}
	if cur := k.EpochOf(c, c.Height); m.Epoch != cur && (cur == 0 || m.Epoch != cur-1) { // no wrap-around: epoch 2^64-1 is not "the one before 0"
		return tx.Errorf(tx.CodeBadEpoch, "epoch %d is not open: attest the current epoch %d or the one before", m.Epoch, cur)
	}
	if _, err := c.MustProvider(m.Provider); err != nil {
		return err
	}
	key := schema.PHWAttest + schema.BE64(m.Epoch) + string(m.Provider[:]) + string(signer[:])
	if _, dup := c.KV.Get(key); dup {
		return tx.Errorf(tx.CodeDuplicateAttest, "%s already attested %s's hardware in epoch %d", signer, m.Provider, m.Epoch)
	}
	c.KV.Set(key, schema.EncHWVerdict(schema.HWVerdict{Passed: m.Passed, Class: m.Class, Ops: m.OpsPerSec}))
	c.Emit(api.EventHardwareAttested, api.AttrEpoch, m.Epoch, api.AttrProvider, m.Provider, api.AttrAuditor, signer, api.AttrPassed, strconv.FormatBool(m.Passed),
		api.AttrClass, m.Class, api.AttrOpsPerSec, m.OpsPerSec, api.AttrTranscript, m.Transcript.String())
	return nil
}

// tallyHardware turns epoch e's proof-of-GPU verdicts into verified or slashed-and-jailed providers.
func (k *Keeper) tallyHardware(c *kernel.Ctx, e uint64, weights map[tx.Address]uint64, total uint64) {
	prefix := schema.PHWAttest + schema.BE64(e)
	type vote struct {
		key      string
		provider tx.Address
		weight   uint64
		v        schema.HWVerdict
	}
	var votes []vote
	c.KV.Iterate(prefix, schema.PrefixEnd(prefix), func(k string, b []byte) bool {
		var p, a tx.Address
		copy(p[:], k[len(prefix):])
		copy(a[:], k[len(prefix)+tx.AddressLen:])
		votes = append(votes, vote{k, p, weights[a], kernel.MustDecode(schema.DecHWVerdict(b))})
		return true
	})
	for i := 0; i < len(votes); {
		j := i
		var passW, failW uint64
		var ops []uint64
		class := ""
		for ; j < len(votes) && votes[j].provider == votes[i].provider; j++ {
			if votes[j].v.Passed {
				passW += votes[j].weight
				ops = append(ops, votes[j].v.Ops)
				if class == "" {
					class = votes[j].v.Class
				}
			} else {
				failW += votes[j].weight
			}
		}
		prov := votes[i].provider
		switch {
		case total > 0 && 3*passW >= 2*total:
			if p, ok := c.Provider(prov); ok {
				slices.Sort(ops)
				p.Verified, p.VerifiedClass, p.VerifiedOps, p.VerifiedHeight = true, class, ops[len(ops)/2], c.Height
				c.SetProvider(p)
				c.Emit(api.EventProviderVerified, api.AttrProvider, prov, api.AttrEpoch, e, api.AttrClass, class, api.AttrOpsPerSec, p.VerifiedOps)
			}
		case total > 0 && 3*failW >= 2*total:
			k.proofFailed(c, prov, e, votes[i].v.Class)
		}
		i = j
	}
	for _, v := range votes {
		c.KV.Delete(v.key)
	}
}

// proofFailed unverifies, slashes and jails a provider whose devices failed their proof of GPU.
func (k *Keeper) proofFailed(c *kernel.Ctx, a tx.Address, e uint64, class string) {
	p, ok := c.Provider(a)
	if !ok {
		return
	}
	p.Verified, p.VerifiedClass, p.VerifiedOps = false, "", 0
	if k.Rewards != nil {
		k.Rewards.Forfeit(c, p, e) // fake hardware loses what it was owed, this epoch's availability reward included
	}
	c.SetProvider(p)
	c.Emit(api.EventProviderProofFailed, api.AttrProvider, a, api.AttrEpoch, e, api.AttrClass, class)
	k.slash(c, a, c.Params.SlashProofPPM, fmt.Sprintf("failed proof of GPU as %s in epoch %d", class, e))
	if p, _ = c.Provider(a); p.Status != api.ProviderJailed {
		p.Status = api.ProviderJailed
		p.JailedUntilMs = c.TimeMs + c.Params.UnjailCooldownSec*1000
		c.SetProvider(p)
		c.Emit(api.EventProviderJailed, api.AttrProvider, a, api.AttrUntilMs, p.JailedUntilMs, api.AttrReason, "failed proof of GPU as "+class)
	}
}
