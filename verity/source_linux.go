package verity

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// mapSource maps the data region of a file or block device once, read-only;
// pages of the page cache fault in as the workers touch them, and each
// released window is dropped from the page table again (MADV_DONTNEED) so
// the mapping's footprint stays flat. Against ReadAt this saves the copy
// (about a fifth of the hashing time); against mapping each window it saves
// the mmap/munmap calls, which serialize the workers on the address-space
// lock (measured: 92% of raw SHA-256 instead of 86% and 82%).
type mapSource struct {
	m    []byte
	page int64
}

// mapSourceFor maps data when it is a regular file or a block device; it
// returns nil when that is impossible (then ReadAt is used).
func mapSourceFor(data io.ReaderAt, size int64) blockSource {
	f, ok := data.(*os.File)
	if !ok || size <= 0 || int64(int(size)) != size {
		return nil
	}
	st, err := f.Stat()
	if err != nil || !(st.Mode().IsRegular() || st.Mode()&os.ModeDevice != 0) {
		return nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return &mapSource{m: m, page: int64(unix.Getpagesize())}
}

func (s *mapSource) view(buf []byte, off int64) ([]byte, func(), error) {
	end := off + int64(len(buf))
	if off < 0 || end > int64(len(s.m)) {
		return nil, nil, io.ErrUnexpectedEOF
	}
	return s.m[off:end:end], func() { s.drop(off, end) }, nil
}

// drop removes the whole pages of [off, end) from the page table.
func (s *mapSource) drop(off, end int64) {
	start := (off + s.page - 1) &^ (s.page - 1)
	end &^= s.page - 1
	if end > start {
		unix.Madvise(s.m[start:end], unix.MADV_DONTNEED)
	}
}

func (s *mapSource) close() { unix.Munmap(s.m) }
