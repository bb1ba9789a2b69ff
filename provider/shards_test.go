package provider_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"lukechampine.com/blake3"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/vault"
)

func shard(seed int64, groups int) ([]byte, tx.Hash) {
	b := make([]byte, groups*vault.GroupSize)
	rand.New(rand.NewSource(seed)).Read(b)
	return b, tx.Hash(blake3.Sum256(b))
}

// TestShardsKeepOnlyWhatTheyWereSentFor plays a hostile or careless uploader: bytes that are not the root's, too
// few, too many, past the capacity. Nothing of those is kept, nothing counts against the capacity, and what is
// kept serves slices and proofs that verify against its root.
func TestShardsKeepOnlyWhatTheyWereSentFor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	s, err := provider.OpenShards(dir, 4*vault.GroupSize)
	if err != nil {
		t.Fatal(err)
	}
	good, root := shard(1, 2)
	other, _ := shard(2, 2)
	var bad *vault.BadShardError
	if err := s.Put(root, uint64(len(other)), bytes.NewReader(other)); !errors.As(err, &bad) {
		t.Fatalf("another shard's bytes under this root: %v", err)
	}
	if err := s.Put(root, uint64(len(good)), bytes.NewReader(good[:len(good)-1])); err == nil {
		t.Fatal("a shard cut short kept")
	}
	if err := s.Put(root, uint64(len(good)), io.MultiReader(bytes.NewReader(good), strings.NewReader("x"))); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("a shard with a byte too many: %v", err)
	}
	if err := s.Put(root, uint64(len(good))+1, bytes.NewReader(good)); err == nil {
		t.Fatal("a size not in whole groups accepted")
	}
	if s.Used() != 0 {
		t.Fatalf("refused shards hold %d bytes", s.Used())
	}
	if err := s.Put(root, uint64(len(good)), bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(root, uint64(len(good)), strings.NewReader("not read: held already")); err != nil {
		t.Fatalf("the same shard again: %v", err)
	}
	big, bigRoot := shard(3, 3)
	if err := s.Put(bigRoot, uint64(len(big)), bytes.NewReader(big)); !errors.Is(err, provider.ErrStorageFull) {
		t.Fatalf("past the capacity: %v", err)
	}
	// Served: a slice and a proof that verify against the root alone.
	var enc bytes.Buffer
	if err := s.Slice(&enc, root, vault.GroupSize, vault.GroupSize); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := vault.ReadSlice(&got, &enc, root, uint64(len(good)), vault.GroupSize, vault.GroupSize); err != nil || !bytes.Equal(got.Bytes(), good[vault.GroupSize:]) {
		t.Fatalf("slice: %v", err)
	}
	p, err := s.Prove(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := vault.VerifyProof(root, uint64(len(good)), 0, p); err != nil || !bytes.Equal(data, good[:vault.GroupSize]) {
		t.Fatalf("proof: %v", err)
	}
	// Only the shard and its outboard are left in the directory: no temporary file of the refused ones.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("the store holds %d files, want the shard and its outboard", len(ents))
	}
	// Reopened (a restart), it counts what it holds and drops a shard whose outboard never landed.
	orphan, orphanRoot := shard(4, 1)
	if err := os.WriteFile(filepath.Join(dir, hexRoot(orphanRoot)+".shard"), orphan, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := provider.OpenShards(dir, 4*vault.GroupSize)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Used() != uint64(len(good)) {
		t.Fatalf("reopened: %d bytes held, want %d", s2.Used(), len(good))
	}
	if _, ok := s2.Has(orphanRoot); ok {
		t.Fatal("a shard without its outboard counted as held")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("reopened: %d files left, want 2", len(ents))
	}
	if err := s2.Delete(root); err != nil || s2.Used() != 0 {
		t.Fatalf("delete: %v, %d held", err, s2.Used())
	}
	if _, err := s2.Prove(root, 0); err == nil {
		t.Fatal("a deleted shard proven")
	}
}

func hexRoot(h tx.Hash) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 64)
	for i, b := range h {
		out[2*i], out[2*i+1] = digits[b>>4], digits[b&15]
	}
	return string(out)
}

