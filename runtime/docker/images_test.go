package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/system"

	"github.com/sparenet/spare/runtime"
)

// Tests that need no engine: allowlists, registries, the hardened host configuration, Guarantees from an info,
// and pulls against a fake engine.

func TestImageAllowed(t *testing.T) {
	dg := "sha256:" + strings.Repeat("ab", 32)
	other := "sha256:" + strings.Repeat("cd", 32)
	allow := []string{"python", "ghcr.io/org/img@" + dg, "docker.io/library/ubuntu:24.04", "registry.example.net:5000/team/model"}
	for _, tc := range []struct {
		image string
		ok    bool
	}{
		{"python", true},
		{"python:3.12", true},
		{"docker.io/library/python:3.12-slim", true},
		{"index.docker.io/library/python", true},
		{"python@" + dg, true},
		{"pythonx", false},
		{"someone/python", false},
		{"ghcr.io/org/img@" + dg, true},
		{"ghcr.io/org/img:v1@" + dg, true},
		{"ghcr.io/org/img@" + other, false},
		{"ghcr.io/org/img:latest", false},
		{"ghcr.io/org/img", false},
		{"ubuntu:24.04", true},
		{"ubuntu", false},
		{"ubuntu:22.04", false},
		{"ubuntu@" + dg, false},
		{"registry.example.net:5000/team/model:7", true},
		{"registry.example.net/team/model:7", false},
	} {
		err := ImageAllowed(allow, tc.image)
		if (err == nil) != tc.ok {
			t.Errorf("ImageAllowed(%q) = %v, want allowed %v", tc.image, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrImageNotAllowed) {
			t.Errorf("ImageAllowed(%q): %v does not match ErrImageNotAllowed", tc.image, err)
		}
	}
	for _, bad := range []string{"", " python", "Python", "sha256:" + strings.Repeat("ab", 32), strings.Repeat("ab", 32), "a b"} {
		if err := ImageAllowed([]string{AllowAny}, bad); err == nil || errors.Is(err, ErrImageNotAllowed) {
			t.Errorf("ImageAllowed(*, %q) = %v, want an invalid-reference error", bad, err)
		}
	}
	if err := ImageAllowed(nil, "python"); !errors.Is(err, ErrImageNotAllowed) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty allowlist: %v", err)
	}
	if err := ImageAllowed([]string{AllowAny}, "ghcr.io/anything/at:all"); err != nil {
		t.Errorf("*: %v", err)
	}
	if err := ImageAllowed([]string{"Not Valid", "python"}, "python"); err != nil {
		t.Errorf("a bad entry must not spoil the good ones: %v", err)
	}
}

func TestCheckAllowlist(t *testing.T) {
	if err := CheckAllowlist([]string{"*", "python", "ghcr.io/org/img@sha256:" + strings.Repeat("0", 64), "ubuntu:24.04"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "Python", " python", "ghcr.io/org/img@sha256:12", "a b", "**", strings.Repeat("ab", 32)} {
		err := CheckAllowlist([]string{"python", bad})
		if err == nil || !strings.HasPrefix(err.Error(), "entry 1: ") {
			t.Errorf("CheckAllowlist(%q) = %v", bad, err)
		}
	}
}

func TestRegistries(t *testing.T) {
	if err := CheckRegistries([]string{"docker.io", "ghcr.io", "registry.example.net:5000", "localhost:5000", "index.docker.io"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "https://ghcr.io", "ghcr.io/org", "GHCR.io", "ghcr io", "ghcr.io:x"} {
		if err := CheckRegistries([]string{bad}); err == nil || !strings.HasPrefix(err.Error(), "entry 0: ") {
			t.Errorf("CheckRegistries(%q) = %v", bad, err)
		}
	}
	regs := []string{"index.docker.io", "registry.example.net:5000"}
	for image, ok := range map[string]bool{
		"python": true, "docker.io/library/python": true, "someone/img": true,
		"registry.example.net:5000/x": true, "registry.example.net/x": false, "ghcr.io/org/img": false,
	} {
		err := RegistryAllowed(regs, image)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrRegistryNotAllowed)) {
			t.Errorf("RegistryAllowed(%q) = %v, want allowed %v", image, err, ok)
		}
	}
	if err := RegistryAllowed(nil, "python"); !errors.Is(err, ErrRegistryNotAllowed) {
		t.Errorf("no registries: %v", err)
	}
}

