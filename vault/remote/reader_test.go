package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault"
)

// TestVaultReaderLeavesSlowProviders plays a provider that answers, then trickles (a byte now and then, forever)
// and one that answers with an endless body: the reader gives the first up once it stalls for its timeout, reads
// the second no further than the slice it asked for, and the object comes back byte for byte from the others.
func TestVaultReaderLeavesSlowProviders(t *testing.T) {
	data := make([]byte, 200_000)
	rand.New(rand.NewSource(9)).Read(data)
	c := vault.Coding{K: 2, M: 2, ShardSize: 8 * vault.GroupSize}
	shards := map[[2]int]*bytes.Buffer{}
	obj, err := vault.Encode(bytes.NewReader(data), uint64(len(data)), c, func(s, i int) (io.Writer, error) {
		b := &bytes.Buffer{}
		shards[[2]int{s, i}] = b
		return b, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byRoot, outboards := map[tx.Hash][]byte{}, map[tx.Hash][]byte{}
	for k, b := range shards {
		root := obj.Shards[k[0]][k[1]]
		byRoot[root], outboards[root] = b.Bytes(), outboard(t, b.Bytes())
	}
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	fp, _ := certs.FingerprintPEM(certPEM)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var root tx.Hash
		hex.Decode(root[:], []byte(strings.TrimPrefix(r.URL.Path, "/vault/shards/")))
		var enc bytes.Buffer
		off, _ := strconv.ParseUint(r.URL.Query().Get("offset"), 10, 64)
		n, _ := strconv.ParseUint(r.URL.Query().Get("length"), 10, 64)
		if err := vault.WriteSlice(&enc, bytes.NewReader(byRoot[root]), outboards[root], obj.ShardSize, off, n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch root {
		case obj.Shards[0][0]: // trickles after its first 20 KB
			w.Write(enc.Bytes()[:20_000])
			w.(http.Flusher).Flush()
			for i := 20_000; i < enc.Len(); i++ {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(time.Second):
				}
				w.Write(enc.Bytes()[i : i+1])
				w.(http.Flusher).Flush()
			}
		case obj.Shards[0][1]: // its slice, then garbage without end
			w.Write(enc.Bytes())
			junk := bytes.Repeat([]byte{0xee}, 1<<16)
			for r.Context().Err() == nil {
				if _, err := w.Write(junk); err != nil {
					return
				}
			}
		default:
			w.Write(enc.Bytes())
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	r := &Reader{Timeout: 300 * time.Millisecond, Where: func(int, int) (ShardHost, bool) {
		return ShardHost{HostURI: srv.URL, Fingerprint: fp}, true
	}}
	var failed []string
	var out bytes.Buffer
	start := time.Now()
	err = r.Read(context.Background(), &out, obj, 0, obj.Size, func(f vault.ShardFailure, _ ShardHost) {
		failed = append(failed, f.Err.Error())
	})
	if err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("read: %v (failures %v)", err, failed)
	}
	if len(failed) != 1 || !strings.Contains(failed[0], "sent nothing for 300ms") {
		t.Fatalf("failures %v: want the trickling provider given up on, and only it", failed)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %s: the stalled provider held the read", d)
	}
}

func outboard(t *testing.T, shard []byte) []byte {
	t.Helper()
	_, ob, err := vault.Outboard(bytes.NewReader(shard), uint64(len(shard)))
	if err != nil {
		t.Fatal(err)
	}
	return ob
}
