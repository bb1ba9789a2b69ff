package api

import (
	"fmt"
	"strconv"

	"github.com/sparenet/spare/ledger/tx"
)

// Typed events. The ledger emits its events as key/value attributes (eventnames.go names them); a client reads
// the ones it acts on through these types, whose parsers are strict: a missing or malformed attribute is an
// EventError naming the event and the attribute, never a zero id or amount that would make a client act on
// order 0 or count a refund of nothing.

// EventError is an event attribute that is missing or does not read as its type.
type EventError struct {
	Type, Key, Value string
	Want             string // what the attribute should have been
	Missing          bool
}

func (e *EventError) Error() string {
	if e.Missing {
		return fmt.Sprintf("ledger event %s: attribute %s is missing (want %s)", e.Type, e.Key, e.Want)
	}
	return fmt.Sprintf("ledger event %s: %s = %q is not %s", e.Type, e.Key, e.Value, e.Want)
}

// attrs reads one event's attributes; the first error sticks.
type attrs struct {
	typ string
	m   map[string]string
	err error
}

func (r *attrs) fail(key, want string) {
	if r.err == nil {
		v, ok := r.m[key]
		r.err = &EventError{Type: r.typ, Key: key, Value: v, Want: want, Missing: !ok}
	}
}

// uint reads a decimal amount or count (0 allowed).
func (r *attrs) uint(key string) uint64 {
	v, err := strconv.ParseUint(r.m[key], 10, 64)
	if err != nil {
		r.fail(key, "a decimal number")
	}
	return v
}

// id reads an object id: decimal and never 0 (ids start at 1).
func (r *attrs) id(key string) uint64 {
	v, err := strconv.ParseUint(r.m[key], 10, 64)
	if err != nil || v == 0 {
		r.fail(key, "an id (a decimal number from 1)")
		return 0
	}
	return v
}

func (r *attrs) addr(key string) tx.Address {
	a, err := tx.ParseAddress(r.m[key])
	if err != nil {
		r.fail(key, "an address")
	}
	return a
}

// hash reads a 32-byte hash written in hex (a content root).
func (r *attrs) hash(key string) tx.Hash {
	h, err := tx.ParseHash(r.m[key])
	if err != nil {
		r.fail(key, "a hash (64 hex digits)")
	}
	return h
}

// str reads a text attribute that must be present (it may be empty).
func (r *attrs) str(key string) string {
	v, ok := r.m[key]
	if !ok {
		r.fail(key, "text")
	}
	return v
}

// OrderCreatedEvent is EventOrderCreated.
type OrderCreatedEvent struct {
	OrderID uint64
	Tenant  tx.Address
}

// ParseOrderCreated reads an EventOrderCreated's attributes.
func ParseOrderCreated(m map[string]string) (OrderCreatedEvent, error) {
	r := &attrs{typ: EventOrderCreated, m: m}
	e := OrderCreatedEvent{OrderID: r.id(AttrOrderID), Tenant: r.addr(AttrTenant)}
	return e, r.err
}

// VaultStoredEvent is EventVaultStored: an object stored, its providers drawn at the end of block PlaceAt.
type VaultStoredEvent struct {
	ObjectID uint64
	Owner    tx.Address
	Escrow   uint64
	PlaceAt  int64
}

// ParseVaultStored reads an EventVaultStored's attributes.
func ParseVaultStored(m map[string]string) (VaultStoredEvent, error) {
	r := &attrs{typ: EventVaultStored, m: m}
	e := VaultStoredEvent{ObjectID: r.id(AttrObjectID), Owner: r.addr(AttrOwner), Escrow: r.uint(AttrAmount), PlaceAt: int64(r.uint(AttrHeight))}
	return e, r.err
}

// VaultStoredDealEvent is EventVaultStored with the object and its deal: what it claims to be (root, size, shard
// count) and what its owner pays (a term of Months at most MaxPricePerGiBMonth, or permanent: Months 0).
type VaultStoredDealEvent struct {
	VaultStoredEvent
	Root                tx.Hash
	Size                uint64
	Shards              uint64
	Months              uint64
	MaxPricePerGiBMonth uint64
}

// ParseVaultStoredDeal reads an EventVaultStored's attributes, all of them.
func ParseVaultStoredDeal(m map[string]string) (VaultStoredDealEvent, error) {
	base, err := ParseVaultStored(m)
	if err != nil {
		return VaultStoredDealEvent{VaultStoredEvent: base}, err
	}
	r := &attrs{typ: EventVaultStored, m: m}
	e := VaultStoredDealEvent{VaultStoredEvent: base, Root: r.hash(AttrRoot), Size: r.uint(AttrSize), Shards: r.uint(AttrShards),
		Months: r.uint(AttrMonths), MaxPricePerGiBMonth: r.uint(AttrMaxPrice)}
	return e, r.err
}

