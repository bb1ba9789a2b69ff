package api

import (
	"github.com/sparenet/spare/ledger/tx"
)

// RewardWhy is what the liveness tally found about a provider in the last epoch it judged it: why it earned an
// availability reward, or why it did not.
type RewardWhy uint8

const (
	RewardNone        RewardWhy = iota // never judged with rewards on
	RewardEarned                       // up every check, a recent passed proof, stake covering its GPUs
	RewardNotUp                        // the auditors did not find it up in the epoch
	RewardNoProof                      // no passed proof of GPU within params.reward_proof_epochs
	RewardStakeShort                   // earned, its weight cut in proportion to the stake its GPUs require
	RewardJailed                       // jailed: it earns nothing
	RewardProofFailed                  // failed proof of GPU in the epoch: what it was owed is forfeited (burned)
)

var rewardWhyNames = [...]string{"none", "earned", "not_up", "no_recent_proof", "stake_short", "jailed", "proof_failed"}

func (w RewardWhy) String() string { return rewardWhyNames[min(int(w), len(rewardWhyNames)-1)] }

// MarshalText renders the reason's name in JSON.
func (w RewardWhy) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText parses a reason's name.
func (w *RewardWhy) UnmarshalText(b []byte) error {
	names := map[string]RewardWhy{}
	for i, n := range rewardWhyNames {
		names[n] = RewardWhy(i)
	}
	v, err := parseEnum("reward reason", b, names)
	*w = v
	return err
}

// Explain says in words what the reason means for the provider.
func (w RewardWhy) Explain() string {
	switch w {
	case RewardEarned:
		return "up every check, with a recent passed proof of GPU and its stake covering its GPUs"
	case RewardNotUp:
		return "not found up by two thirds of the auditor weight in the epoch"
	case RewardNoProof:
		return "no passed proof of GPU within params.reward_proof_epochs epochs of the epoch's start"
	case RewardStakeShort:
		return "its stake is short of what its GPUs require: its weight is cut in proportion"
	case RewardJailed:
		return "jailed: it earns nothing until it unjails"
	case RewardProofFailed:
		return "failed proof of GPU: what it was owed is forfeited"
	}
	return "not judged yet"
}

// MaxRewardWhy is the largest stored reason.
const MaxRewardWhy = RewardProofFailed

// Mops is the unit of an availability weight: a million int8 operations a second of verified throughput.
const Mops = 1_000_000

// MaxAvailabilityWeight bounds one provider's weight (2^40 Mops/s, about a zetta-op a second), so that the
// weights of a whole audit set (at most 2^19 providers) add up in 64 bits.
const MaxAvailabilityWeight = 1 << 40

// AvailabilityWeight is a provider's weight in the availability rewards of an epoch whose audit set is made at
// height: its verified throughput in Mops/s × its uptime (up+1)/(up+down+1) × min(1, stake ÷ the stake its GPUs
// require); 0 without a passed proof of GPU within params.reward_proof_epochs epochs. why says which applied.
func AvailabilityWeight(p *Provider, params *Params, height int64) (uint64, RewardWhy) {
	if p.Status == ProviderJailed {
		return 0, RewardJailed
	}
	window := params.RewardProofEpochs * params.EpochBlocks
	if !p.Verified || p.VerifiedOps == 0 || height < p.VerifiedHeight || uint64(height-p.VerifiedHeight) > window {
		return 0, RewardNoProof
	}
	w := min(max(p.VerifiedOps/Mops, 1), MaxAvailabilityWeight)
	w = tx.MulDiv(w, p.EpochsUp+1, p.EpochsUp+p.EpochsDown+1)
	why := RewardEarned
	if need := params.RequiredStake(p.Info.Hardware.GPUCount()); p.Stake < need {
		w, why = tx.MulDiv(w, p.Stake, need), RewardStakeShort
	}
	return w, why
}

// NextEmission is the emission of the epoch after one whose emission is rateNano (nano-uspr): 1/K less, in
// nano-uspr so that the decay of a small emission is not lost to rounding.
func NextEmission(rateNano, timeConstant uint64) uint64 { return rateNano - rateNano/timeConstant }

// NanoPerUSPR is the unit the emission schedule is computed in.
const NanoPerUSPR = 1000

// Emission is the record of what the chain minted: the epoch the schedule has reached and its emission, and the
// total minted (never above params.emission_cap).
type Emission struct {
	Epoch    uint64     `json:"epoch"`     // the next epoch to be tallied
	RateNano uint64     `json:"rate_nano"` // its emission, nano-uspr
	Minted   uint64     `json:"minted"`    // minted in all, uspr
	Last     RewardPots `json:"last"`      // the last epoch tallied
}

// RewardPots are one epoch's emission and its split.
type RewardPots struct {
	Epoch          uint64 `json:"epoch"`
	Emission       uint64 `json:"emission"` // the schedule's, within what the cap leaves
	Auditors       uint64 `json:"auditors"`
	Availability   uint64 `json:"availability"`
	Work           uint64 `json:"work"`
	UtilisationPPM uint64 `json:"utilisation_ppm"` // GPUs held by active leases ÷ GPUs in the audit set
	WeightTotal    uint64 `json:"weight_total"`    // the audit set's availability weights
	Burns          uint64 `json:"burns"`           // what the leases completed in the epoch burned
	// What was minted of each pot: down providers' parts, auditors not with the majority and the work cap leave
	// the rest unminted.
	PaidAuditors     uint64 `json:"paid_auditors"`
	PaidAvailability uint64 `json:"paid_availability"`
	PaidWork         uint64 `json:"paid_work"`
}

