package index

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sparenet/spare/ledger/api"
)

// ErrNotFound is returned for an object the index does not hold.
var ErrNotFound = errors.New("not found")

// Page selects a page of a list: Limit rows after skipping Offset.
type Page struct {
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

// MaxLimit bounds every page.
const MaxLimit = 200

func (p Page) clamp() Page {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	p.Limit = min(p.Limit, MaxLimit)
	p.Offset = max(p.Offset, 0)
	return p
}

// List is a page of rows and how many rows the whole list has.
type List[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

// Block is an indexed block.
type Block struct {
	Height   int64  `json:"height"`
	TimeMs   int64  `json:"time_ms"`
	Hash     string `json:"hash"`
	Proposer string `json:"proposer"`
	Txs      int    `json:"txs"`
	Failed   int    `json:"failed"`
	Events   int    `json:"events"`
	Fees     uint64 `json:"fees"`
}

// Tx is an indexed transaction.
type Tx struct {
	Height int64           `json:"height"`
	Index  int             `json:"index"`
	Hash   string          `json:"hash"`
	Signer string          `json:"signer"`
	Nonce  uint64          `json:"nonce"`
	Fee    uint64          `json:"fee"`
	Memo   string          `json:"memo,omitempty"`
	Msgs   string          `json:"msgs"`
	Detail json.RawMessage `json:"detail"`
	Code   uint32          `json:"code"`
	Log    string          `json:"log,omitempty"`
	TimeMs int64           `json:"time_ms"`
}

// Event is an indexed ledger event.
type Event struct {
	ID     int64             `json:"id"`
	Height int64             `json:"height"`
	TxHash string            `json:"tx_hash,omitempty"`
	Type   string            `json:"type"`
	Attrs  map[string]string `json:"attrs"`
}

// Provider is a provider's latest state with the index's sums.
type Provider struct {
	Address          string     `json:"address"`
	Status           string     `json:"status"`
	Stake            uint64     `json:"stake"`
	Unbonding        uint64     `json:"unbonding"`
	RequiredStake    uint64     `json:"required_stake"`
	Region           string     `json:"region"`
	Zone             string     `json:"zone"`
	HostURI          string     `json:"host_uri"`
	GPUModels        string     `json:"gpu_models"`
	GPUCount         uint64     `json:"gpu_count"`
	CPUMilli         uint64     `json:"cpu_milli"`
	MemoryMiB        uint64     `json:"memory_mib"`
	Docker           bool       `json:"docker"`
	Verified         bool       `json:"verified"`
	Completed        uint64     `json:"leases_completed"`
	Failed           uint64     `json:"leases_failed"`
	ReputationPPM    uint64     `json:"reputation_ppm"`
	RegisteredHeight int64      `json:"registered_height"`
	UpdatedHeight    int64      `json:"updated_height"`
	Earned           uint64     `json:"earned"`
	Slashed          uint64     `json:"slashed"`
	Leases           uint64     `json:"leases"`
	LastGPUPrice     uint64     `json:"last_gpu_price"` // per GPU-hour, of its latest lease
	EpochsUp         uint64     `json:"epochs_up"`      // epochs the auditors found it answering
	EpochsDown       uint64     `json:"epochs_down"`
	UptimePPM        int64      `json:"uptime_ppm"` // up / judged epochs; -1 before any verdict
	JailedUntilMs    int64      `json:"jailed_until_ms,omitempty"`
	VerifiedClass    string     `json:"verified_class,omitempty"` // the device class its proof of GPU passed as
	VerifiedOps      uint64     `json:"verified_ops_per_sec,omitempty"`
	GPUs             []GPUGroup `json:"gpus,omitempty"`
}

// Active is a provider that is not jailed and has its required stake bonded.
func (p Provider) Active() bool { return p.Status == "active" && p.Stake >= p.RequiredStake }

// GPUGroup is a number of GPUs of one model.
type GPUGroup struct {
	Model   string `json:"model"`
	VRAMMiB uint64 `json:"vram_mib"`
	Count   uint64 `json:"count"`
}

// Order is an indexed order.
type Order struct {
	ID            uint64          `json:"id"`
	Tenant        string          `json:"tenant"`
	State         string          `json:"state"`
	GPUCount      uint64          `json:"gpu_count"`
	GPUModels     string          `json:"gpu_models"`
	CPUMilli      uint64          `json:"cpu_milli"`
	MaxPrice      uint64          `json:"max_price_per_hour"`
	Deposit       uint64          `json:"deposit"`
	DurationSec   uint64          `json:"duration_sec"`
	CreatedHeight int64           `json:"created_height"`
	LeaseID       uint64          `json:"lease_id,omitempty"`
	Ledger        json.RawMessage `json:"ledger"` // the order as the ledger answered
}

// Bid is an indexed bid.
type Bid struct {
	ID            uint64 `json:"id"`
	OrderID       uint64 `json:"order_id"`
	Provider      string `json:"provider"`
	Price         uint64 `json:"price_per_hour"`
	State         string `json:"state"`
	CreatedHeight int64  `json:"created_height"`
}

// Lease is an indexed lease.
type Lease struct {
	ID            uint64 `json:"id"`
	OrderID       uint64 `json:"order_id"`
	Provider      string `json:"provider"`
	Tenant        string `json:"tenant"`
	State         string `json:"state"`
	Price         uint64 `json:"price_per_hour"`
	GPUCount      uint64 `json:"gpu_count"`
	GPUModel      string `json:"gpu_model"`
	GPUPrice      uint64 `json:"gpu_price"`           // per GPU-hour; 0 for a lease without GPUs
	CPUMilli      uint64 `json:"cpu_milli"`           // the order's CPU, in thousandths of a core
	CPUPrice      uint64 `json:"cpu_price,omitempty"` // per CPU-core-hour, for a lease without GPUs
	CreatedHeight int64  `json:"created_height"`
	CreatedMs     int64  `json:"created_ms"`
	StartedMs     int64  `json:"started_ms,omitempty"`
	EndedMs       int64  `json:"ended_ms,omitempty"`
	Deposit       uint64 `json:"deposit"`
	Paid          uint64 `json:"paid"`        // settled so far
	CostSoFar     uint64 `json:"cost_so_far"` // earned by the provider as of the last indexed block
	Refunded      uint64 `json:"refunded"`
	ExitCode      *int64 `json:"exit_code,omitempty"`
	CloseReason   string `json:"close_reason,omitempty"`
	ClosedBy      string `json:"closed_by,omitempty"` // who closed it; empty when the ledger did (deadline, end, deposit)
	// VaultRoot is the outputs' Vault root its signed receipt carries (outputs: {to: vault}); "" without one.
	VaultRoot string          `json:"vault_root,omitempty"`
	Ledger    json.RawMessage `json:"ledger"` // the lease as the ledger answered (receipt included)
}

// Outcome says how a lease ended, in words for its row: "" while it is pending or active; "exit N" for a
// completion; for a close the reason, with who closed it when the reason does not say.
func (l Lease) Outcome() string {
	switch l.State {
	case "completed":
		if l.ExitCode == nil {
			return cmp.Or(l.CloseReason, "completed") // a replicated run's "result committed": its receipt is not out yet
		}
		return fmt.Sprintf("completed, exit %d", *l.ExitCode)
	case "closed":
		who := ""
		switch l.ClosedBy {
		case "":
		case l.Provider:
			who = "provider"
		case l.Tenant:
			who = "tenant"
		default:
			who = l.ClosedBy
		}
		switch {
		case l.CloseReason == "":
			if who == "" {
				return "closed"
			}
			return "closed by " + who
		case who == "" || strings.Contains(l.CloseReason, "by "+who):
			return l.CloseReason
		}
		return "closed by " + who + ": " + l.CloseReason
	}
	return ""
}

// Failed reports whether the lease ended badly: its job exited non-zero, it never started, or its provider
// closed it. A tenant's close and an end by duration or deposit are not failures.
func (l Lease) Failed() bool {
	switch l.State {
	case "completed":
		return l.ExitCode != nil && *l.ExitCode != 0
	case "closed":
		return l.StartedMs == 0 || (l.ClosedBy != "" && l.ClosedBy == l.Provider && l.ClosedBy != l.Tenant)
	}
	return false
}

// Payment is one settlement to a provider.
type Payment struct {
	Height  int64  `json:"height"`
	TimeMs  int64  `json:"time_ms"`
	LeaseID uint64 `json:"lease_id"`
	Amount  uint64 `json:"amount"` // to the provider, net of the take and the burn
	Take    uint64 `json:"take"`
	Burned  uint64 `json:"burned"` // params.burn_ppm of it, taken out of the supply
	EventID int64  `json:"event_id"`
}

// Account is an address the chain has seen.
type Account struct {
	Address     string `json:"address"`
	FirstHeight int64  `json:"first_height"`
	LastHeight  int64  `json:"last_height"`
	Txs         int    `json:"txs"`
	// Roles are what the index knows the address to be: "provider" (registered) and "tenant" (it ordered).
	Roles []string `json:"roles"`
}

func (db *DB) list(ctx context.Context, p Page, countQ, q string, args []any, scan func(*sql.Rows) error) (int, error) {
	var total int
	if err := db.sql.QueryRowContext(ctx, countQ, args...).Scan(&total); err != nil {
		return 0, err
	}
	rows, err := db.sql.QueryContext(ctx, q+" LIMIT ? OFFSET ?", append(slices.Clone(args), p.Limit, p.Offset)...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return 0, err
		}
	}
	return total, rows.Err()
}

const blockCols = `height, time_ms, hash, proposer, txs, failed, events, fees`

func scanBlock(s interface{ Scan(...any) error }) (Block, error) {
	var b Block
	err := s.Scan(&b.Height, &b.TimeMs, &b.Hash, &b.Proposer, &b.Txs, &b.Failed, &b.Events, &b.Fees)
	return b, err
}

// Blocks lists blocks, newest first.
func (db *DB) Blocks(ctx context.Context, p Page) (List[Block], error) {
	p = p.clamp()
	out := List[Block]{Items: []Block{}, Offset: p.Offset, Limit: p.Limit}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM blocks`, `SELECT `+blockCols+` FROM blocks ORDER BY height DESC`, nil,
		func(r *sql.Rows) error {
			b, err := scanBlock(r)
			out.Items = append(out.Items, b)
			return err
		})
	return out, err
}

// Block reads one block.
func (db *DB) Block(ctx context.Context, height int64) (Block, error) {
	b, err := scanBlock(db.sql.QueryRowContext(ctx, `SELECT `+blockCols+` FROM blocks WHERE height = ?`, height))
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("block %d: %w", height, ErrNotFound)
	}
	return b, err
}

const txCols = `t.height, t.idx, t.hash, t.signer, t.nonce, t.fee, t.memo, t.msgs, t.raw, t.code, t.log, b.time_ms`

func scanTx(s interface{ Scan(...any) error }) (Tx, error) {
	var t Tx
	var raw []byte
	err := s.Scan(&t.Height, &t.Index, &t.Hash, &t.Signer, &t.Nonce, &t.Fee, &t.Memo, &t.Msgs, &raw, &t.Code, &t.Log, &t.TimeMs)
	t.Detail = describeTx(raw)
	return t, err
}

// TxFilter selects transactions.
type TxFilter struct {
	Height int64  // only this block's
	Signer string // only this signer's
}

// Txs lists transactions, newest first.
func (db *DB) Txs(ctx context.Context, f TxFilter, p Page) (List[Tx], error) {
	p = p.clamp()
	out := List[Tx]{Items: []Tx{}, Offset: p.Offset, Limit: p.Limit}
	where, args := "1 = 1", []any{}
	if f.Height > 0 {
		where, args = where+" AND t.height = ?", append(args, f.Height)
	}
	if f.Signer != "" {
		where, args = where+" AND t.signer = ?", append(args, f.Signer)
	}
	order := "t.height DESC, t.idx DESC"
	if f.Height > 0 {
		order = "t.idx"
	}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM txs t WHERE `+where,
		`SELECT `+txCols+` FROM txs t JOIN blocks b ON b.height = t.height WHERE `+where+` ORDER BY `+order, args,
		func(r *sql.Rows) error {
			t, err := scanTx(r)
			out.Items = append(out.Items, t)
			return err
		})
	return out, err
}

