package provider

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sparenet/spare/manifest"
)

// Inputs are data a manifest names by URL and SHA-256 (or by a Spare Vault root: vaultinputs.go, which shares
// the disk, time and file rules below, not the address rule); the daemon downloads them into the lease's work
// directory before the workload starts. The URL is the tenant's, so the download is an attacker's request made
// from the provider's network. It is bounded so that it can reach nothing but public servers and cost nothing
// but the lease's own disk:
//
//   - addresses: the daemon connects only to public unicast addresses, checked on the address it is about to
//     connect to (after DNS resolution, for every connection and every redirect; a name that resolves to
//     127.0.0.1 or re-resolves to it later is refused all the same). Loopback, private (RFC 1918, fc00::/7),
//     shared (CGNAT 100.64/10), link-local (169.254/16, where clouds serve instance credentials; fe80::/10),
//     multicast, unspecified, documentation and other reserved ranges, and the IPv4-mapped, NAT64 and 6to4
//     forms that embed IPv4, are refused unless the operator allows them in [inputs]. No proxy is used.
//   - redirects: at most max_redirects, within the input's host unless redirect_other_hosts.
//   - bytes: all inputs of a lease together at most the lease's disk.
//   - time: all inputs of a lease within [inputs] timeout, and a download that receives fewer than
//     min_progress_bytes in any min_progress_window is abandoned (a server trickling a byte at a time).
//   - errors say what failed, never what came back: a content mismatch is "content does not match the
//     manifest's sha256", with no hash or size of what the server sent, and an address refusal does not name
//     the address a name resolved to.
//   - files are created beneath the work directory through an *os.Root, each new (O_EXCL), and no link on the
//     way is followed.

// maxInputBytes bounds all inputs of a lease when the order asks for no disk.
const maxInputBytes = 10 << 30

// InputsConfig is [inputs] in provider.toml.
type InputsConfig struct {
	// AllowPrivate lets inputs come from loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), shared
	// (100.64/10) and site-local addresses: a dev network, or a data mirror on the provider's own network.
	// Link-local addresses (169.254/16, the cloud metadata service) stay refused unless listed in AllowCIDRs.
	AllowPrivate bool `toml:"allow_private"`
	// AllowCIDRs are ranges inputs may come from although not public, e.g. ["10.1.2.0/24"] for one mirror.
	AllowCIDRs []string `toml:"allow_cidrs"`
	// RedirectOtherHosts follows a redirect from an input's host to another host (its address checked all the
	// same). Off: redirects are followed within the host only.
	RedirectOtherHosts bool `toml:"redirect_other_hosts"`
	// MaxRedirects is how many redirects one input may take (0: none).
	MaxRedirects int `toml:"max_redirects"`
	// Timeout bounds the download of all inputs of a lease.
	Timeout Duration `toml:"timeout"`
	// A download that receives fewer than MinProgressBytes in any MinProgressWindow is abandoned.
	MinProgressBytes  int64    `toml:"min_progress_bytes"`
	MinProgressWindow Duration `toml:"min_progress_window"`
}

// DefaultInputsConfig is [inputs] of DefaultConfig: public addresses only, 3 redirects within the host, 30
// minutes for all inputs, at least 16 KiB every 30 s.
func DefaultInputsConfig() InputsConfig {
	return InputsConfig{MaxRedirects: 3, Timeout: Duration{30 * time.Minute}, MinProgressBytes: 16 << 10,
		MinProgressWindow: Duration{30 * time.Second}}
}

// Validate checks [inputs], naming the key at fault.
func (c InputsConfig) Validate() error {
	if _, err := parseCIDRs(c.AllowCIDRs); err != nil {
		return err
	}
	if c.MaxRedirects < 0 || c.MaxRedirects > 10 {
		return fmt.Errorf("inputs.max_redirects %d: 0..10 (3 is the default)", c.MaxRedirects)
	}
	if d := c.Timeout.Duration; d < time.Second || d > 24*time.Hour {
		return fmt.Errorf("inputs.timeout %s: between 1s and 24h, for all inputs of a lease (30m is the default)", d)
	}
	if c.MinProgressBytes < 1 {
		return fmt.Errorf("inputs.min_progress_bytes %d: at least 1 (16384 is the default)", c.MinProgressBytes)
	}
	if d := c.MinProgressWindow.Duration; d < time.Second || d > 10*time.Minute {
		return fmt.Errorf("inputs.min_progress_window %s: between 1s and 10m (30s is the default)", d)
	}
	return nil
}

