package remote

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/vault"
)

// TestRebuildShardFromProviders rebuilds a data and a parity shard of a 3+3 stripe from providers over pinned
// TLS: one provider serves a rotten shard (its bytes no longer its root's), one holds nothing (asked first, it fails first); the shard comes
// back byte for byte from three others, both are reported with their provider, the target is never asked
// for, and with one more provider gone it is ErrTooFewShards.
func TestRebuildShardFromProviders(t *testing.T) {
	data := make([]byte, 300_000)
	rand.New(rand.NewSource(3)).Read(data)
	c := vault.Coding{K: 3, M: 3, ShardSize: 4 * vault.GroupSize}
	bufs := map[[2]int]*bytes.Buffer{}
	obj, err := vault.Encode(bytes.NewReader(data), uint64(len(data)), c, func(s, i int) (io.Writer, error) {
		b := &bytes.Buffer{}
		bufs[[2]int{s, i}] = b
		return b, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	byRoot, outboards := map[tx.Hash][]byte{}, map[tx.Hash][]byte{}
	for k, b := range bufs {
		root := obj.Shards[k[0]][k[1]]
		byRoot[root], outboards[root] = bytes.Clone(b.Bytes()), outboard(t, b.Bytes())
	}
	s := obj.Stripes - 1
	byRoot[obj.Shards[s][0]][2*vault.GroupSize+1] ^= 0x08 // rotten on its provider's disk
	var mu sync.Mutex
	asked := map[tx.Hash]int{}
	gone := map[tx.Hash]bool{obj.Shards[s][2]: true}
	certPEM, keyPEM, err := certs.Generate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	fp, _ := certs.FingerprintPEM(certPEM)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var root tx.Hash
		hex.Decode(root[:], []byte(strings.TrimPrefix(r.URL.Path, "/vault/shards/")))
		mu.Lock()
		asked[root]++
		lost := gone[root]
		mu.Unlock()
		if lost {
			http.Error(w, "not held", http.StatusNotFound)
			return
		}
		off, _ := strconv.ParseUint(r.URL.Query().Get("offset"), 10, 64)
		n, _ := strconv.ParseUint(r.URL.Query().Get("length"), 10, 64)
		// A reader that gives the shard up closes the connection mid-slice: the write fails, as a provider's would.
		vault.WriteSlice(w, bytes.NewReader(byRoot[root]), outboards[root], obj.ShardSize, off, n)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	r := &Reader{Timeout: 10 * time.Second, Where: func(_, i int) (ShardHost, bool) {
		return ShardHost{Provider: tx.Address{byte(i + 1)}, HostURI: srv.URL, Fingerprint: fp}, true
	}}
	for _, target := range []int{1, 5} {
		mu.Lock()
		clear(asked)
		mu.Unlock()
		var out bytes.Buffer
		var failed []vault.ShardFailure
		var hosts []ShardHost
		err := r.RebuildShard(context.Background(), &out, obj, s, target, func(f vault.ShardFailure, h ShardHost) {
			failed, hosts = append(failed, f), append(hosts, h)
		})
		if err != nil || !bytes.Equal(out.Bytes(), bufs[[2]int{s, target}].Bytes()) {
			t.Fatalf("shard %d: %v (failures %+v)", target, err, failed)
		}
		var bad *vault.BadShardError
		if len(failed) != 2 || failed[0].Index != 2 || !strings.Contains(failed[0].Err.Error(), "404") || hosts[0].Provider != (tx.Address{3}) ||
			failed[1].Index != 0 || failed[1].Offset != 2*vault.GroupSize || !errors.As(failed[1].Err, &bad) || hosts[1].Provider != (tx.Address{1}) {
			t.Fatalf("shard %d: failures %+v from %v", target, failed, hosts)
		}
		mu.Lock()
		n := asked[obj.Shards[s][target]]
		mu.Unlock()
		if n != 0 {
			t.Fatalf("shard %d, the one rebuilt, was asked for %d times", target, n)
		}
	}
	mu.Lock()
	gone[obj.Shards[s][3]] = true
	mu.Unlock()
	if err := r.RebuildShard(context.Background(), io.Discard, obj, s, 5, nil); !errors.Is(err, vault.ErrTooFewShards) {
		t.Fatalf("four of six missing: %v", err)
	}
	if err := r.RebuildShard(context.Background(), io.Discard, &vault.Object{Layout: obj.Layout}, s, 4, nil); err == nil {
		t.Fatal("rebuilt without the stripe's roots")
	}
}
