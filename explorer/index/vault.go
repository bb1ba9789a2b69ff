package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault/layout"
)

// Spare Vault in the index. An object is indexed from its vault.stored event, its layout (coding, shard size,
// stripes) from the StoreObject manifest its transaction carries — the bytes the ledger itself checked, still
// there when the ledger has removed an object it could not place; its shards and their providers from
// vault.shard_placed; how its placement ended from vault.placed (its escrow now, the refund) or vault.unplaced
// (the ledger's reason, the refund). Storage offers come from storage.offered, and each placed shard adds its
// bytes to its provider's offer, as the ledger does. After every block that changed any of it, the network's
// totals are written to vault_stats: the series the vault page charts. Proofs of storage, payouts and repairs
// are not on the ledger yet (docs/vault.md): nothing is indexed for them.

const vaultSchema = `
CREATE TABLE vault_objects (
	id INTEGER PRIMARY KEY, owner TEXT NOT NULL, root TEXT NOT NULL, size INTEGER NOT NULL, k INTEGER NOT NULL,
	m INTEGER NOT NULL, shard_size INTEGER NOT NULL, stripes INTEGER NOT NULL, shards INTEGER NOT NULL,
	months INTEGER NOT NULL, max_price INTEGER NOT NULL, deposit INTEGER NOT NULL, escrow INTEGER NOT NULL,
	refund INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, stored_height INTEGER NOT NULL,
	stored_ms INTEGER NOT NULL, place_at INTEGER NOT NULL, ended_height INTEGER NOT NULL, tx_hash TEXT NOT NULL);
CREATE INDEX vault_objects_owner ON vault_objects (owner, id);
CREATE INDEX vault_objects_root ON vault_objects (root, id);
CREATE INDEX vault_objects_state ON vault_objects (state, id);
CREATE TABLE vault_shards (
	object_id INTEGER NOT NULL, stripe INTEGER NOT NULL, idx INTEGER NOT NULL, root TEXT NOT NULL,
	provider TEXT NOT NULL, price INTEGER NOT NULL, size INTEGER NOT NULL, height INTEGER NOT NULL,
	PRIMARY KEY (object_id, stripe, idx)) WITHOUT ROWID;
CREATE INDEX vault_shards_provider ON vault_shards (provider, height); -- the key's columns follow: newest first
CREATE INDEX vault_shards_height ON vault_shards (height);
CREATE INDEX vault_shards_root ON vault_shards (root);
CREATE TABLE storage_offers (
	provider TEXT PRIMARY KEY, capacity INTEGER NOT NULL, used INTEGER NOT NULL, price INTEGER NOT NULL,
	height INTEGER NOT NULL, shards INTEGER NOT NULL DEFAULT 0);
CREATE INDEX storage_offers_price ON storage_offers (price, provider);
CREATE TABLE vault_stats (
	height INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, offers INTEGER NOT NULL, capacity INTEGER NOT NULL,
	stored INTEGER NOT NULL, shards INTEGER NOT NULL, objects INTEGER NOT NULL, placing INTEGER NOT NULL,
	unplaced INTEGER NOT NULL, term_escrow INTEGER NOT NULL, endowments INTEGER NOT NULL);
`

// The states of an indexed object: the ledger's placing and placed, unplaced for one the ledger removed because
// the offers could not take its shards at its draw, and ended for a term deal whose term passed (its providers
// paid, its room released).
const (
	VaultPlacing  = "placing"
	VaultPlaced   = "placed"
	VaultUnplaced = "unplaced"
	VaultEnded    = "ended"
)

// VaultStates are the states a filter may name.
var VaultStates = []string{VaultPlacing, VaultPlaced, VaultUnplaced, VaultEnded}

// VaultDeals are the deals a filter may name: a term (months of storage at most a price) or permanent (an
// endowment).
var VaultDeals = []string{"term", "permanent"}

// MaxReasonBytes bounds the text of a reason the index keeps (the ledger's own are a line).
const MaxReasonBytes = 500

var vaultEventTypes = map[string]bool{api.EventStorageOffered: true, api.EventVaultStored: true,
	api.EventVaultShardPlaced: true, api.EventVaultPlaced: true, api.EventVaultUnplaced: true, api.EventVaultEnded: true}

