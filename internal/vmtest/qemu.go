package vmtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Firmware is a UEFI firmware: a read-only pflash code image and the
// template of its variable store, of which each Machine keeps its own copy.
type Firmware struct {
	Code string // pflash unit 0, read-only
	Vars string // template of pflash unit 1; copied into the Machine
	// SecureBoot selects the machine the Secure Boot builds of OVMF need:
	// q35 with SMM and a secure pflash (only SMM code may write the vars).
	SecureBoot bool
}

// Debian's ovmf package.
const ovmfDir = "/usr/share/OVMF"

// OVMF returns Debian's OVMF without Secure Boot (4 MiB build).
func OVMF() *Firmware {
	return &Firmware{
		Code: filepath.Join(ovmfDir, "OVMF_CODE_4M.fd"),
		Vars: filepath.Join(ovmfDir, "OVMF_VARS_4M.fd"),
	}
}

// OVMFSecureBoot returns Debian's Secure Boot OVMF whose variable store
// enrolls the "snakeoil" test keys (/usr/share/ovmf/PkKek-1-snakeoil.*):
// only images signed by that key boot. Use OVMF_VARS_4M.fd as Vars for a
// store in setup mode.
func OVMFSecureBoot() *Firmware {
	return &Firmware{
		Code:       filepath.Join(ovmfDir, "OVMF_CODE_4M.snakeoil.fd"),
		Vars:       filepath.Join(ovmfDir, "OVMF_VARS_4M.snakeoil.fd"),
		SecureBoot: true,
	}
}

// qemuArgs returns qemu's arguments (without argv[0]) for one boot. The
// console (ttyS0) goes to stdout, the data channel (ttyS1) to dir/output.
func (m *Machine) qemuArgs(spec BootSpec, dir string, tpm *swtpm) []string {
	if archOf(m.cfg.Arch) == ArchARM64 {
		return m.arm64Args(spec, dir, tpm)
	}
	args := []string{
		"-accel", "tcg", "-cpu", "max", // TCG only: KVM hangs on the CI machines
		"-m", strconv.Itoa(m.cfg.MemoryMB),
		"-nodefaults", "-nographic", "-no-reboot", "-nic", "none",
		"-monitor", "none",
		"-serial", "stdio",
		"-serial", "file:" + filepath.Join(dir, "output"),
	}
	if fw := m.cfg.Firmware; fw != nil {
		args = append(args, firmwareArgs(fw, m.vars)...)
	}
	if tpm != nil {
		args = append(args,
			"-chardev", "socket,id=chrtpm,path="+tpm.socket,
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", "tpm-tis,tpmdev=tpm0")
	}
	xhci := false
	for i, d := range m.disks {
		if m.gone[i] {
			continue
		}
		if d.USB && !xhci {
			args, xhci = append(args, "-device", "qemu-xhci,id="+xhciID), true
		}
		args = append(args, diskArgs(i, d)...)
	}
	if spec.Kernel != "" {
		args = append(args, "-kernel", spec.Kernel, "-append", spec.Cmdline)
		if spec.Initrd != "" {
			args = append(args, "-initrd", spec.Initrd)
		}
	}
	return append(m.rebootArgs(withNet(args, m.cfg.Net)), spec.QEMUArgs...)
}

// xhciID is the qemu id of the USB controller of USB disks.
const xhciID = "xhci"

// diskArgs attaches a virtio disk as a -drive (the image) and a -device
// (the virtio-blk-pci function, with its serial): every disk in this
// form, so that qemu places them in order (/dev/vda, /dev/vdb, ...);
// -drive if=virtio disks would be placed after -device ones. A USB disk
// is a removable usb-storage device on the xhci controller instead.
func diskArgs(i int, d Disk) []string {
	// qemu option values escape a comma by doubling it.
	drive := fmt.Sprintf("file=%s,format=%s", strings.ReplaceAll(d.Path, ",", ",,"), diskFormat(d.Path))
	if d.ReadOnly {
		drive += ",readonly=on"
	}
	id := fmt.Sprintf("disk%d", i)
	dev := "virtio-blk-pci,drive=" + id
	if d.USB {
		dev = "usb-storage,bus=" + xhciID + ".0,removable=on,drive=" + id
	}
	if d.Serial != "" {
		dev += ",serial=" + d.Serial
	}
	return []string{"-drive", drive + ",if=none,id=" + id, "-device", dev}
}

func firmwareArgs(fw *Firmware, vars string) []string {
	machine := "q35"
	var args []string
	if fw.SecureBoot {
		machine += ",smm=on"
		args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
	}
	return append([]string{"-machine", machine}, append(args,
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+fw.Code,
		"-drive", "if=pflash,format=raw,unit=1,file="+vars)...)
}

// diskFormat tells qcow2 images (by their magic) from raw ones.
func diskFormat(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "raw"
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := f.ReadAt(magic, 0); err == nil && bytes.Equal(magic, []byte("QFI\xfb")) {
		return "qcow2"
	}
	return "raw"
}
