package schema

import (
	"crypto/ed25519"
	"fmt"
	"slices"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

func EncCluster(cl *api.Cluster) []byte {
	w := tx.NewWriter(64)
	w.Uvarint(cl.OrderID)
	w.Uvarint(uint64(cl.Nodes))
	w.Uvarint(uint64(cl.MaxRTTMicros))
	w.Byte(cl.OnFailure)
	w.List("leases", len(cl.Leases), tx.MaxClusterNodes)
	for _, id := range cl.Leases {
		w.Uvarint(id)
	}
	w.Byte(byte(cl.State))
	w.Uvarint(cl.FailedLease)
	w.Uvarint(cl.SearchSteps)
	w.Uvarint(uint64(cl.Generation))
	w.Uvarint(uint64(cl.RestartsLeft))
	w.Uvarint(cl.Reserve)
	w.Uvarint(cl.PrevOrder)
	w.Uvarint(cl.NextOrder)
	w.List("excluded", len(cl.Excluded), tx.MaxClusterRestarts)
	for _, a := range cl.Excluded {
		w.Address(a)
	}
	return sealed(w, "cluster")
}

func DecCluster(b []byte) (*api.Cluster, error) {
	r := tx.NewReader(b)
	cl := &api.Cluster{OrderID: r.Uvarint("order_id"), Nodes: r.U32("nodes"), MaxRTTMicros: r.U32("max_rtt"), OnFailure: r.Byte("on_failure")}
	n := r.Count("leases", tx.MaxClusterNodes)
	for i := 0; i < n && r.Err() == nil; i++ {
		cl.Leases = append(cl.Leases, r.Uvarint("lease"))
	}
	cl.State = api.ClusterState(r.Byte("state"))
	cl.FailedLease = r.Uvarint("failed_lease")
	cl.SearchSteps = r.Uvarint("search_steps")
	if r.Remaining() > 0 { // written before restarts existed
		cl.Generation, cl.RestartsLeft = r.U32("generation"), r.U32("restarts_left")
		cl.Reserve, cl.PrevOrder, cl.NextOrder = r.Uvarint("reserve"), r.Uvarint("prev_order"), r.Uvarint("next_order")
		n := r.Count("excluded", tx.MaxClusterRestarts)
		for i := 0; i < n && r.Err() == nil; i++ {
			cl.Excluded = append(cl.Excluded, r.Address("excluded"))
		}
	}
	return cl, r.Done("cluster")
}

func EncLatency(l *api.Latency) []byte {
	w := tx.NewWriter(16 + 24*len(l.Samples))
	w.Uvarint(uint64(l.Height))
	(&tx.PublishLatency{Samples: l.Samples}).EncodeTo(w)
	return sealed(w, "latency")
}

func DecLatency(a tx.Address, b []byte) (*api.Latency, error) {
	r := tx.NewReader(b)
	l := &api.Latency{Provider: a, Height: int64(r.Uvarint("height"))}
	var m tx.PublishLatency
	m.DecodeFrom(r)
	l.Samples = m.Samples
	return l, r.Done("latency")
}

// EncStorageOffer stores an offer as its capacity, used bytes, price and height (the provider is the key). Every
// field is bounded as the message that sets it is.
func EncStorageOffer(o *api.StorageOffer) []byte {
	w := tx.NewWriter(32)
	w.Bounded("capacity_bytes", o.CapacityBytes, tx.MaxStorageCapacity)
	w.Bounded("used_bytes", o.UsedBytes, tx.MaxStorageCapacity)
	w.Bounded("price_per_gib_month", o.PricePerGiBMonth, tx.MaxStoragePrice)
	w.Uvarint(uint64(o.Height))
	return sealed(w, "storage offer")
}

func DecStorageOffer(a tx.Address, b []byte) (*api.StorageOffer, error) {
	r := tx.NewReader(b)
	o := &api.StorageOffer{Provider: a, CapacityBytes: r.Uvarint("capacity_bytes"), UsedBytes: r.Uvarint("used_bytes"),
		PricePerGiBMonth: r.Uvarint("price_per_gib_month"), Height: int64(r.Uvarint("height"))}
	switch {
	case r.Err() != nil:
	case o.CapacityBytes > tx.MaxStorageCapacity || o.UsedBytes > tx.MaxStorageCapacity:
		r.Fail("capacity_bytes", "over %d", uint64(tx.MaxStorageCapacity))
	case o.PricePerGiBMonth > tx.MaxStoragePrice:
		r.Fail("price_per_gib_month", "over %d", uint64(tx.MaxStoragePrice))
	case o.Height < 0:
		r.Fail("height", "over 2^63")
	}
	return o, r.Done("storage offer")
}

// sealed returns what w wrote, or panics when an encoder was handed a value its decoder refuses. The panic stops
// the block before anything is committed (FinalizeBlock names the height and the transaction); CheckTx and
// queries answer with an error.
func sealed(w *tx.Writer, what string) []byte {
	if err := w.Err(); err != nil {
		panic(fmt.Sprintf("ledger: storing %s: %v", what, err))
	}
	return w.Bytes()
}

func EncAccount(a *api.Account) []byte {
	w := tx.NewWriter(16)
	w.Uvarint(a.Balance)
	w.Uvarint(a.Nonce)
	return sealed(w, "account")
}

func DecAccount(addr tx.Address, b []byte) (*api.Account, error) {
	r := tx.NewReader(b)
	a := &api.Account{Address: addr, Balance: r.Uvarint("balance"), Nonce: r.Uvarint("nonce")}
	return a, r.Done("account")
}

func EncProvider(p *api.Provider) []byte {
	w := tx.NewWriter(256) // a record with a full declaration and its rewards needs no second allocation
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
	if p.RewardsOwed|p.RewardsEarned|p.RewardEpoch != 0 || p.RewardWhy != 0 { // a chain without rewards writes none
		w.Uvarint(p.RewardsOwed)
		w.Uvarint(p.RewardsEarned)
		w.Uvarint(p.RewardEpoch)
		w.Bounded("reward_why", uint64(p.RewardWhy), uint64(api.MaxRewardWhy))
	}
	return sealed(w, "provider")
}

func DecProvider(b []byte) (*api.Provider, error) {
	r := tx.NewReader(b)
	p := &api.Provider{}
	p.Owner = r.Address("owner")
	p.PubKey = append(ed25519.PublicKey(nil), r.Raw("pubkey", ed25519.PublicKeySize)...)
	tx.DecodeProviderInfo(r, &p.Info)
	p.Status = api.ProviderStatus(r.Byte("status"))
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
	if r.Remaining() > 0 { // written before rewards, or never judged with them: all zero
		p.RewardsOwed, p.RewardsEarned, p.RewardEpoch = r.Uvarint("rewards_owed"), r.Uvarint("rewards_earned"), r.Uvarint("reward_epoch")
		p.RewardWhy = api.RewardWhy(r.Bounded("reward_why", uint64(api.MaxRewardWhy)))
		if p.RewardsOwed|p.RewardsEarned|p.RewardEpoch == 0 && p.RewardWhy == 0 {
			r.Fail("rewards", "all zero: written only when one is set")
		}
	}
	return p, r.Done("provider")
}

func EncOrder(o *api.Order) []byte {
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

func DecOrder(b []byte) (*api.Order, error) {
	r := tx.NewReader(b)
	o := &api.Order{}
	o.ID = r.Uvarint("id")
	o.Tenant = r.Address("tenant")
	o.Resources = tx.DecodeResources(r)
	o.Constraints = tx.DecodeConstraints(r)
	o.MaxPricePerHour = r.Uvarint("max_price")
	o.ManifestHash = r.Hash("manifest_hash")
	o.Deposit = r.Uvarint("deposit")
	o.DurationSec = r.Uvarint("duration")
	o.State = api.OrderState(r.Byte("state"))
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

func EncBid(bd *api.Bid) []byte {
	w := tx.NewWriter(48)
	w.Uvarint(bd.ID)
	w.Uvarint(bd.OrderID)
	w.Address(bd.Provider)
	w.Uvarint(bd.Price)
	w.Byte(byte(bd.State))
	w.Uvarint(uint64(bd.CreatedHeight))
	return sealed(w, "bid")
}

func DecBid(b []byte) (*api.Bid, error) {
	r := tx.NewReader(b)
	bd := &api.Bid{}
	bd.ID = r.Uvarint("id")
	bd.OrderID = r.Uvarint("order_id")
	bd.Provider = r.Address("provider")
	bd.Price = r.Uvarint("price")
	bd.State = api.BidState(r.Byte("state"))
	bd.CreatedHeight = int64(r.Uvarint("created_height"))
	return bd, r.Done("bid")
}

func EncLease(l *api.Lease) []byte {
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
	if l.ManifestDelivered || l.Burned > 0 { // written only when set: a lease without it encodes as one written before it existed
		w.Bool(l.ManifestDelivered)
	}
	if l.Burned > 0 { // written only when set (a chain with burn_ppm 0 burns nothing)
		w.Uvarint(l.Burned)
	}
	return sealed(w, "lease")
}

func DecLease(b []byte) (*api.Lease, error) {
	r := tx.NewReader(b)
	l := &api.Lease{}
	l.ID = r.Uvarint("id")
	l.OrderID = r.Uvarint("order_id")
	l.BidID = r.Uvarint("bid_id")
	l.Tenant = r.Address("tenant")
	l.Provider = r.Address("provider")
	l.Price = r.Uvarint("price")
	l.DurationSec = r.Uvarint("duration")
	l.State = api.LeaseState(r.Byte("state"))
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
		switch r.Byte("manifest_delivered") {
		case 1:
			l.ManifestDelivered = true
		case 0:
			if r.Remaining() == 0 {
				return nil, fmt.Errorf("lease: manifest_delivered is written as 0 only before burned")
			}
		default:
			return nil, fmt.Errorf("lease: manifest_delivered is 0 or 1")
		}
	}
	if r.Remaining() > 0 { // written before the burn, or with nothing burned
		if l.Burned = r.Uvarint("burned"); l.Burned == 0 {
			return nil, fmt.Errorf("lease: burned is written only when above 0")
		}
	}
	return l, r.Done("lease")
}

func EncSupply(s *api.Supply) []byte {
	w := tx.NewWriter(48)
	for _, v := range []uint64{s.Genesis, s.Minted, s.Burned, s.Balances, s.Escrow, s.Staked, s.Unbonding, s.Pool} {
		w.Uvarint(v)
	}
	if s.Rewards > 0 { // a chain without rewards writes none
		w.Uvarint(s.Rewards)
	}
	return sealed(w, "supply")
}

func DecSupply(b []byte) (*api.Supply, error) {
	r := tx.NewReader(b)
	s := &api.Supply{}
	for _, p := range []*uint64{&s.Genesis, &s.Minted, &s.Burned, &s.Balances, &s.Escrow, &s.Staked, &s.Unbonding, &s.Pool} {
		*p = r.Uvarint("supply")
	}
	if r.Remaining() > 0 {
		if s.Rewards = r.Uvarint("supply rewards"); s.Rewards == 0 {
			r.Fail("supply rewards", "0: written only when above 0")
		}
	}
	return s, r.Done("supply")
}

func EncReceipt(rc *tx.Receipt) []byte {
	w := tx.NewWriter(200)
	tx.EncodeReceipt(w, *rc)
	tx.EncodeReceiptVault(w, rc)
	return sealed(w, "receipt")
}

func DecReceipt(b []byte) (*tx.Receipt, error) {
	r := tx.NewReader(b)
	rc := tx.DecodeReceipt(r)
	tx.DecodeReceiptVault(r, &rc) // absent: written before the Vault, or outputs not asked for in it
	return &rc, r.Done("receipt")
}

func EncParams(p *api.Params) []byte {
	w := tx.NewWriter(64)
	for _, v := range []uint64{p.MinFee, p.TakeRatePPM, p.StakeBase, p.StakePerGPU, p.UnbondingPeriodSec,
		p.BidWindowBlocks, p.MaxBidWindowBlocks, p.OrderTTLBlocks, p.MaxOrderTTLBlocks, p.StartTimeoutBlocks,
		p.EpochBlocks, p.SlashDowntimePPM, p.JailAfterDownEpochs, p.UnjailCooldownSec, p.SlashProofPPM, p.SlashMismatchPPM,
		p.MaxBidsPerOrder, p.RevealBlocks, p.MinGasPrice, p.RetentionBlocks, p.CompletionGraceSec,
		p.StorageGiBYearCost, p.StorageDeclinePPM} {
		w.Uvarint(v)
	}
	if rw := rewardParams(p); slices.ContainsFunc(rw, func(v *uint64) bool { return *v != 0 }) { // a chain without rewards writes none
		for _, v := range rw {
			w.Uvarint(*v)
		}
	}
	return sealed(w, "params")
}

func DecParams(b []byte) (*api.Params, error) {
	p := &api.Params{}
	r := tx.NewReader(b)
	for _, f := range []*uint64{&p.MinFee, &p.TakeRatePPM, &p.StakeBase, &p.StakePerGPU, &p.UnbondingPeriodSec,
		&p.BidWindowBlocks, &p.MaxBidWindowBlocks, &p.OrderTTLBlocks, &p.MaxOrderTTLBlocks, &p.StartTimeoutBlocks} {
		*f = r.Uvarint("params")
	}
	if r.Remaining() > 0 { // state written before the liveness params has none: auditing stays off
		for _, f := range []*uint64{&p.EpochBlocks, &p.SlashDowntimePPM, &p.JailAfterDownEpochs, &p.UnjailCooldownSec} {
			*f = r.Uvarint("params")
		}
	}
	if r.Remaining() > 0 {
		p.SlashProofPPM = r.Uvarint("params")
	}
	if r.Remaining() > 0 { // state written before redundant execution: mismatches cost no stake
		p.SlashMismatchPPM = r.Uvarint("params")
	}
	p.MaxBidsPerOrder = api.DefaultParams().MaxBidsPerOrder // state written before the cap: the default cap
	if r.Remaining() > 0 {
		p.MaxBidsPerOrder = r.Uvarint("params")
	}
	p.RevealBlocks = api.DefaultParams().RevealBlocks // state written before commit-reveal: the default window
	if r.Remaining() > 0 {
		p.RevealBlocks = r.Uvarint("params")
	}
	if r.Remaining() > 0 { // state written before gas: no floor beyond min_fee
		p.MinGasPrice = r.Uvarint("params")
	}
	if r.Remaining() > 0 { // state written before retention: nothing is pruned
		p.RetentionBlocks = r.Uvarint("params")
	}
	if r.Remaining() > 0 { // state written before the completion grace: none, as its leases were indexed
		p.CompletionGraceSec = r.Uvarint("params")
	}
	if r.Remaining() > 0 { // state written before the Vault: no permanent deals
		p.StorageGiBYearCost, p.StorageDeclinePPM = r.Uvarint("params"), r.Uvarint("params")
	}
	if r.Remaining() > 0 { // state written before rewards: none
		rw := rewardParams(p)
		for _, f := range rw {
			*f = r.Uvarint("params")
		}
		if !slices.ContainsFunc(rw, func(v *uint64) bool { return *v != 0 }) {
			r.Fail("params", "reward params all 0: written only when one is set")
		}
	}
	return p, r.Done("params")
}

// rewardParams are the params of rewards, in their stored order.
func rewardParams(p *api.Params) []*uint64 {
	return []*uint64{&p.BurnPPM, &p.EmissionFirstEpoch, &p.EmissionTimeConstantEpochs, &p.EmissionCap,
		&p.AuditorSharePPM, &p.AvailabilitySharePPM, &p.WorkRewardCapPPM, &p.RewardProofEpochs}
}

func EncPruned(p *api.Pruned) []byte {
	w := tx.NewWriter(24)
	w.Uvarint(p.Orders)
	w.Uvarint(p.Take)
	w.Uvarint(p.Rewarded)
	return sealed(w, "pruned")
}

func DecPruned(b []byte) (*api.Pruned, error) {
	r := tx.NewReader(b)
	p := &api.Pruned{Orders: r.Uvarint("orders"), Take: r.Uvarint("take"), Rewarded: r.Uvarint("rewarded")}
	return p, r.Done("pruned")
}

// EncAuditor stores an auditor as its weight (8 bytes, big-endian) and then its host, as genesis wrote it (at
// most tx.MaxURILen bytes; none in state written before auditors had hosts).
func EncAuditor(a *api.Auditor) []byte {
	if len(a.Host) > tx.MaxURILen {
		panic(fmt.Sprintf("ledger: storing auditor %s: host of %d bytes, at most %d", a.Address, len(a.Host), tx.MaxURILen))
	}
	return []byte(BE64(a.Weight) + a.Host)
}

func DecAuditor(addr tx.Address, b []byte) (*api.Auditor, error) {
	if len(b) < 8 || len(b)-8 > tx.MaxURILen {
		return nil, fmt.Errorf("auditor %s: %d bytes, want 8 and a host of at most %d", addr, len(b), tx.MaxURILen)
	}
	return &api.Auditor{Address: addr, Weight: UnBE64(string(b[:8])), Host: string(b[8:])}, nil
}

// AuditSet is an epoch's audit set and the time of its first block. With rewards on it also fixes, at that
// block, each provider's availability weight and why (api.AvailabilityWeight), and the GPUs of the whole set
// (the denominator of the network's utilisation).
type AuditSet struct {
	StartMs   uint64
	Providers []tx.Address
	Weights   []uint64        // nil: rewards off
	Whys      []api.RewardWhy // one per provider with Weights
	GPUs      uint64
}

// MaxAuditSet bounds an audit set: one bit per provider in an auditor's bitmap (tx.MaxBitmapBytes).
const MaxAuditSet = tx.MaxBitmapBytes * 8

func EncAuditSet(s AuditSet) []byte {
	w := tx.NewWriter(len(s.Providers)*tx.AddressLen + 16)
	w.Uvarint(s.StartMs)
	w.List("providers", len(s.Providers), MaxAuditSet)
	for _, a := range s.Providers {
		w.Address(a)
	}
	if s.Weights != nil {
		if len(s.Weights) != len(s.Providers) || len(s.Whys) != len(s.Providers) {
			w.Fail("weights", "%d weights and %d reasons for %d providers", len(s.Weights), len(s.Whys), len(s.Providers))
		}
		w.Uvarint(s.GPUs)
		for i := range s.Weights {
			w.Bounded("weight", s.Weights[i], api.MaxAvailabilityWeight)
			w.Bounded("why", uint64(s.Whys[i]), uint64(api.MaxRewardWhy))
		}
	}
	return sealed(w, "audit set")
}

func DecAuditSet(b []byte) (AuditSet, error) {
	r := tx.NewReader(b)
	s := AuditSet{StartMs: r.Uvarint("start_ms")}
	n := r.Count("providers", MaxAuditSet)
	s.Providers = make([]tx.Address, 0, n)
	for range n {
		s.Providers = append(s.Providers, r.Address("provider"))
	}
	if r.Remaining() > 0 { // rewards on
		s.GPUs = r.Uvarint("gpus")
		s.Weights, s.Whys = make([]uint64, n), make([]api.RewardWhy, n)
		for i := range n {
			s.Weights[i] = r.Bounded("weight", api.MaxAvailabilityWeight)
			s.Whys[i] = api.RewardWhy(r.Bounded("why", uint64(api.MaxRewardWhy)))
		}
	}
	return s, r.Done("audit set")
}

type HWVerdict struct {
	Passed bool
	Class  string
	Ops    uint64
}

func EncHWVerdict(v HWVerdict) []byte {
	w := tx.NewWriter(32)
	w.Bool(v.Passed)
	w.Str("class", v.Class, tx.MaxNameLen)
	w.Uvarint(v.Ops)
	return sealed(w, "hardware verdict")
}

func DecHWVerdict(b []byte) (HWVerdict, error) {
	r := tx.NewReader(b)
	v := HWVerdict{Passed: r.Bool("passed"), Class: r.String("class", tx.MaxNameLen), Ops: r.Uvarint("ops")}
	return v, r.Done("hardware verdict")
}

func EncVerification(v *api.Verification) []byte {
	w := tx.NewWriter(96)
	w.Uvarint(v.OrderID)
	w.Uvarint(uint64(v.Replicas))
	w.List("leases", len(v.Leases), tx.MaxReplicas+1)
	for _, id := range v.Leases {
		w.Uvarint(id)
	}
	w.Uvarint(v.RefereeOrder)
	w.Uvarint(v.Reserve)
	w.Byte(byte(v.State))
	w.Raw(v.Root[:])
	w.Varint(v.ExitCode)
	w.Uvarint(v.DecidedMs)
	w.Bool(v.RevealOpen)
	w.Uvarint(uint64(v.RevealDeadline))
	w.Uvarint(v.Rewarded)
	return sealed(w, "verification")
}

func DecVerification(b []byte) (*api.Verification, error) {
	r := tx.NewReader(b)
	v := &api.Verification{OrderID: r.Uvarint("order_id"), Replicas: r.U32("replicas")}
	n := r.Count("leases", tx.MaxReplicas+1)
	for i := 0; i < n && r.Err() == nil; i++ {
		v.Leases = append(v.Leases, r.Uvarint("lease"))
	}
	v.RefereeOrder = r.Uvarint("referee_order")
	v.Reserve = r.Uvarint("reserve")
	v.State = api.VerifyState(r.Byte("state"))
	v.Root = r.Hash("root")
	v.ExitCode = r.Varint("exit_code")
	v.DecidedMs = r.Uvarint("decided_ms")
	if r.Remaining() > 0 { // written before commit-reveal existed: no reveal phase open
		v.RevealOpen = r.Bool("reveal_open")
		v.RevealDeadline = int64(r.Uvarint("reveal_deadline"))
	}
	if r.Remaining() > 0 { // written before the honest runs were rewarded
		v.Rewarded = r.Uvarint("rewarded")
	}
	return v, r.Done("verification")
}

func EncCommitment(m *api.Commitment) []byte {
	w := tx.NewWriter(56)
	w.Uvarint(m.LeaseID)
	w.Uvarint(m.OrderID)
	w.Fixed("commitment", m.Commitment[:], len(m.Commitment))
	w.Uvarint(uint64(m.Height))
	w.Byte(byte(m.State))
	return sealed(w, "commitment")
}

func DecCommitment(b []byte) (*api.Commitment, error) {
	r := tx.NewReader(b)
	m := &api.Commitment{LeaseID: r.Uvarint("lease_id"), OrderID: r.Uvarint("order_id"), Commitment: r.Hash("commitment"),
		Height: int64(r.Uvarint("height")), State: api.RunCommit(r.Byte("state"))}
	return m, r.Done("commitment")
}
