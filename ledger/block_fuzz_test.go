package ledger

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"testing"
)

// fuzzBlocks bounds the blocks one fuzz program builds.
const fuzzBlocks = 8

// programSource is a source that also says whether the program goes on to another block.
type programSource interface {
	source
	more() bool
}

// runProgram interprets a program: its first choice picks a fixture, then each block is generated, committed and
// checked (see adversary_test.go) while the program goes on; the state is then read in full once more.
func runProgram(rep reporter, tb testing.TB, fx []*advFixture, s programSource) {
	f := fx[s.intn(len(fx), "fixture")]
	r := newAdvRun(rep, s, f, tb, false)
	for blocks := 0; blocks < fuzzBlocks && s.more(); blocks++ {
		r.step()
	}
	r.observe(true)
}

// FuzzFinalizeBlock interprets its input as a program that builds blocks of validly signed transactions: the
// generator of adversary_test.go reading its choices from the input's bytes (fixture, transactions per block,
// actors, message kinds, field values with maximum sizes and extreme amounts, block time steps). Each block runs
// through FinalizeBlock and Commit on a chain started from the fixture. No panic may escape, the supply invariant
// must hold after every block (CheckInvariants), every result code must be known and never internal, a failed
// transaction may leave nothing but its fee, and every stored object must still read back through the queries.
// The seed corpus runs in well under a second; hunt with
//
//	go test ./ledger -run XXX -fuzz FuzzFinalizeBlock -fuzztime 2m
func FuzzFinalizeBlock(f *testing.F) {
	fx := advFixtures(f)
	f.Add([]byte{})
	// Nothing but time: from each fixture, one empty block an hour later (its leases reach their duration,
	// among them the two members of the fixture's cluster, in the same block).
	for i := range fx {
		f.Add(recordScript(f, fx, 1, map[string][]int{"fixture": {i}, "txs": {0}, "market round": {99}, "dt": {6}}))
	}
	// From genesis: p0 registers; then auditor a0 attests p0's proof of GPU for epoch 2^64-1, in epoch 0.
	f.Add(recordScript(f, fx, 2, map[string][]int{"fixture": {2}, "txs": {1, 1}, "honest": {99, 99}, "market round": {99, 99},
		"kind": {kindValue(kRegister), kindValue(kAttestHW)}, "hardware epoch": {8}}))
	// The tenant closes a member of the fixture's cluster with a reason of the maximum size in multi-byte UTF-8
	// (the other member is closed with a reason the ledger composes); a provider closes its lease with a reason
	// of the maximum size ending in a cut rune (not UTF-8: refused).
	f.Add(recordScript(f, fx, 1, map[string][]int{"fixture": {0}, "txs": {2}, "honest": {99, 99}, "market round": {99},
		"kind": {kindValue(kClose), kindValue(kClose)}, "signer": {0, 1}, "close": {1, 0}, "reason": {3, 7}}))
	// Storms: transactions of many bids, then many withdrawals, from the extreme fixture.
	f.Add(recordScript(f, fx, 2, map[string][]int{"fixture": {1}, "txs": {2, 2}, "honest": {99, 99, 99, 99}, "market round": {99, 99},
		"messages": {18, 18, 18, 18}, "storm": {99, 99, 99, 99},
		"kind": {kindValue(kBid), kindValue(kWithdrawBid), kindValue(kBid), kindValue(kWithdrawBid)}}))
	// Random programs, recorded from seeded generators.
	for seed := range uint64(6) {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		f.Add(record(f, fx, fuzzBlocks, func(int, string) uint64 { return rng.Uint64() }))
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		tb := &bufTB{TB: t}
		defer func() {
			if p := recover(); p != nil {
				tb.flush()
				t.Fatalf("panic: %v\n%s", p, debug.Stack())
			}
		}()
		runProgram(tb, tb, fx, &byteSource{b: prog})
	})
}

// recordScript records the program of blocks blocks whose choices are given by label, in the order they are
// drawn; every other choice is 0, the ordinary one.
func recordScript(f *testing.F, fx []*advFixture, blocks int, script map[string][]int) []byte {
	return record(f, fx, blocks, func(_ int, label string) uint64 {
		q := script[label]
		if len(q) == 0 {
			return 0
		}
		script[label] = q[1:]
		return uint64(q[0])
	})
}

// record runs a program of up to blocks blocks whose choices come from choose, and returns the bytes a
// byteSource turns back into the same choices, up to where the program ended or failed: a failing program is
// kept, and its corpus run fails the same way, with its log.
func record(f *testing.F, fx []*advFixture, blocks int, choose func(n int, label string) uint64) (prog []byte) {
	s := &recordSource{choose: choose, blocks: blocks}
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(abortRecording); !ok {
				panic(p)
			}
			prog = s.out
		}
	}()
	runProgram(quietTB{f}, quietTB{f}, fx, s)
	return s.out
}

// recordSource makes choices with choose and writes them as the bytes byteSource reads them back from.
type recordSource struct {
	choose func(n int, label string) uint64
	out    []byte
	blocks int
}

func (s *recordSource) intn(n int, label string) int {
	if n <= 1 {
		return 0
	}
	v := s.choose(n, label) % uint64(n)
	switch {
	case n <= 1<<8:
		s.out = append(s.out, byte(v))
	case n <= 1<<16:
		s.out = binary.BigEndian.AppendUint16(s.out, uint16(v))
	default:
		s.out = binary.BigEndian.AppendUint64(s.out, v)
	}
	return int(v)
}

func (s *recordSource) u64(label string) uint64 {
	v := s.choose(0, label)
	s.out = binary.BigEndian.AppendUint64(s.out, v)
	return v
}

func (s *recordSource) more() bool {
	s.blocks--
	return s.blocks >= 0
}

// kindValue is the draw that picks message kind k.
func kindValue(k int) int {
	v := 0
	for _, w := range kindWeights[:k] {
		v += w
	}
	return v
}

// abortRecording stops a recording run that failed.
type abortRecording struct{ msg string }

// quietTB is what a recording run reports to: logs are dropped, and a failure aborts the run instead of failing
// the fuzz target's setup.
type quietTB struct{ testing.TB }

func (quietTB) Helper()             {}
func (quietTB) Log(...any)          {}
func (quietTB) Logf(string, ...any) {}
func (quietTB) Fatal(args ...any)   { panic(abortRecording{fmt.Sprint(args...)}) }
func (quietTB) Fatalf(format string, args ...any) {
	panic(abortRecording{fmt.Sprintf(format, args...)})
}
func (quietTB) FailNow()          { panic(abortRecording{}) }
func (quietTB) Error(args ...any) { panic(abortRecording{fmt.Sprint(args...)}) }
func (quietTB) Errorf(format string, args ...any) {
	panic(abortRecording{fmt.Sprintf(format, args...)})
}

// bufTB keeps a run's log (a few lines per block) and prints it only when the run fails.
type bufTB struct {
	testing.TB
	lines []string
}

func (b *bufTB) Helper()         {}
func (b *bufTB) Log(args ...any) { b.lines = append(b.lines, fmt.Sprint(args...)) }
func (b *bufTB) Logf(format string, args ...any) {
	b.lines = append(b.lines, fmt.Sprintf(format, args...))
}

func (b *bufTB) flush() {
	for _, l := range b.lines {
		b.TB.Log(l)
	}
	b.lines = nil
}

func (b *bufTB) Fatal(args ...any) {
	b.flush()
	b.TB.Fatal(args...)
}

func (b *bufTB) Fatalf(format string, args ...any) {
	b.flush()
	b.TB.Fatalf(format, args...)
}
