package tenant

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/merkle"
	"github.com/sparenet/spare/vault"
)

// vaultKey is a tenant key for tests that send nothing.
type vaultKey struct{ priv ed25519.PrivateKey }

func (k vaultKey) Address() tx.Address            { return tx.AddressOf(k.PubKey()) }
func (k vaultKey) PubKey() ed25519.PublicKey      { return k.priv.Public().(ed25519.PublicKey) }
func (k vaultKey) Sign(m []byte) []byte           { return ed25519.Sign(k.priv, m) }
func (k vaultKey) PrivateKey() ed25519.PrivateKey { return k.priv }

// noSends is a sender that fails the test on any transaction: what is refused costs nothing.
type noSends struct {
	t  *testing.T
	mu sync.Mutex
	n  int
}

func (s *noSends) Send(context.Context, ...tx.Msg) (*client.Result, error) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	s.t.Error("a transaction was sent")
	return nil, errors.New("no sends here")
}

// outputsDir writes a lease's outputs as a deploy downloads them (regular files, 0644) under dir/<lease>, and
// returns that directory and the Merkle root a receipt for them carries.
func outputsDir(t *testing.T, files map[string][]byte) (string, tx.Hash) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "outputs", "7")
	var list []merkle.File
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := merkle.HashFile(full, p)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, f)
	}
	root, err := merkle.Root(list)
	if err != nil {
		t.Fatal(err)
	}
	return dir, root
}

func testOutputs() map[string][]byte {
	model := make([]byte, 100_000)
	rand.New(rand.NewSource(5)).Read(model)
	return map[string][]byte{"out/model.bin": model, "out/sub/notes.txt": []byte("epoch 3\n"), "metrics.json": []byte("{}\n")}
}

// The object stored for a lease's outputs is the deterministic archive of their directory, and its files hash to
// the receipt's output root: whoever fetches it, reads it (ArchivedFiles) or extracts it and hashes the files
// finds the receipt's root; archiving the same outputs again makes the same bytes, so the same Vault root.
func TestVaultOutputsArchiveIsTheReceipts(t *testing.T) {
	dir, root := outputsDir(t, testOutputs())
	var a, b bytes.Buffer
	if err := vault.Archive(&a, dir, vault.DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	files, err := ArchivedFiles(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := merkle.Root(files); got != root || len(files) != 3 {
		t.Fatalf("the archive's %d files hash to %s, the receipt's root is %s", len(files), got, root)
	}
	again, _ := outputsDir(t, testOutputs()) // the same outputs, downloaded elsewhere
	if err := vault.Archive(&b, again, vault.DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same outputs archived twice differ: their Vault roots would")
	}
	x := filepath.Join(t.TempDir(), "x")
	if err := vault.Extract(bytes.NewReader(a.Bytes()), x, vault.DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	var rehashed []merkle.File
	for _, f := range files {
		h, err := merkle.HashFile(filepath.Join(x, filepath.FromSlash(f.Path)), f.Path)
		if err != nil {
			t.Fatal(err)
		}
		rehashed = append(rehashed, h)
	}
	if got, _ := merkle.Root(rehashed); got != root {
		t.Fatalf("extracted, the files hash to %s, not the receipt's %s", got, root)
	}
}

// StoreOutputs stores nothing unless the directory holds exactly what the receipt covers: a file added, changed
// or removed since the download, an empty directory, a link are refused before a transaction, and the archive
// it wrote is removed. A directory that matches gets as far as the put (here: no node to send it to).
func TestVaultOutputsStoreOnlyWhatTheReceiptCovers(t *testing.T) {
	send := &noSends{t: t}
	tn := NewWith(nil, send, vaultKey{ed25519.NewKeyFromSeed(make([]byte, 32))}, nil)
	for _, c := range []struct {
		name  string
		spoil func(dir string) error
		want  string
	}{
		{"a file added", func(dir string) error { return os.WriteFile(filepath.Join(dir, "out", "extra"), []byte("x"), 0o644) },
			"does not hold exactly the outputs the receipt covers: its 4 file(s) hash to"},
		{"a file changed", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "metrics.json"), []byte("{\"loss\": 0}\n"), 0o644)
		}, "does not hold exactly the outputs the receipt covers: its 3 file(s)"},
		{"a file removed", func(dir string) error { return os.Remove(filepath.Join(dir, "metrics.json")) },
			"does not hold exactly the outputs the receipt covers: its 2 file(s)"},
		{"an empty directory", func(dir string) error { return os.Mkdir(filepath.Join(dir, "out", "empty"), 0o755) },
			"out/empty: a directory that holds no file"},
		{"a symbolic link", func(dir string) error { return os.Symlink("/etc/passwd", filepath.Join(dir, "out", "passwd")) },
			"out/passwd: not a regular file: a receipt covers regular files only"},
		{"a named pipe", func(dir string) error { return unix.Mkfifo(filepath.Join(dir, "out", "fifo"), 0o644) },
			"out/fifo: not a regular file"},
		{"nothing changed", func(string) error { return nil }, "storing needs a node client"},
		// the receipt covers contents, not modes: an executable bit set since the download changes nothing
		{"a file made executable", func(dir string) error { return os.Chmod(filepath.Join(dir, "metrics.json"), 0o755) },
			"storing needs a node client"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, root := outputsDir(t, testOutputs())
			rc := &tx.Receipt{LeaseID: 7, OutputRoot: root, VaultRoot: archiveRoot(t, dir)}
			if err := c.spoil(dir); err != nil {
				t.Fatal(err)
			}
			_, err := tn.StoreOutputs(context.Background(), dir, rc, PutOptions{Months: 12})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want %q", err, c.want)
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".spare-vault-outputs-*"))
			if len(left) > 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
	if send.n != 0 {
		t.Fatalf("%d transactions sent", send.n)
	}
}

