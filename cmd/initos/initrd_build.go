package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"initos/initramfs"
	"initos/kmod"
)

// initrdIndexFiles are the depmod index files shipped with the modules, so
// that kmod.Open works on the guest's /lib/modules/VERSION. The first
// three are filtered down to the shipped modules; the built-in lists are
// copied as they are (Resolve needs them to recognise built-in code).
var initrdIndexFiles = []string{"modules.dep", "modules.alias", "modules.softdep", "modules.builtin", "modules.builtin.modinfo"}

// initrdListFlag is a repeatable string flag.
type initrdListFlag []string

func (l *initrdListFlag) String() string     { return strings.Join(*l, ",") }
func (l *initrdListFlag) Set(s string) error { *l = append(*l, s); return nil }

// initrdBuildOpts are the flags of "initos initrd build".
type initrdBuildOpts struct {
	init, kernelDir, out, compress string
	modules, files                 initrdListFlag
}

// initrdBuild implements "initos initrd build --init BIN [--kernel-dir DIR]
// [--module NAME]... [--file GUEST=HOST]... [--compress C] -o OUT".
func initrdBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("initrd build", stdout, stderr)
	var o initrdBuildOpts
	fs.StringVar(&o.init, "init", "", "static `BIN`ary to install as /init (required)")
	fs.StringVar(&o.kernelDir, "kernel-dir", "", "the target kernel's module `DIR`, e.g. /lib/modules/$(uname -r) (required with --module)")
	fs.Var(&o.modules, "module", "kernel module `NAME` or alias to ship with its dependencies (repeatable)")
	fs.Var(&o.files, "file", "extra file `GUESTPATH=HOSTPATH` (repeatable)")
	fs.StringVar(&o.compress, "compress", "zstd", "compression: zstd, gzip or none")
	fs.StringVar(&o.out, "o", "", "output `FILE` (required)")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		writeUsage(stderr, fs)
		return err
	}
	comp, err := initramfs.ParseCompression(o.compress)
	if err != nil {
		return fmt.Errorf("%w: initrd build: --compress: %v", errUsage, err)
	}
	a, mods, err := o.archive()
	if err != nil {
		return fmt.Errorf("initrd build %s: %w", o.out, err)
	}
	if err := a.WriteFile(o.out, comp); err != nil {
		return fmt.Errorf("initrd build: %w", err)
	}
	return o.summary(stdout, mods, comp)
}

func (o *initrdBuildOpts) check() error {
	switch {
	case o.init == "":
		return fmt.Errorf("%w: initrd build: --init is required", errUsage)
	case o.out == "":
		return fmt.Errorf("%w: initrd build: -o is required", errUsage)
	case len(o.modules) > 0 && o.kernelDir == "":
		return fmt.Errorf("%w: initrd build: --module needs --kernel-dir (the target kernel's modules, never the running one)", errUsage)
	}
	for _, f := range o.files {
		if g, h, ok := strings.Cut(f, "="); !ok || g == "" || h == "" {
			return fmt.Errorf("%w: initrd build: --file %q: want GUESTPATH=HOSTPATH", errUsage, f)
		}
	}
	return nil
}

// archive collects every entry of the image.
func (o *initrdBuildOpts) archive() (*initramfs.Archive, []kmod.Module, error) {
	a := &initramfs.Archive{}
	if err := a.AddHostFile("init", o.init); err != nil {
		return nil, nil, fmt.Errorf("--init: %w", err)
	}
	a.AddDir("dev", 0o755)
	a.AddCharDevice("dev/console", 0o600, 5, 1)
	for _, d := range []string{"proc", "sys", "run", "tmp"} {
		a.AddDir(d, 0o755)
	}
	var mods []kmod.Module
	if len(o.modules) > 0 {
		var err error
		if mods, err = initrdAddModules(a, o.kernelDir, o.modules); err != nil {
			return nil, nil, err
		}
	}
	for _, f := range o.files {
		guest, host, _ := strings.Cut(f, "=")
		if err := a.AddHostFile(guest, host); err != nil {
			return nil, nil, fmt.Errorf("--file %s: %w", guest, err)
		}
	}
	return a, mods, nil
}

// initrdAddModules resolves names in dir's index and adds the .ko files and the
// index files, filtered to what is shipped, under /lib/modules/VERSION.
func initrdAddModules(a *initramfs.Archive, dir string, names []string) ([]kmod.Module, error) {
	ix, err := kmod.Open(dir)
	if err != nil {
		return nil, err
	}
	mods, err := ix.Resolve(names...)
	if err != nil {
		return nil, err
	}
	guestDir := path.Join("lib/modules", filepath.Base(filepath.Clean(dir)))
	shipped := map[string]bool{} // module names
	paths := map[string]bool{}   // .ko paths relative to dir
	for _, m := range mods {
		if m.Builtin || paths[m.Path] {
			continue
		}
		shipped[m.Name], paths[m.Path] = true, true
		if err := a.AddHostFile(path.Join(guestDir, m.Path), filepath.Join(dir, m.Path)); err != nil {
			return nil, fmt.Errorf("add module %s: %w", m.Name, err)
		}
	}
	for _, name := range initrdIndexFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) && name != "modules.dep" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read module index: %w", err)
		}
		a.AddFile(path.Join(guestDir, name), 0o644, initrdFilterIndex(name, data, shipped, paths))
	}
	return mods, nil
}

// initrdFilterIndex keeps the lines of modules.dep, modules.alias and
// modules.softdep that concern shipped modules; other files pass through.
func initrdFilterIndex(name string, data []byte, shipped, paths map[string]bool) []byte {
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

// summary prints what was written: one line for the image, one per module.
func (o *initrdBuildOpts) summary(w io.Writer, mods []kmod.Module, c initramfs.Compression) error {
	fi, err := os.Stat(o.out)
	if err != nil {
		return fmt.Errorf("initrd build: %w", err)
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s: %d bytes (%s), /init from %s, %d modules, %d extra files\n", o.out, fi.Size(), c, o.init, len(mods), len(o.files))
	for _, m := range mods { // load order

		p := m.Path
		if m.Builtin {
			p = "(built in)"
		}
		fmt.Fprintf(bw, "  module %-16s %s\n", m.Name, p)
	}
	return bw.Flush()
}
