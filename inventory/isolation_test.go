package inventory

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestIsolationEnv(t *testing.T) {
	all := a100x8()
	for _, c := range []struct {
		name     string
		assigned []GPU
		want     []string
	}{
		{"no GPUs", nil, []string{"CUDA_VISIBLE_DEVICES=", "NVIDIA_VISIBLE_DEVICES=void"}},
		{"empty list", []GPU{}, []string{"CUDA_VISIBLE_DEVICES=", "NVIDIA_VISIBLE_DEVICES=void"}},
		{"GPUs 2 and 5 of 8", []GPU{all[2], all[5]}, []string{
			"CUDA_VISIBLE_DEVICES=GPU-0a1b2c3d-2222-4a4a-8b8b-222222222222,GPU-0a1b2c3d-5555-4a4a-8b8b-555555555555",
			"NVIDIA_VISIBLE_DEVICES=GPU-0a1b2c3d-2222-4a4a-8b8b-222222222222,GPU-0a1b2c3d-5555-4a4a-8b8b-555555555555"}},
		{"given out of order, repeated", []GPU{all[5], all[2], all[5]}, []string{
			"CUDA_VISIBLE_DEVICES=GPU-0a1b2c3d-2222-4a4a-8b8b-222222222222,GPU-0a1b2c3d-5555-4a4a-8b8b-555555555555",
			"NVIDIA_VISIBLE_DEVICES=GPU-0a1b2c3d-2222-4a4a-8b8b-222222222222,GPU-0a1b2c3d-5555-4a4a-8b8b-555555555555"}},
		{"one", []GPU{all[7]}, []string{"CUDA_VISIBLE_DEVICES=GPU-0a1b2c3d-7777-4a4a-8b8b-777777777777",
			"NVIDIA_VISIBLE_DEVICES=GPU-0a1b2c3d-7777-4a4a-8b8b-777777777777"}},
		{"no UUID: index", []GPU{{Index: 3}, all[1]}, []string{"CUDA_VISIBLE_DEVICES=GPU-0a1b2c3d-1111-4a4a-8b8b-111111111111,3",
			"NVIDIA_VISIBLE_DEVICES=GPU-0a1b2c3d-1111-4a4a-8b8b-111111111111,3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.assigned)
			got := IsolationEnv(c.assigned)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
			if !reflect.DeepEqual(in, c.assigned) {
				t.Fatal("IsolationEnv changed its argument")
			}
		})
	}

	// exactly the assigned UUIDs are visible, none of the other six
	env := IsolationEnv([]GPU{all[2], all[5]})
	for _, kv := range env {
		_, list, _ := strings.Cut(kv, "=")
		visible := strings.Split(list, ",")
		for i, g := range all {
			if slices.Contains(visible, g.UUID) != (i == 2 || i == 5) {
				t.Errorf("%s: GPU %d visible = %v", kv, i, !(i == 2 || i == 5))
			}
		}
	}
}
