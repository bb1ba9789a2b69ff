package tx

import (
	"crypto/sha256"
	"fmt"
)

// MsgType numbers a message kind on the wire. Numbers are only appended, never reused.
type MsgType uint64

const (
	TypeSend              MsgType = 1
	TypeRegisterProvider  MsgType = 2
	TypeUpdateProvider    MsgType = 3
	TypeBond              MsgType = 4
	TypeUnbond            MsgType = 5
	TypeCreateOrder       MsgType = 6
	TypeCancelOrder       MsgType = 7
	TypePlaceBid          MsgType = 8
	TypeWithdrawBid       MsgType = 9
	TypeAcceptBid         MsgType = 10
	TypeLeaseStarted      MsgType = 11
	TypeCloseLease        MsgType = 12
	TypeCompleteLease     MsgType = 13
	TypeTopUp             MsgType = 14
	TypeWithdraw          MsgType = 15
	TypeAttest            MsgType = 16
	TypeUnjail            MsgType = 17
	TypeAttestHardware    MsgType = 18
	TypeCreateReplicated  MsgType = 19
	TypePublishLatency    MsgType = 20
	TypeCreateCluster     MsgType = 21
	TypeCommitResult      MsgType = 22
	TypeRevealResult      MsgType = 23
	TypeExtendLease       MsgType = 24
	TypeManifestDelivered MsgType = 25
	TypeAnnounceRestart   MsgType = 26
	TypeOfferStorage      MsgType = 27
	TypeStoreObject       MsgType = 28
	TypeAttestStorage     MsgType = 29
	TypeAuditorBeacon     MsgType = 30
	TypeHoldShards        MsgType = 31
	TypeClaimRewards      MsgType = 32
)

var msgNames = map[MsgType]string{
	TypeSend: "send", TypeRegisterProvider: "register_provider", TypeUpdateProvider: "update_provider",
	TypeBond: "bond", TypeUnbond: "unbond", TypeCreateOrder: "create_order", TypeCancelOrder: "cancel_order",
	TypePlaceBid: "place_bid", TypeWithdrawBid: "withdraw_bid", TypeAcceptBid: "accept_bid",
	TypeLeaseStarted: "lease_started", TypeCloseLease: "close_lease", TypeCompleteLease: "complete_lease",
	TypeTopUp: "top_up", TypeWithdraw: "withdraw", TypeAttest: "attest", TypeUnjail: "unjail",
	TypeAttestHardware: "attest_hardware", TypeCreateReplicated: "create_replicated_order",
	TypePublishLatency: "publish_latency", TypeCreateCluster: "create_cluster_order",
	TypeCommitResult: "commit_result", TypeRevealResult: "reveal_result", TypeExtendLease: "extend_lease",
	TypeManifestDelivered: "manifest_delivered", TypeAnnounceRestart: "announce_restart",
	TypeOfferStorage: "offer_storage", TypeStoreObject: "store_object",
	TypeAttestStorage: "attest_storage", TypeAuditorBeacon: "auditor_beacon", TypeHoldShards: "hold_shards",
	TypeClaimRewards: "claim_rewards",
}

func (t MsgType) String() string {
	if n, ok := msgNames[t]; ok {
		return n
	}
	return fmt.Sprintf("msg_%d", uint64(t))
}

// Msg is one action inside a transaction.
type Msg interface {
	Type() MsgType
	ValidateBasic() error
	encode(w *Writer)
	decode(r *Reader)
}

// EncodeMsg writes a message as type, length, payload.
func EncodeMsg(w *Writer, m Msg) {
	w.Uvarint(uint64(m.Type()))
	inner := NewWriter(64)
	m.encode(inner)
	if inner.err != nil && w.err == nil {
		w.err = fmt.Errorf("%s: %w", m.Type(), inner.err)
	}
	w.Blob(inner.Bytes())
}

// DecodeMsg reads one message; unknown types are rejected with CodeUnknownMsgType.
func DecodeMsg(r *Reader) (Msg, error) {
	t := MsgType(r.Uvarint("msg.type"))
	payload := r.Raw("msg.payload", r.Len("msg.length", MaxTxBytes))
	if err := r.Err(); err != nil {
		return nil, Errorf(CodeDecode, "%v", err)
	}
	m := newMsg(t)
	if m == nil {
		return nil, Errorf(CodeUnknownMsgType, "message type %d is not known to this node", uint64(t))
	}
	pr := NewReader(payload)
	m.decode(pr)
	if err := pr.Done(t.String()); err != nil {
		return nil, Errorf(CodeDecode, "%v", err)
	}
	return m, nil
}

