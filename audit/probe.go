package audit

import (
	"context"
	"math/rand/v2"
	"time"
)

// Liveness probing (issue 14): one missed challenge must not make a provider "down". In each epoch the auditor
// challenges every provider of the audit set Probes times (default 5), at random times spread over the epoch,
// retries each failed challenge Retries times (default 2) after a short backoff, and reports the provider down
// only when it missed a strict majority of its probes (3 of 5).
//
// Spread. The epoch's window W (from when the auditor plans it to the epoch's expected end) is cut into Probes
// equal slots of S = W/Probes, and probe i falls at a uniformly random time in the middle half of slot i:
// nobody can predict when the next probe comes, and two probes are at least S/2 apart, m consecutive ones at
// least (m−1)·S − S/2. Retries wait b and then 2b, b = min(RetryBackoff, W/(3·Probes)), so a probe is missed
// only when every attempt over 3b failed. Missing 3 of 5 probes thus takes an outage of at least 1.5·S + 3b =
// 0.3·W + 3b: 12 s on the default 30 s epoch (b = 1 s), 5 s on `spare dev`'s 10 s epoch. A daemon restart of a
// few seconds, across an epoch boundary or not, costs at most one or two probes in either epoch: never the
// verdict. A provider down for most of the epoch misses most of its probes and is reported down.
//
// Bounded. A provider's probes run independently (a hanging challenge delays no later probe), each attempt
// times out after Timeout, and every probe of the epoch is over by W + W/2 after the plan (probeDeadline): an
// attempt still running then fails, and the Attest goes out in the next epoch, before the ledger's tally.

// Defaults of the liveness probing (Auditor fields of the same names).
const (
	DefaultProbes       = 5
	DefaultRetries      = 2
	DefaultRetryBackoff = time.Second
)

// clock is the time the prober runs on: the real one, or a test's.
type clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx ends (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// probeOffsets spreads k probes over a window of length w: probe i at a uniformly random point of the middle
// half of the i-th of k equal slots. The offsets are increasing.
func probeOffsets(rng *rand.Rand, k int, w time.Duration) []time.Duration {
	k = max(k, 1)
	w = max(w, 0)
	slot := w / time.Duration(k)
	out := make([]time.Duration, k)
	for i := range out {
		jitter := time.Duration(0)
		if half := slot / 2; half > 0 {
			jitter = time.Duration(rng.Int64N(int64(half)))
		}
		out[i] = time.Duration(i)*slot + slot/4 + jitter
	}
	return out
}

// retryBackoff is the first retry's wait for a window w and k probes: RetryBackoff, but no more than w/(3k), so
// that a probe's attempts (b, then 2b later) stay within its slot on a short epoch.
func retryBackoff(base time.Duration, k int, w time.Duration) time.Duration {
	return max(min(base, w/time.Duration(3*max(k, 1))), 0)
}

// upByProbes is the verdict on a provider that answered `answered` of its k probes: down only when it missed a
// strict majority of them (a tie is up: the benefit of the doubt goes to the provider).
func upByProbes(answered, k int) bool { return 2*(k-answered) <= k }

// probeDeadline is when every probe of a window w planned at start must be over: half a window after it, so that
// the Attest still lands in the next epoch (the ledger tallies epoch e at the end of e+1).
func probeDeadline(start time.Time, w time.Duration) time.Time { return start.Add(w + w/2) }

// probeOnce runs one probe on clk: a first attempt now, then up to retries more after backoff, 2·backoff…, until
// one is answered. No attempt starts at or after deadline, and each may take at most min(timeout, what is left
// until deadline): attempt gets that limit. True when an attempt was answered. A provider's probes run apart
// from each other (a hanging attempt delays no later probe), so a test gives each its own clock.
func probeOnce(ctx context.Context, clk clock, deadline time.Time, retries int, backoff, timeout time.Duration,
	attempt func(ctx context.Context, limit time.Duration) error) bool {
	wait := backoff
	for try := 0; ; try++ {
		left := deadline.Sub(clk.Now())
		if left <= 0 || ctx.Err() != nil {
			return false
		}
		if attempt(ctx, min(timeout, left)) == nil {
			return true
		}
		if try >= retries || wait >= deadline.Sub(clk.Now()) || clk.Sleep(ctx, wait) != nil {
			return false
		}
		wait *= 2
	}
}
