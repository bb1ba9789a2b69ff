package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Update tells subscribers that a block was indexed and what it touched.
type Update struct {
	Height    int64    `json:"height"`
	TimeMs    int64    `json:"time_ms"`
	Txs       int      `json:"txs"`
	Types     []string `json:"types,omitempty"` // event types of the block, sorted, once each
	Providers []string `json:"providers,omitempty"`
	Orders    []uint64 `json:"orders,omitempty"`
	Leases    []uint64 `json:"leases,omitempty"`
}

// Indexer follows a node and writes every block into a DB.
type Indexer struct {
	db  *DB
	c   *client.Client
	log *slog.Logger

	// Prefetch is how many blocks are fetched at once while catching up (default 4).
	Prefetch int
	// Poll is the wait between looks at the node's height once caught up (default 200 ms).
	Poll time.Duration

	mu   sync.Mutex
	subs map[chan Update]struct{}
}

// New returns an indexer writing into db from the node behind c.
func New(db *DB, c *client.Client, log *slog.Logger) *Indexer {
	if log == nil {
		log = slog.Default()
	}
	return &Indexer{db: db, c: c, log: log, Prefetch: 4, Poll: 200 * time.Millisecond, subs: map[chan Update]struct{}{}}
}

// Subscribe returns a channel of updates and a function that ends the subscription. A subscriber too slow to
// take an update misses it (the next one carries the new height).
func (ix *Indexer) Subscribe() (<-chan Update, func()) {
	ch := make(chan Update, 16)
	ix.mu.Lock()
	ix.subs[ch] = struct{}{}
	ix.mu.Unlock()
	return ch, func() {
		ix.mu.Lock()
		delete(ix.subs, ch)
		ix.mu.Unlock()
	}
}

func (ix *Indexer) publish(u Update) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for ch := range ix.subs {
		select {
		case ch <- u:
		default:
		}
	}
}

// ErrOtherChain is returned when the index was built from another chain than the node runs.
var ErrOtherChain = errors.New("index: the database holds another chain")

