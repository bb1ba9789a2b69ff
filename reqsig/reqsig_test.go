package reqsig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/tx"
)

// clock is a fake, settable clock shared by signers and verifiers; nothing sleeps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_800_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func addr(k ed25519.PrivateKey) tx.Address { return tx.AddressOf(k.Public().(ed25519.PublicKey)) }

// echo is what the test handler answers for an accepted request.
type echo struct {
	Signer string `json:"signer"`
	Method string `json:"method"`
	URI    string `json:"uri"`
	Body   string `json:"body"` // the body passed to next
	RBody  string `json:"rbody"`
}

func echoHandler(w http.ResponseWriter, r *http.Request, signer tx.Address, body []byte) {
	rb, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(echo{Signer: signer.String(), Method: r.Method, URI: r.URL.RequestURI(), Body: string(body), RBody: string(rb)})
}

const testMaxBody = 1 << 10

func newServer(t *testing.T, v *Verifier) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(v.Middleware(testMaxBody, nil, echoHandler))
	t.Cleanup(srv.Close)
	return srv
}

// result decodes a response: the echo on success, or the JSON error body.
func result(t *testing.T, resp *http.Response) (echo, ErrorBody) {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e echo
	var eb ErrorBody
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("bad echo %q: %v", raw, err)
		}
		return e, eb
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(raw, &eb); err != nil || eb.Code == "" || eb.Error == "" {
		t.Fatalf("bad error body %q: %v", raw, err)
	}
	if strings.Contains(string(raw), "goroutine") || strings.Contains(string(raw), ".go:") {
		t.Errorf("error body leaks internals: %q", raw)
	}
	return e, eb
}

func TestSigningStringGolden(t *testing.T) {
	got := string(SigningString("PUT", "/v1/leases/7?x=a%20b&y=", bodyDigest([]byte("hello")),
		"1800000000000", "00112233445566778899aabbccddeeff", "Provider.Example.:8443"))
	want := "spare-request-v1\n" +
		"PUT\n" +
		"/v1/leases/7?x=a%20b&y=\n" +
		"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n" +
		"1800000000000\n" +
		"00112233445566778899aabbccddeeff\n" +
		"provider.example"
	if got != want {
		t.Fatalf("signing string\n%q\nwant\n%q", got, want)
	}
	for in, want := range map[string]string{
		"example.com": "example.com", "EXAMPLE.com:443": "example.com", "example.com.": "example.com",
		"127.0.0.1:8443": "127.0.0.1", "[::1]:8443": "::1", "[::1]": "::1", "::1": "::1", "": "",
		"[2001:DB8::1]": "2001:db8::1",
	} {
		if got := NormalizeHost(in); got != want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// An independent implementation of the documented format (no Sign) is accepted.
func TestDocumentedFormat(t *testing.T) {
	clk := newClock()
	k := key(7)
	body := []byte(`{"image":"x"}`)
	ts := fmt.Sprint(clk.Now().UnixMilli())
	nonce := "0123456789abcdef0123456789abcdef"
	sum := sha256.Sum256(body)
	msg := "spare-request-v1\nPOST\n/v1/jobs?dry=1\n" + hex.EncodeToString(sum[:]) + "\n" + ts + "\n" + nonce + "\nprovider.example"
	r := httptest.NewRequest("POST", "https://Provider.Example:9443/v1/jobs?dry=1", bytes.NewReader(body))
	r.Header.Set("X-Spare-Pubkey", base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey)))
	r.Header.Set("X-Spare-Timestamp", ts)
	r.Header.Set("X-Spare-Nonce", nonce)
	r.Header.Set("X-Spare-Body-SHA256", hex.EncodeToString(sum[:]))
	r.Header.Set("X-Spare-Signature", base64.StdEncoding.EncodeToString(ed25519.Sign(k, []byte(msg))))
	v := &Verifier{Now: clk.Now, Hosts: []string{"provider.example"}}
	signer, err := v.Verify(r, body)
	if err != nil {
		t.Fatal(err)
	}
	if signer != addr(k) {
		t.Fatalf("signer %s, want %s", signer, addr(k))
	}
}

