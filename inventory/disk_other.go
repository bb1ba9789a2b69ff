//go:build !(linux || darwin || freebsd)

package inventory

import (
	"errors"
	"fmt"
)

// diskSpace is not implemented on this system.
func diskSpace(dir string) (totalMiB, freeMiB uint64, err error) {
	return 0, 0, fmt.Errorf("disk: %s: %w", dir, errors.ErrUnsupported)
}

// DiskSpace is the size of the file system holding dir and what an unprivileged process may still use of it,
// in MiB.
func DiskSpace(dir string) (totalMiB, freeMiB uint64, err error) { return diskSpace(dir) }
