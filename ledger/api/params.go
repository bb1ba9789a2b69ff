package api

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"net"
	"strconv"
	"strings"

	"github.com/sparenet/spare/ledger/tx"
)

// FeeFor is the least fee a transaction with this gas limit may pay at a gas price in uspr per million gas (the
// chain's params.min_gas_price, or a node's own): the gas at that price, rounded up, and at least params.min_fee.
func FeeFor(p *Params, gasLimit, pricePerMgas uint64) uint64 {
	hi, lo := bits.Mul64(gasLimit, pricePerMgas)
	if hi >= 1_000_000 {
		return ^uint64(0)
	}
	q, r := bits.Div64(hi, lo, 1_000_000)
	if r != 0 {
		q++
	}
	return max(q, p.MinFee)
}

// DefaultBlockMaxGas is the block gas limit `spare init`, `spare testnet` and `spare dev` write into genesis
// (consensus params block.max_gas). BenchmarkWorstBlock measures the dearest block an attacker can build at it.
const DefaultBlockMaxGas = 200_000_000

// ClusterSearchBudget bounds one placement search of a cluster order (steps: sets of providers tried). With at
// most max_bids_per_order candidates the search finds the cheapest fitting set of most real orders well within
// it (the hardest of 2,000 random 20-bid orders takes 771 steps); past it the cheapest set found so far wins.
// At gasSearchStep a whole search costs 3,000,000 gas (≈ 0.65 ms), plus gasSearchBidder per bidder.
const ClusterSearchBudget = 5_000

// USPR is the number of micro-units (uspr) in one SPR.
const USPR = 1_000_000

// FormatSPR writes an amount of uspr in SPR, as people read it: "10.898 SPR", "24 SPR", "0.000001 SPR".
func FormatSPR(uspr uint64) string {
	whole, frac := uspr/USPR, uspr%USPR
	if frac == 0 {
		return fmt.Sprintf("%d SPR", whole)
	}
	return strings.TrimRight(fmt.Sprintf("%d.%06d", whole, frac), "0") + " SPR"
}