func newMsg(t MsgType) Msg {
	switch t {
	case TypeSend:
		return &Send{}
	case TypeRegisterProvider:
		return &RegisterProvider{}
	case TypeUpdateProvider:
		return &UpdateProvider{}
	case TypeBond:
		return &Bond{}
	case TypeUnbond:
		return &Unbond{}
	case TypeCreateOrder:
		return &CreateOrder{}
	case TypeCancelOrder:
		return &CancelOrder{}
	case TypePlaceBid:
		return &PlaceBid{}
	case TypeWithdrawBid:
		return &WithdrawBid{}
	case TypeAcceptBid:
		return &AcceptBid{}
	case TypeLeaseStarted:
		return &LeaseStarted{}
	case TypeCloseLease:
		return &CloseLease{}
	case TypeCompleteLease:
		return &CompleteLease{}
	case TypeTopUp:
		return &TopUp{}
	case TypeWithdraw:
		return &Withdraw{}
	case TypeAttest:
		return &Attest{}
	case TypeUnjail:
		return &Unjail{}
	case TypeAttestHardware:
		return &AttestHardware{}
	case TypeCreateReplicated:
		return &CreateReplicatedOrder{}
	case TypePublishLatency:
		return &PublishLatency{}
	case TypeCreateCluster:
		return &CreateClusterOrder{}
	case TypeCommitResult:
		return &CommitResult{}
	case TypeRevealResult:
		return &RevealResult{}
	case TypeExtendLease:
		return &ExtendLease{}
	case TypeManifestDelivered:
		return &ManifestDelivered{}
	case TypeAnnounceRestart:
		return &AnnounceRestart{}
	case TypeOfferStorage:
		return &OfferStorage{}
	case TypeStoreObject:
		return &StoreObject{}
	case TypeAttestStorage:
		return &AttestStorage{}
	case TypeAuditorBeacon:
		return &AuditorBeacon{}
	case TypeClaimRewards:
		return &ClaimRewards{}
	case TypeHoldShards:
		return &HoldShards{}
	}
	return nil
}

func positive(field string, v uint64) error {
	if v == 0 {
		return Errorf(CodeInvalidMsg, "%s must be positive", field)
	}
	return nil
}

func nonzeroID(field string, v uint64) error {
	if v == 0 {
		return Errorf(CodeInvalidMsg, "%s is 0: ids start at 1", field)
	}
	return nil
}

// Send moves tokens between accounts.
type Send struct {
	To     Address `json:"to"`
	Amount uint64  `json:"amount"`
}

func (*Send) Type() MsgType { return TypeSend }
func (m *Send) ValidateBasic() error {
	if m.To.IsZero() {
		return Errorf(CodeInvalidMsg, "to is the zero address")
	}
	return positive("amount", m.Amount)
}
func (m *Send) encode(w *Writer) { w.Address(m.To); w.Uvarint(m.Amount) }
func (m *Send) decode(r *Reader) { m.To = r.Address("to"); m.Amount = r.Uvarint("amount") }

// ProviderInfo is what a provider declares about itself.
type ProviderInfo struct {
	HostURI         string   `json:"host_uri"`
	CertFingerprint Hash     `json:"cert_fingerprint"` // SHA-256 of the TLS certificate (DER)
	Region          string   `json:"region"`
	Zone            string   `json:"zone"`
	Hardware        Hardware `json:"hardware"`
	Docker          bool     `json:"docker"` // runs container images (the docker runtime)
	// MaxLeaseSec is the longest total duration, in seconds, this provider lets a lease of its run through
	// ExtendLease (its provider.toml's max_lease_duration); 0: no extensions. At most MaxDurationSec. It does not
	// limit the orders the provider bids on: a lease already longer than it just cannot be extended.
	MaxLeaseSec uint64 `json:"max_lease_sec,omitempty"`
}

// Validate checks the declaration.
func (p *ProviderInfo) Validate() error {
	if err := ValidHostURI(p.HostURI); err != nil {
		return err
	}
	if p.CertFingerprint.IsZero() {
		return Errorf(CodeInvalidMsg, "cert_fingerprint is empty: give the SHA-256 of the TLS certificate")
	}
	if err := validName("region", p.Region, true); err != nil {
		return err
	}
	if err := validName("zone", p.Zone, false); err != nil {
		return err
	}
	if p.MaxLeaseSec > MaxDurationSec {
		return Errorf(CodeInvalidMsg, "max_lease_sec %d: at most %d (one year); 0 accepts no extensions", p.MaxLeaseSec, MaxDurationSec)
	}
	return p.Hardware.Validate()
}

// EncodeProviderInfo writes p.
func EncodeProviderInfo(w *Writer, p *ProviderInfo) {
	w.Str("host_uri", p.HostURI, MaxURILen)
	w.Raw(p.CertFingerprint[:])
	w.Str("region", p.Region, MaxNameLen)
	w.Str("zone", p.Zone, MaxNameLen)
	EncodeHardware(w, p.Hardware)
	w.Bool(p.Docker)
}

// DecodeProviderInfo reads p.
func DecodeProviderInfo(r *Reader, p *ProviderInfo) {
	p.HostURI = r.String("host_uri", MaxURILen)
	p.CertFingerprint = r.Hash("cert_fingerprint")
	p.Region = r.String("region", MaxNameLen)
	p.Zone = r.String("zone", MaxNameLen)
	p.Hardware = DecodeHardware(r)
	p.Docker = r.Bool("docker")
}

