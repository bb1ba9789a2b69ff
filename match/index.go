package match

import (
	"bytes"
	"cmp"
	"math/bits"
	"slices"
	"strings"

	"github.com/sparenet/spare/ledger/tx"
)

// Offer is a provider and the prices it would bid at: per GPU-hour by model, and per core-hour for orders that
// ask for no GPU.
type Offer struct {
	Provider Provider
	// GPUHour is the price in uspr per GPU-hour by model (the normalised name, as in tx.GPUGroup.Model). A model
	// absent or priced 0 is not sold.
	GPUHour map[string]uint64
	// CPUHour is the price in uspr per core-hour for CPU-only orders; 0: the provider does not sell CPU only.
	CPUHour uint64
}

// Ranked is one provider chosen for an order: its index in the offers the index (or NaiveMatch) was given, its
// address, and its price per hour for the order.
type Ranked struct {
	Index   int
	Address tx.Address
	Price   uint64
}

// PriceFor is what the provider would bid for the order, per hour, and false when it would not bid.
//
// A GPU order (GPUCount > 0) is priced in the cheapest model that the order allows (any model when it names
// none; names compare case-insensitively, as in the stages), that the provider prices above 0, and of which the
// provider has at least GPUCount GPUs with the order's minimum memory: that model's unit price × GPUCount. GPUs
// of several models are not combined, even where the hardware stage would accept the sum. A CPU-only order is
// priced CPUHour × its CPU rounded up to whole cores (at least one). A price that does not fit in 64 bits is no
// price. PriceFor does not check feasibility: see Feasible.
func (f *Offer) PriceFor(o *Order) (uint64, bool) {
	if o.Resources.GPUCount == 0 {
		return mulOK(f.CPUHour, cores(o))
	}
	_, unit, ok := f.bestModel(o)
	if !ok {
		return 0, false
	}
	return mulOK(unit, uint64(o.Resources.GPUCount))
}

// bestModel is the model a GPU order is priced in and its unit price: the least (unit price, model name) among
// the models that qualify. The map is ranged over, but the minimum of a total order does not depend on the
// order of iteration.
func (f *Offer) bestModel(o *Order) (model string, unit uint64, ok bool) {
	for m, u := range f.GPUHour {
		if u == 0 || ok && (u > unit || u == unit && m >= model) {
			continue
		}
		if modelAllowed(o, m) && f.hasGPUs(o, m) {
			model, unit, ok = m, u, true
		}
	}
	return model, unit, ok
}

// hasGPUs: the provider has at least the order's GPU count of the model, each with enough memory.
func (f *Offer) hasGPUs(o *Order, model string) bool {
	var n uint64
	for _, g := range f.Provider.Hardware.GPUs {
		if g.VRAMMiB >= o.Resources.GPUMinVRAMMiB && strings.EqualFold(g.Model, model) {
			n += uint64(g.Count)
		}
	}
	return n >= uint64(o.Resources.GPUCount)
}

func modelAllowed(o *Order, model string) bool {
	return len(o.Resources.GPUModels) == 0 || containsFold(o.Resources.GPUModels, model)
}

// cores is a CPU-only order's CPU in whole cores, rounded up, at least one.
func cores(o *Order) uint64 {
	m := o.Resources.CPUMilli
	c := m / 1000
	if m%1000 != 0 {
		c++
	}
	return max(c, 1)
}

// mulOK is a × b, false when a is 0 (not sold) or the product overflows.
func mulOK(a, b uint64) (uint64, bool) {
	hi, lo := bits.Mul64(a, b)
	return lo, a != 0 && hi == 0
}

// withinMax: the price passes the order's price stage (MaxPricePerHour 0: no bound).
func withinMax(o *Order, price uint64) bool {
	return o.MaxPricePerHour == 0 || price <= o.MaxPricePerHour
}

// Index answers single-node matching over a fixed set of offers without reading all of them: the offers are
// bucketed by what they sell and sorted by unit price, so the cheapest candidates are read first.
//
// Buckets: one per GPU model priced by some offer (the exact model string), holding (unit price, offer) for every
// offer that prices that model above 0; and one for CPU-only orders, holding every offer with CPUHour > 0. Each
// bucket is sorted by unit price, then address bytes, then offer index (a stable key: the order within a price
// does not affect results), and is also split, in the same order, into one list per exact region string, so an
// order restricted to regions reads only their lists. Each list records the most GPUs of its model, GPU memory,
// CPU, memory and disk any of its providers has, so an order asking for more skips it. Build cost: O(E log E) time
// and O(E) memory (two entries of 16 bytes per element), E = the number of (offer, priced model) pairs plus the
// CPU sellers, i.e. about N × (models per offer + 1) for N offers; 5–10 ms for 10,000 offers on a 2-core machine
// (BENCHMARKS.md).
//
// An Index keeps the offers slice it was built from; neither the slice nor the offers (prices, hardware, standing)
// may change while it is used. It is immutable, so Match may be called concurrently.
type Index struct {
	offers []Offer
	models []string // sorted; gpu[i] is models[i]'s bucket
	gpu    []bucket
	cpu    bucket
}

