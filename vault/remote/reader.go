package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lukechampine.com/blake3"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/termsafe"
	"github.com/sparenet/spare/vault"
)

// ShardHost is where a Vault shard is held: its provider, its API and the certificate it pins.
type ShardHost struct {
	Provider    tx.Address
	HostURI     string
	Fingerprint tx.Hash
}

// Reader reads Vault objects from the providers that hold their shards: each shard from its provider's read
// API, verified against its root as it streams; any K shards of a stripe rebuild it; a provider that fails or
// serves bytes that do not verify is given up on and reported, and another shard read from the same row.
type Reader struct {
	// Where is the provider holding shard index of stripe (false: none does).
	Where func(stripe, index int) (ShardHost, bool)
	// Timeout bounds connecting to a provider, its answer's headers, and every wait for more of its body (0:
	// 30 s): a provider that stops sending, or trickles, is given up on like one that fails.
	Timeout time.Duration

	mu      sync.Mutex
	clients map[tx.Hash]*http.Client
}

func (v *Reader) client(fp tx.Hash) *http.Client {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.clients == nil {
		v.clients = map[tx.Hash]*http.Client{}
	}
	if c := v.clients[fp]; c != nil {
		return c
	}
	c := certs.PinnedHTTPClient(fp, 0)
	tr := c.Transport.(*http.Transport)
	tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout = v.timeout(), v.timeout()
	v.clients[fp] = c
	return c
}

func (v *Reader) timeout() time.Duration {
	if v.Timeout <= 0 {
		return 30 * time.Second
	}
	return v.Timeout
}

// idleBody is a response body whose request is cancelled when no byte of it arrives for idle: a read stuck on a
// silent or trickling provider then fails, and the shard is read elsewhere.
type idleBody struct {
	io.ReadCloser
	idle    time.Duration
	timer   *time.Timer
	stalled atomic.Bool
}

func newIdleBody(body io.ReadCloser, idle time.Duration, cancel context.CancelFunc) *idleBody {
	b := &idleBody{ReadCloser: body, idle: idle}
	b.timer = time.AfterFunc(idle, func() { b.stalled.Store(true); cancel() })
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && b.stalled.Load() {
		err = fmt.Errorf("sent nothing for %s: given up", b.idle)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.ReadCloser.Close()
}

// Read writes the object's bytes [offset, offset+length) to w. Reading the whole object also checks its bytes
// against its root at the end. failed (may be nil) hears of every shard given up on, with its provider.
func (v *Reader) Read(ctx context.Context, w io.Writer, obj *vault.Object, offset, length uint64, failed func(vault.ShardFailure, ShardHost)) error {
	whole := offset == 0 && length == obj.Size
	h := blake3.New(32, nil)
	out := w
	if whole {
		out = io.MultiWriter(w, h)
	}
	err := vault.DecodeRange(out, obj.Layout, offset, length, func(s int) vault.ShardReader {
		return &httpShards{ctx: ctx, v: v, obj: obj, stripe: s}
	}, func(f vault.ShardFailure) {
		if failed != nil {
			host, _ := v.Where(f.Stripe, f.Index)
			failed(f, host)
		}
	})
	if err != nil {
		return err
	}
	if whole {
		var got tx.Hash
		h.Sum(got[:0])
		if got != obj.Root {
			return fmt.Errorf("object %x…: its bytes hash to %x…, not its root: its manifest does not describe what its shards hold", obj.Root[:6], got[:6])
		}
	}
	return nil
}

// httpShards opens one stripe's shards from their providers.
type httpShards struct {
	ctx    context.Context
	v      *Reader
	obj    *vault.Object
	stripe int
}

func (h *httpShards) Open(i int, off, length uint64) (io.ReadCloser, error) {
	host, ok := h.v.Where(h.stripe, i)
	if !ok {
		return nil, errors.New("no provider holds it")
	}
	root := h.obj.ShardRoot(h.stripe, i)
	u, err := url.Parse(host.HostURI)
	if err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("provider %s: host %q is not an https address", host.Provider, host.HostURI)
	}
	u = u.JoinPath("vault", "shards", fmt.Sprintf("%x", root[:]))
	u.RawQuery = url.Values{"offset": {fmt.Sprint(off)}, "length": {fmt.Sprint(length)}}.Encode()
	ctx, cancel := context.WithCancel(h.ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		cancel()
		return nil, err
	}
	res, err := h.v.client(host.Fingerprint).Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("provider %s: %w", host.Provider, err)
	}
	body := newIdleBody(res.Body, h.v.timeout(), cancel)
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(body, 512))
		body.Close()
		cancel()
		return nil, fmt.Errorf("provider %s answered %s: %s", host.Provider, res.Status, termsafe.String(strings.TrimSpace(string(b))))
	}
	return vault.VerifiedReader(&cancelOnClose{body, cancel}, root, h.obj.ShardSize, off, length), nil
}

// cancelOnClose releases its request's context when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
