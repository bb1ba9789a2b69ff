package faults

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Network faults need more than loopback: each validator runs in a network namespace of its own that the test
// creates, with a veth pair into a bridge in a further namespace (the hub), which is where the faults go: nft
// rules on the bridge's forward hook drop frames between ports (a partition) and a netem qdisc on the hub's end of
// a validator's veth delays and drops what reaches it. Where the kernel has no sch_netem (the kernel this suite
// was written on has none), the scenario that needs delay links each validator to the bridge with a wire instead
// (wire_test.go: two TAP devices and the test process between them, delaying and dropping as netem would).
// The test process reaches every validator's RPC through one more veth pair, from the root namespace into the
// bridge; partitions leave that link alone, so the test can watch every validator during one (loss and delay
// reach the test's traffic too). Nothing is added to the root namespace but that veth and its address, and the
// host's firewall is not touched (frames between validators never cross the root namespace's forward chain).
// Names include the test's pid; t.Cleanup deletes the namespaces and the link, even when the test fails, and the
// next run sweeps away what a run killed before its cleanup left.

// lab is the namespaces and links of one scenario.
type lab struct {
	t     *testing.T
	hub   string   // namespace with the bridge br0; validator i's port is vI, the test's is up0
	nodes []string // validator i's namespace, its interface eth0
	ips   []string // validator i's address
	host  string   // the test's end of up0, in the root namespace
	netem error    // why the kernel refused a netem qdisc; nil: it has sch_netem
	wires []*wire  // where it refused and delay was asked for: validator i's link is wires[i], not a veth pair
}

