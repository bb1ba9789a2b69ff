package web

import (
	"strings"
	"testing"
)

// TestAttrText: event attributes holding amounts show SPR, prices SPR per hour (a Vault or storage event's per
// GiB-month), times a UTC time, sizes in binary units; the rest as the ledger wrote them, cut to a few hundred
// characters (the JSON API keeps the integers and the whole text).
func TestAttrText(t *testing.T) {
	for _, tc := range []struct{ k, v, want string }{
		{"amount", "250000", "0.25 SPR"},
		{"refund", "10000000", "10 SPR"},
		{"take", "0", "0 SPR"},
		{"price", "2000000", "2 SPR/h"},
		{"max_price", "1500000", "1.5 SPR/h"},
		{"until_ms", "1767225600000", "2026-01-01 00:00:00 UTC"},
		{"until_ms", "0", "0"},
		{"lease_id", "7", "7"},
		{"epoch", "12", "12"},
		{"amount", "not a number", "not a number"},
		{"reason", "host maintenance", "host maintenance"},
	} {
		if got := attrText(tc.k, tc.v); got != tc.want {
			t.Errorf("attrText(%q, %q) = %q, want %q", tc.k, tc.v, got, tc.want)
		}
	}
	for v, want := range map[uint64]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 16 << 10: "16 KiB", 1536 << 10: "1.5 MiB",
		200 << 10: "200 KiB", 1<<30 - 48<<10: "1 GiB", 1<<30 - 30<<20: "994 MiB", 1<<30 - 20<<20: "0.98 GiB", 12345678: "11.8 MiB", 1 << 62: "4 EiB", 1<<64 - 1: "16 EiB"} {
		if got := formatBytes(v); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", v, got, want)
		}
	}
	for _, tc := range []struct{ typ, k, v, want string }{
		{"vault.shard_placed", "price", "3500", "0.0035 SPR/GiB-month"},
		{"storage.offered", "capacity", "1073741824", "1 GiB"},
		{"vault.placed", "cost", "2000000", "2 SPR"},
		{"lease.created", "price", "2000000", "2 SPR/h"},
		{"vault.unplaced", "reason", strings.Repeat("x", 1000), strings.Repeat("x", maxAttrText-1) + "…"},
	} {
		if got := eventAttr(tc.typ, tc.k, tc.v); got != tc.want {
			t.Errorf("eventAttr(%q, %q, %.20q) = %.40q, want %.40q", tc.typ, tc.k, tc.v, got, tc.want)
		}
	}
	cores := funcs["cores"].(func(uint64) string)
	for milli, want := range map[uint64]string{500: "0.5 cores", 1000: "1 core", 4000: "4 cores", 1250: "1.25 cores"} {
		if got := cores(milli); got != want {
			t.Errorf("cores(%d) = %q, want %q", milli, got, want)
		}
	}
}
