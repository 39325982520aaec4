// Package initramfs builds and reads Linux initramfs images: newc cpio
// archives (package initos/cpio), optionally compressed, as the kernel
// unpacks them (Documentation/driver-api/early-userspace/buffer-format.rst
// and Documentation/filesystems/ramfs-rootfs-initramfs.rst).
//
// Archive is a deterministic builder: entries are written sorted by path
// with parent directories first (created when missing), owned by 0:0,
// with one fixed modification time (Archive.ModTime, else
// SOURCE_DATE_EPOCH, else 0), inode numbers assigned in write order, and
// nlink 1 (2 for directories). Building the same Archive twice gives the
// same bytes, also compressed: gzip (compress/gzip, no name or time in its
// header) and zstd (github.com/klauspost/compress/zstd, single-threaded
// encoder so the output does not depend on scheduling) are both unpacked
// by the Debian kernel (CONFIG_RD_GZIP, CONFIG_RD_ZSTD).
//
// Duplicate paths are an error (returned by WriteTo), except a directory
// added again, whose last mode wins; an implied parent directory takes the
// mode of a later AddDir.
//
// Reader reads what the kernel reads: several segments, each a plain or
// compressed archive, separated by NUL padding (Debian's initrds start
// with an uncompressed microcode archive). It is what `initos initrd ls`
// uses.
//
// Left out: hard links, block devices, FIFOs and sockets (an initramfs of
// InitOS needs none), and reading xz, lzma, bzip2, lzo or lz4 segments.
package initramfs
