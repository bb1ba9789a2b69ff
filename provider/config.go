package provider

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/sparenet/spare/client"
	"github.com/sparenet/spare/inventory"
	"github.com/sparenet/spare/ledger/api"
	"github.com/sparenet/spare/ledger/tx"
)

// ConfigFile is the provider's configuration file name inside its home.
const ConfigFile = "provider.toml"

// Duration is a time.Duration written as "90s", "2m" in the config file.
type Duration struct{ time.Duration }

// MarshalText writes Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: use Go syntax like 90s, 2m or 1h", b)
	}
	d.Duration = v
	return nil
}

// Config is provider.toml.
type Config struct {
	// Node is the RPC address of a validator.
	Node string `toml:"node"`
	// Key is the name of the provider's key in the home's keyring.
	Key string `toml:"key"`
	// Region and Zone place the provider for tenants' placement constraints.
	Region string `toml:"region"`
	Zone   string `toml:"zone"`
	// HostURI is the public https address tenants reach (recorded on the ledger).
	HostURI string `toml:"host_uri"`
	// Listen is the local address of the tenant API.
	Listen string `toml:"listen"`
	// Runtime runs jobs that name no container image: "process".
	Runtime string `toml:"runtime"`
	// Docker offers the docker runtime for jobs that name an image (a Docker engine must answer).
	Docker bool `toml:"docker"`
	// ClusterContainers lets a cluster member that names an image run in a container in the host's network
	// namespace (its collectives connect to every member's host). False: this provider takes cluster members
	// without an image only; the other container isolation is unchanged either way.
	ClusterContainers bool `toml:"cluster_containers"`
	// DockerImages are the images tenants may run in the docker runtime (see ImageAllowed): a repository
	// ("docker.io/library/python", or "python": any tag or digest of it), repository:tag (that tag),
	// repository@sha256:… (that digest only), or "*" (every image the engine has or can pull, the provider's
	// own private ones included). Empty with docker = true is an error. Default: DefaultDockerImages.
	DockerImages []string `toml:"docker_images"`
	// DockerRegistries are the registries an allowed image missing from the engine is pulled from
	// (anonymously), e.g. ["docker.io", "ghcr.io"]. Empty (the default): never pull; put images on the
	// machine with `spare provider images load FILE.tar` (or docker pull) first.
	DockerRegistries []string `toml:"docker_registries"`
	// LeasesDir holds one private directory per lease. Workloads run as per-lease users when the daemon runs
	// as root, so every directory above it must be traversable by others (mode o+x). Default: the data
	// directory's "leases" when not root, /var/lib/spare/leases when root.
	LeasesDir string `toml:"leases_dir"`
	// UIDBase places the per-lease users of the process runtime (daemon as root): UIDBase + lease id mod
	// 1,000,000. Two daemons on one machine (or dev networks, whose lease ids all start at 1) need different
	// bases. 0: the runtime's default.
	UIDBase uint32 `toml:"uid_base"`
	// Stake to keep bonded, in SPR ("auto" = the chain's minimum for the declared hardware).
	Stake string `toml:"stake"`
	// StakeTopUpBudget is the most the daemon bonds, in all, to restore stake lost to slashes (e.g. "50 SPR"),
	// over the life of its data directory: after a slash it bonds the difference back when this allows, and
	// otherwise logs why at error level and leaves the provider unable to bid. "auto" (the default): as much as
	// the stake it keeps bonded; "0": never top up.
	StakeTopUpBudget string `toml:"stake_topup_budget"`
	// Prices, in SPR.
	Prices Prices `toml:"prices"`
	// Limits on what this machine offers and how the daemon behaves.
	Limits Limits `toml:"limits"`
	// Isolation is the policy on guarantees this host cannot give (isolation.go).
	Isolation IsolationConfig `toml:"isolation"`
	// Hardware is what `spare provider init` detected; edit to offer less than the machine has.
	Hardware HardwareConfig `toml:"hardware"`
	// ProofSolver is the program that answers auditors' proof-of-GPU challenges on a GPU, one per device, with
	// that device alone visible (e.g. ["/usr/bin/python3", "/opt/spare/torch_solver.py"]; protocol in package
	// proof). Empty: the built-in CPU solver, which meets only a CPU's deadline.
	ProofSolver []string `toml:"proof_solver"`
	// ClusterPorts is the range, "FIRST-LAST", from which this provider gives the rendezvous port
	// (MASTER_PORT) to a cluster job whose rank 0 it runs. Other members connect to it at the host of
	// host_uri, so the range must be open to them.
	ClusterPorts string `toml:"cluster_ports"`
	// ServicePorts is the range, "FIRST-LAST", of host ports given to the ports a job declares (services such
	// as an inference endpoint). Tenants reach them at the host of host_uri, so the range must be open.
	ServicePorts string `toml:"service_ports"`
	// LatencyEvery is how often the daemon re-measures round trips to the other providers of its region and
	// publishes them (sooner when new providers appear); cluster orders are placed on them.
	LatencyEvery Duration `toml:"latency_every"`
	// Inputs bounds the download of a job's inputs: addresses (public only by default), redirects, time (inputs.go).
	Inputs InputsConfig `toml:"inputs"`
	// MaxLeaseDuration is the longest a lease on this provider may run in all once tenants extend it (`spare
	// extend`), e.g. "24h"; recorded on the ledger, which refuses longer extensions. 0 (the default): leases run
	// the duration they were ordered with, no extensions. Whole seconds, at most 8760h (one year, the ledger's
	// longest lease). It does not limit the orders the daemon bids on.
	MaxLeaseDuration Duration `toml:"max_lease_duration"`
	// Storage offers disk to Spare Vault (docs/vault.md); capacity_gib 0 (the default): none.
	Storage StorageConfig `toml:"storage"`
}

