package offers

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/match"
)

// Candidate is a provider from the ledger with the offer it published.
type Candidate struct {
	Provider api.ProviderView
	// Offer is nil when it could not be fetched (or named another provider). Such a candidate is known only by its
	// ledger record: its declared hardware, not what is free, and no prices. It matches only queries without
	// price, gpus, cpu, memory or disk terms (Query.NeedsOffer); gpu and vram terms are checked against the
	// declared GPUs.
	Offer *Offer
	RTT   time.Duration // round trip of the offer request; 0 when unknown
}

// Row is a matching provider.
type Row struct {
	Provider  tx.Address `json:"provider"`
	Region    string     `json:"region"`
	Zone      string     `json:"zone,omitempty"`
	Reachable bool       `json:"reachable"` // false: no offer; GPUs and capacity are the declared ones, prices unknown
	// GPUs are the free GPUs, by model and memory, that the query's gpu, vram and price terms select (all free
	// GPUs on offer when it has none). GPUs a provider does not price (no table entry, no default, no script)
	// are not on offer.
	GPUs     []tx.GPUGroup `json:"gpus"`
	GPUCount uint64        `json:"gpu_count"`
	VRAMMiB  uint64        `json:"vram_mib"` // the largest memory of one GPU among GPUs
	// Model is the model GPUHour prices: the cheapest priced among GPUs.
	Model   string  `json:"model,omitempty"`
	GPUHour *uint64 `json:"gpu_hour"` // uspr per GPU-hour of Model; nil when unknown
	CPUHour *uint64 `json:"cpu_hour"` // uspr per CPU core-hour; nil when unknown
	// Price is what price terms compared and what Sort "price" orders by: GPUHour when Query.PerGPU, else CPUHour.
	Price *uint64 `json:"price"`
	// Indicative is true when the provider prices with a script: the prices are its table, it may bid otherwise.
	Indicative    bool          `json:"indicative,omitempty"`
	CPUMilli      uint64        `json:"cpu_milli"`  // free CPU (declared when unreachable)
	MemoryMiB     uint64        `json:"memory_mib"` // free memory (declared when unreachable)
	DiskMiB       uint64        `json:"disk_mib"`   // free disk (declared when unreachable)
	Docker        bool          `json:"docker"`
	Verified      bool          `json:"verified"`
	ReputationPPM uint64        `json:"reputation_ppm"`
	RTT           time.Duration `json:"rtt_ns"`
}

// Reasons a candidate is rejected by no term of the query.
const (
	ReasonJailed      = "jailed"       // the ledger refuses its bids
	ReasonUnderBonded = "under-bonded" // stake below the required: the ledger refuses its bids
	ReasonUnreachable = "unreachable"  // no offer, and the query has a term that needs one
)

// Rejection counts the candidates one term (or one Reason) rejected.
type Rejection struct {
	Term      string       `json:"term,omitempty"`   // as written canonically, e.g. "gpu=H100"
	Reason    string       `json:"reason,omitempty"` // when no term: ReasonJailed, ReasonUnderBonded, ReasonUnreachable
	Count     int          `json:"count"`
	Providers []tx.Address `json:"providers"`

	field Field
	op    Op
}

// Explanation tells how many candidates matched and what rejected the others. Each rejected candidate is
// counted once: jailed and under-bonded providers first (no order could reach them), then by the first term, in
// query order, that it fails; a candidate without an offer that reaches a term needing one counts as
// unreachable. gpu, vram and price terms narrow the GPUs in query order, so a term that leaves no GPU is the
// one that rejects; a gpus term counts the GPUs that all of them select.
type Explanation struct {
	Candidates int         `json:"candidates"`
	Matched    int         `json:"matched"`
	Rejected   []Rejection `json:"rejected"` // terms in query order, then jailed, under-bonded, unreachable
}

// String renders e.g. "14 providers: 9 lack gpu=H100, 3 fail price<=2.5, 2 unreachable".
func (e Explanation) String() string {
	switch {
	case e.Candidates == 0:
		return "no providers"
	case e.Matched == e.Candidates:
		return plural(e.Candidates, "provider", "providers") + ": all match"
	}
	var parts []string
	if e.Matched > 0 {
		parts = append(parts, plural(e.Matched, "matches", "match"))
	}
	for _, r := range e.Rejected {
		parts = append(parts, r.String())
	}
	return plural(e.Candidates, "provider", "providers") + ": " + strings.Join(parts, ", ")
}

// String renders e.g. "9 lack gpu=H100", "1 fails price<=2.5" or "2 unreachable".
func (r Rejection) String() string {
	if r.Term == "" {
		return fmt.Sprintf("%d %s", r.Count, r.Reason)
	}
	if lacking(r.field, r.op) {
		return plural(r.Count, "lacks", "lack") + " " + r.Term
	}
	return plural(r.Count, "fails", "fail") + " " + r.Term
}

