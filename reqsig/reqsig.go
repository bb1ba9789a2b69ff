// Package reqsig signs and verifies the HTTP requests tenants send to a
// provider's API with their ed25519 account keys.
//
// A signed request carries five headers:
//
//	X-Spare-Pubkey       base64 (standard, padded) of the 32-byte ed25519 public key
//	X-Spare-Timestamp    Unix time in milliseconds, canonical decimal
//	X-Spare-Nonce        16 random bytes, 32 lower-case hex digits
//	X-Spare-Body-SHA256  64 lower-case hex digits: SHA-256 of the body (of "" when none)
//	X-Spare-Signature    base64 (standard, padded) of the 64-byte ed25519 signature
//
// The signature covers this byte string (see SigningString), every field on
// its own line with no trailing newline:
//
//	spare-request-v1
//	METHOD                     r.Method, exactly as sent (case-sensitive)
//	REQUEST-URI                r.URL.RequestURI(): escaped path and raw query
//	BODY-SHA256                as in X-Spare-Body-SHA256
//	TIMESTAMP                  as in X-Spare-Timestamp
//	NONCE                      as in X-Spare-Nonce
//	HOST                       the request's host, normalised (see NormalizeHost)
//
// No field may contain a byte <= 0x20 or 0x7f (Sign refuses, Verify rejects
// as malformed), and all but the last are newline-free by construction, so
// the encoding is unambiguous. The first line separates these signatures from
// every other use of an account key (transactions sign other bytes).
//
// The body's digest travels in a header so that a server can authenticate a
// request, and authorize it, before it reads a single byte of the body:
// Middleware checks the headers, the timestamp, the host, the signature and
// the nonce, then asks the route's authorization hook, and only then reads
// the body (up to the route's limit) and checks it against the signed digest
// (400 "body_mismatch" when it differs). A client without a key, or with a
// key that may not use the route, cannot make the server read or buffer its
// body. A request without X-Spare-Body-SHA256 is refused as malformed: every
// client of this protocol (Sign, Transport) sends it.
//
// The host binds a request to the provider it was meant for, so that a
// malicious provider cannot replay a tenant's request against another
// provider within the skew window (each provider has its own replay cache).
// The binding only protects a verifier that knows its own names: set
// Verifier.Hosts. The host is normalised by lower-casing it and dropping the
// port, the [brackets] of IPv6 literals and a trailing dot, because the port
// a client dials is often not the one the server listens on (NAT, container
// port mapping, load balancers) while the name or IP is what identifies the
// provider. A reverse proxy in front of the provider must preserve the Host
// header; the path must be verified before any prefix is stripped from it.
//
// Replay protection: a verifier accepts a timestamp within ±MaxSkew of its
// clock and remembers each accepted (public key, nonce) until the request's
// own timestamp is more than MaxSkew in the past — after that the request
// would be rejected as expired anyway, so memory stays bounded by the
// request rate over 2×MaxSkew. See Verifier for the hard cap. Middleware
// records the nonce once the headers verify, before the authorization hook
// and the body: a signed request is used up even when it is refused later.
package reqsig

import (
	"bytes"
	"container/heap"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparenet/spare/ledger/tx"
)

// Header names.
const (
	HeaderPubkey    = "X-Spare-Pubkey"
	HeaderTimestamp = "X-Spare-Timestamp"
	HeaderNonce     = "X-Spare-Nonce"
	HeaderSignature = "X-Spare-Signature"
	HeaderBody      = "X-Spare-Body-SHA256"
)

// Domain is the first line of every signing string.
const Domain = "spare-request-v1"

// NonceSize is the number of random bytes in a nonce.
const NonceSize = 16

// Defaults.
const (
	DefaultMaxSkew    = 60 * time.Second
	DefaultMaxEntries = 1 << 20  // replay-cache entries (~150 MiB when full): ~8700 req/s sustained at the default skew
	DefaultMaxBody    = 64 << 20 // Transport's body limit
)