// archiveRoot is the Vault root of dir as `spare store put dir` stores it (vault.Archive, then BLAKE3): for
// outputs as a deploy downloads them (no executable bit), the root their receipt must carry.
func archiveRoot(t *testing.T, dir string) tx.Hash {
	t.Helper()
	var a bytes.Buffer
	if err := vault.Archive(&a, dir, vault.DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	var root tx.Hash
	h := blake3.New(32, nil)
	h.Write(a.Bytes())
	h.Sum(root[:0])
	return root
}

// A provider that signs a wrong Vault root for outputs it covers correctly (a bug, or a root chosen to point
// anyone who trusts the receipt at another object) is caught before anything is sent or escrowed: the tenant
// archives the verified files itself and refuses a root that differs, naming the provider's fault. A receipt
// without a Vault root (a provider that did not compute one) still stores the verified outputs.
func TestVaultOutputsRefuseAWrongVaultRoot(t *testing.T) {
	send := &noSends{t: t}
	tn := NewWith(nil, send, vaultKey{ed25519.NewKeyFromSeed(make([]byte, 32))}, nil)
	dir, root := outputsDir(t, testOutputs())
	other, _ := outputsDir(t, map[string][]byte{"out/model.bin": []byte("another model")})
	for _, c := range []struct {
		name  string
		vault tx.Hash
		want  string
	}{
		{"another object's root", archiveRoot(t, other), "the provider signed a wrong Vault root (report it), and nothing was stored"},
		{"a made-up root", tx.Hash{1, 2, 3}, "the provider signed a wrong Vault root"},
		{"no Vault root", tx.Hash{}, "storing needs a node client"},
		{"the right root", archiveRoot(t, dir), "storing needs a node client"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tn.StoreOutputs(context.Background(), dir, &tx.Receipt{LeaseID: 7, OutputRoot: root, VaultRoot: c.vault}, PutOptions{Months: 12})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want %q", err, c.want)
			}
			if c.want != "storing needs a node client" && !errors.Is(err, ErrRootMismatch) {
				t.Fatalf("%v: not ErrRootMismatch", err)
			}
		})
	}
	if send.n != 0 {
		t.Fatalf("%d transactions sent", send.n)
	}
}