func TestMiddleware(t *testing.T) {
	clk := newClock()
	v := &Verifier{Now: clk.Now}
	srv := newServer(t, v)
	alice, mallory := key(1), key(2)
	now := clk.Now()

	type tc struct {
		name     string
		method   string
		path     string
		body     string
		signAt   time.Duration // offset of the signing clock from the server's
		unsigned bool
		key      ed25519.PrivateKey
		mutate   func(r *http.Request, body *string) // after signing
		status   int
		code     string
	}
	cases := []tc{
		{name: "GET", method: "GET", path: "/v1/leases", status: 200},
		{name: "GET with query", method: "GET", path: "/v1/leases?owner=x&q=a%20b", status: 200},
		{name: "PUT with body", method: "PUT", path: "/v1/jobs/9", body: `{"cmd":["nvidia-smi"]}`, status: 200},
		{name: "DELETE", method: "DELETE", path: "/v1/jobs/9", status: 200},
		{name: "escaped path", method: "GET", path: "/v1/files/a%2Fb%20c", status: 200},
		{name: "body at limit", method: "POST", path: "/v1/up", body: strings.Repeat("x", testMaxBody), status: 200},
		{name: "skew edge past", method: "GET", path: "/", signAt: -60 * time.Second, status: 200},
		{name: "skew edge future", method: "GET", path: "/", signAt: 60 * time.Second, status: 200},
		{name: "host port differs", method: "GET", path: "/", status: 200,
			mutate: func(r *http.Request, _ *string) { r.Host = "127.0.0.1:1" }}, // signed with the real port

		{name: "unsigned", method: "GET", path: "/v1/leases", unsigned: true, status: 401, code: CodeUnsigned},
		{name: "tampered body", method: "PUT", path: "/v1/jobs/9", body: `{"gpus":1}`, status: 400, code: CodeBodyMismatch,
			mutate: func(_ *http.Request, b *string) { *b = `{"gpus":8}` }},
		{name: "body dropped", method: "PUT", path: "/v1/jobs/9", body: `{"gpus":1}`, status: 400, code: CodeBodyMismatch,
			mutate: func(_ *http.Request, b *string) { *b = "" }},
		{name: "body added", method: "PUT", path: "/v1/jobs/9", status: 400, code: CodeBodyMismatch,
			mutate: func(_ *http.Request, b *string) { *b = `{"gpus":8}` }},
		{name: "tampered body and its digest", method: "PUT", path: "/v1/jobs/9", body: `{"gpus":1}`, status: 401, code: CodeBadSignature,
			mutate: func(r *http.Request, b *string) {
				*b = `{"gpus":8}`
				r.Header.Set(HeaderBody, bodyDigest([]byte(*b)))
			}},
		{name: "missing body digest", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) { r.Header.Del(HeaderBody) }},
		{name: "upper-case body digest", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) { r.Header.Set(HeaderBody, strings.ToUpper(r.Header.Get(HeaderBody))) }},
		{name: "short body digest", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) { r.Header.Set(HeaderBody, r.Header.Get(HeaderBody)[2:]) }},
		{name: "tampered path", method: "DELETE", path: "/v1/jobs/9", status: 401, code: CodeBadSignature,
			mutate: func(r *http.Request, _ *string) { r.URL.Path = "/v1/jobs/10" }},
		{name: "tampered query", method: "GET", path: "/v1/logs?job=9", status: 401, code: CodeBadSignature,
			mutate: func(r *http.Request, _ *string) { r.URL.RawQuery = "job=10" }},
		{name: "query added", method: "GET", path: "/v1/logs", status: 401, code: CodeBadSignature,
			mutate: func(r *http.Request, _ *string) { r.URL.RawQuery = "all=1" }},
		{name: "tampered method", method: "PUT", path: "/v1/jobs/9", body: "{}", status: 401, code: CodeBadSignature,
			mutate: func(r *http.Request, _ *string) { r.Method = "POST" }},
		{name: "tampered host", method: "GET", path: "/", status: 401, code: CodeBadSignature,
			mutate: func(r *http.Request, _ *string) { r.Host = "other.example" }},
		{name: "tampered timestamp", method: "GET", path: "/", status: 401, code: CodeBadSignature,
			mutate: func(r *http.Request, _ *string) {
				r.Header.Set(HeaderTimestamp, fmt.Sprint(now.UnixMilli()+1))
			}},
		{name: "tampered nonce", method: "GET", path: "/", status: 401, code: CodeBadSignature,
			mutate: func(r *http.Request, _ *string) { r.Header.Set(HeaderNonce, strings.Repeat("ab", NonceSize)) }},
		{name: "other key, victim's pubkey", method: "DELETE", path: "/v1/jobs/9", key: mallory, status: 401, code: CodeBadSignature,
			mutate: func(r *http.Request, _ *string) {
				r.Header.Set(HeaderPubkey, base64.StdEncoding.EncodeToString(alice.Public().(ed25519.PublicKey)))
			}},
		{name: "stale", method: "GET", path: "/", signAt: -61 * time.Second, status: 401, code: CodeExpired},
		{name: "future", method: "GET", path: "/", signAt: 61 * time.Second, status: 401, code: CodeExpired},
		{name: "very stale", method: "GET", path: "/", signAt: -24 * time.Hour, status: 401, code: CodeExpired},
		{name: "missing nonce", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) { r.Header.Del(HeaderNonce) }},
		{name: "signature only", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) {
				r.Header.Del(HeaderNonce)
				r.Header.Del(HeaderPubkey)
				r.Header.Del(HeaderTimestamp)
			}},
		{name: "repeated header", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) { r.Header.Add(HeaderSignature, r.Header.Get(HeaderSignature)) }},
		{name: "upper-case nonce", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) {
				r.Header.Set(HeaderNonce, strings.ToUpper(r.Header.Get(HeaderNonce)))
			}},
		{name: "padded timestamp", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) { r.Header.Set(HeaderTimestamp, "0"+r.Header.Get(HeaderTimestamp)) }},
		{name: "timestamp in seconds", method: "GET", path: "/", status: 401, code: CodeExpired,
			mutate: func(r *http.Request, _ *string) { r.Header.Set(HeaderTimestamp, fmt.Sprint(now.Unix())) }},
		{name: "short pubkey", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) {
				r.Header.Set(HeaderPubkey, base64.StdEncoding.EncodeToString(make([]byte, 31)))
			}},
		{name: "url-safe signature", method: "GET", path: "/", status: 401, code: CodeMalformed,
			mutate: func(r *http.Request, _ *string) {
				sig, _ := base64.StdEncoding.DecodeString(r.Header.Get(HeaderSignature))
				r.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
			}},
		{name: "oversize body", method: "POST", path: "/v1/up", body: strings.Repeat("x", testMaxBody+1), status: 413, code: CodeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			req, err := http.NewRequest(c.method, srv.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			k := c.key
			if k == nil {
				k = alice
			}
			if !c.unsigned {
				if err := Sign(req, []byte(body), k, now.Add(c.signAt)); err != nil {
					t.Fatal(err)
				}
			}
			if c.mutate != nil {
				c.mutate(req, &body)
			}
			if body != "" {
				req.Body = io.NopCloser(strings.NewReader(body))
				req.ContentLength = int64(len(body))
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				raw, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d %s, want %d", resp.StatusCode, raw, c.status)
			}
			e, eb := result(t, resp)
			if c.status != 200 {
				if eb.Code != c.code {
					t.Fatalf("code %q (%s), want %q", eb.Code, eb.Error, c.code)
				}
				if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			if e.Signer != addr(k).String() || e.Method != c.method || e.Body != body || e.RBody != body {
				t.Fatalf("echo %+v; want signer %s method %s body %q", e, addr(k), c.method, body)
			}
			if want := strings.TrimPrefix(srv.URL+c.path, srv.URL); e.URI != want {
				t.Fatalf("URI %q, want %q", e.URI, want)
			}
		})
	}
}

