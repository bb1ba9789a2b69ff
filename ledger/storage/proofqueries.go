package storage

import (
	"fmt"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

// Challenges pages the shards epoch rec challenges, in (object, ordinal) order, each with its group and where
// to ask for its proof. A page scans at most 8 × limit shards (objects placed since, lost shards): Next,
// "OBJECT:ORDINAL", is the last shard it looked at — the next page starts after it — even when the page holds
// fewer than limit.
func (k *Keeper) Challenges(c *kernel.Ctx, rec *api.VaultEpoch, r api.VaultChallengesRequest, limit int) api.List[api.VaultChallenge] {
	out := api.List[api.VaultChallenge]{Items: []api.VaultChallenge{}}
	start := schema.PVaultShard
	if r.HasAfter {
		if r.AfterOrdinal == ^uint32(0) {
			start = schema.VaultShardKey(r.AfterObject+1, 0)
		} else {
			start = schema.VaultShardKey(r.AfterObject, int(r.AfterOrdinal)+1)
		}
		if r.AfterObject == ^uint64(0) && r.AfterOrdinal == ^uint32(0) {
			return out
		}
	}
	var obj *api.VaultObject
	var roots func(ord int) tx.Hash
	scanned := 0
	var lastID uint64
	var lastOrd uint32
	hosts := map[tx.Address]*api.Provider{}
	c.KV.Iterate(start, schema.PrefixEnd(schema.PVaultShard), func(key string, v []byte) bool {
		rest := key[len(schema.PVaultShard):]
		id, ord := schema.UnBE64(rest[:8]), schema.UnBE32(rest[8:12])
		if len(out.Items) == limit || scanned == 8*limit {
			out.Next = fmt.Sprintf("%d:%d", lastID, lastOrd) // the last shard looked at: go on after it
			return false
		}
		scanned++
		lastID, lastOrd = id, ord
		if obj == nil || obj.ID != id {
			var ok bool
			if obj, ok = k.Object(c, id); !ok {
				obj = nil
				return true
			}
			man := k.Manifest(c, id)
			n := obj.K + obj.M
			roots = func(ord int) tx.Hash { return man.ShardRoot(ord/n, ord%n) }
		}
		s := decShard(c, v)
		p := s.provider
		if !challenged(obj, s, rec.StartHeight) || !r.Provider.IsZero() && r.Provider != p {
			return true
		}
		root := roots(int(ord))
		ch := api.VaultChallenge{Object: id, Ordinal: ord, Root: root, ShardSize: obj.ShardSize, Provider: p,
			Group: api.ChallengeGroup(rec.Seed, root, id, ord, obj.ShardSize)}
		pv, ok := hosts[p]
		if !ok {
			if pv, ok = c.Provider(p); !ok {
				pv = nil
			}
			hosts[p] = pv
		}
		if pv != nil {
			ch.HostURI, ch.Fingerprint = pv.Info.HostURI, pv.Info.CertFingerprint
		}
		out.Items = append(out.Items, ch)
		return true
	})
	return out
}

// PlacedOn pages the shards placed on provider p by (root, object, ordinal), looking at most 8 × limit (those
// not declared held, when r.Unheld).
func (k *Keeper) PlacedOn(c *kernel.Ctx, r api.VaultPlacedOnRequest, limit int) api.List[api.VaultShard] {
	out := api.List[api.VaultShard]{Items: []api.VaultShard{}}
	prefix := schema.PVaultHeld + string(r.Provider[:])
	start := prefix
	if r.HasAfter {
		start = prefix + string(r.AfterRoot[:]) + schema.BE64(r.AfterObject) + schema.BE32(r.AfterOrdinal) + "\x00"
	}
	var obj *api.VaultObject
	scanned := 0
	next := ""
	c.KV.Iterate(start, schema.PrefixEnd(prefix), func(key string, _ []byte) bool {
		rest := key[len(prefix):]
		var root tx.Hash
		copy(root[:], rest[:32])
		id, ord := schema.UnBE64(rest[32:40]), schema.UnBE32(rest[40:44])
		if len(out.Items) == limit || scanned == 8*limit {
			// Next: the last shard looked at (given or passed over), "ROOT:OBJECT:ORDINAL": go on after it. A
			// page of unheld shards may hold none and still have a Next.
			out.Next = next
			return false
		}
		scanned++
		next = fmt.Sprintf("%s:%d:%d", root, id, ord)
		if obj == nil || obj.ID != id {
			o, ok := k.Object(c, id)
			if !ok {
				obj = nil
				return true
			}
			obj = o
		}
		if int64(ord) >= int64(obj.Shards()) {
			return true
		}
		if r.Unheld {
			if s, ok := k.shard(c, id, int(ord)); !ok || s.heldHeight > 0 {
				return true
			}
		}
		out.Items = append(out.Items, k.shardView(c, obj, int(ord), root))
		return true
	})
	return out
}
