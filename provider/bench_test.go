package provider_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const benchCmd = `echo first line`

// BenchmarkManifestToFirstLine times the marketplace path on the provider: from the tenant's PUT of the manifest
// (signed request over TLS, hash check, unpacking, process start as the lease's user with its limits) to the
// workload's first line of output in its log. Order, auction and lease happen before the timer starts.
func BenchmarkManifestToFirstLine(b *testing.B) {
	e := startEnv(b)
	m, raw := job(benchCmd, 1)
	hc := e.tenantClient("tenant", nil)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		leaseID := e.leaseOf(e.order("tenant", m, raw, 10*spr))
		path := fmt.Sprintf("/leases/%d/manifest", leaseID)
		e.waitFor(10*time.Second, "the daemon to take the lease", func() bool {
			code, _, _ := e.do(hc, "GET", fmt.Sprintf("/leases/%d/status", leaseID), nil)
			return code == 200
		})
		logPath := filepath.Join(e.leases, e.net.Keys["prov"].Address().String(), fmt.Sprint(leaseID), "log")
		b.StartTimer()
		if code, body, _ := e.do(hc, "PUT", path, raw); code != 200 {
			b.Fatalf("manifest: %d %s", code, body)
		}
		waitFirstLine(b, logPath)
	}
}

// BenchmarkDirectStart is the baseline: the same command started directly with /bin/sh, until its first line.
func BenchmarkDirectStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("/bin/sh", "-c", benchCmd)
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.StartTimer()
	}
}

func waitFirstLine(b *testing.B, path string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 && data[len(data)-1] == '\n' {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("no output line")
		}
		time.Sleep(200 * time.Microsecond)
	}
}
