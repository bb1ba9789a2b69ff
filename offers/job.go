package offers

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/match"
)

// Offers for one job (`spare offers --job FILE`): which providers could take this job now, at what price, ranked
// as `spare deploy --choose` ranks bids. Feasibility is package match's stages (the ledger's and the bidder's),
// run on each provider's free capacity from its offer; the price is Quote, the bidder's own formula, on the
// GPUs PickGPUs says the provider would assign; the rank is match.Score (price, round trip, reputation).

// ReasonPrice excludes a provider whose quote is above the job's maximum price (not one that prices by script:
// its table is only indicative).
const ReasonPrice match.Reason = "price"

// ReasonNoOffer excludes a provider whose offer could not be fetched: its free capacity and prices are unknown.
const ReasonNoOffer match.Reason = "no_offer"

// ReasonNotPriced excludes a provider whose table prices none of the GPUs it would assign.
const ReasonNotPriced match.Reason = "not_priced"

// Quote is what a provider with this price table bids per hour for resources r on GPUs of the given models (one
// entry per GPU): each GPU's price, plus CPU per core-hour and memory per GiB-hour, at least 1 uspr. False
// when a GPU's model is not priced, or the price overflows. The provider daemon bids exactly this when it
// prices by table, so a quote from an offer is the bid the provider would place.
func (p Prices) Quote(gpuModels []string, r tx.Resources) (uint64, bool) {
	var total uint64
	ok := true
	add := func(v uint64) {
		var carry uint64
		total, carry = bits.Add64(total, v, 0)
		ok = ok && carry == 0
	}
	per := func(unitPrice, amount, unit uint64) uint64 { // unitPrice × amount / unit, false on overflow
		hi, lo := bits.Mul64(unitPrice, amount)
		if hi >= unit {
			ok = false
			return 0
		}
		q, _ := bits.Div64(hi, lo, unit)
		return q
	}
	for _, m := range gpuModels {
		v, priced := p.GPU(m)
		if !priced {
			return 0, false
		}
		add(v)
	}
	add(per(p.CPUHour, r.CPUMilli, 1000))
	add(per(p.MemoryGiBHour, r.MemoryMiB, 1024))
	if !ok {
		return 0, false
	}
	return max(total, 1), true
}

// PickGPUs is the models of the GPUs a provider with these free GPU groups assigns to r: the first groups, in
// the offer's order (the provider's GPU index order), of a model r allows with at least r's memory, until r's
// count. False when there are not enough.
func PickGPUs(free []tx.GPUGroup, r tx.Resources) ([]string, bool) {
	var out []string
	for _, g := range free {
		if uint32(len(out)) == r.GPUCount {
			break
		}
		if len(r.GPUModels) > 0 && !slices.ContainsFunc(r.GPUModels, func(m string) bool { return strings.EqualFold(m, g.Model) }) {
			continue
		}
		if g.VRAMMiB < r.GPUMinVRAMMiB {
			continue
		}
		for n := uint32(0); n < g.Count && uint32(len(out)) < r.GPUCount; n++ {
			out = append(out, g.Model)
		}
	}
	return out, uint32(len(out)) == r.GPUCount
}

// JobRow is a provider that could take the job now.
type JobRow struct {
	Provider  tx.Address `json:"provider"`
	Region    string     `json:"region"`
	Zone      string     `json:"zone,omitempty"`
	GPUModels []string   `json:"gpu_models,omitempty"` // the GPUs it would assign, one entry each
	// Price is its quote for the job, uspr per hour; nil when it prices by script and its table does not price
	// these GPUs (the script decides when it bids).
	Price         *uint64 `json:"price_per_hour"`
	Indicative    bool    `json:"indicative,omitempty"` // it prices by script: the quote is its table's, it may bid otherwise
	Score         uint64  `json:"score"`                // match.Score: lower is better; the largest value when Price is nil
	ReputationPPM uint64  `json:"reputation_ppm"`
	RTT           int64   `json:"rtt_ns"`
}

// JobExplanation is match's explanation over every provider, with the reasons that need an offer (no offer,
// not priced, price above the maximum) added.
type JobExplanation struct {
	match.Explanation
}

// String renders e.g. "5 providers: 2 could take it now, 2 lack CPU cores, 1 quote above your maximum price
// (spare1…)".
func (e JobExplanation) String() string {
	if e.Providers == 0 {
		return "no providers are registered on this network"
	}
	out := []string{fmt.Sprintf("%d could take it now", e.Feasible)}
	out = append(out, e.Parts(func(r match.Reason) string {
		switch r {
		case ReasonPrice:
			return "quote above your maximum price"
		case ReasonNoOffer:
			return "did not answer with an offer"
		case ReasonNotPriced:
			return "do not price the GPUs they would assign"
		}
		return r.Phrase()
	})...)
	noun := "providers"
	if e.Providers == 1 {
		noun = "provider"
	}
	return fmt.Sprintf("%d %s: %s", e.Providers, noun, strings.Join(out, ", "))
}

// EvalJob checks every candidate against the order: match.Stages on its free capacity (a candidate without an
// offer is excluded as ReasonNoOffer), then its quote against the order's maximum price. The rows come ranked by
// match.Score, ties by match.TieBreak on the order's id.
func EvalJob(o match.Order, cands []Candidate) ([]JobRow, JobExplanation) {
	ex := JobExplanation{match.Explanation{Providers: len(cands), Excluded: map[match.Reason]int{}, Who: map[match.Reason][]tx.Address{}}}
	exclude := func(r match.Reason, a tx.Address) {
		ex.Excluded[r]++
		ex.Who[r] = append(ex.Who[r], a)
	}
	var rows []JobRow
	for _, c := range cands {
		p := c.Provider
		mp := api.MatchProvider(&p.Provider, nil)
		mp.ReputationPPM, mp.UnderBonded = p.ReputationPPM, p.Stake < p.RequiredStake
		off := c.Offer
		if off == nil || off.Provider != p.Owner {
			// Standing needs no offer: a jailed provider is excluded as such even when it does not answer.
			if r := match.Check(match.Standing, &o, &mp); r != match.ReasonOK {
				exclude(r, p.Owner)
			} else {
				exclude(ReasonNoOffer, p.Owner)
			}
			continue
		}
		mp.Hardware, mp.Docker = off.Free, off.Docker
		if r := match.Feasible(&o, &mp); r != match.ReasonOK {
			exclude(r, p.Owner)
			continue
		}
		models, _ := PickGPUs(off.Free.GPUs, o.Resources) // feasible: there are enough
		row := JobRow{Provider: p.Owner, Region: off.Region, Zone: off.Zone, GPUModels: models, Indicative: off.Script,
			Score: ^uint64(0), ReputationPPM: p.ReputationPPM, RTT: int64(c.RTT)}
		price, ok := off.Prices.Quote(models, o.Resources)
		switch {
		case !ok && !off.Script:
			exclude(ReasonNotPriced, p.Owner)
			continue
		case ok && o.MaxPricePerHour > 0 && price > o.MaxPricePerHour && !off.Script:
			exclude(ReasonPrice, p.Owner)
			continue
		case ok:
			row.Price, row.Score = &price, match.Score(price, uint64(c.RTT.Microseconds()), p.ReputationPPM)
		}
		ex.Feasible++
		rows = append(rows, row)
	}
	slices.SortStableFunc(rows, func(a, b JobRow) int {
		if c := cmp.Compare(a.Score, b.Score); c != 0 {
			return c
		}
		return cmp.Compare(match.TieBreak(o.ID, a.Provider), match.TieBreak(o.ID, b.Provider))
	})
	return rows, ex
}
