package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// Storage proofs, the pool's pay and repairs in the index (docs/vault.md, "Storage proofs, pay and repair").
//
// vault.held is a provider declaring shards held (HoldShards): the event counts them, its transaction's message
// names them, and the index marks them by the ledger's rule — only a declared shard is challenged and paid.
// vault.epoch starts an epoch: the index records it with the shards it challenges — the ledger does not say how
// many, so the index counts the shards declared held when the epoch started, which is the ledger's rule.
// vault.attested counts the auditors that attested (once each, however many transactions their failures took).
// vault.proof_failed, vault.shard_lost, vault.repair and vault.repaired are a shard's proof history (vault_proofs)
// and change the shard (its failures in a row; lost: taken from its provider, whose offer gets the room back;
// drawn onto a new provider, rebuilding; repaired) and its repair's row (vault_repairs). vault.epoch_paid is a
// provider's pay for an epoch, vault.tallied the epoch's result network-wide (decided, failed, lost, paid, the
// pool after, the bytes paid for). Each event is read with the ledger's strict parser (api.Parse*: vault.held,
// vault.epoch and vault.attested, which have none, with the same rules here) and must follow from what is
// indexed: a shard event must name a placed shard with its root and holder, an epoch must have started and not
// be tallied, a provider is paid once an epoch. Anything else is kept as an event and changes nothing. What the
// index keeps grows with the events, as the events table does; every list is paged and every chart reads a
// bounded number of rows.

const vaultProofsSchema = `
CREATE TABLE vault_epochs (
	epoch INTEGER PRIMARY KEY, start_height INTEGER NOT NULL, start_ms INTEGER NOT NULL, reveals INTEGER NOT NULL,
	challenged INTEGER NOT NULL, attestations INTEGER NOT NULL DEFAULT 0, tallied INTEGER NOT NULL DEFAULT 0,
	tally_height INTEGER NOT NULL DEFAULT 0, tally_ms INTEGER NOT NULL DEFAULT 0, decided INTEGER NOT NULL DEFAULT 0,
	failed INTEGER NOT NULL DEFAULT 0, lost INTEGER NOT NULL DEFAULT 0, paid INTEGER NOT NULL DEFAULT 0,
	pool INTEGER NOT NULL DEFAULT 0, stored INTEGER NOT NULL DEFAULT 0);
CREATE TABLE vault_proofs (
	id INTEGER PRIMARY KEY, object_id INTEGER NOT NULL, stripe INTEGER NOT NULL, idx INTEGER NOT NULL, root TEXT NOT NULL,
	type TEXT NOT NULL, provider TEXT NOT NULL, epoch INTEGER NOT NULL, height INTEGER NOT NULL, failures INTEGER NOT NULL,
	price INTEGER NOT NULL, amount INTEGER NOT NULL);
CREATE INDEX vault_proofs_object ON vault_proofs (object_id, id);
CREATE INDEX vault_proofs_root ON vault_proofs (root, id);
CREATE INDEX vault_proofs_provider ON vault_proofs (provider, id);
CREATE TABLE vault_repairs (
	id INTEGER PRIMARY KEY, object_id INTEGER NOT NULL, stripe INTEGER NOT NULL, idx INTEGER NOT NULL, root TEXT NOT NULL,
	lost_provider TEXT NOT NULL, lost_epoch INTEGER NOT NULL, lost_height INTEGER NOT NULL, provider TEXT NOT NULL DEFAULT '',
	price INTEGER NOT NULL DEFAULT 0, drawn_height INTEGER NOT NULL DEFAULT 0, drawn_epoch INTEGER NOT NULL DEFAULT 0,
	repaired_height INTEGER NOT NULL DEFAULT 0, repaired_epoch INTEGER NOT NULL DEFAULT 0, fee INTEGER NOT NULL DEFAULT 0,
	state TEXT NOT NULL);
CREATE INDEX vault_repairs_state ON vault_repairs (state, id);
CREATE INDEX vault_repairs_shard ON vault_repairs (object_id, stripe, idx, id);
CREATE INDEX vault_repairs_provider ON vault_repairs (provider, id);
CREATE INDEX vault_repairs_lost_provider ON vault_repairs (lost_provider, id);
CREATE TABLE vault_attestations (
	epoch INTEGER NOT NULL, auditor TEXT NOT NULL, named INTEGER NOT NULL, PRIMARY KEY (epoch, auditor)) WITHOUT ROWID;
CREATE TABLE vault_provider_epochs (
	provider TEXT NOT NULL, epoch INTEGER NOT NULL, height INTEGER NOT NULL, amount INTEGER NOT NULL, shards INTEGER NOT NULL,
	failed INTEGER NOT NULL, PRIMARY KEY (provider, epoch)) WITHOUT ROWID;
`

