package install

import (
	"fmt"
	"io"
	"sync"
)

// memDevice is an in-memory device that grows on write: the staging area
// of a LUKS2 header region (written to the disk in one ordered pass) and
// the scratch output of a verity tree computation. It accepts concurrent
// writes on disjoint ranges.
type memDevice struct {
	mu  sync.Mutex
	buf []byte
	max int64 // size limit, 0: 1 GiB
}

func (m *memDevice) limit() int64 {
	if m.max == 0 {
		return 1 << 30
	}
	return m.max
}

// WriteAt implements io.WriterAt.
func (m *memDevice) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > m.limit() {
		return 0, fmt.Errorf("memory device: write of %d bytes at %d beyond its %d bytes", len(p), off, m.limit())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(m.buf)) {
		if end > int64(cap(m.buf)) {
			nb := make([]byte, end, max(end, 2*int64(cap(m.buf))))
			copy(nb, m.buf)
			m.buf = nb
		}
		m.buf = m.buf[:end]
	}
	return copy(m.buf[off:], p), nil
}

// ReadAt implements io.ReaderAt; bytes never written read as zeros up to
// the limit.
func (m *memDevice) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= m.limit() {
		return 0, io.EOF
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	if off < int64(len(m.buf)) {
		n = copy(p, m.buf[off:])
	}
	avail := int(min(int64(len(p)), m.limit()-off))
	clear(p[n:avail])
	if avail < len(p) {
		return avail, io.EOF
	}
	return len(p), nil
}

// Bytes returns the written bytes.
func (m *memDevice) Bytes() []byte { return m.buf }
