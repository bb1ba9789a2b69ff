package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

const spr = api.USPR

func startNet(t *testing.T, o localnet.Options) *localnet.Net {
	t.Helper()
	o.CheckInvariants = true
	n, err := localnet.Start(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func mustClient(t *testing.T, n *localnet.Net, i int) *client.Client {
	t.Helper()
	c, err := n.Client(i)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hardware() tx.Hardware {
	return tx.Hardware{GPUs: []tx.GPUGroup{{Model: "RTX4090", VRAMMiB: 24576, Count: 2}}, CPUMilli: 16000, MemoryMiB: 65536, DiskMiB: 1 << 20}
}

func register(t *testing.T, ctx context.Context, s *client.Sender, name string, params *api.Params) {
	t.Helper()
	info := tx.ProviderInfo{HostURI: "https://" + name + ".example:8443", CertFingerprint: sha256.Sum256([]byte(name)), Region: "eu-west", Hardware: hardware()}
	if _, err := s.Send(ctx, &tx.RegisterProvider{ProviderInfo: info}, &tx.Bond{Amount: params.RequiredStake(2)}); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
}

// blockTimeMs is the block time of height h in ms, the ledger's clock for transactions in it.
func blockTimeMs(t *testing.T, ctx context.Context, c *client.Client, h int64) uint64 {
	t.Helper()
	b, err := c.FetchBlock(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(b.Time.UnixMilli())
}

// TestMarketLifecycleOnNode runs register+bond → order → bids → auction close → started → withdraw → complete, and
// an escrow running dry, against a real CometBFT node through the client, checking exact amounts.
func TestMarketLifecycleOnNode(t *testing.T) {
	n := startNet(t, localnet.Options{Funded: map[string]uint64{"tenant": 1000 * spr, "p1": 1000 * spr, "p2": 1000 * spr}})
	c := mustClient(t, n, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tenant, p1, p2 := c.NewSender(n.Keys["tenant"]), c.NewSender(n.Keys["p1"]), c.NewSender(n.Keys["p2"])
	register(t, ctx, p1, "p1", params)
	register(t, ctx, p2, "p2", params)

	// Watch events from now on.
	st, _ := c.Status(ctx)
	events := make(chan client.Event, 256)
	go c.Follow(ctx, st.Height+1, func(b client.Block) error {
		for _, e := range b.Events {
			events <- e
		}
		return nil
	})

	manifest := sha256.Sum256([]byte("job"))
	order := &tx.CreateOrder{Resources: tx.Resources{GPUCount: 1, CPUMilli: 2000, MemoryMiB: 4096}, MaxPricePerHour: 3600 * spr,
		ManifestHash: manifest, Deposit: 10 * spr, DurationSec: 3600, BidWindow: 20}
	res, err := tenant.Send(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	idStr, _ := res.Attr("order.created", "order_id")
	orderID, _ := strconv.ParseUint(idStr, 10, 64)
	// Two bids inside the 20-block window; the ledger closes the auction and the cheaper one wins.
	b1, err := p1.Submit(ctx, &tx.PlaceBid{OrderID: orderID, Price: 3000 * spr})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := p2.Submit(ctx, &tx.PlaceBid{OrderID: orderID, Price: 1800 * spr}) // 0.5 SPR per second
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{b1, b2} {
		if _, err := c.WaitTx(ctx, raw, 3); err != nil {
			t.Fatal(err)
		}
	}
	var leaseID uint64
	for leaseID == 0 {
		select {
		case e := <-events:
			if e.Type == "lease.created" && e.Attrs["order_id"] == idStr {
				leaseID, _ = strconv.ParseUint(e.Attrs["lease_id"], 10, 64)
				if e.TxHash != "" {
					t.Fatalf("auction lease should be a block event, came from tx %s", e.TxHash)
				}
			}
		case <-ctx.Done():
			t.Fatal("no lease.created event")
		}
	}
	l, err := c.Lease(ctx, leaseID)
	if err != nil || l.Provider != n.Keys["p2"].Address() || l.Price != 1800*spr || l.State != api.LeasePending {
		t.Fatalf("lease %+v, %v", l, err)
	}
	start, err := p2.Send(ctx, &tx.LeaseStarted{ID: leaseID})
	if err != nil {
		t.Fatal(err)
	}
	startedMs := blockTimeMs(t, ctx, c, start.Height)
	time.Sleep(1500 * time.Millisecond)
	bal0, _ := c.Account(ctx, n.Keys["p2"].Address())
	wd, err := p2.Send(ctx, &tx.Withdraw{ID: leaseID})
	if err != nil {
		t.Fatal(err)
	}
	wdMs := blockTimeMs(t, ctx, c, wd.Height)
	earned := 1800 * spr * (wdMs - startedMs) / 3_600_000
	take := earned * params.TakeRatePPM / tx.PPM
	burn := earned * params.BurnPPM / tx.PPM // burned (docs/economics.md)
	bal1, _ := c.Account(ctx, n.Keys["p2"].Address())
	if got, want := bal1.Balance, bal0.Balance-params.MinFee+earned-take-burn; got != want {
		t.Fatalf("provider balance after withdraw %d, want %d (earned %d over %d ms)", got, want, earned, wdMs-startedMs)
	}
	rc := tx.Receipt{ChainID: "spare-test", LeaseID: leaseID, ManifestHash: manifest, StartMs: startedMs, EndMs: wdMs, OutputRoot: sha256.Sum256(nil)}
	rc.Signature = ed25519.Sign(n.Keys["p2"].Priv, rc.SignBytes())
	tbal0, _ := c.Account(ctx, n.Keys["tenant"].Address())
	done, err := p2.Send(ctx, &tx.CompleteLease{Receipt: rc})
	if err != nil {
		t.Fatal(err)
	}
	endMs := blockTimeMs(t, ctx, c, done.Height)
	paid := 1800 * spr * (endMs - startedMs) / 3_600_000
	l, _ = c.Lease(ctx, leaseID)
	if l.State != api.LeaseCompleted || l.Paid != paid || l.Refunded != 10*spr-paid || l.Receipt == nil || l.Burned != paid*params.BurnPPM/tx.PPM {
		t.Fatalf("completed lease %+v, want paid %d", l, paid)
	}
	tbal1, _ := c.Account(ctx, n.Keys["tenant"].Address())
	if tbal1.Balance != tbal0.Balance+10*spr-paid {
		t.Fatalf("tenant refund: %d, want %d", tbal1.Balance, tbal0.Balance+10*spr-paid)
	}

	// Escrow running dry: 1 SPR at 3600 SPR/h lasts exactly one second.
	order.Deposit, order.BidWindow = spr, 0
	res, err = tenant.Send(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	idStr, _ = res.Attr("order.created", "order_id")
	orderID, _ = strconv.ParseUint(idStr, 10, 64)
	waitBlocks(t, ctx, c, 2) // the 1-block window passes with no bid: the first bid then wins at once
	bid, err := p1.Send(ctx, &tx.PlaceBid{OrderID: orderID, Price: 3600 * spr})
	if err != nil {
		t.Fatal(err)
	}
	lid, ok := bid.Attr("lease.created", "lease_id")
	if !ok {
		t.Fatalf("late bid did not lease at once: %+v", bid.Events)
	}
	leaseID, _ = strconv.ParseUint(lid, 10, 64)
	if _, err := p1.Send(ctx, &tx.LeaseStarted{ID: leaseID}); err != nil {
		t.Fatal(err)
	}
	for {
		l, _ = c.Lease(ctx, leaseID)
		if l.State == api.LeaseClosed || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if l.State != api.LeaseClosed || l.Paid != spr || l.Refunded != 0 || l.CloseReason != "deposit exhausted" || l.EndedMs-l.StartedMs != 1000 {
		t.Fatalf("dry lease %+v", l)
	}
	s, _ := c.Supply(ctx)
	if !s.Holds() || s.Escrow != 0 {
		t.Fatalf("supply %+v", s)
	}
}

func waitBlocks(t *testing.T, ctx context.Context, c *client.Client, k int64) {
	t.Helper()
	st, err := c.NodeStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	target := st.SyncInfo.LatestBlockHeight + k
	for {
		st, err = c.NodeStatus(ctx)
		if err == nil && st.SyncInfo.LatestBlockHeight >= target {
			return
		}
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
