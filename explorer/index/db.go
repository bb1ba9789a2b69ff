// Package index follows the Spare chain and keeps what the explorer shows in SQLite: blocks, transactions,
// events, and the latest state of every provider, order, bid and lease, with the sums the pages need (earnings,
// payments, GPUs by model); and Spare Vault's objects, shards and storage offers, with the network's storage
// totals after every block that changed them (vault.go), and its storage proofs, the pool's pay and repairs
// (vaultproofs.go); and the rewards the ledger mints, by epoch and by provider, against what it burns
// (rewards.go). One SQLite transaction per block, the last indexed height with it, so a restarted indexer resumes
// exactly after the last block it stored: no gap, no duplicate.
package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	_ "modernc.org/sqlite" // pure-Go SQLite driver, registered as "sqlite"
)

// schemaVersion is bumped with every change to schema; an index of another version is rebuilt from the chain.
const schemaVersion = 10

const schema = `
CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE blocks (
	height INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, hash TEXT NOT NULL, proposer TEXT NOT NULL,
	txs INTEGER NOT NULL, failed INTEGER NOT NULL, events INTEGER NOT NULL, fees INTEGER NOT NULL);
CREATE TABLE txs (
	height INTEGER NOT NULL, idx INTEGER NOT NULL, hash TEXT NOT NULL, signer TEXT NOT NULL, nonce INTEGER NOT NULL,
	fee INTEGER NOT NULL, memo TEXT NOT NULL, msgs TEXT NOT NULL, raw BLOB NOT NULL, code INTEGER NOT NULL,
	log TEXT NOT NULL, PRIMARY KEY (height, idx));
CREATE INDEX txs_hash ON txs (hash);
CREATE INDEX txs_signer ON txs (signer, height);
CREATE TABLE events (
	id INTEGER PRIMARY KEY, height INTEGER NOT NULL, tx_hash TEXT NOT NULL, type TEXT NOT NULL, attrs TEXT NOT NULL);
CREATE INDEX events_height ON events (height);
CREATE TABLE refs (kind TEXT NOT NULL, ref TEXT NOT NULL, event_id INTEGER NOT NULL,
	PRIMARY KEY (kind, ref, event_id)) WITHOUT ROWID;
CREATE TABLE accounts (
	address TEXT PRIMARY KEY, first_height INTEGER NOT NULL, last_height INTEGER NOT NULL, txs INTEGER NOT NULL);
CREATE TABLE providers (
	address TEXT PRIMARY KEY, status TEXT NOT NULL, stake INTEGER NOT NULL, unbonding INTEGER NOT NULL,
	required_stake INTEGER NOT NULL, region TEXT NOT NULL, zone TEXT NOT NULL, host_uri TEXT NOT NULL,
	gpu_models TEXT NOT NULL, gpu_count INTEGER NOT NULL, cpu_milli INTEGER NOT NULL, memory_mib INTEGER NOT NULL,
	docker INTEGER NOT NULL, verified INTEGER NOT NULL, completed INTEGER NOT NULL, failed INTEGER NOT NULL,
	reputation_ppm INTEGER NOT NULL, registered_height INTEGER NOT NULL, updated_height INTEGER NOT NULL,
	earned INTEGER NOT NULL DEFAULT 0, slashed INTEGER NOT NULL DEFAULT 0, leases INTEGER NOT NULL DEFAULT 0,
	last_price INTEGER NOT NULL DEFAULT 0, epochs_up INTEGER NOT NULL DEFAULT 0, epochs_down INTEGER NOT NULL DEFAULT 0,
	uptime_ppm INTEGER NOT NULL DEFAULT -1, jailed_until_ms INTEGER NOT NULL DEFAULT 0,
	verified_class TEXT NOT NULL DEFAULT '', verified_ops INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL);
CREATE INDEX providers_earned ON providers (earned, address);
CREATE INDEX providers_stake ON providers (stake, address);
CREATE INDEX providers_gpus ON providers (gpu_count, address);
CREATE INDEX providers_price ON providers (last_price, address);
CREATE INDEX providers_reputation ON providers (reputation_ppm, address);
CREATE INDEX providers_leases ON providers (leases, address);
CREATE INDEX providers_registered ON providers (registered_height, address);
CREATE INDEX providers_slashed ON providers (slashed, address);
CREATE INDEX providers_uptime ON providers (uptime_ppm, address);
CREATE INDEX providers_region ON providers (region);
CREATE TABLE provider_gpus (address TEXT NOT NULL, model TEXT NOT NULL, vram_mib INTEGER NOT NULL,
	count INTEGER NOT NULL, PRIMARY KEY (address, model, vram_mib)) WITHOUT ROWID;
CREATE INDEX provider_gpus_model ON provider_gpus (model, address);
CREATE TABLE orders (
	id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, state TEXT NOT NULL, gpu_count INTEGER NOT NULL,
	gpu_models TEXT NOT NULL, cpu_milli INTEGER NOT NULL, max_price INTEGER NOT NULL, deposit INTEGER NOT NULL,
	duration_sec INTEGER NOT NULL, created_height INTEGER NOT NULL, lease_id INTEGER NOT NULL, json TEXT NOT NULL);
CREATE INDEX orders_tenant ON orders (tenant, id);
CREATE INDEX orders_state ON orders (state, id);
CREATE TABLE bids (
	id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, provider TEXT NOT NULL, price INTEGER NOT NULL,
	state TEXT NOT NULL, created_height INTEGER NOT NULL);
CREATE INDEX bids_order ON bids (order_id);
CREATE INDEX bids_provider ON bids (provider, id);
CREATE TABLE leases (
	id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, provider TEXT NOT NULL, tenant TEXT NOT NULL,
	state TEXT NOT NULL, price INTEGER NOT NULL, gpu_count INTEGER NOT NULL, gpu_model TEXT NOT NULL,
	gpu_price INTEGER NOT NULL, cpu_milli INTEGER NOT NULL, cpu_price INTEGER NOT NULL,
	created_height INTEGER NOT NULL, created_ms INTEGER NOT NULL, started_ms INTEGER NOT NULL, ended_ms INTEGER NOT NULL,
	deposit INTEGER NOT NULL, paid INTEGER NOT NULL, refunded INTEGER NOT NULL, exit_code INTEGER,
	close_reason TEXT NOT NULL, closed_by TEXT NOT NULL, vault_root TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX leases_provider ON leases (provider, id);
CREATE INDEX leases_vault_root ON leases (vault_root, id) WHERE vault_root != '';
CREATE INDEX leases_tenant ON leases (tenant, id);
CREATE INDEX leases_state ON leases (state, id);
CREATE INDEX leases_price ON leases (gpu_model, created_ms);
CREATE INDEX leases_cpu ON leases (id) WHERE gpu_count = 0; -- the CPU price index reads only these
CREATE TABLE payments (
	height INTEGER NOT NULL, time_ms INTEGER NOT NULL, lease_id INTEGER NOT NULL, provider TEXT NOT NULL,
	amount INTEGER NOT NULL, take INTEGER NOT NULL, event_id INTEGER NOT NULL PRIMARY KEY, burned INTEGER NOT NULL DEFAULT 0);
CREATE INDEX payments_provider ON payments (provider, height);
CREATE INDEX payments_lease ON payments (lease_id);
`

