package audit

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// fakeClock is a test's time: Sleep advances it at once, so a whole epoch of probes runs in microseconds and
// every outcome is a function of the seed.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		c.t = c.t.Add(d)
	}
	return ctx.Err()
}

var errDown = errors.New("connection refused")

// outage is when a provider does not answer: [from, to) from the start of epoch 0.
type outage struct{ from, to time.Duration }

// epochVerdict runs one provider's probes of epoch e (window w, starting at e·w) against an outage, as the
// auditor does, and returns the verdict and how many probes were answered. hang: a failed attempt takes the
// whole challenge timeout (a provider stopped, not one that refuses connections).
func epochVerdict(t *testing.T, rng *rand.Rand, e int, w time.Duration, out outage, hang time.Duration) (bool, int) {
	t.Helper()
	epoch0 := time.Unix(1_000_000, 0)
	start := epoch0.Add(time.Duration(e) * w)
	deadline := probeDeadline(start, w)
	answered := 0
	for _, off := range probeOffsets(rng, DefaultProbes, w) {
		clk := &fakeClock{t: start.Add(off)} // the probes are independent: each on its own clock
		if probeOnce(context.Background(), clk, deadline, DefaultRetries, retryBackoff(DefaultRetryBackoff, DefaultProbes, w),
			5*time.Second, func(ctx context.Context, limit time.Duration) error {
				at := clk.Now().Sub(epoch0)
				if at >= out.from && at < out.to {
					clk.Sleep(ctx, min(hang, limit))
					return errDown
				}
				return nil
			}) {
			answered++
		}
	}
	return upByProbes(answered, DefaultProbes), answered
}

// TestRestartAcrossEpochBoundaryIsUp (issue 14, finding 2): a daemon unreachable for about 5 s across an epoch
// boundary — the 4.7 s restart that closed a healthy lease and slashed 1 SPR when the auditor probed once per
// epoch — is up in both epochs, whatever the probe times, on the default 30 s epoch and on `spare dev`'s 10 s.
func TestRestartAcrossEpochBoundaryIsUp(t *testing.T) {
	for _, w := range []time.Duration{30 * time.Second, 10 * time.Second} {
		for _, down := range []time.Duration{4700 * time.Millisecond, 5 * time.Second} {
			for seed := range uint64(2000) {
				rng := rand.New(rand.NewPCG(seed, 1))
				// The restart straddles the boundary at a random point.
				from := w - time.Duration(rng.Int64N(int64(down)))
				out := outage{from, from + down}
				for e := range 2 {
					if up, n := epochVerdict(t, rng, e, w, out, 0); !up {
						t.Fatalf("epoch %v, down %v [%v, %v), seed %d: epoch %d reported down (%d of %d probes answered)",
							w, down, out.from, out.to, seed, e, n, DefaultProbes)
					}
				}
			}
		}
	}
}

// TestShortOutageNeverDown: the documented bound (probe.go) holds wherever the outage falls: an outage shorter
// than 0.3·W + 3b never makes a provider miss a majority of its probes — 12 s on a 30 s epoch, 5 s on a 10 s one.
func TestShortOutageNeverDown(t *testing.T) {
	for _, c := range []struct{ w, bound time.Duration }{{30 * time.Second, 12 * time.Second}, {10 * time.Second, 5 * time.Second}} {
		l := c.bound - 10*time.Millisecond
		for seed := range uint64(300) {
			for from := -l; from < c.w; from += 250 * time.Millisecond {
				rng := rand.New(rand.NewPCG(seed, 2))
				if up, n := epochVerdict(t, rng, 0, c.w, outage{from, from + l}, 0); !up {
					t.Fatalf("epoch %v: an outage of %v from %v: down (%d answered), seed %d", c.w, l, from, n, seed)
				}
			}
		}
	}
}

