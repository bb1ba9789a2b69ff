package process

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sparenet/spare/runtime"
)

// BenchmarkStartToFirstLine times Start → the workload's first line in its log file, three ways in the same
// run, interleaved: the sandbox (root: namespaces, mounts, seccomp, cgroups), the same runtime with the
// sandbox off (per-lease uid, cgroups, rlimits), and a plain exec of the same command reading its first line
// from a pipe. It reports the median of each, the sandbox's added milliseconds over the plain exec and over
// the unsandboxed runtime, and the ratio to the plain exec.
func BenchmarkStartToFirstLine(b *testing.B) {
	const cmd = "echo first line"
	sb := New(testConfig())
	off := testConfig()
	off.Sandbox = "off"
	plain := New(off)
	if os.Geteuid() == 0 {
		if ok, why := sb.sandbox(); !ok {
			b.Fatalf("no sandbox: %s", why)
		}
	}
	var tSandbox, tPlain, tExec []time.Duration
	spec := func(i int) runtime.Spec {
		base := b.TempDir()
		_ = os.Chmod(filepath.Dir(base), 0o711)
		dir := filepath.Join(base, "lease")
		work := filepath.Join(dir, "work")
		if err := os.MkdirAll(work, 0o755); err != nil {
			b.Fatal(err)
		}
		return runtime.Spec{LeaseID: uint64(5000 + i%1000), Dir: dir, WorkDir: work, LogPath: filepath.Join(dir, "log"),
			Command: cmd, MemoryBytes: 256 << 20, DiskBytes: 64 << 20, Timeout: time.Minute}
	}
	run := func(r *Runtime, s runtime.Spec) time.Duration {
		t0 := time.Now()
		w, err := r.Start(b.Context(), s)
		if err != nil {
			b.Fatal(err)
		}
		deadline := t0.Add(10 * time.Second)
		for {
			if data, err := os.ReadFile(s.LogPath); err == nil && len(data) > 0 && data[len(data)-1] == '\n' {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("no output line")
			}
			time.Sleep(100 * time.Microsecond)
		}
		d := time.Since(t0)
		if _, err := w.Wait(b.Context()); err != nil {
			b.Fatal(err)
		}
		return d
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s1, s2 := spec(2*i), spec(2*i+1)
		b.StartTimer()
		tSandbox = append(tSandbox, run(sb, s1))
		b.StopTimer()
		tPlain = append(tPlain, run(plain, s2))
		t0 := time.Now()
		c := exec.Command("/bin/sh", "-c", cmd)
		out, err := c.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		tExec = append(tExec, time.Since(t0))
		_ = c.Wait()
		b.StartTimer()
	}
	b.StopTimer()
	med := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2]) / float64(time.Millisecond)
	}
	ms, mp, me := med(tSandbox), med(tPlain), med(tExec)
	b.ReportMetric(ms, "sandbox-ms")
	b.ReportMetric(mp, "nosandbox-ms")
	b.ReportMetric(me, "exec-ms")
	b.ReportMetric(ms-me, "added-ms")
	b.ReportMetric(ms-mp, "sandbox-cost-ms")
	b.ReportMetric(ms/me, "ratio")
}