func parseCIDRs(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("inputs.allow_cidrs[%d] %q: write a range such as \"10.1.2.0/24\" or \"fd00:1::/64\"", i, s)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("inputs.allow_cidrs[%d] %q has bits set past the prefix: write %q", i, s, p.Masked())
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("inputs.allow_cidrs[%d] %q allows every address, the cloud metadata service included: list the ranges you mean (or set inputs.allow_private = true)", i, s)
		}
		out = append(out, p)
	}
	return out, nil
}

// InputOptions is how fetchInputs downloads (InputsConfig, parsed).
type InputOptions struct {
	AllowPrivate       bool
	Allow              []netip.Prefix
	RedirectOtherHosts bool
	MaxRedirects       int
	Timeout            time.Duration // all inputs of a lease
	MinProgressBytes   int64         // per MinProgressWindow
	MinProgressWindow  time.Duration
	// Vault resolves a vault input's root to the stored objects that claim it (vaultinputs.go); nil: vault
	// inputs are refused.
	Vault VaultSource
}

// Options parses c (validated) into fetchInputs' options; zero durations and sizes take the defaults.
func (c InputsConfig) Options() (InputOptions, error) {
	allow, err := parseCIDRs(c.AllowCIDRs)
	if err != nil {
		return InputOptions{}, err
	}
	def := DefaultInputsConfig()
	o := InputOptions{AllowPrivate: c.AllowPrivate, Allow: allow, RedirectOtherHosts: c.RedirectOtherHosts,
		MaxRedirects: max(c.MaxRedirects, 0), Timeout: c.Timeout.Duration, MinProgressBytes: c.MinProgressBytes,
		MinProgressWindow: c.MinProgressWindow.Duration}
	if o.Timeout <= 0 {
		o.Timeout = def.Timeout.Duration
	}
	if o.MinProgressBytes <= 0 {
		o.MinProgressBytes = def.MinProgressBytes
	}
	if o.MinProgressWindow <= 0 {
		o.MinProgressWindow = def.MinProgressWindow.Duration
	}
	return o, nil
}

// inputOptions are the daemon's, from its config (checked by Validate; a bad range is dropped: refused).
func (d *Daemon) inputOptions() InputOptions {
	c := d.cfg.Inputs
	o, err := c.Options()
	if err != nil {
		c.AllowCIDRs = nil
		o, _ = c.Options()
	}
	if d.c != nil {
		o.Vault = ledgerVault{d.c}
	}
	return o
}

// addressClass says why ip is not a public unicast address ("" when it is), and whether allow_private covers
// that class.
func addressClass(ip netip.Addr) (class string, private bool) {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	switch {
	case !ip.IsValid():
		return "invalid", false
	case ip.IsUnspecified():
		return "unspecified", false
	case ip.IsLoopback():
		return "loopback", true
	case ip.IsMulticast():
		return "multicast", false
	case ip.IsLinkLocalUnicast():
		return "link-local", false
	case ip.IsPrivate():
		return "private", true
	}
	for _, r := range reservedRanges {
		if r.p.Contains(ip) {
			return r.class, r.private
		}
	}
	return "", false
}

var reservedRanges = func() []struct {
	p       netip.Prefix
	class   string
	private bool
} {
	var out []struct {
		p       netip.Prefix
		class   string
		private bool
	}
	add := func(class string, private bool, prefixes ...string) {
		for _, s := range prefixes {
			out = append(out, struct {
				p       netip.Prefix
				class   string
				private bool
			}{netip.MustParsePrefix(s), class, private})
		}
	}
	add("shared (CGNAT)", true, "100.64.0.0/10")
	add("site-local", true, "fec0::/10")
	add("reserved", false,
		"0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "240.0.0.0/4", // 255.255.255.255 included
		"::/96",                          // IPv4-compatible (deprecated)
		"::ffff:0:0:0/96",                // IPv4-translated
		"64:ff9b::/96", "64:ff9b:1::/48", // NAT64: an IPv4 address behind a translator
		"100::/64", "2001::/23", "2001:db8::/32", "2002::/16", // discard, IETF (Teredo), documentation, 6to4
		"3fff::/20", "5f00::/16")
	return out
}()

// allowed reports whether an input may be fetched from ip.
func (o InputOptions) allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
		return false
	}
	for _, p := range o.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	class, private := addressClass(ip)
	return class == "" || o.AllowPrivate && private
}