// VaultShardPlacedEvent is EventVaultShardPlaced: shard Index of stripe Stripe of an object, placed on Provider at
// its price, by the draw at the end of the block that emits it.
type VaultShardPlacedEvent struct {
	ObjectID         uint64
	Stripe, Index    uint64
	Root             tx.Hash
	Provider         tx.Address
	PricePerGiBMonth uint64
}

// ParseVaultShardPlaced reads an EventVaultShardPlaced's attributes.
func ParseVaultShardPlaced(m map[string]string) (VaultShardPlacedEvent, error) {
	r := &attrs{typ: EventVaultShardPlaced, m: m}
	e := VaultShardPlacedEvent{ObjectID: r.id(AttrObjectID), Stripe: r.uint(AttrStripe), Index: r.uint(AttrIndex),
		Root: r.hash(AttrRoot), Provider: r.addr(AttrProvider), PricePerGiBMonth: r.uint(AttrPrice)}
	return e, r.err
}

// VaultPlacedEvent is EventVaultPlaced: every shard of an object placed; Cost is what its escrow holds now, Refund
// what went back to its owner (a term deal's escrow at the maximum price less the cost at the drawn prices).
type VaultPlacedEvent struct {
	ObjectID uint64
	Owner    tx.Address
	Shards   uint64
	Cost     uint64
	Refund   uint64
}

// ParseVaultPlaced reads an EventVaultPlaced's attributes.
func ParseVaultPlaced(m map[string]string) (VaultPlacedEvent, error) {
	r := &attrs{typ: EventVaultPlaced, m: m}
	e := VaultPlacedEvent{ObjectID: r.id(AttrObjectID), Owner: r.addr(AttrOwner), Shards: r.uint(AttrShards),
		Cost: r.uint(AttrCost), Refund: r.uint(AttrRefund)}
	return e, r.err
}

// VaultUnplacedEvent is EventVaultUnplaced: an object whose shards the offers could not take at its draw, removed,
// its escrow refunded whole.
type VaultUnplacedEvent struct {
	ObjectID uint64
	Owner    tx.Address
	Refund   uint64
	Reason   string
}

// ParseVaultUnplaced reads an EventVaultUnplaced's attributes.
func ParseVaultUnplaced(m map[string]string) (VaultUnplacedEvent, error) {
	r := &attrs{typ: EventVaultUnplaced, m: m}
	e := VaultUnplacedEvent{ObjectID: r.id(AttrObjectID), Owner: r.addr(AttrOwner), Refund: r.uint(AttrRefund), Reason: r.str(AttrReason)}
	return e, r.err
}

// VaultEndedEvent is EventVaultEnded: a term deal ended, its escrow (Paid) paid to its shards' providers, its
// room released; the object left the state.
type VaultEndedEvent struct {
	ObjectID uint64
	Owner    tx.Address
	Root     tx.Hash
	Paid     uint64
}

// ParseVaultEnded reads an EventVaultEnded's attributes.
func ParseVaultEnded(m map[string]string) (VaultEndedEvent, error) {
	r := &attrs{typ: EventVaultEnded, m: m}
	e := VaultEndedEvent{ObjectID: r.id(AttrObjectID), Owner: r.addr(AttrOwner), Root: r.hash(AttrRoot), Paid: r.uint(AttrPaid)}
	return e, r.err
}

// StorageOfferedEvent is EventStorageOffered: a provider's storage offer set (capacity 0 withdraws it), with the
// bytes its placed shards hold.
type StorageOfferedEvent struct {
	Provider         tx.Address
	CapacityBytes    uint64
	PricePerGiBMonth uint64
	UsedBytes        uint64
}

// ParseStorageOffered reads an EventStorageOffered's attributes.
func ParseStorageOffered(m map[string]string) (StorageOfferedEvent, error) {
	r := &attrs{typ: EventStorageOffered, m: m}
	e := StorageOfferedEvent{Provider: r.addr(AttrProvider), CapacityBytes: r.uint(AttrCapacity), PricePerGiBMonth: r.uint(AttrPrice),
		UsedBytes: r.uint(AttrUsed)}
	return e, r.err
}

// OrderEndedEvent is EventOrderCancelled or EventOrderExpired: the order ended unleased, its escrow refunded.
type OrderEndedEvent struct {
	OrderID uint64
	Tenant  tx.Address
	Refund  uint64
}