// vaultTotals are the network's storage totals, a row of vault_stats.
type vaultTotals struct {
	offers, capacity, stored, shards, objects, placing, unplaced, termEscrow, endowments int64
}

func (t *vaultTotals) dest() []any {
	return []any{&t.offers, &t.capacity, &t.stored, &t.shards, &t.objects, &t.placing, &t.unplaced, &t.termEscrow, &t.endowments}
}

// escrow adds d to the escrow of a term deal (months > 0) or to the endowments.
func (t *vaultTotals) escrow(months uint64, d int64) {
	if months > 0 {
		t.termEscrow += d
	} else {
		t.endowments += d
	}
}

// storeManifests lists, by transaction hash, the manifests of the StoreObject messages of a block's successful
// transactions, in order: the i-th vault.stored event of a transaction is its i-th StoreObject.
func storeManifests(manifests map[string][][]byte, hash string, t *tx.Tx) {
	for _, m := range t.Body.Msgs {
		if so, ok := m.(*tx.StoreObject); ok {
			manifests[hash] = append(manifests[hash], so.Manifest)
		}
	}
}

// applyVault writes a block's Vault and storage events (in the order the ledger emitted them) and the totals
// after them. An event whose attributes do not read is kept as an event, and said, but changes nothing here.
func (ix *Indexer) applyVault(ctx context.Context, w *writer, b client.Block, evs []client.Event, manifests map[string][][]byte) error {
	if w.err != nil {
		return w.err
	}
	var t vaultTotals
	err := w.tx.QueryRowContext(ctx, `SELECT offers, capacity, stored, shards, objects, placing, unplaced, term_escrow, endowments
		FROM vault_stats ORDER BY height DESC LIMIT 1`).Scan(t.dest()...)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	for _, e := range evs {
		var err error
		switch e.Type {
		case api.EventStorageOffered:
			err = w.vaultOffered(e, b, &t)
		case api.EventVaultStored:
			err = ix.vaultStored(ctx, w, e, b, manifests, &t)
		case api.EventVaultShardPlaced:
			err = w.vaultShardPlaced(e, b, &t)
		case api.EventVaultPlaced:
			err = w.vaultPlaced(e, b, &t)
		case api.EventVaultUnplaced:
			err = w.vaultUnplaced(e, b, &t)
		case api.EventVaultEnded:
			err = w.vaultEnded(e, b, &t)
		}
		if errors.Is(err, errNode) {
			return err
		}
		if w.err != nil {
			return w.err
		}
		if err != nil {
			ix.log.Warn("ledger event not indexed as Vault state", "height", b.Height, "type", e.Type, "attrs", e.Attrs, "err", err)
		}
	}
	w.exec(`INSERT INTO vault_stats (height, time_ms, offers, capacity, stored, shards, objects, placing, unplaced, term_escrow, endowments)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, b.Height, b.Time.UnixMilli(), t.offers, t.capacity, t.stored, t.shards,
		t.objects, t.placing, t.unplaced, t.termEscrow, t.endowments)
	return w.err
}

// execN runs a statement and says how many rows it changed.
func (w *writer) execN(q string, args ...any) int64 {
	if w.err != nil {
		return 0
	}
	s := w.stmt(q)
	if s == nil {
		return 0
	}
	r, err := s.ExecContext(w.ctx, args...)
	if err != nil {
		w.err = fmt.Errorf("%s: %w", strings.Fields(q)[0], err)
		return 0
	}
	n, _ := r.RowsAffected()
	return n
}

// row reads one row in the block's transaction: false when there is none.
func (w *writer) row(q string, args []any, dest ...any) bool {
	if w.err != nil {
		return false
	}
	err := w.tx.QueryRowContext(w.ctx, q, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false
	}
	if err != nil {
		w.err = err
		return false
	}
	return true
}

func (w *writer) vaultOffered(e client.Event, b client.Block, t *vaultTotals) error {
	ev, err := api.ParseStorageOffered(e.Attrs)
	if err != nil {
		return err
	}
	p := ev.Provider.String()
	var oldCap, oldUsed int64
	w.row(`SELECT capacity, used FROM storage_offers WHERE provider = ?`, []any{p}, &oldCap, &oldUsed)
	if ev.CapacityBytes == 0 && ev.UsedBytes == 0 { // withdrawn, holding nothing: the ledger keeps no record either
		w.exec(`DELETE FROM storage_offers WHERE provider = ?`, p)
	} else {
		w.exec(`INSERT INTO storage_offers (provider, capacity, used, price, height) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (provider) DO UPDATE SET capacity = excluded.capacity, used = excluded.used, price = excluded.price,
			height = excluded.height`, p, ev.CapacityBytes, ev.UsedBytes, ev.PricePerGiBMonth, b.Height)
	}
	t.capacity += int64(ev.CapacityBytes) - oldCap
	t.offers += b2i(ev.CapacityBytes > 0) - b2i(oldCap > 0)
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (ix *Indexer) vaultStored(ctx context.Context, w *writer, e client.Event, b client.Block, manifests map[string][][]byte, t *vaultTotals) error {
	ev, err := api.ParseVaultStoredDeal(e.Attrs)
	if err != nil {
		return err
	}
	var l layout.Layout
	if q := manifests[e.TxHash]; len(q) > 0 {
		manifests[e.TxHash] = q[1:]
		o, err := layout.DecodeObject(q[0])
		switch {
		case err != nil:
			ix.log.Warn("a stored object's manifest does not decode", "height", b.Height, "object", ev.ObjectID, "err", err)
		case o.Root != ev.Root || o.Size != ev.Size || uint64(o.Layout.Shards()) != ev.Shards:
			ix.log.Warn("a stored object's manifest is not the one its event describes", "height", b.Height, "object", ev.ObjectID)
		default:
			l = o.Layout
		}
	}
	if l.ShardSize == 0 && ix.c != nil {
		// No StoreObject in its transaction: ask the ledger (an object it removed before this read keeps an
		// unknown layout).
		o, err := ix.c.VaultObject(ctx, ev.ObjectID)
		switch {
		case err == nil && o.Root == ev.Root && o.Size == ev.Size && uint64(o.Shards()) == ev.Shards:
			l = layout.Layout{Coding: layout.Coding{K: o.K, M: o.M, ShardSize: o.ShardSize}, Size: o.Size, Stripes: o.Stripes}
		case err == nil, errors.Is(err, client.ErrNotFound):
		default:
			return fmt.Errorf("%w: read vault object %d: %v", errNode, ev.ObjectID, err)
		}
	}
	n := w.execN(`INSERT INTO vault_objects (id, owner, root, size, k, m, shard_size, stripes, shards, months, max_price,
			deposit, escrow, refund, state, reason, stored_height, stored_ms, place_at, ended_height, tx_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '', ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING`,
		ev.ObjectID, ev.Owner.String(), ev.Root.String(), ev.Size, l.K, l.M, l.ShardSize, l.Stripes, ev.Shards, ev.Months,
		ev.MaxPricePerGiBMonth, ev.Escrow, ev.Escrow, VaultPlacing, b.Height, b.Time.UnixMilli(), ev.PlaceAt, e.TxHash)
	if n == 0 {
		return fmt.Errorf("object %d is stored already", ev.ObjectID)
	}
	t.placing++
	t.escrow(ev.Months, int64(ev.Escrow))
	return nil
}

func (w *writer) vaultShardPlaced(e client.Event, b client.Block, t *vaultTotals) error {
	ev, err := api.ParseVaultShardPlaced(e.Attrs)
	if err != nil {
		return err
	}
	var size int64
	if !w.row(`SELECT shard_size FROM vault_objects WHERE id = ? AND state = ?`, []any{ev.ObjectID, VaultPlacing}, &size) {
		return fmt.Errorf("object %d is not being placed", ev.ObjectID)
	}
	p := ev.Provider.String()
	n := w.execN(`INSERT INTO vault_shards (object_id, stripe, idx, root, provider, price, size, height) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, ev.ObjectID, ev.Stripe, ev.Index, ev.Root.String(), p, ev.PricePerGiBMonth, size, b.Height)
	if n == 0 {
		return fmt.Errorf("shard %d of stripe %d of object %d is placed already", ev.Index, ev.Stripe, ev.ObjectID)
	}
	w.exec(`UPDATE storage_offers SET used = used + ?, shards = shards + 1 WHERE provider = ?`, size, p)
	t.stored += size
	t.shards++
	return nil
}

func (w *writer) vaultPlaced(e client.Event, b client.Block, t *vaultTotals) error {
	ev, err := api.ParseVaultPlaced(e.Attrs)
	if err != nil {
		return err
	}
	var escrow, months uint64
	if !w.row(`SELECT escrow, months FROM vault_objects WHERE id = ? AND state = ?`, []any{ev.ObjectID, VaultPlacing}, &escrow, &months) {
		return fmt.Errorf("object %d is not being placed", ev.ObjectID)
	}
	w.exec(`UPDATE vault_objects SET state = ?, escrow = ?, refund = ?, ended_height = ? WHERE id = ?`,
		VaultPlaced, ev.Cost, ev.Refund, b.Height, ev.ObjectID)
	t.escrow(months, int64(ev.Cost)-int64(escrow))
	t.placing--
	t.objects++
	return nil
}

func (w *writer) vaultUnplaced(e client.Event, b client.Block, t *vaultTotals) error {
	ev, err := api.ParseVaultUnplaced(e.Attrs)
	if err != nil {
		return err
	}
	var escrow, months uint64
	if !w.row(`SELECT escrow, months FROM vault_objects WHERE id = ? AND state = ?`, []any{ev.ObjectID, VaultPlacing}, &escrow, &months) {
		return fmt.Errorf("object %d is not being placed", ev.ObjectID)
	}
	w.exec(`UPDATE vault_objects SET state = ?, escrow = 0, refund = ?, reason = ?, ended_height = ? WHERE id = ?`,
		VaultUnplaced, ev.Refund, clip(ev.Reason, MaxReasonBytes), b.Height, ev.ObjectID)
	t.escrow(months, -int64(escrow))
	t.placing--
	t.unplaced++
	return nil
}

// vaultEnded closes a term deal: its shards' room is released from their providers' offers, its escrow (paid to
// them) leaves the totals. The shards stay indexed, as its history.
func (w *writer) vaultEnded(e client.Event, b client.Block, t *vaultTotals) error {
	ev, err := api.ParseVaultEnded(e.Attrs)
	if err != nil {
		return err
	}
	var escrow, months, size, shards uint64
	if !w.row(`SELECT escrow, months, shard_size, shards FROM vault_objects WHERE id = ? AND state = ?`, []any{ev.ObjectID, VaultPlaced},
		&escrow, &months, &size, &shards) {
		return fmt.Errorf("object %d is not placed", ev.ObjectID)
	}
	w.exec(`UPDATE storage_offers SET used = max(used - ? * (SELECT count(*) FROM vault_shards s WHERE s.object_id = ? AND s.provider = storage_offers.provider), 0),
		shards = max(shards - (SELECT count(*) FROM vault_shards s WHERE s.object_id = ? AND s.provider = storage_offers.provider), 0)
		WHERE provider IN (SELECT provider FROM vault_shards WHERE object_id = ?)`, size, ev.ObjectID, ev.ObjectID, ev.ObjectID)
	w.exec(`UPDATE vault_objects SET state = ?, escrow = 0, ended_height = ? WHERE id = ?`, VaultEnded, b.Height, ev.ObjectID)
	t.escrow(months, -int64(escrow))
	t.stored -= int64(size * shards)
	t.shards -= int64(shards)
	t.objects--
	return nil
}

// clip cuts s to at most n bytes of valid UTF-8, marking a cut with "…".
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Queries.

// VaultObject is an object stored in Spare Vault, as indexed.
type VaultObject struct {
	ID    uint64 `json:"id"`
	Owner string `json:"owner"`
	Root  string `json:"root"` // what its owner claims is the BLAKE3 of its bytes; a root may name several objects
	Size  uint64 `json:"size"`
	// K data and M parity shards a stripe of ShardSize bytes, Stripes stripes: 0 when the explorer could not
	// read its layout (the ledger removed it before the explorer read it, without its manifest in the block).
	K         int    `json:"k"`
	M         int    `json:"m"`
	ShardSize uint64 `json:"shard_size"`
	Stripes   int    `json:"stripes"`
	Shards    uint64 `json:"shards"` // parity included
	// Months is a term deal's length; 0 is permanent, its escrow an endowment.
	Months   uint64 `json:"months"`
	MaxPrice uint64 `json:"max_price_per_gib_month"`
	Deposit  uint64 `json:"deposit"` // escrowed when it was stored: a term deal at its maximum price
	// Escrow is what its deal holds for its providers now (no payout is on the ledger yet): once placed, the
	// cost at the drawn prices; 0 once unplaced.
	Escrow       uint64 `json:"escrow"`
	Refund       uint64 `json:"refund"`           // returned to the owner when its providers were drawn
	State        string `json:"state"`            // placing, placed or unplaced
	Reason       string `json:"reason,omitempty"` // why it was not placed, in the ledger's words
	StoredHeight int64  `json:"stored_height"`
	StoredMs     int64  `json:"stored_ms"`
	PlaceAt      int64  `json:"place_at"`               // the block whose end draws its providers
	EndedHeight  int64  `json:"ended_height,omitempty"` // the block that placed it, or gave up
	TxHash       string `json:"tx_hash,omitempty"`
}

// Permanent is a deal without a term: an endowment.
func (o VaultObject) Permanent() bool { return o.Months == 0 }

// StoredBytes is what its providers hold in all (0 with an unknown layout).
func (o VaultObject) StoredBytes() uint64 { return o.Shards * o.ShardSize }

const vaultObjectCols = `id, owner, root, size, k, m, shard_size, stripes, shards, months, max_price, deposit, escrow, refund,
	state, reason, stored_height, stored_ms, place_at, ended_height, tx_hash`

func scanVaultObject(s interface{ Scan(...any) error }) (VaultObject, error) {
	var o VaultObject
	err := s.Scan(&o.ID, &o.Owner, &o.Root, &o.Size, &o.K, &o.M, &o.ShardSize, &o.Stripes, &o.Shards, &o.Months, &o.MaxPrice,
		&o.Deposit, &o.Escrow, &o.Refund, &o.State, &o.Reason, &o.StoredHeight, &o.StoredMs, &o.PlaceAt, &o.EndedHeight, &o.TxHash)
	return o, err
}

// VaultFilter selects objects.
type VaultFilter struct {
	Owner  string `json:"owner,omitempty"`
	Root   string `json:"root,omitempty"`  // lower-case hex
	State  string `json:"state,omitempty"` // one of VaultStates
	Deal   string `json:"deal,omitempty"`  // one of VaultDeals
	Oldest bool   `json:"oldest,omitempty"`
}

// Validate names the first bad field.
func (f VaultFilter) Validate() error {
	if f.State != "" && !slices.Contains(VaultStates, f.State) {
		return fmt.Errorf("state %q: use one of %s", f.State, strings.Join(VaultStates, ", "))
	}
	if f.Deal != "" && !slices.Contains(VaultDeals, f.Deal) {
		return fmt.Errorf("deal %q: use one of %s", f.Deal, strings.Join(VaultDeals, ", "))
	}
	return nil
}

// VaultObjects lists objects, newest first (oldest first with f.Oldest).
func (db *DB) VaultObjects(ctx context.Context, f VaultFilter, p Page) (List[VaultObject], error) {
	p = p.clamp()
	out := List[VaultObject]{Items: []VaultObject{}, Offset: p.Offset, Limit: p.Limit}
	if err := f.Validate(); err != nil {
		return out, err
	}
	where, args := "1 = 1", []any{}
	if f.Owner != "" {
		where, args = where+" AND owner = ?", append(args, f.Owner)
	}
	if f.Root != "" {
		where, args = where+" AND root = ?", append(args, f.Root)
	}
	if f.State != "" {
		where, args = where+" AND state = ?", append(args, f.State)
	}
	switch f.Deal {
	case "term":
		where += " AND months > 0"
	case "permanent":
		where += " AND months = 0"
	}
	order := "id DESC"
	if f.Oldest {
		order = "id"
	}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM vault_objects WHERE `+where,
		`SELECT `+vaultObjectCols+` FROM vault_objects WHERE `+where+` ORDER BY `+order, args,
		func(r *sql.Rows) error {
			o, err := scanVaultObject(r)
			out.Items = append(out.Items, o)
			return err
		})
	return out, err
}

// VaultObject reads one object.
func (db *DB) VaultObject(ctx context.Context, id uint64) (VaultObject, error) {
	o, err := scanVaultObject(db.sql.QueryRowContext(ctx, `SELECT `+vaultObjectCols+` FROM vault_objects WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("vault object %d: %w", id, ErrNotFound)
	}
	return o, err
}