// The states of a repair: its shard lost and waiting for a provider with room; drawn onto a provider that
// rebuilds it; repaired (its first proof there passed, the fee paid); failed (lost again before its first proof
// passed: the provider did not declare it rebuilt within VaultRepairEpochs, or it failed its proofs); ended (its
// object's term ended first).
const (
	RepairLost       = "lost"
	RepairRebuilding = "rebuilding"
	RepairRepaired   = "repaired"
	RepairFailed     = "failed"
	RepairEnded      = "ended"
)

// RepairStates are the states a filter may name.
var RepairStates = []string{RepairLost, RepairRebuilding, RepairRepaired, RepairFailed, RepairEnded}

// vaultEpochEvent is EventVaultEpoch's attributes, read as strictly as the ledger's own parsers read theirs.
type vaultEpochEvent struct {
	Epoch, Reveals, Height uint64
	Seed                   tx.Hash
}

// eventReader reads event attributes, keeping the first that does not read (as api's parsers do).
type eventReader struct {
	typ string
	m   map[string]string
	err error
}

func (r *eventReader) fail(k, want string) {
	if r.err == nil {
		v, ok := r.m[k]
		r.err = &api.EventError{Type: r.typ, Key: k, Value: v, Want: want, Missing: !ok}
	}
}

func (r *eventReader) uint(k string) uint64 {
	v, err := strconv.ParseUint(r.m[k], 10, 64)
	if err != nil {
		r.fail(k, "a decimal number")
	}
	return v
}

func parseVaultEpoch(m map[string]string) (vaultEpochEvent, error) {
	r := &eventReader{typ: api.EventVaultEpoch, m: m}
	e := vaultEpochEvent{Epoch: r.uint(api.AttrEpoch), Reveals: r.uint(api.AttrReveals), Height: r.uint(api.AttrHeight)}
	var err error
	if e.Seed, err = tx.ParseHash(m[api.AttrSeed]); err != nil {
		r.fail(api.AttrSeed, "a hash (64 hex digits)")
	}
	return e, r.err
}

func parseVaultAttested(m map[string]string) (epoch uint64, auditor tx.Address, named uint64, err error) {
	r := &eventReader{typ: api.EventVaultAttested, m: m}
	epoch, named = r.uint(api.AttrEpoch), r.uint(api.AttrFailed)
	var aerr error
	if auditor, aerr = tx.ParseAddress(m[api.AttrAuditor]); aerr != nil {
		r.fail(api.AttrAuditor, "an address")
	}
	return epoch, auditor, named, r.err
}

// vaultEpoch records an epoch's start and the shards it challenges: those declared held now, less the ones
// declared in this block (a shard is challenged only when declared before the epoch's first block).
func (w *writer) vaultEpoch(e client.Event, blk *vaultBlock) error {
	ev, err := parseVaultEpoch(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.Epoch, ev.Reveals); err != nil {
		return err
	}
	if ev.Height != uint64(blk.b.Height) {
		return fmt.Errorf("epoch %d says it starts at block %d, in block %d", ev.Epoch, ev.Height, blk.b.Height)
	}
	n := w.execN(`INSERT INTO vault_epochs (epoch, start_height, start_ms, reveals, challenged) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, ev.Epoch, blk.b.Height, blk.b.Time.UnixMilli(), ev.Reveals, max(blk.t.held-blk.declared, 0))
	if n == 0 {
		return fmt.Errorf("epoch %d has started already", ev.Epoch)
	}
	t := true
	blk.audited = &t
	return nil
}

// vaultAttested counts an auditor's attestation of an epoch, once however many transactions it took (an auditor
// with more than a transaction's failures continues its attestation).
func (w *writer) vaultAttested(e client.Event) error {
	epoch, auditor, named, err := parseVaultAttested(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(epoch, named); err != nil {
		return err
	}
	var one int
	if !w.row(`SELECT 1 FROM vault_epochs WHERE epoch = ? AND tallied = 0`, []any{epoch}, &one) {
		return fmt.Errorf("epoch %d is not open: not started, or tallied", epoch)
	}
	if w.execN(`INSERT INTO vault_attestations (epoch, auditor, named) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, epoch, auditor.String(), named) == 1 {
		w.exec(`UPDATE vault_epochs SET attestations = attestations + 1 WHERE epoch = ?`, epoch)
	} else {
		w.exec(`UPDATE vault_attestations SET named = min(named + ?, ?) WHERE epoch = ? AND auditor = ?`, named, int64(math.MaxInt64/2), epoch, auditor.String())
	}
	return nil
}

