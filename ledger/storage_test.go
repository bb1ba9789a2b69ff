package ledger

import (
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// TestStorageOffers: a registered provider offers disk, changes its offer and withdraws it; a stranger, a
// withdrawal of nothing and offers past their bounds are refused, each naming what is wrong.
func TestStorageOffers(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"p1": 1000 * api.USPR, "stranger": 1000 * api.USPR})
	c.registerBonded("p1")
	c.do("p1", &tx.OfferStorage{CapacityBytes: 500 << 30, PricePerGiBMonth: 2_000})
	var o api.StorageOfferView
	c.query(api.QueryStorageOffer, api.AddressRequest{Address: c.addr("p1")}, &o)
	if o.CapacityBytes != 500<<30 || o.PricePerGiBMonth != 2_000 || o.UsedBytes != 0 || o.Region != providerInfo("p1").Region ||
		o.Status != api.ProviderActive || o.Stake == 0 || o.FreeBytes() != 500<<30 {
		t.Fatalf("offer %+v", o)
	}
	c.do("p1", &tx.OfferStorage{CapacityBytes: 1 << 40, PricePerGiBMonth: 1_500})
	c.query(api.QueryStorageOffer, api.AddressRequest{Address: c.addr("p1")}, &o)
	if o.CapacityBytes != 1<<40 || o.PricePerGiBMonth != 1_500 || o.Height != c.height {
		t.Fatalf("changed offer %+v at height %d", o, c.height)
	}
	for _, bad := range []struct {
		who  string
		m    *tx.OfferStorage
		code tx.Code
		want string
	}{
		{"stranger", &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 1}, tx.CodeNotProvider, "not a registered provider"},
		{"p1", &tx.OfferStorage{CapacityBytes: tx.MaxStorageCapacity + 1, PricePerGiBMonth: 1}, tx.CodeInvalidMsg, "capacity_bytes"},
		{"p1", &tx.OfferStorage{CapacityBytes: 1 << 30}, tx.CodeInvalidMsg, "price_per_gib_month must be positive"},
		{"p1", &tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: tx.MaxStoragePrice + 1}, tx.CodeInvalidMsg, "price_per_gib_month"},
	} {
		code, log := c.check(c.sign(bad.who, bad.m))
		c.nonces[c.addr(bad.who)]-- // refused: the nonce was not used
		if code != bad.code || !strings.Contains(log, bad.want) {
			t.Errorf("%s %+v: %s %q, want %s naming %q", bad.who, bad.m, code, log, bad.code, bad.want)
		}
	}
	c.do("p1", &tx.OfferStorage{}) // withdrawn: holding nothing, it leaves no record
	if msg := c.queryErr(api.QueryStorageOffer, api.AddressRequest{Address: c.addr("p1")}); !strings.Contains(msg, "offers no storage") {
		t.Fatalf("a withdrawn offer: %q", msg)
	}
	res := c.block(0, c.sign("p1", &tx.OfferStorage{})).TxResults[0] // in a block: refused, the fee paid
	if tx.Code(res.Code) != tx.CodeNotFound || !strings.Contains(res.Log, "no storage offer to withdraw") {
		t.Fatalf("withdrawing nothing: %s %q", tx.Code(res.Code), res.Log)
	}
}
