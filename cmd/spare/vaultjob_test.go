package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/tenant"
	"github.com/sparenet/spare/vault"
)

// TestVaultJobOnDev plays a model's inputs and outputs kept in the Vault, on `spare dev` with four storage
// providers and the process runtime: a dataset stored with spare store put; a first job that reads it as a vault
// input and writes its outputs to the Vault (outputs: {paths, to: vault}), whose deploy prints the outputs' root;
// a second job that reads those outputs by that root, unpacked into a directory, and finds the first job's
// bytes. Anyone can tie the object to the first job's receipt: fetched and extracted, its files pass spare
// verify against the receipt's output root. A tenant who stores a hostile archive and asks a job to unpack it
// gets the lease refused, naming the entry, and nothing of it on the provider's disk.
func TestVaultJobOnDev(t *testing.T) {
	if testing.Short() {
		t.Skip("runs spare dev")
	}
	bin := proctest.Build(t, ".")
	tmp := t.TempDir()
	home := filepath.Join(tmp, "dev")
	devLog := filepath.Join(tmp, "dev.log")
	startProc(t, bin, devLog, "dev", "--home", home, "--providers", "4", "--no-docker", "--nvidia-smi", "/nonexistent/nvidia-smi",
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
			t.Fatalf("four storage offers not on the ledger in time: %v %s\n%s", err, out, proctest.Tail(devLog, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The dataset, stored.
	data := make([]byte, 300_000)
	rand.New(rand.NewSource(11)).Read(data)
	src := filepath.Join(tmp, "data.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var put tenant.PutResult
	if out := crashRun(t, bin, append([]string{"store", "put", src, "-o", "json"}, h...)...); json.Unmarshal(out, &put) != nil || put.Root.IsZero() {
		t.Fatalf("store put: %s", out)
	}

	outputs := filepath.Join(tmp, "outputs")
	job := func(name, run, body string) string {
		p := filepath.Join(tmp, name+".yaml")
		y := "name: " + name + "\nrun: |\n  " + run + "\n" + body + "resources: {cpu: 0.5, memory: 256MiB, disk: 64MiB}\nduration: 5m\nprice: {max: 0.1}\n"
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	deploy := func(file string, extra ...string) (string, string, error) {
		return storeRun(bin, append(append([]string{"deploy", file, "--outputs", outputs}, extra...), h...)...)
	}

	// The first job: the dataset in, its outputs to the Vault.
	first := job("first", `mkdir -p out/sub && cp data/in.bin out/copy.bin && wc -c < data/in.bin > out/sub/size.txt && echo '{"ok": true}' > metrics.json && chmod +x metrics.json`,
		"inputs: [{vault: "+put.Root.String()+", path: data/in.bin}]\n"+
			"outputs: {paths: [out/, metrics.json], to: vault, months: 2}\n")
	stdout, stderr, err := deploy(first, "-o", "json")
	if err != nil {
		t.Fatalf("deploy first: %v\n%s\n%s\n%s", err, stdout, stderr, proctest.Tail(devLog, 30))
	}
	var r1 tenant.Result
	if err := json.Unmarshal([]byte(stdout), &r1); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	v := r1.OutputsVault
	if r1.ExitCode == nil || *r1.ExitCode != 0 || r1.Receipt == nil || v == nil || !v.Stored || v.Root.IsZero() || v.ObjectID == 0 || v.Files != 3 || v.Months != 2 || v.Fee == 0 || r1.Fees < v.Fee {
		t.Fatalf("first job: exit %v, outputs to the Vault %+v, fees %d\n%s", r1.ExitCode, v, r1.Fees, stderr)
	}
	if !strings.Contains(stderr, fmt.Sprintf("outputs stored in the Vault: root %s (object %d)", v.Root, v.ObjectID)) {
		t.Fatalf("the deploy's progress does not say where the outputs went:\n%s", stderr)
	}
	// The provider vouches for the object: its signed receipt, on the ledger, carries the object's root (computed
	// from its work directory, where metrics.json is executable; the tenant's copy is not: the root covers
	// contents only), and the lease.completed event names it.
	if r1.Receipt.VaultRoot != v.Root || !v.Vouched {
		t.Fatalf("the receipt's Vault root is %s, the stored object's %s (vouched %v)", r1.Receipt.VaultRoot, v.Root, v.Vouched)
	}
	var onLedger struct {
		Receipt struct {
			VaultRoot string `json:"vault_root"`
		} `json:"receipt"`
	}
	if out := crashRun(t, bin, append([]string{"query", "lease", fmt.Sprint(r1.LeaseID), "-o", "json"}, h...)...); json.Unmarshal(out, &onLedger) != nil || onLedger.Receipt.VaultRoot != v.Root.String() {
		t.Fatalf("lease %d on the ledger: %s, want the receipt's vault_root %s", r1.LeaseID, out, v.Root)
	}
	if b, _ := os.ReadFile(filepath.Join(r1.OutputsPath, "out", "copy.bin")); !bytes.Equal(b, data) {
		t.Fatal("the first job's output is not the dataset's bytes: the vault input was not read")
	}

	// The object is the receipt's: fetched and extracted by anyone, its files hash to the receipt's root.
	got := filepath.Join(tmp, "first-outputs.tar")
	crashRun(t, bin, append([]string{"store", "get", v.Root.String(), got}, h...)...)
	arch, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	files, err := tenant.ArchivedFiles(bytes.NewReader(arch))
	if err != nil {
		t.Fatal(err)
	}
	if root, _ := merkle.Root(files); root != r1.Receipt.OutputRoot || len(files) != 3 {
		t.Fatalf("the object's %d files hash to %s, the receipt's output root is %s", len(files), root, r1.Receipt.OutputRoot)
	}
	x := filepath.Join(tmp, "extracted")
	if err := vault.Extract(bytes.NewReader(arch), x, vault.DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	out := crashRun(t, bin, append([]string{"verify", fmt.Sprint(r1.LeaseID), "--outputs", x, "-o", "json"}, h...)...)
	var rep struct{ OK bool }
	if json.Unmarshal(out, &rep) != nil || !rep.OK {
		t.Fatalf("spare verify of the extracted object against lease %d's receipt: %s", r1.LeaseID, out)
	}

	// The second job reads the first one's outputs by root, as a directory; its own go to the Vault too, and
	// the deploy (as text) prints where.
	second := job("second", "mkdir -p out && cp prev/out/copy.bin out/again.bin && find prev | sort > out/tree.txt",
		"inputs: [{vault: "+v.Root.String()+", path: prev/, unpack: true}]\n"+
			"outputs: {paths: [out/], to: vault}\n")
	stdout, stderr, err = deploy(second)
	if err != nil {
		t.Fatalf("deploy second: %v\n%s\n%s\n%s", err, stdout, stderr, proctest.Tail(devLog, 30))
	}
	if !strings.Contains(stdout, "outputs stored in the Vault: root ") || !strings.Contains(stdout, "the provider's receipt carries this root), 12 months,") {
		t.Fatalf("the deploy does not print the outputs' root:\n%s", stdout)
	}
	m := regexp.MustCompile(`(?m)^lease (\d+) completed \(exit code 0\)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no completed lease in:\n%s", stdout)
	}
	dir2 := filepath.Join(outputs, m[1])
	if b, _ := os.ReadFile(filepath.Join(dir2, "out", "again.bin")); !bytes.Equal(b, data) {
		t.Fatalf("the second job did not read the first one's outputs by root:\n%s", stdout)
	}
	tree, _ := os.ReadFile(filepath.Join(dir2, "out", "tree.txt"))
	if want := "prev\nprev/metrics.json\nprev/out\nprev/out/copy.bin\nprev/out/sub\nprev/out/sub/size.txt\n"; string(tree) != want {
		t.Fatalf("the unpacked directory holds\n%s\nwant\n%s", tree, want)
	}

	// Storing fails (no storage provider can write a shard): the deploy prints its result with the outputs
	// NOT stored and exits 119; the outputs are on disk, and spare store put of their directory finishes the
	// same object (the same root, no second deal).
	var sabotaged []string
	for _, pat := range []string{filepath.Join(home, "*", "vault"), filepath.Join(home, "*", "*", "vault")} {
		dirs, _ := filepath.Glob(pat)
		for _, d := range dirs {
			if err := os.Rename(d, d+".away"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(d, []byte("not a directory"), 0o644); err != nil {
				t.Fatal(err)
			}
			sabotaged = append(sabotaged, d)
		}
	}
	if len(sabotaged) != 4 {
		t.Fatalf("the storage providers' shard directories: %v", sabotaged)
	}
	fourth := job("fourth", "mkdir -p out && echo kept > out/result.txt", "outputs: {paths: [out/], to: vault, permanent: true}\n")
	stdout, stderr, err = deploy(fourth, "-o", "json")
	var ee *exec.ExitError
	var r4 tenant.Result
	if !errors.As(err, &ee) || ee.ExitCode() != exitOutputsNotStored || json.Unmarshal([]byte(stdout), &r4) != nil {
		t.Fatalf("storing failed: exit %v, want %d\n%s\n%s", err, exitOutputsNotStored, stdout, stderr)
	}
	v4 := r4.OutputsVault
	if v4 == nil || v4.Stored || !v4.Permanent || v4.Root.IsZero() || !strings.Contains(v4.NotStored, "not every shard reached its provider") ||
		!strings.Contains(v4.NotStored, "spare store put "+r4.OutputsPath+" stores them with the same root") || !strings.Contains(stderr, "outputs NOT stored in the Vault: ") {
		t.Fatalf("outputs to the Vault %+v\n%s", v4, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(r4.OutputsPath, "out", "result.txt")); string(b) != "kept\n" {
		t.Fatal("the outputs are not on disk")
	}
	for _, d := range sabotaged {
		if err := os.Remove(d); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(d+".away", d); err != nil {
			t.Fatal(err)
		}
	}
	var again tenant.PutResult
	if out := crashRun(t, bin, append([]string{"store", "put", r4.OutputsPath, "--permanent", "-o", "json"}, h...)...); json.Unmarshal(out, &again) != nil ||
		again.Root != v4.Root || again.ObjectID != v4.ObjectID {
		t.Fatalf("spare store put %s after the failed deploy: %s, want root %s object %d", r4.OutputsPath, out, v4.Root, v4.ObjectID)
	}

	// A hostile archive to unpack: the lease is refused, naming the entry; nothing of it lands anywhere.
	var evil bytes.Buffer
	tw := tar.NewWriter(&evil)
	tw.WriteHeader(&tar.Header{Name: "ok.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
	tw.Write([]byte("ok"))
	tw.WriteHeader(&tar.Header{Name: "../../escaped-by-archive", Typeflag: tar.TypeReg, Mode: 0o644, Size: 4})
	tw.Write([]byte("evil"))
	tw.Close()
	evilPath := filepath.Join(tmp, "evil.tar")
	if err := os.WriteFile(evilPath, evil.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var evilPut tenant.PutResult
	if out := crashRun(t, bin, append([]string{"store", "put", evilPath, "-o", "json"}, h...)...); json.Unmarshal(out, &evilPut) != nil {
		t.Fatalf("store put: %s", out)
	}
	third := job("third", "ls -R in", "inputs: [{vault: "+evilPut.Root.String()+", path: in/, unpack: true}]\n")
	stdout, stderr, err = deploy(third)
	if !errors.As(err, &ee) || !strings.Contains(stdout+stderr, `"../../escaped-by-archive"`) || !strings.Contains(stdout+stderr, "not a directory archive this provider can unpack") {
		t.Fatalf("a hostile archive to unpack: %v\n%s\n%s", err, stdout, stderr)
	}
	filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err == nil && (d.Name() == "escaped-by-archive" || d.Name() == "ok.txt") {
			t.Errorf("%s: written by the hostile archive", p)
		}
		return nil
	})
}
