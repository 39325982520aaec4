package modimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"initos/internal/atomicfile"
	"initos/squashfs"
	"initos/verity"
)

// Layout of the image, shared with the initrd that mounts it.
const (
	// MountPoint is where the initrd mounts the image (read-only, through
	// dm-verity): the kernel then finds firmware in /lib/firmware, its
	// default search path, and modules sit in /lib/modules/<release>.
	MountPoint = "/lib"
	// ModulesDir holds one directory per kernel release: the kernel's
	// /lib/modules/<release> (kernel/, updates/, modules.dep, ...).
	ModulesDir = "modules"
	// FirmwareDir holds the firmware tree (/lib/firmware).
	FirmwareDir = "firmware"
)

// FileName is the image's name on the ESP for a kernel release:
// "modules-<release>.sqfs" (in the ESP's initos/ directory).
func FileName(release string) string { return "modules-" + release + ".sqfs" }

// ModulesPath is the image path of a release's module directory
// ("modules/<release>"); the initrd opens it with kmod.Open.
func ModulesPath(release string) string { return ModulesDir + "/" + release }

// Options describe a modules image.
type Options struct {
	// KernelDir is the kernel's module directory (/lib/modules/<release>),
	// holding depmod's index files. Required.
	KernelDir string
	// Release is the kernel release; empty means the base name of
	// KernelDir.
	Release string
	// FirmwareDir is a firmware tree (/lib/firmware); empty means none.
	FirmwareDir string
	// Squashfs sets compression, block size, Epoch, workers and progress.
	// Every file is stored owned by root (AllRoot) whatever it says, and
	// its Verity field is replaced by Verity below.
	Squashfs squashfs.Options
	// Verity sets the hash tree; the zero value means sha256, 4 KiB blocks
	// and a salt and UUID derived from the image, so the root hash is
	// reproducible.
	Verity verity.Params
	// Add, when set, fills the image instead of KernelDir and FirmwareDir
	// (which are then ignored): it adds the module directory under
	// ModulesPath(Release) and the firmware under FirmwareDir, e.g. from
	// the layers of an OCI image (squashfs.TarEntry). Release is required;
	// Result.Modules and Result.Firmware stay 0.
	Add func(w *squashfs.Writer) error
}

// Result describes a written modules image: what the UKI's initrd
// configuration records (file name, root hash, hash offset, data size).
type Result struct {
	Release  string // the kernel release
	FileName string // FileName(Release)
	Modules  int    // module files (.ko, .ko.xz, .ko.zst, .ko.gz)
	Firmware int    // firmware files
	// RootHash is the verity root hash (hex); the tree starts at
	// HashOffset, right after the DataSize bytes of squashfs (equal).
	RootHash   string
	HashOffset int64
	DataSize   int64
	Image      *squashfs.Result
	Verity     *verity.Result
}

// Build writes the modules image of opts to out: the squashfs with the
// kernel's module directory at ModulesPath(release) and the firmware at
// FirmwareDir, followed by its dm-verity tree. out must also be an
// io.ReaderAt (the tree is hashed from it), as *os.File is.
func Build(ctx context.Context, out io.WriterAt, opts Options) (*Result, error) {
	rel, err := release(opts)
	if err != nil {
		return nil, err
	}
	so := opts.Squashfs
	so.AllRoot = true
	vp := opts.Verity
	so.Verity = &vp
	w, err := squashfs.NewWriter(ctx, out, so)
	if err != nil {
		return nil, fmt.Errorf("modules image: %w", err)
	}
	res := &Result{Release: rel, FileName: FileName(rel)}
	if err := add(w, opts, res); err != nil {
		w.Abort()
		return nil, fmt.Errorf("modules image %s: %w", rel, err)
	}
	img, err := w.Finish()
	if err != nil {
		return nil, fmt.Errorf("modules image %s: %w", rel, err)
	}
	res.Image, res.Verity = img, img.Verity
	res.RootHash, res.HashOffset, res.DataSize = img.Verity.RootHashHex(), img.Verity.HashOffset, img.Size
	return res, nil
}

// BuildFile writes the image to path atomically (a temporary file renamed
// into place once complete, fsynced): an error or a cancelled ctx leaves
// nothing behind.
func BuildFile(ctx context.Context, path string, opts Options) (*Result, error) {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	res, err := Build(ctx, f.File, opts)
	if err != nil {
		return nil, err
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// release checks the kernel directory and returns the release name.
func release(opts Options) (string, error) {
	if opts.Add != nil {
		if err := checkRelease(opts.Release); err != nil {
			return "", err
		}
		return opts.Release, nil
	}
	if opts.KernelDir == "" {
		return "", errors.New("modules image: no kernel module directory given")
	}
	if _, err := os.Stat(filepath.Join(opts.KernelDir, "modules.dep")); err != nil {
		return "", fmt.Errorf("modules image: %s is not a kernel module directory (no modules.dep): %w", opts.KernelDir, err)
	}
	rel := opts.Release
	if rel == "" {
		rel = filepath.Base(filepath.Clean(opts.KernelDir))
	}
	return rel, checkRelease(rel)
}

func checkRelease(rel string) error {
	if rel == "" || rel == "." || rel == ".." || strings.ContainsAny(rel, "/\x00") {
		return fmt.Errorf("modules image: bad kernel release %q", rel)
	}
	return nil
}

// add adds the directories and the two trees.
func add(w *squashfs.Writer, opts Options, res *Result) error {
	for _, d := range []string{"", ModulesDir} {
		if err := w.Add(squashfs.Entry{Path: d, Mode: fs.ModeDir | 0o755, ModTime: opts.Squashfs.Epoch}, nil); err != nil {
			return err
		}
	}
	if opts.Add != nil {
		return opts.Add(w)
	}
	err := w.AddDirAt(opts.KernelDir, ModulesPath(res.Release), func(rel string, fi fs.FileInfo) bool {
		// build and source point at kernel headers outside the tree.
		if (rel == "build" || rel == "source") && fi.Mode()&fs.ModeSymlink != 0 {
			return true
		}
		if fi.Mode().IsRegular() && isModule(rel) {
			res.Modules++
		}
		return false
	})
	if err != nil || opts.FirmwareDir == "" {
		return err
	}
	return w.AddDirAt(opts.FirmwareDir, FirmwareDir, func(rel string, fi fs.FileInfo) bool {
		if fi.Mode().IsRegular() {
			res.Firmware++
		}
		return false
	})
}

// isModule reports whether a file name is a kernel module.
func isModule(name string) bool {
	for _, s := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}