// Params are the chain's economic and timing rules, fixed at genesis.
type Params struct {
	MinFee             uint64 `json:"min_fee"`               // uspr per transaction, paid to the block proposer
	TakeRatePPM        uint64 `json:"take_rate_ppm"`         // share of each lease payment to the network pool
	StakeBase          uint64 `json:"stake_base"`            // minimum bonded stake of any provider
	StakePerGPU        uint64 `json:"stake_per_gpu"`         // added per declared GPU
	UnbondingPeriodSec uint64 `json:"unbonding_period_sec"`  // stake stays slashable this long after Unbond
	BidWindowBlocks    uint64 `json:"bid_window_blocks"`     // default auction window
	MaxBidWindowBlocks uint64 `json:"max_bid_window_blocks"` // upper bound a tenant may ask for
	OrderTTLBlocks     uint64 `json:"order_ttl_blocks"`      // default: an unmatched order expires (refund) after this
	MaxOrderTTLBlocks  uint64 `json:"max_order_ttl_blocks"`
	StartTimeoutBlocks uint64 `json:"start_timeout_blocks"` // a lease not started by then closes with a full refund
	// Liveness. Every EpochBlocks blocks the auditors challenge every provider not jailed and attest who answered;
	// 0 turns auditing off. A provider is down for an epoch when auditors holding two thirds of the auditor weight
	// say so; down while holding leases, it loses SlashDowntimePPM of its stake (bonded and unbonding) and the
	// leases close; down JailAfterDownEpochs epochs in a row, it is jailed for at least UnjailCooldownSec.
	EpochBlocks         uint64 `json:"epoch_blocks"`
	SlashDowntimePPM    uint64 `json:"slash_downtime_ppm"`
	JailAfterDownEpochs uint64 `json:"jail_after_down_epochs"`
	UnjailCooldownSec   uint64 `json:"unjail_cooldown_sec"`
	// Proof of GPU: a provider that auditors holding two thirds of the weight find failing its challenge loses
	// SlashProofPPM of its stake and is jailed.
	SlashProofPPM uint64 `json:"slash_proof_ppm"`
	// Redundant execution: a replica whose output root a majority of the runs contradicts is unpaid and loses
	// SlashMismatchPPM of its stake.
	SlashMismatchPPM uint64 `json:"slash_mismatch_ppm"`
	// MaxBidsPerOrder bounds an order's open bids (at least two per lease it makes are always allowed); when full,
	// a new bid must undercut the dearest, which it displaces.
	MaxBidsPerOrder uint64 `json:"max_bids_per_order"`
	// RevealBlocks is how long a replicated order's reveal phase stays open: from the block in which no run can
	// still commit (each committed its result or ended) to the end of the RevealBlocks-th block after it. A run
	// that committed and did not reveal by then has no vote and is unpaid. (A run's commit deadline is the end of
	// its own billing, its duration or deposit, which the depletion sweep already enforces.)
	RevealBlocks uint64 `json:"reveal_blocks"`
	// MinGasPrice is the chain's floor on the gas price, in uspr per million gas: a transaction's fee must cover
	// its gas limit at this price (and be at least MinFee). Each node may ask more of the transactions it lets
	// into its mempool (`spare node --min-gas-price`).
	MinGasPrice uint64 `json:"min_gas_price"`
	// RetentionBlocks is how long a finished order and everything made for it (bids, leases, receipts,
	// commitments, its verification and cluster record) stay in the state before they are pruned; the explorer
	// keeps the history. 0 keeps everything (an archive chain).
	RetentionBlocks uint64 `json:"retention_blocks"`
	// CompletionGraceSec is how long after the end of its duration a lease stays open for its provider's
	// completion (CompleteLease with the receipt, or a replicated run's CommitResult) before the end-of-block sweep
	// closes it. Billing stops at the end all the same: the tenant pays nothing for the grace, and the provider is
	// paid exactly to the end either way. A lease whose deposit runs out first closes at that moment, as before.
	// 0: no grace (a chain whose state was written before it existed).
	CompletionGraceSec uint64 `json:"completion_grace_sec"`
	// Spare Vault's permanent deals (docs/vault.md): an endowment of StorageGiBYearCost uspr a stored GiB-year
	// for every year to come, each year's cost StorageDeclinePPM lower than the year's before (Arweave assumes
	// 0.5%): cost ÷ decline a GiB. Its shards are placed only at prices within cost ÷ 12 a GiB-month. 0 for either
	// (a chain whose state was written before the Vault): no permanent deals.
	StorageGiBYearCost uint64 `json:"storage_gib_year_cost"`
	StorageDeclinePPM  uint64 `json:"storage_decline_ppm"`
	// Rewards for verified contribution (docs/economics.md). BurnPPM of every lease payment is burned. Each auditor
	// epoch mints at most its emission — EmissionFirstEpoch uspr in epoch 0, each epoch's 1/EmissionTimeConstant
	// less than the one before (a smooth exponential: half-life K·ln 2 epochs) — and never more than EmissionCap in
	// all. AuditorSharePPM of an epoch's emission goes to the auditors who attested it with the majority,
	// AvailabilitySharePPM (less the network's paid utilisation) to the providers found up whose hardware passed
	// proof of GPU within RewardProofEpochs epochs, by verified throughput × uptime × stake coverage; the rest to
	// work: a provider whose completed leases burned b gets its pro-rata share, at most WorkRewardCapPPM·b (< b:
	// renting to yourself never pays). EmissionFirstEpoch 0 (a chain whose state was written before rewards): no
	// rewards, and the other emission params are 0.
	BurnPPM                    uint64 `json:"burn_ppm"`
	EmissionFirstEpoch         uint64 `json:"emission_first_epoch"`
	EmissionTimeConstantEpochs uint64 `json:"emission_time_constant_epochs"`
	EmissionCap                uint64 `json:"emission_cap"`
	AuditorSharePPM            uint64 `json:"auditor_share_ppm"`
	AvailabilitySharePPM       uint64 `json:"availability_share_ppm"`
	WorkRewardCapPPM           uint64 `json:"work_reward_cap_ppm"`
	RewardProofEpochs          uint64 `json:"reward_proof_epochs"`
}

