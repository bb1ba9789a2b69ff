package proof

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestProveVerify(t *testing.T) {
	for _, tc := range []struct{ n, k, s int }{{1, 1, 1}, {2, 3, 2}, {3, 2, 3}, {17, 4, 5}, {64, 2, 8}, {100, 3, 26}} {
		t.Run(fmt.Sprintf("n=%d,k=%d,s=%d", tc.n, tc.k, tc.s), func(t *testing.T) {
			c := Challenge{Seed: testSeed(byte(tc.n)), N: tc.n, K: tc.k}
			root, op, err := Prove(c, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyOpening(c, root, tc.s, op); err != nil {
				t.Fatalf("honest proof rejected: %v", err)
			}
			ck, _ := Solve(c)
			tree, _ := Commit(c.N, ck)
			if tree.Root() != root {
				t.Fatal("root differs between runs")
			}
		})
	}
}

// TestVerifyRejects: each way a proof can be wrong fails, with its own error.
func TestVerifyRejects(t *testing.T) {
	c := Challenge{Seed: testSeed(7), N: 48, K: 3}
	const s = 6
	root, op, err := Prove(c, s)
	if err != nil {
		t.Fatal(err)
	}
	honest, _ := Solve(c)
	clone := func() Opening { o, _ := DecodeOpening(op.Encode()); return o }
	// committed honestly to a wrong C_k: proofs hold, rows do not.
	commitTo := func(c Challenge, ck []int8) (Hash, Opening) {
		r, o, err := CommitAndOpen(c, ck, s)
		if err != nil {
			t.Fatal(err)
		}
		return r, o
	}
	shortK := c
	shortK.K--
	fewerSteps, _ := Solve(shortK)
	otherSeed, _ := Solve(Challenge{Seed: testSeed(8), N: c.N, K: c.K})
	oneWrong := slices.Clone(honest)
	for i := range c.N { // every row has one entry off, so whichever rows are drawn, one is wrong
		oneWrong[i*c.N+i%c.N] ^= 1
	}

	type tc struct {
		name string
		c    Challenge
		root Hash
		s    int
		op   Opening
		want error
	}
	cases := []tc{
		{"honest", c, root, s, op, nil},
		{"changed row byte", c, root, s, func() Opening { o := clone(); o.Rows[2].Row[5]++; return o }(), ErrMerkle},
		{"changed proof hash", c, root, s, func() Opening { o := clone(); o.Rows[0].Proof[1][0] ^= 1; return o }(), ErrMerkle},
		{"short proof", c, root, s, func() Opening { o := clone(); o.Rows[0].Proof = o.Rows[0].Proof[1:]; return o }(), ErrMerkle},
		{"rows swapped", c, root, s, func() Opening { o := clone(); o.Rows[0], o.Rows[1] = o.Rows[1], o.Rows[0]; return o }(), ErrIndices},
		{"row missing", c, root, s, func() Opening { o := clone(); o.Rows = o.Rows[:s-1]; return o }(), ErrIndices},
		{"fewer rows asked", c, root, s - 1, op, ErrIndices},
		{"wrong root", c, sha256.Sum256([]byte("other")), s, op, ErrIndices},
		{"wrong n", Challenge{Seed: c.Seed, N: c.N + 1, K: c.K}, root, s, op, ErrParams},
		{"k out of range", Challenge{Seed: c.Seed, N: c.N, K: 0}, root, s, op, ErrParams},
		{"too many rows", c, root, c.N + 1, op, ErrParams},
	}
	r, o := commitTo(c, fewerSteps)
	cases = append(cases, tc{"k−1 steps", c, r, s, o, ErrRow})
	r, o = commitTo(c, otherSeed)
	cases = append(cases, tc{"other seed", c, r, s, o, ErrRow})
	r, o = commitTo(c, oneWrong)
	cases = append(cases, tc{"one entry per row off", c, r, s, o, ErrRow})
	// opening rows of the true C_k at indices drawn for another root
	other, _ := Commit(c.N, oneWrong)
	idx, _ := Sample(c.Seed, other.Root(), c.N, s)
	tree, _ := Commit(c.N, honest)
	cases = append(cases, tc{"indices for another root", c, root, s, tree.Open(idx), ErrIndices})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyOpening(tc.c, tc.root, tc.s, tc.op)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestPartialProver: a prover that computes only a fraction f of the rows (garbage elsewhere) passes at
// about f^s. Seeds are fixed, so the count is reproducible.
func TestPartialProver(t *testing.T) {
	const n, k, s, trials, f = 64, 2, 4, 400, 0.5
	rng := rand.New(rand.NewPCG(11, 12))
	passed := 0
	for trial := range trials {
		c := Challenge{N: n, K: k}
		for i := range c.Seed {
			c.Seed[i] = byte(rng.Uint32())
		}
		ck, _ := Solve(c)
		for _, i := range rng.Perm(n)[:int(f*n)] { // these rows are garbage
			for j := range n {
				ck[i*n+j] = int8(rng.Uint32())
			}
		}
		root, op, err := CommitAndOpen(c, ck, s)
		if err != nil {
			t.Fatal(err)
		}
		switch err := VerifyOpening(c, root, s, op); {
		case err == nil:
			passed++
		case !errors.Is(err, ErrRow):
			t.Fatalf("trial %d: %v", trial, err)
		}
	}
	// Drawing without replacement: C(32,4)/C(64,4) ≈ 0.0566, a little under f^s = 0.0625.
	exact := 1.0
	for q := range s {
		exact *= (f*n - float64(q)) / (n - float64(q))
	}
	rate, fs := float64(passed)/trials, math.Pow(f, s)
	tol := 4 * math.Sqrt(fs*(1-fs)/trials) // four standard deviations
	t.Logf("passed %d of %d: %.4f (f^s = %.4f, exact %.4f, tolerance %.4f)", passed, trials, rate, fs, exact, tol)
	if math.Abs(rate-fs) > tol || math.Abs(rate-exact) > tol {
		t.Fatalf("pass rate %.4f is not within %.4f of f^s = %.4f", rate, tol, fs)
	}
}

func TestSample(t *testing.T) {
	seed, root := testSeed(1), Hash(sha256.Sum256([]byte("root")))
	for _, tc := range []struct{ n, s int }{{1, 1}, {2, 2}, {10, 3}, {1000, 26}, {64, 64}, {MaxN, MaxRows}} {
		got, err := Sample(seed, root, tc.n, tc.s)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, i := range got {
			if i < 0 || i >= tc.n || seen[i] {
				t.Fatalf("n=%d s=%d: bad or repeated index %d in %v", tc.n, tc.s, i, got)
			}
			seen[i] = true
		}
		if len(got) != tc.s {
			t.Fatalf("n=%d s=%d: drew %d", tc.n, tc.s, len(got))
		}
		again, _ := Sample(seed, root, tc.n, tc.s)
		if !slices.Equal(got, again) {
			t.Fatal("sampling is not deterministic")
		}
	}
	a, _ := Sample(seed, root, 1000, 20)
	b, _ := Sample(seed, Hash{}, 1000, 20)
	c, _ := Sample(testSeed(2), root, 1000, 20)
	if slices.Equal(a, b) || slices.Equal(a, c) {
		t.Fatal("indices do not depend on both seed and root")
	}
	for _, bad := range []struct{ n, s int }{{10, 0}, {10, 11}, {0, 1}, {MaxN + 1, 1}, {MaxN, MaxRows + 1}} {
		if _, err := Sample(seed, root, bad.n, bad.s); !errors.Is(err, ErrParams) {
			t.Errorf("Sample(n=%d, s=%d) = %v, want ErrParams", bad.n, bad.s, err)
		}
	}
	// Uniformity: over many roots, each of 8 rows is drawn first about equally often.
	var first [8]int
	for r := range 8000 {
		idx, _ := Sample(seed, sha256.Sum256([]byte{byte(r), byte(r >> 8)}), 8, 1)
		first[idx[0]]++
	}
	for i, c := range first {
		if c < 880 || c > 1120 { // 1000 ± 4σ
			t.Errorf("row %d drawn first %d times in 8000", i, c)
		}
	}
}

func TestRowsFor(t *testing.T) {
	for _, tc := range []struct {
		p, f float64
		want int
	}{{0.001, 0.76, 26}, {0.001, 0.5, 10}, {0.001, 0.1, 3}, {0.01, 0.1, 2}, {0.5, 0.5, 1}, {0.9, 0.1, 1}, {1e-6, 0.99, 1375}} {
		got, err := RowsFor(tc.p, tc.f)
		if err != nil || got != tc.want {
			t.Errorf("RowsFor(%v, %v) = %d, %v; want %d", tc.p, tc.f, got, err, tc.want)
		}
		if math.Pow(tc.f, float64(got)) > tc.p*(1+1e-9) {
			t.Errorf("RowsFor(%v, %v) = %d: f^s = %v > p", tc.p, tc.f, got, math.Pow(tc.f, float64(got)))
		}
	}
	for _, bad := range [][2]float64{{0, 0.5}, {1, 0.5}, {0.01, 0}, {0.01, 1}, {math.NaN(), 0.5}, {1e-9, 0.9999}} {
		if _, err := RowsFor(bad[0], bad[1]); !errors.Is(err, ErrParams) {
			t.Errorf("RowsFor(%v, %v) = %v, want ErrParams", bad[0], bad[1], err)
		}
	}
}

func TestTree(t *testing.T) {
	for n, want := range map[int]int{1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 1024: 10, 1025: 11, MaxN: 15} {
		if got := Depth(n); got != want {
			t.Errorf("Depth(%d) = %d, want %d", n, got, want)
		}
	}
	// n = 3 by hand: leaves l0 l1 l2 pad.
	ck := []int8{1, 2, 3, -1, -2, -3, 0, 127, -128}
	tree, _ := Commit(3, ck)
	l := func(i int) Hash { return LeafHash(i, ck[3*i:3*i+3]) }
	if want := innerHash(innerHash(l(0), l(1)), innerHash(l(2), padLeaf)); tree.Root() != want {
		t.Fatal("root of n=3 differs from the hand-built tree")
	}
	if want := Hash(sha256.Sum256([]byte{0, 0, 0, 0, 2, 0xff, 0xfe, 0xfd})); LeafHash(2, []int8{-1, -2, -3}) != want {
		t.Fatal("leaf encoding differs from 0x00 || u32be(i) || row")
	}
	for _, n := range []int{1, 2, 3, 5, 8, 13} {
		ck := NewGenerator(testSeed(3), n).Matrix(MatA)
		tree, _ := Commit(n, ck)
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		for _, r := range tree.Open(all).Rows {
			if !VerifyProof(tree.Root(), n, r.Index, r.Row, r.Proof) {
				t.Fatalf("n=%d: proof of row %d fails", n, r.Index)
			}
			if n > 1 && VerifyProof(tree.Root(), n, (r.Index+1)%n, r.Row, r.Proof) {
				t.Fatalf("n=%d: row %d's proof holds at another index", n, r.Index)
			}
		}
	}
	if _, err := Commit(3, ck[:8]); !errors.Is(err, ErrParams) {
		t.Fatalf("Commit with a short matrix: %v", err)
	}
}
