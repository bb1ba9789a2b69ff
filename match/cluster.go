package match

import (
	"cmp"
	"slices"
	"strings"

	"github.com/sparenet/spare/ledger/tx"
)

// Member is a candidate for a cluster: a provider that bid, and its price.
type Member struct {
	Address tx.Address
	Price   uint64
}

// Link is a measured round trip between two members (indexes into the candidates), in microseconds.
type Link struct {
	A, B      int
	RTTMicros uint32
}

// ClusterResult is a chosen set and what finding it cost.
type ClusterResult struct {
	Members []int  // indexes into the candidates, cheapest first; nil when no set fits
	Price   uint64 // the sum of their prices
	Steps   int    // search nodes visited
	Exact   bool   // the search finished: no cheaper set exists. False: the step budget ran out first
}

// DefaultClusterBudget bounds a cluster search (search nodes visited) when the caller names none. The ledger
// names its own, smaller one (api.ClusterSearchBudget), whose every step it charges as gas.
const DefaultClusterBudget = 200_000

// Cluster picks n distinct candidates whose every pair has a link with RTT ≤ maxRTT, minimising the sum of their
// prices (ties: the set whose members, sorted, come first by TieBreak order). Pairs without a link are too far.
//
// Algorithm: the compatibility graph (an edge per link within the bound) is first reduced to its (n−1)-core:
// a vertex with fewer than n−1 compatible neighbours is in no n-clique, so it is removed, repeatedly. The
// survivors are sorted by price and searched depth first, cheapest first, for an n-clique of least total
// price (branch and bound). Each level keeps the candidates compatible with all chosen so far, as a sorted
// list; a branch is cut when the chosen prices plus the cheapest prices still compatible cannot beat the best
// set found. Because candidates are tried cheapest first, the first complete set is usually the optimum and
// the bound then ends the search after few steps. Cost: O(L + V log V) to build and reduce the graph and rank
// the survivors (V candidates, L links; no sort over links), then O(steps × d log V) for the search (d the
// largest degree); steps are bounded by budget
// (0 = DefaultClusterBudget), after which the best set found so far is returned with Exact false. The
// worst case of an exact search is exponential (minimum-weight clique is NP-hard); sparse latency graphs,
// where each provider measures a bounded number of peers, keep it small in practice (BENCHMARKS.md).
func Cluster(orderID uint64, n int, maxRTT uint32, cands []Member, links []Link, budget int) ClusterResult {
	if budget <= 0 {
		budget = DefaultClusterBudget
	}
	if n <= 0 || n > len(cands) {
		return ClusterResult{Exact: true}
	}
	if n == 1 {
		best := -1
		for i := range cands {
			if best < 0 || less(orderID, cands, i, best) {
				best = i
			}
		}
		return ClusterResult{Members: []int{best}, Price: cands[best].Price, Steps: len(cands), Exact: true}
	}
	// Compatibility graph within the bound; a pair measured several times counts at its worst. Links are
	// grouped by their smaller end (a counting pass, no sort); within a group, a stamp per other end finds
	// each pair's worst measurement in two linear passes.
	type half struct {
		b   int
		rtt uint32
	}
	valid := func(l Link) bool { return l.A != l.B && l.A >= 0 && l.B >= 0 && l.A < len(cands) && l.B < len(cands) }
	count := make([]int, len(cands)+1)
	for _, l := range links {
		if valid(l) {
			count[min(l.A, l.B)+1]++
		}
	}
	for i := 1; i < len(count); i++ {
		count[i] += count[i-1]
	}
	halves := make([]half, count[len(cands)])
	fill := slices.Clone(count[:len(cands)])
	for _, l := range links {
		if valid(l) {
			a := min(l.A, l.B)
			halves[fill[a]] = half{max(l.A, l.B), l.RTTMicros}
			fill[a]++
		}
	}
	edges := make([][2]int, 0, len(halves))
	deg0 := make([]int, len(cands))
	stamp := fill // reused: stamp[b] == a+1 while b's worst round trip from a is being collected
	clear(stamp)
	worst := make([]uint32, len(cands))
	for a := range cands {
		group := halves[count[a]:count[a+1]]
		for _, h := range group {
			if stamp[h.b] != a+1 {
				stamp[h.b], worst[h.b] = a+1, h.rtt
			} else {
				worst[h.b] = max(worst[h.b], h.rtt)
			}
		}
		for _, h := range group {
			if stamp[h.b] != a+1 {
				continue // the pair's edge is already out (or it was too far)
			}
			stamp[h.b] = -1
			if worst[h.b] <= maxRTT {
				edges = append(edges, [2]int{a, h.b})
				deg0[a]++
				deg0[h.b]++
			}
		}
	}
	// Adjacency lists carved from one array (no per-list growth).
	adj := make([][]int, len(cands))
	store := make([]int, 2*len(edges))
	for i, off := 0, 0; i < len(cands); i++ {
		adj[i] = store[off : off : off+deg0[i]]
		off += deg0[i]
	}
	for _, e := range edges {
		adj[e[0]] = append(adj[e[0]], e[1])
		adj[e[1]] = append(adj[e[1]], e[0])
	}
	// (n−1)-core.
	deg := make([]int, len(cands))
	alive := make([]bool, len(cands))
	var queue []int
	for i := range cands {
		deg[i], alive[i] = len(adj[i]), true
		if deg[i] < n-1 {
			queue = append(queue, i)
			alive[i] = false
		}
	}
	for len(queue) > 0 {
		v := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		for _, u := range adj[v] {
			if alive[u] {
				if deg[u]--; deg[u] < n-1 {
					alive[u] = false
					queue = append(queue, u)
				}
			}
		}
	}
	// Survivors by price (then tie-break): position = rank. Sorted as compact keys (price, TieBreak, index)
	// rather than through the candidates: one TieBreak per survivor, and no indirection per comparison.
	type key struct {
		price, tie uint64
		i          int
	}
	var keys []key
	for i := range cands {
		if alive[i] {
			keys = append(keys, key{cands[i].Price, TieBreak(orderID, cands[i].Address), i})
		}
	}
	if len(keys) < n {
		return ClusterResult{Steps: len(cands), Exact: true}
	}
	slices.SortFunc(keys, func(x, y key) int {
		if c := cmp.Compare(x.price, y.price); c != 0 {
			return c
		}
		if c := cmp.Compare(x.tie, y.tie); c != 0 {
			return c
		}
		return strings.Compare(string(cands[x.i].Address[:]), string(cands[y.i].Address[:]))
	})
	order := make([]int, len(keys))
	rank := make([]int, len(cands))
	price := make([]uint64, len(keys))
	for r, k := range keys {
		order[r], rank[k.i], price[r] = k.i, r, k.price
	}
	// Neighbour lists as ranks, each ascending without a sort: ranks are appended in increasing order, each
	// survivor r adding itself to its neighbours' lists.
	nbr := make([][]int, len(order))
	total := 0
	for r, i := range order {
		d := 0
		for _, u := range adj[i] {
			if alive[u] {
				d++
			}
		}
		deg[r] = d // deg is free again: now by rank
		total += d
	}
	nstore := make([]int, total)
	for r, off := 0, 0; r < len(order); r++ {
		nbr[r] = nstore[off : off : off+deg[r]]
		off += deg[r]
	}
	for r, i := range order {
		for _, u := range adj[i] {
			if alive[u] {
				nbr[rank[u]] = append(nbr[rank[u]], r)
			}
		}
	}
	s := &search{n: n, price: price, nbr: nbr, budget: budget, bestPrice: ^uint64(0), bufs: make([][]int, n)}
	all := make([]int, len(order))
	for r := range all {
		all[r] = r
	}
	s.dfs(all, nil, 0)
	res := ClusterResult{Steps: s.steps, Exact: s.steps < budget}
	if s.best != nil {
		for _, r := range s.best {
			res.Members = append(res.Members, order[r])
		}
		res.Price = s.bestPrice
	}
	return res
}

