package schema

import (
	"encoding/binary"

	"github.com/sparenet/spare/ledger/tx"
)

// Key layout. Ids are big-endian so keys sort numerically; addresses are raw 20 bytes.
const (
	PAccount        = "a/"
	PProvider       = "p/"
	PUnbond         = "ub/" // completeMs | provider | seq -> amount
	PUnbondOwner    = "uo/" // provider | completeMs | seq: a provider's unbonding entries (what a slash visits)
	POrder          = "o/"
	POrderByTenant  = "ot/"
	POrderOpen      = "oo/"
	POrderAuction   = "oa/" // windowEnd | order
	POrderExpiry    = "ox/" // expiresHeight | order
	PBid            = "b/"
	PBidByOrder     = "bo/" // order | bid: every bid, for queries (messages never iterate it)
	PBidOpen        = "bx/" // order | bid: open bids only (at most max_bids_per_order per order)
	PBidOfProvider  = "bq/" // order | provider -> bid: a provider's open bid on an order (the duplicate check)
	PBidByProvider  = "bp/"
	PLease          = "l/"
	PLeaseByTenant  = "lt/"
	PLeaseByProv    = "lp/"
	PLeaseDepletion = "ld/" // endMs | lease: active leases by the time their billing ends
	PLeaseStartDL   = "ls/" // deadline height | lease: pending leases
	PReceipt        = "r/"
	PAuditor        = "au/" // address -> weight
	PEpochSet       = "es/" // epoch -> the audit set: provider addresses, sorted
	PAttest         = "at/" // epoch | auditor -> up bitmap
	PHWAttest       = "ah/" // epoch | provider | auditor -> proof-of-GPU verdict
	PVerify         = "v/"  // replicated order -> Verification
	PCluster        = "cl/" // cluster order -> Cluster
	PLatency        = "rt/" // provider -> its latest published round trips
	PStorageOffer   = "so/" // provider -> its storage offer (Spare Vault)
	KeyParams       = "params"
	KeySupply       = "supply"
	KeySeq          = "seq/" // + name
)

func BE64(v uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return string(b[:])
}

func UnBE64(s string) uint64 { return binary.BigEndian.Uint64([]byte(s)) }

func AddrKey(prefix string, a tx.Address) string { return prefix + string(a[:]) }

func IDKey(prefix string, id uint64) string { return prefix + BE64(id) }

func PairKey(prefix string, a, b uint64) string { return prefix + BE64(a) + BE64(b) }

func OwnedKey(prefix string, a tx.Address, id uint64) string { return prefix + string(a[:]) + BE64(id) }

// PrefixEnd is the smallest key greater than every key with the prefix.
func PrefixEnd(p string) string {
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

// Retention's keys (see package retention).
//
// PRetireMark marks a finished order (its value: the block it is pruned at), so that it is scheduled once;
// PRetireDue is the schedule, ordered by that block; KeyPruned keeps what the supply invariant summed over the
// pruned objects (their take and the rewards paid from the pool), so the invariant still holds without them.
const (
	PRetireMark = "rm/" // order -> prune height
	PRetireDue  = "rd/" // prune height | order
	KeyPruned   = "pruned"
)

// PRestart holds each provider's latest AnnounceRestart: provider -> the epoch it was sent in.
const PRestart = "rg/"

// Commit-reveal state, kept here with the code that owns it.
const (
	PCommit   = "vc/" // lease -> Commitment: a run's committed result
	PRevealDL = "vr/" // reveal deadline height | replicated order: the groups whose reveal phase is open
)
