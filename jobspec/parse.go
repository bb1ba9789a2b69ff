package jobspec

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/sparenet/spare/inventory"
	"github.com/sparenet/spare/ledger/tx"
	"github.com/sparenet/spare/manifest"
)

// The fields of each mapping, in the order JOBSPEC.md lists them. The schema test checks that Schema() has
// exactly these properties.
var (
	jobKeys       = []string{"name", "run", "image", "files", "inputs", "outputs", "env", "ports", "resources", "duration", "price", "placement", "cluster", "verify"}
	inputKeys     = []string{"url", "sha256", "vault", "path", "unpack"}
	outputsKeys   = []string{"paths", "to", "months", "permanent"}
	resourcesKeys = []string{"gpu", "cpu", "memory", "disk"}
	gpuKeys       = []string{"count", "model", "vram"}
	priceKeys     = []string{"max"}
	placementKeys = []string{"regions", "providers", "verified", "min_reputation"}
	providersKeys = []string{"deny"}
	clusterKeys   = []string{"nodes", "max_rtt", "on_failure", "max_restarts"}
	verifyKeys    = []string{"replicas"}
)

// Keys written in the wrong place or under another name, by the mapping they were found in.
var (
	jobHints = map[string]string{
		"gpu": "resources.gpu", "gpus": "resources.gpu", "cpu": "resources.cpu", "cpus": "resources.cpu",
		"cores": "resources.cpu", "memory": "resources.memory", "mem": "resources.memory", "ram": "resources.memory",
		"disk": "resources.disk", "storage": "resources.disk", "vram": "resources.gpu.vram", "model": "resources.gpu.model",
		"regions": "placement.regions", "region": "placement.regions", "verified": "placement.verified",
		"min_reputation": "placement.min_reputation", "reputation": "placement.min_reputation",
		"providers": "placement.providers", "deny": "placement.providers.deny",
		"max": "price.max", "max_price": "price.max", "price_max": "price.max", "maxprice": "price.max",
		"replicas": "verify.replicas", "nodes": "cluster.nodes", "max_rtt": "cluster.max_rtt",
		"command": "run", "cmd": "run", "script": "run", "exec": "run", "entrypoint": "run",
		"timeout": "duration", "time": "duration", "walltime": "duration", "max_duration": "duration",
		"container": "image", "docker": "image", "output": "outputs", "artifacts": "outputs",
		"environment": "env", "input": "inputs", "port": "ports", "file": "files",
	}
	resourcesHints = map[string]string{
		"gpus": "gpu", "cores": "cpu", "cpus": "cpu", "ram": "memory", "mem": "memory", "storage": "disk",
		"model": "gpu.model (write gpu: {count: 1, model: H100})", "models": "gpu.model (write gpu: {count: 1, model: [H100, A100]})",
		"vram": "gpu.vram (write gpu: {count: 1, vram: 40GiB})", "gpu_model": "gpu.model", "gpu_count": "gpu (a count) or gpu.count",
	}
	gpuHints       = map[string]string{"models": "model", "memory": "vram", "gpus": "count", "number": "count"}
	inputHints     = map[string]string{"hash": "sha256", "checksum": "sha256", "sha": "sha256", "dest": "path", "to": "path", "from": "url", "src": "url", "root": "vault", "blake3": "vault", "b3": "vault", "extract": "unpack", "untar": "unpack"}
	outputsHints   = map[string]string{"path": "paths", "files": "paths", "dest": "to", "store": "to", "vault": "to (write to: vault)", "term": "months", "month": "months", "forever": "permanent"}
	placementHints = map[string]string{"region": "regions", "deny": "providers.deny (write providers: {deny: [spare1...]})", "reputation": "min_reputation"}
	priceHints     = map[string]string{"max_price": "max", "per_hour": "max", "maximum": "max"}
)

// Parse reads a job file. filename names it in errors and gives the default name. Every problem found is
// reported, as Errors sorted by line; each names the field, the line and column, and the fix.
func Parse(filename string, data []byte) (*Job, error) {
	p := &parser{file: filename, pos: map[string]pos{}}
	root := p.decode(data)
	if root == nil {
		return nil, p.errs.err()
	}
	j := &Job{File: filename}
	p.job(root, j)
	if root.Kind == yaml.MappingNode || root.Kind == yaml.AliasNode {
		p.defaults(root, j)
		p.combinations(root, j)
	}
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return j, nil
}

