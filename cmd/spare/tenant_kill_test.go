package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/client/keyring"
	"github.com/sparenet/spare/devnet"
	"github.com/sparenet/spare/internal/proctest"
)

// TestTenantKilledThenRecovered plays a tenant's bad day on real processes (issue 14's fault suite): `spare deploy`
// killed with SIGKILL during the auction, while the job runs, and as it fetches the outputs; each time the CLI
// alone recovers what was at stake — `spare cancel` gets the deposit of the orphaned order back, `spare attach`
// follows the running lease to its end and verifies its outputs, `spare outputs` fetches what the killed deploy
// did not. Killed between its lease and the manifest's delivery, `spare attach` sends the manifest again.
func TestTenantKilledThenRecovered(t *testing.T) {
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
	dev := startProc(t, bin, filepath.Join(tmp, "dev.log"), "dev", "--home", home, "--explorer", explorer)
	spare := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--home", home)...).CombinedOutput()
		return string(out), err
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		if _, err := spare("balance", "-o", "json"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spare dev not ready:\n%s", proctest.Tail(dev.Log, 20))
		}
		time.Sleep(300 * time.Millisecond)
	}
	job := func(name, body string) string {
		path := filepath.Join(tmp, name+".yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// deploy starts `spare deploy` and returns it with its output as it comes.
	type deployProc struct {
		cmd  *exec.Cmd
		mu   sync.Mutex
		out  bytes.Buffer
		done chan struct{}
	}
	deploy := func(file string, extra ...string) *deployProc {
		p := &deployProc{done: make(chan struct{})}
		p.cmd = exec.Command(bin, append([]string{"deploy", file, "--home", home, "--yes", "--outputs", filepath.Join(tmp, "outputs")}, extra...)...)
		w := &lockedWriter{mu: &p.mu, b: &p.out}
		p.cmd.Stdout, p.cmd.Stderr = w, w
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
		return p
	}
	waitOut := func(p *deployProc, re string) []string {
		t.Helper()
		rx := regexp.MustCompile(re)
		end := time.Now().Add(90 * time.Second)
		for time.Now().Before(end) {
			p.mu.Lock()
			m := rx.FindStringSubmatch(p.out.String())
			p.mu.Unlock()
			if m != nil {
				return m
			}
			time.Sleep(20 * time.Millisecond)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Fatalf("deploy never printed %q:\n%s", re, p.out.String())
		return nil
	}
	kill := func(p *deployProc) {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	balance := func() uint64 {
		out, err := spare("balance", "tenant", "-o", "json")
		var b struct {
			Balance uint64 `json:"balance"`
		}
		if err != nil || json.Unmarshal([]byte(out), &b) != nil {
			t.Fatalf("balance: %v %s", err, out)
		}
		return b.Balance
	}

	t.Run("killed in the auction: spare cancel refunds", func(t *testing.T) {
		before := balance()
		// A GPU job on a CPU-only network: nobody bids, and the deploy would wait a minute before cancelling.
		p := deploy(job("gpu", "run: nvidia-smi\nresources:\n  gpu: {count: 1}\n"), "--wait", "60s")
		m := waitOut(p, `order (\d+) committed`)
		kill(p)
		if out, err := spare("leases", "--all", "-o", "json"); err != nil || !strings.Contains(out, `"id": `+m[1]) && !strings.Contains(out, `"id":`+m[1]) {
			t.Fatalf("the orphaned order %s is not listed: %v\n%s", m[1], err, out)
		}
		out, err := spare("cancel", m[1], "--yes")
		if err != nil || !strings.Contains(out, "refund") {
			t.Fatalf("cancel %s: %v\n%s", m[1], err, out)
		}
		if spent := before - balance(); spent > 10_000 { // two fees, the deposit back
			t.Fatalf("the tenant is %d uspr poorer after cancelling: the deposit did not come back\n%s", spent, out)
		}
	})

	t.Run("killed while it runs: spare attach follows it to the end", func(t *testing.T) {
		p := deploy(job("ticks", "run: i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done; mkdir -p out; echo done > out/result.txt\noutputs: [out]\n"))
		m := waitOut(p, `lease (\d+) with provider`)
		waitOut(p, `tick 3\n`)
		kill(p)
		attached := filepath.Join(tmp, "attached")
		out, err := spare("attach", m[1], "--outputs", attached)
		if err != nil {
			t.Fatalf("attach %s: %v\n%s", m[1], err, out)
		}
		if !strings.Contains(out, "tick 30\n") || !strings.Contains(out, "verified") {
			t.Fatalf("attach %s did not follow to the end and verify the outputs:\n%s", m[1], out)
		}
		if b, err := os.ReadFile(filepath.Join(attached, m[1], "out", "result.txt")); err != nil || string(b) != "done\n" {
			t.Fatalf("outputs after attach: %q %v", b, err)
		}
	})

	t.Run("killed as it fetches the outputs: spare outputs gets them", func(t *testing.T) {
		p := deploy(job("quick", "run: mkdir -p out; head -c 2000000 /dev/zero > out/zeros; echo written\noutputs: [out]\n"))
		m := waitOut(p, `lease (\d+) with provider`)
		waitOut(p, `ended`)
		kill(p)
		dir := filepath.Join(tmp, "fetched")
		out, err := spare("outputs", m[1], "--dir", dir)
		if err != nil || !strings.Contains(out, "verified") {
			t.Fatalf("outputs %s: %v\n%s", m[1], err, out)
		}
		if fi, err := os.Stat(filepath.Join(dir, m[1], "out", "zeros")); err != nil || fi.Size() != 2_000_000 {
			t.Fatalf("fetched outputs: %v %v", fi, err)
		}
	})

	t.Run("killed between the lease and the manifest: spare attach sends it again", func(t *testing.T) {
		// The window is a few milliseconds on spare dev: the test places the order itself, as a deploy killed right
		// after its lease leaves it, for a job this machine deployed before (its manifest kept in HOME/manifests).
		file := job("ticks", "run: i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done; mkdir -p out; echo done > out/result.txt\noutputs: [out]\n")
		_, j, err := loadJob(file)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := devnet.LoadClientConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(cc.Node, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		kr, err := keyring.Open(filepath.Join(home, "keys"), keyring.Options{Backend: keyring.Backend(cc.KeyringBackend)})
		if err != nil {
			t.Fatal(err)
		}
		signer, err := kr.Signer(cc.Key)
		if err != nil {
			t.Fatal(err)
		}
		orphan := func() string {
			t.Helper()
			res, err := c.NewSender(signer).Send(context.Background(), &j.Order)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := res.Attr("order.created", "order_id")
			orderID, _ := strconv.ParseUint(id, 10, 64)
			end := time.Now().Add(60 * time.Second)
			for time.Now().Before(end) {
				if o, err := c.Order(context.Background(), orderID); err == nil && o.LeaseID != 0 {
					return strconv.FormatUint(o.LeaseID, 10)
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Fatalf("order %d was not leased", orderID)
			return ""
		}

		lease := orphan()
		wrong := job("other", "run: echo not this one\n")
		if out, err := spare("attach", lease, "--job", wrong); err == nil || !strings.Contains(out, "is not lease "+lease+"'s") {
			t.Fatalf("attach with another job's manifest: %v\n%s", err, out)
		}
		attached := filepath.Join(tmp, "attached-resent")
		out, err := spare("attach", lease, "--outputs", attached) // the manifest the earlier deploy of this job kept
		if err != nil || !strings.Contains(out, "manifest sent again") || !strings.Contains(out, "tick 30\n") || !strings.Contains(out, "verified") {
			t.Fatalf("attach %s to a lease whose provider waits for its manifest: %v\n%s", lease, err, out)
		}

		if err := os.RemoveAll(filepath.Join(home, manifestsDir)); err != nil { // another machine: only the job file
			t.Fatal(err)
		}
		lease = orphan()
		out, err = spare("attach", lease, "--outputs", attached, "--job", file)
		if err != nil || !strings.Contains(out, "manifest sent again") || !strings.Contains(out, "tick 30\n") {
			t.Fatalf("attach %s --job: %v\n%s", lease, err, out)
		}
		if b, err := os.ReadFile(filepath.Join(attached, lease, "out", "result.txt")); err != nil || string(b) != "done\n" {
			t.Fatalf("outputs after attach --job: %q %v", b, err)
		}
	})
}

// lockedWriter appends to a buffer under a lock shared with its readers.
type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
