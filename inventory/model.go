package inventory

import (
	"regexp"
	"strings"

	"github.com/sparenet/spare/ledger/tx"
)

// UnknownModel is the model of a GPU whose name nvidia-smi did not report or that has no model token left.
const UnknownModel = "Unknown"

// NormalizeModel maps a GPU product name, as nvidia-smi prints it, to the model name a provider declares on the
// ledger (tx.GPUGroup.Model), a tenant lists in a job file and a price table is keyed by. The result is always
// a valid ledger name: 1 to 64 of letters, digits, '-', '_' and '.'.
//
// The rule keeps what tells chips and boards apart and drops what is carried elsewhere or is mere branding:
//
//  1. The name is split into words at spaces and each word into parts at '-' ("A100-SXM4-80GB" → A100, SXM4,
//     80GB). "Max-Q" counts as one part. Characters other than letters, digits, '_' and '.' are removed.
//  2. Dropped: the brand words NVIDIA, GeForce, Tesla, Quadro and the filler words GPU, Generation, with,
//     Design; memory sizes (80GB, 16GiB), which the VRAM of the GPU group carries (A100 40GB and 80GB are both
//     "A100", told apart by VRAMMiB); memory types (HBM3, HBM2e, GDDR6X); and SXM, SXM2...SXM5, because the SXM
//     board is the default form factor of a data-centre part: "H100" is the SXM H100.
//  3. Variants that change performance and price become suffixes, appended after the rest in this order:
//     PCIe → "-PCIe", NVL → "-NVL", Max-Q → "-MaxQ", Laptop → "-Laptop". So "NVIDIA H100 PCIe" is
//     "H100-PCIe", distinct from the SXM "H100"; a tenant who accepts both lists both.
//  4. Ti and SUPER are spelled "Ti" and "Super". Every other part is kept as printed.
//  5. The remaining parts are joined: the parts of one word with '-', the words with nothing. A name with nothing
//     left is UnknownModel; a longer result is cut to 64 bytes, keeping the suffixes.
//
// Examples:
//
//	NVIDIA H100 80GB HBM3           H100
//	NVIDIA H100 PCIe                H100-PCIe
//	NVIDIA H100 NVL                 H100-NVL
//	NVIDIA A100-SXM4-80GB           A100
//	NVIDIA A100 80GB PCIe           A100-PCIe
//	Tesla V100-SXM2-16GB            V100
//	Tesla V100S-PCIE-32GB           V100S-PCIe
//	Tesla T4                        T4
//	NVIDIA L4                       L4
//	NVIDIA GeForce RTX 4090         RTX4090
//	NVIDIA GeForce GTX 1080 Ti      GTX1080Ti
//	NVIDIA GeForce RTX 4070 SUPER   RTX4070Super
//	NVIDIA GeForce RTX 4060 Laptop GPU  RTX4060-Laptop
//	NVIDIA RTX A6000                RTXA6000
//	NVIDIA RTX 6000 Ada Generation  RTX6000Ada
//	Quadro RTX 8000                 RTX8000
func NormalizeModel(name string) string {
	name = maxQ.ReplaceAllString(name, " MaxQ ")
	var base strings.Builder
	var found [len(variantSuffixes)]bool
	for _, word := range strings.Fields(name) {
		var kept []string
	parts:
		for _, part := range strings.Split(word, "-") {
			part = sanitizeName(part)
			lower := strings.ToLower(part)
			if part == "" || droppedWords[lower] || memorySize.MatchString(part) || memoryType.MatchString(part) ||
				sxmBoard.MatchString(part) {
				continue
			}
			for i, v := range variantSuffixes {
				if lower == v.token {
					found[i] = true
					continue parts
				}
			}
			if c, ok := canonicalParts[lower]; ok {
				part = c
			}
			kept = append(kept, part)
		}
		base.WriteString(strings.Join(kept, "-"))
	}
	if base.Len() == 0 {
		return UnknownModel
	}
	var suffix strings.Builder
	for i, v := range variantSuffixes {
		if found[i] {
			suffix.WriteString("-" + v.suffix)
		}
	}
	b := base.String()
	if room := tx.MaxNameLen - suffix.Len(); len(b) > room {
		b = strings.TrimRight(b[:room], "-")
	}
	return b + suffix.String()
}

var (
	maxQ           = regexp.MustCompile(`(?i)max-q`)
	memorySize     = regexp.MustCompile(`(?i)^[0-9]+(\.[0-9]+)?(GB|GiB)$`)
	memoryType     = regexp.MustCompile(`(?i)^(HBM[0-9]*e?|GDDR[0-9]*X?)$`)
	sxmBoard       = regexp.MustCompile(`(?i)^SXM[0-9]*$`)
	droppedWords   = map[string]bool{"nvidia": true, "geforce": true, "tesla": true, "quadro": true, "gpu": true, "generation": true, "with": true, "design": true}
	canonicalParts = map[string]string{"ti": "Ti", "super": "Super"}
	// variantSuffixes are matched case-insensitively and appended in this order.
	variantSuffixes = [...]struct{ token, suffix string }{
		{"pcie", "PCIe"}, {"nvl", "NVL"}, {"maxq", "MaxQ"}, {"laptop", "Laptop"},
	}
)

// sanitizeName keeps the characters a ledger name may hold, except '-', which separates parts.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' {
			return r
		}
		return -1
	}, s)
}

// VRAMGiB rounds a memory size in MiB to the nearest whole GiB, halves up: 81559 MiB (what an H100 80GB
// reports) is 80, 24564 (RTX 4090) is 24, 40536 (A100 40GB with ECC on) is 40. nvidia-smi reports the memory
// usable by the driver, a little below the size on the box, so compare sizes in whole GiB rather than in MiB.
// (Not every board lands on its marketed size: an L4 "24GB" reports 23034 MiB, 22 GiB.)
func VRAMGiB(mib uint64) uint64 {
	g := mib / 1024
	if mib%1024 >= 512 {
		g++
	}
	return g
}
