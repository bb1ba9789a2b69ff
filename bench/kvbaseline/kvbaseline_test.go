package kvbaseline

import (
	"context"
	"crypto/ed25519"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
)

func TestCheckAndFinalize(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	good := NewTx(priv, []byte("a=1"))
	bad := append([]byte(nil), good...)
	bad[HeaderLen] = 'b' // payload changed after signing
	short := good[:HeaderLen-1]
	noEq := NewTx(priv, []byte("novalue"))

	app := New()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		raw  []byte
		want uint32
	}{{"good", good, CodeOK}, {"bad sig", bad, CodeBadSignature}, {"short", short, CodeMalformed}, {"no =", noEq, CodeMalformed}} {
		res, err := app.CheckTx(ctx, &abci.RequestCheckTx{Tx: c.raw, Type: abci.CheckTxType_New})
		if err != nil || res.Code != c.want {
			t.Errorf("CheckTx %s: code %d err %v, want %d", c.name, res.Code, err, c.want)
		}
	}
	res, err := app.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 1, Txs: [][]byte{good, bad}})
	if err != nil {
		t.Fatal(err)
	}
	if res.TxResults[0].Code != CodeOK || res.TxResults[1].Code != CodeBadSignature {
		t.Fatalf("results: %v", res.TxResults)
	}
	if app.Len() != 1 || len(res.AppHash) != 32 {
		t.Fatalf("len %d hash %x", app.Len(), res.AppHash)
	}
	again, _ := New().FinalizeBlock(ctx, &abci.RequestFinalizeBlock{Height: 1, Txs: [][]byte{good}})
	if string(again.AppHash) != string(res.AppHash) {
		t.Fatal("app hash is not a function of height and count")
	}
}
