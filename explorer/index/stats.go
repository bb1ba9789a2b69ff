package index

import (
	"context"
	"maps"
	"slices"
)

// Overview is the network at a glance, as of the last indexed block.
type Overview struct {
	Height          int64        `json:"height"`
	ChainID         string       `json:"chain_id"`
	LastBlockMs     int64        `json:"last_block_ms"`
	AvgBlockMs      int64        `json:"avg_block_ms"` // mean interval over the last StatBlocks blocks
	TxPerSec        float64      `json:"tx_per_sec"`   // over the last StatBlocks blocks
	StatBlocks      int          `json:"stat_blocks"`
	Providers       int          `json:"providers"`
	ProvidersActive int          `json:"providers_active"` // not jailed, required stake bonded
	GPUs            []ModelCount `json:"gpus"`             // of active providers, by model, with how many are leased
	GPUsOnline      uint64       `json:"gpus_online"`
	GPUsLeased      uint64       `json:"gpus_leased"`
	UtilisationPPM  uint64       `json:"utilisation_ppm"` // leased / online, parts per million
	TotalStaked     uint64       `json:"total_staked"`
	TotalPaid       uint64       `json:"total_paid"` // to providers, net of the network's take and the burn
	TotalTake       uint64       `json:"total_take"`
	OpenOrders      int          `json:"open_orders"`
	LiveLeases      int          `json:"live_leases"` // pending or active
	Leases          int          `json:"leases"`
	Txs             int64        `json:"txs"`
}

// ModelCount is the GPUs of one model.
type ModelCount struct {
	Model  string `json:"model"`
	Online uint64 `json:"online"`
	Leased uint64 `json:"leased"`
}

// StatBlocks is how many recent blocks the block time and tx rate are measured over.
const StatBlocks = 50

// Overview computes the overview.
func (db *DB) Overview(ctx context.Context) (Overview, error) {
	o := Overview{GPUs: []ModelCount{}}
	var err error
	if o.Height, err = db.Height(ctx); err != nil {
		return o, err
	}
	if o.ChainID, err = db.ChainID(ctx); err != nil {
		return o, err
	}
	var first, last, txs, n int64
	err = db.sql.QueryRowContext(ctx, `SELECT coalesce(min(time_ms), 0), coalesce(max(time_ms), 0), coalesce(sum(txs), 0), count(*)
		FROM (SELECT time_ms, txs FROM blocks ORDER BY height DESC LIMIT ?)`, StatBlocks).Scan(&first, &last, &txs, &n)
	if err != nil {
		return o, err
	}
	o.LastBlockMs, o.StatBlocks = last, int(n)
	if n > 1 && last > first {
		o.AvgBlockMs = (last - first) / (n - 1)
		o.TxPerSec = float64(txs) / (float64(last-first) / 1000)
	}
	q := []struct {
		sql  string
		dest []any
	}{
		{`SELECT count(*), coalesce(sum(status = 'active' AND stake >= required_stake), 0), coalesce(sum(stake), 0) FROM providers`,
			[]any{&o.Providers, &o.ProvidersActive, &o.TotalStaked}},
		{`SELECT coalesce(sum(amount), 0), coalesce(sum(take), 0) FROM payments`, []any{&o.TotalPaid, &o.TotalTake}},
		{`SELECT count(*) FROM orders WHERE state = 'open'`, []any{&o.OpenOrders}},
		{`SELECT count(*) FROM leases WHERE state IN ('pending', 'active')`, []any{&o.LiveLeases}},
		{`SELECT count(*) FROM leases`, []any{&o.Leases}},
		{`SELECT coalesce(sum(txs), 0) FROM blocks`, []any{&o.Txs}},
	}
	for _, s := range q {
		if err := db.sql.QueryRowContext(ctx, s.sql).Scan(s.dest...); err != nil {
			return o, err
		}
	}
	byModel := map[string]*ModelCount{}
	get := func(m string) *ModelCount {
		if byModel[m] == nil {
			byModel[m] = &ModelCount{Model: m}
		}
		return byModel[m]
	}
	sums := []struct {
		sql string
		add func(*ModelCount, uint64)
	}{
		{`SELECT g.model, sum(g.count) FROM provider_gpus g JOIN providers p ON p.address = g.address
			WHERE p.status = 'active' AND p.stake >= p.required_stake GROUP BY g.model`, func(m *ModelCount, c uint64) { m.Online += c }},
		{`SELECT gpu_model, sum(gpu_count) FROM leases WHERE state IN ('pending', 'active') AND gpu_count > 0 GROUP BY gpu_model`,
			func(m *ModelCount, c uint64) { m.Leased += c }},
	}
	for _, q := range sums {
		rows, err := db.sql.QueryContext(ctx, q.sql)
		if err != nil {
			return o, err
		}
		for rows.Next() {
			var m string
			var c uint64
			if err := rows.Scan(&m, &c); err != nil {
				rows.Close()
				return o, err
			}
			q.add(get(m), c)
		}
		rows.Close()
	}
	for _, m := range slices.Sorted(maps.Keys(byModel)) {
		mc := *byModel[m]
		o.GPUs = append(o.GPUs, mc)
		o.GPUsOnline += mc.Online
		o.GPUsLeased += mc.Leased
	}
	if o.GPUsOnline > 0 {
		o.UtilisationPPM = min(o.GPUsLeased, o.GPUsOnline) * 1_000_000 / o.GPUsOnline
	}
	return o, nil
}

