package api

import (
	"crypto/ed25519"
	"fmt"

	"github.com/sparenet/spare/ledger/tx"
)

// Account is a token balance and the next nonce expected from its key.
type Account struct {
	Address tx.Address `json:"address"`
	Balance uint64     `json:"balance"`
	Nonce   uint64     `json:"nonce"`
}

// ProviderStatus is a provider's standing.
type ProviderStatus uint8

const (
	ProviderActive ProviderStatus = 1
	ProviderJailed ProviderStatus = 2
)

func (s ProviderStatus) String() string {
	switch s {
	case ProviderActive:
		return "active"
	case ProviderJailed:
		return "jailed"
	}
	return "unknown"
}

// MarshalText renders the status name in JSON.
func (s ProviderStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Provider is a registered compute provider.
type Provider struct {
	Owner            tx.Address        `json:"owner"`
	PubKey           ed25519.PublicKey `json:"pubkey"`
	Info             tx.ProviderInfo   `json:"info"`
	Status           ProviderStatus    `json:"status"`
	Stake            uint64            `json:"stake"`     // bonded, counts toward the minimum
	Unbonding        uint64            `json:"unbonding"` // leaving, still slashable
	RegisteredHeight int64             `json:"registered_height"`
	Completed        uint64            `json:"leases_completed"`
	Failed           uint64            `json:"leases_failed"` // closed by the provider or never started
	Verified         bool              `json:"verified"`      // hardware attested by proof of GPU
	EpochsUp         uint64            `json:"epochs_up"`     // epochs the auditors found it answering
	EpochsDown       uint64            `json:"epochs_down"`   // epochs two thirds of the auditor weight found it down
	DownStreak       uint64            `json:"down_streak"`   // consecutive down epochs
	JailedUntilMs    uint64            `json:"jailed_until_ms,omitempty"`
	Slashed          uint64            `json:"slashed"`                        // total stake taken by slashing
	VerifiedClass    string            `json:"verified_class,omitempty"`       // the device class its proof of GPU passed as
	VerifiedOps      uint64            `json:"verified_ops_per_sec,omitempty"` // int8 ops/s measured then (median of the passing auditors)
	VerifiedHeight   int64             `json:"verified_height,omitempty"`
	EarnedValue      uint64            `json:"earned_value"` // uspr paid for its completed leases (gross): what its record is weighted by
	FailedValue      uint64            `json:"failed_value"` // uspr of deposits on the leases it failed
	// Rewards (docs/economics.md): minted to it and not yet claimed (held in the supply's rewards), minted to it in
	// all, and the last epoch the tally judged it in with what it found.
	RewardsOwed   uint64    `json:"rewards_owed,omitempty"`
	RewardsEarned uint64    `json:"rewards_earned,omitempty"`
	RewardEpoch   uint64    `json:"reward_epoch,omitempty"`
	RewardWhy     RewardWhy `json:"reward_why,omitempty"`
}

// reputationPrior is the value a provider's lease record starts with on each side (completed and failed): the
// record moves only as value paid for completed work moves it, not as the number of leases does.
const reputationPrior = 100 * USPR

// ReputationPPM is derived only from ledger records, in parts per million: the lease record weighted by value,
// (earned+P)/(earned+failed+2P) with earned the uspr paid for its completed leases, failed the deposits of the
// leases it failed and P = reputationPrior (100 SPR); times the uptime (epochs up+1)/(epochs up+down+1); times the
// share of its stake slashing has left it, (stake+unbonding)/(stake+unbonding+slashed) — downtime with leases and
// failed proofs of GPU both slash. Raising the record costs what was paid for it: a provider renting to itself
// pays the take rate on every uspr (docs/ledger.md, "What reputation costs").
func (p *Provider) ReputationPPM() uint64 {
	earned := tx.SatAdd(p.EarnedValue, reputationPrior)
	leases := tx.MulDiv(earned, tx.PPM, tx.SatAdd(tx.SatAdd(earned, p.FailedValue), reputationPrior))
	rep := leases * (p.EpochsUp + 1) / (p.EpochsUp + p.EpochsDown + 1)
	if p.Slashed > 0 {
		held := p.Stake + p.Unbonding
		rep = tx.MulDiv(rep, held, held+p.Slashed)
	}
	return rep
}

// OrderState is where an order is in its life.
type OrderState uint8

const (
	OrderOpen      OrderState = 1
	OrderLeased    OrderState = 2
	OrderCancelled OrderState = 3
	OrderExpired   OrderState = 4
)

func (s OrderState) String() string {
	return [...]string{"unknown", "open", "leased", "cancelled", "expired"}[min(int(s), 4)]
}

// MarshalText renders the state name in JSON.
func (s OrderState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Order is a tenant's request with its escrowed deposit.
type Order struct {
	ID              uint64         `json:"id"`
	Tenant          tx.Address     `json:"tenant"`
	Resources       tx.Resources   `json:"resources"`
	Constraints     tx.Constraints `json:"constraints"`
	MaxPricePerHour uint64         `json:"max_price_per_hour"`
	ManifestHash    tx.Hash        `json:"manifest_hash"`
	Deposit         uint64         `json:"deposit"`
	DurationSec     uint64         `json:"duration_sec"`
	State           OrderState     `json:"state"`
	CreatedHeight   int64          `json:"created_height"`
	WindowEnd       int64          `json:"bid_window_end"` // the auction closes at the end of this block
	ExpiresHeight   int64          `json:"expires_height"`
	LeaseID         uint64         `json:"lease_id,omitempty"`    // the (first) lease made from it
	Replicas        uint32         `json:"replicas,omitempty"`    // >1: a replicated order (see Verification)
	RefereeFor      uint64         `json:"referee_for,omitempty"` // a referee run ordered for that replicated order
	Nodes           uint32         `json:"nodes,omitempty"`       // >1: a cluster order (see Cluster)
}

// Leases is how many leases the order makes at once: one per replica or cluster member, else one.
func (o *Order) Leases() int { return int(max(1, o.Replicas, o.Nodes)) }

// Escrowed is what an open order holds in escrow: its deposit for every lease it will make.
func (o *Order) Escrowed() uint64 { return o.Deposit * uint64(o.Leases()) }

// BidState is where a bid is in its life.
type BidState uint8

const (
	BidOpen      BidState = 1
	BidWon       BidState = 2
	BidLost      BidState = 3
	BidWithdrawn BidState = 4
)

func (s BidState) String() string {
	return [...]string{"unknown", "open", "won", "lost", "withdrawn"}[min(int(s), 4)]
}

// MarshalText renders the state name in JSON.
func (s BidState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Bid is a provider's offer on an order.
type Bid struct {
	ID            uint64     `json:"id"`
	OrderID       uint64     `json:"order_id"`
	Provider      tx.Address `json:"provider"`
	Price         uint64     `json:"price_per_hour"`
	State         BidState   `json:"state"`
	CreatedHeight int64      `json:"created_height"`
}

// LeaseState is where a lease is in its life.
type LeaseState uint8

const (
	LeasePending   LeaseState = 1 // created, workload not yet confirmed running; not billed
	LeaseActive    LeaseState = 2 // billed from StartedMs
	LeaseClosed    LeaseState = 3 // ended early, by deposit exhaustion, duration, or a start timeout
	LeaseCompleted LeaseState = 4 // ended by the provider with a receipt
)

func (s LeaseState) String() string {
	return [...]string{"unknown", "pending", "active", "closed", "completed"}[min(int(s), 4)]
}

// MarshalText renders the state name in JSON.
func (s LeaseState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Lease binds an order to the winning provider and holds the escrow.
type Lease struct {
	ID            uint64     `json:"id"`
	OrderID       uint64     `json:"order_id"`
	BidID         uint64     `json:"bid_id"`
	Tenant        tx.Address `json:"tenant"`
	Provider      tx.Address `json:"provider"`
	Price         uint64     `json:"price_per_hour"`
	DurationSec   uint64     `json:"duration_sec"`
	State         LeaseState `json:"state"`
	CreatedHeight int64      `json:"created_height"`
	StartDeadline int64      `json:"start_deadline"` // height by which LeaseStarted must land
	StartedMs     uint64     `json:"started_ms,omitempty"`
	EndedMs       uint64     `json:"ended_ms,omitempty"`
	Deposit       uint64     `json:"deposit"` // total escrowed, top-ups included
	Paid          uint64     `json:"paid"`    // gross amount settled so far (provider's share + take)
	Take          uint64     `json:"take"`    // part of Paid that went to the network pool
	Refunded      uint64     `json:"refunded"`
	CloseReason   string     `json:"close_reason,omitempty"`
	ClosedBy      tx.Address `json:"closed_by,omitempty"`
	Held          uint64     `json:"held,omitempty"` // a replica's earnings kept in escrow until the runs are compared
	// ManifestDelivered: the tenant showed, with the provider's signed acknowledgement (ManifestDelivered), that
	// the provider received the manifest; a lease not started by its deadline then counts against the provider.
	ManifestDelivered bool `json:"manifest_delivered,omitempty"`
	// Burned is what its payments burned (params.burn_ppm of each): the burns its completion counts as work.
	Burned uint64 `json:"burned,omitempty"`
}

// Supply is every component of the token supply. Invariant:
// Balances + Escrow + Staked + Unbonding + Pool + Rewards == Genesis + Minted - Burned.
type Supply struct {
	Genesis   uint64 `json:"genesis"`
	Minted    uint64 `json:"minted"`
	Burned    uint64 `json:"burned"`
	Balances  uint64 `json:"balances"`
	Escrow    uint64 `json:"escrow"`
	Staked    uint64 `json:"staked"`
	Unbonding uint64 `json:"unbonding"`
	Pool      uint64 `json:"pool"`
	Rewards   uint64 `json:"rewards"` // minted to providers and not yet claimed
}

// Holds reports whether the supply invariant holds.
func (s Supply) Holds() bool {
	held := s.Balances + s.Escrow + s.Staked + s.Unbonding + s.Pool + s.Rewards
	return held+s.Burned == s.Genesis+s.Minted
}

func parseEnum[T ~uint8](what string, b []byte, names map[string]T) (T, error) {
	if v, ok := names[string(b)]; ok {
		return v, nil
	}
	return 0, fmt.Errorf("unknown %s %q", what, b)
}

// UnmarshalText parses a status name.
func (s *ProviderStatus) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("provider status", b, map[string]ProviderStatus{"active": ProviderActive, "jailed": ProviderJailed})
	return err
}

// UnmarshalText parses a state name.
func (s *OrderState) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("order state", b, map[string]OrderState{"open": OrderOpen, "leased": OrderLeased, "cancelled": OrderCancelled, "expired": OrderExpired})
	return err
}

// UnmarshalText parses a state name.
func (s *BidState) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("bid state", b, map[string]BidState{"open": BidOpen, "won": BidWon, "lost": BidLost, "withdrawn": BidWithdrawn})
	return err
}

// UnmarshalText parses a state name.
func (s *LeaseState) UnmarshalText(b []byte) (err error) {
	*s, err = parseEnum("lease state", b, map[string]LeaseState{"pending": LeasePending, "active": LeaseActive, "closed": LeaseClosed, "completed": LeaseCompleted})
	return err
}

// Pruned is what the supply invariant summed over pruned objects, and how many orders were pruned.
type Pruned struct {
	Orders   uint64 `json:"orders"`
	Take     uint64 `json:"take"`     // the pool's take of the pruned leases' payments
	Rewarded uint64 `json:"rewarded"` // paid from the pool to agreeing runs of pruned verifications
}
