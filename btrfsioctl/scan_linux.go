package btrfsioctl

import (
	"fmt"
	"os"
	"unsafe"
)

// ControlPath is the btrfs control device (misc 10:234), which devtmpfs
// creates when the btrfs module is loaded.
const ControlPath = "/dev/btrfs-control"

// iocScanDev is BTRFS_IOC_SCAN_DEV: register a device with the kernel's
// list of btrfs devices (issued on the control device).
var iocScanDev = request{iow(4, sizeOf[volArgs]()), "BTRFS_IOC_SCAN_DEV"}

// ScanDevice registers the block device dev with the kernel, as `btrfs
// device scan DEV` does, so that a multi-device filesystem (raid1 over
// several LUKS volumes) can be mounted from any of its devices. Without
// udev nothing else registers them: the mount then fails with "failed to
// read chunk tree" or "missing devices".
func ScanDevice(dev string) error {
	var args volArgs
	if len(dev) >= len(args.name) {
		return fmt.Errorf("btrfs device scan %s: path of %d bytes is too long", dev, len(dev))
	}
	copy(args.name[:], dev)
	f, err := os.OpenFile(ControlPath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("btrfs device scan %s: %w", dev, err)
	}
	defer f.Close()
	return ioctl(f, "btrfs device scan", dev, iocScanDev, unsafe.Pointer(&args))
}
