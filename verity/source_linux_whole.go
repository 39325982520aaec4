package verity

import (
	"os"

	"golang.org/x/sys/unix"
)

// wholeSource maps the whole data region once; pages fault in as the
// workers touch them, and each released window is dropped from the page
// table (MADV_DONTNEED) so the mapping's footprint stays flat.
type wholeSource struct {
	m []byte
}

func wholeSourceFor(f *os.File, size int64) *wholeSource {
	if size <= 0 || int64(int(size)) != size {
		return nil
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return &wholeSource{m: m}
}

func (s *wholeSource) view(buf []byte, off int64) ([]byte, func(), error) {
	v := s.m[off : off+int64(len(buf))]
	if os.Getenv("VERITY_POP") == "1" {
		page := int64(unix.Getpagesize())
		start := off &^ (page - 1)
		unix.Madvise(s.m[start:off+int64(len(buf))], unix.MADV_POPULATE_READ)
	}
	if os.Getenv("VERITY_DONTNEED") != "1" {
		return v, func() {}, nil
	}
	return v, func() {
		page := int64(unix.Getpagesize())
		start, end := off&^(page-1), (off+int64(len(buf)))&^(page-1)
		if end > start {
			unix.Madvise(s.m[start:end], unix.MADV_DONTNEED)
		}
	}, nil
}

func (s *wholeSource) close() { unix.Munmap(s.m) }
