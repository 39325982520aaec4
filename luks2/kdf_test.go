package luks2

import (
	"runtime/debug"
	"testing"
)

// BenchmarkArgon2Prefault derives an argon2id key (256 MiB, t=4, p=2) with
// and without prefaultArgon2, to measure the page-fault trap of fresh
// x/crypto/argon2 memory. Memory is returned to the OS between runs.
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
			for b.Loop() {
				s, err := derive(&k, []byte("pass"), 64)
				if err != nil {
					b.Fatal(err)
				}
				s.Destroy()
				b.StopTimer()
				debug.FreeOSMemory() // each unlock starts on fresh memory, like the initrd's
				b.StartTimer()
			}
		})
	}
}
