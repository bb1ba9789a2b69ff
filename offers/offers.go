// Package offers is the query language of `spare offers` and its evaluation over providers: which providers
// would serve a job like this, at what price, and, when none would, why not. It is pure: the caller lists the
// providers from the ledger and fetches each one's Offer (GET /offer on its tenant API, TLS pinned to the
// fingerprint on the ledger); this package only parses, matches, sorts and explains.
//
// A query is a list of terms separated by spaces, each written without spaces as field OP value, all of which
// must hold (see Help for the fields):
//
//	gpu=H100,A100 gpus>=2 vram>=80 price<=2.5 region!=us-east verified=true
//
// Files: offers.go (the Offer a provider publishes), query.go (Parse), eval.go (Eval, Sort, Explanation),
// job.go (EvalJob: the offers for one job, with package match's stages and the bidder's own price, Quote).
package offers

import (
	"slices"
	"strings"

	"github.com/sparenet/spare/ledger/tx"
)

// Offer is what a provider answers on GET /offer (public, unauthenticated): its free capacity now and its
// prices. It is advisory: the ledger's auction decides, and a provider pricing with a script may bid otherwise.
type Offer struct {
	Provider tx.Address `json:"provider"`
	// Free is the capacity the provider would bid with now: its offered hardware less what open bids and running
	// leases reserve (nothing while it runs its maximum number of leases).
	Free   tx.Hardware `json:"free"`
	Prices Prices      `json:"prices"`
	// Script is true when a script prices each order: Prices is then only the configured table, indicative.
	Script bool   `json:"script"`
	Docker bool   `json:"docker"` // jobs that name a container image can run here
	Region string `json:"region"`
	Zone   string `json:"zone,omitempty"`
}

// Prices is a provider's price table in uspr (1 SPR = 1,000,000 uspr).
type Prices struct {
	// GPUHour is uspr per GPU-hour by GPU model as the provider configured it (match models case-insensitively).
	GPUHour map[string]uint64 `json:"gpu_hour"`
	// DefaultGPUHour prices the models GPUHour does not list; 0 means none: such GPUs are not on offer.
	DefaultGPUHour uint64 `json:"default_gpu_hour"`
	CPUHour        uint64 `json:"cpu_hour"`        // uspr per CPU core-hour
	MemoryGiBHour  uint64 `json:"memory_gib_hour"` // uspr per GiB-hour of memory
}

// GPU is the uspr per GPU-hour for model, or false when the table does not price it (no entry, no default).
// Models compare case-insensitively; an exact entry wins over one that differs only in case.
func (p Prices) GPU(model string) (uint64, bool) {
	if v, ok := p.GPUHour[model]; ok {
		return v, true
	}
	keys := make([]string, 0, len(p.GPUHour))
	for k := range p.GPUHour {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic when two entries differ only in case
	for _, k := range keys {
		if strings.EqualFold(k, model) {
			return p.GPUHour[k], true
		}
	}
	if p.DefaultGPUHour == 0 {
		return 0, false
	}
	return p.DefaultGPUHour, true
}
