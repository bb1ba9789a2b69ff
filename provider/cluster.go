package provider

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// rendezvous fills a cluster member's environment from the ledger's record of the cluster, as torchrun and
// NCCL expect: RANK and WORLD_SIZE, MASTER_ADDR (the host of rank 0's provider) and MASTER_PORT, LOCAL_RANK 0
// and LOCAL_WORLD_SIZE 1 (one process per member), SPARE_PEERS (every member's host, by rank) and
// SPARE_CLUSTER_ORDER. Rank 0 takes a free port from cluster_ports; the others are told it by the tenant.
// Called with d.mu held.
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
		if masterPort, err = d.freeClusterPort(); err != nil {
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
		"SPARE_CLUSTER_ORDER=" + strconv.FormatUint(orderID, 10),
	}
	return nil
}

// freeClusterPort is the first port of cluster_ports that no running member of this provider was given and
// that can be bound now. Called with d.mu held.
func (d *Daemon) freeClusterPort() (int, error) {
	first, last, err := d.cfg.ClusterPortRange()
	if err != nil {
		return 0, err
	}
	taken := map[int]bool{}
	if leases, err := d.store.Leases(); err == nil {
		for _, l := range leases {
			if l.MasterPort != 0 && l.State != LeaseDone {
				taken[l.MasterPort] = true
			}
		}
	}
	for p := first; p <= last; p++ {
		if taken[p] {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		return p, nil
	}
	return 0, fmt.Errorf("%w: no free port in cluster_ports %s for the rendezvous", ErrStartFailed, d.cfg.ClusterPorts)
}

// hostOf is the host of a provider's https URI.
func hostOf(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("host uri %q has no host", uri)
	}
	return u.Hostname(), nil
}