type bucket struct {
	all      list
	regions  []string // distinct exact region strings, sorted
	byRegion []list   // byRegion[i]: the entries whose provider is in regions[i], in bucket order
}

// list is a run of entries in bucket order and the most any of their providers has: an order asking for more
// fails a stage (or, for GPUs, cannot be priced) at every one of them, so the list is not read.
type list struct {
	es                            []entry
	maxGPUs, maxVRAM              uint64 // of the bucket's model (GPU buckets)
	maxCPU, maxMemory, maxDiskMiB uint64
}

type entry struct {
	unit  uint64
	idx   int32 // into Index.offers
	model int32 // into Index.models; -1 in the CPU bucket
}

// NewIndex buckets the offers (see Index for the cost).
func NewIndex(offers []Offer) *Index {
	x := &Index{offers: offers}
	perModel := map[string][]entry{}
	var cpu []entry
	for i := range offers {
		for m, u := range offers[i].GPUHour {
			if u > 0 {
				perModel[m] = append(perModel[m], entry{u, int32(i), 0})
			}
		}
		if offers[i].CPUHour > 0 {
			cpu = append(cpu, entry{offers[i].CPUHour, int32(i), -1})
		}
	}
	for m := range perModel {
		x.models = append(x.models, m)
	}
	slices.Sort(x.models) // the map's iteration order is not used
	x.gpu = make([]bucket, len(x.models))
	for i, m := range x.models {
		es := perModel[m]
		for j := range es {
			es[j].model = int32(i)
		}
		x.gpu[i] = x.newBucket(es, m)
	}
	x.cpu = x.newBucket(cpu, "")
	return x
}

