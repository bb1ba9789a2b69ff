package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/reqsig"
)

// fakeHost is a provider's shard API played by the test: handler answers every request (nil: none get there).
func fakeHost(t *testing.T, h2 bool, handler http.HandlerFunc) ShardHost {
	t.Helper()
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	fp, _ := certs.FingerprintPEM(certPEM)
	srv := httptest.NewUnstartedServer(handler)
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return ShardHost{Provider: tx.Address{7}, HostURI: srv.URL, Fingerprint: fp}
}

func testShard(n int) ([]byte, tx.Hash) {
	b := make([]byte, n)
	rand.New(rand.NewSource(int64(n))).Read(b)
	return b, tx.Hash(blake3.Sum256(b))
}

// opener counts how often the shard is opened.
type opener struct {
	mu   sync.Mutex
	n    int
	data []byte
}

func (o *opener) open() (io.Reader, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	return io.NopCloser(bytes.NewReader(o.data)), nil
}

// TestUploadSignsAStreamedShard: Upload asks first, then sends the shard signed by the owner's key over its
// SHA-256 — which the provider's verifier accepts, the body hashing to both the signed digest and the root — over
// HTTP/1.1 and HTTP/2; a shard the provider holds already is not opened or sent.
func TestUploadSignsAStreamedShard(t *testing.T) {
	data, root := testShard(3 << 20)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	for _, h2 := range []bool{false, true} {
		var mu sync.Mutex
		var got [][]byte
		var methods []string
		held := false
		v := &reqsig.Verifier{}
		host := fakeHost(t, h2, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			methods = append(methods, r.Method)
			mu.Unlock()
			if want := map[bool]int{false: 1, true: 2}[h2]; r.ProtoMajor != want {
				http.Error(w, "wrong protocol "+r.Proto, http.StatusBadRequest)
				return
			}
			if r.URL.Path != "/vault/shards/"+root.String() {
				http.Error(w, "wrong path "+r.URL.Path, http.StatusNotFound)
				return
			}
			switch r.Method {
			case http.MethodHead:
				if !held {
					w.WriteHeader(http.StatusNotFound)
				}
				return
			case http.MethodPut:
			default:
				http.Error(w, "method", http.StatusMethodNotAllowed)
				return
			}
			signer, digest, err := v.VerifyHeaders(r)
			if err != nil || signer != tx.AddressOf(key.Public().(ed25519.PublicKey)) {
				http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
				return
			}
			body, err := io.ReadAll(r.Body)
			if err != nil || r.ContentLength != int64(len(data)) || sha256.Sum256(body) != digest || tx.Hash(blake3.Sum256(body)) != root {
				http.Error(w, "body", http.StatusBadRequest)
				return
			}
			mu.Lock()
			got = append(got, body)
			mu.Unlock()
			held = true
			w.WriteHeader(http.StatusCreated)
		})
		o := &opener{data: data}
		if err := Upload(context.Background(), host, root, int64(len(data)), o.open, key); err != nil {
			t.Fatalf("h2 %v: %v", h2, err)
		}
		if len(got) != 1 || !bytes.Equal(got[0], data) || o.n != 2 || strings.Join(methods, " ") != "HEAD PUT" {
			t.Fatalf("h2 %v: %d bodies, opened %d times, requests %v", h2, len(got), o.n, methods)
		}
		if ok, err := Has(context.Background(), host, root); !ok || err != nil {
			t.Fatalf("h2 %v: Has after the upload: %v %v", h2, ok, err)
		}
		o.n = 0
		if err := Upload(context.Background(), host, root, int64(len(data)), o.open, key); err != nil || o.n != 0 || len(got) != 1 {
			t.Fatalf("h2 %v: a held shard: %v, opened %d times, %d bodies", h2, err, o.n, len(got))
		}
	}
}

