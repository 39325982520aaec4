package boot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Filesystem magics of an initramfs root (statfs f_type).
const (
	ramfsMagic = 0x858458f6
	tmpfsMagic = 0x01021994
)

// switchRoot does what the kernel expects of an initramfs init (see
// Documentation/filesystems/ramfs-rootfs-initramfs.rst, and util-linux
// switch_root): 1. delete the initramfs contents, which the kernel cannot
// unmount, to free their memory (never crossing into another filesystem);
// 2. move the new root onto / (MS_MOVE); 3. chroot into it; 4. exec its
// init with our arguments and environment (what the kernel passed us).
func switchRoot(newRoot, init string, args, env []string) error {
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("switch_root: chdir %s: %w", newRoot, err)
	}
	if err := freeInitramfs("/", newRoot); err != nil {
		return fmt.Errorf("switch_root: %w", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("switch_root: move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("switch_root: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("switch_root: chdir /: %w", err)
	}
	argv := append([]string{init}, args[min(1, len(args)):]...)
	return fmt.Errorf("switch_root: exec %s: %w", init, unix.Exec(init, argv, env))
}

// freeInitramfs deletes everything on the filesystem of root (which must
// be the initramfs: ramfs or tmpfs) except keep, without descending into
// other filesystems.
func freeInitramfs(root, keep string) error {
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err != nil {
		return err
	}
	if err := checkInitramfs(root, int64(fs.Type)); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return err
	}
	return removeContents(root, keep, st.Dev)
}

// removeContents removes the entries of dir that live on device dev,
// recursively, skipping keep and other filesystems.
func removeContents(dir, keep string, dev uint64) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if p == keep || unix.Lstat(p, &st) != nil || st.Dev != dev {
			continue
		}
		if e.IsDir() {
			if err := removeContents(p, keep, dev); err != nil {
				errs = append(errs, err)
			}
			if err := unix.Rmdir(p); err != nil && err != unix.EBUSY && err != unix.ENOTEMPTY {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", p, err))
			}
			continue
		}
		if err := unix.Unlink(p); err != nil {
			errs = append(errs, fmt.Errorf("unlink %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// checkInitramfs refuses to treat as the initramfs a filesystem that is
// neither ramfs nor tmpfs.
func checkInitramfs(root string, fsType int64) error {
	if fsType != ramfsMagic && fsType != tmpfsMagic {
		return fmt.Errorf("%s is not an initramfs (filesystem type %#x): not deleting it", root, fsType)
	}
	return nil
}