// Run indexes from the block after the last indexed one until ctx ends. While the node is unreachable it
// retries with backoff; blocks are applied in order, each in one transaction.
func (ix *Indexer) Run(ctx context.Context) error {
	next, err := ix.db.Height(ctx)
	if err != nil {
		return err
	}
	next++
	backoff := ix.Poll
	for {
		latest, chainID, err := ix.committedHeight(ctx)
		if err == nil {
			err = ix.checkChain(ctx, chainID)
			if errors.Is(err, ErrOtherChain) {
				return err
			}
		}
		if err == nil && next <= latest {
			var n int64
			n, err = ix.catchUp(ctx, next, latest)
			next += n
			if err != nil && errors.Is(err, errApply) {
				return err
			}
		}
		wait := ix.Poll
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			ix.c.CloseIdleConnections()
			ix.log.Warn("node unreachable, retrying", "next_height", next, "err", err)
			backoff = min(backoff*2, 5*time.Second)
			wait = backoff
		} else {
			backoff = ix.Poll
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// committedHeight is the last block the application committed (a block is stored before that; its state is
// only readable after), and the chain id.
func (ix *Indexer) committedHeight(ctx context.Context) (int64, string, error) {
	st, err := ix.c.RPC().Status(ctx)
	if err != nil {
		return 0, "", err
	}
	info, err := ix.c.RPC().ABCIInfo(ctx)
	if err != nil {
		return 0, "", err
	}
	return min(st.SyncInfo.LatestBlockHeight, info.Response.LastBlockHeight), st.NodeInfo.Network, nil
}

func (ix *Indexer) checkChain(ctx context.Context, chainID string) error {
	have, err := ix.db.ChainID(ctx)
	if err != nil {
		return err
	}
	if have == "" {
		_, err := ix.db.sql.ExecContext(ctx, "INSERT OR REPLACE INTO meta (k, v) VALUES ('chain_id', ?)", chainID)
		return err
	}
	if have != chainID {
		return fmt.Errorf("%w: it was built from chain %q and the node runs %q; point --db at a new file", ErrOtherChain, have, chainID)
	}
	return nil
}

var errApply = errors.New("index: applying a block failed")

// errNode marks a failure to read from the node while applying a block: retried like a failed fetch, since
// the block's transaction was rolled back and nothing was written.
var errNode = errors.New("index: node unreachable")

// maxBatch bounds the blocks written in one SQLite transaction while catching up.
const maxBatch = 16

// catchUp indexes blocks from..to: Prefetch fetchers read ahead while blocks are applied in order, so the
// node's work (encoding blocks) and ours (writing them) overlap. It returns how many blocks were applied.
func (ix *Indexer) catchUp(ctx context.Context, from, to int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type fetched struct {
		b   client.Block
		err error
	}
	window := max(ix.Prefetch, 1)
	slots := make([]chan fetched, window*2)
	for i := range slots {
		slots[i] = make(chan fetched, 1)
	}
	heights := make(chan int64)
	go func() {
		defer close(heights)
		for h := from; h <= to; h++ {
			select {
			case heights <- h:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Each fetcher takes the next height and delivers into that height's slot; a slot is reused only after the
	// applier has taken its block, which bounds how far ahead the fetchers run.
	free := make(chan struct{}, len(slots))
	for range slots {
		free <- struct{}{}
	}
	var wg sync.WaitGroup
	for range window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-free:
				case <-ctx.Done():
					return
				}
				h, ok := <-heights
				if !ok {
					return
				}
				b, err := ix.c.FetchBlock(ctx, h)
				slots[(h-from)%int64(len(slots))] <- fetched{b, err}
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	var n int64
	for h := from; h <= to; {
		// Wait for the next block, then take those already fetched behind it, up to maxBatch.
		var batch []client.Block
		var ferr error
	collect:
		for h <= to && len(batch) < maxBatch {
			slot := slots[(h-from)%int64(len(slots))]
			var f fetched
			if len(batch) == 0 {
				select {
				case f = <-slot:
				case <-ctx.Done():
					return n, ctx.Err()
				}
			} else {
				select {
				case f = <-slot:
				default:
					break collect // not fetched yet: write what is here
				}
			}
			free <- struct{}{}
			if f.err != nil {
				ferr = f.err
				break
			}
			batch = append(batch, f.b)
			h++
		}
		if len(batch) > 0 {
			us, err := ix.applyBatch(ctx, batch)
			if errors.Is(err, errNode) || (err != nil && ctx.Err() != nil) {
				return n, err // rolled back: retried after a backoff
			}
			if err != nil {
				return n, fmt.Errorf("%w: blocks %d-%d: %v", errApply, batch[0].Height, batch[len(batch)-1].Height, err)
			}
			for _, u := range us {
				ix.publish(u)
			}
			n += int64(len(batch))
		}
		if ferr != nil {
			return n, ferr
		}
	}
	return n, nil
}

// touched collects what a block's events name, to be read back from the ledger after it.
type touched struct {
	providers map[string]bool
	orders    map[uint64]bool
	bids      map[uint64]bool
	leases    map[uint64]bool
}

func (t *touched) request() api.ObjectsRequest {
	var r api.ObjectsRequest
	for _, a := range slices.Sorted(maps.Keys(t.providers)) {
		if addr, err := tx.ParseAddress(a); err == nil {
			r.Providers = append(r.Providers, addr)
		}
	}
	r.Orders, r.Bids, r.Leases = slices.Sorted(maps.Keys(t.orders)), slices.Sorted(maps.Keys(t.bids)), slices.Sorted(maps.Keys(t.leases))
	return r
}

// refKinds maps event attributes to the kind of object they name.
var refKinds = map[string]string{
	api.AttrProvider: "account", api.AttrTenant: "account", api.AttrFrom: "account", api.AttrTo: "account",
	api.AttrLeaseID: "lease", api.AttrOrderID: "order", api.AttrBidID: "bid", api.AttrWinnerBid: "bid", api.AttrAuditor: "account",
	api.AttrObjectID: "object", api.AttrOwner: "account",
}

// applyBatch writes consecutive blocks (the next after the last indexed first) in one SQLite transaction, with
// the height of the last: catching up, a batch saves a commit per block; either all of it lands or none.
func (ix *Indexer) applyBatch(ctx context.Context, blocks []client.Block) ([]Update, error) {
	have, err := ix.db.Height(ctx)
	if err != nil {
		return nil, err
	}
	sqlTx, err := ix.db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer sqlTx.Rollback()
	w := &writer{ctx: ctx, tx: sqlTx, stmts: map[string]*sql.Stmt{}}
	defer w.close()
	us := make([]Update, 0, len(blocks))
	for _, b := range blocks {
		if b.Height != have+1 {
			return nil, fmt.Errorf("block %d does not follow the last indexed height %d", b.Height, have)
		}
		u, err := ix.write(ctx, w, b)
		if err != nil {
			return nil, err
		}
		us = append(us, u)
		have = b.Height
	}
	if err := sqlTx.Commit(); err != nil {
		return nil, err
	}
	return us, nil
}

// write adds one block's rows through w.
func (ix *Indexer) write(ctx context.Context, w *writer, b client.Block) (Update, error) {
	u := Update{Height: b.Height, TimeMs: b.Time.UnixMilli(), Txs: len(b.Txs)}
	var fees, failed int64
	accounts := map[string]bool{}
	signed := map[string]int{}
	vtx := newVaultTxs() // StoreObject and HoldShards messages, by transaction
	for i, raw := range b.Txs {
		res := client.TxResult{}
		if i < len(b.TxResults) {
			res = b.TxResults[i]
		}
		if res.Code != 0 {
			failed++
		}
		signer, msgs := "", "undecodable"
		var nonce, fee uint64
		var memo string
		if t, err := tx.Decode(raw); err == nil {
			signer, nonce, fee, memo = t.Signer().String(), t.Body.Nonce, t.Body.Fee, t.Body.Memo
			msgs = msgNames(t.Body.Msgs)
			signed[signer]++
			if res.Code == 0 {
				vtx.add(res.Hash, t)
			}
		}
		fees += int64(fee)
		// The transaction's bytes are kept; its messages are decoded for display when a page asks.
		w.exec(`INSERT INTO txs (height, idx, hash, signer, nonce, fee, memo, msgs, raw, code, log)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, b.Height, i, res.Hash, signer, nonce, fee, memo, msgs, raw, res.Code, res.Log)
	}
	for _, a := range slices.Sorted(maps.Keys(signed)) {
		w.exec(`INSERT INTO accounts (address, first_height, last_height, txs) VALUES (?, ?, ?, ?)
			ON CONFLICT (address) DO UPDATE SET last_height = excluded.last_height, txs = txs + excluded.txs`, a, b.Height, b.Height, signed[a])
	}

	t := touched{providers: map[string]bool{}, orders: map[uint64]bool{}, bids: map[uint64]bool{}, leases: map[uint64]bool{}}
	types := map[string]bool{}
	type payment struct {
		lease, amount, take, burned uint64
		provider                    string
		event                       int64
	}
	var payments []payment
	var vaultEvs, rewardEvs []client.Event // applied after the block's other rows
	stored := 0
	for _, e := range b.Events {
		if e.Code != 0 || e.Type == api.EventFeePaid {
			continue // a failed transaction changed nothing; fees are in the txs rows
		}
		types[e.Type] = true
		attrs, _ := json.Marshal(e.Attrs) // map keys are sorted by encoding/json
		id := w.insert(`INSERT INTO events (height, tx_hash, type, attrs) VALUES (?, ?, ?, ?)`, b.Height, e.TxHash, e.Type, string(attrs))
		stored++
		for _, k := range slices.Sorted(maps.Keys(e.Attrs)) {
			kind, ok := refKinds[k]
			if !ok {
				continue
			}
			v := e.Attrs[k]
			w.exec(`INSERT OR IGNORE INTO refs (kind, ref, event_id) VALUES (?, ?, ?)`, kind, v, id)
			n, err := strconv.ParseUint(v, 10, 64)
			if kind != "account" && (err != nil || n == 0) {
				continue // not an id: nothing to read back (the event keeps it as written)
			}
			switch kind {
			case "account":
				accounts[v] = true
				if k == api.AttrProvider {
					t.providers[v] = true
				}
			case "lease":
				t.leases[n] = true
			case "order":
				t.orders[n] = true
			case "bid":
				t.bids[n] = true
			case "object": // its rows come from the Vault events themselves (applyVault)
			}
		}
		if vaultEventTypes[e.Type] {
			vaultEvs = append(vaultEvs, e)
		}
		if rewardEventTypes[e.Type] {
			rewardEvs = append(rewardEvs, e)
		}
		if e.Type == api.EventLeasePaid {
			// A payment whose numbers do not read is kept as an event, and said, but not counted (as 0 or
			// otherwise) in the provider's earnings, nor its burn in what was burned.
			lease, err1 := strconv.ParseUint(e.Attrs[api.AttrLeaseID], 10, 64)
			amount, err2 := strconv.ParseUint(e.Attrs[api.AttrAmount], 10, 64)
			take, err3 := strconv.ParseUint(e.Attrs[api.AttrTake], 10, 64)
			provider := e.Attrs[api.AttrProvider]
			_, err4 := tx.ParseAddress(provider)
			if lease == 0 && err1 == nil {
				err1 = errors.New("lease_id 0 is not a lease")
			}
			var burned uint64 // params.burn_ppm of the payment: the attribute is there only when more than 0
			var err5 error
			if v, ok := e.Attrs[api.AttrBurned]; ok {
				burned, err5 = strconv.ParseUint(v, 10, 64)
			}
			if err := errors.Join(err1, err2, err3, err4, err5, fits(lease, amount, take, burned)); err != nil {
				ix.log.Warn("ledger event not counted as a payment", "height", b.Height, "type", e.Type, "attrs", string(attrs), "err", err)
			} else {
				payments = append(payments, payment{lease, amount, take, burned, provider, id})
			}
		}
	}
	for _, a := range slices.Sorted(maps.Keys(accounts)) {
		if signed[a] > 0 {
			continue // recorded with its transactions
		}
		if _, err := tx.ParseAddress(a); err != nil {
			continue
		}
		w.seen(a, b.Height)
	}

	// Read back, in one query per thousand, the objects this block touched, as of the latest committed state.
	if err := ix.refresh(ctx, w, b, t.request()); err != nil {
		return u, err
	}
	var burned uint64
	for _, p := range payments {
		w.exec(`INSERT INTO payments (height, time_ms, lease_id, provider, amount, take, burned, event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			b.Height, u.TimeMs, p.lease, p.provider, p.amount, p.take, p.burned, p.event)
		w.exec(`UPDATE providers SET earned = earned + ? WHERE address = ?`, p.amount, p.provider)
		burned = satAdd(burned, p.burned)
	}
	if len(vaultEvs) > 0 {
		if err := ix.applyVault(ctx, w, b, vaultEvs, vtx); err != nil {
			return u, err
		}
	}
	if err := ix.applyRewards(ctx, w, b, rewardEvs, burned); err != nil {
		return u, err
	}
	w.exec(`INSERT INTO blocks (height, time_ms, hash, proposer, txs, failed, events, fees) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		b.Height, u.TimeMs, b.Hash, b.Proposer, len(b.Txs), failed, stored, fees)
	w.exec(`INSERT OR REPLACE INTO meta (k, v) VALUES ('height', ?)`, strconv.FormatInt(b.Height, 10))
	if w.err != nil {
		return u, w.err
	}
	u.Types = slices.Sorted(maps.Keys(types))
	u.Providers, u.Orders, u.Leases = slices.Sorted(maps.Keys(t.providers)), slices.Sorted(maps.Keys(t.orders)), slices.Sorted(maps.Keys(t.leases))
	return u, nil
}

// refresh reads the named objects from the ledger and stores their latest state.
func (ix *Indexer) refresh(ctx context.Context, w *writer, b client.Block, r api.ObjectsRequest) error {
	if ix.c == nil { // an indexer given no node (New(db, nil, ...)) indexes what the blocks say, and reads nothing back
		return nil
	}
	var objs api.Objects
	for len(r.Providers)+len(r.Orders)+len(r.Bids)+len(r.Leases) > 0 {
		var part api.ObjectsRequest
		room := api.MaxPageLimit
		take := func(s *[]uint64) []uint64 {
			n := min(room, len(*s))
			out := (*s)[:n]
			*s, room = (*s)[n:], room-n
			return out
		}
		n := min(room, len(r.Providers))
		part.Providers, r.Providers, room = r.Providers[:n], r.Providers[n:], room-n
		part.Orders, part.Bids, part.Leases = take(&r.Orders), take(&r.Bids), take(&r.Leases)
		got, err := ix.c.Objects(ctx, part)
		if err != nil {
			return fmt.Errorf("%w: read touched objects: %v", errNode, err)
		}
		objs.Providers = append(objs.Providers, got.Providers...)
		objs.Orders = append(objs.Orders, got.Orders...)
		objs.Bids = append(objs.Bids, got.Bids...)
		objs.Leases = append(objs.Leases, got.Leases...)
	}
	for _, p := range objs.Providers {
		w.upsertProvider(p, b.Height)
	}
	for _, o := range objs.Orders {
		w.upsertOrder(o)
	}
	for _, bd := range objs.Bids {
		w.exec(`INSERT INTO bids (id, order_id, provider, price, state, created_height) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET state = excluded.state`, bd.ID, bd.OrderID, bd.Provider.String(), bd.Price, bd.State.String(), bd.CreatedHeight)
	}
	for _, l := range objs.Leases {
		w.upsertLease(l, b)
	}
	return nil
}

// msgNames names a transaction's messages: "send,bond".
func msgNames(msgs []tx.Msg) string {
	names := make([]string, len(msgs))
	for i, m := range msgs {
		names[i] = m.Type().String()
	}
	return strings.Join(names, ",")
}

// describeTx renders a transaction's messages as JSON for its page: [{"type", "msg"}].
func describeTx(raw []byte) json.RawMessage {
	t, err := tx.Decode(raw)
	if err != nil {
		return json.RawMessage(`[]`)
	}
	type shown struct {
		Type string `json:"type"`
		Msg  tx.Msg `json:"msg"`
	}
	detail := make([]shown, len(t.Body.Msgs))
	for i, m := range t.Body.Msgs {
		detail[i] = shown{m.Type().String(), m}
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return json.RawMessage(`[]`)
	}
	return b
}

// writer runs the statements of one block's transaction, keeping the first error.
type writer struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	err   error
}

func (w *writer) stmt(q string) *sql.Stmt {
	s, ok := w.stmts[q]
	if !ok {
		var err error
		if s, err = w.tx.PrepareContext(w.ctx, q); err != nil {
			w.err = fmt.Errorf("prepare %q: %w", q, err)
			return nil
		}
		w.stmts[q] = s
	}
	return s
}

func (w *writer) exec(q string, args ...any) {
	if w.err != nil {
		return
	}
	if s := w.stmt(q); s != nil {
		if _, err := s.ExecContext(w.ctx, args...); err != nil {
			w.err = fmt.Errorf("%s: %w", strings.Fields(q)[0]+" "+strings.Fields(q)[2], err)
		}
	}
}

func (w *writer) insert(q string, args ...any) int64 {
	if w.err != nil {
		return 0
	}
	s := w.stmt(q)
	if s == nil {
		return 0
	}
	r, err := s.ExecContext(w.ctx, args...)
	if err != nil {
		w.err = err
		return 0
	}
	id, _ := r.LastInsertId()
	return id
}

func (w *writer) close() {
	for _, s := range w.stmts {
		s.Close()
	}
}

// seen records that an address appeared in block height.
func (w *writer) seen(addr string, height int64) {
	w.exec(`INSERT INTO accounts (address, first_height, last_height, txs) VALUES (?, ?, ?, 0)
		ON CONFLICT (address) DO UPDATE SET last_height = excluded.last_height`, addr, height, height)
}

func (w *writer) upsertProvider(p api.ProviderView, height int64) {
	hw := p.Info.Hardware
	var models []string
	for _, g := range hw.GPUs {
		if !slices.Contains(models, g.Model) {
			models = append(models, g.Model)
		}
	}
	sort.Strings(models)
	j, _ := json.Marshal(p)
	uptime := int64(-1) // not judged yet
	if n := p.EpochsUp + p.EpochsDown; n > 0 {
		uptime = int64(p.EpochsUp * 1_000_000 / n)
	}
	w.exec(`INSERT INTO providers (address, status, stake, unbonding, required_stake, region, zone, host_uri, gpu_models,
			gpu_count, cpu_milli, memory_mib, docker, verified, completed, failed, reputation_ppm, registered_height,
			updated_height, slashed, epochs_up, epochs_down, uptime_ppm, jailed_until_ms, verified_class, verified_ops, json)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (address) DO UPDATE SET status = excluded.status, stake = excluded.stake,
			unbonding = excluded.unbonding, required_stake = excluded.required_stake, region = excluded.region,
			zone = excluded.zone, host_uri = excluded.host_uri, gpu_models = excluded.gpu_models,
			gpu_count = excluded.gpu_count, cpu_milli = excluded.cpu_milli, memory_mib = excluded.memory_mib,
			docker = excluded.docker, verified = excluded.verified, completed = excluded.completed,
			failed = excluded.failed, reputation_ppm = excluded.reputation_ppm, updated_height = excluded.updated_height,
			slashed = excluded.slashed, epochs_up = excluded.epochs_up, epochs_down = excluded.epochs_down,
			uptime_ppm = excluded.uptime_ppm, jailed_until_ms = excluded.jailed_until_ms,
			verified_class = excluded.verified_class, verified_ops = excluded.verified_ops, json = excluded.json`,
		p.Owner.String(), p.Status.String(), p.Stake, p.Unbonding, p.RequiredStake, p.Info.Region, p.Info.Zone,
		p.Info.HostURI, strings.Join(models, ","), hw.GPUCount(), hw.CPUMilli, hw.MemoryMiB, p.Info.Docker, p.Verified,
		p.Completed, p.Failed, p.ReputationPPM, p.RegisteredHeight, height, p.Slashed, p.EpochsUp, p.EpochsDown, uptime,
		p.JailedUntilMs, p.VerifiedClass, p.VerifiedOps, string(j))
	w.exec(`DELETE FROM provider_gpus WHERE address = ?`, p.Owner.String())
	for _, g := range hw.GPUs {
		w.exec(`INSERT INTO provider_gpus (address, model, vram_mib, count) VALUES (?, ?, ?, ?)
			ON CONFLICT DO UPDATE SET count = count + excluded.count`, p.Owner.String(), g.Model, g.VRAMMiB, g.Count)
	}
}

func (w *writer) upsertOrder(o api.Order) {
	j, _ := json.Marshal(o)
	w.exec(`INSERT INTO orders (id, tenant, state, gpu_count, gpu_models, cpu_milli, max_price, deposit, duration_sec,
			created_height, lease_id, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, lease_id = excluded.lease_id, json = excluded.json`,
		o.ID, o.Tenant.String(), o.State.String(), o.Resources.GPUCount, strings.Join(o.Resources.GPUModels, ","),
		o.Resources.CPUMilli, o.MaxPricePerHour, o.Deposit, o.DurationSec, o.CreatedHeight, o.LeaseID, string(j))
}

// upsertLease stores a lease; a new one gets its GPU model (the order's model the provider has, else the
// provider's first), its price per GPU-hour, or per CPU-core-hour for a lease without GPUs, and its creation
// time, for the price indexes.
func (w *writer) upsertLease(l api.LeaseView, b client.Block) {
	if w.err != nil {
		return
	}
	var exit any
	vaultRoot := ""
	if l.Receipt != nil {
		exit = l.Receipt.ExitCode
		if !l.Receipt.VaultRoot.IsZero() {
			vaultRoot = l.Receipt.VaultRoot.String()
		}
	}
	closedBy := ""
	if !l.ClosedBy.IsZero() {
		closedBy = l.ClosedBy.String() // the ledger's own sweeps close with no signer
	}
	j, _ := json.Marshal(l)
	var exists int
	err := w.tx.QueryRowContext(w.ctx, `SELECT count(*) FROM leases WHERE id = ?`, l.ID).Scan(&exists)
	if err != nil {
		w.err = err
		return
	}
	if exists > 0 {
		w.exec(`UPDATE leases SET state = ?, started_ms = ?, ended_ms = ?, deposit = ?, paid = ?, refunded = ?,
				exit_code = ?, close_reason = ?, closed_by = ?, vault_root = ?, json = ? WHERE id = ?`,
			l.State.String(), l.StartedMs, l.EndedMs, l.Deposit, l.Paid, l.Refunded, exit, l.CloseReason, closedBy, vaultRoot, string(j), l.ID)
		return
	}
	var gpus uint32
	var cpuMilli uint64
	var orderModels, provModels string
	_ = w.tx.QueryRowContext(w.ctx, `SELECT gpu_count, gpu_models, cpu_milli FROM orders WHERE id = ?`, l.OrderID).Scan(&gpus, &orderModels, &cpuMilli)
	_ = w.tx.QueryRowContext(w.ctx, `SELECT gpu_models FROM providers WHERE address = ?`, l.Provider.String()).Scan(&provModels)
	model := ""
	var gpuPrice, cpuPrice uint64
	if gpus > 0 {
		model = leaseModel(orderModels, provModels)
		gpuPrice = l.Price / uint64(gpus)
	} else {
		cpuPrice = perCoreHour(l.Price, cpuMilli)
	}
	createdMs := b.Time.UnixMilli()
	if l.CreatedHeight != b.Height {
		// Indexed after the block that created it (an index rebuilt from a later state): use that block's time.
		_ = w.tx.QueryRowContext(w.ctx, `SELECT time_ms FROM blocks WHERE height = ?`, l.CreatedHeight).Scan(&createdMs)
	}
	w.exec(`INSERT INTO leases (id, order_id, provider, tenant, state, price, gpu_count, gpu_model, gpu_price, cpu_milli,
			cpu_price, created_height, created_ms, started_ms, ended_ms, deposit, paid, refunded, exit_code, close_reason,
			closed_by, vault_root, json)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.OrderID, l.Provider.String(), l.Tenant.String(), l.State.String(), l.Price, gpus, model, gpuPrice, cpuMilli,
		cpuPrice, l.CreatedHeight, createdMs, l.StartedMs, l.EndedMs, l.Deposit, l.Paid, l.Refunded, exit, l.CloseReason,
		closedBy, vaultRoot, string(j))
	price := gpuPrice
	if gpus == 0 {
		price = 0 // the providers' "last price" column is per GPU-hour: a CPU lease leaves it as it was
	}
	if price > 0 {
		w.exec(`UPDATE providers SET leases = leases + 1, last_price = ? WHERE address = ?`, price, l.Provider.String())
	} else {
		w.exec(`UPDATE providers SET leases = leases + 1 WHERE address = ?`, l.Provider.String())
	}
}

// perCoreHour is a price per hour for milli thousandths of a CPU core as a price per core-hour (0 without
// cores), without overflowing for any price the ledger holds.
func perCoreHour(price, milli uint64) uint64 {
	if milli == 0 {
		return 0
	}
	hi, lo := bits.Mul64(price, 1000)
	if hi >= milli {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, milli)
	return q
}

// leaseModel picks the GPU model a lease runs on: the first of the order's models the provider declares, or the
// provider's first model when the order takes any.
func leaseModel(orderModels, provModels string) string {
	prov := strings.Split(provModels, ",")
	if orderModels == "" {
		return prov[0]
	}
	for _, m := range strings.Split(orderModels, ",") {
		if slices.Contains(prov, m) {
			return m
		}
	}
	return strings.Split(orderModels, ",")[0]
}