// errAddressRefused is the dialer's refusal of a non-public address. Its text does not name the address (a
// tenant could otherwise map the provider's internal DNS).
var errAddressRefused = errors.New("the host has no public address this provider may connect to: inputs come from public " +
	"addresses only (a provider that serves inputs from its own network allows it with allow_private or allow_cidrs under [inputs] in provider.toml)")

// control runs on every connection attempt, on the resolved address about to be connected to.
func (o InputOptions) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return errAddressRefused
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !o.allowed(ap.Addr()) {
		return errAddressRefused
	}
	return nil
}

var (
	errInputsDeadline = errors.New("the inputs took longer than the provider allows (inputs.timeout)")
	errInputStalled   = errors.New("the server sent too little for too long (below the provider's minimum download rate)")
)

// fetchInputs downloads the manifest's inputs beneath work (the lease's work directory) and checks each against
// its SHA-256 (a vault input: its root, vaultinputs.go), so a provider can neither be fed nor swap different
// data. All inputs together are bounded by limit bytes (the lease's disk; 0: maxInputBytes) and by opt's time
// and progress rules; addresses and redirects as opt allows (see the top of this file). A failure leaves no
// partial file of the failing input and refuses the manifest; the error names the input and what failed, never
// what the server sent.
func fetchInputs(ctx context.Context, work *os.Root, m *manifest.Manifest, limit int64, opt InputOptions) error {
	if len(m.Inputs) == 0 {
		return nil
	}
	if work == nil {
		return errors.New("inputs: no work directory")
	}
	if limit <= 0 {
		limit = maxInputBytes
	}
	def := DefaultInputsConfig()
	if opt.Timeout <= 0 {
		opt.Timeout = def.Timeout.Duration
	}
	if opt.MinProgressBytes <= 0 {
		opt.MinProgressBytes = def.MinProgressBytes
	}
	if opt.MinProgressWindow <= 0 {
		opt.MinProgressWindow = def.MinProgressWindow.Duration
	}
	ctx, cancel := context.WithTimeoutCause(ctx, opt.Timeout, errInputsDeadline)
	defer cancel()

	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: opt.control}
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would connect on our behalf, past the address check
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    30 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true, // the bytes the tenant hashed, not a decompression of them
		MaxIdleConns:           4,
		IdleConnTimeout:        10 * time.Second,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, CheckRedirect: opt.checkRedirect}

	left := limit
	for i, in := range m.Inputs {
		rel, err := inputPath(in)
		if err != nil {
			return fmt.Errorf("inputs[%d].path: %w", i, err)
		}
		if !in.Vault.IsZero() {
			n, err := fetchVault(ctx, opt.Vault, work, rel, in.Vault, in.Unpack, left, limit, opt)
			if err != nil {
				return fmt.Errorf("inputs[%d] (vault %s): %w", i, in.Vault, err)
			}
			left -= n
			continue
		}
		u, err := url.Parse(in.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("inputs[%d].url: want an http:// or https:// URL with a host", i)
		}
		n, err := fetchOne(ctx, hc, u, work, rel, in.SHA256, left, limit, opt)
		if err != nil {
			return fmt.Errorf("inputs[%d] (%s): %w", i, u.Redacted(), err)
		}
		left -= n
	}
	return nil
}

// fetchInputsIn is fetchInputs beneath the directory workDir (opened as an *os.Root for the fetch).
func fetchInputsIn(ctx context.Context, workDir string, m *manifest.Manifest, limit int64, opt InputOptions) error {
	if len(m.Inputs) == 0 {
		return nil
	}
	work, err := os.OpenRoot(workDir)
	if err != nil {
		return fmt.Errorf("inputs: open the work directory: %w", pathOnly(err))
	}
	defer work.Close()
	return fetchInputs(ctx, work, m, limit, opt)
}

// inputPath is where an input lands, relative to the work directory: its path, or for a path ending in "/"
// that directory and the URL's last element, or a vault input's root in hex (as jobspec computes it); for a
// vault input to unpack, the directory its path names.
func inputPath(in manifest.Input) (string, error) {
	p := in.Path
	if strings.HasSuffix(p, "/") && !in.Unpack {
		base := path.Base(in.URL)
		if !in.Vault.IsZero() {
			base = in.Vault.String()
		}
		p = path.Join(p, base)
	}
	if err := manifest.CleanPath("path", p); err != nil {
		return "", err
	}
	return path.Clean(p), nil
}

