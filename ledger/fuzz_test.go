package ledger

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// fuzzChain is a small market: a tenant, a bonded provider, an open order with a bid, a running lease.
func fuzzChain(t testing.TB) *chain {
	c := newChain(t, testParams(), map[string]uint64{"tenant": 1000 * api.USPR, "p1": 1000 * api.USPR})
	c.registerBonded("p1")
	c.do("tenant", gpuOrder(3*api.USPR, 10*api.USPR, 3600))
	c.do("p1", &tx.PlaceBid{OrderID: 1, Price: api.USPR})
	c.do("p1", &tx.LeaseStarted{ID: 1})
	c.do("tenant", gpuOrder(3*api.USPR, 10*api.USPR, 3600))
	return c
}

func fuzzSeeds(c *chain) [][]byte {
	t := c.keys["tenant"]
	var seeds [][]byte
	for i, m := range []tx.Msg{
		&tx.Send{To: c.addr("p1"), Amount: 1}, &tx.CreateOrder{}, &tx.CancelOrder{ID: 2}, &tx.TopUp{LeaseID: 1, Amount: 5},
		&tx.CloseLease{ID: 1}, &tx.AcceptBid{ID: 1}, &tx.PlaceBid{OrderID: 2, Price: 1}, &tx.ExtendLease{LeaseID: 1, AddSec: 60},
	} {
		body := tx.Body{ChainID: testChain, PubKey: t.priv.Public().(ed25519.PublicKey), Nonce: c.nonces[t.addr], Fee: 1000, GasLimit: testGas, Msgs: []tx.Msg{m}}
		if i == 1 {
			body.Msgs = []tx.Msg{gpuOrder(api.USPR, api.USPR, 60)}
		}
		seeds = append(seeds, tx.EncodeBody(body))
	}
	return seeds
}

// FuzzCheckTx feeds arbitrary bytes to CheckTx twice: as a raw transaction, and, when they decode as a body, as
// that body signed by the funded tenant (so mutations reach message execution). CheckTx must never panic, must
// answer with a known code, and must never change committed state.
func FuzzCheckTx(f *testing.F) {
	c := fuzzChain(f)
	for _, s := range fuzzSeeds(c) {
		f.Add(s)
	}
	before := c.stateDigest()
	priv := c.keys["tenant"].priv
	f.Fuzz(func(t *testing.T, data []byte) {
		checkOne(t, c, data)
		if body, err := tx.DecodeBody(data); err == nil {
			checkOne(t, c, tx.Sign(body, priv))
		}
		if c.stateDigest() != before {
			t.Fatal("CheckTx changed committed state")
		}
	})
}

func checkOne(t *testing.T, c *chain, raw []byte) {
	res, err := c.app.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: raw})
	if err != nil {
		t.Fatalf("CheckTx returned a Go error: %v", err)
	}
	if res.Code != 0 && tx.Code(res.Code).String() == fmt.Sprintf("code_%d", res.Code) {
		t.Fatalf("unknown code %d: %s", res.Code, res.Log)
	}
	if tx.Code(res.Code) == tx.CodeInternal {
		t.Fatalf("internal error: %s", res.Log)
	}
}

// TestWriteFuzzCorpus regenerates the checked-in seed corpus (SPARE_WRITE_CORPUS=1 go test -run WriteFuzzCorpus).
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SPARE_WRITE_CORPUS") == "" {
		t.Skip("set SPARE_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	c := fuzzChain(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzCheckTx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds(c) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
