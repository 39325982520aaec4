package initrd

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"initos/bootconfig"
	"initos/initramfs"
	"initos/kmod"
)

// Options describe a production initrd. Zero values mean defaults.
type Options struct {
	// Init is the initos-init binary (static, CGO_ENABLED=0): /init.
	Init string
	// KernelDir is the target kernel's module directory
	// (/lib/modules/<release>), never the build machine's own kernel
	// unless it is the target. Required unless NoModules.
	KernelDir string
	// Modules are the early modules; nil means DefaultModules(GOARCH, the
	// config's mode).
	// Extra are added to them.
	Modules, Extra []string
	// NoModules ships no module (a kernel with everything built in).
	NoModules bool
	// GOARCH selects the default modules; "" means the build machine's.
	GOARCH string
	// Config is the initrd config to ship; nil means bootconfig.New().
	// Its EarlyModules and Kernel are set by Build.
	Config *bootconfig.Config
	// Files are extra entries: guest path -> host path.
	Files map[string]string
}

// Image is a production initrd, ready to write.
type Image struct {
	Archive *initramfs.Archive
	Modules []kmod.Module      // shipped, in load order (built-ins included)
	Config  *bootconfig.Config // as shipped
}

// Build assembles the production initrd: /init, /dev/console and
// the mount points, the early modules with their dependencies and the cut
// down module index under /lib/modules/<release>, and the config at
// bootconfig.Path (with the early modules and the kernel release filled in).
func Build(o Options) (*Image, error) {
	if o.Init == "" {
		return nil, errors.New("build initrd: no initos-init binary")
	}
	cfg := bootconfig.New()
	if o.Config != nil {
		c := *o.Config
		cfg = &c
	}
	a := &initramfs.Archive{}
	if err := a.AddHostFile("init", o.Init); err != nil {
		return nil, fmt.Errorf("build initrd: init: %w", err)
	}
	a.AddDir("dev", 0o755)
	a.AddCharDevice("dev/console", 0o600, 5, 1)
	for _, d := range []string{"proc", "sys", "run", "tmp", "sysroot", "etc/initos"} {
		a.AddDir(d, 0o755)
	}
	out := &Image{Archive: a, Config: cfg}
	if !o.NoModules {
		if err := o.addModules(out); err != nil {
			return nil, fmt.Errorf("build initrd: %w", err)
		}
	}
	for guest, host := range o.Files {
		if err := a.AddHostFile(guest, host); err != nil {
			return nil, fmt.Errorf("build initrd: file %s: %w", guest, err)
		}
	}
	b, err := cfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("build initrd: config: %w", err)
	}
	a.AddFile(strings.TrimPrefix(bootconfig.Path, "/"), 0o644, b)
	return out, nil
}

func (o *Options) addModules(out *Image) error {
	if o.KernelDir == "" {
		return errors.New("no kernel module directory (the target kernel's /lib/modules/<release>)")
	}
	names, optional := o.Modules, map[string]bool{}
	if names == nil {
		arch := o.GOARCH
		if arch == "" {
			arch = runtime.GOARCH
		}
		names = DefaultModules(arch, out.Config.Mode)
		for _, n := range names {
			optional[n] = true
		}
	}
	names = append(names[:len(names):len(names)], o.Extra...)
	_, mods, kept, err := ResolveModules(o.KernelDir, names, optional)
	if err != nil {
		return err
	}
	if err := AddModules(out.Archive, o.KernelDir, mods); err != nil {
		return err
	}
	out.Modules = mods
	out.Config.EarlyModules = kept
	out.Config.Kernel = filepath.Base(filepath.Clean(o.KernelDir))
	return nil
}
