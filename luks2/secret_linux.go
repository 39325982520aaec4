package luks2

import (
	"runtime"
	"sync"

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
// x/crypto/argon2 allocates its work memory fresh with make, and the runtime
// then takes twice as many page faults as libargon2's malloc'ed memory (about
// 525k instead of 262k for 1 GiB, measured with getrusage). So we allocate
// a region of the same size, fault it in with one goroutine per CPU
// (touching each 4 KiB page), and free it: argon2's allocation reuses that
// resident address range and the runtime only clears it (the range is a bit
// larger than n, because new spans for small objects allocated in between
// are placed at its start: without slack the reuse failed 1 run in 3). MADV_HUGEPAGE was
// tried too: it cuts user time (fewer TLB misses) but THP's synchronous
// compaction costs more system time than it saves. Measured in
// BenchmarkArgon2Prefault and bench/luks_test.go (BenchmarkLuksUnlock).
func prefaultArgon2(n int) {
	if n < prefaultMin || !prefaultEnabled {
		return
	}
	// The extra slack keeps room for n contiguous bytes when small-object
	// spans allocated in between take the first pages of the freed range.
	n += prefaultSlack
	b := make([]byte, n)
	workers := runtime.GOMAXPROCS(0)
	chunk := (n/workers + 4095) &^ 4095
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		part := b[lo:min(lo+chunk, n)]
		wg.Go(func() {
			for i := 0; i < len(part); i += 4096 {
				part[i] = 1
			}
		})
	}
	wg.Wait()
	runtime.KeepAlive(b)
	b = nil
	runtime.GC()
}
