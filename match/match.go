// Package match is Spare's one matching code path, pure and deterministic: which providers can serve an order
// (feasibility, as small named stages whose first failure is the reason shown to users), how the candidates
// rank (price, reputation, latency), and which set of providers forms a cluster whose pairwise round-trip
// times fit a bound, cheapest first. The ledger runs it to check bids and pick clusters; the provider's bid
// engine, the tenant's choice and its "why no offers" explanation run the same functions. It imports only
// ledger/tx; ties are broken by a hash of the order id and the provider's address, so a placement replays.
package match

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/sparenet/spare/ledger/tx"
)

// Reason names the first stage a provider fails for an order.
type Reason string

const (
	ReasonOK          Reason = ""
	ReasonJailed      Reason = "jailed"       // the ledger refuses its bids
	ReasonUnderBonded Reason = "under_bonded" // its stake is below what its hardware requires
	ReasonGPUModel    Reason = "gpu_model"
	ReasonGPUVRAM     Reason = "gpu_vram"
	ReasonGPUCount    Reason = "gpu_count"
	ReasonCPU         Reason = "cpu"
	ReasonMemory      Reason = "memory"
	ReasonDisk        Reason = "disk"
	ReasonRegion      Reason = "region"
	ReasonDenied      Reason = "denied"
	ReasonUnverified  Reason = "unverified"
	ReasonReputation  Reason = "reputation"
	ReasonRuntime     Reason = "runtime" // the job needs the docker runtime
)

// Provider is what matching knows of a provider: its hardware (declared, or free capacity when the caller
// knows it) and its standing on the ledger.
type Provider struct {
	Address       tx.Address
	Hardware      tx.Hardware
	Region        string
	Docker        bool
	Verified      bool
	ReputationPPM uint64
	Jailed        bool
	UnderBonded   bool
}

// Order is what matching needs of an order.
type Order struct {
	ID              uint64
	Resources       tx.Resources
	Constraints     tx.Constraints
	MaxPricePerHour uint64 // 0: no price stage
}

// Stage is one feasibility check; a StageSet runs its stages in order and the first that fails names the reason.
type Stage struct {
	Reason Reason
	Fails  func(o *Order, p *Provider) bool
}

// StageSet names one of the fixed lists of checks. Consensus depends on them (the ledger re-checks a bid with
// Fit), so they are constants over lists no other package can change.
type StageSet uint8

const (
	Standing StageSet = iota // what the ledger requires of any bidder
	Fit                      // what the order asks of the machine, then the tenant's placement constraints
	Stages                   // all three, in that order
)

func (s StageSet) stages() []Stage {
	switch s {
	case Standing:
		return standing
	case Fit:
		return fit
	}
	return stages
}

// standing checks what the ledger requires of any bidder; hardware what the order asks of the machine;
// placement the tenant's constraints. fit is hardware then placement; stages all three, in that order.
var (
	standing = []Stage{
		{ReasonJailed, func(_ *Order, p *Provider) bool { return p.Jailed }},
		{ReasonUnderBonded, func(_ *Order, p *Provider) bool { return p.UnderBonded }},
	}
	hardware = []Stage{
		{ReasonGPUModel, func(o *Order, p *Provider) bool { m, _ := gpusFor(p.Hardware, o.Resources); return m == 0 }},
		{ReasonGPUVRAM, func(o *Order, p *Provider) bool { _, v := gpusFor(p.Hardware, o.Resources); return v == 0 }},
		{ReasonGPUCount, func(o *Order, p *Provider) bool {
			_, v := gpusFor(p.Hardware, o.Resources)
			return v < uint64(o.Resources.GPUCount)
		}},
		{ReasonCPU, func(o *Order, p *Provider) bool { return p.Hardware.CPUMilli < o.Resources.CPUMilli }},
		{ReasonMemory, func(o *Order, p *Provider) bool { return p.Hardware.MemoryMiB < o.Resources.MemoryMiB }},
		{ReasonDisk, func(o *Order, p *Provider) bool { return p.Hardware.DiskMiB < o.Resources.DiskMiB }},
	}
	placement = []Stage{
		{ReasonRegion, func(o *Order, p *Provider) bool {
			return len(o.Constraints.Regions) > 0 && !containsFold(o.Constraints.Regions, p.Region)
		}},
		{ReasonDenied, func(o *Order, p *Provider) bool {
			for _, d := range o.Constraints.Deny {
				if d == p.Address {
					return true
				}
			}
			return false
		}},
		{ReasonUnverified, func(o *Order, p *Provider) bool { return o.Constraints.Verified && !p.Verified }},
		{ReasonReputation, func(o *Order, p *Provider) bool {
			return p.ReputationPPM < uint64(o.Constraints.MinReputationPPM)
		}},
		{ReasonRuntime, func(o *Order, p *Provider) bool { return o.Constraints.Docker && !p.Docker }},
	}
	fit    = concat(hardware, placement)
	stages = concat(standing, hardware, placement)
)

