package main

import (
	"fmt"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// baseParams are the default params (api.DefaultParams: take rate, burn, reward shares, work cap, stakes, slashes)
// with the clock and the emission schedule scaled to a simulation of thousands of epochs: 5-block epochs (30 s
// at the simulation's 6 s blocks, as the defaults' 300 blocks of 100 ms), a proof of GPU valid for 100 epochs, a
// 10-minute unjail cooldown, short retention, and an emission of e0 uspr in epoch 0 decaying with time constant
// k epochs under a cap of e0·k — the schedule's sum, as the defaults' cap is.
func baseParams(e0, k uint64) api.Params {
	p := api.DefaultParams()
	p.EpochBlocks = 5
	p.RewardProofEpochs = 100
	p.UnjailCooldownSec = 600
	p.RetentionBlocks = 5 * api.MinRetentionBlocks
	p.UnbondingPeriodSec = 3600
	p.EmissionFirstEpoch, p.EmissionTimeConstantEpochs, p.EmissionCap = e0, k, e0*k
	return p
}

// Scenario figures: the main runs' population and schedule.
const (
	mainE0 = 500_000 // 0.5 SPR an epoch at first: about 0.42 SPR a GPU-hour over the 144 simulated GPUs
	mainK  = 800     // epochs: a half-life of 555 epochs, so that a 4,000-epoch run sees the emission fall ~150-fold
)

// scenarioDef is a main scenario: a demand level, and whether its wash trader pumps the utilisation (an honest
// worker holding 1-uspr self-leases) rather than renting itself at market prices.
type scenarioDef struct {
	Name  string
	Share float64 // of the honest providers' GPUs the tenants keep leased
	Pump  bool
}

var scenarioDefs = []scenarioDef{{"low", 0.10, false}, {"high", 0.85, false}, {"pump", 0.85, true}}

// mainConfig is a main scenario. Without a pump: 8 honest providers, 3 idle, 2 with fake hardware, 2 wash
// traders renting themselves and a ring of 3 renting each other. With one: 8 honest providers, 3 idle and an
// honest worker that keeps 6 8-GPU leases from its sock puppet open at 1 uspr an hour. wash says whether the wash
// traders trade (false: the counterfactual, where they idle).
func mainConfig(def scenarioDef, epochs int, seed uint64, wash bool) Config {
	c := Config{Name: def.Name, Seed: seed, Epochs: epochs, Params: baseParams(mainE0, mainK), Tenants: 4, Demand: def.Share, LeaseBlocks: [2]int{20, 80},
		WashGPUs: gpusPerProvider, WashPrice: gpuHourPrice * 9 / 10, WashBlocks: 100, PumpLeases: 6, PumpPrice: 1, PumpBlocks: 2400,
		Samples: 100, CheckEvery: 1000}
	if def.Pump {
		c.Honest, c.Idle, c.WorkPump = 8, 3, 1
		c.Wash = map[role]bool{roleWorkPump: wash}
	} else {
		c.Honest, c.Idle, c.Fake, c.WashAlone, c.RingSize = 8, 3, 2, 2, 3
		c.Wash = map[role]bool{roleWashAlone: wash, roleWashRing: wash}
	}
	if !wash {
		c.Name += " (counterfactual)"
	}
	return c
}

// strategies are the wash-trading strategies the sweep tries, one at a time, each against the same chain
// where nobody wash-trades.
var strategies = []role{roleWashAlone, roleWashRing, rolePump, roleWorkPump}

// Sweep grid: every combination is within what Params.Validate accepts.
var (
	sweepTake      = []uint64{0, 20_000}
	sweepBurn      = []uint64{1_000, 50_000, 0} // 0 stands for the most allowed: 100% less the take
	sweepWorkCap   = []uint64{1, 500_000, 999_999}
	sweepAvail     = []uint64{0, 500_000, 950_000}
	sweepEmissionX = []float64{0.3, 3, 300, 30_000} // the first epoch's emission, in multiples of an epoch's expected burns
)

// sweepDemand is the sweep's demand: high, so that the burns are large and the work pot can bind.
const sweepDemand = 0.85

// SweepPoint is one combination of params and what each strategy made of it.
type SweepPoint struct {
	TakePPM      uint64             `json:"take_rate_ppm"`
	BurnPPM      uint64             `json:"burn_ppm"`
	WorkCapPPM   uint64             `json:"work_reward_cap_ppm"`
	AvailPPM     uint64             `json:"availability_share_ppm"`
	EmissionX    float64            `json:"emission_x_burns"`
	E0           uint64             `json:"emission_first_epoch"`
	Refused      string             `json:"refused,omitempty"`
	Outcomes     map[string]Outcome `json:"outcomes,omitempty"`
	Failures     int                `json:"failed_txs,omitempty"`
	Invariants   int                `json:"invariant_checks"`
	cf           *Result
	runs         map[string]*Result
	params       api.Params
	sweepEpochs  int
	sweepSeed    uint64
	expectedBurn float64
}

// Outcome is a strategy's net against the same providers not trading.
type Outcome struct {
	NetSPR   float64 `json:"net_spr"`            // per provider, the wash group's sock puppets included
	CfSPR    float64 `json:"counterfactual_spr"` // the same providers in the chain where nobody wash-trades
	DiffSPR  float64 `json:"diff_spr"`           // NetSPR - CfSPR
	PaidSPR  float64 `json:"wash_paid_spr"`      // what its sock puppets paid into wash leases
	WorkSPR  float64 `json:"work_spr"`           // its work rewards
	AvailSPR float64 `json:"avail_spr"`
}

// sweepPopulation is every sweep chain's: 3 honest providers and a worker that may pump, 2 idle, a lone wash
// trader, a ring of 3 and a pump; only the strategy under test trades.
func sweepConfig(p api.Params, epochs int, seed uint64, strategy role, trade bool) Config {
	c := Config{Name: "sweep", Seed: seed, Epochs: epochs, Params: p, Honest: 3, Idle: 2, WashAlone: 1, RingSize: 3, Pump: 1, WorkPump: 1,
		Tenants: 2, Demand: sweepDemand, LeaseBlocks: [2]int{10, 40}, WashGPUs: gpusPerProvider, WashPrice: gpuHourPrice, WashBlocks: 20,
		PumpLeases: 8, PumpPrice: 1, PumpBlocks: 2400, Samples: 1, CheckEvery: 100}
	if trade {
		c.Wash = map[role]bool{strategy: true}
	}
	return c
}

// expectedBurns is an epoch's expected burns in a sweep chain: the honest GPUs leased at the mean bid price.
func expectedBurns(burnPPM uint64) float64 {
	gpus := float64(4*gpusPerProvider) * sweepDemand
	epochSec := 5 * blockDT.Seconds()
	volume := gpus * float64(gpuHourPrice) * 0.875 * epochSec / 3600
	return volume * float64(burnPPM) / tx.PPM
}

// sweepPoints lays out the grid.
func sweepPoints(epochs int, seed uint64) []*SweepPoint {
	var out []*SweepPoint
	for _, take := range sweepTake {
		for _, burn := range sweepBurn {
			if burn == 0 {
				burn = tx.PPM - take
			}
			for _, k := range sweepWorkCap {
				for _, avail := range sweepAvail {
					for _, x := range sweepEmissionX {
						b := expectedBurns(burn)
						e0 := max(uint64(x*b), 1)
						p := baseParams(e0, 1_000_000) // no visible decay over a sweep run
						p.TakeRatePPM, p.BurnPPM, p.WorkRewardCapPPM, p.AvailabilitySharePPM = take, burn, k, avail
						sp := &SweepPoint{TakePPM: take, BurnPPM: burn, WorkCapPPM: k, AvailPPM: avail, EmissionX: x, E0: e0,
							params: p, sweepEpochs: epochs, sweepSeed: seed, expectedBurn: b}
						if err := p.Validate(); err != nil {
							sp.Refused = err.Error()
						}
						out = append(out, sp)
					}
				}
			}
		}
	}
	return out
}

// Refused is a params change Params.Validate refuses, and whether the ledger's InitChain refused it too.
type Refused struct {
	Change    string `json:"change"`
	Error     string `json:"error"`
	InitChain string `json:"init_chain"`
}

// refusedCases are the params a wash trade could profit from, or that make the schedule unbounded: each must be
// refused at genesis.
func refusedCases() []Refused {
	cases := []struct {
		change string
		set    func(p *api.Params)
	}{
		{"work_reward_cap_ppm = 1,000,000 (work reward = the burn: renting yourself breaks even but for the take)", func(p *api.Params) { p.WorkRewardCapPPM = tx.PPM }},
		{"work_reward_cap_ppm = 2,000,000 (work reward twice the burn)", func(p *api.Params) { p.WorkRewardCapPPM = 2 * tx.PPM }},
		{"burn_ppm = 0 with a work share (nothing burned to cap the work reward by)", func(p *api.Params) { p.BurnPPM = 0 }},
		{"work_reward_cap_ppm = 0 with a work share", func(p *api.Params) { p.WorkRewardCapPPM = 0 }},
		{"take_rate_ppm 20,000 + burn_ppm 980,001 (over 100% of a payment)", func(p *api.Params) { p.BurnPPM = tx.PPM - p.TakeRatePPM + 1 }},
		{"auditor_share_ppm 500,001 + availability_share_ppm 500,000 (over the emission)", func(p *api.Params) { p.AuditorSharePPM, p.AvailabilitySharePPM = 500_001, 500_000 }},
		{"emission_cap below the first epoch's emission", func(p *api.Params) { p.EmissionCap = p.EmissionFirstEpoch - 1 }},
		{"emission_cap below half the schedule's sum (a halving in disguise)", func(p *api.Params) {
			p.EmissionCap = p.EmissionFirstEpoch*p.EmissionTimeConstantEpochs/2 - 1
		}},
		{"emission_time_constant_epochs = 0 (no decay)", func(p *api.Params) { p.EmissionTimeConstantEpochs = 0 }},
		{"emission_first_epoch above a billion SPR", func(p *api.Params) { p.EmissionFirstEpoch, p.EmissionCap = api.MaxEmissionFirstEpoch+1, 1<<62 }},
		{"reward_proof_epochs = 0", func(p *api.Params) { p.RewardProofEpochs = 0 }},
		{"epoch_blocks = 0 with rewards on (no auditor epochs to pay them in)", func(p *api.Params) { p.EpochBlocks = 0 }},
	}
	var out []Refused
	for _, tc := range cases {
		p := baseParams(mainE0, mainK)
		tc.set(&p)
		r := Refused{Change: tc.change, Error: "accepted"}
		if err := p.Validate(); err != nil {
			r.Error = err.Error()
		}
		if _, err := newChain(api.Genesis{Params: p}, false); err != nil {
			r.InitChain = "refused"
		} else {
			r.InitChain = "accepted"
		}
		out = append(out, r)
	}
	return out
}

func (sp *SweepPoint) label() string {
	return fmt.Sprintf("take %d, burn %d, k %d, availability %d, E0 %.4g x burns", sp.TakePPM, sp.BurnPPM, sp.WorkCapPPM, sp.AvailPPM, sp.EmissionX)
}