// EncodeProviderInfo and DecodeProviderInfo leave MaxLeaseSec out: it came later, and is written after
// everything else, by the messages (encodeProviderMsg, only when set) and by the ledger's provider record.

// encodeProviderMsg writes a RegisterProvider's or UpdateProvider's declaration: MaxLeaseSec last, and only when
// it is not 0, so that a message written before extensions existed is still the one encoding of its value.
func encodeProviderMsg(w *Writer, p *ProviderInfo) {
	EncodeProviderInfo(w, p)
	if p.MaxLeaseSec != 0 {
		w.Bounded("max_lease_sec", p.MaxLeaseSec, MaxDurationSec)
	}
}

func decodeProviderMsg(r *Reader, p *ProviderInfo) {
	DecodeProviderInfo(r, p)
	if r.Remaining() > 0 { // absent: written before extensions existed, or no extensions
		if p.MaxLeaseSec = r.Bounded("max_lease_sec", MaxDurationSec); p.MaxLeaseSec == 0 && r.Err() == nil {
			r.Fail("max_lease_sec", "0 is written by leaving the field out")
		}
	}
}

// RegisterProvider makes the signer's account a provider.
type RegisterProvider struct{ ProviderInfo }

func (*RegisterProvider) Type() MsgType          { return TypeRegisterProvider }
func (m *RegisterProvider) ValidateBasic() error { return m.Validate() }
func (m *RegisterProvider) encode(w *Writer)     { encodeProviderMsg(w, &m.ProviderInfo) }
func (m *RegisterProvider) decode(r *Reader)     { decodeProviderMsg(r, &m.ProviderInfo) }

// UpdateProvider replaces the signer's provider declaration.
type UpdateProvider struct{ ProviderInfo }

func (*UpdateProvider) Type() MsgType          { return TypeUpdateProvider }
func (m *UpdateProvider) ValidateBasic() error { return m.Validate() }
func (m *UpdateProvider) encode(w *Writer)     { encodeProviderMsg(w, &m.ProviderInfo) }
func (m *UpdateProvider) decode(r *Reader)     { decodeProviderMsg(r, &m.ProviderInfo) }

// Bond moves tokens from the provider's balance to its stake.
type Bond struct {
	Amount uint64 `json:"amount"`
}

func (*Bond) Type() MsgType          { return TypeBond }
func (m *Bond) ValidateBasic() error { return positive("amount", m.Amount) }
func (m *Bond) encode(w *Writer)     { w.Uvarint(m.Amount) }
func (m *Bond) decode(r *Reader)     { m.Amount = r.Uvarint("amount") }

// Unbond starts returning stake; it stays slashable until the unbonding period ends.
type Unbond struct {
	Amount uint64 `json:"amount"`
}

func (*Unbond) Type() MsgType          { return TypeUnbond }
func (m *Unbond) ValidateBasic() error { return positive("amount", m.Amount) }
func (m *Unbond) encode(w *Writer)     { w.Uvarint(m.Amount) }
func (m *Unbond) decode(r *Reader)     { m.Amount = r.Uvarint("amount") }

// CreateOrder asks for resources and deposits escrow.
type CreateOrder struct {
	Resources       Resources   `json:"resources"`
	Constraints     Constraints `json:"constraints"`
	MaxPricePerHour uint64      `json:"max_price_per_hour"` // uspr per hour for the whole lease
	ManifestHash    Hash        `json:"manifest_hash"`
	Deposit         uint64      `json:"deposit"`           // uspr moved into escrow now
	DurationSec     uint64      `json:"duration_sec"`      // the lease ends by then
	BidWindow       uint64      `json:"bid_window_blocks"` // 0 = the chain's default
	TTL             uint64      `json:"ttl_blocks"`        // order expires after this many blocks; 0 = default
}

// MaxDurationSec bounds a lease's duration (one year).
const MaxDurationSec = 365 * 24 * 3600

