package ledger

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/kernel"
	"github.com/sparenet/spare/ledger/tx"
)

// stateDigest hashes every committed key and value.
func (c *chain) stateDigest() [32]byte {
	v, _ := c.app.store.View()
	h := sha256.New()
	v.Iterate("", "", func(k string, val []byte) bool {
		if k == keyLastTime {
			return true // moves with every block
		}
		h.Write([]byte(k))
		h.Write(val)
		return true
	})
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

// mutate changes state directly inside the next block (test-only: e.g. jail a provider before issue 6's rules).
func (c *chain) mutate(fn func(*ctx)) {
	c.app.mu.Lock()
	c.app.working = c.app.store.Begin()
	fn(&ctx{KV: c.app.working, Params: kernel.LoadParams(c.app.working), Hooks: testMods.hooks})
	c.app.mu.Unlock()
	c.block(time.Second)
}

func TestBadTransactionsRejected(t *testing.T) {
	const spr = api.USPR
	c := newChain(t, testParams(), map[string]uint64{"tenant": 100 * spr, "other": 100 * spr, "p1": 1000 * spr,
		"jailed": 1000 * spr, "unbonded": 1000 * spr, "poor": 2500})
	c.registerBonded("p1")
	c.registerBonded("jailed")
	c.do("unbonded", &tx.RegisterProvider{ProviderInfo: providerInfo("unbonded")})
	c.mutate(func(x *ctx) {
		p, _ := x.Provider(c.addr("jailed"))
		p.Status = api.ProviderJailed
		x.SetProvider(p)
	})
	c.do("tenant", gpuOrder(3*spr, spr, 3600)) // order 1: stays open (window 1, no bids yet... bids below)
	c.do("tenant", gpuOrder(3*spr, spr, 3600)) // order 2: cancelled below
	c.do("tenant", &tx.CancelOrder{ID: 2})
	c.do("other", gpuOrder(3*spr, spr, 3600)) // order 3
	c.do("p1", &tx.PlaceBid{OrderID: 3, Price: spr})
	var o3 api.Order
	c.query(api.QueryOrder, api.IDRequest{ID: 3}, &o3)
	bidOnOther := uint64(1)
	fee := c.app.params().MinFee
	tenant := c.keys["tenant"]

	signed := func(mutate func(b *tx.Body)) []byte {
		b := tx.Body{ChainID: testChain, Nonce: c.nonces[tenant.addr], Fee: fee, GasLimit: testGas, Msgs: []tx.Msg{&tx.Send{To: c.addr("other"), Amount: 1}}}
		mutate(&b)
		return tx.Sign(b, tenant.priv)
	}
	badSig := signed(func(*tx.Body) {})
	badSig[len(badSig)-1] ^= 1
	oversize := signed(func(b *tx.Body) { b.Memo = strings.Repeat("x", 200) })
	oversize = append(oversize[:0:0], make([]byte, tx.MaxTxBytes+1)...)
	oversize[0] = tx.Version
	replayed := c.sign("tenant", &tx.Send{To: c.addr("other"), Amount: 1})
	c.block(time.Second, replayed)

	rawCases := []struct {
		name string
		raw  []byte
		want tx.Code
	}{
		{"bad signature", badSig, tx.CodeBadSignature},
		{"wrong chain id", signed(func(b *tx.Body) { b.ChainID = "other-chain" }), tx.CodeWrongChainID},
		{"replayed nonce", replayed, tx.CodeBadNonce},
		{"future nonce", signed(func(b *tx.Body) { b.Nonce += 5 }), tx.CodeBadNonce},
		{"fee too low", signed(func(b *tx.Body) { b.Fee = fee - 1 }), tx.CodeFeeTooLow},
		{"fee below its gas at the chain's price", signed(func(b *tx.Body) { b.GasLimit = 10 * testGas }), tx.CodeFeeTooLow},
		{"gas limit below its own bytes", signed(func(b *tx.Body) { b.GasLimit = 1000 }), tx.CodeOutOfGas},
		{"oversize", oversize, tx.CodeTxTooLarge},
		{"garbage", []byte{tx.Version, 0xff, 0xff}, tx.CodeDecode},
		{"unknown version", append([]byte{9}, badSig[1:]...), tx.CodeBadVersion},
		{"no messages", signed(func(b *tx.Body) { b.Msgs = nil }), tx.CodeInvalidMsg},
	}
	for _, tc := range rawCases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.stateDigest()
			if got, log := c.check(tc.raw); got != tc.want {
				t.Fatalf("CheckTx code %v (%s), want %v", got, log, tc.want)
			}
			res := c.block(time.Second, tc.raw)
			if got := tx.Code(res.TxResults[0].Code); got != tc.want {
				t.Fatalf("FinalizeBlock code %v, want %v", got, tc.want)
			}
			if c.stateDigest() != before {
				t.Fatal("a rejected transaction changed the state")
			}
		})
	}

	msgCases := []struct {
		name   string
		signer string
		msg    tx.Msg
		want   tx.Code
	}{
		{"balance too low", "poor", &tx.Send{To: c.addr("other"), Amount: 1501}, tx.CodeInsufficientFunds},
		{"deposit above balance", "poor", gpuOrder(spr, spr, 60), tx.CodeInsufficientFunds},
		{"bid above max price", "p1", &tx.PlaceBid{OrderID: 1, Price: 3*spr + 1}, tx.CodeBidAboveMax},
		{"bid on cancelled order", "p1", &tx.PlaceBid{OrderID: 2, Price: spr}, tx.CodeOrderNotOpen},
		{"bid on leased order", "p1", &tx.PlaceBid{OrderID: 3, Price: spr}, tx.CodeOrderNotOpen},
		{"bid on missing order", "p1", &tx.PlaceBid{OrderID: 99, Price: spr}, tx.CodeNotFound},
		{"accept someone else's bid", "tenant", &tx.AcceptBid{ID: bidOnOther}, tx.CodeUnauthorized},
		{"bid while jailed", "jailed", &tx.PlaceBid{OrderID: 1, Price: spr}, tx.CodeProviderJailed},
		{"bid while unbonded", "unbonded", &tx.PlaceBid{OrderID: 1, Price: spr}, tx.CodeInsufficientStake},
		{"bid as non-provider", "other", &tx.PlaceBid{OrderID: 1, Price: spr}, tx.CodeNotProvider},
		{"bid on own order", "tenant", &tx.PlaceBid{OrderID: 1, Price: spr}, tx.CodeSelfDeal},
		{"top-up overflow", "other", &tx.TopUp{LeaseID: 1, Amount: ^uint64(0)}, tx.CodeOverflow},
		{"bond overflow", "p1", &tx.Bond{Amount: ^uint64(0)}, tx.CodeOverflow},
		{"zero amount", "tenant", &tx.Send{To: c.addr("other")}, tx.CodeInvalidMsg},
		{"register twice", "p1", &tx.RegisterProvider{ProviderInfo: providerInfo("p1")}, tx.CodeProviderExists},
		{"start someone else's lease", "jailed", &tx.LeaseStarted{ID: 1}, tx.CodeUnauthorized},
		{"unbond more than bonded", "p1", &tx.Unbond{Amount: 1 << 60}, tx.CodeUnbondingTooLarge},
		{"cancel others' order", "tenant", &tx.CancelOrder{ID: 3}, tx.CodeUnauthorized},
	}
	for _, tc := range msgCases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.stateDigest()
			c.fail(tc.want, tc.signer, tc.msg)
			if c.stateDigest() != before {
				t.Fatal("CheckTx changed committed state")
			}
			// Delivered in a block anyway, it fails with the same code and changes nothing but fee and nonce.
			raw := c.sign(tc.signer, tc.msg)
			bal := c.balance(tc.signer)
			res := c.block(time.Second, raw)
			if got := tx.Code(res.TxResults[0].Code); got != tc.want {
				t.Fatalf("FinalizeBlock code %v (%s), want %v", got, res.TxResults[0].Log, tc.want)
			}
			want := bal - fee
			if tc.want == tx.CodeInvalidMsg {
				want = bal // stateless rejection: no fee, no nonce
				c.nonces[c.addr(tc.signer)]--
			}
			if c.balance(tc.signer) != want {
				t.Fatalf("balance %d, want %d", c.balance(tc.signer), want)
			}
		})
	}
}

func TestProcessProposalRejectsForgedTransactions(t *testing.T) {
	c := newChain(t, testParams(), map[string]uint64{"a": 10 * api.USPR, "b": 0})
	good := c.sign("a", &tx.Send{To: c.addr("b"), Amount: 1})
	forged := append([]byte{}, good...)
	forged[len(forged)-1] ^= 1
	for _, tc := range []struct {
		name string
		txs  [][]byte
		want abci.ResponseProcessProposal_ProposalStatus
	}{
		{"valid", [][]byte{good}, abci.ResponseProcessProposal_ACCEPT},
		{"empty", nil, abci.ResponseProcessProposal_ACCEPT},
		{"forged signature", [][]byte{good, forged}, abci.ResponseProcessProposal_REJECT},
		{"garbage", [][]byte{{0x01, 0x02}}, abci.ResponseProcessProposal_REJECT},
	} {
		res, err := c.app.ProcessProposal(context.Background(), &abci.RequestProcessProposal{Height: c.height + 1, Txs: tc.txs})
		if err != nil || res.Status != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.name, res.Status, err, tc.want)
		}
	}
}