// VaultShard is one placed shard: its place in its object, its root, and the provider that holds it.
type VaultShard struct {
	ObjectID         uint64 `json:"object_id"`
	Stripe           int    `json:"stripe"`
	Index            int    `json:"index"`
	Parity           bool   `json:"parity"` // a parity shard (index ≥ the object's K)
	Root             string `json:"root"`
	Provider         string `json:"provider"`
	Region           string `json:"region"` // its provider's, as last indexed
	PricePerGiBMonth uint64 `json:"price_per_gib_month"`
	Size             uint64 `json:"size"`
	Height           int64  `json:"height"` // placed at the end of this block
}

// VaultShardFilter selects shards: an object's (in order), or a provider's, those with a root, or all of them
// (newest first).
type VaultShardFilter struct {
	ObjectID uint64 `json:"object_id,omitempty"`
	Provider string `json:"provider,omitempty"`
	Root     string `json:"root,omitempty"`
}

// VaultShards lists placed shards.
func (db *DB) VaultShards(ctx context.Context, f VaultShardFilter, p Page) (List[VaultShard], error) {
	p = p.clamp()
	out := List[VaultShard]{Items: []VaultShard{}, Offset: p.Offset, Limit: p.Limit}
	where, args, order := "1 = 1", []any{}, "s.height DESC, s.object_id DESC, s.stripe DESC, s.idx DESC"
	if f.ObjectID > 0 {
		where, args, order = where+" AND s.object_id = ?", append(args, f.ObjectID), "s.stripe, s.idx"
	}
	if f.Provider != "" {
		where, args = where+" AND s.provider = ?", append(args, f.Provider)
	}
	if f.Root != "" {
		where, args = where+" AND s.root = ?", append(args, f.Root)
	}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM vault_shards s WHERE `+where,
		`SELECT s.object_id, s.stripe, s.idx, s.idx >= coalesce(o.k, 0) AND coalesce(o.k, 0) > 0, s.root, s.provider,
			coalesce(p.region, ''), s.price, s.size, s.height
		FROM vault_shards s LEFT JOIN vault_objects o ON o.id = s.object_id LEFT JOIN providers p ON p.address = s.provider
		WHERE `+where+` ORDER BY `+order, args,
		func(r *sql.Rows) error {
			var s VaultShard
			err := r.Scan(&s.ObjectID, &s.Stripe, &s.Index, &s.Parity, &s.Root, &s.Provider, &s.Region, &s.PricePerGiBMonth, &s.Size, &s.Height)
			out.Items = append(out.Items, s)
			return err
		})
	return out, err
}

// StorageOffer is a provider's offer of disk to Spare Vault, with what the index knows of the provider.
type StorageOffer struct {
	Provider         string `json:"provider"`
	CapacityBytes    uint64 `json:"capacity_bytes"`
	UsedBytes        uint64 `json:"used_bytes"` // held by the shards placed on it (may exceed a lowered capacity)
	FreeBytes        uint64 `json:"free_bytes"`
	PricePerGiBMonth uint64 `json:"price_per_gib_month"`
	Height           int64  `json:"height"` // set in this block
	Region           string `json:"region"`
	Status           string `json:"status"` // its provider's
	Stake            uint64 `json:"stake"`
	RequiredStake    uint64 `json:"required_stake"`
	Shards           int    `json:"shards"` // placed on it
}

// Eligible is an offer new shards may be placed on: its provider active with its required stake bonded, and
// room left (the ledger also asks for room for the object's shard size and a price within the deal's).
func (o StorageOffer) Eligible() bool {
	return o.Status == "active" && o.Stake > 0 && o.Stake >= o.RequiredStake && o.FreeBytes > 0
}

const offerCols = `o.provider, o.capacity, o.used, max(o.capacity - o.used, 0), o.price, o.height, coalesce(p.region, ''),
	coalesce(p.status, ''), coalesce(p.stake, 0), coalesce(p.required_stake, 0), o.shards`

func scanOffer(s interface{ Scan(...any) error }) (StorageOffer, error) {
	var o StorageOffer
	err := s.Scan(&o.Provider, &o.CapacityBytes, &o.UsedBytes, &o.FreeBytes, &o.PricePerGiBMonth, &o.Height, &o.Region,
		&o.Status, &o.Stake, &o.RequiredStake, &o.Shards)
	return o, err
}

// StorageOffers lists the storage offers, cheapest first.
func (db *DB) StorageOffers(ctx context.Context, p Page) (List[StorageOffer], error) {
	p = p.clamp()
	out := List[StorageOffer]{Items: []StorageOffer{}, Offset: p.Offset, Limit: p.Limit}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM storage_offers`,
		`SELECT `+offerCols+` FROM storage_offers o LEFT JOIN providers p ON p.address = o.provider ORDER BY o.price, o.provider`, nil,
		func(r *sql.Rows) error {
			o, err := scanOffer(r)
			out.Items = append(out.Items, o)
			return err
		})
	return out, err
}