// ParseOrderEnded reads an EventOrderCancelled's or EventOrderExpired's attributes (typ names which).
func ParseOrderEnded(typ string, m map[string]string) (OrderEndedEvent, error) {
	r := &attrs{typ: typ, m: m}
	e := OrderEndedEvent{OrderID: r.id(AttrOrderID), Tenant: r.addr(AttrTenant), Refund: r.uint(AttrRefund)}
	return e, r.err
}

// BidPlacedEvent is EventBidPlaced.
type BidPlacedEvent struct {
	BidID, OrderID uint64
	Provider       tx.Address
	Price          uint64
}

// ParseBidPlaced reads an EventBidPlaced's attributes.
func ParseBidPlaced(m map[string]string) (BidPlacedEvent, error) {
	r := &attrs{typ: EventBidPlaced, m: m}
	e := BidPlacedEvent{BidID: r.id(AttrBidID), OrderID: r.id(AttrOrderID), Provider: r.addr(AttrProvider), Price: r.uint(AttrPrice)}
	return e, r.err
}

// BidClosedEvent is EventBidClosed.
type BidClosedEvent struct {
	BidID, OrderID uint64
	Provider       tx.Address
	State          BidState
	Reason         string // why it was lost, when the ledger says ("outbid"); may be empty
}

// ParseBidClosed reads an EventBidClosed's attributes.
func ParseBidClosed(m map[string]string) (BidClosedEvent, error) {
	r := &attrs{typ: EventBidClosed, m: m}
	e := BidClosedEvent{BidID: r.id(AttrBidID), OrderID: r.id(AttrOrderID), Provider: r.addr(AttrProvider), Reason: m[AttrReason]}
	if err := e.State.UnmarshalText([]byte(r.str(AttrState))); err != nil {
		r.fail(AttrState, "a bid state")
	}
	return e, r.err
}

// LeaseCreatedEvent is EventLeaseCreated.
type LeaseCreatedEvent struct {
	LeaseID, OrderID, BidID uint64
	Tenant, Provider        tx.Address
	Price                   uint64
	StartDeadline           uint64 // the height by which it must start
}

// ParseLeaseCreated reads an EventLeaseCreated's attributes.
func ParseLeaseCreated(m map[string]string) (LeaseCreatedEvent, error) {
	r := &attrs{typ: EventLeaseCreated, m: m}
	e := LeaseCreatedEvent{LeaseID: r.id(AttrLeaseID), OrderID: r.id(AttrOrderID), BidID: r.id(AttrBidID),
		Tenant: r.addr(AttrTenant), Provider: r.addr(AttrProvider), Price: r.uint(AttrPrice), StartDeadline: r.uint(AttrStartDeadline)}
	return e, r.err
}

// LeaseExtendedEvent is EventLeaseExtended.
type LeaseExtendedEvent struct {
	LeaseID          uint64
	Tenant, Provider tx.Address
	AddSec           uint64 // seconds added
	DurationSec      uint64 // the new duration
	Added            uint64 // uspr paid into escrow for it
	Deposit          uint64 // the lease's deposit now
	EndMs            uint64 // when its billing now ends (0: not started)
}

// ParseLeaseExtended reads an EventLeaseExtended's attributes.
func ParseLeaseExtended(m map[string]string) (LeaseExtendedEvent, error) {
	r := &attrs{typ: EventLeaseExtended, m: m}
	e := LeaseExtendedEvent{LeaseID: r.id(AttrLeaseID), Tenant: r.addr(AttrTenant), Provider: r.addr(AttrProvider),
		AddSec: r.uint(AttrAddSec), DurationSec: r.uint(AttrDurationSec), Added: r.uint(AttrAdded),
		Deposit: r.uint(AttrDeposit), EndMs: r.uint(AttrEndMs)}
	return e, r.err
}

// LeaseClosedEvent is EventLeaseClosed: a lease ended (closed or completed), settled.
type LeaseClosedEvent struct {
	LeaseID          uint64
	Provider, Tenant tx.Address
	State            LeaseState
	Reason           string
	Paid             uint64 // gross paid for it in all
	Refund           uint64 // what went back to the tenant now
	Held             uint64 // a replicated run's pay, held until the runs are compared
}

// ParseLeaseClosed reads an EventLeaseClosed's attributes.
func ParseLeaseClosed(m map[string]string) (LeaseClosedEvent, error) {
	r := &attrs{typ: EventLeaseClosed, m: m}
	e := LeaseClosedEvent{LeaseID: r.id(AttrLeaseID), Provider: r.addr(AttrProvider), Tenant: r.addr(AttrTenant),
		Reason: r.str(AttrReason), Paid: r.uint(AttrPaid), Refund: r.uint(AttrRefund), Held: r.uint(AttrHeld)}
	if err := e.State.UnmarshalText([]byte(r.str(AttrState))); err != nil {
		r.fail(AttrState, "a lease state")
	}
	return e, r.err
}

