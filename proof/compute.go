package proof

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Solve is the CPU prover: it returns C_k row-major (n·n entries). Rows are independent, so the work is
// spread over all cores and the result does not depend on how.
func Solve(c Challenge) ([]int8, error) { return SolveContext(context.Background(), c) }

// SolveContext is Solve that gives up (with ctx's error) soon after ctx ends: a challenge whose deadline has
// passed is not worth finishing.
func SolveContext(ctx context.Context, c Challenge) ([]int8, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	g := NewGenerator(c.Seed, c.N)
	out := stepsCtx(ctx, g.Matrix(MatA), g.Matrix(MatB), c.N, c.K)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// steps applies C ← wrap(C·B) k times to the rows in c (any number of rows of length n) and returns the
// result; c itself is left alone.
func steps(c, b []int8, n, k int) []int8 { return stepsCtx(context.Background(), c, b, n, k) }

// stepsCtx is steps that stops early when ctx ends (the result is then garbage, and the caller knows).
func stepsCtx(ctx context.Context, c, b []int8, n, k int) []int8 {
	rows, bp := len(c)/n, pack(b, n)
	cur, next := append([]int8(nil), c...), make([]int8, len(c))
	for range k {
		if ctx.Err() != nil {
			break
		}
		stepRowsCtx(ctx, next, cur, rows, bp, n)
		cur, next = next, cur
	}
	return cur
}

// pack lays B out two columns to an int64, column 2q in the low 32 bits and 2q+1 above (a zero column pads
// an odd n). In two's-complement arithmetic mod 2^64, a·(lo + hi·2^32) = a·lo + a·hi·2^32, so one 64-bit
// multiply-add advances two dot products; as each true sum fits an int32 (|sum| ≤ 2^29), both are recovered
// exactly from the 64-bit total (see unpack).
func pack(b []int8, n int) []int64 {
	h := (n + 1) / 2
	bp := make([]int64, n*h)
	for p := range n {
		for q := range h {
			lo, hi := int64(b[p*n+2*q]), int64(0)
			if 2*q+1 < n {
				hi = int64(b[p*n+2*q+1])
			}
			bp[p*h+q] = lo + hi<<32
		}
	}
	return bp
}

// unpack splits a packed total into its two int32 sums.
func unpack(x int64) (lo, hi int32) {
	lo = int32(x)
	return lo, int32((x - int64(lo)) >> 32)
}

// stepRows sets dst[r] = wrap(src[r]·B) for each of the rows, in parallel, two rows at a time so that each
// load of B serves both; bp is B packed.

func stepRowsCtx(ctx context.Context, dst, src []int8, rows int, bp []int64, n int) {
	h := (n + 1) / 2
	pool := sync.Pool{New: func() any { return make([]int64, 2*h) }}
	parallelRows((rows+1)/2, func(pair int) {
		if pair%16 == 0 && ctx.Err() != nil {
			return // abandoned: the caller checks ctx
		}
		acc := pool.Get().([]int64)
		r := 2 * pair
		second := min(r+1, rows-1) // an odd last row is done twice
		rowsTimes2(acc[:h], acc[h:], src[r*n:(r+1)*n], src[second*n:(second+1)*n], bp, n)
		for d := 0; d < 2 && r+d < rows; d++ {
			out := dst[(r+d)*n : (r+d+1)*n]
			for q, x := range acc[d*h : (d+1)*h] {
				lo, hi := unpack(x)
				out[2*q] = Wrap(lo)
				if 2*q+1 < n {
					out[2*q+1] = Wrap(hi)
				}
			}
		}
		pool.Put(acc)
	})
}

// rowsTimes2 sets acc0 and acc1 to the packed a·B and c·B (a and c are rows, bp is B packed). Four rows
// of B per pass keep the accumulators' loads and stores to a quarter. It touches only what its caller hands
// it, so the race detector skips it: instrumented, it runs over ten times slower and -race test runs of
// timed proofs would miss honest deadlines.
//
//go:norace
func rowsTimes2(acc0, acc1 []int64, a, c []int8, bp []int64, n int) {
	h := len(acc0)
	clear(acc0)
	clear(acc1)
	acc1 = acc1[:len(acc0)]
	p := 0
	for ; p+4 <= n; p += 4 {
		a0, a1, a2, a3 := int64(a[p]), int64(a[p+1]), int64(a[p+2]), int64(a[p+3])
		c0, c1, c2, c3 := int64(c[p]), int64(c[p+1]), int64(c[p+2]), int64(c[p+3])
		b0 := bp[p*h : p*h+h][:len(acc0)]
		b1 := bp[p*h+h : p*h+2*h][:len(acc0)]
		b2 := bp[p*h+2*h : p*h+3*h][:len(acc0)]
		b3 := bp[p*h+3*h : p*h+4*h][:len(acc0)]
		for q := range acc0 {
			x0, x1, x2, x3 := b0[q], b1[q], b2[q], b3[q]
			acc0[q] += a0*x0 + a1*x1 + a2*x2 + a3*x3
			acc1[q] += c0*x0 + c1*x1 + c2*x2 + c3*x3
		}
	}
	for ; p < n; p++ {
		ap, cp, bq := int64(a[p]), int64(c[p]), bp[p*h : p*h+h][:len(acc0)]
		for q := range acc0 {
			acc0[q] += ap * bq[q]
			acc1[q] += cp * bq[q]
		}
	}
}

// parallelRows calls f(i) for i in [0, rows) on up to GOMAXPROCS goroutines.
func parallelRows(rows int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), rows)
	if workers <= 1 {
		for i := range rows {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < rows; i = int(next.Add(1) - 1) {
				f(i)
			}
		})
	}
	wg.Wait()
}
