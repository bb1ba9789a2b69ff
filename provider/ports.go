package provider

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sparenet/spare/runtime"
)

// Port quotas. Process workloads share the host's network namespace (cluster members must reach each other's
// hosts), so nothing in the kernel stops a job from binding ports of the provider's service_ports and
// cluster_ports ranges that were given to another lease, or all the free ones so that the next service cannot
// be placed. Every lease runs as a user of its own, and the kernel records the owner of every socket: at each
// disk check the daemon reads the host's listening TCP and bound UDP sockets (/proc/net/{tcp,tcp6,udp,udp6})
// and stops a lease that holds a port of those ranges it was not given, with the reason "port limit".

// socket is one listening (TCP) or bound (UDP) socket of the host.
type socket struct {
	port int
	uid  int
	udp  bool
}

// hostSockets reads the host network namespace's listening TCP and bound UDP sockets.
func hostSockets() ([]socket, error) {
	var out []socket
	for _, f := range []struct {
		path string
		udp  bool
	}{{"/proc/net/tcp", false}, {"/proc/net/tcp6", false}, {"/proc/net/udp", true}, {"/proc/net/udp6", true}} {
		s, err := parseProcNet(f.path, f.udp)
		if err != nil {
			if os.IsNotExist(err) {
				continue // no IPv6
			}
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// parseProcNet reads one /proc/net table: "sl local_address rem_address st ... uid ...", addresses as
// HEXIP:HEXPORT. TCP sockets count when listening (st 0A), UDP ones when bound and unconnected (st 07).
func parseProcNet(path string, udp bool) ([]socket, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []socket
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		fld := strings.Fields(sc.Text())
		if len(fld) < 8 {
			continue
		}
		want := "0A"
		if udp {
			want = "07"
		}
		if fld[3] != want {
			continue
		}
		_, hexPort, ok := strings.Cut(fld[1], ":")
		if !ok {
			continue
		}
		port, err1 := strconv.ParseUint(hexPort, 16, 16)
		uid, err2 := strconv.ParseUint(fld[7], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, socket{port: int(port), uid: int(uid), udp: udp})
	}
	return out, sc.Err()
}

// checkPorts stops every running lease that holds a port of the provider's ranges it was not given.
func (d *Daemon) checkPorts(ctx context.Context, leases []LeaseRecord) {
	type owned struct {
		lease   uint64
		allowed map[int]bool
	}
	byUID := map[int]owned{}
	d.mu.Lock()
	for i := range leases {
		l := &leases[i]
		if l.State != LeaseRunning {
			continue
		}
		o, ok := d.workloads[l.LeaseID].(runtime.Owner)
		if !ok {
			continue // a container with a network of its own, or a runtime that shares the daemon's user
		}
		uid, own := o.UID()
		if !own {
			continue
		}
		allowed := map[int]bool{}
		if l.MasterPort != 0 {
			allowed[l.MasterPort] = true
		}
		for _, p := range l.Ports {
			allowed[p.Host] = true
		}
		byUID[uid] = owned{lease: l.LeaseID, allowed: allowed}
	}
	d.mu.Unlock()
	if len(byUID) == 0 {
		return
	}
	socks, err := hostSockets()
	if err != nil {
		d.log.Warn("reading the host's sockets for port quotas", "err", err)
		return
	}
	var ranges [][2]int
	for _, r := range []func() (int, int, error){d.cfg.ServicePortRange, d.cfg.ClusterPortRange} {
		if a, b, err := r(); err == nil {
			ranges = append(ranges, [2]int{a, b})
		}
	}
	stopped := map[uint64]bool{}
	for _, s := range socks {
		o, ok := byUID[s.uid]
		if !ok || o.allowed[s.port] || stopped[o.lease] || !inRanges(s.port, ranges) {
			continue
		}
		proto := "TCP"
		if s.udp {
			proto = "UDP"
		}
		stopped[o.lease] = true
		d.stopForLimit(ctx, o.lease, fmt.Sprintf("port limit: the job bound %s port %d of this provider's service or cluster ports, which was not given to it (a job may bind only its declared ports: $PORT, $SPARE_PORT_<port>)", proto, s.port))
	}
}

func inRanges(p int, ranges [][2]int) bool {
	for _, r := range ranges {
		if p >= r[0] && p <= r[1] {
			return true
		}
	}
	return false
}
