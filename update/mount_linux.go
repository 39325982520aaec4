package update

import (
	"bufio"
	"errors"
	"fmt"
	"initos/internal/mountinfo"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelMounter mounts ESPs with the kernel's vfat under Dir, or reuses a
// mount of the partition that is already there (the initrd leaves the
// booted ESP mounted read-only under /run/initos/esp).
type KernelMounter struct {
	Dir string // default /run/initos/update
}

// Mount implements Mounter.
func (m *KernelMounter) Mount(esp ESP, writable bool) (string, func() error, error) {
	if dir, rw, ok := mountedAt(esp.Device); ok && (rw || !writable) {
		return dir, func() error { return nil }, nil
	} else if ok && writable {
		return "", nil, fmt.Errorf("%s is mounted read-only on %s: refusing to write it (is it the booted slot's ESP?)", esp.Device, dir)
	}
	base := m.Dir
	if base == "" {
		base = "/run/initos/update"
	}
	dir := filepath.Join(base, "esp-"+esp.Slot+"-"+strings.SplitN(esp.PartUUID, "-", 2)[0])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if !writable {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(esp.Device, dir, "vfat", flags, "umask=0077,shortname=mixed"); err != nil {
		os.Remove(dir)
		if errors.Is(err, unix.ENODEV) {
			return "", nil, fmt.Errorf("mount %s (vfat) on %s: %w: load the vfat module", esp.Device, dir, err)
		}
		return "", nil, fmt.Errorf("mount %s (vfat) on %s: %w", esp.Device, dir, err)
	}
	return dir, func() error { return unmount(dir) }, nil
}

// unmount syncs the filesystem, unmounts it and removes the directory.
func unmount(dir string) error {
	if fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		unix.Syncfs(fd)
		unix.Close(fd)
	}
	if err := unix.Unmount(dir, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return os.Remove(dir)
}

// mountedAt finds a mount of device (by its device number) in
// /proc/self/mountinfo: its mount point and whether it is writable.
func mountedAt(device string) (dir string, rw, ok bool) {
	var st unix.Stat_t
	if err := unix.Stat(device, &st); err != nil {
		return "", false, false
	}
	want := fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[2] != want || fields[3] != "/" {
			continue
		}
		opts := "," + fields[5] + ","
		return mountinfo.Unescape(fields[4]), strings.Contains(opts, ",rw,"), true
	}
	return "", false, false
}
