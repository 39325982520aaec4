package luks2

import "golang.org/x/sys/unix"

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