// RewardsOn reports whether the chain mints rewards (params.emission_first_epoch > 0).
func (p *Params) RewardsOn() bool { return p.EmissionFirstEpoch > 0 }

// Bounds of the emission params: the first epoch's emission is at most MaxEmissionFirstEpoch uspr (a billion SPR),
// so that it fits in nano-uspr (×1000) in 64 bits; the cap and the time constant are bounded so that their
// product does too.
const (
	MaxEmissionFirstEpoch   = 1_000_000_000 * USPR
	MaxEmissionTimeConstant = 1 << 40
	MaxRewardProofEpochs    = 1 << 32
)

// MaxCompletionGraceSec bounds params.completion_grace_sec: escrow stays locked no longer than this after a
// lease's end.
const MaxCompletionGraceSec = 3600

// MinRetentionBlocks is the shortest retention window a chain may set (other than 0: keep everything).
const MinRetentionBlocks = 100

// DefaultParams are the parameters `spare init` writes.
func DefaultParams() Params {
	return Params{
		MinFee:              1_000,  // 0.001 SPR
		TakeRatePPM:         20_000, // 2%
		StakeBase:           100 * USPR,
		StakePerGPU:         50 * USPR,
		UnbondingPeriodSec:  7 * 24 * 3600,
		BidWindowBlocks:     1,
		MaxBidWindowBlocks:  600,
		OrderTTLBlocks:      3_000,
		MaxOrderTTLBlocks:   1_000_000,
		StartTimeoutBlocks:  300,
		EpochBlocks:         300,    // 30 s at 100 ms blocks
		SlashDowntimePPM:    10_000, // 1%
		JailAfterDownEpochs: 3,
		UnjailCooldownSec:   600,
		SlashProofPPM:       50_000,  // 5%
		SlashMismatchPPM:    100_000, // 10%
		MaxBidsPerOrder:     20,      // as Akash caps bids per order
		RevealBlocks:        600,     // 60 s at 100 ms blocks: a provider polls every second
		MinGasPrice:         500,     // 0.0005 uspr per gas: 2,000,000 gas cost the min_fee
		RetentionBlocks:     864_000, // a day at 100 ms blocks
		// A minute: the provider stops the workload at the end of its own count of the duration (SIGTERM, 5 s before
		// SIGKILL in the process runtime, the engine's stop timeout in Docker), hashes the outputs (a minute plus a
		// second per 20 MiB at most: bounded by the lease's disk), signs the receipt and waits a block or two for it
		// to land, while the provider's clock and the block time may differ by a few seconds.
		CompletionGraceSec: 60,
		// 0.06 SPR a GiB-year (three times the 0.002 SPR a GiB-month a provider asks by default, so that the
		// endowment pays a provider priced at up to 0.005), falling 0.5% a year: 12 SPR a stored GiB for good.
		StorageGiBYearCost: 60_000,
		StorageDeclinePPM:  5_000,
		// Rewards (docs/economics.md): 5% of every lease payment burned; a 4-year half-life at 30 s epochs (K =
		// 4·1,051,200/ln 2 epochs) from 16.484 SPR an epoch, under a cap of 100 million SPR (E_0·K ≈ the cap); 5%
		// to auditors, up to 50% to available capacity, the rest to work, capped at half the burns behind it; a
		// proof of GPU within a day of 30 s epochs.
		BurnPPM:                    50_000,
		EmissionFirstEpoch:         16_484_000,
		EmissionTimeConstantEpochs: 6_066_245,
		EmissionCap:                100_000_000 * USPR,
		AuditorSharePPM:            50_000,
		AvailabilitySharePPM:       500_000,
		WorkRewardCapPPM:           500_000,
		RewardProofEpochs:          2_880,
	}
}

