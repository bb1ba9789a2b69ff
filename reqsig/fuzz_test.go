package reqsig

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzVerifyHeaders feeds arbitrary values for the four signature headers and
// the Host: Verify must never panic and must reject every combination (the
// fuzzer cannot forge a signature over the fixed body), with a 4xx *Error.
func FuzzVerifyHeaders(f *testing.F) {
	now := time.UnixMilli(1_800_000_000_000)
	k := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	// A genuine signature, but over another body: one byte away from valid.
	r := httptest.NewRequest("POST", "http://provider.example/v1/jobs?x=1", nil)
	if err := Sign(r, []byte("other body"), k, now); err != nil {
		f.Fatal(err)
	}
	pub, ts, nonce, sig := r.Header.Get(HeaderPubkey), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	f.Add(pub, ts, nonce, sig, "provider.example")
	f.Add(pub, ts, nonce, sig, "provider.example:8443")
	f.Add(pub, ts, nonce, sig, "PROVIDER.example.")
	f.Add(pub, "0"+ts, nonce, sig, "provider.example")
	f.Add(pub, ts, strings.ToUpper(nonce), sig, "provider.example")
	f.Add(pub, "-1", nonce, sig, "provider.example")
	f.Add(pub, "9223372036854775807", nonce, sig, "provider.example")
	f.Add(pub, "99999999999999999999", nonce, sig, "[::1]:1")
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)), ts, nonce, base64.StdEncoding.EncodeToString(make([]byte, 64)), "")
	f.Add(pub[:len(pub)-1], ts, nonce, sig, "provider.example")
	f.Add(pub, ts, nonce, strings.ReplaceAll(sig, "=", ""), "provider.example")
	f.Add("", "", "", "", "provider.example")
	f.Add("\x00", "\n", "\xff", "=", "[")
	f.Fuzz(func(t *testing.T, pub, ts, nonce, sig, host string) {
		r := httptest.NewRequest("POST", "http://provider.example/v1/jobs?x=1", nil)
		r.Host = host
		for name, val := range map[string]string{HeaderPubkey: pub, HeaderTimestamp: ts, HeaderNonce: nonce, HeaderSignature: sig} {
			if val != "" {
				r.Header[name] = []string{val}
			}
		}
		v := &Verifier{Now: func() time.Time { return now }}
		signer, err := v.Verify(r, []byte("fuzz body"))
		if err == nil {
			t.Fatalf("accepted forged request from %s", signer)
		}
		var e *Error
		if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Code == "" || e.Msg == "" {
			t.Fatalf("error %#v is not a 4xx *Error", err)
		}
		if !signer.IsZero() {
			t.Fatal("non-zero signer with an error")
		}
		if v.Len() != 0 {
			t.Fatal("rejected request entered the replay cache")
		}
	})
}
