package ledger

import (
	"strings"

	"github.com/sparenet/spare/ledger/tx"
)

// Reason names the first constraint a provider fails for an order. The same reasons explain "why no offers".
type Reason string

const (
	ReasonOK         Reason = ""
	ReasonGPUModel   Reason = "gpu_model"
	ReasonGPUVRAM    Reason = "gpu_vram"
	ReasonGPUCount   Reason = "gpu_count"
	ReasonCPU        Reason = "cpu"
	ReasonMemory     Reason = "memory"
	ReasonDisk       Reason = "disk"
	ReasonRegion     Reason = "region"
	ReasonDenied     Reason = "denied"
	ReasonUnverified Reason = "unverified"
	ReasonReputation Reason = "reputation"
	ReasonRuntime    Reason = "runtime" // the job needs the docker runtime
)

// Feasible checks a provider's declared hardware and standing against an order's resources and constraints. It
// is pure: the ledger uses it to re-check every bid, and clients use it to explain a lack of offers.
func Feasible(p *Provider, r tx.Resources, c tx.Constraints) Reason {
	if reason := hardwareFits(p.Info.Hardware, r); reason != ReasonOK {
		return reason
	}
	if len(c.Regions) > 0 && !containsFold(c.Regions, p.Info.Region) {
		return ReasonRegion
	}
	for _, d := range c.Deny {
		if d == p.Owner {
			return ReasonDenied
		}
	}
	if c.Verified && !p.Verified {
		return ReasonUnverified
	}
	if p.ReputationPPM() < uint64(c.MinReputationPPM) {
		return ReasonReputation
	}
	if c.Docker && !p.Info.Docker {
		return ReasonRuntime
	}
	return ReasonOK
}

func hardwareFits(h tx.Hardware, r tx.Resources) Reason {
	if r.GPUCount > 0 {
		var modelOK, vramOK uint64
		for _, g := range h.GPUs {
			if len(r.GPUModels) > 0 && !containsFold(r.GPUModels, g.Model) {
				continue
			}
			modelOK += uint64(g.Count)
			if g.VRAMMiB >= r.GPUMinVRAMMiB {
				vramOK += uint64(g.Count)
			}
		}
		switch {
		case modelOK == 0:
			return ReasonGPUModel
		case vramOK == 0:
			return ReasonGPUVRAM
		case vramOK < uint64(r.GPUCount):
			return ReasonGPUCount
		}
	}
	switch {
	case h.CPUMilli < r.CPUMilli:
		return ReasonCPU
	case h.MemoryMiB < r.MemoryMiB:
		return ReasonMemory
	case h.DiskMiB < r.DiskMiB:
		return ReasonDisk
	}
	return ReasonOK
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
