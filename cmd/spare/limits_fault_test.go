package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/internal/proctest"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
	"github.com/sparenet/spare/provider"
	"github.com/sparenet/spare/runtime"
)

// TestWorkloadsPastTheirLimits runs `spare node` and `spare provider start` (process runtime) as processes and three
// leases at once, each of whose workloads goes past one limit of its order: memory (allocates far more than
// resources.memory_mib), duration (sleeps far past duration_sec) and disk (writes more than resources.disk_mib into
// its work directory). Each must be ended by the provider for that reason, in words, with a receipt on the ledger;
// the ledger must pay exactly what the lease ran (price × (ended − started) / 1 h, rounded down; exactly price ×
// duration for the one that ran to its end), refund the rest of the deposit, and the tenant's balance must move by
// exactly those refunds, in the block each lease ended in (nothing left in escrow, the supply invariant holding).
// The provider's status must give the same receipt, the runtime's result (OOM-killed, timed out) and the reason;
// the log keeps what the workload wrote before the limit. Nothing of a workload may be left behind: its cgroups
// are gone once it ended.
//
// With SPARE_FAULTS=full the provider keeps a finished lease's data one minute (limits.keep_lease_data, its
// minimum) and the test also waits, about two minutes more, for the lease directories to be removed.
func TestWorkloadsPastTheirLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node and provider processes")
	}
	full := os.Getenv("SPARE_FAULTS") == "full"
	began := time.Now()
	m := newProcMarket(t, marketOpts{config: func(cfg *provider.Config) {
		// A price with an odd number of uspr per millisecond, so that the exact pay is a rounded-down fraction.
		cfg.Prices.CPUHour, cfg.Prices.MemoryGiBHour = "7.777777", "1.234567"
		if full {
			cfg.Limits.KeepLeaseData = provider.Duration{Duration: time.Minute}
		}
	}})
	bin, kb, tmp, provLog, leases := m.bin, m.kb, m.tmp, m.provLog, m.leases
	c, tenantKey, provKey, call := m.c, m.tenant, m.provider, m.call
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider log:\n%s", proctest.Tail(provLog, 60))
		}
	})

	timeout := 150 * time.Second
	if full {
		timeout += 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	params, err := c.Params(ctx)
	if err != nil {
		t.Fatal(err)
	}

	type limitCase struct {
		name        string
		run         string
		res         tx.Resources
		durationSec uint64
		// words the provider's end reason must hold (any of them, lower case)
		reason []string
		// how the runtime must report the end
		oom, timedOut, diskLimit bool
		// what spare attach makes of it: -o json's outcome, and its exit status
		outcome string
		exit    int
		// a line the workload logs before it reaches the limit
		logged string
		// ranToDuration: the lease is paid exactly price × duration; otherwise it ended before its duration
		ranToDuration bool
	}
	const deposit = 10 * api.USPR
	cases := []*limitCase{{
		// A pipe from /dev/zero with no newline: tail holds all of it in memory, far past the 48 MiB allowed.
		name: "memory", run: `echo allocating; head -c 1024M /dev/zero | tail; c=$?; echo "tail exited with $c"; exit $c`,
		res: tx.Resources{CPUMilli: 500, MemoryMiB: 48}, durationSec: 120,
		reason: []string{"out of memory", "oom"}, oom: true, logged: "allocating", outcome: "memory_limit", exit: exitMemoryLimit,
	}, {
		name: "duration", run: `echo sleeping; sleep 60; echo woke`,
		res: tx.Resources{CPUMilli: 500, MemoryMiB: 64}, durationSec: 3,
		reason: []string{"duration reached (3s)"}, timedOut: true, ranToDuration: true, logged: "sleeping", outcome: "duration_reached", exit: exitDurationReached,
	}, {
		// Six files of 6 MiB each in the work directory: 36 MiB on a 16 MiB disk (each file is under the
		// per-file limit, RLIMIT_FSIZE = the disk; the daemon's disk watch sees the total). On a busy machine the
		// watch may stop it before the last file: only what it said before writing is certain to be in the log.
		name: "disk", run: `echo writing; for i in 1 2 3 4 5 6; do head -c 6M /dev/zero > f$i || exit 3; done; echo written; sleep 60; echo woke`,
		res: tx.Resources{CPUMilli: 500, MemoryMiB: 64, DiskMiB: 16}, durationSec: 120,
		reason: []string{"disk limit"}, diskLimit: true, logged: "writing", outcome: "disk_limit", exit: exitDiskLimit,
	}}

	// The orders, one after the other (one sender), then the tenant's balance: from here on it sends nothing,
	// so every change to its balance is a refund.
	sender := c.NewSender(tenantKey)
	raws := map[string][]byte{}
	orderIDs := map[string]uint64{}
	tenantAcc, err := c.Account(ctx, tenantKey.Address())
	if err != nil {
		t.Fatal(err)
	}
	balanceFunded := tenantAcc.Balance
	var fees uint64
	for _, tc := range cases {
		m := &manifest.Manifest{Version: 1, Run: tc.run, Resources: tc.res, DurationSec: tc.durationSec}
		raw, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		res, err := sender.Send(ctx, &tx.CreateOrder{Resources: m.Resources, MaxPricePerHour: 100 * api.USPR,
			ManifestHash: manifest.Hash(raw), Deposit: deposit, DurationSec: m.DurationSec})
		if err != nil {
			t.Fatalf("%s: CreateOrder: %v", tc.name, err)
		}
		idStr, _ := res.Attr("order.created", "order_id")
		orderIDs[tc.name], _ = strconv.ParseUint(idStr, 10, 64)
		raws[tc.name] = raw
		fees += res.Fee
	}
	if tenantAcc, err = c.Account(ctx, tenantKey.Address()); err != nil {
		t.Fatal(err)
	}
	balanceBefore := tenantAcc.Balance
	if want := balanceFunded - fees - uint64(len(cases))*deposit; balanceBefore != want {
		t.Fatalf("tenant balance %d after its orders, want %d - fees %d - deposits %d = %d", balanceBefore,
			balanceFunded, fees, uint64(len(cases))*deposit, want)
	}

	leaseIDs := map[string]uint64{}
	for _, tc := range cases {
		waitUntil(t, ctx, tc.name+"'s order to be leased", provLog, func() bool {
			o, err := c.Order(ctx, orderIDs[tc.name])
			leaseIDs[tc.name] = o.LeaseID
			return err == nil && o.State == api.OrderLeased
		})
	}
	// The daemon keeps one directory of lease directories per provider key.
	leaseDir := func(id uint64) string {
		return filepath.Join(leases, provKey.Address().String(), strconv.FormatUint(id, 10))
	}
	var wg sync.WaitGroup
	refused := make([]string, len(cases))
	for i, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, body := call("PUT", fmt.Sprintf("/leases/%d/manifest", leaseIDs[tc.name]), raws[tc.name])
				if code == 200 {
					refused[i] = ""
					return
				}
				refused[i] = fmt.Sprintf("%s: PUT manifest: %d %s", tc.name, code, body)
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	for _, r := range refused {
		if r != "" {
			t.Fatalf("a manifest was not accepted in time: %s\nprovider log:\n%s", r, proctest.Tail(provLog, 40))
		}
	}
	sent := time.Now()

	// Follow the leases and the tenant's balance together, reading them only between blocks (the same height
	// before and after), so that every change of balance is matched with the leases that ended in between.
	views := map[string]api.LeaseView{}
	ended := map[string]bool{}
	endedAt := map[string]time.Duration{}
	lastBalance := balanceBefore
	var balanceErrs []string
	waitUntil(t, ctx, "the three leases to end on the ledger", provLog, func() bool {
		st, err := c.Status(ctx)
		if err != nil {
			return false
		}
		acc, err := c.Account(ctx, tenantKey.Address())
		if err != nil {
			return false
		}
		snap := map[string]api.LeaseView{}
		for _, tc := range cases {
			l, err := c.Lease(ctx, leaseIDs[tc.name])
			if err != nil {
				return false
			}
			snap[tc.name] = l
		}
		if st2, err := c.Status(ctx); err != nil || st2.Height != st.Height {
			return false // a block came in between: read again
		}
		var refunds uint64
		var which []string
		for _, tc := range cases {
			l := snap[tc.name]
			if !ended[tc.name] && (l.State == api.LeaseCompleted || l.State == api.LeaseClosed) {
				ended[tc.name], endedAt[tc.name] = true, time.Since(sent)
				refunds += l.Refunded
				which = append(which, tc.name)
			}
			views[tc.name] = l
		}
		if acc.Balance != lastBalance+refunds {
			balanceErrs = append(balanceErrs, fmt.Sprintf("at height %d the tenant's balance went from %d to %d (%+d) as %v ended, refunded %d",
				st.Height, lastBalance, acc.Balance, int64(acc.Balance)-int64(lastBalance), which, refunds))
		}
		if len(which) > 0 {
			t.Logf("height %d: %v ended, the tenant's balance %+d uspr (refunds %d)", st.Height, which,
				int64(acc.Balance)-int64(lastBalance), refunds)
		}
		lastBalance = acc.Balance
		return len(ended) == len(cases)
	})
	if len(balanceErrs) > 0 {
		t.Errorf("the tenant's balance did not move by exactly the refunds:\n%s", strings.Join(balanceErrs, "\n"))
	}
	var refunded uint64
	for _, tc := range cases {
		refunded += views[tc.name].Refunded
	}
	if lastBalance != balanceBefore+refunded {
		t.Errorf("tenant balance %d after the leases, %d before: want exactly the refunds, %d, more", lastBalance, balanceBefore, refunded)
	}
	// Nothing is left in escrow (these were the only leases) and no token appeared or vanished.
	if sup, err := c.Supply(ctx); err != nil {
		t.Errorf("supply: %v", err)
	} else if !sup.Holds() || sup.Escrow != 0 {
		t.Errorf("after the leases: supply %+v, want the invariant to hold with nothing in escrow", sup)
	}

	for _, tc := range cases {
		l := views[tc.name]
		id := leaseIDs[tc.name]
		// The ledger: completed with the provider's receipt, paid exactly what it ran, the rest refunded.
		if l.State != api.LeaseCompleted {
			t.Errorf("%s: lease %d is %s (%q), want completed with a receipt", tc.name, id, l.State, l.CloseReason)
			continue
		}
		if l.Receipt == nil {
			t.Errorf("%s: lease %d completed without a receipt", tc.name, id)
			continue
		}
		if l.Receipt.ExitCode == 0 {
			t.Errorf("%s: receipt exit code 0, want the failure", tc.name)
		}
		want := l.Price * (l.EndedMs - l.StartedMs) / 3_600_000
		if l.Paid != want {
			t.Errorf("%s: paid %d, want price %d × %d ms / 1 h = %d", tc.name, l.Paid, l.Price, l.EndedMs-l.StartedMs, want)
		}
		if tc.ranToDuration {
			if l.EndedMs-l.StartedMs != tc.durationSec*1000 {
				t.Errorf("%s: billed %d ms, want exactly its duration, %d ms", tc.name, l.EndedMs-l.StartedMs, tc.durationSec*1000)
			}
			if want := l.Price * tc.durationSec * 1000 / 3_600_000; l.Paid != want {
				t.Errorf("%s: paid %d, want price × duration = %d", tc.name, l.Paid, want)
			}
		} else if l.EndedMs >= l.StartedMs+tc.durationSec*1000 {
			t.Errorf("%s: billed until %d, its duration's end: the limit did not end it early", tc.name, l.EndedMs)
		}
		if l.Paid+l.Refunded != l.Deposit || l.Deposit != deposit || l.Held != 0 {
			t.Errorf("%s: paid %d + refunded %d (held %d) != deposit %d", tc.name, l.Paid, l.Refunded, l.Held, l.Deposit)
		}
		if l.Take != l.Paid*params.TakeRatePPM/tx.PPM {
			t.Errorf("%s: take %d of %d paid, want %d ppm", tc.name, l.Take, l.Paid, params.TakeRatePPM)
		}

		// The provider: the end reason in words, the runtime's result, the same receipt.
		var st struct {
			State   string          `json:"state"`
			Reason  string          `json:"reason"`
			Result  *runtime.Result `json:"result"`
			Receipt *tx.Receipt     `json:"receipt"`
		}
		code, body := call("GET", fmt.Sprintf("/leases/%d/status", id), nil)
		if code != 200 || json.Unmarshal(body, &st) != nil || st.Result == nil || st.Receipt == nil {
			t.Errorf("%s: GET /leases/%d/status: %d %s", tc.name, id, code, body)
			continue
		}
		// Both the lease's end reason and the workload's result say which limit, and neither reads as a stop the
		// tenant asked for.
		for _, r := range []string{st.Reason, st.Result.Reason} {
			if !containsAny(strings.ToLower(r), tc.reason) || strings.Contains(r, "stopped on request") {
				t.Errorf("%s: the provider's end reason %q (workload: %q) does not say %q", tc.name, st.Reason, st.Result.Reason, tc.reason)
				break
			}
		}
		// The log: what the workload wrote before the limit, nothing after.
		_, logs := call("GET", fmt.Sprintf("/leases/%d/logs", id), nil)
		if !strings.Contains(string(logs), tc.logged+"\n") || strings.Contains(string(logs), "woke") {
			t.Errorf("%s: log %q, want %q and the workload never past its limit", tc.name, logs, tc.logged)
		}
		if st.Result.OOMKilled != tc.oom || st.Result.TimedOut != tc.timedOut || st.Result.DiskLimit != tc.diskLimit {
			t.Errorf("%s: result %+v, want oom_killed %v, timed_out %v, disk_limit %v", tc.name, *st.Result, tc.oom, tc.timedOut, tc.diskLimit)
		}
		// The tenant's CLI names the limit: spare attach on the ended lease, its outcome and exit status.
		att := exec.Command(bin, append(kb, "attach", strconv.FormatUint(id, 10), "-o", "json", "--outputs", filepath.Join(tmp, "outputs"))...)
		out, _ := att.Output()
		var ar struct {
			Outcome string `json:"outcome"`
		}
		if json.Unmarshal(out, &ar) != nil || ar.Outcome != tc.outcome || att.ProcessState.ExitCode() != tc.exit {
			t.Errorf("%s: spare attach: outcome %q, exit status %d; want %q, %d\n%s", tc.name, ar.Outcome, att.ProcessState.ExitCode(), tc.outcome, tc.exit, out)
		}
		if st.Receipt.ExitCode != l.Receipt.ExitCode || st.Receipt.EndMs != l.Receipt.EndMs || !bytes.Equal(st.Receipt.Signature, l.Receipt.Signature) {
			t.Errorf("%s: the provider's receipt %+v differs from the ledger's %+v", tc.name, *st.Receipt, *l.Receipt)
		}
		t.Logf("%s: lease %d ended %s after its manifest: %s; exit code %d; ran %d ms by the receipt, billed %d ms at %s/h: paid %d uspr, refunded %d of %d; provider says %q",
			tc.name, id, endedAt[tc.name].Round(10*time.Millisecond), l.State, l.Receipt.ExitCode, l.Receipt.EndMs-l.Receipt.StartMs,
			l.EndedMs-l.StartedMs, client.FormatAmount(l.Price), l.Paid, l.Refunded, l.Deposit, st.Reason)
	}

	// Nothing of the workloads is left: their cgroups (the runtime's copy of its state names them) are gone once
	// the leases are done on the provider.
	cgroups := 0
	for _, tc := range cases {
		id := leaseIDs[tc.name]
		waitUntil(t, ctx, tc.name+"'s lease to be done on the provider", provLog, func() bool {
			var st struct{ State string }
			_, sb := call("GET", fmt.Sprintf("/leases/%d/status", id), nil)
			return json.Unmarshal(sb, &st) == nil && st.State == "done"
		})
		b, err := os.ReadFile(filepath.Join(leaseDir(id), ".process", "state.json"))
		if err != nil {
			t.Errorf("%s: the runtime's state: %v", tc.name, err)
			continue
		}
		var ws struct {
			Cgroup   string   `json:"cgroup"`
			CgroupV1 []string `json:"cgroup_v1"`
		}
		if err := json.Unmarshal(b, &ws); err != nil {
			t.Errorf("%s: the runtime's state: %v", tc.name, err)
			continue
		}
		for _, cg := range append([]string{ws.Cgroup}, ws.CgroupV1...) {
			if cg == "" {
				continue // a host without cgroups
			}
			cgroups++
			if _, err := os.Stat(cg); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: cgroup %s left behind after the workload ended (%v)", tc.name, cg, err)
			}
		}
	}

	if full {
		// The lease directories go once limits.keep_lease_data has passed (the daemon looks once a minute).
		for _, tc := range cases {
			dir := leaseDir(leaseIDs[tc.name])
			waitUntil(t, ctx, tc.name+"'s lease directory to be removed", provLog, func() bool {
				_, err := os.Lstat(dir)
				return errors.Is(err, os.ErrNotExist)
			})
		}
	}
	t.Logf("three leases past their limits ended, settled and checked (%d cgroups gone) in %s (%s since the manifests were sent)",
		cgroups, time.Since(began).Round(100*time.Millisecond), time.Since(sent).Round(100*time.Millisecond))
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