// Tx reads a transaction by hash (upper- or lower-case hex).
func (db *DB) Tx(ctx context.Context, hash string) (Tx, error) {
	t, err := scanTx(db.sql.QueryRowContext(ctx, `SELECT `+txCols+` FROM txs t JOIN blocks b ON b.height = t.height
		WHERE t.hash = ? ORDER BY t.height LIMIT 1`, strings.ToUpper(hash)))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("transaction %s: %w", hash, ErrNotFound)
	}
	return t, err
}

func scanEvent(r *sql.Rows) (Event, error) {
	var e Event
	var attrs string
	if err := r.Scan(&e.ID, &e.Height, &e.TxHash, &e.Type, &attrs); err != nil {
		return e, err
	}
	return e, json.Unmarshal([]byte(attrs), &e.Attrs)
}

// EventFilter selects events: those of a block, of a transaction, or naming an object (Kind "account",
// "provider" (same as account), "order", "bid" or "lease", with Ref its address or id).
type EventFilter struct {
	Height int64
	TxHash string
	Kind   string
	Ref    string
	Type   string // only this type
}

// Events lists events, newest first (a block's or a transaction's in order).
func (db *DB) Events(ctx context.Context, f EventFilter, p Page) (List[Event], error) {
	p = p.clamp()
	out := List[Event]{Items: []Event{}, Offset: p.Offset, Limit: p.Limit}
	from, where, args, order := "events e", "1 = 1", []any{}, "e.id DESC"
	if f.Kind == "provider" {
		f.Kind = "account"
	}
	if f.Kind != "" {
		from = "refs r JOIN events e ON e.id = r.event_id"
		where, args = "r.kind = ? AND r.ref = ?", append(args, f.Kind, f.Ref)
	}
	if f.Height > 0 {
		where, args, order = where+" AND e.height = ?", append(args, f.Height), "e.id"
	}
	if f.TxHash != "" {
		where, args, order = where+" AND e.tx_hash = ?", append(args, strings.ToUpper(f.TxHash)), "e.id"
	}
	if f.Type != "" {
		where, args = where+" AND e.type = ?", append(args, f.Type)
	}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM `+from+` WHERE `+where,
		`SELECT e.id, e.height, e.tx_hash, e.type, e.attrs FROM `+from+` WHERE `+where+` ORDER BY `+order, args,
		func(r *sql.Rows) error {
			e, err := scanEvent(r)
			out.Items = append(out.Items, e)
			return err
		})
	return out, err
}

const providerCols = `address, status, stake, unbonding, required_stake, region, zone, host_uri, gpu_models, gpu_count,
	cpu_milli, memory_mib, docker, verified, completed, failed, reputation_ppm, registered_height, updated_height,
	earned, slashed, leases, last_price, epochs_up, epochs_down, uptime_ppm, jailed_until_ms, verified_class, verified_ops`

func scanProvider(s interface{ Scan(...any) error }) (Provider, error) {
	var p Provider
	err := s.Scan(&p.Address, &p.Status, &p.Stake, &p.Unbonding, &p.RequiredStake, &p.Region, &p.Zone, &p.HostURI,
		&p.GPUModels, &p.GPUCount, &p.CPUMilli, &p.MemoryMiB, &p.Docker, &p.Verified, &p.Completed, &p.Failed,
		&p.ReputationPPM, &p.RegisteredHeight, &p.UpdatedHeight, &p.Earned, &p.Slashed, &p.Leases, &p.LastGPUPrice,
		&p.EpochsUp, &p.EpochsDown, &p.UptimePPM, &p.JailedUntilMs, &p.VerifiedClass, &p.VerifiedOps)
	return p, err
}

// ProviderSorts are the columns the providers list sorts by.
var ProviderSorts = []string{"earned", "stake", "gpus", "price", "reputation", "uptime", "leases", "registered", "slashed"}

var providerSortCol = map[string]string{
	"earned": "earned", "stake": "stake", "gpus": "gpu_count", "price": "last_price", "reputation": "reputation_ppm",
	"leases": "leases", "registered": "registered_height", "slashed": "slashed", "uptime": "uptime_ppm",
}

// ProviderFilter selects and orders providers. Zero values select everything; Sort defaults to "earned".
type ProviderFilter struct {
	Model    string `json:"model,omitempty"`    // declares this GPU model
	Region   string `json:"region,omitempty"`   // in this region
	Status   string `json:"status,omitempty"`   // "active" or "jailed"
	Verified string `json:"verified,omitempty"` // "yes" or "no"
	Sort     string `json:"sort,omitempty"`     // one of ProviderSorts
	Asc      bool   `json:"asc,omitempty"`      // ascending (default descending)
}

// Validate names the first bad field.
func (f ProviderFilter) Validate() error {
	if f.Sort != "" && providerSortCol[f.Sort] == "" {
		return fmt.Errorf("sort %q: use one of %s", f.Sort, strings.Join(ProviderSorts, ", "))
	}
	if f.Status != "" && f.Status != "active" && f.Status != "jailed" {
		return fmt.Errorf("status %q: use active or jailed", f.Status)
	}
	if f.Verified != "" && f.Verified != "yes" && f.Verified != "no" {
		return fmt.Errorf("verified %q: use yes or no", f.Verified)
	}
	return nil
}

// Providers lists providers.
func (db *DB) Providers(ctx context.Context, f ProviderFilter, p Page) (List[Provider], error) {
	p = p.clamp()
	out := List[Provider]{Items: []Provider{}, Offset: p.Offset, Limit: p.Limit}
	if err := f.Validate(); err != nil {
		return out, err
	}
	where, args := "1 = 1", []any{}
	if f.Model != "" {
		where, args = where+" AND address IN (SELECT address FROM provider_gpus WHERE model = ?)", append(args, f.Model)
	}
	if f.Region != "" {
		where, args = where+" AND region = ?", append(args, f.Region)
	}
	if f.Status != "" {
		where, args = where+" AND status = ?", append(args, f.Status)
	}
	if f.Verified != "" {
		where, args = where+" AND verified = ?", append(args, f.Verified == "yes")
	}
	col := providerSortCol[f.Sort]
	if col == "" {
		col = "earned"
	}
	dir := "DESC"
	if f.Asc {
		dir = "ASC"
	}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM providers WHERE `+where,
		`SELECT `+providerCols+` FROM providers WHERE `+where+` ORDER BY `+col+` `+dir+`, address `+dir, args,
		func(r *sql.Rows) error {
			pr, err := scanProvider(r)
			out.Items = append(out.Items, pr)
			return err
		})
	return out, err
}

