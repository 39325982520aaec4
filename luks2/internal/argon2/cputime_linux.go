package argon2

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// StartThreadCPU locks the calling goroutine to its OS thread and returns
// a function that unlocks it and returns the thread's CPU time (user +
// system, CLOCK_THREAD_CPUTIME_ID: nanosecond resolution, where
// getrusage counts whole scheduler ticks) since the call. Package luks2 uses it to time
// PBKDF2 the same way.
func StartThreadCPU() func() time.Duration {
	runtime.LockOSThread()
	start := threadCPU()
	return func() time.Duration {
		d := threadCPU() - start
		runtime.UnlockOSThread()
		return d
	}
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
