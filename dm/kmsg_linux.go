package dm

import (
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// kmsgTail reads kernel log records written after it was opened. A nil
// *kmsgTail (no /dev/kmsg, or not permitted) reads nothing.
//
// It uses the raw descriptor: an *os.File would park a non-blocking read
// in the poller until a new record arrives instead of returning EAGAIN.
type kmsgTail struct {
	fd int
}

// kmsgRecordMax bounds one /dev/kmsg record (the kernel's own limit is
// under 8 KiB, and a read with a smaller buffer fails with EINVAL).
const kmsgRecordMax = 16 << 10

func openKmsgTail() *kmsgTail {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	// SEEK_END on /dev/kmsg positions after the newest record.
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil
	}
	return &kmsgTail{fd: fd}
}

// Lines returns the warnings and errors logged since open that contain
// substr.
func (k *kmsgTail) Lines(substr string) []string {
	if k == nil {
		return nil
	}
	var lines []string
	buf := make([]byte, kmsgRecordMax)
	for range 1000 {
		n, err := unix.Read(k.fd, buf)
		if errors.Is(err, unix.EPIPE) {
			continue // records overwritten under us: the read moved on
		}
		if err != nil || n <= 0 {
			break // EAGAIN: no more records
		}
		level, msg, ok := kmsgMessage(string(buf[:n]))
		if ok && level <= kmsgWarning && strings.Contains(msg, substr) {
			lines = append(lines, msg)
		}
	}
	return lines
}

// Close closes the log.
func (k *kmsgTail) Close() {
	if k != nil {
		unix.Close(k.fd)
	}
}