// DB is the explorer's SQLite database.
type DB struct {
	sql *sql.DB
}

// Open opens (creating if needed) the index at path. An index written by another schema version is emptied,
// to be rebuilt from the chain.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("index: the database path is empty")
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "cache_size(-32000)"} {
		q.Add("_pragma", p)
	}
	s, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", path, err)
	}
	s.SetMaxOpenConns(8)
	db := &DB{sql: s}
	if err := db.migrate(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("index: %s: %w", path, err)
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error { return db.sql.Close() }

func (db *DB) migrate(ctx context.Context) error {
	var v int
	if err := db.sql.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v == schemaVersion {
		return nil
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, n)
	}
	rows.Close()
	for _, t := range tables {
		if _, err := tx.ExecContext(ctx, "DROP TABLE "+strconv.Quote(t)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, schema+vaultSchema+vaultProofsSchema+rewardsSchema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// meta reads a value of the meta table ("" when unset).
func (db *DB) meta(ctx context.Context, k string) (string, error) {
	var v string
	err := db.sql.QueryRowContext(ctx, "SELECT v FROM meta WHERE k = ?", k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// Height is the last indexed height (0 before the first block).
func (db *DB) Height(ctx context.Context) (int64, error) {
	v, err := db.meta(ctx, "height")
	if err != nil || v == "" {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// ChainID is the chain the index was built from ("" before the first block).
func (db *DB) ChainID(ctx context.Context) (string, error) { return db.meta(ctx, "chain_id") }