// Provider reads one provider with its GPU groups.
func (db *DB) Provider(ctx context.Context, addr string) (Provider, error) {
	p, err := scanProvider(db.sql.QueryRowContext(ctx, `SELECT `+providerCols+` FROM providers WHERE address = ?`, addr))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("provider %s: %w", addr, ErrNotFound)
	}
	if err != nil {
		return p, err
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT model, vram_mib, count FROM provider_gpus WHERE address = ? ORDER BY model, vram_mib`, addr)
	if err != nil {
		return p, err
	}
	defer rows.Close()
	for rows.Next() {
		var g GPUGroup
		if err := rows.Scan(&g.Model, &g.VRAMMiB, &g.Count); err != nil {
			return p, err
		}
		p.GPUs = append(p.GPUs, g)
	}
	return p, rows.Err()
}

const orderCols = `id, tenant, state, gpu_count, gpu_models, cpu_milli, max_price, deposit, duration_sec, created_height, lease_id, json`

func scanOrder(s interface{ Scan(...any) error }) (Order, error) {
	var o Order
	var j string
	err := s.Scan(&o.ID, &o.Tenant, &o.State, &o.GPUCount, &o.GPUModels, &o.CPUMilli, &o.MaxPrice, &o.Deposit, &o.DurationSec,
		&o.CreatedHeight, &o.LeaseID, &j)
	o.Ledger = json.RawMessage(j)
	return o, err
}

// ObjectFilter selects orders or leases.
type ObjectFilter struct {
	State    string `json:"state,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	Provider string `json:"provider,omitempty"` // leases only
}

