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