func (p *parser) job(root *yaml.Node, j *Job) {
	p.mapping(root, "", jobKeys, jobHints, "run: echo hello", func(key string, v *yaml.Node, f string) {
		switch key {
		case "name":
			p.name(v, f, j)
		case "run":
			if s, n, ok := p.str(v, f, "run: ./train.sh"); ok {
				switch {
				case strings.TrimSpace(s) == "":
					p.errf(n, f, "is empty: give the shell command to run, e.g. run: ./train.sh")
				case len(s) > manifest.MaxCommand:
					p.errf(n, f, "is %d bytes, limit %d: put the commands in a script shipped with files:", len(s), manifest.MaxCommand)
				case strings.ContainsRune(s, 0):
					p.errf(n, f, "contains a NUL character: remove it")
				default:
					j.Run = s
				}
			}
		case "image":
			if s, n, ok := p.str(v, f, "image: python:3.12-slim"); ok {
				if !imageRE.MatchString(s) {
					p.errf(n, f, "%q is not an image reference: write e.g. image: python:3.12-slim or ghcr.io/org/name:tag", s)
				} else {
					j.Image = s
				}
			}
		case "files":
			p.files(v, f, j)
		case "inputs":
			p.list(v, f, "[{url: https://host/data.tar, sha256: <64 hex>, path: data/}] or [{vault: <64 hex root>, path: data.tar}]", MaxInputs, func(i int, item *yaml.Node, f string) {
				if in, ok := p.input(item, f); ok {
					j.Inputs = append(j.Inputs, in)
				}
			})
		case "outputs":
			p.outputs(v, f, j)
		case "env":
			p.env(v, f, j)
		case "ports":
			p.ports(v, f, j)
		case "resources":
			p.resources(v, f, j)
		case "duration":
			p.duration(v, f, j)
		case "price":
			p.price(v, f, j)
		case "placement":
			p.placement(v, f, j)
		case "cluster":
			p.cluster(v, f, j)
		case "verify":
			p.verify(v, f, j)
		}
	})
}

var imageRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$`)

func (p *parser) name(v *yaml.Node, f string, j *Job) {
	s, n, ok := p.str(v, f, "name: finetune-resnet")
	if !ok {
		return
	}
	switch {
	case strings.TrimSpace(s) == "":
		p.errf(n, f, "is empty: give a name, e.g. name: finetune-resnet, or remove the line to use the file's name")
	case len(s) > MaxNameBytes:
		p.errf(n, f, "is %d bytes, limit %d: shorten it", len(s), MaxNameBytes)
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		p.errf(n, f, "contains a line break or control character: keep it to one line")
	default:
		j.Name = s
	}
}

var (
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	reservedEnv = []string{"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "SPARE_LEASE_ID"}
)

func (p *parser) env(v *yaml.Node, f string, j *Job) {
	v = resolve(v)
	if v.Kind == yaml.MappingNode && len(v.Content)/2 > manifest.MaxEnvVars {
		p.errf(v, f, "%d variables, limit %d", len(v.Content)/2, manifest.MaxEnvVars)
		return
	}
	p.pos[f] = pos{v.Line, v.Column}
	// Any name is a field here, so walk the mapping without a key list.
	if isNull(v) {
		p.noValue(v, f, `env: {EPOCHS: "3"}`)
		return
	}
	if v.Kind != yaml.MappingNode {
		p.errf(v, f, "want a mapping of names to values, got %s: write e.g. env: {EPOCHS: \"3\"}", kindName(v))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := resolve(v.Content[i]), v.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			p.errf(k, f, "a variable name must be plain text, e.g. EPOCHS")
			continue
		}
		sub := f + "." + k.Value
		if first, dup := seen[k.Value]; dup {
			p.errf(k, sub, "given twice (first on line %d): keep one", first)
			continue
		}
		seen[k.Value] = k.Line
		switch {
		case !envNameRE.MatchString(k.Value):
			p.errf(k, f, "%q is not a variable name: letters, digits and _ only, not starting with a digit, e.g. MY_VAR", k.Value)
			continue
		case contains(reservedEnv, k.Value):
			p.errf(k, sub, "is set by the provider: remove it (the provider sets it to the GPUs and lease it assigns)")
			continue
		}
		n, ok := p.scalar(val, sub, k.Value+": \"value\"")
		if !ok {
			continue
		}
		if strings.ContainsRune(n.Value, 0) {
			p.errf(n, sub, "contains a NUL character: remove it")
			continue
		}
		if j.Env == nil {
			j.Env = map[string]string{}
		}
		j.Env[k.Value] = n.Value // numbers and booleans as written
	}
}

func (p *parser) ports(v *yaml.Node, f string, j *Job) {
	seen := map[int64]int{}
	p.list(v, f, "[8000]", MaxPorts, func(i int, item *yaml.Node, f string) {
		port, ok := p.integer(item, f, "8000", 1, 65535)
		if !ok {
			return
		}
		if first, dup := seen[port]; dup {
			p.errf(resolve(item), f, "port %d is listed twice (first on line %d): keep one", port, first)
			return
		}
		seen[port] = resolve(item).Line
		j.Ports = append(j.Ports, uint16(port))
	})
}

// Resources.

func (p *parser) resources(v *yaml.Node, f string, j *Job) {
	p.mapping(v, f, resourcesKeys, resourcesHints, "resources: {gpu: 1, cpu: 4, memory: 16GiB}", func(key string, v *yaml.Node, f string) {
		switch key {
		case "gpu":
			p.gpu(v, f, j)
		case "cpu":
			n, ok := p.scalar(v, f, "cpu: 4")
			if !ok {
				return
			}
			if n.ShortTag() == "!!bool" {
				p.errf(n, f, "want a number of cores, got %s: write e.g. cpu: 4 or cpu: 0.5", n.Value)
				return
			}
			m, msg := parseCores(n.Value)
			switch {
			case msg != "":
				p.errf(n, f, "%s", msg)
			case m == 0:
				p.errf(n, f, "is 0: a job needs some CPU: give cores, e.g. cpu: 0.5")
			case m > MaxCPUMilli:
				p.errf(n, f, "%s cores is more than any provider has (limit %d): give fewer, e.g. cpu: 64", n.Value, MaxCPUMilli/1000)
			default:
				j.Resources.CPUMilli = m
			}
		case "memory":
			j.Resources.MemoryMiB = p.size(v, f, "memory: 16GiB")
		case "disk":
			j.Resources.DiskMiB = p.size(v, f, "disk: 50GiB")
		}
	})
}

func (p *parser) size(v *yaml.Node, f, example string) uint64 {
	n, ok := p.scalar(v, f, example)
	if !ok {
		return 0
	}
	if n.ShortTag() == "!!bool" {
		p.errf(n, f, "want a size, got %s: write e.g. %s", n.Value, example)
		return 0
	}
	mib, msg := parseSize(n.Value)
	if msg != "" {
		p.errf(n, f, "%s", msg)
		return 0
	}
	return mib
}

func (p *parser) gpu(v *yaml.Node, f string, j *Job) {
	v = resolve(v)
	if v.Kind == yaml.ScalarNode && !isNull(v) {
		if v.ShortTag() == "!!str" && strings.IndexFunc(v.Value, unicode.IsLetter) == 0 && strings.ContainsAny(v.Value, "0123456789") {
			p.errf(v, f, "%q is not a count: for a model write gpu: {count: 1, model: %s}", v.Value, v.Value)
			return
		}
		n, ok := p.integer(v, f, "gpu: 1", 0, tx.MaxGPUsPerBox)
		if ok {
			j.Resources.GPU.Count = uint32(n)
		}
		return
	}
	j.Resources.GPU.Count = 1 // a mapping without count asks for one GPU
	p.mapping(v, f, gpuKeys, gpuHints, "gpu: {count: 2, model: [H100, A100], vram: 40GiB}", func(key string, v *yaml.Node, f string) {
		switch key {
		case "count":
			if n, ok := p.integer(v, f, "count: 1", 0, tx.MaxGPUsPerBox); ok {
				j.Resources.GPU.Count = uint32(n)
			}
		case "model":
			j.Resources.GPU.Models = p.models(v, f)
		case "vram":
			j.Resources.GPU.VRAMMiB = p.size(v, f, "vram: 40GiB")
		}
	})
	if v.Kind != yaml.MappingNode {
		j.Resources.GPU.Count = 0
	}
}

func (p *parser) models(v *yaml.Node, f string) []string {
	v = resolve(v)
	var out []string
	seen := map[string]int{}
	one := func(item *yaml.Node, f string) {
		s, n, ok := p.str(item, f, "H100")
		if !ok {
			return
		}
		s = strings.TrimSpace(s)
		norm := inventory.NormalizeModel(s)
		switch {
		case s == "":
			p.errf(n, f, "is empty: give a model, e.g. H100")
			return
		case strings.ContainsAny(s, ",/|"):
			parts := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(",/| ", r) })
			p.errf(n, f, "%q: one model per entry: write model: [%s]", s, strings.Join(parts, ", "))
			return
		case !strings.EqualFold(norm, s) && norm != inventory.UnknownModel:
			extra := ""
			if memSizeRE.MatchString(s) {
				extra = " (the memory size goes in vram:, e.g. vram: 80GiB)"
			}
			p.errf(n, f, "%q: GPU models are normalised names: did you mean %s?%s", s, canonicalModel(norm), extra)
			return
		case len(s) > tx.MaxNameLen || !modelRE.MatchString(s):
			p.errf(n, f, "%q is not a GPU model name: letters, digits, '-', '_' and '.' only, e.g. H100 or A100-PCIe", s)
			return
		}
		key := strings.ToLower(s)
		if first, dup := seen[key]; dup {
			p.errf(n, f, "%q is listed twice (first on line %d): keep one", s, first)
			return
		}
		seen[key] = n.Line
		out = append(out, s)
	}
	if v.Kind == yaml.SequenceNode {
		if len(v.Content) == 0 {
			p.errf(v, f, "is an empty list: list models, e.g. [H100, A100], or remove the line for any model")
			return nil
		}
		p.list(v, f, "[H100, A100]", tx.MaxListLen, func(i int, item *yaml.Node, f string) { one(item, f) })
	} else {
		one(v, f)
	}
	return out
}

// knownModels spell common models as the provider's normalisation does, for suggestions only: any valid name
// is accepted, and models match case-insensitively.
var knownModels = []string{"B200", "H200", "H100", "H100-PCIe", "H100-NVL", "GH200", "A100", "A100-PCIe", "A10", "A10G",
	"A40", "A30", "A16", "L40S", "L40", "L4", "T4", "V100", "V100-PCIe", "V100S-PCIe", "P100-PCIe", "RTX4090", "RTX4080",
	"RTX4080Super", "RTX4070Ti", "RTX4070", "RTX3090", "RTX3090Ti", "RTX3080", "RTX3080Ti", "RTX3070", "RTX3060",
	"RTX5090", "RTX5080", "RTXA6000", "RTXA5000", "RTXA4000", "RTX6000Ada", "RTX8000"}

func canonicalModel(s string) string {
	for _, k := range knownModels {
		if strings.EqualFold(k, s) {
			return k
		}
	}
	return s
}

var (
	memSizeRE = regexp.MustCompile(`(?i)[0-9]+\s*(GB|GiB|G)\b`)
	modelRE   = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
)

func (p *parser) duration(v *yaml.Node, f string, j *Job) {
	n, ok := p.scalar(v, f, "duration: 2h")
	if !ok {
		return
	}
	d, msg := parseDuration(n.Value)
	switch {
	case msg != "":
		p.errf(n, f, "%s", msg)
	case d < time.Second:
		p.errf(n, f, "%s is too short: give at least 1s", n.Value)
	case d%time.Second != 0:
		p.errf(n, f, "%s is not a whole number of seconds: round it, e.g. %s", n.Value, d.Round(time.Second).String())
	case d > time.Duration(MaxDurationSec)*time.Second:
		p.errf(n, f, "%s is longer than a lease may run (365 days = 8760h): give at most 8760h", n.Value)
	default:
		j.Duration = d
	}
}

func (p *parser) price(v *yaml.Node, f string, j *Job) {
	if r := resolve(v); r.Kind == yaml.ScalarNode && !isNull(r) {
		p.errf(r, f, "want a mapping: did you mean price: {max: %s}?", r.Value)
		return
	}
	p.mapping(v, f, priceKeys, priceHints, "price: {max: 2.5}", func(key string, v *yaml.Node, f string) {
		n, ok := p.scalar(v, f, "max: 2.5")
		if !ok {
			return
		}
		if n.ShortTag() == "!!bool" {
			p.errf(n, f, "want SPR, got %s: write e.g. max: 2.5", n.Value)
			return
		}
		u, msg := parseSPR(n.Value)
		switch {
		case msg != "":
			p.errf(n, f, "%s", msg)
		case u == 0:
			p.errf(n, f, "is 0: give the most you pay, above 0, in SPR per GPU-hour (per CPU core-hour for CPU-only jobs), e.g. max: 2.5")
		default:
			j.Price.MaxUSPR = u
		}
	})
}

func (p *parser) placement(v *yaml.Node, f string, j *Job) {
	p.mapping(v, f, placementKeys, placementHints, "placement: {regions: [eu-west], verified: true}", func(key string, v *yaml.Node, f string) {
		switch key {
		case "regions":
			seen := map[string]int{}
			p.list(v, f, "[eu-west, us-east]", tx.MaxListLen, func(i int, item *yaml.Node, f string) {
				s, n, ok := p.str(item, f, "eu-west")
				if !ok {
					return
				}
				if s == "" || len(s) > tx.MaxNameLen || !modelRE.MatchString(s) {
					p.errf(n, f, "%q is not a region name: letters, digits, '-', '_' and '.' only, e.g. eu-west", s)
					return
				}
				if first, dup := seen[s]; dup {
					p.errf(n, f, "%q is listed twice (first on line %d): keep one", s, first)
					return
				}
				seen[s] = n.Line
				j.Placement.Regions = append(j.Placement.Regions, s)
			})
		case "providers":
			p.mapping(v, f, providersKeys, nil, "providers: {deny: [spare1...]}", func(key string, v *yaml.Node, f string) {
				seen := map[tx.Address]int{}
				p.list(v, f, "[spare1...]", tx.MaxListLen, func(i int, item *yaml.Node, f string) {
					s, n, ok := p.str(item, f, "spare1...")
					if !ok {
						return
					}
					a, err := tx.ParseAddress(strings.TrimSpace(s))
					if err != nil || a.IsZero() {
						p.errf(n, f, "%q is not a provider address: give its spare1... address as `spare query providers` shows it", s)
						return
					}
					if first, dup := seen[a]; dup {
						p.errf(n, f, "%q is listed twice (first on line %d): keep one", s, first)
						return
					}
					seen[a] = n.Line
					j.Placement.Deny = append(j.Placement.Deny, a)
				})
			})
		case "verified":
			if b, ok := p.boolean(v, f, "verified: true"); ok {
				j.Placement.Verified = b
			}
		case "min_reputation":
			n, ok := p.scalar(v, f, "min_reputation: 0.9")
			if !ok {
				return
			}
			ppm, good, precise := parseFixed(strings.TrimSpace(n.Value), 6)
			switch {
			case n.ShortTag() == "!!bool" || !good && !precise:
				if strings.HasSuffix(strings.TrimSpace(n.Value), "%") {
					p.errf(n, f, "%q: give a fraction between 0 and 1, e.g. 0.9 for 90%%", n.Value)
				} else {
					p.errf(n, f, "want a number between 0 and 1, got %s: write e.g. min_reputation: 0.9", kindName(n))
				}
			case precise:
				p.errf(n, f, "%s: at most 6 decimals, e.g. 0.95", n.Value)
			case ppm > tx.PPM:
				p.errf(n, f, "%s is above 1: reputation runs from 0 to 1, e.g. 0.9", n.Value)
			default:
				j.Placement.MinReputationPPM = uint32(ppm)
			}
		}
	})
}

func (p *parser) cluster(v *yaml.Node, f string, j *Job) {
	c := &Cluster{MaxRTT: DefaultMaxRTT, OnFailure: "close"}
	p.mapping(v, f, clusterKeys, nil, "cluster: {nodes: 4, max_rtt: 5ms}", func(key string, v *yaml.Node, f string) {
		switch key {
		case "nodes":
			n, ok := p.integer(v, f, "nodes: 4", -1<<31, 1<<31)
			switch {
			case !ok:
			case n < 2:
				p.errf(resolve(v), f, "is %d: a cluster has at least 2 nodes (for one provider, remove the cluster: block)", n)
			case n > MaxClusterNodes:
				p.errf(resolve(v), f, "is %d, limit %d", n, MaxClusterNodes)
			default:
				c.Nodes = int(n)
			}
		case "max_rtt":
			n, ok := p.scalar(v, f, "max_rtt: 5ms")
			if !ok {
				return
			}
			d, msg := parseDuration(n.Value)
			switch {
			case msg != "":
				p.errf(n, f, "%s", msg)
			case d > maxRTTLimit:
				p.errf(n, f, "%s is not a round-trip time between cluster nodes: give at most %s, e.g. 5ms", n.Value, maxRTTLimit)
			default:
				c.MaxRTT = d
			}
		case "on_failure":
			n, ok := p.scalar(v, f, "on_failure: close")
			switch {
			case !ok:
			case n.Value == "close" || n.Value == "restart":
				c.OnFailure = n.Value
			default:
				p.errf(n, f, "%q: write close (one member failing ends the cluster) or restart (the cluster is leased again, up to max_restarts times)", n.Value)
			}
		case "max_restarts":
			n, ok := p.integer(v, f, "max_restarts: 1", -1<<31, 1<<31)
			switch {
			case !ok:
			case n < 1 || n > MaxClusterRestarts:
				p.errf(resolve(v), f, "is %d: give 1 to %d", n, MaxClusterRestarts)
			default:
				c.MaxRestarts = int(n)
			}
		}
	})
	if resolve(v).Kind == yaml.MappingNode {
		if _, ok := p.pos[join(f, "nodes")]; !ok {
			p.errf(resolve(v), join(f, "nodes"), "missing: say how many providers, e.g. nodes: 4")
		}
		if pos, ok := p.pos[join(f, "max_restarts")]; ok && c.OnFailure != "restart" {
			p.errAt(pos.line, pos.col, join(f, "max_restarts"), "applies only with on_failure: restart: add it, or remove max_restarts")
		}
		if c.OnFailure == "restart" && c.MaxRestarts == 0 {
			c.MaxRestarts = 1
		}
		j.Cluster = c
	}
}

func (p *parser) verify(v *yaml.Node, f string, j *Job) {
	vr := &Verify{Replicas: 1}
	p.mapping(v, f, verifyKeys, nil, "verify: {replicas: 2}", func(key string, v *yaml.Node, f string) {
		n, ok := p.integer(v, f, "replicas: 2", -1<<31, 1<<31)
		switch {
		case !ok:
		case n < 1:
			p.errf(resolve(v), f, "is %d: give 2 or more to compare runs, or remove the verify: block", n)
		case n > MaxVerifyReplicas:
			p.errf(resolve(v), f, "is %d, limit %d", n, MaxVerifyReplicas)
		default:
			vr.Replicas = int(n)
		}
	})
	if resolve(v).Kind == yaml.MappingNode {
		j.Verify = vr
	}
}

// Defaults and combinations.

func (p *parser) defaults(root *yaml.Node, j *Job) {
	if j.Name == "" {
		if _, given := p.pos["name"]; !given {
			j.Name = defaultName(p.file)
		}
	}
	if j.Duration == 0 {
		j.Duration = DefaultDuration
	}
	r := &j.Resources
	if n := uint64(r.GPU.Count); n > 0 {
		if r.CPUMilli == 0 {
			r.CPUMilli = DefaultGPUCPUMilli * n
		}
		if r.MemoryMiB == 0 {
			r.MemoryMiB = DefaultGPUMemoryMiB * n
		}
		if r.DiskMiB == 0 {
			r.DiskMiB = DefaultGPUDiskMiB
		}
		if j.Price.MaxUSPR == 0 {
			j.Price.MaxUSPR = DefaultGPUPriceUSPR
		}
	} else {
		if r.CPUMilli == 0 {
			r.CPUMilli = DefaultCPUMilli
		}
		if r.MemoryMiB == 0 {
			r.MemoryMiB = DefaultMemoryMiB
		}
		if r.DiskMiB == 0 {
			r.DiskMiB = DefaultDiskMiB
		}
		if j.Price.MaxUSPR == 0 {
			j.Price.MaxUSPR = DefaultCPUPriceUSPR
		}
	}
}

// defaultName is the file's name without its extension ("jobs/train.yaml" → "train").
func defaultName(file string) string {
	base := filepath.Base(file)
	if ext := filepath.Ext(base); ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	if base == "" || base == "." || base == "/" || base == "-" || base == string(filepath.Separator) {
		return defaultNameWithoutFile
	}
	if len(base) > MaxNameBytes {
		base = base[:MaxNameBytes]
	}
	return base
}

func (p *parser) at(field string, root *yaml.Node) (int, int) {
	if q, ok := p.pos[field]; ok {
		return q.line, q.col
	}
	return root.Line, root.Column
}

func (p *parser) combinations(root *yaml.Node, j *Job) {
	if _, given := p.pos["run"]; !given && j.Image == "" {
		if _, img := p.pos["image"]; !img {
			p.errAt(root.Line, root.Column, "run", "missing: give the shell command to run, e.g. run: ./train.sh (or an image: with an entrypoint)")
		}
	}
	g := j.Resources.GPU
	if g.Count == 0 {
		if len(g.Models) > 0 {
			l, c := p.at("resources.gpu.model", root)
			p.errAt(l, c, "resources.gpu.model", "a model is given but gpu.count is 0: set count: 1 (or more), or remove model")
		}
		if g.VRAMMiB > 0 {
			l, c := p.at("resources.gpu.vram", root)
			p.errAt(l, c, "resources.gpu.vram", "vram is given but gpu.count is 0: set count: 1 (or more), or remove vram")
		}
	}
	if j.Verify != nil && j.Verify.Replicas > 1 && len(j.Ports) > 0 {
		l, c := p.at("verify.replicas", root)
		p.errAt(l, c, "verify.replicas", "%d replicas with ports: a service cannot be run twice and compared: remove verify (or ports)", j.Verify.Replicas)
	}
	if j.Cluster != nil && j.Verify != nil && j.Verify.Replicas > 1 {
		l, c := p.at("verify", root)
		p.errAt(l, c, "verify", "a cluster cannot be replicated by this version of spare: remove verify (or cluster)")
	}
	if j.VaultOutputs != nil {
		l, c := p.at("outputs.to", root)
		switch {
		case j.Cluster != nil:
			p.errAt(l, c, "outputs.to", "a cluster's outputs are one set a member: this version of spare stores a single lease's (or the agreed replica's) outputs only: remove to: vault, and store a member's with spare store put outputs/<lease>/")
		case len(j.Ports) > 0:
			p.errAt(l, c, "outputs.to", "a service's deploy returns once it is served, before it has outputs: remove to: vault (or ports), and store them with spare store put once spare outputs LEASE has fetched them")
		}
	}
	// Inputs that land on the same path, or in a directory another is unpacked into.
	dst := map[string]int{}
	for i, in := range j.Inputs {
		d := inputDest(in)
		src := "url"
		if !in.Vault.IsZero() {
			src = "vault"
		}
		l, c := p.at(fmt.Sprintf("inputs[%d].%s", i, src), root)
		if first, dup := dst[d]; dup {
			p.errAt(l, c, fmt.Sprintf("inputs[%d].path", i), "lands on %q like inputs[%d]: give it another path:", d, first)
			continue
		}
		clash := false
		for k, prev := range j.Inputs[:i] {
			if pd := inputDest(prev); (in.Unpack || prev.Unpack) && (beneath(d, pd) || beneath(pd, d)) {
				p.errAt(l, c, fmt.Sprintf("inputs[%d].path", i), "%q overlaps %q of inputs[%d]: the directory an input is unpacked into must be new and hold nothing else: give one of them another path:", d, pd, k)
				clash = true
				break
			}
		}
		if !clash {
			dst[d] = i
		}
	}
	// The order's price must fit the ledger's integers.
	if len(p.errs) == 0 {
		perHour, ok := maxPricePerHour(j.Price.MaxUSPR, j.Resources)
		if ok {
			var dep uint64
			dep, ok = deposit(perHour, uint64(j.Duration/time.Second))
			// A replicated job escrows the deposit once per replica and once more for a referee run.
			ok = ok && dep <= ^uint64(0)/uint64(j.Replicas()+1) && dep <= ^uint64(0)/uint64(j.Nodes())
		}
		if !ok {
			l, c := p.at("price.max", root)
			p.errAt(l, c, "price.max", "%s SPR × the job's size × duration is too large for the ledger: give a smaller price", formatFixed(j.Price.MaxUSPR, 6))
		}
	}
}
