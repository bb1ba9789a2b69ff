package tx

import (
	"bytes"
	"testing"
)

// TestMaxLeaseSecEncoding: a provider declaration without max_lease_sec (one written before extensions existed)
// still decodes, to 0; one with it round-trips; an explicit 0 (a second encoding of "absent") and a value over
// the bound are refused by the decoder, and the bound by the encoder too.
func TestMaxLeaseSecEncoding(t *testing.T) {
	info := ProviderInfo{HostURI: "https://gpu.example:8443", CertFingerprint: Hash{1}, Region: "eu-west",
		Hardware: Hardware{CPUMilli: 1000, MemoryMiB: 1024}}
	old := NewWriter(64)
	EncodeProviderInfo(old, &info) // what RegisterProvider wrote before extensions
	var m RegisterProvider
	if err := decodeMsgPayload(&m, old.Bytes()); err != nil || m.MaxLeaseSec != 0 {
		t.Fatalf("old declaration: %v, max %d", err, m.MaxLeaseSec)
	}
	info.MaxLeaseSec = 86400
	w := NewWriter(64)
	(&UpdateProvider{ProviderInfo: info}).encode(w)
	var u UpdateProvider
	if err := decodeMsgPayload(&u, w.Bytes()); err != nil || u.MaxLeaseSec != 86400 {
		t.Fatalf("with max: %v, max %d", err, u.MaxLeaseSec)
	}
	again := NewWriter(64)
	u.encode(again)
	if !bytes.Equal(again.Bytes(), w.Bytes()) {
		t.Fatal("re-encoding differs")
	}
	zero := append(append([]byte{}, old.Bytes()...), 0)
	if err := decodeMsgPayload(&UpdateProvider{}, zero); err == nil {
		t.Fatal("an explicit max_lease_sec 0 decoded: two encodings of one value")
	}
	big := NewWriter(64)
	EncodeProviderInfo(big, &info)
	big.Uvarint(MaxDurationSec + 1)
	if err := decodeMsgPayload(&UpdateProvider{}, big.Bytes()); err == nil {
		t.Fatal("max_lease_sec over MaxDurationSec decoded")
	}
	info.MaxLeaseSec = MaxDurationSec + 1
	bad := NewWriter(64)
	(&RegisterProvider{ProviderInfo: info}).encode(bad)
	if bad.Err() == nil {
		t.Fatal("encoder wrote max_lease_sec over its bound")
	}
	if err := info.Validate(); CodeOf(err) != CodeInvalidMsg {
		t.Fatalf("Validate: %v", err)
	}
}

func decodeMsgPayload(m Msg, b []byte) error {
	r := NewReader(b)
	m.decode(r)
	return r.Done(m.Type().String())
}

func TestExtendLeaseValidateBasic(t *testing.T) {
	for _, c := range []struct {
		m    ExtendLease
		want Code
	}{
		{ExtendLease{LeaseID: 1, AddSec: 60}, CodeOK},
		{ExtendLease{LeaseID: 0, AddSec: 60}, CodeInvalidMsg},
		{ExtendLease{LeaseID: 1, AddSec: 0}, CodeInvalidMsg},
		{ExtendLease{LeaseID: 1, AddSec: MaxDurationSec}, CodeOK},
		{ExtendLease{LeaseID: 1, AddSec: MaxDurationSec + 1}, CodeInvalidMsg},
		{ExtendLease{LeaseID: 1, AddSec: ^uint64(0)}, CodeInvalidMsg},
	} {
		if got := CodeOf(c.m.ValidateBasic()); got != c.want {
			t.Errorf("%+v: %s, want %s", c.m, got, c.want)
		}
	}
}

// TestReceiptVaultRootEncoding: a receipt without a Vault root encodes and signs as receipts always have (one
// written before the field existed decodes, to zero); one with it round-trips in both messages that carry a
// receipt; an explicit zero root (a second encoding of "absent") and a cut-off root are refused; and the signed
// bytes of a receipt with a root are never those of one without (a provider's signature over one cannot be
// replayed as the other's).
func TestReceiptVaultRootEncoding(t *testing.T) {
	rc := Receipt{ChainID: "c", LeaseID: 3, ManifestHash: Hash{1}, StartMs: 1, EndMs: 2, ExitCode: 0, OutputRoot: Hash{2}, Signature: make([]byte, SignatureLen)}
	old := NewWriter(160)
	EncodeReceipt(old, rc) // what CompleteLease wrote before the Vault
	var m CompleteLease
	if err := decodeMsgPayload(&m, old.Bytes()); err != nil || !m.Receipt.VaultRoot.IsZero() {
		t.Fatalf("old receipt: %v, vault root %s", err, m.Receipt.VaultRoot)
	}
	now := NewWriter(160)
	(&CompleteLease{Receipt: rc}).encode(now)
	if !bytes.Equal(now.Bytes(), old.Bytes()) {
		t.Fatal("a receipt without a Vault root encodes differently than before")
	}
	unsigned := rc.SignBytes()
	rc.VaultRoot = Hash{9}
	signed := rc.SignBytes()
	if bytes.Equal(signed, unsigned) || !bytes.Equal(signed[:len(unsigned)], unsigned) || len(signed) != len(unsigned)+32 {
		t.Fatal("the Vault root is not the last 32 signed bytes")
	}
	for _, msg := range []Msg{&CompleteLease{Receipt: rc}, &RevealResult{Receipt: rc, Salt: [32]byte{5}}} {
		w := NewWriter(200)
		msg.encode(w)
		b := w.Bytes()
		got := msg.(interface{ Type() MsgType })
		var back Msg
		switch got.Type() {
		case TypeCompleteLease:
			back = &CompleteLease{}
		default:
			back = &RevealResult{}
		}
		if err := decodeMsgPayload(back, b); err != nil {
			t.Fatalf("%s: %v", msg.Type(), err)
		}
		var vr Hash
		switch v := back.(type) {
		case *CompleteLease:
			vr = v.Receipt.VaultRoot
		case *RevealResult:
			vr = v.Receipt.VaultRoot
		}
		if vr != rc.VaultRoot {
			t.Fatalf("%s: vault root %s after a round trip", msg.Type(), vr)
		}
		zero := append(append([]byte(nil), b[:len(b)-32]...), make([]byte, 32)...)
		if err := decodeMsgPayload(back, zero); err == nil {
			t.Fatalf("%s: an explicit zero Vault root decoded", msg.Type())
		}
		if err := decodeMsgPayload(back, b[:len(b)-1]); err == nil {
			t.Fatalf("%s: a cut-off Vault root decoded", msg.Type())
		}
	}
}
