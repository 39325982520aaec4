package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"initos/internal/atomicfile"
	"initos/internal/progress"
	"initos/squashfs"
	"initos/verity"
)

func init() {
	register("sqfs", "squashfs images: build, list, read, extract", runSqfs)
	describe("sqfs build", "[--comp zstd|gzip|xz|lz4] [--level N] [--block-size N] [--all-root] [--epoch N] [--verity [--salt HEX]] [--json] SOURCE OUT",
		"Writes a squashfs 4.0 image of SOURCE (a directory, a tar file, plain, gzip or zstd, or - for a tar stream on standard input) to OUT, "+
			"compressing on every core. The same input gives the same bytes: entries are sorted, and mtimes are clamped to --epoch "+
			"(default $SOURCE_DATE_EPOCH when set). With --verity a dm-verity tree follows the 4 KiB-padded image (hash offset = image size, "+
			"salt and UUID derived from the image unless --salt is given) and its root hash is printed like `initos verity format`. "+
			"OUT appears only once complete.")
	describe("sqfs ls", "[-l] [--json] IMAGE [PATH]",
		"Lists PATH (default /) and everything below it, one path per line; -l adds mode, uid/gid, size (or major,minor), time (UTC) and symlink targets.")
	describe("sqfs cat", "IMAGE PATH", "Writes the content of the regular file PATH (symlinks in the image followed) to standard output.")
	describe("sqfs extract", "[--no-owners] [--no-xattrs] IMAGE DIR",
		"Extracts the image into DIR (created if missing; it must not hold any name the image has): content, modes, mtimes, owners (as root), xattrs, links, devices.")
}

func runSqfs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "sqfs", map[string]subcommand{
		"build":   {"write an image of a directory or a tar stream", sqfsBuild},
		"ls":      {"list the files of an image", sqfsLs},
		"cat":     {"print a file of an image", sqfsCat},
		"extract": {"extract an image into a directory", sqfsExtract},
	}, args, stdout, stderr)
}

// sqfsBuildFlags are the flags of "sqfs build".
type sqfsBuildFlags struct {
	comp, blockSize, epoch, salt string
	level                        int
	allRoot, verity, json, prog  bool
}

func sqfsBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f sqfsBuildFlags
	fs := newFlags("sqfs build", stdout, stderr)
	fs.StringVar(&f.comp, "comp", "zstd", "compressor: zstd, gzip, xz or lz4")
	fs.IntVar(&f.level, "level", 0, "compression level (default: the compressor's, zstd 3)")
	fs.StringVar(&f.blockSize, "block-size", "128K", "data block size, 4K to 1M, a power of two")
	fs.BoolVar(&f.allRoot, "all-root", false, "make every file owned by root")
	fs.StringVar(&f.epoch, "epoch", "", "clamp mtimes to these Unix seconds (default $SOURCE_DATE_EPOCH)")
	fs.BoolVar(&f.verity, "verity", false, "append a dm-verity hash tree")
	fs.StringVar(&f.salt, "salt", "", "verity salt in hex, - for none (default: derived from the image)")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	fs.BoolVar(&f.prog, "progress", true, "draw a progress bar on a terminal")
	pos, err := parseFlags(fs, args, 2, 2)
	if err != nil {
		return err
	}
	opts, err := f.options(fs)
	if err != nil {
		return err
	}
	res, err := buildImage(ctx, pos[0], pos[1], opts, sqfsProgress(stderr, f.prog, pos[0]))
	if err != nil {
		return fmt.Errorf("sqfs build %s: %w", pos[1], err)
	}
	return printBuild(stdout, pos[1], res, f.json)
}

