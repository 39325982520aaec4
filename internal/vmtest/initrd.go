package vmtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"

	"initos/initramfs"
	"initos/internal/vmtest/plan"
	"initos/kmod"
)

// Guest layout of the harness initramfs.
const (
	guestBinary = "/vmtest/test" // the package's test binary
	guestPkgDir = "/vmtest/pkg"  // its working directory, with testdata/
	guestOutput = "/dev/ttyS1"   // the data channel
)

// indexFiles are the depmod files shipped so that guest tests can resolve
// modules from the guest's own /lib/modules/<version>.
var indexFiles = []string{"modules.dep", "modules.alias", "modules.softdep", "modules.builtin", "modules.builtin.modinfo"}

// initrdCompression is what the Debian kernel unpacks fastest of what it
// accepts (CONFIG_RD_ZSTD, CONFIG_RD_GZIP).
const initrdCompression = initramfs.Zstd

// diskModules drive the virtio disks; loaded first when there are disks.
var diskModules = []string{"virtio_pci", "virtio_blk"}

// usbDiskModules drive USB disks (Disk.USB): the xhci controller, USB
// mass storage, SCSI disks.
var usbDiskModules = []string{"xhci_pci", "usb_storage", "sd_mod"}

// guestImage is everything one harness initramfs holds.
type guestImage struct {
	kernel Kernel
	runner []byte
	test   []byte
	pkgDir string            // host package directory (its testdata/ is copied)
	files  map[string]string // guest path -> host path
	load   []kmod.Module     // loaded by the runner, in order
	ship   []kmod.Module     // only copied into /lib/modules
	plan   plan.Plan
}

// moduleIndex opens the module index of a modules directory once per process.
var moduleIndexes sync.Map // dir -> func() (*kmod.Index, error)

func moduleIndex(dir string) (*kmod.Index, error) {
	f, _ := moduleIndexes.LoadOrStore(dir, sync.OnceValues(func() (*kmod.Index, error) { return kmod.Open(dir) }))
	return f.(func() (*kmod.Index, error))()
}

// resolveModules resolves names (dependencies first) in the kernel's index.
func resolveModules(k Kernel, names []string) ([]kmod.Module, error) {
	if len(names) == 0 {
		return nil, nil
	}
	ix, err := moduleIndex(k.ModulesDir)
	if err != nil {
		return nil, err
	}
	return ix.Resolve(names...)
}

// writeInitrd packs img into a compressed newc archive at dst.
func writeInitrd(dst string, img *guestImage) error {
	var a initramfs.Archive
	a.AddFile("init", 0o755, img.runner)
	a.AddDir("dev", 0o755)
	a.AddCharDevice("dev/console", 0o600, 5, 1)
	for _, d := range []string{"proc", "sys", "tmp", "run", guestPkgDir} {
		a.AddDir(d, 0o755)
	}
	a.AddFile(guestBinary, 0o755, img.test)
	steps := []func(*initramfs.Archive) error{img.addTestdata, img.addModules, img.addFiles, img.addPlan}
	for _, step := range steps {
		if err := step(&a); err != nil {
			return fmt.Errorf("write initramfs %s: %w", dst, err)
		}
	}
	return writeArchive(dst, &a)
}

func writeArchive(dst string, a *initramfs.Archive) error {
	f, err := os.CreateTemp(filepath.Dir(dst), ".initrd-*")
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriterSize(f, 1<<20)
	err = a.WriteTo(w, initrdCompression)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		return fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	return nil
}

// addTestdata copies the package's testdata/ (if any) into the guest.
func (img *guestImage) addTestdata(a *initramfs.Archive) error {
	root := filepath.Join(img.pkgDir, "testdata")
	if _, err := os.Stat(root); os.IsNotExist(err) {
		return nil
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(img.pkgDir, p)
		if err != nil {
			return err
		}
		guest := path.Join(guestPkgDir, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			a.AddDir(guest, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			a.AddSymlink(guest, target)
		case d.Type().IsRegular():
			return a.AddHostFile(guest, p)
		}
		return nil
	})
}

// addModules copies the index files and every module to load or ship, and
// fills the plan's load list.
func (img *guestImage) addModules(a *initramfs.Archive) error {
	guestDir := path.Join("/lib/modules", img.kernel.Version)
	for _, name := range indexFiles {
		host := filepath.Join(img.kernel.ModulesDir, name)
		if _, err := os.Stat(host); err == nil {
			if err := a.AddHostFile(path.Join(guestDir, name), host); err != nil {
				return err
			}
		}
	}
	added := map[string]bool{}
	for _, m := range append(img.load, img.ship...) {
		if m.Builtin || added[m.Path] {
			continue
		}
		added[m.Path] = true
		if err := a.AddHostFile(path.Join(guestDir, m.Path), filepath.Join(img.kernel.ModulesDir, m.Path)); err != nil {
			return fmt.Errorf("add module %s: %w", m.Name, err)
		}
	}
	for _, m := range img.load {
		if !m.Builtin {
			img.plan.Modules = append(img.plan.Modules, plan.Module{Path: path.Join(guestDir, m.Path), Optional: m.Optional})
		}
	}
	return nil
}

// addFiles copies Config.Files.
func (img *guestImage) addFiles(a *initramfs.Archive) error {
	for guest, host := range img.files {
		if err := a.AddHostFile(guest, host); err != nil {
			return fmt.Errorf("add file %s: %w", guest, err)
		}
	}
	return nil
}

func (img *guestImage) addPlan(a *initramfs.Archive) error {
	b, err := json.MarshalIndent(&img.plan, "", "\t")
	if err != nil {
		return err
	}
	a.AddFile(plan.Path, 0o644, b)
	return nil
}
