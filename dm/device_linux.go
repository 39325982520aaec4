package dm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// udev cookie bits, from libdevmapper's documented protocol (the kernel
// passes a non-zero event_nr of DM_DEV_SUSPEND/DM_DEV_REMOVE to udev as
// the DM_COOKIE uevent variable; the rules read flags from its upper 16
// bits). A cookie whose lower 16 bits are zero carries flags only and
// asks for no completion notification: nobody waits on a semaphore.
const (
	udevFlagsShift        = 16
	udevPrimarySourceFlag = 0x0040 // DM_UDEV_PRIMARY_SOURCE_FLAG: a real change made by a dm tool
)

// udevControl exists while systemd-udevd runs.
var udevControl = "/run/udev/control"

// udevRunning reports whether udev is active on this system.
func udevRunning() bool {
	_, err := os.Stat(udevControl)
	return err == nil
}

// udevCookie is the event_nr for resume and remove: with udev, a
// flags-only cookie marking the event as a primary one so the dm rules run
// normally; without udev, 0 (the kernel then adds no DM_COOKIE).
func udevCookie() uint32 {
	if udevRunning() {
		return udevPrimarySourceFlag << udevFlagsShift
	}
	return 0
}

// CreateDevice creates, loads and resumes the mapped device name and
// makes its node /dev/mapper/NAME; it returns the node's path. The table is
// rendered and checked before the kernel is touched. When the kernel
// refuses a step, the half-created device is removed and the error carries
// the ioctl errno plus the kernel's device-mapper log lines for the call
// (from /dev/kmsg, when readable).
func CreateDevice(name, uuid string, readOnly bool, targets ...Target) (string, error) {
	if err := CheckName(name); err != nil {
		return "", fmt.Errorf("create device: %w", err)
	}
	if _, _, err := marshalTable(targets); err != nil {
		return "", fmt.Errorf("create device %s: %w", name, err)
	}
	c, err := Open()
	if err != nil {
		return "", err
	}
	defer c.Close()
	log := openKmsgTail()
	defer log.Close()
	if _, err := c.Create(name, uuid); err != nil {
		return "", withKernelLog(err, log)
	}
	info, err := c.activate(name, readOnly, targets)
	if err == nil {
		err = makeNode(name, info.Major, info.Minor)
	}
	if err != nil {
		err = withKernelLog(err, log)
		if rmErr := c.Remove(name); rmErr != nil {
			return "", fmt.Errorf("%w (and removing the half-created device: %w)", err, rmErr)
		}
		return "", err
	}
	return NodePath(name), nil
}

func (c *Control) activate(name string, readOnly bool, targets []Target) (Info, error) {
	if err := c.Load(name, readOnly, targets...); err != nil {
		return Info{}, err
	}
	return c.Resume(name)
}

// RemoveDevice removes the mapped device name (retrying while it is busy,
// see Control.Remove) and its /dev/mapper node.
func RemoveDevice(name string) error {
	if err := CheckName(name); err != nil {
		return fmt.Errorf("remove device: %w", err)
	}
	c, err := Open()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Remove(name); err != nil {
		return err
	}
	if err := os.Remove(NodePath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove device %s: %w", name, err)
	}
	return nil
}

// withKernelLog appends the kernel's device-mapper messages to err.
func withKernelLog(err error, log *kmsgTail) error {
	lines := log.Lines("device-mapper")
	if len(lines) == 0 {
		return err
	}
	return fmt.Errorf("%w (kernel: %s)", err, strings.Join(lines, "; "))
}

// makeNode makes /dev/mapper/NAME for the device MAJOR:MINOR. With udev
// running and devtmpfs providing /dev/dm-N, it is the same relative
// symlink udev's dm rules create (so both agree whoever is first);
// otherwise a block device node made with mknod. Either is made under a
// temporary name and renamed into place, replacing a stale node.
func makeNode(name string, major, minor uint32) error {
	if err := os.MkdirAll(mapperDir, 0o755); err != nil {
		return fmt.Errorf("make node for %s: %w", name, err)
	}
	path := NodePath(name)
	if udevRunning() {
		kname := "dm-" + strconv.FormatUint(uint64(minor), 10)
		if isBlockDev(filepath.Join(filepath.Dir(mapperDir), kname), major, minor) {
			return symlinkAtomic(filepath.Join("..", kname), path)
		}
	}
	return mknodAtomic(path, unix.S_IFBLK|0o600, major, minor)
}

func isBlockDev(path string, major, minor uint32) bool {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == unix.Mkdev(major, minor)
}

func tempName(path string) string {
	return filepath.Join(filepath.Dir(path), ".tmp-"+strconv.Itoa(os.Getpid())+"-"+filepath.Base(path))
}

func mknodAtomic(path string, mode, major, minor uint32) error {
	tmp := tempName(path)
	_ = os.Remove(tmp)
	if err := unix.Mknod(tmp, mode, int(unix.Mkdev(major, minor))); err != nil {
		return &os.PathError{Op: "mknod", Path: tmp, Err: err}
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func symlinkAtomic(target, path string) error {
	tmp := tempName(path)
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
