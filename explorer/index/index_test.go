package index_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/explorer/index"
	"github.com/sparenet/spare/explorer/internal/markettest"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

const spr = api.USPR

// TestIndexerFollowsMarketHistory: a scripted history (providers, a transfer, orders, bids, leases, payments,
// a completion and a close) yields exactly the expected rows, across an indexer restart in the middle and the
// node going away and coming back.
func TestIndexerFollowsMarketHistory(t *testing.T) {
	m := markettest.Start(t, localnet.Options{CheckInvariants: true,
		Funded: map[string]uint64{"tenant": 1000 * spr, "p1": 10_000 * spr, "p2": 10_000 * spr, "bob": spr}})
	n, c := m.Net, m.C
	path := filepath.Join(t.TempDir(), "explorer.db")
	ctx := context.Background()

	// Phase 1, indexed live: providers, a transfer, two orders won by different providers.
	db, stop := markettest.StartIndexer(t, path, c)
	m.Register("p1", "H100", 81559, 8, "eu-west")
	m.Register("p2", "A100", 40960, 4, "us-east")
	m.Send("tenant", &tx.Send{To: n.Keys["bob"].Address(), Amount: 5 * spr})
	manifest := sha256.Sum256([]byte("job"))
	o1 := m.ID(m.Send("tenant", &tx.CreateOrder{Resources: tx.Resources{GPUCount: 1, GPUModels: []string{"H100"}, CPUMilli: 1000, MemoryMiB: 1024},
		MaxPricePerHour: 4 * spr, ManifestHash: manifest, Deposit: 10 * spr, DurationSec: 3600, BidWindow: 20}), "order.created", "order_id")
	o2 := m.ID(m.Send("tenant", &tx.CreateOrder{Resources: tx.Resources{GPUCount: 2, CPUMilli: 1000, MemoryMiB: 1024},
		MaxPricePerHour: 6 * spr, ManifestHash: manifest, Deposit: 20 * spr, DurationSec: 3600, BidWindow: 20}), "order.created", "order_id")
	m.Send("p1", &tx.PlaceBid{OrderID: o1, Price: 2 * spr})
	m.Send("p1", &tx.PlaceBid{OrderID: o2, Price: 5 * spr})
	m.Send("p2", &tx.PlaceBid{OrderID: o2, Price: 3 * spr})
	l1, l2 := m.WaitLease(o1), m.WaitLease(o2)
	markettest.WaitIndexed(t, db, m.Last)
	stop() // the indexer goes away in the middle

	// Phase 2, not indexed yet: leases start and are paid, the node restarts, a third order is cancelled.
	m.Send("p1", &tx.LeaseStarted{ID: l1})
	m.Send("p2", &tx.LeaseStarted{ID: l2})
	time.Sleep(1200 * time.Millisecond)
	m.Send("p1", &tx.Withdraw{ID: l1})
	o3 := m.ID(m.Send("tenant", &tx.CreateOrder{Resources: tx.Resources{GPUCount: 1, CPUMilli: 1000, MemoryMiB: 1024},
		MaxPricePerHour: spr, ManifestHash: manifest, Deposit: spr, DurationSec: 600, BidWindow: 50}), "order.created", "order_id")
	m.Send("tenant", &tx.CancelOrder{ID: o3})

	// Phase 3: the indexer resumes while the node goes away and comes back.
	db, stop = markettest.StartIndexer(t, path, c)
	defer stop()
	if err := n.StopNode(0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := n.StartNode(0); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitReady(0, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections() // the indexer keeps its own client, which must find the restarted node by itself
	var err error
	if m.C, err = n.Client(0); err != nil {
		t.Fatal(err)
	}
	lv1, _ := m.C.Lease(ctx, l1)
	rc := tx.Receipt{ChainID: "spare-test", LeaseID: l1, ManifestHash: manifest, StartMs: lv1.StartedMs,
		EndMs: lv1.StartedMs + 1500, GPUSeconds: 1, OutputRoot: sha256.Sum256([]byte("out"))}
	rc.Signature = n.Keys["p1"].Sign(rc.SignBytes())
	m.Send("p1", &tx.CompleteLease{Receipt: rc})
	m.Send("tenant", &tx.CloseLease{ID: l2, Reason: "done early"})
	markettest.WaitIndexed(t, db, m.Last)

	// Blocks: every height once, contiguous from 1.
	h, _ := db.Height(ctx)
	blocks, err := db.Blocks(ctx, index.Page{Limit: 1})
	if err != nil || blocks.Total != int(h) || blocks.Items[0].Height != h {
		t.Fatalf("blocks: %+v, height %d, err %v", blocks, h, err)
	}
	var txs int
	for off := 0; ; off += index.MaxLimit {
		page, err := db.Blocks(ctx, index.Page{Offset: off, Limit: index.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range page.Items {
			if want := h - int64(off+i); b.Height != want {
				t.Fatalf("block row %d has height %d, want %d", off+i, b.Height, want)
			}
			txs += b.Txs
		}
		if len(page.Items) < index.MaxLimit {
			break
		}
	}
	all, _ := db.Txs(ctx, index.TxFilter{}, index.Page{Limit: 1})
	if txs != m.Sent || all.Total != m.Sent {
		t.Fatalf("%d txs in blocks, %d tx rows, %d sent", txs, all.Total, m.Sent)
	}

	// Every lease, order and bid as the ledger has it.
	for _, id := range []uint64{l1, l2} {
		want, _ := c.Lease(ctx, id)
		got, err := db.Lease(ctx, id)
		if err != nil || got.State != want.State.String() || got.Paid != want.Paid || got.Refunded != want.Refunded ||
			got.Provider != want.Provider.String() || got.Price != want.Price || got.Deposit != want.Deposit {
			t.Fatalf("lease %d: index %+v, ledger %+v (%v)", id, got, want, err)
		}
	}
	if got, _ := db.Lease(ctx, l1); got.GPUModel != "H100" || got.GPUPrice != 2*spr || got.ExitCode == nil || *got.ExitCode != 0 {
		t.Fatalf("lease 1 model/price/exit: %+v", got)
	}
	if got, _ := db.Lease(ctx, l2); got.GPUModel != "A100" || got.GPUPrice != 3*spr/2 || got.CloseReason != "done early" {
		t.Fatalf("lease 2 model/price/reason: %+v", got)
	}
	for id, state := range map[uint64]string{o1: "leased", o2: "leased", o3: "cancelled"} {
		if o, err := db.Order(ctx, id); err != nil || o.State != state {
			t.Fatalf("order %d: %+v %v, want %s", id, o, err, state)
		}
	}
	bids, _ := db.Bids(ctx, o2, "", index.Page{})
	if bids.Total != 2 || bids.Items[0].State != "won" || bids.Items[1].State != "lost" {
		t.Fatalf("bids on order %d: %+v", o2, bids)
	}

	// Providers: earnings are exactly the payments the ledger made (net of the take and the burn), and the
	// payments' burns the lease's.
	for key, lease := range map[string]uint64{"p1": l1, "p2": l2} {
		addr := n.Keys[key].Address().String()
		p, err := db.Provider(ctx, addr)
		lv, _ := c.Lease(ctx, lease)
		if err != nil || p.Earned != lv.Paid-lv.Take-lv.Burned || p.Earned == 0 || lv.Burned == 0 || p.Leases != 1 || !p.Active() || p.Completed+p.Failed > 1 {
			t.Fatalf("provider %s: %+v, lease %+v (%v)", key, p, lv, err)
		}
		pays, _ := db.Payments(ctx, addr, 0, index.Page{})
		var sum, burned uint64
		for _, pm := range pays.Items {
			sum, burned = sum+pm.Amount, burned+pm.Burned
		}
		if sum != p.Earned || burned != lv.Burned {
			t.Fatalf("provider %s: payments sum %d, earned %d; burned %d, the lease's %d", key, sum, p.Earned, burned, lv.Burned)
		}
	}
	ov, err := db.Overview(ctx)
	if err != nil || ov.Providers != 2 || ov.ProvidersActive != 2 || ov.GPUsOnline != 12 || ov.GPUsLeased != 0 ||
		ov.LiveLeases != 0 || ov.Leases != 2 || ov.Txs != int64(m.Sent) || len(ov.GPUs) != 2 || ov.GPUs[0].Model != "A100" {
		t.Fatalf("overview %+v (%v)", ov, err)
	}
	list, _ := db.Providers(ctx, index.ProviderFilter{Model: "H100"}, index.Page{})
	if list.Total != 1 || list.Items[0].Address != n.Keys["p1"].Address().String() {
		t.Fatalf("providers with H100: %+v", list)
	}
	if _, err := db.Account(ctx, n.Keys["bob"].Address().String()); err != nil {
		t.Fatalf("bob's account: %v", err)
	}
	evs, _ := db.Events(ctx, index.EventFilter{Kind: "lease", Ref: strconv.FormatUint(l1, 10)}, index.Page{Limit: 100})
	seen := map[string]int{}
	for _, e := range evs.Items {
		seen[e.Type]++
	}
	if seen["lease.created"] != 1 || seen["lease.started"] != 1 || seen["lease.completed"] != 1 || seen["lease.paid"] < 1 {
		t.Fatalf("events of lease 1: %v", seen)
	}
	prices, err := db.PriceIndex(ctx, 10)
	if err != nil || len(prices) != 2 || prices[1].Model != "H100" || prices[1].Points[0].Median != 2*spr {
		t.Fatalf("price index %+v (%v)", prices, err)
	}
}

// TestIndexRefusesAnotherChain: an index built from one chain is not silently mixed with another.
func TestIndexRefusesAnotherChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "explorer.db")
	for i, chain := range []string{"chain-a", "chain-b"} {
		n, err := localnet.Start(t.TempDir(), localnet.Options{ChainID: chain, Funded: map[string]uint64{"a": spr}})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := n.Client(0)
		db, err := index.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		ix := index.New(db, c, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = ix.Run(ctx)
		cancel()
		db.Close()
		n.Stop()
		if i == 0 && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("first chain: %v", err)
		}
		if i == 1 && !errors.Is(err, index.ErrOtherChain) {
			t.Fatalf("second chain: %v, want ErrOtherChain", err)
		}
	}
}

// TestExplorerKeepsPrunedHistory: on a chain that prunes finished orders after 100 blocks (the shortest window),
// an order the indexer saw stays in the explorer's database with its final state after the ledger pruned it,
// and the ledger's answer points there.
func TestExplorerKeepsPrunedHistory(t *testing.T) {
	p := api.DefaultParams()
	p.RetentionBlocks = api.MinRetentionBlocks
	m := markettest.Start(t, localnet.Options{CheckInvariants: true, Params: &p, BlockTime: 30 * time.Millisecond,
		Funded: map[string]uint64{"tenant": 1000 * spr}})
	c := m.C
	db, stop := markettest.StartIndexer(t, filepath.Join(t.TempDir(), "explorer.db"), c)
	defer stop()
	o := m.ID(m.Send("tenant", &tx.CreateOrder{Resources: tx.Resources{GPUCount: 1, CPUMilli: 1000, MemoryMiB: 1024},
		MaxPricePerHour: spr, ManifestHash: sha256.Sum256([]byte("job")), Deposit: spr, DurationSec: 600, BidWindow: 50}), "order.created", "order_id")
	cancelled := m.Send("tenant", &tx.CancelOrder{ID: o})
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := c.Order(ctx, o)
		if err != nil && strings.Contains(err.Error(), "was pruned") {
			if !strings.Contains(err.Error(), fmt.Sprintf("GET /api/orders/%d", o)) {
				t.Fatalf("the ledger's answer: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %d not pruned %d blocks after it was cancelled at %d: %v", o, p.RetentionBlocks, cancelled.Height, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	markettest.WaitIndexed(t, db, st.Height)
	got, err := db.Order(ctx, o)
	if err != nil || got.State != "cancelled" || got.Deposit != spr {
		t.Fatalf("the explorer's order %d after the ledger pruned it: %+v, %v", o, got, err)
	}
}