// The same signed request sent twice is refused the second time; after the
// window it is refused as expired, never accepted again.
func TestReplay(t *testing.T) {
	clk := newClock()
	v := &Verifier{Now: clk.Now}
	srv := newServer(t, v)
	body := `{"amount":"5spare"}`
	req, _ := http.NewRequest("POST", srv.URL+"/v1/pay", nil)
	if err := Sign(req, []byte(body), key(1), clk.Now()); err != nil {
		t.Fatal(err)
	}
	send := func() (int, string) {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(strings.NewReader(body))
		r.ContentLength = int64(len(body))
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_, eb := result(t, resp)
		return resp.StatusCode, eb.Code
	}
	if s, c := send(); s != 200 {
		t.Fatalf("first: %d %s", s, c)
	}
	for _, adv := range []time.Duration{0, 30 * time.Second, 30 * time.Second} { // up to exactly +60s
		clk.Advance(adv)
		if s, c := send(); s != 401 || c != CodeReplayed {
			t.Fatalf("replay at +%v: %d %s, want 401 replayed", adv, s, c)
		}
	}
	clk.Advance(time.Millisecond)
	if s, c := send(); s != 401 || c != CodeExpired {
		t.Fatalf("replay after window: %d %s, want 401 expired", s, c)
	}
	// Another key may use the same nonce: the cache is keyed by (key, nonce).
	req2, _ := http.NewRequest("GET", srv.URL+"/", nil)
	Sign(req2, nil, key(2), clk.Now())
	req2.Header.Set(HeaderNonce, req.Header.Get(HeaderNonce))
	// Re-sign with that nonce by hand: Sign always draws a fresh one.
	msg := SigningString("GET", "/", bodyDigest(nil), req2.Header.Get(HeaderTimestamp), req.Header.Get(HeaderNonce), req2.URL.Host)
	req2.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(ed25519.Sign(key(2), msg)))
	resp, err := srv.Client().Do(req2)
	if err != nil {
		t.Fatal(err)
	}
	if _, eb := result(t, resp); resp.StatusCode != 200 {
		t.Fatalf("same nonce, other key: %d %s", resp.StatusCode, eb.Code)
	}
}