// OrderStates and LeaseStates are the states a filter may name.
var (
	OrderStates = []string{"open", "leased", "cancelled", "expired"}
	LeaseStates = []string{"pending", "active", "closed", "completed"}
)

func (f ObjectFilter) where(states []string) (string, []any, error) {
	where, args := "1 = 1", []any{}
	if f.State != "" {
		if !slices.Contains(states, f.State) {
			return "", nil, fmt.Errorf("state %q: use one of %s", f.State, strings.Join(states, ", "))
		}
		where, args = where+" AND state = ?", append(args, f.State)
	}
	if f.Tenant != "" {
		where, args = where+" AND tenant = ?", append(args, f.Tenant)
	}
	if f.Provider != "" {
		where, args = where+" AND provider = ?", append(args, f.Provider)
	}
	return where, args, nil
}

// Orders lists orders, newest first.
func (db *DB) Orders(ctx context.Context, f ObjectFilter, p Page) (List[Order], error) {
	p = p.clamp()
	out := List[Order]{Items: []Order{}, Offset: p.Offset, Limit: p.Limit}
	if f.Provider != "" {
		return out, errors.New("provider: orders are not filtered by provider; filter leases or bids instead")
	}
	where, args, err := f.where(OrderStates)
	if err != nil {
		return out, err
	}
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM orders WHERE `+where,
		`SELECT `+orderCols+` FROM orders WHERE `+where+` ORDER BY id DESC`, args,
		func(r *sql.Rows) error {
			o, err := scanOrder(r)
			out.Items = append(out.Items, o)
			return err
		})
	return out, err
}

// Order reads one order.
func (db *DB) Order(ctx context.Context, id uint64) (Order, error) {
	o, err := scanOrder(db.sql.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("order %d: %w", id, ErrNotFound)
	}
	return o, err
}

// Bids lists the bids on an order (orderID > 0) or of a provider, newest first.
func (db *DB) Bids(ctx context.Context, orderID uint64, provider string, p Page) (List[Bid], error) {
	p = p.clamp()
	out := List[Bid]{Items: []Bid{}, Offset: p.Offset, Limit: p.Limit}
	where, args := "1 = 1", []any{}
	if orderID > 0 {
		where, args = where+" AND order_id = ?", append(args, orderID)
	}
	if provider != "" {
		where, args = where+" AND provider = ?", append(args, provider)
	}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM bids WHERE `+where,
		`SELECT id, order_id, provider, price, state, created_height FROM bids WHERE `+where+` ORDER BY id DESC`, args,
		func(r *sql.Rows) error {
			var b Bid
			err := r.Scan(&b.ID, &b.OrderID, &b.Provider, &b.Price, &b.State, &b.CreatedHeight)
			out.Items = append(out.Items, b)
			return err
		})
	return out, err
}

