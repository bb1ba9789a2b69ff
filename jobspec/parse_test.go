package jobspec

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sparenet/spare/internal/editdist"
	"github.com/sparenet/spare/ledger/tx"
)

const (
	testSum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

var denyAddr string

func init() {
	var a tx.Address
	for i := range a {
		a[i] = byte(i + 1)
	}
	denyAddr = a.String()
}

func mustParse(t *testing.T, src string) *Job {
	t.Helper()
	j, err := Parse("job.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror:\n%v", src, err)
	}
	return j
}

func parseErrors(t *testing.T, src string) Errors {
	t.Helper()
	j, err := Parse("job.yaml", []byte(src))
	if err == nil {
		t.Fatalf("Parse accepted:\n%s\njob: %+v", src, j)
	}
	if j != nil {
		t.Fatalf("Parse returned a job with an error")
	}
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want Errors", err)
	}
	for _, e := range list {
		if e.Line < 1 || e.File != "job.yaml" {
			t.Errorf("error without a line or file: %#v", e)
		}
	}
	return list
}

func TestDefaultsCPU(t *testing.T) {
	j := mustParse(t, "run: echo hi\n")
	want := &Job{
		File: "job.yaml", Name: "job", Run: "echo hi",
		Resources: Resources{CPUMilli: 1000, MemoryMiB: 512, DiskMiB: 1024},
		Duration:  time.Hour,
		Price:     Price{MaxUSPR: 100_000},
	}
	if !reflect.DeepEqual(j, want) {
		t.Fatalf("got  %+v\nwant %+v", j, want)
	}
}

func TestDefaultsGPU(t *testing.T) {
	j := mustParse(t, "run: nvidia-smi\nresources: {gpu: 2}\n")
	want := Resources{GPU: GPU{Count: 2}, CPUMilli: 4000, MemoryMiB: 16 << 10, DiskMiB: 10 << 10}
	if !reflect.DeepEqual(j.Resources, want) {
		t.Fatalf("resources %+v, want %+v", j.Resources, want)
	}
	if j.Price.MaxUSPR != 2_000_000 || j.Duration != time.Hour {
		t.Fatalf("price %d duration %s", j.Price.MaxUSPR, j.Duration)
	}
	// A GPU mapping without count asks for one.
	j = mustParse(t, "run: x\nresources:\n  gpu: {model: H100}\n")
	if j.Resources.GPU.Count != 1 || j.Resources.CPUMilli != 2000 || j.Resources.MemoryMiB != 8192 {
		t.Fatalf("gpu mapping defaults: %+v", j.Resources)
	}
	// Given values are kept, the rest defaulted.
	j = mustParse(t, "run: x\nresources: {gpu: 1, memory: 64GiB}\n")
	if j.Resources.MemoryMiB != 64<<10 || j.Resources.CPUMilli != 2000 || j.Resources.DiskMiB != 10<<10 {
		t.Fatalf("partial resources: %+v", j.Resources)
	}
}

func TestDefaultName(t *testing.T) {
	for file, want := range map[string]string{
		"train.yaml": "train", "jobs/finetune.resnet.yml": "finetune.resnet", "/abs/dir/x.yaml": "x",
		"noext": "noext", "": "job", "-": "job", ".yaml": ".yaml",
	} {
		j, err := Parse(file, []byte("run: x\n"))
		if err != nil {
			t.Fatal(err)
		}
		if j.Name != want {
			t.Errorf("Parse(%q).Name = %q, want %q", file, j.Name, want)
		}
	}
}

// fullJob is JOBSPEC.md's example with real values, cluster and verify left out (they need several providers).
var fullJob = `name: finetune-resnet            # shown in lists
run: python train.py --epochs 3
image: spare/train:1.0
files:
  - train.py
  - data/labels.csv
inputs:
  - url: http://host/data.tar
    sha256: ` + testSum + `
    path: data/
  - url: https://host/weights.bin?v=2
    sha256: ` + strings.ToUpper(testSum) + `
outputs: [out/, result.json]
env: {EPOCHS: "3", LR: 0.01, DEBUG: true}
ports: [8000, 8001]
resources:
  gpu: {count: 2, model: [H100, a100], vram: 40GiB}
  cpu: 4
  memory: 16GiB
  disk: 50GiB
duration: 2h
price:
  max: 2.5
placement:
  regions: [eu-west, us-east]
  providers: {deny: [` + "DENY" + `]}
  verified: true
  min_reputation: 0.9
verify:
  replicas: 1
`

