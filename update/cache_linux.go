package update

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCache asks the kernel to drop the file's cached pages, so that the
// next read comes from the disk (the pages are clean after the fsync).
func dropCache(p string) {
	f, err := os.Open(p)
	if err != nil {
		return
	}
	defer f.Close()
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
