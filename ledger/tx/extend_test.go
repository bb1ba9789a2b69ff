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
