package ledger

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/sparenet/spare/ledger/tx"
)

// Objects stored in the ledger state, their canonical encodings and key layout. Every object is encoded with the
// transaction wire codec, so state bytes (and therefore the app hash) are canonical.

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
	earned := satAdd(p.EarnedValue, reputationPrior)
	leases := mulDiv(earned, tx.PPM, satAdd(satAdd(earned, p.FailedValue), reputationPrior))
	rep := leases * (p.EpochsUp + 1) / (p.EpochsUp + p.EpochsDown + 1)
	if p.Slashed > 0 {
		held := p.Stake + p.Unbonding
		rep = mulDiv(rep, held, held+p.Slashed)
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
}

// Supply is every component of the token supply. Invariant:
// Balances + Escrow + Staked + Unbonding + Pool == Genesis + Minted - Burned.
type Supply struct {
	Genesis   uint64 `json:"genesis"`
	Minted    uint64 `json:"minted"`
	Burned    uint64 `json:"burned"`
	Balances  uint64 `json:"balances"`
	Escrow    uint64 `json:"escrow"`
	Staked    uint64 `json:"staked"`
	Unbonding uint64 `json:"unbonding"`
	Pool      uint64 `json:"pool"`
}

// Holds reports whether the supply invariant holds.
func (s Supply) Holds() bool {
	held := s.Balances + s.Escrow + s.Staked + s.Unbonding + s.Pool
	return held+s.Burned == s.Genesis+s.Minted
}

// Key layout. Ids are big-endian so keys sort numerically; addresses are raw 20 bytes.
const (
	pAccount        = "a/"
	pProvider       = "p/"
	pUnbond         = "ub/" // completeMs | provider | seq -> amount
	pUnbondOwner    = "uo/" // provider | completeMs | seq: a provider's unbonding entries (what a slash visits)
	pOrder          = "o/"
	pOrderByTenant  = "ot/"
	pOrderOpen      = "oo/"
	pOrderAuction   = "oa/" // windowEnd | order
	pOrderExpiry    = "ox/" // expiresHeight | order
	pBid            = "b/"
	pBidByOrder     = "bo/" // order | bid: every bid, for queries (messages never iterate it)
	pBidOpen        = "bx/" // order | bid: open bids only (at most max_bids_per_order per order)
	pBidOfProvider  = "bq/" // order | provider -> bid: a provider's open bid on an order (the duplicate check)
	pBidByProvider  = "bp/"
	pLease          = "l/"
	pLeaseByTenant  = "lt/"
	pLeaseByProv    = "lp/"
	pLeaseDepletion = "ld/" // endMs | lease: active leases by the time their billing ends
	pLeaseStartDL   = "ls/" // deadline height | lease: pending leases
	pReceipt        = "r/"
	pAuditor        = "au/" // address -> weight
	pEpochSet       = "es/" // epoch -> the audit set: provider addresses, sorted
	pAttest         = "at/" // epoch | auditor -> up bitmap
	pHWAttest       = "ah/" // epoch | provider | auditor -> proof-of-GPU verdict
	pVerify         = "v/"  // replicated order -> Verification
	pCluster        = "cl/" // cluster order -> Cluster
	pLatency        = "rt/" // provider -> its latest published round trips
	keyParams       = "params"
	keySupply       = "supply"
	keySeq          = "seq/" // + name
)

func be64(v uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return string(b[:])
}

func unbe64(s string) uint64 { return binary.BigEndian.Uint64([]byte(s)) }

func addrKey(prefix string, a tx.Address) string             { return prefix + string(a[:]) }
func idKey(prefix string, id uint64) string                  { return prefix + be64(id) }
func pairKey(prefix string, a, b uint64) string              { return prefix + be64(a) + be64(b) }
func ownedKey(prefix string, a tx.Address, id uint64) string { return prefix + string(a[:]) + be64(id) }

// prefixEnd is the smallest key greater than every key with the prefix.
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// Encodings. Every encoder enforces the bounds its decoder reads with (tx.Writer's Str, Fixed, List) and ends in
// sealed: a value over a bound would make every later read of the object fail, so it is never stored.

// sealed returns what w wrote, or panics when an encoder was handed a value its decoder refuses. The panic stops
// the block before anything is committed (FinalizeBlock names the height and the transaction); CheckTx and
// queries answer with an error.
func sealed(w *tx.Writer, what string) []byte {
	if err := w.Err(); err != nil {
		panic(fmt.Sprintf("ledger: storing %s: %v", what, err))
	}
	return w.Bytes()
}

func encAccount(a *Account) []byte {
	w := tx.NewWriter(16)
	w.Uvarint(a.Balance)
	w.Uvarint(a.Nonce)
	return sealed(w, "account")
}

func decAccount(addr tx.Address, b []byte) (*Account, error) {
	r := tx.NewReader(b)
	a := &Account{Address: addr, Balance: r.Uvarint("balance"), Nonce: r.Uvarint("nonce")}
	return a, r.Done("account")
}

