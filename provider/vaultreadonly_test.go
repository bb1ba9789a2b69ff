package provider_test

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/runtime"
	"github.com/sparenet/spare/runtime/process"
	"github.com/sparenet/spare/vault"
	"github.com/sparenet/spare/vault/remote"
)

// TestVaultInputsReadOnly: the lease's Spec makes exactly the Vault inputs read-only (a file, a file in a
// directory named by its root, an unpacked directory; not a URL input), at the paths the fetch wrote them, which
// the runtimes accept as they are on disk; and, in the process runtime's sandbox (as root), a workload that owns
// the work directory cannot change them — write, chmod, truncate, remove, rename over or away, hard-link, or
// rename the directory above one away — while it writes its outputs beside them. (runtime/process and
// runtime/docker play every attack on both runtimes.)
func TestVaultInputsReadOnly(t *testing.T) {
	store := filepath.Join(t.TempDir(), "vault")
	e := startEnvWith(t, func(c *provider.Config) {
		c.Storage = provider.StorageConfig{CapacityGiB: 1, Path: store, PricePerGiBMonth: "0.002"}
	})
	s := &vaultStore{e: e, host: remote.ShardHost{Provider: e.net.Keys["prov"].Address(), HostURI: e.hostURI, Fingerprint: e.fp}, reads: map[uint64]int{}}
	c := vault.Coding{K: 2, M: 2, ShardSize: 4 * vault.GroupSize}
	data := randomData(61, 100_000)
	file := s.put(t, data, c)
	arch := archiveOf(t, map[string]string{"out/model.bin": "model", "metrics.json": "{}\n"})
	dir := s.put(t, arch, c)
	ins := []manifest.Input{
		{Vault: file.Root, Path: "weights/base.bin"},
		{Vault: file.Root, Path: "copies/"},
		{Vault: dir.Root, Path: "prev/", Unpack: true},
	}
	m := &manifest.Manifest{Inputs: append(ins, manifest.Input{URL: "https://example.com/x.csv", Path: "data/x.csv"})}
	paths := provider.VaultInputPaths(m)
	want := []string{"weights/base.bin", "copies/" + file.Root.String(), "prev"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("read-only paths %q, want %q", paths, want)
	}
	if got := provider.VaultInputPaths(&manifest.Manifest{Inputs: m.Inputs[3:]}); got != nil {
		t.Fatalf("a URL input made read-only: %q", got)
	}

	// Fetched as the daemon fetches them, into a lease's directory.
	lease := filepath.Join(leasesDir(t), "lease")
	work := filepath.Join(lease, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	src := s.source(s.candidate(1, file), s.candidate(2, dir))
	opt := provider.InputOptions{Timeout: time.Minute, MinProgressBytes: 1, MinProgressWindow: 10 * time.Second, Vault: src}
	if err := provider.FetchInputsIn(context.Background(), work, &manifest.Manifest{Inputs: ins}, 1<<20, opt); err != nil {
		t.Fatal(err)
	}
	binds, err := runtime.ReadOnlyMounts(work, paths)
	if err != nil {
		t.Fatalf("the runtimes refuse the inputs as fetched: %v", err)
	}
	t.Logf("mounts %+v", binds)

	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root")
	}
	r := process.New(testProcessConfig)
	for _, g := range r.Guarantees(context.Background()) {
		if g.Name == runtime.GuaranteeFilesystem && !g.OK {
			t.Skipf("no sandbox here: %s", g.Missing)
		}
	}
	f := "weights/base.bin"
	in := "prev/out/model.bin"
	run := strings.Join([]string{
		"chmod 666 " + f, "echo tampered > " + f, "truncate -s 0 " + f, "rm -f " + f, "echo fake > fake && mv -f fake " + f,
		"mv " + f + " away", "ln " + f + " link", "mv weights weights.moved && mkdir weights && echo fake > " + f,
		"echo fake > " + in, "rm -rf prev", "mv prev prev.moved", "touch prev/new",
		"mkdir -p out && cp " + f + " out/copy.bin && echo done > out/done.txt",
	}, " 2>/dev/null; ")
	spec := runtime.Spec{LeaseID: 1 + uint64(rand.Intn(90_000)), Dir: lease, WorkDir: work, LogPath: filepath.Join(lease, "log"),
		Command: run, Timeout: time.Minute, ReadOnlyPaths: paths}
	w, err := r.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := w.Wait(ctx)
	log, _ := os.ReadFile(spec.LogPath)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%+v %v\n%s", res, err, log)
	}
	for p, want := range map[string][]byte{f: data, "copies/" + file.Root.String(): data, in: []byte("model"),
		"prev/metrics.json": []byte("{}\n"), "out/copy.bin": data, "out/done.txt": []byte("done\n")} {
		if b, err := os.ReadFile(filepath.Join(work, filepath.FromSlash(p))); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s after the run: %.40q %v, want %.40q\n%s", p, b, err, want, log)
		}
	}
	if fi, err := os.Stat(filepath.Join(work, f)); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("%s after the run: %v %v", f, fi.Mode(), err)
	}
	for _, p := range []string{"prev/new", "weights.moved", "prev.moved", "link"} {
		if _, err := os.Lstat(filepath.Join(work, p)); err == nil {
			t.Errorf("%s exists after the run\n%s", p, log)
		}
	}
}
