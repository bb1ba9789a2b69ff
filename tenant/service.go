package tenant

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/sparenet/spare/manifest"
)

// isService reports whether a job declares ports: a service (an inference endpoint, say) rather than a batch
// job. Deploy places a service by the bids' scores, round-trip time from here included (Options.Choose), and
// returns once its endpoints answer instead of waiting for it to end.
func isService(job Job) bool {
	m, err := manifest.Decode(job.Manifest)
	return err == nil && len(m.Ports) > 0
}

// Endpoints reads where a lease's declared ports are reachable (port -> host:port), from its provider.
func (t *Tenant) Endpoints(ctx context.Context, leaseID uint64) (map[string]string, error) {
	st, err := t.ProviderStatus(ctx, leaseID)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	if eps, ok := st["endpoints"].(map[string]any); ok {
		for k, v := range eps {
			if s, ok := v.(string); ok {
				out[k] = s
			}
		}
	}
	return out, nil
}

// awaitEndpoints waits until every endpoint of a running service accepts TCP connections.
func (t *Tenant) awaitEndpoints(ctx context.Context, leaseID uint64, timeout time.Duration) (map[string]string, error) {
	var eps map[string]string
	var lastErr error
	up, err := poll(ctx, timeout, func() (bool, error) {
		if eps, lastErr = t.Endpoints(ctx, leaseID); lastErr != nil || len(eps) == 0 {
			return false, nil
		}
		for _, port := range slices.Sorted(maps.Keys(eps)) {
			c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", eps[port])
			if err != nil {
				lastErr = fmt.Errorf("port %s at %s: %w", port, eps[port], err)
				return false, nil
			}
			c.Close()
		}
		return true, nil
	})
	switch {
	case err != nil:
		return eps, err
	case !up:
		return eps, fmt.Errorf("lease %d: the service's endpoints did not answer within %s: %v (spare logs %d shows its output)", leaseID, timeout, lastErr, leaseID)
	}
	return eps, nil
}

// poll calls check every 100 ms until it reports done or fails, ctx ends, or timeout passes (done false): for
// what the ledger does not record (a service's ports answering).
func poll(ctx context.Context, timeout time.Duration, check func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		if done, err := check(); done || err != nil {
			return done, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
