package client

import "testing"

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"2.5", 2_500_000, false},
		{"2.5spr", 2_500_000, false},
		{"2.5 SPR", 2_500_000, false},
		{"1uspr", 1, false},
		{"0.000001", 1, false},
		{".5", 500_000, false},
		{"18446744073709551615uspr", 18446744073709551615, false},
		{"18446744073710", 0, true},
		{"1.0000001", 0, true},
		{"1.5uspr", 0, true},
		{"-1", 0, true},
		{"abc", 0, true},
		{"", 0, true},
	} {
		got, err := ParseAmount(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d, err=%v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if s := FormatAmount(2_500_000); s != "2.5 SPR" {
		t.Errorf("FormatAmount = %q", s)
	}
	if s := FormatAmount(3_000_000); s != "3 SPR" {
		t.Errorf("FormatAmount = %q", s)
	}
}
