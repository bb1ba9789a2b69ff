package client

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// VaultPlacedOn pages the shards the ledger placed on provider r.Provider, by root (then object and ordinal),
// after the shard r names when r.HasAfter, only those not declared held with r.Unheld: what the provider must
// hold and declare, and rebuild itself where RepairHeight is set (a repair drawn onto it). EachVaultPlacedOn
// pages through them all.
func (c *Client) VaultPlacedOn(ctx context.Context, r api.VaultPlacedOnRequest) (api.List[api.VaultShard], error) {
	var l api.List[api.VaultShard]
	return l, c.Query(ctx, api.QueryVaultPlacedOn, r, &l)
}

// PlacedOnLedger is what EachVaultPlacedOn reads: a *Client, or a stand-in for one in tests.
type PlacedOnLedger interface {
	VaultPlacedOn(ctx context.Context, r api.VaultPlacedOnRequest) (api.List[api.VaultShard], error)
}

// EachVaultPlacedOn calls fn with every shard placed on provider r.Provider (r's Unheld filter and Limit kept,
// its position ignored: 0 a page is the ledger's default), in the ledger's order, until fn returns false or an
// error. Each page after the first starts after the last shard the page before looked at — as the ledger's Next
// names it ("ROOT:OBJECT:ORDINAL"; a page of unheld shards may give none and still go on), or else as its last
// shard says — and a ledger answering a page that does not move on is an error, not a loop.
func EachVaultPlacedOn(ctx context.Context, l PlacedOnLedger, r api.VaultPlacedOnRequest, fn func(api.VaultShard) (bool, error)) error {
	req := api.VaultPlacedOnRequest{Provider: r.Provider, Unheld: r.Unheld, Limit: r.Limit}
	for {
		page, err := l.VaultPlacedOn(ctx, req)
		if err != nil {
			return err
		}
		for _, s := range page.Items {
			if more, err := fn(s); err != nil || !more {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		next, ok := placedNext(page.Next)
		if !ok && len(page.Items) == 0 { // a page that looked at shards and gave none (unheld ones only) says where it stopped
			return errors.New("query " + api.QueryVaultPlacedOn + ": the node answered an empty page whose next is not ROOT:OBJECT:ORDINAL")
		}
		if !ok {
			last := page.Items[len(page.Items)-1]
			if last.Ordinal < 0 || int64(last.Ordinal) > 1<<32-1 {
				return errors.New("query " + api.QueryVaultPlacedOn + ": the node answered a shard with ordinal " + strconv.Itoa(last.Ordinal))
			}
			next = api.VaultPlacedOnRequest{HasAfter: true, AfterRoot: last.Root, AfterObject: last.ObjectID, AfterOrdinal: uint32(last.Ordinal)}
		}
		next.Provider, next.Unheld, next.Limit = req.Provider, req.Unheld, req.Limit
		if req.HasAfter && !placedAfter(next, req) {
			return errors.New("query " + api.QueryVaultPlacedOn + ": the node answered a page that ends where the one before did, or before it")
		}
		req = next
	}
}

// placedNext reads a vault_placed_on page's Next, "ROOT:OBJECT:ORDINAL", naming the page's last shard.
func placedNext(next string) (api.VaultPlacedOnRequest, bool) {
	parts := strings.Split(next, ":")
	if len(parts) != 3 {
		return api.VaultPlacedOnRequest{}, false
	}
	root, err := tx.ParseHash(parts[0])
	id, err1 := strconv.ParseUint(parts[1], 10, 64)
	ord, err2 := strconv.ParseUint(parts[2], 10, 32)
	if err != nil || err1 != nil || err2 != nil {
		return api.VaultPlacedOnRequest{}, false
	}
	return api.VaultPlacedOnRequest{HasAfter: true, AfterRoot: root, AfterObject: id, AfterOrdinal: uint32(ord)}, true
}

// placedAfter reports whether a's position (root, object, ordinal) is past b's.
func placedAfter(a, b api.VaultPlacedOnRequest) bool {
	if c := strings.Compare(string(a.AfterRoot[:]), string(b.AfterRoot[:])); c != 0 {
		return c > 0
	}
	if a.AfterObject != b.AfterObject {
		return a.AfterObject > b.AfterObject
	}
	return a.AfterOrdinal > b.AfterOrdinal
}