// validateRewards checks the emission and reward params: rewards off leaves them all 0; on, the shares fit in
// the emission, the schedule is bounded by the cap, and no wash trade can profit — a tenant renting its own
// provider pays the take rate and the burn, β·G, and gets back at most k·β·G in work rewards: k < 1 and β > 0
// make the trade lose (τ + (1−k)·β)·G whatever the epoch's emission and burns are.
func (p Params) validateRewards() error {
	switch {
	case p.TakeRatePPM+p.BurnPPM > tx.PPM:
		return fmt.Errorf("params.burn_ppm %d: take_rate_ppm + burn_ppm is at most %d (100%% of a payment)", p.BurnPPM, tx.PPM)
	case p.EmissionFirstEpoch == 0:
		if p.EmissionTimeConstantEpochs|p.EmissionCap|p.AuditorSharePPM|p.AvailabilitySharePPM|p.WorkRewardCapPPM|p.RewardProofEpochs != 0 {
			return fmt.Errorf("params.emission_first_epoch is 0 (no rewards) but other emission params are set: set emission_first_epoch, or set emission_time_constant_epochs, emission_cap, auditor_share_ppm, availability_share_ppm, work_reward_cap_ppm and reward_proof_epochs to 0")
		}
		return nil
	case p.EpochBlocks == 0:
		return fmt.Errorf("params.emission_first_epoch %d with epoch_blocks 0: rewards are paid per auditor epoch; turn auditing on or set emission_first_epoch to 0", p.EmissionFirstEpoch)
	case p.EmissionFirstEpoch > MaxEmissionFirstEpoch:
		return fmt.Errorf("params.emission_first_epoch %d: at most %d uspr (a billion SPR an epoch)", p.EmissionFirstEpoch, uint64(MaxEmissionFirstEpoch))
	case p.EmissionTimeConstantEpochs == 0 || p.EmissionTimeConstantEpochs > MaxEmissionTimeConstant:
		return fmt.Errorf("params.emission_time_constant_epochs %d: use 1..%d (each epoch mints 1/K less than the one before; 6066245 is a 4-year half-life at 30 s epochs)", p.EmissionTimeConstantEpochs, uint64(MaxEmissionTimeConstant))
	case p.EmissionCap < p.EmissionFirstEpoch:
		return fmt.Errorf("params.emission_cap %d below emission_first_epoch %d: the cap bounds everything ever minted", p.EmissionCap, p.EmissionFirstEpoch)
	case tx.MulDiv(p.EmissionFirstEpoch, p.EmissionTimeConstantEpochs, 2) > p.EmissionCap:
		return fmt.Errorf("params.emission_cap %d: the schedule sums to about emission_first_epoch × emission_time_constant_epochs = %d, more than twice the cap: it would stop abruptly at the cap (a halving in disguise); raise the cap or lower the schedule", p.EmissionCap, tx.MulDiv(p.EmissionFirstEpoch, p.EmissionTimeConstantEpochs, 1))
	case p.AuditorSharePPM+p.AvailabilitySharePPM > tx.PPM:
		return fmt.Errorf("params.auditor_share_ppm %d + availability_share_ppm %d: at most %d (the rest goes to work)", p.AuditorSharePPM, p.AvailabilitySharePPM, tx.PPM)
	case p.WorkRewardCapPPM >= tx.PPM:
		return fmt.Errorf("params.work_reward_cap_ppm %d: below %d, so that a wash trade's work reward k·β·G stays below the burn β·G it paid (renting to yourself must lose)", p.WorkRewardCapPPM, tx.PPM)
	case p.AuditorSharePPM+p.AvailabilitySharePPM < tx.PPM && (p.BurnPPM == 0 || p.WorkRewardCapPPM == 0):
		return fmt.Errorf("params.burn_ppm %d, work_reward_cap_ppm %d: the work share (what auditor_share_ppm and availability_share_ppm leave) is paid against burns, capped at work_reward_cap_ppm of them: set both above 0, or give the whole emission to auditors and availability", p.BurnPPM, p.WorkRewardCapPPM)
	case p.RewardProofEpochs == 0 || p.RewardProofEpochs > MaxRewardProofEpochs:
		return fmt.Errorf("params.reward_proof_epochs %d: use 1..%d (how recent a provider's passed proof of GPU must be for availability rewards)", p.RewardProofEpochs, uint64(MaxRewardProofEpochs))
	}
	return nil
}

