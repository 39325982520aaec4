package bootdisk

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"initos/authenticode"
	"initos/bootconfig"
	"initos/initramfs"
	"initos/initrd"
	"initos/internal/vmtest"
	"initos/pecoff"
	"initos/uki"
)

// Stub is Debian's systemd-stub (package systemd-boot-efi).
const Stub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// VMModules are the early modules a q35 VM with virtio disks needs: the
// default set's USB, SATA and NVMe drivers only cost boot time under TCG.
var VMModules = []string{"virtio_pci", "virtio_blk", "vfat", "nls_cp437", "nls_ascii", "nls_utf8", "loop", "dm-verity", "squashfs", "efivarfs"}

// Initrd builds the production initrd for kernel k: initos-init, the
// early modules (nil: the default set) and cfg (zstd).
func Initrd(k vmtest.Kernel, cfg *bootconfig.Config, modules []string) ([]byte, error) {
	bin, err := InitosInit()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bootdisk-initrd")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	init := filepath.Join(dir, "initos-init")
	if err := os.WriteFile(init, bin, 0o755); err != nil {
		return nil, err
	}
	rd, err := initrd.Build(initrd.Options{Init: init, KernelDir: k.ModulesDir, GOARCH: "amd64", Config: cfg, Modules: modules})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := rd.Archive.WriteTo(&b, initramfs.Zstd); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// UKI builds a UKI on Debian's systemd-stub with the kernel image, initrd
// and command line, a signed PCR 11 policy by PCRKey (phase enter-initrd,
// the default), and, when sb is set, a Secure Boot signature.
func UKI(kernelImage string, initrd []byte, cmdline, release string, sb *SecureBootKey) ([]byte, error) {
	stub, err := os.ReadFile(Stub)
	if err != nil {
		return nil, fmt.Errorf("systemd-stub (package systemd-boot-efi): %w", err)
	}
	linux, err := os.ReadFile(kernelImage)
	if err != nil {
		return nil, err
	}
	img, err := uki.Build(stub, pecoff.UKI{
		OSRelease: []byte("ID=initos\nNAME=InitOS test\nVERSION_ID=test\n"),
		Cmdline:   []byte(cmdline), Uname: []byte(release),
		Linux: linux, Initrd: initrd,
	}, &uki.PCRSigning{Key: PCRKey()})
	if err != nil {
		return nil, err
	}
	if sb != nil {
		if err := authenticode.Sign(img, sb.Key, sb.Cert, authenticode.SignOptions{}); err != nil {
			return nil, err
		}
	}
	return img.Bytes(), nil
}

// Section returns the contents of a UKI's PE section (nil if absent).
func Section(img []byte, name string) []byte {
	p, err := pecoff.Parse(img)
	if err != nil {
		return nil
	}
	return p.Section(name)
}
