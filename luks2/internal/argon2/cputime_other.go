//go:build !linux

package argon2

import "time"

// StartThreadCPU measures wall time where thread CPU time is not available.
func StartThreadCPU() func() time.Duration {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}
