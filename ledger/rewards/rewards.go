package rewards

import (
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// record loads the emission record, the schedule at epoch 0 on a chain that has minted nothing yet.
func (k *Keeper) record(c *kernel.Ctx) *api.Emission {
	if b, ok := c.KV.Get(schema.KeyEmission); ok {
		return kernel.MustDecode(schema.DecEmission(b))
	}
	return &api.Emission{RateNano: c.Params.EmissionFirstEpoch * api.NanoPerUSPR}
}

// advance moves the schedule to epoch e (an epoch with no audit set was not tallied: its emission is skipped).
func (k *Keeper) advance(c *kernel.Ctx, rec *api.Emission, e uint64) {
	for ; rec.Epoch < e; rec.Epoch++ {
		rec.RateNano = api.NextEmission(rec.RateNano, c.Params.EmissionTimeConstantEpochs)
	}
}

// Pots computes epoch e's emission and its split, before the tally's pass over its audit set: the auditors' share,
// the availability share tapered by the network's paid utilisation (GPUs held by active leases over the audit
// set's), and what the two shares leave for work.
func (k *Keeper) Pots(c *kernel.Ctx, e uint64, set *schema.AuditSet) api.RewardPots {
	rec := k.record(c)
	k.advance(c, rec, e)
	em := min(rec.RateNano/api.NanoPerUSPR, c.Params.EmissionCap-min(rec.Minted, c.Params.EmissionCap))
	pots := api.RewardPots{Epoch: e, Emission: em, Auditors: tx.MulDiv(em, c.Params.AuditorSharePPM, tx.PPM)}
	leased := c.LeasedGPUs()
	switch {
	case set.GPUs > 0:
		pots.UtilisationPPM = min(tx.PPM, tx.MulDiv(leased, tx.PPM, set.GPUs))
	case leased > 0:
		pots.UtilisationPPM = tx.PPM
	}
	// The work pot is the emission's rest before the taper: what the taper takes from availability is not minted.
	// (Given to work, it let a provider that holds cheap leases on many GPUs — a utilisation pump — move other
	// providers' availability rewards into the work pot, where its own burns collect them: bench/economics found
	// it paying.)
	avail := tx.MulDiv(em, c.Params.AvailabilitySharePPM, tx.PPM)
	pots.Availability = tx.MulDiv(avail, tx.PPM-pots.UtilisationPPM, tx.PPM)
	pots.Work = em - pots.Auditors - avail
	for _, w := range set.Weights {
		pots.WeightTotal += w // at most 2^19 weights of at most 2^40: no overflow
	}
	return pots
}

// Finish pays epoch e's work and auditor rewards, after the tally credited the availability rewards (counted in
// pots.PaidAvailability), and records what the epoch minted. votes are the auditors who attested the epoch, with
// the verdicts they agreed with of the decided ones.
func (k *Keeper) Finish(c *kernel.Ctx, pots *api.RewardPots, votes []api.AuditorVote, decided, totalWeight uint64) {
	k.payWork(c, pots)
	for _, v := range votes {
		share := tx.MulDiv(pots.Auditors, v.Weight, max(totalWeight, 1))
		if decided > 0 {
			share = tx.MulDiv(share, v.Agreed, decided)
		}
		if share == 0 {
			continue
		}
		c.Mint(kernel.InRewards, share)
		c.Must(c.Credit(v.Address, share, kernel.InRewards))
		pots.PaidAuditors += share
		c.Emit(api.EventAuditorRewarded, api.AttrAuditor, v.Address, api.AttrEpoch, pots.Epoch, api.AttrAmount, share,
			api.AttrWeight, v.Weight, api.AttrAgreeing, v.Agreed, api.AttrDecided, decided)
	}
	rec := k.record(c)
	k.advance(c, rec, pots.Epoch)
	rec.Minted += pots.Minted() // within the cap: Pots bounded the emission by what it leaves
	rec.Last = *pots
	rec.RateNano = api.NextEmission(rec.RateNano, c.Params.EmissionTimeConstantEpochs)
	rec.Epoch = pots.Epoch + 1
	c.KV.Set(schema.KeyEmission, schema.EncEmission(rec))
	c.Emit(api.EventEpochRewarded, api.AttrEpoch, pots.Epoch, api.AttrEmission, pots.Emission, api.AttrMinted, pots.Minted(),
		api.AttrAuditors, pots.PaidAuditors, api.AttrAvailability, pots.PaidAvailability, api.AttrWork, pots.PaidWork,
		api.AttrBurns, pots.Burns, api.AttrUtilisation, pots.UtilisationPPM, api.AttrWeightTotal, pots.WeightTotal)
}

// payWork pays each provider whose completed leases burned b in the epoch its pro-rata share of the work pot,
// min(W·b/B, k·b) with k = params.work_reward_cap_ppm < 1, and drops the epoch's index. What the cap leaves is
// not minted; a jailed provider earns nothing.
func (k *Keeper) payWork(c *kernel.Ctx, pots *api.RewardPots) {
	type entry struct {
		key    string
		a      tx.Address
		burned uint64
	}
	var work []entry
	prefix := schema.PWorkBurn + schema.BE64(pots.Epoch)
	c.KV.Iterate(prefix, schema.PrefixEnd(prefix), func(key string, v []byte) bool {
		var a tx.Address
		copy(a[:], key[len(prefix):])
		b := schema.UnBE64(string(v))
		work = append(work, entry{key, a, b})
		pots.Burns = tx.SatAdd(pots.Burns, b)
		return true
	})
	for _, w := range work {
		c.KV.Delete(w.key)
		capped := tx.MulDiv(w.burned, c.Params.WorkRewardCapPPM, tx.PPM)
		r := min(tx.MulDiv(pots.Work, w.burned, pots.Burns), capped)
		p, ok := c.Provider(w.a)
		why := api.RewardEarned
		switch {
		case !ok:
			continue
		case p.Status == api.ProviderJailed:
			r, why = 0, api.RewardJailed
		}
		if r > 0 {
			c.Accrue(p, r)
			c.SetProvider(p)
			pots.PaidWork += r
		}
		c.Emit(api.EventWorkRewarded, api.AttrProvider, w.a, api.AttrEpoch, pots.Epoch, api.AttrWork, r, api.AttrBurned, w.burned,
			api.AttrCap, capped, api.AttrWhy, why)
	}
}

// Forfeit burns what a provider failing proof of GPU was owed (the caller stores p).
func (k *Keeper) Forfeit(c *kernel.Ctx, p *api.Provider, e uint64) {
	if p.RewardsOwed == 0 {
		return
	}
	owed := p.RewardsOwed
	c.Burn(kernel.InRewards, owed)
	p.RewardsOwed = 0
	p.RewardEpoch, p.RewardWhy = e, api.RewardProofFailed
	c.Emit(api.EventRewardsForfeited, api.AttrProvider, p.Owner, api.AttrEpoch, e, api.AttrAmount, owed)
}

// Claim moves what a provider is owed to its balance.
func (k *Keeper) Claim(c *kernel.Ctx, signer tx.Address) error {
	p, err := c.MustProvider(signer)
	if err != nil {
		return err
	}
	if p.RewardsOwed == 0 {
		return tx.Errorf(tx.CodeNothingToWithdraw, "provider %s is owed no rewards (earned %s in all): they accrue at each epoch's tally", signer, api.FormatSPR(p.RewardsEarned))
	}
	owed := p.RewardsOwed
	p.RewardsOwed = 0
	if err := c.Credit(signer, owed, kernel.InRewards); err != nil {
		return err
	}
	c.SetProvider(p)
	c.Emit(api.EventRewardsClaimed, api.AttrProvider, signer, api.AttrAmount, owed, api.AttrEarned, p.RewardsEarned)
	return nil
}

// EmissionView answers the "emission" query.
func (k *Keeper) EmissionView(c *kernel.Ctx) api.EmissionView {
	p := c.Params
	rec := k.record(c)
	s := c.Supply()
	v := api.EmissionView{FirstEpoch: p.EmissionFirstEpoch, TimeConstantEpochs: p.EmissionTimeConstantEpochs, Cap: p.EmissionCap,
		BurnPPM: p.BurnPPM, AuditorSharePPM: p.AuditorSharePPM, AvailabilitySharePPM: p.AvailabilitySharePPM,
		WorkRewardCapPPM: p.WorkRewardCapPPM, EpochBlocks: p.EpochBlocks, On: p.RewardsOn(),
		NextEpoch: rec.Epoch, NextEmission: rec.RateNano / api.NanoPerUSPR, Minted: rec.Minted, Burned: s.Burned,
		CapLeft: p.EmissionCap - min(rec.Minted, p.EmissionCap), Unclaimed: s.Rewards}
	if rec.Epoch > 0 {
		last := rec.Last
		v.LastPots = &last
	}
	return v
}

// RewardsView answers the "rewards" query for an address.
func (k *Keeper) RewardsView(c *kernel.Ctx, a tx.Address) api.RewardsView {
	v := api.RewardsView{Address: a}
	p, ok := c.Provider(a)
	if !ok {
		v.Explain = "not a provider: only providers and auditors earn rewards (an auditor's are paid to its balance)"
		return v
	}
	v.Provider, v.Owed, v.Earned, v.LastEpoch, v.Why = true, p.RewardsOwed, p.RewardsEarned, p.RewardEpoch, p.RewardWhy
	v.Explain = p.RewardWhy.Explain()
	if c.Params.RewardsOn() {
		v.WeightNow, v.WhyNow = api.AvailabilityWeight(p, c.Params, c.Height)
	}
	rec := k.record(c)
	for e := rec.Epoch; e <= c.EpochOf(c.Height) && e < rec.Epoch+3; e++ { // the epochs not yet tallied
		if b, ok := c.KV.Get(schema.WorkBurnKey(e, a)); ok {
			v.PendingWork += schema.UnBE64(string(b))
		}
	}
	return v
}