// signed builds a request signed at the clock's time.
func signed(t testing.TB, k ed25519.PrivateKey, at time.Time, path string) *http.Request {
	r := httptest.NewRequest("GET", "http://provider.example"+path, nil)
	if err := Sign(r, nil, k, at); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCacheExpiryFreesMemory(t *testing.T) {
	clk := newClock()
	v := &Verifier{Now: clk.Now}
	const n = 2000
	k := key(3)
	for i := range n {
		if _, err := v.Verify(signed(t, k, clk.Now(), fmt.Sprint("/", i)), nil); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 {
			clk.Advance(10 * time.Millisecond)
		}
	}
	if got := v.Len(); got != n {
		t.Fatalf("Len %d, want %d", got, n)
	}
	peakCap := cap(v.queue)

	// A request dated at the far edge of the future window is kept for 2×MaxSkew.
	future := signed(t, k, clk.Now().Add(DefaultMaxSkew), "/future")
	if _, err := v.Verify(future, nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultMaxSkew + time.Second) // every plain entry has now expired
	if got := v.Len(); got != 1 {
		t.Fatalf("Len after expiry %d, want 1 (the future-dated entry)", got)
	}
	if c := cap(v.queue); c >= peakCap/4 {
		t.Fatalf("heap capacity %d not shrunk from %d", c, peakCap)
	}
	if len(v.seen) != 1 {
		t.Fatalf("map holds %d entries, want 1", len(v.seen))
	}
	var e *Error
	if _, err := v.Verify(future, nil); !errors.As(err, &e) || e.Code != CodeReplayed {
		t.Fatalf("future-dated replay: %v, want replayed", err)
	}
	clk.Advance(DefaultMaxSkew)
	if got := v.Len(); got != 0 {
		t.Fatalf("Len %d, want 0", got)
	}
	if _, err := v.Verify(future, nil); !errors.As(err, &e) || e.Code != CodeExpired {
		t.Fatalf("future-dated replay after window: %v, want expired", err)
	}
}

func TestOverloaded(t *testing.T) {
	clk := newClock()
	v := &Verifier{Now: clk.Now, MaxEntries: 3, MaxSkew: 10 * time.Second}
	srv := newServer(t, v)
	c := &http.Client{Transport: &Transport{Key: key(4), Now: clk.Now}}
	get := func() (*http.Response, ErrorBody) {
		resp, err := c.Get(srv.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, eb := result(t, resp)
		return resp, eb
	}
	for range 3 {
		if resp, eb := get(); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, eb.Code)
		}
	}
	resp, eb := get()
	if resp.StatusCode != 503 || eb.Code != CodeOverloaded || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("full cache: %d %s Retry-After=%q", resp.StatusCode, eb.Code, resp.Header.Get("Retry-After"))
	}
	clk.Advance(10*time.Second + time.Millisecond)
	if resp, eb := get(); resp.StatusCode != 200 {
		t.Fatalf("after expiry: %d %s", resp.StatusCode, eb.Code)
	}
}

func TestWrongHost(t *testing.T) {
	clk := newClock()
	v := &Verifier{Now: clk.Now, Hosts: []string{"gpu.provider.example", "[2001:db8::1]:443", "10.0.0.5"}}
	for _, tc := range []struct {
		url  string
		code string
	}{
		{"https://gpu.provider.example/", ""},
		{"https://GPU.Provider.Example:8443/", ""},
		{"https://[2001:db8::1]:9000/", ""},
		{"http://10.0.0.5:8080/", ""},
		{"https://evil.example/", CodeWrongHost},
		{"https://10.0.0.6/", CodeWrongHost},
	} {
		r := httptest.NewRequest("GET", tc.url, nil)
		Sign(r, nil, key(5), clk.Now())
		_, err := v.Verify(r, nil)
		var e *Error
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.code != "" && (!errors.As(err, &e) || e.Code != tc.code || e.Status != http.StatusMisdirectedRequest):
			t.Errorf("%s: %v, want 421 %s", tc.url, err, tc.code)
		}
	}
}

