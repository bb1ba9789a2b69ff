package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"flag"
	"fmt"
	"strconv"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/schema"
	"github.com/sparenet/spare/ledger/tx"
)

var stateSizeTxs = flag.Int("statesize.txs", 20_000, "transactions BenchmarkStateSize runs through the ledger (BENCHMARKS.md: 1,000,000)")

// BenchmarkStateSize: the state's size after a steady market of mixed transactions — every block, tenants open
// orders, providers bid on them (one bid withdrawn, one order cancelled), leases start and complete with receipts,
// accounts send — with the default rules and retention off (0: an archive chain), and with a retention window of
// 1,000 blocks. It reports the state's keys and bytes in all, and those of the market's history (orders, bids,
// leases, receipts and their indexes); with retention they stay at the window's worth however long the chain
// runs, without it they grow with every transaction.
//
//	go test -run '^$' -bench StateSize -benchtime 1x ./ledger -statesize.txs 1000000
func BenchmarkStateSize(b *testing.B) {
	for _, retention := range []uint64{0, 1_000} {
		b.Run(fmt.Sprintf("retention=%d", retention), func(b *testing.B) {
			for range b.N {
				keys, bytes, hkeys, hbytes, blocks := stateAfter(b, retention, *stateSizeTxs)
				b.ReportMetric(float64(keys), "keys")
				b.ReportMetric(float64(bytes)/1e6, "MB")
				b.ReportMetric(float64(hkeys), "history-keys")
				b.ReportMetric(float64(hbytes)/1e6, "history-MB")
				b.ReportMetric(float64(blocks), "blocks")
			}
		})
	}
}

// stateAfter runs about n transactions of the steady market and measures the committed state.
func stateAfter(b *testing.B, retention uint64, n int) (keys, bytes, hkeys, hbytes, blocks int) {
	const tenants, providers, perBlock = 8, 4, 8 // orders per block
	funded := map[string]uint64{}
	for i := range tenants {
		funded[fmt.Sprint("t", i)] = 1 << 58
	}
	for i := range providers {
		funded[fmt.Sprint("p", i)] = 1 << 50
	}
	p := testParams()
	p.RetentionBlocks = retention
	c := newChain(b, p, funded)
	c.app.opts.CheckInvariants = false
	var regs [][]byte
	for i := range providers {
		name := fmt.Sprint("p", i)
		regs = append(regs, c.sign(name, &tx.RegisterProvider{ProviderInfo: providerInfo(name)}, &tx.Bond{Amount: p.RequiredStake(8)}))
	}
	c.block(time.Second, regs...)
	manifest := sha256.Sum256([]byte("manifest"))
	type started struct {
		lease    uint64
		provider string
		ms       uint64
	}
	var newOrders, newLeases []uint64 // made in the last block
	leaseProvider := map[uint64]string{}
	var running []started // started, completed a few blocks later
	sent := 0
	for sent < n {
		var txs [][]byte
		add := func(name string, m ...tx.Msg) { txs = append(txs, c.sign(name, m...)) }
		for i := range perBlock {
			o := gpuOrder(testRunPrice, api.USPR, 3600)
			o.ManifestHash = manifest
			add(fmt.Sprint("t", (int(c.height)*perBlock+i)%tenants), o)
		}
		for k, id := range newOrders {
			if k == len(newOrders)-1 { // one order a block is cancelled before anyone bids
				add(fmt.Sprint("t", (int(c.height-1)*perBlock+k)%tenants), &tx.CancelOrder{ID: id})
				continue
			}
			for j := range 2 {
				add(fmt.Sprint("p", (k+j)%providers), &tx.PlaceBid{OrderID: id, Price: testRunPrice - uint64(j) - 1})
			}
		}
		for _, id := range newLeases {
			add(leaseProvider[id], &tx.LeaseStarted{ID: id})
		}
		nowMs := uint64(c.now.Add(time.Second).UnixMilli())
		for len(running) > 0 && running[0].ms+5_000 <= nowMs { // a run lasts five seconds
			r := running[0]
			running = running[1:]
			rc := tx.Receipt{ChainID: testChain, LeaseID: r.lease, ManifestHash: manifest, StartMs: r.ms, EndMs: nowMs,
				OutputRoot: sha256.Sum256([]byte(strconv.FormatUint(r.lease, 10)))}
			rc.Signature = ed25519.Sign(c.keys[r.provider].priv, rc.SignBytes())
			add(r.provider, &tx.CompleteLease{Receipt: rc})
		}
		for i := range 4 {
			add(fmt.Sprint("t", i), &tx.Send{To: c.addr(fmt.Sprint("t", (i+1)%tenants)), Amount: 1})
		}
		res := c.block(time.Second, txs...)
		blocks++
		sent += len(txs)
		for i, r := range res.TxResults {
			if r.Code != 0 {
				b.Fatalf("block %d tx %d: %s", c.height, i, r.Log)
			}
		}
		for _, id := range newLeases {
			running = append(running, started{id, leaseProvider[id], uint64(c.now.UnixMilli())})
		}
		newOrders, newLeases = newOrders[:0], newLeases[:0]
		each := func(events []abci.Event) {
			for _, e := range events {
				switch e.Type {
				case "order.created":
					newOrders = append(newOrders, attrU(e, "order_id"))
				case "lease.created":
					id := attrU(e, "lease_id")
					newLeases = append(newLeases, id)
					leaseProvider[id] = c.name(mustAddr(attr(e, "provider")))
				}
			}
		}
		for _, r := range res.TxResults {
			each(r.Events)
		}
		each(res.Events)
	}
	kv, _ := c.app.store.View()
	kv.Iterate("", "\xff\xff", func(k string, v []byte) bool {
		keys++
		bytes += len(k) + len(v)
		return true
	})
	for _, pre := range historyPrefixes {
		kv.Iterate(pre, schema.PrefixEnd(pre), func(k string, v []byte) bool {
			hkeys++
			hbytes += len(k) + len(v)
			return true
		})
	}
	return keys, bytes, hkeys, hbytes, blocks
}

func attr(e abci.Event, key string) string {
	for _, a := range e.Attributes {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

func attrU(e abci.Event, key string) uint64 {
	v, _ := strconv.ParseUint(attr(e, key), 10, 64)
	return v
}

func mustAddr(s string) tx.Address {
	a, err := tx.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}