func TestFullJob(t *testing.T) {
	j := mustParse(t, strings.Replace(fullJob, "DENY", denyAddr, 1))
	deny, _ := tx.ParseAddress(denyAddr)
	var sum tx.Hash
	sum, _ = tx.ParseHash(testSum)
	want := &Job{
		File: "job.yaml", Name: "finetune-resnet", Run: "python train.py --epochs 3", Image: "spare/train:1.0",
		Files: []string{"train.py", "data/labels.csv"},
		Inputs: []Input{
			{URL: "http://host/data.tar", SHA256: sum, Path: "data/"},
			{URL: "https://host/weights.bin?v=2", SHA256: sum, Path: "weights.bin"},
		},
		Outputs: []string{"out/", "result.json"},
		Env:     map[string]string{"EPOCHS": "3", "LR": "0.01", "DEBUG": "true"},
		Ports:   []uint16{8000, 8001},
		Resources: Resources{
			GPU:      GPU{Count: 2, Models: []string{"H100", "a100"}, VRAMMiB: 40 << 10},
			CPUMilli: 4000, MemoryMiB: 16 << 10, DiskMiB: 50 << 10,
		},
		Duration: 2 * time.Hour,
		Price:    Price{MaxUSPR: 2_500_000},
		Placement: Placement{Regions: []string{"eu-west", "us-east"}, Deny: []tx.Address{deny}, Verified: true,
			MinReputationPPM: 900_000},
		Verify:    &Verify{Replicas: 1},
		fileLines: []pos{{5, 5}, {6, 5}},
	}
	if !reflect.DeepEqual(j, want) {
		t.Fatalf("got  %+v\nwant %+v", j, want)
	}
	r := j.TxResources()
	if r.GPUMinVRAMMiB != 36864 || !reflect.DeepEqual(r.GPUModels, []string{"H100", "a100"}) {
		t.Fatalf("tx resources %+v", r)
	}
	c := j.TxConstraints()
	if !c.Docker || !c.Verified || c.MinReputationPPM != 900_000 || len(c.Deny) != 1 || len(c.Regions) != 2 {
		t.Fatalf("constraints %+v", c)
	}
}

func TestFieldForms(t *testing.T) {
	cases := []struct {
		src   string
		check func(j *Job) bool
	}{
		{"image: python:3.12\n", func(j *Job) bool { return j.Run == "" && j.Image == "python:3.12" }},
		{"run: x\nresources: {cpu: 0.5}\n", func(j *Job) bool { return j.Resources.CPUMilli == 500 }},
		{"run: x\nresources: {cpu: \"0.25\"}\n", func(j *Job) bool { return j.Resources.CPUMilli == 250 }},
		{"run: x\nresources: {cpu: 1500m}\n", func(j *Job) bool { return j.Resources.CPUMilli == 1500 }},
		{"run: x\nresources: {cpu: .5}\n", func(j *Job) bool { return j.Resources.CPUMilli == 500 }},
		{"run: x\nresources: {memory: 1.5GiB}\n", func(j *Job) bool { return j.Resources.MemoryMiB == 1536 }},
		{"run: x\nresources: {memory: 512 mib}\n", func(j *Job) bool { return j.Resources.MemoryMiB == 512 }},
		{"run: x\nresources: {disk: 1TiB}\n", func(j *Job) bool { return j.Resources.DiskMiB == 1<<20 }},
		{"run: x\nresources: {memory: 1500KiB}\n", func(j *Job) bool { return j.Resources.MemoryMiB == 2 }},
		{"run: x\nresources: {gpu: {count: 1, model: h100}}\n", func(j *Job) bool { return j.Resources.GPU.Models[0] == "h100" }},
		{"run: x\nresources: {gpu: {count: 4, model: [H100-PCIe, RTX4090, L4, T4]}}\n", func(j *Job) bool {
			return len(j.Resources.GPU.Models) == 4 && j.Resources.GPU.Count == 4
		}},
		{"run: x\nresources: {gpu: 0}\n", func(j *Job) bool { return !j.IsGPU() && j.Resources.CPUMilli == 1000 }},
		{"run: x\nresources: {gpu: {count: 0}}\n", func(j *Job) bool { return !j.IsGPU() }},
		{"run: x\nduration: 90s\n", func(j *Job) bool { return j.Duration == 90*time.Second }},
		{"run: x\nduration: 1h30m\n", func(j *Job) bool { return j.Duration == 90*time.Minute }},
		{"run: x\nduration: 8760h\n", func(j *Job) bool { return j.Duration == 8760*time.Hour }},
		{"run: x\nprice: {max: 3}\n", func(j *Job) bool { return j.Price.MaxUSPR == 3_000_000 }},
		{"run: x\nprice: {max: 2.5spr}\n", func(j *Job) bool { return j.Price.MaxUSPR == 2_500_000 }},
		{"run: x\nprice: {max: 1500uspr}\n", func(j *Job) bool { return j.Price.MaxUSPR == 1500 }},
		{"run: x\nprice: {max: \"0.000001\"}\n", func(j *Job) bool { return j.Price.MaxUSPR == 1 }},
		{"run: x\nplacement: {min_reputation: 1}\n", func(j *Job) bool { return j.Placement.MinReputationPPM == 1_000_000 }},
		{"run: x\nplacement: {min_reputation: 0}\n", func(j *Job) bool { return j.Placement.MinReputationPPM == 0 }},
		{"run: x\nplacement: {verified: false}\n", func(j *Job) bool { return !j.Placement.Verified }},
		{"run: x\nenv: {}\n", func(j *Job) bool { return len(j.Env) == 0 }},
		{"run: x\nenv: {A: \"\"}\n", func(j *Job) bool { return j.Env["A"] == "" && len(j.Env) == 1 }},
		{"run: x\nports: [0x1F90]\n", func(j *Job) bool { return j.Ports[0] == 8080 }},
		{"run: x\nfiles: [./a/../b.py, data/]\n", func(j *Job) bool { return j.Files[0] == "b.py" && j.Files[1] == "data/" }},
		{"run: x\noutputs: [./out/]\n", func(j *Job) bool { return j.Outputs[0] == "out/" }},
		{"run: x\ninputs: [{url: 'https://h/d.tar', sha256: " + testSum + ", path: in/}]\n", func(j *Job) bool {
			return j.Inputs[0].Path == "in/"
		}},
		{"run: x\nverify: {}\n", func(j *Job) bool { return j.Verify != nil && j.Verify.Replicas == 1 && j.Replicas() == 1 }},
		{"run: x\nverify: {replicas: 3}\n", func(j *Job) bool { return j.Replicas() == 3 }},
		{"run: x\ncluster: {nodes: 3}\n", func(j *Job) bool {
			return j.Nodes() == 3 && j.Cluster.MaxRTT == DefaultMaxRTT && j.Cluster.OnFailure == "close"
		}},
		{"run: x\ncluster: {nodes: 2, max_rtt: 800us, on_failure: close}\n", func(j *Job) bool { return j.Cluster.MaxRTT == 800*time.Microsecond }},
		{"run: x\ncluster: {nodes: 2, on_failure: restart}\n", func(j *Job) bool { return j.Cluster.OnFailure == "restart" && j.Cluster.MaxRestarts == 1 }},
		{"run: x\ncluster: {nodes: 2, on_failure: restart, max_restarts: 3}\n", func(j *Job) bool { return j.Cluster.MaxRestarts == 3 }},
		{"run: x\n", func(j *Job) bool { return j.Verify == nil && j.Replicas() == 1 }},
		{"---\nrun: x\n", func(j *Job) bool { return j.Run == "x" }},
		{"run: x\n...\n", func(j *Job) bool { return j.Run == "x" }},
		{"name: 2024\nrun: x\n", func(j *Job) bool { return j.Name == "2024" }},
		// Anchors and aliases are followed.
		{"run: x\nresources: {memory: &m 2GiB, disk: *m}\n", func(j *Job) bool {
			return j.Resources.MemoryMiB == 2048 && j.Resources.DiskMiB == 2048
		}},
		{"run: |\n  echo one\n  echo two\n", func(j *Job) bool { return j.Run == "echo one\necho two\n" }},
	}
	for _, c := range cases {
		j := mustParse(t, c.src)
		if !c.check(j) {
			t.Errorf("%q: unexpected job %+v", c.src, j)
		}
	}
}

