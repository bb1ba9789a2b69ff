package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparenet/spare/manifest"
)

// testInputOptions are fast rules for tests: a stalled download is cut off within a second.
func testInputOptions() InputOptions {
	return InputOptions{MaxRedirects: 3, Timeout: 30 * time.Second, MinProgressBytes: 64, MinProgressWindow: 400 * time.Millisecond}
}

func workRoot(t *testing.T) (*os.Root, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

func inputsOf(ins ...manifest.Input) *manifest.Manifest { return &manifest.Manifest{Inputs: ins} }

// serveOn serves h on a loopback address of this machine (Linux answers on all of 127.0.0.0/8).
func serveOn(t *testing.T, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestInputAddressPolicy(t *testing.T) {
	def := InputOptions{}
	priv := InputOptions{AllowPrivate: true}
	meta := InputOptions{Allow: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("10.1.2.0/24")}}
	for _, c := range []struct {
		ip                  string
		public, withPrivate bool
	}{
		{"8.8.8.8", true, true},
		{"1.1.1.1", true, true},
		{"2606:4700::1111", true, true},
		{"::ffff:8.8.8.8", true, true},
		{"127.0.0.1", false, true},
		{"127.9.9.9", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true}, // IPv4-mapped loopback
		{"10.0.0.1", false, true},
		{"::ffff:10.0.0.1", false, true},
		{"172.16.5.4", false, true},
		{"192.168.1.1", false, true},
		{"100.64.0.1", false, true}, // CGNAT
		{"fc00::1", false, true},
		{"fd12:3456::1", false, true},
		{"169.254.169.254", false, false}, // cloud metadata: link-local stays refused
		{"::ffff:169.254.169.254", false, false},
		{"fe80::1", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"0.1.2.3", false, false},
		{"224.0.0.1", false, false},
		{"ff02::1", false, false},
		{"255.255.255.255", false, false},
		{"192.0.2.10", false, false},
		{"64:ff9b::7f00:1", false, false},     // NAT64 of 127.0.0.1
		{"2002:7f00:1::1", false, false},      // 6to4 of 127.0.0.1
		{"::127.0.0.1", false, false},         // IPv4-compatible
		{"2001:db8::1", false, false},         // documentation
		{"2001:0:4136:e378::1", false, false}, // Teredo
	} {
		ip := netip.MustParseAddr(c.ip)
		if got := def.allowed(ip); got != c.public {
			t.Errorf("%s: allowed %v by default, want %v", c.ip, got, c.public)
		}
		if got := priv.allowed(ip); got != c.withPrivate {
			t.Errorf("%s: allowed %v with allow_private, want %v", c.ip, got, c.withPrivate)
		}
	}
	for ip, want := range map[string]bool{"169.254.169.254": true, "169.254.169.253": false, "10.1.2.200": true, "10.1.3.1": false, "224.0.0.1": false} {
		if got := meta.allowed(netip.MustParseAddr(ip)); got != want {
			t.Errorf("%s with allow_cidrs: %v, want %v", ip, got, want)
		}
	}
	// The dialer's check sees the resolved address and refuses what is not allowed, whatever the name was.
	if err := def.control("tcp4", "127.0.0.1:80", nil); !errors.Is(err, errAddressRefused) {
		t.Errorf("control(127.0.0.1): %v", err)
	}
	if err := def.control("tcp6", "[::ffff:10.0.0.1]:443", nil); !errors.Is(err, errAddressRefused) {
		t.Errorf("control(::ffff:10.0.0.1): %v", err)
	}
	if err := def.control("tcp4", "8.8.8.8:443", nil); err != nil {
		t.Errorf("control(8.8.8.8): %v", err)
	}
	if err := def.control("udp4", "8.8.8.8:53", nil); err == nil {
		t.Error("control allowed udp")
	}
}

func TestInputsConfigValidate(t *testing.T) {
	if err := DefaultInputsConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mutate func(*InputsConfig)
		want   string
	}{
		{func(c *InputsConfig) { c.AllowCIDRs = []string{"10.0.0.0/8", "nonsense"} }, "inputs.allow_cidrs[1]"},
		{func(c *InputsConfig) { c.AllowCIDRs = []string{"10.1.2.3/16"} }, `"10.1.0.0/16"`},
		{func(c *InputsConfig) { c.AllowCIDRs = []string{"0.0.0.0/0"} }, "every address"},
		{func(c *InputsConfig) { c.MaxRedirects = -1 }, "inputs.max_redirects"},
		{func(c *InputsConfig) { c.MaxRedirects = 50 }, "inputs.max_redirects"},
		{func(c *InputsConfig) { c.Timeout = Duration{} }, "inputs.timeout"},
		{func(c *InputsConfig) { c.MinProgressBytes = 0 }, "inputs.min_progress_bytes"},
		{func(c *InputsConfig) { c.MinProgressWindow = Duration{time.Millisecond} }, "inputs.min_progress_window"},
	} {
		cfg := DefaultInputsConfig()
		c.mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error naming %s", cfg, err, c.want)
		}
	}
	c := DefaultConfig()
	c.Hardware = HardwareConfig{CPUCores: 1, MemoryMiB: 1024, DiskMiB: 1024}
	if err := c.Validate(); err != nil {
		t.Fatalf("the default config with hardware: %v", err)
	}
	c.Inputs.AllowCIDRs = []string{"bad"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "inputs.allow_cidrs[0]") {
		t.Errorf("Config.Validate: %v", err)
	}
}

