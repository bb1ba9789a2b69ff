package provider_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/internal/localnet"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/reqsig"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/remote"
)

// placedEnv is a provider daemon offering storage, two more storage providers on the ledger (keys only, no
// daemon), and an object of the tenant's stored with a 2+1 coding: each stripe has a shard on each of the three,
// so the ledger's own draw places one shard of every stripe on the daemon.
type placedEnv struct {
	*env
	dir   string             // the daemon's storage path
	obj   *vault.Object      // the tenant's object
	data  map[tx.Hash][]byte // every shard's bytes by root
	mine  []api.VaultShard   // the shards placed on the daemon, in order
	other []api.VaultShard   // the shards placed on the other two
	host  remote.ShardHost   // the daemon's shard API
}

func startPlaced(t *testing.T, stripes int) *placedEnv {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vault")
	e := startEnvWith(t, func(c *provider.Config) {
		c.Storage = provider.StorageConfig{CapacityGiB: 1, Path: dir, PricePerGiBMonth: "0.002"}
	})
	ctx := context.Background()
	me := e.d.Address()
	e.waitFor(30*time.Second, "the daemon's storage offer", func() bool {
		o, err := e.c.StorageOffer(ctx, me)
		return err == nil && o.CapacityBytes > 0
	})
	params, err := e.c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"store1", "store2"} {
		k := localnet.NewKey(name)
		if _, err := e.c.NewSender(e.net.Keys["prov"]).Send(ctx, &tx.Send{To: k.Address(), Amount: 500 * spr}); err != nil {
			t.Fatal(err)
		}
		info := tx.ProviderInfo{HostURI: "https://" + name + ".example:8443", CertFingerprint: tx.Hash{byte(name[5])}, Region: "eu-west",
			Hardware: tx.Hardware{GPUs: []tx.GPUGroup{{Model: "H100", VRAMMiB: 81920, Count: 1}}, CPUMilli: 8000, MemoryMiB: 1 << 16, DiskMiB: 1 << 20}}
		if _, err := e.c.NewSender(k).Send(ctx, &tx.RegisterProvider{ProviderInfo: info}, &tx.Bond{Amount: params.RequiredStake(1)},
			&tx.OfferStorage{CapacityBytes: 1 << 30, PricePerGiBMonth: 1_000}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Random bytes: equal shards would be one root (and one file).
	data := make([]byte, stripes*2*vault.GroupSize)
	rand.New(rand.NewSource(int64(stripes))).Read(data)
	bufs := map[[2]int]*bytes.Buffer{}
	obj, err := vault.Encode(bytes.NewReader(data), uint64(len(data)), vault.Coding{K: 2, M: 1, ShardSize: vault.GroupSize},
		func(s, i int) (io.Writer, error) {
			b := &bytes.Buffer{}
			bufs[[2]int{s, i}] = b
			return b, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(obj.Shards) != stripes {
		t.Fatalf("%d stripes, want %d", len(obj.Shards), stripes)
	}
	p := &placedEnv{env: e, dir: dir, obj: obj, data: map[tx.Hash][]byte{},
		host: remote.ShardHost{Provider: me, HostURI: e.hostURI, Fingerprint: e.fp}}
	for k, b := range bufs {
		p.data[obj.Shards[k[0]][k[1]]] = b.Bytes()
	}
	man, err := obj.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.NewSender(e.net.Keys["tenant"]).Send(ctx, &tx.StoreObject{Manifest: man, Months: 1, MaxPricePerGiBMonth: 5_000}); err != nil {
		t.Fatal(err)
	}
	var o api.VaultObject
	e.waitFor(30*time.Second, "the object placed", func() bool {
		l, err := e.c.VaultObjects(ctx, api.VaultObjectsRequest{Owner: e.net.Keys["tenant"].Address()})
		if err != nil || len(l.Items) != 1 {
			return false
		}
		o = l.Items[0]
		return o.State == api.VaultPlaced
	})
	all, err := e.c.AllVaultShards(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Provider == me {
			p.mine = append(p.mine, s)
		} else {
			p.other = append(p.other, s)
		}
	}
	if len(p.mine) != stripes {
		t.Fatalf("the daemon got %d shards of %d stripes on 3 providers: %+v", len(p.mine), stripes, all)
	}
	return p
}

// put sends a PUT of root signed by key (nil: unsigned) over signed, with body (nil: signed) and Content-Length
// length (-1: unknown, sent without one), through a client pinned to the daemon's certificate.
func (p *placedEnv) put(key ed25519.PrivateKey, root tx.Hash, signed, body []byte, length int64) (int, reqsig.ErrorBody) {
	p.t.Helper()
	if body == nil {
		body = signed
	}
	req, err := http.NewRequest(http.MethodPut, p.hostURI+"/vault/shards/"+hexRoot(root), bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if length < 0 {
		req.Body = io.NopCloser(bytes.NewReader(body)) // no length known to the transport
	}
	req.ContentLength = length
	if key != nil {
		if err := reqsig.Sign(req, signed, key, time.Now()); err != nil {
			p.t.Fatal(err)
		}
	}
	return p.do(req)
}

func (p *placedEnv) do(req *http.Request) (int, reqsig.ErrorBody) {
	p.t.Helper()
	res, err := certs.PinnedHTTPClient(p.fp, 20*time.Second).Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	var eb reqsig.ErrorBody
	b, _ := io.ReadAll(res.Body)
	json.Unmarshal(b, &eb)
	return res.StatusCode, eb
}

// keptNothing fails unless the daemon holds none of roots, counts held bytes as held (the shards it was meant to
// keep, of one 16 KiB group each), and its storage path holds no file but those shards and their outboards.
func (p *placedEnv) keptNothing(what string, held uint64, roots ...tx.Hash) {
	p.t.Helper()
	for _, r := range roots {
		if _, ok := p.d.Shards().Has(r); ok {
			p.t.Fatalf("%s: shard %x… kept", what, r[:6])
		}
	}
	if u := p.d.Shards().Used(); u != held {
		p.t.Fatalf("%s: %d bytes counted as held, want %d", what, u, held)
	}
	ents, _ := os.ReadDir(p.dir)
	if len(ents) != int(2*held/vault.GroupSize) {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		p.t.Fatalf("%s: the storage path holds %v", what, names)
	}
}

// rawPut opens an HTTP/1.1 connection to addr, pinned to fp, and sends the head of a PUT of root signed by key
// over signed, declaring length bytes, then body: what no honest client sends (a body shorter than it says, or
// one that stops). The caller reads the answer from the connection.
func rawPut(t *testing.T, addr string, fp tx.Hash, key ed25519.PrivateKey, root tx.Hash, signed []byte, length int, body []byte) *tls.Conn {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, certs.PinnedTLSConfig(fp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	path := "/vault/shards/" + hexRoot(root)
	req, _ := http.NewRequest(http.MethodPut, "https://"+addr+path, nil)
	if err := reqsig.Sign(req, signed, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", path, addr, length)
	req.Header.Write(&head)
	head.WriteString("\r\n")
	head.Write(body)
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// answerOf reads the answer on conn within d: its status and error body (status 0: the connection ended
// without one).
func answerOf(t *testing.T, conn net.Conn, d time.Duration) (int, reqsig.ErrorBody) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("no answer within %s", d)
		}
		return 0, reqsig.ErrorBody{}
	}
	defer res.Body.Close()
	var eb reqsig.ErrorBody
	b, _ := io.ReadAll(res.Body)
	json.Unmarshal(b, &eb)
	return res.StatusCode, eb
}

// TestShardUploadTakesOnlyPlacedShards plays the uploaders a storage provider must refuse, on a daemon the
// ledger placed shards on: a root the ledger placed on nobody or on another provider, an unsigned request, one
// signed by someone but the object's owner, a length other than the shard's or none, bytes that are not the
// shard, a body other than the one signed, a body that ends early, more uploads at once than the slots, and one
// that trickles. Each is refused with the fix named and nothing is kept; the owner's upload through
// remote.Upload is kept, read back verified, and sent again it answers at once without its body being read.
func TestShardUploadTakesOnlyPlacedShards(t *testing.T) {
	p := startPlaced(t, 6)
	ctx := context.Background()
	owner, other := p.net.Keys["tenant"].Priv, p.net.Keys["other"].Priv
	me := p.d.Address()
	a := p.mine[0].Root
	good := p.data[a]
	size := int64(len(good))
	open := func(b []byte) func() (io.Reader, error) {
		return func() (io.Reader, error) { return bytes.NewReader(b), nil }
	}

	if held, err := remote.Has(ctx, p.host, a); err != nil || held {
		t.Fatalf("HEAD before the upload: %v %v", held, err)
	}
	expect := func(what string, code int, eb reqsig.ErrorBody, wantCode int, wantErr string, wantIn ...string) {
		t.Helper()
		if code != wantCode || eb.Code != wantErr {
			t.Fatalf("%s: %d %+v, want %d %s", what, code, eb, wantCode, wantErr)
		}
		for _, s := range wantIn {
			if !strings.Contains(eb.Error, s) {
				t.Fatalf("%s: %q does not say %q", what, eb.Error, s)
			}
		}
		p.keptNothing(what, 0, a)
	}

	// Roots the ledger did not place here: one nobody stored, one placed on another provider.
	stray, strayRoot := shard(99, 1)
	code, eb := p.put(owner, strayRoot, stray, nil, int64(len(stray)))
	expect("a root stored by nobody", code, eb, http.StatusNotFound, "not_placed", me.String(), "spare store status")
	elsewhere := p.other[0]
	code, eb = p.put(owner, elsewhere.Root, p.data[elsewhere.Root], nil, size)
	expect("a root placed on "+elsewhere.Provider.String(), code, eb, http.StatusNotFound, "not_placed", me.String())
	if _, ok := p.d.Shards().Has(elsewhere.Root); ok {
		t.Fatal("a shard placed elsewhere was kept")
	}

	// Not the owner's: unsigned, signed by another account (directly and through remote.Upload).
	code, eb = p.put(nil, a, good, nil, size)
	expect("unsigned", code, eb, http.StatusUnauthorized, reqsig.CodeUnsigned)
	code, eb = p.put(other, a, good, nil, size)
	expect("signed by another account", code, eb, http.StatusForbidden, reqsig.CodeForbidden, "owner", p.net.Keys["tenant"].Address().String())
	if err := remote.Upload(ctx, p.host, a, size, open(good), other); err == nil || !strings.Contains(err.Error(), me.String()) ||
		!strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "only an object's owner") {
		t.Fatalf("remote.Upload signed by another account: %v", err)
	}
	p.keptNothing("remote.Upload by another account", 0, a)

	// The owner's, but not exactly the shard: lengths, bytes, a body other than signed, a body that ends early.
	long := append(bytes.Clone(good), make([]byte, vault.GroupSize)...)
	code, eb = p.put(owner, a, long, nil, int64(len(long)))
	expect("a longer body", code, eb, http.StatusBadRequest, "bad_length", fmt.Sprint(size))
	code, eb = p.put(owner, a, good[:size-1], nil, size-1)
	expect("a shorter body", code, eb, http.StatusBadRequest, "bad_length", fmt.Sprint(size))
	code, eb = p.put(owner, a, good, nil, -1)
	expect("no length", code, eb, http.StatusLengthRequired, "length_required", fmt.Sprint(size))
	wrong, _ := shard(7, 1)
	code, eb = p.put(owner, a, wrong, nil, size)
	expect("another shard's bytes", code, eb, http.StatusBadRequest, "bad_shard", hexRoot(a))
	code, eb = p.put(owner, a, wrong, good, size) // the shard itself, but not what the owner signed
	expect("a body other than the one signed", code, eb, http.StatusBadRequest, reqsig.CodeBodyMismatch)
	addr := strings.TrimPrefix(p.hostURI, "https://")
	conn := rawPut(t, addr, p.fp, owner, a, good, int(size), good[:size-100])
	conn.CloseWrite()
	code, eb = answerOf(t, conn, 10*time.Second)
	expect("a body that ends early", code, eb, http.StatusBadRequest, reqsig.CodeBadBody, fmt.Sprintf("after %d of the shard's %d bytes", size-100, size))
	if err := remote.Upload(ctx, p.host, a, size, open(wrong), owner); err == nil || !strings.Contains(err.Error(), "not that shard") {
		t.Fatalf("remote.Upload of the wrong bytes: %v", err)
	}

	// The owner's upload is kept and reads back verified.
	if err := remote.Upload(ctx, p.host, a, size, open(good), owner); err != nil {
		t.Fatal(err)
	}
	if held, err := remote.Has(ctx, p.host, a); err != nil || !held {
		t.Fatalf("HEAD after the upload: %v %v", held, err)
	}
	p.keptNothing("after the owner's upload", uint64(size))
	res, err := certs.PinnedHTTPClient(p.fp, 10*time.Second).Get(p.hostURI + "/vault/shards/" + hexRoot(a))
	if err != nil {
		t.Fatal(err)
	}
	var back bytes.Buffer
	err = vault.ReadSlice(&back, res.Body, a, uint64(size), 0, uint64(size))
	res.Body.Close()
	if err != nil || !bytes.Equal(back.Bytes(), good) {
		t.Fatalf("read back: %v", err)
	}
	// Sent again: 200 at once, with a body that never comes (an upload that resumes need not resend it).
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPut, p.hostURI+"/vault/shards/"+hexRoot(a), pr)
	req.ContentLength = size
	reqsig.Sign(req, good, owner, time.Now())
	start := time.Now()
	if code, eb := p.do(req); code != http.StatusOK || time.Since(start) > 5*time.Second {
		t.Fatalf("a held shard sent again: %d %+v after %s", code, eb, time.Since(start))
	}
	if err := remote.Upload(ctx, p.host, a, size, func() (io.Reader, error) { return nil, fmt.Errorf("opened") }, owner); err != nil {
		t.Fatalf("remote.Upload of a held shard read it: %v", err)
	}

	// Slots: four uploads that stop mid-body hold them; a fifth shard waits (429), the same shard twice is
	// refused (409); once they go, the slots are free.
	var stalled []*tls.Conn
	for _, s := range p.mine[1:5] {
		stalled = append(stalled, rawPut(t, addr, p.fp, owner, s.Root, p.data[s.Root], int(size), p.data[s.Root][:100]))
	}
	// The probe's body is not the one signed: while a slot is free it is refused for that, and kept nowhere.
	fifth := p.mine[5].Root
	p.waitFor(60*time.Second, "the slots taken", func() bool {
		code, eb = p.put(owner, fifth, p.data[fifth], wrong, size)
		if code != http.StatusTooManyRequests && eb.Code != reqsig.CodeBodyMismatch {
			t.Fatalf("a fifth upload: %d %+v", code, eb)
		}
		return code == http.StatusTooManyRequests
	})
	if eb.Code != "busy" {
		t.Fatalf("a fifth upload: %+v", eb)
	}
	again := p.mine[1].Root
	if code, eb := p.put(owner, again, p.data[again], wrong, size); code != http.StatusConflict || eb.Code != "in_progress" {
		t.Fatalf("the same shard twice at once: %d %+v", code, eb)
	}
	for _, c := range stalled {
		c.Close()
	}
	p.waitFor(60*time.Second, "the slots freed", func() bool {
		return remote.Upload(ctx, p.host, fifth, size, open(p.data[fifth]), owner) == nil
	})
	p.keptNothing("after the stalled uploads", uint64(2*size), again)

	// A trickling uploader is cut off once its time is up (the server's read timeout, 1 s here, and a second a
	// MiB), and nothing of it kept; its slot is free again.
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	fp, _ := certs.FingerprintPEM(certPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := provider.NewServer(p.d.Handler(&reqsig.Verifier{}), nil, provider.ServerLimits{ReadTimeout: time.Second})
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	slow := p.mine[2].Root
	conn = rawPut(t, ln.Addr().String(), fp, owner, slow, p.data[slow], int(size), p.data[slow][:100])
	start = time.Now()
	go func() { // a byte now and then, never the shard
		for i := 100; i < 200; i++ {
			if _, err := conn.Write(p.data[slow][i : i+1]); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	code, eb = answerOf(t, conn, 15*time.Second)
	if (code != http.StatusRequestTimeout && code != 0) || time.Since(start) > 10*time.Second {
		t.Fatalf("a trickling upload: %d %+v after %s", code, eb, time.Since(start))
	}
	if code != 0 && !strings.Contains(eb.Error, "did not arrive within") {
		t.Fatalf("a trickling upload: %+v", eb)
	}
	p.keptNothing("after a trickling upload", uint64(2*size), slow)
	slowHost := remote.ShardHost{Provider: me, HostURI: "https://" + ln.Addr().String(), Fingerprint: fp}
	if err := remote.Upload(ctx, slowHost, slow, size, open(p.data[slow]), owner); err != nil {
		t.Fatalf("after a trickling upload: %v", err)
	}
}

// TestShardUploadNeedsStorage: a daemon that offers no storage answers HEAD and PUT with 503 and says why, and
// remote.Has and remote.Upload name it.
func TestShardUploadNeedsStorage(t *testing.T) {
	e := startEnv(t)
	data, root := shard(3, 1)
	hc := certs.PinnedHTTPClient(e.fp, 10*time.Second)
	hc.Transport = &reqsig.Transport{Base: hc.Transport, Key: e.net.Keys["tenant"].Priv}
	req, _ := http.NewRequest(http.MethodPut, e.hostURI+"/vault/shards/"+hexRoot(root), bytes.NewReader(data))
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var eb reqsig.ErrorBody
	json.NewDecoder(res.Body).Decode(&eb)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || eb.Code != "no_storage" || !strings.Contains(eb.Error, "offers no storage") {
		t.Fatalf("PUT: %d %+v", res.StatusCode, eb)
	}
	host := remote.ShardHost{Provider: e.d.Address(), HostURI: e.hostURI, Fingerprint: e.fp}
	if _, err := remote.Has(context.Background(), host, root); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), e.d.Address().String()) {
		t.Fatalf("remote.Has: %v", err)
	}
	err = remote.Upload(context.Background(), host, root, int64(len(data)), func() (io.Reader, error) { return bytes.NewReader(data), nil }, e.net.Keys["tenant"].Priv)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), e.d.Address().String()) {
		t.Fatalf("remote.Upload: %v", err)
	}
}