// Error codes, as in Error.Code and the "code" member of JSON error bodies.
const (
	CodeUnsigned     = "unsigned"      // 401: no X-Spare-* header at all
	CodeMalformed    = "malformed"     // 401: a header missing, repeated, or not in its canonical form
	CodeExpired      = "expired"       // 401: timestamp outside ±MaxSkew of the verifier's clock
	CodeBadSignature = "bad_signature" // 401: the signature does not verify (tampering, wrong key)
	CodeReplayed     = "replayed"      // 401: this (key, nonce) was already accepted
	CodeWrongHost    = "wrong_host"    // 421: the request names a host not in Verifier.Hosts
	CodeOverloaded   = "overloaded"    // 503: the replay cache is full; retry later
	CodeTooLarge     = "too_large"     // 413: body over the middleware's limit
	CodeBadBody      = "bad_body"      // 400: the body could not be read
	CodeBodyMismatch = "body_mismatch" // 400: the body's SHA-256 differs from the signed X-Spare-Body-SHA256
	CodeForbidden    = "forbidden"     // 403: for authorization layers (WriteError)
	CodeInternal     = "internal"      // 500
)

// Error is a verification failure with the HTTP status and code to answer it with.
type Error struct {
	Status int    // HTTP status: 401 for authentication failures, see the Code* constants
	Code   string // machine-readable, one of the Code* constants
	Msg    string // human-readable detail; never contains secrets
}

func (e *Error) Error() string { return "reqsig: " + e.Code + ": " + e.Msg }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// NormalizeHost returns the form of a Host header (or URL host) that is
// signed: lower case, without port, IPv6 brackets or a trailing dot.
func NormalizeHost(host string) string {
	h := host
	if hp, _, err := net.SplitHostPort(host); err == nil {
		h = hp
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// SigningString builds the signed bytes. It is exported for other
// implementations and tests; bodySHA256 is the lower-case hex digest, host is
// normalised here.
func SigningString(method, requestURI, bodySHA256, timestamp, nonce, host string) []byte {
	host = NormalizeHost(host)
	var b bytes.Buffer
	b.Grow(len(Domain) + len(method) + len(requestURI) + len(bodySHA256) + len(timestamp) + len(nonce) + len(host) + 6)
	for i, f := range []string{Domain, method, requestURI, bodySHA256, timestamp, nonce, host} {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(f)
	}
	return b.Bytes()
}

// checkField reports an error if s contains a byte that cannot appear in a signed field.
func checkField(name, s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c == 0x7f {
			return fmt.Errorf("%s contains byte 0x%02x", name, c)
		}
	}
	return nil
}

func bodyDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// clientHost is the host a client request is sent with (what the server sees as r.Host).
func clientHost(req *http.Request) string {
	if req.Host != "" {
		return req.Host
	}
	if req.URL != nil {
		return req.URL.Host
	}
	return ""
}

// Sign sets the five X-Spare-* headers of req, signing it with priv at time
// now. body must be exactly the bytes req will send (nil or empty for none);
// Sign neither reads nor sets req.Body. Each call draws a fresh nonce, so a
// request must be signed again before it is sent again.
func Sign(req *http.Request, body []byte, priv ed25519.PrivateKey, now time.Time) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("reqsig: private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	if req.URL == nil {
		return errors.New("reqsig: request has no URL")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	uri := req.URL.RequestURI()
	host := clientHost(req)
	for _, f := range [][2]string{{"method", method}, {"request URI", uri}, {"host", host}} {
		if err := checkField(f[0], f[1]); err != nil {
			return fmt.Errorf("reqsig: cannot sign: %w", err)
		}
	}
	var n [NonceSize]byte
	if _, err := rand.Read(n[:]); err != nil {
		return fmt.Errorf("reqsig: nonce: %w", err)
	}
	nonce := hex.EncodeToString(n[:])
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	digest := bodyDigest(body)
	sig := ed25519.Sign(priv, SigningString(method, uri, digest, ts, nonce, host))
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	pub := priv.Public().(ed25519.PublicKey)
	req.Header.Set(HeaderPubkey, base64.StdEncoding.EncodeToString(pub))
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderBody, digest)
	req.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return nil
}

