package certs

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/tx"
)

func generate(t *testing.T, hosts ...string) (tls.Certificate, tx.Hash, *x509.Certificate) {
	t.Helper()
	certPEM, keyPEM, err := Generate(hosts, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return c, Fingerprint(c.Certificate[0]), leaf
}

// server starts a real TLS httptest server presenting cert (HTTP/2 enabled).
func server(t *testing.T, cert tls.Certificate) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello "+r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // rejected handshakes are expected
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestPinnedClient(t *testing.T) {
	cert, fp, _ := generate(t, "localhost", "127.0.0.1", "::1")
	srv := server(t, cert)

	c := PinnedHTTPClient(fp, 10*time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(srv.URL + "/x")
	if err != nil {
		t.Fatalf("pinned client: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello HTTP/2") {
		t.Fatalf("got %d %q, want 200 hello over HTTP/2", resp.StatusCode, body)
	}
	// The URL names 127.0.0.1, but a DNS-only certificate is accepted too: names are not checked.
	other, ofp, _ := generate(t, "provider.example")
	srv2 := server(t, other)
	resp, err = PinnedHTTPClient(ofp, 10*time.Second).Get(srv2.URL)
	if err != nil {
		t.Fatalf("pinned client, unrelated SAN: %v", err)
	}
	resp.Body.Close()
}

func TestPinnedClientWrongFingerprint(t *testing.T) {
	cert, fp, _ := generate(t, "127.0.0.1")
	srv := server(t, cert)
	_, wrong, _ := generate(t, "127.0.0.1") // a different certificate for the same host

	for _, tc := range []struct {
		name string
		pin  tx.Hash
		want string
	}{
		{"other certificate", wrong, "fingerprint mismatch: expected " + wrong.String() + ", got " + fp.String()},
		{"zero pin", tx.Hash{}, "no certificate fingerprint pinned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := PinnedHTTPClient(tc.pin, 10*time.Second).Get(srv.URL)
			if err == nil {
				resp.Body.Close()
				t.Fatal("request succeeded against an unpinned certificate")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	_, err := PinnedHTTPClient(wrong, 10*time.Second).Get(srv.URL)
	var mm *FingerprintMismatchError
	if !errors.As(err, &mm) || mm.Expected != wrong || mm.Got != fp {
		t.Fatalf("errors.As(%v) = %+v, want expected %s got %s", err, mm, wrong, fp)
	}
}

// A plain TLS dial with the pinned config also enforces the pin (not only the HTTP client).
func TestPinnedTLSConfigDial(t *testing.T) {
	cert, fp, _ := generate(t, "127.0.0.1")
	srv := server(t, cert)
	addr := srv.Listener.Addr().String()
	conn, err := tls.Dial("tcp", addr, PinnedTLSConfig(fp))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	var bad tx.Hash
	bad[0] = 1
	if conn, err := tls.Dial("tcp", addr, PinnedTLSConfig(bad)); err == nil {
		conn.Close()
		t.Fatal("dial with wrong pin succeeded")
	}
}

func TestGenerateSANs(t *testing.T) {
	_, _, leaf := generate(t, "provider.example", "localhost", "10.1.2.3", "[::1]", "2001:db8::7")
	if got, want := leaf.DNSNames, []string{"provider.example", "localhost"}; !slices.Equal(got, want) {
		t.Errorf("DNS SANs %v, want %v", got, want)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"10.1.2.3", "::1", "2001:db8::7"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs %v, want %v", ips, want)
	}
	for _, h := range []string{"provider.example", "localhost", "10.1.2.3", "::1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("VerifyHostname(%s): %v", h, err)
		}
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("public key %T, want ECDSA", leaf.PublicKey)
	}
	if leaf.IsCA || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("IsCA=%v ExtKeyUsage=%v", leaf.IsCA, leaf.ExtKeyUsage)
	}
	if d := time.Until(leaf.NotAfter); d < 23*time.Hour || d > 25*time.Hour {
		t.Errorf("NotAfter in %v, want ~24h", d)
	}
	if !leaf.NotBefore.Before(time.Now()) {
		t.Errorf("NotBefore %v not in the past", leaf.NotBefore)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if _, _, err := Generate([]string{"ok", " "}, time.Hour); err == nil {
		t.Error("empty host accepted")
	}
	if _, _, err := Generate(nil, 0); err == nil {
		t.Error("zero validity accepted")
	}
	// Two certificates for the same hosts have different fingerprints (fresh key and serial).
	_, a, _ := generate(t, "x")
	_, b, _ := generate(t, "x")
	if a == b {
		t.Error("two generated certificates share a fingerprint")
	}
}

func TestWriteAndLoad(t *testing.T) {
	certPEM, keyPEM, err := Generate([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tls")
	certFile, keyFile, err := WriteFiles(dir, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]os.FileMode{certFile: 0o644, keyFile: 0o600} {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %o, want %o", file, got, want)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v (%v), want 0700", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries (temporary files left?), want 2", len(entries))
	}
	cert, fp, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if want := Fingerprint(block.Bytes); fp != want {
		t.Errorf("LoadKeyPair fingerprint %s, want %s", fp, want)
	}
	if pfp, err := FingerprintPEM(certPEM); err != nil || pfp != fp {
		t.Errorf("FingerprintPEM = %s, %v; want %s", pfp, err, fp)
	}
	if _, err := FingerprintPEM(keyPEM); err == nil {
		t.Error("FingerprintPEM accepted a key")
	}
	if len(cert.Certificate) != 1 || cert.PrivateKey == nil {
		t.Errorf("loaded certificate incomplete: %d certs, key %T", len(cert.Certificate), cert.PrivateKey)
	}

	// Overwriting keeps the modes.
	if _, _, err := WriteFiles(dir, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("rewritten key mode %o", fi.Mode().Perm())
	}
}

func TestLoadOrGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	c1, fp1, err := LoadOrGenerate(dir, []string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c2, fp2, err := LoadOrGenerate(dir, []string{"other"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fp1 != fp2 || fp1 != Fingerprint(c1.Certificate[0]) || fp2 != Fingerprint(c2.Certificate[0]) {
		t.Fatalf("second call did not load the first certificate: %s vs %s", fp1, fp2)
	}
	if err := os.Remove(filepath.Join(dir, KeyFileName)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrGenerate(dir, nil, time.Hour); err == nil || !strings.Contains(err.Error(), "only one") {
		t.Fatalf("half-present pair: err %v", err)
	}
}

// The fingerprint a server's LoadKeyPair reports is what a client must pin.
func TestLoadedPairServesPinned(t *testing.T) {
	certPEM, keyPEM, err := Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := WriteFiles(t.TempDir(), certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, fp, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := server(t, cert)
	resp, err := PinnedHTTPClient(fp, 10*time.Second).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