func encProvider(p *Provider) []byte {
	w := tx.NewWriter(160)
	w.Address(p.Owner)
	w.Fixed("pubkey", p.PubKey, ed25519.PublicKeySize)
	tx.EncodeProviderInfo(w, &p.Info)
	w.Byte(byte(p.Status))
	w.Uvarint(p.Stake)
	w.Uvarint(p.Unbonding)
	w.Uvarint(uint64(p.RegisteredHeight))
	w.Uvarint(p.Completed)
	w.Uvarint(p.Failed)
	w.Bool(p.Verified)
	w.Uvarint(p.EpochsUp)
	w.Uvarint(p.EpochsDown)
	w.Uvarint(p.DownStreak)
	w.Uvarint(p.JailedUntilMs)
	w.Uvarint(p.Slashed)
	w.Str("verified_class", p.VerifiedClass, tx.MaxNameLen)
	w.Uvarint(p.VerifiedOps)
	w.Uvarint(uint64(p.VerifiedHeight))
	w.Uvarint(p.EarnedValue)
	w.Uvarint(p.FailedValue)
	w.Bounded("max_lease_sec", p.Info.MaxLeaseSec, tx.MaxDurationSec)
	return sealed(w, "provider")
}

func decProvider(b []byte) (*Provider, error) {
	r := tx.NewReader(b)
	p := &Provider{}
	p.Owner = r.Address("owner")
	p.PubKey = append(ed25519.PublicKey(nil), r.Raw("pubkey", ed25519.PublicKeySize)...)
	tx.DecodeProviderInfo(r, &p.Info)
	p.Status = ProviderStatus(r.Byte("status"))
	p.Stake = r.Uvarint("stake")
	p.Unbonding = r.Uvarint("unbonding")
	p.RegisteredHeight = int64(r.Uvarint("registered_height"))
	p.Completed = r.Uvarint("completed")
	p.Failed = r.Uvarint("failed")
	p.Verified = r.Bool("verified")
	if r.Remaining() > 0 { // written before liveness existed: all zero
		p.EpochsUp, p.EpochsDown, p.DownStreak = r.Uvarint("epochs_up"), r.Uvarint("epochs_down"), r.Uvarint("down_streak")
		p.JailedUntilMs, p.Slashed = r.Uvarint("jailed_until_ms"), r.Uvarint("slashed")
	}
	if r.Remaining() > 0 {
		p.VerifiedClass, p.VerifiedOps = r.String("verified_class", tx.MaxNameLen), r.Uvarint("verified_ops")
		p.VerifiedHeight = int64(r.Uvarint("verified_height"))
	}
	if r.Remaining() > 0 { // written before the record was weighted by value: no value yet
		p.EarnedValue, p.FailedValue = r.Uvarint("earned_value"), r.Uvarint("failed_value")
	}
	if r.Remaining() > 0 { // written before lease extensions existed: none accepted
		p.Info.MaxLeaseSec = r.Bounded("max_lease_sec", tx.MaxDurationSec)
	}
	return p, r.Done("provider")
}

func encOrder(o *Order) []byte {
	w := tx.NewWriter(160)
	w.Uvarint(o.ID)
	w.Address(o.Tenant)
	tx.EncodeResources(w, o.Resources)
	tx.EncodeConstraints(w, o.Constraints)
	w.Uvarint(o.MaxPricePerHour)
	w.Raw(o.ManifestHash[:])
	w.Uvarint(o.Deposit)
	w.Uvarint(o.DurationSec)
	w.Byte(byte(o.State))
	w.Uvarint(uint64(o.CreatedHeight))
	w.Uvarint(uint64(o.WindowEnd))
	w.Uvarint(uint64(o.ExpiresHeight))
	w.Uvarint(o.LeaseID)
	w.Uvarint(uint64(o.Replicas))
	w.Uvarint(o.RefereeFor)
	w.Uvarint(uint64(o.Nodes))
	return sealed(w, "order")
}

func decOrder(b []byte) (*Order, error) {
	r := tx.NewReader(b)
	o := &Order{}
	o.ID = r.Uvarint("id")
	o.Tenant = r.Address("tenant")
	o.Resources = tx.DecodeResources(r)
	o.Constraints = tx.DecodeConstraints(r)
	o.MaxPricePerHour = r.Uvarint("max_price")
	o.ManifestHash = r.Hash("manifest_hash")
	o.Deposit = r.Uvarint("deposit")
	o.DurationSec = r.Uvarint("duration")
	o.State = OrderState(r.Byte("state"))
	o.CreatedHeight = int64(r.Uvarint("created_height"))
	o.WindowEnd = int64(r.Uvarint("window_end"))
	o.ExpiresHeight = int64(r.Uvarint("expires_height"))
	o.LeaseID = r.Uvarint("lease_id")
	if r.Remaining() > 0 { // written before replication existed: a single-run order
		o.Replicas = r.U32("replicas")
		o.RefereeFor = r.Uvarint("referee_for")
	}
	if r.Remaining() > 0 { // written before clusters existed
		o.Nodes = r.U32("nodes")
	}
	return o, r.Done("order")
}