const leaseCols = `id, order_id, provider, tenant, state, price, gpu_count, gpu_model, gpu_price, cpu_milli, cpu_price,
	created_height, created_ms, started_ms, ended_ms, deposit, paid, refunded, exit_code, close_reason, closed_by, vault_root, json`

func scanLease(s interface{ Scan(...any) error }) (Lease, error) {
	var l Lease
	var j string
	err := s.Scan(&l.ID, &l.OrderID, &l.Provider, &l.Tenant, &l.State, &l.Price, &l.GPUCount, &l.GPUModel, &l.GPUPrice,
		&l.CPUMilli, &l.CPUPrice, &l.CreatedHeight, &l.CreatedMs, &l.StartedMs, &l.EndedMs, &l.Deposit, &l.Paid, &l.Refunded,
		&l.ExitCode, &l.CloseReason, &l.ClosedBy, &l.VaultRoot, &j)
	l.Ledger = json.RawMessage(j)
	l.CostSoFar = l.Paid
	return l, err
}

// costAt sets what each active lease has earned by time ms (the last indexed block's), with the ledger's own
// rule: billed from its start at its price, never past its end or its deposit.
func costAt(leases []Lease, ms int64) {
	for i := range leases {
		l := &leases[i]
		if l.State != "active" {
			continue
		}
		var lv api.LeaseView
		if json.Unmarshal(l.Ledger, &lv) == nil {
			l.CostSoFar = max(lv.Lease.EarnedAt(uint64(max(ms, 0))), l.Paid)
		}
	}
}