func (*CreateOrder) Type() MsgType { return TypeCreateOrder }
func (m *CreateOrder) ValidateBasic() error {
	if err := m.Resources.Validate(); err != nil {
		return err
	}
	if err := m.Constraints.Validate(); err != nil {
		return err
	}
	if err := positive("max_price_per_hour", m.MaxPricePerHour); err != nil {
		return err
	}
	if err := positive("deposit", m.Deposit); err != nil {
		return err
	}
	if m.DurationSec == 0 || m.DurationSec > MaxDurationSec {
		return Errorf(CodeInvalidMsg, "duration_sec %d: must be 1..%d", m.DurationSec, MaxDurationSec)
	}
	if m.ManifestHash.IsZero() {
		return Errorf(CodeInvalidMsg, "manifest_hash is empty: give the SHA-256 of the job manifest")
	}
	return nil
}
func (m *CreateOrder) encode(w *Writer) {
	EncodeResources(w, m.Resources)
	EncodeConstraints(w, m.Constraints)
	w.Uvarint(m.MaxPricePerHour)
	w.Raw(m.ManifestHash[:])
	w.Uvarint(m.Deposit)
	w.Uvarint(m.DurationSec)
	w.Uvarint(m.BidWindow)
	w.Uvarint(m.TTL)
}
func (m *CreateOrder) decode(r *Reader) {
	m.Resources = DecodeResources(r)
	m.Constraints = DecodeConstraints(r)
	m.MaxPricePerHour = r.Uvarint("max_price_per_hour")
	m.ManifestHash = r.Hash("manifest_hash")
	m.Deposit = r.Uvarint("deposit")
	m.DurationSec = r.Uvarint("duration_sec")
	m.BidWindow = r.Uvarint("bid_window")
	m.TTL = r.Uvarint("ttl")
}

// MaxReplicas bounds how many providers one replicated order runs the job on.
const MaxReplicas = 8

// CreateReplicatedOrder is a CreateOrder for a deterministic job that runs on Replicas distinct providers at
// once; the ledger compares their output roots before anyone is paid. Deposit is per run: the tenant escrows
// Deposit × (Replicas + 1), the extra one paying a referee run should the roots disagree (refunded if not).
type CreateReplicatedOrder struct {
	CreateOrder
	Replicas uint32 `json:"replicas"` // 2..MaxReplicas
}

func (*CreateReplicatedOrder) Type() MsgType { return TypeCreateReplicated }
func (m *CreateReplicatedOrder) ValidateBasic() error {
	if m.Replicas < 2 || m.Replicas > MaxReplicas {
		return Errorf(CodeInvalidMsg, "replicas %d: must be 2..%d (one run needs no replication: use create_order)", m.Replicas, MaxReplicas)
	}
	if m.Deposit > ^uint64(0)/uint64(m.Replicas+1) {
		return Errorf(CodeOverflow, "deposit %d × %d runs overflows", m.Deposit, m.Replicas+1)
	}
	return m.CreateOrder.ValidateBasic()
}
func (m *CreateReplicatedOrder) encode(w *Writer) {
	m.CreateOrder.encode(w)
	w.Uvarint(uint64(m.Replicas))
}
func (m *CreateReplicatedOrder) decode(r *Reader) {
	m.CreateOrder.decode(r)
	m.Replicas = r.U32("replicas")
}

// Cluster limits.
const (
	MaxClusterNodes    = 32
	MaxLatencyPeers    = 32
	MaxRTTMicros       = 10_000_000 // 10 s: anything slower is not worth recording
	OnFailureClose     = 1          // one member's lease failing closes the others
	OnFailureRestart   = 2          // one member's failure closes the others and leases the cluster again
	MaxClusterRestarts = 3
)

// CreateClusterOrder is a CreateOrder for Nodes members on distinct providers, leased all at once or not at
// all, whose every pair has a published round trip within MaxRTTMicros. Resources and Deposit are per member:
// the tenant escrows Deposit × Nodes, and as much again for each of MaxRestarts. OnFailure says what one
// member's failure does: OnFailureClose closes the others; OnFailureRestart (with MaxRestarts 1..3) also
// leases a new set of members, at most MaxRestarts times.
type CreateClusterOrder struct {
	CreateOrder
	Nodes        uint32 `json:"nodes"`
	MaxRTTMicros uint32 `json:"max_rtt_us"`
	OnFailure    uint8  `json:"on_failure"`
	MaxRestarts  uint8  `json:"max_restarts,omitempty"`
}

func (*CreateClusterOrder) Type() MsgType { return TypeCreateCluster }
func (m *CreateClusterOrder) ValidateBasic() error {
	switch {
	case m.Nodes < 2 || m.Nodes > MaxClusterNodes:
		return Errorf(CodeInvalidMsg, "nodes %d: a cluster has 2..%d members (one member: use create_order)", m.Nodes, MaxClusterNodes)
	case m.MaxRTTMicros == 0 || m.MaxRTTMicros > MaxRTTMicros:
		return Errorf(CodeInvalidMsg, "max_rtt_us %d: must be 1..%d", m.MaxRTTMicros, MaxRTTMicros)
	case m.OnFailure != OnFailureClose && m.OnFailure != OnFailureRestart:
		return Errorf(CodeInvalidMsg, "on_failure %d: must be %d (close) or %d (restart)", m.OnFailure, OnFailureClose, OnFailureRestart)
	case m.OnFailure == OnFailureClose && m.MaxRestarts != 0:
		return Errorf(CodeInvalidMsg, "max_restarts %d: a cluster that closes on failure is never restarted; use on_failure %d (restart) or max_restarts 0", m.MaxRestarts, OnFailureRestart)
	case m.OnFailure == OnFailureRestart && (m.MaxRestarts == 0 || m.MaxRestarts > MaxClusterRestarts):
		return Errorf(CodeInvalidMsg, "max_restarts %d: a cluster that restarts on failure needs 1..%d", m.MaxRestarts, MaxClusterRestarts)
	case m.Deposit > ^uint64(0)/(uint64(m.Nodes)*(1+uint64(m.MaxRestarts))):
		return Errorf(CodeOverflow, "deposit %d × %d members × %d runs overflows", m.Deposit, m.Nodes, 1+m.MaxRestarts)
	}
	return m.CreateOrder.ValidateBasic()
}
func (m *CreateClusterOrder) encode(w *Writer) {
	m.CreateOrder.encode(w)
	w.Uvarint(uint64(m.Nodes))
	w.Uvarint(uint64(m.MaxRTTMicros))
	w.Byte(m.OnFailure)
	w.Byte(m.MaxRestarts)
}
func (m *CreateClusterOrder) decode(r *Reader) {
	m.CreateOrder.decode(r)
	m.Nodes = r.U32("nodes")
	m.MaxRTTMicros = r.U32("max_rtt_us")
	m.OnFailure = r.Byte("on_failure")
	m.MaxRestarts = r.Byte("max_restarts")
}

