// Package inventory detects a provider machine's hardware: its NVIDIA GPUs (by running nvidia-smi and parsing
// its CSV output, no NVML or cgo), its CPUs and memory (from /proc, lowered to the daemon's own cgroup v2 limits
// and CPU affinity), the disk behind its data directory (statfs), and whether a Docker engine answers.
//
// Detect gathers all of it into an Inventory; Inventory.Hardware turns that into the tx.Hardware a provider
// declares on the ledger, grouping identical GPUs. NormalizeModel is the one rule that maps nvidia-smi's product
// names ("NVIDIA H100 80GB HBM3") to the model names used on the ledger, in job files and in price tables
// ("H100"). IsolationEnv is the environment that confines a lease's workload to the GPUs assigned to it.
//
// The parsing functions (ParseNvidiaSMI, NormalizeModel) are pure; everything that touches the machine takes
// its paths from Options so that tests can run it against recorded fixtures.
package inventory