// TestShardsNeverOvercommit: many uploads at once, the same shard twice among them, never hold more than the
// capacity offered, and each shard is held once.
func TestShardsNeverOvercommit(t *testing.T) {
	s, err := provider.OpenShards(filepath.Join(t.TempDir(), "vault"), 5*vault.GroupSize)
	if err != nil {
		t.Fatal(err)
	}
	type up struct {
		b    []byte
		root tx.Hash
	}
	var ups []up
	for i := range 8 {
		b, r := shard(int64(10+i%6), 1) // seeds 10..15: two shards sent twice
		ups = append(ups, up{b, r})
	}
	errs := make(chan error, len(ups))
	for _, u := range ups {
		go func() { errs <- s.Put(u.root, uint64(len(u.b)), bytes.NewReader(u.b)) }()
	}
	full := 0
	for range ups {
		if err := <-errs; errors.Is(err, provider.ErrStorageFull) {
			full++
		}
	}
	held := 0
	for _, u := range ups[:6] {
		if _, ok := s.Has(u.root); ok {
			held++
		}
	}
	if s.Used() > 5*vault.GroupSize || s.Used() != uint64(held)*vault.GroupSize || held == 0 || full == 0 {
		t.Fatalf("used %d of %d, %d distinct shards held, %d refused as full", s.Used(), 5*vault.GroupSize, held, full)
	}
}

// TestShardsForgetWhatLeftTheDisk: a shard file deleted or cut behind the store's back is not held any more — its
// bytes no longer count against the capacity, and the same shard can be stored again (a put resumed, a repair).
func TestShardsForgetWhatLeftTheDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vault")
	s, err := provider.OpenShards(dir, 8*vault.GroupSize)
	if err != nil {
		t.Fatal(err)
	}
	a, ra := shard(1, 2)
	b, rb := shard(2, 2)
	for _, sh := range []struct {
		b []byte
		r tx.Hash
	}{{a, ra}, {b, rb}} {
		if err := s.Put(sh.r, uint64(len(sh.b)), bytes.NewReader(sh.b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, ra.String()+".shard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, rb.String()+".shard"), vault.GroupSize); err != nil {
		t.Fatal(err)
	}
	for _, r := range []tx.Hash{ra, rb} {
		if _, held := s.Has(r); held {
			t.Errorf("shard %x… is gone from the disk and still held", r[:4])
		}
	}
	if s.Used() != 0 {
		t.Fatalf("shards gone from the disk still use %d bytes", s.Used())
	}
	if err := s.Put(ra, uint64(len(a)), bytes.NewReader(a)); err != nil {
		t.Fatal(err)
	}
	if _, held := s.Has(ra); !held {
		t.Fatal("a shard stored again is not held")
	}
}

// TestShardsRelease: the shards the ledger no longer places here are deleted, those it does are kept, and one the
// ledger could not be asked about is kept too (never deleted on a failed answer).
func TestShardsRelease(t *testing.T) {
	s, err := provider.OpenShards(filepath.Join(t.TempDir(), "vault"), 16*vault.GroupSize)
	if err != nil {
		t.Fatal(err)
	}
	kept, ended, unknown := []tx.Hash{}, []tx.Hash{}, []tx.Hash{}
	for i := range 6 {
		b, r := shard(int64(10+i), 2)
		if err := s.Put(r, uint64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0:
			kept = append(kept, r)
		case 1:
			ended = append(ended, r)
		default:
			unknown = append(unknown, r)
		}
	}
	in := func(rs []tx.Hash, r tx.Hash) bool { return slices.Contains(rs, r) }
	gone := s.Release(func(r tx.Hash) (bool, error) {
		switch {
		case in(kept, r):
			return true, nil
		case in(ended, r):
			return false, nil
		}
		return false, errors.New("node unreachable")
	})
	if len(gone) != len(ended) {
		t.Fatalf("released %d shards, want the %d whose deals ended", len(gone), len(ended))
	}
	for _, r := range ended {
		if _, held := s.Has(r); held {
			t.Errorf("ended shard %x… still held", r[:4])
		}
	}
	for _, r := range append(kept, unknown...) {
		if _, held := s.Has(r); !held {
			t.Errorf("shard %x… deleted", r[:4])
		}
	}
	if s.Used() != uint64(len(kept)+len(unknown))*2*vault.GroupSize {
		t.Fatalf("used %d", s.Used())
	}
}