func (db *DB) lastBlockMs(ctx context.Context) int64 {
	var ms int64
	_ = db.sql.QueryRowContext(ctx, `SELECT time_ms FROM blocks ORDER BY height DESC LIMIT 1`).Scan(&ms)
	return ms
}

// Leases lists leases, newest first.
func (db *DB) Leases(ctx context.Context, f ObjectFilter, p Page) (List[Lease], error) {
	p = p.clamp()
	out := List[Lease]{Items: []Lease{}, Offset: p.Offset, Limit: p.Limit}
	where, args, err := f.where(LeaseStates)
	if err != nil {
		return out, err
	}
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM leases WHERE `+where,
		`SELECT `+leaseCols+` FROM leases WHERE `+where+` ORDER BY id DESC`, args,
		func(r *sql.Rows) error {
			l, err := scanLease(r)
			out.Items = append(out.Items, l)
			return err
		})
	costAt(out.Items, db.lastBlockMs(ctx))
	return out, err
}

// LeasesWithVaultRoot lists the completed leases whose receipt carries root as their outputs' Vault root, oldest
// first: the jobs that produced the object (more than one when the same outputs came out of several).
func (db *DB) LeasesWithVaultRoot(ctx context.Context, root string, p Page) (List[Lease], error) {
	p = p.clamp()
	out := List[Lease]{Items: []Lease{}, Offset: p.Offset, Limit: p.Limit}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM leases WHERE vault_root = ?`,
		`SELECT `+leaseCols+` FROM leases WHERE vault_root = ? ORDER BY id`, []any{root},
		func(r *sql.Rows) error {
			l, err := scanLease(r)
			out.Items = append(out.Items, l)
			return err
		})
	return out, err
}