func (x *Index) newBucket(es []entry, model string) bucket {
	slices.SortFunc(es, func(a, b entry) int {
		if c := cmp.Compare(a.unit, b.unit); c != 0 {
			return c
		}
		if c := bytes.Compare(x.offers[a.idx].Provider.Address[:], x.offers[b.idx].Provider.Address[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.idx, b.idx)
	})
	b := bucket{}
	pos := map[string]int{}
	for _, e := range es {
		r := x.offers[e.idx].Provider.Region
		if _, ok := pos[r]; !ok {
			pos[r] = 0
			b.regions = append(b.regions, r)
		}
	}
	slices.Sort(b.regions)
	for i, r := range b.regions {
		pos[r] = i
	}
	b.byRegion = make([]list, len(b.regions))
	for _, e := range es {
		p := &x.offers[e.idx].Provider
		b.all.add(e, p, model)
		b.byRegion[pos[p.Region]].add(e, p, model)
	}
	return b
}

func (l *list) add(e entry, p *Provider, model string) {
	l.es = append(l.es, e)
	var gpus, vram uint64
	if model != "" {
		for _, g := range p.Hardware.GPUs {
			if strings.EqualFold(g.Model, model) {
				gpus += uint64(g.Count)
				vram = max(vram, g.VRAMMiB)
			}
		}
	}
	l.maxGPUs, l.maxVRAM = max(l.maxGPUs, gpus), max(l.maxVRAM, vram)
	l.maxCPU, l.maxMemory = max(l.maxCPU, p.Hardware.CPUMilli), max(l.maxMemory, p.Hardware.MemoryMiB)
	l.maxDiskMiB = max(l.maxDiskMiB, p.Hardware.DiskMiB)
}

// serves: some provider of the list may serve the order (a necessary condition only).
func (l *list) serves(o *Order) bool {
	r := &o.Resources
	if len(l.es) == 0 || r.CPUMilli > l.maxCPU || r.MemoryMiB > l.maxMemory || r.DiskMiB > l.maxDiskMiB {
		return false
	}
	return r.GPUCount == 0 || uint64(r.GPUCount) <= l.maxGPUs && r.GPUMinVRAMMiB <= l.maxVRAM
}

// lists appends the bucket's lists an order reads: every region list the order's regions allow (compared
// case-insensitively, as in the region stage), or the whole bucket when it names no region; less any list none
// of whose providers has the hardware the order asks for.
func (b *bucket) lists(o *Order, out [][]entry) [][]entry {
	if len(o.Constraints.Regions) == 0 {
		if b.all.serves(o) {
			out = append(out, b.all.es)
		}
		return out
	}
	for i, r := range b.regions {
		if containsFold(o.Constraints.Regions, r) && b.byRegion[i].serves(o) {
			out = append(out, b.byRegion[i].es)
		}
	}
	return out
}

// Match returns the k cheapest providers for the order (every one when k ≤ 0): those that pass every stage
// (Stages, standing included), that PriceFor prices, within MaxPricePerHour when it is set; ordered by price, then
// TieBreak(o.ID, address), then address bytes, then offer index. The result equals NaiveMatch's.
//
// Algorithm: the order reads the lists of the buckets it can be priced in: for a GPU order, the buckets of the
// models it allows (all models when it names none); for a CPU-only order, the CPU bucket; within each, the lists
// of the regions it allows, or the whole bucket; less the lists whose largest machine is too small. It merges them
// in ascending unit price (a heap of cursors). Because an order's price is the unit price times a factor fixed by
// the order (its GPU count, or its cores), ascending unit price is ascending price. An entry of a GPU bucket
// counts only when its model is the one PriceFor prices the provider in (the least qualifying unit price, then
// model name), so each provider counts once, at its price; the stages then decide. The scan stops at the first
// entry whose price overflows, exceeds MaxPricePerHour, or exceeds the k-th feasible price found: entries of equal
// price are still read, since TieBreak may rank them first. The feasible ones are then sorted and cut to k.
//
// Cost: O(S × (log B + c)) for S entries read, B lists merged and c the cost of one provider's stages and price (a
// few hundred nanoseconds), plus O(F log F) to rank the F ≤ k + (ties at the k-th price) found. S is about k
// divided by the share of the read providers that are feasible and priced; when fewer than k are feasible within
// the price bound, S is every entry of the lists up to the bound, so an infeasible order with no price bound reads
// every provider selling its models in its regions, unless no list has a large enough machine (NaiveMatch reads
// all N).
func (x *Index) Match(o *Order, k int) []Ranked {
	var lists [][]entry
	gpu := o.Resources.GPUCount > 0
	factor := cores(o)
	if gpu {
		factor = uint64(o.Resources.GPUCount)
		for i, m := range x.models {
			if modelAllowed(o, m) {
				lists = x.gpu[i].lists(o, lists)
			}
		}
	} else {
		lists = x.cpu.lists(o, lists)
	}
	h := make(cursorHeap, 0, len(lists))
	for i, l := range lists {
		h = append(h, cursor{list: l, n: i})
	}
	h.init()
	var got []Ranked
	for len(h) > 0 {
		c := &h[0]
		e := c.list[c.pos]
		price, ok := mulOK(e.unit, factor)
		if !ok || !withinMax(o, price) || k > 0 && len(got) >= k && price > got[k-1].Price {
			break // every later entry costs at least as much
		}
		if c.pos++; c.pos == len(c.list) {
			h.pop()
		} else {
			h.down(0)
		}
		f := &x.offers[e.idx]
		if gpu {
			m := x.models[e.model]
			if len(f.GPUHour) == 1 { // its only entry: it counts here if it has the GPUs
				if !f.hasGPUs(o, m) {
					continue
				}
			} else if best, _, ok := f.bestModel(o); !ok || best != m {
				continue // priced in another model, or in none: it counts at that model's entry, if any
			}
		}
		if Feasible(o, &f.Provider) != ReasonOK {
			continue
		}
		got = append(got, Ranked{Index: int(e.idx), Address: f.Provider.Address, Price: price})
	}
	return rank(o, got, k)
}

// NaiveMatch is the baseline and the reference for Index.Match: every offer is checked with every stage and
// priced, and all the feasible ones are sorted. O(N × c + F log F) for N offers and F feasible.
func NaiveMatch(offers []Offer, o *Order, k int) []Ranked {
	var got []Ranked
	for i := range offers {
		f := &offers[i]
		if Feasible(o, &f.Provider) != ReasonOK {
			continue
		}
		price, ok := f.PriceFor(o)
		if !ok || !withinMax(o, price) {
			continue
		}
		got = append(got, Ranked{Index: i, Address: f.Provider.Address, Price: price})
	}
	return rank(o, got, k)
}

// rank sorts by price, TieBreak, address bytes, offer index, and keeps the first k (all when k ≤ 0).
func rank(o *Order, got []Ranked, k int) []Ranked {
	if len(got) == 0 {
		return nil
	}
	tb := make([]uint64, len(got))
	for i := range got {
		tb[i] = TieBreak(o.ID, got[i].Address)
	}
	perm := make([]int, len(got))
	for i := range perm {
		perm[i] = i
	}
	slices.SortFunc(perm, func(a, b int) int {
		if c := cmp.Compare(got[a].Price, got[b].Price); c != 0 {
			return c
		}
		if c := cmp.Compare(tb[a], tb[b]); c != 0 {
			return c
		}
		if c := bytes.Compare(got[a].Address[:], got[b].Address[:]); c != 0 {
			return c
		}
		return cmp.Compare(got[a].Index, got[b].Index)
	})
	if k > 0 && len(perm) > k {
		perm = perm[:k]
	}
	out := make([]Ranked, len(perm))
	for i, p := range perm {
		out[i] = got[p]
	}
	return out
}

// cursor reads one list; n is its position among the lists, to order equal prices (it does not affect results).
type cursor struct {
	list []entry
	pos  int
	n    int
}

// cursorHeap is a binary min-heap of cursors by (current unit price, n).
type cursorHeap []cursor

func (h cursorHeap) less(i, j int) bool {
	a, b := h[i].list[h[i].pos].unit, h[j].list[h[j].pos].unit
	return a < b || a == b && h[i].n < h[j].n
}

func (h cursorHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h cursorHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *cursorHeap) pop() {
	old := *h
	n := len(old) - 1
	old[0] = old[n]
	*h = old[:n]
	h.down(0)
}
