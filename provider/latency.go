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
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// publishLatency measures round trips to the other providers of this provider's region and to the auditors
// that name a host at genesis, and publishes them on the ledger (PublishLatency): the auditors (a fixed point
// of the latency map, at most maxAuditorSamples) and the nearest providers, tx.MaxLatencyPeers in all. It
// publishes at start, whenever the set of peers changes (checked every few seconds), and every
// latency_every. A round trip is the fastest of three TCP connects; a peer that does not answer within a second
// is left out. Cluster orders are placed on the providers' figures; a pair counts only when both of its
// providers published it.
func (d *Daemon) publishLatency(ctx context.Context) {
	var last []tx.Address
	var lastAt time.Time
	missing := false // the last publication left out a peer that did not answer
	for {
		targets, err := d.latencyTargets(ctx)
		addrs := make([]tx.Address, len(targets))
		for i, t := range targets {
			addrs[i] = t.addr
		}
		due := time.Since(lastAt) >= d.cfg.LatencyEvery.Duration || missing && time.Since(lastAt) >= retryMissing
		if err == nil && len(targets) > 0 && (!slices.Equal(addrs, last) || due) {
			samples := d.measure(ctx, targets)
			_, err := d.sender.Send(ctx, &tx.PublishLatency{Samples: samples})
			switch {
			case err == nil:
				last, lastAt = addrs, time.Now()
				missing = len(samples) < min(len(targets), tx.MaxLatencyPeers)
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

// retryMissing is how soon a publication that left out an unanswering peer is redone.
const retryMissing = 5 * time.Second

// maxAuditorSamples bounds how many of the published samples go to auditors.
const maxAuditorSamples = 8

// latencyTarget is a peer to measure: a provider (its host_uri) or an auditor (its genesis host).
type latencyTarget struct {
	addr    tx.Address
	host    string // host:port
	auditor bool
}

// latencyTargets lists the other providers registered in this provider's region (not jailed) and the auditors
// with a host, sorted by address.
func (d *Daemon) latencyTargets(ctx context.Context) ([]latencyTarget, error) {
	var out []latencyTarget
	for after := ""; ; {
		page, err := d.c.Providers(ctx, api.ListRequest{After: after, Limit: api.MaxPageLimit})
		if err != nil {
			return nil, err
		}
		for _, p := range page.Items {
			if p.Owner == d.Address() || p.Status == api.ProviderJailed || !strings.EqualFold(p.Info.Region, d.cfg.Region) {
				continue
			}
			if hp, err := hostPort(p.Info.HostURI); err == nil {
				out = append(out, latencyTarget{addr: p.Owner, host: hp})
			}
		}
		if after = page.Next; after == "" {
			break
		}
	}
	if auds, err := d.c.Auditors(ctx); err == nil {
		for _, a := range auds {
			if a.Host != "" && a.Address != d.Address() {
				out = append(out, latencyTarget{addr: a.Address, host: a.Host, auditor: true})
			}
		}
	}
	slices.SortFunc(out, func(a, b latencyTarget) int { return strings.Compare(string(a.addr[:]), string(b.addr[:])) })
	return slices.CompactFunc(out, func(a, b latencyTarget) bool { return a.addr == b.addr }), nil
}

// measure times TCP connects to each target and keeps the nearest auditors (at most maxAuditorSamples) and the
// nearest providers, tx.MaxLatencyPeers in all, sorted by address.
func (d *Daemon) measure(ctx context.Context, targets []latencyTarget) []tx.LatencySample {
	var provs, auds []tx.LatencySample
	for _, t := range targets {
		best := time.Duration(-1)
		for range 3 {
			t0 := time.Now()
			conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", t.host)
			if err != nil {
				continue
			}
			rtt := time.Since(t0)
			conn.Close()
			if best < 0 || rtt < best {
				best = rtt
			}
		}
		if best < 0 {
			continue
		}
		s := tx.LatencySample{Peer: t.addr, RTTMicros: uint32(max(1, min(best.Microseconds(), tx.MaxRTTMicros)))}
		if t.auditor {
			auds = append(auds, s)
		} else {
			provs = append(provs, s)
		}
	}
	nearest := func(a, b tx.LatencySample) int { return int(a.RTTMicros) - int(b.RTTMicros) }
	slices.SortStableFunc(auds, nearest)
	slices.SortStableFunc(provs, nearest)
	auds = auds[:min(len(auds), maxAuditorSamples)]
	samples := append(auds, provs[:min(len(provs), tx.MaxLatencyPeers-len(auds))]...)
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
