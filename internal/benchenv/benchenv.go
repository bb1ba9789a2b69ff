// Package benchenv describes the machine a benchmark program runs on: its CPU model and core count, and how
// much CPU the program and every other process used while it measured (figures taken while other work shared
// the machine are not comparable, and the reports say so).
package benchenv

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine is e.g. "linux/amd64, 2 CPUs (GOMAXPROCS 2), Intel(R) Xeon(R) Processor @ 2.80GHz".
func Machine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	s := fmt.Sprintf("%s/%s, %d CPUs (GOMAXPROCS %d)", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if cpu != "" {
		s += ", " + cpu
	}
	return s
}

// CPUSample is this process's CPU time and the machine's busy and total jiffies at one instant.
type CPUSample struct {
	at          time.Time
	self        time.Duration
	busy, total uint64 // /proc/stat jiffies, all CPUs
	ok          bool
}

// SampleCPU takes a sample now.
func SampleCPU() CPUSample {
	s := CPUSample{at: time.Now()}
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
	for i, v := range f[1:min(len(f), 9)] { // user … steal; guest time is counted in user already
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return s
		}
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	s.ok = true
	return s
}

// Cores returns the cores this process used between a and b, and the cores other processes used (-1 when
// /proc/stat is not readable).
func Cores(a, b CPUSample) (self, others float64) {
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