func parseVaultHeld(m map[string]string) (provider tx.Address, shards uint64, err error) {
	r := &eventReader{typ: api.EventVaultHeld, m: m}
	shards = r.uint(api.AttrShards)
	var perr error
	if provider, perr = tx.ParseAddress(m[api.AttrProvider]); perr != nil {
		r.fail(api.AttrProvider, "an address")
	}
	return provider, shards, r.err
}

// vaultHeld applies a provider's declaration of the shards it holds (vault.held, which counts them; its
// transaction's HoldShards message names them) by the ledger's rule: a named shard placed on the signer, of a
// placed object, not declared before, is held from this block on — challenged from the next epoch, paid.
func (w *writer) vaultHeld(e client.Event, blk *vaultBlock, vtx *vaultTxs) error {
	prov, count, err := parseVaultHeld(e.Attrs)
	if err != nil {
		return err
	}
	q := vtx.holds[e.TxHash]
	if len(q) == 0 {
		return fmt.Errorf("transaction %q carries no HoldShards message for this event", clip(e.TxHash, 80))
	}
	msg := q[0]
	vtx.holds[e.TxHash] = q[1:]
	if msg.signer != prov {
		return fmt.Errorf("the HoldShards message is signed by %s, the event names %s", msg.signer, prov)
	}
	var obj uint64
	var n int64 // the object's shards a stripe; 0: no placed object with a known layout
	var declared int64
	for _, ref := range msg.refs {
		if ref.Object != obj || obj == 0 {
			obj, n = ref.Object, 0
			var state string
			var k, m int64
			if ref.Object <= math.MaxInt64 && w.row(`SELECT state, k, m FROM vault_objects WHERE id = ?`, []any{ref.Object}, &state, &k, &m) &&
				state == VaultPlaced {
				n = k + m
			}
		}
		if n == 0 {
			continue
		}
		ord := int64(ref.Ordinal)
		declared += w.execN(`UPDATE vault_shards SET held_height = ? WHERE object_id = ? AND stripe = ? AND idx = ? AND provider = ?
			AND held_height = 0 AND lost = 0`, blk.b.Height, ref.Object, ord/n, ord%n, prov.String())
	}
	blk.t.held += declared
	blk.declared += declared
	if uint64(declared) != count {
		return fmt.Errorf("%s declared %d shards held, as the index reads its message; the ledger counts %d", prov, declared, count)
	}
	return nil
}

