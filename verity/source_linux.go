package verity

import (
	"io"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// mmapSource maps each big read of a file from the page cache instead of
// copying it (MAP_POPULATE: one system call fills the page table), which
// saves a fifth of the CPU time of hashing. It falls back to ReadAt when
// mapping fails (e.g. a pipe or a special file).
type mmapSource struct {
	f        *os.File
	fallback readerSource
	broken   atomic.Bool
}

func mmapSourceFor(data io.ReaderAt) blockSource {
	f, ok := data.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || !(st.Mode().IsRegular() || st.Mode()&os.ModeDevice != 0) {
		return nil
	}
	return &mmapSource{f: f, fallback: readerSource{f}}
}

func (s *mmapSource) view(buf []byte, off int64) ([]byte, func(), error) {
	if s.broken.Load() || len(buf) == 0 {
		return s.fallback.view(buf, off)
	}
	page := int64(unix.Getpagesize())
	start := off &^ (page - 1)
	m, err := unix.Mmap(int(s.f.Fd()), start, int(off-start)+len(buf), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		s.broken.Store(true)
		return s.fallback.view(buf, off)
	}
	return m[off-start:], func() { unix.Munmap(m) }, nil
}
