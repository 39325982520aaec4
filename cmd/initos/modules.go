package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"initos/internal/progress"
	"initos/modimage"
	"initos/squashfs"
)

func init() {
	register("modules", "the verity-protected modules/firmware image", runModules)
	describe("modules pack", "--kernel-dir /lib/modules/V [--firmware DIR] [--json] -o OUT",
		"Writes the modules image of kernel release V (the base name of --kernel-dir): a squashfs holding "+
			"modules/V (the kernel's module directory with depmod's indexes) and firmware/ (--firmware), followed by "+
			"its dm-verity tree. OUT is a file, or a directory that receives "+modimage.FileName("V")+". "+
			"Prints the root hash, hash offset and data size the UKI's initrd configuration records. "+
			"Reproducible: owners are root, mtimes are clamped to $SOURCE_DATE_EPOCH when set, and the verity salt "+
			"is derived from the image. OUT appears only once complete.")
}

func runModules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "modules", map[string]subcommand{
		"pack": {"write the modules/firmware image of a kernel", modulesPack},
	}, args, stdout, stderr)
}

// modulesJSON is the --json form of "modules pack".
type modulesJSON struct {
	Image      string   `json:"image"`
	FileName   string   `json:"file_name"`
	Release    string   `json:"release"`
	Modules    int      `json:"modules"`
	Firmware   int      `json:"firmware"`
	RootHash   string   `json:"root_hash"`
	HashOffset int64    `json:"hash_offset"`
	DataSize   int64    `json:"data_size"`
	Squashfs   sqfsJSON `json:"squashfs"`
}

func modulesPack(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("modules pack", stdout, stderr)
	kdir := fs.String("kernel-dir", "", "the kernel's module directory, /lib/modules/V (required)")
	fw := fs.String("firmware", "", "firmware tree to include (e.g. /lib/firmware)")
	out := fs.String("o", "", "output file, or directory for "+modimage.FileName("V")+" (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	prog := fs.Bool("progress", true, "draw a progress bar on a terminal")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if *kdir == "" || *out == "" {
		return usageError(fs, "--kernel-dir and -o are required")
	}
	epoch, err := epochFlag("")
	if err != nil {
		return err
	}
	path := *out
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, modimage.FileName(filepath.Base(filepath.Clean(*kdir))))
	}
	opts := modimage.Options{KernelDir: *kdir, FirmwareDir: *fw, Squashfs: squashfs.Options{Epoch: epoch}}
	if *prog && progress.IsTerminal(stderr) {
		opts.Squashfs.Progress = progress.New(stderr, true, treeBytes(*kdir, *fw), "modules", true)
		defer opts.Squashfs.Progress.Finish()
	}
	res, err := modimage.BuildFile(ctx, path, opts)
	if err != nil {
		return fmt.Errorf("modules pack: %w", err)
	}
	return printModules(stdout, path, res, *asJSON)
}

func printModules(w io.Writer, path string, r *modimage.Result, asJSON bool) error {
	if asJSON {
		return writeJSON(w, modulesJSON{Image: path, FileName: r.FileName, Release: r.Release, Modules: r.Modules,
			Firmware: r.Firmware, RootHash: r.RootHash, HashOffset: r.HashOffset, DataSize: r.DataSize,
			Squashfs: sqfsJSONOf(path, r.Image)})
	}
	fmt.Fprintf(w, "Image:           \t%s\n", path)
	fmt.Fprintf(w, "Kernel release:  \t%s\n", r.Release)
	fmt.Fprintf(w, "Modules:         \t%d files\n", r.Modules)
	fmt.Fprintf(w, "Firmware:        \t%d files\n", r.Firmware)
	fmt.Fprintf(w, "Root hash:       \t%s\n", r.RootHash)
	fmt.Fprintf(w, "Hash offset:     \t%d\n", r.HashOffset)
	fmt.Fprintf(w, "Data blocks:     \t%d\n", r.Verity.DataBlocks)
	fmt.Fprintf(w, "Data size:       \t%d bytes\n", r.DataSize)
	return nil
}
