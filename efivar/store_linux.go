package efivar

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// efivarfsMagic is EFIVARFS_MAGIC from linux/magic.h.
const efivarfsMagic = 0xde5e81e4

// fsImmutableFL is FS_IMMUTABLE_FL from linux/fs.h (not in x/sys/unix).
const fsImmutableFL = 0x00000010

// OpenEfivarfs returns a Store on the efivarfs mounted at path
// (DefaultEfivarfs when empty), checking it is efivarfs.
func OpenEfivarfs(path string) (*Dir, error) {
	if path == "" {
		path = DefaultEfivarfs
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("open efivarfs: %w", &os.PathError{Op: "statfs", Path: path, Err: err})
	}
	if uint32(st.Type) != efivarfsMagic {
		return nil, fmt.Errorf("open efivarfs: %s is not efivarfs (magic %#x); mount -t efivarfs efivarfs %s", path, st.Type, path)
	}
	return &Dir{Path: path, Efivarfs: true}, nil
}

// makeMutable clears FS_IMMUTABLE_FL on path, which efivarfs sets on most
// variables. A missing file or a filesystem without flags is fine.
func makeMutable(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "ioctl(FS_IOC_GETFLAGS)", Path: path, Err: err}
	}
	if flags&fsImmutableFL == 0 {
		return nil
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^fsImmutableFL)); err != nil {
		return &os.PathError{Op: "ioctl(FS_IOC_SETFLAGS)", Path: path, Err: err}
	}
	return nil
}