// TestUploadRefusesToSendWhatIsNotTheShard: bytes that do not hash to the root, or fewer than the shard's size,
// are refused before anything is sent; a host that is not https, or whose certificate is not the pinned one,
// gets nothing.
func TestUploadRefusesToSendWhatIsNotTheShard(t *testing.T) {
	data, root := testShard(64 << 10)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))
	var mu sync.Mutex
	var puts int
	host := fakeHost(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			mu.Lock()
			puts++
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNotFound)
	})
	other := bytes.Clone(data)
	other[100] ^= 1
	for _, c := range []struct {
		name string
		body []byte
		want string
	}{
		{"another shard's bytes", other, "not that shard"},
		{"too few bytes", data[:len(data)-1], "ended after 65535 of its 65536 bytes"},
	} {
		err := Upload(context.Background(), host, root, int64(len(data)), (&opener{data: c.body}).open, key)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	if puts != 0 {
		t.Fatalf("%d shards sent", puts)
	}
	plain := host
	plain.HostURI = strings.Replace(host.HostURI, "https://", "http://", 1)
	if err := Upload(context.Background(), plain, root, int64(len(data)), (&opener{data: data}).open, key); err == nil || !strings.Contains(err.Error(), "not an https address") {
		t.Fatalf("plain http: %v", err)
	}
	impostor := host
	impostor.Fingerprint = tx.Hash{1}
	if err := Upload(context.Background(), impostor, root, int64(len(data)), (&opener{data: data}).open, key); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("another certificate: %v", err)
	}
	if _, err := Has(context.Background(), impostor, root); err == nil || !strings.Contains(err.Error(), host.Provider.String()) {
		t.Fatalf("Has, another certificate: %v", err)
	}
	if puts != 0 {
		t.Fatalf("%d shards sent", puts)
	}
}

// TestUploadReportsHostileProviders plays providers an uploader must not trust: one that refuses with text made
// to rewrite the terminal, and a flood of it; one that answers HEAD with neither yes nor no; one that takes the
// request and then none of its bytes. Each error names the provider and what it answered, safe to print, and the
// stalled upload is given up on.
func TestUploadReportsHostileProviders(t *testing.T) {
	data, root := testShard(16 << 20)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize))
	ctx := context.Background()
	small, smallRoot := testShard(64 << 10)
	for _, body := range []string{
		// JSON whose message decodes to control sequences; raw ones in plain text, a megabyte of it.
		`{"error": "no\u001b[2J\u001b]0;pwned\u0007 \u202eright-to-left\r", "code": "forbidden"}`,
		"no\x1b[2J\x1b]0;pwned\x07 \u202eright-to-left" + strings.Repeat("x\x1b[1A", 1<<17),
	} {
		hostile := fakeHost(t, false, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(body))
		})
		err := Upload(ctx, hostile, smallRoot, int64(len(small)), (&opener{data: small}).open, key)
		if err == nil {
			t.Fatal("a refusal reported as success")
		}
		msg := err.Error()
		if !strings.Contains(msg, hostile.Provider.String()) || !strings.Contains(msg, "403") || !strings.Contains(msg, "right-to-left") ||
			strings.ContainsAny(msg, "\x1b\x07\u202e\r") || len(msg) > 2048 {
			t.Fatalf("the refusal reported as %q (%d bytes)", msg, len(msg))
		}
	}

	confused := fakeHost(t, false, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	if _, err := Has(ctx, confused, root); err == nil || !strings.Contains(err.Error(), "418") || !strings.Contains(err.Error(), confused.Provider.String()) {
		t.Fatalf("HEAD answered 418: %v", err)
	}
	if err := Upload(ctx, confused, root, int64(len(data)), (&opener{data: data}).open, key); err == nil || !strings.Contains(err.Error(), "418") {
		t.Fatalf("Upload, HEAD answered 418: %v", err)
	}

	old := uploadIdle
	uploadIdle = 300 * time.Millisecond
	defer func() { uploadIdle = old }()
	release := make(chan struct{})
	defer close(release)
	stalls := fakeHost(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		select { // reads none of the body
		case <-r.Context().Done():
		case <-release:
		}
	})
	start := time.Now()
	err := Upload(ctx, stalls, root, int64(len(data)), (&opener{data: data}).open, key)
	if err == nil || !strings.Contains(err.Error(), "took none of") || !strings.Contains(err.Error(), stalls.Provider.String()) {
		t.Fatalf("a provider that takes no bytes: %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("given up on after %s", d)
	}
}
