package client

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// placedLedger answers vault_placed_on as the ledger pages it: by (root, object, ordinal), after the shard named,
// at most Limit, Next set when more follow.
type placedLedger struct {
	shards  []api.VaultShard
	objects map[uint64]api.VaultObject
	pages   int
	unheld  bool // what every request's Unheld must be
	// cursor: Next names the page's last shard, as the ledger's does; otherwise Next only says there is more.
	cursor bool
}

func (l *placedLedger) key(s api.VaultShard) (tx.Hash, uint64, uint32) {
	o := l.objects[s.ObjectID]
	return s.Root, s.ObjectID, uint32(s.Stripe*(o.K+o.M) + s.Index)
}

func (l *placedLedger) VaultPlacedOn(_ context.Context, r api.VaultPlacedOnRequest) (api.List[api.VaultShard], error) {
	l.pages++
	if r.Unheld != l.unheld || r.Provider != (tx.Address{9}) {
		return api.List[api.VaultShard]{}, fmt.Errorf("asked for %+v", r)
	}
	out := api.List[api.VaultShard]{Items: []api.VaultShard{}}
	for _, s := range l.shards {
		root, obj, ord := l.key(s)
		if r.HasAfter && cmp.Or(bytes.Compare(root[:], r.AfterRoot[:]), cmp.Compare(obj, r.AfterObject), cmp.Compare(ord, r.AfterOrdinal)) <= 0 {
			continue
		}
		if len(out.Items) == r.Limit {
			out.Next = "more"
			if l.cursor {
				root, obj, ord := l.key(out.Items[len(out.Items)-1])
				out.Next = fmt.Sprintf("%s:%d:%d", root, obj, ord)
			}
			break
		}
		out.Items = append(out.Items, s)
	}
	return out, nil
}

// TestEachVaultPlacedOn pages through a provider's shards a few at a time — a root held by several objects and
// several stripes of one, pages ending between them — and sees each once, in order, going on from the ledger's
// Next or, without one it reads, from the last shard's own place. The Unheld filter goes with every page; a
// position asked for is not taken; a node that does not move on is an error.
func TestEachVaultPlacedOn(t *testing.T) {
	l := &placedLedger{objects: map[uint64]api.VaultObject{1: {ID: 1, K: 2, M: 2}, 2: {ID: 2, K: 3, M: 1}, 3: {ID: 3, K: 1, M: 1}}}
	l.shards = []api.VaultShard{
		{ObjectID: 1, Stripe: 0, Index: 1, Root: tx.Hash{1}}, {ObjectID: 1, Stripe: 2, Index: 1, Root: tx.Hash{1}},
		{ObjectID: 2, Stripe: 0, Index: 3, Root: tx.Hash{1}}, {ObjectID: 2, Stripe: 1, Index: 0, Root: tx.Hash{1}},
		{ObjectID: 3, Stripe: 0, Index: 0, Root: tx.Hash{1}}, {ObjectID: 1, Stripe: 1, Index: 0, Root: tx.Hash{2}},
		{ObjectID: 3, Stripe: 4, Index: 1, Root: tx.Hash{3}}, {ObjectID: 3, Stripe: 5, Index: 1, Root: tx.Hash{3}},
	}
	for i := range l.shards {
		_, _, ord := l.key(l.shards[i])
		l.shards[i].Ordinal = int(ord)
	}
	slices.SortFunc(l.shards, func(a, b api.VaultShard) int {
		ra, oa, na := l.key(a)
		rb, ob, nb := l.key(b)
		return cmp.Or(bytes.Compare(ra[:], rb[:]), cmp.Compare(oa, ob), cmp.Compare(na, nb))
	})
	for i := range 2 * (len(l.shards) + 1) {
		limit := i/2 + 1
		l.cursor, l.unheld = i%2 == 1, i%3 == 0
		var got []api.VaultShard
		l.pages = 0
		err := EachVaultPlacedOn(context.Background(), l, api.VaultPlacedOnRequest{Provider: tx.Address{9}, Unheld: l.unheld, Limit: limit, HasAfter: true, AfterObject: 5}, func(s api.VaultShard) (bool, error) {
			got = append(got, s)
			return true, nil
		})
		if err != nil || !slices.Equal(got, l.shards) {
			t.Fatalf("limit %d: %v\n got %+v\nwant %+v", limit, err, got, l.shards)
		}
		if want := len(l.shards)/limit + 1; l.pages > want {
			t.Fatalf("limit %d: %d pages, want at most %d", limit, l.pages, want)
		}
	}
	// Stopping early reads no further page.
	l.pages, l.unheld = 0, false
	n := 0
	EachVaultPlacedOn(context.Background(), l, api.VaultPlacedOnRequest{Provider: tx.Address{9}, Limit: 2}, func(api.VaultShard) (bool, error) { n++; return n < 3, nil })
	if n != 3 || l.pages != 2 {
		t.Fatalf("stopped at the third shard: %d shards, %d pages", n, l.pages)
	}
	// A node that answers the same page again is an error, not a loop.
	if err := EachVaultPlacedOn(context.Background(), stuck{l}, api.VaultPlacedOnRequest{Provider: tx.Address{9}, Limit: 2}, func(api.VaultShard) (bool, error) {
		return true, nil
	}); err == nil || !strings.Contains(err.Error(), "ends where the one before did") {
		t.Fatalf("a node answering the first page again: %v", err)
	}
}

