package boot

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// kernelMessages returns the kernel's warnings and errors (the last few)
// that contain substr (not the boot log's own lines), read from /dev/kmsg
// without blocking. It explains errors whose reason only the kernel logs
// (a dm-verity corruption, a btrfs device missing).
func kernelMessages(substr string) []string {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var out []string
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EPIPE {
			continue // records overwritten while we read
		}
		if err != nil || n <= 0 {
			break
		}
		prefix, msg, ok := strings.Cut(string(buf[:n]), ";")
		msg, _, _ = strings.Cut(msg, "\n")
		prio, _, _ := strings.Cut(prefix, ",")
		level, err := strconv.Atoi(prio)
		if ok && err == nil && level&7 <= 4 && strings.Contains(msg, substr) && !strings.HasPrefix(msg, "initos: ") {
			out = append(out, msg)
		}
	}
	if len(out) > 4 {
		out = out[len(out)-4:]
	}
	return out
}
