package faults

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// wire stands in for a veth pair where the kernel has no sch_netem: two TAP devices, one a validator's eth0, the
// other its port on the hub's bridge, and the test process carrying the frames between them. When impaired, it
// does what netem would on the bridge's end: it delays every frame on its way to the validator by 100ms±30ms
// (in order: a frame never overtakes the one before it) and drops 5% of them.
type wire struct {
	node, hub *os.File
	impaired  atomic.Bool
	dropped   atomic.Int64
	done      sync.WaitGroup
}

const (
	wireDelay  = 100 * time.Millisecond
	wireJitter = 30 * time.Millisecond
	wireLoss   = 5 // percent
)

// openTap creates TAP device name in the calling process's network namespace; it lasts while the file is open.
func openTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil // non-blocking: reads wait in the runtime's poller, Close ends them
}

// newWire opens the wire's two TAP devices, named node and hub in the root namespace (the caller moves them).
func newWire(node, hub string) (*wire, error) {
	n, err := openTap(node)
	if err != nil {
		return nil, err
	}
	h, err := openTap(hub)
	if err != nil {
		n.Close()
		return nil, err
	}
	w := &wire{node: n, hub: h}
	type frame struct {
		at time.Time
		b  []byte
	}
	q := make(chan frame, 4096)
	w.done.Go(func() { // hub -> validator, impaired when asked
		defer close(q)
		buf := make([]byte, 1<<16)
		var last time.Time
		for {
			k, err := w.hub.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond) // the link is being set up
				continue
			}
			at := time.Now()
			if w.impaired.Load() {
				if rand.IntN(100) < wireLoss {
					w.dropped.Add(1)
					continue
				}
				at = at.Add(wireDelay - wireJitter + rand.N(2*wireJitter+1))
			}
			at = later(at, last)
			last = at
			select {
			case q <- frame{at, bytes.Clone(buf[:k])}:
			default: // a full queue drops, as a qdisc would
				w.dropped.Add(1)
			}
		}
	})
	w.done.Go(func() {
		for f := range q {
			time.Sleep(time.Until(f.at))
			_, _ = w.node.Write(f.b) // a frame the validator's link is not up for is lost, as on a cable
		}
	})
	w.done.Go(func() { // validator -> hub, as is
		buf := make([]byte, 1<<16)
		for {
			k, err := w.node.Read(buf)
			if err != nil {
				if errors.Is(err, os.ErrClosed) {
					return
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			_, _ = w.hub.Write(buf[:k])
		}
	})
	return w, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// close removes both TAP devices and ends the wire's goroutines.
func (w *wire) close() {
	w.node.Close()
	w.hub.Close()
	w.done.Wait()
}
