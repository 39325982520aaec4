package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// mountSpec is one mount of the early setup.
type mountSpec struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// earlyMounts are the kernel filesystems of the initrd, in order.
func earlyMounts(p Paths) []mountSpec {
	const nodev = unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV
	return []mountSpec{
		{"proc", p.Proc, "proc", nodev, ""},
		{"sysfs", p.Sys, "sysfs", nodev, ""},
		{"devtmpfs", p.Dev, "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"tmpfs", p.Run, "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	}
}

// mountEarly is the "mount" step: /proc, /sys, /dev (devtmpfs) and /run,
// then the kernel log for the boot log.
func (b *Boot) mountEarly(ctx context.Context) error {
	for _, m := range earlyMounts(b.paths) {
		if err := mountOnce(m); err != nil {
			return err
		}
	}
	b.openKmsg()
	// securityfs holds the firmware's TPM event log (the control plane's
	// pcrs verb); a kernel without it only loses that.
	sec := filepath.Join(b.paths.Sys, "kernel/security")
	if err := mountOnce(mountSpec{"securityfs", sec, "securityfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""}); err != nil {
		b.Log.Printf("mount: %v", err)
	}
	return nil
}

// mountOnce mounts m unless something is mounted there already (a test
// harness or a restarted init).
func mountOnce(m mountSpec) error {
	if err := os.MkdirAll(m.target, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", m.target, err)
	}
	if mounted, _ := isMountPoint(m.target); mounted {
		return nil
	}
	flags, data := splitOptions(m.flags, m.data)
	if err := unix.Mount(m.source, m.target, m.fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
	}
	return nil
}

// isMountPoint reports whether dir is the root of a mount (its device
// differs from its parent's, or it is the root of the mount namespace).
func isMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false, err
	}
	if err := unix.Stat(filepath.Join(dir, ".."), &parent); err != nil {
		return false, err
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino, nil
}

// openKmsg starts copying the boot log to the kernel log; user space
// writes are rate-limited by default (printk_devkmsg=ratelimit), which
// would drop lines: the initrd lifts the limit and handover restores it.
func (b *Boot) openKmsg() {
	f, err := os.OpenFile(filepath.Join(b.paths.Dev, "kmsg"), os.O_WRONLY, 0)
	if err != nil {
		b.Log.Printf("mount: no kernel log: %v", err)
		return
	}
	b.kmsg = f
	b.Log.mu.Lock()
	b.Log.kmsg, b.Log.echo = f, consoleLogLevel(b.paths.Proc)
	b.Log.mu.Unlock()
	_ = os.WriteFile(filepath.Join(b.paths.Proc, "sys/kernel/printk_devkmsg"), []byte("on\n"), 0)
}

// efivarsDir is where efivarfs is mounted, under Sys.
const efivarsDir = "firmware/efi/efivars"

// mountEFIVars is the "efivars" step: mount efivarfs (its module came with
// the early modules). A machine booted without UEFI has no
// /sys/firmware/efi: the step then logs that and succeeds, and the ESP is
// found by its GPT type.
func (b *Boot) mountEFIVars(ctx context.Context) error {
	dir := filepath.Join(b.paths.Sys, efivarsDir)
	if _, err := os.Stat(filepath.Dir(dir)); errors.Is(err, os.ErrNotExist) {
		b.Log.Printf("efivars: not booted through UEFI (no %s)", filepath.Dir(dir))
		return nil
	}
	return mountOnce(mountSpec{"efivarfs", dir, "efivarfs", unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV, ""})
}

// consoleLogLevel reads the kernel's console log level (the first field of
// /proc/sys/kernel/printk): records of a lower level go to the console.
func consoleLogLevel(proc string) int {
	b, err := os.ReadFile(filepath.Join(proc, "sys/kernel/printk"))
	if err != nil {
		return 0
	}
	var level int
	if _, err := fmt.Sscan(string(b), &level); err != nil {
		return 0
	}
	return level
}