// less orders candidates by price, then by TieBreak.
func less(orderID uint64, cands []Member, a, b int) bool {
	if c := cmp.Compare(cands[a].Price, cands[b].Price); c != 0 {
		return c < 0
	}
	ta, tb := TieBreak(orderID, cands[a].Address), TieBreak(orderID, cands[b].Address)
	if ta != tb {
		return ta < tb
	}
	return string(cands[a].Address[:]) < string(cands[b].Address[:])
}

type search struct {
	bufs      [][]int // one candidate list per depth, reused
	n         int
	price     []uint64
	nbr       [][]int
	budget    int
	steps     int
	best      []int
	bestPrice uint64
}

// dfs extends chosen (ranks, ascending) with candidates from cand (ranks compatible with all chosen, ascending).
func (s *search) dfs(cand, chosen []int, sum uint64) {
	need := s.n - len(chosen)
	if need == 0 {
		if sum < s.bestPrice {
			s.best, s.bestPrice = slices.Clone(chosen), sum
		}
		return
	}
	for k := 0; k+need <= len(cand); k++ {
		if s.steps >= s.budget {
			return
		}
		s.steps++
		// Bound: the cheapest `need` candidates from here on (cand is sorted by price).
		lb := sum
		for _, r := range cand[k : k+need] {
			lb += s.price[r]
		}
		if lb >= s.bestPrice {
			return // every later k has a bound at least as large
		}
		v := cand[k]
		next := intersect(s.bufs[len(chosen)][:0], cand[k+1:], s.nbr[v])
		s.bufs[len(chosen)] = next
		if len(next) < need-1 {
			continue
		}
		s.dfs(next, append(chosen, v), sum+s.price[v])
	}
}

// intersect appends to out the ranks in both sorted lists: a merge, or, when one list is far longer (the first
// level's candidates against a neighbour list), a binary search of each short-list entry in the long one.
func intersect(out, a, b []int) []int {
	if len(a) < len(b) {
		a, b = b, a
	}
	if len(a) > 16*len(b) {
		lo := 0
		for _, x := range b {
			i, found := slices.BinarySearch(a[lo:], x)
			lo += i
			if found {
				out = append(out, x)
				lo++
			}
			if lo >= len(a) {
				break
			}
		}
		return out
	}
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