// LatencySample is one measured round trip to another provider.
type LatencySample struct {
	Peer      Address `json:"peer"`
	RTTMicros uint32  `json:"rtt_us"`
}

// PublishLatency is a provider's latest round-trip measurements to other providers, replacing its previous
// ones: at most MaxLatencyPeers, distinct, sorted by peer address (one canonical form).
type PublishLatency struct {
	Samples []LatencySample `json:"samples"`
}

func (*PublishLatency) Type() MsgType { return TypePublishLatency }
func (m *PublishLatency) ValidateBasic() error {
	if len(m.Samples) > MaxLatencyPeers {
		return Errorf(CodeInvalidMsg, "samples: %d peers, at most %d (keep the nearest)", len(m.Samples), MaxLatencyPeers)
	}
	for i, s := range m.Samples {
		if s.RTTMicros > MaxRTTMicros {
			return Errorf(CodeInvalidMsg, "samples[%d].rtt_us %d above %d", i, s.RTTMicros, MaxRTTMicros)
		}
		if s.Peer.IsZero() {
			return Errorf(CodeInvalidMsg, "samples[%d].peer is empty", i)
		}
		if i > 0 && string(m.Samples[i-1].Peer[:]) >= string(s.Peer[:]) {
			return Errorf(CodeInvalidMsg, "samples[%d]: peers must be distinct and sorted by address", i)
		}
	}
	return nil
}

// EncodeTo writes the samples in their canonical form (the ledger stores them so).
func (m *PublishLatency) EncodeTo(w *Writer) { m.encode(w) }

// DecodeFrom reads samples written by EncodeTo.
func (m *PublishLatency) DecodeFrom(r *Reader) { m.decode(r) }

func (m *PublishLatency) encode(w *Writer) {
	w.List("samples", len(m.Samples), MaxLatencyPeers)
	for _, s := range m.Samples {
		w.Address(s.Peer)
		w.Uvarint(uint64(s.RTTMicros))
	}
}
func (m *PublishLatency) decode(r *Reader) {
	n := r.Count("samples", MaxLatencyPeers)
	for i := 0; i < n && r.Err() == nil; i++ {
		m.Samples = append(m.Samples, LatencySample{Peer: r.Address("peer"), RTTMicros: r.U32("rtt_us")})
	}
}

// CancelOrder withdraws an open order and refunds its deposit.
type CancelOrder struct {
	ID uint64 `json:"id"`
}

func (m *CancelOrder) encode(w *Writer) { w.Uvarint(m.ID) }
func (m *CancelOrder) decode(r *Reader) { m.ID = r.Uvarint("id") }

func (*CancelOrder) Type() MsgType          { return TypeCancelOrder }
func (m *CancelOrder) ValidateBasic() error { return nonzeroID("id (order)", m.ID) }

// PlaceBid offers to serve an order at a price.
type PlaceBid struct {
	OrderID uint64 `json:"order_id"`
	Price   uint64 `json:"price_per_hour"`
}

func (*PlaceBid) Type() MsgType { return TypePlaceBid }
func (m *PlaceBid) ValidateBasic() error {
	if err := nonzeroID("order_id", m.OrderID); err != nil {
		return err
	}
	return positive("price_per_hour", m.Price)
}
func (m *PlaceBid) encode(w *Writer) { w.Uvarint(m.OrderID); w.Uvarint(m.Price) }
func (m *PlaceBid) decode(r *Reader) { m.OrderID = r.Uvarint("order_id"); m.Price = r.Uvarint("price") }

// WithdrawBid takes back an open bid.
type WithdrawBid struct {
	ID uint64 `json:"id"`
}

func (m *WithdrawBid) encode(w *Writer) { w.Uvarint(m.ID) }
func (m *WithdrawBid) decode(r *Reader) { m.ID = r.Uvarint("id") }

