package docker

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"

	"github.com/sparenet/spare/runtime"
)

var _ runtime.Prober = (*Runtime)(nil)

// Guarantees reports what this runtime guarantees on this host, from the engine's `docker info` (cgroup version
// and driver, memory, swap and pids limit support, security options: seccomp, userns, rootless) and from what
// every container of this runtime gets regardless of the host (no-new-privileges, a PID namespace, private
// tmpfs). Without an engine every guarantee is reported missing.
func (r *Runtime) Guarantees(ctx context.Context) []runtime.Guarantee {
	cli, err := r.client()
	var info system.Info
	if err == nil {
		var res client.SystemInfoResult
		res, err = cli.Info(ctx, client.InfoOptions{})
		info = res.Info
	}
	if err != nil {
		var out []runtime.Guarantee
		for _, g := range guaranteeNames {
			out = append(out, runtime.Guarantee{Name: g, Required: g != runtime.GuaranteeCPU,
				Missing: fmt.Sprintf("the Docker engine does not answer (%v): start it, or set docker = false", err)})
		}
		return out
	}
	return guaranteesFrom(info, os.Geteuid() == 0, r.WritableRootFS)
}

var guaranteeNames = []string{runtime.GuaranteeMemory, runtime.GuaranteePids, runtime.GuaranteeCPU, runtime.GuaranteeUser,
	runtime.GuaranteePrivateTmp, runtime.GuaranteePIDNS, runtime.GuaranteeNoNewPrivs, runtime.GuaranteeSeccomp,
	runtime.GuaranteeFilesystem}

// securityOptions parses the engine's SecurityOptions ("name=seccomp,profile=default", "name=userns"...) into
// name → key → value.
func securityOptions(opts []string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, o := range opts {
		kv := map[string]string{}
		for f := range strings.SplitSeq(o, ",") {
			k, v, _ := strings.Cut(f, "=")
			kv[k] = v
		}
		if name := kv["name"]; name != "" {
			out[name] = kv
		}
	}
	return out
}

// guaranteesFrom is Guarantees for an engine's info; root is whether this daemon runs as root (so that it can
// give each lease's work dir to the lease's uid).
func guaranteesFrom(info system.Info, root, writableRoot bool) []runtime.Guarantee {
	sec := securityOptions(info.SecurityOptions)
	cg := "cgroup v" + info.CgroupVersion
	if info.CgroupVersion == "" {
		cg = "cgroup v1"
	}
	cg += " (" + info.CgroupDriver + " driver)"
	g := func(name string, ok bool, mechanism, missing string) runtime.Guarantee {
		x := runtime.Guarantee{Name: name, OK: ok, Required: name != runtime.GuaranteeCPU}
		if ok {
			x.Mechanism = mechanism
		} else {
			x.Missing = missing
		}
		return x
	}
	var out []runtime.Guarantee

	memMissing := "the engine cannot limit memory (docker info: MemoryLimit false): enable the cgroup memory controller (cgroup_enable=memory), or use cgroup v2"
	if info.MemoryLimit && !info.SwapLimit {
		memMissing = "the engine cannot limit swap (docker info: SwapLimit false), so a container may use its memory limit again in swap: enable swap accounting (swapaccount=1 on cgroup v1 kernels), use cgroup v2, or turn swap off"
	}
	out = append(out, g(runtime.GuaranteeMemory, info.MemoryLimit && info.SwapLimit,
		cg+" memory limit per container, memory+swap = memory (no swap), tmpfs and /dev/shm counted in it", memMissing))
	out = append(out, g(runtime.GuaranteePids, info.PidsLimit, cg+" pids limit per container (Runtime.PidsLimit)",
		"the engine cannot limit processes (docker info: PidsLimit false): enable the cgroup pids controller, or use cgroup v2"))
	out = append(out, g(runtime.GuaranteeCPU, info.CPUCfsQuota, cg+" CFS quota (NanoCPUs)",
		"the engine cannot enforce a CPU quota (docker info: CpuCfsQuota false): enable CONFIG_CFS_BANDWIDTH and the cpu controller"))

	userOK, userMissing := root, "the provider daemon does not run as root, so it cannot give each lease a uid of its own: containers run as the daemon's uid; run it as root"
	switch {
	case sec["userns"] != nil:
		userOK, userMissing = false, "the engine remaps user namespaces (userns-remap): a lease's uid in the container is not its uid on the host, so its work dir is not writable; run the engine without userns-remap for the docker runtime"
	case sec["rootless"] != nil:
		userOK, userMissing = false, "the engine is rootless: a lease's uid in the container maps to a subordinate uid on the host, so its work dir is not writable; use a rootful engine for the docker runtime"
	}
	out = append(out, g(runtime.GuaranteeUser, userOK,
		"per-lease uid and gid UIDBase + lease id mod UIDRange, no supplementary groups; the work dir is given to it", userMissing))

	out = append(out, g(runtime.GuaranteePrivateTmp, true,
		"tmpfs /tmp and /var/tmp sized by the lease's disk, /run, and /dev/shm (half the memory limit), private to the container, nosuid, nodev", ""))
	out = append(out, g(runtime.GuaranteePIDNS, true, "a PID namespace per container (PidMode private); all its processes die with it", ""))
	out = append(out, g(runtime.GuaranteeNoNewPrivs, true, "no-new-privileges:true, every capability dropped", ""))

	seccomp := sec["seccomp"]
	seccompMissing := "the engine has no seccomp support (docker info: no name=seccomp security option): use a kernel and engine built with seccomp"
	if seccomp != nil && seccomp["profile"] == "unconfined" {
		seccompMissing = "the engine's default seccomp profile is unconfined (dockerd --seccomp-profile=unconfined): remove that option"
	}
	profile := seccomp["profile"]
	if profile == "" || profile == "default" {
		profile = "Docker's default seccomp profile"
	} else {
		profile = "the engine's seccomp profile " + profile
	}
	out = append(out, g(runtime.GuaranteeSeccomp, seccomp != nil && seccomp["profile"] != "unconfined", profile, seccompMissing))

	const inputs = "; Spec.ReadOnlyPaths (Vault inputs) bound read-only at /work/PATH, the directories above them as mount points (no link followed)"
	fsMech := "the container sees its image read-only and /work, its own work dir; no other host path is mounted" + inputs
	if writableRoot {
		fsMech = "the container sees its image (writable layer, unbounded: WritableRootFS) and /work, its own work dir; no other host path is mounted" + inputs
	}
	out = append(out, g(runtime.GuaranteeFilesystem, true, fsMech, ""))
	return out
}