// Every error names the file, the line (and column), the field and the fix.
func TestErrors(t *testing.T) {
	cases := []struct {
		src   string
		line  int
		field string
		want  []string // fix, in the message
	}{
		// document
		{"", 1, "", []string{"empty", "run: echo hello"}},
		{"# only a comment\n", 1, "", []string{"empty"}},
		{"- run: x\n", 1, "", []string{"want a mapping", "run: echo hello"}},
		{"hello\n", 1, "", []string{"want a mapping"}},
		{"run: a\nrun: b\n", 2, "run", []string{"given twice (first on line 1)", "keep one"}},
		{"run: x\n---\nrun: y\n", 2, "", []string{"second YAML document", "own file"}},
		{"run: x\n---\n", 2, "", []string{"second YAML document"}},
		{"run: x\n  y: z\n", 2, "", []string{"YAML syntax", "indentation"}},
		{"run: x\nresources:\n\tgpu: 1\n", 3, "", []string{"spaces, not tabs"}},
		{"run: \"x\n", 2, "", []string{"YAML syntax", "not closed"}},
		{"run: x\nname: \xff\n", 2, "", []string{"UTF-8"}},
		{"run: x\nname: a\x07b\n", 2, "", []string{"control character", "remove it"}},
		{"base: &b {run: x}\n<<: *b\n", 1, "base", []string{"unknown field"}},
		{"run: x\nresources:\n  <<: {cpu: 1}\n", 3, "resources", []string{"merge keys", "write the fields out"}},
		// unknown fields, did you mean
		{"nmae: x\nrun: y\n", 1, "nmae", []string{"did you mean name?"}},
		{"run: x\nresource: {gpu: 1}\n", 2, "resource", []string{"did you mean resources?"}},
		{"run: x\nres: {gpu: 1}\n", 2, "res", []string{"did you mean resources?"}},
		{"Run: x\n", 1, "Run", []string{"did you mean run?"}},
		{"run: x\ngpu: 1\n", 2, "gpu", []string{"did you mean resources.gpu?"}},
		{"run: x\nmemory: 1GiB\n", 2, "memory", []string{"did you mean resources.memory?"}},
		{"command: x\n", 1, "command", []string{"did you mean run?"}},
		{"run: x\ntimeout: 1h\n", 2, "timeout", []string{"did you mean duration?"}},
		{"run: x\nreplicas: 2\n", 2, "replicas", []string{"did you mean verify.replicas?"}},
		{"run: x\nfoo: 1\n", 2, "foo", []string{"unknown field", "name, run, image"}},
		{"run: x\nresources: {gpus: 1}\n", 2, "resources.gpus", []string{"did you mean gpu?"}},
		{"run: x\nresources: {ram: 1GiB}\n", 2, "resources.ram", []string{"did you mean memory?"}},
		{"run: x\nresources: {model: H100}\n", 2, "resources.model", []string{"gpu.model", "gpu: {count: 1, model: H100}"}},
		{"run: x\nresources: {gpu: {models: [H100]}}\n", 2, "resources.gpu.models", []string{"did you mean model?"}},
		{"run: x\nresources: {gpu: {cuont: 1}}\n", 2, "resources.gpu.cuont", []string{"did you mean count?"}},
		{"run: x\nprice: {maximum: 1}\n", 2, "price.maximum", []string{"did you mean max?"}},
		{"run: x\nplacement: {region: [eu]}\n", 2, "placement.region", []string{"did you mean regions?"}},
		{"run: x\nplacement: {providers: {allow: [x]}}\n", 2, "placement.providers.allow", []string{"unknown field", "deny"}},
		{"run: x\ninputs: [{url: 'https://h/a', hash: " + testSum + "}]\n", 2, "inputs[0].hash", []string{"did you mean sha256?"}},
		{"run: x\ncluster: {node: 2}\n", 2, "cluster.node", []string{"did you mean nodes?"}},
		{"run: x\nverify: {replica: 2}\n", 2, "verify.replica", []string{"did you mean replicas?"}},
		// name
		{"name: \"\"\nrun: x\n", 1, "name", []string{"is empty", "remove the line"}},
		{"name: true\nrun: x\n", 1, "name", []string{"quote it"}},
		{"name: " + strings.Repeat("n", 129) + "\nrun: x\n", 1, "name", []string{"limit 128"}},
		{"name: \"a\\nb\"\nrun: x\n", 1, "name", []string{"one line"}},
		{"name: [a]\nrun: x\n", 1, "name", []string{"want a single value", "name: finetune-resnet"}},
		// run, image
		{"name: x\n", 1, "run", []string{"missing", "run: ./train.sh"}},
		{"run:\n", 1, "run", []string{"has no value", "run: ./train.sh"}},
		{"run: \"  \"\n", 1, "run", []string{"is empty", "run: ./train.sh"}},
		{"run: [a, b]\n", 1, "run", []string{"want a single value"}},
		{"run: " + strings.Repeat("x", 65537) + "\n", 1, "run", []string{"limit 65536", "script"}},
		{"run: x\nimage: \"bad image\"\n", 2, "image", []string{"not an image reference", "python:3.12-slim"}},
		// files
		{"run: x\nfiles: train.py\n", 2, "files", []string{"want a list", "[train.py]"}},
		{"run: x\nfiles: [../secret]\n", 2, "files[0]", []string{"outside the job file's directory", "move it inside"}},
		{"run: x\nfiles: [a/../../b]\n", 2, "files[0]", []string{"outside"}},
		{"run: x\nfiles: [/etc/passwd]\n", 2, "files[0]", []string{"absolute", "relative"}},
		{"run: x\nfiles: ['a\\b']\n", 2, "files[0]", []string{"backslash", "a/b"}},
		{"run: x\nfiles: [.]\n", 2, "files[0]", []string{"whole", "list the files"}},
		{"run: x\nfiles:\n  - a.py\n  - ./a.py\n", 4, "files[1]", []string{"listed twice (first on line 3)"}},
		{"run: x\nfiles: [data, data/]\n", 2, "files[1]", []string{"listed twice"}},
		{"run: x\nfiles: [{a: b}]\n", 2, "files[0]", []string{"want a single value"}},
		{"run: x\nfiles: [\"\"]\n", 2, "files[0]", []string{"is empty"}},
		// inputs
		{"run: x\ninputs: [{url: 'https://h/a'}]\n", 2, "inputs[0].sha256", []string{"missing", "sha256sum"}},
		{"run: x\ninputs: [{sha256: " + testSum + "}]\n", 2, "inputs[0].url", []string{"missing", "url: https://"}},
		{"run: x\ninputs: [{url: 'https://h/a', sha256: 9f86d0}]\n", 2, "inputs[0].sha256", []string{"64 hex", "sha256sum"}},
		{"run: x\ninputs: [{url: 'https://h/a', sha256: 'sha256:" + testSum + "'}]\n", 2, "inputs[0].sha256", []string{"drop the \"sha256:\" prefix"}},
		{"run: x\ninputs: [{url: 'ftp://h/a', sha256: " + testSum + "}]\n", 2, "inputs[0].url", []string{"http:// and https://"}},
		{"run: x\ninputs: [{url: 'data.tar', sha256: " + testSum + "}]\n", 2, "inputs[0].url", []string{"not a URL", "https://host/data.tar"}},
		{"run: x\ninputs: [{url: 'https://h/', sha256: " + testSum + "}]\n", 2, "inputs[0].path", []string{"no file name", "path: data.tar"}},
		{"run: x\ninputs: [{url: 'https://h/a', sha256: " + testSum + ", path: ../a}]\n", 2, "inputs[0].path", []string{"outside the work directory"}},
		{"run: x\ninputs: ['https://h/a']\n", 2, "inputs[0]", []string{"want a mapping", "url:"}},
		{"run: x\ninputs:\n  - {url: 'https://h/a', sha256: " + testSum + "}\n  - {url: 'https://g/a', sha256: " + testSum + "}\n", 4, "inputs[1].path", []string{"lands on \"a\"", "another path"}},
		// outputs
		{"run: x\noutputs: out/\n", 2, "outputs", []string{"want a list", "[out/]"}},
		{"run: x\noutputs: [/out]\n", 2, "outputs[0]", []string{"absolute"}},
		{"run: x\noutputs: [out, out/]\n", 2, "outputs[1]", []string{"listed twice"}},
		// env
		{"run: x\nenv: {1X: a}\n", 2, "env", []string{"not a variable name", "MY_VAR"}},
		{"run: x\nenv: {CUDA_VISIBLE_DEVICES: \"0\"}\n", 2, "env.CUDA_VISIBLE_DEVICES", []string{"set by the provider", "remove it"}},
		{"run: x\nenv: [A=1]\n", 2, "env", []string{"want a mapping", "EPOCHS"}},
		{"run: x\nenv: {A: [1]}\n", 2, "env.A", []string{"want a single value"}},
		{"run: x\nenv:\n  A:\n", 3, "env.A", []string{"has no value"}},
		{"run: x\nenv:\n  A: a\n  A: b\n", 4, "env.A", []string{"given twice"}},
		// ports
		{"run: x\nports: [0]\n", 2, "ports[0]", []string{"out of range", "1..65535"}},
		{"run: x\nports: [70000]\n", 2, "ports[0]", []string{"out of range"}},
		{"run: x\nports: [\"8000\"]\n", 2, "ports[0]", []string{"without quotes"}},
		{"run: x\nports: [80.5]\n", 2, "ports[0]", []string{"not a whole number"}},
		{"run: x\nports: [http]\n", 2, "ports[0]", []string{"want a whole number", "8000"}},
		{"run: x\nports: [8000, 8000]\n", 2, "ports[1]", []string{"listed twice"}},
		{"run: x\nports: 8000\n", 2, "ports", []string{"want a list", "[8000]"}},
		// resources
		{"run: x\nresources: 1\n", 2, "resources", []string{"want a mapping", "gpu: 1"}},
		{"run: x\nresources:\n", 2, "resources", []string{"has no value"}},
		{"run: x\nresources: {gpu: H100}\n", 2, "resources.gpu", []string{"gpu: {count: 1, model: H100}"}},
		{"run: x\nresources: {gpu: -1}\n", 2, "resources.gpu", []string{"out of range", "0..1024"}},
		{"run: x\nresources: {gpu: 1.5}\n", 2, "resources.gpu", []string{"not a whole number"}},
		{"run: x\nresources: {gpu: 2000}\n", 2, "resources.gpu", []string{"out of range"}},
		{"run: x\nresources: {gpu: true}\n", 2, "resources.gpu", []string{"want a whole number"}},
		{"run: x\nresources:\n  gpu: {count: 0, model: H100}\n", 3, "resources.gpu.model", []string{"count is 0", "count: 1"}},
		{"run: x\nresources:\n  gpu: {count: 0, vram: 40GiB}\n", 3, "resources.gpu.vram", []string{"count is 0", "remove vram"}},
		{"run: x\nresources: {gpu: {count: 1, model: NVIDIA H100 80GB HBM3}}\n", 2, "resources.gpu.model", []string{"did you mean H100?", "vram: 80GiB"}},
		{"run: x\nresources: {gpu: {count: 1, model: h100 pcie}}\n", 2, "resources.gpu.model", []string{"did you mean H100-PCIe?"}},
		{"run: x\nresources: {gpu: {count: 1, model: \"RTX 4090\"}}\n", 2, "resources.gpu.model", []string{"did you mean RTX4090?"}},
		{"run: x\nresources: {gpu: {count: 1, model: []}}\n", 2, "resources.gpu.model", []string{"empty list", "any model"}},
		{"run: x\nresources: {gpu: {count: 1, model: [H100, h100]}}\n", 2, "resources.gpu.model[1]", []string{"listed twice"}},
		{"run: x\nresources: {gpu: {count: 1, model: \"H100/A100\"}}\n", 2, "resources.gpu.model", []string{"one model per entry", "model: [H100, A100]"}},
		{"run: x\nresources: {gpu: {count: 1, model: \"H100!\"}}\n", 2, "resources.gpu.model", []string{"did you mean H100?"}},
		{"run: x\nresources: {gpu: {count: 1, model: \"???\"}}\n", 2, "resources.gpu.model", []string{"not a GPU model name", "A100-PCIe"}},
		{"run: x\nresources: {gpu: {count: 1, vram: 80GB}}\n", 2, "resources.gpu.vram", []string{"did you mean 80GiB?"}},
		{"run: x\nresources: {gpu: {count: 1, vram: 24}}\n", 2, "resources.gpu.vram", []string{"no unit", "did you mean 24GiB?"}},
		{"run: x\nresources: {cpu: 0}\n", 2, "resources.cpu", []string{"is 0", "cpu: 0.5"}},
		{"run: x\nresources: {cpu: 0.0001}\n", 2, "resources.cpu", []string{"at most 3 decimals"}},
		{"run: x\nresources: {cpu: four}\n", 2, "resources.cpu", []string{"not a core count", "0.5"}},
		{"run: x\nresources: {cpu: -1}\n", 2, "resources.cpu", []string{"negative"}},
		{"run: x\nresources: {cpu: 100000}\n", 2, "resources.cpu", []string{"more than any provider"}},
		{"run: x\nresources: {cpu: true}\n", 2, "resources.cpu", []string{"number of cores"}},
		{"run: x\nresources: {memory: 16}\n", 2, "resources.memory", []string{"no unit", "did you mean 16GiB?"}},
		{"run: x\nresources: {memory: 16GB}\n", 2, "resources.memory", []string{"binary units", "did you mean 16GiB?"}},
		{"run: x\nresources: {memory: 16G}\n", 2, "resources.memory", []string{"did you mean 16GiB?"}},
		{"run: x\nresources: {memory: 512mb}\n", 2, "resources.memory", []string{"did you mean 512MiB?"}},
		{"run: x\nresources: {memory: 1.5XB}\n", 2, "resources.memory", []string{"unknown unit", "KiB, MiB, GiB or TiB"}},
		{"run: x\nresources: {memory: 0MiB}\n", 2, "resources.memory", []string{"zero", "512MiB"}},
		{"run: x\nresources: {memory: lots}\n", 2, "resources.memory", []string{"not a size", "16GiB"}},
		{"run: x\nresources: {memory: 2000TiB}\n", 2, "resources.memory", []string{"too large"}},
		{"run: x\nresources: {disk: 2TB}\n", 2, "resources.disk", []string{"did you mean 2TiB?"}},
		{"run: x\nresources: {disk: 1073741824}\n", 2, "resources.disk", []string{"did you mean 1024MiB?"}},
		// duration
		{"run: x\nduration: 90\n", 2, "duration", []string{"no unit", "did you mean 90s?"}},
		{"run: x\nduration: 2 hours\n", 2, "duration", []string{"did you mean 2h?"}},
		{"run: x\nduration: 30min\n", 2, "duration", []string{"did you mean 30m?"}},
		{"run: x\nduration: 7d\n", 2, "duration", []string{"did you mean 168h?"}},
		{"run: x\nduration: 8761h\n", 2, "duration", []string{"365 days", "at most 8760h"}},
		{"run: x\nduration: 1500ms\n", 2, "duration", []string{"whole number of seconds", "2s"}},
		{"run: x\nduration: 0s\n", 2, "duration", []string{"positive"}},
		{"run: x\nduration: 400ms\n", 2, "duration", []string{"too short", "at least 1s"}},
		{"run: x\nresources: {gpu: two}\n", 2, "resources.gpu", []string{"want a whole number", "gpu: 1"}},
		{"run: x\nduration: -1h\n", 2, "duration", []string{"positive"}},
		{"run: x\nduration: soon\n", 2, "duration", []string{"not a duration", "2h"}},
		// price
		{"run: x\nprice: 2\n", 2, "price", []string{"did you mean price: {max: 2}?"}},
		{"run: x\nprice: {max: 0}\n", 2, "price.max", []string{"is 0", "max: 2.5"}},
		{"run: x\nprice: {max: -1}\n", 2, "price.max", []string{"negative", "above 0"}},
		{"run: x\nprice: {max: 1.0000001}\n", 2, "price.max", []string{"at most 6 decimals"}},
		{"run: x\nprice: {max: cheap}\n", 2, "price.max", []string{"not an amount", "2.5"}},
		{"run: x\nprice: {max: 1.5uspr}\n", 2, "price.max", []string{"whole micro-units"}},
		{"run: x\nprice: {max: true}\n", 2, "price.max", []string{"want SPR"}},
		{"run: x\nresources: {gpu: 1024}\nduration: 8760h\nprice: {max: 18000000000000}\n", 4, "price.max", []string{"too large", "smaller price"}},
		// placement
		{"run: x\nplacement: {regions: eu-west}\n", 2, "placement.regions", []string{"want a list", "[eu-west]"}},
		{"run: x\nplacement: {regions: [\"eu west\"]}\n", 2, "placement.regions[0]", []string{"not a region name", "eu-west"}},
		{"run: x\nplacement: {regions: [eu, eu]}\n", 2, "placement.regions[1]", []string{"listed twice"}},
		{"run: x\nplacement: {providers: {deny: [spare1xyz]}}\n", 2, "placement.providers.deny[0]", []string{"not a provider address", "spare1"}},
		{"run: x\nplacement: {providers: {deny: [" + denyAddr + ", " + denyAddr + "]}}\n", 2, "placement.providers.deny[1]", []string{"listed twice"}},
		{"run: x\nplacement: {deny: [x]}\n", 2, "placement.deny", []string{"providers: {deny: [spare1...]}"}},
		{"run: x\nplacement: {verified: yes}\n", 2, "placement.verified", []string{"true or false"}},
		{"run: x\nplacement: {min_reputation: 1.5}\n", 2, "placement.min_reputation", []string{"above 1", "0.9"}},
		{"run: x\nplacement: {min_reputation: 90%}\n", 2, "placement.min_reputation", []string{"0.9 for 90%"}},
		{"run: x\nplacement: {min_reputation: -0.5}\n", 2, "placement.min_reputation", []string{"between 0 and 1"}},
		{"run: x\nplacement: {min_reputation: 0.1234567}\n", 2, "placement.min_reputation", []string{"at most 6 decimals"}},
		// cluster, verify
		{"run: x\ncluster: {nodes: 2, on_failure: retry}\n", 2, "cluster.on_failure", []string{"write close", "or restart"}},
		{"run: x\ncluster: {nodes: 2, on_failure: restart, max_restarts: 4}\n", 2, "cluster.max_restarts", []string{"is 4", "1 to 3"}},
		{"run: x\ncluster: {nodes: 2, max_restarts: 2}\n", 2, "cluster.max_restarts", []string{"only with on_failure: restart"}},
		{"run: x\ncluster: {nodes: 2}\nverify: {replicas: 2}\n", 3, "verify", []string{"cannot be replicated"}},
		{"run: x\ncluster: {nodes: 1}\n", 2, "cluster.nodes", []string{"at least 2 nodes"}},
		{"run: x\ncluster: {max_rtt: 5ms}\n", 2, "cluster.nodes", []string{"missing", "nodes: 4"}},
		{"run: x\ncluster: {nodes: 2, max_rtt: 1h}\n", 2, "cluster.max_rtt", []string{"at most 10s"}},
		{"run: x\ncluster: {nodes: 2, max_rtt: 5}\n", 2, "cluster.max_rtt", []string{"did you mean 5s?"}},
		{"run: x\ncluster: {nodes: 100}\n", 2, "cluster.nodes", []string{"limit 32"}},
		{"run: x\nverify: {replicas: 0}\n", 2, "verify.replicas", []string{"2 or more", "remove the verify: block"}},
		{"run: x\nverify: {replicas: 100}\n", 2, "verify.replicas", []string{"limit 8"}},
		{"run: x\nports: [8000]\nverify: {replicas: 2}\n", 3, "verify.replicas", []string{"with ports", "remove verify"}},
	}
	for _, c := range cases {
		name := c.src
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			list := parseErrors(t, c.src)
			var match *Error
			for _, e := range list {
				if e.Line == c.line && e.Field == c.field {
					match = e
					break
				}
			}
			if match == nil {
				t.Fatalf("no error at line %d for field %q; got:\n%v", c.line, c.field, list)
			}
			s := match.Error()
			prefix := fmt.Sprintf("job.yaml:%d", c.line)
			if !strings.HasPrefix(s, prefix) {
				t.Errorf("%q does not start with %q", s, prefix)
			}
			if c.field != "" && !strings.Contains(s, " "+c.field+": ") {
				t.Errorf("%q does not name the field %q", s, c.field)
			}
			for _, w := range c.want {
				if !strings.Contains(s, w) {
					t.Errorf("%q does not say %q", s, w)
				}
			}
		})
	}
}

