package proof

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// naiveSteps is the definition, written as plainly as possible.
func naiveSteps(c, b []int8, n, k int) []int8 {
	rows := len(c) / n
	cur := append([]int8(nil), c...)
	for range k {
		next := make([]int8, len(cur))
		for r := range rows {
			for j := range n {
				var sum int32
				for p := range n {
					sum += int32(cur[r*n+p]) * int32(b[p*n+j])
				}
				next[r*n+j] = Wrap(sum)
			}
		}
		cur = next
	}
	return cur
}

func TestStepsMatchDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ n, rows, k int }{{1, 1, 3}, {2, 2, 2}, {3, 3, 4}, {5, 2, 3}, {8, 8, 2}, {33, 33, 2}, {64, 5, 3}} {
		t.Run(fmt.Sprintf("n=%d,rows=%d,k=%d", tc.n, tc.rows, tc.k), func(t *testing.T) {
			c, b := make([]int8, tc.rows*tc.n), make([]int8, tc.n*tc.n)
			for i := range c {
				c[i] = int8(rng.IntN(256))
			}
			for i := range b {
				b[i] = int8(rng.IntN(256))
			}
			if got, want := steps(c, b, tc.n, tc.k), naiveSteps(c, b, tc.n, tc.k); !slices.Equal(got, want) {
				t.Fatalf("steps = %v, want %v", got, want)
			}
		})
	}
}

// TestPackedExtremes: the two-lane int64 accumulator recovers both sums at the extremes of the int32 range
// that dot products can reach, including n = MaxN terms of (−128)·(−128) in both lanes.
func TestPackedExtremes(t *testing.T) {
	ext := []int64{0, 1, -1, 1 << 29, -(1 << 29), 1<<31 - 1, -(1 << 31), 12345, -98765}
	for _, lo := range ext {
		for _, hi := range ext {
			if l, h := unpack(lo + hi<<32); int64(l) != lo || int64(h) != hi {
				t.Errorf("unpack(%d, %d) = %d, %d", lo, hi, l, h)
			}
		}
	}
	const n = MaxN
	for _, v := range [][2]int64{{-128, -128}, {-128, 127}, {127, -128}} {
		var x int64
		for range n {
			x += -128 * (v[0] + v[1]<<32)
		}
		if l, h := unpack(x); int64(l) != n*-128*v[0] || int64(h) != n*-128*v[1] {
			t.Errorf("%v: unpacked %d, %d", v, l, h)
		}
	}
}

func TestSolveIndependentOfCores(t *testing.T) {
	c := Challenge{Seed: testSeed(3), N: 96, K: 3}
	many, _ := Solve(c)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	one, _ := Solve(c)
	if !slices.Equal(one, many) {
		t.Fatal("result depends on GOMAXPROCS")
	}
}

// squareShortcut is the cheat the wrap exists to stop: B^k by repeated squaring (log2 k products), then
// A·B^k and wrap once. Arithmetic is mod 2^32 (int32 overflow), as a cheater's GPU would do it.
func squareShortcut(a, b []int8, n, k int, wrap func(int32) int8) []int8 {
	mul := func(x, y []int32) []int32 {
		z := make([]int32, n*n)
		for i := range n {
			for p := range n {
				for j := range n {
					z[i*n+j] += x[i*n+p] * y[p*n+j]
				}
			}
		}
		return z
	}
	widen := func(m []int8) []int32 {
		w := make([]int32, len(m))
		for i, v := range m {
			w[i] = int32(v)
		}
		return w
	}
	pow, sq := []int32(nil), widen(b)
	for e := k; e > 0; e >>= 1 {
		if e&1 == 1 {
			if pow == nil {
				pow = sq
			} else {
				pow = mul(pow, sq)
			}
		}
		sq = mul(sq, sq)
	}
	out := make([]int8, n*n)
	for i, v := range mul(widen(a), pow) {
		out[i] = wrap(v)
	}
	return out
}

