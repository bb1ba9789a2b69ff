package manifest

import (
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
		"version":          func(m *Manifest) { m.Version = 2 },
		"nothing to run":   func(m *Manifest) { m.Run = "" },
		"absolute file":    func(m *Manifest) { m.Files[0].Path = "/etc/passwd" },
		"escaping file":    func(m *Manifest) { m.Files[0].Path = "a/../../x" },
		"duplicate file":   func(m *Manifest) { m.Files = append(m.Files, File{Path: "./train.py"}) },
		"setuid mode":      func(m *Manifest) { m.Files[0].Mode = 0o4755 },
		"escaping output":  func(m *Manifest) { m.Outputs = []string{".."} },
		"bad env":          func(m *Manifest) { m.Env["1X"] = "" },
		"reserved env":     func(m *Manifest) { m.Env["CUDA_VISIBLE_DEVICES"] = "0" },
		"zero duration":    func(m *Manifest) { m.DurationSec = 0 },
		"input no hash":    func(m *Manifest) { m.Inputs = []Input{{URL: "https://x/y", Path: "d"}} },
		"input bad scheme": func(m *Manifest) { m.Inputs = []Input{{URL: "file:///etc/passwd", Path: "d", SHA256: tx.Hash{1}}} },
		"zero port":        func(m *Manifest) { m.Ports = []uint16{0} },
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
