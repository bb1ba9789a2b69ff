package provider

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sparenet/spare/runtime"
)

// Isolation policy. A runtime reports what it can enforce on this host (runtime.Prober); the daemon offers a
// runtime only when every required guarantee holds, or the operator accepted its absence in provider.toml
// ([isolation] accept_risks). Tenants are strangers: a limit the host cannot enforce is never advertised
// silently. `spare provider doctor`, `provider init`, `provider start` and `provider status` show the same report.

// IsolationConfig is provider.toml's [isolation].
type IsolationConfig struct {
	// AcceptRisks names required guarantees (runtime.Guarantee* names: memory, pids, user, private_tmp,
	// pid_namespace, no_new_privs, seccomp, filesystem) whose absence the operator accepts, for every runtime
	// ("memory") or one ("docker:seccomp"). A runtime missing a required guarantee that is not accepted is not
	// offered. Only accept a risk on a machine with nothing else on it.
	AcceptRisks []string `toml:"accept_risks"`
}

// knownGuarantees are the names accept_risks may use.
var knownGuarantees = []string{runtime.GuaranteeMemory, runtime.GuaranteePids, runtime.GuaranteeCPU, runtime.GuaranteeUser,
	runtime.GuaranteePrivateTmp, runtime.GuaranteePIDNS, runtime.GuaranteeNoNewPrivs, runtime.GuaranteeSeccomp, runtime.GuaranteeFilesystem}

// Validate checks accept_risks.
func (c IsolationConfig) Validate() error {
	for i, r := range c.AcceptRisks {
		rt, name, ok := strings.Cut(r, ":")
		if !ok {
			name, rt = rt, ""
		}
		if rt != "" && rt != "process" && rt != "docker" {
			return fmt.Errorf("isolation.accept_risks[%d] %q: runtime %q is not process or docker", i, r, rt)
		}
		if !slices.Contains(knownGuarantees, name) {
			return fmt.Errorf("isolation.accept_risks[%d] %q: not a guarantee; use one of %s (optionally as RUNTIME:NAME)", i, r, strings.Join(knownGuarantees, ", "))
		}
	}
	return nil
}

func (c IsolationConfig) accepts(rt, name string) bool {
	return slices.Contains(c.AcceptRisks, name) || slices.Contains(c.AcceptRisks, rt+":"+name)
}

// RuntimeIsolation is one runtime's report.
type RuntimeIsolation struct {
	Runtime    string              `json:"runtime"`
	Guarantees []runtime.Guarantee `json:"guarantees"`
	// Missing are required guarantees this host lacks and the operator did not accept: the runtime is not offered.
	Missing []string `json:"missing,omitempty"`
	// Accepted are required guarantees this host lacks that the operator accepted in accept_risks.
	Accepted []string `json:"accepted,omitempty"`
	Offered  bool     `json:"offered"`
}

// IsolationReport is the report over every runtime the config enables.
type IsolationReport struct {
	Runtimes []RuntimeIsolation `json:"runtimes"`
}

// CheckIsolation asks each runtime what it guarantees here and decides which are offered. A guarantee a runtime
// does not report (or a runtime with no Prober) counts as missing.
func CheckIsolation(ctx context.Context, policy IsolationConfig, rts map[string]runtime.Runtime) IsolationReport {
	names := make([]string, 0, len(rts))
	for n := range rts {
		names = append(names, n)
	}
	sort.Strings(names)
	var rep IsolationReport
	for _, n := range names {
		ri := RuntimeIsolation{Runtime: n}
		if p, ok := rts[n].(runtime.Prober); ok {
			ri.Guarantees = p.Guarantees(ctx)
		}
		// What a runtime does not report, it does not give.
		for _, g := range knownGuarantees {
			if !slices.ContainsFunc(ri.Guarantees, func(r runtime.Guarantee) bool { return r.Name == g }) {
				ri.Guarantees = append(ri.Guarantees, runtime.Guarantee{Name: g, Required: g != runtime.GuaranteeCPU,
					Missing: "this runtime does not report it"})
			}
		}
		for i, g := range ri.Guarantees {
			// The daemon decides what is required, not the runtime: every known guarantee but cpu.
			if slices.Contains(knownGuarantees, g.Name) {
				g.Required = g.Name != runtime.GuaranteeCPU
				ri.Guarantees[i] = g
			}
			if g.OK || !g.Required {
				continue
			}
			if policy.accepts(n, g.Name) {
				ri.Accepted = append(ri.Accepted, g.Name)
			} else {
				ri.Missing = append(ri.Missing, g.Name)
			}
		}
		ri.Offered = len(ri.Missing) == 0
		rep.Runtimes = append(rep.Runtimes, ri)
	}
	return rep
}

// Runtime returns one runtime's report.
func (r IsolationReport) Runtime(name string) (RuntimeIsolation, bool) {
	for _, ri := range r.Runtimes {
		if ri.Runtime == name {
			return ri, true
		}
	}
	return RuntimeIsolation{}, false
}

// RefusalError explains why a runtime is not offered and how to fix it.
func (ri RuntimeIsolation) RefusalError() error {
	if ri.Offered {
		return nil
	}
	var why []string
	for _, g := range ri.Guarantees {
		if slices.Contains(ri.Missing, g.Name) {
			why = append(why, g.Name+": "+g.Missing)
		}
	}
	return fmt.Errorf("the %s runtime cannot isolate tenants on this host — %s. Fix the host (see `spare provider doctor` and docs/security.md), or accept the risk with [isolation] accept_risks = [%s] in provider.toml on a machine with nothing else on it",
		ri.Runtime, strings.Join(why, "; "), quoteList(ri.Runtime, ri.Missing))
}

func quoteList(rt string, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", rt+":"+n)
	}
	return strings.Join(q, ", ")
}

// guaranteeSummary lists a runtime's guarantees in one line: "memory pids cpu ... -seccomp" (missing ones marked).
func guaranteeSummary(ri RuntimeIsolation) string {
	parts := make([]string, 0, len(ri.Guarantees))
	for _, g := range ri.Guarantees {
		if g.OK {
			parts = append(parts, g.Name)
		} else {
			parts = append(parts, "-"+g.Name)
		}
	}
	return strings.Join(parts, " ")
}
