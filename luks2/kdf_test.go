package luks2

import (
	"runtime/debug"
	"syscall"
	"testing"
)

// minorFaults returns the process's minor page faults so far.
func minorFaults() int64 {
	var r syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return r.Minflt
}

// BenchmarkArgon2Prefault derives an argon2id key (256 MiB, t=4, p=2) with
// and without prefaultArgon2 and reports page faults per derivation (the
// load-independent measure of the x/crypto/argon2 fresh-memory trap; wall
// time under a shared CPU is noisy). Memory is returned to the OS between
// runs, as an initrd's unlock starts on fresh memory.
func BenchmarkArgon2Prefault(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "plain"
		if on {
			name = "prefault"
		}
		b.Run(name, func(b *testing.B) {
			prefaultEnabled = on
			defer func() { prefaultEnabled = true }()
			k := KDF{Type: "argon2id", Time: 4, Memory: 256 << 10, CPUs: 2, Salt: make([]byte, 32)}
			var faults int64
			for b.Loop() {
				f0 := minorFaults()
				s, err := derive(&k, []byte("pass"), 64)
				if err != nil {
					b.Fatal(err)
				}
				faults += minorFaults() - f0
				s.Destroy()
				b.StopTimer()
				debug.FreeOSMemory()
				b.StartTimer()
			}
			b.ReportMetric(float64(faults)/float64(b.N), "faults/op")
		})
	}
}