func (*WithdrawBid) Type() MsgType          { return TypeWithdrawBid }
func (m *WithdrawBid) ValidateBasic() error { return nonzeroID("id (bid)", m.ID) }

// AcceptBid lets the tenant pick a bid before the auction closes.
type AcceptBid struct {
	ID uint64 `json:"id"`
}

func (m *AcceptBid) encode(w *Writer) { w.Uvarint(m.ID) }
func (m *AcceptBid) decode(r *Reader) { m.ID = r.Uvarint("id") }

func (*AcceptBid) Type() MsgType          { return TypeAcceptBid }
func (m *AcceptBid) ValidateBasic() error { return nonzeroID("id (bid)", m.ID) }

// LeaseStarted is the provider's confirmation that the workload runs; billing starts at this block's time.
type LeaseStarted struct {
	ID uint64 `json:"id"`
}

func (m *LeaseStarted) encode(w *Writer) { w.Uvarint(m.ID) }
func (m *LeaseStarted) decode(r *Reader) { m.ID = r.Uvarint("id") }

func (*LeaseStarted) Type() MsgType          { return TypeLeaseStarted }
func (m *LeaseStarted) ValidateBasic() error { return nonzeroID("id (lease)", m.ID) }

// CloseLease ends a lease early, by the tenant or the provider.
type CloseLease struct {
	ID     uint64 `json:"id"`
	Reason string `json:"reason"`
}

func (*CloseLease) Type() MsgType { return TypeCloseLease }
func (m *CloseLease) ValidateBasic() error {
	if len(m.Reason) > MaxReasonLen {
		return Errorf(CodeInvalidMsg, "reason is %d bytes, limit %d", len(m.Reason), MaxReasonLen)
	}
	if err := plainText("reason", m.Reason); err != nil {
		return err
	}
	return nonzeroID("id (lease)", m.ID)
}
func (m *CloseLease) encode(w *Writer) { w.Uvarint(m.ID); w.Str("reason", m.Reason, MaxReasonLen) }
func (m *CloseLease) decode(r *Reader) {
	m.ID = r.Uvarint("id")
	m.Reason = r.String("reason", MaxReasonLen)
}

// CompleteLease ends a lease with the provider's signed receipt.
type CompleteLease struct {
	Receipt Receipt `json:"receipt"`
}

func (*CompleteLease) Type() MsgType          { return TypeCompleteLease }
func (m *CompleteLease) ValidateBasic() error { return m.Receipt.validateBasic() }

// validateBasic checks what a receipt must be whatever the lease: a lease id, a signature of the right size,
// an end not before its start.
func (rc *Receipt) validateBasic() error {
	if err := nonzeroID("receipt.lease_id", rc.LeaseID); err != nil {
		return err
	}
	if len(rc.Signature) != SignatureLen {
		return Errorf(CodeBadReceipt, "receipt.signature is %d bytes, want %d", len(rc.Signature), SignatureLen)
	}
	if rc.EndMs < rc.StartMs {
		return Errorf(CodeBadReceipt, "receipt ends (%d) before it starts (%d)", rc.EndMs, rc.StartMs)
	}
	return nil
}
func (m *CompleteLease) encode(w *Writer) {
	EncodeReceipt(w, m.Receipt)
	EncodeReceiptVault(w, &m.Receipt)
}
func (m *CompleteLease) decode(r *Reader) {
	m.Receipt = DecodeReceipt(r)
	DecodeReceiptVault(r, &m.Receipt)
}

// Commit, then reveal. A run of a replicated order (or of its referee order) does not publish its result when it
// ends: it commits to it first (CommitResult), and reveals it (RevealResult, the signed receipt and the salt) only
// once every run of its group has committed or ended, so that no run can copy another's result and be paid for
// it.

const resultCommitDomain = "spare-result-commit-v1"

// ResultCommitment is what a run commits to: SHA-256 over a domain tag, the output root, the exit code, the
// provider's address and a 32-byte secret salt. The address binds the commitment to its provider (another
// provider copying it cannot open it); the salt, drawn at random and kept secret until the reveal, keeps anyone
// from testing guesses of the result against it.
func ResultCommitment(root Hash, exit int64, provider Address, salt [32]byte) Hash {
	w := NewWriter(len(resultCommitDomain) + 1 + 32 + 10 + AddressLen + 32)
	w.String(resultCommitDomain)
	w.Raw(root[:])
	w.Varint(exit)
	w.Address(provider)
	w.Raw(salt[:])
	return sha256.Sum256(w.Bytes())
}

// CommitResult ends a run of a replicated (or referee) order with a commitment to its result
// (ResultCommitment), in place of CompleteLease: billing stops, the earnings are held, and the result is revealed
// later with RevealResult.
type CommitResult struct {
	LeaseID    uint64 `json:"lease_id"`
	Commitment Hash   `json:"commitment"`
}

