package boot

import (
	"time"

	"golang.org/x/sys/unix"
)

// sinceBoot returns CLOCK_BOOTTIME: the time since the kernel started, the
// clock of the kernel log's timestamps (up to suspend time, which an
// initrd never sees).
func sinceBoot() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