// ProviderSlashedEvent is EventProviderSlashed.
type ProviderSlashedEvent struct {
	Provider                 tx.Address
	Amount, Stake, Unbonding uint64 // taken; left bonded; left unbonding
	Reason                   string
}

// ParseProviderSlashed reads an EventProviderSlashed's attributes.
func ParseProviderSlashed(m map[string]string) (ProviderSlashedEvent, error) {
	r := &attrs{typ: EventProviderSlashed, m: m}
	e := ProviderSlashedEvent{Provider: r.addr(AttrProvider), Amount: r.uint(AttrAmount), Stake: r.uint(AttrStake),
		Unbonding: r.uint(AttrUnbonding), Reason: r.str(AttrReason)}
	return e, r.err
}

// ClusterRestartedEvent is EventClusterRestarted: a cluster's next generation was ordered.
type ClusterRestartedEvent struct {
	OrderID, NextOrder uint64
	Tenant             tx.Address
	LeaseID            uint64 // the member whose end caused it
	Reason             string
	Generation         uint64
	RestartsLeft       uint64
}

// ParseClusterRestarted reads an EventClusterRestarted's attributes.
func ParseClusterRestarted(m map[string]string) (ClusterRestartedEvent, error) {
	r := &attrs{typ: EventClusterRestarted, m: m}
	e := ClusterRestartedEvent{OrderID: r.id(AttrOrderID), NextOrder: r.id(AttrNextOrder), Tenant: r.addr(AttrTenant),
		LeaseID: r.id(AttrLeaseID), Reason: r.str(AttrReason), Generation: r.uint(AttrGeneration), RestartsLeft: r.uint(AttrRestartsLeft)}
	return e, r.err
}

// VerifyRefereeEvent is EventVerifyReferee: a replicated order's referee run was ordered.
type VerifyRefereeEvent struct {
	OrderID, RefereeOrder uint64
	Tenant                tx.Address
}

// ParseVerifyReferee reads an EventVerifyReferee's attributes.
func ParseVerifyReferee(m map[string]string) (VerifyRefereeEvent, error) {
	r := &attrs{typ: EventVerifyReferee, m: m}
	e := VerifyRefereeEvent{OrderID: r.id(AttrOrderID), RefereeOrder: r.id(AttrRefereeOrder), Tenant: r.addr(AttrTenant)}
	return e, r.err
}

// Refund is tokens the ledger returned to a tenant, as one of its events records them.
type Refund struct {
	Amount uint64
	// LeaseID is the lease refunded, for the events about one lease; OrderID the order, for the others.
	LeaseID, OrderID uint64
	Tenant           tx.Address
}

// refundEvents are the events that return escrow to a tenant, with the attribute that holds the amount and
// whether they name a lease (else an order).
var refundEvents = map[string]struct {
	key   string
	lease bool
}{
	EventLeaseClosed:            {AttrRefund, true}, // completed or closed: the deposit not paid
	EventLeaseForfeited:         {AttrRefund, true}, // a run's held pay, when it did not vote
	EventLeaseOutvoted:          {AttrRefund, true}, // an outvoted run's pay
	EventOrderCancelled:         {AttrRefund, false},
	EventOrderExpired:           {AttrRefund, false},
	EventClusterReserveRefunded: {AttrAmount, false},
	EventVerifyDecided:          {AttrReserveRefund, false},
}

// ParseRefund reads the refund an event records: ok is false for an event that records none.
func ParseRefund(typ string, m map[string]string) (rf Refund, ok bool, err error) {
	how, ok := refundEvents[typ]
	if !ok {
		return Refund{}, false, nil
	}
	r := &attrs{typ: typ, m: m}
	rf.Amount = r.uint(how.key)
	if how.lease {
		rf.LeaseID, rf.Tenant = r.id(AttrLeaseID), r.addr(AttrTenant)
	} else {
		rf.OrderID = r.id(AttrOrderID)
		if typ != EventVerifyDecided { // a verification's decision does not name the tenant
			rf.Tenant = r.addr(AttrTenant)
		}
	}
	return rf, true, r.err
}

// CompletedAttrs is a lease.completed event's attributes kv, with the receipt's Vault root (AttrVaultRoot) when
// it has one: the event an indexer links a lease's outputs to their Vault object by.
func CompletedAttrs(rc *tx.Receipt, kv ...any) []any {
	if !rc.VaultRoot.IsZero() {
		kv = append(kv, AttrVaultRoot, rc.VaultRoot)
	}
	return kv
}