// ProviderStorage is what a provider offers to Spare Vault and holds.
type ProviderStorage struct {
	Offer   *StorageOffer `json:"offer,omitempty"` // nil: it offers none (and holds nothing)
	Shards  int           `json:"shards"`          // placed on it
	Bytes   uint64        `json:"bytes"`           // their bytes
	Objects int           `json:"objects"`         // the objects they are of
}

// ProviderStorage reads a provider's storage offer and the shards placed on it.
func (db *DB) ProviderStorage(ctx context.Context, addr string) (ProviderStorage, error) {
	var ps ProviderStorage
	o, err := scanOffer(db.sql.QueryRowContext(ctx, `SELECT `+offerCols+` FROM storage_offers o
		LEFT JOIN providers p ON p.address = o.provider WHERE o.provider = ?`, addr))
	switch {
	case err == nil:
		ps.Offer = &o
	case !errors.Is(err, sql.ErrNoRows):
		return ps, err
	}
	err = db.sql.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(size), 0), count(DISTINCT object_id) FROM vault_shards
		WHERE provider = ?`, addr).Scan(&ps.Shards, &ps.Bytes, &ps.Objects)
	return ps, err
}

// VaultOverview is the network's storage as of the last indexed block.
type VaultOverview struct {
	Height int64 `json:"height"`
	// Offers are the storage offers with capacity; OffersEligible those new shards can be placed on now (an
	// active provider with its stake bonded, and room).
	Offers         int    `json:"offers"`
	OffersEligible int    `json:"offers_eligible"`
	CapacityBytes  uint64 `json:"capacity_bytes"` // offered in all
	FreeBytes      uint64 `json:"free_bytes"`     // left on the eligible offers
	StoredBytes    uint64 `json:"stored_bytes"`   // held by placed shards, parity included
	Shards         uint64 `json:"shards"`
	Providers      int    `json:"providers_holding"` // providers holding shards
	Objects        int    `json:"objects"`           // placed
	Placing        int    `json:"placing"`           // stored, their providers drawn at the end of the next block
	Unplaced       int    `json:"unplaced"`          // removed: the offers could not take their shards at the draw
	// TermEscrow is what term deals hold, Endowments what permanent deals hold: escrow paid out to providers as
	// their proofs pass once payouts are on the ledger (none is paid yet).
	TermEscrow uint64 `json:"term_escrow"`
	Endowments uint64 `json:"endowments"`
}

// VaultOverview computes the network's storage figures.
func (db *DB) VaultOverview(ctx context.Context) (VaultOverview, error) {
	var v VaultOverview
	var err error
	if v.Height, err = db.Height(ctx); err != nil {
		return v, err
	}
	var t vaultTotals
	err = db.sql.QueryRowContext(ctx, `SELECT offers, capacity, stored, shards, objects, placing, unplaced, term_escrow, endowments
		FROM vault_stats ORDER BY height DESC LIMIT 1`).Scan(t.dest()...)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return v, err
	}
	v.Offers, v.CapacityBytes, v.StoredBytes, v.Shards = int(t.offers), uint64(t.capacity), uint64(t.stored), uint64(t.shards)
	v.Objects, v.Placing, v.Unplaced = int(t.objects), int(t.placing), int(t.unplaced)
	v.TermEscrow, v.Endowments = uint64(t.termEscrow), uint64(t.endowments)
	err = db.sql.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(o.capacity - o.used), 0) FROM storage_offers o
		JOIN providers p ON p.address = o.provider
		WHERE o.capacity > o.used AND p.status = 'active' AND p.stake > 0 AND p.stake >= p.required_stake`).Scan(&v.OffersEligible, &v.FreeBytes)
	if err != nil {
		return v, err
	}
	err = db.sql.QueryRowContext(ctx, `SELECT count(*) FROM storage_offers WHERE used > 0`).Scan(&v.Providers)
	return v, err
}

