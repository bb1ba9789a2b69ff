package tx

import (
	"errors"
	"fmt"
)

// Code is the stable numeric result code of a transaction, returned by CheckTx and FinalizeBlock. Codes are only
// ever appended: a number, once given, keeps its meaning forever. This file is the one list of them.
type Code uint32

const (
	CodeOK                Code = 0
	CodeDecode            Code = 1  // bytes are not a well-formed transaction
	CodeTxTooLarge        Code = 2  // transaction exceeds MaxTxBytes
	CodeBadVersion        Code = 3  // unknown format version byte
	CodeBadSignature      Code = 4  // signature does not verify over the body
	CodeWrongChainID      Code = 5  // body names another network
	CodeBadNonce          Code = 6  // nonce is not the account's next one (replay or gap)
	CodeFeeTooLow         Code = 7  // fee below the minimum
	CodeInsufficientFunds Code = 8  // balance does not cover fee and amounts
	CodeInvalidMsg        Code = 9  // a message field is invalid (the log names it)
	CodeUnknownMsgType    Code = 10 // message type not known to this version
	CodeOverflow          Code = 11 // an amount would overflow 64 bits
	CodeNotFound          Code = 12 // the referenced object does not exist
	CodeUnauthorized      Code = 13 // the signer may not act on this object
	CodeProviderExists    Code = 14 // RegisterProvider for an already registered account
	CodeNotProvider       Code = 15 // signer is not a registered provider
	CodeProviderJailed    Code = 16 // jailed providers may not bid or start leases
	CodeInsufficientStake Code = 17 // bonded stake below the required minimum
	CodeOrderNotOpen      Code = 18 // order is cancelled, expired or already leased
	CodeBidAboveMax       Code = 19 // bid price above the order's maximum
	CodeDuplicateBid      Code = 20 // provider already has an open bid on this order
	CodeBidNotOpen        Code = 21 // bid was withdrawn, lost or won
	CodeBadLeaseState     Code = 22 // lease is not in a state that allows this message
	CodeInfeasible        Code = 23 // provider's declared hardware or placement does not satisfy the order
	CodeBadReceipt        Code = 24 // receipt does not match the lease or its signature fails
	CodeTooManyMsgs       Code = 25 // more messages than MaxMsgsPerTx
	CodeSelfDeal          Code = 26 // a tenant may not bid on its own order
	CodeUnbondingTooLarge Code = 27 // unbond amount above the bonded stake
	CodeNothingToWithdraw Code = 28 // nothing earned since the last withdrawal
	CodeInternal          Code = 29 // a broken invariant; never expected
	CodeNotAuditor        Code = 30 // the signer is not in the auditor set
	CodeBadEpoch          Code = 31 // the epoch is not open for attestations, or the bitmap does not fit its audit set
	CodeDuplicateAttest   Code = 32 // this auditor already attested this epoch
	CodeNotJailed         Code = 33 // Unjail from a provider that is not jailed
	CodeJailCooldown      Code = 34 // Unjail before the jail's cooldown ended
	CodeReplicated        Code = 35 // not allowed on a replicated or cluster order, or on a replica's lease
	CodeRateLimited       Code = 36 // sent again before the minimum interval (latency summaries, restart announcements)
	CodeExcluded          Code = 37 // a bid on a restarted cluster from a provider whose member failed an earlier run
	CodeBidsFull          Code = 38 // the order holds its maximum of open bids and this one is not cheaper than the dearest
	CodeNotCommitted      Code = 39 // a replica's result revealed before its commitment, or not matching it
	CodeRevealClosed      Code = 40 // a reveal before the reveal phase opened or after it closed
	CodeOutOfGas          Code = 41 // the transaction ran past its gas limit: reverted, fee paid
	CodeExtendRefused     Code = 42 // ExtendLease past the provider's max_lease_sec (or a provider that takes no extensions)
)

var codeNames = map[Code]string{
	CodeOK: "ok", CodeDecode: "decode", CodeTxTooLarge: "tx_too_large", CodeBadVersion: "bad_version",
	CodeBadSignature: "bad_signature", CodeWrongChainID: "wrong_chain_id", CodeBadNonce: "bad_nonce",
	CodeFeeTooLow: "fee_too_low", CodeInsufficientFunds: "insufficient_funds", CodeInvalidMsg: "invalid_msg",
	CodeUnknownMsgType: "unknown_msg_type", CodeOverflow: "overflow", CodeNotFound: "not_found",
	CodeUnauthorized: "unauthorized", CodeProviderExists: "provider_exists", CodeNotProvider: "not_provider",
	CodeProviderJailed: "provider_jailed", CodeInsufficientStake: "insufficient_stake",
	CodeOrderNotOpen: "order_not_open", CodeBidAboveMax: "bid_above_max", CodeDuplicateBid: "duplicate_bid",
	CodeBidNotOpen: "bid_not_open", CodeBadLeaseState: "bad_lease_state", CodeInfeasible: "infeasible",
	CodeBadReceipt: "bad_receipt", CodeTooManyMsgs: "too_many_msgs", CodeSelfDeal: "self_deal",
	CodeUnbondingTooLarge: "unbond_too_large", CodeNothingToWithdraw: "nothing_to_withdraw",
	CodeInternal: "internal", CodeNotAuditor: "not_auditor", CodeBadEpoch: "bad_epoch",
	CodeDuplicateAttest: "duplicate_attest", CodeNotJailed: "not_jailed", CodeJailCooldown: "jail_cooldown",
	CodeReplicated: "replicated", CodeRateLimited: "rate_limited",
	CodeExcluded: "excluded", CodeBidsFull: "bids_full", CodeNotCommitted: "not_committed", CodeRevealClosed: "reveal_closed", CodeOutOfGas: "out_of_gas",
	CodeExtendRefused: "extend_refused",
}

// String is the code's stable name.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code_%d", uint32(c))
}

// Error lets a Code be used as a sentinel with errors.Is.
func (c Code) Error() string { return c.String() }

// Error is a rejection with a code and a message naming the problem.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (code %d): %s", e.Code, uint32(e.Code), e.Msg) }

// Unwrap makes errors.Is(err, CodeX) true for an *Error with code X.
func (e *Error) Unwrap() error { return e.Code }

// Errorf builds a coded error.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf extracts the code of err: CodeOK for nil, CodeDecode for decoding errors, CodeInternal otherwise.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var c Code
	if errors.As(err, &c) {
		return c
	}
	if errors.Is(err, ErrDecode) {
		return CodeDecode
	}
	return CodeInternal
}