// Lease reads one lease.
func (db *DB) Lease(ctx context.Context, id uint64) (Lease, error) {
	l, err := scanLease(db.sql.QueryRowContext(ctx, `SELECT `+leaseCols+` FROM leases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("lease %d: %w", id, ErrNotFound)
	}
	one := []Lease{l}
	costAt(one, db.lastBlockMs(ctx))
	return one[0], err
}

// Payments lists the settlements of a provider or of a lease, newest first.
func (db *DB) Payments(ctx context.Context, provider string, leaseID uint64, p Page) (List[Payment], error) {
	p = p.clamp()
	out := List[Payment]{Items: []Payment{}, Offset: p.Offset, Limit: p.Limit}
	where, args := "1 = 1", []any{}
	if provider != "" {
		where, args = where+" AND provider = ?", append(args, provider)
	}
	if leaseID > 0 {
		where, args = where+" AND lease_id = ?", append(args, leaseID)
	}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM payments WHERE `+where,
		`SELECT height, time_ms, lease_id, amount, take, burned, event_id FROM payments WHERE `+where+` ORDER BY event_id DESC`, args,
		func(r *sql.Rows) error {
			var pm Payment
			err := r.Scan(&pm.Height, &pm.TimeMs, &pm.LeaseID, &pm.Amount, &pm.Take, &pm.Burned, &pm.EventID)
			out.Items = append(out.Items, pm)
			return err
		})
	return out, err
}

// accountCols reads an account with the roles the index knows (a and its subqueries use the indexes on
// providers' addresses and orders' tenants).
const accountCols = `a.address, a.first_height, a.last_height, a.txs,
	EXISTS (SELECT 1 FROM providers p WHERE p.address = a.address), EXISTS (SELECT 1 FROM orders o WHERE o.tenant = a.address)`

func scanAccount(s interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var provider, tenant bool
	err := s.Scan(&a.Address, &a.FirstHeight, &a.LastHeight, &a.Txs, &provider, &tenant)
	a.Roles = []string{}
	if provider {
		a.Roles = append(a.Roles, "provider")
	}
	if tenant {
		a.Roles = append(a.Roles, "tenant")
	}
	return a, err
}

// Accounts lists the addresses seen, most recently active first.
func (db *DB) Accounts(ctx context.Context, p Page) (List[Account], error) {
	p = p.clamp()
	out := List[Account]{Items: []Account{}, Offset: p.Offset, Limit: p.Limit}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM accounts`,
		`SELECT `+accountCols+` FROM accounts a ORDER BY a.last_height DESC, a.address`, nil,
		func(r *sql.Rows) error {
			a, err := scanAccount(r)
			out.Items = append(out.Items, a)
			return err
		})
	return out, err
}

// Account reads what the index knows of an address.
func (db *DB) Account(ctx context.Context, addr string) (Account, error) {
	a, err := scanAccount(db.sql.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts a WHERE a.address = ?`, addr))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("account %s: %w", addr, ErrNotFound)
	}
	return a, err
}