// Validate checks the parameters for sense.
func (p Params) Validate() error {
	switch {
	case p.TakeRatePPM > tx.PPM:
		return fmt.Errorf("params.take_rate_ppm %d: at most %d (100%%)", p.TakeRatePPM, tx.PPM)
	case p.BidWindowBlocks == 0:
		return fmt.Errorf("params.bid_window_blocks is 0: at least 1")
	case p.MaxBidWindowBlocks < p.BidWindowBlocks:
		return fmt.Errorf("params.max_bid_window_blocks %d below bid_window_blocks %d", p.MaxBidWindowBlocks, p.BidWindowBlocks)
	case p.OrderTTLBlocks <= p.BidWindowBlocks:
		return fmt.Errorf("params.order_ttl_blocks %d must exceed bid_window_blocks %d", p.OrderTTLBlocks, p.BidWindowBlocks)
	case p.MaxOrderTTLBlocks < p.OrderTTLBlocks:
		return fmt.Errorf("params.max_order_ttl_blocks %d below order_ttl_blocks %d", p.MaxOrderTTLBlocks, p.OrderTTLBlocks)
	case p.StartTimeoutBlocks == 0:
		return fmt.Errorf("params.start_timeout_blocks is 0: at least 1")
	case p.SlashProofPPM > tx.PPM:
		return fmt.Errorf("params.slash_proof_ppm %d: at most %d (100%%)", p.SlashProofPPM, tx.PPM)
	case p.SlashMismatchPPM > tx.PPM:
		return fmt.Errorf("params.slash_mismatch_ppm %d: at most %d (100%%)", p.SlashMismatchPPM, tx.PPM)
	case p.SlashDowntimePPM > tx.PPM:
		return fmt.Errorf("params.slash_downtime_ppm %d: at most %d (100%%)", p.SlashDowntimePPM, tx.PPM)
	case p.MaxBidsPerOrder == 0 || p.MaxBidsPerOrder > 1<<16:
		return fmt.Errorf("params.max_bids_per_order %d: use 1..65536 (20 is the default)", p.MaxBidsPerOrder)
	case p.RevealBlocks == 0 || p.RevealBlocks > 1<<32:
		return fmt.Errorf("params.reveal_blocks %d: use 1..%d (600 is the default): a replica needs at least one block to reveal its committed result", p.RevealBlocks, uint64(1)<<32)
	case p.MinGasPrice > tx.PPM*USPR:
		return fmt.Errorf("params.min_gas_price %d uspr per million gas: at most %d (1 SPR per gas)", p.MinGasPrice, tx.PPM*USPR)
	case p.RetentionBlocks != 0 && (p.RetentionBlocks < MinRetentionBlocks || p.RetentionBlocks > 1<<40):
		return fmt.Errorf("params.retention_blocks %d: use 0 (keep everything) or %d..%d (864000 is the default): a tenant must have time to read its results", p.RetentionBlocks, MinRetentionBlocks, uint64(1)<<40)
	case p.CompletionGraceSec > MaxCompletionGraceSec:
		return fmt.Errorf("params.completion_grace_sec %d: use 0..%d (60 is the default): a lease's escrow stays locked that long after its end", p.CompletionGraceSec, MaxCompletionGraceSec)
	case p.StorageGiBYearCost > 12*tx.MaxStoragePrice:
		return fmt.Errorf("params.storage_gib_year_cost %d: at most %d uspr (12 times the highest storage price a GiB-month)", p.StorageGiBYearCost, 12*uint64(tx.MaxStoragePrice))
	case p.StorageDeclinePPM > tx.PPM/2 || (p.StorageGiBYearCost > 0) != (p.StorageDeclinePPM > 0):
		return fmt.Errorf("params.storage_decline_ppm %d: 1..%d with storage_gib_year_cost set (5000, 0.5%% a year, is the default), or both 0 for no permanent deals", p.StorageDeclinePPM, tx.PPM/2)
	case p.EpochBlocks == 1:
		return fmt.Errorf("params.epoch_blocks 1: auditors need at least 2 blocks to probe and attest (0 turns auditing off)")
	}
	return p.validateRewards()
}

