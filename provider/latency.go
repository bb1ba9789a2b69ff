package provider

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/ledger"
	"github.com/sparenet/spare/ledger/tx"
)

// publishLatency measures round trips to the other providers of this provider's region and publishes the
// nearest tx.MaxLatencyPeers on the ledger (PublishLatency): at start, whenever the set of peers changes
// (checked every few seconds), and every latency_every. A round trip is the fastest of three TCP connects to
// the peer's registered host; a peer that does not answer within a second is left out. Cluster orders are
// placed on these figures; a pair counts only when both of its providers published it.
func (d *Daemon) publishLatency(ctx context.Context) {
	var last []tx.Address
	var lastAt time.Time
	for {
		peers, err := d.regionPeers(ctx)
		if err == nil && len(peers) > 0 && (!slices.Equal(peers, last) || time.Since(lastAt) >= d.cfg.LatencyEvery.Duration) {
			samples := d.measure(ctx, peers)
			_, err := d.sender.Send(ctx, &tx.PublishLatency{Samples: samples})
			switch {
			case err == nil:
				last, lastAt = peers, time.Now()
				d.log.Info("latency published", "peers", len(samples))
			case client.IsCode(err, tx.CodeRateLimited):
				// published moments ago: the next round tries again
			case ctx.Err() == nil:
				d.log.Warn("latency not published", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
	}
}

// regionPeers lists the other providers registered in this provider's region (not jailed), sorted by address.
func (d *Daemon) regionPeers(ctx context.Context) ([]tx.Address, error) {
	var out []tx.Address
	for after := ""; ; {
		page, err := d.c.Providers(ctx, ledger.ListRequest{After: after, Limit: ledger.MaxPageLimit})
		if err != nil {
			return nil, err
		}
		for _, p := range page.Items {
			if p.Owner != d.Address() && p.Status != ledger.ProviderJailed && strings.EqualFold(p.Info.Region, d.cfg.Region) {
				out = append(out, p.Owner)
			}
		}
		if after = page.Next; after == "" {
			break
		}
	}
	slices.SortFunc(out, func(a, b tx.Address) int { return strings.Compare(string(a[:]), string(b[:])) })
	return out, nil
}

// measure times TCP connects to each peer's host and keeps the nearest tx.MaxLatencyPeers, sorted by address.
func (d *Daemon) measure(ctx context.Context, peers []tx.Address) []tx.LatencySample {
	var samples []tx.LatencySample
	for _, a := range peers {
		p, err := d.c.Provider(ctx, a)
		if err != nil {
			continue
		}
		host, err := hostPort(p.Info.HostURI)
		if err != nil {
			continue
		}
		best := time.Duration(-1)
		for range 3 {
			t0 := time.Now()
			conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", host)
			if err != nil {
				continue
			}
			rtt := time.Since(t0)
			conn.Close()
			if best < 0 || rtt < best {
				best = rtt
			}
		}
		if best >= 0 {
			samples = append(samples, tx.LatencySample{Peer: a, RTTMicros: uint32(max(1, min(best.Microseconds(), tx.MaxRTTMicros)))})
		}
	}
	slices.SortFunc(samples, func(a, b tx.LatencySample) int { return int(a.RTTMicros) - int(b.RTTMicros) })
	samples = samples[:min(len(samples), tx.MaxLatencyPeers)]
	slices.SortFunc(samples, func(a, b tx.LatencySample) int { return strings.Compare(string(a.Peer[:]), string(b.Peer[:])) })
	return samples
}

// hostPort is the host:port of an https URI (port 443 when it names none).
func hostPort(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("host uri %q has no host", uri)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}