// bodyTracker records whether the transport closed the request body.
type bodyTracker struct {
	io.Reader
	closed atomic.Bool
}

func (b *bodyTracker) Close() error { b.closed.Store(true); return nil }

func TestTransport(t *testing.T) {
	clk := newClock()
	v := &Verifier{Now: clk.Now}
	var hits atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("/", v.Middleware(testMaxBody, nil, func(w http.ResponseWriter, r *http.Request, s tx.Address, body []byte) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/echo?from=redirect", http.StatusTemporaryRedirect) // 307: the body is re-sent
			return
		}
		echoHandler(w, r, s, body)
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	k := key(6)
	tr := &Transport{Base: srv.Client().Transport, Key: k, Now: clk.Now, MaxBody: 2 * testMaxBody}
	c := &http.Client{Transport: tr}

	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/echo?a=1", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		e, eb := result(t, resp)
		if resp.StatusCode != 200 || e.Signer != addr(k).String() || e.URI != "/echo?a=1" {
			t.Fatalf("%d %s %+v", resp.StatusCode, eb.Code, e)
		}
		if req.Header.Get(HeaderSignature) != "" {
			t.Fatal("transport modified the caller's request")
		}
	})
	t.Run("PUT streaming body", func(t *testing.T) {
		body := strings.Repeat("gpu", 100)
		tb := &bodyTracker{Reader: io.MultiReader(strings.NewReader(body[:50]), strings.NewReader(body[50:]))}
		req, _ := http.NewRequest("PUT", srv.URL+"/echo", tb) // unknown length, not rewindable
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		e, eb := result(t, resp)
		if resp.StatusCode != 200 || e.Body != body || e.RBody != body || e.Method != "PUT" {
			t.Fatalf("%d %s %+v", resp.StatusCode, eb.Code, e)
		}
		if !tb.closed.Load() {
			t.Error("request body not closed")
		}
	})
	t.Run("redirect re-sends and re-signs", func(t *testing.T) {
		before := hits.Load()
		resp, err := c.Post(srv.URL+"/redirect", "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		e, eb := result(t, resp)
		if resp.StatusCode != 200 || e.Body != `{"n":1}` || e.URI != "/echo?from=redirect" || e.Method != "POST" {
			t.Fatalf("%d %s %+v", resp.StatusCode, eb.Code, e)
		}
		if got := hits.Load() - before; got != 2 {
			t.Fatalf("%d handler calls, want 2", got)
		}
	})
	t.Run("empty body", func(t *testing.T) {
		resp, err := c.Post(srv.URL+"/echo", "text/plain", strings.NewReader(""))
		if err != nil {
			t.Fatal(err)
		}
		if e, eb := result(t, resp); resp.StatusCode != 200 || e.Body != "" {
			t.Fatalf("%d %s %+v", resp.StatusCode, eb.Code, e)
		}
	})
	t.Run("body over transport limit", func(t *testing.T) {
		before := hits.Load()
		tb := &bodyTracker{Reader: strings.NewReader(strings.Repeat("x", 2*testMaxBody+1))}
		req, _ := http.NewRequest("POST", srv.URL+"/echo", tb)
		_, err := c.Do(req)
		if err == nil || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("err %v, want a body-limit error", err)
		}
		if hits.Load() != before {
			t.Fatal("oversize request reached the server")
		}
		if !tb.closed.Load() {
			t.Error("request body not closed on error")
		}
	})
	t.Run("body over server limit", func(t *testing.T) {
		resp, err := c.Post(srv.URL+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", testMaxBody+1)))
		if err != nil {
			t.Fatal(err)
		}
		if _, eb := result(t, resp); resp.StatusCode != 413 || eb.Code != CodeTooLarge {
			t.Fatalf("%d %s", resp.StatusCode, eb.Code)
		}
	})
	t.Run("bad key", func(t *testing.T) {
		bad := &http.Client{Transport: &Transport{Base: srv.Client().Transport, Key: k[:10]}}
		if _, err := bad.Get(srv.URL + "/echo"); err == nil {
			t.Fatal("short key accepted")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 32 {
			wg.Go(func() {
				resp, err := c.Post(srv.URL+"/echo", "text/plain", strings.NewReader(fmt.Sprint(i)))
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

func TestSignRejectsUnsignable(t *testing.T) {
	r := httptest.NewRequest("GET", "http://provider.example/", nil)
	r.Host = "provider.example\nX: y"
	if err := Sign(r, nil, key(1), time.Now()); err == nil {
		t.Fatal("host with a newline signed")
	}
	r = httptest.NewRequest("GET", "http://provider.example/", nil)
	r.Method = "GET /x"
	if err := Sign(r, nil, key(1), time.Now()); err == nil {
		t.Fatal("method with a space signed")
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, http.StatusForbidden, CodeForbidden, `lease 7 belongs to "someone else"`)
	if w.Code != 403 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	var eb ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || eb.Code != "forbidden" || eb.Error != `lease 7 belongs to "someone else"` {
		t.Fatalf("%q: %v", w.Body, err)
	}
}

func TestVerifyNeverReturnsTypedNil(t *testing.T) {
	clk := newClock()
	v := &Verifier{Now: clk.Now}
	_, err := v.Verify(signed(t, key(1), clk.Now(), "/"), nil)
	if err != nil {
		t.Fatalf("valid request: %v", err)
	}
	_, err = v.Verify(httptest.NewRequest("GET", "/", nil), nil)
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != CodeUnsigned {
		t.Fatalf("%v", err)
	}
}

func TestConcurrentVerify(t *testing.T) {
	clk := newClock()
	v := &Verifier{Now: clk.Now}
	reqs := make([]*http.Request, 200)
	for i := range reqs {
		reqs[i] = signed(t, key(byte(i%5)), clk.Now(), "/")
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i, r := range reqs { // every goroutine tries every request: each must be accepted exactly once
				if _, err := v.Verify(r, nil); err == nil {
					ok.Add(1)
				}
				if g == 0 && i%50 == 0 {
					clk.Advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if ok.Load() != int64(len(reqs)) {
		t.Fatalf("%d acceptances, want %d", ok.Load(), len(reqs))
	}
}

// The blocklisted keys really are forgeable with crypto/ed25519 alone (which
// proves the y-coordinates right), and Verify refuses them.
func TestSmallOrderKeys(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1
	forgedSig := append(append([]byte{}, identity...), make([]byte, 32)...) // R = identity, S = 0
	canonical := []string{
		"0100000000000000000000000000000000000000000000000000000000000000",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0000000000000000000000000000000000000000000000000000000000000080",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	}
	nonCanonical := []string{
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p+1
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // y = p, x < 0
		"0100000000000000000000000000000000000000000000000000000000000080", // identity with x = "-0"
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // y = -1 with x = "-0"
	}
	clk := newClock()
	for _, h := range append(canonical, nonCanonical...) {
		pub, _ := hex.DecodeString(h)
		if !tx.SmallOrderKey(pub) {
			t.Errorf("%s not detected", h)
			continue
		}
		// Forge: find a nonce for which the fixed signature verifies.
		forged := false
		for i := 0; i < 400 && !forged; i++ {
			r := httptest.NewRequest("GET", "http://provider.example/", nil)
			nonce := fmt.Sprintf("%032x", i)
			ts := fmt.Sprint(clk.Now().UnixMilli())
			if !ed25519.Verify(pub, SigningString("GET", "/", bodyDigest(nil), ts, nonce, r.Host), forgedSig) {
				continue
			}
			forged = true
			r.Header.Set(HeaderPubkey, base64.StdEncoding.EncodeToString(pub))
			r.Header.Set(HeaderTimestamp, ts)
			r.Header.Set(HeaderNonce, nonce)
			r.Header.Set(HeaderBody, bodyDigest(nil))
			r.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(forgedSig))
			var e *Error
			if _, err := (&Verifier{Now: clk.Now}).Verify(r, nil); !errors.As(err, &e) || e.Code != CodeMalformed {
				t.Errorf("%s: forged request not refused as weak: %v", h, err)
			}
		}
		if !forged {
			t.Errorf("%s: could not forge; is it really small-order?", h)
		}
	}
	for seed := range 50 {
		if tx.SmallOrderKey(key(byte(seed)).Public().(ed25519.PublicKey)) {
			t.Fatalf("honest key %d flagged", seed)
		}
	}
}
