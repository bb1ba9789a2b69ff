package provider_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/reqsig"
)

// apiServer is the daemon's tenant API served as `spare provider start` serves it (provider.NewServer), with
// the limits a test chooses.
type apiServer struct {
	addr string
	fp   tx.Hash
}

func serveAPI(t *testing.T, e *env, lim provider.ServerLimits) apiServer {
	t.Helper()
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := certs.FingerprintPEM(certPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := provider.NewServer(e.d.Handler(&reqsig.Verifier{}), log.New(io.Discard, "", 0), lim)
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return apiServer{addr: ln.Addr().String(), fp: fp}
}

func (a apiServer) url(path string) string { return "https://" + a.addr + path }

// client signs with key (nil: unsigned) and pins the server's certificate.
func (a apiServer) client(key ed25519.PrivateKey) *http.Client {
	hc := certs.PinnedHTTPClient(a.fp, 30*time.Second)
	if key != nil {
		hc.Transport = &reqsig.Transport{Base: hc.Transport, Key: key}
	}
	return hc
}

// raw opens an HTTP/1.1 connection as an attacker's own client would (the certificate is not the point here).
func (a apiServer) raw(t *testing.T) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", a.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// head writes a request's head only: the request line, Host, Content-Length and the signature headers of a
// request signed by key (nil: unsigned) over body. The body itself is for the caller to send, or not.
func head(t *testing.T, c net.Conn, addr, method, path string, key ed25519.PrivateKey, body []byte, length int) {
	t.Helper()
	r := httptest.NewRequest(method, "https://"+addr+path, nil)
	if key != nil {
		if err := reqsig.Sign(r, body, key, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, path, addr, length)
	r.Header.Write(&b)
	b.WriteString("\r\n")
	if _, err := c.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// closedByServer waits (at most 20 s: generous, never the thing measured) for the server to end the
// connection, and reports what it last sent.
func closedByServer(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open (read %q)", got)
	}
	return string(got)
}

// TestHostileTenantAPI plays the clients a provider's API must survive: no key, a fresh (Sybil) key, a tenant
// key on a lease it does not own, slow clients, connection floods. Each is refused before its body is read or
// cut off by the server's timeouts and caps, while an honest tenant's stream outlives the write timeout.
func TestHostileTenantAPI(t *testing.T) {
	e := startEnv(t)
	m, raw := job(`i=0; while [ $i -lt 12 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done`, 1)
	leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	e.waitFor(10*time.Second, "the daemon to take the lease", func() bool {
		code, _, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
		return code == 200
	})
	tenant := e.net.Keys["tenant"].Priv
	_, sybil, _ := ed25519.GenerateKey(nil)
	manifestPath := fmt.Sprintf("/leases/%d/manifest", leaseID)

	t.Run("refused before the body", func(t *testing.T) {
		api := serveAPI(t, e, provider.ServerLimits{})
		const big = 16 << 20
		for _, c := range []struct {
			name   string
			key    ed25519.PrivateKey
			method string
			path   string
			length int
			status int
			code   string
		}{
			{"no key", nil, "PUT", manifestPath, big, 401, reqsig.CodeUnsigned},
			{"a fresh key, not the lease's tenant", sybil, "PUT", manifestPath, big, 403, reqsig.CodeForbidden},
			{"the other tenant", e.net.Keys["other"].Priv, "PUT", manifestPath, big, 403, reqsig.CodeForbidden},
			{"no such lease", tenant, "PUT", "/leases/999999/manifest", big, 404, "not_found"},
			{"a body on a route that takes none", tenant, "GET", fmt.Sprintf("/leases/%d/status", leaseID), 1 << 20, 413, reqsig.CodeTooLarge},
			{"a manifest over the manifest limit", tenant, "PUT", manifestPath, 64 << 20, 413, reqsig.CodeTooLarge},
			{"a proof challenge from a non-auditor", sybil, "POST", "/proof", 1 << 16, 403, reqsig.CodeForbidden},
		} {
			t.Run(c.name, func(t *testing.T) {
				conn := api.raw(t)
				// Signed over a body that is never sent: the server must answer from the head alone.
				head(t, conn, api.addr, c.method, c.path, c.key, []byte("never sent"), c.length)
				conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // the old API waited here for the body
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no answer before the body: %v", err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.status || !strings.Contains(string(b), `"code":"`+c.code+`"`) {
					t.Fatalf("%d %s, want %d %s", resp.StatusCode, b, c.status, c.code)
				}
				if !resp.Close {
					t.Fatal("the server keeps reading a connection whose announced body it refused")
				}
			})
		}
	})

	t.Run("slow clients cut off", func(t *testing.T) {
		api := serveAPI(t, e, provider.ServerLimits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: time.Second})
		t.Run("connects and sends nothing", func(t *testing.T) {
			c, err := net.Dial("tcp", api.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			closedByServer(t, c)
		})
		t.Run("headers a byte at a time", func(t *testing.T) {
			c := api.raw(t)
			fmt.Fprintf(c, "GET /offer HTTP/1.1\r\nHost: %s\r\n", api.addr)
			go func() {
				for i := 0; i < 200; i++ { // 20 s of trickle, if the server allowed it
					if _, err := c.Write([]byte("X")); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			closedByServer(t, c)
		})
		t.Run("the lease's own tenant, a body a byte at a time", func(t *testing.T) {
			c := api.raw(t)
			head(t, c, api.addr, "PUT", manifestPath, tenant, raw, len(raw))
			go func() {
				for i := 0; i < len(raw); i++ {
					if _, err := c.Write(raw[i : i+1]); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
			if got := closedByServer(t, c); strings.Contains(got, " 200 OK") {
				t.Fatalf("a trickled manifest was accepted: %s", got)
			}
		})
	})

	t.Run("connection caps", func(t *testing.T) {
		for _, c := range []struct {
			name string
			lim  provider.ServerLimits
			n    int
		}{
			{"per address", provider.ServerLimits{MaxConnsPerIP: 4, MaxConns: 100}, 4},
			{"in total", provider.ServerLimits{MaxConnsPerIP: 100, MaxConns: 6}, 6},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.lim.ReadHeaderTimeout = time.Minute // the held connections stay until the test closes them
				api := serveAPI(t, e, c.lim)
				held := make([]net.Conn, c.n)
				for i := range held {
					conn, err := net.Dial("tcp", api.addr)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					held[i] = conn
				}
				// Accepted in order, after the held ones: closed at once (with a reset, which the dial itself may see).
				over, err := net.Dial("tcp", api.addr)
				switch {
				case errors.Is(err, syscall.ECONNRESET):
				case err != nil:
					t.Fatal(err)
				default:
					defer over.Close()
					closedByServer(t, over)
				}
				for i, conn := range held { // the held ones are still open
					conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
					var ne net.Error
					if _, err := conn.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
						t.Fatalf("held connection %d: %v, want it still open", i, err)
					}
				}
				// A closed connection frees its place: an honest request gets through again.
				held[0].Close()
				e.waitFor(20*time.Second, "a request to be served once a connection closed", func() bool {
					hc := api.client(nil)
					defer hc.CloseIdleConnections()
					resp, err := hc.Get(api.url("/offer"))
					if err != nil {
						return false
					}
					resp.Body.Close()
					return resp.StatusCode == 200
				})
			})
		}
	})

	t.Run("manifest bodies in flight, per lease", func(t *testing.T) {
		api := serveAPI(t, e, provider.ServerLimits{})
		// The server asks for the body (100 Continue) only once the request is authorized and holds a place.
		start := func() (net.Conn, *bufio.Reader) {
			c := api.raw(t)
			r := httptest.NewRequest("PUT", api.url(manifestPath), nil)
			if err := reqsig.Sign(r, raw, tenant, time.Now()); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			fmt.Fprintf(&b, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n", manifestPath, api.addr, len(raw))
			r.Header.Write(&b)
			b.WriteString("\r\n")
			if _, err := c.Write(b.Bytes()); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			return c, bufio.NewReader(c)
		}
		var held []net.Conn
		for i := 0; i < 2; i++ {
			c, br := start()
			if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusContinue {
				t.Fatalf("upload %d: %v %v, want 100 Continue", i, resp, err)
			}
			held = append(held, c)
		}
		_, br := start()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a third manifest body in flight: %d, want 429 before its body", resp.StatusCode)
		}
		held[0].Close() // its place is given back once the server has seen it go
		e.waitFor(20*time.Second, "a place for another upload", func() bool {
			_, br := start()
			resp, err := http.ReadResponse(br, nil)
			return err == nil && resp.StatusCode == http.StatusContinue
		})
	})

	t.Run("an honest tenant's stream outlives the write timeout", func(t *testing.T) {
		api := serveAPI(t, e, provider.ServerLimits{WriteTimeout: 300 * time.Millisecond})
		hc := api.client(tenant)
		req, _ := http.NewRequest("PUT", api.url(manifestPath), bytes.NewReader(raw))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("manifest: %d %s", resp.StatusCode, b)
		}
		// Received once: another manifest body is refused from the head alone.
		again := api.raw(t)
		head(t, again, api.addr, "PUT", manifestPath, tenant, []byte("never sent"), 16<<20)
		again.SetReadDeadline(time.Now().Add(20 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(again), nil); err != nil || resp.StatusCode != http.StatusConflict {
			t.Fatalf("a manifest for a started lease: %v %v, want 409 before its body", resp, err)
		}
		resp, err = hc.Get(api.url(fmt.Sprintf("/leases/%d/logs?follow=1", leaseID)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		logs, err := io.ReadAll(resp.Body) // about 1.2 s of ticks, four times the write timeout
		if err != nil {
			t.Fatalf("the stream was cut after %q: %v", logs, err)
		}
		for i := 1; i <= 12; i++ {
			if !strings.Contains(string(logs), fmt.Sprintf("tick %d\n", i)) {
				t.Fatalf("tick %d missing from the followed log:\n%s", i, logs)
			}
		}
	})
}
