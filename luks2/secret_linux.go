package luks2

import (
	"runtime"

	"golang.org/x/sys/unix"
)

func (s *Secret) alloc(n int) {
	if n == 0 {
		s.b = []byte{}
		return
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		s.b = make([]byte, n)
		return
	}
	s.b, s.mapped = b, true
	s.locked = unix.Mlock(b) == nil
	_ = unix.Madvise(b, unix.MADV_DONTDUMP)
}

func (s *Secret) release() {
	if !s.mapped {
		return
	}
	if s.locked {
		_ = unix.Munlock(s.b)
	}
	_ = unix.Munmap(s.b)
}

// totalRAM returns the machine's RAM in bytes, 0 if unknown.
func totalRAM() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// prefaultArgon2 prepares the Go heap for an argon2 run over n bytes.
// x/crypto/argon2 allocates its work memory fresh with make; first touches
// of fresh 4 KiB pages cost as much wall time as the hashing itself here
// (and twice the faults of libargon2's malloc). So we allocate a region of
// the same size, ask for transparent huge pages on it (MADV_HUGEPAGE, which
// THP's default "madvise" mode honours), fault it in, and free it: the
// following allocation of the same size reuses that address range, already
// resident in 2 MiB pages, and the runtime only clears it. Measured in
// bench/luks_test.go (BenchmarkLuksUnlock) and BenchmarkArgon2Prefault.
func prefaultArgon2(n int) {
	if n < prefaultMin || !prefaultEnabled {
		return
	}
	b := make([]byte, n)
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	b = nil
	runtime.GC()
}
