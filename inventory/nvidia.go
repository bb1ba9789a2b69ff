package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// GPU is one NVIDIA GPU as nvidia-smi reports it. Fields nvidia-smi reports as unavailable ("[N/A]",
// "[Not Supported]", "ERR!"...) are left zero.
type GPU struct {
	// Index is nvidia-smi's index, in PCI bus order. CUDA numbers devices differently by default, and a container
	// renumbers the GPUs it is given from 0, so an index only means something on the host, to nvidia-smi.
	Index int `json:"index"`
	// UUID identifies the GPU wherever it is seen from: "GPU-" and a UUID.
	UUID string `json:"uuid"`
	// Name is the product name as printed, e.g. "NVIDIA H100 80GB HBM3".
	Name string `json:"name"`
	// Model is NormalizeModel(Name), e.g. "H100": the name used on the ledger.
	Model string `json:"model"`
	// MemoryMiB is the total memory (memory.total), e.g. 81559 for an H100 80GB.
	MemoryMiB uint64 `json:"memory_mib"`
	// Driver is the driver version, e.g. "550.54.15".
	Driver string `json:"driver"`
	// PCIBusID is the PCI address, e.g. "00000000:18:00.0".
	PCIBusID string `json:"pci_bus_id"`
}

// VRAMGiB is the GPU's memory rounded to whole GiB.
func (g GPU) VRAMGiB() uint64 { return VRAMGiB(g.MemoryMiB) }

var (
	// ErrNoNvidiaSMI is returned by QueryGPUs when nvidia-smi is not installed: the machine has no NVIDIA driver,
	// so no NVIDIA GPUs to offer. Detect reports it as a warning, not an error.
	ErrNoNvidiaSMI = errors.New("nvidia-smi not found")
	// ErrNvidiaSMI wraps every other failure: nvidia-smi exited with an error, timed out, or printed something
	// that is not the GPU list it was asked for. The GPUs it would have listed are unknown, so a caller must not
	// take this for "no GPUs".
	ErrNvidiaSMI = errors.New("nvidia-smi failed")
)

// NvidiaSMIArgs are the arguments QueryGPUs runs nvidia-smi with. ParseNvidiaSMI reads what they print.
var NvidiaSMIArgs = []string{
	"--query-gpu=index,uuid,name,memory.total,driver_version,pci.bus_id",
	"--format=csv,noheader,nounits",
}

// DefaultNvidiaSMITimeout bounds one nvidia-smi run. Without persistence mode, the driver initialises every GPU
// on each run, which takes seconds on a large machine.
const DefaultNvidiaSMITimeout = 30 * time.Second

// noDevices is what nvidia-smi prints (exiting with status 6) when the driver is loaded but sees no GPU.
const noDevices = "No devices were found"

// knownFailures are messages nvidia-smi prints instead of the list, with a hint for the operator.
var knownFailures = []struct{ prefix, hint string }{
	{"NVIDIA-SMI has failed", "the NVIDIA driver is not loaded or not installed properly"},
	{"Failed to initialize NVML: Driver/library version mismatch",
		"the driver was upgraded but the old kernel module is still loaded: reboot, or reload the nvidia modules"},
	{"Failed to initialize NVML", "the NVIDIA driver cannot be reached"},
	{"Unable to determine the device handle", "a GPU is in a bad state (fallen off the bus?): see dmesg, reset or replace it"},
}

