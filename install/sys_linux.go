package install

import (
	"os"

	"golang.org/x/sys/unix"
)

// sectorSize returns a block device's logical sector size (BLKSSZGET), or
// 0 for a regular file.
func sectorSize(f *os.File) int {
	n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil {
		return 0
	}
	return n
}