// Minted is what the epoch minted.
func (r *RewardPots) Minted() uint64 { return r.PaidAuditors + r.PaidAvailability + r.PaidWork }

// AuditorVote is how an auditor attested an epoch: the verdicts it agreed with, of those reached.
type AuditorVote struct {
	Address tx.Address
	Weight  uint64
	Agreed  uint64
}

// EmissionView answers the "emission" query: the schedule, where it stands, and what was minted and burned.
type EmissionView struct {
	FirstEpoch           uint64      `json:"emission_first_epoch"`
	TimeConstantEpochs   uint64      `json:"emission_time_constant_epochs"`
	Cap                  uint64      `json:"emission_cap"`
	BurnPPM              uint64      `json:"burn_ppm"`
	AuditorSharePPM      uint64      `json:"auditor_share_ppm"`
	AvailabilitySharePPM uint64      `json:"availability_share_ppm"`
	WorkRewardCapPPM     uint64      `json:"work_reward_cap_ppm"`
	EpochBlocks          uint64      `json:"epoch_blocks"`
	On                   bool        `json:"on"`
	NextEpoch            uint64      `json:"next_epoch"`          // the next epoch to be tallied
	NextEmission         uint64      `json:"next_epoch_emission"` // its emission (uspr), before the cap
	Minted               uint64      `json:"minted"`
	Burned               uint64      `json:"burned"`    // the supply's burned: lease payments' burns and forfeits
	CapLeft              uint64      `json:"cap_left"`  // what may still be minted
	Unclaimed            uint64      `json:"unclaimed"` // minted to providers, not yet claimed
	LastPots             *RewardPots `json:"last_epoch,omitempty"`
}

// RewardsView answers the "rewards" query for one address: what it is owed and earned, and the last epoch's
// verdict with its weight now.
type RewardsView struct {
	Address     tx.Address `json:"address"`
	Provider    bool       `json:"provider"`
	Owed        uint64     `json:"owed"`
	Earned      uint64     `json:"earned"`
	LastEpoch   uint64     `json:"last_epoch"`
	Why         RewardWhy  `json:"why"`
	Explain     string     `json:"explain"`
	WeightNow   uint64     `json:"weight_now"`    // its availability weight if an audit set were made now
	WhyNow      RewardWhy  `json:"why_now"`       // and why
	PendingWork uint64     `json:"pending_burns"` // burns of its leases completed in epochs not yet tallied
}

// EpochReward is one provider's rewards in one epoch, as the tally's events record them (EventProviderRewarded,
// EventWorkRewarded): what a client lists per epoch.
type EpochReward struct {
	Epoch        uint64     `json:"epoch"`
	Provider     tx.Address `json:"provider"`
	Availability uint64     `json:"availability"`
	Weight       uint64     `json:"weight"`
	Why          RewardWhy  `json:"why"`
	Work         uint64     `json:"work"`
	Burned       uint64     `json:"burned"` // what its leases completed in the epoch burned: the work reward's base
	Cap          uint64     `json:"cap"`    // work_reward_cap_ppm of it: the most its work could earn
	WorkWhy      RewardWhy  `json:"work_why,omitempty"`
}

func (r *attrs) why(key string) RewardWhy {
	var w RewardWhy
	if err := w.UnmarshalText([]byte(r.m[key])); err != nil {
		r.fail(key, "a reward reason")
	}
	return w
}

// ParseProviderRewarded reads an EventProviderRewarded's attributes: a provider's availability reward.
func ParseProviderRewarded(m map[string]string) (EpochReward, error) {
	r := &attrs{typ: EventProviderRewarded, m: m}
	e := EpochReward{Provider: r.addr(AttrProvider), Epoch: r.uint(AttrEpoch), Availability: r.uint(AttrAvailability),
		Weight: r.uint(AttrWeight), Why: r.why(AttrWhy)}
	return e, r.err
}

// ParseWorkRewarded reads an EventWorkRewarded's attributes: a provider's work reward.
func ParseWorkRewarded(m map[string]string) (EpochReward, error) {
	r := &attrs{typ: EventWorkRewarded, m: m}
	e := EpochReward{Provider: r.addr(AttrProvider), Epoch: r.uint(AttrEpoch), Work: r.uint(AttrWork),
		Burned: r.uint(AttrBurned), Cap: r.uint(AttrCap), WorkWhy: r.why(AttrWhy)}
	if e.Work > e.Cap && r.err == nil {
		r.fail(AttrWork, "at most the cap")
	}
	return e, r.err
}

// ParseEpochRewarded reads an EventEpochRewarded's attributes: an epoch's emission and what it minted.
func ParseEpochRewarded(m map[string]string) (RewardPots, error) {
	r := &attrs{typ: EventEpochRewarded, m: m}
	p := RewardPots{Epoch: r.uint(AttrEpoch), Emission: r.uint(AttrEmission), PaidAuditors: r.uint(AttrAuditors),
		PaidAvailability: r.uint(AttrAvailability), PaidWork: r.uint(AttrWork), Burns: r.uint(AttrBurns),
		UtilisationPPM: r.uint(AttrUtilisation), WeightTotal: r.uint(AttrWeightTotal)}
	if minted := r.uint(AttrMinted); r.err == nil && (minted != p.Minted() || minted > p.Emission) {
		r.fail(AttrMinted, "the sum of what was paid, within the emission")
	}
	return p, r.err
}