// lacking is true for terms a provider fails by having too little: "lack gpu=H100" reads better than "fail".
func lacking(f Field, op Op) bool {
	switch f {
	case FieldGPU:
		return op == OpEq
	case FieldGPUs, FieldVRAM, FieldCPU, FieldMemory, FieldDisk:
		return op == OpGe || op == OpGt
	}
	return false
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Eval returns a row for every candidate that satisfies every term of q, in the candidates' order, and explains
// the others.
func Eval(q Query, cands []Candidate) ([]Row, Explanation) {
	ex := Explanation{Candidates: len(cands), Rejected: []Rejection{}}
	byTerm := make([][]tx.Address, len(q.Terms))
	byReason := map[string][]tx.Address{}
	rows := []Row{}
	for _, c := range cands {
		row, term, reason := evalOne(q, c)
		switch {
		case term >= 0:
			byTerm[term] = append(byTerm[term], c.Provider.Owner)
		case reason != "":
			byReason[reason] = append(byReason[reason], c.Provider.Owner)
		default:
			rows = append(rows, row)
		}
	}
	ex.Matched = len(rows)
	for i, t := range q.Terms {
		if len(byTerm[i]) > 0 {
			ex.Rejected = append(ex.Rejected, Rejection{Term: t.String(), Count: len(byTerm[i]), Providers: byTerm[i], field: t.Field, op: t.Op})
		}
	}
	for _, r := range []string{ReasonJailed, ReasonUnderBonded, ReasonUnreachable} {
		if len(byReason[r]) > 0 {
			ex.Rejected = append(ex.Rejected, Rejection{Reason: r, Count: len(byReason[r]), Providers: byReason[r]})
		}
	}
	return rows, ex
}

// narrows reports whether t selects GPUs (rather than testing the provider as a whole).
func (q Query) narrows(t Term) bool {
	return t.Field == FieldGPU || t.Field == FieldVRAM || t.Field == FieldPrice && q.perGPU
}

// evalOne returns the candidate's row, or the index of the term that rejects it, or a Reason.
func evalOne(q Query, c Candidate) (Row, int, string) {
	p := c.Provider
	// Standing: package match's stages, the ones the ledger and the tenant's explanation run.
	mp := match.Provider{Address: p.Owner, Jailed: p.Status == api.ProviderJailed, UnderBonded: p.Stake < p.RequiredStake}
	switch match.Check(match.Standing, &match.Order{}, &mp) {
	case match.ReasonJailed:
		return Row{}, -1, ReasonJailed
	case match.ReasonUnderBonded:
		return Row{}, -1, ReasonUnderBonded
	}
	o := c.Offer
	if o != nil && o.Provider != p.Owner {
		o = nil // an offer for another provider says nothing of this one
	}
	var groups []tx.GPUGroup
	if o != nil {
		for _, g := range o.Free.GPUs {
			if _, priced := o.Prices.GPU(g.Model); g.Count > 0 && (priced || o.Script) {
				groups = append(groups, g)
			}
		}
	} else {
		for _, g := range p.Info.Hardware.GPUs {
			if g.Count > 0 {
				groups = append(groups, g)
			}
		}
	}
	final := groups
	for _, t := range q.Terms {
		if q.narrows(t) {
			final = selectGPUs(final, t, o)
		}
	}
	sel := groups
	for i, t := range q.Terms {
		if o == nil && needsOffer(t.Field) {
			return Row{}, -1, ReasonUnreachable
		}
		if q.narrows(t) {
			if sel = selectGPUs(sel, t, o); len(sel) == 0 {
				return Row{}, i, ""
			}
			continue
		}
		if !holds(t, &p, o, final) {
			return Row{}, i, ""
		}
	}
	return makeRow(q, c, o, final), -1, ""
}

func selectGPUs(groups []tx.GPUGroup, t Term, o *Offer) []tx.GPUGroup {
	var out []tx.GPUGroup
	for _, g := range groups {
		var ok bool
		switch t.Field {
		case FieldGPU:
			ok = containsFold(t.names, g.Model) == (t.Op == OpEq)
		case FieldVRAM:
			ok = vramHolds(t.Op, g.VRAMMiB, t.n)
		case FieldPrice:
			if o != nil {
				v, priced := o.Prices.GPU(g.Model)
				ok = priced && compare(t.Op, v, t.n)
			}
		}
		if ok {
			out = append(out, g)
		}
	}
	return out
}

// vramHolds compares a GPU's reported memory with n MiB asked for: the GPU counts as that size from
// VRAMTolerancePercent of it up to it, so "=" is that band, ">=" reaches down to its bottom and ">" starts above
// its top.
func vramHolds(op Op, mib, n uint64) bool {
	lo, hi := (n*VRAMTolerancePercent+99)/100, n
	switch op {
	case OpEq:
		return lo <= mib && mib <= hi
	case OpNe:
		return mib < lo || mib > hi
	case OpLt:
		return mib < lo
	case OpLe:
		return mib <= hi
	case OpGt:
		return mib > hi
	case OpGe:
		return mib >= lo
	}
	return false
}

func holds(t Term, p *api.ProviderView, o *Offer, gpus []tx.GPUGroup) bool {
	switch t.Field {
	case FieldGPUs:
		return compare(t.Op, countGPUs(gpus), t.n)
	case FieldCPU:
		return compare(t.Op, o.Free.CPUMilli, t.n)
	case FieldMemory:
		return compare(t.Op, o.Free.MemoryMiB, t.n)
	case FieldDisk:
		return compare(t.Op, o.Free.DiskMiB, t.n)
	case FieldPrice: // per CPU core-hour: the query names no GPU
		return compare(t.Op, o.Prices.CPUHour, t.n)
	case FieldRegion:
		return containsFold(t.names, p.Info.Region) == (t.Op == OpEq)
	case FieldZone:
		return containsFold(t.names, p.Info.Zone) == (t.Op == OpEq)
	case FieldVerified:
		return (p.Verified == t.b) == (t.Op == OpEq)
	case FieldDocker:
		return (docker(p, o) == t.b) == (t.Op == OpEq)
	case FieldReputation:
		return compare(t.Op, p.ReputationPPM, t.n)
	}
	return false
}

// docker: the ledger re-checks bids against the declared runtime, and the offer tells whether it still runs.
func docker(p *api.ProviderView, o *Offer) bool { return p.Info.Docker && (o == nil || o.Docker) }

func countGPUs(gs []tx.GPUGroup) uint64 {
	var n uint64
	for _, g := range gs {
		n += uint64(g.Count)
	}
	return n
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

func makeRow(q Query, c Candidate, o *Offer, gpus []tx.GPUGroup) Row {
	p := &c.Provider
	r := Row{Provider: p.Owner, Region: p.Info.Region, Zone: p.Info.Zone, Reachable: o != nil,
		GPUs: slices.Clone(gpus), GPUCount: countGPUs(gpus), Docker: docker(p, o), Verified: p.Verified,
		ReputationPPM: p.ReputationPPM, RTT: c.RTT}
	if r.GPUs == nil {
		r.GPUs = []tx.GPUGroup{}
	}
	slices.SortFunc(r.GPUs, func(a, b tx.GPUGroup) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.VRAMMiB, b.VRAMMiB))
	})
	for _, g := range r.GPUs {
		r.VRAMMiB = max(r.VRAMMiB, g.VRAMMiB)
	}
	if o == nil {
		r.CPUMilli, r.MemoryMiB, r.DiskMiB = p.Info.Hardware.CPUMilli, p.Info.Hardware.MemoryMiB, p.Info.Hardware.DiskMiB
		return r
	}
	r.CPUMilli, r.MemoryMiB, r.DiskMiB = o.Free.CPUMilli, o.Free.MemoryMiB, o.Free.DiskMiB
	r.Indicative = o.Script
	cpu := o.Prices.CPUHour
	r.CPUHour = &cpu
	for _, g := range r.GPUs {
		if v, ok := o.Prices.GPU(g.Model); ok && (r.GPUHour == nil || v < *r.GPUHour) {
			r.Model, r.GPUHour = g.Model, &v
		}
	}
	r.Price = r.CPUHour
	if q.perGPU {
		r.Price = r.GPUHour
	}
	return r
}

