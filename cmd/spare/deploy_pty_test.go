package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/sparenet/spare/internal/proctest"
)

// ptyProc is a command running on a pseudo-terminal, as a person would run it: stdin, stdout and stderr are the
// terminal, and Ctrl-C is the byte 0x03 typed into it.
type ptyProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan error
}

func startPTY(t *testing.T, bin string, args ...string) *ptyProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyProc{t: t, cmd: cmd, tty: f, done: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		f.Close()
	})
	return p
}

func (p *ptyProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the terminal shows a match of re, and returns the match's groups.
func (p *ptyProc) waitFor(re string, within time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(p.output()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("the terminal never showed %q; it shows:\n%s", re, p.output())
	return nil
}

func (p *ptyProc) typeIn(s string) {
	if _, err := p.tty.WriteString(s); err != nil {
		p.t.Fatal(err)
	}
}

// exit waits for the command to end and returns its exit status.
func (p *ptyProc) exit(within time.Duration) int {
	p.t.Helper()
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatal(err)
		}
		return 0
	case <-time.After(within):
		p.t.Fatalf("still running after %s:\n%s", within, p.output())
		return -1
	}
}

// TestDeployCtrlCOnATerminal drives `spare deploy` on a pseudo-terminal against a `spare dev` process, as a person
// would: it shows the fee and waits for "y"; Ctrl-C during the auction cancels the order and reports the refund;
// Ctrl-C while the job runs leaves the lease running and names it with the commands to follow or close it; a
// second Ctrl-C within 2 s asks, then closes it. Each exits 130. A job that exits 3 makes deploy exit 3.
func TestDeployCtrlCOnATerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs spare dev")
	}
	tmp := t.TempDir()
	bin := proctest.Build(t, ".")
	home := filepath.Join(tmp, "dev")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	explorer := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(tmp, "dev.log"))
	if err != nil {
		t.Fatal(err)
	}
	dev := exec.Command(bin, "dev", "--home", home, "--explorer", explorer)
	dev.Stdout, dev.Stderr = logf, logf
	dev.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = dev.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = dev.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-dev.Process.Pid, syscall.SIGKILL)
		}
		logf.Close()
	})
	deadline := time.Now().Add(120 * time.Second)
	for exec.Command(bin, "balance", "--home", home, "-o", "json").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("spare dev not ready:\n%s", proctest.Tail(logf.Name(), 20))
		}
		time.Sleep(500 * time.Millisecond)
	}
	job := func(name, run, price string) string {
		path := filepath.Join(tmp, name+".yaml")
		y := fmt.Sprintf("name: %s\nrun: %s\nresources: {cpu: 0.2, memory: 64MiB, disk: 16MiB}\nduration: 2m\nprice: {max: %s}\n", name, run, price)
		if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	query := func(what string, id string) map[string]any {
		out, err := exec.Command(bin, "query", what, id, "--home", home, "-o", "json").Output()
		var v map[string]any
		if err != nil || json.Unmarshal(out, &v) != nil {
			t.Fatalf("query %s %s: %v %s", what, id, err, out)
		}
		return v
	}
	deploy := func(file string, extra ...string) *ptyProc {
		p := startPTY(t, bin, append([]string{"deploy", file, "--home", home, "--outputs", filepath.Join(tmp, "outputs")}, extra...)...)
		p.waitFor(`create_order: fee [0-9.]+ SPR for a gas limit of \d+ .*Send\? \[y/N\] `, 30*time.Second)
		p.typeIn("y\r")
		return p
	}

	t.Run("Ctrl-C at the fee prompt", func(t *testing.T) {
		p := startPTY(t, bin, "deploy", job("prompt", "echo never", "0.1"), "--home", home)
		p.waitFor(`Send\? \[y/N\] `, 30*time.Second)
		p.typeIn("\x03")
		p.waitFor(`interrupted at the fee prompt: nothing was sent`, 10*time.Second)
		if rc := p.exit(10 * time.Second); rc != 130 {
			t.Fatalf("exit %d:\n%s", rc, p.output())
		}
	})

	t.Run("exit code", func(t *testing.T) {
		p := deploy(job("fails", "echo bye; exit 3", "0.1"))
		if rc := p.exit(90 * time.Second); rc != 3 {
			t.Fatalf("deploy of a job that exits 3 returned %d:\n%s", rc, p.output())
		}
	})

	t.Run("Ctrl-C in the auction", func(t *testing.T) {
		p := deploy(job("nobid", "echo never", "0.000001"), "--wait", "60s") // below any provider's price: nobody bids
		order := p.waitFor(`order (\d+) committed`, 30*time.Second)[1]
		p.typeIn("\x03")
		p.waitFor(`interrupted: order `+order+` cancelled, [0-9.]+ SPR refunded`, 30*time.Second)
		if rc := p.exit(30 * time.Second); rc != 130 {
			t.Fatalf("exit %d:\n%s", rc, p.output())
		}
		if st := query("order", order)["state"]; st != "cancelled" {
			t.Fatalf("order %s after Ctrl-C: %v", order, st)
		}
	})

	t.Run("Ctrl-C while it runs", func(t *testing.T) {
		p := deploy(job("runs", "echo running-now; sleep 100", "0.1"))
		p.waitFor(`running-now`, 60*time.Second)
		p.typeIn("\x03")
		lease := p.waitFor(`interrupted: lease (\d+) keeps running`, 30*time.Second)[1]
		p.waitFor(`spare attach `+lease, 5*time.Second)
		if rc := p.exit(30 * time.Second); rc != 130 {
			t.Fatalf("exit %d:\n%s", rc, p.output())
		}
		if st := query("lease", lease)["state"]; st != "active" {
			t.Fatalf("lease %s after one Ctrl-C: %v, want still active", lease, st)
		}
		if out, err := exec.Command(bin, "close", lease, "--home", home, "--yes").CombinedOutput(); err != nil {
			t.Fatalf("close: %v %s", err, out)
		}
	})

	t.Run("Ctrl-C twice closes", func(t *testing.T) {
		p := deploy(job("twice", "echo running-again; sleep 100", "0.1"))
		p.waitFor(`running-again`, 60*time.Second)
		p.typeIn("\x03")
		lease := p.waitFor(`interrupted: lease (\d+) keeps running`, 30*time.Second)[1]
		p.waitFor(`Press Ctrl-C again within 2 s`, 5*time.Second)
		p.typeIn("\x03")
		p.waitFor(`Close lease `+lease+` now\?.*\[y/N\] `, 10*time.Second)
		p.typeIn("y\r")
		p.waitFor(`lease `+lease+` closed: paid [0-9.]+ SPR, refunded [0-9.]+ SPR`, 30*time.Second)
		if rc := p.exit(30 * time.Second); rc != 130 {
			t.Fatalf("exit %d:\n%s", rc, p.output())
		}
		if st := query("lease", lease)["state"]; st != "closed" {
			t.Fatalf("lease %s after two Ctrl-C: %v", lease, st)
		}
	})
}
