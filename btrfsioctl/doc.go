// Package btrfsioctl manages btrfs subvolumes through the kernel's btrfs
// ioctls, in pure Go: create, snapshot (read-write or read-only), delete
// (by path or by id, recursively for nested subvolumes), list and show
// (tree search of the root tree for ROOT_ITEM/ROOT_BACKREF items, and
// BTRFS_IOC_GET_SUBVOL_INFO), get and set the default subvolume, get and
// set the read-only flag, resolve a path to a subvolume id and back
// (BTRFS_IOC_INO_LOOKUP), sync, and reflink clones of files and ranges
// (FICLONE/FICLONERANGE).
//
// Specification: the kernel UAPI headers include/uapi/linux/btrfs.h (ioctl
// numbers and argument structs) and include/uapi/linux/btrfs_tree.h (the
// on-disk items returned by the tree search), and the btrfs documentation
// at https://btrfs.readthedocs.io (Subvolumes, "btrfs subvolume").
//
// golang.org/x/sys/unix defines no btrfs ioctls, so ioctl_linux.go encodes
// the request numbers with _IOC/_IOR/_IOW helpers from the sizes of the Go
// mirrors of the kernel structs (asserted against the kernel's sizes in the
// tests) and sends every call through one funnel. Errors are
// *os.PathError naming the path, wrapping *os.SyscallError naming the
// ioctl, so errors.Is(err, unix.ENOTEMPTY) and friends work.
//
// Left out: qgroups, send/receive, balance/scrub/device management,
// quotas on snapshot creation, and the unprivileged INO_LOOKUP_USER and
// GET_SUBVOL_ROOTREF variants (List, PathOf and DefaultID search the root
// tree and so need CAP_SYS_ADMIN, like btrfs-progs).
package btrfsioctl
