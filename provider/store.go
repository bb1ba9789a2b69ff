package provider

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/runtime"
)

// The daemon's local state, persisted in bbolt so that a restart or crash loses no bid, lease or event: every
// record is written before the action it describes is taken, and the last fully processed height is saved
// after each block.

var (
	bucketMeta   = []byte("meta")
	bucketBids   = []byte("bids")   // order id -> BidRecord
	bucketLeases = []byte("leases") // lease id -> LeaseRecord
	keyHeight    = []byte("height")
)

// BidRecord is an open bid of ours.
type BidRecord struct {
	OrderID     uint64      `json:"order_id"`
	BidID       uint64      `json:"bid_id,omitempty"` // known once the bid is in a block
	Price       uint64      `json:"price_per_hour"`
	Reservation Reservation `json:"reservation"`
	Tenant      tx.Address  `json:"tenant"`
}

// LeaseState is where a lease is in the daemon's hands.
type LeaseState string

const (
	LeaseAwaitingManifest LeaseState = "awaiting_manifest"
	LeaseStarting         LeaseState = "starting" // manifest accepted, workload being started
	LeaseRunning          LeaseState = "running"
	LeaseFinishing        LeaseState = "finishing" // workload ended, receipt being submitted
	LeaseRevealing        LeaseState = "revealing" // a replicated run's result committed; revealed once its group's reveal phase opens
	LeaseDone             LeaseState = "done"      // completed or closed on the ledger; resources released
)

