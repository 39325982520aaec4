package boot

import (
	"strings"

	"golang.org/x/sys/unix"
)

// kernelMessages returns the kernel log messages (the last few) that
// contain substr (not the boot log's own), read from /dev/kmsg without blocking. It explains
// errors whose reason only the kernel logs (a dm-verity corruption).
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
		_, msg, ok := strings.Cut(string(buf[:n]), ";")
		msg, _, _ = strings.Cut(msg, "\n")
		if ok && strings.Contains(msg, substr) && !strings.HasPrefix(msg, "initos: ") {
			out = append(out, msg)
		}
	}
	if len(out) > 4 {
		out = out[len(out)-4:]
	}
	return out
}
