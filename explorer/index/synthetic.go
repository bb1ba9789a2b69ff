package index

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Synthetic describes a made-up market history for benchmarks and handler tests: it is written through the
// same row writers as real blocks, but its objects come from a deterministic generator instead of a node.
type Synthetic struct {
	Providers int       // registered providers
	Leases    int       // leases (one order and one winning bid each), spread over the providers
	PerBlock  int       // leases created per block (default 50)
	Start     time.Time // time of block 1 (default 2026-01-01 UTC); blocks are 1 s apart
}

var syntheticModels = []struct {
	model string
	vram  uint64
	price uint64 // micro-SPR per GPU-hour, median
}{{"H100", 81559, 2_400_000}, {"A100", 40960, 1_300_000}, {"L40S", 46068, 900_000}, {"RTX4090", 24564, 450_000}}

// SyntheticAddress is the address of synthetic provider or tenant i.
func SyntheticAddress(kind string, i int) tx.Address {
	seed := sha256.Sum256([]byte(kind + "/" + strconv.Itoa(i)))
	return tx.AddressOf(ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
}

// WriteSynthetic fills an empty index with s. It returns the last height written.
func (db *DB) WriteSynthetic(ctx context.Context, s Synthetic) (int64, error) {
	if h, err := db.Height(ctx); err != nil || h != 0 {
		return 0, fmt.Errorf("synthetic history needs an empty index (height %d, %v)", h, err)
	}
	if s.PerBlock <= 0 {
		s.PerBlock = 50
	}
	if s.Start.IsZero() {
		s.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rnd := uint64(1)
	next := func(n uint64) uint64 { // xorshift: deterministic, good enough for made-up data
		rnd ^= rnd << 13
		rnd ^= rnd >> 7
		rnd ^= rnd << 17
		return rnd % n
	}
	params := api.DefaultParams()
	height := int64(0)
	block := func(f func(w *writer, b client.Block) error) error {
		height++
		b := client.Block{Height: height, Time: s.Start.Add(time.Duration(height) * time.Second),
			Hash: fmt.Sprintf("%064X", height), Proposer: fmt.Sprintf("%040X", 1)}
		sqlTx, err := db.sql.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer sqlTx.Rollback()
		w := &writer{ctx: ctx, tx: sqlTx, stmts: map[string]*sql.Stmt{}}
		defer w.close()
		if err := f(w, b); err != nil {
			return err
		}
		w.exec(`INSERT INTO blocks (height, time_ms, hash, proposer, txs, failed, events, fees) VALUES (?, ?, ?, ?, 0, 0, 0, 0)`,
			b.Height, b.Time.UnixMilli(), b.Hash, b.Proposer)
		w.exec(`INSERT OR REPLACE INTO meta (k, v) VALUES ('height', ?), ('chain_id', 'spare-synthetic')`, strconv.FormatInt(height, 10))
		if w.err != nil {
			return w.err
		}
		return sqlTx.Commit()
	}
	// Providers, a thousand per block.
	for first := 0; first < s.Providers; first += 1000 {
		err := block(func(w *writer, b client.Block) error {
			for i := first; i < min(first+1000, s.Providers); i++ {
				m := syntheticModels[i%len(syntheticModels)]
				count := uint32(1 << next(4))
				hw := tx.Hardware{GPUs: []tx.GPUGroup{{Model: m.model, VRAMMiB: m.vram, Count: count}}, CPUMilli: 16000, MemoryMiB: 128 << 10, DiskMiB: 1 << 20}
				p := api.Provider{Owner: SyntheticAddress("provider", i), Status: api.ProviderActive, RegisteredHeight: b.Height,
					Info: tx.ProviderInfo{HostURI: fmt.Sprintf("https://p%d.example.net:8443", i), Region: []string{"eu-west", "us-east", "ap-south"}[i%3], Hardware: hw}}
				p.Stake = params.RequiredStake(uint64(count))
				if i%50 == 49 {
					p.Status = api.ProviderJailed
				}
				w.upsertProvider(api.ProviderView{Provider: p, ReputationPPM: p.ReputationPPM(), RequiredStake: p.Stake}, b.Height)
				w.seen(p.Owner.String(), b.Height)
			}
			return nil
		})
		if err != nil {
			return height, err
		}
	}
	// Orders, bids, leases and a payment per lease, PerBlock leases per block.
	for first := 0; first < s.Leases; first += s.PerBlock {
		err := block(func(w *writer, b client.Block) error {
			for i := first; i < min(first+s.PerBlock, s.Leases); i++ {
				id := uint64(i + 1)
				pi := int(next(uint64(max(s.Providers, 1))))
				m := syntheticModels[pi%len(syntheticModels)]
				prov, tenant := SyntheticAddress("provider", pi), SyntheticAddress("tenant", i%500)
				gpus := uint32(1 + next(2))
				price := (m.price*(80+next(40))/100 + 1) * uint64(gpus)
				o := api.Order{ID: id, Tenant: tenant, Resources: tx.Resources{GPUCount: gpus, GPUModels: []string{m.model}, CPUMilli: 1000, MemoryMiB: 4096},
					MaxPricePerHour: price * 2, Deposit: price * 2, DurationSec: 3600, State: api.OrderLeased, CreatedHeight: b.Height, LeaseID: id}
				w.upsertOrder(o)
				w.seen(tenant.String(), b.Height)
				w.exec(`INSERT INTO bids (id, order_id, provider, price, state, created_height) VALUES (?, ?, ?, ?, 'won', ?)`, id, id, prov.String(), price, b.Height)
				l := api.Lease{ID: id, OrderID: id, BidID: id, Tenant: tenant, Provider: prov, Price: price, DurationSec: 3600,
					State: api.LeaseCompleted, CreatedHeight: b.Height, StartedMs: uint64(b.Time.UnixMilli()), EndedMs: uint64(b.Time.UnixMilli()) + 1800_000,
					Deposit: price * 2, Paid: price / 2, Take: price / 100, Refunded: price*2 - price/2}
				if i >= s.Leases-s.Leases/10 {
					l.State, l.EndedMs, l.Paid, l.Take, l.Refunded = api.LeaseActive, 0, 0, 0, 0
				}
				w.upsertLease(api.LeaseView{Lease: l}, b)
				if l.Paid > 0 {
					attrs, _ := json.Marshal(map[string]string{api.AttrAmount: strconv.FormatUint(l.Paid-l.Take, 10), api.AttrLeaseID: strconv.FormatUint(id, 10),
						api.AttrPaidTotal: strconv.FormatUint(l.Paid, 10), api.AttrProvider: prov.String(), api.AttrTake: strconv.FormatUint(l.Take, 10)})
					ev := w.insert(`INSERT INTO events (height, tx_hash, type, attrs) VALUES (?, '', ?, ?)`, b.Height, api.EventLeasePaid, string(attrs))
					w.exec(`INSERT INTO refs (kind, ref, event_id) VALUES ('lease', ?, ?), ('account', ?, ?)`, strconv.FormatUint(id, 10), ev, prov.String(), ev)
					w.exec(`INSERT INTO payments (height, time_ms, lease_id, provider, amount, take, event_id) VALUES (?, ?, ?, ?, ?, ?, ?)`,
						b.Height, b.Time.UnixMilli(), id, prov.String(), l.Paid-l.Take, l.Take, ev)
					w.exec(`UPDATE providers SET earned = earned + ? WHERE address = ?`, l.Paid-l.Take, prov.String())
				}
			}
			return nil
		})
		if err != nil {
			return height, err
		}
	}
	return height, nil
}
