package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// KmsgPath is the kernel log device ReadKmsg reads.
var KmsgPath = "/dev/kmsg"

// ReadKmsg writes the kernel log ring to w, one record a line formatted
// like dmesg, and with follow keeps writing new records until ctx ends.
// Backends implement Logs with it.
func ReadKmsg(ctx context.Context, w io.Writer, follow bool) error {
	// O_NONBLOCK: the runtime poller waits for new records (follow), and
	// ctx ends the wait through a read deadline.
	f, err := os.OpenFile(KmsgPath, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("read kernel log: %w", err)
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 8192) // one record per read (CONSOLE_EXT_LOG_MAX)
	for {
		n, err := readRecord(f, buf, follow)
		switch {
		case err == nil:
			if rec, perr := ParseKmsg(buf[:n]); perr == nil {
				if _, err := fmt.Fprintln(w, rec); err != nil {
					return err
				}
			}
		case errors.Is(err, syscall.EPIPE):
			continue // records were overwritten while we read: go on
		case errors.Is(err, syscall.EAGAIN):
			return nil // not following, and the ring is drained
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return fmt.Errorf("read kernel log: %w", err)
		}
	}
}

// readRecord reads one record. Following, it waits in the poller; else a
// drained ring answers EAGAIN at once.
func readRecord(f *os.File, buf []byte, follow bool) (int, error) {
	if follow {
		return f.Read(buf)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), buf)
		return true // never wait
	})
	if err != nil {
		return 0, err
	}
	if n < 0 {
		n = 0
	}
	return n, rerr
}