func (o InputOptions) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > o.MaxRedirects {
		return fmt.Errorf("more than %d redirect(s): give the final URL", o.MaxRedirects)
	}
	if !o.RedirectOtherHosts && !sameHost(req.URL, via[0].URL) {
		return fmt.Errorf("redirected to another host (%s): this provider follows redirects within the input's host only; give the final URL", req.URL.Hostname())
	}
	return nil
}

func sameHost(a, b *url.URL) bool {
	h := func(u *url.URL) string { return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".") }
	return h(a) == h(b)
}

// progress counts the bytes of a download received in the current window.
type progress struct {
	r io.Reader
	n *atomic.Int64
}

func (p progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n.Add(int64(n))
	return n, err
}

// fetchOne downloads u into rel beneath work, at most left bytes (total is the lease's whole limit, for the
// message), and returns the bytes written.
func fetchOne(ctx context.Context, hc *http.Client, u *url.URL, work *os.Root, rel string, want [32]byte, left, total int64, opt InputOptions) (int64, error) {
	// The minimum-progress rule, from the request on (a server slow to answer is cut off too).
	ctx, window, stop := watchProgress(ctx, opt)
	defer stop()
	fail := func(err error) (int64, error) { return 0, fetchError(ctx, err) }

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, errors.New("bad URL")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the server answered %d %s, want 200", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	tooBig := fmt.Errorf("the inputs are larger than the lease's disk (%d bytes for all inputs together): order more disk", total)
	if resp.ContentLength > left {
		return 0, tooBig
	}
	f, err := createBeneath(work, rel, 0o644)
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(progress{resp.Body, window}, left+1))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("write %s: %w", rel, cerr)
	} else if err != nil {
		err = fetchError(ctx, err)
	}
	switch {
	case err != nil:
	case n > left:
		err = tooBig
	case [32]byte(h.Sum(nil)) != want:
		err = errors.New("content does not match the manifest's sha256")
	}
	if err != nil {
		_ = work.Remove(rel)
		return 0, err
	}
	return n, nil
}

// watchProgress is the minimum-progress rule: the returned context is cancelled with errInputStalled when
// fewer than opt.MinProgressBytes are added to window in any opt.MinProgressWindow. stop ends the watch and
// releases the context.
func watchProgress(ctx context.Context, opt InputOptions) (_ context.Context, window *atomic.Int64, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	window = new(atomic.Int64)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(opt.MinProgressWindow)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if window.Swap(0) < opt.MinProgressBytes {
					cancel(errInputStalled)
					return
				}
			}
		}
	}()
	return ctx, window, func() { close(done); cancel(nil) }
}

// fetchError says why a download failed without passing on what the network said about addresses: the
// deadline or stall that cancelled it, the address refusal, or the client's error with its internals dropped.
func fetchError(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		if errors.Is(cause, errInputStalled) || errors.Is(cause, errInputsDeadline) {
			return cause
		}
	}
	if errors.Is(err, errAddressRefused) {
		return errAddressRefused
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return fmt.Errorf("host %q not found", dnsErr.Name)
		}
		return fmt.Errorf("could not resolve host %q", dnsErr.Name)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return errors.New("connection refused")
		}
		if opErr.Timeout() {
			return errors.New("connection timed out")
		}
		return errors.New("could not connect")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err // the URL is already in the caller's message
	}
	return pathOnly(err) // e.g. a write error: not the provider's directory names
}

// createBeneath creates rel (clean, relative, slash-separated) beneath root as a new file (O_EXCL) of mode perm
// (open for writing whatever perm says), making its parent directories. Every existing component on the way
// must be a real directory: a link is refused, not followed, wherever it points.
func createBeneath(root *os.Root, rel string, perm os.FileMode) (*os.File, error) {
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		fi, err := root.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			if err = root.Mkdir(dir, 0o755); err == nil || errors.Is(err, fs.ErrExist) {
				fi, err = root.Lstat(dir)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("create directory %s: %w", dir, pathOnly(err))
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s is in the way of %s: it is not a directory (links are not followed)", dir, rel)
		}
	}
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, perm)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s already exists (a file of the manifest or another input): give the input another path", rel)
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", rel, pathOnly(err))
	}
	return f, nil
}

// pathOnly drops the absolute path a *PathError may carry (the provider's directories are not the tenant's
// business); the relative path is in the caller's message.
func pathOnly(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