// ParseNvidiaSMI parses the output of nvidia-smi run with NvidiaSMIArgs: one line per GPU,
// "index, uuid, name, memory.total, driver_version, pci.bus_id". It tolerates extra spaces, CRLF line ends,
// blank lines, a header line, a " MiB" unit and "[N/A]"-style values (left zero). "No devices were found" is no
// GPUs and no error. An error message from nvidia-smi, a line that is not a GPU record, a bad index or memory
// size, or a repeated index or UUID is an error wrapping ErrNvidiaSMI that names the line.
func ParseNvidiaSMI(out []byte) ([]GPU, error) {
	var gpus []GPU
	indexLine := map[int]int{}
	uuidLine := map[string]int{}
	first := true
	for i, raw := range strings.Split(string(out), "\n") {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line == noDevices {
			continue
		}
		for _, f := range knownFailures {
			if strings.HasPrefix(line, f.prefix) {
				return nil, fmt.Errorf("%w: %s (%s)", ErrNvidiaSMI, quoteLine(line), f.hint)
			}
		}
		fields := strings.Split(line, ",")
		if len(fields) < 6 {
			return nil, fmt.Errorf("%w: output line %d is not a GPU record (%d comma-separated fields, want 6): %s",
				ErrNvidiaSMI, n, len(fields), quoteLine(line))
		}
		if len(fields) > 6 { // a comma in the name: it is the only free-text field
			name := strings.Join(fields[2:len(fields)-3], ",")
			fields = append(fields[:2:2], name, fields[len(fields)-3], fields[len(fields)-2], fields[len(fields)-1])
		}
		for j := range fields {
			fields[j] = strings.TrimSpace(fields[j])
		}
		if first && strings.EqualFold(fields[0], "index") {
			first = false
			continue // a header line, if --format lacked noheader
		}
		first = false
		bad := func(what string) error {
			return fmt.Errorf("%w: output line %d: bad %s: %s", ErrNvidiaSMI, n, what, quoteLine(line))
		}
		idx, err := strconv.Atoi(fields[0])
		if err != nil || idx < 0 {
			return nil, bad("index")
		}
		g := GPU{Index: idx, UUID: value(fields[1]), Name: value(fields[2]), Driver: value(fields[4]),
			PCIBusID: value(fields[5])}
		if !validUUID(g.UUID) {
			return nil, bad("uuid")
		}
		if mem := strings.TrimSpace(strings.TrimSuffix(value(fields[3]), "MiB")); mem != "" {
			if g.MemoryMiB, err = strconv.ParseUint(mem, 10, 64); err != nil {
				return nil, bad("memory.total")
			}
		}
		g.Model = NormalizeModel(g.Name)
		if prev, ok := indexLine[idx]; ok {
			return nil, fmt.Errorf("%w: output line %d repeats index %d of line %d", ErrNvidiaSMI, n, idx, prev)
		}
		indexLine[idx] = n
		if g.UUID != "" {
			if prev, ok := uuidLine[g.UUID]; ok {
				return nil, fmt.Errorf("%w: output line %d repeats uuid %s of line %d", ErrNvidiaSMI, n, g.UUID, prev)
			}
			uuidLine[g.UUID] = n
		}
		gpus = append(gpus, g)
	}
	return gpus, nil
}

// value is a field's value, or "" when nvidia-smi marks it unavailable: "[N/A]", "[Not Supported]",
// "[Unknown Error]", "[GPU requires reset]", "N/A", "ERR!".
func value(s string) string {
	if s == "N/A" || s == "ERR!" || strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return ""
	}
	return s
}

// validUUID accepts the characters of "GPU-<uuid>" (or "MIG-<uuid>"), which go into comma-separated lists.
func validUUID(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return len(s) <= 128
}

// quoteLine quotes a line for an error message, cut to a readable length.
func quoteLine(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}

// QueryGPUs runs nvidia-smi (a path, or a name looked up in PATH; "" is "nvidia-smi") with NvidiaSMIArgs and
// parses its output. timeout bounds the run (0 is DefaultNvidiaSMITimeout). It returns ErrNoNvidiaSMI when the
// program does not exist, no GPUs and no error when nvidia-smi says there are none, and an error wrapping
// ErrNvidiaSMI for anything else that goes wrong (also wrapping context.DeadlineExceeded on a timeout).
func QueryGPUs(ctx context.Context, nvidiaSMI string, timeout time.Duration) ([]GPU, error) {
	if nvidiaSMI == "" {
		nvidiaSMI = "nvidia-smi"
	}
	if timeout <= 0 {
		timeout = DefaultNvidiaSMITimeout
	}
	bin, err := exec.LookPath(nvidiaSMI)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %q is not installed (no NVIDIA driver)", ErrNoNvidiaSMI, nvidiaSMI)
		}
		return nil, fmt.Errorf("%w: %v", ErrNvidiaSMI, err)
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, bin, NvidiaSMIArgs...)
	stdout, stderr := &cappedBuffer{max: 1 << 20}, &cappedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second // do not wait on a killed nvidia-smi's children holding the pipes
	err = cmd.Run()
	if ctxErr := runCtx.Err(); ctxErr != nil {
		if ctx.Err() == nil {
			return nil, fmt.Errorf("%w: %s did not answer within %v: %w", ErrNvidiaSMI, bin, timeout, ctxErr)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrNvidiaSMI, bin, ctx.Err())
	}
	if err != nil {
		combined := strings.TrimSpace(stdout.String() + "\n" + stderr.String())
		if strings.Contains(combined, noDevices) {
			return nil, nil
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return nil, fmt.Errorf("%w: running %s: %v", ErrNvidiaSMI, bin, err)
		}
		msg := firstLine(combined)
		for _, f := range knownFailures {
			if strings.HasPrefix(msg, f.prefix) {
				msg += " (" + f.hint + ")"
				break
			}
		}
		if msg == "" {
			msg = "no output"
		}
		return nil, fmt.Errorf("%w: %s exited with status %d: %s", ErrNvidiaSMI, bin, exit.ExitCode(), msg)
	}
	return ParseNvidiaSMI(stdout.Bytes())
}

// firstLine is the first non-blank line of s, cut to a readable length.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 300 {
				l = l[:300] + "..."
			}
			return l
		}
	}
	return ""
}

// cappedBuffer keeps the first max bytes written to it and discards the rest.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
