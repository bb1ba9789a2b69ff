//go:build linux || darwin || freebsd

package inventory

import (
	"fmt"
	"syscall"
)

// diskSpace is the size of the filesystem holding dir and the space an unprivileged process may still use on
// it (the blocks reserved for root do not count), in MiB.
func diskSpace(dir string) (totalMiB, freeMiB uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("disk: statfs %s: %w", dir, err)
	}
	bsize := uint64(st.Bsize)
	return uint64(st.Blocks) * bsize >> 20, uint64(st.Bavail) * bsize >> 20, nil
}

// DiskSpace is the size of the file system holding dir and what an unprivileged process may still use of it,
// in MiB.
func DiskSpace(dir string) (totalMiB, freeMiB uint64, err error) { return diskSpace(dir) }
