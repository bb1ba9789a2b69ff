package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// commitBlocks commits n blocks to s, each writing a 2 KiB value under a new key and updating or deleting some
// earlier ones, and returns the expected state.
func commitBlocks(t *testing.T, s *Store, from, n int, want map[string]string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(from), 7))
	for h := from; h < from+n; h++ {
		b := s.Begin()
		k := fmt.Sprintf("k/%04d", h)
		v := strings.Repeat(string(rune('a'+h%26)), 2048)
		b.Set(k, []byte(v))
		want[k] = v
		if h > 3 {
			old := fmt.Sprintf("k/%04d", rng.IntN(h-1)+1)
			if rng.IntN(2) == 0 {
				b.Delete(old)
				delete(want, old)
			} else {
				b.Set(old, []byte("updated at "+k))
				want[old] = "updated at " + k
			}
		}
		if err := s.Commit(b, int64(h), b.AppHash(int64(h))); err != nil {
			t.Fatal(err)
		}
	}
}

func checkState(t *testing.T, s *Store, want map[string]string) {
	t.Helper()
	b := s.Begin()
	if b.Len() != len(want) {
		t.Fatalf("%d keys, want %d", b.Len(), len(want))
	}
	for k, v := range want {
		if got, ok := b.Get(k); !ok || string(got) != v {
			t.Fatalf("%s = %.20q (%v), want %.20q", k, got, ok, v)
		}
	}
}

func journal(t *testing.T, dir string) string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	var biggest string
	var size int64
	for _, l := range logs {
		if fi, err := os.Stat(l); err == nil && fi.Size() > size {
			biggest, size = l, fi.Size()
		}
	}
	if biggest == "" {
		t.Fatal("no journal")
	}
	return biggest
}

// TestDigestFollowsCommits: the digest kept through commits (sets, overwrites, deletes) is the one a reopened
// store computes from what it loads, across reopenings.
func TestDigestFollowsCommits(t *testing.T) {
	dir := t.TempDir()
	want := map[string]string{}
	for round := range 3 {
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		checkState(t, s, want)
		commitBlocks(t, s, 1+round*20, 20, want)
		var fresh digest
		x := newHasher()
		s.Begin().Iterate("", "", func(k string, v []byte) bool { fresh.add(x.term(k, v)); return true })
		if fresh != s.digest {
			t.Fatalf("round %d: kept digest %x, state's %x", round, s.digest.bytes(), fresh.bytes())
		}
		s.Close()
	}
}

// TestJournalFlipRefused: one flipped byte in the journal makes LevelDB skip a block of it while it still applies
// the later writes, the stored height and app hash among them; the store no longer adds up to its digest and
// Open refuses it, saying how to rebuild, instead of serving a state that silently lost committed writes.
func TestJournalFlipRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	commitBlocks(t, s, 1, 60, want) // ~120 KiB of journal: blocks after the damaged one still apply
	s.Close()
	log := journal(t, dir)
	b, _ := os.ReadFile(log)
	if len(b) < 3*32<<10 {
		t.Fatalf("journal of %d bytes", len(b))
	}
	b[5000] ^= 0xFF // inside the first 32 KiB block
	os.WriteFile(log, b, 0o600)

	// What LevelDB alone makes of it (on a copy): it opens, at the last height, with committed writes gone.
	cp := filepath.Join(t.TempDir(), "copy")
	os.MkdirAll(cp, 0o700)
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		if b, err := os.ReadFile(filepath.Join(dir, f.Name())); err == nil {
			os.WriteFile(filepath.Join(cp, f.Name()), b, 0o600)
		}
	}
	raw, err := leveldb.OpenFile(cp, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := raw.Get(keyHeight, nil)
	lost := 0
	for k, v := range want {
		if got, err := raw.Get([]byte(k), nil); err != nil || string(got) != v {
			lost++
		}
	}
	raw.Close()
	if len(h) != 8 || h[7] != 60 || lost == 0 {
		t.Fatalf("LevelDB alone: height %x, %d committed writes lost (the test no longer damages what it means to)", h, lost)
	}

	before := listing(t, dir)
	_, err = Open(dir)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "spare node --rebuild-ledger") || !strings.Contains(err.Error(), "height 60") {
		t.Fatalf("open: %v", err)
	}
	// Nothing was changed (the damaged journal is still there, not folded into a table): refused again.
	if after := listing(t, dir); after != before {
		t.Fatalf("the refused database was changed:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := Open(dir); !errors.Is(err, ErrDamaged) {
		t.Fatalf("second open: %v", err)
	}
}

