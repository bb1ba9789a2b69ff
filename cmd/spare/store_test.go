package main

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/tenant"
)

// storeRun runs the binary and returns stdout, stderr and its error.
func storeRun(bin string, args ...string) (string, string, error) {
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestStoreOnDev plays a tenant on `spare dev` with four storage providers (the dev coding, 2 data + 2 parity
// shards a stripe): a 9 MiB random file put and got back byte for byte; a byte range; an interrupted get resumed
// from its partial file; two providers of every stripe losing their shards (one rotten, one deleted) and the get
// still exact, naming them; status saying which shards are held; and bad input — an unknown root, a coding with
// more shards than providers — refused with the fix and nothing charged.
func TestStoreOnDev(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spare dev")
	}
	bin := proctest.Build(t, ".")
	tmp := t.TempDir()
	home := filepath.Join(tmp, "dev")
	startProc(t, bin, filepath.Join(tmp, "dev.log"), "dev", "--home", home, "--providers", "4", "--no-docker", "--nvidia-smi", "/nonexistent/nvidia-smi",
		"--explorer", "", "--log-level", "warn")
	h := []string{"--home", home}
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _, err := storeRun(bin, append([]string{"offers", "--storage", "-o", "json"}, h...)...)
		var res storageOffersResult
		if err == nil && json.Unmarshal([]byte(out), &res) == nil && len(res.StorageOffers) == 4 {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(tmp, "dev.log"))
			t.Fatalf("four storage offers not on the ledger in time: %v %s\n%s", err, out, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	data := make([]byte, 9<<20)
	rand.New(rand.NewSource(7)).Read(data)
	src := filepath.Join(tmp, "data.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	balance := func() string {
		out := crashRun(t, bin, append([]string{"balance", "tenant", "-o", "json"}, h...)...)
		return string(out)
	}

	// Bad input first: nothing is stored, nothing charged.
	before := balance()
	_, stderr, err := storeRun(bin, append([]string{"store", "put", src, "--coding", "4+4/1MiB"}, h...)...)
	if err == nil || !strings.Contains(stderr, "too few storage providers") || !strings.Contains(stderr, "--coding") {
		t.Fatalf("put with 8 shards a stripe on 4 providers: %v\n%s", err, stderr)
	}
	_, stderr, err = storeRun(bin, append([]string{"store", "put", src, "--coding", "4+4/1MiB", "--max-price", "0.01", "--yes"}, h...)...)
	if err == nil || !strings.Contains(stderr, "too few storage providers") {
		t.Fatalf("put refused by the ledger: %v\n%s", err, stderr)
	}
	if after := balance(); after != before {
		t.Fatalf("refused puts charged the tenant: %s -> %s", before, after)
	}
	_, stderr, err = storeRun(bin, append([]string{"store", "get", strings.Repeat("ab", 32), filepath.Join(tmp, "x")}, h...)...)
	if err == nil || !strings.Contains(stderr, "no object with root") {
		t.Fatalf("get of an unknown root: %v\n%s", err, stderr)
	}

	out := crashRun(t, bin, append([]string{"store", "price", "9MiB", "-o", "json"}, h...)...)
	var price storePriceResult
	if err := json.Unmarshal(out, &price); err != nil || price.Shards != 8 || price.Escrow == 0 {
		t.Fatalf("store price: %v %s", err, out)
	}

	out = crashRun(t, bin, append([]string{"store", "put", src, "-o", "json", "--yes"}, h...)...)
	var put tenant.PutResult
	if err := json.Unmarshal(out, &put); err != nil || len(put.Shards) != 8 || put.Size != uint64(len(data)) {
		t.Fatalf("store put: %v %s", err, out)
	}
	if put.Escrow > price.Escrow {
		t.Fatalf("put escrowed %d, more than price's most %d", put.Escrow, price.Escrow)
	}
	for s := range 2 {
		seen := map[string]bool{}
		for _, sh := range put.Shards {
			if sh.Stripe == s {
				if seen[sh.Provider.String()] {
					t.Fatalf("stripe %d has two shards on %s", s, sh.Provider)
				}
				seen[sh.Provider.String()] = true
			}
		}
	}
	root := put.Root.String()

	get := func(dest string, extra ...string) (string, string, error) {
		return storeRun(bin, append(append([]string{"store", "get", root, dest}, extra...), h...)...)
	}
	back := filepath.Join(tmp, "back.bin")
	if _, stderr, err := get(back); err != nil {
		t.Fatalf("store get: %v\n%s", err, stderr)
	}
	if b, _ := os.ReadFile(back); !bytes.Equal(b, data) {
		t.Fatal("store get returned different bytes")
	}
	rng := filepath.Join(tmp, "range.bin")
	if _, stderr, err := get(rng, "--range", "100-5000000"); err != nil {
		t.Fatalf("store get --range: %v\n%s", err, stderr)
	}
	if b, _ := os.ReadFile(rng); !bytes.Equal(b, data[100:5000000]) {
		t.Fatal("--range 100-5000000 returned other bytes")
	}
	resumed := filepath.Join(tmp, "resumed.bin")
	if err := os.WriteFile(resumed+".partial", data[:3<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	out2, stderr, err := get(resumed, "-o", "json")
	var gr tenant.GetResult
	if err != nil || json.Unmarshal([]byte(out2), &gr) != nil || gr.Resumed != 3<<20 {
		t.Fatalf("resumed get: %v %s\n%s", err, out2, stderr)
	}
	if b, _ := os.ReadFile(resumed); !bytes.Equal(b, data) {
		t.Fatal("a resumed get returned different bytes")
	}

	// Two shards of every stripe lost: one rots (a byte flipped), one is deleted. Any two of four rebuild it.
	var lost []string
	for _, sh := range put.Shards {
		if sh.Index != 0 && sh.Index != 3 {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(home, "*", "vault", sh.Root.String()+".shard"))
		files2, _ := filepath.Glob(filepath.Join(home, "*", "*", "vault", sh.Root.String()+".shard"))
		files = append(files, files2...)
		if len(files) != 1 {
			t.Fatalf("shard %s found at %v", sh.Root, files)
		}
		if sh.Index == 0 {
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(files[0], b, 0o600); err != nil {
				t.Fatal(err)
			}
		} else {
			os.Remove(files[0])
		}
		lost = append(lost, sh.Provider.String())
	}
	damaged := filepath.Join(tmp, "damaged.bin")
	stdout, stderr, err := get(damaged)
	if err != nil {
		t.Fatalf("get with two shards of every stripe lost: %v\n%s", err, stderr)
	}
	if b, _ := os.ReadFile(damaged); !bytes.Equal(b, data) {
		t.Fatal("get around lost shards returned different bytes")
	}
	if !strings.Contains(stdout+stderr, lost[0]) {
		t.Fatalf("get did not name the provider whose shard rotted (%s):\n%s\n%s", lost[0], stdout, stderr)
	}
	out = crashRun(t, bin, append([]string{"store", "status", root, "-o", "json"}, h...)...)
	var st storeStatusResult
	if err := json.Unmarshal(out, &st); err != nil || len(st.Shards) != 8 {
		t.Fatalf("store status: %v %s", err, out)
	}
	for _, sh := range st.Shards {
		if want := sh.Index != 3; sh.Held != want {
			t.Errorf("status says stripe %d shard %d held=%v, want %v (%s)", sh.Stripe, sh.Index, sh.Held, want, sh.Error)
		}
	}
	// The same put again resumes: no new object, no charge, and the deleted shards are uploaded again.
	before = balance()
	out = crashRun(t, bin, append([]string{"store", "put", src, "-o", "json", "--yes"}, h...)...)
	var again tenant.PutResult
	if err := json.Unmarshal(out, &again); err != nil || again.ObjectID != put.ObjectID || again.Fee != 0 {
		t.Fatalf("put again: %v %s (first: object %d)", err, out, put.ObjectID)
	}
	if after := balance(); after != before {
		t.Fatalf("a resumed put charged the tenant: %s -> %s", before, after)
	}
	out = crashRun(t, bin, append([]string{"store", "status", root, "-o", "json"}, h...)...)
	if err := json.Unmarshal(out, &st); err != nil || st.Held != 8 {
		t.Fatalf("after the resumed put, %d of 8 shards held: %v %s", st.Held, err, out)
	}
	out = crashRun(t, bin, append([]string{"store", "ls", "-o", "json"}, h...)...)
	if !strings.Contains(string(out), root) {
		t.Fatalf("store ls does not list %s:\n%s", root, out)
	}
}