// Transport is an http.RoundTripper that signs every request with Key. It
// reads the request body into memory (at most MaxBody bytes; a larger body is
// an error and nothing is sent) so it can hash it, and sends a clone of the
// request with a replayable body, so redirects and retries re-send it. Each
// round trip, redirects included, is signed afresh.
type Transport struct {
	Base    http.RoundTripper  // nil: http.DefaultTransport
	Key     ed25519.PrivateKey // the tenant's account key
	Now     func() time.Time   // nil: time.Now
	MaxBody int64              // 0: DefaultMaxBody
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := t.readBody(req)
	if err != nil {
		return nil, err
	}
	r2 := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if len(body) == 0 {
			r2.Body, r2.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		} else {
			r2.Body = io.NopCloser(bytes.NewReader(body))
			r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		r2.ContentLength = int64(len(body))
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	if err := Sign(r2, body, t.Key, now()); err != nil {
		return nil, err
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}

// readBody reads and closes req.Body (a RoundTripper must close it, even on error).
func (t *Transport) readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	limit := t.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if req.ContentLength > limit {
		return nil, fmt.Errorf("reqsig: request body of %d bytes exceeds the %d-byte limit", req.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reqsig: read request body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("reqsig: request body exceeds the %d-byte limit", limit)
	}
	return body, nil
}

// Verifier checks signed requests. Its zero value is ready to use; it must
// not be copied after first use. It is safe for concurrent use.
//
// Memory: entries expire by their signed timestamp (see the package doc), and
// expired entries are dropped (and the tables shrunk) as requests arrive.
// When MaxEntries unexpired entries are held, further requests are refused
// with 503 "overloaded" until some expire, rather than evicting: eviction
// would let anyone with a fresh key (keys are free) flush the cache and then
// replay a captured request. Failing closed trades that for availability
// under a flood, which the provider must rate-limit anyway.
type Verifier struct {
	MaxSkew    time.Duration    // accepted clock difference either way; 0: DefaultMaxSkew
	Now        func() time.Time // nil: time.Now
	MaxEntries int              // replay-cache cap; 0: DefaultMaxEntries
	// Hosts, if not empty, are the names and IPs this provider is reached at
	// (ports ignored, see NormalizeHost); a request signed for another host is
	// refused with 421 "wrong_host". Empty: any host is accepted (it is still
	// covered by the signature).
	Hosts []string

	mu    sync.Mutex
	seen  map[replayKey]int64 // key -> expiry, Unix ms
	queue expiryHeap
	peak  int // high-water mark of len(queue) since the tables were last rebuilt
}

type replayKey struct {
	pub   [ed25519.PublicKeySize]byte
	nonce [NonceSize]byte
}

type expiryEntry struct {
	exp int64
	key replayKey
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) skew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

// header returns the single value of header name; present reports whether it appeared at all.
func header(r *http.Request, name string) (val string, present bool, err *Error) {
	vals := r.Header.Values(name)
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
		return vals[0], true, nil
	default:
		return "", true, errorf(http.StatusUnauthorized, CodeMalformed, "%s header repeated", name)
	}
}

// decodeB64 decodes canonical standard base64 of exactly n bytes.
func decodeB64(name, s string, n int) ([]byte, *Error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != n || base64.StdEncoding.EncodeToString(b) != s {
		return nil, errorf(http.StatusUnauthorized, CodeMalformed, "%s must be standard base64 of %d bytes", name, n)
	}
	return b, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Verify checks the signature headers of r against body (the complete request
// body, already read) and returns the signer's account address. On failure the
// error is an *Error carrying the status and code to answer with. Checks, in
// order: headers present and canonical, timestamp within ±MaxSkew, host
// (when Hosts is set), signature, the body against the signed digest
// (400 "body_mismatch"), and finally the nonce, which is recorded only once
// everything else has passed.
func (v *Verifier) Verify(r *http.Request, body []byte) (tx.Address, error) {
	s, err := v.check(r)
	if err == nil {
		err = checkBody(body, s.digest)
	}
	if err == nil {
		err = v.remember(s.key, s.exp, s.nowMs)
	}
	if err != nil {
		return tx.Address{}, err // a non-nil *Error; never a typed nil
	}
	return s.signer, nil
}

// VerifyHeaders checks everything but the body — headers present and
// canonical, timestamp, host, the signature over the digest that
// X-Spare-Body-SHA256 declares — records the nonce, and returns the signer and
// that digest. The caller must then check the body it reads against the
// digest (CheckBody) before acting on it. Errors are *Error values.
func (v *Verifier) VerifyHeaders(r *http.Request) (signer tx.Address, bodySHA256 [32]byte, err error) {
	s, e := v.check(r)
	if e == nil {
		e = v.remember(s.key, s.exp, s.nowMs)
	}
	if e != nil {
		return tx.Address{}, [32]byte{}, e
	}
	return s.signer, s.digest, nil
}

// CheckBody reports, as a 400 "body_mismatch" *Error, whether body's SHA-256
// differs from the digest VerifyHeaders returned.
func CheckBody(body []byte, bodySHA256 [32]byte) error {
	if e := checkBody(body, bodySHA256); e != nil {
		return e
	}
	return nil
}

func checkBody(body []byte, digest [32]byte) *Error {
	if sha256.Sum256(body) != digest {
		return errorf(http.StatusBadRequest, CodeBodyMismatch,
			"the body's SHA-256 differs from the signed %s header (the body was altered or truncated in transit)", HeaderBody)
	}
	return nil
}

// verifiedReq is what check established about a request whose nonce is not yet recorded.
type verifiedReq struct {
	signer tx.Address
	digest [32]byte // the body's SHA-256, as signed
	key    replayKey
	exp    int64 // when the nonce may be forgotten, Unix ms
	nowMs  int64
}

var headerNames = [...]string{HeaderPubkey, HeaderTimestamp, HeaderNonce, HeaderBody, HeaderSignature}

func (v *Verifier) check(r *http.Request) (verifiedReq, *Error) {
	var vals [len(headerNames)]string
	present := 0
	for i, name := range headerNames {
		val, ok, err := header(r, name)
		if err != nil {
			return verifiedReq{}, err
		}
		if ok {
			present++
		}
		vals[i] = val
	}
	if present == 0 {
		return verifiedReq{}, errorf(http.StatusUnauthorized, CodeUnsigned,
			"request is not signed (%s headers required)", strings.Join(headerNames[:], ", "))
	}
	pubS, tsS, nonceS, bodyS, sigS := vals[0], vals[1], vals[2], vals[3], vals[4]
	for i, name := range headerNames {
		if vals[i] == "" {
			if name == HeaderBody {
				return verifiedReq{}, errorf(http.StatusUnauthorized, CodeMalformed,
					"%s header missing or empty: it carries the signed SHA-256 of the body, which is checked before the body is read (a client that predates it must be upgraded)", name)
			}
			return verifiedReq{}, errorf(http.StatusUnauthorized, CodeMalformed, "%s header missing or empty", name)
		}
	}
	pub, e := decodeB64(HeaderPubkey, pubS, ed25519.PublicKeySize)
	if e != nil {
		return verifiedReq{}, e
	}
	if tx.SmallOrderKey(pub) {
		return verifiedReq{}, errorf(http.StatusUnauthorized, CodeMalformed, "%s is a small-order (weak) key", HeaderPubkey)
	}
	sig, e := decodeB64(HeaderSignature, sigS, ed25519.SignatureSize)
	if e != nil {
		return verifiedReq{}, e
	}
	ts, err := strconv.ParseInt(tsS, 10, 64)
	if err != nil || ts < 0 || strconv.FormatInt(ts, 10) != tsS {
		return verifiedReq{}, errorf(http.StatusUnauthorized, CodeMalformed, "%s must be Unix milliseconds in canonical decimal", HeaderTimestamp)
	}
	if len(nonceS) != 2*NonceSize || !isLowerHex(nonceS) {
		return verifiedReq{}, errorf(http.StatusUnauthorized, CodeMalformed, "%s must be %d lower-case hex digits", HeaderNonce, 2*NonceSize)
	}
	var digest [32]byte
	if len(bodyS) != 2*len(digest) || !isLowerHex(bodyS) {
		return verifiedReq{}, errorf(http.StatusUnauthorized, CodeMalformed, "%s must be %d lower-case hex digits (the body's SHA-256)", HeaderBody, 2*len(digest))
	}
	hex.Decode(digest[:], []byte(bodyS)) // validated above

	nowMs := v.now().UnixMilli()
	skewMs := v.skew().Milliseconds()
	if d := nowMs - ts; d > skewMs || d < -skewMs {
		dir := "old"
		if d < 0 {
			dir, d = "in the future", -d
		}
		return verifiedReq{}, errorf(http.StatusUnauthorized, CodeExpired,
			"timestamp is %v %s, allowed skew is %v (check the client's clock)", time.Duration(d)*time.Millisecond, dir, v.skew())
	}

	if r.URL == nil {
		return verifiedReq{}, errorf(http.StatusUnauthorized, CodeMalformed, "request has no URL")
	}
	uri := r.URL.RequestURI()
	for _, f := range [][2]string{{"method", r.Method}, {"request URI", uri}, {"host", r.Host}} {
		if err := checkField(f[0], f[1]); err != nil {
			return verifiedReq{}, errorf(http.StatusUnauthorized, CodeMalformed, "%v", err)
		}
	}
	if len(v.Hosts) > 0 && !v.hostAllowed(r.Host) {
		return verifiedReq{}, errorf(http.StatusMisdirectedRequest, CodeWrongHost,
			"request is addressed to host %q, which this provider does not serve", NormalizeHost(r.Host))
	}

	msg := SigningString(r.Method, uri, bodyS, tsS, nonceS, r.Host)
	if !ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
		return verifiedReq{}, errorf(http.StatusUnauthorized, CodeBadSignature,
			"signature does not match the request and %s", HeaderPubkey)
	}

	s := verifiedReq{signer: tx.AddressOf(ed25519.PublicKey(pub)), digest: digest, exp: ts + skewMs, nowMs: nowMs}
	copy(s.key.pub[:], pub)
	hex.Decode(s.key.nonce[:], []byte(nonceS)) // validated above
	return s, nil
}

func (v *Verifier) hostAllowed(host string) bool {
	h := NormalizeHost(host)
	for _, allowed := range v.Hosts {
		if NormalizeHost(allowed) == h {
			return true
		}
	}
	return false
}

// remember records k until exp (Unix ms), after pruning what expired before nowMs.
func (v *Verifier) remember(k replayKey, exp, nowMs int64) *Error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pruneLocked(nowMs)
	if _, dup := v.seen[k]; dup {
		return errorf(http.StatusUnauthorized, CodeReplayed, "this request (nonce) was already received")
	}
	limit := v.MaxEntries
	if limit <= 0 {
		limit = DefaultMaxEntries
	}
	if len(v.queue) >= limit {
		return errorf(http.StatusServiceUnavailable, CodeOverloaded, "too many recent requests; retry in a few seconds")
	}
	if v.seen == nil {
		v.seen = make(map[replayKey]int64)
	}
	v.seen[k] = exp
	heap.Push(&v.queue, expiryEntry{exp: exp, key: k})
	v.peak = max(v.peak, len(v.queue))
	return nil
}

// pruneLocked drops entries that expired before nowMs, and rebuilds the map
// and heap once they hold under a quarter of their peak, since neither Go
// maps nor slices give memory back on delete.
func (v *Verifier) pruneLocked(nowMs int64) {
	for len(v.queue) > 0 && v.queue[0].exp < nowMs {
		e := heap.Pop(&v.queue).(expiryEntry)
		delete(v.seen, e.key)
	}
	if v.peak >= 1024 && len(v.queue) < v.peak/4 {
		q := make(expiryHeap, len(v.queue), 2*len(v.queue)+16)
		copy(q, v.queue) // still a valid heap
		seen := make(map[replayKey]int64, len(q))
		for _, e := range q {
			seen[e.key] = e.exp
		}
		v.queue, v.seen, v.peak = q, seen, len(q)
	}
}

// Len is the number of (key, nonce) pairs the replay cache holds, after dropping the expired ones.
func (v *Verifier) Len() int {
	nowMs := v.now().UnixMilli()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pruneLocked(nowMs)
	return len(v.queue)
}

// Authorize decides whether the verified signer may use the route r names,
// before any byte of the body is read. An *Error is answered with its status
// and code; any other error with 403 "forbidden" and the error's text, which
// the client sees.
type Authorize func(r *http.Request, signer tx.Address) error

// Middleware authenticates a request before it reads its body, then calls
// next with the signer's address and the body. In order:
//
//  1. the headers, timestamp, host, signature (over the digest that
//     X-Spare-Body-SHA256 declares) and nonce, as VerifyHeaders;
//  2. authorize, when not nil (e.g. "does this signer own this lease?");
//  3. the body, at most maxBody bytes (413 "too_large" past it, at once when
//     Content-Length says so; 0 allows no body), checked against the signed
//     digest (400 "body_mismatch").
//
// Nothing of the body is read before step 3, so an unsigned or unauthorized
// request costs the server its headers only. r.Body is replaced by a reader
// over the body passed to next. Failures are answered with WriteError and the
// *Error's status and code (401 responses also carry a WWW-Authenticate
// header, 503 a Retry-After).
func (v *Verifier) Middleware(maxBody int64, authorize Authorize, next func(w http.ResponseWriter, r *http.Request, signer tx.Address, body []byte)) http.Handler {
	maxBody = max(maxBody, 0)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signer, digest, err := v.VerifyHeaders(r)
		if err != nil {
			refuseUnread(w, r)
			writeErr(w, err)
			return
		}
		if authorize != nil {
			if err := authorize(r, signer); err != nil {
				var e *Error
				if !errors.As(err, &e) {
					e = &Error{Status: http.StatusForbidden, Code: CodeForbidden, Msg: err.Error()}
				}
				refuseUnread(w, r)
				writeErr(w, e)
				return
			}
		}
		if r.ContentLength > maxBody {
			refuseUnread(w, r)
			WriteError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, tooLarge(maxBody))
			return
		}
		var body []byte
		if r.Body != nil {
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					WriteError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, tooLarge(maxBody))
				} else {
					WriteError(w, http.StatusBadRequest, CodeBadBody, "could not read the request body")
				}
				return
			}
			body = b
		}
		if err := checkBody(body, digest); err != nil {
			writeErr(w, err)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next(w, r, signer, body)
	})
}

// refuseUnread marks a refusal answered before the request's body was read: an HTTP/1 connection is closed
// after the answer. Otherwise net/http would first read (and discard) up to 256 KiB of the refused body,
// waiting for a client that may never send it, before it answers at all. (HTTP/2 resets the stream instead.)
func refuseUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

func tooLarge(maxBody int64) string {
	if maxBody == 0 {
		return "this route takes no request body"
	}
	return fmt.Sprintf("request body over %d bytes, this route's limit", maxBody)
}

// writeErr answers with err's status and code (500 when err is not an *Error).
func writeErr(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Msg: "internal error"}
	}
	switch e.Status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Spare-Ed25519 realm="spare"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	WriteError(w, e.Status, e.Code, e.Msg)
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// WriteError answers with status and the JSON body {"error": msg, "code": code}.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	b, err := json.Marshal(ErrorBody{Error: msg, Code: code})
	if err != nil { // cannot happen for strings
		b = []byte(`{"error":"internal error","code":"internal"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
