package image

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resolveFlags confine every lookup to the image root: symbolic links
// (absolute or with "..") resolve as if the root were "/", magic links are
// refused and no mount point is crossed (openat2(2)).
const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openInRoot opens the clean relative path p ("" = the root) under rootfd
// with openat2 and RESOLVE_IN_ROOT.
func openInRoot(rootfd int, p string, flags int) (int, error) {
	if p == "" {
		p = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveFlags}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(rootfd, p, &how)
		if err == unix.EAGAIN && i < 16 {
			continue
		}
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// removeAt removes name in dirfd, recursively for a directory.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	if err := removeChildren(dirfd, name, nil); err != nil {
		return err
	}
	err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if err == unix.ENOENT {
		return nil
	}
	return err
}

// removeChildren removes every entry of the directory name in dirfd for
// which keep (if not nil) returns false.
func removeChildren(dirfd int, name string, keep func(child string) bool) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			if keep != nil && keep(n) {
				continue
			}
			if err := removeAt(fd, n); err != nil {
				return err
			}
		}
		if err != nil || len(names) == 0 {
			return nil
		}
	}
}

// chmodNoFollow sets the mode of name in dirfd, never following a symbolic
// link: fchmodat2(AT_SYMLINK_NOFOLLOW) (Linux 6.6), or, where that is
// missing, chmod through an O_PATH|O_NOFOLLOW descriptor after checking it
// is no symlink (what glibc's fchmodat does).
func chmodNoFollow(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		// No fchmodat2, or name is a symlink (which has no mode).
		return chmodByPathFD(dirfd, name, mode)
	}
	return err
}

// errSymlinkMode reports a chmod of a symbolic link.
var errSymlinkMode = fmt.Errorf("%w: symbolic links have no mode", unix.ELOOP)

// chmodByPathFD is chmodNoFollow without fchmodat2.
func chmodByPathFD(dirfd int, name string, mode uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return errSymlinkMode
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

// timespecs returns the atime/mtime pair for t (atime = mtime, so results
// do not depend on the time of the install).
func timespecs(t time.Time) [2]unix.Timespec {
	ts := unix.NsecToTimespec(t.UnixNano())
	if t.IsZero() {
		ts = unix.Timespec{}
	}
	return [2]unix.Timespec{ts, ts}
}

// futimens sets the times of an open file (utimensat with a NULL path).
func futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// procPath names name in the directory dirfd through /proc/self/fd, for
// the calls that have no *at form (lsetxattr). The final component is
// never followed by the l* calls.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

// isExist reports EEXIST.
func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }

var (
	euid = os.Geteuid()
	egid = os.Getegid()

	umaskOnce sync.Once
	umaskVal  uint32 = 0o777 // unknown: never skip chmod
)

// umask returns the process umask from /proc/self/status (Linux 4.7+)
// without changing it.
func umask() uint32 {
	umaskOnce.Do(func() {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					umaskVal = uint32(m)
				}
			}
		}
	})
	return umaskVal
}
