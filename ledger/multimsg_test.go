package ledger

import (
	"bytes"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// TestMultiMessageLaterFailureRollsBack: a transaction whose later message fails leaves nothing of its earlier
// ones — balances, escrow, id sequences, indexes, registrations — only its fee, charged once. Each case runs on
// two twin chains: on one the transaction [earlier messages…, failing message], on the other a transaction of the
// failing message alone with the same fee and gas limit; their app hashes must agree after the block (the app
// hash chains every write), the result must be a failure, and the only event the fee's.
func TestMultiMessageLaterFailureRollsBack(t *testing.T) {
	funded := map[string]uint64{"tenant": 1000 * api.USPR, "p1": 1000 * api.USPR, "p2": 1000 * api.USPR}
	setup := func() *chain {
		c := newChain(t, testParams(), funded)
		c.registerBonded("p1")
		c.do("tenant", gpuOrder(testRunPrice, api.USPR, 3600)) // order 1, open (p1 has not bid)
		return c
	}
	tooMuch := &tx.Send{To: newKey("nobody").addr, Amount: 1 << 62}
	for _, tc := range []struct {
		name    string
		signer  string
		earlier []tx.Msg
		failing tx.Msg
	}{
		{"send, then a send of more than the balance", "tenant", []tx.Msg{&tx.Send{To: newKey("p2").addr, Amount: api.USPR}}, tooMuch},
		{"an order (escrow, id, indexes), then a bid on an order that does not exist", "tenant",
			[]tx.Msg{gpuOrder(testRunPrice, api.USPR, 3600)}, &tx.PlaceBid{OrderID: 99, Price: 1}},
		{"two orders and a send, then a failing send", "tenant",
			[]tx.Msg{gpuOrder(testRunPrice, api.USPR, 3600), gpuOrder(testRunPrice, 2*api.USPR, 60), &tx.Send{To: newKey("p1").addr, Amount: 7}}, tooMuch},
		{"a provider registered and bonded, then an unbond of more than its stake", "p2",
			[]tx.Msg{&tx.RegisterProvider{ProviderInfo: providerInfo("p2")}, &tx.Bond{Amount: 200 * api.USPR}}, &tx.Unbond{Amount: 201 * api.USPR}},
		{"a bid that leases the open order, then a failing send", "p1",
			[]tx.Msg{&tx.PlaceBid{OrderID: 1, Price: testRunPrice - 1}}, tooMuch},
		{"the tenant cancels its order, then a failing send", "tenant", []tx.Msg{&tx.CancelOrder{ID: 1}}, tooMuch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := setup(), setup()
			msgs := append(append([]tx.Msg(nil), tc.earlier...), tc.failing)
			gas := a.txGas(msgs...)
			fee := api.FeeFor(a.app.params(), gas, a.app.params().MinGasPrice)
			signed := func(c *chain, ms ...tx.Msg) []byte {
				k := c.keys[tc.signer]
				n := c.nonces[k.addr]
				c.nonces[k.addr] = n + 1
				return tx.Sign(tx.Body{ChainID: testChain, Nonce: n, Fee: fee, GasLimit: gas, Msgs: ms}, k.priv)
			}
			before := a.balance(tc.signer)
			ra := a.block(time.Second, signed(a, msgs...))
			rb := b.block(time.Second, signed(b, tc.failing))
			r := ra.TxResults[0]
			if r.Code == 0 || rb.TxResults[0].Code == 0 {
				t.Fatalf("codes %d and %d: the transaction was to fail", r.Code, rb.TxResults[0].Code)
			}
			for _, e := range r.Events {
				if e.Type != "fee.paid" {
					t.Fatalf("a failed transaction left a %s event", e.Type)
				}
			}
			if got := a.balance(tc.signer); got != before-fee {
				t.Fatalf("%s's balance %d, want %d (the fee %d once)", tc.signer, got, before-fee, fee)
			}
			if !bytes.Equal(ra.AppHash, rb.AppHash) {
				t.Fatalf("app hash %X, the failing message alone %X: something of the earlier messages stayed", ra.AppHash, rb.AppHash)
			}
			// And it goes on the same: the next order gets the same id on both.
			a.do("tenant", gpuOrder(testRunPrice, api.USPR, 60))
			b.do("tenant", gpuOrder(testRunPrice, api.USPR, 60))
			var la, lb api.List[*api.Order]
			a.query(api.QueryOrders, api.ListRequest{Limit: api.MaxPageLimit}, &la)
			b.query(api.QueryOrders, api.ListRequest{Limit: api.MaxPageLimit}, &lb)
			if len(la.Items) != len(lb.Items) || la.Items[len(la.Items)-1].ID != lb.Items[len(lb.Items)-1].ID {
				t.Fatalf("orders after: %d (last %d) vs %d (last %d)", len(la.Items), la.Items[len(la.Items)-1].ID, len(lb.Items), lb.Items[len(lb.Items)-1].ID)
			}
		})
	}
}
