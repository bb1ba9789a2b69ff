package proof

import (
	"slices"
	"testing"
)

func testSeed(b byte) Seed {
	var s Seed
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

// TestKnownAnswers pins the generator, the wrap and the steps to fixed values, for anyone porting them (the
// PyTorch solver reproduces these; see solver_test.go).
func TestKnownAnswers(t *testing.T) {
	seed := testSeed(0) // 00 01 02 … 1f
	g := NewGenerator(seed, 4)
	want := map[string][]int8{
		"A":   {72, 90, -26, -13, -17, -57, 6, 52, -122, 6, 90, 60, -63, 108, 115, 85},
		"B":   {-32, -97, 111, -73, -7, 74, -81, -15, 94, -64, -105, 14, 15, -111, -19, -39},
		"C_3": {74, -91, 117, 64, 61, -96, -69, -25, 36, -70, -14, 85, -1, -38, -117, -9},
	}
	ck, err := Solve(Challenge{Seed: seed, N: 4, K: 3})
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]int8{"A": g.Matrix(MatA), "B": g.Matrix(MatB), "C_3": ck} {
		if !slices.Equal(got, want[name]) {
			t.Errorf("%s = %v, want %v", name, got, want[name])
		}
	}
	for _, tc := range []struct {
		x    int32
		want int8
	}{{0, -71}, {1, 13}, {-1, 80}, {1 << 29, -60}, {-(1 << 29), -1}, {12345, 62}} {
		if got := Wrap(tc.x); got != tc.want {
			t.Errorf("Wrap(%d) = %d, want %d", tc.x, got, tc.want)
		}
	}
	for x, want := range map[uint32]uint32{0: 0, 1: 824515495, 0xffffffff: 539527247} {
		if got := mix32(x); got != want {
			t.Errorf("mix32(%#x) = %d, want %d", x, got, want)
		}
	}
}

// TestElementIndependence: any element made alone equals the full matrix's, rows too.
func TestElementIndependence(t *testing.T) {
	for _, n := range []int{1, 2, 7, 64, 100} {
		g := NewGenerator(testSeed(9), n)
		for _, m := range []int{MatA, MatB} {
			full := g.Matrix(m)
			row := make([]int8, n)
			for i := range n {
				g.Row(m, i, row)
				if !slices.Equal(row, full[i*n:(i+1)*n]) {
					t.Fatalf("n=%d m=%d: row %d differs", n, m, i)
				}
				for j := range n {
					if v := g.At(m, i, j); v != full[i*n+j] {
						t.Fatalf("n=%d m=%d: At(%d,%d) = %d, matrix has %d", n, m, i, j, v, full[i*n+j])
					}
				}
			}
		}
	}
}

// TestGeneratorDeterminismAndSpread: same inputs, same matrices; any change of seed, size or matrix gives
// different ones; values cover all of int8 about evenly.
func TestGeneratorDeterminismAndSpread(t *testing.T) {
	a := NewGenerator(testSeed(1), 256).Matrix(MatA)
	if !slices.Equal(a, NewGenerator(testSeed(1), 256).Matrix(MatA)) {
		t.Fatal("generator is not deterministic")
	}
	for name, other := range map[string][]int8{
		"seed":   NewGenerator(testSeed(2), 256).Matrix(MatA),
		"matrix": NewGenerator(testSeed(1), 256).Matrix(MatB),
		"n":      NewGenerator(testSeed(1), 257).Matrix(MatA)[:256*256],
	} {
		same := 0
		for i := range a {
			if a[i] == other[i] {
				same++
			}
		}
		if same > len(a)/100 { // about 1/256 match by chance
			t.Errorf("changing the %s leaves %d of %d entries equal", name, same, len(a))
		}
	}
	var counts [256]int
	for _, v := range a {
		counts[uint8(v)]++
	}
	for v, c := range counts { // expected 256 each
		if c < 150 || c > 370 {
			t.Errorf("value %d appears %d times in 65536", int8(v), c)
		}
	}
}
