package proof

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func honestTranscript(t testing.TB, n, k, s int) *Transcript {
	c := Challenge{Seed: testSeed(byte(n)), N: n, K: k}
	root, op, err := Prove(c, s)
	if err != nil {
		t.Fatal(err)
	}
	return &Transcript{Class: "rtx4090", Challenge: c, Deadline: 2 * time.Second,
		ChallengedAt: 1_700_000_000_000_000_000, CommittedAt: 1_700_000_001_500_000_000, Root: root, Opening: op}
}

func TestOpeningRoundTrip(t *testing.T) {
	for _, tc := range []struct{ n, s int }{{1, 1}, {2, 2}, {5, 3}, {64, 10}} {
		_, op, err := Prove(Challenge{Seed: testSeed(1), N: tc.n, K: 2}, tc.s)
		if err != nil {
			t.Fatal(err)
		}
		b := op.Encode()
		if want := 12 + tc.s*(4+tc.n+32*Depth(tc.n)); len(b) != want {
			t.Fatalf("n=%d s=%d: %d bytes, want %d", tc.n, tc.s, len(b), want)
		}
		got, err := DecodeOpening(b)
		if err != nil || !reflect.DeepEqual(got, op) {
			t.Fatalf("n=%d s=%d: round trip: %v", tc.n, tc.s, err)
		}
	}
}