func TestStoredUnder(t *testing.T) {
	ref, _ := parseImage("python:3.12")
	if !storedUnder(ref, []string{"python:3.12"}, nil) || !storedUnder(ref, []string{"docker.io/library/python:3.12"}, nil) {
		t.Fatal("tag not recognised")
	}
	if storedUnder(ref, []string{"python:3.11", "other:3.12"}, nil) {
		t.Fatal("a different tag matched")
	}
	latest, _ := parseImage("abcdef012345")
	if storedUnder(latest, []string{"private/model:latest"}, nil) {
		t.Fatal("an image ID prefix matched an image stored under another name")
	}
	dg := "sha256:" + strings.Repeat("ab", 32)
	d, _ := parseImage("ghcr.io/org/img@" + dg)
	if !storedUnder(d, nil, []string{"ghcr.io/org/img@" + dg}) || storedUnder(d, []string{"ghcr.io/org/img:latest"}, nil) {
		t.Fatal("digest")
	}
}

// TestHostConfigHardened: what every container gets — read-only root, sized private tmpfs and /dev/shm, its own
// PID namespace, the engine's seccomp profile (no seccomp option at all), no-new-privileges, no capabilities,
// memory+swap = memory.
func TestHostConfigHardened(t *testing.T) {
	r := &Runtime{}
	s := runtime.Spec{LeaseID: 3, DiskBytes: 100 << 20, MemoryBytes: 512 << 20}
	hc := r.hostConfig(s, "/leases/3/work")
	if !hc.ReadonlyRootfs || hc.Privileged || !slices.Equal(hc.CapDrop, []string{"ALL"}) || len(hc.CapAdd) != 0 {
		t.Fatalf("ro=%v privileged=%v capdrop=%v capadd=%v", hc.ReadonlyRootfs, hc.Privileged, hc.CapDrop, hc.CapAdd)
	}
	if !hc.PidMode.IsPrivate() || hc.PidMode != "" || hc.UsernsMode != "" || !hc.IpcMode.IsPrivate() {
		t.Fatalf("namespaces: pid %q userns %q ipc %q", hc.PidMode, hc.UsernsMode, hc.IpcMode)
	}
	if !slices.Equal(hc.SecurityOpt, []string{"no-new-privileges:true"}) {
		t.Fatalf("SecurityOpt = %v: only no-new-privileges, and never a seccomp option", hc.SecurityOpt)
	}
	for dir, size := range map[string]string{"/tmp": "size=104857600", "/var/tmp": "size=104857600", "/run": "size=16777216"} {
		o := hc.Tmpfs[dir]
		if !strings.Contains(o, size) || !strings.Contains(o, "nosuid") || !strings.Contains(o, "nodev") {
			t.Errorf("tmpfs %s: %q, want %s, nosuid, nodev", dir, o, size)
		}
	}
	if hc.ShmSize != 256<<20 || hc.Memory != 512<<20 || hc.MemorySwap != 512<<20 {
		t.Fatalf("shm %d memory %d swap %d", hc.ShmSize, hc.Memory, hc.MemorySwap)
	}
	if hc.Mounts[0].BindOptions == nil || hc.Mounts[0].BindOptions.Propagation != "rprivate" {
		t.Fatalf("bind %+v", hc.Mounts[0])
	}
	hc = r.hostConfig(runtime.Spec{LeaseID: 4}, "/w")
	if !strings.Contains(hc.Tmpfs["/tmp"], fmt.Sprintf("size=%d", DefaultTmpBytes)) || hc.ShmSize != DefaultShmBytes {
		t.Fatalf("defaults: tmp %q shm %d", hc.Tmpfs["/tmp"], hc.ShmSize)
	}
}

func TestLeaseUID(t *testing.T) {
	if u, err := LeaseUID(0, 0, 5); err != nil || u != DefaultUIDBase+5 {
		t.Fatal(u, err)
	}
	if u, err := LeaseUID(100_000, 1000, 123_456); err != nil || u != 100_456 {
		t.Fatal(u, err)
	}
	if _, err := LeaseUID(1<<32-1000, 2000, 1); err == nil {
		t.Fatal("overflow accepted")
	}
}

