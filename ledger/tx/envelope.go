package tx

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
)

// Version is the transaction format version, the first byte of every transaction. Version 2 added the gas limit
// to the body; version 1 transactions are refused (CodeBadVersion).
const Version byte = 2

// Limits on a transaction, enforced before anything else is read.
const (
	MaxTxBytes    = 32 << 10 // whole transaction
	MaxMsgsPerTx  = 64
	MaxChainIDLen = 64
	MaxMemoLen    = 256
	SignatureLen  = ed25519.SignatureSize
)

// Body is what a signer signs: who, which network, which nonce, what fee for how much gas, which messages. The
// fee is charged in full, even when the messages fail or run out of gas.
type Body struct {
	ChainID  string
	PubKey   ed25519.PublicKey
	Nonce    uint64
	Fee      uint64
	GasLimit uint64 // the most gas its messages may use; the fee must cover it at the gas price
	Memo     string
	Msgs     []Msg
}

// Tx is a decoded transaction. BodyBytes are the exact bytes that were signed and transmitted; the signature is
// verified over them, never over a re-encoding.
type Tx struct {
	Body      Body
	BodyBytes []byte
	Signature []byte
	Raw       []byte
}

// Signer returns the address of the signer.
func (t *Tx) Signer() Address { return AddressOf(t.Body.PubKey) }

// Hash is the SHA-256 of the raw transaction, as CometBFT names transactions.
func (t *Tx) Hash() [32]byte { return sha256.Sum256(t.Raw) }

// VerifySignature checks the ed25519 signature over the body bytes as transmitted.
func (t *Tx) VerifySignature() bool {
	return ed25519.Verify(t.Body.PubKey, t.BodyBytes, t.Signature)
}

// EncodeBody returns the canonical body bytes. A body its decoder would refuse still encodes (the node rejects
// it, naming the field); EncodeBodyChecked says why first.
func EncodeBody(b Body) []byte {
	body, _ := EncodeBodyChecked(b)
	return body
}

// EncodeBodyChecked returns the canonical body bytes, or the first field over a bound that DecodeBody enforces.
func EncodeBodyChecked(b Body) ([]byte, error) {
	w := NewWriter(128)
	w.Str("chain_id", b.ChainID, MaxChainIDLen)
	w.Fixed("pubkey", b.PubKey, ed25519.PublicKeySize)
	w.Uvarint(b.Nonce)
	w.Uvarint(b.Fee)
	w.Uvarint(b.GasLimit)
	w.Str("memo", b.Memo, MaxMemoLen)
	w.List("msgs", len(b.Msgs), MaxMsgsPerTx)
	for _, m := range b.Msgs {
		EncodeMsg(w, m)
	}
	if w.Err() == nil && w.Len() > MaxTxBytes-SignatureLen-8 {
		w.fail("body", "%d bytes, a transaction holds at most %d", w.Len(), MaxTxBytes)
	}
	return w.Bytes(), w.Err()
}

// Assemble frames signed body bytes: version byte, length-prefixed body, 64-byte signature.
func Assemble(body, sig []byte) []byte {
	w := NewWriter(len(body) + SignatureLen + 8)
	w.Byte(Version)
	w.Blob(body)
	w.Raw(sig)
	return w.Bytes()
}

// Sign encodes the body, signs it with priv and frames the transaction. The body's PubKey is set from priv.
func Sign(b Body, priv ed25519.PrivateKey) []byte {
	b.PubKey = priv.Public().(ed25519.PublicKey)
	body := EncodeBody(b)
	return Assemble(body, ed25519.Sign(priv, body))
}

// Decode parses a raw transaction without verifying the signature or any state. Errors carry a Code.
func Decode(raw []byte) (*Tx, error) {
	if len(raw) > MaxTxBytes {
		return nil, Errorf(CodeTxTooLarge, "transaction is %d bytes, limit %d", len(raw), MaxTxBytes)
	}
	if len(raw) == 0 {
		return nil, Errorf(CodeDecode, "empty transaction")
	}
	if raw[0] != Version {
		return nil, Errorf(CodeBadVersion, "format version %d, this node reads version %d: use a spare client of the same release", raw[0], Version)
	}
	r := NewReader(raw[1:])
	bodyLen := r.Len("body length", MaxTxBytes)
	bodyBytes := r.Raw("body", bodyLen)
	sig := r.Raw("signature", SignatureLen)
	if err := r.Done("tx"); err != nil {
		return nil, Errorf(CodeDecode, "%v", err)
	}
	body, err := DecodeBody(bodyBytes)
	if err != nil {
		return nil, err
	}
	if SmallOrderKey(body.PubKey) {
		// ed25519 verification accepts forged signatures for these keys: nobody may sign as their addresses.
		return nil, Errorf(CodeBadSignature, "public key is a small-order point: no signature from it can be trusted")
	}
	return &Tx{Body: body, BodyBytes: bodyBytes, Signature: sig, Raw: raw}, nil
}

// DecodeBody parses body bytes strictly.
func DecodeBody(b []byte) (Body, error) {
	var body Body
	r := NewReader(b)
	body.ChainID = r.String("chain_id", MaxChainIDLen)
	body.PubKey = append(ed25519.PublicKey(nil), r.Raw("pubkey", ed25519.PublicKeySize)...)
	body.Nonce = r.Uvarint("nonce")
	body.Fee = r.Uvarint("fee")
	body.GasLimit = r.Uvarint("gas_limit")
	body.Memo = r.String("memo", MaxMemoLen)
	n := r.Count("msgs", MaxMsgsPerTx+1)
	if r.Err() == nil && n > MaxMsgsPerTx {
		return body, Errorf(CodeTooManyMsgs, "%d messages, limit %d", n, MaxMsgsPerTx)
	}
	if r.Err() == nil && n == 0 {
		return body, Errorf(CodeInvalidMsg, "msgs: a transaction needs at least one message")
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		m, err := DecodeMsg(r)
		if err != nil {
			return body, err
		}
		body.Msgs = append(body.Msgs, m)
	}
	if err := r.Done("body"); err != nil {
		return body, Errorf(CodeDecode, "%v", err)
	}
	return body, nil
}

// ValidateBasic checks everything that needs no state: chain id, every message's fields.
func (b *Body) ValidateBasic(chainID string) error {
	if b.ChainID != chainID {
		return Errorf(CodeWrongChainID, "chain_id %q, this network is %q", b.ChainID, chainID)
	}
	for i, m := range b.Msgs {
		if err := m.ValidateBasic(); err != nil {
			if e, ok := err.(*Error); ok {
				return Errorf(e.Code, "msgs[%d] %s: %s", i, m.Type(), e.Msg)
			}
			return Errorf(CodeInvalidMsg, "msgs[%d] %s: %v", i, m.Type(), err)
		}
	}
	return nil
}

// String is a short description for logs.
func (t *Tx) String() string {
	return fmt.Sprintf("tx{signer=%s nonce=%d gas_limit=%d msgs=%d}", t.Signer(), t.Body.Nonce, t.Body.GasLimit, len(t.Body.Msgs))
}
