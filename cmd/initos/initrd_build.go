package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"initos/bootconfig"
	"initos/initramfs"
	"initos/initrd"
)

// initrdListFlag is a repeatable string flag.
type initrdListFlag []string

func (l *initrdListFlag) String() string     { return strings.Join(*l, ",") }
func (l *initrdListFlag) Set(s string) error { *l = append(*l, s); return nil }

// initrdBuildOpts are the flags of "initos initrd build".
type initrdBuildOpts struct {
	init, kernelDir, out, compress, arch string
	config, modImage, modImagePath, mode string
	buildID                              string
	secVersion                           uint64
	noDefault, noModules, asJSON         bool
	modules, files                       initrdListFlag
}

// initrdBuild implements "initos initrd build": the production initrd.
func initrdBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("initrd build", stdout, stderr)
	var o initrdBuildOpts
	fs.StringVar(&o.init, "init", "", "the initos-init `BIN`ary for /init (default: initos-init next to this program, else in $PATH)")
	fs.StringVar(&o.kernelDir, "kernel-dir", "", "the target kernel's module `DIR`, e.g. /lib/modules/6.1.0-57-amd64 (required unless --no-modules)")
	fs.Var(&o.modules, "module", "early module `NAME` or alias to ship with its dependencies, besides the defaults (repeatable)")
	fs.BoolVar(&o.noDefault, "no-default-modules", false, "ship only the --module names, not the default early modules")
	fs.BoolVar(&o.noModules, "no-modules", false, "ship no kernel module (a kernel with the drivers built in)")
	fs.StringVar(&o.arch, "arch", "", "GOARCH whose default early modules to ship (default: this machine's)")
	fs.StringVar(&o.config, "config", "", "initrd config JSON `FILE` to start from (default: boot mode, version 1)")
	fs.StringVar(&o.modImage, "modules-image", "", "modules image `FILE` (squashfs + verity): put its root hash, salt and sizes into the config")
	fs.StringVar(&o.modImagePath, "modules-image-path", "", "path of the modules image on the ESP (default initos/modules-RELEASE.sqfs)")
	fs.StringVar(&o.mode, "mode", "", "set the config's mode: boot or install")
	fs.Uint64Var(&o.secVersion, "security-version", 0, "set the config's security version (anti-rollback)")
	fs.StringVar(&o.buildID, "build-id", "", "set the config's build id")
	fs.Var(&o.files, "file", "extra file `GUESTPATH=HOSTPATH` (repeatable)")
	fs.StringVar(&o.compress, "compress", "zstd-best", "compression: zstd-best, zstd, gzip or none")
	fs.BoolVar(&o.asJSON, "json", false, "print the summary as JSON")
	fs.StringVar(&o.out, "o", "", "output `FILE` (required)")
	if _, err := parseFlags(fs, args, 0, 0); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return usageError(fs, "%v", err)
	}
	comp, err := initramfs.ParseCompression(o.compress)
	if err != nil {
		return usageError(fs, "--compress: %v", err)
	}
	opts, err := o.options(fs)
	if err != nil {
		return fmt.Errorf("initrd build %s: %w", o.out, err)
	}
	rd, err := initrd.Build(opts)
	if err != nil {
		return fmt.Errorf("initrd build %s: %w", o.out, err)
	}
	if err := rd.Archive.WriteFile(o.out, comp); err != nil {
		return fmt.Errorf("initrd build: %w", err)
	}
	return o.summary(stdout, rd, comp, opts.Init)
}

func (o *initrdBuildOpts) check() error {
	switch {
	case o.out == "":
		return errors.New("-o is required")
	case o.kernelDir == "" && !o.noModules:
		return errors.New("--kernel-dir is required (the target kernel's modules, never the running one), or --no-modules")
	case o.noModules && len(o.modules) > 0:
		return errors.New("--module and --no-modules exclude each other")
	case o.mode != "" && o.mode != string(bootconfig.ModeBoot) && o.mode != string(bootconfig.ModeInstall):
		return fmt.Errorf("--mode %q: want boot or install", o.mode)
	}
	for _, f := range o.files {
		if g, h, ok := strings.Cut(f, "="); !ok || g == "" || h == "" {
			return fmt.Errorf("--file %q: want GUESTPATH=HOSTPATH", f)
		}
	}
	return nil
}

