package web

import "testing"

// TestAttrText: event attributes holding amounts show SPR, prices SPR per hour, times a UTC time; the rest as
// the ledger wrote them (the JSON API keeps the integers).
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
	cores := funcs["cores"].(func(uint64) string)
	for milli, want := range map[uint64]string{500: "0.5 cores", 1000: "1 core", 4000: "4 cores", 1250: "1.25 cores"} {
		if got := cores(milli); got != want {
			t.Errorf("cores(%d) = %q, want %q", milli, got, want)
		}
	}
}