// refused reports whether a failed command's output says the kernel (or the user's privileges) refused it,
// rather than the command being wrong.
func refused(out string) bool {
	out = strings.ToLower(out)
	for _, s := range []string{"operation not permitted", "permission denied", "not supported", "unknown device type",
		"qdisc kind is unknown", "no such file or directory", "no such device", "could not process rule",
		"executable file not found"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// sh runs a command, returning its combined output in the error when it fails.
func sh(stdin string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// newLab makes the namespaces for n validators, or skips the test with the reason where the kernel refuses
// (with CI=true, only then; any other failure fails the test). With delay, the test needs links it can delay:
// where the kernel refuses netem, it links each validator with a wire (wire_test.go) instead of a veth pair.
func newLab(t *testing.T, n int, delay bool) *lab {
	t.Helper()
	if !full {
		t.Skip("make faults")
	}
	if testing.Short() {
		t.Skip("runs validator processes")
	}
	sweep()
	pid := os.Getpid()
	l := &lab{t: t, hub: fmt.Sprintf("spf%d-hub", pid), host: fmt.Sprintf("spf%dr", pid)}
	// a /24 of 10.77/16 that no address or route in the root namespace uses (two suites running at once differ)
	routes, _ := exec.Command("ip", "-4", "-o", "route", "show").CombinedOutput()
	addrs, _ := exec.Command("ip", "-4", "-o", "addr", "show").CombinedOutput()
	sub := ""
	for k := range 250 {
		s := fmt.Sprintf("10.77.%d.", (pid+k)%250+1)
		if !bytes.Contains(routes, []byte(s)) && !bytes.Contains(addrs, []byte(s)) {
			sub = s
			break
		}
	}
	if sub == "" {
		t.Fatal("no free /24 in 10.77.0.0/16 in the root namespace")
	}
	fail := func(err error) {
		t.Helper()
		msg := strings.ToLower(err.Error())
		tool := strings.Contains(msg, "executable file not found") || strings.Contains(msg, "exec of")
		if refused(msg) && (!tool || os.Getenv("CI") != "true") {
			if os.Getenv("CI") == "true" {
				t.Logf("CI: the kernel refuses what this test needs, skipping: %v", err)
			}
			t.Skipf("refused here (needs root, network namespaces, veth, a bridge, nf_tables, ip and nft; for delay, sch_netem or TUN): %v", err)
		}
		t.Fatal(err) // with CI=true, a missing ip or nft too: CI is to have them
	}
	// cleanup registered first, so it runs last: after the validators were killed (newNetworkWith's cleanup)
	t.Cleanup(l.remove)
	for i := range n {
		l.nodes = append(l.nodes, fmt.Sprintf("spf%d-n%d", pid, i))
		l.ips = append(l.ips, fmt.Sprintf("%s%d", sub, i+1))
	}
	steps := [][]string{ // the hub, its bridge, the test's link into it
		{"ip", "netns", "add", l.hub},
		{"ip", "-n", l.hub, "link", "set", "lo", "up"},
		{"ip", "-n", l.hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", l.hub, "link", "set", "br0", "up"},
		{"ip", "link", "add", l.host, "type", "veth", "peer", "name", "up0", "netns", l.hub},
		{"ip", "-n", l.hub, "link", "set", "up0", "master", "br0", "up"},
		{"ip", "addr", "add", sub + "254/24", "dev", l.host},
		{"ip", "link", "set", l.host, "up"},
	}
	run := func(steps [][]string) {
		t.Helper()
		for _, s := range steps {
			if err := sh("", s[0], s[1:]...); err != nil {
				fail(err)
			}
		}
	}
	run(steps)
	if err := l.nft("add table bridge fault\nadd chain bridge fault forward { type filter hook forward priority 0; policy accept; }\n"); err != nil {
		fail(err)
	}
	if l.netem = l.tc("qdisc", "add", "dev", "up0", "root", "netem", "delay", "1ms"); l.netem == nil {
		if err := l.tc("qdisc", "del", "dev", "up0", "root"); err != nil {
			t.Fatal(err)
		}
	} else if !refused(l.netem.Error()) {
		t.Fatal(l.netem)
	}
	for i, ns := range l.nodes {
		v := fmt.Sprintf("v%d", i)
		run([][]string{{"ip", "netns", "add", ns}, {"ip", "-n", ns, "link", "set", "lo", "up"}})
		if delay && l.netem != nil {
			a, b := fmt.Sprintf("spf%da%d", pid, i), fmt.Sprintf("spf%db%d", pid, i)
			w, err := newWire(a, b)
			if err != nil {
				fail(err)
			}
			l.wires = append(l.wires, w)
			run([][]string{
				{"ip", "link", "set", a, "netns", ns},
				{"ip", "-n", ns, "link", "set", a, "name", "eth0"},
				{"ip", "link", "set", b, "netns", l.hub},
				{"ip", "-n", l.hub, "link", "set", b, "name", v},
			})
		} else {
			run([][]string{{"ip", "-n", l.hub, "link", "add", v, "type", "veth", "peer", "name", "eth0", "netns", ns}})
		}
		run([][]string{
			{"ip", "-n", l.hub, "link", "set", v, "master", "br0", "up"},
			{"ip", "-n", ns, "addr", "add", l.ips[i] + "/24", "dev", "eth0"},
			{"ip", "-n", ns, "link", "set", "eth0", "up"},
		})
	}
	return l
}

// sweep deletes what a run killed before its cleanup (a test binary's timeout) left: the namespaces and the link
// named for a pid that no longer runs.
func sweep() {
	stale := func(name string) bool {
		rest, ok := strings.CutPrefix(name, "spf")
		if !ok {
			return false
		}
		end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if end <= 0 {
			return false
		}
		_, err := os.Stat("/proc/" + rest[:end])
		return errors.Is(err, os.ErrNotExist)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 && stale(f[0]) {
			_ = sh("", "ip", "netns", "del", f[0])
		}
	}
	out, _ = exec.Command("ip", "-o", "link", "show").Output()
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if strings.HasSuffix(name, "r") && stale(name) {
				_ = sh("", "ip", "link", "del", name)
			}
		}
	}
}

// remove deletes the namespaces (and with them their links, qdiscs and rules) and the test's link.
func (l *lab) remove() {
	for _, ns := range append(l.nodes, l.hub) {
		if err := sh("", "ip", "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			l.t.Logf("cleanup: %v", err)
		}
	}
	_ = sh("", "ip", "link", "del", l.host) // gone with the hub already, as a veth goes with its peer
	for _, w := range l.wires {
		w.close()
	}
}

// nft runs an nft script in the hub.
func (l *lab) nft(script string) error {
	return sh(script, "ip", "netns", "exec", l.hub, "nft", "-f", "-")
}

// tc runs tc in the hub.
func (l *lab) tc(args ...string) error {
	return sh("", "ip", append([]string{"netns", "exec", l.hub, "tc"}, args...)...)
}

// prepare moves network n's validators into the lab: each listens (RPC and P2P) on its own address, in its own
// namespace, and dials its peers there.
func (l *lab) prepare(n *network) {
	l.t.Helper()
	if len(n.homes) != len(l.nodes) {
		l.t.Fatalf("%d validators, %d namespaces", len(n.homes), len(l.nodes))
	}
	for i, home := range n.homes {
		path := filepath.Join(home, "config", "config.toml")
		b, err := os.ReadFile(path)
		if err != nil {
			l.t.Fatal(err)
		}
		s := string(b)
		if own := fmt.Sprintf("127.0.0.1:%d", n.base+2*i); !strings.Contains(s, own) {
			l.t.Fatalf("%s: no %s (spare testnet's layout changed?)", path, own)
		}
		for j := range n.homes { // its listeners and its peers' addresses
			for _, port := range []int{n.base + 2*j, n.base + 2*j + 1} {
				s = strings.ReplaceAll(s, fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("%s:%d", l.ips[j], port))
			}
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			l.t.Fatal(err)
		}
		n.rpc[i] = fmt.Sprintf("http://%s:%d", l.ips[i], n.base+2*i)
	}
	n.netns = l.nodes
}

// drop replaces the hub's rules with rules: nft matches, for the bridge's forward chain, of frames to count and
// drop; none heals.
func (l *lab) drop(rules ...string) {
	l.t.Helper()
	script := "flush chain bridge fault forward\n"
	for _, r := range rules {
		script += "add rule bridge fault forward " + r + " counter drop\n"
	}
	if err := l.nft(script); err != nil {
		l.t.Fatal(err)
	}
}

// isolate cuts validator i off from every other validator (the test's link to it stays).
func (l *lab) isolate(i int) {
	v := fmt.Sprintf("%q", fmt.Sprintf("v%d", i))
	l.drop("iifname "+v+" oifname != \"up0\"", "oifname "+v+" iifname != \"up0\"")
}

// split cuts validators a from validators b, both ways.
func (l *lab) split(a, b []int) {
	set := func(is []int) string {
		var s []string
		for _, i := range is {
			s = append(s, fmt.Sprintf("%q", fmt.Sprintf("v%d", i)))
		}
		return "{ " + strings.Join(s, ", ") + " }"
	}
	l.drop("iifname "+set(a)+" oifname "+set(b), "iifname "+set(b)+" oifname "+set(a))
}

// shape slows every validator's link: delay 100ms±30ms and loss 5% on what reaches each validator, with netem
// on the bridge's end of its link, or where the kernel has no sch_netem, by its wire.
func (l *lab) shape(n int) {
	l.t.Helper()
	if l.wires != nil {
		for _, w := range l.wires {
			w.impaired.Store(true)
		}
		return
	}
	for i := range n {
		if err := l.tc("qdisc", "add", "dev", fmt.Sprintf("v%d", i), "root", "netem", "delay", "100ms", "30ms", "loss", "5%"); err != nil {
			l.t.Fatal(err)
		}
	}
}

// shaping is what shape applies, in words.
func (l *lab) shaping() string {
	if l.wires != nil {
		return "delay 100ms±30ms, loss 5%: the test's TAP wires, no sch_netem in this kernel"
	}
	return "netem delay 100ms±30ms, loss 5%"
}

var counted = regexp.MustCompile(`(?:packets|dropped) (\d+)`)

// dropped is how many frames the hub's rules, the validators' qdiscs (netem's loss) and wires dropped.
func (l *lab) dropped(n int) int {
	l.t.Helper()
	var sum int
	for _, w := range l.wires {
		sum += int(w.dropped.Load())
	}
	add := func(args ...string) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", l.hub}, args...)...).CombinedOutput()
		if err != nil {
			l.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		for _, m := range counted.FindAllSubmatch(out, -1) {
			k, _ := strconv.Atoi(string(m[1]))
			sum += k
		}
	}
	add("nft", "list", "chain", "bridge", "fault", "forward")
	for i := range n {
		add("tc", "-s", "qdisc", "show", "dev", fmt.Sprintf("v%d", i))
	}
	return sum
}

// heal removes every rule and qdisc and unimpairs the wires.
func (l *lab) heal(n int) {
	l.t.Helper()
	l.drop()
	for _, w := range l.wires {
		w.impaired.Store(false)
	}
	for i := range n {
		if err := l.tc("qdisc", "del", "dev", fmt.Sprintf("v%d", i), "root"); err != nil &&
			!strings.Contains(err.Error(), "No such file") && !strings.Contains(err.Error(), "handle of zero") {
			l.t.Fatal(err)
		}
	}
}

// rpcTime is the least time of three status calls to validator i (a new connection each).
func rpcTime(n *network, i int) time.Duration {
	best := time.Hour
	for range 3 {
		t0 := time.Now()
		if n.height(i) >= 0 {
			best = min(best, time.Since(t0))
		}
	}
	return best
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rate is the blocks per second the highest validator made over d.
func rate(n *network, d time.Duration) (float64, int64) {
	h0, t0 := n.top(), time.Now()
	time.Sleep(d)
	h1 := n.top()
	return float64(h1-h0) / time.Since(t0).Seconds(), h1
}

// TestNetDelayLoss: every validator's link slowed and lossy for 10 s under load, then healed: blocks keep coming
// (slower), no fork, nothing acknowledged lost; the results give blocks/s before and during.
func TestNetDelayLoss(t *testing.T) {
	l := newLab(t, 4, true)
	if l.netem != nil {
		t.Logf("the kernel refuses netem (%v): the test delays and drops frames on TAP wires instead", l.netem)
	}
	underWith(t, "4 validators in netns: every link impaired 10 s ("+l.shaping()+")", l.prepare, func(n *network) string {
		before, _ := rate(n, 5*time.Second)
		rttBefore := rpcTime(n, 1)
		l.shape(4)
		rttDuring := rpcTime(n, 1)
		during, h := rate(n, 10*time.Second)
		if during == 0 {
			t.Fatalf("no block in 10 s with every link impaired (%s)", l.shaping())
		}
		dropped, resumed, behind := healAndCatchUp(t, n, l, h, 30*time.Second)
		if dropped == 0 {
			t.Fatal("the impairment dropped no frame")
		}
		if rttDuring < wireDelay-wireJitter { // the connection's SYN and the request were each delayed
			t.Fatalf("a status call took %s before, %s with the links delayed: no delay", rttBefore, rttDuring)
		}
		return fmt.Sprintf("%.2f blocks/s before, %.2f during (a status call %.1f ms, then %.0f ms; %d frames dropped); healed, 5 blocks in %s, every validator at the head %s later",
			before, during, ms(rttBefore), ms(rttDuring), dropped,
			resumed.Round(10*time.Millisecond), behind.Round(10*time.Millisecond))
	})
}

// TestNetPartitionOne: a validator cut off from the other three for 10 s (the test still reaches its RPC, to watch
// it): they keep committing (3 of 4 hold more than 2/3 of the power), it stays behind; healed, it catches up.
func TestNetPartitionOne(t *testing.T) {
	l := newLab(t, 4, false)
	underWith(t, "4 validators in netns: one cut off from its peers 10 s", l.prepare, func(n *network) string {
		before, _ := rate(n, 5*time.Second)
		l.isolate(2)
		cut := max(n.height(2), 0)
		during, h := rate(n, 10*time.Second)
		iso := n.height(2)
		dropped := l.dropped(4)
		if iso > cut+1 {
			t.Fatalf("the cut-off validator went from height %d to %d alone", cut, iso)
		}
		if h < cut+3 { // slow, or stopped: the cut stays while they have 20 s more
			if _, err := n.waitHeight(0, cut+3, 20*time.Second); err != nil {
				t.Fatalf("three of four validators made %d blocks in 10 s, then: %v", h-cut, err)
			}
		}
		l.heal(4)
		top := n.top()
		took, err := n.waitHeight(2, top, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("the three made %.2f blocks/s (%.2f before), the cut-off one stayed at %d (%d frames dropped); healed, it caught up %d blocks in %s",
			during, before, iso, dropped, top-iso, took.Round(10*time.Millisecond))
	})
}

// TestNetSplitTwoTwo: the validators split 2 and 2 for 10 s: neither half has more than 2/3 of the power, so the
// chain halts (never forks); healed, it goes on.
func TestNetSplitTwoTwo(t *testing.T) {
	l := newLab(t, 4, false)
	underWith(t, "4 validators in netns: split 2-2 for 10 s", l.prepare, func(n *network) string {
		l.split([]int{0, 1}, []int{2, 3})
		time.Sleep(2 * time.Second) // what was in flight commits or not
		h := n.top()
		time.Sleep(8 * time.Second)
		if now := n.top(); now > h+1 {
			t.Fatalf("a half of the voting power committed blocks %d..%d", h+1, now)
		}
		for i := range 4 {
			if hi := n.height(i); hi < 0 {
				t.Fatalf("validator %d does not answer during the split", i)
			}
		}
		dropped, resumed, behind := healAndCatchUp(t, n, l, h, 60*time.Second)
		return fmt.Sprintf("halted at height %d during the split (%d frames dropped); healed, 5 blocks in %s, every validator at the head %s later",
			h, dropped, resumed.Round(10*time.Millisecond), behind.Round(10*time.Millisecond))
	})
}

// healAndCatchUp counts the frames the fault dropped, heals the four validators' links, and waits for 5 blocks past
// height h (within limit) and then for every validator to reach the head: it returns the frames dropped, how long
// the blocks took to resume and how long the slowest validator took to catch up.
func healAndCatchUp(t *testing.T, n *network, l *lab, h int64, limit time.Duration) (dropped int, resumed, behind time.Duration) {
	t.Helper()
	dropped = l.dropped(4)
	t0 := time.Now()
	l.heal(4)
	if _, err := n.waitHeight(0, h+5, limit); err != nil {
		t.Fatalf("no blocks after healing: %v", err)
	}
	resumed = time.Since(t0)
	for i := range 4 {
		took, err := n.waitHeight(i, n.top(), 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		behind = max(behind, took)
	}
	return dropped, resumed, behind
}
