package index

import (
	"math"
	"testing"
)

// TestPerCoreHour: a CPU lease's price per hour for its thousandths of a core becomes a price per core-hour,
// rounded down, and never wraps around for prices the ledger could hold.
func TestPerCoreHour(t *testing.T) {
	for _, tc := range []struct{ price, milli, want uint64 }{
		{500_000, 2000, 250_000},
		{1_000_000, 4000, 250_000},
		{1_000_000, 500, 2_000_000},
		{1, 3000, 0},
		{7, 0, 0}, // no cores: no per-core price
		{math.MaxUint64, 1000, math.MaxUint64},
		{math.MaxUint64, 2000, math.MaxUint64 / 2},
		{math.MaxUint64, 999, math.MaxUint64}, // more than a uint64 holds: the most it holds
	} {
		if got := perCoreHour(tc.price, tc.milli); got != tc.want {
			t.Errorf("perCoreHour(%d, %d) = %d, want %d", tc.price, tc.milli, got, tc.want)
		}
	}
}