func TestGuaranteesFrom(t *testing.T) {
	full := system.Info{CgroupVersion: "2", CgroupDriver: "systemd", MemoryLimit: true, SwapLimit: true, PidsLimit: true,
		CPUCfsQuota: true, SecurityOptions: []string{"name=apparmor", "name=seccomp,profile=builtin", "name=cgroupns"}}
	byName := func(gs []runtime.Guarantee) map[string]runtime.Guarantee {
		m := map[string]runtime.Guarantee{}
		for _, g := range gs {
			m[g.Name] = g
		}
		return m
	}
	gs := byName(guaranteesFrom(full, true, false))
	if len(gs) != len(guaranteeNames) {
		t.Fatalf("%d guarantees", len(gs))
	}
	for _, name := range guaranteeNames {
		g := gs[name]
		if !g.OK || g.Mechanism == "" || g.Missing != "" || g.Required != (name != runtime.GuaranteeCPU) {
			t.Errorf("%s on a full host: %+v", name, g)
		}
	}
	if !strings.Contains(gs[runtime.GuaranteeMemory].Mechanism, "cgroup v2 (systemd driver)") {
		t.Errorf("memory: %+v", gs[runtime.GuaranteeMemory])
	}

	poor := system.Info{CgroupVersion: "1", CgroupDriver: "cgroupfs", MemoryLimit: true,
		SecurityOptions: []string{"name=seccomp,profile=unconfined", "name=userns"}}
	gs = byName(guaranteesFrom(poor, true, true))
	for name, want := range map[string]string{
		runtime.GuaranteeMemory:  "SwapLimit false",
		runtime.GuaranteePids:    "PidsLimit false",
		runtime.GuaranteeCPU:     "CpuCfsQuota false",
		runtime.GuaranteeUser:    "userns-remap",
		runtime.GuaranteeSeccomp: "unconfined",
	} {
		if g := gs[name]; g.OK || !strings.Contains(g.Missing, want) || g.Mechanism != "" {
			t.Errorf("%s: %+v, want missing %q", name, g, want)
		}
	}
	if g := gs[runtime.GuaranteeFilesystem]; !g.OK || !strings.Contains(g.Mechanism, "unbounded") {
		t.Errorf("filesystem with a writable root: %+v", g)
	}
	gs = byName(guaranteesFrom(system.Info{SecurityOptions: []string{"name=rootless"}}, false, false))
	if g := gs[runtime.GuaranteeUser]; g.OK || !strings.Contains(g.Missing, "rootless") {
		t.Errorf("rootless: %+v", g)
	}
	if g := gs[runtime.GuaranteeSeccomp]; g.OK || !strings.Contains(g.Missing, "no seccomp") {
		t.Errorf("no seccomp: %+v", g)
	}
	if g := byName(guaranteesFrom(full, false, false))[runtime.GuaranteeUser]; g.OK || !strings.Contains(g.Missing, "root") {
		t.Errorf("not root: %+v", g)
	}
	// No engine at all: every guarantee missing, saying why.
	r := &Runtime{Host: "unix:///nonexistent/spare-docker.sock"}
	defer r.Close()
	for _, g := range r.Guarantees(context.Background()) {
		if g.OK || !strings.Contains(g.Missing, "does not answer") {
			t.Errorf("no engine: %+v", g)
		}
	}
}

// fakeEngine answers the image calls of the Engine API: inspect (404 until pulled) and create (a pull, with
// progress). It records the pulls asked for.
type fakeEngine struct {
	mu     sync.Mutex
	pulls  []string
	stored map[string]bool // "name:tag" pulled
	fail   string          // error message the pull stream ends with
}