// SortKeys are the keys Sort takes.
var SortKeys = []string{"price", "gpus", "vram", "reputation", "rtt", "region"}

// Sort orders rows best first by key: price (cheapest first, unknown last), gpus (most first), vram (largest
// GPU first), reputation (highest first), rtt (fastest first, unknown last) or region (alphabetical, then
// zone). Ties are broken by provider address, so the order is deterministic.
func Sort(rows []Row, key string) error {
	var by func(a, b *Row) int
	switch strings.ToLower(key) {
	case "price":
		by = func(a, b *Row) int { return cmpKnown(a.Price, b.Price) }
	case "gpus":
		by = func(a, b *Row) int { return cmp.Compare(b.GPUCount, a.GPUCount) }
	case "vram":
		by = func(a, b *Row) int { return cmp.Compare(b.VRAMMiB, a.VRAMMiB) }
	case "reputation":
		by = func(a, b *Row) int { return cmp.Compare(b.ReputationPPM, a.ReputationPPM) }
	case "rtt":
		by = func(a, b *Row) int {
			return cmp.Or(cmp.Compare(boolInt(a.RTT <= 0), boolInt(b.RTT <= 0)), cmp.Compare(a.RTT, b.RTT))
		}
	case "region":
		by = func(a, b *Row) int {
			return cmp.Or(cmp.Compare(strings.ToLower(a.Region), strings.ToLower(b.Region)),
				cmp.Compare(strings.ToLower(a.Zone), strings.ToLower(b.Zone)))
		}
	default:
		hint := ""
		if s := suggest(strings.ToLower(key), SortKeys); s != "" {
			hint = fmt.Sprintf(" (did you mean %s?)", s)
		}
		return fmt.Errorf("sort key %q is unknown%s; keys: %s", key, hint, strings.Join(SortKeys, " "))
	}
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(by(&a, &b), bytes.Compare(a.Provider[:], b.Provider[:]))
	})
	return nil
}

// cmpKnown orders known values ascending, unknown (nil) last.
func cmpKnown(a, b *uint64) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return cmp.Compare(*a, *b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
