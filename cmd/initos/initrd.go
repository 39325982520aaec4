package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"initos/cpio"
	"initos/initramfs"
	"initos/kmod"
)

func init() { register("initrd", "inspect initramfs images, resolve kernel modules", runInitrd) }

func init() {
	describe("initrd ls", "FILE",
		"Lists every entry of an initramfs image (plain, gzip or zstd segments; FILE - reads standard input): mode, links, uid, gid, size (or major, minor of a device), time (UTC), name.")
	describe("initrd modules", "--kernel-dir DIR [--paths] NAME...",
		"Prints the modules needed to load each NAME (module name or alias), dependencies first, one per line: NAME PATH KIND, tab-separated, KIND one of module, optional (a soft dependency or one of an alias's alternatives: may fail to load), builtin (PATH -).")
	describe("initrd build", "--init BIN [--kernel-dir DIR] [--module NAME]... [--file GUESTPATH=HOSTPATH]... [--compress zstd|gzip|none] -o OUT",
		"Writes a reproducible initramfs (SOURCE_DATE_EPOCH) holding BIN as /init, /dev/console, empty /proc /sys /dev /run /tmp, each --module with its dependencies under /lib/modules/VERSION (VERSION = base name of DIR) with modules.dep etc. limited to them, and the --file entries.")
}

func runInitrd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "initrd", map[string]subcommand{
		"build":   {"write an initramfs: --init BIN, kernel modules, files", initrdBuild},
		"ls":      {"list the entries of an initramfs image (like cpio -tv)", initrdLs},
		"modules": {"print the modules needed to load NAME..., dependencies first", initrdModules},
	}, args, stdout, stderr)
}

// initrdLs implements "initos initrd ls FILE".
func initrdLs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("initrd ls", stdout, stderr)
	pos, err := parseFlags(fs, args, 1, 1)
	if err != nil {
		return err
	}
	in := io.Reader(os.Stdin)
	if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return fmt.Errorf("initrd ls: %w", err)
		}
		defer f.Close()
		in = f
	}
	w := bufio.NewWriter(stdout)
	r := initramfs.NewReader(in)
	for {
		h, err := r.Next()
		if err == io.EOF {
			return w.Flush()
		}
		if err != nil {
			w.Flush()
			return fmt.Errorf("initrd ls %s: %w", pos[0], err)
		}
		writeLsLine(w, h)
	}
}

// writeLsLine prints one entry the way `cpio -tv` does, with numeric
// owners and an unambiguous UTC time.
func writeLsLine(w io.Writer, h *cpio.Header) {
	size := fmt.Sprintf("%8d", h.Size)
	if t := h.Mode & cpio.TypeMask; t == cpio.TypeChar || t == cpio.TypeBlock {
		size = fmt.Sprintf("%3d, %3d", h.RDevMajor, h.RDevMinor)
	}
	mtime := time.Unix(int64(h.MTime), 0).UTC().Format("2006-01-02 15:04")
	fmt.Fprintf(w, "%s %3d %-5d %-5d %s %s %s", lsMode(h.Mode), h.NLink, h.UID, h.GID, size, mtime, h.Name)
	if h.Linkname != "" {
		fmt.Fprintf(w, " -> %s", h.Linkname)
	}
	fmt.Fprintln(w)
}

// lsMode formats st_mode like ls -l: "drwxr-xr-x", "crw-------", "-rwsr-xr-x".
func lsMode(mode uint32) string {
	types := map[uint32]byte{cpio.TypeDir: 'd', cpio.TypeSymlink: 'l', cpio.TypeChar: 'c', cpio.TypeBlock: 'b',
		cpio.TypeFifo: 'p', cpio.TypeSocket: 's', cpio.TypeReg: '-'}
	b := []byte("?rwxrwxrwx")
	if c, ok := types[mode&cpio.TypeMask]; ok {
		b[0] = c
	}
	for i := 0; i < 9; i++ {
		if mode&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := []struct {
		bit       uint32
		pos       int
		set, only byte
	}{{0o4000, 3, 's', 'S'}, {0o2000, 6, 's', 'S'}, {0o1000, 9, 't', 'T'}}
	for _, s := range special {
		if mode&s.bit != 0 {
			if b[s.pos] == '-' {
				b[s.pos] = s.only
			} else {
				b[s.pos] = s.set
			}
		}
	}
	return string(b)
}

// initrdModules implements "initos initrd modules --kernel-dir DIR NAME...".
func initrdModules(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("initrd modules", stdout, stderr)
	dir := fs.String("kernel-dir", "", "the kernel's module directory, e.g. /lib/modules/$(uname -r) (required)")
	paths := fs.Bool("paths", false, "print only the absolute paths of the .ko files to load")
	names, err := parseFlags(fs, args, 1, -1)
	if err != nil {
		return err
	}
	if *dir == "" {
		return usageError(fs, "--kernel-dir is required")
	}
	ix, err := kmod.Open(*dir)
	if err != nil {
		return err
	}
	mods, err := ix.Resolve(names...)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	for _, m := range mods {
		switch {
		case *paths && m.Builtin:
		case *paths:
			fmt.Fprintln(w, filepath.Join(ix.Dir(), m.Path))
		case m.Builtin:
			fmt.Fprintf(w, "%s\t-\tbuiltin\n", m.Name)
		case m.Optional:
			fmt.Fprintf(w, "%s\t%s\toptional\n", m.Name, m.Path)
		default:
			fmt.Fprintf(w, "%s\t%s\tmodule\n", m.Name, m.Path)
		}
	}
	return w.Flush()
}