// PricePoint is the median price per unit (GPU-hour or CPU-core-hour) of the leases of one series created in
// one time bucket.
type PricePoint struct {
	StartMs int64  `json:"start_ms"`
	Median  uint64 `json:"median"` // micro-SPR per unit
	Leases  int    `json:"leases"`
}

// The units of the price indexes.
const (
	UnitGPUHour     = "GPU-hour"
	UnitCPUCoreHour = "CPU-core-hour"
)

// CPUSeries is the model name of the CPU price index: leases without GPUs.
const CPUSeries = "CPU"

// PriceSeries is the price index of one GPU model, or of CPU-only leases (Model CPUSeries).
type PriceSeries struct {
	Model  string       `json:"model"`
	Unit   string       `json:"unit"` // UnitGPUHour or UnitCPUCoreHour: what Median is the price of
	Points []PricePoint `json:"points"`
}

// PriceIndexLeases bounds how many recent leases each price index reads.
const PriceIndexLeases = 20000

// PriceIndex is the median price per GPU-hour by model over time: the most recent PriceIndexLeases GPU leases,
// in up to buckets equal time buckets.
func (db *DB) PriceIndex(ctx context.Context, buckets int) ([]PriceSeries, error) {
	return db.priceIndex(ctx, buckets, UnitGPUHour, `SELECT gpu_model, created_ms, gpu_price FROM
		(SELECT gpu_model, created_ms, gpu_price, id FROM leases WHERE gpu_count > 0 ORDER BY id DESC LIMIT ?) ORDER BY id`)
}

// CPUPriceIndex is the CPU-only leases' median price per CPU-core-hour over time, computed as PriceIndex is:
// the most recent PriceIndexLeases leases without GPUs, in up to buckets equal time buckets. It has one series
// (Model CPUSeries), or none before the first CPU-only lease.
func (db *DB) CPUPriceIndex(ctx context.Context, buckets int) ([]PriceSeries, error) {
	return db.priceIndex(ctx, buckets, UnitCPUCoreHour, `SELECT '`+CPUSeries+`', created_ms, cpu_price FROM
		(SELECT created_ms, cpu_price, id FROM leases WHERE gpu_count = 0 AND cpu_milli > 0 ORDER BY id DESC LIMIT ?) ORDER BY id`)
}

// priceIndex computes medians of the (series, created_ms, price) rows q answers for the limit PriceIndexLeases.
func (db *DB) priceIndex(ctx context.Context, buckets int, unit, q string) ([]PriceSeries, error) {
	buckets = min(max(buckets, 1), 200)
	rows, err := db.sql.QueryContext(ctx, q, PriceIndexLeases)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	type sample struct {
		model string
		t     int64
		price uint64
	}
	var samples []sample
	lo, hi := int64(0), int64(0)
	for rows.Next() {
		var s sample
		if err := rows.Scan(&s.model, &s.t, &s.price); err != nil {
			return nil, err
		}
		if len(samples) == 0 || s.t < lo {
			lo = s.t
		}
		hi = max(hi, s.t)
		samples = append(samples, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	width := max((hi-lo)/int64(buckets)+1, 1)
	prices := map[string]map[int64][]uint64{}
	for _, s := range samples {
		if prices[s.model] == nil {
			prices[s.model] = map[int64][]uint64{}
		}
		b := lo + (s.t-lo)/width*width
		prices[s.model][b] = append(prices[s.model][b], s.price)
	}
	out := []PriceSeries{}
	for _, m := range slices.Sorted(maps.Keys(prices)) {
		ps := PriceSeries{Model: m, Unit: unit}
		for _, b := range slices.Sorted(maps.Keys(prices[m])) {
			v := prices[m][b]
			slices.Sort(v)
			med := v[len(v)/2]
			if len(v)%2 == 0 {
				med = v[len(v)/2-1] + (v[len(v)/2]-v[len(v)/2-1])/2
			}
			ps.Points = append(ps.Points, PricePoint{StartMs: b, Median: med, Leases: len(v)})
		}
		out = append(out, ps)
	}
	return out, nil
}

// Sum is the payments of one time bucket.
type Sum struct {
	StartMs int64  `json:"start_ms"`
	Amount  uint64 `json:"amount"`
	Count   int    `json:"count"`
}

// Earnings is a provider's payments summed per time bucket, oldest first (up to buckets points).
func (db *DB) Earnings(ctx context.Context, provider string, buckets int) ([]Sum, error) {
	buckets = min(max(buckets, 1), 200)
	var lo, hi int64
	if err := db.sql.QueryRowContext(ctx, `SELECT coalesce(min(time_ms), 0), coalesce(max(time_ms), 0) FROM payments WHERE provider = ?`,
		provider).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	width := max((hi-lo)/int64(buckets)+1, 1)
	rows, err := db.sql.QueryContext(ctx, `SELECT ? + (time_ms - ?) / ? * ? AS b, sum(amount), count(*) FROM payments
		WHERE provider = ? GROUP BY b ORDER BY b`, lo, lo, width, width, provider)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Sum{}
	for rows.Next() {
		var p Sum
		if err := rows.Scan(&p.StartMs, &p.Amount, &p.Count); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// RecentBlocks is the last n blocks, oldest first (for the tx rate chart).
func (db *DB) RecentBlocks(ctx context.Context, n int) ([]Block, error) {
	l, err := db.Blocks(ctx, Page{Limit: n})
	if err != nil {
		return nil, err
	}
	slices.Reverse(l.Items)
	return l.Items, nil
}
