package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/tx"
)

// tinyMempool sets [mempool] size so small that CometBFT acknowledges transactions and then drops them.
func tinyMempool(home string) error {
	path := filepath.Join(home, "config", "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	re := regexp.MustCompile(`(?m)^size = \d+`)
	b = re.ReplaceAll(b, []byte("size = 3"))
	return os.WriteFile(path, b, 0o600)
}

// TestSendConfirmsInclusionWithFullMempool floods a node whose mempool holds 3 transactions. Whatever the node
// acknowledges and drops, every Send must end up included exactly once, so final balances are exact.
func TestSendConfirmsInclusionWithFullMempool(t *testing.T) {
	funded := map[string]uint64{"sink": 0}
	senders := []string{"s0", "s1", "s2", "s3", "s4", "s5"}
	for _, s := range senders {
		funded[s] = 100 * spr
	}
	funded["sink"] = 1
	n := startNet(t, localnet.Options{Funded: funded, BlockTime: 200 * time.Millisecond, Config: tinyMempool})
	c := mustClient(t, n, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	params, _ := c.Params(ctx)
	const perSender = 12
	sink := n.Keys["sink"].Address()
	var wg sync.WaitGroup
	errs := make(chan error, len(senders)*perSender)
	for _, name := range senders {
		s := c.NewSender(n.Keys[name])
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inner sync.WaitGroup
			for i := 0; i < perSender; i++ {
				var raw []byte
				var err error
				for { // the mempool is full: CheckTx passes but the node says so; back off and retry
					if raw, err = s.Submit(ctx, &tx.Send{To: sink, Amount: 1000}); err == nil || ctx.Err() != nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil {
					errs <- err
					return
				}
				inner.Add(1)
				go func() {
					defer inner.Done()
					if _, err := c.WaitTx(ctx, raw, 2); err != nil {
						errs <- err
					}
				}()
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	acc, err := c.Account(ctx, sink)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + uint64(len(senders)*perSender*1000); acc.Balance != want {
		t.Fatalf("sink balance %d, want %d", acc.Balance, want)
	}
	for _, name := range senders {
		a, _ := c.Account(ctx, n.Keys[name].Address())
		if a.Nonce != perSender || a.Balance != 100*spr-perSender*(1000+params.MinFee) {
			t.Fatalf("%s: nonce %d balance %d", name, a.Nonce, a.Balance)
		}
	}
}

// TestFollowCatchesUpAfterNodeRestart follows blocks while the node is stopped and restarted: every height is
// delivered once, in order, and a transaction sent while the follower was cut off is seen.
func TestFollowCatchesUpAfterNodeRestart(t *testing.T) {
	n := startNet(t, localnet.Options{Funded: map[string]uint64{"a": 10 * spr, "b": 0}})
	// A short request timeout: an in-process node that stops leaves its open connections hanging.
	c, err := client.New(n.Nodes[0].RPCAddress(), client.Options{RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var heights []int64
	seen := make(chan struct{}, 1)
	followCtx, stopFollow := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Follow(followCtx, 1, func(b client.Block) error {
			mu.Lock()
			heights = append(heights, b.Height)
			mu.Unlock()
			for _, e := range b.Events {
				if e.Type == "transfer" && e.Attrs["amount"] == "777" {
					seen <- struct{}{}
				}
			}
			return nil
		})
	}()
	waitBlocks(t, ctx, c, 3)
	if err := n.StopNode(0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the follower retries against a dead node
	if err := n.StartNode(0); err != nil {
		t.Fatal(err)
	}
	c2 := mustClient(t, n, 0) // same address: ports are fixed in the home's config
	if _, err := c2.NewSender(n.Keys["a"]).Send(ctx, &tx.Send{To: n.Keys["b"].Address(), Amount: 777}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-ctx.Done():
		t.Fatal("follower never saw the transfer made after the restart")
	}
	stopFollow()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i, h := range heights {
		if h != int64(i+1) {
			t.Fatalf("heights delivered %v: gap or repeat at index %d", heights, i)
		}
	}
}

// TestFourValidatorsAgree runs the ledger on four validators: they commit the same app hash at every height, and
// keep committing (and agreeing) with one of them stopped.
func TestFourValidatorsAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-validator network")
	}
	n := startNet(t, localnet.Options{Validators: 4, Funded: map[string]uint64{"a": 10 * spr, "b": 0}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	clients := make([]*client.Client, 4)
	for i := range clients {
		clients[i] = mustClient(t, n, i)
	}
	sender := clients[1].NewSender(n.Keys["a"])
	for i := 0; i < 3; i++ {
		if _, err := sender.Send(ctx, &tx.Send{To: n.Keys["b"].Address(), Amount: 5}); err != nil {
			t.Fatal(err)
		}
	}
	agree := func(live []int) int64 {
		t.Helper()
		waitBlocks(t, ctx, clients[live[0]], 2)
		st, err := clients[live[0]].NodeStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h := st.SyncInfo.LatestBlockHeight
		for _, i := range live {
			waitHeight(t, ctx, clients[i], h+1)
		}
		for height := int64(2); height <= h; height++ {
			var want []byte
			for _, i := range live {
				hh := height
				blk, err := clients[i].RPC().Block(ctx, &hh)
				if err != nil {
					t.Fatal(err)
				}
				if want == nil {
					want = blk.Block.AppHash
				} else if string(blk.Block.AppHash) != string(want) {
					t.Fatalf("height %d: node %d app hash %X, node %d %X", height, i, blk.Block.AppHash, live[0], want)
				}
			}
		}
		return h
	}
	h := agree([]int{0, 1, 2, 3})
	if err := n.StopNode(3); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Send(ctx, &tx.Send{To: n.Keys["b"].Address(), Amount: 5}); err != nil {
		t.Fatal(err)
	}
	if h2 := agree([]int{0, 1, 2}); h2 <= h {
		t.Fatalf("no progress with one validator stopped: %d -> %d", h, h2)
	}
	acc, _ := clients[0].Account(ctx, n.Keys["b"].Address())
	if acc.Balance != 20 {
		t.Fatalf("b balance %d, want 20", acc.Balance)
	}
}

func waitHeight(t *testing.T, ctx context.Context, c *client.Client, h int64) {
	t.Helper()
	for {
		st, err := c.NodeStatus(ctx)
		if err == nil && st.SyncInfo.LatestBlockHeight >= h {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("height %d not reached: %v", h, ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSenderSkipsATxThatCanNeverLand: a transaction that passed CheckTx and was then dropped, and that the new
// state makes invalid, must not block the sender's later transactions forever.
func TestSenderSkipsATxThatCanNeverLand(t *testing.T) {
	n := startNet(t, localnet.Options{Funded: map[string]uint64{"a": 10 * spr, "b": 0}})
	c := mustClient(t, n, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := c.NewSender(n.Keys["a"])
	// Another process spends the account's next nonce with a different transaction first: our in-flight record
	// of nonce 0 (sent to nobody) is then dead, and the following Send must take a fresh nonce and land.
	other := c.NewSender(n.Keys["a"])
	if _, err := other.Send(ctx, &tx.Send{To: n.Keys["b"].Address(), Amount: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(ctx, &tx.Send{To: n.Keys["b"].Address(), Amount: 2}); err != nil {
		t.Fatal(err)
	}
	acc, _ := c.Account(ctx, n.Keys["b"].Address())
	if acc.Balance != 3 {
		t.Fatalf("b balance %d, want 3", acc.Balance)
	}
}

// TestSenderConfirm: Confirm sees the fee and gas limit the transaction will carry before it is signed; declined,
// nothing is sent and the nonce is not used; accepted, the transaction pays exactly that fee.
func TestSenderConfirm(t *testing.T) {
	n := startNet(t, localnet.Options{Funded: map[string]uint64{"a": 10 * spr, "b": 0}})
	c := mustClient(t, n, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := c.NewSender(n.Keys["a"])
	var asked []uint64
	declined := errors.New("declined")
	answer := declined
	s.Confirm = func(fee, gas uint64, msgs []tx.Msg) error {
		if len(msgs) != 1 || msgs[0].Type() != tx.TypeSend || gas == 0 {
			t.Errorf("asked about %d msgs, gas %d", len(msgs), gas)
		}
		asked = append(asked, fee)
		return answer
	}
	if _, err := s.Send(ctx, &tx.Send{To: n.Keys["b"].Address(), Amount: 1}); !errors.Is(err, declined) {
		t.Fatalf("declined send: %v", err)
	}
	if acc, _ := c.PendingAccount(ctx, n.Keys["a"].Address()); acc.Nonce != 0 || acc.Balance != 10*spr {
		t.Fatalf("after a declined send: %+v", acc)
	}
	answer = nil
	res, err := s.Send(ctx, &tx.Send{To: n.Keys["b"].Address(), Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 || asked[1] != res.Fee || res.Fee == 0 {
		t.Fatalf("asked %v, paid %d", asked, res.Fee)
	}
	if acc, _ := c.Account(ctx, n.Keys["a"].Address()); acc.Balance != 10*spr-1-res.Fee {
		t.Fatalf("a after the accepted send: %+v", acc)
	}
}
