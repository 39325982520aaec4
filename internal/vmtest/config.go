package vmtest

import (
	"os"
	"strconv"
	"time"
)

// GuestEnv is the environment variable the runner sets to "1" for the guest
// test binary; InGuest reports it.
const GuestEnv = "INITOS_VMTEST"

// InGuest reports whether the calling test binary runs inside the harness
// VM (the runner sets INITOS_VMTEST=1).
func InGuest() bool { return os.Getenv(GuestEnv) == "1" }

// Config describes one VM test run. Its zero value is valid: it runs the
// guest tests of the calling package in a VM with no extra module or disk.
type Config struct {
	// Pkg is the package directory to build with `go test -c -tags vmguest`,
	// relative to the host test's working directory. Default ".".
	Pkg string
	// Run is the -test.run regexp for the guest. Default: exactly the Test
	// functions declared in the package's files that need the vmguest tag.
	Run string
	// Modules are kernel modules the runner loads, dependencies first,
	// before the guest tests start (e.g. "dm-verity"). Built-ins are skipped.
	Modules []string
	// ExtraModules are copied, with their dependencies, into the guest's
	// /lib/modules/<version> but not loaded: for tests that load modules.
	ExtraModules []string
	// Disks are attached as virtio disks /dev/vda, /dev/vdb, ... in order
	// (USB ones as /dev/sda, /dev/sdb, ... in their own order).
	// The harness attaches a per-test copy of each image.
	Disks []Disk
	// Files maps a guest path to a host path copied into the initramfs.
	Files map[string]string
	// MemoryMB is the guest memory. Default 1024.
	MemoryMB int
	// Timeout bounds the whole boot, guest tests included. Default 5
	// minutes (TCG is slow), scaled by INITOS_VMTEST_TIMEOUT_SCALE.
	Timeout time.Duration
	// TPM attaches a TPM 2.0 (swtpm, tpm-tis): /dev/tpm0 in the guest.
	TPM bool
	// Firmware boots the kernel through UEFI firmware instead of the
	// default BIOS; nil means direct kernel boot without UEFI.
	Firmware *Firmware
	// Cmdline is appended to the harness's kernel command line.
	Cmdline string
	// Net attaches a NIC on qemu's user network, with host ports forwarded
	// from 127.0.0.1 (see Net); its driver is loaded before the tests.
	// nil: no network.
	Net *Net
	// Arch is the guest's architecture: ArchAMD64 ("", the default) or
	// ArchARM64 (qemu-system-aarch64, virt machine, console ttyAMA0,
	// Debian's arm64 kernel from ARM64Dir, firmware AAVMF()).
	Arch string
	// Watchdog adds an i6300esb watchdog (see MachineConfig.Watchdog).
	Watchdog bool
}

// Disk is a disk image attached to the VM.
type Disk struct {
	Path     string // host path of a raw or qcow2 image; the VM gets a copy
	ReadOnly bool   // attach read-only
	Serial   string // virtio serial (/sys/block/vdX/serial), "" for none
	// USB attaches the disk as a USB stick (usb-storage, removable, on a
	// qemu-xhci controller) instead of virtio: /dev/sdX in the guest, a
	// removable USB disk to the firmware. amd64 only.
	USB bool
}

const (
	defaultMemoryMB = 1024
	defaultTimeout  = 5 * time.Minute
)

func (c Config) withDefaults() Config {
	if c.Pkg == "" {
		c.Pkg = "."
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = defaultMemoryMB
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	c.Timeout = scaleTimeout(c.Timeout)
	return c
}

// ScaleTimeout is the timeout d as the harness applies it: multiplied by
// INITOS_VMTEST_TIMEOUT_SCALE, for tests that time their own Machine boots.
func ScaleTimeout(d time.Duration) time.Duration { return scaleTimeout(d) }

// scaleTimeout multiplies d by INITOS_VMTEST_TIMEOUT_SCALE (for slow
// machines), when that is a positive number.
func scaleTimeout(d time.Duration) time.Duration {
	f, err := strconv.ParseFloat(os.Getenv(envTimeoutScale), 64)
	if err != nil || f <= 0 {
		return d
	}
	return time.Duration(float64(d) * f)
}
