package provider_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/layout"
	"github.com/sparenet/spare/vault/remote"
)

// vaultSource serves candidates from a table (the ledger's placement stands in for by the test: what a
// candidate's Open returns is a real object whose shards a real daemon holds).
type vaultSource func(ctx context.Context, root tx.Hash) ([]provider.VaultCandidate, error)

func (f vaultSource) VaultCandidates(ctx context.Context, root tx.Hash) ([]provider.VaultCandidate, error) {
	return f(ctx, root)
}

// vaultStore is a provider daemon holding Vault shards, with a count of the shard reads made from it.
type vaultStore struct {
	e    *env
	host remote.ShardHost
	mu   sync.Mutex
	// opened: candidates whose manifest was asked for; reads: shard opens (remote.Reader calling Where), by
	// candidate id.
	opened []uint64
	reads  map[uint64]int
}

// put stores data as an object of coding c on the daemon (every shard in its store) and returns its manifest.
func (s *vaultStore) put(t *testing.T, data []byte, c vault.Coding) *vault.Object {
	t.Helper()
	bufs := map[[2]int]*bytes.Buffer{}
	obj, err := vault.Encode(bytes.NewReader(data), uint64(len(data)), c, func(st, i int) (io.Writer, error) {
		b := &bytes.Buffer{}
		bufs[[2]int{st, i}] = b
		return b, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, b := range bufs {
		if err := s.e.d.Shards().Put(obj.Shards[k[0]][k[1]], obj.ShardSize, bytes.NewReader(b.Bytes())); err != nil {
			t.Fatal(err)
		}
	}
	return obj
}

// forged is a manifest that claims root for the shards of obj (other bytes): what anyone may store on the
// ledger. Its shards verify, one by one, against its own shard roots; only the whole object's root check fails.
func forged(obj *vault.Object, root tx.Hash) *vault.Object {
	f := *obj
	f.Root = root
	return &f
}

// candidate is a stored object as the ledger would list it: its id and size, its manifest and every shard on
// this daemon.
func (s *vaultStore) candidate(id uint64, obj *vault.Object) provider.VaultCandidate {
	return provider.VaultCandidate{ID: id, Size: obj.Size, Open: func(context.Context) (*layout.Object, func(int, int) (remote.ShardHost, bool), error) {
		s.mu.Lock()
		s.opened = append(s.opened, id)
		s.mu.Unlock()
		cp := *obj
		return &cp, func(int, int) (remote.ShardHost, bool) {
			s.mu.Lock()
			s.reads[id]++
			s.mu.Unlock()
			return s.host, true
		}, nil
	}}
}

func (s *vaultStore) source(cands ...provider.VaultCandidate) provider.VaultSource {
	s.mu.Lock()
	s.opened, s.reads = nil, map[uint64]int{}
	s.mu.Unlock()
	return vaultSource(func(context.Context, tx.Hash) ([]provider.VaultCandidate, error) { return cands, nil })
}

func (s *vaultStore) stats() ([]uint64, map[uint64]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reads := map[uint64]int{}
	for k, v := range s.reads {
		reads[k] = v
	}
	return append([]uint64(nil), s.opened...), reads
}

// fetchVault fetches inputs into a new work directory as the daemon does before a workload starts, limit bytes
// for all of them.
func fetchVault(t *testing.T, src provider.VaultSource, limit int64, ins ...manifest.Input) (string, error) {
	t.Helper()
	work := t.TempDir()
	opt := provider.InputOptions{Timeout: time.Minute, MinProgressBytes: 1, MinProgressWindow: 10 * time.Second, Vault: src}
	return work, provider.FetchInputsIn(context.Background(), work, &manifest.Manifest{Inputs: ins}, limit, opt)
}

// randomData is n bytes no two shards of which are equal (a content-addressed store keeps equal shards once).
func randomData(seed int64, n int) []byte {
	groups := (n + vault.GroupSize - 1) / vault.GroupSize
	b, _ := shard(seed, groups)
	return b[:n]
}

// TestVaultInputs fetches vault inputs from a real provider daemon's shard read API (pinned TLS on loopback),
// playing the attacker who stores manifests that claim someone else's root: a forged object is read, fails the
// root check, and the next is tried; the same forgery stored many times is read once; no more than four are
// tried; an object larger than the lease's disk is refused before anything is read; and whatever fails leaves
// no file behind. What lands is the root's bytes, read-only.
func TestVaultInputs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	e := startEnvWith(t, func(c *provider.Config) {
		c.Storage = provider.StorageConfig{CapacityGiB: 1, Path: dir, PricePerGiBMonth: "0.002"}
	})
	s := &vaultStore{e: e, host: remote.ShardHost{Provider: e.net.Keys["prov"].Address(), HostURI: e.hostURI, Fingerprint: e.fp}, reads: map[uint64]int{}}
	c := vault.Coding{K: 2, M: 2, ShardSize: 4 * vault.GroupSize}
	data := randomData(41, 300_000) // two stripes: 128 KiB each, the second short
	real := s.put(t, data, c)
	root := real.Root
	var bogus []*vault.Object // distinct objects that claim root, of the real object's size and smaller
	for i := range 5 {
		bogus = append(bogus, forged(s.put(t, randomData(int64(50+i), 300_000-i*50_000), c), root))
	}

	t.Run("fetched around a forgery, verified, read-only", func(t *testing.T) {
		src := s.source(s.candidate(1, bogus[0]), s.candidate(2, real))
		work, err := fetchVault(t, src, 1<<20,
			manifest.Input{Vault: root, Path: "weights/base.bin"},
			manifest.Input{Vault: root, Path: "copies/"})
		if err != nil {
			t.Fatal(err)
		}
		for _, rel := range []string{"weights/base.bin", "copies/" + root.String()} {
			got, err := os.ReadFile(filepath.Join(work, rel))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: %d bytes, %v: not the object's bytes", rel, len(got), err)
			}
			fi, err := os.Lstat(filepath.Join(work, rel))
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o444 {
				t.Fatalf("%s: mode %v (%v), want a regular file 0444", rel, fi.Mode(), err)
			}
		}
		opened, reads := s.stats()
		if fmt.Sprint(opened) != "[1 2 1 2]" || reads[1] == 0 || reads[2] == 0 {
			t.Fatalf("opened %v, read %v: want the forgery tried, then the real object, for each input", opened, reads)
		}
	})

	t.Run("a forgery stored many times is read once", func(t *testing.T) {
		var cands []provider.VaultCandidate
		for id := uint64(1); id <= 6; id++ {
			cands = append(cands, s.candidate(id, bogus[0]))
		}
		cands = append(cands, s.candidate(7, real))
		work, err := fetchVault(t, s.source(cands...), 1<<20, manifest.Input{Vault: root, Path: "in.bin"})
		if err != nil {
			t.Fatalf("six copies of one forgery hid the real object: %v", err)
		}
		if got, _ := os.ReadFile(filepath.Join(work, "in.bin")); !bytes.Equal(got, data) {
			t.Fatal("not the object's bytes")
		}
		_, reads := s.stats()
		if len(reads) != 2 || reads[1] == 0 || reads[7] == 0 {
			t.Fatalf("shards read for objects %v: want the forgery once (object 1) and the real one (7)", reads)
		}
		// Copies still cost a ledger look-up each: at most eight manifests are fetched.
		cands = nil
		for id := uint64(1); id <= 20; id++ {
			cands = append(cands, s.candidate(id, bogus[0]))
		}
		_, err = fetchVault(t, s.source(cands...), 1<<20, manifest.Input{Vault: root, Path: "in.bin"})
		if opened, _ := s.stats(); err == nil || !strings.Contains(err.Error(), "none of the 1 stored object(s)") || len(opened) != 8 {
			t.Fatalf("twenty copies of a forgery: %v, %d manifests fetched", err, len(opened))
		}
	})

	t.Run("root mismatch: every forgery fails, clearly, leaving nothing", func(t *testing.T) {
		src := s.source(s.candidate(11, bogus[1]), s.candidate(12, bogus[2]))
		work, err := fetchVault(t, src, 1<<20, manifest.Input{Vault: root, Path: "data/in.bin"})
		for _, want := range []string{"inputs[0] (vault " + root.String() + ")", "none of the 2 stored object(s)",
			"object 11: its shards hold other bytes than the root's", "object 12: its shards hold other bytes than the root's: its manifest claims this root for other data"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%v: want it to say %q", err, want)
			}
		}
		if _, err := os.Lstat(filepath.Join(work, "data/in.bin")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a file of unverified bytes left behind: %v", err)
		}
	})

	t.Run("at most four objects are tried", func(t *testing.T) {
		var cands []provider.VaultCandidate
		for i, b := range bogus {
			cands = append(cands, s.candidate(uint64(21+i), b))
		}
		cands = append(cands, s.candidate(30, real))
		_, err := fetchVault(t, s.source(cands...), 1<<20, manifest.Input{Vault: root, Path: "in.bin"})
		if err == nil || !strings.Contains(err.Error(), "none of the 4 stored object(s)") {
			t.Fatalf("five forgeries before the real object: %v, want four tried and the input refused", err)
		}
		opened, _ := s.stats()
		if fmt.Sprint(opened) != "[21 22 23 24]" {
			t.Fatalf("opened %v: want the four oldest", opened)
		}
	})

	t.Run("larger than the lease's disk: refused before a byte is read", func(t *testing.T) {
		src := s.source(s.candidate(40, real))
		limit := int64(real.Size) - 1
		work, err := fetchVault(t, src, limit, manifest.Input{Vault: root, Path: "in.bin"})
		want := fmt.Sprintf("the object is %d bytes, more than the %d bytes the lease's disk has left for inputs (%d for all inputs together): order more disk", real.Size, limit, limit)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v, want %q", err, want)
		}
		if opened, reads := s.stats(); len(opened) != 0 || len(reads) != 0 {
			t.Fatalf("opened %v, read %v before refusing", opened, reads)
		}
		if _, err := os.Lstat(filepath.Join(work, "in.bin")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a file left: %v", err)
		}
		// Claims of several sizes, none fitting: the smallest is named.
		huge := provider.VaultCandidate{ID: 44, Size: 1 << 40, Open: func(context.Context) (*layout.Object, func(int, int) (remote.ShardHost, bool), error) {
			t.Error("a candidate larger than the disk opened")
			return nil, nil, errors.New("opened")
		}}
		_, err = fetchVault(t, s.source(huge, s.candidate(45, real)), limit, manifest.Input{Vault: root, Path: "in.bin"})
		want = fmt.Sprintf("the objects stored with this root are %d bytes and more, more than the %d bytes", real.Size, limit)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v, want %q", err, want)
		}
		// The budget is the lease's for all inputs: after a first copy, a second does not fit what is left.
		limit = int64(real.Size) + 1000
		_, err = fetchVault(t, s.source(s.candidate(41, real)), limit, manifest.Input{Vault: root, Path: "a"}, manifest.Input{Vault: root, Path: "b"})
		want = fmt.Sprintf("inputs[1] (vault %s): the object is %d bytes, more than the 1000 bytes the lease's disk has left for inputs (%d for all inputs together)", root, real.Size, limit)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v, want %q", err, want)
		}
		// A forgery that claims a size that fits is still no way past the budget: it is read, fails, and the
		// real object that does not fit is named.
		smaller := s.candidate(42, bogus[4])
		_, err = fetchVault(t, s.source(s.candidate(43, real), smaller), int64(bogus[4].Size), manifest.Input{Vault: root, Path: "c"})
		if err == nil || !strings.Contains(err.Error(), "object 42: its shards hold other bytes") ||
			!strings.Contains(err.Error(), fmt.Sprintf("1 more, of %d bytes and up, are larger than the %d bytes", real.Size, bogus[4].Size)) {
			t.Fatalf("%v", err)
		}
	})

	t.Run("unknown root, missing shards, an existing file", func(t *testing.T) {
		_, err := fetchVault(t, s.source(), 1<<20, manifest.Input{Vault: root, Path: "a"})
		if err == nil || !strings.Contains(err.Error(), "no object with this root is stored in Spare Vault") {
			t.Fatalf("no candidates: %v", err)
		}
		// An object whose shards nobody serves: more than M a stripe missing.
		gone := provider.VaultCandidate{ID: 50, Size: real.Size, Open: func(context.Context) (*layout.Object, func(int, int) (remote.ShardHost, bool), error) {
			return real, func(st, i int) (remote.ShardHost, bool) { return s.host, i == 0 }, nil
		}}
		_, err = fetchVault(t, s.source(gone), 1<<20, manifest.Input{Vault: root, Path: "a"})
		if err == nil || !strings.Contains(err.Error(), "object 50: stripe 0") || !strings.Contains(err.Error(), vault.ErrTooFewShards.Error()) {
			t.Fatalf("shards held by nobody: %v", err)
		}
		// The input's path is taken (by a file of the manifest): refused, the file untouched.
		work := t.TempDir()
		if err := os.WriteFile(filepath.Join(work, "a"), []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
		opt := provider.InputOptions{Timeout: time.Minute, MinProgressBytes: 1, MinProgressWindow: 10 * time.Second, Vault: s.source(s.candidate(51, real))}
		err = provider.FetchInputsIn(context.Background(), work, &manifest.Manifest{Inputs: []manifest.Input{{Vault: root, Path: "a"}}}, 1<<20, opt)
		if b, _ := os.ReadFile(filepath.Join(work, "a")); err == nil || !strings.Contains(err.Error(), "already exists") || string(b) != "mine" {
			t.Fatalf("%v; the file holds %q", err, b)
		}
	})

	t.Run("a storage provider that never answers is read around", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var held []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c) // accepted, never answered
				mu.Unlock()
			}
		}()
		defer func() {
			mu.Lock()
			for _, c := range held {
				c.Close()
			}
			mu.Unlock()
		}()
		silent := remote.ShardHost{Provider: tx.Address{0x5e}, HostURI: "https://" + ln.Addr().String(), Fingerprint: tx.Hash{0x5e}}
		cand := provider.VaultCandidate{ID: 60, Size: real.Size, Open: func(context.Context) (*layout.Object, func(int, int) (remote.ShardHost, bool), error) {
			return real, func(st, i int) (remote.ShardHost, bool) {
				if i == st { // shard 0 of stripe 0, shard 1 of stripe 1: data shards, read first
					return silent, true
				}
				return s.host, true
			}, nil
		}}
		work := t.TempDir()
		opt := provider.InputOptions{Timeout: time.Minute, MinProgressBytes: 1, MinProgressWindow: 4 * time.Second, Vault: s.source(cand)}
		start := time.Now()
		err = provider.FetchInputsIn(context.Background(), work, &manifest.Manifest{Inputs: []manifest.Input{{Vault: root, Path: "in.bin"}}}, 1<<20, opt)
		if err != nil {
			t.Fatalf("after %s: %v", time.Since(start), err)
		}
		if got, _ := os.ReadFile(filepath.Join(work, "in.bin")); !bytes.Equal(got, data) {
			t.Fatal("not the object's bytes")
		}
	})

	// Through the daemon, resolving on the ledger: a manifest whose vault input no stored object has is
	// refused, saying so.
	t.Run("a lease's manifest, resolved on the ledger", func(t *testing.T) {
		if cands, err := provider.LedgerVault(e.c).VaultCandidates(context.Background(), root); err != nil || len(cands) != 0 {
			t.Fatalf("the ledger lists %v, %v for a root nobody stored", cands, err)
		}
		m, _ := job("cat in.bin", 1)
		m.Inputs = []manifest.Input{{Vault: root, Path: "in.bin"}}
		raw, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
		e.waitFor(10*time.Second, "the daemon to take the lease", func() bool {
			code, _, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
			return code == 200
		})
		code, body, _ := e.do(e.tenantClient("tenant", nil), "PUT", fmt.Sprintf("/leases/%d/manifest", leaseID), raw)
		if code != 400 || !strings.Contains(string(body), "no object with this root is stored in Spare Vault") {
			t.Fatalf("manifest with an unknown vault root: %d %s", code, body)
		}
	})
}

