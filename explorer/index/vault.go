package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
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
// bytes to its provider's offer, as the ledger does. Storage proofs, the pool's pay and repairs come from their
// own events (vaultproofs.go). After every block that changed any of it, the network's totals are written to
// vault_stats: the series the vault page charts.

const vaultSchema = `
CREATE TABLE vault_objects (
	id INTEGER PRIMARY KEY, owner TEXT NOT NULL, root TEXT NOT NULL, size INTEGER NOT NULL, k INTEGER NOT NULL,
	m INTEGER NOT NULL, shard_size INTEGER NOT NULL, stripes INTEGER NOT NULL, shards INTEGER NOT NULL,
	months INTEGER NOT NULL, max_price INTEGER NOT NULL, deposit INTEGER NOT NULL, escrow INTEGER NOT NULL,
	refund INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, stored_height INTEGER NOT NULL,
	stored_ms INTEGER NOT NULL, place_at INTEGER NOT NULL, ended_height INTEGER NOT NULL, tx_hash TEXT NOT NULL,
	pooled INTEGER NOT NULL DEFAULT 0);
CREATE INDEX vault_objects_owner ON vault_objects (owner, id);
CREATE INDEX vault_objects_root ON vault_objects (root, id);
CREATE INDEX vault_objects_state ON vault_objects (state, id);
CREATE TABLE vault_shards (
	object_id INTEGER NOT NULL, stripe INTEGER NOT NULL, idx INTEGER NOT NULL, root TEXT NOT NULL,
	provider TEXT NOT NULL, price INTEGER NOT NULL, size INTEGER NOT NULL, height INTEGER NOT NULL,
	held_height INTEGER NOT NULL DEFAULT 0, lost INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0, failed_epochs INTEGER NOT NULL DEFAULT 0,
	last_failed INTEGER NOT NULL DEFAULT 0, repair_height INTEGER NOT NULL DEFAULT 0, repairing INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (object_id, stripe, idx)) WITHOUT ROWID;
CREATE INDEX vault_shards_provider ON vault_shards (provider, height); -- the key's columns follow: newest first
CREATE INDEX vault_shards_height ON vault_shards (height);
CREATE INDEX vault_shards_root ON vault_shards (root);
CREATE INDEX vault_shards_failing ON vault_shards (last_failed) WHERE failures > 0; -- streaks a decided tally ends
CREATE TABLE storage_offers (
	provider TEXT PRIMARY KEY, capacity INTEGER NOT NULL, used INTEGER NOT NULL, price INTEGER NOT NULL,
	height INTEGER NOT NULL, shards INTEGER NOT NULL DEFAULT 0);
CREATE INDEX storage_offers_price ON storage_offers (price, provider);
CREATE TABLE vault_stats (
	height INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, offers INTEGER NOT NULL, capacity INTEGER NOT NULL,
	stored INTEGER NOT NULL, shards INTEGER NOT NULL, objects INTEGER NOT NULL, placing INTEGER NOT NULL,
	unplaced INTEGER NOT NULL, term_escrow INTEGER NOT NULL, endowments INTEGER NOT NULL, pool INTEGER NOT NULL DEFAULT 0,
	paid INTEGER NOT NULL DEFAULT 0, held INTEGER NOT NULL DEFAULT 0);
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
	api.EventVaultShardPlaced: true, api.EventVaultPlaced: true, api.EventVaultUnplaced: true, api.EventVaultEnded: true,
	api.EventVaultHeld: true, api.EventVaultEpoch: true, api.EventVaultAttested: true, api.EventVaultProofFailed: true, api.EventVaultShardLost: true,
	api.EventVaultRepair: true, api.EventVaultRepaired: true, api.EventVaultEpochPaid: true, api.EventVaultTallied: true}

// vaultTotals are the network's storage totals, a row of vault_stats. stored and shards count the shards placed
// on a provider (by their object's draw or a repair's): not lost, their object not ended; held those of them
// their provider declared held (HoldShards), which are challenged and paid. termEscrow and endowments are what
// objects hold in their own escrow (awaiting their draw, or placed on a chain without auditing); pool is the
// Vault pool, which an audited chain's objects pay into at their draw; paid what the pool paid out (epochs and
// repairs).
type vaultTotals struct {
	offers, capacity, stored, shards, objects, placing, unplaced, termEscrow, endowments, pool, paid, held int64
}

const vaultTotalsCols = `offers, capacity, stored, shards, objects, placing, unplaced, term_escrow, endowments, pool, paid, held`

func (t *vaultTotals) dest() []any {
	return []any{&t.offers, &t.capacity, &t.stored, &t.shards, &t.objects, &t.placing, &t.unplaced, &t.termEscrow, &t.endowments,
		&t.pool, &t.paid, &t.held}
}

// escrow adds d to the escrow of a term deal (months > 0) or to the endowments.
func (t *vaultTotals) escrow(months uint64, d int64) {
	if months > 0 {
		t.termEscrow += d
	} else {
		t.endowments += d
	}
}

// vaultTxs are the Vault messages of a block's successful transactions, by transaction hash, in order: the
// i-th vault.stored event of a transaction is its i-th StoreObject (whose manifest gives the object's layout),
// the i-th vault.held its i-th HoldShards (which names the shards: the event only counts them).
type vaultTxs struct {
	manifests map[string][][]byte
	holds     map[string][]heldMsg
}

type heldMsg struct {
	signer tx.Address
	refs   []tx.ShardRef
}

func newVaultTxs() *vaultTxs {
	return &vaultTxs{manifests: map[string][][]byte{}, holds: map[string][]heldMsg{}}
}

func (v *vaultTxs) add(hash string, t *tx.Tx) {
	for _, m := range t.Body.Msgs {
		switch m := m.(type) {
		case *tx.StoreObject:
			v.manifests[hash] = append(v.manifests[hash], m.Manifest)
		case *tx.HoldShards:
			v.holds[hash] = append(v.holds[hash], heldMsg{t.Signer(), m.Shards})
		}
	}
}

// applyVault writes a block's Vault and storage events (in the order the ledger emitted them) and the totals
// after them. An event whose attributes do not read, or that does not follow from what is indexed (a shard
// that is not placed, an epoch tallied twice), is kept as an event, and said, but changes nothing here.
func (ix *Indexer) applyVault(ctx context.Context, w *writer, b client.Block, evs []client.Event, vtx *vaultTxs) error {
	if w.err != nil {
		return w.err
	}
	var t vaultTotals
	err := w.tx.QueryRowContext(ctx, `SELECT `+vaultTotalsCols+` FROM vault_stats ORDER BY height DESC LIMIT 1`).Scan(t.dest()...)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	blk := &vaultBlock{b: b, t: &t}
	for _, e := range evs {
		var err error
		switch e.Type {
		case api.EventStorageOffered:
			err = w.vaultOffered(e, b, &t)
		case api.EventVaultStored:
			err = ix.vaultStored(ctx, w, e, b, vtx.manifests, &t)
		case api.EventVaultShardPlaced:
			err = w.vaultShardPlaced(e, blk)
		case api.EventVaultPlaced:
			err = w.vaultPlaced(e, blk)
		case api.EventVaultUnplaced:
			err = w.vaultUnplaced(e, b, &t)
		case api.EventVaultEnded:
			err = w.vaultEnded(e, b, &t)
		case api.EventVaultHeld:
			err = w.vaultHeld(e, blk, vtx)
		case api.EventVaultEpoch:
			err = w.vaultEpoch(e, blk)
		case api.EventVaultAttested:
			err = w.vaultAttested(e)
		case api.EventVaultProofFailed, api.EventVaultShardLost, api.EventVaultRepair, api.EventVaultRepaired:
			err = w.vaultShardEvent(e, blk)
		case api.EventVaultEpochPaid:
			err = w.vaultEpochPaid(e, b)
		case api.EventVaultTallied:
			err = w.vaultTallied(e, blk)
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
	w.exec(`INSERT INTO vault_stats (height, time_ms, `+vaultTotalsCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.Height, b.Time.UnixMilli(), t.offers, t.capacity, t.stored, t.shards, t.objects, t.placing, t.unplaced, t.termEscrow,
		t.endowments, t.pool, t.paid, t.held)
	return w.err
}

// vaultBlock is what the Vault's events of one block share: the totals they change, the shards declared held
// so far in the block (not challenged by an epoch that starts in it), and whether the chain audits storage (an
// epoch started, at or before this block).
type vaultBlock struct {
	b        client.Block
	t        *vaultTotals
	declared int64
	audited  *bool
}

// isAudited says whether the index has seen a Vault epoch start: on such a chain an object's escrow moves into
// the pool at its draw (api.VaultObject.Pooled).
func (w *writer) isAudited(blk *vaultBlock) bool {
	if blk.audited == nil {
		var one int
		a := w.row(`SELECT 1 FROM vault_epochs LIMIT 1`, nil, &one)
		blk.audited = &a
	}
	return *blk.audited
}

// fits refuses a number the index cannot store (SQLite integers are signed 64-bit): no amount, size, id or epoch
// the ledger writes comes near it, and a node that sends one must not stop the indexer.
func fits(vs ...uint64) error {
	for _, v := range vs {
		if v > math.MaxInt64 {
			return fmt.Errorf("%d is more than the index stores (%d)", v, int64(math.MaxInt64))
		}
	}
	return nil
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
	if err := fits(ev.CapacityBytes, ev.UsedBytes, ev.PricePerGiBMonth); err != nil {
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
	if err := fits(ev.ObjectID, ev.Size, ev.Shards, ev.Months, ev.MaxPricePerGiBMonth, ev.Escrow); err != nil {
		return err
	}
	if ev.PlaceAt < 0 {
		return fmt.Errorf("place_at %d: not a height", ev.PlaceAt)
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

func (w *writer) vaultShardPlaced(e client.Event, blk *vaultBlock) error {
	ev, err := api.ParseVaultShardPlaced(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.ObjectID, ev.Stripe, ev.Index, ev.PricePerGiBMonth); err != nil {
		return err
	}
	var size int64
	if !w.row(`SELECT shard_size FROM vault_objects WHERE id = ? AND state = ?`, []any{ev.ObjectID, VaultPlacing}, &size) {
		return fmt.Errorf("object %d is not being placed", ev.ObjectID)
	}
	p := ev.Provider.String()
	n := w.execN(`INSERT INTO vault_shards (object_id, stripe, idx, root, provider, price, size, height) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, ev.ObjectID, ev.Stripe, ev.Index, ev.Root.String(), p, ev.PricePerGiBMonth, size, blk.b.Height)
	if n == 0 {
		return fmt.Errorf("shard %d of stripe %d of object %d is placed already", ev.Index, ev.Stripe, ev.ObjectID)
	}
	w.exec(`UPDATE storage_offers SET used = used + ?, shards = shards + 1 WHERE provider = ?`, size, p)
	blk.t.stored += size
	blk.t.shards++
	return nil
}

