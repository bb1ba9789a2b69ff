package tenant_test

import (
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/tenant"
)

// TestStoreHealth: an object's health counts the shards its providers hold that are neither lost nor being
// repaired, stripe by stripe, against K. A lost shard counts as missing (it has no provider); a repairing one is
// not healthy until its first proof on its new provider passes, even when that provider already holds it; a
// failing one still counts (it is held until it is lost), and the text says each.
func TestStoreHealth(t *testing.T) {
	prov := tx.Address{1}
	obj := api.VaultObject{ID: 7, K: 2, M: 2, Stripes: 2, State: api.VaultPlaced, Pooled: true}
	shards := func(mod func(i int, s *tenant.ShardState)) []tenant.ShardState {
		var out []tenant.ShardState
		for i := range 8 {
			s := tenant.ShardState{VaultShard: api.VaultShard{ObjectID: 7, Stripe: i / 4, Index: i % 4, Ordinal: i, Provider: prov, HeldHeight: 10}, Held: true}
			if mod != nil {
				mod(i, &s)
			}
			out = append(out, s)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		o     api.VaultObject
		mod   func(i int, s *tenant.ShardState)
		least int
		want  []string
		check func(h tenant.ObjectHealth) bool
	}{
		{name: "every shard held", o: obj, least: 4, want: []string{"full"},
			check: func(h tenant.ObjectHealth) bool {
				return h.Healthy == 8 && h.Held == 8 && h.Lost+h.Repairing+h.Failing+h.Undeclared == 0
			}},
		{name: "a lost shard counts as missing", o: obj, least: 3,
			mod: func(i int, s *tenant.ShardState) {
				if i == 1 {
					s.Lost, s.Provider, s.HeldHeight, s.Held = true, tx.Address{}, 0, false
				}
			},
			want:  []string{"readable: at least 3 of 4 shards healthy", "1 lost (counted as missing"},
			check: func(h tenant.ObjectHealth) bool { return h.Lost == 1 && h.Healthy == 7 && h.Undeclared == 0 }},
		{name: "a repairing shard is not healthy yet, held or not", o: obj, least: 2,
			mod: func(i int, s *tenant.ShardState) {
				switch i {
				case 4: // rebuilt and held by its new provider, first proof pending
					s.Repairing, s.RepairHeight = true, 40
				case 5: // drawn, not rebuilt yet
					s.Repairing, s.RepairHeight, s.HeldHeight, s.Held = true, 40, 0, false
				}
			},
			want:  []string{"readable: at least 2 of 4", "2 being repaired (not counted healthy until its first proof"},
			check: func(h tenant.ObjectHealth) bool { return h.Repairing == 2 && h.Held == 7 && h.Healthy == 6 }},
		{name: "failing and undeclared shards", o: obj, least: 4,
			mod: func(i int, s *tenant.ShardState) {
				switch i {
				case 0:
					s.Failures, s.LastFailed = 1, 12
				case 7:
					s.HeldHeight = 0
				}
			},
			want:  []string{"full", "1 failing its storage proofs", "1 not declared held by their providers yet"},
			check: func(h tenant.ObjectHealth) bool { return h.Failing == 1 && h.Undeclared == 1 && h.Healthy == 8 }},
		{name: "a stripe below K", o: obj, least: 1,
			mod: func(i int, s *tenant.ShardState) {
				switch i {
				case 0, 1:
					s.Held, s.Error = false, "connection refused"
				case 2:
					s.Lost, s.Provider, s.Held = true, tx.Address{}, false
				}
			},
			want:  []string{"unreadable now: a stripe has 1 healthy shards, fewer than K = 2", "1 lost"},
			check: func(h tenant.ObjectHealth) bool { return h.Held == 5 && h.Healthy == 5 }},
		{name: "placing", o: api.VaultObject{ID: 7, K: 2, M: 2, Stripes: 2, State: api.VaultPlacing, PlaceAt: 99}, least: 4,
			want: []string{"placing: its providers are drawn at the end of block 99"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tenant.Health(tc.o, shards(tc.mod))
			if h.Least != tc.least || (tc.check != nil && !tc.check(h)) {
				t.Errorf("%+v: least %d, want %d", h, h.Least, tc.least)
			}
			for _, w := range tc.want {
				if !strings.Contains(h.Text, w) {
					t.Errorf("health %q lacks %q", h.Text, w)
				}
			}
		})
	}
}