// StorageConfig is the disk a provider offers to Spare Vault. The daemon keeps its offer on the ledger equal to
// it (OfferStorage at start, a withdrawal when capacity_gib becomes 0).
type StorageConfig struct {
	// CapacityGiB is the disk offered, in GiB (0: none). At start the daemon checks that path's file system has
	// that much free.
	CapacityGiB uint64 `toml:"capacity_gib"`
	// Path is the directory shards are kept in (created if missing, mode 0700).
	Path string `toml:"path"`
	// PricePerGiBMonth is the price of a GiB stored for a month, in SPR (e.g. "0.002").
	PricePerGiBMonth string `toml:"price_per_gib_month"`
}

// maxStorageGiB is the most a provider offers, as the ledger bounds it.
const maxStorageGiB = tx.MaxStorageCapacity >> 30

// Offer is the OfferStorage that states this config on the ledger.
func (s StorageConfig) Offer() (*tx.OfferStorage, error) {
	if s.CapacityGiB == 0 {
		return &tx.OfferStorage{}, nil
	}
	if s.CapacityGiB > maxStorageGiB {
		return nil, fmt.Errorf("storage.capacity_gib %d: at most %d (1 PiB)", s.CapacityGiB, uint64(maxStorageGiB))
	}
	if s.Path == "" || !filepath.IsAbs(s.Path) {
		return nil, fmt.Errorf("storage.path %q: an absolute directory for the shards (e.g. \"/var/lib/spare/vault\")", s.Path)
	}
	price, err := client.ParseAmount(s.PricePerGiBMonth)
	if err != nil {
		return nil, fmt.Errorf("storage.price_per_gib_month: %w", err)
	}
	if price == 0 || price > tx.MaxStoragePrice {
		return nil, fmt.Errorf("storage.price_per_gib_month %q: from 0.000001 to %s SPR", s.PricePerGiBMonth, api.FormatSPR(tx.MaxStoragePrice))
	}
	return &tx.OfferStorage{CapacityBytes: s.CapacityGiB << 30, PricePerGiBMonth: price}, nil
}

