package tx

import (
	"fmt"
	"math/bits"
)

// MulDivUp is ⌈a × b / d⌉, exactly (the product is 128 bits wide); ok is false when the result does not fit 64
// bits or d is 0. The deposit a price per hour comes to over sec seconds is MulDivUp(price, sec, 3600): the rule
// the ledger charges an extension by and a job file's deposit is computed by.
func MulDivUp(a, b, d uint64) (uint64, bool) {
	if d == 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, d)
	if r != 0 {
		if q == ^uint64(0) {
			return 0, false
		}
		q++
	}
	return q, true
}

// DurationText writes whole seconds as people read them, in the ledger's messages and the clients' alike:
// "24h", "1h30m", "1m30s", "45s", "0s".
func DurationText(sec uint64) string {
	if sec == 0 {
		return "0s"
	}
	h, m, s := sec/3600, sec/60%60, sec%60
	var out string
	for _, p := range []struct {
		v    uint64
		unit string
	}{{h, "h"}, {m, "m"}, {s, "s"}} {
		if p.v > 0 {
			out += fmt.Sprintf("%d%s", p.v, p.unit)
		}
	}
	return out
}

// SatAdd is a+b, saturating at MaxUint64.
func SatAdd(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return ^uint64(0)
	}
	return s
}

// MulDiv returns floor(a*b/d) exactly (128-bit intermediate), saturating at MaxUint64.
func MulDiv(a, b, d uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, d)
	return q
}
