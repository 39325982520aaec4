package boot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// handover is the "handover" step: bind the verified modules and firmware
// into the root (the kernel and its modules are external to the root, like
// a container's), move /dev, /proc, /sys and /run into it, measure
// "leave-initrd" into PCR 11 (no signed policy of this UKI holds from
// here on), wipe the keys, and switch_root into the root's init. It does
// not return when it succeeds.
func (b *Boot) handover(ctx context.Context) error {
	root := b.paths.Sysroot
	if err := b.waitColdplug(); err != nil {
		return err
	}
	if err := b.bindImage(root); err != nil {
		return err
	}
	// /proc last: the moves name their targets through /proc/self/fd.
	for _, dir := range []string{b.paths.Dev, b.paths.Sys, b.paths.Run, b.paths.Proc} {
		if err := moveMount(dir, root, dir); err != nil {
			return err
		}
	}
	if err := b.lock(); err != nil {
		return err
	}
	b.Log.Printf("handover: switch_root into %s, exec %s", root, b.Init)
	b.finishLog()
	return switchRoot(root, b.Init, os.Args, os.Environ())
}

// bindImage binds the modules image's modules at /lib/modules/<release>
// and its firmware at /lib/firmware of the root.
func (b *Boot) bindImage(root string) error {
	if !b.Config.ModulesImage.Enabled() {
		return nil
	}
	if err := bindInto(b.ModulesDir, root, filepath.Join("/lib/modules", b.Release)); err != nil {
		return err
	}
	if b.FirmwareDir != "" {
		return bindInto(b.FirmwareDir, root, "/lib/firmware")
	}
	return nil
}

// LeaveInitrd ends the trusted phase without a switch_root: "leave-initrd"
// into PCR 11 (no signed policy of this UKI holds any more), keys wiped,
// the TPM closed. Install mode calls it before it hands a console to
// anything that is not initos' own code (a recovery shell), so that
// nothing there can unseal a disk key.
func (b *Boot) LeaveInitrd() error { return b.lock() }

// lock makes the TPM policy unsatisfiable for the rest of the boot and
// forgets the keys: "leave-initrd" into PCR 11, every volume key wiped
// (they were after opening; again here for a retried boot), TPM closed.
func (b *Boot) lock() error {
	for _, v := range b.Volumes {
		v.wipe()
	}
	if b.tpm == nil {
		return nil
	}
	if err := b.tpm.MeasurePhase(PhaseLeaveInitrd); err != nil {
		return fmt.Errorf("measure %q into PCR %d: %w", PhaseLeaveInitrd, PhasePCR, err)
	}
	b.Log.Printf("handover: %q extended into PCR %d", PhaseLeaveInitrd, PhasePCR)
	b.tpm.Close()
	b.tpm = nil
	return nil
}

// finishLog hands the kernel log and the watchdog to the root's init.
func (b *Boot) finishLog() {
	if b.Config != nil {
		// A trial hands the watchdog to the root: bless disarms it.
		closeWatchdog(b.watchdog, b.Config.Watchdog.KeepRunning || b.Trial)
	}
	proc := filepath.Join(b.paths.Sysroot, b.paths.Proc)
	_ = os.WriteFile(filepath.Join(proc, "sys/kernel/printk_devkmsg"), []byte("ratelimit\n"), 0)
	if b.kmsg != nil {
		b.Log.mu.Lock()
		b.Log.kmsg = nil
		b.Log.mu.Unlock()
		b.kmsg.Close()
	}
}

// bindInto bind-mounts src on dst inside root, creating dst (resolved in
// the root: a symlinked /lib stays inside it) when missing.
func bindInto(src, root, dst string) error {
	fd, err := openInRoot(root, dst, true)
	if err != nil {
		return fmt.Errorf("bind %s on %s in the root: %w", src, dst, err)
	}
	defer unix.Close(fd)
	target := fmt.Sprintf("/proc/self/fd/%d", fd)
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s in the root: %w", src, dst, err)
	}
	return nil
}

// moveMount moves the mount at src onto dst inside root (MS_MOVE).
func moveMount(src, root, dst string) error {
	fd, err := openInRoot(root, dst, true)
	if err != nil {
		return fmt.Errorf("move %s into the root: %w", src, err)
	}
	defer unix.Close(fd)
	if err := unix.Mount(src, fmt.Sprintf("/proc/self/fd/%d", fd), "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s into the root: %w", src, err)
	}
	return nil
}

// openInRoot opens the directory dir inside root as an O_PATH descriptor,
// resolving every component inside root; with create, missing components
// are made (0755).
func openInRoot(root, dir string, create bool) (int, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(rfd)
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	rel := strings.Trim(filepath.Clean(dir), "/")
	fd, err := unix.Openat2(rfd, rel, how)
	if err == nil || !create || err != unix.ENOENT {
		return fd, err
	}
	cur := ""
	for _, c := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, c)
		pfd, err := unix.Openat2(rfd, filepath.Dir(cur), how)
		if err != nil {
			return -1, err
		}
		err = unix.Mkdirat(pfd, c, 0o755)
		unix.Close(pfd)
		if err != nil && err != unix.EEXIST {
			return -1, fmt.Errorf("mkdir %s: %w", cur, err)
		}
	}
	return unix.Openat2(rfd, rel, how)
}
