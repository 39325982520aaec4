package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"initos/bootconfig"
	"initos/initramfs"
	"initos/initrd"
	"initos/kmod"
	"initos/modimage"
	"initos/squashfs"
)

// indexFiles are the depmod files the initrd's resolver reads; only
// modules.dep is required.
var indexFiles = []string{"modules.dep", "modules.alias", "modules.softdep", "modules.builtin", "modules.builtin.modinfo"}

// maxIndexFile bounds a module index file read back from the image.
const maxIndexFile = 64 << 20

// initrdInputs is what the production initrd is made of.
type initrdInputs struct {
	init    string
	goarch  string
	release string
	modules []string
	config  *bootconfig.Config
	epoch   int64
}

// buildInitrd builds the production initrd (zstd, best level) with the
// early modules taken back out of the finished modules image sq: the
// module index is read from it and the modules' files are copied from it
// into a temporary directory that initrd.Build reads.
func buildInitrd(sq *squashfs.Reader, in initrdInputs) ([]byte, *initrd.Image, error) {
	tmp, err := os.MkdirTemp("", "initos-build-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	kdir := filepath.Join(tmp, in.release)
	src := modimage.ModulesPath(in.release)
	for _, name := range indexFiles {
		err := copyOut(sq, path.Join(src, name), filepath.Join(kdir, name), maxIndexFile)
		if errors.Is(err, fs.ErrNotExist) {
			if name == "modules.dep" {
				return nil, nil, fmt.Errorf("kernel %s: no modules.dep in the image's module directory (depmod did not run)", in.release)
			}
			continue
		}
		if err != nil {
			return nil, nil, err
		}
	}
	names, optional := in.modules, map[string]bool{}
	if names == nil {
		names = initrd.DefaultModules(in.goarch, in.config.Mode)
		for _, n := range names {
			optional[n] = true
		}
	}
	_, mods, _, err := initrd.ResolveModules(kdir, names, optional)
	if err != nil {
		return nil, nil, fmt.Errorf("initrd: kernel %s: %w", in.release, err)
	}
	if err := copyModules(sq, src, kdir, mods); err != nil {
		return nil, nil, err
	}
	img, err := initrd.Build(initrd.Options{Init: in.init, KernelDir: kdir, GOARCH: in.goarch, Config: in.config, Modules: in.modules})
	if err != nil {
		return nil, nil, err
	}
	img.Archive.ModTime = epochTime(in.epoch)
	var b bytes.Buffer
	if err := img.Archive.WriteTo(&b, initramfs.ZstdBest); err != nil {
		return nil, nil, fmt.Errorf("initrd: %w", err)
	}
	return b.Bytes(), img, nil
}

// copyModules copies the files of mods from the image into kdir.
func copyModules(sq *squashfs.Reader, src, kdir string, mods []kmod.Module) error {
	for _, m := range mods {
		if m.Builtin {
			continue
		}
		if err := copyOut(sq, path.Join(src, m.Path), filepath.Join(kdir, filepath.FromSlash(m.Path)), maxKernelSize); err != nil {
			return fmt.Errorf("initrd: module %s: %w", m.Name, err)
		}
	}
	return nil
}

// copyOut copies the regular file name of the image (symlinks followed)
// to dst, refusing files over limit bytes.
func copyOut(sq *squashfs.Reader, name, dst string, limit int64) error {
	if strings.Contains(name, "..") {
		return fmt.Errorf("%s: bad path", name)
	}
	f, err := sq.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return fmt.Errorf("%s: not a regular file of at most %d bytes", name, limit)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, f); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return out.Close()
}
