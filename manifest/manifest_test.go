package manifest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
)

func valid() *Manifest {
	return &Manifest{Version: Version, Run: "python train.py", Files: []File{{Path: "train.py", Data: []byte("print(1)")}},
		Outputs: []string{"out/"}, Env: map[string]string{"B": "2", "A": "1"},
		Resources: tx.Resources{GPUCount: 1, CPUMilli: 1000}, DurationSec: 60}
}

func TestEncodeIsStableAndDecodes(t *testing.T) {
	m := valid()
	b1, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := valid().Encode()
	if string(b1) != string(b2) || Hash(b1) != Hash(b2) {
		t.Fatal("same manifest, different bytes")
	}
	if !strings.Contains(string(b1), `"env":{"A":"1","B":"2"}`) {
		t.Fatalf("env not sorted: %s", b1)
	}
	got, err := Decode(b1)
	if err != nil || got.Run != m.Run || string(got.Files[0].Data) != "print(1)" {
		t.Fatalf("decode: %+v %v", got, err)
	}
}

func TestValidateRejects(t *testing.T) {
	for name, mut := range map[string]func(*Manifest){
		"version":           func(m *Manifest) { m.Version = 2 },
		"nothing to run":    func(m *Manifest) { m.Run = "" },
		"absolute file":     func(m *Manifest) { m.Files[0].Path = "/etc/passwd" },
		"escaping file":     func(m *Manifest) { m.Files[0].Path = "a/../../x" },
		"duplicate file":    func(m *Manifest) { m.Files = append(m.Files, File{Path: "./train.py"}) },
		"setuid mode":       func(m *Manifest) { m.Files[0].Mode = 0o4755 },
		"escaping output":   func(m *Manifest) { m.Outputs = []string{".."} },
		"bad env":           func(m *Manifest) { m.Env["1X"] = "" },
		"reserved env":      func(m *Manifest) { m.Env["CUDA_VISIBLE_DEVICES"] = "0" },
		"zero duration":     func(m *Manifest) { m.DurationSec = 0 },
		"input no hash":     func(m *Manifest) { m.Inputs = []Input{{URL: "https://x/y", Path: "d"}} },
		"input bad scheme":  func(m *Manifest) { m.Inputs = []Input{{URL: "file:///etc/passwd", Path: "d", SHA256: tx.Hash{1}}} },
		"zero port":         func(m *Manifest) { m.Ports = []uint16{0} },
		"vault, no outputs": func(m *Manifest) { m.Outputs, m.OutputsVault = nil, true },
	} {
		m := valid()
		mut(m)
		if err := m.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Decode([]byte(`{"version":1,"run":"x","duration_sec":1,"resources":{"cpu_milli":1},"surprise":1}`)); err == nil {
		t.Error("unknown field accepted")
	}
}

// legacyInput is Input as it was before vault inputs: a URL input must still encode to exactly these bytes, so
// that a manifest's hash (on the ledger, in the order) is what it was.
type legacyInput struct {
	URL    string  `json:"url"`
	SHA256 tx.Hash `json:"sha256"`
	Path   string  `json:"path"`
}

// TestURLInputsEncodeAsBefore: a manifest with URL inputs encodes byte for byte as it did before Input had a
// vault field, whatever else it holds.
func TestURLInputsEncodeAsBefore(t *testing.T) {
	m := valid()
	m.Inputs = []Input{{URL: "https://h/a.tar", SHA256: tx.Hash{1, 2, 3}, Path: "data/"}, {URL: "http://g/b?x=1", SHA256: tx.Hash{9}, Path: "b"}}
	got, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	legacy := make([]legacyInput, len(m.Inputs))
	for i, in := range m.Inputs {
		legacy[i] = legacyInput{in.URL, in.SHA256, in.Path}
	}
	want, _ := json.Marshal(legacy)
	if !strings.Contains(string(got), `"inputs":`+string(want)+`,`) {
		t.Fatalf("URL inputs encode as\n%s\nwant them as before:\n%s", got, want)
	}
	const golden = `{"version":1,"run":"python train.py","files":[{"path":"train.py","data":"cHJpbnQoMSk="}],` +
		`"inputs":[{"url":"https://h/a.tar","sha256":"0102030000000000000000000000000000000000000000000000000000000000","path":"data/"},` +
		`{"url":"http://g/b?x=1","sha256":"0900000000000000000000000000000000000000000000000000000000000000","path":"b"}],` +
		`"outputs":["out/"],"env":{"A":"1","B":"2"},"resources":{"gpu_count":1,"gpu_min_vram_mib":0,"cpu_milli":1000,"memory_mib":0,"disk_mib":0},"duration_sec":60}`
	if string(got) != golden {
		t.Fatalf("encoded\n%s\nwant\n%s", got, golden)
	}
}

// TestVaultInputRoundTrip: a vault input encodes as {"vault","path"} only, and decodes to itself; mixed with a
// URL input each keeps its own fields.
func TestVaultInputRoundTrip(t *testing.T) {
	root := tx.Hash{0xaa, 0xbb}
	m := valid()
	m.Inputs = []Input{{Vault: root, Path: "weights/base.bin"}, {URL: "https://h/a", SHA256: tx.Hash{1}, Path: "a"}, {Vault: root, Path: "d/"}}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `"inputs":[{"vault":"` + root.String() + `","path":"weights/base.bin"},{"url":"https://h/a","sha256":"` + tx.Hash{1}.String() + `","path":"a"},{"vault":"` + root.String() + `","path":"d/"}]`
	if !strings.Contains(string(b), want) {
		t.Fatalf("encoded %s\nwant %s", b, want)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Inputs, m.Inputs) {
		t.Fatalf("decoded %+v, want %+v", back.Inputs, m.Inputs)
	}
	again, _ := back.Encode()
	if string(again) != string(b) || Hash(again) != Hash(b) {
		t.Fatal("a decoded manifest encodes to other bytes")
	}
}

// TestVaultInputValidation plays a tenant that hand-writes a manifest: an input names exactly one source, and a
// SHA-256 only with a URL.
func TestVaultInputValidation(t *testing.T) {
	root := tx.Hash{7}
	for name, c := range map[string]struct {
		in   Input
		want string
	}{
		"both":          {Input{URL: "https://h/a", SHA256: tx.Hash{1}, Vault: root, Path: "a"}, "both url and vault"},
		"both, no hash": {Input{URL: "https://h/a", Vault: root, Path: "a"}, "both url and vault"},
		"vault+sha256":  {Input{Vault: root, SHA256: tx.Hash{1}, Path: "a"}, "sha256 with vault"},
		"neither":       {Input{Path: "a"}, "neither url nor vault"},
		"hash only":     {Input{SHA256: tx.Hash{1}, Path: "a"}, "neither url nor vault"},
		"no path":       {Input{Vault: root}, "inputs[0].path"},
		"escaping path": {Input{Vault: root, Path: "../x"}, "leaves the job's directory"},
	} {
		m := valid()
		m.Inputs = []Input{c.in}
		err := m.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
	for name, raw := range map[string]string{
		"vault and url":     `{"url":"https://h/a","vault":"` + root.String() + `","path":"a"}`,
		"vault and sha256":  `{"sha256":"` + root.String() + `","vault":"` + root.String() + `","path":"a"}`,
		"empty":             `{"path":"a"}`,
		"bad vault":         `{"vault":"abc","path":"a"}`,
		"zero vault":        `{"vault":"` + tx.Hash{}.String() + `","path":"a"}`,
		"unknown companion": `{"vault":"` + root.String() + `","path":"a","blake3":"x"}`,
	} {
		b := `{"version":1,"run":"x","duration_sec":1,"resources":{"cpu_milli":1},"inputs":[` + raw + `]}`
		if _, err := Decode([]byte(b)); err == nil {
			t.Errorf("%s: decoded %s", name, b)
		}
	}
}
