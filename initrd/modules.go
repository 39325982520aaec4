package initrd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"initos/bootconfig"
	"initos/initramfs"
	"initos/kmod"
)

// DefaultModules returns the early modules of the production initrd for
// a GOARCH and a mode: the storage of the boot disk (NVMe, AHCI/SATA and
// SCSI disks, virtio), vfat with its code pages, loop, dm-verity and
// squashfs for the modules image, and efivarfs (on arm64 also
// virtio-mmio, the platform xHCI and tpm_tis); install mode, which boots
// from a USB stick, adds USB mass storage. Everything else (dm-crypt,
// btrfs, network, ...) comes from the modules image. Names a kernel does
// not have (another architecture's driver) are skipped. A host whose ESP
// is on eMMC or SD (the MMC stack is 230 KB compressed) adds them:
// `initos initrd build --module mmc_block --module sdhci_pci`.
func DefaultModules(goarch string, mode bootconfig.Mode) []string {
	mods := []string{
		"nvme", "ahci", "sd_mod", "virtio_blk", "virtio_scsi", "virtio_pci",
		"vfat", "nls_cp437", "nls_ascii", "nls_utf8",
		"loop", "dm-verity", "squashfs", "efivarfs",
	}
	if goarch == "arm64" {
		// tpm_tis: a TPM on the system bus (qemu's tpm-tis-device,
		// Debian's cloud-arm64 kernel has it as a module; x86-64 kernels
		// build it in). initos-init looks for the TPM once, early.
		mods = append(mods, "virtio_mmio", "xhci_plat_hcd", "tpm_tis")
	}
	if mode == bootconfig.ModeInstall {
		mods = append(mods, "xhci_pci", "usb_storage", "uas")
	}
	return mods
}

// ResolveModules resolves names in the module directory dir, dependencies
// first. Names in optional that the kernel does not have (another
// architecture's driver) are dropped instead of failing.
func ResolveModules(dir string, names []string, optional map[string]bool) (*kmod.Index, []kmod.Module, []string, error) {
	ix, err := kmod.Open(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	var kept []string
	for _, n := range names {
		if _, err := ix.Resolve(n); err != nil {
			if optional[n] && isNotFound(err) {
				continue
			}
			return nil, nil, nil, err
		}
		kept = append(kept, n)
	}
	mods, err := ix.Resolve(kept...)
	return ix, mods, kept, err
}

// indexFiles are the depmod index files shipped with the modules, so that
// kmod.Open works on the initrd's /lib/modules/<release>. The first three
// are cut down to the shipped modules; the built-in lists are copied (the
// resolver needs them to recognise built-in code).
var indexFiles = []string{"modules.dep", "modules.alias", "modules.softdep", "modules.builtin", "modules.builtin.modinfo"}

// AddModules adds the .ko files of mods (from dir) and the index files,
// filtered to what is shipped, under lib/modules/<base name of dir>.
func AddModules(a *initramfs.Archive, dir string, mods []kmod.Module) error {
	guestDir := path.Join("lib/modules", filepath.Base(filepath.Clean(dir)))
	shipped := map[string]bool{} // module names
	paths := map[string]bool{}   // .ko paths relative to dir
	for _, m := range mods {
		if m.Builtin || paths[m.Path] {
			continue
		}
		shipped[m.Name], paths[m.Path] = true, true
		if err := a.AddHostFile(path.Join(guestDir, m.Path), filepath.Join(dir, m.Path)); err != nil {
			return fmt.Errorf("add module %s: %w", m.Name, err)
		}
	}
	for _, name := range indexFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) && name != "modules.dep" {
			continue
		}
		if err != nil {
			return fmt.Errorf("read module index: %w", err)
		}
		a.AddFile(path.Join(guestDir, name), 0o644, FilterIndex(name, data, shipped, paths))
	}
	return nil
}

// FilterIndex keeps the lines of modules.dep, modules.alias and
// modules.softdep that concern shipped modules (names) or module files
// (paths, relative to the module directory); other files pass through.
func FilterIndex(name string, data []byte, shipped, paths map[string]bool) []byte {
	keep := map[string]func(f []string) bool{
		"modules.dep":     func(f []string) bool { return paths[strings.TrimSuffix(f[0], ":")] },
		"modules.alias":   func(f []string) bool { return len(f) >= 3 && f[0] == "alias" && shipped[kmod.Normalize(f[2])] },
		"modules.softdep": func(f []string) bool { return len(f) >= 2 && f[0] == "softdep" && shipped[kmod.Normalize(f[1])] },
	}[name]
	if keep == nil {
		return data
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && keep(f) {
			out.WriteString(sc.Text())
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func isNotFound(err error) bool { return errors.Is(err, kmod.ErrNotFound) }
