package vmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// Architectures the harness boots (Config.Arch, MachineConfig.Arch).
const (
	ArchAMD64 = "amd64" // qemu-system-x86_64, q35 (default)
	ArchARM64 = "arm64" // qemu-system-aarch64, virt, cpu max, AAVMF
)

// Environment knobs of the arm64 machine (see docs/vmtest.md).
const (
	envARM64Dir     = "INITOS_ARM64_DIR"            // Debian's arm64 kernel and stub, unpacked
	envKernelARM64  = "INITOS_VMTEST_KERNEL_ARM64"  // arm64 kernel image to boot
	envModulesARM64 = "INITOS_VMTEST_MODULES_ARM64" // its /lib/modules/<version>
	envQEMUARM64    = "INITOS_VMTEST_QEMU_ARM64"    // qemu-system-aarch64 binary
)

// DefaultARM64Dir is where scripts/setup.sh unpacks Debian's arm64 kernel
// package (linux-image-<version>-arm64, with depmod's index files) and
// systemd-boot-efi:arm64 (the aa64 systemd-stub): one directory per
// version and a "current" symlink to the newest.
const DefaultARM64Dir = "/var/cache/initos/arm64/current"

// ARM64Dir returns the unpacked arm64 packages: $INITOS_ARM64_DIR or
// DefaultARM64Dir.
func ARM64Dir() string {
	if d := os.Getenv(envARM64Dir); d != "" {
		return d
	}
	return DefaultARM64Dir
}

// StubARM64 returns Debian's aa64 systemd-stub from ARM64Dir.
func StubARM64() string {
	return filepath.Join(ARM64Dir(), "usr/lib/systemd/boot/efi/linuxaa64.efi.stub")
}

// archOf maps "" to the default architecture.
func archOf(arch string) string {
	if arch == "" {
		return ArchAMD64
	}
	return arch
}

// checkArch rejects architectures the harness does not boot.
func checkArch(arch string) error {
	if a := archOf(arch); a != ArchAMD64 && a != ArchARM64 {
		return fmt.Errorf("vmtest: architecture %q: want %s or %s", arch, ArchAMD64, ArchARM64)
	}
	return nil
}

// qemuName is the qemu system emulator of an architecture.
func qemuName(arch string) string {
	if archOf(arch) == ArchARM64 {
		if q := os.Getenv(envQEMUARM64); q != "" {
			return q
		}
		return "qemu-system-aarch64"
	}
	if q := os.Getenv(envQEMU); q != "" {
		return q
	}
	return "qemu-system-x86_64"
}

// FindKernelArch is FindKernel for an architecture: for arm64, the
// kernel of $INITOS_VMTEST_KERNEL_ARM64 (modules from
// $INITOS_VMTEST_MODULES_ARM64) or the newest boot/vmlinuz-<version> of
// ARM64Dir with a lib/modules/<version>/modules.dep.
func FindKernelArch(arch string) (Kernel, error) {
	if archOf(arch) == ArchAMD64 {
		return FindKernel()
	}
	if err := checkArch(arch); err != nil {
		return Kernel{}, err
	}
	return findARM64Once()
}

var findARM64Once = sync.OnceValues(func() (Kernel, error) {
	dir := ARM64Dir()
	k, err := findKernel(filepath.Join(dir, "boot"), filepath.Join(dir, "lib/modules"),
		os.Getenv(envKernelARM64), os.Getenv(envModulesARM64))
	if err != nil {
		return Kernel{}, fmt.Errorf("%w (arm64: scripts/setup.sh unpacks Debian's arm64 kernel into %s)", err, DefaultARM64Dir)
	}
	return k, nil
})

// AAVMF returns Debian's AAVMF (UEFI for qemu's arm64 virt machine,
// package qemu-efi-aarch64) without Secure Boot.
func AAVMF() *Firmware {
	return &Firmware{Code: "/usr/share/AAVMF/AAVMF_CODE.fd", Vars: "/usr/share/AAVMF/AAVMF_VARS.fd"}
}

// AAVMFSecureBoot returns Debian's AAVMF whose variable store enrolls the
// "snakeoil" test keys, as OVMFSecureBoot does for x86-64. The virt
// machine has no SMM: the variable store is not protected from the OS,
// which the tests do not need.
func AAVMFSecureBoot() *Firmware {
	return &Firmware{Code: "/usr/share/AAVMF/AAVMF_CODE.snakeoil.fd", Vars: "/usr/share/AAVMF/AAVMF_VARS.snakeoil.fd"}
}

// arm64Args returns qemu-system-aarch64's arguments for one boot: the
// virt machine, the console on the PL011 UART (ttyAMA0, stdout), the data
// channel on a virtio console (hvc0 in the guest, dir/output), AAVMF as
// pflash, a TPM on the system bus (tpm-tis-device), virtio disks. The
// CPU is "max" with the implementation-defined pointer authentication
// algorithm: TCG emulates the architected one (QARMA) slowly, and the
// kernel then takes three times as long to boot (48 s against 15 s here).
func (m *Machine) arm64Args(spec BootSpec, dir string, tpm *swtpm) []string {
	args := []string{
		"-accel", "tcg", "-machine", "virt", "-cpu", "max,pauth-impdef=on",
		"-m", strconv.Itoa(m.cfg.MemoryMB),
		"-nodefaults", "-nographic", "-no-reboot", "-nic", "none",
		"-monitor", "none",
		"-serial", "stdio",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "file,id=data0,path=" + filepath.Join(dir, "output"),
		"-device", "virtconsole,chardev=data0,bus=vser0.0",
	}
	if fw := m.cfg.Firmware; fw != nil {
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+fw.Code,
			"-drive", "if=pflash,format=raw,unit=1,file="+m.vars)
	}
	if tpm != nil {
		args = append(args,
			"-chardev", "socket,id=chrtpm,path="+tpm.socket,
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", "tpm-tis-device,tpmdev=tpm0")
	}
	for _, d := range m.disks {
		drive := fmt.Sprintf("file=%s,format=%s,if=virtio", d.Path, diskFormat(d.Path))
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		args = append(args, "-drive", drive)
	}
	if spec.Kernel != "" {
		args = append(args, "-kernel", spec.Kernel, "-append", spec.Cmdline)
		if spec.Initrd != "" {
			args = append(args, "-initrd", spec.Initrd)
		}
	}
	return append(withNet(args, m.cfg.Net), spec.QEMUArgs...)
}

// Guest-side differences of the arm64 machine.
const (
	arm64Console = "ttyAMA0"   // the PL011 UART
	arm64Output  = "/dev/hvc0" // the virtio console of the data channel
)

// arm64Modules are loaded first on arm64: the virtio console carries the
// data channel; tpm_tis drives the TPM on the system bus (a module in
// Debian's arm64 kernel, built in on x86-64).
func arm64Modules(tpm bool) []string {
	mods := []string{"virtio_pci", "virtio_console"}
	if tpm {
		mods = append(mods, "tpm_tis")
	}
	return mods
}

// prependModules returns first followed by the names of rest not in it.
func prependModules(first, rest []string) []string {
	out := slices.Clone(first)
	for _, n := range rest {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