// VaultPoint is the network's storage after a block.
type VaultPoint struct {
	Height        int64  `json:"height"`
	TimeMs        int64  `json:"time_ms"`
	CapacityBytes uint64 `json:"capacity_bytes"`
	StoredBytes   uint64 `json:"stored_bytes"`
	Objects       int    `json:"objects"`
	TermEscrow    uint64 `json:"term_escrow"`
	Endowments    uint64 `json:"endowments"`
}

// VaultHistory is the network's storage over time, oldest first: the totals after the last block that changed
// them in each of up to buckets equal time buckets, from the first such block to the last indexed one.
func (db *DB) VaultHistory(ctx context.Context, buckets int) ([]VaultPoint, error) {
	buckets = min(max(buckets, 1), 200)
	var lo, hi int64
	if err := db.sql.QueryRowContext(ctx, `SELECT coalesce(min(time_ms), 0), coalesce(max(time_ms), 0) FROM vault_stats`).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	width := max((hi-lo)/int64(buckets)+1, 1)
	rows, err := db.sql.QueryContext(ctx, `SELECT height, time_ms, capacity, stored, objects, term_escrow, endowments FROM vault_stats
		WHERE height IN (SELECT max(height) FROM vault_stats GROUP BY (time_ms - ?) / ?) ORDER BY height`, lo, width)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []VaultPoint{}
	for rows.Next() {
		var p VaultPoint
		if err := rows.Scan(&p.Height, &p.TimeMs, &p.CapacityBytes, &p.StoredBytes, &p.Objects, &p.TermEscrow, &p.Endowments); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The totals stand until the next change: carry the last ones to the last indexed block.
	if n := len(out); n > 0 {
		var h, ms int64
		err := db.sql.QueryRowContext(ctx, `SELECT height, time_ms FROM blocks ORDER BY height DESC LIMIT 1`).Scan(&h, &ms)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		if h > out[n-1].Height && ms > out[n-1].TimeMs {
			last := out[n-1]
			last.Height, last.TimeMs = h, ms
			out = append(out, last)
		}
	}
	return out, nil
}

// VaultRootMatches counts the objects and the shards with root (lower-case hex).
func (db *DB) VaultRootMatches(ctx context.Context, root string) (objects, shards int, err error) {
	if err = db.sql.QueryRowContext(ctx, `SELECT count(*) FROM vault_objects WHERE root = ?`, root).Scan(&objects); err != nil {
		return
	}
	err = db.sql.QueryRowContext(ctx, `SELECT count(*) FROM vault_shards WHERE root = ?`, root).Scan(&shards)
	return
}