// LeaseRecord is one lease this provider serves.
type LeaseRecord struct {
	LeaseID          uint64      `json:"lease_id"`
	OrderID          uint64      `json:"order_id"`
	Tenant           tx.Address  `json:"tenant"`
	Price            uint64      `json:"price_per_hour"`
	DurationSec      uint64      `json:"duration_sec"`
	ManifestHash     tx.Hash     `json:"manifest_hash"`
	Reservation      Reservation `json:"reservation"`
	State            LeaseState  `json:"state"`
	ManifestDeadline time.Time   `json:"manifest_deadline"`
	Runtime          string      `json:"runtime,omitempty"`
	WorkloadState    []byte      `json:"workload_state,omitempty"`
	Outputs          []string    `json:"outputs,omitempty"`
	// OutputsVault: the manifest asked for the outputs in the Vault; the receipt carries their Vault root.
	OutputsVault bool            `json:"outputs_vault,omitempty"`
	Result       *runtime.Result `json:"result,omitempty"`
	OutputFiles  []merkle.File   `json:"output_files,omitempty"`
	// OutputsLeftOut says which outputs the receipt does not cover and why (a link, over the lease's disk...).
	OutputsLeftOut []string `json:"outputs_left_out,omitempty"`
	// DoneAt is when the lease ended here; its directory is removed limits.keep_lease_data later.
	DoneAt time.Time `json:"done_at,omitzero"`
	// Removed: the lease's directory (work files, outputs, log) was removed after the retention period.
	Removed   bool        `json:"removed,omitempty"`
	Receipt   *tx.Receipt `json:"receipt,omitempty"`
	EndReason string      `json:"end_reason,omitempty"`
	// Rendezvous is a cluster member's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...); MasterPort the port
	// this provider gave as rank 0.
	Rendezvous []string `json:"rendezvous,omitempty"`
	Rank       *int     `json:"rank,omitempty"`
	MasterPort int      `json:"master_port,omitempty"`
	// Ports are the job's service ports and the host ports that serve them.
	Ports []runtime.PortMap `json:"ports,omitempty"`
	// A run of a replicated order (or of its referee order) commits to its result before revealing it. Group is
	// the replicated order whose comparison it belongs to; Salt the secret its commitment was made with, saved
	// before CommitResult is sent, so that a restarted daemon can still reveal.
	Group uint64   `json:"group,omitempty"`
	Salt  *tx.Hash `json:"salt,omitempty"`
	// A lease runs under a wall-clock limit of TimeoutSec (0, a record made before extensions: DurationSec). When
	// it may be extended (extend.go) that is the longest this provider lets it run, and the daemon stops it at
	// StartedAt + DurationSec, DurationSec following the ledger. DurationStop: the daemon stopped it there.
	TimeoutSec   uint64    `json:"timeout_sec,omitempty"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	DurationStop bool      `json:"duration_stop,omitempty"`
	// StartDeadline is the ledger's: the height by which the lease must be started (its creation plus
	// params.start_timeout_blocks). The daemon waits for the manifest no longer than that; 0 in a record made
	// before it was kept.
	StartDeadline int64 `json:"start_deadline,omitempty"`
	// ManifestAck is this provider's signature over tx.ManifestAckBytes, handed to the tenant once the manifest
	// was accepted and its workload started: the tenant's proof of delivery on the ledger (ManifestDelivered).
	ManifestAck []byte `json:"manifest_ack,omitempty"`
}

// Store is the daemon's bbolt database.
type Store struct{ db *bolt.DB }

// OpenStore opens (or creates) the database at path.
func OpenStore(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("provider store %s: %w (is another 'spare provider start' running?)", path, err)
	}
	err = db.Update(func(t *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketBids, bucketLeases} {
			if _, err := t.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func idBytes(id uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	return b[:]
}

// Height is the last block whose events were fully processed (0: none).
func (s *Store) Height() (int64, error) {
	var h int64
	err := s.db.View(func(t *bolt.Tx) error {
		if v := t.Bucket(bucketMeta).Get(keyHeight); len(v) == 8 {
			h = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return h, err
}

// SetHeight records that every event up to h was processed.
func (s *Store) SetHeight(h int64) error {
	return s.db.Update(func(t *bolt.Tx) error { return t.Bucket(bucketMeta).Put(keyHeight, idBytes(uint64(h))) })
}

func put(s *Store, bucket []byte, id uint64, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(t *bolt.Tx) error { return t.Bucket(bucket).Put(idBytes(id), b) })
}

func get[T any](s *Store, bucket []byte, id uint64) (*T, error) {
	var out *T
	err := s.db.View(func(t *bolt.Tx) error {
		v := t.Bucket(bucket).Get(idBytes(id))
		if v == nil {
			return nil
		}
		out = new(T)
		return json.Unmarshal(v, out)
	})
	return out, err
}

func list[T any](s *Store, bucket []byte) ([]T, error) {
	var out []T
	err := s.db.View(func(t *bolt.Tx) error {
		return t.Bucket(bucket).ForEach(func(_, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}

func del(s *Store, bucket []byte, id uint64) error {
	return s.db.Update(func(t *bolt.Tx) error { return t.Bucket(bucket).Delete(idBytes(id)) })
}

// PutBid saves an open bid (keyed by order).
func (s *Store) PutBid(b *BidRecord) error { return put(s, bucketBids, b.OrderID, b) }

// Bid loads the open bid on order, or nil.
func (s *Store) Bid(order uint64) (*BidRecord, error) { return get[BidRecord](s, bucketBids, order) }

// DeleteBid forgets the bid on order.
func (s *Store) DeleteBid(order uint64) error { return del(s, bucketBids, order) }

// Bids lists the open bids.
func (s *Store) Bids() ([]BidRecord, error) { return list[BidRecord](s, bucketBids) }

// PutLease saves a lease record.
func (s *Store) PutLease(l *LeaseRecord) error { return put(s, bucketLeases, l.LeaseID, l) }

// Lease loads a lease record, or nil.
func (s *Store) Lease(id uint64) (*LeaseRecord, error) { return get[LeaseRecord](s, bucketLeases, id) }

// Leases lists every lease record, in id order.
func (s *Store) Leases() ([]LeaseRecord, error) { return list[LeaseRecord](s, bucketLeases) }