// MaxLeaseSec is MaxLeaseDuration in seconds, as the ledger records it.
func (c *Config) MaxLeaseSec() uint64 {
	return uint64(max(c.MaxLeaseDuration.Duration, 0) / time.Second)
}

// ClusterPortRange parses ClusterPorts.
func (c *Config) ClusterPortRange() (first, last int, err error) {
	return portRange("cluster_ports", c.ClusterPorts)
}

// ServicePortRange parses ServicePorts.
func (c *Config) ServicePortRange() (first, last int, err error) {
	return portRange("service_ports", c.ServicePorts)
}

func portRange(key, v string) (first, last int, err error) {
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		b = a
	}
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || first < 1024 || last > 65535 || first > last {
		return 0, 0, fmt.Errorf("%s %q: write FIRST-LAST, ports 1024..65535 (e.g. 29500-29599)", key, v)
	}
	return first, last, nil
}

// Prices is the pricing table, or an external script.
type Prices struct {
	// GPUHour maps a GPU model (as detected, e.g. "H100") to SPR per GPU-hour.
	GPUHour map[string]string `toml:"gpu_hour"`
	// DefaultGPUHour prices models missing from GPUHour; empty = do not bid on them.
	DefaultGPUHour string `toml:"default_gpu_hour"`
	// CPUHour is SPR per CPU core-hour; MemoryGiBHour per GiB-hour of memory.
	CPUHour       string `toml:"cpu_hour"`
	MemoryGiBHour string `toml:"memory_gib_hour"`
	// Script, when set, prices each order instead of the table: it gets the order as JSON on stdin and prints
	// the lease price per hour in SPR (or "none" to skip the order) on stdout.
	Script        string   `toml:"script"`
	ScriptTimeout Duration `toml:"script_timeout"`
}

// Limits bound the daemon.
type Limits struct {
	MaxLeases       int      `toml:"max_leases"`       // concurrent leases
	ManifestTimeout Duration `toml:"manifest_timeout"` // a won lease without a manifest by then is closed
	WithdrawEvery   Duration `toml:"withdraw_every"`   // earnings of running leases are withdrawn this often
	// MaxLogBytes is the most of a lease's log the tenant API serves (the first bytes, then a marker line). The
	// whole log counts against the lease's disk.
	MaxLogBytes int64 `toml:"max_log_bytes"`
	// DiskCheckEvery is how often the daemon measures each running lease's disk (work directory and log): a
	// lease over its disk is stopped with the reason "disk limit".
	DiskCheckEvery Duration `toml:"disk_check_every"`
	// KeepLeaseData is how long a finished lease's directory (work files, outputs, log) is kept for the tenant
	// to fetch; it is removed after that.
	KeepLeaseData Duration `toml:"keep_lease_data"`
}

// HardwareConfig is the offered hardware.
type HardwareConfig struct {
	GPUs      []GPUConfig `toml:"gpus"`
	CPUCores  uint64      `toml:"cpu_cores"`
	MemoryMiB uint64      `toml:"memory_mib"`
	DiskMiB   uint64      `toml:"disk_mib"`
}

// GPUConfig is one GPU offered.
type GPUConfig struct {
	Index     int    `toml:"index"`
	UUID      string `toml:"uuid"`
	Model     string `toml:"model"`
	MemoryMiB uint64 `toml:"memory_mib"`
}

// DefaultConfig is the starting point `spare provider init` fills in.
func DefaultConfig() Config {
	return Config{
		Node: "http://127.0.0.1:26657", Key: "provider", Region: "local", Listen: "127.0.0.1:8443",
		HostURI: "https://127.0.0.1:8443", Runtime: "process", Stake: "auto", StakeTopUpBudget: "auto",
		Prices: Prices{GPUHour: map[string]string{}, DefaultGPUHour: "1", CPUHour: "0.02", MemoryGiBHour: "0.005",
			ScriptTimeout: Duration{2 * time.Second}},
		Limits: Limits{MaxLeases: 16, ManifestTimeout: Duration{2 * time.Minute}, WithdrawEvery: Duration{10 * time.Minute},
			MaxLogBytes: 64 << 20, DiskCheckEvery: Duration{2 * time.Second}, KeepLeaseData: Duration{24 * time.Hour}},
		ClusterPorts: "29500-29599", ServicePorts: "31000-31999", LatencyEvery: Duration{10 * time.Minute},
		ClusterContainers: true, DockerImages: DefaultDockerImages(),
		Inputs: DefaultInputsConfig(),
	}
}

