package tenant

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
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

// VaultReader reads Vault objects from the providers that hold their shards: each shard from its provider's read
// API, verified against its root as it streams; any K shards of a stripe rebuild it; a provider that fails or
// serves bytes that do not verify is given up on and reported, and another shard read from the same row.
type VaultReader struct {
	// Where is the provider holding shard index of stripe (false: none does).
	Where func(stripe, index int) (ShardHost, bool)
	// Timeout bounds connecting to a provider and its answer's headers (0: 30 s); a body streams as long as it
	// flows.
	Timeout time.Duration

	mu      sync.Mutex
	clients map[tx.Hash]*http.Client
}

func (v *VaultReader) client(fp tx.Hash) *http.Client {
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
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout = timeout, timeout
	v.clients[fp] = c
	return c
}

// Read writes the object's bytes [offset, offset+length) to w. Reading the whole object also checks its bytes
// against its root at the end. failed (may be nil) hears of every shard given up on, with its provider.
func (v *VaultReader) Read(ctx context.Context, w io.Writer, obj *vault.Object, offset, length uint64, failed func(vault.ShardFailure, ShardHost)) error {
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
	v      *VaultReader
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
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	res, err := h.v.client(host.Fingerprint).Do(req)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", host.Provider, err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		res.Body.Close()
		return nil, fmt.Errorf("provider %s answered %s: %s", host.Provider, res.Status, termsafe.String(strings.TrimSpace(string(b))))
	}
	return vault.VerifiedReader(res.Body, root, h.obj.ShardSize, off, length), nil
}
