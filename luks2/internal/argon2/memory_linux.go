package argon2

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// memory is the work memory: an anonymous private mapping outside the Go
// heap (the garbage collector never sees, scans or keeps it), viewed as
// blocks.
type memory struct {
	raw     []byte
	blocks  []block
	nlocked atomic.Int32 // lanes whose range is mlock'ed
	nparts  atomic.Int32 // lanes populated
}

// newMemory maps n blocks. The pages are faulted in later by populate,
// lane by lane in parallel.
func newMemory(n int) (*memory, error) {
	raw, err := unix.Mmap(-1, 0, n*BlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	// Keep the passphrase-derived state out of core dumps.
	_ = unix.Madvise(raw, unix.MADV_DONTDUMP)
	// A block is 128 uint64 with no pointers; the mapping is page aligned.
	blocks := unsafe.Slice((*block)(unsafe.Pointer(unsafe.SliceData(raw))), n)
	return &memory{raw: raw, blocks: blocks}, nil
}

// populate makes the n blocks from block off resident before use: mlock
// (never swapped out; the kernel faults the range in in one call) where
// RLIMIT_MEMLOCK or CAP_IPC_LOCK allows it, else MADV_POPULATE_WRITE
// (Linux 5.14), else nothing (page faults on first touch).
func (m *memory) populate(off, n int) {
	r := m.raw[off*BlockSize : (off+n)*BlockSize]
	m.nparts.Add(1)
	if unix.Mlock(r) == nil {
		m.nlocked.Add(1)
		return
	}
	_ = unix.Madvise(r, unix.MADV_POPULATE_WRITE)
}

// locked reports whether all of the memory was locked.
func (m *memory) locked() bool {
	return m.nparts.Load() > 0 && m.nlocked.Load() == m.nparts.Load()
}

// free unmaps the memory (munmap also drops the locks). Callers wipe it
// first.
func (m *memory) free() {
	if m.raw != nil {
		_ = unix.Munmap(m.raw)
		m.raw, m.blocks = nil, nil
	}
}