// LoadConfig reads and validates home/provider.toml. Unknown keys are errors.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("provider config: %w (run 'spare provider init' first)", err)
	}
	c := DefaultConfig()
	d := toml.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("provider config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("provider config %s: %w", path, err)
	}
	return &c, nil
}

// Save writes the config (mode 0600).
func (c *Config) Save(path string) error {
	b, err := toml.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// Validate checks every field and names the one at fault.
func (c *Config) Validate() error {
	if _, err := client.New(c.Node, client.Options{}); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if c.Key == "" {
		return fmt.Errorf("key is empty: name the provider's key in the keyring")
	}
	info := tx.ProviderInfo{HostURI: c.HostURI, CertFingerprint: tx.Hash{1}, Region: c.Region, Zone: c.Zone, Hardware: c.Hardware.Ledger()}
	if err := info.Validate(); err != nil {
		return fmt.Errorf("%v (fields host_uri, region, zone, [hardware])", err)
	}
	if d := c.MaxLeaseDuration.Duration; d < 0 || d > tx.MaxDurationSec*time.Second || d%time.Second != 0 {
		return fmt.Errorf("max_lease_duration %s: whole seconds from 0 (no extensions, the default) to 8760h (one year), e.g. \"24h\"", d)
	}
	if _, err := url.Parse(c.HostURI); err != nil {
		return fmt.Errorf("host_uri: %w", err)
	}
	if c.Listen == "" {
		return fmt.Errorf("listen is empty: give host:port for the tenant API")
	}
	if c.Runtime != "process" {
		return fmt.Errorf("runtime %q: jobs without an image run in the process runtime; set runtime = \"process\" (and docker = true to also run images)", c.Runtime)
	}
	if err := c.validateDockerImages(); err != nil {
		return err
	}
	if c.Stake != "auto" {
		if _, err := client.ParseAmount(c.Stake); err != nil {
			return fmt.Errorf("stake: %w (or \"auto\")", err)
		}
	}
	if b := c.StakeTopUpBudget; b != "" && b != "auto" {
		if _, err := client.ParseAmount(b); err != nil {
			return fmt.Errorf("stake_topup_budget: %w (or \"auto\": as much as the stake; \"0\": never top up after a slash)", err)
		}
	}
	for model, p := range c.Prices.GPUHour {
		if _, err := client.ParseAmount(p); err != nil {
			return fmt.Errorf("prices.gpu_hour.%s: %w", model, err)
		}
	}
	for name, p := range map[string]string{"default_gpu_hour": c.Prices.DefaultGPUHour, "cpu_hour": c.Prices.CPUHour, "memory_gib_hour": c.Prices.MemoryGiBHour} {
		if p == "" && name == "default_gpu_hour" {
			continue
		}
		if _, err := client.ParseAmount(p); err != nil {
			return fmt.Errorf("prices.%s: %w", name, err)
		}
	}
	if c.Prices.Script != "" && c.Prices.ScriptTimeout.Duration <= 0 {
		return fmt.Errorf("prices.script_timeout must be positive")
	}
	if c.Limits.MaxLeases < 1 {
		return fmt.Errorf("limits.max_leases %d: at least 1", c.Limits.MaxLeases)
	}
	if c.Limits.ManifestTimeout.Duration <= 0 || c.Limits.WithdrawEvery.Duration <= 0 {
		return fmt.Errorf("limits.manifest_timeout and limits.withdraw_every must be positive")
	}
	if c.Limits.MaxLogBytes < 4096 {
		return fmt.Errorf("limits.max_log_bytes %d: at least 4096 (64 MiB is the default)", c.Limits.MaxLogBytes)
	}
	if d := c.Limits.DiskCheckEvery.Duration; d < 100*time.Millisecond || d > time.Minute {
		return fmt.Errorf("limits.disk_check_every %s: between 100ms and 1m (a lease can write fast: 2s is the default)", d)
	}
	if c.Limits.KeepLeaseData.Duration < time.Minute {
		return fmt.Errorf("limits.keep_lease_data %s: at least 1m, so that tenants can fetch their outputs (24h is the default)", c.Limits.KeepLeaseData.Duration)
	}
	if err := c.Isolation.Validate(); err != nil {
		return err
	}
	if c.UIDBase != 0 && c.UIDBase < 65536 {
		return fmt.Errorf("uid_base %d: at least 65536, so that per-lease users never meet system users; 0 means 2000000000", c.UIDBase)
	}
	if c.Docker && uint64(c.UIDBase)+1_000_000 > 1<<31-1 {
		return fmt.Errorf("uid_base %d: at most 2146483647 with docker = true (Docker refuses uids of 2³¹ and more); 0 means 2000000000", c.UIDBase)
	}
	if _, _, err := c.ClusterPortRange(); err != nil {
		return err
	}
	if _, _, err := c.ServicePortRange(); err != nil {
		return err
	}
	if err := c.Inputs.Validate(); err != nil {
		return err
	}
	if _, err := c.Storage.Offer(); err != nil {
		return err
	}
	if c.LatencyEvery.Duration < time.Second {
		return fmt.Errorf("latency_every %s: at least 1s", c.LatencyEvery.Duration)
	}
	seen := map[string]bool{}
	for i, g := range c.Hardware.GPUs {
		if g.UUID == "" || seen[g.UUID] {
			return fmt.Errorf("hardware.gpus[%d]: uuid %q empty or repeated", i, g.UUID)
		}
		seen[g.UUID] = true
	}
	return nil
}

// Ledger is the hardware as declared on the ledger: identical GPUs grouped, sorted by model then memory.
func (h HardwareConfig) Ledger() tx.Hardware {
	type key struct {
		model string
		mem   uint64
	}
	counts := map[key]uint32{}
	for _, g := range h.GPUs {
		counts[key{g.Model, g.MemoryMiB}]++
	}
	var out tx.Hardware
	for k, n := range counts {
		out.GPUs = append(out.GPUs, tx.GPUGroup{Model: k.model, VRAMMiB: k.mem, Count: n})
	}
	sort.Slice(out.GPUs, func(i, j int) bool {
		a, b := out.GPUs[i], out.GPUs[j]
		return a.Model < b.Model || a.Model == b.Model && a.VRAMMiB < b.VRAMMiB
	})
	out.CPUMilli = h.CPUCores * 1000
	out.MemoryMiB = h.MemoryMiB
	out.DiskMiB = h.DiskMiB
	return out
}

// ConfigFromInventory is DefaultConfig offering what was detected: every GPU, all cores, and 90% of the memory
// and of the data directory's free disk (a margin for the system and the daemon).
func ConfigFromInventory(inv *inventory.Inventory) Config {
	c := DefaultConfig()
	for _, g := range inv.GPUs {
		c.Hardware.GPUs = append(c.Hardware.GPUs, GPUConfig{Index: g.Index, UUID: g.UUID, Model: g.Model, MemoryMiB: g.MemoryMiB})
	}
	c.Hardware.CPUCores = uint64(max(inv.CPUCores, 1))
	c.Hardware.MemoryMiB = inv.MemoryMiB * 9 / 10
	c.Hardware.DiskMiB = inv.DiskFreeMiB * 9 / 10
	c.Docker = inv.Docker
	return c
}
