// Package proctest runs `spare` as separate processes, for the tests that need real ones (the fault suite, the
// CLI's process tests): the binary built once per test binary, each process with its output appended to a log
// file and killed when the test ends.
package proctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

type build struct {
	once sync.Once
	bin  string
	err  string
}

var builds sync.Map // the package directory -> *build

// Build builds the spare command in dir (the test's path to cmd/spare: "." from there, "../cmd/spare" from a
// sibling package) once per test binary, into a directory of its own under the system's temporary directory, and
// returns the binary's path. Without a go tool the test is skipped.
func Build(t testing.TB, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build the binary: %v", err)
	}
	v, _ := builds.LoadOrStore(dir, &build{})
	b := v.(*build)
	b.once.Do(func() {
		out, err := os.MkdirTemp("", "spare-proctest-")
		if err != nil {
			b.err = err.Error()
			return
		}
		b.bin = filepath.Join(out, "spare")
		if o, err := exec.Command(goTool, "build", "-o", b.bin, dir).CombinedOutput(); err != nil {
			b.err = "go build: " + err.Error() + "\n" + string(o)
		}
	})
	if b.err != "" {
		t.Fatal(b.err)
	}
	return b.bin
}

// Proc is a process started by Start.
type Proc struct {
	Cmd  *exec.Cmd
	Done chan struct{} // closed once it has exited (Cmd.ProcessState is set then)
	Log  string        // where its stdout and stderr go

	mu      sync.Mutex
	stopped bool // by Pause
}

// Start runs cmd with its stdout and stderr appended to the file at logPath, in a process group of its own (a
// signal to the test's group does not reach it); the test's cleanup kills it.
func Start(t testing.TB, logPath string, cmd *exec.Cmd) *Proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, Done: make(chan struct{}), Log: logPath}
	go func() { _ = cmd.Wait(); close(p.Done) }()
	t.Cleanup(p.Kill)
	return p
}

// Kill sends SIGKILL to the process alone (not its group: a provider's workloads run in sessions of their own and
// outlive it, as they would a crash), continuing it first if Pause stopped it, and waits until it has exited.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	p.mu.Lock()
	if p.stopped {
		_ = p.Cmd.Process.Signal(syscall.SIGCONT)
		p.stopped = false
	}
	p.mu.Unlock()
	<-p.Done
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (p *Proc) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	_ = p.Cmd.Process.Signal(syscall.SIGSTOP)
}

// Paused says whether Pause stopped the process (and Resume has not continued it).
func (p *Proc) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// Resume continues a process Pause stopped.
func (p *Proc) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = false
	_ = p.Cmd.Process.Signal(syscall.SIGCONT)
}

// Tail is the last n lines of the file at path (the error, when it cannot be read).
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