// TestMostlyDownIsDown: a provider unreachable for most of the epoch misses most of its probes and is reported
// down, whether it refuses connections or hangs until each challenge times out; one down for an instant at the
// start of every probe is retried and found up.
func TestMostlyDownIsDown(t *testing.T) {
	for _, w := range []time.Duration{30 * time.Second, 10 * time.Second} {
		for seed := range uint64(500) {
			for _, hang := range []time.Duration{0, 5 * time.Second} {
				// Down from a fifth into the epoch until well past its end.
				if up, n := epochVerdict(t, rand.New(rand.NewPCG(seed, 3)), 0, w, outage{w / 5, 3 * w}, hang); up {
					t.Fatalf("epoch %v, seed %d, hang %v: down for 80%% of the epoch but up (%d answered)", w, seed, hang, n)
				}
			}
			// Down for all of it.
			if up, _ := epochVerdict(t, rand.New(rand.NewPCG(seed, 4)), 0, w, outage{-time.Hour, time.Hour}, 0); up {
				t.Fatalf("epoch %v, seed %d: down throughout but up", w, seed)
			}
		}
	}
}

// TestProbeOffsets: the probes are in the window, increasing, at least half a slot apart, and differ by seed.
func TestProbeOffsets(t *testing.T) {
	w := 30 * time.Second
	slot := w / DefaultProbes
	a := probeOffsets(rand.New(rand.NewPCG(1, 1)), DefaultProbes, w)
	b := probeOffsets(rand.New(rand.NewPCG(2, 1)), DefaultProbes, w)
	same := true
	for i := range a {
		if a[i] < 0 || a[i] >= w {
			t.Fatalf("probe %d at %v: outside the window %v", i, a[i], w)
		}
		if i > 0 && a[i]-a[i-1] < slot/2 {
			t.Fatalf("probes %d and %d %v apart, under half a slot (%v)", i-1, i, a[i]-a[i-1], slot/2)
		}
		same = same && a[i] == b[i]
	}
	if same {
		t.Fatal("two seeds gave the same probe times")
	}
	if got := retryBackoff(time.Second, 5, 10*time.Second); got != 10*time.Second/15 {
		t.Fatalf("backoff on a 10 s window: %v", got)
	}
	if got := retryBackoff(time.Second, 5, 30*time.Second); got != time.Second {
		t.Fatalf("backoff on a 30 s window: %v", got)
	}
	for _, c := range []struct {
		answered, k int
		up          bool
	}{{5, 5, true}, {3, 5, true}, {2, 5, false}, {0, 5, false}, {2, 4, true}, {1, 4, false}, {1, 1, true}, {0, 1, false}} {
		if got := upByProbes(c.answered, c.k); got != c.up {
			t.Errorf("%d of %d answered: up %v, want %v", c.answered, c.k, got, c.up)
		}
	}
}

// TestHangingProbeEndsByDeadline: a provider that accepts and never answers costs each attempt its timeout, and
// every probe is over by the epoch's probing deadline, so the Attest is never late.
func TestHangingProbeEndsByDeadline(t *testing.T) {
	w := 10 * time.Second
	start := time.Unix(1_000_000, 0)
	deadline := probeDeadline(start, w)
	for _, off := range probeOffsets(rand.New(rand.NewPCG(7, 7)), DefaultProbes, w) {
		clk := &fakeClock{t: start.Add(off)}
		attempts := 0
		up := probeOnce(context.Background(), clk, deadline, DefaultRetries, time.Second, 5*time.Second, func(ctx context.Context, limit time.Duration) error {
			attempts++
			if limit > 5*time.Second || limit <= 0 {
				t.Fatalf("attempt limit %v", limit)
			}
			clk.Sleep(ctx, limit)
			return errDown
		})
		if up || attempts == 0 || clk.Now().After(deadline) {
			t.Fatalf("probe at %v: up %v after %d attempts, ended %v after the deadline", off, up, attempts, clk.Now().Sub(deadline))
		}
	}
}
