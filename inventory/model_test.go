package inventory

import (
	"strings"
	"testing"

	"github.com/sparenet/spare/ledger/tx"
)

func TestNormalizeModel(t *testing.T) {
	for _, c := range []struct{ name, want string }{
		// data centre, SXM is the bare name
		{"NVIDIA H100 80GB HBM3", "H100"},
		{"NVIDIA H100 SXM5 80GB", "H100"},
		{"NVIDIA H100 PCIe", "H100-PCIe"},
		{"NVIDIA H100 NVL", "H100-NVL"},
		{"NVIDIA H200", "H200"},
		{"NVIDIA H200 NVL", "H200-NVL"},
		{"NVIDIA H800 PCIe", "H800-PCIe"},
		{"NVIDIA GH200 480GB", "GH200"},
		{"NVIDIA B200", "B200"},
		{"NVIDIA A100-SXM4-80GB", "A100"},
		{"NVIDIA A100-SXM4-40GB", "A100"},
		{"NVIDIA A100-PCIE-40GB", "A100-PCIe"},
		{"NVIDIA A100 80GB PCIe", "A100-PCIe"},
		{"NVIDIA A800-SXM4-80GB", "A800"},
		{"Tesla V100-SXM2-16GB", "V100"},
		{"Tesla V100-SXM2-32GB", "V100"},
		{"Tesla V100-PCIE-32GB", "V100-PCIe"},
		{"Tesla V100S-PCIE-32GB", "V100S-PCIe"},
		{"Tesla P100-PCIE-16GB", "P100-PCIe"},
		{"Tesla T4", "T4"},
		{"Tesla K80", "K80"},
		{"NVIDIA L4", "L4"},
		{"NVIDIA L40S", "L40S"},
		{"NVIDIA A10G", "A10G"},
		{"NVIDIA A40", "A40"},
		// workstation
		{"NVIDIA RTX A6000", "RTXA6000"},
		{"NVIDIA RTX A4000", "RTXA4000"},
		{"NVIDIA RTX 6000 Ada Generation", "RTX6000Ada"},
		{"Quadro RTX 8000", "RTX8000"},
		{"Quadro RTX 6000", "RTX6000"},
		{"Quadro P6000", "P6000"},
		{"NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "RTXPRO6000BlackwellWorkstationEdition"},
		{"NVIDIA RTX 2000 Ada Generation Laptop GPU", "RTX2000Ada-Laptop"},
		// consumer
		{"NVIDIA GeForce RTX 4090", "RTX4090"},
		{"NVIDIA GeForce RTX 4090 D", "RTX4090D"},
		{"NVIDIA GeForce RTX 3090", "RTX3090"},
		{"NVIDIA GeForce RTX 3080 Ti", "RTX3080Ti"},
		{"NVIDIA GeForce GTX 1080 Ti", "GTX1080Ti"},
		{"NVIDIA GeForce RTX 4070 SUPER", "RTX4070Super"},
		{"NVIDIA GeForce RTX 4070 Ti SUPER", "RTX4070TiSuper"},
		{"NVIDIA GeForce RTX 4060 Laptop GPU", "RTX4060-Laptop"},
		{"NVIDIA GeForce RTX 2080 with Max-Q Design", "RTX2080-MaxQ"},
		{"NVIDIA TITAN RTX", "TITANRTX"},
		{"NVIDIA TITAN Xp", "TITANXp"},
		// spacing, case, junk
		{"  NVIDIA   H100\t80GB  HBM3 ", "H100"},
		{"nvidia h100 pcie", "h100-PCIe"},
		{"NVIDIA PG506-232", "PG506-232"},
		{"NVIDIA Ünknöwn (TM) X/1", "nknwnTMX1"},
		{"NVIDIA A100 3g.40gb", "A1003g.40gb"},
		{"", UnknownModel},
		{"NVIDIA", UnknownModel},
		{"NVIDIA GPU 80GB PCIe", UnknownModel},
		{"!!! ???", UnknownModel},
	} {
		if got := NormalizeModel(c.name); got != c.want {
			t.Errorf("NormalizeModel(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestNormalizeModelLong(t *testing.T) {
	got := NormalizeModel("NVIDIA " + strings.Repeat("Abcdefgh-", 20) + " PCIe NVL")
	if len(got) != tx.MaxNameLen || !strings.HasSuffix(got, "-PCIe-NVL") {
		t.Fatalf("got %q (%d bytes), want %d bytes ending in -PCIe-NVL", got, len(got), tx.MaxNameLen)
	}
	checkLedgerName(t, got)
}

// checkLedgerName fails unless the ledger accepts s as a GPU model.
func checkLedgerName(t testing.TB, s string) {
	t.Helper()
	h := tx.Hardware{GPUs: []tx.GPUGroup{{Model: s, VRAMMiB: 1, Count: 1}}, CPUMilli: 1000, MemoryMiB: 1}
	if err := h.Validate(); err != nil {
		t.Fatalf("model %q is not a valid ledger name: %v", s, err)
	}
}

func FuzzNormalizeModel(f *testing.F) {
	for _, s := range []string{"NVIDIA H100 80GB HBM3", "Tesla V100-SXM2-16GB", "-- - -", "NVIDIA GeForce RTX 2080 with Max-Q Design",
		strings.Repeat("x", 100) + " PCIe", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		checkLedgerName(t, NormalizeModel(name))
	})
}

func TestVRAMGiB(t *testing.T) {
	for _, c := range []struct{ mib, want uint64 }{
		{0, 0}, {511, 0}, {512, 1}, {1024, 1},
		{81559, 80},                       // H100 80GB
		{81920, 80},                       // A100 80GB
		{40536, 40},                       // A100 40GB, ECC on
		{24564, 24},                       // RTX 4090
		{49140, 48},                       // RTX A6000
		{16160, 16},                       // V100 16GB
		{15360, 15},                       // T4
		{23034, 22},                       // L4: below its marketed 24GB
		{^uint64(0), ^uint64(0)/1024 + 1}, // no overflow
	} {
		if got := VRAMGiB(c.mib); got != c.want {
			t.Errorf("VRAMGiB(%d) = %d, want %d", c.mib, got, c.want)
		}
	}
}