// TestInputsOnlyFromAllowedAddresses: a server on this machine is refused unless the provider allows private
// addresses (or its range); a name that resolves to loopback is refused without the address in the error.
func TestInputsOnlyFromAllowedAddresses(t *testing.T) {
	data := []byte("weights\n")
	srv := serveOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	in := manifest.Input{URL: srv.URL + "/w.bin", SHA256: sha256.Sum256(data), Path: "data/w.bin"}
	byName := manifest.Input{URL: "http://localhost:" + port + "/w.bin", SHA256: sha256.Sum256(data), Path: "w2.bin"}

	for _, in := range []manifest.Input{in, byName} {
		root, dir := workRoot(t)
		err := fetchInputs(context.Background(), root, inputsOf(in), 1<<20, testInputOptions())
		if !errors.Is(err, errAddressRefused) {
			t.Fatalf("%s: %v, want the address refused", in.URL, err)
		}
		if in.URL == byName.URL && (strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "::1")) {
			t.Fatalf("the error names the address the name resolved to: %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("refused fetch left %v", entries)
		}
	}

	for name, opt := range map[string]InputOptions{
		"allow_private": func() InputOptions { o := testInputOptions(); o.AllowPrivate = true; return o }(),
		"allow_cidrs": func() InputOptions {
			o := testInputOptions()
			o.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			return o
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			root, dir := workRoot(t)
			if err := fetchInputs(context.Background(), root, inputsOf(in), 1<<20, opt); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "data", "w.bin")); err != nil || string(b) != string(data) {
				t.Fatalf("fetched %q %v", b, err)
			}
		})
	}
}

// TestInputRedirectToLoopbackRefused is the SSRF of the finding: an input server the provider may reach
// redirects to a service on the provider's loopback. The redirect is not followed (by address, even where
// redirects to other hosts are allowed), and the error says nothing of the secret's content.
func TestInputRedirectToLoopbackRefused(t *testing.T) {
	secret := []byte("provider-internal: admin token 8f14e45fceea167a")
	var secretHits atomic.Int64
	internal := serveOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secretHits.Add(1)
		w.Write(secret)
	}))
	// The "public" input server: 127.0.0.2 stands for a public host (allowed by range in this test).
	public := serveOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/admin", http.StatusFound)
	}))
	opt := testInputOptions()
	opt.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	opt.RedirectOtherHosts = true
	root, _ := workRoot(t)
	err := fetchInputs(context.Background(), root, inputsOf(manifest.Input{URL: public.URL + "/data", SHA256: sha256.Sum256([]byte("x")), Path: "d"}), 1<<20, opt)
	if !errors.Is(err, errAddressRefused) {
		t.Fatalf("redirect to loopback: %v, want the address refused", err)
	}
	if secretHits.Load() != 0 {
		t.Fatal("the internal service was reached")
	}
	sum := sha256.Sum256(secret)
	if s := err.Error(); strings.Contains(s, hex.EncodeToString(sum[:])) || strings.Contains(s, string(secret)) {
		t.Fatalf("the error reveals the internal content: %s", s)
	}

	// Even where loopback is allowed (a dev network), a mismatch reveals nothing of what came back.
	opt.AllowPrivate = true
	root, dir := workRoot(t)
	err = fetchInputs(context.Background(), root, inputsOf(manifest.Input{URL: public.URL + "/data", SHA256: sha256.Sum256([]byte("x")), Path: "d"}), 1<<20, opt)
	if err == nil || !strings.Contains(err.Error(), "content does not match the manifest's sha256") {
		t.Fatalf("mismatch: %v", err)
	}
	if s := err.Error(); strings.Contains(s, hex.EncodeToString(sum[:])) || strings.Contains(s, hex.EncodeToString(sum[:4])) || strings.Contains(s, string(secret[:8])) {
		t.Fatalf("the error reveals the content: %s", s)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d")); !os.IsNotExist(err) {
		t.Fatalf("a mismatching input was left on disk: %v", err)
	}
}