func (*CommitResult) Type() MsgType { return TypeCommitResult }
func (m *CommitResult) ValidateBasic() error {
	if err := nonzeroID("lease_id", m.LeaseID); err != nil {
		return err
	}
	if m.Commitment.IsZero() {
		return Errorf(CodeInvalidMsg, "commitment is empty: send tx.ResultCommitment(output root, exit code, your address, a random 32-byte salt)")
	}
	return nil
}
func (m *CommitResult) encode(w *Writer) {
	w.Uvarint(m.LeaseID)
	w.Fixed("commitment", m.Commitment[:], len(m.Commitment))
}
func (m *CommitResult) decode(r *Reader) {
	m.LeaseID = r.Uvarint("lease_id")
	m.Commitment = r.Hash("commitment")
}

// RevealResult opens a run's commitment: the signed receipt (checked as CompleteLease checks it) and the salt
// the commitment was made with.
type RevealResult struct {
	Receipt Receipt  `json:"receipt"`
	Salt    [32]byte `json:"salt"`
}

func (*RevealResult) Type() MsgType { return TypeRevealResult }
func (m *RevealResult) ValidateBasic() error {
	if err := m.Receipt.validateBasic(); err != nil {
		return err
	}
	if m.Salt == [32]byte{} {
		return Errorf(CodeInvalidMsg, "salt is all zeros: a commitment needs a secret random salt (32 bytes from a CSPRNG), drawn before commit_result")
	}
	return nil
}
func (m *RevealResult) encode(w *Writer) {
	EncodeReceipt(w, m.Receipt)
	w.Fixed("salt", m.Salt[:], len(m.Salt))
	EncodeReceiptVault(w, &m.Receipt)
}
func (m *RevealResult) decode(r *Reader) {
	m.Receipt = DecodeReceipt(r)
	copy(m.Salt[:], r.Raw("salt", len(m.Salt)))
	DecodeReceiptVault(r, &m.Receipt)
}

// TopUp adds to a lease's escrow.
type TopUp struct {
	LeaseID uint64 `json:"lease_id"`
	Amount  uint64 `json:"amount"`
}

func (*TopUp) Type() MsgType { return TypeTopUp }
func (m *TopUp) ValidateBasic() error {
	if err := nonzeroID("lease_id", m.LeaseID); err != nil {
		return err
	}
	return positive("amount", m.Amount)
}
func (m *TopUp) encode(w *Writer) { w.Uvarint(m.LeaseID); w.Uvarint(m.Amount) }
func (m *TopUp) decode(r *Reader) { m.LeaseID = r.Uvarint("lease_id"); m.Amount = r.Uvarint("amount") }

// ExtendLease lengthens a lease by AddSec seconds, at its price, and adds to its deposit what the new duration
// needs (the lease's tenant pays it, as with TopUp): one message, and the lease runs to its new end. The new
// duration may not exceed its provider's MaxLeaseSec.
type ExtendLease struct {
	LeaseID uint64 `json:"lease_id"`
	AddSec  uint64 `json:"add_sec"`
}

func (*ExtendLease) Type() MsgType { return TypeExtendLease }
func (m *ExtendLease) ValidateBasic() error {
	if err := nonzeroID("lease_id", m.LeaseID); err != nil {
		return err
	}
	if m.AddSec == 0 || m.AddSec > MaxDurationSec {
		return Errorf(CodeInvalidMsg, "add_sec %d: must be 1..%d", m.AddSec, MaxDurationSec)
	}
	return nil
}
func (m *ExtendLease) encode(w *Writer) { w.Uvarint(m.LeaseID); w.Uvarint(m.AddSec) }
func (m *ExtendLease) decode(r *Reader) {
	m.LeaseID = r.Uvarint("lease_id")
	m.AddSec = r.Uvarint("add_sec")
}

const manifestAckDomain = "spare-manifest-ack-v1"

// ManifestAckBytes are the bytes a provider signs when it accepts a lease's manifest (its hash checked against
// the order's, its inputs fetched, the workload about to start): its acknowledgement of delivery, which its API
// hands the tenant (header X-Spare-Manifest-Ack) and which only its key can produce.
func ManifestAckBytes(chainID string, leaseID uint64, manifestHash Hash) []byte {
	w := NewWriter(len(manifestAckDomain) + len(chainID) + 48)
	w.String(manifestAckDomain)
	w.String(chainID)
	w.Uvarint(leaseID)
	w.Raw(manifestHash[:])
	return w.Bytes()
}

// ManifestDelivered records on the ledger, for a lease not yet started, that its provider acknowledged the
// manifest: Ack is the provider's signature over ManifestAckBytes. A lease not started by its deadline counts
// against its provider only once delivery is shown this way (see docs/ledger.md, "Start deadline").
type ManifestDelivered struct {
	LeaseID uint64             `json:"lease_id"`
	Ack     [SignatureLen]byte `json:"ack"`
}