// vaultPlaced ends an object's draw. On an audited chain its escrow moves into the pool (it leaves the objects'
// escrow totals); elsewhere the object keeps it until its term ends.
func (w *writer) vaultPlaced(e client.Event, blk *vaultBlock) error {
	ev, err := api.ParseVaultPlaced(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.ObjectID, ev.Cost, ev.Refund); err != nil {
		return err
	}
	var escrow, months uint64
	if !w.row(`SELECT escrow, months FROM vault_objects WHERE id = ? AND state = ?`, []any{ev.ObjectID, VaultPlacing}, &escrow, &months) {
		return fmt.Errorf("object %d is not being placed", ev.ObjectID)
	}
	pooled := w.isAudited(blk)
	w.exec(`UPDATE vault_objects SET state = ?, escrow = ?, refund = ?, ended_height = ?, pooled = ? WHERE id = ?`,
		VaultPlaced, ev.Cost, ev.Refund, blk.b.Height, pooled, ev.ObjectID)
	if pooled {
		blk.t.escrow(months, -int64(escrow))
		blk.t.pool += int64(ev.Cost)
	} else {
		blk.t.escrow(months, int64(ev.Cost)-int64(escrow))
	}
	blk.t.placing--
	blk.t.objects++
	return nil
}

func (w *writer) vaultUnplaced(e client.Event, b client.Block, t *vaultTotals) error {
	ev, err := api.ParseVaultUnplaced(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.ObjectID, ev.Refund); err != nil {
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

// vaultEnded closes a term deal: its shards' room is released from their providers' offers and its held shards
// leave the totals; an escrow it kept itself (a chain without auditing: paid to its providers now) leaves them
// too, where a pooled object's stays in the pool. Its open repairs end. The shards stay indexed, as its history.
func (w *writer) vaultEnded(e client.Event, b client.Block, t *vaultTotals) error {
	ev, err := api.ParseVaultEnded(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.ObjectID, ev.Paid); err != nil {
		return err
	}
	var escrow, months, size uint64
	var pooled bool
	if !w.row(`SELECT escrow, months, shard_size, pooled FROM vault_objects WHERE id = ? AND state = ?`, []any{ev.ObjectID, VaultPlaced},
		&escrow, &months, &size, &pooled) {
		return fmt.Errorf("object %d is not placed", ev.ObjectID)
	}
	var held, declared int64
	w.row(`SELECT count(*), count(CASE WHEN held_height > 0 THEN 1 END) FROM vault_shards WHERE object_id = ? AND provider != ''`,
		[]any{ev.ObjectID}, &held, &declared)
	w.exec(`UPDATE storage_offers SET used = max(used - ? * (SELECT count(*) FROM vault_shards s WHERE s.object_id = ? AND s.provider = storage_offers.provider), 0),
		shards = max(shards - (SELECT count(*) FROM vault_shards s WHERE s.object_id = ? AND s.provider = storage_offers.provider), 0)
		WHERE provider IN (SELECT provider FROM vault_shards WHERE object_id = ?)`, size, ev.ObjectID, ev.ObjectID, ev.ObjectID)
	if pooled {
		w.exec(`UPDATE vault_objects SET state = ?, ended_height = ? WHERE id = ?`, VaultEnded, b.Height, ev.ObjectID)
	} else {
		w.exec(`UPDATE vault_objects SET state = ?, escrow = 0, ended_height = ? WHERE id = ?`, VaultEnded, b.Height, ev.ObjectID)
		t.escrow(months, -int64(escrow))
	}
	w.exec(`UPDATE vault_shards SET failures = 0, repairing = 0 WHERE object_id = ? AND (failures > 0 OR repairing = 1)`, ev.ObjectID)
	w.exec(`UPDATE vault_repairs SET state = ? WHERE object_id = ? AND state IN (?, ?)`, RepairEnded, ev.ObjectID, RepairLost, RepairRebuilding)
	t.stored -= int64(size) * held
	t.shards -= held
	t.held -= declared
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
	// Escrow is, once placed, the deal's cost at the drawn prices: on an audited chain what it put into the Vault
	// pool at its draw (Pooled), which pays its providers every epoch against their proofs; elsewhere what the
	// object holds until its term ends (0 once ended, paid to its providers). 0 once unplaced.
	Escrow       uint64 `json:"escrow"`
	Pooled       bool   `json:"pooled"`
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
	state, reason, stored_height, stored_ms, place_at, ended_height, tx_hash, pooled`

func scanVaultObject(s interface{ Scan(...any) error }) (VaultObject, error) {
	var o VaultObject
	err := s.Scan(&o.ID, &o.Owner, &o.Root, &o.Size, &o.K, &o.M, &o.ShardSize, &o.Stripes, &o.Shards, &o.Months, &o.MaxPrice,
		&o.Deposit, &o.Escrow, &o.Refund, &o.State, &o.Reason, &o.StoredHeight, &o.StoredMs, &o.PlaceAt, &o.EndedHeight, &o.TxHash, &o.Pooled)
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

// VaultShard is one placed shard: its place in its object, its root, the provider that holds it, and how its
// storage proofs went.
type VaultShard struct {
	ObjectID         uint64 `json:"object_id"`
	Stripe           int    `json:"stripe"`
	Index            int    `json:"index"`
	Parity           bool   `json:"parity"` // a parity shard (index ≥ the object's K)
	Root             string `json:"root"`
	Provider         string `json:"provider"` // "" while lost
	Region           string `json:"region"`   // its provider's, as last indexed
	PricePerGiBMonth uint64 `json:"price_per_gib_month"`
	Size             uint64 `json:"size"`
	Height           int64  `json:"height"` // placed at the end of this block
	// HeldHeight: the block its provider declared it held in (HoldShards): challenged and paid from the next
	// epoch; 0 until then. Lost: taken from the provider that failed it VaultLostAfterFailures epochs in a row
	// (or did not declare a repair rebuilt in time), and not drawn onto another yet. RepairHeight: the block that
	// drew it onto Provider to be rebuilt there (0: placed with its object); Repairing until that provider's first
	// proof of it passes. Failures: the epochs in a row it failed lately, up to LastFailed (a decided epoch it
	// passed ends the streak); FailedEpochs every epoch it failed.
	HeldHeight   int64  `json:"held_height"`
	Lost         bool   `json:"lost"`
	RepairHeight int64  `json:"repair_height"`
	Repairing    bool   `json:"repairing"`
	Failures     uint64 `json:"failures"`
	FailedEpochs uint64 `json:"failed_epochs"`
	LastFailed   uint64 `json:"last_failed_epoch"`
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
			coalesce(p.region, ''), s.price, s.size, s.height, s.held_height, s.lost, s.repair_height, s.repairing, s.failures,
			s.failed_epochs, s.last_failed
		FROM vault_shards s LEFT JOIN vault_objects o ON o.id = s.object_id LEFT JOIN providers p ON p.address = s.provider
		WHERE `+where+` ORDER BY `+order, args,
		func(r *sql.Rows) error {
			var s VaultShard
			err := r.Scan(&s.ObjectID, &s.Stripe, &s.Index, &s.Parity, &s.Root, &s.Provider, &s.Region, &s.PricePerGiBMonth, &s.Size, &s.Height,
				&s.HeldHeight, &s.Lost, &s.RepairHeight, &s.Repairing, &s.Failures, &s.FailedEpochs, &s.LastFailed)
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
	Shards  int           `json:"shards"`          // placed on it (or repaired onto it), of objects not ended
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
		WHERE provider = ? AND object_id IN (SELECT id FROM vault_objects WHERE state = ?)`, addr, VaultPlaced).Scan(&ps.Shards, &ps.Bytes, &ps.Objects)
	return ps, err
}

// VaultOverview is the network's storage as of the last indexed block.
type VaultOverview struct {
	Height int64 `json:"height"`
	// Offers are the storage offers with capacity; OffersEligible those new shards can be placed on now (an
	// active provider with its stake bonded, and room).
	Offers         int    `json:"offers"`
	OffersEligible int    `json:"offers_eligible"`
	CapacityBytes  uint64 `json:"capacity_bytes"`    // offered in all
	FreeBytes      uint64 `json:"free_bytes"`        // left on the eligible offers
	StoredBytes    uint64 `json:"stored_bytes"`      // held by placed shards, parity included (lost ones not)
	Shards         uint64 `json:"shards"`            // held by their providers
	Providers      int    `json:"providers_holding"` // providers holding shards
	Objects        int    `json:"objects"`           // placed
	Placing        int    `json:"placing"`           // stored, their providers drawn at the end of the next block
	Unplaced       int    `json:"unplaced"`          // removed: the offers could not take their shards at the draw
	// TermEscrow is what term deals hold in their own escrow, Endowments what permanent deals hold: objects
	// awaiting their draw, and placed objects of a chain without auditing (paid at their term's end). On an
	// audited chain an object's escrow moves into the Vault pool at its draw.
	TermEscrow uint64 `json:"term_escrow"`
	Endowments uint64 `json:"endowments"`
	// ShardsDeclared are the shards their providers declared held (HoldShards): challenged every epoch, paid.
	ShardsDeclared uint64 `json:"shards_declared"`
	// Audited: a Vault epoch has started (params.epoch_blocks > 0): shards are challenged every epoch, paid from
	// the pool. Pool is its balance after the last block, PaidTotal what it paid out (epochs and repairs).
	Audited   bool   `json:"audited"`
	Pool      uint64 `json:"pool"`
	PaidTotal uint64 `json:"paid_total"`
	// Shards lost (awaiting a provider with room), being rebuilt on the provider a repair drew, and repaired.
	ShardsLost      int `json:"shards_lost"`
	ShardsRepairing int `json:"shards_repairing"`
	Repaired        int `json:"repaired"`
	// LastTallied is the last epoch whose proofs were tallied, LastDecided the last the auditors decided.
	LastTallied *VaultEpoch `json:"last_tallied,omitempty"`
	LastDecided *VaultEpoch `json:"last_decided,omitempty"`
}

// VaultOverview computes the network's storage figures.
func (db *DB) VaultOverview(ctx context.Context) (VaultOverview, error) {
	var v VaultOverview
	var err error
	if v.Height, err = db.Height(ctx); err != nil {
		return v, err
	}
	var t vaultTotals
	err = db.sql.QueryRowContext(ctx, `SELECT `+vaultTotalsCols+` FROM vault_stats ORDER BY height DESC LIMIT 1`).Scan(t.dest()...)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return v, err
	}
	v.Offers, v.CapacityBytes, v.StoredBytes, v.Shards = int(t.offers), nonNeg(t.capacity), nonNeg(t.stored), nonNeg(t.shards)
	v.Objects, v.Placing, v.Unplaced = int(t.objects), int(t.placing), int(t.unplaced)
	v.TermEscrow, v.Endowments, v.Pool, v.PaidTotal = nonNeg(t.termEscrow), nonNeg(t.endowments), nonNeg(t.pool), nonNeg(t.paid)
	v.ShardsDeclared = nonNeg(t.held)
	if err := db.vaultProofsOverview(ctx, &v); err != nil {
		return v, err
	}
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
	Pool          uint64 `json:"pool"`
	PaidTotal     uint64 `json:"paid_total"`
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
	rows, err := db.sql.QueryContext(ctx, `SELECT height, time_ms, capacity, stored, objects, term_escrow, endowments, pool, paid FROM vault_stats
		WHERE height IN (SELECT max(height) FROM vault_stats GROUP BY (time_ms - ?) / ?) ORDER BY height`, lo, width)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []VaultPoint{}
	for rows.Next() {
		var p VaultPoint
		var capacity, stored, term, endow, pool, paid int64
		if err := rows.Scan(&p.Height, &p.TimeMs, &capacity, &stored, &p.Objects, &term, &endow, &pool, &paid); err != nil {
			return nil, err
		}
		p.CapacityBytes, p.StoredBytes, p.TermEscrow, p.Endowments = nonNeg(capacity), nonNeg(stored), nonNeg(term), nonNeg(endow)
		p.Pool, p.PaidTotal = nonNeg(pool), nonNeg(paid)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The totals stand until the next change: carry the last ones to the last indexed block.
	return carryToLastBlock(ctx, db, out, func(p *VaultPoint) (*int64, *int64) { return &p.Height, &p.TimeMs })
}

// carryToLastBlock appends to a series of cumulative figures a copy of its last point at the last indexed block,
// when that block is later: the figures stand until the next change. at gives a point's height and time.
func carryToLastBlock[P any](ctx context.Context, db *DB, out []P, at func(*P) (*int64, *int64)) ([]P, error) {
	n := len(out)
	if n == 0 {
		return out, nil
	}
	var h, ms int64
	err := db.sql.QueryRowContext(ctx, `SELECT height, time_ms FROM blocks ORDER BY height DESC LIMIT 1`).Scan(&h, &ms)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if lh, lms := at(&out[n-1]); h > *lh && ms > *lms {
		last := out[n-1]
		lh, lms = at(&last)
		*lh, *lms = h, ms
		out = append(out, last)
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
