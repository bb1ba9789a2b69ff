package client

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// TestEachVaultChallenge pages an epoch's challenges as the ledger does: at most Limit a page and at most 8×Limit
// shards scanned, Next naming the last shard looked at — so a page over shards that are not challenged holds few
// or none — and sees every challenge once, in order; a node whose Next does not move forward is an error.
func TestEachVaultChallenge(t *testing.T) {
	// Shards 0..199 of objects 1..3; every seventh is challenged.
	var all []tx.ShardRef
	var want []tx.ShardRef
	for obj := uint64(1); obj <= 3; obj++ {
		for ord := range uint32(200) {
			all = append(all, tx.ShardRef{Object: obj, Ordinal: ord})
			if ord%7 == 0 {
				want = append(want, tx.ShardRef{Object: obj, Ordinal: ord})
			}
		}
	}
	pages, empty := 0, 0
	ledger := func(_ context.Context, r api.VaultChallengesRequest) (api.List[api.VaultChallenge], error) {
		pages++
		out := api.List[api.VaultChallenge]{Items: []api.VaultChallenge{}}
		scanned := 0
		var last tx.ShardRef
		for _, s := range all {
			if r.HasAfter && !(tx.ShardRef{Object: r.AfterObject, Ordinal: r.AfterOrdinal}).Less(s) {
				continue
			}
			if len(out.Items) == r.Limit || scanned == 8*r.Limit {
				out.Next = fmt.Sprintf("%d:%d", last.Object, last.Ordinal)
				break
			}
			scanned++
			last = s
			if s.Ordinal%7 == 0 {
				out.Items = append(out.Items, api.VaultChallenge{Object: s.Object, Ordinal: s.Ordinal})
			}
		}
		if len(out.Items) == 0 {
			empty++
		}
		return out, nil
	}
	for _, limit := range []int{1, 2, 3, 50, 0} {
		var got []tx.ShardRef
		err := eachVaultChallenge(context.Background(), ledger, api.VaultChallengesRequest{Epoch: 4, Limit: limit, HasAfter: true, AfterObject: 9},
			func(p []api.VaultChallenge) error {
				for _, c := range p {
					got = append(got, tx.ShardRef{Object: c.Object, Ordinal: c.Ordinal})
				}
				return nil
			})
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("limit %d: %v, %d challenges, want %d", limit, err, len(got), len(want))
		}
	}
	if empty == 0 {
		t.Fatal("no page without challenges was played")
	}
	stuck := func(_ context.Context, r api.VaultChallengesRequest) (api.List[api.VaultChallenge], error) {
		return api.List[api.VaultChallenge]{Next: "1:5"}, nil
	}
	if err := eachVaultChallenge(context.Background(), stuck, api.VaultChallengesRequest{}, func([]api.VaultChallenge) error { return nil }); err == nil {
		t.Fatal("a node repeating its Next was paged for ever")
	}
	bad := func(_ context.Context, r api.VaultChallengesRequest) (api.List[api.VaultChallenge], error) {
		return api.List[api.VaultChallenge]{Next: "more"}, nil
	}
	if err := eachVaultChallenge(context.Background(), bad, api.VaultChallengesRequest{}, func([]api.VaultChallenge) error { return nil }); err == nil {
		t.Fatal("a Next that names no shard was accepted")
	}
}
