// Package jobspec reads the tenant's job file: YAML parsed strictly, so that every unknown field, wrong type,
// wrong unit and impossible combination is an error naming the file, line, column, field and fix, and every
// problem in a file is reported at once. A parsed Job compiles to the manifest the provider runs (Job.Manifest,
// which reads the files it ships) and to the order that goes on the ledger (Job.Order). Schema is the JSON
// Schema of the format, for editors.
//
// JOBSPEC.md, at the repository's root, documents every field with its type, default and bounds; doc_test.go
// parses and compiles each of its YAML examples and checks that it names every field, so the two cannot drift.
//
// Defaults (every field but run has one; run may be left out only when image is given):
//
//	name       the job file's name without its extension ("train.yaml" → "train")
//	duration   1h
//	resources  CPU-only jobs: cpu 1, memory 512MiB, disk 1GiB
//	           GPU jobs:      cpu 2 per GPU, memory 8GiB per GPU, disk 10GiB
//	price.max  GPU jobs: 2 SPR per GPU-hour; CPU-only jobs: 0.1 SPR per core-hour
//	placement  anywhere, any provider, unverified hardware allowed, min_reputation 0
//
// The default prices are twice what a provider configured by `spare provider init` asks (1 SPR per GPU-hour,
// 0.02 per core-hour, 0.005 per GiB-hour of memory), so the default resources of a job find a bidder; the auction
// takes the lowest bid, so price.max is a ceiling, and the deposit (price × duration) is escrow whose unused part
// is refunded. The default duration bounds that deposit.
//
// price.max is per GPU-hour for GPU jobs and per CPU core-hour for CPU-only jobs; the order's maximum price for
// the whole lease is price.max × GPUs (or × cores), and that covers everything the provider charges (CPU and
// memory included). See MinVRAMMiB for how vram is matched.
//
// verify.replicas above 1 runs the job on that many providers at once and pays them only if their results
// agree (the ledger's redundant execution). cluster runs it on several providers at once as one job, with the
// rendezvous environment torchrun expects.
package jobspec

import (
	"time"

	"github.com/sparenet/spare/ledger/tx"
)

// Defaults; see the package documentation.
const (
	DefaultDuration        = time.Hour
	DefaultCPUMilli        = 1000      // CPU-only jobs
	DefaultMemoryMiB       = 512       // CPU-only jobs
	DefaultDiskMiB         = 1 << 10   // CPU-only jobs
	DefaultGPUCPUMilli     = 2000      // per GPU
	DefaultGPUMemoryMiB    = 8 << 10   // per GPU
	DefaultGPUDiskMiB      = 10 << 10  // GPU jobs
	DefaultGPUPriceUSPR    = 2 * USPR  // per GPU-hour
	DefaultCPUPriceUSPR    = USPR / 10 // per core-hour
	MaxJobFileBytes        = 1 << 20
	MaxCPUMilli            = 4096 * 1000
	MaxPorts               = 64
	MaxInputs              = 64
	MaxNameBytes           = 128
	MaxClusterNodes        = 32
	MaxClusterRestarts     = 3
	MaxVerifyReplicas      = 8
	DefaultVaultMonths     = 12 // outputs: {to: vault}'s term, as spare store put's
	MaxDurationSec         = tx.MaxDurationSec
	maxRTTLimit            = 10 * time.Second
	defaultNameWithoutFile = "job"
)

// Job is a parsed job file. Parse fills in every default, so the fields are what the job will ask for.
type Job struct {
	// File is the name Parse was given (for error messages).
	File string
	Name string
	Run  string // shell command (sh -c); empty only when Image is set
	// Image is a container image; it needs a provider with the docker runtime.
	Image string
	// Files are shipped inside the manifest: slash-separated paths relative to the job file's directory, files
	// or directories (shipped with everything below them).
	Files []string
	// Inputs are fetched by the provider and checked: from a URL against their SHA-256, from Spare Vault against
	// their BLAKE3 root.
	Inputs []Input
	// Outputs are paths collected at the end; a trailing "/" marks a directory.
	Outputs []string
	// VaultOutputs is set by outputs: {paths: [...], to: vault}: once the tenant has downloaded the outputs and
	// verified them against the provider's signed receipt, it stores them in Spare Vault as one object (their
	// directory's deterministic archive). Nil otherwise. The manifest says so (outputs_vault), so that the
	// provider's receipt carries the root of that archive (tx.Receipt.VaultRoot), which the stored object must
	// have: the provider vouches for the object, the tenant stores and pays for it.
	VaultOutputs *VaultOutputs

	Env       map[string]string
	Ports     []uint16
	Resources Resources
	Duration  time.Duration // whole seconds, 1s..365 days
	Price     Price
	Placement Placement
	// Cluster and Verify are nil when the file has no such block.
	Cluster *Cluster
	Verify  *Verify

	fileLines []pos // where each Files entry is written
}

