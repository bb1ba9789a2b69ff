package api

import (
	"github.com/sparenet/spare/ledger/tx"
)

// VerifyState is where a replicated order's comparison is.
type VerifyState uint8

const (
	VerifyLeasing      VerifyState = 1 // the order is open: its runs are not leased yet
	VerifyRunning      VerifyState = 2 // leased: waiting for every run to end
	VerifyReferee      VerifyState = 3 // no majority: a referee run is ordered
	VerifyAgreed       VerifyState = 4 // decided by a majority
	VerifyInconclusive VerifyState = 5 // no majority even after the referee: every result paid, nobody slashed
	VerifyCancelled    VerifyState = 6 // the order was cancelled or expired before it was leased
)

func (s VerifyState) String() string {
	return [...]string{"unknown", "leasing", "running", "referee", "agreed", "inconclusive", "cancelled"}[min(int(s), 6)]
}

// MarshalText renders the state name in JSON.
func (s VerifyState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *VerifyState) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("verification state", b, map[string]VerifyState{"leasing": VerifyLeasing, "running": VerifyRunning,
		"referee": VerifyReferee, "agreed": VerifyAgreed, "inconclusive": VerifyInconclusive, "cancelled": VerifyCancelled})
	return err
}

// Verification is the comparison of a replicated order's runs.
type Verification struct {
	OrderID      uint64      `json:"order_id"`
	Replicas     uint32      `json:"replicas"`
	Leases       []uint64    `json:"leases"`                  // the replicas' leases, then the referee's
	RefereeOrder uint64      `json:"referee_order,omitempty"` // the order for a referee run, once needed
	Reserve      uint64      `json:"reserve"`                 // escrow kept for a referee run
	State        VerifyState `json:"state"`
	Root         tx.Hash     `json:"output_root,omitzero"` // the majority's result, once agreed
	ExitCode     int64       `json:"exit_code"`
	DecidedMs    uint64      `json:"decided_ms,omitempty"`
	// The reveal phase of the current round (the replicas', then the referee's): open from the block in which no
	// run can still commit, until the end of block RevealDeadline. RevealDeadline stays as the last phase's.
	RevealOpen     bool   `json:"reveal_open,omitempty"`
	RevealDeadline int64  `json:"reveal_deadline,omitempty"`
	Rewarded       uint64 `json:"rewarded,omitempty"` // paid from the pool to the agreeing runs' providers: half the outvoted ones' slash
}

// RunCommit is where a run stands in commit-reveal.
type RunCommit uint8

const (
	CommitNone      RunCommit = 0 // ended without a commitment: no vote
	CommitAwaiting  RunCommit = 1 // pending or running: may still commit
	CommitCommitted RunCommit = 2 // committed; to reveal in the reveal phase
	CommitRevealed  RunCommit = 3 // revealed and matched: a vote
	CommitMissed    RunCommit = 4 // committed, not revealed before the reveal phase closed: no vote, unpaid
)

func (s RunCommit) String() string {
	return [...]string{"none", "awaiting", "committed", "revealed", "missed", "unknown"}[min(int(s), 5)]
}

// MarshalText renders the state name in JSON.
func (s RunCommit) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *RunCommit) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("commit state", b, map[string]RunCommit{"none": CommitNone, "awaiting": CommitAwaiting,
		"committed": CommitCommitted, "revealed": CommitRevealed, "missed": CommitMissed})
	return err
}

// Commitment is a run's committed result: stored by CommitResult, opened by RevealResult.
type Commitment struct {
	LeaseID    uint64    `json:"lease_id"`
	OrderID    uint64    `json:"order_id"` // the group's replicated order
	Commitment tx.Hash   `json:"commitment"`
	Height     int64     `json:"height"` // committed in this block
	State      RunCommit `json:"state"`  // committed, revealed or missed
}

// VerificationView is a replicated order's comparison with each run's result.
type VerificationView struct {
	Verification
	// Phase is where the current round is: "commit" (runs still running may commit), "reveal" (until the end of
	// block reveal_deadline), or "" once there is no round running (leasing, decided, cancelled, a referee order
	// not leased yet).
	Phase string    `json:"phase,omitempty"`
	Runs  []RunView `json:"runs"`
}

// RunView is one run of a replicated order.
type RunView struct {
	LeaseID    uint64     `json:"lease_id"`
	Provider   tx.Address `json:"provider"`
	Referee    bool       `json:"referee,omitempty"`
	State      LeaseState `json:"state"`
	Result     bool       `json:"result"` // revealed its receipt: a vote
	Commit     RunCommit  `json:"commit"` // awaiting, committed, revealed, missed, or none (ended without committing)
	Commitment tx.Hash    `json:"commitment,omitzero"`
	CommitAt   int64      `json:"committed_height,omitempty"`
	OutputRoot tx.Hash    `json:"output_root,omitzero"`
	ExitCode   int64      `json:"exit_code"`
	Held       uint64     `json:"held"`
	Paid       uint64     `json:"paid"`
	Outvoted   bool       `json:"outvoted,omitempty"`
}