func TestInputRedirectRules(t *testing.T) {
	data := []byte("ok")
	srv := serveOn(t, "127.0.0.1", http.NewServeMux())
	mux := srv.Config.Handler.(*http.ServeMux)
	mux.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) { w.Write(data) })
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		if n == 0 {
			http.Redirect(w, r, "/data", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:"+port+"/data", http.StatusFound) // another host name
	})
	fetch := func(path string, mutate func(*InputOptions)) error {
		opt := testInputOptions()
		opt.AllowPrivate = true
		if mutate != nil {
			mutate(&opt)
		}
		root, _ := workRoot(t)
		return fetchInputs(context.Background(), root, inputsOf(manifest.Input{URL: srv.URL + path, SHA256: sha256.Sum256(data), Path: "d"}), 1<<20, opt)
	}
	if err := fetch("/hop/2", nil); err != nil { // 3 redirects
		t.Fatalf("3 redirects within the host: %v", err)
	}
	if err := fetch("/hop/3", nil); err == nil || !strings.Contains(err.Error(), "more than 3 redirect") {
		t.Fatalf("4 redirects: %v", err)
	}
	if err := fetch("/hop/0", func(o *InputOptions) { o.MaxRedirects = 0 }); err == nil || !strings.Contains(err.Error(), "more than 0 redirect") {
		t.Fatalf("a redirect with max_redirects = 0: %v", err)
	}
	if err := fetch("/elsewhere", nil); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("redirect to another host: %v", err)
	}
	if err := fetch("/elsewhere", func(o *InputOptions) { o.RedirectOtherHosts = true }); err != nil {
		t.Fatalf("redirect to another host, allowed: %v", err)
	}
}

// TestInputTrickleCutOff: a server that answers a byte at a time (or not at all) is abandoned once a progress
// window passes below the minimum, long before the total deadline; a steady but endless one at the deadline.
func TestInputTrickleCutOff(t *testing.T) {
	trickle := func(every time.Duration, chunk int, headers bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if headers {
				w.Header().Set("Content-Length", "100000000")
				w.WriteHeader(200)
				w.(http.Flusher).Flush()
			}
			for {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(every):
				}
				if headers {
					if _, err := w.Write(make([]byte, chunk)); err != nil {
						return
					}
					w.(http.Flusher).Flush()
				}
			}
		})
	}
	for _, c := range []struct {
		name    string
		h       http.Handler
		timeout time.Duration
		want    error
	}{
		{"a byte at a time", trickle(100*time.Millisecond, 1, true), 30 * time.Second, errInputStalled},
		{"no answer", trickle(100*time.Millisecond, 0, false), 30 * time.Second, errInputStalled},
		{"steady but endless", trickle(20*time.Millisecond, 1024, true), 1500 * time.Millisecond, errInputsDeadline},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := serveOn(t, "127.0.0.1", c.h)
			opt := testInputOptions()
			opt.AllowPrivate, opt.Timeout = true, c.timeout
			root, dir := workRoot(t)
			start := time.Now()
			err := fetchInputs(context.Background(), root, inputsOf(manifest.Input{URL: srv.URL + "/big", SHA256: sha256.Sum256(nil), Path: "big"}), 1<<30, opt)
			if !errors.Is(err, c.want) {
				t.Fatalf("%v, want %v", err, c.want)
			}
			if el := time.Since(start); el > 20*time.Second {
				t.Fatalf("cut off only after %v", el)
			}
			if _, err := os.Lstat(filepath.Join(dir, "big")); !os.IsNotExist(err) {
				t.Fatalf("partial input left: %v", err)
			}
		})
	}
}

