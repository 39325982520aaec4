package bootdisk

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"initos/bootconfig"
	"initos/initrd"
	"initos/internal/vmtest"
	"initos/kmod"
	"initos/verity"
)

// ModulesSubset are the parts of the kernel's module tree the test
// modules image holds (with every dependency): what a q35 VM's devices,
// dm-crypt and btrfs need, and more for coldplug to chew on. A full tree
// would take mksquashfs half a minute; `initos modules pack` makes real ones.
var ModulesSubset = []string{
	"kernel/crypto", "kernel/lib", "kernel/arch/x86/crypto", "kernel/fs/btrfs", "kernel/fs/fat", "kernel/fs/nls",
	"kernel/fs/squashfs", "kernel/drivers/md", "kernel/drivers/virtio", "kernel/drivers/char",
	"kernel/drivers/i2c", "kernel/drivers/input", "kernel/drivers/watchdog", "kernel/drivers/mfd",
	"kernel/drivers/block", "kernel/drivers/acpi", "kernel/drivers/platform", "kernel/drivers/hid",
	"kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/net_failover.ko", "kernel/net/core/failover.ko",
}

// ModulesImage is a modules image: squashfs + dm-verity tree.
type ModulesImage struct {
	Data []byte                  // the whole file
	Info bootconfig.ModulesImage // what the initrd config says about it
}

// FirmwareMarker is a file the test image holds under lib/firmware.
const FirmwareMarker = "initos-test-firmware.txt"

var modImages sync.Map // kernel image -> func() (*ModulesImage, error)

// BuildModulesImage returns the test modules image of kernel k, built once
// per process: ModulesSubset and dependencies under lib/modules/<release>
// with the index cut down to them, a marker under lib/firmware, squashfs
// (zstd), the verity tree appended at the image's (4 KiB aligned) end.
func BuildModulesImage(k vmtest.Kernel) (*ModulesImage, error) {
	f, _ := modImages.LoadOrStore(k.Image, sync.OnceValues(func() (*ModulesImage, error) { return buildModulesImage(k) }))
	return f.(func() (*ModulesImage, error))()
}

func buildModulesImage(k vmtest.Kernel) (*ModulesImage, error) {
	mods, err := subsetModules(k.ModulesDir)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bootdisk-modules")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	stage := filepath.Join(dir, "stage")
	if err := stageModules(k, stage, mods); err != nil {
		return nil, err
	}
	img := filepath.Join(dir, "modules.sqfs")
	out, err := exec.Command("mksquashfs", stage, img, "-noappend", "-comp", "zstd", "-quiet", "-no-progress",
		"-all-root", "-mkfs-time", "0", "-all-time", "0").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("mksquashfs: %w\n%s", err, out)
	}
	if err := appendVerity(img); err != nil {
		return nil, err
	}
	info, err := initrd.ModulesImageInfo(img, "initos/modules-"+k.Version+".sqfs")
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(img)
	return &ModulesImage{Data: data, Info: info}, err
}

// subsetModules returns the .ko paths (relative to dir) of ModulesSubset
// and of everything they depend on.
func subsetModules(dir string) (map[string]bool, error) {
	ix, err := kmod.Open(dir)
	if err != nil {
		return nil, err
	}
	paths := map[string]bool{}
	for _, sub := range ModulesSubset {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".ko") {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			deps, err := ix.Resolve(strings.TrimSuffix(filepath.Base(p), ".ko"))
			if err != nil {
				return err
			}
			for _, m := range deps {
				if !m.Builtin {
					paths[m.Path] = true
				}
			}
			paths[rel] = true
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("modules subset %s: %w", sub, err)
		}
	}
	return paths, nil
}

// stageModules copies the modules and their cut down index into stage.
func stageModules(k vmtest.Kernel, stage string, paths map[string]bool) error {
	dst := filepath.Join(stage, "lib/modules", k.Version)
	names := map[string]bool{}
	for p := range paths {
		names[kmod.Normalize(strings.TrimSuffix(path.Base(p), ".ko"))] = true
		if err := copyFile(filepath.Join(dst, p), filepath.Join(k.ModulesDir, p)); err != nil {
			return err
		}
	}
	for _, idx := range []string{"modules.dep", "modules.alias", "modules.softdep", "modules.builtin", "modules.builtin.modinfo"} {
		data, err := os.ReadFile(filepath.Join(k.ModulesDir, idx))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, idx), initrd.FilterIndex(idx, data, names, paths), 0o644); err != nil {
			return err
		}
	}
	fw := filepath.Join(stage, "lib/firmware", FirmwareMarker)
	if err := os.MkdirAll(filepath.Dir(fw), 0o755); err != nil {
		return err
	}
	return os.WriteFile(fw, []byte("firmware from the verified modules image\n"), 0o644)
}

// appendVerity appends the dm-verity tree (superblock first) at the end of
// img, which mksquashfs padded to 4 KiB.
func appendVerity(img string) error {
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size()%4096 != 0 {
		return fmt.Errorf("%s: %d bytes, not 4 KiB aligned", img, fi.Size())
	}
	if _, err := verity.Format(f, fi.Size(), f, fi.Size(), verity.Params{}); err != nil {
		return fmt.Errorf("verity: %w", err)
	}
	return f.Close()
}

func copyFile(dst, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}
