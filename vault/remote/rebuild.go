package remote

import (
	"context"
	"fmt"
	"io"

	"github.com/sparenet/spare/vault"
)

// RebuildShard writes shard index of stripe s of obj to w, rebuilt from K of the stripe's other shards read from
// their providers (vault.RebuildShard): each over its provider's pinned TLS, verified against its root as it
// streams; a provider that fails, stalls past Timeout or serves bytes that do not verify is given up on and
// reported to failed (may be nil) with its address, and another shard read from the same row. Only stripe s of
// obj.Shards is read (the rest may be nil). The shard at index is never asked for. The bytes written are not yet
// checked against obj's root for the shard: the caller checks them as it keeps them.
func (v *Reader) RebuildShard(ctx context.Context, w io.Writer, obj *vault.Object, s, index int, failed func(vault.ShardFailure, ShardHost)) error {
	if s < 0 || s >= len(obj.Shards) || len(obj.Shards[s]) != obj.K+obj.M {
		return fmt.Errorf("stripe %d: the manifest given holds no k + m = %d roots for it", s, obj.K+obj.M)
	}
	return vault.RebuildShard(ctx, w, obj.Layout, s, index, &httpShards{ctx: ctx, v: v, obj: obj, stripe: s}, func(f vault.ShardFailure) {
		if failed != nil {
			host, _ := v.Where(f.Stripe, f.Index)
			failed(f, host)
		}
	})
}

// CloseIdleConnections closes the connections to providers kept open for more reads (once a Reader is done
// with: a provider's daemon keeps a few goroutines per connection until it closes).
func (v *Reader) CloseIdleConnections() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range v.clients {
		c.CloseIdleConnections()
	}
}
