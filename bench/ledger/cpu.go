package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSample is this process's CPU time and the machine's busy/total jiffies at one instant, so a report can
// say how much CPU the benchmark got and how much went to other processes on the machine.
type cpuSample struct {
	at          time.Time
	self        time.Duration
	busy, total uint64 // /proc/stat jiffies, all CPUs
	ok          bool
}

func sampleCPU() cpuSample {
	s := cpuSample{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return s
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return s
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	s.ok = true
	return s
}

// cpuCores returns the cores this process used between a and b, and the cores other processes used (-1 when
// /proc/stat is not readable).
func cpuCores(a, b cpuSample) (self, others float64) {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return 0, -1
	}
	self = (b.self - a.self).Seconds() / wall
	if !a.ok || !b.ok || b.total <= a.total {
		return self, -1
	}
	machine := float64(b.busy-a.busy) / float64(b.total-a.total) * float64(runtime.NumCPU())
	return self, max(0, machine-self)
}
