package inventory

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// IsolationEnv is the environment that confines a workload to the GPUs assigned to it: exactly two variables,
// CUDA_VISIBLE_DEVICES (read by the CUDA runtime, so it also confines a plain process) and
// NVIDIA_VISIBLE_DEVICES (read by the NVIDIA container toolkit, which mounts only those devices into a
// container). Both list the GPUs by UUID, sorted by index, duplicates dropped. UUIDs, not indices, because
// indices do not survive the trip: inside a container the given GPUs are renumbered from 0, and CUDA's default
// order (fastest first) is not nvidia-smi's PCI order. A GPU without a UUID, which Detect never returns, is
// listed by index as a last resort.
//
// With no GPUs the workload must see none: CUDA_VISIBLE_DEVICES="" hides every device from CUDA, and
// NVIDIA_VISIBLE_DEVICES=void makes the toolkit mount none. Set both even then, and set them on the container
// itself: CUDA base images set NVIDIA_VISIBLE_DEVICES=all in the image, which would otherwise expose every GPU.
func IsolationEnv(assigned []GPU) []string {
	gpus := slices.Clone(assigned)
	slices.SortStableFunc(gpus, func(a, b GPU) int { return cmp.Compare(a.Index, b.Index) })
	var ids []string
	for _, g := range gpus {
		id := g.UUID
		if id == "" {
			id = strconv.Itoa(g.Index)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	list := strings.Join(ids, ",")
	nvidia := list
	if len(ids) == 0 {
		nvidia = "void"
	}
	return []string{"CUDA_VISIBLE_DEVICES=" + list, "NVIDIA_VISIBLE_DEVICES=" + nvidia}
}
