// Package cpio reads and writes cpio archives in the "new ASCII" (newc)
// format, the one the Linux kernel unpacks as an initramfs
// (Documentation/driver-api/early-userspace/buffer-format.rst).
//
// A newc entry is a 110-byte header of ASCII hex fields (magic "070701"),
// the NUL-terminated name, padding to a multiple of 4 bytes, the file data
// and again padding to 4 bytes. Symbolic link targets are the data of the
// link entry. The archive ends with an entry named "TRAILER!!!".
//
// The Reader accepts "070701" and "070702" (the "crc" variant, whose
// checksum it verifies) and treats its input as hostile: every field is
// checked (hex digits, name length, NUL termination, symlink size), names
// that are absolute or climb out with ".." are rejected, truncation is
// reported with the entry it hit, and nothing is allocated from a size
// field beyond PATH_MAX. It never panics (see FuzzReader).
//
// Left out: the old binary and "odc" (070707) formats, hard links (the
// Writer gives every entry its own inode and nlink 1, directories 2),
// and the concatenation of several archives, which belongs to the caller
// (package initos/initramfs handles it).
//
// No library was reused. github.com/u-root/u-root/pkg/cpio reads from an
// io.ReaderAt (a compressed stream must be buffered whole) and pulls in
// u-root's ls, uio and upath packages; github.com/cavaliergopher/cpio has
// no device-number fields (needed for /dev/console), maps malformed hex to
// 0 instead of failing, and its writer modifies a package-level magic
// slice. The format is small enough that a focused codec of our own is
// easier to make strict, deterministic and fuzzed.
package cpio
