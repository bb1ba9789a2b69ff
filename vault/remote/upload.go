package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"lukechampine.com/blake3"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/termsafe"
)

// uploadIdle is how long a provider may take no byte of a shard being uploaded before it is given up on (twice
// that for its answer's headers once the shard is sent). A variable for the tests.
var uploadIdle = 30 * time.Second

// Has asks the provider at h whether it holds the shard with root (HEAD /vault/shards/{root}, over its pinned
// TLS). Anything but 200 (held) or 404 (not held) is an error naming the provider and its answer.
func Has(ctx context.Context, h ShardHost, root tx.Hash) (bool, error) {
	c, u, err := shardClient(h, root)
	if err != nil {
		return false, err
	}
	defer c.CloseIdleConnections()
	return has(ctx, c, h, u)
}

func has(ctx context.Context, c *http.Client, h ShardHost, u string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false, err
	}
	res, err := c.Do(req)
	if err != nil {
		return false, fmt.Errorf("provider %s: %w", h.Provider, err)
	}
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("provider %s answered %s to asking whether it holds the shard", h.Provider, res.Status)
}

// Upload sends the shard with root, size bytes, to the provider at h, which the ledger placed it on: first asks
// whether the provider holds it already (nothing sent then), else sends a PUT /vault/shards/{root} signed with key
// (the key of the object's owner: a provider takes a shard only from it) over the provider's pinned TLS.
//
// open gives the shard's bytes from the start; it is called twice, once to hash them (the signature covers the
// body's SHA-256, and bytes that do not hash to root are refused here, before anything is sent) and once to send
// them, so a shard is never held in memory. A reader it returns that is an io.Closer is closed. A provider that
// takes none of the bytes, or holds back its answer, for 30 s is given up on. Errors name the provider and what it
// answered (its text made safe for a terminal).
func Upload(ctx context.Context, h ShardHost, root tx.Hash, size int64, open func() (io.Reader, error), key ed25519.PrivateKey) error {
	if size <= 0 {
		return fmt.Errorf("shard %x…: size %d: a shard has at least one byte", root[:6], size)
	}
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("shard %x…: a private key of %d bytes, want %d", root[:6], len(key), ed25519.PrivateKeySize)
	}
	c, u, err := shardClient(h, root)
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	if held, err := has(ctx, c, h, u); err != nil {
		return err
	} else if held {
		return nil
	}
	digest, err := hashShard(root, size, open)
	if err != nil {
		return err
	}
	r, err := open()
	if err != nil {
		return fmt.Errorf("shard %x…: %w", root[:6], err)
	}
	if cl, ok := r.(io.Closer); ok {
		defer cl.Close()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The body stalls when the provider stops taking bytes: the request is then cancelled. Once it is all sent,
	// the answer has the transport's ResponseHeaderTimeout (the provider syncs the shard to disk first).
	body := &sentBody{newIdleBody(io.NopCloser(io.LimitReader(r, size)), uploadIdle, cancel)}
	defer body.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if err := signDigest(req, digest, key); err != nil {
		return err
	}
	res, err := c.Do(req)
	if err != nil {
		if body.stalled.Load() {
			return fmt.Errorf("provider %s took none of shard %x…'s bytes for %s: given up", h.Provider, root[:6], uploadIdle)
		}
		return fmt.Errorf("provider %s: uploading shard %x…: %w", h.Provider, root[:6], err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusCreated {
		return nil
	}
	return fmt.Errorf("provider %s answered %s to shard %x…: %s", h.Provider, res.Status, root[:6], answer(res.Body))
}

// sentBody is a request body given up on when the provider takes none of it for a while (see idleBody), and no
// longer timed once it is all sent.
type sentBody struct{ *idleBody }

func (b *sentBody) Read(p []byte) (int, error) {
	n, err := b.idleBody.Read(p)
	if err == io.EOF {
		b.timer.Stop()
	}
	return n, err
}

// shardClient is a client pinned to h's certificate and the URL of shard root on h.
func shardClient(h ShardHost, root tx.Hash) (*http.Client, string, error) {
	u, err := url.Parse(h.HostURI)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, "", fmt.Errorf("provider %s: host %q is not an https address", h.Provider, termsafe.String(h.HostURI))
	}
	u = u.JoinPath("vault", "shards", hex.EncodeToString(root[:]))
	c := certs.PinnedHTTPClient(h.Fingerprint, 0)
	tr := c.Transport.(*http.Transport)
	tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout = 2*uploadIdle, uploadIdle
	return c, u.String(), nil
}

// hashShard reads the shard from open, checks that it is size bytes hashing to root, and returns its SHA-256
// (what the request signs).
func hashShard(root tx.Hash, size int64, open func() (io.Reader, error)) ([32]byte, error) {
	r, err := open()
	if err != nil {
		return [32]byte{}, fmt.Errorf("shard %x…: %w", root[:6], err)
	}
	if cl, ok := r.(io.Closer); ok {
		defer cl.Close()
	}
	sh, b3 := sha256.New(), blake3.New(32, nil)
	n, err := io.Copy(io.MultiWriter(sh, b3), io.LimitReader(r, size))
	if err != nil {
		return [32]byte{}, fmt.Errorf("shard %x…: reading it: %w", root[:6], err)
	}
	if n != size {
		return [32]byte{}, fmt.Errorf("shard %x…: its source ended after %d of its %d bytes", root[:6], n, size)
	}
	var got tx.Hash
	if b3.Sum(got[:0]); got != root {
		return [32]byte{}, fmt.Errorf("shard %x…: the %d bytes given hash to %x…, not to the shard's root: not that shard (nothing sent)", root[:6], size, got[:6])
	}
	var d [32]byte
	sh.Sum(d[:0])
	return d, nil
}

// signDigest signs req as reqsig.Sign does, over a body whose SHA-256 is digest (the body is streamed, not held).
func signDigest(req *http.Request, digest [32]byte, key ed25519.PrivateKey) error {
	var n [reqsig.NonceSize]byte
	if _, err := rand.Read(n[:]); err != nil {
		return fmt.Errorf("reqsig: nonce: %w", err)
	}
	nonce, ts, body := hex.EncodeToString(n[:]), strconv.FormatInt(time.Now().UnixMilli(), 10), hex.EncodeToString(digest[:])
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	sig := ed25519.Sign(key, reqsig.SigningString(req.Method, req.URL.RequestURI(), body, ts, nonce, host))
	req.Header.Set(reqsig.HeaderPubkey, base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	req.Header.Set(reqsig.HeaderTimestamp, ts)
	req.Header.Set(reqsig.HeaderNonce, nonce)
	req.Header.Set(reqsig.HeaderBody, body)
	req.Header.Set(reqsig.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	return nil
}

// answer is what a provider said in an error's body: its JSON error message, or its text, at most 1 KiB, made safe
// for a terminal.
func answer(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 4096))
	var eb reqsig.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
		b = []byte(eb.Error)
	}
	if len(b) > 1024 {
		b = append(b[:1024:1024], "…"...)
	}
	s := termsafe.String(strings.TrimSpace(string(b)))
	if s == "" {
		return "no reason given"
	}
	return s
}