// TestTornJournalTailAccepted: a journal whose last record was cut short (a crash in the middle of a write) loses
// only that last, unacknowledged commit: the store opens at the height before, whole (the node replays the
// block).
func TestTornJournalTailAccepted(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	commitBlocks(t, s, 1, 10, want)
	before := map[string]string{}
	for k, v := range want {
		before[k] = v
	}
	commitBlocks(t, s, 11, 1, want)
	s.Close()
	log := journal(t, dir)
	fi, _ := os.Stat(log)
	if err := os.Truncate(log, fi.Size()-100); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatalf("open after a torn tail: %v", err)
	}
	defer s.Close()
	if s.Height() != 10 {
		t.Fatalf("height %d, want 10", s.Height())
	}
	checkState(t, s, before)
}

// TestStoreWithoutDigestOpens: a database written before digests existed opens, and has one from its next
// commit on.
func TestStoreWithoutDigestOpens(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	commitBlocks(t, s, 1, 5, want)
	if err := s.db.Delete(keyDigest, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	commitBlocks(t, s, 6, 2, want)
	s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.db.Get(keyDigest, nil); err != nil || len(v) != 16 {
		t.Fatalf("digest %x %v", v, err)
	}
	checkState(t, s, want)
}

// tabled commits enough blocks to dir that LevelDB writes sorted tables, compacts them, and returns the expected
// state and the table files.
func tabled(t *testing.T, dir string) (map[string]string, []string) {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	commitBlocks(t, s, 1, 200, want)
	if err := s.db.CompactRange(util.Range{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	tables, _ := filepath.Glob(filepath.Join(dir, "*.ldb"))
	if len(tables) == 0 {
		t.Fatal("no table written")
	}
	return want, tables
}

// TestStorageDamageRefused: a table cut short, a table or the MANIFEST gone, the CURRENT pointer gone — each
// refused with ErrDamaged and the way to rebuild, never opened as a smaller or empty state; a second open is
// refused the same way (nothing was changed), and a copy of the undamaged database still opens whole.
func TestStorageDamageRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string, tables []string)
	}{
		// Every table: a compaction may leave a table it replaced on disk for a while, and damage to that one
		// changes nothing.
		{"tables truncated", func(t *testing.T, dir string, tables []string) {
			for _, tb := range tables {
				fi, _ := os.Stat(tb)
				if err := os.Truncate(tb, fi.Size()/2); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"tables missing", func(t *testing.T, dir string, tables []string) {
			for _, tb := range tables {
				os.Remove(tb)
			}
		}},
		{"MANIFEST missing", func(t *testing.T, dir string, _ []string) {
			ms, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
			if len(ms) == 0 {
				t.Fatal("no MANIFEST")
			}
			for _, m := range ms {
				os.Remove(m)
			}
		}},
		{"CURRENT missing", func(t *testing.T, dir string, _ []string) { os.Remove(filepath.Join(dir, "CURRENT")) }},
		{"MANIFEST and CURRENT missing", func(t *testing.T, dir string, _ []string) {
			ms, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
			for _, m := range append(ms, filepath.Join(dir, "CURRENT")) {
				os.Remove(m)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			want, tables := tabled(t, dir)
			tc.damage(t, dir, tables)
			before := listing(t, dir)
			for i := range 2 {
				_, err := Open(dir)
				if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "spare node --rebuild-ledger") {
					t.Fatalf("open %d: %v", i+1, err)
				}
			}
			if after := listing(t, dir); after != before {
				t.Fatalf("the refused database was changed:\nbefore %s\nafter  %s", before, after)
			}
			if len(want) == 0 {
				t.Fatal("empty state")
			}
		})
	}
	// The undamaged database opens whole.
	dir := t.TempDir()
	want, _ := tabled(t, dir)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkState(t, s, want)
}

// listing is dir's files with their sizes and contents' hashes, but for LevelDB's LOCK and its info LOG.
func listing(t *testing.T, dir string) string {
	t.Helper()
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		if f.Name() == "LOCK" || f.Name() == "LOG" || f.Name() == "LOG.old" {
			continue
		}
		data, _ := os.ReadFile(filepath.Join(dir, f.Name()))
		fmt.Fprintf(&b, "%s:%d:%x ", f.Name(), len(data), sha256.Sum256(data))
	}
	return b.String()
}