// vaultShardEvent applies one of a shard's proof events, once it is sure the event names a shard as the index
// has it: placed, of a placed object, with the event's root, held by the event's provider (or lost, for a
// repair's draw), in an epoch that started.
func (w *writer) vaultShardEvent(e client.Event, blk *vaultBlock) error {
	ev, err := api.ParseVaultShardEvent(e.Type, e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.ObjectID, ev.Stripe, ev.Index, ev.Epoch, ev.Failures, ev.Price, ev.Amount); err != nil {
		return err
	}
	where := fmt.Sprintf("shard %d of stripe %d of object %d", ev.Index, ev.Stripe, ev.ObjectID)
	var holder, root, state string
	var size int64
	var lost, repairing bool
	if !w.row(`SELECT s.provider, s.root, s.size, s.lost, s.repairing, o.state FROM vault_shards s JOIN vault_objects o ON o.id = s.object_id
		WHERE s.object_id = ? AND s.stripe = ? AND s.idx = ?`, []any{ev.ObjectID, ev.Stripe, ev.Index}, &holder, &root, &size, &lost, &repairing, &state) {
		return fmt.Errorf("%s is not placed", where)
	}
	var one int
	switch {
	case state != VaultPlaced:
		return fmt.Errorf("object %d is %s, not placed", ev.ObjectID, state)
	case root != ev.Root.String():
		return fmt.Errorf("%s has root %s, not %s", where, root, ev.Root)
	case !w.row(`SELECT 1 FROM vault_epochs WHERE epoch = ?`, []any{ev.Epoch}, &one):
		return fmt.Errorf("epoch %d has not started", ev.Epoch)
	}
	prov := ev.Provider.String()
	key := []any{ev.ObjectID, ev.Stripe, ev.Index}
	at := func(args ...any) []any { return append(args, key...) }
	h := blk.b.Height
	switch e.Type {
	case api.EventVaultProofFailed:
		if lost || holder != prov {
			return fmt.Errorf("%s is not held by %s", where, prov)
		}
		w.exec(`UPDATE vault_shards SET failures = ?, failed_epochs = failed_epochs + 1, last_failed = ?
			WHERE object_id = ? AND stripe = ? AND idx = ?`, at(ev.Failures, ev.Epoch)...)
	case api.EventVaultShardLost:
		if lost || holder != prov {
			return fmt.Errorf("%s is not held by %s", where, prov)
		}
		var declared bool
		w.row(`SELECT held_height > 0 FROM vault_shards WHERE object_id = ? AND stripe = ? AND idx = ?`, key, &declared)
		w.exec(`UPDATE vault_shards SET lost = 1, provider = '', held_height = 0, failures = 0, repairing = 0
			WHERE object_id = ? AND stripe = ? AND idx = ?`, key...)
		w.exec(`UPDATE storage_offers SET used = max(used - ?, 0), shards = max(shards - 1, 0) WHERE provider = ?`, size, prov)
		// A rebuilt shard lost again before its first proof passed: that repair failed.
		w.exec(`UPDATE vault_repairs SET state = ? WHERE object_id = ? AND stripe = ? AND idx = ? AND state = ?`,
			append(append([]any{RepairFailed}, key...), RepairRebuilding)...)
		w.exec(`INSERT INTO vault_repairs (object_id, stripe, idx, root, lost_provider, lost_epoch, lost_height, state)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ev.ObjectID, ev.Stripe, ev.Index, root, prov, ev.Epoch, h, RepairLost)
		blk.t.stored -= size
		blk.t.shards--
		if declared {
			blk.t.held--
		}
	case api.EventVaultRepair:
		if !lost {
			return fmt.Errorf("%s is not lost: there is nothing to repair", where)
		}
		w.exec(`UPDATE vault_shards SET lost = 0, provider = ?, price = ?, repair_height = ?, repairing = 1
			WHERE object_id = ? AND stripe = ? AND idx = ?`, at(prov, ev.Price, h)...)
		w.exec(`UPDATE storage_offers SET used = used + ?, shards = shards + 1 WHERE provider = ?`, size, prov)
		w.exec(`UPDATE vault_repairs SET provider = ?, price = ?, drawn_height = ?, drawn_epoch = ?, state = ?
			WHERE object_id = ? AND stripe = ? AND idx = ? AND state = ?`, append(at(prov, ev.Price, h, ev.Epoch, RepairRebuilding), RepairLost)...)
		blk.t.stored += size
		blk.t.shards++
	case api.EventVaultRepaired:
		if !repairing || holder != prov {
			return fmt.Errorf("%s is not being rebuilt by %s", where, prov)
		}
		w.exec(`UPDATE vault_shards SET repairing = 0 WHERE object_id = ? AND stripe = ? AND idx = ?`, key...)
		w.exec(`UPDATE vault_repairs SET repaired_height = ?, repaired_epoch = ?, fee = ?, state = ?
			WHERE object_id = ? AND stripe = ? AND idx = ? AND state = ?`, append(at(h, ev.Epoch, ev.Amount, RepairRepaired), RepairRebuilding)...)
	}
	w.exec(`INSERT INTO vault_proofs (object_id, stripe, idx, root, type, provider, epoch, height, failures, price, amount)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ev.ObjectID, ev.Stripe, ev.Index, root, e.Type, prov, ev.Epoch, h, ev.Failures, ev.Price, ev.Amount)
	return nil
}

func (w *writer) vaultEpochPaid(e client.Event, b client.Block) error {
	ev, err := api.ParseVaultEpochPaid(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.Epoch, ev.Amount, ev.Shards, ev.Failed); err != nil {
		return err
	}
	var one int
	if !w.row(`SELECT 1 FROM vault_epochs WHERE epoch = ? AND tallied = 0`, []any{ev.Epoch}, &one) {
		return fmt.Errorf("epoch %d is not being tallied", ev.Epoch)
	}
	if w.execN(`INSERT INTO vault_provider_epochs (provider, epoch, height, amount, shards, failed) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, ev.Provider.String(), ev.Epoch, b.Height, ev.Amount, ev.Shards, ev.Failed) == 0 {
		return fmt.Errorf("provider %s was paid for epoch %d already", ev.Provider, ev.Epoch)
	}
	return nil
}

// vaultTallied records an epoch's result. A decided epoch ends the failure streak of every shard it did not
// fail, as the ledger's tally does; the pool's balance is the ledger's own from here on.
func (w *writer) vaultTallied(e client.Event, blk *vaultBlock) error {
	ev, err := api.ParseVaultTallied(e.Attrs)
	if err != nil {
		return err
	}
	if err := fits(ev.Epoch, ev.Bytes, ev.Failed, ev.Lost, ev.Paid, ev.Pool); err != nil {
		return err
	}
	if w.execN(`UPDATE vault_epochs SET tallied = 1, tally_height = ?, tally_ms = ?, decided = ?, failed = ?, lost = ?, paid = ?,
			pool = ?, stored = ? WHERE epoch = ? AND tallied = 0`,
		blk.b.Height, blk.b.Time.UnixMilli(), ev.Decided, ev.Failed, ev.Lost, ev.Paid, ev.Pool, ev.Bytes, ev.Epoch) == 0 {
		return fmt.Errorf("epoch %d is not started, or tallied already", ev.Epoch)
	}
	if ev.Decided {
		w.exec(`UPDATE vault_shards SET failures = 0 WHERE failures > 0 AND last_failed < ?`, ev.Epoch)
	}
	blk.t.pool = int64(ev.Pool)
	blk.t.paid += int64(ev.Paid)
	return nil
}

// nonNeg is a total read back as unsigned: a sequence of events a hostile node made up may take one below 0.
func nonNeg(v int64) uint64 { return uint64(max(v, 0)) }

// fromTotal is an SQLite total() (a float, which never overflows) as an amount.
func fromTotal(f float64) uint64 {
	switch {
	case !(f > 0):
		return 0
	case f >= math.MaxUint64:
		return math.MaxUint64
	}
	return uint64(f)
}

// Queries.

// VaultEpoch is an epoch of storage proofs: when it started, the shards it challenged (the index's count:
// declared held when it started) and, once tallied at the end of the next epoch, what its proofs decided.
type VaultEpoch struct {
	Epoch        uint64 `json:"epoch"`
	StartHeight  int64  `json:"start_height"`
	StartMs      int64  `json:"start_ms"`
	Reveals      uint64 `json:"reveals"`      // auditors' beacon reveals mixed into its seed
	Challenged   uint64 `json:"challenged"`   // shards declared held when it started (the index's count)
	Attestations int    `json:"attestations"` // auditors that attested its proofs
	Tallied      bool   `json:"tallied"`
	TallyHeight  int64  `json:"tally_height"`
	TallyMs      int64  `json:"tally_ms"`
	// Decided: auditors holding two thirds of the weight attested; an undecided epoch pays, slashes and loses
	// nothing.
	Decided     bool   `json:"decided"`
	Failed      uint64 `json:"failed"`       // shards failed by two thirds
	Lost        uint64 `json:"lost"`         // shards lost: failed VaultLostAfterFailures epochs in a row
	Paid        uint64 `json:"paid"`         // from the pool to providers, repairs included
	Pool        uint64 `json:"pool"`         // the pool's balance after the tally
	StoredBytes uint64 `json:"stored_bytes"` // the bytes of shards the pool pays for, after the tally
	// SuccessPPM is 1 − failed ÷ challenged in millionths, for a decided epoch that challenged shards; -1
	// otherwise.
	SuccessPPM int64 `json:"success_ppm"`
}

// successPPM is 1 − failed ÷ challenged in millionths (-1 when there is no rate: nothing decided or challenged).
func successPPM(decided bool, challenged, failed uint64) int64 {
	if !decided || challenged == 0 {
		return -1
	}
	failed = min(failed, challenged)
	return int64((challenged - failed) * 1_000_000 / challenged)
}

const vaultEpochCols = `epoch, start_height, start_ms, reveals, challenged, attestations, tallied, tally_height, tally_ms, decided,
	failed, lost, paid, pool, stored`

func scanVaultEpoch(s interface{ Scan(...any) error }) (VaultEpoch, error) {
	var e VaultEpoch
	err := s.Scan(&e.Epoch, &e.StartHeight, &e.StartMs, &e.Reveals, &e.Challenged, &e.Attestations, &e.Tallied, &e.TallyHeight,
		&e.TallyMs, &e.Decided, &e.Failed, &e.Lost, &e.Paid, &e.Pool, &e.StoredBytes)
	e.SuccessPPM = successPPM(e.Tallied && e.Decided, e.Challenged, e.Failed)
	return e, err
}

// VaultEpochs lists the epochs, newest first.
func (db *DB) VaultEpochs(ctx context.Context, p Page) (List[VaultEpoch], error) {
	p = p.clamp()
	out := List[VaultEpoch]{Items: []VaultEpoch{}, Offset: p.Offset, Limit: p.Limit}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM vault_epochs`,
		`SELECT `+vaultEpochCols+` FROM vault_epochs ORDER BY epoch DESC`, nil,
		func(r *sql.Rows) error {
			e, err := scanVaultEpoch(r)
			out.Items = append(out.Items, e)
			return err
		})
	return out, err
}

// vaultProofsOverview adds the proofs' figures to v.
func (db *DB) vaultProofsOverview(ctx context.Context, v *VaultOverview) error {
	var err error
	if v.Audited, err = db.VaultAudited(ctx); err != nil {
		return err
	}
	rows, err := db.sql.QueryContext(ctx, `SELECT state, count(*) FROM vault_repairs WHERE state IN (?, ?, ?) GROUP BY state`,
		RepairLost, RepairRebuilding, RepairRepaired)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return err
		}
		switch state {
		case RepairLost:
			v.ShardsLost = n
		case RepairRebuilding:
			v.ShardsRepairing = n
		case RepairRepaired:
			v.Repaired = n
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, q := range []struct {
		where string
		to    **VaultEpoch
	}{{"tallied = 1", &v.LastTallied}, {"tallied = 1 AND decided = 1", &v.LastDecided}} {
		e, err := scanVaultEpoch(db.sql.QueryRowContext(ctx, `SELECT `+vaultEpochCols+` FROM vault_epochs WHERE `+q.where+` ORDER BY epoch DESC LIMIT 1`))
		switch {
		case err == nil:
			*q.to = &e
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
	}
	return nil
}

// VaultEpochPoint is what the tallied epochs of a stretch of time decided, for the charts: the last epoch's
// pool and bytes, the sums of the rest. Challenged and Failed count decided epochs only.
type VaultEpochPoint struct {
	Epoch       uint64 `json:"epoch"`   // the last of the stretch
	TimeMs      int64  `json:"time_ms"` // its tally's block time
	Epochs      int    `json:"epochs"`
	Decided     int    `json:"decided"`
	Challenged  uint64 `json:"challenged"`
	Failed      uint64 `json:"failed"`
	Lost        uint64 `json:"lost"`
	Paid        uint64 `json:"paid"`
	Pool        uint64 `json:"pool"`
	StoredBytes uint64 `json:"stored_bytes"`
	SuccessPPM  int64  `json:"success_ppm"` // 1 − failed ÷ challenged, -1 when none decided
}

// vaultEpochsCharted bounds the epochs the charts read: the most recent ones.
const vaultEpochsCharted = 20_000

// VaultEpochHistory is the tallied epochs over time, oldest first: the most recent 20,000 in up to buckets
// equal stretches of their tallies' block time.
func (db *DB) VaultEpochHistory(ctx context.Context, buckets int) ([]VaultEpochPoint, error) {
	buckets = min(max(buckets, 1), 200)
	const recent = `(SELECT * FROM vault_epochs WHERE tallied = 1 ORDER BY epoch DESC LIMIT 20000)`
	var lo, hi int64
	if err := db.sql.QueryRowContext(ctx, `SELECT coalesce(min(tally_ms), 0), coalesce(max(tally_ms), 0) FROM `+recent).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	width := max((hi-lo)/int64(buckets)+1, 1)
	rows, err := db.sql.QueryContext(ctx, `WITH t AS (SELECT *, (tally_ms - ?) / ? AS b FROM `+recent+`),
		g AS (SELECT b, max(epoch) AS last, count(*) AS n, sum(decided) AS d,
			total(CASE WHEN decided = 1 THEN challenged ELSE 0 END) AS ch, total(CASE WHEN decided = 1 THEN failed ELSE 0 END) AS f,
			total(lost) AS l, total(paid) AS p FROM t GROUP BY b)
		SELECT g.last, e.tally_ms, g.n, g.d, g.ch, g.f, g.l, g.p, e.pool, e.stored FROM g JOIN vault_epochs e ON e.epoch = g.last ORDER BY g.b`,
		lo, width)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []VaultEpochPoint{}
	for rows.Next() {
		var p VaultEpochPoint
		var ch, f, l, paid float64
		if err := rows.Scan(&p.Epoch, &p.TimeMs, &p.Epochs, &p.Decided, &ch, &f, &l, &paid, &p.Pool, &p.StoredBytes); err != nil {
			return nil, err
		}
		p.Challenged, p.Failed, p.Lost, p.Paid = fromTotal(ch), fromTotal(f), fromTotal(l), fromTotal(paid)
		p.SuccessPPM = successPPM(p.Decided > 0, p.Challenged, p.Failed)
		out = append(out, p)
	}
	return out, rows.Err()
}

// VaultRepair is a lost shard's repair: lost by one provider in an epoch, drawn onto another (which rebuilds
// it from the stripe's other shards), repaired once its first proof there passed, with the fee the pool paid.
type VaultRepair struct {
	ID             int64  `json:"id"`
	ObjectID       uint64 `json:"object_id"`
	Stripe         int    `json:"stripe"`
	Index          int    `json:"index"`
	Root           string `json:"root"`
	LostProvider   string `json:"lost_provider"`
	LostEpoch      uint64 `json:"lost_epoch"`
	LostHeight     int64  `json:"lost_height"`
	Provider       string `json:"provider"` // drawn onto ("" while lost)
	Price          uint64 `json:"price_per_gib_month"`
	DrawnHeight    int64  `json:"drawn_height"`
	DrawnEpoch     uint64 `json:"drawn_epoch"`
	RepairedHeight int64  `json:"repaired_height"`
	RepairedEpoch  uint64 `json:"repaired_epoch"`
	Fee            uint64 `json:"fee"`
	State          string `json:"state"` // one of RepairStates
}

// VaultRepairFilter selects repairs: in a state, of a provider (lost by it or drawn onto it), of an object.
type VaultRepairFilter struct {
	State    string `json:"state,omitempty"`
	Provider string `json:"provider,omitempty"`
	ObjectID uint64 `json:"object_id,omitempty"`
}

// Validate names the first bad field.
func (f VaultRepairFilter) Validate() error {
	if f.State != "" && !slices.Contains(RepairStates, f.State) {
		return fmt.Errorf("state %q: use one of %s", f.State, strings.Join(RepairStates, ", "))
	}
	return nil
}

// VaultRepairs lists repairs, newest first.
func (db *DB) VaultRepairs(ctx context.Context, f VaultRepairFilter, p Page) (List[VaultRepair], error) {
	p = p.clamp()
	out := List[VaultRepair]{Items: []VaultRepair{}, Offset: p.Offset, Limit: p.Limit}
	if err := f.Validate(); err != nil {
		return out, err
	}
	where, args := "1 = 1", []any{}
	if f.State != "" {
		where, args = where+" AND state = ?", append(args, f.State)
	}
	if f.Provider != "" {
		where, args = where+" AND (provider = ? OR lost_provider = ?)", append(args, f.Provider, f.Provider)
	}
	if f.ObjectID > 0 {
		where, args = where+" AND object_id = ?", append(args, f.ObjectID)
	}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM vault_repairs WHERE `+where,
		`SELECT id, object_id, stripe, idx, root, lost_provider, lost_epoch, lost_height, provider, price, drawn_height, drawn_epoch,
			repaired_height, repaired_epoch, fee, state FROM vault_repairs WHERE `+where+` ORDER BY id DESC`, args,
		func(r *sql.Rows) error {
			var x VaultRepair
			err := r.Scan(&x.ID, &x.ObjectID, &x.Stripe, &x.Index, &x.Root, &x.LostProvider, &x.LostEpoch, &x.LostHeight, &x.Provider,
				&x.Price, &x.DrawnHeight, &x.DrawnEpoch, &x.RepairedHeight, &x.RepairedEpoch, &x.Fee, &x.State)
			out.Items = append(out.Items, x)
			return err
		})
	return out, err
}

// VaultProofEvent is one event of a shard's proof history: failed in an epoch (Failures in a row), lost by its
// provider, drawn onto Provider at Price to be rebuilt, repaired (its first proof passed there: Amount paid).
type VaultProofEvent struct {
	ID       int64  `json:"id"`
	ObjectID uint64 `json:"object_id"`
	Stripe   int    `json:"stripe"`
	Index    int    `json:"index"`
	Root     string `json:"root"`
	Type     string `json:"type"` // vault.proof_failed, vault.shard_lost, vault.repair or vault.repaired
	Provider string `json:"provider"`
	Epoch    uint64 `json:"epoch"`
	Height   int64  `json:"height"`
	Failures uint64 `json:"failures,omitempty"`
	Price    uint64 `json:"price_per_gib_month,omitempty"`
	Amount   uint64 `json:"amount,omitempty"`
}

// VaultProofFilter selects proof events: of an object, of the shards with a root, or naming a provider.
type VaultProofFilter struct {
	ObjectID uint64 `json:"object_id,omitempty"`
	Root     string `json:"root,omitempty"`
	Provider string `json:"provider,omitempty"`
}

// VaultProofEvents lists proof events, newest first.
func (db *DB) VaultProofEvents(ctx context.Context, f VaultProofFilter, p Page) (List[VaultProofEvent], error) {
	p = p.clamp()
	out := List[VaultProofEvent]{Items: []VaultProofEvent{}, Offset: p.Offset, Limit: p.Limit}
	where, args := "1 = 1", []any{}
	if f.ObjectID > 0 {
		where, args = where+" AND object_id = ?", append(args, f.ObjectID)
	}
	if f.Root != "" {
		where, args = where+" AND root = ?", append(args, f.Root)
	}
	if f.Provider != "" {
		where, args = where+" AND provider = ?", append(args, f.Provider)
	}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM vault_proofs WHERE `+where,
		`SELECT id, object_id, stripe, idx, root, type, provider, epoch, height, failures, price, amount FROM vault_proofs
		WHERE `+where+` ORDER BY id DESC`, args,
		func(r *sql.Rows) error {
			var x VaultProofEvent
			err := r.Scan(&x.ID, &x.ObjectID, &x.Stripe, &x.Index, &x.Root, &x.Type, &x.Provider, &x.Epoch, &x.Height, &x.Failures,
				&x.Price, &x.Amount)
			out.Items = append(out.Items, x)
			return err
		})
	return out, err
}

// VaultEarnings is what a storage provider earned from the Vault pool and how its proofs went.
type VaultEarnings struct {
	Earned     uint64 `json:"earned"`      // EpochPay + RepairFees: the ledger's vault_provider earned
	EpochPay   uint64 `json:"epoch_pay"`   // for epochs' shards that did not fail (vault.epoch_paid)
	RepairFees uint64 `json:"repair_fees"` // for shards it rebuilt (vault.repaired)
	EpochsPaid int    `json:"epochs_paid"` // epochs it was paid (or failed) in
	Failed     uint64 `json:"failed"`      // shard-epochs it failed: the ledger's vault_provider failed
	Lost       int    `json:"lost"`        // shards taken from it
	Repairs    int    `json:"repairs"`     // shards drawn onto it to rebuild
	Repaired   int    `json:"repaired"`    // of them, repaired
}

// VaultEarnings sums a provider's Vault pay and failures.
func (db *DB) VaultEarnings(ctx context.Context, addr string) (VaultEarnings, error) {
	var e VaultEarnings
	var pay, failed, fees float64
	err := db.sql.QueryRowContext(ctx, `SELECT total(amount), total(failed), count(*) FROM vault_provider_epochs WHERE provider = ?`,
		addr).Scan(&pay, &failed, &e.EpochsPaid)
	if err != nil {
		return e, err
	}
	err = db.sql.QueryRowContext(ctx, `SELECT total(CASE WHEN state = ? THEN fee ELSE 0 END), count(*), count(CASE WHEN state = ? THEN 1 END)
		FROM vault_repairs WHERE provider = ?`, RepairRepaired, RepairRepaired, addr).Scan(&fees, &e.Repairs, &e.Repaired)
	if err != nil {
		return e, err
	}
	if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM vault_repairs WHERE lost_provider = ?`, addr).Scan(&e.Lost); err != nil {
		return e, err
	}
	e.EpochPay, e.Failed, e.RepairFees = fromTotal(pay), fromTotal(failed), fromTotal(fees)
	e.Earned = e.EpochPay + e.RepairFees
	if e.Earned < e.EpochPay {
		e.Earned = math.MaxUint64
	}
	return e, nil
}

// VaultProviderEpoch is a provider's pay for an epoch (vault.epoch_paid): for the Shards it held at the tally,
// less the Failed ones.
type VaultProviderEpoch struct {
	Epoch  uint64 `json:"epoch"`
	Height int64  `json:"height"`
	Amount uint64 `json:"amount"`
	Shards uint64 `json:"shards"`
	Failed uint64 `json:"failed"`
}

// VaultProviderEpochs lists a provider's epochs paid, newest first.
func (db *DB) VaultProviderEpochs(ctx context.Context, addr string, p Page) (List[VaultProviderEpoch], error) {
	p = p.clamp()
	out := List[VaultProviderEpoch]{Items: []VaultProviderEpoch{}, Offset: p.Offset, Limit: p.Limit}
	var err error
	out.Total, err = db.list(ctx, p, `SELECT count(*) FROM vault_provider_epochs WHERE provider = ?`,
		`SELECT epoch, height, amount, shards, failed FROM vault_provider_epochs WHERE provider = ? ORDER BY epoch DESC`, []any{addr},
		func(r *sql.Rows) error {
			var x VaultProviderEpoch
			err := r.Scan(&x.Epoch, &x.Height, &x.Amount, &x.Shards, &x.Failed)
			out.Items = append(out.Items, x)
			return err
		})
	return out, err
}

// VaultAudited says whether a Vault epoch has started: the chain audits storage.
func (db *DB) VaultAudited(ctx context.Context) (bool, error) {
	var one int
	err := db.sql.QueryRowContext(ctx, `SELECT 1 FROM vault_epochs LIMIT 1`).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
