package provider_test

import (
	"lukechampine.com/blake3"

	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/vault"
)

// The hostile-tenant suite, provider side: each test is an attack a tenant's job can make through the real daemon
// on a real chain, and asserts that it is refused or contained. (The runtimes' own attack tests live in
// runtime/process and runtime/docker; the tenant API's in api_hostile_test.go.)

// cpuJob is a CPU-only job (no GPU) running run, its outputs under out/.
func cpuJob(run string) *manifest.Manifest {
	return &manifest.Manifest{Version: manifest.Version, Run: run, Outputs: []string{"out/"},
		Resources: tx.Resources{CPUMilli: 200, MemoryMiB: 128}, DurationSec: 60}
}

// status reads a lease's status as its tenant.
func (e *env) status(tenant string, leaseID uint64) provider.Status {
	e.t.Helper()
	code, body, _ := e.do(e.tenantClient(tenant, nil), "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
	if code != 200 {
		e.t.Fatalf("status: %d %s", code, body)
	}
	var st provider.Status
	if err := json.Unmarshal(body, &st); err != nil {
		e.t.Fatal(err)
	}
	return st
}

// runJob orders m, sends its manifest and waits for the lease to end; it returns the lease id.
func (e *env) runJob(tenant string, m *manifest.Manifest) uint64 {
	e.t.Helper()
	raw, err := m.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	leaseID := e.leaseOf(e.order(tenant, m, raw, 10*spr))
	e.manifestOK(tenant, leaseID, raw)
	e.waitLeaseEnded(leaseID)
	e.waitFor(30*time.Second, "the receipt", func() bool { return e.status(tenant, leaseID).Receipt != nil })
	return leaseID
}

// outputsTar fetches a lease's outputs as its tenant: path -> content.
func (e *env) outputsTar(tenant string, leaseID uint64) map[string][]byte {
	e.t.Helper()
	code, body, _ := e.do(e.tenantClient(tenant, nil), "GET", fmt.Sprintf("/leases/%d/outputs", leaseID), nil)
	if code != 200 {
		e.t.Fatalf("outputs: %d %s", code, body)
	}
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(body))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			e.t.Fatalf("outputs tar: %v", err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

// hostSecret is a file of the host outside any lease (world-readable: only the daemon's way of opening it may
// keep it from a job), and its content.
func hostSecret(t *testing.T) (dir string, content []byte) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "spare-secret-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	content = []byte("provider-private-key-material\n")
	if err := os.WriteFile(filepath.Join(dir, "key"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, content
}

// TestHostileOutputsThroughLinks: a job links / (and a secret directory of the host) into its work directory
// and names paths through the links as outputs — the provider's files, /etc/shadow, the daemon's environment.
// Nothing but the job's own file is hashed or served; the receipt says what was left out.
func TestHostileOutputsThroughLinks(t *testing.T) {
	secretDir, secret := hostSecret(t)
	e := startEnv(t)
	m := cpuJob(fmt.Sprintf(`ln -s / r; mkdir -p out; ln -s %s out/secrets; ln -s /etc/passwd out/passwd; echo mine > out/fine.txt`, secretDir))
	m.Outputs = []string{"r" + secretDir + "/", "r/etc/shadow", "r/etc/passwd", "r/proc/self/environ", "out/"}
	m.OutputsVault = true // the Vault root is read through the same refusals
	leaseID := e.runJob("tenant", m)

	st := e.status("tenant", leaseID)
	if len(st.OutputFiles) != 1 || st.OutputFiles[0].Path != "out/fine.txt" {
		t.Fatalf("outputs hashed: %+v (only out/fine.txt is the job's own)", st.OutputFiles)
	}
	if len(st.OutputsLeftOut) == 0 {
		t.Fatalf("the status does not say which outputs were left out")
	}
	shadow, _ := os.ReadFile("/etc/shadow")
	passwd, _ := os.ReadFile("/etc/passwd")
	for name, b := range e.outputsTar("tenant", leaseID) {
		if name != "out/fine.txt" || bytes.Equal(b, secret) || (len(shadow) > 0 && bytes.Equal(b, shadow)) || bytes.Equal(b, passwd) {
			t.Fatalf("served %s (%d bytes): a file from outside the work directory", name, len(b))
		}
	}
	// The receipt's Vault root is that of the job's own file alone: the object `spare store put` makes of it.
	only := filepath.Join(t.TempDir(), "outputs")
	if err := os.MkdirAll(filepath.Join(only, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(only, "out", "fine.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var a bytes.Buffer
	if err := vault.Archive(&a, only, vault.DefaultArchiveLimits); err != nil {
		t.Fatal(err)
	}
	if want := tx.Hash(blake3.Sum256(a.Bytes())); st.Receipt == nil || st.Receipt.VaultRoot != want {
		t.Fatalf("the receipt's Vault root is not that of out/fine.txt alone (%s): %+v", want, st.Receipt)
	}
}

// TestHostileSlowInputHoldsUpNoOne: one tenant's input server never answers. While that manifest is being
// accepted, another tenant's lease is bid on, started, followed and completed as usual; and when the slow
// lease is closed on the ledger, its manifest request ends at once.
func TestHostileSlowInputHoldsUpNoOne(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	e := startEnvWith(t, func(c *provider.Config) { c.Inputs.AllowPrivate = true }) // the input server is on loopback

	m := cpuJob("cat data/x")
	m.Inputs = []manifest.Input{{URL: slow.URL + "/x", SHA256: sha256.Sum256([]byte("x")), Path: "data/x"}}
	raw, _ := m.Encode()
	stuck := e.leaseOf(e.order("tenant", m, raw, 10*spr))
	e.waitFor(10*time.Second, "the daemon to take the lease", func() bool {
		code, _, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/status", stuck), nil)
		return code == 200
	})
	putDone := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/leases/%d/manifest", e.hostURI, stuck), bytes.NewReader(raw))
		resp, err := e.tenantClient("tenant", nil).Do(req)
		if err != nil {
			putDone <- -1
			return
		}
		resp.Body.Close()
		putDone <- resp.StatusCode
	}()
	time.Sleep(300 * time.Millisecond) // the slow manifest is being accepted

	// Another tenant's job goes through from bid to receipt meanwhile.
	other := cpuJob("echo other-ran; mkdir -p out; echo x > out/x")
	ol := e.runJob("other", other)
	_, logs, _ := e.do(e.tenantClient("other", nil), "GET", fmt.Sprintf("/leases/%d/logs", ol), nil)
	if !strings.Contains(string(logs), "other-ran") {
		t.Fatalf("the other lease's log: %q", logs)
	}
	select {
	case code := <-putDone:
		t.Fatalf("the slow manifest request ended early (%d): the test did not hold it", code)
	default:
	}

	// The tenant gives up: the lease is closed on the ledger, and the daemon stops fetching.
	if _, err := e.c.NewSender(e.net.Keys["tenant"]).Send(context.Background(), &tx.CloseLease{ID: stuck, Reason: "input too slow"}); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-putDone:
		if code != http.StatusConflict {
			t.Fatalf("the closed lease's manifest request answered %d, want 409", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the closed lease's input fetch went on")
	}
}

// TestHostileDiskAndLogs: a job that writes more than its disk is stopped with the reason "disk limit"; a
// sparse 16 GiB output (no disk used) is left out of the receipt at once instead of being hashed; and a log
// larger than max_log_bytes is served only up to it.
func TestHostileDiskAndLogs(t *testing.T) {
	e := startEnvWith(t, func(c *provider.Config) {
		c.Limits.MaxLogBytes = 64 << 10
		c.Limits.DiskCheckEvery = provider.Duration{Duration: 200 * time.Millisecond}
	})
	t.Run("disk", func(t *testing.T) {
		// 4 files of 24 MiB each: none is over the 64 MiB disk alone, together they are.
		m := cpuJob(`for i in 1 2 3 4; do head -c 25165824 /dev/zero > f$i || exit 1; done; sleep 60`)
		leaseID := e.runJob("tenant", m)
		st := e.status("tenant", leaseID)
		if !strings.Contains(st.Reason, "disk limit") {
			t.Fatalf("reason %q, want the disk limit", st.Reason)
		}
	})
	t.Run("sparse output", func(t *testing.T) {
		// A 16 GiB file that uses no disk. The process runtime's RLIMIT_FSIZE refuses it at once; where a runtime
		// lets it be made, the daemon must leave it out without reading 16 GiB of zeros.
		m := cpuJob(`mkdir -p out; dd if=/dev/null of=out/big bs=1 seek=17179869184 2>/dev/null; echo small > out/small`)
		leaseID := e.runJob("tenant", m)
		st := e.status("tenant", leaseID)
		var small bool
		for _, f := range st.OutputFiles {
			if f.Size > 64<<20 {
				t.Fatalf("output %s of %d bytes hashed on a 64 MiB lease", f.Path, f.Size)
			}
			small = small || f.Path == "out/small"
		}
		if !small {
			t.Fatalf("outputs %+v: the job's small file is missing", st.OutputFiles)
		}
	})
	t.Run("log", func(t *testing.T) {
		m := cpuJob(`head -c 1048576 /dev/zero | tr '\0' 'a'`)
		leaseID := e.runJob("tenant", m)
		_, logs, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/logs", leaseID), nil)
		if len(logs) > 64<<10+200 || !strings.Contains(string(logs), "log truncated at 65536 bytes") {
			t.Fatalf("served %d bytes of log (limit 65536), ending %q", len(logs), logs[max(0, len(logs)-100):])
		}
	})
}

// TestHostilePortGrab: a job binds a port of the provider's service range that was not given to it (to steal
// another lease's port, or to take them all): the bind is refused (the process runtime's bind filter), or, on a
// host without cgroup BPF, the lease is stopped with the reason "port limit". A service binding the port it was
// given is left alone.
func TestHostilePortGrab(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs python3 to bind a port from a job")
	}
	e := startEnvWith(t, func(c *provider.Config) {
		c.ServicePorts = "31900-31949"
		c.Limits.DiskCheckEvery = provider.Duration{Duration: 200 * time.Millisecond}
	})
	bind := `import os, socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("bound", sys.argv[1], flush=True); time.sleep(8)`
	t.Run("service on its own port", func(t *testing.T) {
		m := cpuJob(fmt.Sprintf(`python3 -c '%s' "$PORT"`, bind))
		m.Ports = []uint16{8080}
		leaseID := e.runJob("tenant", m)
		if st := e.status("tenant", leaseID); strings.Contains(st.Reason, "port limit") || st.Result == nil || st.Result.ExitCode != 0 {
			t.Fatalf("a service on its given port was stopped: %q %+v", st.Reason, st.Result)
		}
	})
	t.Run("port of the range not given", func(t *testing.T) {
		m := cpuJob(fmt.Sprintf(`python3 -c '%s' 31949`, bind))
		leaseID := e.runJob("tenant", m)
		_, logs, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/logs", leaseID), nil)
		// Where the host has cgroup v2 and cgroup BPF (CI's), the bind itself is refused; elsewhere the lease
		// is stopped at the next check.
		st := e.status("tenant", leaseID)
		refused := strings.Contains(string(logs), "Operation not permitted") && !strings.Contains(string(logs), "bound")
		if !refused && !strings.Contains(st.Reason, "port limit") {
			t.Fatalf("reason %q (log %q): the job held a service port it was not given", st.Reason, logs)
		}
	})
}

// TestFinishedLeaseDataRemoved: a finished lease's directory (its outputs, log and work files) is kept for
// limits.keep_lease_data, then removed; the tenant API then says the outputs were removed and why.
func TestFinishedLeaseDataRemoved(t *testing.T) {
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	e := startEnvOpts(t, envOpts{now: clock, mutate: func(c *provider.Config) {
		c.Limits.KeepLeaseData = provider.Duration{Duration: time.Hour}
	}})
	leaseID := e.runJob("tenant", cpuJob("mkdir -p out; echo kept > out/a"))
	dir := filepath.Join(e.leases, e.net.Keys["prov"].Address().String(), fmt.Sprint(leaseID))
	if len(e.outputsTar("tenant", leaseID)) != 1 {
		t.Fatal("outputs not served while kept")
	}
	time.Sleep(1500 * time.Millisecond) // housekeeping passes: within the hour, nothing goes
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the lease's directory went before keep_lease_data: %v", err)
	}
	skew.Store(int64(61 * time.Minute))
	e.waitFor(30*time.Second, "the finished lease's directory to be removed", func() bool {
		_, err := os.Stat(dir)
		return os.IsNotExist(err)
	})
	code, body, _ := e.do(e.tenantClient("tenant", nil), "GET", fmt.Sprintf("/leases/%d/outputs", leaseID), nil)
	if code != http.StatusConflict || !strings.Contains(string(body), "removed") {
		t.Fatalf("outputs after removal: %d %s", code, body)
	}
}
