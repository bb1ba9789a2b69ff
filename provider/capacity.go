package provider

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sparenet/spare/ledger/tx"
)

// Reservation is what an open bid (keyed by its order) or a running lease holds of this machine.
type Reservation struct {
	GPUs      []string `json:"gpus,omitempty"` // UUIDs
	CPUMilli  uint64   `json:"cpu_milli"`
	MemoryMiB uint64   `json:"memory_mib"`
	DiskMiB   uint64   `json:"disk_mib"`
}

// Capacity tracks the machine's offered hardware and what open bids and running leases reserve of it. Free
// capacity is total minus reservations; bids are placed only against free capacity, so the provider never
// promises the same GPU twice.
type Capacity struct {
	mu    sync.Mutex
	total HardwareConfig
	held  map[string]Reservation // "order/<id>" (open bid) or "lease/<id>"
	// OnFree, when set, is called (without the lock held) after a reservation is released.
	OnFree func()
}

// NewCapacity starts with nothing reserved.
func NewCapacity(total HardwareConfig) *Capacity {
	return &Capacity{total: total, held: map[string]Reservation{}}
}

func orderKey(id uint64) string { return fmt.Sprintf("order/%d", id) }
func leaseKey(id uint64) string { return fmt.Sprintf("lease/%d", id) }

// freeLocked returns the free GPUs (in index order) and free CPU, memory and disk.
func (c *Capacity) freeLocked() ([]GPUConfig, Reservation) {
	used := map[string]bool{}
	var r Reservation
	for _, h := range c.held {
		for _, g := range h.GPUs {
			used[g] = true
		}
		r.CPUMilli += h.CPUMilli
		r.MemoryMiB += h.MemoryMiB
		r.DiskMiB += h.DiskMiB
	}
	var gpus []GPUConfig
	for _, g := range c.total.GPUs {
		if !used[g.UUID] {
			gpus = append(gpus, g)
		}
	}
	sort.Slice(gpus, func(i, j int) bool { return gpus[i].Index < gpus[j].Index })
	free := Reservation{
		CPUMilli:  sub(c.total.CPUCores*1000, r.CPUMilli),
		MemoryMiB: sub(c.total.MemoryMiB, r.MemoryMiB),
		DiskMiB:   sub(c.total.DiskMiB, r.DiskMiB),
	}
	return gpus, free
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// Free is the free capacity as ledger hardware (for the shared feasibility check).
func (c *Capacity) Free() tx.Hardware {
	c.mu.Lock()
	defer c.mu.Unlock()
	gpus, free := c.freeLocked()
	h := HardwareConfig{GPUs: gpus, CPUCores: 0, MemoryMiB: free.MemoryMiB, DiskMiB: free.DiskMiB}.Ledger()
	h.CPUMilli = free.CPUMilli
	return h
}

// pickGPUs chooses n free GPUs matching the models (any, when empty) with at least minMiB each, lowest index
// first. It reports false when there are not enough.
func pickGPUs(free []GPUConfig, n uint32, models []string, minMiB uint64) ([]GPUConfig, bool) {
	var out []GPUConfig
	for _, g := range free {
		if uint32(len(out)) == n {
			break
		}
		if len(models) > 0 && !slices.ContainsFunc(models, func(m string) bool { return strings.EqualFold(m, g.Model) }) {
			continue
		}
		if g.MemoryMiB < minMiB {
			continue
		}
		out = append(out, g)
	}
	return out, uint32(len(out)) == n
}

// Reserve holds resources for a bid on order if they are free, choosing the GPUs. It returns the reservation and the
// chosen GPUs.
func (c *Capacity) Reserve(order uint64, r tx.Resources) (Reservation, []GPUConfig, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gpus, free := c.freeLocked()
	chosen, ok := pickGPUs(gpus, r.GPUCount, r.GPUModels, r.GPUMinVRAMMiB)
	switch {
	case !ok:
		return Reservation{}, nil, fmt.Errorf("not enough free GPUs")
	case r.CPUMilli > free.CPUMilli:
		return Reservation{}, nil, fmt.Errorf("not enough free CPU")
	case r.MemoryMiB > free.MemoryMiB:
		return Reservation{}, nil, fmt.Errorf("not enough free memory")
	case r.DiskMiB > free.DiskMiB:
		return Reservation{}, nil, fmt.Errorf("not enough free disk")
	}
	res := Reservation{CPUMilli: r.CPUMilli, MemoryMiB: r.MemoryMiB, DiskMiB: r.DiskMiB}
	for _, g := range chosen {
		res.GPUs = append(res.GPUs, g.UUID)
	}
	c.held[orderKey(order)] = res
	return res, chosen, nil
}

// Restore puts back a reservation loaded from the local store after a restart.
func (c *Capacity) Restore(key string, r Reservation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held[key] = r
}

// Promote turns the reservation for order into lease's (the bid won).
func (c *Capacity) Promote(order, lease uint64) (Reservation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.held[orderKey(order)]
	if ok {
		delete(c.held, orderKey(order))
		c.held[leaseKey(lease)] = r
	}
	return r, ok
}

// ReleaseOrder frees the reservation of a lost, withdrawn or expired bid on order.
func (c *Capacity) ReleaseOrder(order uint64) { c.release(orderKey(order)) }

// ReleaseLease frees an ended lease's reservation.
func (c *Capacity) ReleaseLease(lease uint64) { c.release(leaseKey(lease)) }

func (c *Capacity) release(key string) {
	c.mu.Lock()
	_, held := c.held[key]
	delete(c.held, key)
	c.mu.Unlock()
	if held && c.OnFree != nil {
		c.OnFree()
	}
}

// GPUsByUUID returns the configured GPUs with those UUIDs, in the given order.
func (c *Capacity) GPUsByUUID(uuids []string) []GPUConfig {
	var out []GPUConfig
	for _, u := range uuids {
		for _, g := range c.total.GPUs {
			if g.UUID == u {
				out = append(out, g)
			}
		}
	}
	return out
}

// Snapshot lists the reservations by key, sorted.
func (c *Capacity) Snapshot() map[string]Reservation {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Reservation, len(c.held))
	for k, v := range c.held {
		out[k] = v
	}
	return out
}