var apiPath = regexp.MustCompile(`^/v[0-9.]+(/.*)$`)

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := r.URL.Path
	if m := apiPath.FindStringSubmatch(p); m != nil {
		p = m[1]
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/images/") && strings.HasSuffix(p, "/json"):
		name := strings.TrimSuffix(strings.TrimPrefix(p, "/images/"), "/json")
		if !f.stored[name] {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"message":"No such image: %s"}`, name)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Id": "sha256:" + strings.Repeat("12", 32), "RepoTags": []string{name}})
	case r.Method == http.MethodPost && p == "/images/create":
		ref := r.URL.Query().Get("fromImage") + ":" + r.URL.Query().Get("tag")
		f.pulls = append(f.pulls, ref)
		enc := json.NewEncoder(w)
		enc.Encode(map[string]any{"status": "Pulling from " + ref, "id": "1"})
		for i := int64(1); i <= 3; i++ {
			enc.Encode(map[string]any{"status": "Downloading", "id": "layer-a", "progressDetail": map[string]int64{"current": i << 20, "total": 4 << 20}})
			enc.Encode(map[string]any{"status": "Downloading", "id": "layer-b", "progressDetail": map[string]int64{"current": i << 10, "total": 4 << 10}})
		}
		enc.Encode(map[string]any{"status": "Download complete", "id": "layer-a", "progressDetail": map[string]int64{}})
		enc.Encode(map[string]any{"status": "Extracting", "id": "layer-a", "progressDetail": map[string]int64{"current": 1 << 20, "total": 4 << 20}})
		enc.Encode(map[string]any{"status": "Pull complete", "id": "layer-a", "progressDetail": map[string]int64{}})
		if f.fail != "" {
			enc.Encode(map[string]any{"errorDetail": map[string]string{"message": f.fail}, "error": f.fail})
			return
		}
		f.stored[ref] = true
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
	}
}

// TestPullRefusedBeforeNetwork: a missing image is pulled only from a listed registry; otherwise Start's image
// step refuses without asking the engine to pull (no network call by the engine). A listed registry's image is
// pulled with its progress logged. (No registry is reachable from this machine: the engine is a fake here.)
func TestPullRefusedBeforeNetwork(t *testing.T) {
	f := &fakeEngine{stored: map[string]bool{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var logs bytes.Buffer
	r := &Runtime{Host: "tcp://" + srv.Listener.Addr().String(), Images: []string{AllowAny},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	defer r.Close()
	cli, err := r.client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	image := "registry.example.net:5000/team/model:7"

	// No registry configured: never pulls.
	if _, err := r.resolveImage(ctx, cli, image); !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "images load") {
		t.Fatalf("no registries: %v", err)
	}
	// Another registry configured: refused, naming the registry, before any pull.
	r.Registries = []string{"ghcr.io"}
	if _, err := r.resolveImage(ctx, cli, image); !errors.Is(err, ErrRegistryNotAllowed) || !strings.Contains(err.Error(), "registry.example.net:5000") {
		t.Fatalf("registry not listed: %v", err)
	}
	// Not allowed at all: refused before even looking.
	r.Images = []string{"ghcr.io/org/img"}
	if _, err := r.resolveImage(ctx, cli, image); !errors.Is(err, ErrImageNotAllowed) {
		t.Fatalf("image not allowed: %v", err)
	}
	if len(f.pulls) != 0 {
		t.Fatalf("pulls asked for: %v", f.pulls)
	}

	// Listed: pulled, with progress.
	r.Images = []string{"registry.example.net:5000/team/model"}
	r.Registries = []string{"ghcr.io", "registry.example.net:5000"}
	f.fail = "manifest unknown"
	if _, err := r.resolveImage(ctx, cli, image); err == nil || !strings.Contains(err.Error(), "manifest unknown") {
		t.Fatalf("a failed pull: %v", err)
	}
	f.fail = ""
	id, err := r.resolveImage(ctx, cli, image)
	if err != nil || id != "sha256:"+strings.Repeat("12", 32) {
		t.Fatalf("pull: %q %v", id, err)
	}
	if !slices.Equal(f.pulls, []string{image, image}) {
		t.Fatalf("pulls %v", f.pulls)
	}
	want := fmt.Sprintf("bytes=%d of=%d", 4<<20+3<<10, 4<<20+4<<10) // layer-a complete, layer-b at 3 KiB of 4
	if !strings.Contains(logs.String(), "pulled image") || !strings.Contains(logs.String(), want) {
		t.Fatalf("pull log, want %q:\n%s", want, logs.String())
	}
	// Now local: no second pull.
	if _, err := r.resolveImage(ctx, cli, image); err != nil || len(f.pulls) != 2 {
		t.Fatalf("local image pulled again: %v %v", err, f.pulls)
	}
}
