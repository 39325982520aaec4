package btrfsioctl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openDir opens path as a directory for ioctls, without following a final
// symbolic link.
func openDir(op, path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: op, Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openParent opens the directory that holds path and returns it with the
// checked final name.
func openParent(op, path string) (*os.File, string, error) {
	path = filepath.Clean(path)
	dir, name := filepath.Split(path)
	if err := checkName(name, subvolNameMax); err != nil {
		return nil, "", &os.PathError{Op: op, Path: path, Err: err}
	}
	if dir == "" {
		dir = "."
	}
	f, err := openDir(op, dir)
	return f, name, err
}

// checkName validates a subvolume name for a name field of size max+1.
func checkName(name string, max int) error {
	switch {
	case name == "" || name == "." || name == ".." || name == "/":
		return fmt.Errorf("invalid subvolume name %q: %w", name, syscall.EINVAL)
	case strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0):
		return fmt.Errorf("invalid subvolume name %q: contains '/' or NUL: %w", name, syscall.EINVAL)
	case len(name) > max:
		return fmt.Errorf("subvolume name of %d bytes exceeds %d: %w", len(name), max, syscall.ENAMETOOLONG)
	}
	return nil
}

// Create creates an empty subvolume at path (BTRFS_IOC_SUBVOL_CREATE_V2);
// the parent directory must exist on a btrfs filesystem.
func Create(path string) error {
	dir, name, err := openParent("create subvolume", path)
	if err != nil {
		return err
	}
	defer dir.Close()
	var args volArgsV2
	copy(args.name[:], name)
	return ioctl(dir, "create subvolume", path, iocSubvolCreateV2, unsafe.Pointer(&args))
}

// Snapshot creates dst as a snapshot of the subvolume src
// (BTRFS_IOC_SNAP_CREATE_V2), read-only when readOnly is set. Nested
// subvolumes of src appear as empty directories in the snapshot.
func Snapshot(src, dst string, readOnly bool) error {
	s, err := openDir("snapshot subvolume", src)
	if err != nil {
		return err
	}
	defer s.Close()
	dir, name, err := openParent("snapshot subvolume", dst)
	if err != nil {
		return err
	}
	defer dir.Close()
	var args volArgsV2
	args.fd = int64(s.Fd())
	if readOnly {
		args.flags = subvolRdonly
	}
	copy(args.name[:], name)
	err = ioctl(dir, "snapshot subvolume", dst, iocSnapCreateV2, unsafe.Pointer(&args))
	runtime.KeepAlive(s)
	return err
}

// Delete deletes the subvolume at path with all its files
// (BTRFS_IOC_SNAP_DESTROY_V2, falling back to BTRFS_IOC_SNAP_DESTROY on
// kernels before 5.7). It fails with ENOTEMPTY if path holds nested
// subvolumes: use DeleteRecursive.
func Delete(path string) error {
	dir, name, err := openParent("delete subvolume", path)
	if err != nil {
		return err
	}
	defer dir.Close()
	var args volArgsV2
	copy(args.name[:], name)
	err = ioctl(dir, "delete subvolume", path, iocSnapDestroyV2, unsafe.Pointer(&args))
	if !errors.Is(err, unix.ENOTTY) {
		return err
	}
	var v1 volArgs
	copy(v1.name[:], name)
	return ioctl(dir, "delete subvolume", path, iocSnapDestroy, unsafe.Pointer(&v1))
}

// DeleteByID deletes the subvolume with the given id on the filesystem that
// holds fsPath (BTRFS_IOC_SNAP_DESTROY_V2 with BTRFS_SUBVOL_SPEC_BY_ID,
// Linux 5.7 or later).
func DeleteByID(fsPath string, id uint64) error {
	f, err := openDir("delete subvolume", fsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	var args volArgsV2
	args.flags = subvolSpecByID
	binary.NativeEndian.PutUint64(args.name[:8], id) // union member subvolid
	return ioctl(f, "delete subvolume", fmt.Sprintf("%s (id %d)", fsPath, id), iocSnapDestroyV2, unsafe.Pointer(&args))
}

// DeleteRecursive deletes the subvolume at path and every subvolume nested
// in it, deepest first. Nested subvolumes are deleted by id when the kernel
// supports it and by path otherwise.
func DeleteRecursive(path string) error {
	path = filepath.Clean(path)
	id, err := ID(path)
	if err != nil {
		return err
	}
	subs, err := List(path)
	if err != nil {
		return err
	}
	byID := map[uint64]Subvolume{}
	for _, s := range subs {
		byID[s.ID] = s
	}
	self, ok := byID[id]
	if !ok {
		return Delete(path)
	}
	var nested []Subvolume
	for _, s := range subs {
		if s.ID != id && isBelow(byID, s, id) {
			nested = append(nested, s)
		}
	}
	// Deepest first: a longer path is never an ancestor of a shorter one.
	sortByDepthDesc(nested)
	for _, s := range nested {
		err := DeleteByID(path, s.ID)
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			rel := strings.TrimPrefix(s.Path, self.Path+"/")
			err = Delete(filepath.Join(path, rel))
		}
		if err != nil {
			return err
		}
	}
	return Delete(path)
}

func isBelow(byID map[uint64]Subvolume, s Subvolume, ancestor uint64) bool {
	for i := 0; i < len(byID)+1; i++ {
		if s.ParentID == ancestor {
			return true
		}
		p, ok := byID[s.ParentID]
		if !ok {
			return false
		}
		s = p
	}
	return false
}

func sortByDepthDesc(s []Subvolume) {
	depth := func(v Subvolume) int { return strings.Count(v.Path, "/") }
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && depth(s[j]) > depth(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// ID returns the id of the subvolume that contains path
// (BTRFS_IOC_INO_LOOKUP with tree id 0).
func ID(path string) (uint64, error) {
	f, err := openDir("look up subvolume", path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return lookupID(f, path)
}

func lookupID(f *os.File, path string) (uint64, error) {
	args := inoLookupArgs{objectID: firstFreeObjectID}
	if err := ioctl(f, "look up subvolume", path, iocInoLookup, unsafe.Pointer(&args)); err != nil {
		return 0, err
	}
	return args.treeID, nil
}

// inoPath returns the path of directory dirID inside subvolume tree,
// with a trailing slash unless it is the subvolume's root directory.
func inoPath(f *os.File, path string, tree, dirID uint64) (string, error) {
	args := inoLookupArgs{treeID: tree, objectID: dirID}
	if err := ioctl(f, "look up inode path", path, iocInoLookup, unsafe.Pointer(&args)); err != nil {
		return "", err
	}
	return cString(args.name[:]), nil
}

// IsSubvolume reports whether path is the root directory of a subvolume
// (inode 256 on btrfs) or the top level (inode 256 too).
func IsSubvolume(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	if st.Type != unix.BTRFS_SUPER_MAGIC {
		return false, nil
	}
	var s unix.Stat_t
	if err := unix.Lstat(path, &s); err != nil {
		return false, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return s.Ino == firstFreeObjectID && s.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// Sync commits the filesystem that holds path (BTRFS_IOC_SYNC).
func Sync(path string) error {
	f, err := openDir("sync filesystem", path)
	if err != nil {
		return err
	}
	defer f.Close()
	return ioctl(f, "sync filesystem", path, iocSync, nil)
}
