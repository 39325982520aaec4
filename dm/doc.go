// Package dm drives the Linux device-mapper through the ioctls of
// /dev/mapper/control, in pure Go: no libdevmapper, no dmsetup, no udev.
//
// It implements the dm ioctl interface 4.x of <linux/dm-ioctl.h> (the
// kernel's drivers/md/dm-ioctl.c is the reference): DM_VERSION,
// DM_DEV_CREATE, DM_TABLE_LOAD, DM_DEV_SUSPEND (suspend and resume),
// DM_DEV_REMOVE, DM_DEV_STATUS, DM_TABLE_STATUS (status and table),
// DM_LIST_DEVICES and DM_TARGET_MSG, through a Control. The structures and
// numbers come from golang.org/x/sys/unix (DmIoctl, DmTargetSpec,
// DmTargetMsg, DM_*); every size and offset is taken with unsafe.Sizeof.
// We request interface version 4.0.0 so any 4.x kernel accepts the calls.
//
// Tables are built from the sealed Target interface: Linear, Crypt
// (Documentation/admin-guide/device-mapper/dm-crypt.rst, hex or keyring
// keys), Verity (.../verity.rst, every optional argument the 6.1 kernel
// knows) and Spec, a raw "START LENGTH TYPE PARAMS" line (ParseTable reads
// dmsetup's text form).
//
// CreateDevice does create + load + resume and makes /dev/mapper/NAME
// itself; on any failure it removes the half-created device and reports
// the ioctl errno with the kernel's "device-mapper:" log lines for the
// call (read from /dev/kmsg). RemoveDevice removes a device and its node.
//
// # Device nodes and udev
//
// In the initrd there is no udev: CreateDevice makes /dev/mapper/NAME with
// mknod from the dev_t the kernel returned, and Open makes
// /dev/mapper/control from /sys/class/misc/device-mapper/dev when missing.
// When udev runs (/run/udev/control exists) resume and remove carry a
// flags-only udev cookie in event_nr: DM_UDEV_PRIMARY_SOURCE_FLAG in the
// upper 16 bits, zero in the lower 16 bits. The dm udev rules then process
// the event as a real change, and because the cookie's semaphore part is
// zero, their "dmsetup udevcomplete" is a no-op and nothing waits for it
// (libdevmapper's convention for flags-only cookies). The node is then the
// same relative symlink the rules create (mapper/NAME -> ../dm-N), so udev
// and we agree on it whoever comes first. Without udev event_nr is 0 and
// the kernel adds no DM_COOKIE to its uevent.
//
// Left out: renaming, deferred remove, DM_TABLE_DEPS, target version
// listing, multipath/thin/raid tables (Spec can carry them), and
// libdevmapper's udev semaphores (we never wait for udev).
//
// The design named anatol/devmapper.go; it is not available to this
// build (the module proxy refuses it), so this package is our own.
package dm