// TestVaultObjectFromLedger rebuilds an object's manifest and shard hosts from the ledger's answers, and plays a
// ledger answer that does not add up: too few shards, shards out of order or of another object, a layout that
// is not one. A shard with no provider is held nowhere (read around), never at an empty address.
func TestVaultObjectFromLedger(t *testing.T) {
	data := randomData(7, 300_000)
	obj, err := vault.Encode(bytes.NewReader(data), uint64(len(data)), vault.Coding{K: 2, M: 2, ShardSize: 4 * vault.GroupSize}, func(int, int) (io.Writer, error) { return io.Discard, nil })
	if err != nil {
		t.Fatal(err)
	}
	o := api.VaultObject{ID: 9, Root: obj.Root, Size: obj.Size, K: obj.K, M: obj.M, ShardSize: obj.ShardSize, Stripes: obj.Stripes, State: api.VaultPlaced}
	host := func(ord int) (tx.Address, string, tx.Hash) {
		return tx.Address{byte(ord + 1)}, fmt.Sprintf("https://10.0.0.%d:8443", ord+1), tx.Hash{byte(ord + 1)}
	}
	shards := func() []api.VaultShard {
		var out []api.VaultShard
		for st := range obj.Stripes {
			for i := range obj.K + obj.M {
				ord := st*(obj.K+obj.M) + i
				p, uri, fp := host(ord)
				out = append(out, api.VaultShard{ObjectID: 9, Stripe: st, Index: i, Root: obj.Shards[st][i], Provider: p, HostURI: uri, Fingerprint: fp})
			}
		}
		out[5].Provider, out[5].HostURI = tx.Address{}, "" // not placed (yet, or any more)
		out[6].HostURI = ""                                // a provider with no address
		return out
	}
	got, where, err := provider.VaultObjectOf(o, shards())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := got.Encode()
	b, _ := obj.Encode()
	if !bytes.Equal(a, b) {
		t.Fatal("rebuilt manifest differs")
	}
	for ord := range obj.Stripes * (obj.K + obj.M) {
		h, ok := where(ord/(obj.K+obj.M), ord%(obj.K+obj.M))
		p, uri, fp := host(ord)
		if ord == 5 || ord == 6 {
			if ok {
				t.Errorf("shard %d held by %+v: want nowhere", ord, h)
			}
			continue
		}
		if !ok || h.Provider != p || h.HostURI != uri || h.Fingerprint != fp {
			t.Errorf("shard %d: %+v %v", ord, h, ok)
		}
	}
	for _, bad := range []struct {
		s, i int
	}{{-1, 0}, {obj.Stripes, 0}, {0, -1}, {0, obj.K + obj.M}} {
		if _, ok := where(bad.s, bad.i); ok {
			t.Errorf("where(%d, %d) answered", bad.s, bad.i)
		}
	}
	for name, mut := range map[string]func(o *api.VaultObject, l []api.VaultShard) []api.VaultShard{
		"a shard short":    func(o *api.VaultObject, l []api.VaultShard) []api.VaultShard { return l[:len(l)-1] },
		"a shard too many": func(o *api.VaultObject, l []api.VaultShard) []api.VaultShard { return append(l, l[0]) },
		"out of order":     func(o *api.VaultObject, l []api.VaultShard) []api.VaultShard { l[1], l[2] = l[2], l[1]; return l },
		"another object's": func(o *api.VaultObject, l []api.VaultShard) []api.VaultShard { l[3].ObjectID = 8; return l },
		"shard size": func(o *api.VaultObject, l []api.VaultShard) []api.VaultShard {
			o.ShardSize += vault.GroupSize
			return l
		},
		"size":      func(o *api.VaultObject, l []api.VaultShard) []api.VaultShard { o.Size = 1 << 30; return l },
		"no parity": func(o *api.VaultObject, l []api.VaultShard) []api.VaultShard { o.M = 0; return l },
		"stripes":   func(o *api.VaultObject, l []api.VaultShard) []api.VaultShard { o.Stripes = 0; return l },
	} {
		o2 := o
		l := mut(&o2, shards())
		if _, _, err := provider.VaultObjectOf(o2, l); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