// Input is a larger file the provider fetches before the job starts: from a URL (checked against SHA256) or
// from Spare Vault by its content root (Vault; checked against the root as it streams). Exactly one of URL and
// Vault is set; SHA256 goes with URL only.
type Input struct {
	URL    string
	SHA256 tx.Hash
	// Vault is the BLAKE3 root of an object stored in Spare Vault (b3sum prints it).
	Vault tx.Hash
	// Path is where it goes, relative to the work directory; a trailing "/" puts it in that directory under the
	// URL's file name (a vault input's: its root in hex). Default: that name.
	Path string
	// Unpack (vault inputs only) extracts the object, a directory's archive as spare store put and outputs:
	// {to: vault} store it, into the new directory Path (a trailing "/" adds nothing; default: the root in hex).
	Unpack bool
}

// VaultOutputs is how a job's outputs are stored in Spare Vault (outputs: {to: vault}).
type VaultOutputs struct {
	// Months is the deal's term (1..tx.MaxStorageMonths, default DefaultVaultMonths); 0 stores them permanently
	// (permanent: true).
	Months uint64
}

// Resources is what the job asks of one provider.
type Resources struct {
	GPU       GPU
	CPUMilli  uint64 // millicores: 1000 = one core
	MemoryMiB uint64
	DiskMiB   uint64
}

// GPU is the GPU request.
type GPU struct {
	Count  uint32
	Models []string // any of; empty = any model. Normalised names (H100, A100-PCIe, RTX4090), any case.
	// VRAMMiB is the memory per GPU as asked (0 = any). The order asks for MinVRAMMiB(VRAMMiB).
	VRAMMiB uint64
}

// Price is the most the tenant pays.
type Price struct {
	// MaxUSPR is uspr per GPU-hour, or per CPU core-hour for a CPU-only job.
	MaxUSPR uint64
}

// Placement restricts which providers may serve the job.
type Placement struct {
	Regions          []string
	Deny             []tx.Address
	Verified         bool
	MinReputationPPM uint32 // min_reputation × 1,000,000
}

// Cluster asks for several providers as one cluster, leased all at once, whose every pair has a published
// round trip within MaxRTT (default DefaultMaxRTT). OnFailure is "close" (default: one member failing ends the
// cluster) or "restart" (the cluster is leased again on other providers, up to MaxRestarts times, default 1).
type Cluster struct {
	Nodes       int
	MaxRTT      time.Duration
	OnFailure   string
	MaxRestarts int // 0 with close
}

// DefaultMaxRTT is a cluster's round-trip bound when the file gives none.
const DefaultMaxRTT = 5 * time.Millisecond

// Verify asks for the job to run on several providers at once and their results (output root and exit code)
// compared by the ledger before anyone is paid. The job must be deterministic: same inputs, same output bytes.
type Verify struct {
	Replicas int
}

// Nodes is how many providers one cluster lease spans: cluster.nodes, or 1.
func (j *Job) Nodes() uint32 {
	if j.Cluster == nil || j.Cluster.Nodes < 1 {
		return 1
	}
	return uint32(j.Cluster.Nodes)
}

// Replicas is how many providers run the job at once: verify.replicas, or 1.
func (j *Job) Replicas() uint32 {
	if j.Verify == nil || j.Verify.Replicas < 1 {
		return 1
	}
	return uint32(j.Verify.Replicas)
}

type pos struct{ line, col int }

// IsGPU reports whether the job asks for at least one GPU.
func (j *Job) IsGPU() bool { return j.Resources.GPU.Count > 0 }

// TxResources is the resource request as the ledger and the manifest carry it (VRAM with its tolerance applied).
func (j *Job) TxResources() tx.Resources {
	r := tx.Resources{
		GPUCount:  j.Resources.GPU.Count,
		CPUMilli:  j.Resources.CPUMilli,
		MemoryMiB: j.Resources.MemoryMiB,
		DiskMiB:   j.Resources.DiskMiB,
	}
	if len(j.Resources.GPU.Models) > 0 {
		r.GPUModels = append([]string(nil), j.Resources.GPU.Models...)
	}
	if j.Resources.GPU.VRAMMiB > 0 {
		r.GPUMinVRAMMiB = MinVRAMMiB(j.Resources.GPU.VRAMMiB)
	}
	return r
}

// TxConstraints is the placement as the ledger carries it.
func (j *Job) TxConstraints() tx.Constraints {
	c := tx.Constraints{
		Verified:         j.Placement.Verified,
		MinReputationPPM: j.Placement.MinReputationPPM,
		Docker:           j.Image != "",
	}
	if len(j.Placement.Regions) > 0 {
		c.Regions = append([]string(nil), j.Placement.Regions...)
	}
	if len(j.Placement.Deny) > 0 {
		c.Deny = append([]tx.Address(nil), j.Placement.Deny...)
	}
	return c
}
