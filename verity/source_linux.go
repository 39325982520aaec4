package verity

import (
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// mapSource maps the data region of a file or block device once, read-only;
// pages of the page cache fault in as the workers touch them, and released
// windows are dropped from the page table again (MADV_DONTNEED) so the
// mapping's footprint stays flat. Against ReadAt this saves the copy
// (about a fifth of the hashing time); against mapping each window it saves
// the mmap/munmap calls, which serialize the workers on the address-space
// lock (measured: 92% of raw SHA-256 instead of 86% and 82%).
//
// Windows are released out of order (the workers take units in turn), so
// the drop follows a watermark: once the windows below it are all
// released and dropBatch bytes have gathered, one madvise drops them. Each
// call costs a TLB shootdown on every CPU running the process; one per 32
// MiB instead of one per 2 MiB window saved 15-30 ms of system time per
// GiB here. A window released more than maxLag ahead of the watermark (a
// worker stalled on a unit) is dropped at once, which bounds the mapped
// footprint.
type mapSource struct {
	m    []byte
	page int64

	mu      sync.Mutex
	done    map[int64]int64 // released windows above low: start -> end
	low     int64           // every window below low is released
	dropped int64           // [0, dropped) is dropped
}

const (
	dropBatch = 32 << 20
	maxLag    = 128 << 20
)

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
	return &mapSource{m: m, page: int64(unix.Getpagesize()), done: map[int64]int64{}}
}

func (s *mapSource) view(buf []byte, off int64) ([]byte, func(), error) {
	end := off + int64(len(buf))
	if off < 0 || end > int64(len(s.m)) {
		return nil, nil, io.ErrUnexpectedEOF
	}
	return s.m[off:end:end], func() { s.release(off, end) }, nil
}

// release records a released window and drops what the watermark allows.
func (s *mapSource) release(off, end int64) {
	s.mu.Lock()
	s.done[off] = end
	for e, ok := s.done[s.low]; ok; e, ok = s.done[s.low] {
		delete(s.done, s.low)
		s.low = e
	}
	from, to := s.dropped, s.low
	if to-from >= dropBatch || to == int64(len(s.m)) {
		s.dropped = to
	} else {
		from, to = 0, 0
	}
	lagging := off-s.low > maxLag
	s.mu.Unlock()
	if to > from {
		s.drop(from, to)
	}
	if lagging {
		s.drop(off, end)
	}
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
