// Package loop attaches regular files to Linux loop block devices in pure
// Go (no losetup): the verity image InitOS boots from is a file on the
// ESP, and the tests build disks in files.
//
// It implements the loop ioctls of <linux/loop.h>
// (Documentation/admin-guide/blockdev/loop.rst has little; the kernel's
// drivers/block/loop.c is the reference): LOOP_CTL_GET_FREE on
// /dev/loop-control picks a free device; LOOP_CONFIGURE (Linux 5.8+)
// binds the file and sets read-only, direct I/O, autoclear, partition
// scan, offset, size limit and logical block size in one step. When the
// kernel predates LOOP_CONFIGURE (ENOTTY or EINVAL) it falls back to
// LOOP_SET_FD + LOOP_SET_STATUS64 (+ LOOP_SET_DIRECT_IO and
// LOOP_SET_BLOCK_SIZE). When another process takes the free device
// between LOOP_CTL_GET_FREE and the bind (EBUSY), it asks for another.
//
// There is no udev in the initrd: when /dev/loopN (or /dev/loop-control)
// is missing, the node is made with mknod from the numbers in sysfs
// (block major 7 when sysfs has none).
//
// Structures and numbers come from golang.org/x/sys/unix (LoopConfig,
// LoopInfo64, LOOP_*, LO_FLAGS_*). Left out: encryption (long removed from
// the kernel), LOOP_CHANGE_FD, LOOP_SET_CAPACITY, and finding the device
// already bound to a file.
package loop