// stuck answers every request with the first page.
type stuck struct{ l *placedLedger }

func (s stuck) VaultPlacedOn(ctx context.Context, r api.VaultPlacedOnRequest) (api.List[api.VaultShard], error) {
	r.HasAfter = false
	return s.l.VaultPlacedOn(ctx, r)
}

// scanning answers as the ledger does for Unheld: a page looks at most scan shards, gives those that pass keep,
// and names the last one it looked at in Next — a page may give none and still go on.
type scanning struct {
	l    *placedLedger
	scan int
	keep func(api.VaultShard) bool
}

func (s scanning) VaultPlacedOn(_ context.Context, r api.VaultPlacedOnRequest) (api.List[api.VaultShard], error) {
	out := api.List[api.VaultShard]{Items: []api.VaultShard{}}
	looked := 0
	for _, sh := range s.l.shards {
		root, obj, ord := s.l.key(sh)
		if r.HasAfter && cmp.Or(bytes.Compare(root[:], r.AfterRoot[:]), cmp.Compare(obj, r.AfterObject), cmp.Compare(ord, r.AfterOrdinal)) <= 0 {
			continue
		}
		if looked == s.scan {
			root, obj, ord := s.l.key(s.l.shards[slices.Index(s.l.shards, sh)-1])
			out.Next = fmt.Sprintf("%s:%d:%d", root, obj, ord)
			break
		}
		looked++
		if s.keep(sh) {
			out.Items = append(out.Items, sh)
		}
	}
	return out, nil
}

// TestEachVaultPlacedOnEmptyPages: pages that looked at shards and gave none (none unheld among them) go on
// from their Next; an empty page whose Next is not a position is an error.
func TestEachVaultPlacedOnEmptyPages(t *testing.T) {
	l := &placedLedger{objects: map[uint64]api.VaultObject{1: {ID: 1, K: 4, M: 4}}}
	for i := range 8 {
		l.shards = append(l.shards, api.VaultShard{ObjectID: 1, Index: i, Ordinal: i, Root: tx.Hash{byte(i + 1)}})
	}
	keep := func(s api.VaultShard) bool { return s.Index == 6 }
	var got []api.VaultShard
	err := EachVaultPlacedOn(context.Background(), scanning{l, 2, keep}, api.VaultPlacedOnRequest{Provider: tx.Address{9}, Unheld: true}, func(s api.VaultShard) (bool, error) {
		got = append(got, s)
		return true, nil
	})
	if err != nil || len(got) != 1 || got[0].Index != 6 {
		t.Fatalf("got %+v, %v", got, err)
	}
	bad := badNext{scanning{l, 2, keep}}
	if err := EachVaultPlacedOn(context.Background(), bad, api.VaultPlacedOnRequest{Provider: tx.Address{9}}, func(api.VaultShard) (bool, error) { return true, nil }); err == nil {
		t.Fatal("an empty page with a Next that is no position was taken")
	}
}

// badNext answers empty pages whose Next is not a position.
type badNext struct{ scanning }

func (b badNext) VaultPlacedOn(ctx context.Context, r api.VaultPlacedOnRequest) (api.List[api.VaultShard], error) {
	return api.List[api.VaultShard]{Items: []api.VaultShard{}, Next: "more"}, nil
}
