package api

import (
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/match"
)

// Reason names the first constraint a provider fails for an order (package match). The same reasons explain
// "why no offers".
type Reason = match.Reason

const (
	ReasonOK         = match.ReasonOK
	ReasonGPUModel   = match.ReasonGPUModel
	ReasonGPUVRAM    = match.ReasonGPUVRAM
	ReasonGPUCount   = match.ReasonGPUCount
	ReasonCPU        = match.ReasonCPU
	ReasonMemory     = match.ReasonMemory
	ReasonDisk       = match.ReasonDisk
	ReasonRegion     = match.ReasonRegion
	ReasonDenied     = match.ReasonDenied
	ReasonUnverified = match.ReasonUnverified
	ReasonReputation = match.ReasonReputation
	ReasonRuntime    = match.ReasonRuntime
)

// MatchProvider is what package match knows of a provider; params decide whether it is under-bonded.
func MatchProvider(p *Provider, params *Params) match.Provider {
	return match.Provider{Address: p.Owner, Hardware: p.Info.Hardware, Region: p.Info.Region, Docker: p.Info.Docker,
		Verified: p.Verified, ReputationPPM: p.ReputationPPM(), Jailed: p.Status == ProviderJailed,
		UnderBonded: params != nil && p.Stake < params.RequiredStake(p.Info.Hardware.GPUCount())}
}

// Feasible checks a provider's declared hardware and placement against an order's resources and constraints
// (match.Fit: standing is checked apart, with its own result codes). It is pure: the ledger uses it to re-check
// every bid, and clients use it to explain a lack of offers.
func Feasible(p *Provider, r tx.Resources, c tx.Constraints) Reason {
	mp := MatchProvider(p, nil)
	return match.Check(match.Fit, &match.Order{Resources: r, Constraints: c}, &mp)
}