// ArchivedFiles reads an archive anyone may have stored: links, devices, names that climb out and directories
// that hold nothing are refused, naming the entry, before any file is listed as covered.
func TestVaultOutputsArchivedFilesRefusesHostileArchives(t *testing.T) {
	arch := func(hs ...tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			body := "x"
			if h.Typeflag == 0 {
				h.Typeflag, h.Size = tar.TypeReg, 1
			}
			h.Mode = 0o644
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte(body))
			}
		}
		tw.Close()
		return b.Bytes()
	}
	for _, c := range []struct {
		archive []byte
		want    string
	}{
		{arch(tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/"}), `"link": a symbolic link`},
		{arch(tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}), `"hl": a hard link`},
		{arch(tar.Header{Name: "dev", Typeflag: tar.TypeChar}), `"dev": a device`},
		{arch(tar.Header{Name: "../x"}), `"../x": not a clean relative path`},
		{arch(tar.Header{Name: "/etc/x"}), `"/etc/x": not a clean relative path`},
		{arch(tar.Header{Name: "a/./b"}), `"a/./b": not a clean relative path`},
		{arch(tar.Header{Name: "d/", Typeflag: tar.TypeDir}, tar.Header{Name: "f"}), `"d/": a directory that holds no file`},
		{[]byte("not a tar at all, long enough to fill nothing"), "unexpected EOF"},
	} {
		if _, err := ArchivedFiles(bytes.NewReader(c.archive)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
	}
}

// A deploy stores the outputs only when the job succeeded and wrote some, says why not otherwise (with the
// command that stores them), and when storing fails returns ErrVaultOutputs naming the directory that holds them.
func TestVaultOutputsOnlyWhenTheJobSucceeded(t *testing.T) {
	send := &noSends{t: t}
	tn := NewWith(nil, send, vaultKey{ed25519.NewKeyFromSeed(make([]byte, 32))}, nil)
	dir, root := outputsDir(t, testOutputs())
	code := func(c int64) *int64 { return &c }
	for _, c := range []struct {
		name   string
		res    Result
		err    bool
		reason string
	}{
		{"exited 3", Result{Outcome: OutcomeExited, ExitCode: code(3), Receipt: &tx.Receipt{OutputRoot: root}, OutputsPath: dir, Outputs: []string{"metrics.json"}},
			false, "did not succeed (exited with code 3): its outputs were not stored in the Vault; they are in " + dir + ", and spare store put " + dir + " stores them"},
		{"its duration reached", Result{Outcome: OutcomeDurationReached, ExitCode: code(137), Receipt: &tx.Receipt{OutputRoot: root}, OutputsPath: dir, Outputs: []string{"metrics.json"}},
			false, "did not succeed (duration_reached)"},
		{"no receipt", Result{Outcome: OutcomeClosedByProvider}, false, "without a receipt"},
		{"no output files", Result{Outcome: OutcomeExited, ExitCode: code(0), Receipt: &tx.Receipt{OutputRoot: root}, OutputsPath: dir}, false, "wrote no output files"},
		{"succeeded, the put fails", Result{Outcome: OutcomeExited, ExitCode: code(0), Receipt: &tx.Receipt{OutputRoot: root}, OutputsPath: dir, Outputs: []string{"a", "b", "c"}},
			true, "storing needs a node client"},
		{"succeeded, the directory is not the receipt's", Result{Outcome: OutcomeExited, ExitCode: code(0), Receipt: &tx.Receipt{OutputRoot: tx.Hash{1}}, OutputsPath: dir, Outputs: []string{"a", "b", "c"}},
			true, "does not hold exactly the outputs the receipt covers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := c.res
			var events []string
			d := tn.newDeployment(Job{VaultOutputs: &VaultOutputs{Months: 12}}, Options{}, &res)
			d.emit = func(stage, format string, args ...any) time.Duration {
				events = append(events, stage+": "+fmt.Sprintf(format, args...))
				return 0
			}
			err := d.storeOutputs(context.Background())
			v := res.OutputsVault
			if v == nil || v.Stored || !strings.Contains(v.NotStored, c.reason) || v.Months != 12 {
				t.Fatalf("%+v, want not stored: %q", v, c.reason)
			}
			if !c.err {
				if err != nil {
					t.Fatal(err)
				}
				if len(events) != 1 || !strings.Contains(events[0], c.reason) {
					t.Fatalf("said %q", events)
				}
				return
			}
			if !errors.Is(err, ErrVaultOutputs) || !strings.Contains(err.Error(), "they are in "+dir+", verified: spare store put "+dir+" stores them with the same root") {
				t.Fatalf("%v", err)
			}
			if last := events[len(events)-1]; !strings.HasPrefix(last, "vault: outputs NOT stored in the Vault: ") {
				t.Fatalf("said %q", events)
			}
		})
	}
	if send.n != 0 {
		t.Fatalf("%d transactions sent", send.n)
	}
}

// A deploy that could not store its outputs (a cluster, a detached deploy, a service) is refused before its
// order is sent.
func TestVaultOutputsRefusedUpFront(t *testing.T) {
	send := &noSends{t: t}
	tn := NewWith(nil, send, vaultKey{ed25519.NewKeyFromSeed(make([]byte, 32))}, nil)
	order := tx.CreateOrder{Resources: tx.Resources{CPUMilli: 1000, MemoryMiB: 64}, MaxPricePerHour: 1, Deposit: 1, DurationSec: 60}
	vo := &VaultOutputs{Months: 12}
	svc, err := (&manifest.Manifest{Version: manifest.Version, Run: "x", Ports: []uint16{8000}, Resources: order.Resources, DurationSec: 60}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tn.Deploy(context.Background(), Job{Order: order, VaultOutputs: vo}, Options{Detach: true}); err == nil || !strings.Contains(err.Error(), "--detach returns while the job runs") {
		t.Fatalf("detached: %v", err)
	}
	for _, c := range []struct {
		job  Job
		want string
	}{
		{Job{Order: order, VaultOutputs: vo, Cluster: &Cluster{Nodes: 2}}, "a cluster has one set of outputs a member"},
		{Job{Order: order, VaultOutputs: vo, Manifest: svc}, "a service's deploy returns while it runs"},
	} {
		d := tn.newDeployment(c.job, Options{}, &Result{})
		if err := d.checkVaultOutputs(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want %q", err, c.want)
		}
	}
	if send.n != 0 {
		t.Fatalf("%d transactions sent", send.n)
	}
}
