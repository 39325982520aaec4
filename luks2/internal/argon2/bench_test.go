package argon2

import (
	"context"
	"syscall"
	"testing"
	"time"

	xargon2 "golang.org/x/crypto/argon2"
)

// cpuTime returns the process's user + system CPU time.
func cpuTime() time.Duration {
	var r syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// BenchmarkKey derives an Argon2id key (256 MiB, t=4, p=2, LUKS2's lane
// count on 2 CPUs) with this package and with x/crypto/argon2 in the same
// run, and reports each one's process CPU time per derivation.
func BenchmarkKey(b *testing.B) {
	const mem, passes, lanes = 256 << 10, 4, 2
	salt := make([]byte, 32)
	b.Run("initos", func(b *testing.B) {
		p := Params{Mode: Argon2id, Time: passes, Memory: mem, Lanes: lanes}
		out := make([]byte, 64)
		c0 := cpuTime()
		var locked bool
		for b.Loop() {
			st, err := Key(context.Background(), []byte("pass"), salt, p, out, nil)
			if err != nil {
				b.Fatal(err)
			}
			locked = st.Locked
		}
		b.ReportMetric((cpuTime()-c0).Seconds()/float64(b.N), "cpu-s/op")
		if locked {
			b.ReportMetric(1, "mlocked")
		}
	})
	b.Run("x-crypto", func(b *testing.B) {
		c0 := cpuTime()
		for b.Loop() {
			xargon2.IDKey([]byte("pass"), salt, passes, mem, lanes, 64)
		}
		b.ReportMetric((cpuTime()-c0).Seconds()/float64(b.N), "cpu-s/op")
	})
}