func (*ManifestDelivered) Type() MsgType { return TypeManifestDelivered }
func (m *ManifestDelivered) ValidateBasic() error {
	return nonzeroID("lease_id", m.LeaseID)
}
func (m *ManifestDelivered) encode(w *Writer) {
	w.Uvarint(m.LeaseID)
	w.Fixed("ack", m.Ack[:], len(m.Ack))
}
func (m *ManifestDelivered) decode(r *Reader) {
	m.LeaseID = r.Uvarint("lease_id")
	copy(m.Ack[:], r.Raw("ack", len(m.Ack)))
}

// Withdraw pays the provider what a running lease has earned so far.
type Withdraw struct {
	ID uint64 `json:"id"`
}

func (m *Withdraw) encode(w *Writer) { w.Uvarint(m.ID) }
func (m *Withdraw) decode(r *Reader) { m.ID = r.Uvarint("id") }

func (*Withdraw) Type() MsgType          { return TypeWithdraw }
func (m *Withdraw) ValidateBasic() error { return nonzeroID("id (lease)", m.ID) }

// MaxBitmapBytes bounds an attestation's bitmap (a bit per audited provider).
const MaxBitmapBytes = 1 << 16

// Attest is an auditor's verdict on an epoch: bit i of Up is set when the i-th provider of the epoch's audit
// set (sorted by address) answered the auditor's liveness challenge.
type Attest struct {
	Epoch uint64 `json:"epoch"`
	Up    []byte `json:"up"`
}

func (*Attest) Type() MsgType { return TypeAttest }
func (m *Attest) ValidateBasic() error {
	if len(m.Up) > MaxBitmapBytes {
		return Errorf(CodeInvalidMsg, "up bitmap is %d bytes, limit %d", len(m.Up), MaxBitmapBytes)
	}
	return nil
}
func (m *Attest) encode(w *Writer) { w.Uvarint(m.Epoch); w.BlobMax("up", m.Up, MaxBitmapBytes) }
func (m *Attest) decode(r *Reader) { m.Epoch = r.Uvarint("epoch"); m.Up = r.Blob("up", MaxBitmapBytes) }

// ClaimRewards moves the rewards the signing provider is owed (docs/economics.md) to its balance.
type ClaimRewards struct{}

func (*ClaimRewards) Type() MsgType        { return TypeClaimRewards }
func (*ClaimRewards) ValidateBasic() error { return nil }
func (*ClaimRewards) encode(*Writer)       {}
func (*ClaimRewards) decode(*Reader)       {}

// Unjail returns a jailed provider to service once its cooldown has passed.
type Unjail struct{}

func (*Unjail) Type() MsgType        { return TypeUnjail }
func (*Unjail) ValidateBasic() error { return nil }
func (*Unjail) encode(*Writer)       {}
func (*Unjail) decode(*Reader)       {}

// AnnounceRestart is a provider saying it is about to restart (its daemon's graceful shutdown): a down verdict
// for the epoch it is sent in, or the next, is excused. At most once per RestartEveryEpochs (ledger).
type AnnounceRestart struct{}

func (*AnnounceRestart) Type() MsgType        { return TypeAnnounceRestart }
func (*AnnounceRestart) ValidateBasic() error { return nil }
func (*AnnounceRestart) encode(*Writer)       {}
func (*AnnounceRestart) decode(*Reader)       {}

// AttestHardware is an auditor's verdict on a provider's proof-of-GPU challenge in an epoch: whether every
// device it declares answered correctly before the deadline of the class it claims, and the throughput
// measured (int8 operations per second over all its devices).
type AttestHardware struct {
	Epoch     uint64  `json:"epoch"`
	Provider  Address `json:"provider"`
	Passed    bool    `json:"passed"`
	Class     string  `json:"class"` // the device class challenged, e.g. "h100-pcie" or "cpu"
	OpsPerSec uint64  `json:"ops_per_sec"`
	// Transcript is the SHA-256 of the auditor's transcript file (package proof: every device's seed,
	// parameters, root, opened rows and times), zero when the provider answered nothing to record.
	Transcript Hash `json:"transcript"`
}

func (*AttestHardware) Type() MsgType { return TypeAttestHardware }
func (m *AttestHardware) ValidateBasic() error {
	if m.Provider.IsZero() {
		return Errorf(CodeInvalidMsg, "provider is empty")
	}
	return validName("class", m.Class, true)
}
func (m *AttestHardware) encode(w *Writer) {
	w.Uvarint(m.Epoch)
	w.Address(m.Provider)
	w.Bool(m.Passed)
	w.Str("class", m.Class, MaxNameLen)
	w.Uvarint(m.OpsPerSec)
	w.Raw(m.Transcript[:])
}
func (m *AttestHardware) decode(r *Reader) {
	m.Epoch, m.Provider, m.Passed = r.Uvarint("epoch"), r.Address("provider"), r.Bool("passed")
	m.Class, m.OpsPerSec = r.String("class", MaxNameLen), r.Uvarint("ops_per_sec")
	m.Transcript = r.Hash("transcript")
}