// allocsDuring reports the bytes allocated while f runs.
func allocsDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecodeOpeningRejects(t *testing.T) {
	_, op, _ := Prove(Challenge{Seed: testSeed(2), N: 5, K: 1}, 3)
	good := op.Encode()
	header := func(n, s uint32) []byte {
		b := append([]byte(openingMagic), make([]byte, 8)...)
		binary.BigEndian.PutUint32(b[4:], n)
		binary.BigEndian.PutUint32(b[8:], s)
		return b
	}
	set := func(off int, v byte) []byte { b := bytes.Clone(good); b[off] = v; return b }
	cases := map[string][]byte{
		"empty":            nil,
		"trailing byte":    append(bytes.Clone(good), 0),
		"bad magic":        set(0, 'X'),
		"n zero":           header(0, 1),
		"n over MaxN":      header(MaxN+1, 1),
		"s zero":           header(5, 0),
		"s over n":         header(2, 3),
		"s over MaxRows":   header(MaxN, MaxRows+1),
		"absurd, no body":  header(MaxN, MaxRows),
		"index out of row": set(12+3, 5),
	}
	for cut := range len(good) {
		cases[fmt.Sprintf("truncated to %d", cut)] = good[:cut]
	}
	for name, b := range cases {
		var err error
		if used := allocsDuring(func() { _, err = DecodeOpening(b) }); used > 1<<16 {
			t.Errorf("%s: allocated %d bytes before rejecting", name, used)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestTranscript(t *testing.T) {
	tr := honestTranscript(t, 32, 3, 6)
	if err := tr.Verify(); err != nil {
		t.Fatal(err)
	}
	b := tr.Encode()
	got, err := DecodeTranscript(b)
	if err != nil || !reflect.DeepEqual(got, tr) {
		t.Fatalf("round trip: %v", err)
	}
	if got.Hash() != tr.Hash() || !bytes.Equal(got.Encode(), b) {
		t.Fatal("encoding is not canonical")
	}
	if got, want := tr.Throughput(), 2*32.0*32*32*3/1.5; got != want {
		t.Fatalf("throughput %v, want %v", got, want)
	}
	for _, tc := range []struct {
		name string
		edit func(*Transcript)
		want error
	}{
		{"late", func(t *Transcript) { t.CommittedAt = t.ChallengedAt + int64(t.Deadline) + 1 }, ErrLate},
		{"on the deadline", func(t *Transcript) { t.CommittedAt = t.ChallengedAt + int64(t.Deadline) }, nil},
		{"committed before challenged", func(t *Transcript) { t.CommittedAt = t.ChallengedAt - 1 }, ErrParams},
		{"no deadline", func(t *Transcript) { t.Deadline = 0 }, ErrParams},
		{"class name too long", func(t *Transcript) { t.Class = strings.Repeat("x", 65) }, ErrParams},
		{"other root", func(t *Transcript) { t.Root[0] ^= 1 }, ErrIndices},
		{"other k", func(t *Transcript) { t.Challenge.K++ }, ErrRow},
		{"other seed", func(t *Transcript) { t.Challenge.Seed[0] ^= 1 }, ErrIndices},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := DecodeTranscript(b)
			tc.edit(c)
			if err := c.Verify(); tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	bad := map[string][]byte{"trailing": append(bytes.Clone(b), 1), "empty": nil, "magic": append([]byte("PGT2"), b[4:]...)}
	for cut := 0; cut < len(b); cut += 7 {
		bad[fmt.Sprintf("truncated to %d", cut)] = b[:cut]
	}
	long := bytes.Clone(b)
	long[4] = 200
	bad["class length"] = long
	for name, in := range bad {
		if _, err := DecodeTranscript(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestSolverProtocol(t *testing.T) {
	c := Challenge{Seed: testSeed(0xa0), N: 1024, K: 7}
	line := EncodeRequest(c)
	if want := `{"seed":"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf","n":1024,"k":7}` + "\n"; string(line) != want {
		t.Fatalf("request %q, want %q", line, want)
	}
	if got, err := ParseRequest(line); err != nil || got != c {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for _, bad := range []string{
		``, `{}`, `[]`, `{"seed":"00","n":4,"k":1}`,
		`{"seed":"zz` + strings.Repeat("0", 62) + `","n":4,"k":1}`,
		`{"seed":"` + strings.Repeat("0", 64) + `","n":0,"k":1}`,
		`{"seed":"` + strings.Repeat("0", 64) + `","n":4,"k":0}`,
		`{"seed":"` + strings.Repeat("0", 64) + `","n":32769,"k":1}`,
		`{"seed":"` + strings.Repeat("0", 64) + `","n":4.5,"k":1}`,
		`{"seed":"` + strings.Repeat("0", 64) + `","n":4,"k":1,"x":1}`,
		`{"seed":"` + strings.Repeat("0", 64) + `","n":4,"k":1} `,
		`{"seed":"` + strings.Repeat("0", 64) + `","n":4,"k":1}{}`,
	} {
		if _, err := ParseRequest([]byte(bad)); err == nil {
			t.Errorf("ParseRequest(%q) accepted", bad)
		}
	}
	ck, _ := Solve(Challenge{Seed: testSeed(1), N: 3, K: 2})
	raw := make([]byte, len(ck))
	for i, v := range ck {
		raw[i] = byte(v)
	}
	if got, err := DecodeSolution(raw, 3); err != nil || !reflect.DeepEqual(got, ck) {
		t.Fatalf("DecodeSolution: %v", err)
	}
	for _, b := range [][]byte{raw[:8], append(bytes.Clone(raw), 0), nil} {
		if _, err := DecodeSolution(b, 3); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeSolution(%d bytes) = %v", len(b), err)
		}
	}
	stream := bytes.NewReader(append(bytes.Clone(raw), raw[:5]...)) // one whole response, one cut short
	if got, err := ReadSolution(stream, 3); err != nil || !reflect.DeepEqual(got, ck) {
		t.Fatalf("ReadSolution: %v", err)
	}
	if _, err := ReadSolution(stream, 3); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short response: %v", err)
	}
}

// FuzzDecodeOpening: the decoder never panics, and whatever it accepts re-encodes to the same bytes.
func FuzzDecodeOpening(f *testing.F) {
	for _, tc := range []struct{ n, s int }{{1, 1}, {3, 2}, {8, 4}} {
		_, op, _ := Prove(Challenge{Seed: testSeed(1), N: tc.n, K: 1}, tc.s)
		f.Add(op.Encode())
	}
	f.Add([]byte("PGO1\x00\x00\x80\x00\x00\x00\x10\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOpening(b)
		if err != nil {
			return
		}
		if !bytes.Equal(o.Encode(), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}

// FuzzDecodeTranscript: as FuzzDecodeOpening, for transcripts.
func FuzzDecodeTranscript(f *testing.F) {
	f.Add(honestTranscript(f, 4, 1, 2).Encode())
	f.Add(honestTranscript(f, 9, 2, 3).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := DecodeTranscript(b)
		if err != nil {
			return
		}
		if !bytes.Equal(tr.Encode(), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}

// FuzzVerifyOpening feeds arbitrary proof bytes to the verifier of a fixed challenge: it must never panic,
// and only the honest opening may pass.
func FuzzVerifyOpening(f *testing.F) {
	c := Challenge{Seed: testSeed(6), N: 8, K: 2}
	const s = 3
	root, op, err := Prove(c, s)
	if err != nil {
		f.Fatal(err)
	}
	honest := op.Encode()
	f.Add(honest, false)
	f.Add(honest[:len(honest)-1], false)
	f.Add(honest, true)
	f.Fuzz(func(t *testing.T, b []byte, flipRoot bool) {
		o, err := DecodeOpening(b)
		if err != nil {
			return
		}
		r := root
		if flipRoot {
			r[31] ^= 1
		}
		err = VerifyOpening(c, r, s, o)
		if pass := !flipRoot && bytes.Equal(b, honest); (err == nil) != pass {
			t.Fatalf("verify = %v for %x", err, b)
		}
	})
}
