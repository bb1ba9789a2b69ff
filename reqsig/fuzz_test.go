package reqsig

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzVerifyHeaders feeds arbitrary values for the five signature headers and
// the Host. Verify must never panic and must reject every combination (the
// fuzzer cannot forge a signature over the fixed body), with a 4xx *Error.
// VerifyHeaders, which checks everything but the body, may accept only the
// genuine header values (a signature over another body): then CheckBody must
// refuse the fuzz body. Nothing rejected may enter the replay cache.
func FuzzVerifyHeaders(f *testing.F) {
	now := time.UnixMilli(1_800_000_000_000)
	k := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	// A genuine signature, but over another body: one byte away from valid.
	r := httptest.NewRequest("POST", "http://provider.example/v1/jobs?x=1", nil)
	if err := Sign(r, []byte("other body"), k, now); err != nil {
		f.Fatal(err)
	}
	pub, ts, nonce, sig := r.Header.Get(HeaderPubkey), r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	body := r.Header.Get(HeaderBody)
	fuzzBody := []byte("fuzz body")
	fuzzDigest := bodyDigest(fuzzBody)
	f.Add(pub, ts, nonce, body, sig, "provider.example")
	f.Add(pub, ts, nonce, body, sig, "provider.example:8443")
	f.Add(pub, ts, nonce, body, sig, "PROVIDER.example.")
	f.Add(pub, ts, nonce, fuzzDigest, sig, "provider.example")
	f.Add(pub, ts, nonce, strings.ToUpper(body), sig, "provider.example")
	f.Add(pub, ts, nonce, "", sig, "provider.example")
	f.Add(pub, ts, nonce, body[:63], sig, "provider.example")
	f.Add(pub, "0"+ts, nonce, body, sig, "provider.example")
	f.Add(pub, ts, strings.ToUpper(nonce), body, sig, "provider.example")
	f.Add(pub, "-1", nonce, body, sig, "provider.example")
	f.Add(pub, "9223372036854775807", nonce, body, sig, "provider.example")
	f.Add(pub, "99999999999999999999", nonce, body, sig, "[::1]:1")
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)), ts, nonce, body, base64.StdEncoding.EncodeToString(make([]byte, 64)), "")
	f.Add(pub[:len(pub)-1], ts, nonce, body, sig, "provider.example")
	f.Add(pub, ts, nonce, body, strings.ReplaceAll(sig, "=", ""), "provider.example")
	f.Add("", "", "", "", "", "provider.example")
	f.Add("\x00", "\n", "\xff", "\r", "=", "[")
	f.Fuzz(func(t *testing.T, fpub, fts, fnonce, fbody, fsig, host string) {
		build := func() *http.Request {
			r := httptest.NewRequest("POST", "http://provider.example/v1/jobs?x=1", nil)
			r.Host = host
			for name, val := range map[string]string{HeaderPubkey: fpub, HeaderTimestamp: fts, HeaderNonce: fnonce, HeaderBody: fbody, HeaderSignature: fsig} {
				if val != "" {
					r.Header[name] = []string{val}
				}
			}
			return r
		}
		check := func(what string, v *Verifier, err error) {
			var e *Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Code == "" || e.Msg == "" {
				t.Fatalf("%s: error %#v is not a 4xx *Error", what, err)
			}
			if v.Len() != 0 {
				t.Fatalf("%s: rejected request entered the replay cache", what)
			}
		}

		v := &Verifier{Now: func() time.Time { return now }}
		signer, err := v.Verify(build(), fuzzBody)
		if err == nil {
			t.Fatalf("accepted forged request from %s", signer)
		}
		check("Verify", v, err)
		if !signer.IsZero() {
			t.Fatal("non-zero signer with an error")
		}

		v = &Verifier{Now: func() time.Time { return now }}
		signer, digest, err := v.VerifyHeaders(build())
		if err != nil {
			check("VerifyHeaders", v, err)
			if !signer.IsZero() || digest != ([32]byte{}) {
				t.Fatal("VerifyHeaders: a signer or digest with an error")
			}
			return
		}
		if fpub != pub || fts != ts || fnonce != nonce || fbody != body || fsig != sig || NormalizeHost(host) != "provider.example" {
			t.Fatalf("VerifyHeaders accepted headers other than the genuine ones: %q %q %q %q %q host %q", fpub, fts, fnonce, fbody, fsig, host)
		}
		if CheckBody(fuzzBody, digest) == nil {
			t.Fatal("CheckBody accepted a body other than the signed one")
		}
	})
}
