package provider

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/sparenet/spare/runtime"
)

// rendezvous fills a cluster member's environment from the ledger's record of the cluster, as torchrun and
// NCCL expect: RANK and WORLD_SIZE, MASTER_ADDR (the host of rank 0's provider) and MASTER_PORT, LOCAL_RANK 0
// and LOCAL_WORLD_SIZE 1 (one process per member), SPARE_PEERS (every member's host, by rank),
// SPARE_CLUSTER_ORDER and SPARE_RESTART_COUNT (0, or which restart of the cluster this is). Rank 0 takes a free port from cluster_ports; the others are told it by the tenant.
// Called with the lease's lock held.
func (d *Daemon) rendezvous(ctx context.Context, l *LeaseRecord, orderID uint64, masterPort int) error {
	cv, err := d.c.Cluster(ctx, orderID)
	if err != nil {
		return err
	}
	rank := -1
	var peers []string
	for _, m := range cv.Members {
		host, err := hostOf(m.HostURI)
		if err != nil {
			return fmt.Errorf("%w: cluster member %d: %v", ErrLeaseState, m.Rank, err)
		}
		peers = append(peers, host)
		if m.LeaseID == l.LeaseID {
			rank = m.Rank
		}
	}
	if rank < 0 || len(peers) != int(cv.Nodes) {
		return fmt.Errorf("%w: lease %d is not a member of cluster order %d (%s)", ErrLeaseState, l.LeaseID, orderID, cv.State)
	}
	switch {
	case rank == 0 && l.MasterPort != 0:
		masterPort = l.MasterPort // the manifest came before and its start failed half-way: keep the port
	case rank == 0:
		if masterPort, err = d.freeClusterPort(l.LeaseID); err != nil {
			return err
		}
	case masterPort == 0:
		return fmt.Errorf("%w: rank %d of a cluster needs master_port: send the manifest to rank 0 first and pass the master_port it answered", ErrBadManifest, rank)
	}
	l.Rank, l.MasterPort = &rank, 0
	if rank == 0 {
		l.MasterPort = masterPort
	}
	l.Rendezvous = []string{
		"RANK=" + strconv.Itoa(rank), "WORLD_SIZE=" + strconv.Itoa(int(cv.Nodes)), "LOCAL_RANK=0", "LOCAL_WORLD_SIZE=1",
		"MASTER_ADDR=" + peers[0], "MASTER_PORT=" + strconv.Itoa(masterPort), "SPARE_PEERS=" + strings.Join(peers, ","),
		"SPARE_CLUSTER_ORDER=" + strconv.FormatUint(orderID, 10), "SPARE_RESTART_COUNT=" + strconv.FormatUint(uint64(cv.Generation), 10),
	}
	return nil
}

// freeClusterPort is a free port of cluster_ports (see freePorts), claimed for lease.
func (d *Daemon) freeClusterPort(lease uint64) (int, error) {
	first, last, err := d.cfg.ClusterPortRange()
	if err != nil {
		return 0, err
	}
	ports, err := d.freePorts(lease, first, last, 1)
	if err != nil {
		return 0, fmt.Errorf("%w: no free port in cluster_ports %s for the rendezvous", ErrStartFailed, d.cfg.ClusterPorts)
	}
	return ports[0], nil
}

// freePorts picks n ports of [first, last] that no unfinished lease of this provider holds (as rendezvous or
// service port, saved or claimed by a manifest being accepted) and that can be bound now, from a random place, and
// claims them for lease. Manifests of several leases are accepted at once: d.portMu makes the pick and the claim
// one step.
func (d *Daemon) freePorts(lease uint64, first, last, n int) ([]int, error) {
	d.portMu.Lock()
	defer d.portMu.Unlock()
	taken := map[int]bool{}
	unfinished := map[uint64]bool{}
	if leases, err := d.store.Leases(); err == nil {
		for _, l := range leases {
			if l.State == LeaseDone {
				continue
			}
			unfinished[l.LeaseID] = true
			taken[l.MasterPort] = true
			for _, p := range l.Ports {
				taken[p.Host] = true
			}
		}
	}
	for p, owner := range d.claimed {
		if unfinished[owner] && owner != lease {
			taken[p] = true
		} else {
			delete(d.claimed, p) // its lease ended (or asks again)
		}
	}
	// From a random place in the range: a co-tenant cannot tell which port the next lease gets and bind it first
	// (it would be stopped for it, ports.go, but the lease would have lost its port meanwhile).
	var out []int
	span := last - first + 1
	start := rand.IntN(span)
	for i := 0; i < span && len(out) < n; i++ {
		p := first + (start+i)%span
		if taken[p] {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("%d free ports wanted in %d-%d, %d found", n, first, last, len(out))
	}
	for _, p := range out {
		d.claimed[p] = lease
	}
	return out, nil
}

// servicePorts gives each declared port of lease a host port of service_ports.
func (d *Daemon) servicePorts(lease uint64, declared []uint16) ([]runtime.PortMap, error) {
	first, last, err := d.cfg.ServicePortRange()
	if err != nil {
		return nil, err
	}
	hosts, err := d.freePorts(lease, first, last, len(declared))
	if err != nil {
		return nil, fmt.Errorf("%w: service_ports %s: %v", ErrStartFailed, d.cfg.ServicePorts, err)
	}
	out := make([]runtime.PortMap, len(declared))
	for i, p := range declared {
		out[i] = runtime.PortMap{Port: p, Host: hosts[i]}
	}
	return out, nil
}

// portEnv tells a workload where its service ports are: PORT (the first) and SPARE_PORT_<declared> for each.
// A process binds the host port itself; a container listens on the declared port, published on the host one.
func portEnv(ports []runtime.PortMap, container bool) []string {
	var env []string
	for i, p := range ports {
		v := p.Host
		if container {
			v = int(p.Port)
		}
		if i == 0 {
			env = append(env, "PORT="+strconv.Itoa(v))
		}
		env = append(env, fmt.Sprintf("SPARE_PORT_%d=%d", p.Port, v))
	}
	return env
}

// endpoints are the addresses tenants reach a lease's services at: declared port -> host:port.
func (d *Daemon) endpoints(l *LeaseRecord) map[string]string {
	if len(l.Ports) == 0 {
		return nil
	}
	host, err := hostOf(d.cfg.HostURI)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, p := range l.Ports {
		out[strconv.Itoa(int(p.Port))] = net.JoinHostPort(host, strconv.Itoa(p.Host))
	}
	return out
}

// hostOf is the host of a provider's https URI.
func hostOf(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("host uri %q has no host", uri)
	}
	return u.Hostname(), nil
}