// TestInputsBoundedAcrossTheLease: the lease's disk bounds all inputs together, not each one; an announced
// length over what is left is refused before reading, an unannounced one once it passes it.
func TestInputsBoundedAcrossTheLease(t *testing.T) {
	a, b := []byte(strings.Repeat("a", 600)), []byte(strings.Repeat("b", 600))
	var sentB atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { w.Write(a) })
	mux.HandleFunc("/b", func(w http.ResponseWriter, r *http.Request) { n, _ := w.Write(b); sentB.Add(int64(n)) })
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 6; i++ { // no Content-Length: 600 bytes in 100-byte chunks
			w.Write(b[:100])
			w.(http.Flusher).Flush()
		}
	})
	srv := serveOn(t, "127.0.0.1", mux)
	opt := testInputOptions()
	opt.AllowPrivate = true
	ins := []manifest.Input{
		{URL: srv.URL + "/a", SHA256: sha256.Sum256(a), Path: "a"},
		{URL: srv.URL + "/b", SHA256: sha256.Sum256(b), Path: "b"},
	}
	root, dir := workRoot(t)
	if err := fetchInputs(context.Background(), root, inputsOf(ins...), 1000, opt); err == nil || !strings.Contains(err.Error(), "larger than the lease's disk") || !strings.Contains(err.Error(), "inputs[1]") {
		t.Fatalf("two 600-byte inputs on a 1000-byte lease: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Fatalf("the input over the limit was left: %v", err)
	}
	root, _ = workRoot(t)
	if err := fetchInputs(context.Background(), root, inputsOf(ins...), 1200, opt); err != nil {
		t.Fatalf("the same inputs on a 1200-byte lease: %v", err)
	}
	root, _ = workRoot(t)
	chunked := []manifest.Input{ins[0], {URL: srv.URL + "/chunked", SHA256: sha256.Sum256(b), Path: "c"}}
	if err := fetchInputs(context.Background(), root, inputsOf(chunked...), 1000, opt); err == nil || !strings.Contains(err.Error(), "larger than the lease's disk") {
		t.Fatalf("an unannounced length past the limit: %v", err)
	}
}

// TestInputsNeverFollowLinks: a link planted in the work directory (by a manifest or an earlier workload) is
// neither followed as a directory nor overwritten as the file, and nothing is written outside.
func TestInputsNeverFollowLinks(t *testing.T) {
	data := []byte("payload")
	srv := serveOn(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	opt := testInputOptions()
	opt.AllowPrivate = true
	outside := t.TempDir()
	for _, c := range []struct {
		name, path, want string
	}{
		{"link as a directory", "data/x", "not a directory"},
		{"link as the file", "f", "already exists"},
		{"link deeper", "sub/data/x", "not a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, dir := workRoot(t)
			os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
			for _, l := range []string{"data", "sub/data"} {
				if err := os.Symlink(outside, filepath.Join(dir, l)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink(filepath.Join(outside, "f"), filepath.Join(dir, "f")); err != nil {
				t.Fatal(err)
			}
			err := fetchInputs(context.Background(), root, inputsOf(manifest.Input{URL: srv.URL + "/p", SHA256: sha256.Sum256(data), Path: c.path}), 1<<20, opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), dir) || strings.Contains(err.Error(), outside) {
				t.Fatalf("the error names the provider's directories: %v", err)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Fatalf("written outside the work directory: %v", entries)
			}
		})
	}
	root, dir := workRoot(t)
	if err := fetchInputs(context.Background(), root, inputsOf(manifest.Input{URL: srv.URL + "/dir/labels.csv?v=1", SHA256: sha256.Sum256(data), Path: "in/"}), 1<<20, opt); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "in", "labels.csv?v=1")); err != nil || string(b) != string(data) {
		t.Fatalf("a path ending in / takes the URL's last element: %q %v", b, err)
	}
	if err := fetchInputs(context.Background(), root, inputsOf(manifest.Input{URL: srv.URL + "/p", SHA256: sha256.Sum256(data), Path: "../escape"}), 1<<20, opt); err == nil || !strings.Contains(err.Error(), "inputs[0].path") {
		t.Fatalf("a path leaving the work directory: %v", err)
	}
}
