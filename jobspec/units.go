package jobspec

import (
	"fmt"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Sizes.

// MaxSizeMiB bounds memory, disk and VRAM sizes (1 PiB): larger values are typos.
const MaxSizeMiB = 1 << 30

var (
	sizeRE  = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)
	unitKiB = map[string]uint64{"kib": 1, "mib": 1 << 10, "gib": 1 << 20, "tib": 1 << 30}
	// decimal or abbreviated units people write, mapped to the binary unit they almost certainly meant.
	sizeFix = map[string]string{
		"k": "KiB", "kb": "KiB", "ki": "KiB",
		"m": "MiB", "mb": "MiB", "mi": "MiB",
		"g": "GiB", "gb": "GiB", "gi": "GiB",
		"t": "TiB", "tb": "TiB", "ti": "TiB",
	}
)

// parseSize reads a size with a binary unit (KiB, MiB, GiB, TiB; the unit's case is not significant, a space
// before it is allowed, decimals are allowed: "1.5GiB") and returns it in MiB, rounded up to a whole MiB. The
// message of a failure says how to fix it ("did you mean 80GiB?").
func parseSize(s string) (uint64, string) {
	s = strings.TrimSpace(s)
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Sprintf("%q is not a size: write a number and a binary unit, e.g. 512MiB or 16GiB", s)
	}
	num, unit := m[1], strings.ToLower(m[2])
	if unit == "" {
		n, _ := strconv.ParseUint(num, 10, 64)
		if !strings.Contains(num, ".") && n >= 1<<20 && n%(1<<20) == 0 {
			return 0, fmt.Sprintf("%s has no unit: did you mean %dMiB? (sizes take KiB, MiB, GiB or TiB)", num, n>>20)
		}
		return 0, fmt.Sprintf("%s has no unit: did you mean %sGiB? (sizes take KiB, MiB, GiB or TiB)", num, num)
	}
	if fix, ok := sizeFix[unit]; ok {
		return 0, fmt.Sprintf("%q: sizes take binary units: did you mean %s%s?", s, num, fix)
	}
	perUnit, ok := unitKiB[unit]
	if !ok {
		return 0, fmt.Sprintf("%q: unknown unit %q: use KiB, MiB, GiB or TiB, e.g. 16GiB", s, m[2])
	}
	whole, frac, _ := strings.Cut(num, ".")
	if len(whole) > 12 || len(frac) > 6 {
		return 0, fmt.Sprintf("%q is too large or too precise: give at most 6 decimals, e.g. 1.5GiB", s)
	}
	// Work in KiB, exactly: value = (whole + frac/10^k) * unitKiB.
	w, _ := strconv.ParseUint(whole, 10, 64)
	scale := uint64(1)
	var f uint64
	if frac != "" {
		f, _ = strconv.ParseUint(frac, 10, 64)
		for range len(frac) {
			scale *= 10
		}
	}
	// KiB*scale = (w*scale + f) * unitKiB; round up to MiB.
	hi, lo := bits.Mul64(w*scale+f, perUnit) // w < 10^12, scale <= 10^6: no overflow before the multiply
	if hi != 0 {
		return 0, fmt.Sprintf("%q is too large (limit 1024TiB)", s)
	}
	den := scale << 10 // KiB per MiB times scale
	mib := lo / den
	if lo%den != 0 {
		mib++
	}
	if mib > MaxSizeMiB {
		return 0, fmt.Sprintf("%q is too large (limit 1024TiB)", s)
	}
	if mib == 0 {
		return 0, fmt.Sprintf("%q is zero: give a positive size, e.g. 512MiB", s)
	}
	return mib, ""
}

// formatMiB renders a MiB count with the largest binary unit that divides it.
func formatMiB(mib uint64) string {
	switch {
	case mib >= 1<<20 && mib%(1<<20) == 0:
		return fmt.Sprintf("%dTiB", mib>>20)
	case mib >= 1<<10 && mib%(1<<10) == 0:
		return fmt.Sprintf("%dGiB", mib>>10)
	}
	return fmt.Sprintf("%dMiB", mib)
}

// Durations.

