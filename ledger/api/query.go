package api

import (
	"errors"

	"github.com/sparenet/spare/ledger/tx"
)

// Query paths.
const (
	QueryStatus    = "status"
	QueryAccount   = "account"
	QueryProvider  = "provider"
	QueryProviders = "providers"
	QueryOrder     = "order"
	QueryOrders    = "orders"
	QueryBid       = "bid"
	QueryBids      = "bids"
	QueryLease     = "lease"
	QueryLeases    = "leases"
	QueryReceipt   = "receipt"
	QueryParams    = "params"
	QuerySupply    = "supply"
	QueryObjects   = "objects"
	QueryAuditors  = "auditors"
	QueryEpoch     = "epoch"
	QueryVerify    = "verification"
	QueryCluster   = "cluster"
	QueryLatency   = "latency"
	QuerySimulate  = "simulate" // Data: a signed transaction; runs it on a copy of the mempool's state
	QueryEmission  = "emission" // the emission schedule, minted and burned (EmissionView)
	QueryRewards   = "rewards"  // Data: AddressRequest; what it is owed and earned (RewardsView)
)

// Simulation is what running a transaction would do now, against the mempool's state: the gas it used (a client
// sets its gas limit from this, with a margin) and its result. Nothing is kept.
type Simulation struct {
	GasUsed uint64 `json:"gas_used"`
	Code    uint32 `json:"code"`
	Log     string `json:"log,omitempty"`
}

// EpochRequest names an epoch; without one, the current epoch.
type EpochRequest struct {
	Epoch *uint64 `json:"epoch,omitempty"`
}

// DefaultPageLimit and MaxPageLimit bound list sizes.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// QueryCodeBadRequest and QueryCodeNotFound are the codes of failed queries.
const (
	QueryCodeBadRequest uint32 = 1
	QueryCodeNotFound   uint32 = 2
)

// ListRequest selects a page of a list; the filter fields apply to the lists that name them.
type ListRequest struct {
	After    string     `json:"after,omitempty"`
	Limit    int        `json:"limit,omitempty"`
	Tenant   tx.Address `json:"tenant,omitzero"`
	Provider tx.Address `json:"provider,omitzero"`
	OrderID  uint64     `json:"order_id,omitempty"`
	Open     bool       `json:"open,omitempty"` // orders: only open ones
}

// ObjectsRequest names several objects of several kinds, read in one query (an indexer refreshing what a block
// touched). At most MaxPageLimit names in all.
type ObjectsRequest struct {
	Providers []tx.Address `json:"providers,omitempty"`
	Orders    []uint64     `json:"orders,omitempty"`
	Bids      []uint64     `json:"bids,omitempty"`
	Leases    []uint64     `json:"leases,omitempty"`
}

// Objects answers an ObjectsRequest, in the order asked; names that do not exist are left out.
type Objects struct {
	Providers []ProviderView `json:"providers"`
	Orders    []Order        `json:"orders"`
	Bids      []Bid          `json:"bids"`
	Leases    []LeaseView    `json:"leases"`
}

// List is a page of results.
type List[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// IDRequest names one object by number.
type IDRequest struct {
	ID uint64 `json:"id"`
}

// AddressRequest names one account or provider.
type AddressRequest struct {
	Address tx.Address `json:"address"`
	// Pending reads the account as the mempool sees it: the committed state plus the transactions waiting to be
	// included. Clients use it to pick the next nonce.
	Pending bool `json:"pending,omitempty"`
}

// Status is the ledger's position.
type Status struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`
	TimeMs  uint64 `json:"time_ms"`
	MaxGas  uint64 `json:"max_gas,omitempty"` // the block gas limit; a transaction's gas limit may not exceed it
}

// ProviderView is a provider with derived figures.
type ProviderView struct {
	Provider
	ReputationPPM uint64 `json:"reputation_ppm"`
	RequiredStake uint64 `json:"required_stake"`
}

// LeaseView is a lease with what it has earned as of the last block.
type LeaseView struct {
	Lease
	EndMs uint64 `json:"end_ms,omitempty"` // when billing stops if nothing changes
	// CloseMs is when the ledger closes an active lease if nothing changes: EndMs, plus params.completion_grace_sec
	// for a lease that runs to its duration (its provider may complete it until then; nothing more is billed).
	CloseMs  uint64      `json:"close_ms,omitempty"`
	EarnedAt uint64      `json:"earned"` // gross earned by the last block time
	Unpaid   uint64      `json:"unpaid"` // earned but not yet settled
	Receipt  *tx.Receipt `json:"receipt,omitempty"`
}

var ErrNotFound = errors.New("not found")

// QueryCodeInternal is the code of a query that hit a broken invariant (an unreadable stored object).
const QueryCodeInternal uint32 = 3