func TestSquaringShortcutFails(t *testing.T) {
	for _, k := range []int{2, 3, 8} {
		c := Challenge{Seed: testSeed(4), N: 32, K: k}
		g := NewGenerator(c.Seed, c.N)
		a, b := g.Matrix(MatA), g.Matrix(MatB)
		honest, _ := Solve(c)
		cheat := squareShortcut(a, b, c.N, k, Wrap)
		same := 0
		for i := range honest {
			if honest[i] == cheat[i] {
				same++
			}
		}
		if same > len(honest)/50 {
			t.Errorf("k=%d: the shortcut matches %d of %d entries", k, same, len(honest))
		}
		root, op, err := CommitAndOpen(c, cheat, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyOpening(c, root, 4, op); !errors.Is(err, ErrRow) {
			t.Errorf("k=%d: shortcut verified: %v", k, err)
		}
		// The same shortcut is exact when the wrap is truncation mod 256: the reason for a mixing wrap.
		trunc := func(x int32) int8 { return int8(x) }
		if !slices.Equal(squareShortcut(a, b, c.N, k, trunc), chainWith(a, b, c.N, k, trunc)) {
			t.Errorf("k=%d: with a truncating wrap the shortcut should agree", k)
		}
	}
}

func chainWith(a, b []int8, n, k int, wrap func(int32) int8) []int8 {
	cur := a
	for range k {
		next := make([]int8, n*n)
		for i := range n {
			for j := range n {
				var s int32
				for p := range n {
					s += int32(cur[i*n+p]) * int32(b[p*n+j])
				}
				next[i*n+j] = wrap(s)
			}
		}
		cur = next
	}
	return cur
}

// BenchmarkProve times the CPU prover (generation and k steps, no hashing) and reports int8 ops/s.
func BenchmarkProve(b *testing.B) {
	for _, c := range []Challenge{{N: 512, K: 4}, {N: 1024, K: 2}, {N: 2048, K: 1}} {
		b.Run(fmt.Sprintf("n=%d,k=%d", c.N, c.K), func(b *testing.B) {
			for b.Loop() {
				if _, err := Solve(c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(c.Ops()*float64(b.N)/b.Elapsed().Seconds(), "int8-ops/s")
		})
	}
}

// BenchmarkVerify times the verifier's recomputation of s rows (B generated and packed, k steps).
func BenchmarkVerify(b *testing.B) {
	c := Challenge{Seed: testSeed(5), N: 2048, K: 8}
	root, op, err := Prove(c, 16)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := VerifyOpening(c, root, 16, op); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2*16*float64(c.K)*float64(c.N*c.N)*float64(b.N)/b.Elapsed().Seconds(), "int8-ops/s")
}

// BenchmarkProverVsVerifier times, for n = 1024, 2048 and 4096 (k = 2, s = 16 rows opened), the prover (C_k,
// the commitment and the opening) and the verifier (checking the opening: s rows recomputed, B generated),
// and reports their ratio: the auditor's advantage, ideally n/s.
func BenchmarkProverVsVerifier(b *testing.B) {
	const k, s = 2, 16
	for _, n := range []int{1024, 2048, 4096} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			c := Challenge{Seed: testSeed(byte(n / 1024)), N: n, K: k}
			var prove, verify time.Duration
			for b.Loop() {
				t0 := time.Now()
				root, op, err := Prove(c, s)
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := VerifyOpening(c, root, s, op); err != nil {
					b.Fatal(err)
				}
				prove, verify = prove+t1.Sub(t0), verify+time.Since(t1)
			}
			b.ReportMetric(float64(prove.Milliseconds())/float64(b.N), "prove-ms")
			b.ReportMetric(float64(verify.Microseconds())/1000/float64(b.N), "verify-ms")
			b.ReportMetric(prove.Seconds()/verify.Seconds(), "ratio")
		})
	}
}
