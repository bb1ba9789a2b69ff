package provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sparenet/spare/certs"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/remote"
)

// TestShardReadAPI: a held shard is served as slices a reader verifies against its root alone, and as proofs;
// bad parameters are refused naming them; bytes that rot on the provider's disk are caught by the reader.
func TestShardReadAPI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	e := startEnvWith(t, func(c *provider.Config) {
		c.Storage = provider.StorageConfig{CapacityGiB: 1, Path: dir, PricePerGiBMonth: "0.002"}
	})
	data, root := shard(7, 4)
	size := uint64(len(data))
	if err := e.d.Shards().Put(root, size, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	hc := certs.PinnedHTTPClient(e.fp, 0)
	get := func(path string) (int, []byte) {
		t.Helper()
		res, err := hc.Get(e.hostURI + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	hexr := hexRoot(root)
	for _, rg := range [][2]uint64{{0, size}, {vault.GroupSize, vault.GroupSize}, {2 * vault.GroupSize, 2 * vault.GroupSize}} {
		code, body := get(fmt.Sprintf("/vault/shards/%s?offset=%d&length=%d", hexr, rg[0], rg[1]))
		var out bytes.Buffer
		if code != http.StatusOK || vault.ReadSlice(&out, bytes.NewReader(body), root, size, rg[0], rg[1]) != nil || !bytes.Equal(out.Bytes(), data[rg[0]:rg[0]+rg[1]]) {
			t.Fatalf("range %v: %d", rg, code)
		}
	}
	code, p := get("/vault/shards/" + hexr + "/proof?group=3")
	if got, err := vault.VerifyProof(root, size, 3, p); code != http.StatusOK || err != nil || !bytes.Equal(got, data[3*vault.GroupSize:]) {
		t.Fatalf("proof: %d %v", code, err)
	}
	for _, bad := range []struct {
		path string
		code int
	}{
		{"/vault/shards/" + hexr + "?offset=1", http.StatusBadRequest},
		{"/vault/shards/" + hexr + "?length=" + fmt.Sprint(size+vault.GroupSize), http.StatusBadRequest},
		{"/vault/shards/" + hexr + "?offset=" + fmt.Sprint(size+1), http.StatusBadRequest},
		{"/vault/shards/" + hexr + "?offset=-1", http.StatusBadRequest},
		{"/vault/shards/" + hexr + "/proof?group=4", http.StatusBadRequest},
		{"/vault/shards/../../etc/passwd", http.StatusNotFound},
		{"/vault/shards/ABCD", http.StatusBadRequest},
		{"/vault/shards/" + hexRoot([32]byte{1}), http.StatusNotFound},
	} {
		if code, body := get(bad.path); code != bad.code {
			t.Errorf("%s: %d %s, want %d", bad.path, code, body, bad.code)
		}
	}
	// A byte rots on the provider's disk: the reader refuses the group that holds it.
	f := filepath.Join(dir, hexr+".shard")
	b, _ := os.ReadFile(f)
	b[2*vault.GroupSize+5] ^= 1
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, body := get("/vault/shards/" + hexr)
	var bad *vault.BadShardError
	if err := vault.ReadSlice(io.Discard, bytes.NewReader(body), root, size, 0, size); !errors.As(err, &bad) || bad.Offset != 0 {
		t.Fatalf("a rotten shard read back: %v", err)
	}
}

// TestVaultReaderRoutesAroundProviders reads an object from a provider's read API with remote.Reader: whole
// (its root checked at the end) and by range, then with one shard rotten on disk and one held by nobody — the
// object still comes back byte for byte, and both are reported with the provider that failed.
func TestVaultReaderRoutesAroundProviders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	e := startEnvWith(t, func(c *provider.Config) {
		c.Storage = provider.StorageConfig{CapacityGiB: 1, Path: dir, PricePerGiBMonth: "0.002"}
	})
	// Random bytes: a periodic pattern makes equal shards, which one content-addressed store keeps as one file.
	data, _ := shard(21, 19)
	data = data[:300_000]
	c := vault.Coding{K: 2, M: 2, ShardSize: 4 * vault.GroupSize}
	shards := map[[2]int]*bytes.Buffer{}
	obj, err := vault.Encode(bytes.NewReader(data), uint64(len(data)), c, func(s, i int) (io.Writer, error) {
		b := &bytes.Buffer{}
		shards[[2]int{s, i}] = b
		return b, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, b := range shards {
		if err := e.d.Shards().Put(obj.Shards[k[0]][k[1]], obj.ShardSize, bytes.NewReader(b.Bytes())); err != nil {
			t.Fatal(err)
		}
	}
	me := e.net.Keys["prov"].Address()
	gone := [2]int{0, 1}
	r := &remote.Reader{Where: func(s, i int) (remote.ShardHost, bool) {
		if [2]int{s, i} == gone {
			return remote.ShardHost{}, false
		}
		return remote.ShardHost{Provider: me, HostURI: e.hostURI, Fingerprint: e.fp}, true
	}}
	ctx := context.Background()
	gone = [2]int{-1, -1}
	var out bytes.Buffer
	if err := r.Read(ctx, &out, obj, 0, obj.Size, nil); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("whole object: %v", err)
	}
	out.Reset()
	if err := r.Read(ctx, &out, obj, 100_000, 50_000, nil); err != nil || !bytes.Equal(out.Bytes(), data[100_000:150_000]) {
		t.Fatalf("a range: %v", err)
	}
	// Stripe 0: shard 1 held by nobody, shard 0 rotten on the provider's disk.
	gone = [2]int{0, 1}
	f := filepath.Join(dir, hexRoot(obj.Shards[0][0])+".shard")
	b, _ := os.ReadFile(f)
	b[vault.GroupSize+3] ^= 0x80
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var failed []string
	out.Reset()
	err = r.Read(ctx, &out, obj, 0, obj.Size, func(fl vault.ShardFailure, h remote.ShardHost) {
		failed = append(failed, fmt.Sprintf("%d/%d@%d by %s", fl.Stripe, fl.Index, fl.Offset, h.Provider))
	})
	if err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("around two bad shards: %v (failures %v)", err, failed)
	}
	want := []string{fmt.Sprintf("0/1@0 by %s", tx.Address{}), fmt.Sprintf("0/0@%d by %s", vault.GroupSize, me)}
	if fmt.Sprint(failed) != fmt.Sprint(want) {
		t.Fatalf("reported %v, want %v", failed, want)
	}
}

// BenchmarkVaultRead reads a 16 MiB object from a provider daemon's read API (loopback, TLS) with
// remote.Reader — every shard verified as it streams, the object's root checked — against fetching the same
// data shards' slices over the same API unverified, in the same run: the verified-streaming ratio.
func BenchmarkVaultRead(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "vault")
	e := startEnvWith(b, func(c *provider.Config) {
		c.Storage = provider.StorageConfig{CapacityGiB: 1, Path: dir, PricePerGiBMonth: "0.002"}
	})
	data, _ := shard(5, 1024) // 16 MiB
	c := vault.Coding{K: 4, M: 2, ShardSize: 4 << 20}
	bufs := map[[2]int]*bytes.Buffer{}
	obj, err := vault.Encode(bytes.NewReader(data), uint64(len(data)), c, func(s, i int) (io.Writer, error) {
		bf := &bytes.Buffer{}
		bufs[[2]int{s, i}] = bf
		return bf, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for k, bf := range bufs {
		if err := e.d.Shards().Put(obj.Shards[k[0]][k[1]], obj.ShardSize, bytes.NewReader(bf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	host := remote.ShardHost{Provider: e.net.Keys["prov"].Address(), HostURI: e.hostURI, Fingerprint: e.fp}
	r := &remote.Reader{Where: func(int, int) (remote.ShardHost, bool) { return host, true }}
	hc := certs.PinnedHTTPClient(e.fp, 0)
	b.Run("verified", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := r.Read(context.Background(), io.Discard, obj, 0, obj.Size, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unverified", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var wg sync.WaitGroup // the K data shards at once, as the reader streams them
			for i := range c.K {
				wg.Go(func() {
					res, err := hc.Get(e.hostURI + "/vault/shards/" + hexRoot(obj.Shards[0][i]))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				})
			}
			wg.Wait()
		}
	})
}
