package client

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/sparenet/spare/ledger/api"
)

// ParseAmount reads a token amount: "2.5" or "2.5spr" (SPR, up to 6 decimals) or "2500000uspr" (micro-units).
func ParseAmount(s string) (uint64, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	unit := uint64(api.USPR)
	switch {
	case strings.HasSuffix(in, "uspr"):
		in, unit = strings.TrimSuffix(in, "uspr"), 1
	case strings.HasSuffix(in, "spr"):
		in = strings.TrimSuffix(in, "spr")
	}
	in = strings.TrimSpace(in)
	bad := fmt.Errorf("amount %q: want a number of SPR like 2.5 or 2.5spr, or micro-units like 2500000uspr", s)
	if in == "" || strings.HasPrefix(in, "-") || strings.HasPrefix(in, "+") {
		return 0, bad
	}
	whole, frac, hasFrac := strings.Cut(in, ".")
	if unit == 1 && hasFrac {
		return 0, fmt.Errorf("amount %q: uspr are whole micro-units, no decimals", s)
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("amount %q: at most 6 decimals (1 uspr = 0.000001 SPR)", s)
	}
	if whole == "" {
		whole = "0"
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, bad
	}
	hi, v := bits.Mul64(w, unit)
	if hi != 0 {
		return 0, fmt.Errorf("amount %q: too large", s)
	}
	if hasFrac && frac != "" {
		f, err := strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil {
			return 0, bad
		}
		var carry uint64
		v, carry = bits.Add64(v, f, 0)
		if carry != 0 {
			return 0, fmt.Errorf("amount %q: too large", s)
		}
	}
	return v, nil
}

// FormatAmount renders uspr as SPR with up to 6 decimals, e.g. "2.5 SPR".
func FormatAmount(uspr uint64) string { return api.FormatSPR(uspr) }