// LeaseOutcomes counts how a provider's leases ended, by what the explorer can tell from each lease: the
// ledger's own record (Provider.Completed and Failed) counts neither a job's exit code nor a lease its provider
// closed before starting it, which a tenant still sees as a lease that failed.
type LeaseOutcomes struct {
	Live              int `json:"live"`                // pending or active
	Completed         int `json:"completed"`           // exit code 0, or a replicated run's result not revealed yet
	ExitNonZero       int `json:"exit_non_zero"`       // with a receipt, the job exited non-zero
	NotStartedInTime  int `json:"not_started_in_time"` // closed by the ledger at the start deadline
	ClosedBeforeStart int `json:"closed_before_start"` // closed by the provider before it started
	ClosedByProvider  int `json:"closed_by_provider"`  // closed by the provider while it ran
	ClosedByTenant    int `json:"closed_by_tenant"`
	// ClosedByLedger is every other close by the ledger: the lease's duration or deposit ran out, its provider was
	// found down, or a partner of its cluster failed.
	ClosedByLedger int `json:"closed_by_ledger"`
}

// FailedToStart is the leases that never ran: not started in time, or closed by the provider before starting.
func (o LeaseOutcomes) FailedToStart() int { return o.NotStartedInTime + o.ClosedBeforeStart }

// notStartedReason is the reason the ledger closes a lease with at its start deadline (ledger/settle/escrow.go,
// ExpireUnstartedLeases). The ledger records no code for why it closed a lease, so its fixed text is the mark.
const notStartedReason = "not started in time"

// ProviderLeaseOutcomes counts a provider's leases by how they ended.
func (db *DB) ProviderLeaseOutcomes(ctx context.Context, provider string) (LeaseOutcomes, error) {
	var o LeaseOutcomes
	err := db.sql.QueryRowContext(ctx, `SELECT
			coalesce(sum(state IN ('pending', 'active')), 0),
			coalesce(sum(state = 'completed' AND coalesce(exit_code, 0) = 0), 0),
			coalesce(sum(state = 'completed' AND coalesce(exit_code, 0) != 0), 0),
			coalesce(sum(state = 'closed' AND closed_by = '' AND started_ms = 0 AND close_reason = ?1), 0),
			coalesce(sum(state = 'closed' AND closed_by = provider AND closed_by != tenant AND started_ms = 0), 0),
			coalesce(sum(state = 'closed' AND closed_by = provider AND closed_by != tenant AND started_ms > 0), 0),
			coalesce(sum(state = 'closed' AND closed_by = tenant), 0),
			coalesce(sum(state = 'closed' AND closed_by = '' AND NOT (started_ms = 0 AND close_reason = ?1)), 0)
		FROM leases WHERE provider = ?2`, notStartedReason, provider).
		Scan(&o.Live, &o.Completed, &o.ExitNonZero, &o.NotStartedInTime, &o.ClosedBeforeStart, &o.ClosedByProvider,
			&o.ClosedByTenant, &o.ClosedByLedger)
	return o, err
}
