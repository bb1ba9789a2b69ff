package api

import (
	"github.com/sparenet/spare/ledger/tx"
)

// LatencyIntervalBlocks is the least number of blocks between two PublishLatency of one provider.
const LatencyIntervalBlocks = 20

// ClusterState is where a cluster order is.
type ClusterState uint8

const (
	ClusterLeasing   ClusterState = 1 // the order is open
	ClusterRunning   ClusterState = 2 // members leased
	ClusterFailed    ClusterState = 3 // a member failed: the others were closed
	ClusterDone      ClusterState = 4 // every member ended by completing
	ClusterCancelled ClusterState = 5 // the order ended unleased
	ClusterRestarted ClusterState = 6 // a member failed: the others were closed and NextOrder leases the cluster again
)

func (s ClusterState) String() string {
	return [...]string{"unknown", "leasing", "running", "failed", "done", "cancelled", "restarted"}[min(int(s), 6)]
}

// MarshalText renders the state name in JSON.
func (s ClusterState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *ClusterState) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("cluster state", b, map[string]ClusterState{"leasing": ClusterLeasing, "running": ClusterRunning,
		"failed": ClusterFailed, "done": ClusterDone, "cancelled": ClusterCancelled, "restarted": ClusterRestarted})
	return err
}

// Cluster is a cluster order's members.
type Cluster struct {
	OrderID      uint64       `json:"order_id"`
	Nodes        uint32       `json:"nodes"`
	MaxRTTMicros uint32       `json:"max_rtt_us"`
	OnFailure    uint8        `json:"on_failure"`
	Leases       []uint64     `json:"leases"` // by rank
	State        ClusterState `json:"state"`
	FailedLease  uint64       `json:"failed_lease,omitempty"`
	SearchSteps  uint64       `json:"search_steps,omitempty"` // what choosing the set cost
	// Restarts (OnFailureRestart only).
	Generation   uint32       `json:"generation,omitempty"`    // 0 for the tenant's order, n for its n-th restart
	RestartsLeft uint32       `json:"restarts_left,omitempty"` // how many more times a failure may restart it
	Reserve      uint64       `json:"reserve,omitempty"`       // escrow kept for those restarts
	PrevOrder    uint64       `json:"prev_order,omitempty"`    // the generation this one restarts
	NextOrder    uint64       `json:"next_order,omitempty"`    // the generation that restarted this one
	Excluded     []tx.Address `json:"excluded,omitempty"`      // providers whose member failed an earlier generation
}

// Latency is a provider's latest published round trips.
type Latency struct {
	Provider tx.Address         `json:"provider"`
	Height   int64              `json:"height"`
	Samples  []tx.LatencySample `json:"samples"`
}

// ClusterView is a cluster with its members' leases and hosts, in rank order.
type ClusterView struct {
	Cluster
	Members []ClusterMember `json:"members"`
}

// ClusterMember is one rank of a cluster.
type ClusterMember struct {
	Rank     int        `json:"rank"`
	LeaseID  uint64     `json:"lease_id"`
	Provider tx.Address `json:"provider"`
	HostURI  string     `json:"host_uri"`
	State    LeaseState `json:"state"`
}