// options turns the flags into initrd.Options.
func (o *initrdBuildOpts) options(fs *flag.FlagSet) (initrd.Options, error) {
	var opts initrd.Options
	var err error
	if opts.Init, err = initosInitPath(o.init); err != nil {
		return opts, err
	}
	opts.KernelDir, opts.NoModules, opts.GOARCH = o.kernelDir, o.noModules, o.arch
	opts.Extra = o.modules
	if o.noDefault {
		opts.Modules, opts.Extra = append([]string{}, o.modules...), nil
	}
	if len(o.files) > 0 {
		opts.Files = map[string]string{}
		for _, f := range o.files {
			g, h, _ := strings.Cut(f, "=")
			opts.Files[g] = h
		}
	}
	if opts.Config, err = o.initrdConfig(fs); err != nil {
		return opts, err
	}
	return opts, nil
}

// initrdConfig reads --config and applies the flags that set fields.
func (o *initrdBuildOpts) initrdConfig(fs *flag.FlagSet) (*bootconfig.Config, error) {
	cfg := bootconfig.New()
	if o.config != "" {
		var err error
		if cfg, err = bootconfig.ReadFile(o.config); err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
	}
	if o.mode != "" {
		cfg.Mode = bootconfig.Mode(o.mode)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "security-version":
			cfg.SecurityVersion = o.secVersion
		case "build-id":
			cfg.BuildID = o.buildID
		}
	})
	if o.modImage != "" {
		file := o.modImagePath
		if file == "" {
			file = "initos/modules-" + filepath.Base(filepath.Clean(o.kernelDir)) + ".sqfs"
		}
		m, err := initrd.ModulesImageInfo(o.modImage, file)
		if err != nil {
			return nil, fmt.Errorf("--modules-image: %w", err)
		}
		cfg.ModulesImage = m
	}
	return cfg, nil
}

// initosInitPath returns the initos-init binary: the flag, else
// initos-init beside this program (make build puts both in out/), else
// in $PATH.
func initosInitPath(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "initos-init"); exists(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("initos-init"); err == nil {
		return p, nil
	}
	return "", errors.New("--init: initos-init is neither next to this program nor in $PATH (make build puts it in out/)")
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// initrdSummary is what `initrd build --json` prints.
type initrdSummary struct {
	Output      string                `json:"output"`
	Bytes       int64                 `json:"bytes"`
	Compression string                `json:"compression"`
	Init        string                `json:"init"`
	Modules     []initrdSummaryModule `json:"modules"`
	Files       int                   `json:"files"`
	Config      *bootconfig.Config    `json:"config"`
}

type initrdSummaryModule struct {
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	Builtin bool   `json:"builtin,omitempty"`
}

// summary prints what was written: the compressed size, the config, one
// line per module in load order.
func (o *initrdBuildOpts) summary(w io.Writer, rd *initrd.Image, c initramfs.Compression, init string) error {
	fi, err := os.Stat(o.out)
	if err != nil {
		return fmt.Errorf("initrd build: %w", err)
	}
	s := initrdSummary{Output: o.out, Bytes: fi.Size(), Compression: c.String(), Init: init, Files: len(o.files), Config: rd.Config,
		Modules: []initrdSummaryModule{}}
	for _, m := range rd.Modules {
		s.Modules = append(s.Modules, initrdSummaryModule{m.Name, m.Path, m.Builtin})
	}
	if o.asJSON {
		return writeJSON(w, s)
	}
	bw := bufio.NewWriter(w)
	cfg := rd.Config
	fmt.Fprintf(bw, "%s: %d bytes (%.2f MiB, %s), /init from %s, %d modules, %d extra files\n", o.out, fi.Size(), float64(fi.Size())/(1<<20), c, init, len(rd.Modules), len(o.files))
	fmt.Fprintf(bw, "  config %s: mode %s, security version %d, kernel %s", bootconfig.Path, cfg.Mode, cfg.SecurityVersion, orNone(cfg.Kernel))
	if cfg.ModulesImage.Enabled() {
		fmt.Fprintf(bw, ", modules image %s (root hash %s)", cfg.ModulesImage.File, cfg.ModulesImage.RootHash)
	}
	fmt.Fprintln(bw)
	for _, m := range rd.Modules {
		p := m.Path
		if m.Builtin {
			p = "(built in)"
		}
		fmt.Fprintf(bw, "  module %-16s %s\n", m.Name, p)
	}
	return bw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "(any)"
	}
	return s
}
