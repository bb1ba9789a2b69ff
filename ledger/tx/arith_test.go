package tx

import "testing"

func TestMulDivUp(t *testing.T) {
	max := ^uint64(0)
	cases := []struct {
		a, b, d, want uint64
		ok            bool
	}{
		{10, 3, 4, 8, true}, {12, 3, 4, 9, true}, {max, 1, 1, max, true}, {max, 2, 1, 0, false},
		{max, 3600, 3600, max, true}, {max, 3601, 3600, 0, false}, {1 << 63, 3, 2, 3 << 62, true}, {1 << 63, 4, 2, 0, false},
		{0, 5, 7, 0, true}, {5, 7, 0, 0, false}, {1, 1, 3600, 1, true}, {3599, 1, 3600, 1, true}, {3600, 1, 3600, 1, true},
	}
	for _, c := range cases {
		got, ok := MulDivUp(c.a, c.b, c.d)
		if got != c.want || ok != c.ok {
			t.Errorf("MulDivUp(%d, %d, %d) = %d, %v; want %d, %v", c.a, c.b, c.d, got, ok, c.want, c.ok)
		}
	}
}

func TestDurationText(t *testing.T) {
	for sec, want := range map[uint64]string{0: "0s", 45: "45s", 60: "1m", 90: "1m30s", 3600: "1h", 5400: "1h30m", 86400: "24h", 3661: "1h1m1s"} {
		if got := DurationText(sec); got != want {
			t.Errorf("DurationText(%d) = %q, want %q", sec, got, want)
		}
	}
}

// TestAddressStringIsBech32: Address.String's fast path writes exactly what the general bech32 encoder does, and
// parses back, for addresses with every byte value.
func TestAddressStringIsBech32(t *testing.T) {
	for i := range 600 {
		var a Address
		for j := range a {
			a[j] = byte(i*31 + j*7 + i*j)
		}
		if i >= 256 {
			a = Address{}
			a[i%20] = byte(i)
		}
		want, err := bech32Encode(HRP, a[:])
		if err != nil {
			t.Fatal(err)
		}
		if got := a.String(); got != want {
			t.Fatalf("%x: %s, want %s", a[:], got, want)
		}
		if back, err := ParseAddress(a.String()); err != nil || back != a {
			t.Fatalf("%x: parses back as %x, %v", a[:], back[:], err)
		}
	}
}