// options converts the flags to squashfs.Options.
func (f *sqfsBuildFlags) options(fs *flag.FlagSet) (squashfs.Options, error) {
	var o squashfs.Options
	c, err := squashfs.ParseCompressor(f.comp)
	if err != nil {
		return o, usageError(fs, "--comp: %v", err)
	}
	bs, err := parseBlockSize(f.blockSize)
	if err == nil && (bs < squashfs.MinBlockSize || bs > squashfs.MaxBlockSize || bs&(bs-1) != 0) {
		err = fmt.Errorf("not a power of two from 4K to 1M")
	}
	if err != nil {
		return o, usageError(fs, "--block-size %q: %v", f.blockSize, err)
	}
	o = squashfs.Options{Compressor: c, Level: f.level, BlockSize: int(bs), AllRoot: f.allRoot}
	if o.Epoch, err = epochFlag(f.epoch); err != nil {
		return o, usageError(fs, "%v", err)
	}
	if f.salt != "" && !f.verity {
		return o, usageError(fs, "--salt needs --verity")
	}
	if f.verity {
		o.Verity = &verity.Params{}
		switch f.salt {
		case "":
		case "-":
			o.Verity.NoSalt = true
		default:
			if o.Verity.Salt, err = hex.DecodeString(f.salt); err != nil {
				return o, usageError(fs, "--salt: %v", err)
			}
		}
	}
	return o, nil
}

// parseBlockSize parses a byte count with an optional K or M suffix.
func parseBlockSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a size in bytes (N, NK or NM)")
	}
	return n * mult, nil
}

// epochFlag returns the --epoch time, else $SOURCE_DATE_EPOCH's, else none.
func epochFlag(flagVal string) (time.Time, error) {
	name, s := "--epoch", flagVal
	if s == "" {
		name, s = "SOURCE_DATE_EPOCH", os.Getenv("SOURCE_DATE_EPOCH")
	}
	if s == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("%s %q: not a number of seconds", name, s)
	}
	return time.Unix(n, 0), nil
}

// buildImage writes the image of source to out atomically.
func buildImage(ctx context.Context, source, out string, opts squashfs.Options, bar *progress.Bar) (*squashfs.Result, error) {
	f, err := atomicfile.Create(out, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	defer bar.Finish()
	add, err := sourceAdder(source, &opts, bar)
	if err != nil {
		return nil, err
	}
	w, err := squashfs.NewWriter(ctx, f.File, opts)
	if err != nil {
		return nil, err
	}
	if err := add(w); err != nil {
		w.Abort()
		return nil, err
	}
	res, err := w.Finish()
	if err != nil {
		return nil, err
	}
	return res, f.Commit()
}

// sourceAdder returns how to add SOURCE to a writer: a directory, a tar
// file (plain, gzip or zstd) or - for a tar stream on standard input. The
// bar counts file content for a directory and tar bytes for a stream.
func sourceAdder(source string, opts *squashfs.Options, bar *progress.Bar) (func(*squashfs.Writer) error, error) {
	if source == "-" {
		return func(w *squashfs.Writer) error { return addTar(w, bar.Reader(os.Stdin)) }, nil
	}
	fi, err := os.Stat(source)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		opts.Progress = bar
		return func(w *squashfs.Writer) error { return w.AddDir(source) }, nil
	}
	return func(w *squashfs.Writer) error {
		t, err := os.Open(source)
		if err != nil {
			return err
		}
		defer t.Close()
		return addTar(w, bar.Reader(t))
	}, nil
}

// sqfsProgress returns a bar for a build of source when stderr is a
// terminal: the content size of a directory (one walk), the size of a
// tar file, unknown for standard input.
func sqfsProgress(stderr io.Writer, enabled bool, source string) *progress.Bar {
	if !enabled || !progress.IsTerminal(stderr) {
		return nil
	}
	total := int64(-1)
	if fi, err := os.Stat(source); err == nil && fi.Mode().IsRegular() {
		total = fi.Size()
	} else if err == nil && fi.IsDir() {
		total = treeBytes(source)
	}
	return progress.New(stderr, enabled, total, "squashfs", true)
}

// treeBytes sums the sizes of the regular files below dir.
func treeBytes(dirs ...string) int64 {
	var n int64
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}

// addTar adds a tar stream, decompressing gzip or zstd.
func addTar(w *squashfs.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<20)
	tr, err := decompressedTar(br)
	if err != nil {
		return err
	}
	return w.AddTar(tr)
}