func concat(lists ...[]Stage) []Stage {
	var out []Stage
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Check runs the set's stages in order and returns the first failure's reason, or ReasonOK.
func Check(set StageSet, o *Order, p *Provider) Reason {
	for _, s := range set.stages() {
		if s.Fails(o, p) {
			return s.Reason
		}
	}
	return ReasonOK
}

// Feasible runs every stage.
func Feasible(o *Order, p *Provider) Reason { return Check(Stages, o, p) }

// gpusFor counts a provider's GPUs of an allowed model, and those of them with enough memory. An order without
// GPUs is served by any machine: both counts are then reported as satisfied.
func gpusFor(h tx.Hardware, r tx.Resources) (model, vram uint64) {
	if r.GPUCount == 0 {
		return 1, 1
	}
	for _, g := range h.GPUs {
		if len(r.GPUModels) > 0 && !containsFold(r.GPUModels, g.Model) {
			continue
		}
		model += uint64(g.Count)
		if g.VRAMMiB >= r.GPUMinVRAMMiB {
			vram += uint64(g.Count)
		}
	}
	return model, vram
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Explanation counts why providers were excluded from an order.
type Explanation struct {
	Providers int                     `json:"providers"`
	Feasible  int                     `json:"feasible"`
	Excluded  map[Reason]int          `json:"excluded"`
	Who       map[Reason][]tx.Address `json:"who"` // which providers each reason excluded
}

// Explain checks every provider against the order and counts each exclusion under its first failed stage.
func Explain(set StageSet, o *Order, ps []Provider) Explanation {
	e := Explanation{Providers: len(ps), Excluded: map[Reason]int{}, Who: map[Reason][]tx.Address{}}
	for i := range ps {
		r := Check(set, o, &ps[i])
		if r == ReasonOK {
			e.Feasible++
			continue
		}
		e.Excluded[r]++
		e.Who[r] = append(e.Who[r], ps[i].Address)
	}
	return e
}

var phrases = map[Reason]string{
	ReasonJailed:      "are jailed",
	ReasonUnderBonded: "have too little stake bonded",
	ReasonGPUModel:    "lack a GPU of the model asked for",
	ReasonGPUVRAM:     "lack GPUs with enough memory",
	ReasonGPUCount:    "have too few matching GPUs",
	ReasonCPU:         "lack CPU cores",
	ReasonMemory:      "lack memory",
	ReasonDisk:        "lack disk",
	ReasonRegion:      "are outside your regions",
	ReasonDenied:      "are on your deny list",
	ReasonUnverified:  "are not verified",
	ReasonReputation:  "are below your minimum reputation",
	ReasonRuntime:     "do not run container images",
}

// Phrase is what the reason says of the providers it excluded, as in "3 lack CPU cores".
func (r Reason) Phrase() string {
	if p, ok := phrases[r]; ok {
		return p
	}
	return "excluded (" + string(r) + ")"
}

// Parts renders each exclusion as "N <phrase>", the most frequent first (ties by reason), naming the providers
// of a reason that excluded at most three. phrase gives a reason's text (nil: Reason.Phrase).
func (e Explanation) Parts(phrase func(Reason) string) []string {
	if phrase == nil {
		phrase = Reason.Phrase
	}
	reasons := make([]Reason, 0, len(e.Excluded))
	for r := range e.Excluded {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b Reason) int {
		if c := cmp.Compare(e.Excluded[b], e.Excluded[a]); c != 0 {
			return c
		}
		return strings.Compare(string(a), string(b))
	})
	out := make([]string, 0, len(reasons))
	for _, r := range reasons {
		part := fmt.Sprintf("%d %s", e.Excluded[r], phrase(r))
		if who := e.Who[r]; len(who) > 0 && len(who) <= 3 {
			names := make([]string, len(who))
			for i, a := range who {
				names[i] = a.String()
			}
			part += " (" + strings.Join(names, ", ") + ")"
		}
		out = append(out, part)
	}
	return out
}

// Score ranks an offer for a tenant: the price, raised by 1% per 10 ms of round-trip time (capped at 1 s), and
// divided by the provider's reputation (at least 0.5). Lower is better. rttMicros 0 means unknown (no penalty).
func Score(price uint64, rttMicros uint64, reputationPPM uint64) uint64 {
	ms := min(rttMicros/1000, 1000)
	hi, lo := bits.Mul64(price, 1000+ms)
	if hi != 0 {
		return ^uint64(0)
	}
	adj := lo / 1000
	rep := max(reputationPPM, 500_000)
	hi, lo = bits.Mul64(adj, tx.PPM)
	if hi != 0 {
		return ^uint64(0)
	}
	return lo / rep
}

// TieBreak is a provider's deterministic tie-break key for an order: a hash of both, so equal offers are not
// always won by the same address, yet every replay picks the same.
func TieBreak(orderID uint64, a tx.Address) uint64 {
	var b [28]byte
	binary.BigEndian.PutUint64(b[:8], orderID)
	copy(b[8:], a[:])
	h := sha256.Sum256(b[:])
	return binary.BigEndian.Uint64(h[:8])
}