// All problems are reported at once, sorted by line.
func TestAllErrorsSorted(t *testing.T) {
	src := `verify: {replicas: 2}
nmae: x
run: y
resources:
  memory: 80GB
  cpu: 0
duration: 7d
price: {max: 0}
ports: [8000]
`
	list := parseErrors(t, src)
	wantLines := []int{1, 2, 5, 6, 7, 8}
	var got []int
	for _, e := range list {
		got = append(got, e.Line)
	}
	if !reflect.DeepEqual(got, wantLines) {
		t.Fatalf("lines %v, want %v:\n%v", got, wantLines, list)
	}
	if n := strings.Count(list.Error(), "\n"); n != len(list)-1 {
		t.Fatalf("Error() joins %d lines for %d errors", n+1, len(list))
	}
	var one *Error
	if !errors.As(error(list), &one) || one != list[0] {
		t.Fatalf("errors.As did not find the first *Error")
	}
}

func TestSuggest(t *testing.T) {
	keys := jobKeys
	for in, want := range map[string]string{
		"nmae": "name", "rn": "run", "imgae": "image", "file": "files", "input": "inputs", "outptus": "outputs",
		"envs": "env", "port": "ports", "resource": "resources", "res": "resources", "durration": "duration",
		"dur": "duration", "prices": "price", "placment": "placement", "clustr": "cluster", "verfy": "verify",
		"RUN": "run", "xyzzy": "", "r": "",
	} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if d := editdist.Distance("kitten", "sitting"); d != 3 {
		t.Errorf("levenshtein = %d", d)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]uint64{
		"512MiB": 512, "16GiB": 16384, "1TiB": 1 << 20, "1KiB": 1, "1024KiB": 1, "1025KiB": 2, "0.5GiB": 512,
		"1.5 GiB": 1536, "16gib": 16384, "2.25MiB": 3, "80GiB": 81920,
	} {
		got, msg := parseSize(in)
		if msg != "" || got != want {
			t.Errorf("parseSize(%q) = %d, %q; want %d", in, got, msg, want)
		}
	}
	for in, fix := range map[string]string{
		"80GB": "80GiB", "80G": "80GiB", "80Gi": "80GiB", "80 gb": "80GiB", "512MB": "512MiB", "512M": "512MiB",
		"1TB": "1TiB", "64KB": "64KiB", "16": "16GiB", "2097152": "2MiB", "1.5GB": "1.5GiB",
	} {
		_, msg := parseSize(in)
		if !strings.Contains(msg, "did you mean "+fix+"?") {
			t.Errorf("parseSize(%q): %q, want a suggestion of %s", in, msg, fix)
		}
	}
	for _, in := range []string{"", "GiB", "-1GiB", "1e3MiB", "1,5GiB", "0GiB", "99999999999999GiB", "1.1234567GiB", "12PiB"} {
		if _, msg := parseSize(in); msg == "" {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
	if formatMiB(81920) != "80GiB" || formatMiB(1536) != "1536MiB" || formatMiB(1<<20) != "1TiB" {
		t.Error("formatMiB")
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "2h": 2 * time.Hour, "1h30m": 90 * time.Minute, "1.5h": 90 * time.Minute} {
		got, msg := parseDuration(in)
		if msg != "" || got != want {
			t.Errorf("parseDuration(%q) = %s, %q", in, got, msg)
		}
	}
	for in, fix := range map[string]string{
		"90": "90s", "2 hours": "2h", "2hrs": "2h", "30 minutes": "30m", "45sec": "45s", "1d": "24h", "7 days": "168h",
	} {
		_, msg := parseDuration(in)
		if !strings.Contains(msg, "did you mean "+fix+"?") {
			t.Errorf("parseDuration(%q): %q, want %s", in, msg, fix)
		}
	}
}

func TestCoresAndAmounts(t *testing.T) {
	for in, want := range map[string]uint64{"4": 4000, "0.5": 500, "0.25": 250, "1.125": 1125, "500m": 500, "2.000": 2000, ".5": 500, "3.": 3000} {
		got, msg := parseCores(in)
		if msg != "" || got != want {
			t.Errorf("parseCores(%q) = %d, %q", in, got, msg)
		}
	}
	for _, in := range []string{"", "-1", "0.0005", "1e3", "four", "m", "1.5m"} {
		if _, msg := parseCores(in); msg == "" {
			t.Errorf("parseCores(%q) accepted", in)
		}
	}
	for in, want := range map[string]uint64{"2.5": 2_500_000, "2.5spr": 2_500_000, "2.5 SPR": 2_500_000, "2500000uspr": 2_500_000,
		"0.000001": 1, "3": 3_000_000, "0.1": 100_000, "1.000000": 1_000_000} {
		got, msg := parseSPR(in)
		if msg != "" || got != want {
			t.Errorf("parseSPR(%q) = %d, %q", in, got, msg)
		}
	}
	for _, in := range []string{"", "-1", "1.0000001", "abc", "1e3", "1.5uspr", "99999999999999999999"} {
		if _, msg := parseSPR(in); msg == "" {
			t.Errorf("parseSPR(%q) accepted", in)
		}
	}
	if formatFixed(2_500_000, 6) != "2.5" || formatFixed(3_000_000, 6) != "3" {
		t.Error("formatFixed")
	}
}

// The VRAM floor admits what real cards report for their marketed size and turns away the next size down.
func TestMinVRAM(t *testing.T) {
	cases := []struct {
		asked    string
		reported uint64 // what nvidia-smi says, MiB
		match    bool
	}{
		{"80GiB", 81559, true},   // H100 80GB
		{"80GiB", 81920, true},   // A100 80GB
		{"24GiB", 23034, true},   // L4 24GB
		{"24GiB", 23028, true},   // A10 24GB
		{"24GiB", 24564, true},   // RTX 4090
		{"16GiB", 15109, true},   // T4 with ECC, older driver
		{"16GiB", 15360, true},   // T4
		{"48GiB", 46068, true},   // L40S
		{"40GiB", 40536, true},   // A100 40GB with ECC
		{"141GiB", 143771, true}, // H200
		{"48GiB", 40960, false},  // a 40GB card for a 48GiB ask
		{"24GiB", 16384, false},  // a 16GB card for a 24GiB ask
		{"80GiB", 49152, false},
		{"16GiB", 12288, false},
	}
	for _, c := range cases {
		j := mustParse(t, "run: x\nresources: {gpu: {count: 1, vram: "+c.asked+"}}\n")
		min := j.TxResources().GPUMinVRAMMiB
		if got := c.reported >= min; got != c.match {
			t.Errorf("vram %s (floor %d MiB) vs a GPU reporting %d MiB: match %v, want %v", c.asked, min, c.reported, got, c.match)
		}
	}
	if MinVRAMMiB(81920) != 73728 || MinVRAMMiB(24576) != 22119 || MinVRAMMiB(0) != 0 {
		t.Errorf("MinVRAMMiB: %d %d", MinVRAMMiB(81920), MinVRAMMiB(24576))
	}
}

// YAML spellings that trip people up are read as written, not coerced.
func TestYAMLLiterals(t *testing.T) {
	j := mustParse(t, "run: x\nenv: {A: 010, B: 1.50, C: no, D: ~x, E: \"on\"}\n")
	want := map[string]string{"A": "010", "B": "1.50", "C": "no", "D": "~x", "E": "on"}
	if !reflect.DeepEqual(j.Env, want) {
		t.Fatalf("env %v, want %v", j.Env, want)
	}
}

func TestLimitsAndCodeBuiltJobs(t *testing.T) {
	big := []byte("run: x\n# " + strings.Repeat("x", MaxJobFileBytes) + "\n")
	list := parseErrors(t, string(big))
	if !strings.Contains(list.Error(), "limit 1048576") {
		t.Fatalf("%v", list)
	}
	// A job built in code rather than parsed: errors without a line still name the file and field.
	j := &Job{File: "code", Name: "n", Run: "x", Files: []string{"missing"}, Duration: time.Minute,
		Resources: Resources{CPUMilli: 100, MemoryMiB: 64}, Price: Price{MaxUSPR: 1}}
	_, _, err := j.Manifest(t.TempDir())
	if err == nil || !strings.HasPrefix(err.Error(), "code: files[0]: missing does not exist") {
		t.Fatalf("%v", err)
	}
	if o := j.Order([]byte("m")); o.MaxPricePerHour != 1 || o.Deposit != 1 || o.ValidateBasic() != nil {
		t.Fatalf("%+v", o)
	}
}