func encBid(bd *Bid) []byte {
	w := tx.NewWriter(48)
	w.Uvarint(bd.ID)
	w.Uvarint(bd.OrderID)
	w.Address(bd.Provider)
	w.Uvarint(bd.Price)
	w.Byte(byte(bd.State))
	w.Uvarint(uint64(bd.CreatedHeight))
	return sealed(w, "bid")
}

func decBid(b []byte) (*Bid, error) {
	r := tx.NewReader(b)
	bd := &Bid{}
	bd.ID = r.Uvarint("id")
	bd.OrderID = r.Uvarint("order_id")
	bd.Provider = r.Address("provider")
	bd.Price = r.Uvarint("price")
	bd.State = BidState(r.Byte("state"))
	bd.CreatedHeight = int64(r.Uvarint("created_height"))
	return bd, r.Done("bid")
}

func encLease(l *Lease) []byte {
	w := tx.NewWriter(128)
	w.Uvarint(l.ID)
	w.Uvarint(l.OrderID)
	w.Uvarint(l.BidID)
	w.Address(l.Tenant)
	w.Address(l.Provider)
	w.Uvarint(l.Price)
	w.Uvarint(l.DurationSec)
	w.Byte(byte(l.State))
	w.Uvarint(uint64(l.CreatedHeight))
	w.Uvarint(uint64(l.StartDeadline))
	w.Uvarint(l.StartedMs)
	w.Uvarint(l.EndedMs)
	w.Uvarint(l.Deposit)
	w.Uvarint(l.Paid)
	w.Uvarint(l.Take)
	w.Uvarint(l.Refunded)
	w.Str("close_reason", l.CloseReason, tx.MaxReasonLen)
	w.Address(l.ClosedBy)
	w.Uvarint(l.Held)
	if l.ManifestDelivered { // written only when set: a lease without it encodes as one written before it existed
		w.Byte(1)
	}
	return sealed(w, "lease")
}

func decLease(b []byte) (*Lease, error) {
	r := tx.NewReader(b)
	l := &Lease{}
	l.ID = r.Uvarint("id")
	l.OrderID = r.Uvarint("order_id")
	l.BidID = r.Uvarint("bid_id")
	l.Tenant = r.Address("tenant")
	l.Provider = r.Address("provider")
	l.Price = r.Uvarint("price")
	l.DurationSec = r.Uvarint("duration")
	l.State = LeaseState(r.Byte("state"))
	l.CreatedHeight = int64(r.Uvarint("created_height"))
	l.StartDeadline = int64(r.Uvarint("start_deadline"))
	l.StartedMs = r.Uvarint("started_ms")
	l.EndedMs = r.Uvarint("ended_ms")
	l.Deposit = r.Uvarint("deposit")
	l.Paid = r.Uvarint("paid")
	l.Take = r.Uvarint("take")
	l.Refunded = r.Uvarint("refunded")
	l.CloseReason = r.String("close_reason", tx.MaxReasonLen)
	l.ClosedBy = r.Address("closed_by")
	if r.Remaining() > 0 { // written before replication existed: nothing held
		l.Held = r.Uvarint("held")
	}
	if r.Remaining() > 0 { // written before delivery proofs existed, or without one: not delivered
		if r.Byte("manifest_delivered") != 1 {
			return nil, fmt.Errorf("lease: manifest_delivered is written only as 1")
		}
		l.ManifestDelivered = true
	}
	return l, r.Done("lease")
}

func encSupply(s *Supply) []byte {
	w := tx.NewWriter(48)
	for _, v := range []uint64{s.Genesis, s.Minted, s.Burned, s.Balances, s.Escrow, s.Staked, s.Unbonding, s.Pool} {
		w.Uvarint(v)
	}
	return sealed(w, "supply")
}

func decSupply(b []byte) (*Supply, error) {
	r := tx.NewReader(b)
	s := &Supply{}
	for _, p := range []*uint64{&s.Genesis, &s.Minted, &s.Burned, &s.Balances, &s.Escrow, &s.Staked, &s.Unbonding, &s.Pool} {
		*p = r.Uvarint("supply")
	}
	return s, r.Done("supply")
}

func encReceipt(rc *tx.Receipt) []byte {
	w := tx.NewWriter(200)
	tx.EncodeReceipt(w, *rc)
	return sealed(w, "receipt")
}

func decReceipt(b []byte) (*tx.Receipt, error) {
	r := tx.NewReader(b)
	rc := tx.DecodeReceipt(r)
	return &rc, r.Done("receipt")
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