// RequiredStake is the minimum bonded stake for a provider declaring gpus GPUs.
func (p Params) RequiredStake(gpus uint64) uint64 {
	return p.StakeBase + p.StakePerGPU*gpus
}

// GenesisAccount is a funded account at genesis.
type GenesisAccount struct {
	Address tx.Address `json:"address"`
	Balance uint64     `json:"balance"`
}

// GenesisAuditor is a member of the auditor set and its weight (validators in a network). Host, when given, is
// the "host:port" where the auditor accepts TCP connections (`spare auditor --listen`): providers measure their
// round trips to it and publish them with their peers', a fixed point of the latency map.
type GenesisAuditor struct {
	Address tx.Address `json:"address"`
	Weight  uint64     `json:"weight"`
	Host    string     `json:"host,omitempty"`
}

// Genesis is the ledger's part of genesis.json (app_state).
type Genesis struct {
	Params   Params           `json:"params"`
	Accounts []GenesisAccount `json:"accounts"`
	Auditors []GenesisAuditor `json:"auditors,omitempty"`
}

// ParseGenesis decodes and validates app_state.
func ParseGenesis(b []byte) (*Genesis, error) {
	var g Genesis
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("genesis app_state: %w", err)
	}
	if g.Params.MaxBidsPerOrder == 0 { // a genesis written before the cap existed
		g.Params.MaxBidsPerOrder = DefaultParams().MaxBidsPerOrder
	}
	if g.Params.RevealBlocks == 0 { // a genesis written before commit-reveal existed
		g.Params.RevealBlocks = DefaultParams().RevealBlocks
	}
	if err := g.Params.Validate(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	seen := map[tx.Address]bool{}
	var total uint64
	for i, a := range g.Accounts {
		if a.Address.IsZero() {
			return nil, fmt.Errorf("genesis accounts[%d]: zero address", i)
		}
		if seen[a.Address] {
			return nil, fmt.Errorf("genesis accounts[%d]: %s listed twice", i, a.Address)
		}
		seen[a.Address] = true
		if total+a.Balance < total {
			return nil, fmt.Errorf("genesis accounts: total supply overflows")
		}
		total += a.Balance
	}
	seenAud := map[tx.Address]bool{}
	var weight uint64
	for i, a := range g.Auditors {
		switch {
		case a.Address.IsZero():
			return nil, fmt.Errorf("genesis auditors[%d]: zero address", i)
		case seenAud[a.Address]:
			return nil, fmt.Errorf("genesis auditors[%d]: %s listed twice", i, a.Address)
		case a.Weight == 0 || a.Weight > 1<<40:
			return nil, fmt.Errorf("genesis auditors[%d]: weight %d: use 1..2^40", i, a.Weight)
		case a.Host != "" && !validHostPort(a.Host):
			return nil, fmt.Errorf("genesis auditors[%d]: host %q: write host:port (at most %d bytes), or leave it out", i, a.Host, tx.MaxURILen)
		}
		seenAud[a.Address] = true
		weight += a.Weight
	}
	return &g, nil
}

// validHostPort accepts "host:port" with a non-empty host and a port 1..65535.
func validHostPort(s string) bool {
	if len(s) > tx.MaxURILen {
		return false
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}