var (
	durWordRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)$`)
	durFix    = map[string]string{
		"sec": "s", "secs": "s", "second": "s", "seconds": "s",
		"min": "m", "mins": "m", "minute": "m", "minutes": "m",
		"hr": "h", "hrs": "h", "hour": "h", "hours": "h",
		"msec": "ms", "millisecond": "ms", "milliseconds": "ms",
	}
	durDays = map[string]bool{"d": true, "day": true, "days": true}
)

// parseDuration reads a Go-style duration ("90s", "2h", "1h30m"). Days ("7d") and spelled-out units ("2 hours")
// are errors that suggest the Go spelling; a bare number suggests seconds.
func parseDuration(s string) (time.Duration, string) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return 0, fmt.Sprintf("%q: give a positive duration, e.g. 2h", s)
		}
		return d, ""
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eEnNiI") {
		return 0, fmt.Sprintf("%s has no unit: did you mean %ss? (durations are Go-style: 90s, 30m, 2h)", s, s)
	}
	if m := durWordRE.FindStringSubmatch(s); m != nil {
		num, unit := m[1], strings.ToLower(m[2])
		if u, ok := durFix[unit]; ok {
			return 0, fmt.Sprintf("%q: did you mean %s%s? (durations are Go-style: 90s, 30m, 2h)", s, num, u)
		}
		if durDays[unit] {
			if n, err := strconv.ParseUint(num, 10, 32); err == nil {
				return 0, fmt.Sprintf("%q: Go durations have no days: did you mean %dh?", s, n*24)
			}
			return 0, fmt.Sprintf("%q: Go durations have no days: give hours, e.g. 48h", s)
		}
	}
	return 0, fmt.Sprintf("%q is not a duration: write it Go-style, e.g. 90s, 30m, 2h or 1h30m", s)
}

// Decimals.

var decimalRE = regexp.MustCompile(`^[0-9]+(\.[0-9]*)?$|^\.[0-9]+$`)

// parseFixed reads a non-negative decimal with at most places decimals as an integer count of 10^-places units
// ("2.5", 6 → 2500000). ok is false for anything else; tooPrecise tells the two apart.
func parseFixed(s string, places int) (v uint64, ok, tooPrecise bool) {
	if !decimalRE.MatchString(s) {
		return 0, false, false
	}
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > places {
		if strings.TrimRight(frac[places:], "0") != "" {
			return 0, false, true
		}
		frac = frac[:places]
	}
	if whole == "" {
		whole = "0"
	}
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, false, false
	}
	scale := uint64(1)
	for range places {
		scale *= 10
	}
	hi, v := bits.Mul64(w, scale)
	if hi != 0 {
		return 0, false, false
	}
	if frac != "" {
		f, _ := strconv.ParseUint(frac+strings.Repeat("0", places-len(frac)), 10, 64)
		var carry uint64
		v, carry = bits.Add64(v, f, 0)
		if carry != 0 {
			return 0, false, false
		}
	}
	return v, true, false
}

// formatFixed renders a fixed-point value with trailing zeros removed.
func formatFixed(v uint64, places int) string {
	scale := uint64(1)
	for range places {
		scale *= 10
	}
	w, f := v/scale, v%scale
	if f == 0 {
		return strconv.FormatUint(w, 10)
	}
	return strings.TrimRight(fmt.Sprintf("%d.%0*d", w, places, f), "0")
}

// USPR is the number of micro-units (uspr) in one SPR.
const USPR = 1_000_000

// parseSPR reads an amount of SPR as the ledger does (client.ParseAmount): "2.5", "2.5spr" (up to 6 decimals)
// or "2500000uspr", returning uspr.
func parseSPR(s string) (uint64, string) {
	in := strings.ToLower(strings.TrimSpace(s))
	switch {
	case strings.HasSuffix(in, "uspr"):
		n := strings.TrimSpace(strings.TrimSuffix(in, "uspr"))
		v, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return 0, fmt.Sprintf("%q: uspr are whole micro-units, e.g. 2500000uspr (= 2.5 SPR)", s)
		}
		return v, ""
	case strings.HasSuffix(in, "spr"):
		in = strings.TrimSpace(strings.TrimSuffix(in, "spr"))
	}
	if strings.HasPrefix(in, "-") {
		return 0, fmt.Sprintf("%s is negative: give a price above 0, e.g. 2.5", s)
	}
	v, ok, precise := parseFixed(in, 6)
	if precise {
		return 0, fmt.Sprintf("%q: at most 6 decimals (1 uspr = 0.000001 SPR)", s)
	}
	if !ok {
		return 0, fmt.Sprintf("%q is not an amount: give SPR like 2.5 (or 2500000uspr)", s)
	}
	return v, ""
}

// parseCores reads CPU cores: a whole number (4), a decimal with up to 3 places (0.5) or millicores (500m),
// returning millicores.
func parseCores(s string) (uint64, string) {
	in := strings.TrimSpace(s)
	if m, ok := strings.CutSuffix(in, "m"); ok {
		v, err := strconv.ParseUint(m, 10, 64)
		if err != nil {
			return 0, fmt.Sprintf("%q is not a core count: give cores, e.g. 4 or 0.5 (or millicores: 500m)", s)
		}
		return v, ""
	}
	v, ok, precise := parseFixed(in, 3)
	if precise {
		return 0, fmt.Sprintf("%q: at most 3 decimals (1 millicore = 0.001): e.g. 0.25", s)
	}
	if !ok {
		if strings.HasPrefix(in, "-") {
			return 0, fmt.Sprintf("%s is negative: give cores, e.g. 4 or 0.5", s)
		}
		return 0, fmt.Sprintf("%q is not a core count: give cores, e.g. 4 or 0.5 (or millicores: 500m)", s)
	}
	return v, ""
}

// MinVRAMMiB is the per-GPU memory floor an order carries for a job that asks for vram (in MiB): 90% of the
// asked size, rounded up. nvidia-smi reports less memory than the box says (the driver's reservation, and on
// GDDR cards with ECC on 1/16 less again): an H100 80GB reports 81559 MiB (99.6% of 80GiB), an L4 24GB 23034
// MiB (93.7% of 24GiB), a T4 16GB 15109 to 15360 MiB (92.2% to 93.75%). 90% admits every such card for its
// marketed size while still excluding the next smaller size class (a 40GiB card does not match vram: 48GiB,
// nor a 16GiB one vram: 24GiB; the one near miss is an 11GiB card, e.g. a 2080 Ti at 11264 MiB, which does
// match vram: 12GiB). A tolerance of 95% would turn away the L4, T4, A10 and L40S at their marketed sizes.
func MinVRAMMiB(askedMiB uint64) uint64 {
	return (askedMiB*VRAMTolerancePercent + 99) / 100
}

// VRAMTolerancePercent is the share of the asked VRAM a GPU must report to match (see MinVRAMMiB).
const VRAMTolerancePercent = 90
